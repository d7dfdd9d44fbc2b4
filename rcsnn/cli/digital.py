"""Subcommands of the digital back end: ``rcsnn verilog``, ``rcsnn synth`` and ``rcsnn estimate``."""

from __future__ import annotations

from pathlib import Path

from ..arguments import positive_float, positive_int
from ..digital import options as digital_options
from ..files import atomic_directory, check_output
from .common import add_core_arguments, add_stimulus_arguments, load, stimulus

__all__ = ["register"]


def _cmd_verilog(args) -> None:
    from ..digital.emit import DESIGN, emit
    from ..digital.layout import build_image, input_stream, place
    from ..ir.reference import quantize_core

    check_output(args.output, directory=True, owned=(DESIGN,))
    graph = load(args)
    opts = digital_options.from_arguments(args)
    stim = stimulus(args, graph, default_steps=64)
    placed = place(graph, opts.lanes)
    lm = None
    if args.lm:  # the LM top around the core (rcsnn.digital.lm)
        from ..model.lm_fixed import fixed_lm

        lm = fixed_lm(graph, args.temperature)
    with atomic_directory(args.output, owned=(DESIGN,)) as tmp:  # replaces an earlier design directory whole
        files = emit(placed, tmp, input_stream(placed, quantize_core(graph).quantize(stim.currents)),
                     preload=opts.preload, lutram=opts.lutram, lm=lm)
        size = sum(f.stat().st_size for f in files)
    image = build_image(placed)
    print(f"wrote {len(files)} files ({size / 1e6:.1f} MB) to {args.output}: {image.slots.n_neurons} neurons, "
          f"{opts.lanes} lanes, {sum(len(e) for e in image.entries)} stored synapses "
          f"({graph.arrays().nonzeros()} in use); see {args.output}/README.md")


def _cmd_synth(args) -> None:
    from ..digital.synth import summary, synthesize

    if args.board is not None:  # the LM behind a UART on a board, to a bitstream (rcsnn.digital.board)
        from ..digital.board.bitstream import board_summary, build_board

        report = build_board(Path(args.dir), args.board, args.baud, trust_edits=args.trust_edits)
        print(board_summary(report) + f"; report in {args.dir}/board/{args.board}/report.md")
        return
    report = synthesize(Path(args.dir), args.target, trust_edits=args.trust_edits)
    print(summary(report) + f"; report in {args.dir}/synth/{args.target}/report.md")


def _cmd_estimate(args) -> None:
    from ..digital.estimate import chain_bits, estimate, memories
    from ..digital.layout import build_image, place

    opts = digital_options.from_arguments(args)
    image = build_image(place(load(args), opts.lanes))
    result = estimate(image, args.target, chain_bits(image, opts.preload, opts.lutram), opts.lutram)
    mems = memories(image, opts.lutram)
    bram = [m for m in mems if m.in_bram]
    print(result.summary())
    print(f"memories: {len(bram)} of {len(mems)} in block RAM ({result.BRAM} DP16KD), {len(mems) - len(bram)} in LUT "
          f"RAM ({sum(m.lutram_cells for m in mems if not m.in_bram)} TRELLIS_DPR16X4); {result.DSP} MULT18X18D; "
          f"LUT/FF/Fmax from the fit in rcsnn/digital/estimate.py (docs/digital.md: its accuracy)")


def register(sub) -> None:
    """Add ``verilog``, ``synth`` and ``estimate`` to the ``rcsnn`` subparsers."""
    from ..digital.board.bitstream import DEFAULT_BAUD
    from ..digital.board.boards import BOARDS
    from ..digital.synth import TARGETS

    p = sub.add_parser("verilog", help="write the digital core's Verilog, RTLIL, memory images, testbenches and docs")
    add_core_arguments(p)
    add_stimulus_arguments(p, steps_help="length of the example stimulus (x.hex, expected.hex; default 64)")
    digital_options.add_arguments(p, emit=True)
    p.add_argument("--lm", action="store_true",
                   help="also the language model on chip (rcsnn_lm.v: prompt bytes in, characters out; embedding ROM, "
                        "int8 readout, greedy or LFSR-sampled choice) and its Verilator harness")
    p.add_argument("--temperature", type=positive_float, default=0.8,
                   help="--lm: the sampler's temperature, built into its Gumbel ROM (greedy is the sample input at 0)")
    p.add_argument("-o", "--output", required=True, help="output directory")
    p.set_defaults(run=_cmd_verilog)

    p = sub.add_parser("synth", help="synthesise, place and route an emitted core (YoWASP Yosys + nextpnr)")
    p.add_argument("dir", metavar="DIR", help="directory written by rcsnn verilog")
    p.add_argument("--target", choices=sorted(TARGETS), default="ecp5-25f")
    p.add_argument("--board", choices=sorted(BOARDS), default=None,
                   help="instead: the LM top (rcsnn verilog --lm) behind a UART on this board, to a bitstream "
                        "(docs/digital.md, On a board)")
    p.add_argument("--baud", type=positive_int, default=DEFAULT_BAUD, help="--board: the UART's baud rate")
    p.add_argument("--trust-edits", action="store_true",
                   help="synthesise files that differ from the SHA-256 in design.json (hand-edited)")
    p.set_defaults(run=_cmd_synth)

    p = sub.add_parser("estimate", help="predict LUT/FF/block RAM/DSP/Fmax of the digital core on ECP5 before synthesis")
    add_core_arguments(p)
    digital_options.add_arguments(p, emit=True)
    p.add_argument("--target", choices=sorted(t for t in TARGETS if t.startswith("ecp5")), default="ecp5-25f")
    p.set_defaults(run=_cmd_estimate)
