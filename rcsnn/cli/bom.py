"""``rcsnn bom``: the bill of materials of a core's circuit and, from ngspice's source currents, its energy."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np

from ..analog import options as spice_options
from ..arguments import nonnegative_int, positive_float, positive_int
from ..files import atomic_directory, check_output
from .common import add_core_arguments, add_stimulus_arguments, load, stimulus

__all__ = ["register", "OWNED", "energy_summary"]

#: Files by which an existing output directory is recognised as an earlier bom's (replaced whole).
OWNED = ("bom.json",)


def energy_summary(energy: dict, spikes: np.ndarray, fanout: np.ndarray, bias_joules: float) -> dict:
    """Energy figures of ``energy`` (J per step of each component, :func:`rcsnn.analog.energy.netlist_energy`) for
    a run whose reference raster is ``spikes`` (steps, N); ``fanout`` (N,): synapse resistors of each neuron;
    ``bias_joules``: what the input lines draw per step at zero input (the bias alone)."""
    steps = spikes.shape[0]
    sops = int((spikes[:-1] @ fanout).sum())  # the level of step k is s[k−1]
    total = sum(e.sum() for e in energy.values())
    lines = float(energy["spike_lines"].sum())
    return {"steps": steps, "synaptic_operations": sops, "spikes": int(spikes.sum()),
            "joules": {k: float(v.sum()) for k, v in energy.items()}, "joules_per_step": total / steps,
            "joules_per_character": total / steps, "static_joules_per_step": bias_joules,
            "joules_per_sop_spike_lines": lines / sops if sops else None,
            "joules_per_sop_total": total / sops if sops else None}


def _cmd_bom(args) -> None:
    from ..analog.bom import count_parts, csv_text, markdown
    from ..analog.energy import netlist_energy
    from ..analog.eseries import parse_snap
    from ..analog.netlist import write_netlists
    from ..analog.neurons import plan
    from ..analog.opamp import parse_opamp
    from ..analog.partition import partition
    from ..analog.snap import ANNOTATION, snapped_arguments, text_cost
    from ..analog.variation import Tolerance
    from ..ir.reference import simulate_float
    from ..verify.spice import default_blocks

    check_output(args.output, directory=True, owned=OWNED)
    opts = spice_options.from_arguments(args)
    original = load(args)
    design = opts.design(original.arrays())
    graph = snapped_arguments(original, args.snap, design)
    stim = stimulus(args, graph, default_steps=20)
    if graph is not original:
        text_cost(original, graph, stim)
    core = graph.arrays()
    with tempfile.TemporaryDirectory(prefix="rcsnn-bom-") as tmp:
        # the parts do not depend on the stimulus' length: one step (an input line wherever x + b is not 0)
        write_netlists(graph, stim.currents[:1], Path(tmp) / "closed", design, "closed", budget=False)
        (deck,) = (Path(tmp) / "closed").glob("*.cir")  # closed loop: one deck of the whole core
        part = parse_opamp(design.opamp) if design.opamp else None
        bom = count_parts(deck.read_text(), parse_snap(args.snap) if args.snap else None, part.name if part else "",
                          Tolerance(trim=tuple(args.trim)).check().trim)
        form = f"op-amp form, {design.opamp}" if design.opamp else f"{design.form} form"
        document = {"core": args.core, "form": design.form, "snap": graph.annotation(ANNOTATION), "bom": bom.record()}
        text = markdown(bom, f"{args.core} ({form}{', ' + args.snap if args.snap else ''})")
        if part is not None:
            document["opamp"] = design.opamp
            if part.quiescent is None:
                text += f"\nAmplifier supply: your model {part.name} states no quiescent current; not counted.\n"
            else:
                document["amplifier_supply"] = supply = amplifier_supply(part, core.n_neurons, design)
                text += supply_markdown(supply)
        if args.energy_steps and design.form != "ideal":
            text += "\nEnergy: measured for the ideal form only (its sources are the whole power path).\n"
        elif args.energy_steps:
            currents = stim.currents[:args.energy_steps]
            ref = simulate_float(graph, currents)
            parted = partition(graph, default_blocks(core.n_neurons, opts.workers))
            write_netlists(parted, currents, Path(tmp) / "open", design, "open", ref.spikes, budget=False)
            energy = netlist_energy(Path(tmp) / "open", opts.workers, opts.timeout)
            p = plan(core, design)
            fanout = np.zeros(core.n_neurons)
            for s in core.synapses:
                np.add.at(fanout, core.offsets()[s.pre].start + core.block_weights(s).cols, 1)
            bias = float(np.sum((design.line_volts * core.bias) ** 2 / p.r_in) * design.step)
            e = energy_summary(energy, ref.spikes, fanout, bias)
            document["energy"] = e
            text += energy_markdown(e)
    with atomic_directory(args.output, owned=OWNED) as out:
        (out / "bom.md").write_text(text)
        (out / "bom.csv").write_text(csv_text(bom))
        (out / "bom.json").write_text(json.dumps(document, indent=1, sort_keys=True) + "\n")
    print(text + f"(written to {args.output}/bom.md, bom.csv, bom.json)")


def amplifier_supply(part, amplifiers: int, design) -> dict:
    """The static supply of ``amplifiers`` integrator amplifiers of a named ``part`` on the design's rails, from the
    datasheet's typical quiescent current (not simulated: the macromodel draws no supply current): W and J per step."""
    volts = design.rail_high - design.rail_low
    watts = amplifiers * part.quiescent * volts
    return {"part": part.name, "amplifiers": amplifiers, "quiescent_amperes": part.quiescent, "supply_volts": volts,
            "watts": watts, "step_seconds": design.step, "joules_per_step": watts * design.step}


