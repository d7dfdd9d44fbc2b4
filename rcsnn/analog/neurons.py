"""Per-neuron circuit plan: which cell, window and component values each neuron of a core gets.

Every neuron reads its own β, θ (and, in a CubaLIF group, ``beta_syn`` and the group's ``current_delay``)
from :meth:`Core.per_neuron <rcsnn.ir.arrays.Core.per_neuron>`; nothing is assumed per group. One step has
two injection windows (:class:`~rcsnn.analog.design.Design`): the synaptic window ``win`` and, after it, the
*tail window* ``twin`` (as long as the reset window, closing before the next clock edge).

* **LIF / IF** (J = I): the synapses and the input line charge the membrane in ``win``; the unit resistance
  is ``R_unit = V_S·K_m/C``, K_m = ∫ w(u) e^{−(Δt−u)/τ_m} du. IF (β = 1, τ = inf) has no leak resistor
  (cell ``rcsnn_integrator_*`` of ``rcsnn_cells_ext.lib``) and K = ∫ w.
* **CubaLIF** (i[t] = β_s i[t−1] + I[t], J = i[t − d]): a second cell, the synaptic state ``syn<i>`` (1 V
  per unit, leak τ_s = −Δt/ln β_s, no reset), takes the synapses and the input; a unity buffer ``sl<i>`` of
  it drives the membrane's summing node ``sv<i>`` through ``R_t``. d = 0: the state charges in ``win``
  and is transferred in ``twin`` (it then holds i[t]·e^{(Δt−u)/τ_s}); d = 1: it is transferred in ``win``
  (holding i[t−1]·e^{−u/τ_s}) and charges in ``twin``. So ``R_t = K_t/C`` with
  K_t = ∫ w_m(u) e^{−(Δt−u)/τ_m} g(u) du, g the state's decay above, adds exactly i[t − d] to v.
* **Resets**: ``zero`` a reset conductance in the reset window; ``subtract`` a self-synapse of weight
  −θ from n<i> into the membrane's summing node; ``subtract_before_decay`` one of weight −β·θ (β(v − θs)
  = βv − βθs); ``zero_drop_input`` the zero reset plus the membrane's window gated by 1 − s[t−1]
  (``wg<i>``, a behavioural source V(win)·(1 − V(level))): v = (βv + J)(1 − s).
* **Spike counts** (a group's ``max_spikes`` K ≠ 1, docs/contract.md): the neuron's level is its count s
  (s volts), so its lines carry s·V_S (synapses add W·s) and the subtract self-synapse removes θ·s; the zero
  reset and the ``zero_drop_input`` gate use min(V(level), 1). The quantiser s = min(max(floor(v/θ), 1), K_eff)
  for v ≥ θ is built for K_eff = :func:`count_levels`, the largest count the circuit must be able to show.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..errors import RcsnnError
from ..ir.arrays import Core
from .design import Design, tau_of

__all__ = ["ZERO_RESETS", "MAX_COMPARATORS", "Neurons", "plan", "count_levels"]

#: Reset modes that clear the membrane (a reset conductance, gated by the own spike level).
ZERO_RESETS = ("zero", "zero_drop_input")
#: Largest K_eff the op-amp form builds: its count quantiser is K_eff comparators per neuron (thermometer).
MAX_COMPARATORS = 16


@dataclass(frozen=True)
class Neurons:
    """The circuit of every neuron, arrays ``(N,)`` (SI units; resistances in Ω, times in s).

    Attributes:
        beta, theta, tau: membrane leak, threshold, time constant (inf: IF).
        reset: reset mode of each neuron (its group's).
        cuba: True where the neuron has a synaptic state (CubaLIF with β_s > 0 or d = 1).
        delay: CubaLIF ``current_delay`` (0 elsewhere).
        tau_syn: synaptic-state time constant (s; inf for β_s = 1; 0 where not ``cuba``).
        r_in: unit-weight resistance into ``sum<i>`` (synapses, input line): the membrane's (LIF) or the
            synaptic state's (CubaLIF) R_unit; a synapse of weight w is ``r_in / |w|``.
        r_mem: unit-weight resistance into the membrane's summing node (the subtract self-synapse).
        r_transfer: CubaLIF transfer resistor R_t (0 elsewhere).
        v_compare: comparator threshold S·θ·e^{−t_clk/2τ} (V).
        uniform: per group index, True if all its neurons share β and θ (one threshold source).
    """

    beta: np.ndarray
    theta: np.ndarray
    tau: np.ndarray
    reset: np.ndarray
    cuba: np.ndarray
    delay: np.ndarray
    tau_syn: np.ndarray
    r_in: np.ndarray
    r_mem: np.ndarray
    r_transfer: np.ndarray
    v_compare: np.ndarray
    uniform: tuple[bool, ...]

    def charge_window(self, i: int) -> str:
        """Window node in which ``sum<i>``'s cell integrates (d = 1 CubaLIF: the tail window)."""
        return "twin" if self.cuba[i] and self.delay[i] == 1 else "win"

    def membrane_window(self, i: int) -> str:
        """Window node in which the membrane integrates J (d = 0 CubaLIF: the tail window)."""
        return "twin" if self.cuba[i] and self.delay[i] == 0 else "win"

    @property
    def self_weight(self) -> np.ndarray:
        """Weight of each neuron's subtract-reset self-synapse from n<i> (θ; ``subtract_before_decay``: β·θ), 0 where
        the reset is not a subtraction."""
        return np.select([self.reset == "subtract", self.reset == "subtract_before_decay"],
                         [self.theta, self.beta * self.theta], 0.0)

    @property
    def uses_tail(self) -> bool:
        return bool(self.cuba.any())

    @property
    def uses_ext(self) -> bool:
        """Whether any cell is leak-free (IF membrane or β_s = 1 state): ``rcsnn_cells_ext.lib``."""
        return bool(np.isinf(self.tau).any() or np.isinf(self.tau_syn[self.cuba]).any())


def plan(core: Core, design: Design) -> Neurons:
    """The per-neuron circuit of ``core`` (see the module docstring); one-line errors for what the circuit lacks."""
    beta, theta = core.per_neuron("beta"), core.per_neuron("theta")
    beta_syn, reset = core.per_neuron("beta_syn"), core.per_neuron("reset")
    delay = core.per_neuron("current_delay").astype(np.int64)
    cuba = (beta_syn != 0) | (delay == 1)
    n = core.n_neurons
    tau, tau_syn = np.empty(n), np.zeros(n)
    r_in, r_mem, r_transfer, v_compare = np.empty(n), np.empty(n), np.zeros(n), np.empty(n)
    cache: dict = {}
    for i in range(n):
        key = (beta[i], theta[i])
        if key not in cache:
            cache[key] = design.values("", beta[i], theta[i])
        lif = cache[key]
        tau[i], v_compare[i], r_mem[i] = lif.tau, lif.v_compare, lif.r_unit
        r_in[i] = lif.r_unit
        if not cuba[i]:
            continue
        if beta_syn[i] == 0:
            raise RcsnnError(f"analog: neuron {i}: CubaLIF with beta_syn 0 and current_delay 1 is a one-step delay "
                             "line the circuit does not have")
        key = ("cuba", beta[i], beta_syn[i], delay[i])
        if key not in cache:
            cache[key] = _cuba(design, lif.tau, tau_of(design.step, beta_syn[i]), int(delay[i]))
        tau_syn[i], r_in[i], r_mem[i], r_transfer[i] = cache[key]
    offsets = core.offsets().values()
    same = tuple(bool((beta[sl] == beta[sl][0]).all() and (theta[sl] == theta[sl][0]).all()) for sl in offsets)
    return Neurons(beta, theta, tau, reset, cuba, delay, tau_syn, r_in, r_mem, r_transfer, v_compare, same)


def _cuba(design: Design, tau: float, tau_syn: float, delay: int) -> tuple[float, float, float, float]:
    """(τ_s, R_unit of the state, R_unit of the membrane, R_t) of a CubaLIF neuron (module docstring)."""
    design.check_tail()
    charge, membrane = ("syn", "tail") if delay == 0 else ("tail", "syn")
    if delay == 0:
        def decay(u):  # the state after its charge: i[t]·e^{(Δt−u)/τ_s}
            return np.exp((design.step - u) / tau_syn)
    else:
        def decay(u):  # the state before its charge: i[t−1]·e^{−u/τ_s}
            return np.exp(-u / tau_syn)
    c = design.capacitance
    r_in = design.v_spike * design.kernel(tau_syn, charge) / c
    r_mem = design.v_spike * design.kernel(tau, membrane) / c
    r_transfer = design.kernel(tau, membrane, decay) / c
    if not all(math.isfinite(r) and r > 0 for r in (r_in, r_mem, r_transfer)):
        raise RcsnnError(f"analog: CubaLIF neuron tau {tau:g} s, tau_syn {tau_syn:g} s: no finite resistor values")
    return tau_syn, r_in, r_mem, r_transfer


def count_levels(core: Core, membranes: np.ndarray) -> np.ndarray:
    """K_eff of every group (``(G,)`` int; 1 for a binary group): the largest count its circuit must show.

    From the float reference's membranes ``(steps, N)`` of the run the decks are written for (known before
    any circuit runs): one more than the largest count floor(v/θ) any of the group's neurons reaches, at least
    2, at most the group's ``max_spikes`` K (K = 0: no limit). A circuit count above the reference's largest is
    then shown (K_eff ≠ any reference count), never clipped into agreement; counts up to K_eff are exact."""
    theta = core.per_neuron("theta")
    out = np.ones(len(core.groups), dtype=np.int64)
    for k, (g, sl) in enumerate(zip(core.groups, core.offsets().values())):
        if g.max_spikes == 1:
            continue
        v = membranes[:, sl]
        top = int(np.floor(v / theta[sl]).max(initial=0)) if v.size else 0
        out[k] = max(top + 1, 2) if g.max_spikes == 0 else min(max(top + 1, 2), g.max_spikes)
    return out
