"""The node and edge kinds of the intermediate representation, each with its equations.

Time is discrete: one step per token (Δt seconds, :attr:`Graph.dt <rcsnn.ir.graph.Graph.dt>`).
Membrane potentials, thresholds, biases and currents are in *membrane units* (the analog
back end maps one unit to a voltage; the fixed-point format to ``2**Fv`` integer steps).
A neuron's total input current at step t is

.. math::

    I_i[t] = \\sum_{\\text{projections}} (W_{in} u[t])_i + b_i
             + \\sum_{\\text{synapses}} \\alpha (T s_{pre}[t - d])_i

with every term defined by the kinds below. State starts at ``v[0] = 0, s[0] = 0``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["RESET_MODES", "Input", "LIF", "Output", "Projection", "Synapse", "Spikes"]

RESET_MODES = ("zero", "subtract")


@dataclass(frozen=True, eq=False)
class Input:
    """The input port: a vector ``u[t]`` of ``size`` values per step (a token embedding in an LM).

    Attributes:
        size: number of input channels ``n_in``.
    """

    size: int


@dataclass(frozen=True, eq=False)
class LIF:
    """A group of ``size`` leaky integrate-and-fire neurons sharing leak, threshold and reset.

    .. math::

        \\text{zero:}\\quad v[t] = \\beta\\, v[t-1]\\,(1 - s[t-1]) + I[t]

        \\text{subtract:}\\quad v[t] = \\beta\\, v[t-1] - \\theta\\, s[t-1] + I[t]

        s[t] = [\\, v[t] \\ge \\theta \\,]

    Attributes:
        size: number of neurons N_g.
        beta: leak factor per step, ``0 < beta < 1`` (``exp(-Δt/τ)``; τ in steps is
            :attr:`tau_steps`).
        theta: firing threshold (membrane units), ``> 0``.
        reset: ``"zero"`` (v := 0 after a spike, the step after) or ``"subtract"`` (v −= θ).
        bias: ``(size,)`` float64 constant input current ``b`` (membrane units per step).
    """

    size: int
    beta: float
    theta: float
    reset: str
    bias: np.ndarray

    @property
    def tau_steps(self) -> float:
        """Membrane time constant in steps, ``-1 / ln(beta)``."""
        return -1.0 / math.log(self.beta)


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
    """Edge LIF → LIF: the current ``alpha * (T @ s_pre[t - delay])`` into the post group.

    Attributes:
        matrix: name of a ternary int8 matrix ``T`` (post × pre) in :attr:`Graph.matrices
            <rcsnn.ir.graph.Graph.matrices>`; several synapses may name one matrix (a shared T).
        alpha: scale ``> 0`` (membrane units per presynaptic spike).
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
