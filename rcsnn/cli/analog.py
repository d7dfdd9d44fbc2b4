"""Subcommands of the analog back end: ``rcsnn netlist`` and ``rcsnn simulate``."""

from __future__ import annotations

from ..analog import options as spice_options
from ..arguments import positive_int
from ..files import atomic_directory, check_output
from .common import add_core_arguments, add_stimulus_arguments, load, stimulus

__all__ = ["register"]


def _cmd_netlist(args) -> None:
    from ..analog.netlist import SIDECAR, write_netlists
    from ..analog.partition import partition
    from ..analog.scale import BOUNDED_CORE, saturate
    from ..analog.snap import save_snapped, snapped_arguments, text_cost
    from ..ir.reference import simulate_float

    check_output(args.output, directory=True, owned=(SIDECAR,))
    opts = spice_options.from_arguments(args)
    original = load(args)
    design = opts.design(original.arrays())
    graph = snapped_arguments(original, args.snap, design)
    stim = stimulus(args, graph)
    if graph is not original:
        text_cost(original, graph, stim)
    if opts.saturate:
        graph = saturate(graph, design)
    snapped = graph
    reference = None
    if opts.mode == "open":
        graph = partition(graph, opts.blocks or 1)
        reference = simulate_float(graph, stim.currents).spikes
    with atomic_directory(args.output, owned=(SIDECAR,)) as tmp:  # replaces an earlier netlist directory whole
        sidecar = write_netlists(graph, stim.currents, tmp, design, opts.mode, reference, stim.description,
                                 clipping=opts.allow_clipping)
        save_snapped(snapped, tmp)
    core = graph.arrays()
    form = f"op-amp form, amplifier {design.opamp}" if design.opamp else f"{design.form} form"
    libraries = sorted(name for name in sidecar["files"] if name.endswith(".lib"))
    print(f"wrote {len(sidecar['decks'])} deck(s) ({opts.mode} loop, {form}, {sidecar['steps']} steps, "
          f"{core.n_neurons} neurons, {core.nonzeros()} synapses) to {args.output}/ with core.json and "
          f"{', '.join(libraries)}"
          + (f" and the bounded core {BOUNDED_CORE}" if opts.saturate else
             " and the snapped core snapped.rcsnn" if args.snap else ""))
    scale = sidecar["circuit"].get("scale")
    if scale is not None:
        print(f"physical scale: S = {scale['volts_per_unit']:g} V per membrane unit, rails {scale['rails']} V, clock "
              f"{scale['clock']:g} s; " + "; ".join(
                  f"{g['name']}: theta {g['theta_volts'][1]:.4g} V" + "".join(
                      f", {k} clamp {g[k + '_clamp_volts'][0]:.4g}..{g[k + '_clamp_volts'][1]:.4g} V"
                      for k in ("v_min", "v_max") if k + "_clamp_volts" in g) for g in scale["groups"]))


def _cmd_simulate(args) -> None:
    from ..analog.simulate import read_sidecar, simulate_dir
    from ..ir.raster import Raster

    opts = spice_options.from_arguments(args)
    output = check_output(Raster.npz_path(args.output or f"{args.directory}/spice_run.npz"))
    run = simulate_dir(args.directory, args.steps, opts.runner, opts.workers, opts.timeout, trust_edits=args.trust_edits)
    sidecar = read_sidecar(args.directory)
    groups = sidecar["groups"]
    unit = "V" if sidecar["circuit"]["design"].get("volts_per_unit", 1.0) == 1.0 else "membrane"  # read back /S
    raster = Raster(run.spikes, run.membranes, unit, "spice", tuple(g["name"] for g in groups),
                    tuple(g["start"] for g in groups), tuple(g["size"] for g in groups),
                    {"netlists": str(args.directory), "stimulus": sidecar.get("stimulus", "")})
    path = raster.save(output)
    print(f"spice: {run.spikes.shape[0]} steps x {run.spikes.shape[1]} neurons, {int(run.spikes.sum())} spikes; "
          f"{len(run.deck_seconds)} deck(s), wall {run.seconds:.1f} s, CPU {sum(run.deck_cpu):.1f} s, "
          f"peak {run.peak_kib / 1024:.0f} MiB -> {path}")


def register(sub) -> None:
    """Add ``netlist`` and ``simulate`` to the ``rcsnn`` subparsers."""
    p = sub.add_parser("netlist", help="write SPICE netlists (ngspice) of a core with its input stimulus")
    add_core_arguments(p)
    add_stimulus_arguments(p, currents=True, steps_help="cut the stimulus to this many steps (default sample: 200)")
    spice_options.add_design_arguments(p, mode="closed")
    p.add_argument("-o", "--output", required=True, help="output directory")
    p.set_defaults(run=_cmd_netlist)

    p = sub.add_parser("simulate", help="run the netlists of a directory in ngspice; write the raster and membranes")
    p.add_argument("directory", metavar="DIR", help="directory written by `rcsnn netlist`")
    p.add_argument("--steps", type=positive_int, default=None, help="simulate the first N steps (default: all)")
    spice_options.add_run_arguments(p)
    p.add_argument("--trust-edits", action="store_true",
                   help="run decks whose files differ from the SHA-256 in core.json (hand-edited: a deck is code "
                        "that ngspice runs, check it first)")
    p.add_argument("-o", "--output", default=None, help="output raster .npz (default DIR/spice_run.npz)")
    p.set_defaults(run=_cmd_simulate)
