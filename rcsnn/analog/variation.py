"""Component variation of written decks: seeded resistor and capacitor tolerances, comparator offsets.

Every element's draw is a deterministic function of the seed, the element's name and what is
varied: z = N(0, 1) by Box–Muller from two SplitMix64 outputs of the 64-bit BLAKE2b hash of
``"<name>/<what>"`` and the seed, so it does not depend on the deck the element is in (an
open-loop block and the closed-loop deck of one core get the same part), on the order of the lines
or on the machine. :func:`vary_deck` writes the drawn values into a deck's text (for ngspice);
:func:`vary_circuit` applies the same factors to a parsed :class:`~rcsnn.analog.fastmodel.Circuit`
(the fast model's path, the same numbers without re-reading the text).

* every resistor ``R…`` (synapses, input, subtract-reset self-synapse): R·(1 + r_tol·z);
* every neuron cell ``Xn…``: its leak resistor ``rl``·(1 + r_tol·z) and membrane capacitor ``c``·(1 + c_tol·z)
  (independent draws);
* every comparator ``Xc…``: threshold + offset·z (V), through a threshold source of its own;
* every amplifier ``Xa…`` of an ``--opamp`` deck: its input offset ``vos`` + amp_offset·z (V).

Tolerances are standard deviations (relative; the offset in volts). The reset switch, line drivers
and timing are not varied. A datasheet states a resistor's tolerance as a band instead (a 1 % part lies
within ±1 %): with ``Tolerance.band`` the resistors and capacitors are drawn uniform in ±tolerance,
``1 + tol·(2u − 1)`` with u the second of the two uniforms the normal draw is made from (σ = tol/√3,
the widest spread of any symmetric unimodal distribution within the band).

A built circuit may also be *calibrated*: each neuron's input resistor ``Rx<i>`` and leak (its time
constant τ = rl·c) measured once after assembly and trimmed in steps of ``trim_step`` (relative), as
analog neuromorphic chips calibrate every neuron (BrainScaleS-2 sets each neuron's leak and input
parameters from a per-neuron calibration) and discrete builds trim with a resistor ladder. A trimmed
part keeps only the residual of its drawn error ``e`` on the trim grid,

    e' = e − step · round(e / step),  |e'| ≤ step / 2   (σ of e' ≈ step / √12 for σ ≫ step)

and the leak's resistor takes the factor that brings τ to its residual, ``rl' = rl · (1 + e'_τ) / c_factor``.
Synapse resistors (tens of thousands) are not trimmed. The trim range a run needs is the largest
correction, about 5σ (±5 % at σ = 1 %: 100 steps of 0.1 %, a 7-bit trim).
"""

from __future__ import annotations

import functools
import hashlib
import re
from dataclasses import dataclass, replace

import numpy as np

from ..errors import RcsnnError
from .design import INPUT_RESISTOR
from .fastmodel import Circuit

__all__ = ["MAX_TOLERANCE", "TRIMMABLE", "Tolerance", "normals", "uniforms", "vary_circuit", "vary_deck"]

#: Largest relative tolerance (σ): beyond it a 5σ draw would make a part's value ≤ 0.
MAX_TOLERANCE = 0.15
#: The parts a calibration trims: each neuron's input resistor and leak time constant.
TRIMMABLE = ("input", "leak")
_CELL_PARAM = re.compile(r"\b(c|rl)=(\S+)")
_VOS = re.compile(r"\bvos=(\S+)")


