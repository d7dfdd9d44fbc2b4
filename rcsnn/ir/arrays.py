"""The array view of a spiking core: what simulators and backend writers consume.

A :class:`Core` is the intermediate graph (:mod:`rcsnn.ir.graph`) flattened
into numpy arrays. Neurons of all groups are numbered consecutively in group
order; a raster is ``(steps, N_total)``. The semantics are those of
``docs/contract.md``:

.. math::

    I_i[t] = x_i[t] + b_i + \\sum_j W_{ij} s_j[t-d_{ij}], \\qquad W = \\alpha T \\text{ or } \\alpha M

    \\text{zero:}\\quad v_i[t] = \\beta_i v_i[t-1] (1 - s_i[t-1]) + J_i[t], \\quad \\ldots

    s_i[t] = [v_i[t] \\ge \\theta_i]

with ``J = I`` for LIF and IF neurons and the synaptic state ``i`` for CubaLIF neurons; every
reset mode and kind is in :class:`rcsnn.ir.nodes.LIF`. Parameters are per neuron
(:meth:`Core.per_neuron`); a block's weights are :meth:`Core.block_weights`. The external
input is ``x[t] = input_weight @ u[t]`` for the input-port vector ``u[t]`` (a token embedding
in the language model) and the synaptic delay ``d`` is 1 (the contract's recurrent synapses) or 0 for same-step feed-forward
blocks between groups, which must form no cycle; groups update in
:meth:`Core.update_order`. The analog and digital backends take ``d = 1`` only
(:func:`rcsnn.ir.passes.retime` turns a feed-forward stack into such a core).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields

import numpy as np

from ..errors import RcsnnError
from .nodes import RESET_MODES, kind_of, time_constant

__all__ = ["Core", "NeuronGroup", "SynapseBlock", "FixedFormat", "BlockWeights", "TokenFrontend", "check_array",
           "array_view"]


@dataclass(frozen=True, eq=False)
class NeuronGroup:
    """N neurons sharing a reset mode; the equations are :class:`rcsnn.ir.nodes.LIF`'s.

    Attributes:
        name: unique group name.
        size: number of neurons.
        beta: membrane leak factor per step, ``0 < beta <= 1`` (``exp(-dt/tau)`` in our models;
            1 for IF neurons); a float or a ``(size,)`` float64 array (per neuron).
        theta: firing threshold (membrane units), ``> 0``; a float or a ``(size,)`` array.
        reset: one of :data:`~rcsnn.ir.nodes.RESET_MODES`.
        beta_syn: synaptic-current leak, ``0 <= beta_syn <= 1``; a float or a ``(size,)`` array.
        current_delay: 0 or 1, which synaptic current the membrane integrates (CubaLIF).
        skew: steps this group runs late in a retimed core (:func:`rcsnn.ir.passes.retime`), else 0.
        max_spikes: spikes per neuron per step at most (1: binary spikes), or
            :data:`~rcsnn.ir.nodes.UNBOUNDED` (0): spike counts without a limit.
        v_min, v_max: membrane saturation bounds (membrane units), ``v = min(max(v, v_min), v_max)`` after the
            update and before the spike decision; ``-inf`` / ``+inf`` (the defaults): unbounded.

    Read the parameters per neuron with :meth:`Core.per_neuron`, never as one value per group.
    """

    name: str
    size: int
    beta: float | np.ndarray
    theta: float | np.ndarray
    reset: str
    beta_syn: float | np.ndarray = 0.0
    current_delay: int = 0
    skew: int = 0
    max_spikes: int = 1
    v_min: float | np.ndarray = -math.inf
    v_max: float | np.ndarray = math.inf

    def __eq__(self, other) -> bool:
        """Equal names, sizes, modes and per-neuron values (a per-group value equals the same value per neuron)."""
        return isinstance(other, NeuronGroup) and self.size == other.size and all(
            np.array_equal(np.broadcast_to(getattr(self, f.name), (self.size,)),
                           np.broadcast_to(getattr(other, f.name), (self.size,))) for f in fields(self))

    __hash__ = None

    @property
    def kind(self) -> str:
        """``"CubaLIF"``, ``"IF"`` or ``"LIF"``, :func:`~rcsnn.ir.nodes.kind_of` the group's values."""
        return kind_of(self.beta, self.beta_syn, self.current_delay)

    @property
    def synaptic(self) -> bool:
        """True for a CubaLIF group: it has the synaptic current state ``i`` (back ends skip it otherwise)."""
        return self.kind == "CubaLIF"

    @property
    def tau_steps(self) -> float | np.ndarray:
        """Membrane time constant in steps, ``-1 / ln(beta)`` (inf where β = 1); an array if β is one."""
        return time_constant(self.beta)


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
        Fb: fractional bits of the leak factors beta and beta_syn.
        Ww: signed width of a dense weight ``w_q`` (ternary blocks use ``alpha_q`` of width Wv).
    """

    Wv: int = 24
    Fv: int = 12
    Fb: int = 14
    Ww: int = 16

    def check(self, where: str = "fixed-point format") -> None:
        if not 2 <= self.Wv <= 40:
            raise RcsnnError(f"{where}: Wv={self.Wv} is outside 2..40")
        if not 0 <= self.Fv < self.Wv:
            raise RcsnnError(f"{where}: Fv={self.Fv} is outside 0..Wv-1")
        if not 1 <= self.Fb <= 20:
            raise RcsnnError(f"{where}: Fb={self.Fb} is outside 1..20")
        if not 2 <= self.Ww <= 40:
            raise RcsnnError(f"{where}: Ww={self.Ww} is outside 2..40")

    def quantize(self, values, width: int | None = None) -> np.ndarray:
        """``sat(round(values * 2**Fv))`` as int64, saturated to ``width`` signed bits (default Wv).

        ``round`` is numpy's round-half-to-even; ``sat`` clamps to ``[-2**(width-1), 2**(width-1) - 1]``.
        """
        bits = self.Wv if width is None else width
        scaled = np.round(np.asarray(values, dtype=np.float64) * float(1 << self.Fv))
        return np.clip(np.clip(scaled, -(2.0**62), 2.0**62), -(1 << (bits - 1)), (1 << (bits - 1)) - 1).astype(np.int64)


@dataclass(frozen=True)
class BlockWeights:
    """The nonzero weights of one synapse block, row-major (post-local row, pre-local column).

    Attributes:
        rows, cols: ``(K,)`` int64 indices into the post and pre groups.
        value: ``(K,)`` float64 weights ``W_ij`` (``alpha * T_ij`` or ``alpha * M_ij``).
        quantized: ``(K,)`` int64, ``alpha_q * T_ij`` (ternary) or ``w_q = sat_Ww(round(alpha * M_ij * 2**Fv))``.
    """

    rows: np.ndarray
    cols: np.ndarray
    value: np.ndarray
    quantized: np.ndarray


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
        matrices: ternary int8 (T) or dense float64 (M) matrices by name.
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

    def locate(self, neuron: int) -> tuple[str, int]:
        """(group name, index within the group) of a global neuron index."""
        for group, sl in zip(self.groups, self.offsets().values()):
            if sl.start <= neuron < sl.stop:
                return group.name, neuron - sl.start
        raise IndexError(neuron)

    def per_neuron(self, attribute: str) -> np.ndarray:
        """A group attribute broadcast to ``(N_total,)``: the one way back ends read neuron parameters.

        ``beta``, ``theta``, ``beta_syn``, ``current_delay``, ``skew``, ``v_min``, ``v_max`` (±inf where
        unbounded) give float64; ``reset`` and
        ``kind`` give str. A per-group value is repeated; a per-neuron array is used as it is.
        """
        values = [np.broadcast_to(np.asarray(getattr(g, attribute)), (g.size,)) for g in self.groups]
        out = np.concatenate(values)
        return out if out.dtype.kind == "U" else out.astype(np.float64)

    def bounded(self) -> bool:
        """True if any neuron has a finite saturation bound ``v_min`` or ``v_max``."""
        return any(np.isfinite(g.v_min).any() or np.isfinite(g.v_max).any() for g in self.groups)

    def multi_spike(self) -> list[NeuronGroup]:
        """The groups that emit spike counts (``max_spikes != 1``)."""
        return [g for g in self.groups if g.max_spikes != 1]

    def reset_subtract(self) -> np.ndarray:
        """``(N_total,)`` bool, True where the neuron's group resets by ``subtract`` (after the decay)."""
        return self.per_neuron("reset") == "subtract"

    def is_dense(self, key: str) -> bool:
        """True if matrix ``key`` is a dense float ``M`` (``W = alpha*M``), False if ternary ``T`` (int8, or any
        integer type holding -1, 0, 1)."""
        return self.matrices[key].dtype.kind == "f"

    def block_weights(self, block: SynapseBlock) -> BlockWeights:
        """The nonzero weights of ``block`` with their float values and their quantised integers.

        Ternary: ``value = alpha * T_ij``, ``quantized = alpha_q * T_ij`` with
        ``alpha_q = sat_Wv(round(alpha * 2**Fv))``; dense: ``value = alpha * M_ij``,
        ``quantized = sat_Ww(round(alpha * M_ij * 2**Fv))`` (contract, fixed point).
        """
        m = self.matrices[block.matrix]
        rows, cols = np.nonzero(m)
        if self.is_dense(block.matrix):
            value = block.alpha * m[rows, cols]
            return BlockWeights(rows, cols, value, self.fixed.quantize(value, self.fixed.Ww))
        signs = m[rows, cols].astype(np.int64)
        return BlockWeights(rows, cols, block.alpha * signs.astype(np.float64),
                            int(self.fixed.quantize(block.alpha)) * signs)

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
        start = 0
        for k, g in enumerate(self.groups):
            _check_group(g, k, start, where)
            start += g.size
        for key, m in self.matrices.items():
            if m.ndim != 2:
                raise RcsnnError(f"{where}: key 'matrix.{key}': shape {m.shape}, expected 2-D")
            if self.is_dense(key):
                if m.dtype != np.float64:
                    raise RcsnnError(f"{where}: key 'matrix.{key}': dtype {m.dtype}, dense weights are float64")
                check_array(where, f"matrix.{key}", m, m.shape)
                continue
            bad = ~np.isin(m, (-1, 0, 1))
            if bad.any():
                i, j = np.argwhere(bad)[0]
                raise RcsnnError(f"{where}: key 'matrix.{key}': not ternary, entry [{i}, {j}] = {m[i, j]} "
                                 f"(a {m.dtype} matrix; dense weights are float64)")
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


