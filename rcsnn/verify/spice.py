"""Spike-for-spike verification of the SPICE circuit against the float64 reference, within an a-priori budget.

The budget is fixed before the circuit runs: each group's ``a`` and ``b`` are written into the
netlists' ``core.json`` by :func:`~rcsnn.analog.netlist.write_netlists` (derivation and calibration
in :mod:`rcsnn.analog.budget`); nothing measured in the verified run enters it. With
budget(v) = a + b·max(|v| − θ, 0) per event (step, neuron):

* an event whose margin |v_ref − θ| exceeds budget(v_ref) is *decidable*: SPICE's spike must equal
  the reference's, else FAIL; in a group with spike counts (``max_spikes`` K ≠ 1) the margin is the
  distance to the *nearest* count boundary kθ (k = 1..K), and the band grows by (k − 1)·σ (the comparator's
  sampling uncertainty σ scales with its threshold kθ): the count must equal the reference's;
* an event within it is *undecidable*: counted and listed (with whether it mismatched), never
  silently passed — an undecidable mismatch alone does not fail the verdict, because it is listed;
* every membrane at every clock edge, every neuron, must satisfy |v_spice − v_ref| ≤ budget(v_ref),
  else FAIL even if no spike flips (the worst violation is reported).

Open loop: blocks of neurons whose spike lines and resets replay the reference raster, so every
step is judged given the reference past. Closed loop: the circuit runs on its own; steps are judged
up to and including the first divergence (later ones cascade and are not judged).
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from ..analog.budget import allowance
from ..analog.design import Design
from ..analog.netlist import STIMULUS, core_digest, write_netlists
from ..analog.options import SpiceOptions
from ..analog.partition import partition
from ..analog.scale import BOUNDED_CORE, saturate
from ..analog.simulate import SpiceRun, read_sidecar, simulate_dir
from ..analog.snap import save_snapped
from ..errors import RcsnnError
from ..ir.arrays import Core
from ..ir.graph import Graph
from ..ir.passes import retime, skew_currents, unskew_raster
from ..ir.raster import Raster
from ..ir.reference import Run, simulate_float
from ..ir.stimulus import Stimulus, load_npy
from ..tools import version
from .compare import Comparison, compare_rasters, locate
from .report import Provenance, Report, machine

__all__ = ["BLOCK_NEURONS", "SHOWN", "Verdict", "margins", "judge", "findings", "default_blocks", "netlist_stimulus",
           "verify_spice"]

#: Neurons per open-loop block by default: blocks this small keep ngspice's sparse solve cheap.
BLOCK_NEURONS = 128
#: Events listed by name in the report's lines (report.json lists them all).
SHOWN = 5


@dataclass(frozen=True)
class Verdict:
    """Outcome of one verification against the a-priori budget.

    Attributes:
        budgets: the sidecar's per-group budget entries (``group``, ``a``, ``b``, ``theta``, ...).
        judged_steps: steps judged (all in open loop; up to the first divergence in closed loop).
        violations: membranes outside budget(v_ref); ``worst``: the event with the largest
            |v_spice − v_ref| / budget(v_ref) (a violation if > 1).
        undecidable: (k, 2) (step, neuron) with margin ≤ its band (:func:`margins`); ``undecidable_mismatched`` the
            subset whose spikes differ.
        decidable_mismatches: mismatches with margin > budget(v_ref) (each one fails the verdict).
    """

    mode: str
    comparison: Comparison
    budgets: list
    judged_steps: int
    violations: int
    worst: dict
    largest_error: float
    smallest_margin: float
    smallest_at: tuple[int, int]
    undecidable: np.ndarray
    undecidable_mismatched: np.ndarray
    decidable_mismatches: int
    first: dict | None

    @property
    def passed(self) -> bool:
        return self.decidable_mismatches == 0 and self.violations == 0


def margins(core: Core, budget: dict, v_ref: np.ndarray, allow: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(margin, band) of every event ``(steps, N)``: the distance |v_ref − kθ| to the nearest count boundary
    (k = 1 for a binary neuron; k = clip(round(v_ref/θ), 1, K) with spike counts, K = ∞ when unbounded) and
    the undecidable band, budget(v_ref) + (k − 1)·σ (σ: the group's sampling uncertainty in ``budget``)."""
    theta = core.per_neuron("theta")
    sizes = [g.size for g in core.groups]
    top = np.repeat([g.max_spikes if g.max_spikes else np.inf for g in core.groups], sizes)
    sampling = {b["group"]: b.get("sampling", 0.0) for b in budget["groups"]}
    sigma = np.repeat([sampling.get(g.name, 0.0) for g in core.groups], sizes)
    k = np.clip(np.rint(v_ref / theta), 1, top)
    return np.abs(v_ref - k * theta), allow + (k - 1) * sigma


