"""The node and edge kinds of the intermediate representation, each with its equations.

Time is discrete: one step per token (Δt seconds, :attr:`Graph.dt <rcsnn.ir.graph.Graph.dt>`).
Membrane potentials, thresholds, biases and currents are in *membrane units* (the analog
back end maps one unit to a voltage; the fixed-point format to ``2**Fv`` integer steps).
A neuron's total input current at step t is

.. math::

    I_i[t] = \\sum_{\\text{projections}} (W_{in} u[t])_i + b_i
             + \\sum_{\\text{synapses}} \\alpha (M s_{pre}[t - d])_i

with ``M`` a ternary or a dense float matrix (:class:`Synapse`). State starts at
``v[0] = 0, i[0] = 0, s[0] = 0``. One node class, :class:`LIF`, carries every neuron kind
(:data:`NEURON_KINDS`): :func:`IF` (β = 1) and :func:`CubaLIF` (a synaptic current state) build
it with their parameters; ``LIF.kind`` names the kind a group's values make.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["RESET_MODES", "NEURON_KINDS", "UNBOUNDED", "Input", "LIF", "IF", "CubaLIF", "kind_of", "time_constant", "Output",
           "Projection", "Synapse", "Spikes"]

#: Reset modes of a group (``s = s[t-1]``, ``J`` = the input current the membrane integrates):
#: ``zero`` v = β v (1 − s) + J; ``subtract`` v = β v − θ s + J; ``subtract_before_decay``
#: v = β (v − θ s) + J; ``zero_drop_input`` v = (β v + J)(1 − s).
RESET_MODES = ("zero", "subtract", "subtract_before_decay", "zero_drop_input")
#: Neuron kinds, derived from a group's values: IF (β = 1, no synaptic state), LIF, CubaLIF.
NEURON_KINDS = ("IF", "LIF", "CubaLIF")
#: ``max_spikes`` of a group whose spike count per step has no limit (Sinabs' default ``MultiSpike``).
UNBOUNDED = 0


@dataclass(frozen=True, eq=False)
class Input:
    """The input port: a vector ``u[t]`` of ``size`` values per step (a token embedding in an LM).

    Attributes:
        size: number of input channels ``n_in``.
    """

    size: int


@dataclass(frozen=True, eq=False)
class LIF:
    """A group of ``size`` integrate-and-fire neurons sharing a reset mode; every kind of :data:`NEURON_KINDS`.

    Per step t, in this order (``I`` the total input current above, ``s = s[t-1]``):

    .. math::

        i[t] = \\beta_{syn}\\, i[t-1] + I[t]                \\quad\\text{(synaptic state, CubaLIF only)}

        J[t] = I[t] \\text{ (LIF, IF)}; \\quad J[t] = i[t - d_c] \\text{ (CubaLIF, } d_c = \\text{current\\_delay)}

        \\text{zero:}\\quad v[t] = \\beta\\, v[t-1]\\,(1 - s) + J[t]

        \\text{subtract:}\\quad v[t] = \\beta\\, v[t-1] - \\theta\\, s + J[t]

        \\text{subtract\\_before\\_decay:}\\quad v[t] = \\beta\\,(v[t-1] - \\theta\\, s) + J[t]

        \\text{zero\\_drop\\_input:}\\quad v[t] = (\\beta\\, v[t-1] + J[t])\\,(1 - s)

        v[t] = \\min(\\max(v[t], v_{min}), v_{max})       \\quad\\text{(saturation; unbounded by default)}

        s[t] = [\\, v[t] \\ge \\theta \\,] \\cdot \\min(\\lfloor v[t] / \\theta \\rfloor, K)

    ``K = max_spikes``: 1 (the default) gives binary spikes; K > 1 or :data:`UNBOUNDED` gives spike
    *counts* (Sinabs' ``MultiSpike``, Rockpool's ``max_spikes_per_dt``): the subtract resets remove
    ``θ s`` (s spikes), the zero resets use ``[s > 0]`` for ``s``, and synapses carry ``W s``.

    A group has the synaptic state (is a CubaLIF group) when any ``beta_syn`` is nonzero or
    ``current_delay`` is 1; otherwise ``J = I`` exactly (no second state). ``beta``, ``theta`` and
    ``beta_syn`` are each one float for the group or a ``(size,)`` float64 array (one per neuron);
    back ends read them per neuron (:meth:`Core.per_neuron <rcsnn.ir.arrays.Core.per_neuron>`).

    Saturation bounds ``v_min < v_max`` (membrane units; a float or a ``(size,)`` array, like θ) clip the
    membrane after its reset-mode update and before the spike decision; the defaults ``-inf``/``+inf``
    leave it unbounded (a circuit's rails, a digital core's clamp: ``docs/contract.md``, "Saturation").
    ``v_max >= θ`` (else the neuron never fires) and ``v_min < θ``; a bounded group fires at most
    ``min(K, ⌊v_max / θ⌋)`` spikes per step without any change to the spike formula.

    Attributes:
        size: number of neurons N_g.
        beta: membrane leak factor per step, ``0 < beta <= 1`` (1: IF, no leak).
        theta: firing threshold (membrane units), ``> 0``.
        reset: one of :data:`RESET_MODES`.
        bias: ``(size,)`` float64 constant input current ``b`` (membrane units per step).
        beta_syn: synaptic-current leak per step, ``0 <= beta_syn <= 1`` (0 for LIF and IF).
        current_delay: 0, the membrane integrates this step's current ``i[t]`` (snnTorch Synaptic,
            Rockpool); 1, last step's ``i[t-1]`` (Norse LIFCell). 0 for LIF and IF.
        max_spikes: spikes per neuron per step at most, ``K >= 1``, or :data:`UNBOUNDED` (0): no limit.
        v_min: lower membrane saturation bound (membrane units), ``-inf``: none.
        v_max: upper membrane saturation bound (membrane units), ``+inf``: none.
    """

    size: int
    beta: float | np.ndarray
    theta: float | np.ndarray
    reset: str
    bias: np.ndarray
    beta_syn: float | np.ndarray = 0.0
    current_delay: int = 0
    max_spikes: int = 1
    v_min: float | np.ndarray = -math.inf
    v_max: float | np.ndarray = math.inf

    @property
    def kind(self) -> str:
        """The group's kind, :func:`kind_of` its values."""
        return kind_of(self.beta, self.beta_syn, self.current_delay)

    @property
    def tau_steps(self) -> float | np.ndarray:
        """Membrane time constant in steps, :func:`time_constant` of ``beta``."""
        return time_constant(self.beta)


