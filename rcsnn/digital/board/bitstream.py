"""``rcsnn synth DIR --board NAME``: the board top around ``DIR``'s LM, synthesised, placed, routed and packed.

Steps, in ``DIR/board/<NAME>/``: ``rcsnn_board.il`` (:class:`~rcsnn.digital.board.top.BoardPins` with the
emitted ``rcsnn_lm`` as an instance) and the constraints (``board.lpf`` / ``board.pcf``); YoWASP Yosys
(``synth_ecp5`` / ``synth_ice40``) on it and ``DIR/rcsnn_lm.il``; the cell counts checked against the
device; YoWASP nextpnr with the pins and the board clock as constraint; the timing checked (Fmax of
``clk`` >= the board's oscillator, else a one-line error after the report is written); the bitstream
packed with ``yowasp-ecppack`` (``board.bit``) or ``yowasp-icepack`` (``board.bin``). The report
(``report.json``, ``report.md``): resources used and available, Fmax against the board clock, the baud
rate and its divisor.
"""

from __future__ import annotations

import json
from pathlib import Path

from amaranth.back import rtlil

from ...errors import RcsnnError
from ...tools import SYNTH_TIMEOUT, run, yosys
from ..emit import read_design
from ..lm.run import LM_TOP
from ..synth import TARGETS, usage
from .boards import BOARDS
from .top import BoardPins, BoardTop, LMInstance, lm_ports
from .uart import divisor

__all__ = ["DEFAULT_BAUD", "build_board", "check_timing", "board_summary"]

DEFAULT_BAUD = 115200


def check_timing(report: dict) -> None:
    """Raise a one-line error unless the achieved Fmax reaches the board's clock (``report`` of :func:`build_board`)."""
    if report["fmax_mhz"] < report["clock_mhz"]:
        raise RcsnnError(f"{report['board']}: timing not met: Fmax {report['fmax_mhz']:.1f} MHz < board clock "
                         f"{report['clock_mhz']:g} MHz (no bitstream; fewer lanes or a smaller core would be faster)")


def build_board(design_dir: Path, name: str, baud: int = DEFAULT_BAUD, trust_edits: bool = False) -> dict:
    """Bitstream of the board top for board ``name`` around the LM of ``design_dir``; returns (and writes) the report."""
    board, design_dir = BOARDS[name], Path(design_dir)
    target = TARGETS[board.target]
    design = read_design(design_dir, trust_edits)
    if "lm" not in design:
        raise RcsnnError(f"{design_dir}/design.json: no key 'lm'; a board top needs the LM on chip: "
                         f"rcsnn verilog CORE --lm -o {design_dir}")
    if not design["preload"]:
        raise RcsnnError(f"{design_dir}/design.json: key 'preload' = false; the board top loads no parameters at run "
                         f"time: write the design without --no-preload")
    cycles = divisor(board.clock_mhz * 1e6, baud)
    work = design_dir / "board" / name
    work.mkdir(parents=True, exist_ok=True)
    top = BoardPins(BoardTop(LMInstance(lm_ports((design_dir / f"{LM_TOP}.il").read_text())), cycles),
                    board.reset_low, board.led_low)
    (work / "rcsnn_board.il").write_text(rtlil.convert(top, name="rcsnn_board", ports=top.ports()))
    (work / board.constraints_file).write_text(board.constraints())
    yosys(f"read_rtlil ../../{LM_TOP}.il\nread_rtlil rcsnn_board.il\n{target.synth} -top rcsnn_board "
          "-json netlist.json\ntee -q -o stat.json stat -json\n", work, f"yosys {target.synth} ({name})", SYNTH_TIMEOUT)
    used = usage(json.loads((work / "stat.json").read_text()), target)
    report = {"board": name, "target": board.target, "clock_mhz": board.clock_mhz, "baud": baud, "divisor": cycles,
              "lanes": design["lanes"], "neurons": sum(g["size"] for g in design["groups"]),
              "vocab_size": design["lm"]["vocab_size"], "synthesis": used, "capacity": target.capacity}
    over = ", ".join(f"{used[k]} {k} of {target.capacity[k]}" for k in used if used[k] > target.capacity[k])
    if over:
        _write(work, report)
        raise RcsnnError(f"{name}: the board top does not fit {board.target}: uses {over}; a smaller core (fewer "
                         "neurons or characters) or fewer lanes would")
    packed = _place_and_pack(work, board, target)
    pnr = json.loads((work / "pnr.json").read_text())
    report["placed"] = {cls: pnr["utilization"][cell]["used"] for cls, cell in target.placed.items()}
    report["fmax_mhz"] = min(v["achieved"] for v in pnr["fmax"].values())
    report["timing_met"] = report["fmax_mhz"] >= board.clock_mhz
    _write(work, report)
    check_timing(report)
    bitstream = "board.bit" if board.ecp5 else "board.bin"
    run([f"yowasp-{'ecppack' if board.ecp5 else 'icepack'}", packed, bitstream], cwd=work, what=f"pack ({name})",
        timeout=SYNTH_TIMEOUT)
    report["bitstream"] = str(work / bitstream)
    _write(work, report)
    return report


