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

from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from ..analog.design import Design
from ..analog.netlist import write_netlists
from ..analog.options import SpiceOptions
from ..analog.partition import partition
from ..analog.simulate import SpiceRun, simulate_dir
from ..ir.arrays import Core
from ..ir.graph import Graph
from ..ir.raster import Raster
from ..ir.reference import Run, simulate_float
from ..ir.stimulus import Stimulus
from ..tools import version
from .compare import Comparison, compare_rasters, locate
from .report import Provenance, Report

__all__ = ["BLOCK_NEURONS", "Verdict", "judge", "default_blocks", "verify_spice"]

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
        first = {"step": f.step, "group": f.group, "index": f.index, "neuron": f.neuron,
                 "v_ref": float(ref.membranes[f.step, f.neuron]), "v_spice": float(got.membranes[f.step, f.neuron]),
                 "theta": float(theta[f.neuron]), "s_ref": f.expected, "s_spice": f.got}
    t, i = np.unravel_index(int(margin.argmin()), margin.shape)
    return Verdict(mode, comparison, measured, float(error.max()), sampling, float(margin.min()), (int(t), int(i)),
                   undecidable, int(differ[margin <= bound].sum()), first)


def _where(core: Core, step: int, neuron: int) -> str:
    group, index = locate(core, neuron)
    return f"step {step}, group {group} neuron {index} (global {neuron})"


def findings(core: Core, v: Verdict, got: SpiceRun, design: Design) -> tuple[list[str], dict]:
    """The verdict's findings: sentences for people, and the same numbers for JSON."""
    lines = [f"{v.mode} loop, {design.form} form; mismatches outside the undecidable band "
             f"{v.decidable_mismatches}, inside {v.undecidable_mismatches}"]
    if v.first is not None:
        f = v.first
        lines.append(f"first divergence: step {f['step']}, group {f['group']} neuron {f['index']} (global {f['neuron']}): "
                     f"v_ref {f['v_ref']:.9g} V, v_spice {f['v_spice']:.9g} V, theta {f['theta']:.6g}; "
                     f"reference s={f['s_ref']}, SPICE s={f['s_spice']}")
    lines.append(f"smallest margin |v_ref - theta|: {v.smallest_margin:.3g} V at {_where(core, *v.smallest_at)}")
    lines.append(f"simulator error bound: {v.error_bound:.3g} V "
                 f"(max |v_spice - v_ref| near threshold {v.measured_error:.3g} V "
                 f"+ comparator sampling {v.sampling:.2g} V; largest error anywhere {v.largest_error:.3g} V)")
    shown = ", ".join(_where(core, int(t), int(i)) for t, i in v.undecidable[:5])
    lines.append(f"undecidable events (margin <= bound): {len(v.undecidable)}" + (f": {shown}" if shown else "")
                 + (" ..." if len(v.undecidable) > 5 else ""))
    steps = max(1, v.comparison.steps)
    lines.append(f"ngspice: {len(got.deck_seconds)} deck(s), wall {got.seconds:.1f} s, CPU {sum(got.deck_cpu):.1f} s "
                 f"({sum(got.deck_cpu) / steps:.3g} s per step; longest deck {max(got.deck_cpu):.1f} s), "
                 f"peak memory {got.peak_kib / 1024:.0f} MiB per process")
    figures = {"mode": v.mode, "form": design.form, "decidable_mismatches": v.decidable_mismatches,
               "undecidable_mismatches": v.undecidable_mismatches, "first_divergence": v.first,
               "smallest_margin": v.smallest_margin,
               "smallest_margin_at": {"step": v.smallest_at[0], "neuron": v.smallest_at[1]},
               "error_bound": v.error_bound, "measured_error": v.measured_error, "largest_error": v.largest_error,
               "sampling_uncertainty": v.sampling,
               "undecidable": [{"step": int(t), "neuron": int(i)} for t, i in v.undecidable],
               "wall_seconds": got.seconds, "deck_seconds": list(got.deck_seconds), "deck_cpu_seconds": list(got.deck_cpu),
               "cpu_seconds_per_step": sum(got.deck_cpu) / steps, "peak_kib": got.peak_kib}
    return lines, figures


def default_blocks(n_neurons: int, workers: int) -> int:
    """Open-loop blocks: about :data:`BLOCK_NEURONS` neurons each, a multiple of ``workers``."""
    per_worker = -(-n_neurons // (BLOCK_NEURONS * max(1, workers)))
    return min(n_neurons, per_worker * max(1, workers))


def verify_spice(graph: Graph, stimulus: Stimulus, options: SpiceOptions, out: Path, provenance: Provenance) -> Report:
    """``rcsnn verify --backend spice``: netlists, ngspice, comparison; report, raster and PNGs in ``out``."""
    from .plots import write_plots

    core = graph.arrays()
    design = options.design()
    ref = simulate_float(graph, stimulus.currents)
    if options.mode == "open":
        graph = partition(graph, options.blocks or default_blocks(core.n_neurons, options.workers))
    write_netlists(graph, stimulus.currents, out / "netlists", design, options.mode, ref.spikes, stimulus="rcsnn verify")
    got = simulate_dir(out / "netlists", runner=options.runner, workers=options.workers, timeout=options.timeout)
    verdict = judge(core, ref, got, design, options.mode)
    lines, figures = findings(core, verdict, got, design)
    provenance = replace(provenance, tools={**provenance.tools, "ngspice": version("ngspice")})
    raster = Raster.of(graph, got.spikes, got.membranes, "V", "spice", asdict(provenance)).save(out / "spice_run.npz")
    files = [str(p) for p in write_plots(core, ref, got, verdict, out)] + [str(raster)]
    report = Report("spice", "float64 reference", verdict.comparison.equal, verdict.comparison, lines, figures,
                    provenance, files)
    report.write(out)
    return report