#: Checkpoint keys, bounds and their wording of the per-neuron parameters (scalar: ``groups.<name>``).
_BOUNDS = {"beta": (0.0, False, 1.0, "outside (0, 1]"), "theta": (0.0, False, math.inf, "must be finite and > 0"),
           "beta_syn": (0.0, True, 1.0, "outside [0, 1]")}


def _check_group(g: NeuronGroup, k: int, start: int, where: str) -> None:
    """One group's invariants; a bad parameter is named by its checkpoint key and index."""
    gw = f"{where}: group {g.name!r}"
    if int(g.size) != g.size or g.size < 1:
        raise RcsnnError(f"{gw}: size {g.size} is not a positive integer")
    for name, (low, closed, high, wording) in _BOUNDS.items():
        value = getattr(g, name)
        if np.ndim(value) and np.shape(value) != (g.size,):
            raise RcsnnError(f"{where}: key 'neurons.{name}' (group {g.name!r}): shape {np.shape(value)}, "
                             f"expected a float or ({g.size},)")
        a = np.atleast_1d(np.asarray(value, dtype=np.float64))
        bad = ~(np.isfinite(a) & ((a >= low) if closed else (a > low)) & (a <= high))
        if bad.any():
            i = int(np.argmax(bad))
            key = f"'neurons.{name}'[{start + i}] (group {g.name!r}, neuron {i})" if np.ndim(value) \
                else f"'groups.{name}'[{k}] (group {g.name!r})"
            raise RcsnnError(f"{where}: key {key} = {a[i]} is {wording}".replace("is must", "must"))
    _check_bounds(g, k, start, where)
    if g.reset not in RESET_MODES:
        raise RcsnnError(f"{gw}: reset {g.reset!r} is not one of {RESET_MODES}")
    if g.current_delay not in (0, 1):
        raise RcsnnError(f"{gw}: current_delay {g.current_delay!r} is not 0 (this step's current) or 1 (last step's)")
    if not isinstance(g.max_spikes, (int, np.integer)) or isinstance(g.max_spikes, bool) or g.max_spikes < 0:
        raise RcsnnError(f"{gw}: max_spikes {g.max_spikes!r} is not a whole number >= 1 (or 0: no limit)")
    if not isinstance(g.skew, (int, np.integer)) or g.skew < 0:
        raise RcsnnError(f"{gw}: skew {g.skew!r} is not a whole number of steps >= 0")


