"""Simulate a netlist directory written by :func:`~rcsnn.analog.netlist.write_netlists`.

Decks run in parallel (``workers`` processes); each returns its neurons' membranes at the clock
edges (``v[k]`` at ``k·Δt``, read back in membrane units: volts / S, ``Design.volts_per_unit``) and
comparator levels mid-step (``s[k]`` at ``(k+½)·Δt``), assembled into one ``(steps, N)`` raster.
"""

from __future__ import annotations

import dataclasses
import re
import threading
import time
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import tools
from ..errors import RcsnnError
from ..files import check_manifest, field, read_json
from ..ir.reference import raster_dtype
from .design import SIDECAR, Design, tran_line
from .ngspice import RUNNERS, Waveforms

__all__ = ["LEVEL_TOLERANCE", "SpiceRun", "read_sidecar", "count_limits", "simulate_dir"]

#: A comparator output mid-step further than this from 0 V or 1 V is not a clean spike level.
LEVEL_TOLERANCE = 1e-3


@dataclass(frozen=True)
class SpiceRun:
    """Raster ``(steps, N)`` int8 (int32 spike counts where a group has ``count_levels``), membranes
    ``(steps, N)`` in membrane units (the node volts / S; at the default S = 1 V per unit, volts), and cost of the run."""

    spikes: np.ndarray
    membranes: np.ndarray
    seconds: float  # wall time of all decks, parallel
    deck_seconds: tuple[float, ...]
    deck_cpu: tuple[float, ...]  # CPU seconds per deck: the cost on an otherwise idle machine
    peak_kib: int  # largest resident set of one ngspice process (0: in-process runner)
    retries: tuple[str, ...] = ()  # ngspice failures after which the identical deck was run once more, and passed


_FILE_NAME = re.compile(r"[A-Za-z0-9_.-]+")


def read_sidecar(directory: str | Path) -> dict:
    """The sidecar ``core.json`` of a netlist directory, its keys checked (one line naming the key otherwise)."""
    path = Path(directory) / SIDECAR
    sidecar = read_json(path, "netlist sidecar", "write it with `rcsnn netlist`")
    where = str(path)
    field(sidecar, "steps", "int", where, minimum=1)
    neurons = field(sidecar, "neurons", "int", where, minimum=1)
    design = field(field(sidecar, "circuit", "dict", where), "design", "dict", where, label="circuit.design")
    known = {f.name for f in dataclasses.fields(Design)}
    for key in design:
        if key not in known:
            raise RcsnnError(f"{where}: key 'circuit.design.{key}' is not a design field of this rcsnn")
        field(design, key, "str" if key in ("form", "method", "opamp") else "number", where, label=f"circuit.design.{key}")
    for k, group in enumerate(field(sidecar, "groups", "list", where)):
        for key in ("start", "size"):
            field(group, key, "int", f"{where}: groups[{k}]", minimum=0)
        field(group, "name", "str", f"{where}: groups[{k}]")
    decks = field(sidecar, "decks", "list", where)
    if not decks:
        raise RcsnnError(f"{where}: key 'decks' is empty")
    for k, deck in enumerate(decks):
        at = f"{where}: decks[{k}]"
        for name in [field(deck, "netlist", "str", at), *field(deck, "stimulus", "list", at)]:
            if not isinstance(name, str) or _FILE_NAME.fullmatch(name) is None or name.startswith("."):
                raise RcsnnError(f"{at}: {name!r} is not a file name of the directory")
        start = field(deck, "start", "int", at, minimum=0)
        field(deck, "stop", "int", at, minimum=start + 1)
        if field(deck, "max_step", "number", at) <= 0:
            raise RcsnnError(f"{at}: key 'max_step' must be > 0")
        field(deck, "resistors", "int", at, minimum=0)
    if sum(d["stop"] - d["start"] for d in decks) != neurons or max(d["stop"] for d in decks) > neurons:
        raise RcsnnError(f"{where}: the decks' neuron ranges do not cover the {neurons} neurons")
    return sidecar


def count_limits(sidecar: dict) -> np.ndarray:
    """Largest level of each neuron's comparator output ``(N,)``: 1, or its group's ``count_levels`` K_eff."""
    top = np.ones(sidecar["neurons"], dtype=np.int64)
    for k, group in enumerate(sidecar["groups"]):
        if "count_levels" in group:
            top[group["start"]:group["start"] + group["size"]] = field(
                group, "count_levels", "int", f"{SIDECAR}: groups[{k}]", minimum=2)
    return top


