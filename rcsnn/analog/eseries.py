"""Preferred part values: the IEC 60063 E-series and multiples of a unit resistor, and the rule that snaps to them.

A series ``En`` has ``n`` values per decade, about 10^(k/n) rounded (E24: two significant digits, with the
standard's historical deviations, e.g. 2.7 where 10^(10/24) = 2.61; E96 and E192: three, E192's 9.20 where
10^(185/192) = 9.19). E12 is every second E24 value, E96 every second E192 value. A value snaps to the
nearest member of any decade *in ratio* (the smallest |ln(r/v)|, so 9.6 in E24 goes to 10, the next
decade's first value, not to 9.1); a tie goes to the smaller value.

``unit:R`` is an integrated chip's way: a resistor is ``n`` unit resistors R in series (value n·R) or in
parallel (R/n), n ≥ 1, whichever multiple or fraction is nearest in ratio.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np

from ..errors import RcsnnError

__all__ = ["E24", "E192", "SERIES", "CAPACITOR_SERIES", "Snapping", "parse_snap"]

#: IEC 60063 E24, one decade [1, 10) in hundredths (100 = 1.00).
E24 = (100, 110, 120, 130, 150, 160, 180, 200, 220, 240, 270, 300, 330, 360, 390, 430, 470, 510, 560, 620, 680, 750,
       820, 910)
#: IEC 60063 E192, one decade [1, 10) in hundredths: round(100·10^(k/192)) except 920 (k = 185).
E192 = tuple(920 if k == 185 else round(100 * 10 ** (k / 192)) for k in range(192))
#: The decade tables by name (hundredths).
SERIES = {"E12": E24[::2], "E24": E24, "E96": E192[::2], "E192": E192}
#: The series capacitors snap to: E12, the values C0G/NP0 ceramic capacitors are stocked in across the whole
#: range (the precision series E96/E192 are resistor series; few capacitors are made in them).
CAPACITOR_SERIES = "E12"


def _decimal(hundredths: int, exponent: int) -> float:
    """hundredths·10^(exponent − 2) as the double nearest to that decimal (4.7 kΩ prints as 4700.0, 0.47 as 0.47)."""
    e = exponent - 2
    return hundredths * 10.0 ** e if e >= 0 else hundredths / 10.0 ** -e


def _nearest(value: float, table: tuple[int, ...]) -> float:
    """The member of ``table`` (one decade in hundredths, any power of ten) nearest to ``value`` in ratio."""
    if not (math.isfinite(value) and value > 0):
        raise RcsnnError(f"--snap: a part value of {value!r} has no nearest preferred value (must be finite and > 0)")
    decade = math.floor(math.log10(value))
    candidates = [_decimal(m, d) for d in (decade - 1, decade, decade + 1) for m in table]
    return min(candidates, key=lambda v: (abs(math.log(value / v)), v))


@dataclass(frozen=True)
class Snapping:
    """A snapping rule: ``series`` (``E24``, ``E96``, ``E192``) or ``unit`` with ``unit_ohms`` (Ω).

    Resistors snap to the series or to n·R / R/n; capacitors to :data:`CAPACITOR_SERIES` (E-series rules) or
    are kept as one unit capacitor each (``unit``: the chip's capacitors are its unit).
    """

    series: str
    unit_ohms: float | None = None

    @property
    def rule(self) -> str:
        """The rule as ``--snap`` spells it."""
        return self.series if self.unit_ohms is None else f"unit:{self.unit_ohms:g}"

    def resistor(self, ohms: float) -> float:
        """The part value (Ω) a resistor of ``ohms`` becomes."""
        if self.unit_ohms is None:
            return _nearest(ohms, SERIES[self.series])
        count = self.units(ohms)
        return self.unit_ohms * count if count > 0 else self.unit_ohms / -count

    def units(self, ohms: float) -> int:
        """``unit`` rule: the unit resistors of a resistor of ``ohms``, +n in series or −n in parallel (n ≥ 1)."""
        if self.unit_ohms is None:
            raise RcsnnError(f"--snap {self.rule}: unit counts need a unit:R rule")
        if not (math.isfinite(ohms) and ohms > 0):
            raise RcsnnError(f"--snap {self.rule}: a resistor of {ohms!r} ohm cannot be built of units")
        ratio = ohms / self.unit_ohms
        if ratio >= 1:
            lo = math.floor(ratio)
            return min((lo, lo + 1), key=lambda n: (abs(math.log(ratio / n)), n))
        lo = math.floor(1 / ratio)
        return -min((lo, lo + 1), key=lambda n: (abs(math.log(ratio * n)), n))

    def capacitor(self, farads: float) -> float:
        """The part value (F) a capacitor of ``farads`` becomes."""
        return farads if self.unit_ohms is not None else _nearest(farads, SERIES[CAPACITOR_SERIES])

    def resistors(self, ohms: np.ndarray) -> np.ndarray:
        """:meth:`resistor` of every entry (one look-up per distinct value)."""
        ohms = np.asarray(ohms, dtype=np.float64)
        values, inverse = np.unique(ohms, return_inverse=True)
        return np.array([self.resistor(v) for v in values])[inverse].reshape(ohms.shape)


def parse_snap(text: str) -> Snapping:
    """``E24``, ``E96``, ``E192`` or ``unit:R`` (R in Ω, e.g. ``unit:10e3``) as a :class:`Snapping`; else a one-line
    error naming the value."""
    if text in ("E24", "E96", "E192"):
        return Snapping(text)
    match = re.fullmatch(r"unit:(.+)", text)
    if match:
        try:
            ohms = float(match.group(1))
        except ValueError:
            ohms = math.nan
        if math.isfinite(ohms) and ohms > 0:
            return Snapping("unit", ohms)
    raise RcsnnError(f"--snap {text!r}: expected E24, E96, E192 or unit:R with R > 0 in ohms (e.g. unit:10e3)")
