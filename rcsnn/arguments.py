"""The one validation layer of numeric command-line options: argparse ``type=`` functions.

Every command (``rcsnn.cli``) and every back end that registers its own options
(:mod:`rcsnn.analog.options`, :mod:`rcsnn.digital.options`) takes its numbers through these, so
``--steps -5``, ``--max-step nan`` or ``--workers 0`` is refused while parsing, before any work,
with one line naming the option (argparse adds the option's name to the message). :func:`cores`
is the cap of options that start processes.

This module imports only the standard library.
"""

from __future__ import annotations

import argparse
import math
import os
from collections.abc import Callable

__all__ = ["cores", "positive_int", "nonnegative_int", "positive_float", "nonnegative_float", "fraction",
           "int_range", "seed"]


def cores() -> int:
    """Logical cores this process may run on (its CPU affinity), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None


def _float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r}: must be a finite number")
    return value


def int_range(low: int, high: int | None = None) -> Callable[[str], int]:
    """A whole number in ``low..high`` (no upper bound if ``high`` is None)."""
    def parse(text: str) -> int:
        value = _int(text)
        if value < low or (high is not None and value > high):
            bound = f">= {low}" if high is None else f"{low}..{high}"
            raise argparse.ArgumentTypeError(f"{value}: must be {bound}")
        return value

    parse.__name__ = f"whole number {low}..{'' if high is None else high}"
    return parse


positive_int = int_range(1)
nonnegative_int = int_range(0)
#: numpy's and torch's seeds: 0 .. 2**32 - 1
seed = int_range(0, 2**32 - 1)


def positive_float(text: str) -> float:
    """A finite number > 0."""
    value = _float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text}: must be > 0")
    return value


def nonnegative_float(text: str) -> float:
    """A finite number >= 0."""
    value = _float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text}: must be >= 0")
    return value


def fraction(text: str) -> float:
    """A number in [0, 1)."""
    value = _float(text)
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"{text}: must be in [0, 1)")
    return value
