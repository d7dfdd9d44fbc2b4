"""``rcsnn verify``: a back end against its reference, spike for spike; one report per back end."""

from __future__ import annotations

from pathlib import Path

from ..analog import options as spice_options
from ..digital import options as digital_options
from .common import add_core_arguments, add_stimulus_arguments, load, provenance, stimulus

__all__ = ["register", "BACKENDS"]

BACKENDS = ("spice", "amaranth", "verilator", "icarus")


def _cmd_verify(args) -> int:
    """Run each chosen back end; exit status 1 if any fails."""
    from ..verify.digital import verify_digital
    from ..verify.report import write_summary
    from ..verify.spice import verify_spice

    graph = load(args)
    stim = stimulus(args, graph)
    print(f"stimulus: {stim.description}, {stim.steps} steps" + (f" ({stim.note})" if stim.note else ""), flush=True)
    origin = provenance(args, stim)
    out = Path(args.out)
    reports = []
    for backend in BACKENDS if args.backend == "all" else (args.backend,):
        if backend == "spice":
            report = verify_spice(graph, stim, spice_options.from_arguments(args), out, origin)
        else:
            report = verify_digital(graph, stim, backend, digital_options.from_arguments(args), out, origin)
        print("\n  ".join([report.headline(), report.comparison.summary(), *report.lines]), flush=True)
        reports.append(report)
    if len(reports) > 1:
        print("summary: " + ", ".join(str(p) for p in write_summary(reports, out)))
    return 0 if all(r.passed for r in reports) else 1


def register(sub) -> None:
    """Add ``verify`` to the ``rcsnn`` subparsers, with each back end's own options."""
    p = sub.add_parser("verify", help="check a backend spike for spike against its reference (exit 1 on any mismatch)")
    add_core_arguments(p)
    p.add_argument("--backend", choices=(*BACKENDS, "all"), required=True)
    add_stimulus_arguments(p, steps_help="steps to check (default 200 of the sample, or the whole given stimulus)")
    p.add_argument("--out", default="verify-out", help="directory for reports, plots and waveforms")
    spice_options.add_design_arguments(p, mode="open")
    spice_options.add_run_arguments(p)
    digital_options.add_arguments(p)
    p.set_defaults(run=_cmd_verify)
