"""ngspice cost of the analog core: wall time and peak memory per simulated step.

    nice -n 19 .venv/bin/python bench/bench_analog.py [--core examples/sapu_3x512.rcsnn] [--steps 20] [--workers 2]

Runs, side by side on the same stimulus (text of examples/prompt.txt for a language-model core,
else N(0,1) inputs) and the same design (ideal form, 1 µs clock):

* ``group``: one 512-neuron group of the core alone, one closed-loop deck (monolithic);
* ``monolithic``: the whole core, one closed-loop deck, one ngspice process;
* ``open loop``: the whole core in blocks driven by the reference raster, ``--workers`` processes.

Each line gives neurons, decks, measured wall time, total ngspice CPU time and per step, the wall
time the run takes on an otherwise idle machine (decks' CPU times scheduled longest-first on the
workers, as they are run), peak resident memory of one ngspice process, the verdict (mismatches,
membranes outside the a-priori budget, the largest budget ``a`` over the groups) and then every
deck's ngspice CPU seconds per step; for open loop, its speed-up over the monolithic run. The
machine (CPU model, cores) is printed first. On a machine shared with another job only the
CPU-based figures compare. ``--only group|monolithic|open`` runs one configuration.

Without ``--core`` and without the example core, a synthetic 3 × 512 core with
the example's structure (τ = 1, 4, 16 steps, shared T at 6.4 % density, zero reset, a random
character embedding) is used; ``--save-synthetic FILE`` writes it as a checkpoint for
``rcsnn verify``.
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rcsnn.analog.options import SpiceOptions  # noqa: E402
from rcsnn.ir.arrays import Core, NeuronGroup, SynapseBlock, TokenFrontend  # noqa: E402
from rcsnn.ir.graph import Graph  # noqa: E402
from rcsnn.ir.stimulus import Stimulus  # noqa: E402
from rcsnn.verify.report import Provenance, machine  # noqa: E402
from rcsnn.verify.spice import default_blocks, verify_spice  # noqa: E402


def synthetic_core(n: int = 512, taus=(1.0, 4.0, 16.0), density: float = 0.064, seed: int = 0) -> Core:
    """3 groups x n neurons sharing one random ternary T, like the trained example core, with a
    character front end (random embeddings of the characters of examples/prompt.txt)."""
    rng = np.random.default_rng(seed)
    T = (rng.choice([-1, 1], (n, n)) * (rng.random((n, n)) < density)).astype(np.int8)
    groups = tuple(NeuronGroup(f"g{k}", n, math.exp(-1 / tau), 1.0, "zero") for k, tau in enumerate(taus))
    N = n * len(taus)
    vocab = "".join(sorted(set((ROOT / "examples" / "prompt.txt").read_text())))
    return Core(groups, {"T": T}, tuple(SynapseBlock(g.name, g.name, "T", 0.3) for g in groups),
                bias=rng.normal(0, 0.1, N), input_weight=rng.normal(0, 0.3, (N, 64)),
                frontend=TokenFrontend(vocab, rng.normal(0, 1, (len(vocab), 64)))).validate()


def one_group(core: Core, name: str) -> Core:
    """The sub-core of group ``name`` with its own recurrent synapses (no cross edges)."""
    sl = core.offsets()[name]
    synapses = tuple(s for s in core.synapses if s.pre == name and s.post == name)
    return Core((core.group(name),), {s.matrix: core.matrices[s.matrix] for s in synapses}, synapses,
                core.bias[sl], core.input_weight[sl], dt=core.dt).validate()


def makespan(costs, workers: int) -> float:
    """Finish time of jobs of ``costs`` seconds on ``workers`` idle processors, longest first (as run)."""
    loads = [0.0] * workers
    for c in sorted(costs, reverse=True):
        loads[loads.index(min(loads))] += c
    return max(loads)


def run(label: str, core: Core, stimulus: Stimulus, mode: str, blocks: int, workers: int) -> dict:
    """``rcsnn verify --backend spice`` (the same code) on one configuration; its report's figures."""
    options = SpiceOptions(mode=mode, blocks=blocks, workers=workers)
    with tempfile.TemporaryDirectory(prefix="rcsnn-bench-") as tmp:
        start = time.perf_counter()
        provenance = Provenance("bench", "", stimulus.description, stimulus.sha256, stimulus.steps)
        report = verify_spice(Graph.from_arrays(core), stimulus, options, Path(tmp), provenance)
        total = time.perf_counter() - start
    f = report.figures
    steps = stimulus.steps
    idle = makespan(f["deck_cpu_seconds"], workers)
    row = {"run": label, "neurons": core.n_neurons, "decks": len(f["deck_seconds"]), "workers": workers,
           "wall_s": f["wall_seconds"], "cpu_s": sum(f["deck_cpu_seconds"]), "idle_wall_s": idle,
           "idle_s_per_step": idle / steps, "cpu_s_per_step": sum(f["deck_cpu_seconds"]) / steps,
           "peak_mib": f["peak_kib"] / 1024, "verify_s": total, "mismatches": report.comparison.mismatches,
           "violations": f["membrane_violations"], "budget": max(b["a"] for b in f["budget"]),
           "deck_cpu_s_per_step": f["deck_cpu_seconds_per_step"]}
    print(f"{label:12s} {row['neurons']:6d} {row['decks']:5d} {workers:7d} {row['wall_s']:8.1f} {row['cpu_s']:8.1f} "
          f"{row['cpu_s_per_step']:9.3f} {idle:9.1f} {row['peak_mib']:8.0f} {row['mismatches']:10d} "
          f"{row['violations']:10d} {row['budget']:9.2g}", flush=True)
    print(f"{'':12s} ngspice CPU s per step per deck: " + " ".join(f"{c:.3f}" for c in row["deck_cpu_s_per_step"]),
          flush=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--core", default=None, help="core file (default: examples/sapu_3x512.rcsnn, else synthetic)")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--save-synthetic", default=None, help="write the synthetic core as a checkpoint and exit")
    parser.add_argument("--only", choices=("group", "monolithic", "open"), default=None, help="run one configuration")
    args = parser.parse_args()
    if args.save_synthetic:
        from rcsnn.frontends.checkpoint import save_checkpoint

        save_checkpoint(Graph.from_arrays(synthetic_core()), args.save_synthetic, {"synthetic": "bench/bench_analog.py"})
        return
    from rcsnn.frontends.load import load_core

    path = Path(args.core) if args.core else ROOT / "examples" / "sapu_3x512.rcsnn"
    graph = load_core(path) if path.exists() else Graph.from_arrays(synthetic_core())
    core = graph.arrays()
    if core.frontend is not None:
        text = (ROOT / "examples" / "prompt.txt").read_text()
        stimulus = Stimulus(core.text_currents(text[:args.steps]), "examples/prompt.txt", text[:args.steps])
    else:
        x = core.input_currents(np.random.default_rng(0).standard_normal((args.steps, core.n_inputs)))
        stimulus = Stimulus(x, "N(0,1) inputs")
    source = path.name if path.exists() else "synthetic 3 x 512"
    m = machine()
    print(f"machine: {m['cpu']}, {m['cores']} cores; ngspice CPU seconds per step are the figure to compare across machines")
    print(f"core {source}: {core.n_neurons} neurons, {core.nonzeros()} synapses; "
          f"{args.steps} steps of {stimulus.description}")
    print(f"{'run':12s} {'neurons':>6s} {'decks':>5s} {'workers':>7s} {'wall/s':>8s} {'CPU/s':>8s} {'CPU/step':>9s} "
          f"{'idle/s':>9s} "
          f"{'peak MiB':>8s} {'mismatches':>10s} {'violations':>10s} {'max a/V':>9s}")
    first = core.groups[0].name
    if args.only in (None, "group"):
        sub = one_group(core, first)
        run("group " + first, sub, Stimulus(stimulus.currents[:, core.offsets()[first]], stimulus.description), "closed",
            1, 1)
    if args.only in (None, "monolithic"):
        mono = run("monolithic", core, stimulus, "closed", 1, 1)
    if args.only in (None, "open"):
        opened = run("open loop", core, stimulus, "open", default_blocks(core.n_neurons, args.workers), args.workers)
    if args.only is not None:
        return
    print(f"open loop on {args.workers} processes vs monolithic: {mono['wall_s'] / opened['wall_s']:.2f}x faster measured, "
          f"{mono['idle_wall_s'] / opened['idle_wall_s']:.2f}x on an idle machine (from CPU times)")


if __name__ == "__main__":
    main()
