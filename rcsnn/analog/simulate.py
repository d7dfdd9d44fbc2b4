"""Simulate a netlist directory written by :func:`~rcsnn.analog.netlist.write_netlists`.

Decks run in parallel (``workers`` processes); each returns its neurons' membranes at the clock
edges (``v[k]`` at ``k·Δt``) and comparator levels mid-step (``s[k]`` at ``(k+½)·Δt``),
assembled into one ``(steps, N)`` raster.
"""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import RcsnnError
from .design import Design
from .netlist import SIDECAR, tran_line
from .ngspice import RUNNERS, Waveforms

__all__ = ["LEVEL_TOLERANCE", "SpiceRun", "read_sidecar", "simulate_dir"]

#: A comparator output mid-step further than this from 0 V or 1 V is not a clean spike level.
LEVEL_TOLERANCE = 1e-3


@dataclass(frozen=True)
class SpiceRun:
    """Raster ``(steps, N)`` int8, membranes ``(steps, N)`` V, and cost of the run."""

    spikes: np.ndarray
    membranes: np.ndarray
    seconds: float  # wall time of all decks, parallel
    deck_seconds: tuple[float, ...]
    deck_cpu: tuple[float, ...]  # CPU seconds per deck: the cost on an otherwise idle machine
    peak_kib: int  # largest resident set of one ngspice process (0: in-process runner)


def read_sidecar(directory: str | Path) -> dict:
    path = Path(directory) / SIDECAR
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise RcsnnError(f"{path}: cannot read the netlist sidecar ({exc}); write it with `rcsnn netlist`") from None


def _extract(waves: Waveforms, deck: dict, steps: int, where: str) -> tuple[np.ndarray, np.ndarray]:
    """(spikes, membranes) of the deck's neurons, ``(steps, stop - start)``."""
    neurons = range(deck["start"], deck["stop"])
    try:
        levels = np.stack([waves.vectors[f"v(c{i})"] for i in neurons], axis=1)[3:2 * steps + 2:2]
        membranes = np.stack([waves.vectors[f"v(mem{i})"] for i in neurons], axis=1)[2:2 * steps + 1:2]
    except KeyError as exc:
        raise RcsnnError(f"{where}: vector {exc} missing from the ngspice output") from None
    spikes = np.rint(levels)
    bad = np.abs(levels - spikes) > LEVEL_TOLERANCE
    if bad.any() or not np.isin(spikes, (0, 1)).all():
        t, i = np.argwhere(bad | ~np.isin(spikes, (0, 1)))[0]
        raise RcsnnError(f"{where}: comparator of neuron {deck['start'] + i} is at {levels[t, i]:.6g} V "
                         f"mid-step {t + 1}, not 0 or 1")
    return spikes.astype(np.int8), membranes


def simulate_dir(directory: str | Path, steps: int | None = None, runner: str = "subprocess", workers: int = 1,
                 timeout: float | None = None) -> SpiceRun:
    """Run every deck of ``directory`` for ``steps`` (default: all the stimulus has)."""
    directory = Path(directory)
    sidecar = read_sidecar(directory)
    steps = sidecar["steps"] if steps is None else steps
    if not 1 <= steps <= sidecar["steps"]:
        raise RcsnnError(f"--steps {steps}: the netlists in {directory} have stimulus for 1..{sidecar['steps']} steps")
    if runner not in RUNNERS:
        raise RcsnnError(f"--runner {runner!r}: not one of {tuple(RUNNERS)}")
    design = Design(**sidecar["circuit"]["design"])
    run = RUNNERS[runner]

    def one(deck: dict):
        path = directory / deck["netlist"]
        try:
            text = path.read_text()
        except OSError as exc:
            raise RcsnnError(f"{path}: cannot read ({exc.strerror})") from None
        waves = run(text, path.stem, directory, 2 * steps + 2, tran_line(design, steps, deck["max_step"]), timeout)
        return waves, _extract(waves, deck, steps, str(path))

    start = time.perf_counter()
    pool_size = 1 if runner == "pyspice" else max(1, workers)
    decks = sidecar["decks"]
    # Longest decks first (cost ~ elements / time step), so parallel workers finish together.
    order = sorted(range(len(decks)), key=lambda k: -(decks[k]["resistors"] + 10 * (decks[k]["stop"] - decks[k]["start"]))
                   / decks[k]["max_step"])
    with ThreadPoolExecutor(pool_size) as pool:
        done = dict(zip(order, pool.map(one, [decks[k] for k in order])))
    results = [done[k] for k in range(len(decks))]
    seconds = time.perf_counter() - start
    spikes = np.concatenate([r[1][0] for r in results], axis=1)
    membranes = np.concatenate([r[1][1] for r in results], axis=1)
    if spikes.shape != (steps, sidecar["neurons"]):
        raise RcsnnError(f"{directory}: decks cover {spikes.shape[1]} neurons, the sidecar says {sidecar['neurons']}")
    return SpiceRun(spikes, membranes, seconds, tuple(r[0].seconds for r in results),
                    tuple(r[0].cpu_seconds for r in results), max(r[0].peak_kib for r in results))
