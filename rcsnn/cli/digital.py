"""Subcommands of the digital back end: ``rcsnn verilog`` and ``rcsnn synth``."""

from __future__ import annotations

from pathlib import Path

from ..digital import options as digital_options
from ..files import atomic_directory, check_output
from .common import add_core_arguments, add_stimulus_arguments, load, stimulus

__all__ = ["register"]


def _cmd_verilog(args) -> None:
    from ..digital.emit import DESIGN, emit
    from ..digital.layout import build_image, place
    from ..ir.reference import quantize_core

    check_output(args.output, directory=True, owned=(DESIGN,))
    graph = load(args)
    opts = digital_options.from_arguments(args)
    stim = stimulus(args, graph, default_steps=64)
    placed = place(graph, opts.lanes)
    with atomic_directory(args.output, owned=(DESIGN,)) as tmp:  # replaces an earlier design directory whole
        files = emit(placed, tmp, quantize_core(graph).quantize(stim.currents), preload=opts.preload,
                     lutram=opts.lutram)
        size = sum(f.stat().st_size for f in files)
    image = build_image(placed)
    print(f"wrote {len(files)} files ({size / 1e6:.1f} MB) to {args.output}: {image.slots.n_neurons} neurons, "
          f"{opts.lanes} lanes, {sum(len(e) for e in image.entries)} stored synapses "
          f"({graph.arrays().nonzeros()} in use); see {args.output}/README.md")


def _cmd_synth(args) -> None:
    from ..digital.synth import summary, synthesize

    report = synthesize(Path(args.dir), args.target, trust_edits=args.trust_edits)
    print(summary(report) + f"; report in {args.dir}/synth/{args.target}/report.md")


def register(sub) -> None:
    """Add ``verilog`` and ``synth`` to the ``rcsnn`` subparsers."""
    from ..digital.synth import TARGETS

    p = sub.add_parser("verilog", help="write the digital core's Verilog, RTLIL, memory images, testbenches and docs")
    add_core_arguments(p)
    add_stimulus_arguments(p, steps_help="length of the example stimulus (x.hex, expected.hex; default 64)")
    digital_options.add_arguments(p, emit=True)
    p.add_argument("-o", "--output", required=True, help="output directory")
    p.set_defaults(run=_cmd_verilog)

    p = sub.add_parser("synth", help="synthesise, place and route an emitted core (YoWASP Yosys + nextpnr)")
    p.add_argument("dir", metavar="DIR", help="directory written by rcsnn verilog")
    p.add_argument("--target", choices=sorted(TARGETS), default="ecp5-25f")
    p.add_argument("--trust-edits", action="store_true",
                   help="synthesise files that differ from the SHA-256 in design.json (hand-edited)")
    p.set_defaults(run=_cmd_synth)
