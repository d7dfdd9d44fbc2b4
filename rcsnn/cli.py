"""The ``rcsnn`` command: one entry point, a subcommand per step of the flow."""

from __future__ import annotations

import argparse
import sys

from .errors import RcsnnError


def _cmd_train(args) -> None:
    import json

    import torch

    from .graph.core import FixedFormat
    from .model.checkpoint import save_checkpoint
    from .model.corpus import Corpus, read_text
    from .model.train import TrainConfig, config_dict, evaluate_core, train

    torch.set_num_threads(args.threads)
    cfg = TrainConfig(
        group_size=args.neurons, taus=tuple(args.taus), embed=args.embed, theta=args.theta, reset=args.reset,
        sparsity=args.sparsity, float_steps=args.float_steps, prune_steps=args.prune_steps,
        ternary_steps=args.ternary_steps, batch=args.batch, length=args.length, lr=args.lr, l1=args.l1,
        membrane_penalty=args.membrane_penalty, rate_penalty=args.rate_penalty, seed=args.seed, dt=args.dt,
        fixed=FixedFormat(Wv=24, Fv=args.fv, Fb=args.fb), log_every=args.log_every,
    )
    if cfg.ternary_steps <= 0:
        raise RcsnnError("--ternary-steps: must be > 0, an exported core is ternary")
    corpus = Corpus.from_text(read_text(args.text))
    print(f"corpus: {len(corpus.train)} training and {len(corpus.held_out)} held-out characters, "
          f"{len(corpus.vocab)} symbols; {len(cfg.taus)} groups x {cfg.group_size} neurons", flush=True)
    log = lambda line: print(line, flush=True)  # noqa: E731
    model, metrics = train(cfg, corpus, log)
    core = model.to_core(cfg.fixed, cfg.dt)
    core, reference_metrics = evaluate_core(core, corpus.held_out, log)
    metrics.update(reference_metrics)
    extra = {
        "training": {**config_dict(cfg), "text": args.text or "pydoc_data.topics", "command": "rcsnn " + " ".join(sys.argv[1:])},
        "metrics": metrics,
    }
    save_checkpoint(core, args.output, extra)
    print(json.dumps(metrics, indent=1))
    print(f"wrote {args.output}")


def _load(args):
    from .load import load_core

    return load_core(args.core, dt=args.dt, reset=args.reset)


def _sample_currents(core, steps: int):
    """Currents of a sample: held-out pydoc text for a core with a vocabulary, else N(0,1) inputs."""
    import numpy as np

    if core.frontend is not None:
        from .model.corpus import default_text

        text = default_text()[-steps:]
        if set(text) <= set(core.frontend.vocab):
            return core.text_currents(text), f"the last {steps} characters of pydoc_data.topics"
    rng = np.random.default_rng(0)
    return core.input_currents(rng.standard_normal((steps, core.n_inputs))), "N(0,1) random inputs (seed 0)"


def _cmd_info(args) -> None:
    import json

    from .graph.summary import describe

    core = _load(args)
    currents, name = _sample_currents(core, args.steps)
    print(describe(core, currents, name))
    if not args.core.endswith((".nir", ".json", ".graphml")):
        from .model.checkpoint import read_config

        config = read_config(args.core)
        if "metrics" in config:
            print("training metrics: " + json.dumps(config["metrics"], sort_keys=True))
        if "training" in config:
            print("trained by: " + config["training"].get("command", "?"))


