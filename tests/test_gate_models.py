"""rcsnn's DP16KD simulation model (``rcsnn/digital/templates/ecp5_dp16kd.v.j2``) against plain behavioural memories.

One Verilog module holds a memory of every shape that ``synth_ecp5`` puts in block RAM with each DP16KD
configuration it instantiates (widths 1, 2, 4, 9 and 18 in true-dual-port mode, 36 in pseudo-dual-port
mode, byte enables at 18 and 36, the three read-during-write modes of a read+write port), each with
random initial contents. Yosys synthesises it for ECP5 (``synth_ecp5``, block RAM allowed); Icarus runs
the behavioural module and its netlist (with the ECP5 cells' models and rcsnn's DP16KD model) side by
side on the same random writes and reads and compares every read, four-state (an X is a mismatch).
Each negative control is the model with one deliberate mistake (the INITVAL bit order, the narrow-word
address shift, the byte-enable order, the read-during-write mode), which the same comparison must catch.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from rcsnn.digital.gate import bram_model, cell_models
from rcsnn.tools import BUILD_TIMEOUT, SIM_TIMEOUT, SYNTH_TIMEOUT, run, yosys

CYCLES = 1500
#: name, depth, width, kind: "rw" one write port and one read port (the read port with an enable),
#: "be" the same with byte enables (9-bit bytes), or a read+write port reading the old word ("old"),
#: the new word ("new") or keeping its output while it writes ("keep").
MEMORIES = (("m1", 16384, 1, "rw"), ("m2", 8192, 2, "rw"), ("m4", 4096, 4, "rw"), ("m9", 2048, 9, "rw"),
            ("m18", 1024, 18, "be"), ("m36", 512, 36, "be"), ("old", 1024, 18, "old"), ("new", 4096, 4, "new"),
            ("keep", 2048, 9, "keep"))
#: The DP16KD configurations (DATA_WIDTH_A, DATA_WIDTH_B, WRITEMODE_A) the netlist must contain.
CONFIGURATIONS = {(1, 1), (2, 2), (4, 4), (9, 9), (18, 18), (36, 36), (4, 18), (9, 18)}
WRITEMODES = {"READBEFOREWRITE", "WRITETHROUGH", "NORMAL"}


def _memory(name: str, depth: int, width: int, kind: str) -> str:
    head = (f"  (* ram_style = \"block\" *) reg [{width - 1}:0] {name}_mem [0:{depth - 1}];\n"
            f"  initial $readmemh(\"{name}.hex\", {name}_mem);\n"
            f"  reg [{width - 1}:0] {name}_q = 0;\n  assign {name}_out = {name}_q;\n")
    if kind in ("rw", "be"):
        write = (f"    if ({name}_we) {name}_mem[{name}_wa] <= {name}_d;\n" if kind == "rw" else "".join(
            f"    if ({name}_we[{b}]) {name}_mem[{name}_wa][{9 * b + 8}:{9 * b}] <= {name}_d[{9 * b + 8}:{9 * b}];\n"
            for b in range(width // 9)))
        return head + f"  always @(posedge clk) begin\n{write}    if ({name}_re) {name}_q <= {name}_mem[{name}_ra];\n  end\n"
    read = {"old": f"    {name}_q <= {name}_mem[{name}_ra];\n",
            "new": f"    {name}_q <= {name}_we ? {name}_d : {name}_mem[{name}_ra];\n",
            "keep": f"    if (!{name}_we) {name}_q <= {name}_mem[{name}_ra];\n"}[kind]
    return head + (f"  always @(posedge clk) begin\n    if ({name}_we) {name}_mem[{name}_ra] <= {name}_d;\n"
                   f"{read}  end\n")


def _ports(name: str, depth: int, width: int, kind: str) -> list[tuple[str, int, str]]:
    """(port, width, direction) of one memory's signals."""
    a = (depth - 1).bit_length()
    ports = [(f"{name}_ra", a, "input"), (f"{name}_d", width, "input"),
             (f"{name}_we", width // 9 if kind == "be" else 1, "input"), (f"{name}_out", width, "output")]
    if kind in ("rw", "be"):
        ports += [(f"{name}_wa", a, "input"), (f"{name}_re", 1, "input")]
    return ports


def _module(top: str) -> str:
    ports = [p for m in MEMORIES for p in _ports(*m)]
    decl = ",\n".join(f"  {d} [{w - 1}:0] {n}" for n, w, d in ports)
    return f"module {top}(\n  input clk,\n{decl}\n);\n" + "".join(_memory(*m) for m in MEMORIES) + "endmodule\n"


def _bench() -> str:
    """Random writes and reads of both modules; ``MISMATCH name cycle`` for every read that differs (four-state)."""
    ports = [p for m in MEMORIES for p in _ports(*m)]
    regs = "".join(f"  reg [{w - 1}:0] {n};\n  wire [{w - 1}:0] {n}_rtl, {n}_gate;\n" if d == "output"
                   else f"  reg [{w - 1}:0] {n};\n" for n, w, d in ports)
    conn = ", ".join(f".{n}({n}_SUFFIX)" if d == "output" else f".{n}({n})" for n, w, d in ports)
    drive = []
    for name, _, _, kind in MEMORIES:
        ra = f"{name}_ra"
        drive.append(f"      {name}_d = {{$random, $random}};\n      {name}_we = $random;\n")
        if kind in ("rw", "be"):
            # half of the reads go to the word last written (write then read), the rest anywhere; a read
            # never hits the word written in the same cycle (a collision: indeterminate, see collide below)
            drive.append(f"      {name}_re = $random;\n      {ra} = ($random & 1) ? {name}_wa : $random;\n"
                         f"      {name}_wa = $random;\n      if ({name}_wa == {ra}) {name}_wa = {name}_wa + 1;\n")
        else:
            drive.append(f"      {ra} = ($random & 1) ? {ra} : $random;\n")
        if kind == "be":
            drive.append(f"      if ($random & 1) {name}_we = 0;\n")
        elif kind != "rw":
            drive.append(f"      {name}_we = $random & $random & 1;\n")
    check = "".join(f"      if ({n}_rtl !== {n}_gate) begin mismatches = mismatches + 1; "
                    f"if (mismatches < 20) $display(\"MISMATCH {n} %0d %h %h\", cycle, {n}_rtl, {n}_gate); end\n"
                    for n, w, d in ports if d == "output")
    return (f"`timescale 1ns/1ps\nmodule tb;\n  reg clk = 0;\n  integer cycle, mismatches = 0;\n{regs}"
            f"  mems rtl(.clk(clk), {conn.replace('_SUFFIX', '_rtl')});\n"
            f"  gate_mems gate(.clk(clk), {conn.replace('_SUFFIX', '_gate')});\n"
            f"  initial begin\n    for (cycle = 0; cycle < {CYCLES}; cycle = cycle + 1) begin\n"
            f"{''.join(drive)}      #5 clk = 1;\n      #5 clk = 0;\n{check}    end\n"
            "    $display(\"DONE %0d cycles, %0d mismatches\", cycle, mismatches);\n    $finish;\n  end\nendmodule\n")


@pytest.fixture(scope="module")
def netlist(tmp_path_factory) -> Path:
    """The behavioural memories, their contents, the bench and the synthesised netlist, in one directory."""
    work = tmp_path_factory.mktemp("dp16kd")
    rng = np.random.default_rng(3)
    for name, depth, width, _ in MEMORIES:
        words = rng.integers(0, 1 << width, size=depth, dtype=np.uint64)
        (work / f"{name}.hex").write_text("".join(f"{int(w):x}\n" for w in words))
    (work / "mems.v").write_text(_module("mems"))
    (work / "tb.v").write_text(_bench())
    yosys("read_verilog mems.v\nsynth_ecp5 -top mems\nrename mems gate_mems\nwrite_verilog -noattr gate.v\n",
          work, "yosys synth_ecp5 (DP16KD test)", SYNTH_TIMEOUT)
    cell_models(work / "models")
    return work


def _simulate(work: Path, model: str, tag: str) -> str:
    (work / "models" / "dp16kd.v").write_text(model)
    run(["iverilog", "-g2012", "-DNO_INCLUDES", "-I", "models", "-s", "tb", "-o", f"tb_{tag}", "tb.v", "mems.v",
         "gate.v", "models/cells_sim.v", "models/dp16kd.v"], cwd=work, what="iverilog (DP16KD test)",
        timeout=BUILD_TIMEOUT)
    return run(["vvp", "-n", f"tb_{tag}"], cwd=work, what="vvp (DP16KD test)", timeout=SIM_TIMEOUT).stdout


def _configurations(text: str) -> tuple[set[tuple[int, int]], set[str]]:
    cells = re.findall(r"DP16KD #\((.*?)\n  \)", text, re.S)
    widths = {(int(re.search(r"DATA_WIDTH_A\(32'd(\d+)\)", c)[1]), int(re.search(r"DATA_WIDTH_B\(32'd(\d+)\)", c)[1]))
              for c in cells}
    modes = {m for c in cells for m in re.findall(r'WRITEMODE_A\("(\w+)"\)', c)}
    return widths, modes


def test_netlist_has_every_configuration(netlist):
    widths, modes = _configurations((netlist / "gate.v").read_text())
    assert widths >= CONFIGURATIONS and modes >= WRITEMODES, (widths, modes)


def test_model_matches_behavioural_memories(netlist):
    out = _simulate(netlist, bram_model(), "model")
    assert f"DONE {CYCLES} cycles, 0 mismatches" in out, out


#: One deliberate mistake each (a regular expression and its replacement in the model), and a memory it must show in.
MUTANTS = {
    "INITVAL bit order (18-bit stride)": (r"(INITVAL_[0-9A-F]{2})\[20 \* i", r"\1[18 * i", "m18_out"),
    "narrow-word address shift (no parity gap)": (r"w <= 9 \? 9 \* a\[3\]", "w <= 9 ? 8 * a[3]", "m4_out"),
    "byte enables swapped": (r"\{ \{9\{a\[1\]\}\}, \{9\{a\[0\]\}\} \} : ONES", "{ {9{a[0]}}, {9{a[1]}} } : ONES",
                             "m18_out"),
    "read-before-write read as write-through": (r'MODE == "WRITETHROUGH"', 'MODE != "NORMAL"', "old_out"),
}


@pytest.mark.parametrize("mutant", sorted(MUTANTS))
def test_negative_control_a_wrong_model_is_caught(netlist, mutant):
    pattern, replacement, where = MUTANTS[mutant]
    model = bram_model()
    broken = re.sub(pattern, replacement, model)
    assert broken != model, mutant
    out = _simulate(netlist, broken, re.sub(r"\W+", "_", mutant))
    assert f"DONE {CYCLES} cycles" in out and " 0 mismatches" not in out and f"MISMATCH {where}" in out, out


def _instance(tmp_path: Path, params: str, stimulus: str) -> str:
    """Run one DP16KD with ``params`` (Verilog parameter overrides) and ``stimulus`` (statements on ``clk``, ``ada``,
    ``adb``, ``dia``, ``wea``, ``ceb`` and the output ``dob``) in Icarus; its output."""
    (tmp_path / "dp16kd.v").write_text(bram_model())
    pins = "".join(f".ADA{i}(ada[{i}]), .ADB{i}(adb[{i}]), " for i in range(14)) + "".join(
        f".DIA{i}(dia[{i}]), .DIB{i}(1'b0), .DOB{i}(dob[{i}]), " for i in range(18))
    (tmp_path / "tb.v").write_text(
        "`timescale 1ns/1ps\nmodule tb;\n  reg clk = 0, wea = 0, ceb = 1;\n  reg [13:0] ada = 0, adb = 0;\n"
        f"  reg [17:0] dia = 0;\n  wire [17:0] dob;\n  DP16KD #(.GSR(\"DISABLED\"), {params})\n"
        f"    ram({pins}.CLKA(clk), .CLKB(clk), .CEA(1'b1), "
        ".CEB(ceb), .WEA(wea), .WEB(1'b0), .OCEA(1'b1), .OCEB(1'b1), .RSTA(1'b0), .RSTB(1'b0), .CSA0(1'b0), "
        ".CSA1(1'b0), .CSA2(1'b0), .CSB0(1'b0), .CSB1(1'b0), .CSB2(1'b0));\n"
        f"  initial begin\n{stimulus}\n    $finish;\n  end\nendmodule\n")
    run(["iverilog", "-g2012", "-s", "tb", "-o", "tb", "tb.v", "dp16kd.v"], cwd=tmp_path, what="iverilog (DP16KD)",
        timeout=BUILD_TIMEOUT)
    return run(["vvp", "-n", "tb"], cwd=tmp_path, what="vvp (DP16KD)", timeout=SIM_TIMEOUT).stdout


def test_cross_port_collision_reads_x_and_other_words_read_clean(tmp_path):
    """Port A writes word 5 while port B reads word 5 at the same clock edge: the read is X (memlib.md:
    indeterminate); the same read of word 6 (the control) gives that word's INITVAL contents."""
    stimulus = ("    wea = 1; ada = 5 << 4 | 3; adb = {}; dia = 18'h2a5a5;\n    #5 clk = 1; #5 clk = 0;\n"
                "    $display(\"DOB %b\", dob);")
    init = ".DATA_WIDTH_A(18), .DATA_WIDTH_B(18), .INITVAL_00(320'h12345 << 120 | 320'h0abcd << 100)"
    assert "DOB " + "x" * 18 in _instance(tmp_path, init, stimulus.format("5 << 4"))
    clean = _instance(tmp_path, init, stimulus.format("6 << 4"))
    assert f"DOB {0x12345:018b}" in clean, clean


@pytest.mark.parametrize(("params", "why"), [
    (".DATA_WIDTH_A(18), .DATA_WIDTH_B(18), .REGMODE_B(\"OUTREG\")", "REGMODE"),
    (".DATA_WIDTH_A(18), .DATA_WIDTH_B(36)", "DATA_WIDTH"),
    (".DATA_WIDTH_A(18), .DATA_WIDTH_B(18), .CSDECODE_A(\"0b001\")", "CSDECODE"),
    (".DATA_WIDTH_A(18), .DATA_WIDTH_B(18), .INITVAL_3F({1'b1, 319'b0})", "INITVAL bits"),
])
def test_configurations_synth_ecp5_never_instantiates_are_refused(tmp_path, params, why):
    out = _instance(tmp_path, params, "    #5 clk = 1; #5 clk = 0;\n    $display(\"RAN\");")
    assert "ERROR: DP16KD" in out and why in out and "RAN" not in out, out
    assert "RAN" in _instance(tmp_path, ".DATA_WIDTH_A(18), .DATA_WIDTH_B(18)", "    $display(\"RAN\");")
