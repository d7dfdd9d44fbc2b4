"""Options of the analog back end, typed, and the command-line arguments that set them.

The back end registers its own arguments (:func:`add_design_arguments`, :func:`add_run_arguments`)
on the parsers the command line gives it, and reads them back with :func:`from_arguments`; its
functions take a :class:`SpiceOptions`, never an argparse namespace.
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass

import numpy as np

from ..arguments import cores, positive_float, positive_int
from ..errors import RcsnnError
from ..ir.arrays import Core
from .design import FORMS, Design
from .netlist import MODES
from .ngspice import RUNNERS

__all__ = ["SpiceOptions", "add_design_arguments", "add_circuit_arguments", "add_scale_arguments", "add_run_arguments",
           "rails", "volts", "from_arguments"]


@dataclass(frozen=True)
class SpiceOptions:
    """How a core becomes decks and how ngspice runs them.

    Attributes:
        mode: ``closed`` (one free-running deck) or ``open`` (blocks replaying the reference raster).
        blocks: open loop: number of decks; None: about 128 neurons each, a multiple of ``workers``.
        form: ``ideal`` (CCCS virtual ground) or ``opamp`` (inverting integrator of gain ``gain``).
        gain: op-amp open-loop gain (opamp form).
        clock: clock period = one step (s).
        max_step: cap on ngspice's maximum time step (s); None: the design's default.
        runner: ``subprocess`` (``ngspice -b``, parallel) or ``pyspice`` (in-process libngspice).
        workers: parallel ngspice processes, at most :func:`rcsnn.arguments.cores` unless ``oversubscribe``.
        timeout: seconds per deck before ngspice is stopped; None: the runner's default.
        oversubscribe: allow more ``workers`` than cores.
        volts_per_unit: S, membrane volts per unit (``--volts-per-unit``); None: 1, or from ``theta_volts``.
        theta_volts: θ in volts (``--theta-volts``): S = theta_volts / θ of a core with one θ.
        rails: supply rails (LO, HI) in volts (``--rails LO,HI``), None: none.
        saturate: bound the core at the rails (``--saturate``, :func:`rcsnn.analog.scale.saturate`).
        allow_clipping: write decks whose reference passes the rails, with a warning.
        hysteresis: the comparators' hysteresis (V; :attr:`rcsnn.analog.design.Design.hysteresis`).
        opamp: a real amplifier (``--opamp``: a part name or ``FILE:SUBCKT``, :mod:`rcsnn.analog.opamp`); it builds
            the op-amp form. None: the behavioural gain.
    """

    mode: str = "closed"
    blocks: int | None = None
    form: str = "ideal"
    gain: float = Design.gain
    clock: float = Design.step
    max_step: float | None = None
    runner: str = "subprocess"
    workers: int = min(2, cores())
    timeout: float | None = None
    oversubscribe: bool = False
    volts_per_unit: float | None = None
    theta_volts: float | None = None
    rails: tuple[float, float] | None = None
    saturate: bool = False
    allow_clipping: bool = False
    hysteresis: float = 0.0
    opamp: str | None = None

    def design(self, core: Core | None = None) -> Design:
        """The circuit design these options choose (``core``: needed for ``--theta-volts``, S = V/θ; refused for
        a core with more than one θ)."""
        choices = {"max_step": self.max_step} if self.max_step is not None else {}
        if self.rails is not None:
            choices.update(rail_low=self.rails[0], rail_high=self.rails[1])
        if self.volts_per_unit is not None:
            choices["volts_per_unit"] = self.volts_per_unit
        elif self.theta_volts is not None:
            thetas = np.unique(core.per_neuron("theta")) if core is not None else np.array([])
            if len(thetas) != 1:
                raise RcsnnError(f"--theta-volts {self.theta_volts:g}: " + (
                    f"the core has {len(thetas)} thresholds theta ({thetas.min():g} .. {thetas.max():g}); give "
                    "--volts-per-unit S instead" if core is not None else "this command needs --volts-per-unit S"))
            choices["volts_per_unit"] = self.theta_volts / float(thetas[0])
        if self.opamp:
            choices.update(form="opamp", opamp=self.opamp)
        return Design.scaled(self.clock, **{"form": self.form, "gain": self.gain, "hysteresis": self.hysteresis,
                                            **choices})

    def check(self) -> SpiceOptions:
        """Raise :class:`RcsnnError` naming the first option out of range."""
        for name, value in (("--clock", self.clock), ("--max-step", self.max_step), ("--gain", self.gain),
                            ("--timeout", self.timeout)):
            if value is not None and not value > 0:
                raise RcsnnError(f"{name} {value:g}: must be > 0")
        if self.volts_per_unit is not None and self.theta_volts is not None:
            raise RcsnnError("--volts-per-unit and --theta-volts: give one of them")
        if self.opamp is not None and self.gain != Design.gain:
            raise RcsnnError(f"--opamp {self.opamp} and --gain {self.gain:g}: the part has its own gain; give one of them")
        if self.saturate and self.allow_clipping:
            raise RcsnnError("--saturate and --allow-clipping: give one of them")
        if (self.saturate or self.allow_clipping) and self.rails is None:
            raise RcsnnError(f"--{'saturate' if self.saturate else 'allow-clipping'}: needs --rails LO,HI")
        if self.blocks is not None and self.blocks < 1:
            raise RcsnnError(f"--blocks {self.blocks}: must be >= 1")
        if self.workers < 1:
            raise RcsnnError(f"--workers {self.workers}: must be >= 1")
        if self.workers > cores() and not self.oversubscribe:
            raise RcsnnError(f"--workers {self.workers}: more ngspice processes than this machine's {cores()} cores only "
                             "slow each other down (add --oversubscribe to run them anyway)")
        return self


def add_design_arguments(p: argparse.ArgumentParser, mode: str) -> None:
    """Deck options: ``--mode`` (default ``mode``), ``--blocks`` and :func:`add_circuit_arguments`."""
    p.add_argument("--mode", choices=MODES, default=mode,
                   help="closed: one free-running deck; open: blocks driven by the reference raster")
    p.add_argument("--blocks", type=positive_int, default=None,
                   help="open mode: number of decks (contiguous neuron ranges; default about 128 neurons each)")
    add_circuit_arguments(p)
    p.add_argument("--saturate", action="store_true", help="bound the core's membranes at the rails (v_max = "
                   "HI*e^(-d/tau)/S, ...), write bounded.rcsnn beside the decks and verify against it")
    p.add_argument("--allow-clipping", action="store_true",
                   help="write decks whose reference membranes pass the rails anyway (a warning; not verifiable there)")


def add_circuit_arguments(p: argparse.ArgumentParser) -> None:
    """Circuit options: ``--form``, ``--gain``, ``--clock``, ``--max-step``, ``--snap`` (read by the command,
    :func:`rcsnn.analog.snap.snapped_arguments`), the physical scale ``--volts-per-unit``/``--theta-volts`` and
    ``--rails``."""
    p.add_argument("--form", choices=FORMS, default="ideal",
                   help="ideal: CCCS virtual ground (exact, default); opamp: inverting integrator of gain --gain")
    p.add_argument("--gain", type=positive_float, default=Design.gain, help="op-amp open-loop gain (opamp form)")
    p.add_argument("--opamp", metavar="PART", default=None,
                   help="a real amplifier in the op-amp form: a named part (OPA381, TSV782; NAME,vos=0,... overrides "
                        "its figures) or FILE:SUBCKT, your .subckt with pins in+ in- out V+ V-; needs --rails "
                        "(docs/analog.md, Real amplifiers)")
    p.add_argument("--clock", type=positive_float, default=Design.step,
                   help="clock period = one step, seconds (default 1e-6)")
    p.add_argument("--max-step", type=positive_float, default=None, help="cap on ngspice's maximum time step, seconds "
                   "(default clock/50; each deck uses at most its fastest tau/200)")
    p.add_argument("--snap", metavar="SERIES", default=None,
                   help="build of part values: E24, E96, E192 (IEC 60063) or unit:R (n unit resistors R in series or "
                        "parallel); the core's parameters are recomputed from them (docs/analog.md, Real part values)")
    p.add_argument("--hysteresis", type=volts, default=0.0, metavar="V",
                   help="comparator hysteresis, V or mV: trip points V(th) +- V/2 by the last decision (not the "
                        "contract: for netlists and Monte Carlo; verify reports what it changes)")
    add_scale_arguments(p)


def volts(text: str) -> float:
    """A voltage >= 0: ``0.005``, ``5mV`` or ``5 mV``."""
    number = text.strip().lower()
    scale = 1e-3 if number.endswith("mv") else 1.0
    try:
        value = float(number.removesuffix("mv").removesuffix("v").strip()) * scale
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected volts, e.g. 0.005 or 5mV") from None
    if not (math.isfinite(value) and value >= 0):
        raise argparse.ArgumentTypeError(f"{text!r}: must be a finite voltage >= 0")
    return value


def add_scale_arguments(p: argparse.ArgumentParser) -> None:
    """The physical scale: ``--volts-per-unit S`` or ``--theta-volts V``, and ``--rails LO,HI``."""
    scale = p.add_mutually_exclusive_group()
    scale.add_argument("--volts-per-unit", type=positive_float, default=None, metavar="S",
                       help="membrane volts per model unit (default 1; lines at S volts per unit; docs/analog.md)")
    scale.add_argument("--theta-volts", type=positive_float, default=None, metavar="V",
                       help="the threshold in volts: S = V / theta (a core with one theta)")
    p.add_argument("--rails", type=rails, default=None, metavar="LO,HI",
                   help="supply rails in volts, LO <= 0 < HI (write --rails=-0.5,0.5): clamp levels and membranes "
                        "must fit them")


def rails(text: str) -> tuple[float, float]:
    """``LO,HI`` (volts): two finite numbers with LO <= 0 < HI."""
    parts = text.split(",")
    try:
        low, high = (float(x) for x in parts)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected LO,HI in volts, e.g. -0.5,0.5") from None
    if not (math.isfinite(low) and math.isfinite(high) and low <= 0 < high):
        raise argparse.ArgumentTypeError(f"{text!r}: need finite LO <= 0 < HI volts")
    return low, high


def add_run_arguments(p: argparse.ArgumentParser) -> None:
    """ngspice options: ``--runner``, ``--workers``, ``--timeout``."""
    p.add_argument("--runner", choices=tuple(RUNNERS), default="subprocess",
                   help="ngspice -b processes (parallel) or in-process libngspice through PySpice")
    p.add_argument("--workers", type=positive_int, default=SpiceOptions.workers,
                   help=f"parallel ngspice processes (default {SpiceOptions.workers}; at most the {cores()} cores)")
    p.add_argument("--oversubscribe", action="store_true", help="allow --workers above the number of cores")
    p.add_argument("--timeout", type=positive_float, default=None, help="seconds per deck before ngspice is stopped")


def from_arguments(args: argparse.Namespace) -> SpiceOptions:
    """The options a parsed command line sets (arguments a command did not register keep their defaults)."""
    fields = SpiceOptions.__dataclass_fields__
    return SpiceOptions(**{k: v for k, v in vars(args).items() if k in fields}).check()