def _extract(waves: Waveforms, deck: dict, steps: int, where: str, top: np.ndarray,
             scale: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """(spikes, membranes) of the deck's neurons, ``(steps, stop - start)``; ``top`` (N,): the largest level
    of each neuron (1: binary spikes; else a count); membranes in units: volts / ``scale`` (S)."""
    neurons = range(deck["start"], deck["stop"])
    try:
        levels = np.stack([waves.vectors[f"v(c{i})"] for i in neurons], axis=1)[3:2 * steps + 2:2]
        membranes = np.stack([waves.vectors[f"v(mem{i})"] for i in neurons], axis=1)[2:2 * steps + 1:2]
    except KeyError as exc:
        raise RcsnnError(f"{where}: vector {exc} missing from the ngspice output") from None
    spikes = np.rint(levels)
    top = top[deck["start"]:deck["stop"]]
    bad = (np.abs(levels - spikes) > LEVEL_TOLERANCE) | (spikes < 0) | (spikes > top)
    if bad.any():
        t, i = np.argwhere(bad)[0]
        allowed = "0 or 1" if top[i] == 1 else f"a count 0..{top[i]}"
        raise RcsnnError(f"{where}: comparator of neuron {deck['start'] + i} is at {levels[t, i]:.6g} V "
                         f"mid-step {t + 1}, not {allowed}")
    return spikes.astype(np.int32), membranes / scale


def simulate_dir(directory: str | Path, steps: int | None = None, runner: str = "subprocess", workers: int = 1,
                 timeout: float | None = None, trust_edits: bool = False) -> SpiceRun:
    """Run every deck of ``directory`` for ``steps`` (default: all the stimulus has).

    The directory is code (ngspice runs each deck's ``.control`` block): its files must have the
    SHA-256 its sidecar records, unless ``trust_edits`` (hand-edited decks; the files must still exist).
    An error or Ctrl-C stops every running ngspice at once.
    """
    directory = Path(directory)
    sidecar = read_sidecar(directory)
    check_manifest(directory, sidecar.get("files"), str(directory / SIDECAR), trust_edits=trust_edits,
                   rewrite=f"rcsnn netlist CORE -o {directory}")
    steps = sidecar["steps"] if steps is None else steps
    if not 1 <= steps <= sidecar["steps"]:
        raise RcsnnError(f"--steps {steps}: the netlists in {directory} have stimulus for 1..{sidecar['steps']} steps")
    if runner not in RUNNERS:
        raise RcsnnError(f"--runner {runner!r}: not one of {tuple(RUNNERS)}")
    design = Design(**sidecar["circuit"]["design"]).check()
    run = RUNNERS[runner]
    top = count_limits(sidecar)
    stop = threading.Event()
    retried: list[str] = []

    def one(deck: dict):
        path = directory / deck["netlist"]
        try:
            text = path.read_text()
        except (OSError, UnicodeDecodeError) as exc:
            raise RcsnnError(f"{path}: cannot read ({getattr(exc, 'strerror', None) or exc})") from None
        for attempt in (1, 2):  # a simulator failure (not a timeout) is retried once, identically, and recorded
            try:
                with tools.cancellable(stop):
                    waves = run(text, path.stem, directory, 2 * steps + 2, tran_line(design, steps, deck["max_step"]),
                                timeout)
                break
            except RcsnnError as exc:
                message = str(exc)
                if attempt == 2 or stop.is_set() or ": ngspice: " not in message \
                        or any(word in message for word in ("timed out", "stopped", "not found")):
                    raise
                retried.append(message)
        return waves, _extract(waves, deck, steps, str(path), top, design.volts_per_unit)

    start = time.perf_counter()
    pool_size = 1 if runner == "pyspice" else max(1, workers)
    decks = sidecar["decks"]
    # Longest decks first (cost ~ elements / time step), so parallel workers finish together.
    order = sorted(range(len(decks)), key=lambda k: -(decks[k]["resistors"] + 10 * (decks[k]["stop"] - decks[k]["start"]))
                   / decks[k]["max_step"])
    pool = ThreadPoolExecutor(pool_size)
    try:
        futures = [pool.submit(one, decks[k]) for k in order]
        wait(futures, return_when=FIRST_EXCEPTION)  # the first failure is reported at once, not after slower decks
        failed = next((f for f in futures if f.done() and f.exception() is not None), None)
        if failed is not None:
            failed.result()  # raises its exception
        done = {k: f.result() for k, f in zip(order, futures)}
    except BaseException:  # a failed deck or Ctrl-C: no ngspice keeps running, no queued deck starts
        stop.set()
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    results = [done[k] for k in range(len(decks))]
    seconds = time.perf_counter() - start
    spikes = np.concatenate([r[1][0] for r in results], axis=1).astype(raster_dtype((top > 1).any()))
    membranes = np.concatenate([r[1][1] for r in results], axis=1)
    if spikes.shape != (steps, sidecar["neurons"]):
        raise RcsnnError(f"{directory}: decks cover {spikes.shape[1]} neurons, the sidecar says {sidecar['neurons']}")
    return SpiceRun(spikes, membranes, seconds, tuple(r[0].seconds for r in results),
                    tuple(r[0].cpu_seconds for r in results), max(r[0].peak_kib for r in results), tuple(retried))
