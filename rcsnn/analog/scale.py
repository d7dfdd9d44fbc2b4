"""The physical scale of the circuit: S volts per membrane unit, supply rails, and the membrane clamp.

**Scale.** Every line is driven at S·V_S per unit (:attr:`Design.line_volts <rcsnn.analog.design.Design.line_volts>`)
through resistors that do not depend on S, so every node voltage is S times its value at 1 V per unit: a
membrane of v units sits at S·v volts, the comparator threshold at S·θ·e^{−t_clk/2τ}. ngspice's membranes are
read back divided by S (:mod:`rcsnn.analog.simulate`); the budget is in membrane units.

**Clamp** (saturation bounds v_min ≤ 0 < θ ≤ v_max of docs/contract.md). Within a step the membrane is pure
decay towards 0 V from the clock edge to its window, monotone inside the window (constant line levels: it
approaches J·R_L exponentially) and pure decay again for d = Δt − (end of the window's falling edge) until the
sample at the next clock edge. A one-sided conductance g on the membrane node towards

    V_hi,i = S·v_max,i·e^{d/τ_i},      V_lo,i = S·v_min,i·e^{d/τ_i}        (V; IF: τ = ∞, factor 1)

(``Bclamp<i> mem<i> 0 I=g·(max(V−V_hi,0)+min(V−V_lo,0))``; op-amp form across the feedback C, from ``mem<i>`` to
the summing node: anti-windup) holds a membrane that would pass V_hi at V_hi until the window closes; it then
decays to S·v_max at the sample: the contract's clip min(max(v, v_min), v_max) after the update. The decay phases
never reach a clamp level because v_min ≤ 0 ≤ v_max (a v_min > 0 is refused), and the drive is constant inside
the window for LIF and IF membranes only (a CubaLIF membrane's drive, its synaptic state, decays there: refused).
Two derived errors (units, per clamped sample, :func:`clamp_errors`; the budget's use of them:
:func:`rcsnn.analog.budget.clamp_terms`): the window's falling edge of duration e lets the drive fall below the
clamp's holding current before the window ends, so the membrane leaves V_hi early by at most |bound|·e/(2τ)
(drive u ≥ 1 times the holding current: the deficit ∫(u·w − 1)dt·V/τ = e/(2u)·V/τ); and the finite g leaves at
most the largest drive current I_max over g, I_max/(g·S) = V_S·u_max/(R_unit·g) units.

**Rails** [LO, HI] (V, LO ≤ 0 < HI): every clamp level must lie within them, and a side without a bound must
keep the reference's membrane peaks S·v·e^{d/τ} (the window's end) within them, else :func:`check_rails`
refuses in one line; ``--saturate`` (:func:`saturate`) sets each missing bound at its rail,
v_max = HI·e^{−d/τ}/S (v_min likewise), and the decks are verified against that *bounded core* (``bounded.rcsnn``
beside them); ``--allow-clipping`` writes the decks anyway with a warning. The lines (ideal sources) are not
checked against the rails.
"""

from __future__ import annotations

import math
import sys
from dataclasses import replace

import numpy as np

from ..errors import RcsnnError
from ..ir.arrays import Core
from ..ir.graph import Graph
from .design import Design, uniform
from .neurons import Neurons

__all__ = ["CLAMP_CONDUCTANCE", "CLAMP_RELTOL", "ANNOTATION", "BOUNDED_CORE", "window_delay", "peak_factor", "clamp_levels",
           "clamp_line", "clamp_errors", "check_rails", "saturate", "scale_record", "membrane_range"]

#: Conductance of the clamp (S): its error, the drive current over it, is ~1e-8 units on the example.
CLAMP_CONDUCTANCE = 1e3
#: ngspice ``reltol`` of a clamped deck. Newton accepts an iterate once it moves by ≤ reltol·|v| + vntol, and a
#: membrane that crosses its clamp level within a time step can be accepted that far past it (the clamp's current,
#: g·overshoot, not converged): at ngspice's 1e-3, 8e-3 V past a −8 V clamp in the last step before the window
#: closes, left as 1.3e-5 units after the decay (2.5× the budget of a τ = 16 µs group). At 1e-6 it is < 1e-8 units.
CLAMP_RELTOL = 1e-6
#: The graph attribute recording ``--saturate`` (the rails and S the bounds were derived at).
ANNOTATION = "saturate"
#: The bounded core's checkpoint in a netlist directory (``rcsnn verify BOUNDED_CORE --netlist DIR``).
BOUNDED_CORE = "bounded.rcsnn"
#: Relative slack of the rail comparisons (a bound derived at a rail reproduces it to rounding).
_SLACK = 1e-12


