"""Bill of materials of a deck: the parts a discrete build buys and the units an integrated one lays out.

The parts are read from the deck text itself (the closed-loop deck of the whole core, one of each part), so the
bill is what the netlist holds: resistors (``R…`` lines and each cell's leak ``rl=``) grouped by value,
membrane capacitors (``c=``, one per cell), comparators with their D flip-flops (``Xc…``), threshold references
(``Vth…``), line drivers (``E…``: linear VCVS in the ideal form, ``X… rcsnn_line`` in the op-amp form), the cells'
amplifiers (op-amp form: one integrator op-amp per cell — with ``--opamp``, the feedback cell ``rcsnn_feedback`` and
its amplifier instance ``Xa<i>``, counted by part; ideal form: an ideal gated current copier, no part one can buy) and
reset switches (cells with ``gon`` > 0). A ``unit:R`` snapping also counts the unit resistors of an
integrated build (n in series or in parallel per resistor, :class:`~rcsnn.analog.eseries.Snapping`). A build
calibrated as ``rcsnn montecarlo --trim`` models it adds its trims: one per input resistor ``Rx<i>`` (``input``) and
one per leaky cell (``leak``).
"""

from __future__ import annotations

import csv
import io
import re
from collections import Counter
from dataclasses import dataclass, field

from .design import INPUT_RESISTOR
from .eseries import Snapping

__all__ = ["Bom", "count_parts", "si", "markdown", "csv_text"]

_RESISTOR = re.compile(r"^(R\S+) \S+ \S+ (\S+)$", re.M)
_CELL = re.compile(r"^X\S+ .*(rcsnn_(?:neuron|integrator)_(ideal|opamp)|rcsnn_feedback(?:_if)?)\b.*$", re.M)
#: An amplifier instance of ``--opamp`` decks: ``Xa<i> 0 sum<i> mem<i> vdd vss PART ...``.
_AMPLIFIER = re.compile(r"^Xa\d+ \S+ \S+ \S+ vdd vss (\S+)", re.M)
_PARAM = {k: re.compile(rf"\b{k}=(\S+)") for k in ("rl", "c", "gon")}


@dataclass
class Bom:
    """Parts of one deck.

    Attributes:
        resistors: part value (Ω) → count.
        capacitors: part value (F) → count.
        parts: other parts by kind → count (comparators, flip-flops, references, drivers, amplifiers, switches).
        units: ``unit:R`` snapping: unit resistors in all, and the unit (Ω); else None.
    """

    resistors: Counter = field(default_factory=Counter)
    capacitors: Counter = field(default_factory=Counter)
    parts: dict = field(default_factory=dict)
    units: dict | None = None

    def record(self) -> dict:
        """The bill as JSON-able data (values sorted)."""
        return {"resistors": [{"ohms": v, "count": n} for v, n in sorted(self.resistors.items())],
                "capacitors": [{"farads": v, "count": n} for v, n in sorted(self.capacitors.items())],
                "parts": self.parts, "resistor_count": sum(self.resistors.values()),
                "distinct_resistor_values": len(self.resistors), "integrated": self.units}


