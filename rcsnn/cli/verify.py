"""``rcsnn verify``: a back end against its reference, spike for spike; one report per back end."""

from __future__ import annotations

import time
from pathlib import Path

from ..analog import options as spice_options
from ..digital import options as digital_options
from ..files import atomic_directory, relocate_text
from .common import add_core_arguments, add_stimulus_arguments, load, provenance, stimulus

__all__ = ["register", "BACKENDS", "OWNED"]

BACKENDS = ("fixed", "spice", "amaranth", "verilator", "icarus", "gate")
#: Files by which an existing ``--out`` directory is recognised as an earlier verify's (replaced whole).
OWNED = ("report.json", "summary.json", "*/report.json")


def _cmd_verify(args) -> int:
    """Run each chosen back end into a temporary sibling of ``--out`` that replaces it whole at the end
    (an error or Ctrl-C leaves the old one); exit status 1 if any fails."""
    final = Path(args.out)
    with atomic_directory(final, OWNED) as tmp:
        out = final.parent / tmp.name  # the temporary directory as the user would name it, for the reports' paths
        code = _verify(args, out, lambda text: text.replace(str(out), str(final)))
        relocate_text(tmp, str(out), str(final))
    return code


def _verify(args, out: Path, shown) -> int:
    from ..analog.snap import annotate_report, snapped_arguments, text_cost
    from ..verify.bpc import add_bpc, text_targets
    from ..verify.digital import design_lanes, verify_digital
    from ..verify.fixed import verify_fixed
    from ..verify.report import summary_table, write_summary
    from ..verify.spice import netlist_stimulus, verify_spice

    original = load(args)
    graph = snapped_arguments(original, args.snap, spice_options.from_arguments(args).design(original.arrays()))
    netlist = getattr(args, "netlist", None)
    if netlist is not None:  # the stimulus the directory was written with (a given one must be it)
        from ..errors import RcsnnError

        if args.backend != "spice":
            raise RcsnnError("--netlist DIR: checks an existing netlist directory with --backend spice only")
        given = args.prompt is not None or args.inputs is not None or args.currents is not None
        stim = netlist_stimulus(netlist, stimulus(args, graph) if given else None, None if given else args.steps)
    else:
        stim = stimulus(args, graph)
    print(f"stimulus: {stim.description}, {stim.steps} steps" + (f" ({stim.note})" if stim.note else ""), flush=True)
    if args.bpc:
        text_targets(graph, stim)  # refuse a stimulus that is not text before any back end runs
    if graph is not original:
        text_cost(original, graph, stim)
    origin = provenance(args, stim)
    reports = []
    checks = digital_options.check_from_arguments(args)
    lanes = design_lanes(checks.hdl) if checks.hdl else digital_options.DEFAULT_LANES
    chosen = BACKENDS if args.backend == "all" else (args.backend,)
    for k, backend in enumerate(chosen, 1):
        if len(chosen) > 1:
            print(f"[{k}/{len(chosen)}] {backend} ...", flush=True)
        start = time.monotonic()
        if backend == "fixed":
            report = verify_fixed(graph, stim, out, origin)
        elif backend == "spice":
            report = verify_spice(graph, stim, spice_options.from_arguments(args), out, origin, netlist,
                                  args.trust_edits)
        else:
            report = verify_digital(graph, stim, backend, digital_options.from_arguments(args, lanes), out, origin,
                                    checks)
        annotate_report(report, graph)
        if args.bpc:
            add_bpc(report, graph, stim)
        report.seconds = round(time.monotonic() - start, 1)
        if report.directory is not None:
            report.write(report.directory)  # again, with the time the whole check took
        print(shown("\n  ".join([report.headline(), report.comparison.summary(), *report.lines])), flush=True)
        reports.append(report)
    if len(reports) > 1:
        paths = write_summary(reports, out)
        print(shown("\n" + summary_table(reports) + "(" + ", ".join(str(p) for p in paths) + ")"), flush=True)
    return 0 if all(r.passed for r in reports) else 1


def register(sub) -> None:
    """Add ``verify`` to the ``rcsnn`` subparsers, with each back end's own options."""
    p = sub.add_parser("verify", help="check a backend spike for spike against its reference (exit 1 on any mismatch)")
    add_core_arguments(p)
    p.add_argument("--backend", choices=(*BACKENDS, "all"), required=True)
    add_stimulus_arguments(p, steps_help="steps to check (default 200 of the sample, or the whole given stimulus)")
    p.add_argument("--out", default="verify-out", help="directory for reports, plots and waveforms (replaced whole)")
    p.add_argument("--trust-edits", action="store_true",
                   help="with --netlist/--hdl DIR: run files that differ from the SHA-256 their sidecar records "
                        "(hand-edited decks or HDL are code the simulators run: check them first)")
    p.add_argument("--bpc", action="store_true",
                   help="also score bits per character of the text stimulus from each back end's own spikes, beside "
                        "the float64 and fixed-point references' (in the report's findings and figures)")
    p.add_argument("--netlist", metavar="DIR", default=None,
                   help="--backend spice: check this existing netlist directory (written by `rcsnn netlist`, possibly "
                        "hand-edited: add --trust-edits) against CORE and the stimulus it was written with")
    spice_options.add_design_arguments(p, mode="open")
    spice_options.add_run_arguments(p)
    digital_options.add_arguments(p)
    digital_options.add_check_arguments(p)
    p.set_defaults(run=_cmd_verify)