def window_delay(design: Design, plan: Neurons) -> np.ndarray:
    """d per neuron (s): from the end of its membrane window's falling edge (the synaptic window, or the tail
    window of a current_delay-0 CubaLIF membrane) to the next clock edge, where the membrane is sampled."""
    tail = np.array([plan.membrane_window(i) == "twin" for i in range(len(plan.tau))], dtype=bool)
    end = np.where(tail, design.tail_end if tail.any() else 0.0, design.syn_end)
    return design.step - end


def peak_factor(design: Design, plan: Neurons) -> np.ndarray:
    """e^{d/τ} per neuron: a membrane's value at its window's end over its value at the sample (1 for IF)."""
    with np.errstate(divide="ignore"):
        return np.exp(window_delay(design, plan) / plan.tau)


def clamp_levels(core: Core, design: Design, plan: Neurons) -> tuple[np.ndarray, np.ndarray]:
    """(V_lo, V_hi) per neuron (V; ∓inf where unbounded): S·bound·e^{d/τ}. Refuses v_min > 0 (the decay towards
    0 V between windows would reach the clamp) in one line."""
    low, high = core.per_neuron("v_min"), core.per_neuron("v_max")
    synaptic = plan.cuba & (np.isfinite(low) | np.isfinite(high))
    if synaptic.any():
        group, index = core.locate(int(np.argmax(synaptic)))
        raise RcsnnError(f"analog: group {group!r} neuron {index}: saturation bounds on a CubaLIF membrane; its drive, "
                         "the synaptic state, decays inside its window, so a continuous clamp would let go before the "
                         "window closes (not the contract's clip); the circuit clamps LIF and IF membranes only")
    if (low > 0).any():
        i = int(np.argmax(low > 0))
        group, index = core.locate(i)
        raise RcsnnError(f"analog: group {group!r} neuron {index}: v_min {low[i]:g} > 0; the circuit's clamp needs "
                         "v_min <= 0 (its membrane decays towards 0 V between windows)")
    factor = design.volts_per_unit * peak_factor(design, plan)
    with np.errstate(invalid="ignore"):
        return np.where(np.isfinite(low), low * factor, -math.inf), np.where(np.isfinite(high), high * factor, math.inf)


def clamp_line(i: int, low: float, high: float, form: str, node: str) -> str:
    """The clamp of neuron i as deck text: ``Bclamp<i>`` from ``mem<i>`` to ground (ideal) or to the summing
    node ``node`` (op-amp form: across the feedback C), I = g·(max(V−V_hi,0) + min(V−V_lo,0)); an infinite
    level leaves its side out."""
    v = f"V(mem{i})" if form == "ideal" else f"V(mem{i},{node})"
    terms = ([f"max({v}{-float(high):+},0)"] if math.isfinite(high) else []) + \
        ([f"min({v}{-float(low):+},0)"] if math.isfinite(low) else [])
    return f"Bclamp{i} mem{i} {'0' if form == 'ideal' else node} I={CLAMP_CONDUCTANCE!r}*({'+'.join(terms)})"


