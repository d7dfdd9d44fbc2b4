"""``rcsnn verify --backend fixed``: the fixed-point reference against the float64 reference, within a derived bound.

The two oracles of rcsnn must agree up to the contract's quantisation. Run open loop (every
synapse and reset of the fixed-point run sees the float raster, so one flip cannot cascade), the
fixed-point membrane error ``e[t] = v_fix[t]·2^-Fv − v_float[t]`` obeys, per neuron,

.. math::

    e[t] = (\\beta + \\delta_\\beta)\\, e[t-1] + \\delta_\\beta\\, v[t-1] - f[t] + D[t], \\qquad f[t] \\in [0, 2^{-F_v})

(``f`` the floor of the leak; the leak term vanishes in both after a zero reset), with the
exactly known rounding errors ``δ_β = β_q 2^-Fb − β``, and
``D[t] = δ_x[t] + δ_b + Σ_blocks Σ_j δ_w,ij s_j[t−d] − δ_θ s[t−1]`` (the last for subtract reset);
:func:`error_interval` states the recursion of every reset mode and the CubaLIF synaptic state.
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


def _drift(core: Core, ref: Run, x: np.ndarray, q: FixedCore) -> np.ndarray:
    """``(steps, N)``: ``D[t] = I_q[t]·2^-Fv − I[t]`` given the forced raster, exactly known from the parameters.

    Quantised input and bias, and per block the weight errors ``w_q·2^-Fv − w`` (``alpha_q`` of a
    ternary block, ``w_q`` of a dense one, :meth:`Core.block_weights`) times the spikes they see.
    """
    lsb = 2.0 ** -q.Fv
    offsets = core.offsets()
    drift = q.quantize(x) * lsb - x + (q.bias_q * lsb - core.bias)
    for b in core.synapses:
        pre = ref.spikes[:, offsets[b.pre]].astype(np.float64)
        if b.delay:
            pre = np.concatenate([np.zeros((1, pre.shape[1])), pre[:-1]])
        w = core.block_weights(b)
        delta = np.zeros(core.matrices[b.matrix].shape)
        delta[w.rows, w.cols] = w.quantized * lsb - w.value
        drift[:, offsets[b.post]] += pre @ delta.T
    return drift


def _bounded(lo: np.ndarray, hi: np.ndarray, value: np.ndarray, limits: tuple[float, float]):
    """``(lo, hi)``, unbounded where ``value + error`` may reach a saturation limit."""
    saturable = (value + lo <= limits[0]) | (value + hi >= limits[1])
    return np.where(saturable, -np.inf, lo), np.where(saturable, np.inf, hi)


def error_interval(core: Core, ref: Run, x: np.ndarray, q: FixedCore) -> tuple[np.ndarray, np.ndarray]:
    """``(lo, hi)`` ``(steps, N)``: the interval of the open-loop fixed-point membrane error (membrane units).

    Per step, ``g = β + δ_β``, ``s = s[t−1]`` (forced), ``f ∈ [0, 2^-Fv)`` the floor (0 where ``β_q`` is a
    multiple of ``2^Fb``: IF neurons, β_syn = 0), ``E`` the error of
    the current the membrane integrates (``D[t]``; for CubaLIF neurons the synaptic state's error
    ``ε[t] = g_syn ε[t−1] + δ_βsyn i[t−1] − f + D[t]``, or ``ε[t−1]`` with current_delay 1)::

        zero:                  e = E if s else g e' + δ_β v' − f + E
        subtract:              e = g e' + δ_β v' − f − δ_θ s + E
        subtract_before_decay: e = g (e' − δ_θ s) + δ_β (v' − θ s) − f + E
        zero_drop_input:       e = 0 if s else g e' + δ_β v' − f + E
    """
    lsb = 2.0 ** -q.Fv
    steps, n = ref.spikes.shape
    beta, theta, beta_syn = (core.per_neuron(k) for k in ("beta", "theta", "beta_syn"))
    d_beta, d_theta = q.beta_q / 2.0 ** q.Fb - beta, q.theta_q * lsb - theta
    d_syn = q.beta_syn_q / 2.0 ** q.Fb - beta_syn
    gain, gain_syn = beta + d_beta, beta_syn + d_syn
    floor, floor_syn = (np.where(b % (1 << q.Fb) == 0, 0.0, lsb) for b in (q.beta_q, q.beta_syn_q))  # 0: exact
    reset = core.per_neuron("reset")
    synaptic = np.concatenate([np.full(g.size, g.synaptic) for g in core.groups])
    delayed = core.per_neuron("current_delay") == 1
    drift = _drift(core, ref, x, q)
    previous = np.concatenate([np.zeros((1, n)), ref.spikes[:-1].astype(np.float64)])
    v_prev = np.concatenate([np.zeros((1, n)), ref.membranes[:-1]])
    i_ref = ref.synaptic if ref.synaptic is not None else np.zeros((steps, n))
    i_prev = np.concatenate([np.zeros((1, n)), i_ref[:-1]])
    lo, hi = np.zeros((steps, n)), np.zeros((steps, n))
    e_lo, e_hi, c_lo, c_hi = np.zeros(n), np.zeros(n), np.zeros(n), np.zeros(n)
    limits = (q.v_min * lsb, q.v_max * lsb)
    for t in range(steps):
        s = previous[t]
        slack = ROUNDING_SLACK * (1.0 + np.abs(ref.membranes[t]) + np.abs(v_prev[t]))
        i_slack = ROUNDING_SLACK * (1.0 + np.abs(i_ref[t]) + np.abs(i_prev[t]))
        n_lo, n_hi = _bounded(gain_syn * c_lo + d_syn * i_prev[t] - floor_syn + drift[t] - i_slack,
                              gain_syn * c_hi + d_syn * i_prev[t] + drift[t] + i_slack, i_ref[t], limits)
        j_lo = np.where(synaptic, np.where(delayed, c_lo, n_lo), drift[t])
        j_hi = np.where(synaptic, np.where(delayed, c_hi, n_hi), drift[t])
        c_lo, c_hi = np.where(synaptic, n_lo, 0.0), np.where(synaptic, n_hi, 0.0)
        before = reset == "subtract_before_decay"
        shift = np.where(before, d_theta * s, 0.0)
        known = d_beta * (v_prev[t] - np.where(before, theta * s, 0.0)) - np.where(reset == "subtract", d_theta * s, 0.0)
        leak_lo, leak_hi = gain * (e_lo - shift) + known - floor, gain * (e_hi - shift) + known
        cleared = ((reset == "zero") | (reset == "zero_drop_input")) & (s > 0)
        leak_lo, leak_hi = np.where(cleared, 0.0, leak_lo), np.where(cleared, 0.0, leak_hi)
        dropped = (reset == "zero_drop_input") & (s > 0)
        e_lo = np.where(dropped, 0.0, leak_lo + j_lo - slack)
        e_hi = np.where(dropped, 0.0, leak_hi + j_hi + slack)
        e_lo, e_hi = _bounded(e_lo, e_hi, ref.membranes[t], limits)
        lo[t], hi[t] = e_lo, e_hi
    return lo, hi


def _boundary(core, membranes: np.ndarray, theta: np.ndarray) -> np.ndarray:
    """The spike boundary nearest each membrane: ``theta``, or for spike counts (``max_spikes != 1``) the
    multiple ``k * theta`` (1 <= k <= max_spikes) where the count changes."""
    limit = core.per_neuron("max_spikes")
    k = np.maximum(np.round(membranes / theta), 1.0)
    return theta * np.where(limit == 1, 1.0, np.where(limit > 0, np.minimum(k, limit), k))


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
    margin = np.abs(ref.membranes - _boundary(core, ref.membranes, q.theta_q * lsb))
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
