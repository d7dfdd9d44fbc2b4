"""Energy of the ideal-form circuit from ngspice's own source currents.

Every source that delivers power is saved and its power integrated over ngspice's own time points (the deck is
run without ``interp``, so the rawfile holds every accepted step and the trapezoidal sum is the simulator's):

* line drivers ``E<name> <out> 0 …`` (spike lines ``Ee<j>``/``Ei<j>``, input lines ``Ex<i>``, CubaLIF buffers
  ``Es<i>``): p = −V(out)·I(E), I the branch current into the + node;
* each cell's gated current copier ``Bsum 0 mem I=i(Vsum)·V(win)`` (ports ``sum mem rst rwin win``):
  p = i(Vsum)·V(win)·V(mem), the power it puts into the membrane capacitor (dissipated in R_L and the reset
  conductance, or stored).

Energy per step is the integral over each clock period; per synaptic operation (SOP: a spike of neuron j at
step t reaching each of j's synapse resistors at step t + 1) the spike lines' energy over the SOPs. The ideal
form's sources are ideal: they have no bias current and no conversion loss, so these figures are the energy the
resistors and capacitors themselves take, a lower bound for a built circuit (op-amp and comparator bias, clock
and DAC power come on top); and its spike lines hold their level for the whole step while the copier uses the
current in the synaptic window only, which a window-gated line (the op-amp form) would not draw.
"""

from __future__ import annotations

import json
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from ..errors import RcsnnError
from .design import SIDECAR
from .ngspice import run_subprocess

__all__ = ["KINDS", "energy_deck", "deck_energy", "netlist_energy"]

#: Energy components by source: spike lines, input (and bias) lines, CubaLIF buffers, membrane copiers.
KINDS = ("spike_lines", "input_lines", "buffers", "membranes")
_DRIVER = re.compile(r"^(E(\S+)) (\S+) 0 ", re.M)
_CELL = re.compile(r"^(X\S+) \S+ (\S+) \S+ \S+ (\S+) rcsnn_(?:neuron|integrator)_ideal\b", re.M)


def _kind(name: str) -> str:
    return {"e": "spike_lines", "i": "spike_lines", "x": "input_lines", "s": "buffers"}[name[0]]


def energy_deck(text: str) -> tuple[str, list[tuple[str, str, tuple[str, ...]]]]:
    """The deck without ``interp`` and saving every power source's vectors, and the sources as
    ``(kind, sign-free product description, vectors)``: a driver's ``(v(out), i(E))``, a copier's
    ``(i(v.x.vsum), v(win), v(mem))``."""
    if re.search(r"rcsnn_(?:neuron|integrator)_opamp", text):
        raise RcsnnError("energy: measured for the ideal form only (its sources are the whole power path); "
                         "write the decks with --form ideal")
    sources = [(_kind(m.group(2)), "driver", (f"v({m.group(3)})", f"i({m.group(1).lower()})"))
               for m in _DRIVER.finditer(text)]
    sources += [("membranes", "copier", (f"i(v.{m.group(1).lower()}.vsum)", f"v({m.group(3)})", f"v({m.group(2)})"))
                for m in _CELL.finditer(text)]
    saves = sorted({v for _, _, vectors in sources for v in vectors})
    lines = [".save " + " ".join(saves[k:k + 8]) for k in range(0, len(saves), 8)]
    text = re.sub(r"^\.options interp ?(.*)$", lambda m: f".options {m.group(1)}".rstrip(), text, count=1, flags=re.M)
    text = re.sub(r"^(\.tran .*)$", lambda m: "\n".join(lines) + "\n" + m.group(1), text, count=1, flags=re.M)
    return text, sources


def deck_energy(deck: Path, step: float, steps: int, timeout: float | None = None) -> dict[str, np.ndarray]:
    """Energy (J) per clock period of each :data:`KINDS` component of one deck, ``(steps,)`` each."""
    text, sources = energy_deck(deck.read_text())
    waves = run_subprocess(text, deck.stem, deck.parent, timeout=timeout)
    t, vec = waves.time, waves.vectors
    edges = np.arange(steps + 1) * step
    out = {k: np.zeros(steps) for k in KINDS}
    for kind, how, names in sources:
        missing = [n for n in names if n not in vec]
        if missing:
            raise RcsnnError(f"{deck.name}: ngspice saved no vector {missing[0]}")
        power = -vec[names[0]] * vec[names[1]] if how == "driver" else vec[names[0]] * vec[names[1]] * vec[names[2]]
        cumulative = np.concatenate([[0.0], np.cumsum(0.5 * (power[1:] + power[:-1]) * np.diff(t))])
        out[kind] += np.diff(np.interp(edges, t, cumulative))
    return out


def netlist_energy(directory: str | Path, workers: int = 1, timeout: float | None = None) -> dict[str, np.ndarray]:
    """Energy per step of every component, summed over the decks of a netlist directory (open-loop blocks drive
    each resistor from exactly one deck, so the sum is the whole circuit's)."""
    directory = Path(directory)
    sidecar = json.loads((directory / SIDECAR).read_text())
    step, steps = sidecar["circuit"]["design"]["step"], sidecar["steps"]
    decks = [directory / d["netlist"] for d in sidecar["decks"]]
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        parts = list(pool.map(lambda d: deck_energy(d, step, steps, timeout), decks))
    return {k: sum(p[k] for p in parts) for k in KINDS}
