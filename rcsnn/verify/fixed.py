"""``rcsnn verify --backend fixed``: the fixed-point reference against the float64 reference, within a derived bound.

The two oracles of rcsnn must agree up to the contract's quantisation. Run open loop (every
synapse and reset of the fixed-point run sees the float raster, so one flip cannot cascade), the
fixed-point membrane error ``e[t] = v_fix[t]·2^-Fv − v_float[t]`` obeys, per neuron,

.. math::

    e[t] = (\\beta + \\delta_\\beta)\\, e[t-1] + \\delta_\\beta\\, v[t-1] - f[t] + D[t], \\qquad f[t] \\in [0, 2^{-F_v})

(``f`` the floor of the leak; the leak term vanishes in both after a zero reset), with the
exactly known rounding errors ``δ_β = β_q 2^-Fb − β``, and
``D[t] = δ_x[t] + δ_b + Σ_blocks δ_α (T s[t−d]) − δ_θ s[t−1]`` (the last for subtract reset).
This recursion gives an interval ``[lo, hi]`` for every ``e[t]`` from the float run and the
parameters alone — before the fixed-point run is looked at. The check PASSes if every fixed-point
membrane lies in its interval (plus a float64 rounding slack); a saturating membrane makes its
interval unbounded until a zero reset, and is reported. Raster differences are listed, each with
the float membrane's margin to the fixed-point threshold.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..ir.arrays import Core
from ..ir.graph import Graph
from ..ir.raster import Raster
from ..ir.reference import FixedCore, Run, quantize_core, simulate_fixed, simulate_float
from ..ir.stimulus import Stimulus
from .compare import compare_rasters, locate
from .report import Provenance, Report

__all__ = ["ROUNDING_SLACK", "error_interval", "verify_fixed"]

#: Relative float64 rounding allowance per step of the float reference (|v| up to ~1e3 θ: ~1e-13).
ROUNDING_SLACK = 1e-13


def _block_counts(core: Core, spikes: np.ndarray) -> list[tuple[slice, int, np.ndarray]]:
    """Per block: (post slice, block index, (steps, post) spike counts T @ s[t-d]) of the forced raster."""
    offsets = core.offsets()
    out = []
    for k, b in enumerate(core.synapses):
        pre = spikes[:, offsets[b.pre]].astype(np.float64)
        if b.delay:
            pre = np.concatenate([np.zeros((1, pre.shape[1])), pre[:-1]])
        out.append((offsets[b.post], k, pre @ core.matrices[b.matrix].T.astype(np.float64)))
    return out


def error_interval(core: Core, ref: Run, x: np.ndarray, q: FixedCore) -> tuple[np.ndarray, np.ndarray]:
    """``(lo, hi)`` ``(steps, N)``: the interval of the open-loop fixed-point membrane error (membrane units)."""
    lsb = 2.0 ** -q.Fv
    steps, n = ref.spikes.shape
    beta = core.per_neuron("beta")
    d_beta = q.beta_q / 2.0 ** q.Fb - beta
    drift = np.full((steps, n), 0.0)
    drift += q.quantize(x) * lsb - x
    drift += q.bias_q * lsb - core.bias
    for post, k, counts in _block_counts(core, ref.spikes):
        drift[:, post] += (q.alpha_q[k] * lsb - core.synapses[k].alpha) * counts
    previous = np.concatenate([np.zeros((1, n)), ref.spikes[:-1].astype(np.float64)])
    drift -= np.where(q.subtract, q.theta_q * lsb - core.per_neuron("theta"), 0.0) * previous
    v_prev = np.concatenate([np.zeros((1, n)), ref.membranes[:-1]])
    lo, hi = np.zeros((steps, n)), np.zeros((steps, n))
    e_lo, e_hi = np.zeros(n), np.zeros(n)
    gain = beta + d_beta
    v_limit = (q.v_min * lsb, q.v_max * lsb)
    for t in range(steps):
        cleared = ~q.subtract & (previous[t] > 0)
        slack = ROUNDING_SLACK * (1.0 + np.abs(ref.membranes[t]) + np.abs(v_prev[t]))
        leak_lo = np.where(cleared, 0.0, gain * e_lo + d_beta * v_prev[t] - lsb)
        leak_hi = np.where(cleared, 0.0, gain * e_hi + d_beta * v_prev[t])
        e_lo, e_hi = leak_lo + drift[t] - slack, leak_hi + drift[t] + slack
        saturable = (ref.membranes[t] + e_lo <= v_limit[0]) | (ref.membranes[t] + e_hi >= v_limit[1])
        e_lo, e_hi = np.where(saturable, -np.inf, e_lo), np.where(saturable, np.inf, e_hi)
        lo[t], hi[t] = e_lo, e_hi
    return lo, hi


def verify_fixed(graph: Graph, stimulus: Stimulus, out, provenance: Provenance) -> Report:
    """The fixed-point reference against the float64 reference (see the module docstring)."""
    core = graph.arrays()
    q = quantize_core(core)
    ref = simulate_float(core, stimulus.currents)
    fixed = simulate_fixed(core, stimulus.currents, forced=ref.spikes)
    lo, hi = error_interval(core, ref, stimulus.currents, q)
    lsb = 2.0 ** -q.Fv
    error = fixed.membranes * lsb - ref.membranes
    outside = (error < lo) | (error > hi)
    comparison = compare_rasters(core, ref.spikes, fixed.spikes)
    width = hi - lo
    finite = np.isfinite(width)
    margin = np.abs(ref.membranes - q.theta_q * lsb)
    differ = ref.spikes != fixed.spikes
    figures = {"open_loop": True, "membranes_outside_interval": int(outside.sum()),
               "unbounded_events": int((~finite).sum()),
               "interval_width_max": float(width[finite].max()) if finite.any() else None,
               "interval_width_median": float(np.median(width[finite])) if finite.any() else None,
               "differing_events": int(differ.sum()),
               "differing_margin_max": float(margin[differ].max()) if differ.any() else None,
               "closed_loop_differing_events": int((simulate_fixed(core, stimulus.currents).spikes != ref.spikes).sum())}
    lines = [f"open loop (fixed-point run driven by the float raster): {figures['differing_events']} events differ, "
             f"every one with the float membrane within {figures['differing_margin_max'] or 0:.3g} of the fixed-point "
             "threshold (the contract's quantisation)",
             f"derived error interval width: median {figures['interval_width_median'] or 0:.3g}, "
             f"max {figures['interval_width_max'] or 0:.3g} membrane units; {figures['unbounded_events']} events unbounded "
             "(saturation possible)",
             f"fixed-point membranes outside their interval: {figures['membranes_outside_interval']}",
             f"closed loop (each reference on its own): {figures['closed_loop_differing_events']} events differ "
             "(one flip cascades; information, not a verdict)"]
    if outside.any():
        t, i = (int(k) for k in np.argwhere(outside)[0])
        group, index = locate(core, i)
        lines.append(f"first membrane outside: step {t}, group {group} neuron {index} (global {i}): error "
                     f"{error[t, i]:.6g} not in [{lo[t, i]:.6g}, {hi[t, i]:.6g}]")
        figures["first_outside"] = {"step": t, "group": group, "index": index, "neuron": i, "error": float(error[t, i]),
                                    "lo": float(lo[t, i]), "hi": float(hi[t, i])}
    raster = Raster.of(graph, fixed.spikes, fixed.membranes, "lsb", "fixed", {"open_loop": True})
    report = Report("fixed", "float64 reference (open loop, derived quantisation bound)", not outside.any(),
                    comparison, lines, figures, provenance)
    work = Path(out) / "fixed"
    work.mkdir(parents=True, exist_ok=True)
    report.files.append(str(raster.save(work / "raster.npz")))
    report.write(work)
    return report
