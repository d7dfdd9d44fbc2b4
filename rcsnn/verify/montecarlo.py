"""Monte Carlo of the analog core: seeded component variation, judged by the fast circuit model and ngspice.

A sweep is a list of tolerance *points* (:class:`~rcsnn.analog.variation.Tolerance`) × ``runs`` seeds
(seed ``seed + r`` for run r at every point, so the points share their draws, scaled). Each (point,
seed) is two kinds of task (:class:`Task`):

* ``run``: the varied open-loop blocks (each replaying the float reference's raster) in the fast
  model (:mod:`rcsnn.analog.fastmodel`): event agreement (events equal / events, steps × neurons)
  and the membrane error |v − v_ref| / θ (median, 99th percentile, max); and the varied closed-loop
  deck in the fast model on the same text: its bits per character (readout of its own spikes on the
  next character, ``steps − 1`` predictions) and the first step its raster leaves the reference's;
* ``judge``: ``judge_blocks`` sampled blocks of the same varied circuit (chosen by the seed) in ngspice
  against the fast model: every membrane within the a-priori budget of the netlists' ``core.json``
  (:mod:`rcsnn.analog.budget`, evaluated at the fast model's membranes), every spike equal unless
  within that budget of threshold. ngspice stays the judge; the fast model gives the statistics.

Tasks are pure functions of the :class:`Bundle` (the nominal decks' text, stimulus files, reference)
and the :class:`Task`: a sweep's table is the same run serially or on any number of workers
(:mod:`rcsnn.verify.sweep` runs them, on dask.distributed).
"""

from __future__ import annotations

import hashlib
import json
import re
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ..analog.budget import allowance
from ..analog.design import Design
from ..analog.fastmodel import Circuit, assemble, parse_deck, read_circuit, run_deck
from ..analog.netlist import core_digest, library_text, write_netlists
from ..analog.ngspice import run_subprocess
from ..analog.partition import partition
from ..analog.variation import Tolerance, vary_circuit, vary_deck
from ..errors import RcsnnError
from ..files import atomic_directory
from ..ir.arrays import Core
from ..ir.graph import Graph
from ..ir.reference import simulate_float
from ..ir.stimulus import Stimulus
from ..model.readout import bits_per_char
from .bpc import text_targets

__all__ = ["SETTINGS", "NETLISTS", "Bundle", "Task", "prepare", "plan", "execute", "TIMINGS", "summarize", "table_markdown",
           "write_plots"]

#: The file that marks a Monte Carlo directory and records the settings its persisted parts belong to.
SETTINGS = "sweep.json"
#: The nominal netlists (open-loop blocks with their a-priori budget, and the closed-loop deck) under the directory.
NETLISTS = "netlists"


@dataclass(frozen=True)
class Bundle:
    """What every task reads (sent to each worker once).

    Attributes:
        decks: open-loop decks ``{file name: text}`` with their neuron ranges in ``blocks`` [(name, start, stop)].
        closed: the closed-loop deck's text ("" for none).
        files: stimulus files of both ``{file name: text}``.
        reference_spikes, reference_membranes: the float64 reference (steps, N) the open loop replays.
        tokens: the text's token indices (steps,) for bits per character, or None.
        budget: the ``budget`` entry of the open-loop netlists' ``core.json``.
        timeout: seconds per ngspice deck.
        volts_per_unit: S of the decks (``--volts-per-unit``): their membranes are S volts per unit of the reference
            and the budget; a comparator offset (V) is physical, so it weighs 1/S units.
    """

    core: Core
    decks: dict
    blocks: tuple
    closed: str
    files: dict
    steps: int
    reference_spikes: np.ndarray
    reference_membranes: np.ndarray
    tokens: np.ndarray | None
    budget: dict
    timeout: float
    volts_per_unit: float = 1.0


@dataclass(frozen=True)
class Task:
    """One unit of work: ``kind`` ``run`` or ``judge`` (of open-loop ``block``) of tolerance ``point`` at ``seed``."""

    kind: str
    point: Tolerance
    seed: int
    block: str = ""

    @property
    def key(self) -> str:
        """A file-name-safe identity (the persisted part's name)."""
        p = self.point
        name = (f"{self.kind}_r{p.r:.6g}_c{p.c:.6g}_o{p.offset:.6g}" + (f"_a{p.amp_offset:.6g}" if p.amp_offset else "")
                + (f"_t{p.trim_step:.6g}-{'-'.join(p.trim)}" if p.trim else "") + ("_band" if p.band else "")
                + f"_s{self.seed}" + (f"_{self.block}" if self.block else ""))
        return re.sub(r"[^A-Za-z0-9_.-]", "-", name)