def _event(core: Core, step: int, neuron: int, **values) -> dict:
    group, index = locate(core, neuron)
    return {"step": int(step), "group": group, "index": int(index), "neuron": int(neuron),
            **{k: float(v) for k, v in values.items()}}


def judge(core: Core, ref: Run, got: SpiceRun, budget: dict, mode: str) -> Verdict:
    """Judge ``got`` against ``ref`` with the sidecar's ``budget`` entry (see the module docstring)."""
    comparison = compare_rasters(core, ref.spikes, got.spikes)
    theta = core.per_neuron("theta")  # counts: the first divergence names θ, its margin is to the nearest kθ
    steps = ref.spikes.shape[0]
    judged = steps if mode == "open" or comparison.first is None else comparison.first.step + 1
    v_ref, v_spice = ref.membranes[:judged], got.membranes[:judged]
    allow = allowance(core, budget, v_ref)
    error = np.abs(v_spice - v_ref)
    ratio = error / allow
    outside = ratio > 1
    t, i = np.unravel_index(int(ratio.argmax()), ratio.shape)
    worst = _event(core, t, i, v_ref=v_ref[t, i], v_spice=v_spice[t, i], error=error[t, i], budget=allow[t, i],
                   ratio=ratio[t, i])
    margin, band = margins(core, budget, v_ref, allow)
    undecidable = margin <= band
    differ = ref.spikes[:judged] != got.spikes[:judged]
    first = None
    if comparison.first is not None:
        f = comparison.first
        first = {"step": f.step, "group": f.group, "index": f.index, "neuron": f.neuron,
                 "v_ref": float(ref.membranes[f.step, f.neuron]), "v_spice": float(got.membranes[f.step, f.neuron]),
                 "theta": float(theta[f.neuron]), "s_ref": f.expected, "s_spice": f.got,
                 "budget": float(band[f.step, f.neuron]), "decidable": bool(not undecidable[f.step, f.neuron])}
    ts, ns = np.unravel_index(int(margin.argmin()), margin.shape)
    return Verdict(mode, comparison, budget["groups"], judged, int(outside.sum()), worst, float(error.max()),
                   float(margin.min()), (int(ts), int(ns)), np.argwhere(undecidable), np.argwhere(undecidable & differ),
                   int((differ & ~undecidable).sum()), first)


def _where(core: Core, step: int, neuron: int) -> str:
    group, index = locate(core, neuron)
    return f"step {step}, group {group} neuron {index} (global {neuron})"


def _listed(core: Core, events: np.ndarray) -> str:
    shown = ", ".join(_where(core, int(t), int(i)) for t, i in events[:SHOWN])
    return (f": {shown}" if shown else "") + (" ..." if len(events) > SHOWN else "")


def _state_terms(b: dict) -> str:
    """A CubaLIF group's state terms of its budget line (``budget.state`` in core.json), else ""."""
    st = b.get("state")
    return (f"; CubaLIF state: leak error {st['error']:.2g} x history {st['history']:.3g} V, gain error "
            f"{st['gain']:.2g} x current {st['current']:.3g} V") if st else ""


def _clamp_terms(b: dict) -> str:
    """A bounded group's clamp terms of its budget line (``budget.clamp`` in core.json), else ""."""
    c = b.get("clamp")
    return (f"; clamp: (falling-edge error {c['edge']:.2g} + gain error) x last clamped |v| {c['history']:.3g}, "
            f"conductance error {c['conductance']:.2g}") if c else ""


