"""A-priori error budget of the SPICE decks, per neuron group, fixed before the verified run.

**Form.** For group g with threshold θ, a membrane at a clock edge must satisfy

    |v_spice − v_ref| ≤ budget(v_ref) = a + b · max(|v_ref| − θ, 0)        (volts)

so ``a`` is the budget of every membrane with |v| ≤ θ, in particular the one that decides spikes
(an event whose margin |v_ref − θ| is ≤ budget(v_ref), i.e. ≤ a near θ, is *undecidable*), and
``b`` is how the budget grows with |v| above θ.

**Error model** (measured, see docs/analog.md): what ngspice's trapezoidal rule does to one step of
the clocked circuit is, to < 1e-8 V per step, a per-group error of the leak factor and of the input
charge. With keep = 0 after a zero-reset spike, else 1,

    e[t] = β·keep·e[t−1] + ε_L·keep·v[t−1] + ε_I·I[t] + r[t],    I[t] = v[t] − β·keep·v[t−1]

whose solution is e[t] = ε_I·v[t] + ε_L·Σ_k β^k·v[t−1−k] (+ the residual r), hence the bound

    |e[t]| ≤ ε_I·|v[t]| + ε_L·M + ε_R·V + ρ,   M = max over the run of Σ_k β^k |v_ref[t−1−k]| (reset-aware)

(ε_R: what the zero-reset switch leaves of a spiking membrane, V the group's largest |v_ref|) and
with the safety factor S (``Design.safety``) and the comparator's sampling uncertainty σ =
θ·(1 − e^{−t_clk/2τ}):

    a = S·(ε_L·M + ε_I·θ + ε_R·V + ρ) + σ,      b = S·ε_I.

(here S is the safety factor, not the volts per unit; the budget is in membrane units, volts at 1 V per unit).
A bounded core adds its clamps' derived terms inside the bracket, (ε_E + ε_I)·H + δ_G (:func:`clamp_terms`,
:mod:`rcsnn.analog.scale`): the window's falling edge and the clamp's finite conductance, made at a clamped sample,
and the gain error the solution above counts for the clamped value, decaying with the membrane.

ε_L and ε_I are the larger of the derived values (:meth:`Design.leak_error`, :meth:`Design.gain_error`
at the deck's maximum step h) and the values *calibrated* by a least-squares fit on a separate
calibration run, but a calibrated value counts only up to :data:`ACCEPT` (1.5× the derived one
plus a floor; ρ and ε_R up to their caps): beyond that the decks do not implement the model (a
finite op-amp gain, a wrong resistor in the writer), which the verdict must catch, not excuse —
the budget keeps the capped value and the sidecar says the calibration disagrees. The calibration:
:data:`CAL_NEURONS` neurons per group with the group's β, θ and reset, a seeded
random ternary T and seeded N(0, (1.5θ)²) currents (:data:`CAL_SEED`, :data:`CAL_STEPS` steps),
one open-loop deck per group at that group's h, the same design. ρ is the largest error of the
calibration run the fitted model leaves unexplained. M comes from the float reference of the
stimulus the decks are written for (known before any circuit runs). The verified run never
enters: the budget is written into ``core.json`` with the netlists.
"""

from __future__ import annotations

import json
import math
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from ..errors import RcsnnError
from ..ir.arrays import Core, NeuronGroup, SynapseBlock
from ..ir.graph import Graph
from ..ir.reference import simulate_float
from ..tools import version
from .design import SIDECAR, Design, tau_of
from .neurons import ZERO_RESETS, plan
from .partition import partition
from .scale import clamp_errors
from .simulate import simulate_dir

__all__ = ["CAL_NEURONS", "ACCEPT", "RESIDUAL_CAP", "RESET_CAP", "CAL_STEPS", "CAL_SEED", "FORM", "Calibration",
           "GroupBudget", "history", "calibrate",
           "group_budgets", "clamp_terms", "budget_record", "allowance"]

CAL_NEURONS = 8
#: A calibrated ε counts up to factor · derived + floor: (factor, floor) for the leak and the gain error.
ACCEPT = {"leak": (1.5, 1e-9), "gain": (1.5, 1e-7), "state": (1.5, 1e-9), "state_gain": (1.5, 1e-7)}
#: Caps of the calibrated residual ρ (per unit of θ) and reset error ε_R.
RESIDUAL_CAP = 1e-7
RESET_CAP = 1e-8
CAL_STEPS = 40
CAL_SEED = 8
FORM = "|v_spice - v_ref| <= a + b * max(|v_ref| - theta, 0) (V), per group"