def _check_bounds(g: NeuronGroup, k: int, start: int, where: str) -> None:
    """Saturation bounds: not NaN, ``v_min < +inf``, ``v_max > -inf``, ``v_min < v_max``, ``v_max >= θ``, ``v_min < θ``."""
    for name in ("v_min", "v_max"):
        if np.ndim(getattr(g, name)) and np.shape(getattr(g, name)) != (g.size,):
            raise RcsnnError(f"{where}: key 'neurons.{name}' (group {g.name!r}): shape {np.shape(getattr(g, name))}, "
                             f"expected a float or ({g.size},)")
    low, high, theta = np.broadcast_arrays(*(np.atleast_1d(np.asarray(getattr(g, n), dtype=np.float64))
                                             for n in ("v_min", "v_max", "theta")))  # (1,) when all per group
    for name, values, bad, wording in (
            ("v_min", low, np.isnan(low) | (low == math.inf), "is not a number < +inf"),
            ("v_max", high, np.isnan(high) | (high == -math.inf), "is not a number > -inf"),
            ("v_min", low, low >= high, "is not below v_max"),
            ("v_max", high, high < theta, "is below theta (the neuron could never fire)"),
            ("v_min", low, low >= theta, "is not below theta")):
        if bad.any():
            i = int(np.argmax(bad))
            key = f"'neurons.{name}'[{start + i}] (group {g.name!r}, neuron {i})" if np.ndim(getattr(g, name)) \
                else f"'groups.{name}'[{k}] (group {g.name!r})"
            raise RcsnnError(f"{where}: key {key} = {values[i]} {wording} (v_max {high[i]}, theta {theta[i]})")


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
