"""``rcsnn netlist`` and ``rcsnn simulate``: write SPICE decks of a core, run them in ngspice."""

from __future__ import annotations

import argparse

import numpy as np

from ..errors import RcsnnError
from .design import FORMS, Design
from .netlist import MODES


def _currents(core, args) -> tuple[np.ndarray, str]:
    """(steps, N) external currents from --prompt, --input (port vectors) or --currents (per neuron)."""
    from .. import cli

    if args.currents is not None:
        try:
            x = np.load(args.currents, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise RcsnnError(f"{args.currents}: cannot read as a .npy array ({exc})") from None
        if x.ndim != 2 or x.shape[1] != core.n_neurons or not np.isfinite(x).all():
            raise RcsnnError(f"{args.currents}: shape {x.shape}, expected finite (steps, {core.n_neurons}) currents")
        return x[: args.steps], args.currents
    return cli.stimulus(core, args)


def _cmd_netlist(args) -> None:
    from .. import cli
    from ..model.reference import simulate_float
    from .netlist import write_netlists

    core = cli._load(args)
    currents, stimulus = _currents(core, args)
    design = Design.scaled(args.clock, form=args.form, gain=args.gain,
                           **({"max_step": args.max_step} if args.max_step else {}))
    reference = simulate_float(core, currents).spikes if args.mode == "open" else None
    sidecar = write_netlists(core, currents, args.output, design, args.mode, args.blocks, reference, stimulus)
    print(f"wrote {len(sidecar['decks'])} deck(s) ({args.mode} loop, {args.form} form, {sidecar['steps']} steps, "
          f"{core.n_neurons} neurons, {core.nonzeros()} synapses) to {args.output}/ with core.json and rcsnn_cells.lib")


def _cmd_simulate(args) -> None:
    from .simulate import read_sidecar, simulate_dir

    run = simulate_dir(args.directory, args.steps, args.runner, args.workers, args.timeout)
    sidecar = read_sidecar(args.directory)
    output = args.output or f"{args.directory}/spice_run.npz"
    starts = [g["start"] for g in sidecar["groups"]]
    np.savez_compressed(output, spikes=run.spikes, membranes=run.membranes, backend=np.array("spice"),
                        groups=np.array([g["name"] for g in sidecar["groups"]]), group_start=np.array(starts))
    print(f"spice: {run.spikes.shape[0]} steps x {run.spikes.shape[1]} neurons, {int(run.spikes.sum())} spikes; "
          f"{len(run.deck_seconds)} deck(s), wall {run.seconds:.1f} s, CPU {sum(run.deck_cpu):.1f} s, "
          f"peak {run.peak_kib / 1024:.0f} MiB -> {output}")


def register(sub) -> None:
    """Add the ``netlist`` and ``simulate`` subcommands to the ``rcsnn`` parser."""
    from ..cli import _core_arguments

    p = sub.add_parser("netlist", help="write SPICE netlists (ngspice) of a core with its input stimulus")
    _core_arguments(p)
    source = p.add_mutually_exclusive_group()
    source.add_argument("--prompt", help="text fed one character per step (default: held-out pydoc text)")
    source.add_argument("--input", help=".npy array (steps x inputs) fed to the input port")
    source.add_argument("--currents", help=".npy array (steps x neurons) of external currents x, without bias")
    p.add_argument("--steps", type=int, default=None, help="cut the stimulus to this many steps (default sample: 200)")
    p.add_argument("--mode", choices=MODES, default="closed",
                   help="closed: one free-running deck; open: blocks driven by the reference raster")
    p.add_argument("--blocks", type=int, default=1, help="open mode: number of decks (contiguous neuron ranges)")
    p.add_argument("--form", choices=FORMS, default="ideal",
                   help="ideal: CCCS virtual ground (exact, default); opamp: inverting integrator of gain --gain")
    p.add_argument("--gain", type=float, default=Design.gain, help="op-amp open-loop gain (opamp form)")
    p.add_argument("--clock", type=float, default=Design.step, help="clock period = one step, seconds (default 1e-6)")
    p.add_argument("--max-step", type=float, default=None, help="cap on ngspice's maximum time step, seconds (default clock/50; "
                   "each deck uses at most its fastest tau/200)")
    p.add_argument("-o", "--output", required=True, help="output directory")
    p.set_defaults(run=_cmd_netlist)

    p = sub.add_parser("simulate", help="run the netlists of a directory in ngspice; write the raster and membranes")
    p.add_argument("directory", metavar="DIR", help="directory written by `rcsnn netlist`")
    p.add_argument("--steps", type=int, default=None, help="simulate the first N steps (default: all)")
    p.add_argument("--runner", choices=("subprocess", "pyspice"), default="subprocess",
                   help="ngspice -b processes (parallel) or in-process libngspice through PySpice")
    p.add_argument("--workers", type=int, default=2, help="parallel ngspice processes")
    p.add_argument("--timeout", type=float, default=None, help="seconds per deck before ngspice is stopped")
    p.add_argument("-o", "--output", default=None, help="output .npz (default DIR/spice_run.npz)")
    p.set_defaults(run=_cmd_simulate)
