"""Spike-for-spike verification of the SPICE circuit against the float64 reference.

Closed loop: the whole core runs on its own; the first divergence is reported (after it the
rasters cascade apart). Open loop: blocks of neurons whose spike lines and resets are driven by
the reference raster, so every step is checked given the reference past.

The simulator's error bound is the largest membrane error measured at the clock edges on events
near threshold (``|v_ref - θ| < θ``, the only ones whose decision the error could flip; the error
grows with |v|), over all steps in open loop and up to the first divergence in closed loop, plus
the comparator's sampling-instant uncertainty (:meth:`Design.sampling_uncertainty`). An event whose reference margin
``|v_ref - θ|`` is within that bound is *undecidable*: counted and located, and a mismatch there
is reported as such. The exit status is 1 on any mismatch, decidable or not.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..graph.core import Core
from ..model.reference import Run, simulate_float
from ..verify.compare import Comparison, compare_rasters, locate
from .design import Design
from .netlist import write_netlists
from .simulate import SpiceRun, simulate_dir

#: Neurons per open-loop block by default: blocks this small keep ngspice's sparse solve cheap.
BLOCK_NEURONS = 128


@dataclass(frozen=True)
class Verdict:
    """Outcome of one verification: the comparison, margins, error bound and undecidable events."""

    mode: str
    comparison: Comparison
    measured_error: float  # V, max |v_spice - v_ref| over comparable events with |v_ref - θ| < θ
    largest_error: float  # V, max |v_spice - v_ref| over all comparable events
    sampling: float  # V, comparator sampling-instant bound
    smallest_margin: float  # V, min |v_ref - θ|
    smallest_at: tuple[int, int]  # (step, neuron) of the smallest margin
    undecidable: np.ndarray  # (k, 2) (step, neuron) with margin <= bound
    undecidable_mismatches: int
    first: dict | None  # first divergence with membranes

    @property
    def error_bound(self) -> float:
        return self.measured_error + self.sampling

    @property
    def decidable_mismatches(self) -> int:
        return self.comparison.mismatches - self.undecidable_mismatches


def judge(core: Core, ref: Run, got: SpiceRun, design: Design, mode: str) -> Verdict:
    """Compare ``got`` with ``ref`` and classify every event by its margin against the error bound."""
    comparison = compare_rasters(core, ref.spikes, got.spikes)
    theta = core.per_neuron("theta")
    margin = np.abs(ref.membranes - theta)
    upto = ref.spikes.shape[0] if mode == "open" or comparison.first is None else comparison.first.step + 1
    error = np.abs(got.membranes[:upto] - ref.membranes[:upto])
    near = margin[:upto] < theta
    measured = float(error[near].max()) if near.any() else 0.0
    sampling = design.sampling_uncertainty(core)
    bound = measured + sampling
    undecidable = np.argwhere(margin <= bound)
    differ = ref.spikes != got.spikes
    first = None
    if comparison.first is not None:
        f = comparison.first
        first = {"step": f.step + 1, "group": f.group, "index": f.index, "neuron": f.neuron,
                 "v_ref": float(ref.membranes[f.step, f.neuron]), "v_spice": float(got.membranes[f.step, f.neuron]),
                 "theta": float(theta[f.neuron]), "s_ref": f.expected, "s_spice": f.got}
    t, i = np.unravel_index(int(margin.argmin()), margin.shape)
    return Verdict(mode, comparison, measured, float(error.max()), sampling, float(margin.min()), (int(t), int(i)),
                   undecidable, int(differ[margin <= bound].sum()), first)


def _where(core: Core, step: int, neuron: int) -> str:
    group, index = locate(core, neuron)
    return f"step {step + 1}, group {group} neuron {index} (global {neuron})"


def report_lines(core: Core, v: Verdict, got: SpiceRun, design: Design) -> list[str]:
    """The human-readable verdict."""
    c = v.comparison
    lines = [f"spice {v.mode} loop, {design.form} form: {c.steps} steps x {c.neurons} neurons = {c.steps * c.neurons} events compared",
             f"  spikes: reference {c.reference_spikes}, SPICE {c.backend_spikes}",
             f"  mismatches: {c.mismatches} (outside the undecidable band {v.decidable_mismatches}, inside {v.undecidable_mismatches})"]
    if v.first is None:
        lines.append("  first divergence: none, rasters equal")
    else:
        f = v.first
        lines.append(f"  first divergence: step {f['step']}, group {f['group']} neuron {f['index']} (global {f['neuron']}): "
                     f"v_ref {f['v_ref']:.9g} V, v_spice {f['v_spice']:.9g} V, theta {f['theta']:.6g}; "
                     f"reference s={f['s_ref']}, SPICE s={f['s_spice']}")
    lines.append(f"  smallest margin |v_ref - theta|: {v.smallest_margin:.3g} V at {_where(core, *v.smallest_at)}")
    lines.append(f"  simulator error bound: {v.error_bound:.3g} V (max |v_spice - v_ref| near threshold {v.measured_error:.3g} V "
                 f"+ comparator sampling {v.sampling:.2g} V; largest error anywhere {v.largest_error:.3g} V)")
    shown = ", ".join(_where(core, int(t), int(i)) for t, i in v.undecidable[:5])
    lines.append(f"  undecidable events (margin <= bound): {len(v.undecidable)}" + (f": {shown}" if shown else "")
                 + (" ..." if len(v.undecidable) > 5 else ""))
    lines.append(f"  ngspice: {len(got.deck_seconds)} deck(s), wall {got.seconds:.1f} s, CPU {sum(got.deck_cpu):.1f} s "
                 f"(longest deck {max(got.deck_cpu):.1f} s), peak memory {got.peak_kib / 1024:.0f} MiB per process")
    return lines


def verdict_record(v: Verdict, got: SpiceRun) -> dict:
    """JSON-ready numbers of a verdict."""
    c = v.comparison
    return {"mode": v.mode, "steps": c.steps, "neurons": c.neurons, "reference_spikes": c.reference_spikes,
            "spice_spikes": c.backend_spikes, "mismatches": c.mismatches, "decidable_mismatches": v.decidable_mismatches,
            "undecidable_mismatches": v.undecidable_mismatches, "mismatches_per_group": c.mismatches_per_group,
            "first_divergence": v.first, "smallest_margin": v.smallest_margin,
            "smallest_margin_at": {"step": v.smallest_at[0] + 1, "neuron": v.smallest_at[1]},
            "error_bound": v.error_bound, "measured_error": v.measured_error, "largest_error": v.largest_error,
            "sampling_uncertainty": v.sampling,
            "undecidable": [{"step": int(t) + 1, "neuron": int(i)} for t, i in v.undecidable],
            "wall_seconds": got.seconds, "deck_seconds": list(got.deck_seconds), "deck_cpu_seconds": list(got.deck_cpu),
            "peak_kib": got.peak_kib}


def default_blocks(n_neurons: int, workers: int) -> int:
    """Open-loop blocks: about :data:`BLOCK_NEURONS` neurons each, a multiple of ``workers``."""
    per_worker = -(-n_neurons // (BLOCK_NEURONS * max(1, workers)))
    return min(n_neurons, per_worker * max(1, workers))


def verify_spice(core: Core, currents: np.ndarray, backend: str, args) -> int:
    """``rcsnn verify --backend spice``: netlists, ngspice, comparison, report and PNGs in ``args.out``."""
    from .plots import write_plots

    out = Path(args.out)
    design = Design.scaled(form=getattr(args, "form", "ideal"), gain=getattr(args, "gain", Design.gain))
    ref = simulate_float(core, currents)
    workers = max(1, args.workers)
    blocks = getattr(args, "blocks", None) or default_blocks(core.n_neurons, workers)
    write_netlists(core, currents, out / "netlists", design, args.mode, blocks, ref.spikes, stimulus="rcsnn verify")
    got = simulate_dir(out / "netlists", runner=getattr(args, "runner", "subprocess"), workers=workers,
                       timeout=getattr(args, "timeout", None))
    verdict = judge(core, ref, got, design, args.mode)
    print("\n".join(report_lines(core, verdict, got, design)))
    plots = write_plots(core, ref, got, verdict, out)
    (out / "report.json").write_text(json.dumps(verdict_record(verdict, got), indent=1) + "\n")
    np.savez_compressed(out / "spice_run.npz", spikes=got.spikes, membranes=got.membranes,
                        reference_spikes=ref.spikes, reference_membranes=ref.membranes)
    print(f"  wrote {out / 'report.json'}, {out / 'spice_run.npz'}, " + ", ".join(str(p) for p in plots))
    return 0 if verdict.comparison.mismatches == 0 else 1
