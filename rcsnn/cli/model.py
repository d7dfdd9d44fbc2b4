"""Subcommands of the model and the IR: ``train``, ``finetune``, ``info``, ``generate``, ``run``, ``graph``."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

from ..analog import options as spice_options
from ..arguments import cores, fraction, int_range, nonnegative_float, nonnegative_int, positive_float, positive_int, seed
from ..digital import options as digital_options
from ..errors import RcsnnError
from ..files import check_output
from .common import add_core_arguments, add_stimulus_arguments, load, stimulus

__all__ = ["register", "GENERATE_BACKENDS", "REFERENCES"]


def _robustness(args):
    from ..model.robust import PARTS, Robustness

    return Robustness(margin_penalty=args.margin_penalty, margin_width=args.margin_width,
                      membrane_penalty=args.membrane_penalty, membrane_bound=args.membrane_bound,
                      rate_penalty=args.rate_penalty, weight_noise=args.weight_noise,
                      membrane_noise=args.membrane_noise, mismatch_penalty=args.mismatch_penalty,
                      mismatch_tolerance=args.mismatch_tolerance, mismatch_safety=args.mismatch_safety,
                      mismatch_parts=tuple(args.mismatch_parts or PARTS))


def _corpus(args):
    import torch

    from ..model.corpus import Corpus
    from ..text import read_text

    check_output(args.output)  # before the training, not after it
    if 0 < args.membrane_clamp < 1:
        raise RcsnnError(f"--membrane-clamp: {args.membrane_clamp} is below 1 (theta units): no neuron could fire")
    torch.set_num_threads(args.threads)
    corpus = Corpus.from_text(read_text(args.text))
    print(f"corpus: {len(corpus.train)} training and {len(corpus.held_out)} held-out characters, "
          f"{len(corpus.vocab)} symbols", flush=True)
    return corpus


def _train_and_save(args, cfg, corpus, model=None, source: dict | None = None, core=None) -> None:
    """Train (or fine-tune ``model``), evaluate both references on the held-out text and save the core; without
    optimizer steps (``finetune --steps 0``) ``core`` as it is, in the format ``cfg.fixed``."""
    import dataclasses

    from ..frontends.checkpoint import save_checkpoint
    from ..ir.graph import Graph
    from ..model.train import config_dict, evaluate_core, train

    log = lambda line: print(line, flush=True)  # noqa: E731
    if cfg.total_steps:
        model, metrics = train(cfg, corpus, log, model)
        graph = model.to_graph(cfg.fixed, cfg.dt)
    else:  # no torch round trip: its float32 recomputation of alpha may move it by an ulp
        graph, metrics = Graph.from_arrays(dataclasses.replace(core, fixed=cfg.fixed)), {}
    graph, reference_metrics = evaluate_core(graph, corpus.held_out, log)
    metrics.update(reference_metrics)
    extra = {
        "training": {**config_dict(cfg), "text": args.text or "pydoc_data.topics", **(source or {}),
                     "command": "rcsnn " + " ".join(sys.argv[1:])},
        "metrics": metrics,
    }
    save_checkpoint(graph, args.output, extra)
    print(json.dumps(metrics, indent=1))
    print(f"wrote {args.output}")


def _format(fv: int, fb: int):
    """The training format: Fv and Fb as asked; Wv a placeholder (24, or Fv + 2) that evaluation fits to the range."""
    from ..ir.arrays import FixedFormat

    return FixedFormat(Wv=max(24, fv + 2), Fv=fv, Fb=fb)


def _cmd_train(args) -> None:
    from ..model.train import TrainConfig

    cfg = TrainConfig(
        group_size=args.neurons, taus=tuple(args.taus), embed=args.embed, theta=args.theta, reset=args.reset,
        sparsity=args.sparsity, float_steps=args.float_steps, prune_steps=args.prune_steps,
        ternary_steps=args.ternary_steps, batch=args.batch, length=args.length, lr=args.lr, l1=args.l1,
        robust=_robustness(args), seed=args.seed, dt=args.dt,
        fixed=_format(args.fv, args.fb), log_every=args.log_every, membrane_clamp=args.membrane_clamp,
    )
    _train_and_save(args, cfg, _corpus(args))


def _cmd_finetune(args) -> None:
    import hashlib

    from ..model.robust import model_from_core
    from ..model.train import TrainConfig

    core = load(args).arrays()
    if not args.steps and args.membrane_clamp:
        raise RcsnnError("--membrane-clamp: needs optimizer steps (--steps 0 keeps the core as it is)")
    model = model_from_core(core)
    corpus = _corpus(args)
    if corpus.vocab != model.vocab:
        raise RcsnnError(f"--text: its {len(corpus.vocab)} symbols are not the {len(model.vocab)} of {args.core}'s "
                         "vocabulary (fine-tune on the text the core was trained on)")
    (t,) = core.matrices.values()
    cfg = TrainConfig(
        group_size=model.group_size, taus=model.taus, embed=model.embedding.embedding_dim, theta=model.theta,
        reset=model.reset, sparsity=round(1 - float((t != 0).mean()), 6), float_steps=0, prune_steps=0,
        ternary_steps=args.steps, batch=args.batch, length=args.length, lr=args.lr, l1=0.0,
        robust=_robustness(args), seed=args.seed, dt=core.dt,
        fixed=_format(core.fixed.Fv if args.fv is None else args.fv, core.fixed.Fb if args.fb is None else args.fb),
        log_every=args.log_every,
        membrane_clamp=args.membrane_clamp,
    )
    with open(args.core, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    _train_and_save(args, cfg, corpus, model, {"finetuned_from": {"core": args.core, "sha256": digest}}, core)


def _cmd_info(args) -> None:
    from ..frontends.checkpoint import read_config
    from ..ir.stimulus import Stimulus
    from ..ir.summary import describe

    graph = load(args)
    sample = Stimulus.sample(graph, args.steps)
    print(describe(graph, sample.currents, sample.description))
    if args.volts_per_unit or args.theta_volts or args.rails:  # the membranes in volts at a physical scale
        from ..analog.scale import membrane_range
        from ..ir.reference import simulate_float

        design = spice_options.from_arguments(args).design(graph.arrays())
        print("\n".join(membrane_range(graph.arrays(), design, simulate_float(graph, sample.currents).membranes)))
    if not args.core.endswith((".nir", ".json", ".graphml")):
        config = read_config(args.core)
        if isinstance(config.get("metrics"), dict):
            print("training metrics: " + json.dumps(config["metrics"], sort_keys=True))
        if isinstance(config.get("training"), dict):
            command = config["training"].get("command", "?")
            print("trained by: " + (command if isinstance(command, str) and command.isprintable() else repr(command)))


def _cmd_run(args) -> None:
    from ..ir.raster import Raster
    from ..ir.reference import simulate_fixed, simulate_float

    output = check_output(Raster.npz_path(args.output))
    graph = load(args)
    stim = stimulus(args, graph)
    run = (simulate_fixed if args.backend == "fixed" else simulate_float)(graph, stim.currents)
    unit = "lsb" if args.backend == "fixed" else "membrane"
    raster = Raster.of(graph, run.spikes, run.membranes, unit, args.backend, {"stimulus": stim.description})
    path = raster.save(output)
    rates = " ".join(f"{name} {rate:.3f}" for name, rate in raster.rates().items())
    print(f"{args.backend}: {raster.steps} steps x {run.spikes.shape[1]} neurons, {int(run.spikes.sum())} spikes "
          f"(rates {rates}) -> {path}")


def _reference(graph, args):
    from ..model.generate import reference_stepper

    return reference_stepper(graph, args.backend)


def _amaranth(graph, args):
    from ..digital.pysim_stepper import PysimStepper

    return PysimStepper(graph, digital_options.from_arguments(args).lanes)


def _hdl(graph, args):
    from ..digital.stream import HdlStepper

    return HdlStepper(graph, args.backend, digital_options.from_arguments(args).lanes, args.build_dir)


def _spice(graph, args):
    from ..analog.lockstep import LockstepStepper
    from ..analog.partition import partition
    from ..analog.stream import SpiceStepper
    from ..model.generate import generate, reference_stepper
    from ..verify.spice import default_blocks

    # the run the circuit is expected to follow (the float64 reference's): the decks' length and a-priori budget
    planned = generate(graph, args.prompt, args.length, reference_stepper(graph, "float"), seed=args.seed,
                       temperature=args.temperature)
    design = spice_options.from_arguments(args).design(graph.arrays())
    currents = graph.arrays().token_currents(planned.tokens)
    if args.spice_decks == "one":
        if args.blocks:
            raise RcsnnError("--blocks: only with --spice-decks blocks")
        return SpiceStepper(graph, design, currents, args.netlist)
    blocks = args.blocks or default_blocks(graph.arrays().n_neurons, 1)
    return LockstepStepper(partition(graph, blocks), design, currents, args.netlist)


#: ``rcsnn generate --backend NAME``: NAME -> factory(graph, parsed arguments) -> Stepper. Every back end but
#: the references is hardware, checked against the reference of its arithmetic (rcsnn.verify.generation).
GENERATE_BACKENDS: dict[str, Callable] = {
    "float": _reference,
    "torch": _reference,
    "fixed": _reference,
    "amaranth": _amaranth,
    "verilator": _hdl,
    "icarus": _hdl,
    "spice": _spice,
}
REFERENCES = ("float", "torch", "fixed")


class _Progress:
    """Per-step progress of a hardware run on stderr, at most every ``every`` seconds (and at the end)."""

    def __init__(self, backend: str, every: float = 2.0):
        self.backend, self.every = backend, every
        self.start = self.last = time.perf_counter()

    def __call__(self, step: int, steps: int, text: str) -> None:
        now = time.perf_counter()
        if now - self.last < self.every and step < steps:
            return
        self.last = now
        rate = (now - self.start) / step
        print(f"{self.backend}: step {step}/{steps}, {len(text)} characters generated, {rate:.3g} s/step, "
              f"about {rate * (steps - step):.0f} s left: {text[-40:]!r}", file=sys.stderr, flush=True)


def _cmd_generate(args) -> int:
    from ..model.generate import generate
    from ..verify.generation import Recorder, check_generation

    if args.backend == "fixed-lm" or args.lm:  # the whole LM in integers / on chip (rcsnn.cli.lm)
        from .lm import generate_lm

        if args.snap:
            raise RcsnnError("--snap: part values are a circuit's; not with --lm or --backend fixed-lm")
        return generate_lm(args)
    from ..analog.snap import snapped_arguments

    graph = load(args)
    graph = snapped_arguments(graph, args.snap, spice_options.from_arguments(args).design(graph.arrays()))
    hardware = args.backend not in REFERENCES
    for given, name in ((args.netlist, "--netlist"), (args.blocks, "--blocks")):
        if given and args.backend != "spice":
            raise RcsnnError(f"{name}: only with --backend spice")
    stepper = GENERATE_BACKENDS[args.backend](graph, args)
    recorded = Recorder(stepper)
    start = time.perf_counter()
    try:
        result = generate(graph, args.prompt, args.length, recorded, seed=args.seed, temperature=args.temperature,
                          progress=_Progress(args.backend) if hardware and not args.quiet else None)
    finally:
        close = getattr(stepper, "close", None)
        if close is not None:
            close()
    seconds = time.perf_counter() - start
    print(args.prompt + result.text, flush=True)
    if not hardware:
        return 0
    check = check_generation(graph, args.prompt, result, recorded, args.backend, seed=args.seed,
                             temperature=args.temperature, allowance=getattr(stepper, "allowance", None),
                             budget_note=getattr(stepper, "budget_note", ""))
    steps = len(result.tokens)
    print("\n".join([*check.lines(), f"{args.backend}: {steps} steps in {seconds:.1f} s ({seconds / steps:.3g} s/step)"]),
          file=sys.stderr)
    return 0 if check.passed else 1


def passes(args) -> dict:
    """The passes ``rcsnn graph --after`` can show, in flow order: name -> Graph -> Graph."""
    from ..analog.partition import partition
    from ..digital.layout import place
    from ..ir.passes import quantize, retime

    return {"quantize": quantize, "retime": retime, "partition": lambda g: partition(g, args.blocks),
            "place": lambda g: place(g, args.lanes)}


def _cmd_graph(args) -> None:
    suffix = Path(args.output).suffix
    if suffix not in (".nir", ".json", ".graphml"):
        raise RcsnnError(f"{args.output}: unknown graph file type {suffix!r} (use .json, .graphml or .nir)")
    check_output(args.output)
    graph = load(args)
    if args.after:
        available = passes(args)
        order = {"quantize": ["quantize"], "retime": ["retime"], "partition": ["partition"],
                 "place": ["quantize", "place"]}[args.after]
        for name in order:
            graph = available[name](graph)
    out = Path(args.output)
    if out.suffix == ".nir":
        if args.after:
            raise RcsnnError("--after: NIR has no place for pass results; write .json or .graphml")
        from ..frontends.nir import write_nir

        write_nir(graph, out, args.nir_for)
    elif args.nir_for:
        raise RcsnnError(f"{args.output}: --nir-for applies only to a .nir output")
    else:
        from ..ir.serialize import save_graph

        save_graph(graph, out)
    core = graph.arrays()
    print(f"wrote {out} ({len(core.groups)} groups, {core.n_neurons} neurons, {core.nonzeros()} synapses"
          + (f"; after {', '.join(graph.passes)}" if graph.passes else "") + ")")


def _add_training_arguments(p, steps: tuple, lr: float, fixed: tuple[int, int] | None) -> None:
    """Options ``train`` and ``finetune`` share: text, batches, optimizer, seed, threads, the hardware-aware
    terms (:mod:`rcsnn.model.robust`), the fixed-point format (defaults ``fixed`` = (Fv, Fb); None: the core's)
    and the output. ``steps``: the option of the optimizer steps, its type, default and help."""
    own = " (default: the core's)" if fixed is None else ""
    p.add_argument("--fv", type=int_range(0, 37), default=fixed and fixed[0],
                   help=f"fractional bits of membrane and weights{own}; Wv is then fitted to the membranes' range")
    p.add_argument("--fb", type=int_range(1, 20), default=fixed and fixed[1], help=f"fractional bits of beta{own}")
    p.add_argument("--text", help="UTF-8 training text (default: pydoc_data.topics from the standard library)")
    option, kind, default, about = steps
    p.add_argument(option, type=kind, default=default, help=about)
    p.add_argument("--batch", type=positive_int, default=32)
    p.add_argument("--length", type=positive_int, default=128)
    p.add_argument("--lr", type=positive_float, default=lr)
    p.add_argument("--margin-penalty", type=nonnegative_float, default=0.0,
                   help="weight of mean(relu(1 - |v - theta| / (width theta))^2): membranes away from threshold")
    p.add_argument("--margin-width", type=positive_float, default=0.05, help="margin width, in theta")
    p.add_argument("--membrane-penalty", type=nonnegative_float, default=0.0,
                   help="weight of mean(relu(|v| / theta - bound)^2): membranes inside the rails")
    p.add_argument("--membrane-bound", type=positive_float, default=8.0, help="membrane bound (rails), in theta")
    p.add_argument("--membrane-clamp", type=nonnegative_float, default=0.0, metavar="B",
                   help="clamp membranes to +-B theta (B >= 1) after each update, in training and in the saved core "
                        "(its v_min/v_max); 0: none (finetune keeps the core's own bounds)")
    p.add_argument("--rate-penalty", type=nonnegative_float, default=0.0, help="weight of the mean firing rate")
    p.add_argument("--weight-noise", type=nonnegative_float, default=0.0,
                   help="relative sigma of multiplicative recurrent weight noise, one draw per optimizer step")
    p.add_argument("--membrane-noise", type=nonnegative_float, default=0.0,
                   help="sigma of additive membrane noise per step, in theta")
    p.add_argument("--mismatch-penalty", type=nonnegative_float, default=0.0,
                   help="weight of mean(relu(k |v' - v| - |v - theta|)) / (sigma theta), v' the membranes of a circuit "
                        "with every resistor drawn at --mismatch-tolerance: decisions a built circuit would flip")
    p.add_argument("--mismatch-tolerance", type=positive_float, default=0.01,
                   help="relative sigma of the resistors of the mismatch term (default 0.01)")
    p.add_argument("--mismatch-safety", type=positive_float, default=2.0,
                   help="k >= 1 of the mismatch term: flips, and decisions within a factor k of flipping (default 2)")
    p.add_argument("--mismatch-parts", nargs="+", metavar="PART",
                   help="the parts the mismatch term draws: input, leak, synapse (default all); leave out those a "
                        "built circuit calibrates (rcsnn montecarlo --trim)")
    p.add_argument("--seed", type=seed, default=0)
    p.add_argument("--threads", type=int_range(1, cores()), default=1)
    p.add_argument("--log-every", type=positive_int, default=50)
    p.add_argument("-o", "--output", required=True)


def register(sub) -> None:
    """Add ``train``, ``finetune``, ``info``, ``generate``, ``run`` and ``graph`` to the ``rcsnn`` subparsers."""
    p = sub.add_parser("train", help="train a ternary multi-timescale spiking LM and save its core")
    p.add_argument("--neurons", type=positive_int, default=512, help="neurons per group")
    p.add_argument("--taus", type=positive_float, nargs="+", default=[1.0, 4.0, 16.0],
                   help="membrane time constant of each group, in steps")
    p.add_argument("--embed", type=positive_int, default=64)
    p.add_argument("--theta", type=positive_float, default=1.0)
    p.add_argument("--reset", choices=("zero", "subtract"), default="zero")
    p.add_argument("--sparsity", type=fraction, default=0.936)
    p.add_argument("--float-steps", type=nonnegative_int, default=1000)
    p.add_argument("--prune-steps", type=nonnegative_int, default=700)
    _add_training_arguments(p, ("--ternary-steps", positive_int, 700, "optimizer steps of ternary training"), lr=1e-2,
                            fixed=(12, 14))
    p.add_argument("--l1", type=nonnegative_float, default=2e-5)
    p.add_argument("--dt", type=positive_float, default=1e-3, help="seconds per step (NIR export, analog clock)")
    p.set_defaults(run=_cmd_train)

    p = sub.add_parser("finetune", help="fine-tune a trained core (ternary steps, same sparsity), e.g. with the "
                                        "hardware-aware penalties and noise, and save it")
    add_core_arguments(p)
    _add_training_arguments(p, ("--steps", nonnegative_int, 200, "optimizer steps of ternary training; 0: none, "
                                "the core as it is in the format --fv/--fb, measured again"), lr=1e-3, fixed=None)
    p.set_defaults(run=_cmd_finetune)

    p = sub.add_parser("info", help="groups, kinds, tau/beta, theta (per-neuron ranges), reset, sparsity, packed sizes, "
                       "firing rates")
    add_core_arguments(p)
    p.add_argument("--steps", type=positive_int, default=500, help="length of the sample used for firing rates")
    spice_options.add_scale_arguments(p)  # + the membranes' range in volts and whether it fits the rails
    p.set_defaults(run=_cmd_info)

    p = sub.add_parser("generate", help="generate text from a language-model core")
    add_core_arguments(p)
    p.add_argument("--prompt", required=True)
    p.add_argument("--length", type=nonnegative_int, default=200, help="characters to generate")
    p.add_argument("--backend", choices=(*GENERATE_BACKENDS, "fixed-lm"), default="float",
                   help="float (= torch): the float64 reference; fixed: the fixed-point reference; fixed-lm: the whole "
                        "LM in integers (int8 readout, LFSR sampler: what --lm puts on chip); any other: the core "
                        "in that simulated hardware, checked against the reference of its arithmetic (exit 1 on a "
                        "decidable difference)")
    p.add_argument("--lm", action="store_true",
                   help="amaranth/verilator: the whole LM on chip (rcsnn verilog --lm: embedding ROM, readout, sampler) "
                        "from the prompt's bytes, checked against --backend fixed-lm")
    p.add_argument("--temperature", type=nonnegative_float, default=0.8, help="softmax temperature; 0: greedy (argmax)")
    p.add_argument("--seed", type=seed, default=0)
    p.add_argument("--quiet", action="store_true", help="no progress lines on stderr (hardware back ends)")
    digital_options.add_arguments(p)
    spice_options.add_circuit_arguments(p)
    p.add_argument("--netlist", metavar="DIR", default=None,
                   help="spice: write the host-driven deck(s) (block_*.cir or core.cir, core.json, rcsnn_cells.lib) "
                        "here and keep them")
    p.add_argument("--spice-decks", choices=("blocks", "one"), default="blocks",
                   help="spice: blocks (default): one deck per block in parallel ngspice processes, coupled by the "
                        "host in lock-step; one: the whole core as one deck in libngspice")
    p.add_argument("--blocks", type=positive_int, default=None,
                   help="spice, --spice-decks blocks: number of decks (default about 128 neurons each)")
    p.add_argument("--build-dir", metavar="DIR", default=None,
                   help="verilator/icarus: emit the design and build the simulator here and keep it (an unchanged "
                        "design reuses its Verilator build); default: a temporary directory")
    p.set_defaults(run=_cmd_generate)

    p = sub.add_parser("graph", help="write the IR (.json, .graphml), optionally after a pass, or a NIR file (.nir)")
    add_core_arguments(p)
    p.add_argument("--after", choices=("quantize", "retime", "partition", "place"), default=None,
                   help="show the IR after this pass (place runs quantize first)")
    p.add_argument("--lanes", type=int_range(1, 32), default=8, help="place: parallel lanes of the digital core")
    p.add_argument("--blocks", type=positive_int, default=12, help="partition: number of open-loop SPICE decks")
    p.add_argument("--nir-for", choices=("snntorch", "norse"), default=None,
                   help=".nir: write what that framework's NIR importer simulates as rcsnn does (docs/interop.md)")
    p.add_argument("-o", "--output", required=True)
    p.set_defaults(run=_cmd_graph)

    p = sub.add_parser("run", help="run a reference and write the raster (steps x neurons, int8) and membranes")
    add_core_arguments(p)
    add_stimulus_arguments(p, required=True)
    p.add_argument("--backend", choices=("float", "fixed"), default="float")
    p.add_argument("-o", "--output", required=True, help="output raster .npz (schema in rcsnn.ir.raster)")
    p.set_defaults(run=_cmd_run)

