"""Options of the digital back end, typed, and the command-line arguments that set them.

The back end registers its own arguments (:func:`add_arguments`) and reads them back with
:func:`from_arguments`; its functions take a :class:`DigitalOptions`, never an argparse namespace.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

from ..errors import RcsnnError

__all__ = ["DigitalOptions", "DEFAULT_LANES", "add_arguments", "from_arguments"]

DEFAULT_LANES = 8


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
    p.add_argument("--lanes", type=int, default=DEFAULT_LANES, help="parallel lanes (synapse and neuron units) of the core")
    if emit:
        p.add_argument("--no-preload", dest="preload", action="store_false",
                       help="leave parameter memories uninitialised (load them through the load port, e.g. iCE40 SPRAM)")
        p.add_argument("--lutram", action="store_true",
                       help="neuron state (accumulators, membranes, biases) in LUT RAM: for many lanes, when each "
                            "lane's memories are too small to be worth a block RAM")


def from_arguments(args: argparse.Namespace) -> DigitalOptions:
    fields = DigitalOptions.__dataclass_fields__
    return DigitalOptions(**{k: v for k, v in vars(args).items() if k in fields}).check()