def _place_and_pack(work: Path, board, target) -> str:
    """nextpnr with the pins and the board clock; returns the file for the packer (``board.config`` / ``board.asc``)."""
    packed = "board.config" if board.ecp5 else "board.asc"
    proc = run([target.nextpnr, *target.device, "--json", "netlist.json", "--freq", f"{board.clock_mhz:g}",
                "--lpf" if board.ecp5 else "--pcf", board.constraints_file,
                "--textcfg" if board.ecp5 else "--asc", packed, "--timing-allow-fail", "--report", "pnr.json",
                "--seed", "1"], cwd=work, what=target.nextpnr, check=False, timeout=SYNTH_TIMEOUT)
    (work / "nextpnr.log").write_text(proc.stderr)
    if proc.returncode != 0 or not (work / "pnr.json").exists():
        tail = " | ".join(proc.stderr.strip().splitlines()[-2:])
        raise RcsnnError(f"{target.nextpnr} could not place and route the board top for {board.name}: {tail}")
    return packed


def _write(work: Path, report: dict) -> None:
    (work / "report.json").write_text(json.dumps(report, indent=1) + "\n")
    rows = "\n".join(f"| {k} | {v} | {report['capacity'][k]} |" for k, v in report["synthesis"].items())
    lines = [f"# Board top: {report['board']} ({report['target']}), {report['neurons']} neurons, {report['lanes']} "
             f"lanes, {report['vocab_size']} characters", "",
             f"UART 8N1 at {report['baud']} Bd ({report['divisor']} clock cycles per bit).", "",
             "| resource | used (Yosys) | available |", "| --- | --- | --- |", rows, ""]
    if "fmax_mhz" in report:
        lines.append("Placed (nextpnr): " + ", ".join(f"{k} {v}" for k, v in report["placed"].items()) + ".")
        lines.append(f"Fmax (clk, nextpnr, seed 1): {report['fmax_mhz']:.1f} MHz against the board clock "
                     f"{report['clock_mhz']:g} MHz: timing {'met' if report['timing_met'] else 'NOT met'}.")
    else:
        lines.append("Does not fit (see the error message).")
    if "bitstream" in report:
        lines.append(f"Bitstream: {Path(report['bitstream']).name}.")
    (work / "report.md").write_text("\n".join(lines) + "\n")


def board_summary(report: dict) -> str:
    """One line: placed resources, Fmax against the board clock, the bitstream."""
    use = ", ".join(f"{k} {v}/{report['capacity'][k]}" for k, v in report["placed"].items())
    return (f"{report['board']} ({report['target']}): {use}; Fmax {report['fmax_mhz']:.1f} MHz (board clock "
            f"{report['clock_mhz']:g} MHz); bitstream {report['bitstream']}")
