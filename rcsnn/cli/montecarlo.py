"""``rcsnn montecarlo``: component variation of the analog core, in the fast circuit model, judged by ngspice."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from ..analog import options as spice_options
from ..arguments import cores, nonnegative_int, positive_float, positive_int, seed
from ..errors import RcsnnError
from ..files import atomic_file, check_output
from .common import add_core_arguments, add_stimulus_arguments, load, stimulus

__all__ = ["tolerance", "offset", "points", "register"]


def tolerance(text: str) -> float:
    """A relative tolerance: ``1%`` or ``0.01``."""
    try:
        value = float(text[:-1]) / 100 if text.endswith("%") else float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text}: not a tolerance (e.g. 1% or 0.01)") from None
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"{text}: must be in [0, 100%)")
    return value


def offset(text: str) -> float:
    """An offset σ in volts (comparators, amplifiers): ``0.001`` or ``1mV`` (:func:`~rcsnn.analog.options.volts`), < 1 V."""
    value = spice_options.volts(text)
    if not value < 1:
        raise argparse.ArgumentTypeError(f"{text}: must be in [0, 1) V")
    return value


def points(r: list[float], c: list[float], off: list[float], amp: tuple[float, ...] = (0.0,), trim: tuple[str, ...] = (),
           trim_step: float = 0.001, band: bool = False):
    """The sweep's tolerance points: the lists broadcast (each of length 1 or the longest's); every point calibrated
    alike (``trim``, in any order, ``trim_step``), its ``r`` and ``c`` standard deviations or, with ``band``, tolerance
    bands."""
    from ..analog.variation import Tolerance

    n = max(len(r), len(c), len(off), len(amp))
    for name, values in (("--r-tol", r), ("--c-tol", c), ("--offset", off), ("--amp-offset", amp)):
        if len(values) not in (1, n):
            raise RcsnnError(f"{name}: {len(values)} values; give 1 or {n} (as many as the longest of --r-tol, --c-tol, "
                             "--offset, --amp-offset)")
    pick = lambda values, k: values[0] if len(values) == 1 else values[k]  # noqa: E731
    return [Tolerance(pick(r, k), pick(c, k), pick(off, k), pick(amp, k), tuple(sorted(trim)), trim_step, band).check()
            for k in range(n)]


def _cmd_montecarlo(args) -> int:
    from ..analog.snap import snapped_arguments
    from ..analog.variation import Tolerance
    from ..verify.montecarlo import SETTINGS, TIMINGS, plan, prepare, summarize, table_markdown, write_plots
    from ..verify.spice import default_blocks
    from ..verify.sweep import run_tasks

    check_output(args.output, directory=True, owned=(SETTINGS,))
    if args.scheduler == "local" and args.workers > cores() and not args.oversubscribe:
        raise RcsnnError(f"--workers {args.workers}: more than this machine's {cores()} cores (add --oversubscribe)")
    swept = points(args.r_tol, args.c_tol, args.offset, args.amp_offset, args.trim, args.trim_step, args.band)
    loaded = load(args)
    design = spice_options.from_arguments(args).design(loaded.arrays())  # --theta-volts: S = V / θ of the core
    if design.opamp and ":" in design.opamp:
        raise RcsnnError(f"montecarlo: --opamp {design.opamp}: the fast circuit model solves the named parts' macromodel "
                         "(rcsnn_opamp_macro), not a model of your own; run it in ngspice with rcsnn verify --backend "
                         "spice --opamp")
    if any(p.amp_offset for p in swept) and not design.opamp:
        raise RcsnnError("montecarlo: --amp-offset varies the amplifiers of --opamp PART; give --opamp")
    graph = snapped_arguments(loaded, args.snap, design)
    stim = stimulus(args, graph)
    blocks = args.blocks or default_blocks(graph.arrays().n_neurons, 1)
    out = Path(args.output)
    start = time.perf_counter()
    bundle = prepare(graph, stim, design, out, blocks, args.timeout or 3600.0,
                     {"seed": args.seed, "judge_blocks": args.judge_blocks, "stimulus": stim.description,
                      "trim": sorted(args.trim), "trim_step": args.trim_step if args.trim else None})
    nominal = Tolerance()
    tasks = plan([nominal], 1, args.seed, args.judge_blocks, bundle.blocks) \
        + plan([p for p in swept if p.varies], args.runs, args.seed, args.judge_blocks, bundle.blocks)

    def progress(done: int, total: int, task, result: dict) -> None:
        what = (f"agreement {100 * result['agreement']:.4f} %" + (f", bpc {result['bpc']:.4f}" if "bpc" in result else "")
                if task.kind == "run" else
                f"{task.block}: {'PASS' if result['passed'] else 'FAIL'}, worst error/budget {result['worst_ratio']:.3g}")
        print(f"[{done}/{total}] {task.kind} {task.point.label} seed {task.seed}: {what}", file=sys.stderr, flush=True)

    outcome = run_tasks(bundle, tasks, out, args.scheduler, args.workers, progress)
    if outcome.resumed:
        print(f"resumed {len(outcome.resumed)} of {len(tasks)} task(s) from {out}/parts", file=sys.stderr)
    rows = summarize(tasks, outcome.results)
    runs = {row["label"]: [outcome.results[t.key] for t in tasks if t.kind == "run" and t.point.label == row["label"]]
            for row in rows}
    plots = write_plots(rows, runs, out)
    table = table_markdown(rows)
    timing = {kind: {k: sum(outcome.results[t.key].get(k, 0.0) for t in tasks if t.kind == kind) for k in TIMINGS}
              for kind in ("run", "judge")}
    retried = [f"{key} (worker died {n}x)" for key, n in sorted(outcome.retried.items())]
    failed = [t.key for t in tasks if t.kind == "judge" and not outcome.results[t.key]["passed"]]
    document = {"settings": json.loads((out / SETTINGS).read_text()), "table": rows,
                "tasks": {t.key: {k: v for k, v in outcome.results[t.key].items() if k not in TIMINGS} for t in tasks},
                "timing": timing, "wall_seconds": time.perf_counter() - start, "retried": retried,
                "resumed": len(outcome.resumed), "judge_failed": failed, "plots": [p.name for p in plots]}
    with atomic_file(out / "results.json") as tmp:
        tmp.write_text(json.dumps(document, indent=1, sort_keys=True) + "\n")
    notes = [f"Monte Carlo of {args.core}: {stim.description}, {stim.steps} steps, {len(bundle.blocks)} open-loop blocks, "
             f"seeds {args.seed}..{args.seed + args.runs - 1}, {args.judge_blocks} ngspice-judged block(s) per run"
             + (f", comparator hysteresis {1e3 * design.hysteresis:g} mV in every run (the nominal's too)"
                if design.hysteresis else ""), "",
             table, f"fast model {timing['run']['seconds']:.1f} s in all run tasks; ngspice CPU "
             f"{timing['judge']['ngspice_cpu']:.1f} s for {sum(t.kind == 'judge' for t in tasks)} judged block(s) "
             f"(fast model on them {timing['judge']['fast_seconds']:.2f} s)",
             "retried after a worker died: " + (", ".join(retried) if retried else "none"),
             "ngspice judge: " + (f"FAIL in {len(failed)} block(s): {', '.join(failed)}" if failed
                                  else "every judged block PASS" if args.judge_blocks
                                  else "no block judged (--judge-blocks 0: the fast model unchecked in this sweep)")]
    with atomic_file(out / "results.md") as tmp:
        tmp.write_text("\n".join(notes) + "\n")
    print("\n".join(notes))
    return 1 if failed else 0


def register(sub) -> None:
    """Add ``montecarlo`` to the ``rcsnn`` subparsers."""
    p = sub.add_parser("montecarlo", help="component variation: event agreement, membrane errors and bits/char of "
                                          "seeded runs in the fast circuit model, sampled blocks judged by ngspice")
    add_core_arguments(p)
    add_stimulus_arguments(p, currents=True, steps_help="steps (default: 200 of the held-out text)")
    p.add_argument("--runs", type=positive_int, default=20, help="seeded runs per tolerance point (default 20)")
    p.add_argument("--r-tol", type=tolerance, nargs="+", default=[0.01],
                   help="resistor tolerance σ, one value per point (e.g. 1%% 3%% 5%%; default 1%%)")
    p.add_argument("--c-tol", type=tolerance, nargs="+", default=[0.0], help="capacitor tolerance σ (default 0)")
    p.add_argument("--band", action="store_true",
                   help="--r-tol and --c-tol are a datasheet's tolerance band: every part within ±tol, drawn uniform "
                        "(σ = tol/√3), instead of a standard deviation")
    p.add_argument("--offset", type=offset, nargs="+", default=[0.0], help="comparator offset σ, V or mV (default 0)")
    p.add_argument("--amp-offset", type=offset, nargs="+", default=[0.0],
                   help="with --opamp PART: σ of each amplifier's input offset around the part's, V or mV (default 0)")
    p.add_argument("--trim", nargs="+", default=[], metavar="PART",
                   help="parts calibrated after assembly, each neuron's own: input (its input resistor), leak (its time "
                        "constant); a trimmed part keeps the residual of its error on the --trim-step grid")
    p.add_argument("--trim-step", type=tolerance, default=0.001, help="the calibration's step, relative (default 0.1%%)")
    p.add_argument("--seed", type=seed, default=0, help="run r draws with seed SEED + r (default 0)")
    p.add_argument("--judge-blocks", type=nonnegative_int, default=1,
                   help="open-loop blocks per run cross-checked in ngspice (default 1)")
    p.add_argument("--blocks", type=positive_int, default=None, help="open-loop blocks (default about 128 neurons each)")
    p.add_argument("--scheduler", default="local",
                   help="local (a dask LocalCluster of --workers processes, default), serial, or a dask scheduler address")
    p.add_argument("--workers", type=positive_int, default=min(2, cores()), help="LocalCluster worker processes")
    p.add_argument("--oversubscribe", action="store_true", help="allow --workers above the number of cores")
    p.add_argument("--timeout", type=positive_float, default=None, help="seconds per ngspice deck (default 3600)")
    spice_options.add_circuit_arguments(p)
    p.add_argument("-o", "--output", required=True, help="output directory (a sweep there is resumed)")
    p.set_defaults(run=_cmd_montecarlo)