def plan(points: list[Tolerance], runs: int, seed: int, judge_blocks: int, blocks: tuple) -> list[Task]:
    """Every task of a sweep, in a fixed order; the judged blocks of a seed are drawn by ``numpy`` from it."""
    tasks = []
    for point in points:
        for r in range(runs):
            s = seed + r
            tasks.append(Task("run", point, s))
            chosen = np.random.default_rng(s).choice(len(blocks), min(judge_blocks, len(blocks)), replace=False)
            tasks += [Task("judge", point, s, blocks[int(k)][0]) for k in sorted(chosen)]
    return tasks


_CIRCUITS: dict[tuple, Circuit] = {}


def _circuit(bundle: Bundle, name: str, text: str) -> Circuit:
    """The nominal deck ``name`` read once per process (keyed by its text's SHA-256 and the steps)."""
    key = (name, hashlib.sha256(text.encode()).hexdigest(), bundle.steps)
    if key not in _CIRCUITS:
        circuit = read_circuit(text, bundle.files, bundle.steps, name)
        if circuit.neurons.min() < 0 or circuit.neurons.max() >= bundle.reference_spikes.shape[1]:
            raise RcsnnError(f"{name}: membrane nodes outside the core's {bundle.reference_spikes.shape[1]} neurons")
        if len(_CIRCUITS) >= 64:
            _CIRCUITS.clear()
        _CIRCUITS[key] = circuit
    return _CIRCUITS[key]


def _fast(bundle: Bundle, name: str, text: str, task: Task):
    """(global neuron indices, :class:`~rcsnn.analog.fastmodel.FastRun`) of a deck varied as ``task`` says."""
    circuit = vary_circuit(_circuit(bundle, name, text), task.point, task.seed)
    return circuit.neurons, run_deck(assemble(circuit), bundle.steps)


def _run(bundle: Bundle, task: Task) -> dict:
    start, cpu = time.perf_counter(), time.process_time()
    spikes = np.zeros_like(bundle.reference_spikes)
    membranes = np.zeros_like(bundle.reference_membranes)
    for name, _, _ in bundle.blocks:
        index, got = _fast(bundle, name, bundle.decks[name], task)
        spikes[:, index], membranes[:, index] = got.spikes, got.membranes / bundle.volts_per_unit
    theta = bundle.core.per_neuron("theta")
    error = np.abs(membranes - bundle.reference_membranes) / theta
    equal = int((spikes == bundle.reference_spikes).sum())
    out = {"events": int(spikes.size), "equal": equal, "agreement": equal / spikes.size,
           "reference_spikes": int(bundle.reference_spikes.sum()), "spikes": int(spikes.sum()),
           "error_median": float(np.median(error)), "error_p99": float(np.quantile(error, 0.99)),
           "error_max": float(error.max())}
    if bundle.closed:
        index, got = _fast(bundle, "core.cir", bundle.closed, task)
        closed = np.zeros_like(spikes)
        closed[:, index] = got.spikes
        differ = np.flatnonzero((closed != bundle.reference_spikes).any(axis=1))
        out["closed_first_divergence"] = int(differ[0]) if differ.size else None
        if bundle.tokens is not None:
            out["bpc"] = bits_per_char(bundle.core, closed[:-1], bundle.tokens[1:])
    out["seconds"], out["cpu"] = time.perf_counter() - start, time.process_time() - cpu
    return out