def findings(core: Core, v: Verdict, got: SpiceRun, design: Design, retries: tuple = ()) -> tuple[list[str], dict]:
    """The verdict's findings: sentences for people, and the same numbers for JSON."""
    u = "V" if design.volts_per_unit == 1.0 else "units"  # membranes read back in units (volts / S)
    judged = "all steps" if v.judged_steps == v.comparison.steps \
        else f"steps 0..{v.judged_steps - 1} (to the first divergence)"
    form = f"{design.form} form" + (f" with amplifier {design.opamp} (not the contract: first-order errors in the "
                                     "netlists' core.json, circuit.opamp)" if design.opamp else "")
    lines = [f"{v.mode} loop, {form}, judged {judged}: decidable mismatches {v.decidable_mismatches}, "
             f"membranes outside the budget {v.violations}, undecidable events {len(v.undecidable)} "
             f"({len(v.undecidable_mismatched)} mismatched)"]
    lines += [f"a-priori budget {b['group']}: a = {b['a']:.3g} {u} ({b['a'] / b['theta']:.3g} theta), "
              f"b = {b['b']:.3g} {u}/{u} "
              f"(|v_spice - v_ref| <= a + b*max(|v_ref| - theta, 0); ngspice max step {b['max_step']:.3g} s, "
              f"leak error {b['leak_error']:.2g}, gain error {b['gain_error']:.2g}, history {b['history']:.3g} {u}, "
              f"safety {b['safety']:g}" + _state_terms(b) + _clamp_terms(b) + ")" for b in v.budgets]
    for b in v.budgets:
        if b.get("disagrees"):
            lines.append(f"CALIBRATION DISAGREES for {b['group']}: the calibration decks do not implement the model "
                         f"within the derived integration error ({'; '.join(b['disagrees'])}); the budget keeps the "
                         "capped values, so this circuit error shows as membranes outside the budget")
    w = v.worst
    lines.append(("WORST MEMBRANE VIOLATION" if w["ratio"] > 1 else "largest membrane error against its budget")
                 + f": {_where(core, w['step'], w['neuron'])}: v_ref {w['v_ref']:.9g} {u}, v_spice {w['v_spice']:.9g} {u}, "
                 f"|error| {w['error']:.3g} {u}, budget {w['budget']:.3g} {u} ({w['ratio']:.2g} of it)")
    if v.first is not None:
        f = v.first
        lines.append(f"first divergence: step {f['step']}, group {f['group']} neuron {f['index']} (global {f['neuron']}): "
                     f"v_ref {f['v_ref']:.9g} {u}, v_spice {f['v_spice']:.9g} {u}, theta {f['theta']:.6g}, budget "
                     f"{f['budget']:.3g} {u} ({'decidable' if f['decidable'] else 'undecidable'}); "
                     f"reference s={f['s_ref']}, SPICE s={f['s_spice']}")
    boundary = "|v_ref - k*theta| (the nearest count boundary)" if core.multi_spike() else "|v_ref - theta|"
    lines.append(f"smallest margin {boundary}: {v.smallest_margin:.3g} {u} at {_where(core, *v.smallest_at)}")
    lines.append(f"undecidable events (margin <= budget): {len(v.undecidable)}" + _listed(core, v.undecidable))
    if len(v.undecidable_mismatched):
        lines.append(f"undecidable mismatches (listed, not failed): {len(v.undecidable_mismatched)}"
                     + _listed(core, v.undecidable_mismatched))
    steps = max(1, v.comparison.steps)
    cpu = sum(got.deck_cpu)
    m = machine()
    lines.append(f"ngspice: {len(got.deck_cpu)} deck(s), wall {got.seconds:.1f} s, CPU {cpu:.1f} s "
                 f"({cpu / steps:.3g} s per step; per deck per step " + ", ".join(f"{c / steps:.3g}" for c in got.deck_cpu)
                 + f" s), peak memory {got.peak_kib / 1024:.0f} MiB per process; machine {m['cpu']}, {m['cores']} cores")
    for note in retries:
        lines.append(f"RETRIED once (ngspice failed, the identical deck passed on the second run): {note}")
    figures = {"mode": v.mode, "form": design.form, "passed": v.passed, "judged_steps": v.judged_steps,
               "decidable_mismatches": v.decidable_mismatches, "membrane_violations": v.violations,
               "worst_membrane": v.worst, "largest_error": v.largest_error,
               "undecidable_mismatches": len(v.undecidable_mismatched), "first_divergence": v.first,
               "smallest_margin": v.smallest_margin,
               "smallest_margin_at": {"step": v.smallest_at[0], "neuron": v.smallest_at[1]},
               "budget": v.budgets,
               "undecidable": [_event(core, t, i) for t, i in v.undecidable],
               "undecidable_mismatched": [_event(core, t, i) for t, i in v.undecidable_mismatched],
               "wall_seconds": got.seconds, "deck_seconds": list(got.deck_seconds), "deck_cpu_seconds": list(got.deck_cpu),
               "cpu_seconds_per_step": cpu / steps, "deck_cpu_seconds_per_step": [c / steps for c in got.deck_cpu],
               "peak_kib": got.peak_kib, "machine": m, "retries": list(retries)}
    return lines, figures


