"""The array view of a spiking core: what simulators and backend writers consume.

A :class:`Core` is the intermediate graph (:mod:`rcsnn.ir.graph`) flattened
into numpy arrays. Neurons of all groups are numbered consecutively in group
order; a raster is ``(steps, N_total)``. The semantics are those of
``docs/contract.md``:

.. math::

    I_i[t] = x_i[t] + b_i + \\sum_j W_{ij} s_j[t-d_{ij}], \\qquad W = \\alpha T

    \\text{zero:}\\quad v_i[t] = \\beta_g v_i[t-1] (1 - s_i[t-1]) + I_i[t]

    \\text{subtract:}\\quad v_i[t] = \\beta_g v_i[t-1] - \\theta_g s_i[t-1] + I_i[t]

    s_i[t] = [v_i[t] \\ge \\theta_g]

where the external input is ``x[t] = input_weight @ u[t]`` for the input-port
vector ``u[t]`` (a token embedding in the language model) and the synaptic delay
``d`` is 1 (the contract's recurrent synapses) or 0 for same-step feed-forward
blocks between groups, which must form no cycle; groups update in
:meth:`Core.update_order`. The analog and digital backends take ``d = 1`` only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..errors import RcsnnError
from .nodes import RESET_MODES

__all__ = ["Core", "NeuronGroup", "SynapseBlock", "FixedFormat", "TokenFrontend", "check_array", "array_view"]


@dataclass(frozen=True)
class NeuronGroup:
    """N LIF neurons sharing leak, threshold and reset mode.

    Attributes:
        name: unique group name.
        size: number of neurons.
        beta: leak factor per step, ``0 < beta < 1`` (``exp(-dt/tau)`` in our models).
        theta: firing threshold (membrane units), ``> 0``.
        reset: ``"zero"`` or ``"subtract"``.
    """

    name: str
    size: int
    beta: float
    theta: float
    reset: str

    @property
    def tau_steps(self) -> float:
        """Membrane time constant in steps, ``-1 / ln(beta)``."""
        return -1.0 / math.log(self.beta)


@dataclass(frozen=True)
class SynapseBlock:
    """Recurrent synapses ``W = alpha * T`` from group ``pre`` to group ``post``.

    ``matrix`` names a ternary matrix in :attr:`Core.matrices` of shape
    ``(post.size, pre.size)``; several blocks may name the same matrix (the shared
    T of the TPSAPU core is stored once).
    """

    pre: str
    post: str
    matrix: str
    alpha: float
    delay: int = 1
    """1: the spikes of step t−1 (the contract's recurrent synapses); 0: the spikes of the same
    step, from a group updated earlier in the step (feed-forward layers as snnTorch and NIR run them)."""


@dataclass(frozen=True)
class FixedFormat:
    """Fixed-point format of the integer reference and the digital core.

    Attributes:
        Wv: signed width of the membrane (and of every quantised parameter and input).
        Fv: fractional bits of membrane, threshold, weights, bias and input.
        Fb: fractional bits of the leak factor beta.
    """

    Wv: int = 24
    Fv: int = 12
    Fb: int = 14

    def check(self, where: str = "fixed-point format") -> None:
        if not 2 <= self.Wv <= 40:
            raise RcsnnError(f"{where}: Wv={self.Wv} is outside 2..40")
        if not 0 <= self.Fv < self.Wv:
            raise RcsnnError(f"{where}: Fv={self.Fv} is outside 0..Wv-1")
        if not 1 <= self.Fb <= 20:
            raise RcsnnError(f"{where}: Fb={self.Fb} is outside 1..20")


@dataclass(frozen=True)
class TokenFrontend:
    """Character front end of a language-model core: token -> input-port vector."""

    vocab: str
    embedding: np.ndarray  # (len(vocab), n_in) float64

    def encode(self, text: str) -> np.ndarray:
        index = {c: i for i, c in enumerate(self.vocab)}
        unknown = sorted({c for c in text if c not in index})
        if unknown:
            raise RcsnnError(f"prompt: characters not in the core's vocabulary: {unknown!r}")
        return np.array([index[c] for c in text], dtype=np.int64)


@dataclass
class Core:
    """A spiking core as arrays; see the module docstring for the equations.

    Attributes:
        groups: neuron groups, in neuron-numbering order.
        matrices: ternary int8 matrices by name.
        synapses: recurrent synapse blocks referring to ``matrices``.
        bias: ``(N_total,)`` constant input current per neuron.
        input_weight: ``(N_total, n_in)`` input-port -> neuron current.
        dt: seconds per step (only NIR export/import and the analog clock need it).
        fixed: fixed-point format of the integer reference.
        readout_weight, readout_bias: optional float readout from spikes (LM logits).
        frontend: optional token front end (vocabulary and embedding).
    """

    groups: tuple[NeuronGroup, ...]
    matrices: dict[str, np.ndarray]
    synapses: tuple[SynapseBlock, ...]
    bias: np.ndarray
    input_weight: np.ndarray
    dt: float = 1e-3
    fixed: FixedFormat = field(default_factory=FixedFormat)
    readout_weight: np.ndarray | None = None
    readout_bias: np.ndarray | None = None
    frontend: TokenFrontend | None = None

    @property
    def n_neurons(self) -> int:
        return sum(g.size for g in self.groups)

    @property
    def n_inputs(self) -> int:
        return self.input_weight.shape[1]

    def offsets(self) -> dict[str, slice]:
        """Neuron index range of each group."""
        out, start = {}, 0
        for g in self.groups:
            out[g.name] = slice(start, start + g.size)
            start += g.size
        return out

    def group(self, name: str) -> NeuronGroup:
        for g in self.groups:
            if g.name == name:
                return g
        raise KeyError(name)

    def update_order(self) -> list[str]:
        """Group names in an order where every same-step (delay 0) block's pre comes before its post.

        Stable: groups keep their own order unless a same-step block forces otherwise.
        """
        import networkx as nx

        dag = nx.DiGraph()
        dag.add_nodes_from(g.name for g in self.groups)
        dag.add_edges_from((s.pre, s.post) for s in self.synapses if s.delay == 0)
        rank = {g.name: k for k, g in enumerate(self.groups)}
        try:
            return list(nx.lexicographical_topological_sort(dag, key=rank.__getitem__))
        except nx.NetworkXUnfeasible:
            cycle = " -> ".join(f"{a}" for a, _ in nx.find_cycle(dag))
            raise RcsnnError(f"core: same-step (delay 0) synapses form a cycle through {cycle}; "
                             "a cycle needs delay 1") from None

    def same_step_blocks(self) -> list[SynapseBlock]:
        """The feed-forward blocks with delay 0 (backends that clock spikes per step refuse them)."""
        return [s for s in self.synapses if s.delay == 0]

    def per_neuron(self, attribute: str) -> np.ndarray:
        """A group attribute (``beta``, ``theta``) broadcast to ``(N_total,)``."""
        return np.concatenate([np.full(g.size, getattr(g, attribute), dtype=np.float64) for g in self.groups])

    def reset_subtract(self) -> np.ndarray:
        """``(N_total,)`` bool, True where the neuron's group resets by subtraction."""
        return np.concatenate([np.full(g.size, g.reset == "subtract") for g in self.groups])

    def nonzeros(self) -> int:
        """Number of recurrent synapses (nonzeros over all blocks, shared T counted per use)."""
        return sum(int(np.count_nonzero(self.matrices[s.matrix])) for s in self.synapses)

    def input_currents(self, inputs: np.ndarray) -> np.ndarray:
        """External currents ``x = inputs @ input_weight.T`` in float64, ``(..., N_total)``."""
        inputs = np.asarray(inputs, dtype=np.float64)
        if inputs.shape[-1] != self.n_inputs:
            raise RcsnnError(f"input: last dimension is {inputs.shape[-1]}, the core's input port has {self.n_inputs}")
        return inputs @ self.input_weight.T

    def token_currents(self, tokens: np.ndarray) -> np.ndarray:
        """External currents for token indices through the front end, ``(*tokens.shape, N_total)``."""
        if self.frontend is None:
            raise RcsnnError("core has no token front end (vocabulary); give --input X.npy instead of --prompt")
        return self.input_currents(self.frontend.embedding[tokens])

    def text_currents(self, text: str) -> np.ndarray:
        """External currents for ``text``, one character per step, ``(len(text), N_total)``."""
        if self.frontend is None:
            raise RcsnnError("core has no token front end (vocabulary); give --input X.npy instead of --prompt")
        return self.token_currents(self.frontend.encode(text))

    def validate(self, where: str = "core") -> Core:
        """Check every invariant of the contract; raise :class:`RcsnnError` naming the first violation.

        Problems are named by the checkpoint key that holds the value
        (``groups.beta``, ``matrix.T``, ``neurons.bias``, ...), see :mod:`rcsnn.frontends.checkpoint`.
        """
        if not self.groups:
            raise RcsnnError(f"{where}: no neuron groups")
        names = [g.name for g in self.groups]
        if len(set(names)) != len(names):
            raise RcsnnError(f"{where}: duplicate group names {names}")
        for k, g in enumerate(self.groups):
            gw = f"{where}: group {g.name!r}"
            if int(g.size) != g.size or g.size < 1:
                raise RcsnnError(f"{gw}: size {g.size} is not a positive integer")
            if not (math.isfinite(g.beta) and 0.0 < g.beta < 1.0):
                raise RcsnnError(f"{where}: key 'groups.beta'[{k}] (group {g.name!r}) = {g.beta} is outside (0, 1)")
            if not (math.isfinite(g.theta) and g.theta > 0.0):
                raise RcsnnError(f"{where}: key 'groups.theta'[{k}] (group {g.name!r}) = {g.theta}, must be finite and > 0")
            if g.reset not in RESET_MODES:
                raise RcsnnError(f"{gw}: reset {g.reset!r} is not one of {RESET_MODES}")
        for key, m in self.matrices.items():
            if m.ndim != 2:
                raise RcsnnError(f"{where}: key 'matrix.{key}': shape {m.shape}, expected 2-D")
            bad = ~np.isin(m, (-1, 0, 1))
            if bad.any():
                i, j = np.argwhere(bad)[0]
                raise RcsnnError(f"{where}: key 'matrix.{key}': not ternary, entry [{i}, {j}] = {m[i, j]}")
        for k, s in enumerate(self.synapses):
            sw = f"{where}: synapses {s.pre}->{s.post}"
            if s.pre not in names or s.post not in names:
                raise RcsnnError(f"{sw}: unknown group")
            if s.matrix not in self.matrices:
                raise RcsnnError(f"{sw}: unknown matrix {s.matrix!r}")
            want = (self.group(s.post).size, self.group(s.pre).size)
            if self.matrices[s.matrix].shape != want:
                raise RcsnnError(f"{where}: key 'matrix.{s.matrix}': shape {self.matrices[s.matrix].shape}, "
                                 f"expected {want} for {s.pre}->{s.post}")
            if not (math.isfinite(s.alpha) and s.alpha > 0):
                raise RcsnnError(f"{where}: key 'synapses.alpha'[{k}] ({s.pre}->{s.post}) = {s.alpha}, "
                                 "must be finite and > 0")
            if s.delay not in (0, 1):
                raise RcsnnError(f"{sw}: delay {s.delay!r} is not 0 (same step) or 1 (previous step)")
        self.update_order()
        n = self.n_neurons
        n_in = self.input_weight.shape[1] if self.input_weight.ndim == 2 else -1
        check_array(where, "neurons.bias", self.bias, (n,))
        check_array(where, "input.weight", self.input_weight, (n, n_in))
        if self.readout_weight is not None:
            n_out = self.readout_weight.shape[0]
            check_array(where, "readout.weight", self.readout_weight, (n_out, n))
            if self.readout_bias is not None:
                check_array(where, "readout.bias", self.readout_bias, (n_out,))
        if self.frontend is not None:
            check_array(where, "frontend.embedding", self.frontend.embedding, (len(self.frontend.vocab), n_in))
        if not (math.isfinite(self.dt) and self.dt > 0):
            raise RcsnnError(f"{where}: dt={self.dt} must be finite and > 0")
        self.fixed.check(f"{where}: fixed-point format")
        return self


def check_array(where: str, key: str, a: np.ndarray, shape: tuple[int, ...]) -> None:
    """Raise naming ``key`` unless ``a`` has ``shape`` and only finite values."""
    if a.shape != shape:
        raise RcsnnError(f"{where}: key {key!r}: shape {a.shape}, expected {shape}")
    if not np.isfinite(a).all():
        bad = tuple(int(i) for i in np.argwhere(~np.isfinite(a))[0])
        raise RcsnnError(f"{where}: key {key!r}: contains NaN or inf (first at {list(bad)})")


def array_view(model) -> Core:
    """The :class:`Core` of an IR :class:`~rcsnn.ir.graph.Graph` (its :meth:`arrays`), or ``model`` if it is one."""
    return model if isinstance(model, Core) else model.arrays()