def time_constant(beta: float | np.ndarray) -> float | np.ndarray:
    """Time constant in steps of a leak factor, ``-1 / ln(beta)`` (inf where β = 1); an array if β is one."""
    if np.ndim(beta):
        with np.errstate(divide="ignore"):
            return -1.0 / np.log(np.asarray(beta, dtype=np.float64))
    return math.inf if beta == 1.0 else -1.0 / math.log(beta)


def kind_of(beta, beta_syn, current_delay: int) -> str:
    """``"CubaLIF"`` with a synaptic state (any β_syn ≠ 0, or current_delay 1), else ``"IF"`` when every
    β is 1, else ``"LIF"`` (:data:`NEURON_KINDS`)."""
    if current_delay == 1 or np.any(np.asarray(beta_syn) != 0):
        return "CubaLIF"
    return "IF" if np.all(np.asarray(beta) == 1.0) else "LIF"


def IF(size: int, theta: float | np.ndarray, reset: str, bias: np.ndarray) -> LIF:
    """Integrate-and-fire neurons: a :class:`LIF` with ``beta = 1`` (NIR ``IF``, Sinabs ``IAF``)."""
    return LIF(size, 1.0, theta, reset, bias)


def CubaLIF(size: int, beta: float | np.ndarray, beta_syn: float | np.ndarray, theta: float | np.ndarray,
            reset: str, bias: np.ndarray, current_delay: int = 0) -> LIF:
    """Current-based LIF neurons (NIR ``CubaLIF``): a :class:`LIF` with a synaptic current state ``i``.

    ``beta_syn = exp(-Δt/τ_syn)`` or ``1 - Δt/τ_syn`` as the flavour says; any input gain (e.g.
    Norse's Δt/τ_mem) is folded into the weights and bias by the importer, not stored here.
    """
    return LIF(size, beta, theta, reset, bias, beta_syn, current_delay)


@dataclass(frozen=True, eq=False)
class Output:
    """The output port: the spikes ``s[t]`` of every LIF group, concatenated in group order.

    An LM core adds a float readout ``logits[t] = readout_weight @ s[t] + readout_bias``.

    Attributes:
        size: total number of neurons N.
        readout_weight: ``(V, N)`` float64 or None.
        readout_bias: ``(V,)`` float64 or None.
    """

    size: int
    readout_weight: np.ndarray | None = None
    readout_bias: np.ndarray | None = None


@dataclass(frozen=True, eq=False)
class Projection:
    """Edge input → LIF: the external current ``x[t] = weight @ u[t]``.

    Attributes:
        weight: ``(post size, n_in)`` float64.
    """

    weight: np.ndarray


@dataclass(frozen=True, eq=False)
class Synapse:
    """Edge LIF → LIF: the current ``alpha * (M @ s_pre[t - delay])`` into the post group.

    Attributes:
        matrix: name of a matrix ``M`` (post × pre) in :attr:`Graph.matrices
            <rcsnn.ir.graph.Graph.matrices>`: ternary int8 ``T`` (``W = alpha*T``) or dense float64
            (``W = alpha*M``, alpha usually 1); several synapses may name one matrix (a shared T).
        alpha: scale ``> 0`` (membrane units per presynaptic spike for a ternary matrix).
        delay: 1, the spikes of step t−1 (recurrent synapses); 0, the spikes of the same step from
            a group updated earlier in the step (feed-forward layers as snnTorch and NIR run them).
            Same-step synapses form no cycle; groups update in topological order of them.
    """

    matrix: str
    alpha: float
    delay: int = 1


@dataclass(frozen=True, eq=False)
class Spikes:
    """Edge LIF → output: the group's spikes are part of the output vector."""