def default_blocks(n_neurons: int, workers: int) -> int:
    """Open-loop blocks: about :data:`BLOCK_NEURONS` neurons each, a multiple of ``workers``."""
    per_worker = -(-n_neurons // (BLOCK_NEURONS * max(1, workers)))
    return min(n_neurons, per_worker * max(1, workers))


def _sha(currents: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(currents, dtype=np.float64).tobytes()).hexdigest()


def netlist_stimulus(directory: str | Path, given: Stimulus | None = None, steps: int | None = None) -> Stimulus:
    """The stimulus a netlist directory was written with (``stimulus.npy``, checked against its SHA-256 in
    ``core.json``), cut to ``steps``; a ``given`` stimulus (``--prompt``/``--input``/``--currents``) must be
    the directory's (its first steps), else a one-line error."""
    directory = Path(directory)
    sidecar = read_sidecar(directory)
    path = directory / STIMULUS
    if not path.exists() or "budget" not in sidecar:
        raise RcsnnError(f"{directory}: no {STIMULUS} or error budget in core.json (written by an older rcsnn?); "
                         f"write the netlists again with: rcsnn netlist CORE -o {directory}")
    currents = load_npy(path, (None, sidecar["neurons"]), "steps x neurons")
    if _sha(currents) != sidecar.get("stimulus_sha256"):
        raise RcsnnError(f"{path}: SHA-256 differs from core.json's stimulus_sha256: not the stimulus the decks "
                         "replay; write the netlists again")
    if given is not None:
        n = given.steps
        if n > len(currents) or not np.array_equal(given.currents, currents[:n]):
            raise RcsnnError(f"--netlist {directory}: the given stimulus ({given.description}) is not the one the "
                             f"netlists were written with ({sidecar.get('stimulus') or STIMULUS}); omit it")
        return given
    stim = Stimulus(currents, f"{path} ({sidecar.get('stimulus') or 'rcsnn netlist'})")
    if steps is not None:
        stim = stim.first(steps)
    return stim


def _check_directory(core: Core, directory: Path, sidecar: dict, currents: np.ndarray) -> Run:
    """Refuse a directory written for another core or stimulus; the reference of its whole stimulus."""
    if sidecar.get("core_sha256") != core_digest(core):
        raise RcsnnError(f"--netlist {directory}: written for another core (core.json core_sha256 differs from "
                         "CORE's); give the CORE the netlists were written from")
    ref = simulate_float(core, currents)
    if sidecar.get("mode") == "open" and sidecar.get("reference_sha256") != \
            hashlib.sha256(np.ascontiguousarray(ref.spikes).tobytes()).hexdigest()[:16]:
        raise RcsnnError(f"--netlist {directory}: the decks replay another reference raster than CORE's for this "
                         "stimulus; write the netlists again")
    return ref


def _simulate(directory: Path, steps: int, options: SpiceOptions, trust_edits: bool) -> tuple[SpiceRun, tuple]:
    got = simulate_dir(directory, steps, runner=options.runner, workers=options.workers, timeout=options.timeout,
                       trust_edits=trust_edits)
    return got, got.retries


def verify_spice(graph: Graph, stimulus: Stimulus, options: SpiceOptions, out: Path, provenance: Provenance,
                 netlist: str | Path | None = None, trust_edits: bool = False) -> Report:
    """``rcsnn verify --backend spice``: netlists (written into ``out/netlists``, or the existing directory
    ``netlist``, hand edits run with ``trust_edits``), ngspice, the verdict; report, raster and PNGs in ``out``."""
    from .plots import write_plots

    notes, bounded = [], ""
    if netlist is None and graph.arrays().same_step_blocks():  # the retimed core on the skewed stream (rcsnn.ir.passes)
        original, graph = graph, retime(graph)
        stimulus = replace(stimulus, currents=skew_currents(graph, stimulus.currents), text=None)
        skew = {g.name: g.skew for g in graph.arrays().groups if g.skew}
        notes.append(f"retimed (same-step synapses): groups run late by {skew} steps; {stimulus.steps} steps of the "
                     "skewed input stream against the retimed core's float64 reference")
    core = graph.arrays()
    if netlist is None:
        design = options.design(core)
        if options.saturate:  # the core bounded at the rails is what the circuit computes and is judged against
            graph = saturate(graph, design)
            core = graph.arrays()
            bounded = (f"saturated at the rails {design.rail_low:g},{design.rail_high:g} V (S = "
                         f"{design.volts_per_unit:g} V per unit): judged against the bounded core, netlists/{BOUNDED_CORE}")
        ref = simulate_float(graph, stimulus.currents)
        written = partition(graph, options.blocks or default_blocks(core.n_neurons, options.workers)) \
            if options.mode == "open" else graph
        directory = out / "netlists"
        sidecar = write_netlists(written, stimulus.currents, directory, design, options.mode, ref.spikes,
                                 stimulus="rcsnn verify", clipping=options.allow_clipping)
        save_snapped(graph, directory)
    else:
        directory = Path(netlist)
        sidecar = read_sidecar(directory)
        full = netlist_stimulus(directory)
        if stimulus.steps > full.steps or not np.array_equal(stimulus.currents, full.currents[:stimulus.steps]):
            raise RcsnnError(f"--netlist {directory}: the stimulus is not the one the netlists were written with")
        ref = _check_directory(core, directory, sidecar, full.currents)
        ref = Run(ref.spikes[:stimulus.steps], ref.membranes[:stimulus.steps]) if stimulus.steps < full.steps else ref
        design = Design(**sidecar["circuit"]["design"])
    got, retries = _simulate(directory, stimulus.steps, options, trust_edits)
    verdict = judge(core, ref, got, sidecar["budget"], sidecar["mode"])
    lines, figures = findings(core, verdict, got, design, retries)
    if notes:
        unskewed = unskew_raster(graph, got.spikes)
        differ = int((unskewed != simulate_float(original, unskew_raster(graph, stimulus.currents)).spikes).sum())
        notes.append(f"unskewed onto the stack's own {len(unskewed)} steps, the SPICE raster differs from the stack's "
                     f"float64 reference in {differ} events")
        lines[:0] = notes
        figures["retimed"] = {"skew": skew, "unskewed_differences": differ}
    scale = sidecar["circuit"].get("scale")
    if scale is not None:  # the physical scale (rcsnn.analog.scale): membranes are judged in units, volts / S
        figures["scale"] = scale
        lines.insert(0, f"physical scale: S = {scale['volts_per_unit']:g} V per membrane unit, rails {scale['rails']} V; "
                        "membranes in units (volts / S)" + "".join(f"; {w}" for w in scale.get("clipping", [])))
    if bounded:
        lines.insert(0, bounded)
    if netlist is not None:
        lines.insert(0, f"netlists: {directory} (as found{', hand edits trusted' if trust_edits else ''})")
        figures["netlist"] = str(directory)
    provenance = replace(provenance, tools={**provenance.tools, "ngspice": version("ngspice")})
    unit = "V" if design.volts_per_unit == 1 else "membrane"  # membranes read back in units (volts / S)
    raster = Raster.of(graph, got.spikes, got.membranes, unit, "spice", asdict(provenance)).save(out / "spice_run.npz")
    files = [str(p) for p in write_plots(core, ref, got, verdict, out)] + [str(raster)]
    report = Report("spice", "float64 reference", verdict.passed, verdict.comparison, lines, figures, provenance, files)
    report.write(out)
    return report
