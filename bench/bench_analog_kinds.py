"""The SPICE circuit of every neuron kind and reset mode of issue 10: verdict, budget and ngspice cost.

    nice -n 19 .venv/bin/python bench/bench_analog_kinds.py [--neurons 32] [--steps 60] [--workers 2]

For each case a random core of two groups × ``--neurons`` (seeded; the base is LIF with zero and subtract
reset, a shared ternary T at 30 % density), N(0, 1) inputs for ``--steps`` steps, open loop (one deck per
group), the default ideal-form design: LIF, IF (β = 1), per-neuron τ and θ, each new reset mode, dense
weights, CubaLIF with current_delay 0 and 1, and a retimed three-level feed-forward stack (closed loop on the skewed
stream). Prints one Markdown table row per case: the verdict, reference and SPICE spikes, decidable
mismatches, membranes outside the a-priori budget, smallest margin, largest budget a, largest error, worst
error / budget, undecidable events, ngspice CPU per step, and the machine. No timed asserts.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rcsnn.analog.design import Design  # noqa: E402
from rcsnn.analog.netlist import write_netlists  # noqa: E402
from rcsnn.analog.partition import partition  # noqa: E402
from rcsnn.analog.simulate import simulate_dir  # noqa: E402
from rcsnn.ir.arrays import Core, NeuronGroup, SynapseBlock  # noqa: E402
from rcsnn.ir.graph import Graph  # noqa: E402
from rcsnn.ir.passes import retime, skew_currents  # noqa: E402
from rcsnn.ir.reference import simulate_float  # noqa: E402
from rcsnn.verify.report import machine  # noqa: E402
from rcsnn.verify.spice import judge  # noqa: E402


def ternary(rng, rows, cols, density=0.3):
    return (rng.choice([-1, 1], (rows, cols)) * (rng.random((rows, cols)) < density)).astype(np.int8)


def base(n: int, seed: int = 0, levels: int = 2) -> Core:
    rng = np.random.default_rng(seed)
    resets = ("zero", "subtract", "subtract_before_decay")
    groups = tuple(NeuronGroup(f"g{k}", n, float(rng.uniform(0.3, 0.95)), float(rng.uniform(0.5, 1.5)), resets[k % 3])
                   for k in range(levels))
    matrices = {f"T{k}": ternary(rng, n, n) for k in range(levels)}
    synapses = tuple(SynapseBlock(g.name, g.name, f"T{k}", float(rng.uniform(0.1, 0.4))) for k, g in enumerate(groups))
    return Core(groups, matrices, synapses, bias=rng.normal(0, 0.2, n * levels),
                input_weight=rng.normal(0, 0.7 / np.sqrt(n / 12), (n * levels, 5))).validate()


def regroup(core: Core, **values) -> Core:
    groups = tuple(dataclasses.replace(g, **{k: v(g) if callable(v) else v for k, v in values.items()})
                   for g in core.groups)
    return dataclasses.replace(core, groups=groups).validate()


def cases(n: int):
    rng = np.random.default_rng(1)
    c = base(n)
    yield "LIF (zero, subtract)", c
    yield "IF", regroup(c, beta=1.0)
    yield "per-neuron tau and theta", regroup(c, beta=lambda g: rng.uniform(0.3, 0.95, g.size),
                                               theta=lambda g: rng.uniform(0.5, 1.5, g.size))
    yield "subtract_before_decay", regroup(c, reset="subtract_before_decay")
    yield "zero_drop_input", regroup(c, reset="zero_drop_input")
    dense = {k: rng.normal(0, 0.4, m.shape) * (rng.random(m.shape) < 0.3) for k, m in c.matrices.items()}
    yield "dense weights", dataclasses.replace(c, matrices=dense, synapses=tuple(
        dataclasses.replace(s, alpha=1.0) for s in c.synapses)).validate()
    for d, resets in ((0, ("zero_drop_input", "subtract_before_decay")), (1, ("zero", "subtract"))):
        yield f"CubaLIF, current_delay {d} ({', '.join(resets)})", regroup(
            c, beta_syn=lambda g: rng.uniform(0.4, 0.9, g.size), current_delay=d,
            reset=lambda g, r=resets: r[int(g.name[1:])])
    stack = base(n, seed=2, levels=3)
    ff = (SynapseBlock("g0", "g1", "F0", 0.3, delay=0), SynapseBlock("g1", "g2", "F1", 0.3, delay=0))
    stack = dataclasses.replace(stack, matrices={**stack.matrices, "F0": ternary(rng, n, n), "F1": ternary(rng, n, n)},
                                synapses=stack.synapses + ff).validate()
    yield "retimed 3-level stack", stack


def run(name: str, core: Core, steps: int, workers: int) -> str:
    graph = Graph.from_arrays(core)
    x = core.input_currents(np.random.default_rng(0).normal(size=(steps, core.n_inputs)))
    mode = "open"
    if core.same_step_blocks():
        graph, mode = retime(graph), "closed"
        x = skew_currents(graph, x)
        core = graph.arrays()
    ref = simulate_float(core, x)
    with tempfile.TemporaryDirectory(prefix="rcsnn-kinds-") as tmp:
        written = partition(graph, len(core.groups)) if mode == "open" else graph
        sidecar = write_netlists(written, x, tmp, Design.scaled(), mode, ref.spikes, "bench_analog_kinds")
        got = simulate_dir(tmp, workers=workers)
    v = judge(core, ref, got, sidecar["budget"], mode)
    a = max(b["a"] for b in v.budgets)
    cpu = sum(got.deck_cpu) / len(x)
    return (f"| {name} | {mode} | {'PASS' if v.passed else 'FAIL'} | {ref.spikes.size:,} | {int(ref.spikes.sum()):,} | "
            f"{int(got.spikes.sum()):,} | {v.decidable_mismatches} | {v.violations} | {v.smallest_margin:.1e} | {a:.1e} | "
            f"{v.largest_error:.1e} | {v.worst['ratio']:.2f} | {len(v.undecidable)} | {cpu:.3f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--neurons", type=int, default=32)
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--only", help="run the cases whose name contains this")
    args = parser.parse_args()
    m = machine()
    print(f"machine: {m['cpu']}, {m['cores']} cores; 2 groups x {args.neurons} neurons (stack: 3), {args.steps} steps")
    print("| case | loop | verdict | events | reference spikes | SPICE spikes | decidable mismatches | membranes outside "
          "budget | smallest margin V | largest budget a V | largest error V | worst error / budget | undecidable | "
          "ngspice CPU s/step |")
    print("|" + " --- |" * 14)
    for name, core in cases(args.neurons):
        if args.only is None or args.only in name:
            print(run(name, core, args.steps, args.workers), flush=True)


if __name__ == "__main__":
    main()
