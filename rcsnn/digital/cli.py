"""Subcommands of the digital backend: ``rcsnn verilog`` and ``rcsnn synth`` (and ``--lanes`` for ``verify``)."""

from __future__ import annotations

import argparse
from pathlib import Path

LANES_HELP = "parallel lanes (synapse and neuron units) of the core"


def _cmd_verilog(args) -> None:
    from ..cli import _load, stimulus
    from ..model.reference import quantize_core
    from .emit import emit
    from .layout import build_image

    core = _load(args)
    currents, _ = stimulus(core, args, default_steps=64)
    image = build_image(core, args.lanes)
    files = emit(core, image, Path(args.output), quantize_core(core).quantize(currents), preload=not args.no_preload,
                 lutram=args.lutram)
    size = sum(f.stat().st_size for f in files)
    print(f"wrote {len(files)} files ({size / 1e6:.1f} MB) to {args.output}: {core.n_neurons} neurons, {args.lanes} lanes, "
          f"{sum(len(e) for e in image.entries)} stored synapses ({core.nonzeros()} in use); see {args.output}/README.md")


def _cmd_synth(args) -> None:
    from .synth import summary, synthesize

    report = synthesize(Path(args.dir), args.target)
    print(summary(report) + f"; report in {args.dir}/synth/{args.target}/report.md")


def register(sub) -> None:
    """Add ``verilog`` and ``synth`` to the ``rcsnn`` subparsers, and ``--lanes`` to ``verify``."""
    from ..cli import _core_arguments
    from .synth import TARGETS
    from .verify import DEFAULT_LANES

    p = sub.add_parser("verilog", help="write the digital core's Verilog, RTLIL, memory images, testbenches and docs")
    _core_arguments(p)
    p.add_argument("-o", "--output", required=True, help="output directory")
    p.add_argument("--lanes", type=int, default=DEFAULT_LANES, help=LANES_HELP)
    p.add_argument("--steps", type=int, default=64, help="length of the example stimulus (x.hex, expected.hex)")
    source = p.add_mutually_exclusive_group()
    source.add_argument("--prompt", help="example stimulus text (default: held-out pydoc text)")
    source.add_argument("--input", help="example stimulus .npy array (steps x inputs)")
    p.add_argument("--no-preload", action="store_true",
                   help="leave parameter memories uninitialised (load them through the load port, e.g. iCE40 SPRAM)")
    p.add_argument("--lutram", action="store_true",
                   help="neuron state (accumulators, membranes, biases) in LUT RAM: for many lanes, when each "
                        "lane's memories are too small to be worth a block RAM")
    p.set_defaults(run=_cmd_verilog)

    p = sub.add_parser("synth", help="synthesise, place and route an emitted core (YoWASP Yosys + nextpnr)")
    p.add_argument("dir", metavar="DIR", help="directory written by rcsnn verilog")
    p.add_argument("--target", choices=sorted(TARGETS), default="ecp5-25f")
    p.set_defaults(run=_cmd_synth)

    verify = sub.choices.get("verify")
    if isinstance(verify, argparse.ArgumentParser):
        verify.add_argument("--lanes", type=int, default=DEFAULT_LANES, help="digital backends: " + LANES_HELP)