def supply_markdown(s: dict) -> str:
    """The amplifiers' static supply as a Markdown paragraph."""
    from ..analog.bom import si

    return (f"\nAmplifier supply (datasheet typical quiescent current, not simulated): {s['amplifiers']:,} × "
            f"{si(s['quiescent_amperes'], 'A', 4)} × {s['supply_volts']:g} V = {si(s['watts'], 'W', 4)} static, "
            f"{si(s['joules_per_step'], 'J', 4)} per step of {si(s['step_seconds'], 's', 4)}.\n")


def energy_markdown(e: dict) -> str:
    """The energy figures as Markdown lines."""
    from ..analog.bom import si

    parts = ", ".join(f"{k.replace('_', ' ')} {si(v / e['steps'], 'J', 4)}" for k, v in e["joules"].items())
    per_sop = {k: si(e[k], "J", 4) if e[k] else "n/a" for k in ("joules_per_sop_spike_lines", "joules_per_sop_total")}
    return ("\n## Energy (ngspice source currents, ideal form)\n\n"
            f"{e['steps']} steps, {e['spikes']:,} spikes, {e['synaptic_operations']:,} synaptic operations: "
            f"{si(e['joules_per_step'], 'J', 4)} per step = per character ({parts} per step); the bias alone (static: "
            f"drawn at zero input, no spikes) {si(e['static_joules_per_step'], 'J', 4)} per step; per synaptic operation: "
            f"spike lines {per_sop['joules_per_sop_spike_lines']}, all energy {per_sop['joules_per_sop_total']}. "
            "Ideal sources: a lower bound for a built circuit (no amplifier, comparator, clock or DAC power).\n")


def register(sub) -> None:
    """Add ``bom`` to the ``rcsnn`` subparsers."""
    p = sub.add_parser("bom", help="bill of materials of the circuit (discrete and integrated) and its energy")
    add_core_arguments(p)
    add_stimulus_arguments(p, currents=True, steps_help="steps of the stimulus (default 20 of the held-out text)")
    spice_options.add_circuit_arguments(p)
    p.add_argument("--energy-steps", type=nonnegative_int, default=20,
                   help="steps of the ngspice run that measures the energy (ideal form; 0: no energy, default 20)")
    p.add_argument("--workers", type=positive_int, default=spice_options.SpiceOptions.workers,
                   help="parallel ngspice processes of the energy run")
    p.add_argument("--timeout", type=positive_float, default=None, help="seconds per deck before ngspice is stopped")
    p.add_argument("--trim", nargs="+", default=[], metavar="PART",
                   help="count the trims of a calibrated build (input, leak: as rcsnn montecarlo --trim models them)")
    p.add_argument("-o", "--output", required=True, help="output directory: bom.md, bom.csv, bom.json")
    p.set_defaults(run=_cmd_bom)