_CACHE: dict[str, dict[str, Calibration]] = {}


@dataclass(frozen=True)
class Calibration:
    """Fitted error coefficients of one group at maximum step ``max_step`` (s).

    Attributes:
        leak: ε_L, error of the per-step leak factor (V of error per V of v[t−1]).
        gain: ε_I, relative error of the charge a step's input adds.
        reset: coefficient of v[t−1] after a zero-reset spike (the reset switch's residual).
        residual: ρ, largest error of the calibration run the fitted model leaves unexplained (V).
        largest_error: largest |v_spice − v_ref| of the calibration run (V).
    """

    group: str
    max_step: float
    leak: float
    gain: float
    reset: float
    residual: float
    largest_error: float
    state_gain: float = 0.0  # ε_J: CubaLIF, relative error of the state's current J = i[t−d] in the membrane
    state: float = 0.0  # ε_S: CubaLIF, the state's leak error (V of membrane error per V of its history q)


@dataclass(frozen=True)
class GroupBudget:
    """The budget of one group: ``a`` (V, |v| ≤ θ and spike decisions) and ``b`` (V per V above θ), with the
    terms they are made of (see the module docstring)."""

    group: str
    theta: float
    a: float
    b: float
    max_step: float  # s, the largest maximum step of the group's decks
    history: float  # M, V
    largest: float  # V: the group's largest |v_ref|
    leak_error: float  # ε_L used: max(derived, calibrated)
    gain_error: float  # ε_I used
    reset_error: float  # ε_R, calibrated
    residual: float  # ρ, V
    sampling: float  # σ, V
    safety: float  # S
    derived: dict  # {"leak": ε_L, "gain": ε_I} from the design alone
    calibrated: dict  # asdict(Calibration)
    disagrees: list  # calibrated terms beyond what they may add (the decks do not implement the model)
    state: dict = None  # CubaLIF: {"error": ε_S, "history": Q (V)}, the state's leak term ε_S·Q of a; else empty
    clamp: dict = None  # bounded: {"edge": ε_E, "gain": ε_I, "history": H, "conductance": δ_G}: (ε_E + ε_I)·H + δ_G of a

    def at(self, v: np.ndarray) -> np.ndarray:
        """budget(v) (V) for reference membranes ``v`` (θ: the group's largest)."""
        return self.a + self.b * np.maximum(np.abs(v) - self.theta, 0.0)


def history(core: Core, membranes: np.ndarray, spikes: np.ndarray) -> np.ndarray:
    """Per neuron, max over steps of m[t] = Σ_k β^k |v[t−1−k]| (reset-aware: a zero-reset spike clears it), V."""
    beta = core.per_neuron("beta")
    zero = np.isin(core.per_neuron("reset"), ZERO_RESETS)
    m = np.zeros(core.n_neurons)
    top = np.zeros(core.n_neurons)
    for t in range(membranes.shape[0]):
        top = np.maximum(top, m)
        m = (beta * m + np.abs(membranes[t])) * np.where(zero & (spikes[t] > 0), 0.0, 1.0)
    return top


def state_history(core: Core, ref) -> tuple[np.ndarray, np.ndarray]:
    """Per neuron, (Q, P) of the CubaLIF synaptic state (zeros without one), V: the largest membrane error per
    unit of the state's leak error ε_S (Q) and of its gain error ε_J (P), the max over t of the membrane's
    leaky sums Σ_j β^j |q[t−j]| and Σ_j β^j |i[t−d−j]| (reset-aware as :func:`history`), with
    q[t] = Σ_k β_s^k |i[t−d−1−k]| the leak history of the state behind the current J[t] = i[t−d] the membrane
    integrates (``ref``: the float reference's :class:`~rcsnn.ir.reference.Run` with its ``synaptic`` states)."""
    n = core.n_neurons
    if ref.synaptic is None:
        return np.zeros(n), np.zeros(n)
    beta, beta_syn = core.per_neuron("beta"), core.per_neuron("beta_syn")
    late = core.per_neuron("current_delay") == 1
    zero = np.isin(core.per_neuron("reset"), ZERO_RESETS)
    state = np.abs(ref.synaptic)
    q_now, q_late, previous = np.zeros(n), np.zeros(n), np.zeros(n)
    mq, mp, top_q, top_p = np.zeros(n), np.zeros(n), np.zeros(n), np.zeros(n)
    for t in range(state.shape[0]):
        mq = beta * mq + np.where(late, q_late, q_now)
        mp = beta * mp + np.where(late, previous, state[t])
        top_q, top_p = np.maximum(top_q, mq), np.maximum(top_p, mp)
        clear = np.where(zero & (ref.spikes[t] > 0), 0.0, 1.0)
        mq, mp = mq * clear, mp * clear
        q_late, q_now, previous = q_now, beta_syn * q_now + state[t], state[t]
    return top_q, top_p


