"""Monte Carlo cost: wall time vs dask workers and vs core size; the fast circuit model vs ngspice per run.

    nice -n 19 .venv/bin/python bench/bench_montecarlo.py [--steps 20] [--runs 4] [--judge-blocks 1]

All in one run, on the same machine (printed first), figures as ratios measured side by side:

* **workers**: the same sweep (the example core, or a synthetic 3 × 512 one; ``--runs`` runs at 1 %
  resistor tolerance, each with ``--judge-blocks`` blocks in ngspice) on a dask LocalCluster of 1 and
  of 2 worker processes: wall time of each and the 2-worker speed-up;
* **core size**: synthetic cores with the example's structure (bench_analog.synthetic_core: 3 groups,
  τ = 1, 4, 16 steps) of 129, 513 and 1,536 neurons, the same sweep on 2 workers: wall time, per run,
  and against the smallest;
* **fast model vs ngspice**: one run of the largest core at 1 % with *every* open-loop block in ngspice
  (serial): the summed ngspice CPU time of the blocks against the fast model's time for the whole run
  (every block, open and closed loop; the first run of a process reads the nominal decks, the next ones
  only vary their values), and per block from the deck's text; every block must pass the judge (equal
  agreement: the same decisions within the a-priori budget);
* **the same with real amplifiers**: the example core as an ``--opamp OPA381`` circuit (S = 0.02 V per unit, rails
  ±2.5 V, a 100 µs clock, where the part stays linear), every open-loop block in ngspice against the fast model's
  second-order solution of the macromodel.

The netlists' writing and the budget's calibration (once per core) are timed apart from the sweeps.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_analog import synthetic_core  # noqa: E402

from rcsnn.analog.design import Design  # noqa: E402
from rcsnn.analog.variation import Tolerance  # noqa: E402
from rcsnn.frontends.load import load_core  # noqa: E402
from rcsnn.ir.graph import Graph  # noqa: E402
from rcsnn.ir.stimulus import Stimulus  # noqa: E402
from rcsnn.verify.montecarlo import Task, execute, plan, prepare  # noqa: E402
from rcsnn.verify.report import machine  # noqa: E402
from rcsnn.verify.spice import default_blocks  # noqa: E402
from rcsnn.verify.sweep import run_tasks  # noqa: E402

EXAMPLE = ROOT / "examples" / "sapu_3x512.rcsnn"


#: The op-amp circuit of the last part: OPA381 at a 100 µs clock (linear there), the example's membranes within its swing.
OPAMP = Design.scaled(1e-4, form="opamp", opamp="OPA381", volts_per_unit=0.02, rail_low=-2.5, rail_high=2.5)


def bundle_of(graph: Graph, steps: int, directory: Path, design: Design | None = None):
    start = time.perf_counter()
    n = graph.arrays().n_neurons
    bundle = prepare(graph, Stimulus.sample(graph, steps), design or Design(), directory, default_blocks(n, 1), 3600.0,
                     {"seed": 0})
    return bundle, time.perf_counter() - start


def sweep(bundle, runs: int, judge: int, scheduler: str, workers: int, directory: Path) -> tuple[float, dict]:
    tasks = plan([Tolerance(r=0.01)], runs, 0, judge, bundle.blocks)
    start = time.perf_counter()
    outcome = run_tasks(bundle, tasks, directory, scheduler, workers)
    return time.perf_counter() - start, outcome.results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--runs", type=int, default=4)
    parser.add_argument("--judge-blocks", type=int, default=1)
    parser.add_argument("--only", choices=("workers", "size", "ngspice", "opamp"), default=None, help="run one part")
    args = parser.parse_args()
    print(f"machine: {machine()}; {args.steps} steps, {args.runs} runs at r 1 %, "
          f"{args.judge_blocks} judged block(s) per run")
    with tempfile.TemporaryDirectory(prefix="bench-montecarlo-") as tmp:
        tmp = Path(tmp)
        graph = load_core(EXAMPLE) if EXAMPLE.exists() else Graph.from_arrays(synthetic_core(512))
        bundle, prep = bundle_of(graph, args.steps, tmp / "example")
        print(f"\n[workers] {EXAMPLE.name if EXAMPLE.exists() else 'synthetic 3 x 512'} "
              f"({bundle.reference_spikes.shape[1]} neurons, {len(bundle.blocks)} blocks; netlists + budget {prep:.1f} s)")
        walls = {}
        for workers in (1, 2) if args.only in (None, "workers") else ():
            walls[workers], _ = sweep(bundle, args.runs, args.judge_blocks, "local", workers, tmp / f"w{workers}")
            print(f"  {workers} worker(s): wall {walls[workers]:.1f} s, {walls[workers] / args.runs:.2f} s per run")
        if walls:
            print(f"  speed-up 1 -> 2 workers: {walls[1] / walls[2]:.2f}x")

        print("\n[core size] synthetic cores, 2 workers")
        sizes = {}
        for n in (43, 171, 512) if args.only in (None, "size") else ():
            core_bundle, prep = bundle_of(Graph.from_arrays(synthetic_core(n)), args.steps, tmp / f"n{n}")
            wall, _ = sweep(core_bundle, args.runs, args.judge_blocks, "local", 2, tmp / f"n{n}")
            neurons = core_bundle.reference_spikes.shape[1]
            sizes[neurons] = wall
            print(f"  {neurons:5d} neurons ({len(core_bundle.blocks)} blocks): wall {wall:.1f} s, "
                  f"{wall / args.runs:.2f} s per run, {wall / sizes[min(sizes)]:.2f}x the smallest "
                  f"(netlists + budget {prep:.1f} s)")
        if args.only in (None, "ngspice"):
            big = core_bundle if sizes else bundle_of(Graph.from_arrays(synthetic_core(512)), args.steps, tmp / "n512")[0]
            print("\n[fast model vs ngspice] one run at r 1 %, every block of the largest core in ngspice (serial)")
            versus(big, tmp / "all")
        if args.only in (None, "opamp"):
            amplified, prep = bundle_of(graph, args.steps, tmp / "opamp", OPAMP)
            print(f"\n[fast model vs ngspice, OPA381] the same for the example as an op-amp circuit (S 0.02 V, rails "
                  f"+-2.5 V, clock 100 us; netlists + budget {prep:.1f} s)")
            versus(amplified, tmp / "opamp-all")


def versus(big, directory: Path) -> None:
    """One run at 1 % of ``big`` with every open-loop block judged in ngspice, serial: the times side by side."""
    _, results = sweep(big, 1, len(big.blocks), "serial", 1, directory)
    judged = [r for r in results.values() if "block" in r]
    run = next(r for r in results.values() if "block" not in r)
    cpu = sum(r["ngspice_cpu"] for r in judged)
    fast_blocks = sum(r["fast_cpu"] for r in judged)
    print(f"  judge: {sum(r['passed'] for r in judged)} / {len(judged)} blocks PASS, worst error/budget "
          f"{max(r['worst_ratio'] for r in judged):.3g}, spike mismatches {sum(r['spike_mismatches'] for r in judged)}")
    print(f"  ngspice CPU for the run's blocks {cpu:.1f} s; fast model CPU on the same blocks (from their text) "
          f"{fast_blocks:.3f} s ({cpu / fast_blocks:.0f}x)")
    print(f"  fast model CPU for the whole run (open-loop blocks + closed loop + bits/char), first in its process "
          f"(reads the nominal decks) {run['cpu']:.3f} s (wall {run['seconds']:.3f} s): {cpu / run['cpu']:.0f}x less "
          "than ngspice's open loop alone")
    warm = [execute(big, Task("run", Tolerance(r=0.01), seed)) for seed in (1, 2, 3)]
    per_run = min(r["cpu"] for r in warm)
    print(f"  the next runs in the process (decks read, values varied): CPU {per_run:.3f} s per run (min of 3; wall "
          f"{min(r['seconds'] for r in warm):.3f} s): {cpu / per_run:.0f}x less than ngspice's open loop alone")


if __name__ == "__main__":
    main()