def _judge(bundle: Bundle, task: Task) -> dict:
    text = vary_deck(bundle.decks[task.block], task.point, task.seed)
    start, cpu = time.perf_counter(), time.process_time()
    deck = parse_deck(text, bundle.files, bundle.steps, task.block)
    fast = run_deck(deck, bundle.steps)
    fast_seconds, fast_cpu = time.perf_counter() - start, time.process_time() - cpu
    stem = task.block.removesuffix(".cir")
    with tempfile.TemporaryDirectory(prefix="rcsnn-montecarlo-") as tmp:
        work = Path(tmp)
        for name in re.findall(r"^\.include (\S+)$", text, flags=re.M):  # rcsnn_cells.lib (and rcsnn_opamps.lib)
            (work / name).write_text(library_text(name))
        for name in re.findall(r'file="([^"/]+)"', text):
            (work / name).write_text(bundle.files[name])
        waves = run_subprocess(text, stem, work, 2 * bundle.steps + 2, None, bundle.timeout)
    try:
        v = np.stack([waves.vectors[f"v(mem{i})"] for i in deck.neurons], axis=1)[2:2 * bundle.steps + 1:2]
        level = np.stack([waves.vectors[f"v(c{i})"] for i in deck.neurons], axis=1)[3:2 * bundle.steps + 2:2]
    except KeyError as exc:
        raise RcsnnError(f"{task.block}: vector {exc} missing from the ngspice output") from None
    volts = bundle.volts_per_unit  # the budget is in units; the decks are S volts per unit
    full = np.zeros_like(bundle.reference_membranes)
    full[:, deck.neurons] = fast.membranes / volts
    allow = allowance(bundle.core, bundle.budget, full)[:, deck.neurons]
    error = np.abs(v - fast.membranes) / volts
    ratio = error / allow
    differ = np.rint(level).astype(np.int8) != fast.spikes
    margin = np.abs(fast.compared - deck.threshold) / volts
    return {"block": task.block, "neurons": int(deck.neurons.size), "violations": int((ratio > 1).sum()),
            "worst_ratio": float(ratio.max()), "largest_error": float(error.max()),
            "spike_mismatches": int(differ.sum()), "decidable_mismatches": int((differ & (margin > allow)).sum()),
            "passed": bool((ratio <= 1).all() and not (differ & (margin > allow)).any()),
            "ngspice_cpu": waves.cpu_seconds, "fast_seconds": fast_seconds, "fast_cpu": fast_cpu, "seconds": waves.seconds}


def execute(bundle: Bundle, task: Task) -> dict:
    """The result of one task (a JSON-able dict; ``seconds`` and the other timings vary between runs)."""
    if task.kind == "run":
        return _run(bundle, task)
    if task.kind == "judge":
        return _judge(bundle, task)
    raise RcsnnError(f"Monte Carlo task kind {task.kind!r}: not run or judge")


#: Result fields that are times: reported, never part of the table (which must be the same on any machine).
TIMINGS = ("seconds", "cpu", "fast_seconds", "fast_cpu", "ngspice_cpu")


def _stats(values: list[float]) -> dict:
    a = np.asarray(values, dtype=np.float64)
    return {"mean": float(a.mean()), "min": float(a.min()), "max": float(a.max()),
            "sd": float(a.std(ddof=1)) if a.size > 1 else 0.0}


def summarize(tasks: list[Task], results: dict[str, dict]) -> list[dict]:
    """One row per tolerance point: runs, agreement, membrane errors, bits/char, the ngspice judge's tally."""
    rows = []
    for point in dict.fromkeys(t.point for t in tasks):
        runs = [results[t.key] for t in tasks if t.point == point and t.kind == "run"]
        judged = [results[t.key] for t in tasks if t.point == point and t.kind == "judge"]
        row = {**asdict(point), "label": point.label, "runs": len(runs),
               "agreement": _stats([r["agreement"] for r in runs]),
               "events": sum(r["events"] for r in runs), "equal": sum(r["equal"] for r in runs),
               "error_median": float(np.median([r["error_median"] for r in runs])),
               "error_p99": float(max(r["error_p99"] for r in runs)), "error_max": float(max(r["error_max"] for r in runs)),
               "judged_blocks": len(judged), "judge_passed": sum(j["passed"] for j in judged),
               "judge_worst_ratio": max((j["worst_ratio"] for j in judged), default=None),
               "judge_spike_mismatches": sum(j["spike_mismatches"] for j in judged)}
        if runs and "bpc" in runs[0]:
            row["bpc"] = _stats([r["bpc"] for r in runs])
        rows.append(row)
    return rows


def _texts(directory: Path, sidecar: dict) -> tuple[dict, dict]:
    decks = {d["netlist"]: (directory / d["netlist"]).read_text() for d in sidecar["decks"]}
    files = {name: (directory / name).read_text() for d in sidecar["decks"] for name in d["stimulus"]}
    return decks, files