def representative(g: NeuronGroup) -> NeuronGroup:
    """The calibration group of ``g``: its smallest β (the largest derived errors), largest θ and, in a CubaLIF
    group, smallest nonzero β_s, each one value, with its reset and current delay, unbounded."""
    syn = np.ravel(g.beta_syn)
    syn = float(syn[syn > 0].min()) if (syn > 0).any() else 0.0
    return replace(g, size=CAL_NEURONS, beta=float(np.min(g.beta)), theta=float(np.max(g.theta)), beta_syn=syn, skew=0,
                   v_min=-math.inf, v_max=math.inf)  # the calibration measures integration; the clamp's terms are derived


def _calibration_core(groups: list[NeuronGroup], rng: np.random.Generator) -> Core:
    n = CAL_NEURONS
    cal = tuple(representative(g) for g in groups)
    # matrix keys by index: "T_<name>" could exceed the 64 characters of a name (rcsnn.ir.graph.NAME_PATTERN)
    matrices = {f"T{k}": (rng.choice([-1, 1], (n, n)) * (rng.random((n, n)) < 0.3)).astype(np.int8) for k in range(len(cal))}
    synapses = tuple(SynapseBlock(g.name, g.name, f"T{k}", 0.4 * g.theta) for k, g in enumerate(cal))
    size = n * len(cal)
    return Core(cal, matrices, synapses, bias=np.zeros(size), input_weight=np.eye(size)).validate()


def _fit(core: Core, ref, got: np.ndarray, name: str, h: float) -> Calibration:
    sl = core.offsets()[name]
    beta = core.per_neuron("beta")[sl]
    zero = np.isin(core.per_neuron("reset")[sl], ZERO_RESETS)
    v, s = ref.membranes[:, sl], np.minimum(ref.spikes[:, sl], 1).astype(float)  # a count resets like one spike
    err = got[:, sl] - v
    pad = np.zeros((1, v.shape[1]))
    pv, ps, pe = np.vstack([pad, v[:-1]]), np.vstack([pad, s[:-1]]), np.vstack([pad, err[:-1]])
    keep = 1 - zero * ps
    current = v - beta * keep * pv
    rise = err - beta * keep * pe
    columns = [(keep * pv), current, ((1 - keep) * pv)]
    if core.group(name).synaptic:  # the state's current J = i[t−d] (its own gain) and its leak history
        state_current, sums = _state_terms(core, ref, sl)
        dropped = (core.per_neuron("reset")[sl] == "zero_drop_input") * ps  # v = (βv + J)(1 − s): J does not enter
        state_current, sums = state_current * (1 - dropped), sums * (1 - dropped)
        columns[1] = current - state_current
        columns += [state_current, sums]
    x = np.stack([c.ravel() for c in columns], axis=1)
    (leak, gain, reset, *state), *_ = np.linalg.lstsq(x, rise.ravel(), rcond=None)
    model = np.zeros_like(err)  # the fitted model's error, propagated like the circuit's
    for t in range(v.shape[0]):
        prev = model[t - 1] if t else 0.0
        model[t] = beta * keep[t] * prev + leak * keep[t] * pv[t] + gain * columns[1][t] + reset * (1 - keep[t]) * pv[t]
        if state:
            model[t] += state[0] * columns[3][t] + state[1] * columns[4][t]
    return Calibration(name, h, float(leak), float(gain), float(reset), float(np.abs(err - model).max()),
                       float(np.abs(err).max()), *(float(c) for c in state))


def _state_terms(core: Core, ref, sl: slice) -> tuple[np.ndarray, np.ndarray]:
    """(J, q) of the neurons ``sl``, signed, (steps, n): the state's current J[t] = i[t−d] and its leak history
    q[t] = Σ_k β_s^k i[t−d−1−k]."""
    beta_syn, late = core.per_neuron("beta_syn")[sl], core.per_neuron("current_delay")[sl] == 1
    i = ref.synaptic[:, sl]
    current, sums = np.zeros_like(i), np.zeros_like(i)
    q_now, q_late, previous = np.zeros(i.shape[1]), np.zeros(i.shape[1]), np.zeros(i.shape[1])
    for t in range(i.shape[0]):
        current[t] = np.where(late, previous, i[t])
        sums[t] = np.where(late, q_late, q_now)
        q_late, q_now, previous = q_now, beta_syn * q_now + i[t], i[t]
    return current, sums