def count_parts(deck: str, snap: Snapping | None = None, part: str = "", trim: tuple[str, ...] = ()) -> Bom:
    """The :class:`Bom` of one deck's text (``snap``: the rule it was written with, for a ``unit:R`` unit count;
    ``part``: the name of its ``--opamp`` amplifier, else the subcircuit its instances name; ``trim``: the parts a
    calibration trims, of ``input`` and ``leak``)."""
    bom = Bom()
    resistors = _RESISTOR.findall(deck)
    bom.resistors.update(float(v) for _, v in resistors)
    inputs = sum(bool(INPUT_RESISTOR.fullmatch(name)) for name, _ in resistors)
    forms = Counter()
    for line in (m.group(0) for m in _CELL.finditer(deck)):
        params = {k: p.search(line) for k, p in _PARAM.items()}
        if params["rl"]:
            bom.resistors[float(params["rl"].group(1))] += 1
            forms["leak"] += 1
        bom.capacitors[float(params["c"].group(1))] += 1
        forms[_CELL.match(line).group(2) or "feedback"] += 1
        forms["switch"] += float(params["gon"].group(1)) > 0
    comparators = len(re.findall(r"^Xc\S* .* rcsnn_comparator$", deck, re.M))
    opamp = re.findall(r"^X\S+ .* rcsnn_line\b", deck, re.M)
    amplifiers = Counter(_AMPLIFIER.findall(deck))
    if part and amplifiers:
        amplifiers = Counter({part: sum(amplifiers.values())})
    bom.parts = {
        "comparators (clocked, with a D flip-flop)": comparators,
        "threshold references (DC sources)": len(re.findall(r"^Vthn?\d+ ", deck, re.M)),
        "op-amps (integrators)": forms["opamp"],
        **{f"op-amps (integrators): {name}": n for name, n in sorted(amplifiers.items())},
        "ideal gated current copiers (ideal form: no buyable part)": forms["ideal"],
        "line drivers (ideal VCVS)": len(re.findall(r"^E\S+ ", deck, re.M)),
        "line drivers (op-amp, gated by the window)": len(opamp),
        "reset switches": forms["switch"],
        "trims of the input (calibration, one per input resistor)": inputs if "input" in trim else 0,
        "trims of the leak (calibration, one per leaky cell)": forms["leak"] if "leak" in trim else 0,
    }
    if snap is not None and snap.unit_ohms is not None:
        units = sum(abs(snap.units(v)) * n for v, n in bom.resistors.items())
        bom.units = {"unit_ohms": snap.unit_ohms, "unit_resistors": units,
                     "unit_capacitors": sum(bom.capacitors.values()), "comparators": comparators}
    return bom


def si(value: float, unit: str, digits: int = 6) -> str:
    """``value`` with an SI prefix, e.g. 4.7e3 Ω → ``4.7 kΩ`` (up to ``digits`` significant digits)."""
    for factor, prefix in ((1e9, "G"), (1e6, "M"), (1e3, "k"), (1.0, ""), (1e-3, "m"), (1e-6, "µ"), (1e-9, "n"),
                           (1e-12, "p"), (1e-15, "f")):
        if abs(value) >= factor:
            return f"{value / factor:.{digits}g} {prefix}{unit}"
    return f"{value:.{digits}g} {unit}"


def markdown(bom: Bom, title: str, shown: int = 40) -> str:
    """The bill as Markdown tables (the ``shown`` most used resistor values; the CSV lists them all)."""
    rows = sorted(bom.resistors.items(), key=lambda kv: (-kv[1], kv[0]))
    out = [f"# Bill of materials: {title}", "", "| part | value | count |", "| --- | --- | --- |"]
    out += [f"| resistor | {si(v, 'Ω')} | {n:,} |" for v, n in rows[:shown]]
    if len(rows) > shown:
        out.append(f"| resistor | {len(rows) - shown:,} more values | {sum(n for _, n in rows[shown:]):,} |")
    out += [f"| capacitor | {si(v, 'F')} | {n:,} |" for v, n in sorted(bom.capacitors.items())]
    out += [f"| {kind} | | {n:,} |" for kind, n in bom.parts.items() if n]
    out += ["", f"{sum(bom.resistors.values()):,} resistors of {len(bom.resistors):,} distinct values."]
    if bom.units:
        u = bom.units
        out.append(f"Integrated build: {u['unit_resistors']:,} unit resistors of {si(u['unit_ohms'], 'Ω')}, "
                   f"{u['unit_capacitors']:,} unit capacitors, {u['comparators']:,} comparators.")
    return "\n".join(out) + "\n"


def csv_text(bom: Bom) -> str:
    """The bill as CSV: ``part,value,unit,count``, every resistor value."""
    buffer = io.StringIO()
    w = csv.writer(buffer, lineterminator="\n")
    w.writerow(["part", "value", "unit", "count"])
    w.writerows(["resistor", repr(v), "ohm", n] for v, n in sorted(bom.resistors.items()))
    w.writerows(["capacitor", repr(v), "F", n] for v, n in sorted(bom.capacitors.items()))
    w.writerows([kind, "", "", n] for kind, n in bom.parts.items())
    return buffer.getvalue()