@dataclass(frozen=True)
class Tolerance:
    """Standard deviations of the variation: ``r`` and ``c`` relative, ``offset`` (comparators) and ``amp_offset``
    (amplifiers) in volts; the parts ``trim`` (of :data:`TRIMMABLE`) calibrated to ``trim_step`` (relative). With
    ``band``, ``r`` and ``c`` are a datasheet's tolerance instead: every part within ±r (±c), uniform (σ = r/√3)."""

    r: float = 0.0
    c: float = 0.0
    offset: float = 0.0
    amp_offset: float = 0.0
    trim: tuple[str, ...] = ()
    trim_step: float = 0.001
    band: bool = False

    def check(self) -> Tolerance:
        for name, value in (("--r-tol", self.r), ("--c-tol", self.c)):
            if not 0 <= value <= MAX_TOLERANCE:
                raise RcsnnError(f"{name} {value:g}: must be between 0 and {MAX_TOLERANCE:g} (a standard deviation)")
        for name, value in (("--offset", self.offset), ("--amp-offset", self.amp_offset)):
            if not 0 <= value < 1:
                raise RcsnnError(f"{name} {value:g}: must be between 0 and 1 V")
        if set(self.trim) - set(TRIMMABLE) or len(set(self.trim)) != len(self.trim):
            raise RcsnnError(f"--trim {' '.join(self.trim)}: give each of {', '.join(TRIMMABLE)} at most once")
        if self.trim and not 0 < self.trim_step <= MAX_TOLERANCE:
            raise RcsnnError(f"--trim-step {self.trim_step:g}: must be in (0, {MAX_TOLERANCE:g}] (relative)")
        return self

    @property
    def varies(self) -> bool:
        """Whether anything is drawn (else the nominal circuit, whatever the calibration)."""
        return bool(self.r or self.c or self.offset or self.amp_offset)

    @property
    def label(self) -> str:
        amp = f", amp offset {1e3 * self.amp_offset:g} mV" if self.amp_offset else ""
        trim = f", {' and '.join(self.trim)} trimmed to {100 * self.trim_step:g}%" if self.trim else ""
        band = "±" if self.band else ""
        return f"r {band}{100 * self.r:g}%, c {band}{100 * self.c:g}%, offset {1e3 * self.offset:g} mV{amp}{trim}"

    def trimmed(self, factors: np.ndarray) -> np.ndarray:
        """``factors`` (1 + e) of trimmed parts after the calibration: 1 + e', e' the residual of e on the trim
        grid."""
        e = factors - 1
        return 1 + (e - self.trim_step * np.round(e / self.trim_step))


def _mix(z: np.ndarray) -> np.ndarray:
    """SplitMix64's finaliser on uint64 arrays (wrapping arithmetic)."""
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


@functools.lru_cache(maxsize=256)
def _hashes(names: tuple, what: str) -> np.ndarray:
    """64-bit BLAKE2b hash of ``"<name>/<what>"`` per name (cached: a deck's names are hashed once)."""
    return np.frombuffer(b"".join(hashlib.blake2b(f"{n}/{what}".encode(), digest_size=8).digest() for n in names),
                         dtype="<u8").copy()


def _uniform_pairs(seed: int, names: tuple, what: str) -> tuple[np.ndarray, np.ndarray]:
    """Two uniform draws per element name, in (0, 1) and [0, 1): two SplitMix64 outputs of the name's hash and
    the seed."""
    h = _hashes(tuple(names), what)
    with np.errstate(over="ignore"):
        s = _mix(np.array([seed], dtype=np.uint64) + np.uint64(0x9E3779B97F4A7C15))
        a = _mix(h ^ s)
        b = _mix(a ^ np.uint64(0x632BE59BD9B4E019))
    return ((a >> np.uint64(11)).astype(np.float64) * 2.0**-53 + 2.0**-54,
            (b >> np.uint64(11)).astype(np.float64) * 2.0**-53)


def normals(seed: int, names: tuple, what: str) -> np.ndarray:
    """Standard normal draws, one per element name, each a function of ``seed``, the name and ``what`` alone:
    :func:`_uniform_pairs` through Box–Muller."""
    u1, u2 = _uniform_pairs(seed, names, what)
    return np.sqrt(-2 * np.log(u1)) * np.cos(2 * np.pi * u2)


def uniforms(seed: int, names: tuple, what: str) -> np.ndarray:
    """Draws uniform in [−1, 1), one per element name, a function of ``seed``, the name and ``what`` alone."""
    return 2 * _uniform_pairs(seed, names, what)[1] - 1


def _factors(names: tuple, what: str, tol: float, seed: int, band: bool = False) -> np.ndarray:
    """1 + tol·z per name: z standard normal, or uniform in [−1, 1) for a tolerance ``band``."""
    if not tol:
        return np.ones(len(names))
    factors = 1 + tol * (uniforms if band else normals)(seed, names, what)
    if not (factors > 0).all():
        raise RcsnnError(f"variation: a drawn factor of {what} is <= 0 (tolerance {tol:g} too large)")
    return factors


def _resistor_factors(names: tuple, tol: Tolerance, seed: int) -> np.ndarray:
    """The resistors' factors; the input resistors ``Rx<i>`` trimmed when the calibration trims them."""
    factors = _factors(names, "r", tol.r, seed, tol.band)
    if "input" in tol.trim:
        inputs = np.array([bool(INPUT_RESISTOR.fullmatch(name)) for name in names], dtype=bool)
        factors[inputs] = tol.trimmed(factors[inputs])
    return factors