def calibrate(design: Design, groups: list[NeuronGroup], steps: dict[str, float], write: Callable,
              workers: int = 2) -> dict[str, Calibration]:
    """Calibration run (see the module docstring) of ``groups`` at maximum steps ``steps`` {group: h (s)}:
    the fitted :class:`Calibration` of each group. ``write`` is
    :func:`~rcsnn.analog.netlist.write_netlists` (given by it: this module does not import it). Runs
    ngspice (a few seconds); cached per process."""
    cal = [representative(g) for g in groups]
    key = json.dumps([asdict(design), [(g.name, g.beta, g.theta, g.reset, g.beta_syn, g.current_delay) for g in cal], steps],
                     sort_keys=True)
    if key in _CACHE:
        return _CACHE[key]
    core = _calibration_core(groups, np.random.default_rng(CAL_SEED))
    theta = core.per_neuron("theta")
    currents = 1.5 * theta * np.random.default_rng(CAL_SEED + 1).standard_normal((CAL_STEPS, core.n_neurons))
    ref = simulate_float(core, currents)
    graph = partition(Graph.from_arrays(core), len(groups))
    with tempfile.TemporaryDirectory(prefix="rcsnn-calibrate-") as tmp:
        sidecar = write(graph, currents, tmp, design, "open", ref.spikes, "calibration", budget=False)
        group_of = {sl.start: g.name for g, sl in zip(core.groups, core.offsets().values())}
        for deck in sidecar["decks"]:
            deck["max_step"] = steps[group_of[deck["start"]]]
        (Path(tmp) / SIDECAR).write_text(json.dumps(sidecar, indent=1, sort_keys=True) + "\n")
        got = simulate_dir(tmp, workers=workers)
    found = {g.name: _fit(core, ref, got.membranes, g.name, steps[g.name]) for g in core.groups}
    _CACHE[key] = found
    return found


def group_budgets(core: Core, design: Design, steps: dict[str, float], ref,
                  calibration: dict[str, Calibration], levels: np.ndarray | None = None) -> list[GroupBudget]:
    """The :class:`GroupBudget` of every group, from the design, the calibration and the float reference ``ref``
    (a :class:`~rcsnn.ir.reference.Run`: membranes, spikes and CubaLIF states (steps, N)) of the stimulus the
    decks are written for. A group whose neurons differ takes each term at its worst neuron: the smallest β
    and β_s (largest derived errors), the largest θ, history and sampling uncertainty. A bounded core adds the
    clamp's derived terms (:func:`clamp_terms`; ``levels``: x + b of the run, (steps, N))."""
    membranes = ref.membranes
    top = history(core, membranes, ref.spikes)
    state_q, state_p = state_history(core, ref)
    clamps = clamp_terms(core, design, ref, levels) if core.bounded() else None
    out = []
    for g, sl in zip(core.groups, core.offsets().values()):
        rep_g = representative(g)
        tau = tau_of(design.step, rep_g.beta)
        theta = rep_g.theta
        h = steps[g.name]
        cal = calibration[g.name]
        derived = {"leak": design.leak_error(tau, h), "gain": design.gain_error(tau, h)}
        if g.synaptic:  # the state's leak error; its current's gain error: its charge's and the transfer's
            tau_syn = tau_of(design.step, rep_g.beta_syn)
            derived["state"] = design.leak_error(tau_syn, h)
            derived["state_gain"] = design.gain_error(tau_syn, h) + (h * (1 / tau + 1 / tau_syn)) ** 2 / 12
        caps = {k: f * derived[k] + floor for k, (f, floor) in ACCEPT.items() if k in derived}
        caps.update(residual=RESIDUAL_CAP * theta, reset=RESET_CAP)
        found = {"leak": abs(cal.leak), "gain": abs(cal.gain), "residual": cal.residual,
                 "reset": abs(cal.reset) if g.reset in ZERO_RESETS else 0.0}
        if g.synaptic:
            found.update(state=abs(cal.state), state_gain=abs(cal.state_gain))
        disagrees = [f"{k} {found[k]:.3g} > {caps[k]:.3g}" for k in found if found[k] > caps[k]]
        used = {k: min(found[k], caps[k]) for k in found}
        leak, gain = max(derived["leak"], used["leak"]), max(derived["gain"], used["gain"])
        m = float(top[sl].max()) if g.size else 0.0
        largest = float(np.abs(membranes[:, sl]).max()) if g.size else 0.0
        sampling = max(-th * math.expm1(-design.clock_edge / (2 * tau_of(design.step, b)))
                       for b, th in set(zip(core.per_neuron("beta")[sl].tolist(), core.per_neuron("theta")[sl].tolist())))
        state = {}
        if g.synaptic:  # e_v ≤ ε_I|v| + ... + ε_S·Q + |ε_J − ε_I|·P  (|ε_J − ε_I| ≤ max of the two)
            state = {"error": max(derived["state"], used["state"]), "history": float(state_q[sl].max()),
                     "gain": max(derived["state_gain"], used["state_gain"], gain), "current": float(state_p[sl].max())}
        s = design.safety
        clamp = {k: float(v[sl].max(initial=0.0)) for k, v in clamps.items()} if clamps is not None else {}
        if clamp:  # the gain error the error model's solution counts for the clamped value
            clamp["gain"] = gain
        a = s * (leak * m + gain * theta + used["reset"] * largest + used["residual"]
                 + (state["error"] * state["history"] + state["gain"] * state["current"] if state else 0.0)
                 + ((clamp["edge"] + gain) * clamp["history"] + clamp["conductance"] if clamp else 0.0)) + sampling
        calibrated = {k: v for k, v in asdict(cal).items() if k not in ("state", "state_gain") or g.synaptic}
        out.append(GroupBudget(g.name, theta, a, s * gain, h, m, largest, leak, gain, used["reset"], used["residual"],
                               sampling, s, derived, calibrated, disagrees, state, clamp))
    return out