def prepare(graph: Graph, stimulus: Stimulus, design: Design, directory: Path, blocks: int, timeout: float,
            settings: dict) -> Bundle:
    """Write the nominal netlists under ``directory/netlists`` (open loop in ``blocks`` blocks with the a-priori
    budget; closed loop), record ``settings`` (with the core's and stimulus' SHA-256) in ``sweep.json`` — a
    directory holding parts of a sweep of other settings is refused — and return the sweep's :class:`Bundle`."""
    core = graph.arrays()
    settings = {**settings, "core_sha256": core_digest(core), "stimulus_sha256": stimulus.sha256,
                "steps": stimulus.steps, "design": asdict(design), "blocks": blocks}
    record = Path(directory) / SETTINGS
    if record.exists():
        old = json.loads(record.read_text())
        if old != json.loads(json.dumps(settings)):
            changed = sorted(k for k in set(old) | set(settings) if old.get(k) != json.loads(json.dumps(settings)).get(k))
            raise RcsnnError(f"{directory}: holds a Monte Carlo sweep of other settings ({', '.join(changed)} differ); "
                             "give another -o, or remove it")
    ref = simulate_float(graph, stimulus.currents)
    parted = partition(graph, blocks)
    with atomic_directory(Path(directory) / NETLISTS, owned=("open/core.json",)) as tmp:
        opened = write_netlists(parted, stimulus.currents, tmp / "open", design, "open", ref.spikes, stimulus.description)
        closed = write_netlists(graph, stimulus.currents, tmp / "closed", design, "closed", None, stimulus.description,
                                budget=False)
    Path(directory).mkdir(parents=True, exist_ok=True)
    record.write_text(json.dumps(settings, indent=1, sort_keys=True) + "\n")
    root = Path(directory) / NETLISTS
    decks, files = _texts(root / "open", opened)
    closed_decks, closed_files = _texts(root / "closed", closed)
    tokens = None
    if stimulus.text is not None and core.frontend is not None and core.readout_weight is not None:
        tokens = text_targets(graph, stimulus)
    return Bundle(core, decks, tuple((d["netlist"], d["start"], d["stop"]) for d in opened["decks"]),
                  closed_decks["core.cir"], {**files, **closed_files}, stimulus.steps, ref.spikes, ref.membranes, tokens,
                  opened["budget"], timeout, design.volts_per_unit)


def _pm(stats: dict | None, scale: float = 1.0, digits: int = 4) -> str:
    if stats is None:
        return "-"
    return f"{scale * stats['mean']:.{digits}f} ± {scale * stats['sd']:.{digits}f} (min {scale * stats['min']:.{digits}f})"


def table_markdown(rows: list[dict]) -> str:
    """The sweep's table (no timings: the same on any machine and any number of workers)."""
    head = ("| tolerance (σ) | runs | event agreement % (mean ± sd, min) | events equal / events | |Δv|/θ median | "
            "p99 | max | closed-loop bits/char | ngspice judge: blocks passed | worst error / budget |")
    lines = [head, "|" + " --- |" * 10]
    for r in rows:
        worst = "-" if r["judge_worst_ratio"] is None else f"{r['judge_worst_ratio']:.3g}"
        lines.append(f"| {r['label']} | {r['runs']} | {_pm(r['agreement'], 100, 4)} | {r['equal']:,} / {r['events']:,} | "
                     f"{r['error_median']:.3g} | {r['error_p99']:.3g} | {r['error_max']:.3g} | {_pm(r.get('bpc'))} | "
                     f"{r['judge_passed']} / {r['judged_blocks']} | {worst} |")
    return "\n".join(lines) + "\n"


def write_plots(rows: list[dict], runs: dict[str, list[dict]], out: Path) -> list[Path]:
    """``agreement.png`` and ``bpc.png``: each run and the mean against the tolerance that varies (``runs``: the
    run results of each row's label)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    axis = next((k for k, unit in (("r", "%"), ("c", "%"), ("offset", "mV")) if len({r[k] for r in rows}) > 1), "r")
    scale, unit = {"r": (100, "resistor tolerance σ (%)"), "c": (100, "capacitor tolerance σ (%)"),
                   "offset": (1e3, "comparator offset σ (mV)")}[axis]
    paths = []
    for name, key, label, factor in (("agreement.png", "agreement", "open-loop event agreement (%)", 100),
                                     ("bpc.png", "bpc", "closed-loop bits per character", 1)):
        if not all(key in r for row in rows for r in runs[row["label"]]):
            continue
        fig, ax = plt.subplots(figsize=(6, 4))
        xs = [scale * row[axis] for row in rows]
        for x, row in zip(xs, rows):
            values = [factor * r[key] for r in runs[row["label"]]]
            ax.plot([x] * len(values), values, "o", color="tab:blue", alpha=0.4, markersize=4)
        ax.plot(xs, [factor * float(np.mean([r[key] for r in runs[row["label"]]])) for row in rows], "-", color="black",
                label="mean")
        ax.set_xlabel(unit)
        ax.set_ylabel(label)
        ax.legend()
        fig.tight_layout()
        fig.savefig(out / name, dpi=110)
        plt.close(fig)
        paths.append(out / name)
    return paths