def _input_currents(core, args):
    """(steps, N) float64 currents from --prompt or --input, cut to --steps."""
    import numpy as np

    if args.prompt is not None:
        currents = core.text_currents(args.prompt)
    else:
        try:
            x = np.load(args.input, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise RcsnnError(f"{args.input}: cannot read as a .npy array ({exc})") from None
        if x.ndim != 2 or x.shape[1] != core.n_inputs:
            raise RcsnnError(f"{args.input}: shape {x.shape}, expected (steps, {core.n_inputs}) for the core's input port")
        if not np.isfinite(x).all():
            raise RcsnnError(f"{args.input}: contains NaN or inf")
        currents = core.input_currents(x)
    if args.steps is not None:
        if args.steps > len(currents):
            raise RcsnnError(f"--steps {args.steps}: the input has only {len(currents)} steps")
        currents = currents[: args.steps]
    return currents


def _cmd_run(args) -> None:
    import numpy as np

    from .model.reference import simulate_fixed, simulate_float

    core = _load(args)
    currents = _input_currents(core, args)
    run = (simulate_fixed if args.backend == "fixed" else simulate_float)(core, currents)
    offsets = core.offsets()
    np.savez_compressed(
        args.output, spikes=run.spikes, membranes=run.membranes, backend=np.array(args.backend),
        groups=np.array([g.name for g in core.groups]), group_start=np.array([sl.start for sl in offsets.values()]),
    )
    rates = " ".join(f"{g.name} {run.spikes[:, sl].mean():.3f}" for g, sl in zip(core.groups, offsets.values()))
    print(f"{args.backend}: {run.spikes.shape[0]} steps x {run.spikes.shape[1]} neurons, {int(run.spikes.sum())} spikes "
          f"(rates {rates}) -> {args.output}")


def _cmd_generate(args) -> None:
    from .model.generate import generate

    core = _load(args)
    text = generate(core, args.prompt, args.length, backend=args.backend, seed=args.seed, temperature=args.temperature)
    print(args.prompt + text)


def _cmd_graph(args) -> None:
    from pathlib import Path

    core = _load(args)
    out = Path(args.output)
    if out.suffix == ".nir":
        from .graph.nir_io import write_nir

        write_nir(core, out)
    else:
        from .graph.serialize import save_graph

        save_graph(core, out)
    print(f"wrote {out} ({len(core.groups)} groups, {core.n_neurons} neurons, {core.nonzeros()} synapses)")


def stimulus(core, args, default_steps: int = 200):
    """``(currents (steps, N), description)`` from --prompt or --input, else the sample of :func:`_sample_currents`."""
    if args.prompt is not None:
        return _input_currents(core, args), "--prompt " + repr(args.prompt)
    if args.input is not None:
        return _input_currents(core, args), args.input
    return _sample_currents(core, args.steps or default_steps)


def _cmd_verify(args) -> int:
    """Check a backend against its reference; the backend modules do the work and return the exit code."""
    core = _load(args)
    currents, stimulus_name = stimulus(core, args)
    print(f"stimulus: {stimulus_name}, {len(currents)} steps", flush=True)
    backends = ("spice", "amaranth", "verilator", "icarus") if args.backend == "all" else (args.backend,)
    worst = 0
    for backend in backends:
        if backend == "spice":
            from .analog.verify import verify_spice as check
        else:
            from .digital.verify import verify_digital as check
        worst = max(worst, check(core, currents, backend, args))
    return worst


def _core_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("core", metavar="CORE", help="rcsnn checkpoint, graph (.json/.graphml) or NIR file")
    p.add_argument("--dt", type=float, default=None, help="NIR only: seconds per step (default 1e-4, snnTorch's exporter)")
    p.add_argument("--reset", choices=("zero", "subtract"), default=None, help="NIR only: reset mode (default subtract)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rcsnn", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("train", help="train a ternary multi-timescale spiking LM and save its core")
    p.add_argument("--text", help="UTF-8 training text (default: pydoc_data.topics from the standard library)")
    p.add_argument("--neurons", type=int, default=512, help="neurons per group")
    p.add_argument("--taus", type=float, nargs="+", default=[1.0, 4.0, 16.0], help="membrane time constant of each group, in steps")
    p.add_argument("--embed", type=int, default=64)
    p.add_argument("--theta", type=float, default=1.0)
    p.add_argument("--reset", choices=("zero", "subtract"), default="zero")
    p.add_argument("--sparsity", type=float, default=0.936)
    p.add_argument("--float-steps", type=int, default=1000)
    p.add_argument("--prune-steps", type=int, default=700)
    p.add_argument("--ternary-steps", type=int, default=700)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--length", type=int, default=128)
    p.add_argument("--lr", type=float, default=1e-2)
    p.add_argument("--l1", type=float, default=2e-5)
    p.add_argument("--membrane-penalty", type=float, default=0.0)
    p.add_argument("--rate-penalty", type=float, default=0.0)
    p.add_argument("--dt", type=float, default=1e-3, help="seconds per step (NIR export, analog clock)")
    p.add_argument("--fv", type=int, default=12, help="fractional bits of membrane and weights")
    p.add_argument("--fb", type=int, default=14, help="fractional bits of beta")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--log-every", type=int, default=50)
    p.add_argument("-o", "--output", required=True)
    p.set_defaults(run=_cmd_train)

    p = sub.add_parser("info", help="groups, tau/beta, theta, reset, sparsity, packed sizes, firing rates")
    _core_arguments(p)
    p.add_argument("--steps", type=int, default=500, help="length of the sample used for firing rates")
    p.set_defaults(run=_cmd_info)

    p = sub.add_parser("generate", help="generate text from a language-model core")
    _core_arguments(p)
    p.add_argument("--prompt", required=True)
    p.add_argument("--length", type=int, default=200, help="characters to generate")
    p.add_argument("--backend", choices=("torch", "float", "fixed"), default="float",
                   help="float (= torch): the float64 reference; fixed: the fixed-point reference")
    p.add_argument("--temperature", type=float, default=0.8)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(run=_cmd_generate)

    p = sub.add_parser("graph", help="export the intermediate graph (.json, .graphml) or a NIR file (.nir)")
    _core_arguments(p)
    p.add_argument("-o", "--output", required=True)
    p.set_defaults(run=_cmd_graph)

    p = sub.add_parser("run", help="run a reference and write the raster (steps x neurons, int8) and membranes")
    _core_arguments(p)
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--prompt", help="text fed one character per step (language-model cores)")
    source.add_argument("--input", help=".npy array (steps x inputs) fed to the input port")
    p.add_argument("--steps", type=int, default=None)
    p.add_argument("--backend", choices=("float", "fixed"), default="float")
    p.add_argument("-o", "--output", required=True, help="output .npz (spikes, membranes, groups, group_start)")
    p.set_defaults(run=_cmd_run)

    p = sub.add_parser("verify", help="check a backend spike for spike against its reference (exit 1 on any mismatch)")
    _core_arguments(p)
    p.add_argument("--backend", choices=("spice", "amaranth", "verilator", "icarus", "all"), required=True)
    p.add_argument("--steps", type=int, default=200)
    source = p.add_mutually_exclusive_group()
    source.add_argument("--prompt", help="text fed one character per step (default: held-out pydoc text)")
    source.add_argument("--input", help=".npy array (steps x inputs) fed to the input port")
    p.add_argument("--mode", choices=("closed", "open"), default="open",
                   help="spice: closed loop, or open loop (blocks driven by the reference raster)")
    p.add_argument("--workers", type=int, default=2, help="spice: parallel ngspice processes")
    p.add_argument("--out", default="verify-out", help="directory for reports, plots and waveforms")
    p.set_defaults(run=_cmd_verify)

    from .analog.cli import register as register_analog

    register_analog(sub)

    from .digital.cli import register as register_digital

    register_digital(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args) or 0
    except RcsnnError as exc:
        print(f"rcsnn: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