def clamp_terms(core: Core, design: Design, ref, levels: np.ndarray | None) -> dict[str, np.ndarray]:
    """Per neuron, the clamp's derived terms (:mod:`rcsnn.analog.scale`): ``edge`` ε_E = e/(2τ), ``conductance``
    δ_G (units) and ``history`` H = max_t β^{t−c}·|v_ref[c]|, c the last step ≤ t at which the reference sat at a
    bound (reset-aware: a zero-reset spike clears it; 0 without one). A clamped sample sets the membrane to the
    bound up to δ_c ≤ ε_E·|v[c]| + δ_G, forgetting the error before it; after it the error model's solution
    (module docstring) misses the gain error of v[c]: e[t] = ε_I·v[t] + ε_L·(…) + β^{t−c}·(δ_c − ε_I·v[c]),
    so a += S·((ε_E + ε_I)·H + δ_G) (each at its group's worst neuron)."""
    v = ref.membranes
    clamped = (v == core.per_neuron("v_max")) | (v == core.per_neuron("v_min"))
    beta = core.per_neuron("beta")
    zero = np.isin(core.per_neuron("reset"), ZERO_RESETS)
    m, top = np.zeros(core.n_neurons), np.zeros(core.n_neurons)
    for t in range(v.shape[0]):
        m = np.where(clamped[t], np.abs(v[t]), beta * m)
        top = np.maximum(top, m)
        m = m * np.where(zero & (ref.spikes[t] > 0), 0.0, 1.0)
    levels = np.zeros((1, core.n_neurons)) if levels is None else levels
    edge, conductance = clamp_errors(core, design, plan(core, design), ref.spikes, levels)
    return {"edge": edge, "history": top, "conductance": conductance}


def budget_record(budgets: list[GroupBudget]) -> dict:
    """The sidecar's ``budget`` entry: the form, every group's terms, the calibration's provenance."""
    return {"form": FORM,
            "groups": [{**{k: v for k, v in asdict(b).items() if k not in ("state", "clamp") or v},
                        "a_over_theta": b.a / b.theta} for b in budgets],
            "calibration": {"neurons_per_group": CAL_NEURONS, "steps": CAL_STEPS, "seed": CAL_SEED,
                            "stimulus": "N(0, (1.5 theta)^2) currents per neuron, seeded; random ternary T at 30 % "
                                        "density, alpha = 0.4 theta; one open-loop deck per group at its max step",
                            "ngspice": version("ngspice")}}


def allowance(core: Core, record: dict, v_ref: np.ndarray) -> np.ndarray:
    """budget(v_ref) (V) of every event, ``v_ref`` (steps, N), from a sidecar's ``budget`` entry."""
    by_name = {b["group"]: b for b in record["groups"]}
    theta = core.per_neuron("theta")
    out = np.empty_like(v_ref, dtype=np.float64)
    for g, sl in zip(core.groups, core.offsets().values()):
        if g.name not in by_name:
            raise RcsnnError(f"error budget: no entry for group {g.name!r} in the netlists' core.json")
        b = by_name[g.name]
        out[..., sl] = b["a"] + b["b"] * np.maximum(np.abs(v_ref[..., sl]) - theta[sl], 0.0)
    return out