def clamp_errors(core: Core, design: Design, plan: Neurons, spikes: np.ndarray,
                 levels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(ε_E, δ_G) per neuron: the falling-edge error per unit of a clamped membrane, e/(2τ) (e the edge of its
    window; 0 for IF), and the conductance's error in units, V_S·u_max/(R_unit·g), with u_max = Σ_j |w_ij|·(the
    largest count in ``spikes``) + max_t |x + b| (``levels`` (steps, N): x + b) the largest drive of a step."""
    edge = np.where([plan.membrane_window(i) == "twin" for i in range(len(plan.tau))], design.tail_edge, design.edge)
    with np.errstate(divide="ignore"):
        falling = np.where(np.isfinite(plan.tau), edge / (2 * plan.tau), 0.0)
    rows = np.zeros(core.n_neurons)
    offsets = core.offsets()
    for syn in core.synapses:
        w = core.block_weights(syn)
        np.add.at(rows, offsets[syn.post].start + w.rows, np.abs(w.value))
    drive = rows * float(np.max(spikes, initial=1)) + np.abs(levels).max(axis=0, initial=0.0)
    return falling, design.v_spike * drive / (plan.r_in * CLAMP_CONDUCTANCE)


def check_rails(core: Core, design: Design, plan: Neurons, membranes: np.ndarray, clipping: bool = False,
                what: str = "rails") -> list[str]:
    """Refuse (one line) a clamp level outside the rails, and a side without a bound whose reference membrane
    peaks S·v·e^{d/τ} (``membranes`` (steps, N), units) pass its rail, unless ``clipping`` (the warnings are
    returned and printed). Nothing to check without rails. ``what`` names the range in the messages (an amplifier's
    output swing: the caller passes a design whose rails are the swing's ends)."""
    if not design.railed:
        return []
    lo_rail, hi_rail = design.rail_low, design.rail_high
    rails = f"{what} {lo_rail:g},{hi_rail:g} V"
    low, high = clamp_levels(core, design, plan)
    for name, levels, bad in (("v_min", low, np.isfinite(low) & (low < lo_rail * (1 + _SLACK))),
                              ("v_max", high, np.isfinite(high) & (high > hi_rail * (1 + _SLACK)))):
        if bad.any():
            i = int(np.argmax(bad))
            group, index = core.locate(i)
            bound = core.per_neuron(name)[i]
            factor = levels[i] / bound / design.volts_per_unit
            raise RcsnnError(f"analog: group {group!r} neuron {index}: {name} {bound:g} clamps at {levels[i]:.6g} V "
                             f"(S = {design.volts_per_unit:g} V per unit, e^(d/tau) = {factor:.6g}), outside the {rails}")
    peaks = membranes * design.volts_per_unit * peak_factor(design, plan)
    free_hi = ~np.isfinite(core.per_neuron("v_max")) & (peaks > hi_rail * (1 + _SLACK))
    free_lo = ~np.isfinite(core.per_neuron("v_min")) & (peaks < lo_rail * (1 + _SLACK))
    warnings = []
    for side, bad in (("above", free_hi), ("below", free_lo)):
        if not bad.any():
            continue
        t, i = np.argwhere(bad)[0]
        group, index = core.locate(int(i))
        text = (f"group {group!r} neuron {index} step {t}: the reference membrane {membranes[t, i]:.6g} units peaks at "
                f"{peaks[t, i]:.6g} V, {side} the {rails} ({int(bad.sum())} events; S = {design.volts_per_unit:g} V/unit)")
        if not clipping:
            raise RcsnnError(f"analog: {text}; bound the core at the rails (--saturate), lower --volts-per-unit, or "
                             "write it anyway (--allow-clipping)")
        warnings.append(f"WARNING: {text}; written anyway (--allow-clipping): the circuit is not verifiable beyond "
                        "the rails")
    for w in warnings:
        print(w, file=sys.stderr, flush=True)
    return warnings


def saturate(graph: Graph, design: Design) -> Graph:
    """The bounded core of ``graph`` at the rails (module docstring): each infinite bound becomes its rail's,
    v_max,i = HI·e^{−d_i/τ_i}/S, v_min,i = LO·e^{−d_i/τ_i}/S (one value per group where its neurons share it),
    annotated with :data:`ANNOTATION`; finite bounds are kept."""
    if not design.railed:
        raise RcsnnError("--saturate: needs --rails LO,HI (the bounds are derived at the rails)")
    from .neurons import plan as circuit_plan

    core = graph.arrays()
    scale = design.volts_per_unit * peak_factor(design, circuit_plan(core, design))
    low = np.where(np.isfinite(core.per_neuron("v_min")), core.per_neuron("v_min"), design.rail_low / scale)
    high = np.where(np.isfinite(core.per_neuron("v_max")), core.per_neuron("v_max"), design.rail_high / scale)
    groups = []
    for g, sl in zip(core.groups, core.offsets().values()):
        lo, hi = (uniform(a[sl]) for a in (low, high))
        groups.append(replace(g, v_min=low[sl].copy() if lo is None else lo, v_max=high[sl].copy() if hi is None else hi))
    bounded = replace(core, groups=tuple(groups)).validate("--saturate: the core bounded at the rails")
    out = Graph.from_arrays(bounded, "bounded core")
    out.passes = [*graph.passes, ANNOTATION]
    out.nx.graph.update({k: v for k, v in graph.nx.graph.items() if k not in out.nx.graph})  # keeps a snap record
    out.nx.graph[ANNOTATION] = {"rails": [design.rail_low, design.rail_high], "volts_per_unit": design.volts_per_unit}
    return out


def _finite(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


def scale_record(core: Core, design: Design, plan: Neurons) -> dict | None:
    """The netlist header's and ``core.json``'s ``scale`` entry: S, rails, clock, each group's bounds in volts
    at the sample and its clamp levels (a range where its neurons differ), the clamp's conductance; None at the
    default scale for an unbounded core (its decks keep their bytes)."""
    if design.volts_per_unit == 1.0 and not design.railed and not core.bounded():
        return None
    low, high = clamp_levels(core, design, plan)
    s = design.volts_per_unit
    groups = []
    for g, sl in zip(core.groups, core.offsets().values()):
        entry = {"name": g.name, "theta_volts": [s * float(np.min(g.theta)), s * float(np.max(g.theta))]}
        for key, bound, level in (("v_min", core.per_neuron("v_min")[sl], low[sl]),
                                  ("v_max", core.per_neuron("v_max")[sl], high[sl])):
            if np.isfinite(bound).any():
                entry[f"{key}_volts"] = [s * float(np.min(bound)), s * float(np.max(bound))]
                entry[f"{key}_clamp_volts"] = [float(np.min(level)), float(np.max(level))]
        groups.append(entry)
    return {"volts_per_unit": s, "rails": [_finite(design.rail_low), _finite(design.rail_high)],
            "clock": design.step, "line_volts": design.line_volts, "groups": groups,
            "clamp_conductance": CLAMP_CONDUCTANCE if core.bounded() else None}


def membrane_range(core: Core, design: Design, membranes: np.ndarray) -> list[str]:
    """Lines for ``rcsnn info``: each group's membrane range in volts at scale S (its bounds where bounded, else
    the reference's over ``membranes`` (steps, N), units, with the peaks S·v·e^{d/τ} at the window's end) and
    whether it fits the rails."""
    from .neurons import plan as circuit_plan

    p = circuit_plan(core, design)
    s = design.volts_per_unit
    peaks = membranes * s * peak_factor(design, p)
    lows, highs = core.per_neuron("v_min"), core.per_neuron("v_max")
    low, high = clamp_levels(core, design, p)
    out = [f"physical scale: S = {s:g} V per membrane unit, rails "
           + (f"{design.rail_low:g},{design.rail_high:g} V" if design.railed else "none")]
    for g, sl in zip(core.groups, core.offsets().values()):
        bounded = [bool(np.isfinite(b[sl]).all()) for b in (lows, highs)]
        lo = float(np.min(low[sl])) if bounded[0] else float(peaks[:, sl].min(initial=0.0))
        hi = float(np.max(high[sl])) if bounded[1] else float(peaks[:, sl].max(initial=0.0))
        how = {(True, True): "clamp levels", (False, False): f"reference over {membranes.shape[0]} steps"}.get(
            tuple(bounded), f"clamp level and reference over {membranes.shape[0]} steps")
        fits = "" if not design.railed else (
            " fits the rails" if design.rail_low * (1 + _SLACK) <= lo and hi <= design.rail_high * (1 + _SLACK)
            else " EXCEEDS the rails")
        out.append(f"  {g.name}: membrane {lo:.4g} .. {hi:.4g} V at the windows' end ({how}; theta "
                   f"{s * float(np.max(g.theta)):.4g} V);{fits}")
    return out