def _leak_factors(cells: tuple, tol: Tolerance, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The cells' leak-resistor and capacitor factors; a trimmed leak's resistor brings τ = rl·c to its residual."""
    rl, c = _factors(cells, "rl", tol.r, seed, tol.band), _factors(cells, "c", tol.c, seed, tol.band)
    return (tol.trimmed(rl * c) / c if "leak" in tol.trim else rl), c


def vary_circuit(circuit: Circuit, tol: Tolerance, seed: int) -> Circuit:
    """``circuit`` with its element values drawn as :func:`vary_deck` draws them in the deck's text (the same
    numbers: a value times the same factor)."""
    cells, amps = circuit.cells, circuit.amplifiers
    if tol.amp_offset and amps is None:
        raise RcsnnError(f"{circuit.name}: --amp-offset: the deck has no amplifier macromodels (write it with --opamp)")
    if tol.amp_offset:
        amps = replace(amps, offset=amps.offset + tol.amp_offset * normals(seed, amps.names, "vos"))
    rl, c = _leak_factors(cells, tol, seed)
    return replace(circuit, resistance=circuit.resistance * _resistor_factors(circuit.resistors, tol, seed),
                   rl=circuit.rl * rl, c=circuit.c * c,
                   threshold=circuit.threshold + (tol.offset * normals(seed, circuit.comparators, "offset")
                                                  if tol.offset else 0.0), amplifiers=amps)


def _plain(value: str, where: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise RcsnnError(f"{where}: value {value!r} is not a plain number") from None


def _scaled(value: str, factor: float, where: str) -> str:
    varied = _plain(value, where) * factor
    if not varied > 0:
        raise RcsnnError(f"{where}: varied value {varied:g} is not > 0")
    return repr(float(varied))


def _shifted(value: str, shift: float, where: str) -> str:
    return repr(float(_plain(value, where) + shift))


def _vary_cell(line: str, scale: dict[str, float], where: str) -> str:
    return _CELL_PARAM.sub(lambda m: f"{m.group(1)}={_scaled(m.group(2), scale[m.group(1)], where)}", line)


def vary_deck(text: str, tol: Tolerance, seed: int) -> str:
    """The deck ``text`` with its element values drawn (see the module docstring); unchanged lines stay as they are."""
    lines = text.split("\n")
    dc = {f[1]: f[4] for f in (line.split() for line in lines) if len(f) == 5 and f[0][:1] == "V" and f[3] == "DC"}
    names = {"R": [], "Xn": [], "Xc": [], "Xa": []}
    for line in lines:
        name = line.split(None, 1)[0] if line.strip() else ""
        kind = "R" if name[:1] == "R" else name[:2]
        if kind in names:
            names[kind].append(name)
    draws = {(kind, what): dict(zip(names[kind], normals(seed, tuple(names[kind]), what)))
             for kind, what, on in (("Xc", "offset", tol.offset), ("Xa", "vos", tol.amp_offset)) if on}
    z = lambda kind, what, name: draws[kind, what][name] if (kind, what) in draws else 0.0  # noqa: E731
    r_factor = dict(zip(names["R"], _resistor_factors(tuple(names["R"]), tol, seed)))
    leak = dict(zip(names["Xn"], zip(*_leak_factors(tuple(names["Xn"]), tol, seed))))
    out = []
    for number, line in enumerate(lines, start=1):
        fields = line.split()
        name = fields[0] if fields else ""
        where = f"line {number} ({name})"
        if name[:1] == "R" and len(fields) == 4 and tol.r:
            fields[3] = _scaled(fields[3], r_factor[name], where)
            line = " ".join(fields)
        elif name.startswith("Xn") and (tol.r or tol.c):
            line = _vary_cell(line, dict(zip(("rl", "c"), leak[name])), where)
        elif name.startswith("Xc") and tol.offset:
            if len(fields) < 6 or fields[2] not in dc:
                raise RcsnnError(f"{where}: a comparator 'Xc<i> mem th clk out cell [hys=H]' with a DC threshold source "
                                 "expected")
            node = f"th_{name}"
            value = float(dc[fields[2]]) + tol.offset * z("Xc", "offset", name)
            out.append(f"V{node} {node} 0 DC {float(value)!r}")
            fields[2] = node
            line = " ".join(fields)
        elif name.startswith("Xa") and tol.amp_offset:
            vos = _VOS.search(line)
            if vos is None:
                raise RcsnnError(f"{where}: an amplifier 'Xa<i> ... rcsnn_opamp_macro ... vos=V' expected")
            value = _shifted(vos.group(1), tol.amp_offset * z("Xa", "vos", name), where)
            line = line[:vos.start(1)] + value + line[vos.end(1):]
        out.append(line)
    return "\n".join(out)
