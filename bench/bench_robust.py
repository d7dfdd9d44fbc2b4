"""Ablation of the hardware-aware training terms: each one's bits/char cost and hardware gain, side by side.

Fine-tunes the example core (``rcsnn finetune``'s code: :func:`rcsnn.model.train.train` from
:func:`rcsnn.model.robust.model_from_core`) for a few steps with one term at a time — and with none, the
control, so the cost of fine-tuning itself is not charged to a term — and measures every result on the
first ``--held-out`` characters of the held-out text with both references
(:func:`rcsnn.model.train.evaluate_core`). Prints one Markdown table:

    .venv/bin/python bench/bench_robust.py [--steps 30] [--held-out 8000] [--variants none margin ...]

Columns: held-out bits/char of the float64 reference, its change from the unchanged core; the largest
|v| (θ); the fractions of (step, stream, neuron) membranes within 1e-3 θ and 1e-2 θ of threshold; the
fraction of events where the fixed-point raster differs from the float64 raster; the mean firing rate; the
hardware gain itself: the open-loop event agreement of the circuit at 1 % and 5 % resistor tolerance
(``rcsnn montecarlo CORE --r-tol 1% 5% --runs --mc-runs --steps --mc-steps --judge-blocks 0 --scheduler serial``:
the fast circuit model, mean over the runs; the ngspice judge is left to the Monte Carlo benches).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import tempfile
import time
from pathlib import Path

import torch

from rcsnn.cli import main as rcsnn
from rcsnn.cli.montecarlo import tolerance
from rcsnn.frontends.checkpoint import load_checkpoint, save_checkpoint
from rcsnn.ir.arrays import FixedFormat
from rcsnn.model.corpus import Corpus
from rcsnn.model.robust import Robustness, model_from_core
from rcsnn.model.train import TrainConfig, evaluate_core, train
from rcsnn.text import read_text

#: the control and one term at a time (examples/train_robust.sh combines the margin term and the clamp)
VARIANTS = {
    "none": Robustness(),
    "margin": Robustness(margin_penalty=20.0, margin_width=0.05),
    "range": Robustness(membrane_penalty=0.1, membrane_bound=6.0),
    "weight-noise": Robustness(weight_noise=0.03),
    "membrane-noise": Robustness(membrane_noise=0.01),
    "rate": Robustness(rate_penalty=0.5),
    "mismatch": Robustness(mismatch_penalty=30.0, mismatch_tolerance=0.02),
}


TOLERANCES = ("1%", "5%")


def agreement(graph, runs: int, steps: int) -> list[float]:
    """Mean open-loop event agreement (%) of ``graph``'s circuit per :data:`TOLERANCES` (the fast model)."""
    with tempfile.TemporaryDirectory() as tmp:
        core, out = Path(tmp) / "core.rcsnn", Path(tmp) / "mc"
        save_checkpoint(graph, core)
        code = rcsnn(["montecarlo", str(core), "--r-tol", *TOLERANCES, "--runs", str(runs), "--steps", str(steps),
                      "--judge-blocks", "0", "--scheduler", "serial", "-o", str(out)])
        if code:
            raise SystemExit(f"rcsnn montecarlo failed ({code})")
        table = json.loads((out / "results.json").read_text())["table"]
    return [100 * next(r for r in table if r["r"] == tolerance(t))["agreement"]["mean"] for t in TOLERANCES]


def row(name: str, metrics: dict, reference: float | None, mc: list[float], seconds: float) -> list[str]:
    bpc = metrics["bpc_float64"]
    near = metrics["near_threshold"]
    return [name, f"{bpc:.4f}", "—" if reference is None else f"{bpc - reference:+.4f}",
            f"{metrics['membrane_abs_max']:.1f}", f"{near['0.001']:.2e}", f"{near['0.01']:.2e}",
            f"{metrics['raster_mismatch']:.2e}", f"{sum(metrics['firing_rates']) / len(metrics['firing_rates']):.4f}",
            *(f"{a:.4f}" for a in mc), f"{seconds:.0f}"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--core", default="examples/sapu_3x512.rcsnn")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--length", type=int, default=64)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--held-out", type=int, default=8000, help="held-out characters measured")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--variants", nargs="+", choices=tuple(VARIANTS), default=list(VARIANTS))
    parser.add_argument("--mc-runs", type=int, default=2, help="Monte Carlo runs per tolerance")
    parser.add_argument("--mc-steps", type=int, default=200, help="Monte Carlo steps (held-out text)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    graph = load_checkpoint(args.core)
    corpus = Corpus.from_text(read_text(None))
    held_out = corpus.held_out[: args.held_out]
    quiet = lambda _: None  # noqa: E731
    start = time.perf_counter()
    _, base = evaluate_core(graph, held_out, quiet)
    rows = [row("unchanged core", base, None, agreement(graph, args.mc_runs, args.mc_steps),
                time.perf_counter() - start)]
    print(" | ".join(rows[-1]), flush=True)
    for name in args.variants:
        robust = VARIANTS[name]
        start = time.perf_counter()
        core = graph.arrays()
        model = model_from_core(core)
        cfg = TrainConfig(group_size=model.group_size, taus=model.taus, embed=model.embedding.embedding_dim,
                          theta=model.theta, reset=model.reset, float_steps=0, prune_steps=0,
                          ternary_steps=args.steps, batch=args.batch, length=args.length, lr=args.lr, l1=0.0,
                          robust=robust, dt=core.dt, fixed=FixedFormat(24, core.fixed.Fv, core.fixed.Fb),
                          log_every=args.steps)
        model, _ = train(cfg, dataclasses.replace(corpus, held_out=held_out), quiet, model)
        tuned, metrics = evaluate_core(model.to_graph(cfg.fixed, cfg.dt), held_out, quiet)
        terms = {k: v for k, v in dataclasses.asdict(robust).items() if v != getattr(Robustness(), k)}
        label = f"{name} {terms}" if terms else "none (control)"
        rows.append(row(label, metrics, base["bpc_float64"], agreement(tuned, args.mc_runs, args.mc_steps),
                        time.perf_counter() - start))
        print(" | ".join(rows[-1]), flush=True)
    header = ["fine-tuning", "bits/char", "Δ", "max |v| (θ)", "within 1e-3 θ", "within 1e-2 θ",
              "fixed ≠ float64", "rate", *(f"agreement at {t} (%)" for t in TOLERANCES), "s"]
    print(f"\n{args.steps} steps of {args.batch} x {args.length} characters, lr {args.lr}, from {args.core}; "
          f"first {len(held_out)} held-out characters; Monte Carlo: {args.mc_runs} runs of {args.mc_steps} steps per "
          "tolerance (fast model, open loop)\n")
    print("| " + " | ".join(header) + " |\n|" + "---|" * len(header))
    for r in rows:
        print("| " + " | ".join(r) + " |")


if __name__ == "__main__":
    main()
