"""Options of the digital back end, typed, and the command-line arguments that set them.

The back end registers its own arguments (:func:`add_arguments`) and reads them back with
:func:`from_arguments`; its functions take a :class:`DigitalOptions`, never an argparse namespace.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

from ..arguments import int_range, positive_int
from ..errors import RcsnnError

__all__ = ["DigitalOptions", "DEFAULT_LANES", "GATE_CYCLES", "add_arguments", "from_arguments", "CheckOptions",
           "add_check_arguments", "check_from_arguments"]

DEFAULT_LANES = 8
#: Without ``--gate-steps``, the gate-level run covers the first steps whose estimated cycles (twice the event
#: lower bound of each) add up to at most this many (at least two steps): ~30 steps of the small core, 2 of the example.
GATE_CYCLES = 2500


@dataclass(frozen=True)
class DigitalOptions:
    """How a core is laid out in hardware.

    Attributes:
        lanes: parallel lanes (synapse and neuron units), 1..32.
        preload: parameter memories initialised in the bitstream (else loaded through the load port).
        lutram: neuron state in LUT RAM instead of block RAM.
    """

    lanes: int = DEFAULT_LANES
    preload: bool = True
    lutram: bool = False

    def check(self) -> DigitalOptions:
        if not 1 <= self.lanes <= 32:
            raise RcsnnError(f"--lanes {self.lanes}: must be 1..32")
        return self


def add_arguments(p: argparse.ArgumentParser, emit: bool = False) -> None:
    """``--lanes``; with ``emit``, also ``--no-preload`` and ``--lutram``."""
    p.add_argument("--lanes", type=int_range(1, 32), default=None,
                   help=f"parallel lanes (synapse and neuron units) of the core (default {DEFAULT_LANES}, or --hdl DIR's)")
    if emit:
        p.add_argument("--no-preload", dest="preload", action="store_false",
                       help="leave parameter memories uninitialised (load them through the load port, e.g. iCE40 SPRAM)")
        p.add_argument("--lutram", action="store_true",
                       help="neuron state (accumulators, membranes, biases) in LUT RAM: for many lanes, when each "
                            "lane's memories are too small to be worth a block RAM")


def from_arguments(args: argparse.Namespace, default_lanes: int = DEFAULT_LANES) -> DigitalOptions:
    """The options given; ``--lanes`` not given is ``default_lanes``."""
    fields = DigitalOptions.__dataclass_fields__
    given = {k: v for k, v in vars(args).items() if k in fields and v is not None}
    return DigitalOptions(**{"lanes": default_lanes, **given}).check()


@dataclass(frozen=True)
class CheckOptions:
    """How ``rcsnn verify`` checks a digital back end.

    Attributes:
        hdl: an existing directory written by ``rcsnn verilog`` (possibly hand-edited) to run the
            Verilator/Icarus benches on, instead of emitting the core afresh.
        trust_edits: run ``hdl``'s files even if they differ from the SHA-256 recorded in its design.json.
        gate_steps: the gate-level run covers the first ``gate_steps`` steps of the stimulus (None: as many as
            fit in :data:`GATE_CYCLES` estimated cycles).
    """

    hdl: Path | None = None
    trust_edits: bool = False
    gate_steps: int | None = None

    def check(self) -> CheckOptions:
        if self.gate_steps is not None and self.gate_steps < 1:
            raise RcsnnError(f"--gate-steps {self.gate_steps}: must be >= 1")
        return self


def add_check_arguments(p: argparse.ArgumentParser) -> None:
    """``--hdl DIR`` and ``--gate-steps N`` of ``rcsnn verify`` (``--trust-edits`` is a ``verify`` option of its own)."""
    p.add_argument("--hdl", metavar="DIR", default=None,
                   help="verilator/icarus: run the benches on this directory written by rcsnn verilog (its Verilog and "
                        "memory images, hand-edited or not) instead of emitting CORE afresh")
    p.add_argument("--gate-steps", type=positive_int, default=None,
                   help=f"gate: simulate the synthesised netlist for the first N steps (default: as many as fit in "
                        f"~{GATE_CYCLES} clock cycles; the netlist simulates 100-10,000x slower than the RTL)")


def check_from_arguments(args: argparse.Namespace) -> CheckOptions:
    return CheckOptions(Path(args.hdl) if args.hdl else None, bool(getattr(args, "trust_edits", False)),
                        args.gate_steps).check()
