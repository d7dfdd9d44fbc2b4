"""The intermediate representation: a typed networkx graph every front end produces and every back end consumes.

A :class:`Graph` wraps a ``networkx.DiGraph`` (:attr:`Graph.nx`):

* nodes carry ``op`` — an :class:`~rcsnn.ir.nodes.Input` (node ``"input"``), one
  :class:`~rcsnn.ir.nodes.LIF` per neuron group (node = group name), an
  :class:`~rcsnn.ir.nodes.Output` (node ``"output"``);
* edges carry ``op`` — :class:`~rcsnn.ir.nodes.Projection` (input → group),
  :class:`~rcsnn.ir.nodes.Synapse` (group → group), :class:`~rcsnn.ir.nodes.Spikes` (group → output);
* graph-level data: ``dt`` (seconds per step), ``fixed`` (the fixed-point format), ``matrices``
  (ternary T or dense float64 M by name, a shared T stored once), ``frontend`` (an LM's vocabulary and embedding).

Neurons are numbered consecutively in group order (the order groups were added); synapse
currents add in the order synapses were added. Passes (:mod:`rcsnn.ir.passes`) return a new
graph whose nodes, edges and graph attributes carry their results under documented keys
(``beta_q``, ``blocks``, ``place``, ...), and append their name to :attr:`Graph.passes`.
The equations are in :mod:`rcsnn.ir.nodes`; :meth:`Graph.arrays` is the flat array view
(:class:`~rcsnn.ir.arrays.Core`) that the references, netlist writers and memory-image
builders compute with.
"""

from __future__ import annotations

import copy
import re
from dataclasses import replace

import networkx as nx
import numpy as np

from ..errors import RcsnnError
from .arrays import Core, FixedFormat, NeuronGroup, SynapseBlock, TokenFrontend
from .nodes import LIF, Input, Output, Projection, Spikes, Synapse

__all__ = ["Graph", "INPUT", "OUTPUT", "NAME_PATTERN", "check_name"]

INPUT, OUTPUT = "input", "output"

#: Group names and matrix keys: they reach generated C++, Verilog, SPICE and Markdown (as string
#: literals and comments, escaped there too) and checkpoint tensor keys. Letters, digits, ``_`` and
#: ``.`` (nested NIR keys), 1 to 64 characters, not starting with ``.``; a leading digit is allowed
#: (snnTorch's exporter names layers ``1_lif``).
NAME_PATTERN = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.]{0,63}")


def check_name(name, what: str, where: str) -> str:
    """``name`` if it matches :data:`NAME_PATTERN`, else one :class:`RcsnnError` line naming it and ``where``."""
    if not isinstance(name, str) or NAME_PATTERN.fullmatch(name) is None:
        shown = repr(name) if len(repr(name)) <= 80 else repr(name)[:77] + "..."
        raise RcsnnError(f"{where}: {what} {shown} is not a valid name (1-64 letters, digits, '_' or '.', "
                         "not starting with '.')")
    return name


def _parameter(value, where: str) -> float | np.ndarray:
    """A neuron parameter as the IR holds it: one float, or a float64 array (one value per neuron)."""
    try:
        return np.asarray(value, dtype=np.float64) if np.ndim(value) else float(value)
    except (TypeError, ValueError):
        raise RcsnnError(f"{where} {str(value)[:40]!r} is not a number or an array of numbers") from None


class Graph:
    """The IR of one spiking core; build it with the ``add_*`` methods, then :meth:`validate`.

    Attributes:
        nx: the ``networkx.DiGraph`` (``op`` on every node and edge, pass results beside it).
        dt: seconds per step (NIR export/import and the analog clock use it).
        fixed: fixed-point format of the integer reference and the digital core.
        matrices: ternary int8 or dense float64 matrices (post × pre) by name.
        frontend: the token front end of a language-model core, or None.
        passes: names of the passes applied, in order.
    """

    def __init__(self, dt: float = 1e-3, fixed: FixedFormat | None = None, frontend: TokenFrontend | None = None):
        self.nx = nx.DiGraph()
        self.dt = float(dt)
        self.fixed = fixed or FixedFormat()
        self.matrices: dict[str, np.ndarray] = {}
        self.frontend = frontend
        self.passes: list[str] = []
        self._synapse_order: list[tuple[str, str]] = []
        self._arrays: Core | None = None
        self._plans: dict[str, object] = {}

    # -- building ---------------------------------------------------------------------------

    def add_input(self, size: int) -> None:
        """The input port of ``size`` channels (add it before the groups)."""
        self.nx.add_node(INPUT, op=Input(int(size)))

    def add_group(self, name: str, lif: LIF, input_weight: np.ndarray, where: str = "graph") -> None:
        """A neuron group (any kind, :class:`~rcsnn.ir.nodes.LIF`) fed by the input port through
        ``input_weight`` ``(lif.size, n_in)``.

        ``name`` must match :data:`NAME_PATTERN` (errors name ``where``, e.g. the file read)."""
        check_name(name, "group name", where)
        if name in (INPUT, OUTPUT):
            raise RcsnnError(f"{where}: group name {name!r} is reserved for a port")
        if name in self.nx:
            raise RcsnnError(f"{where}: duplicate group name {name!r}")
        if INPUT not in self.nx:
            raise RcsnnError("add the input port before the groups")
        self.nx.add_node(name, op=replace(lif, **{k: _parameter(getattr(lif, k), f"{where}: group {name!r}: {k}")
                                                  for k in ("beta", "theta", "beta_syn", "v_min", "v_max")}))
        self.nx.add_edge(INPUT, name, op=Projection(np.asarray(input_weight, dtype=np.float64)))
        self._arrays = None

    def add_matrix(self, key: str, matrix: np.ndarray, where: str = "graph", dense: bool = False) -> None:
        """A matrix that synapses name by ``key`` (a :data:`NAME_PATTERN` name; errors name ``where``).

        Ternary (stored int8, entries -1, 0, 1) unless ``dense``: then float64 ``M`` with ``W = alpha*M``."""
        check_name(key, "matrix key", where)
        matrix = np.asarray(matrix)
        if dense:
            if matrix.dtype.kind not in "biuf":
                raise RcsnnError(f"{where}: key 'matrix.{key}': dtype {matrix.dtype} is not a real number type")
            self.matrices[key] = matrix.astype(np.float64)
        elif matrix.dtype != np.int8 and (matrix.dtype.kind not in "biuf" or not np.isin(matrix, (-1, 0, 1)).all()):
            raise RcsnnError(f"{where}: key 'matrix.{key}': dtype {matrix.dtype} with entries other than -1, 0, 1")
        else:
            self.matrices[key] = matrix.astype(np.int8)
        self._arrays = None

    def add_synapse(self, pre: str, post: str, synapse: Synapse) -> None:
        """Synapses ``pre → post`` (one block per pair: merge two into one matrix)."""
        if self.nx.has_edge(pre, post):
            raise RcsnnError(f"two synapse blocks {pre}->{post}; merge them into one matrix")
        self.nx.add_edge(pre, post, op=synapse)
        self._synapse_order.append((pre, post))
        self._arrays = None

    def add_output(self, readout_weight: np.ndarray | None = None, readout_bias: np.ndarray | None = None) -> None:
        """The output port (spikes of every group added so far) with an optional readout."""
        if readout_weight is not None and readout_bias is None:
            readout_bias = np.zeros(np.shape(readout_weight)[0])
        size = sum(lif.size for _, lif in self.groups())
        self.nx.add_node(OUTPUT, op=Output(size, readout_weight, readout_bias))
        for name, _ in self.groups():
            self.nx.add_edge(name, OUTPUT, op=Spikes())
        self._arrays = None

    # -- reading ----------------------------------------------------------------------------

    def groups(self) -> list[tuple[str, LIF]]:
        """``(name, LIF)`` of every group, in neuron-numbering order."""
        return [(n, d["op"]) for n, d in self.nx.nodes(data=True) if isinstance(d["op"], LIF)]

    def synapses(self) -> list[tuple[str, str, Synapse]]:
        """``(pre, post, Synapse)`` in summation order."""
        return [(pre, post, self.nx.edges[pre, post]["op"]) for pre, post in self._synapse_order]

    @property
    def input(self) -> Input:
        return self.nx.nodes[INPUT]["op"]

    @property
    def output(self) -> Output:
        return self.nx.nodes[OUTPUT]["op"]

    def projection(self, group: str) -> Projection:
        return self.nx.edges[INPUT, group]["op"]

    def arrays(self) -> Core:
        """The flat, validated array view (cached; a graph is not changed after it is built)."""
        if self._arrays is None:
            self._arrays = self._flatten("graph").validate()
        return self._arrays

    def validate(self, where: str = "graph") -> Graph:
        """Check every invariant of the contract; raise :class:`RcsnnError` naming the first violation."""
        self._arrays = self._flatten(where).validate(where)
        return self

    def _flatten(self, where: str) -> Core:
        if INPUT not in self.nx or OUTPUT not in self.nx:
            raise RcsnnError(f"{where}: the input and output ports are required")
        groups = self.groups()
        if self.output.size != sum(g.size for _, g in groups):
            raise RcsnnError(f"{where}: output size {self.output.size} is not the number of neurons")
        n_in = self.input.size
        for name, g in groups:
            for key, a, shape in (("bias", g.bias, (g.size,)),
                                  ("input weight", self.projection(name).weight, (g.size, n_in))):
                if np.shape(a) != shape:
                    raise RcsnnError(f"{where}: group {name!r}: {key} of shape {np.shape(a)}, expected {shape}")
        out = self.output
        return Core(
            groups=tuple(NeuronGroup(n, g.size, g.beta, g.theta, g.reset, g.beta_syn, g.current_delay,
                                     self.nx.nodes[n].get("skew", 0), g.max_spikes, g.v_min, g.v_max) for n, g in groups),
            matrices=dict(self.matrices),
            synapses=tuple(SynapseBlock(pre, post, s.matrix, s.alpha, s.delay) for pre, post, s in self.synapses()),
            bias=np.concatenate([g.bias for _, g in groups]) if groups else np.zeros(0),
            input_weight=(np.concatenate([self.projection(n).weight for n, _ in groups]) if groups
                          else np.zeros((0, n_in))),
            dt=self.dt, fixed=self.fixed, readout_weight=out.readout_weight, readout_bias=out.readout_bias,
            frontend=self.frontend,
        )

    @classmethod
    def from_arrays(cls, core: Core, where: str = "core") -> Graph:
        """The IR of an array view (a front end that assembles arrays, e.g. a trained model); errors name ``where``."""
        core.validate(where)
        g = cls(core.dt, core.fixed, core.frontend)
        g.add_input(core.n_inputs)
        for group, sl in zip(core.groups, core.offsets().values()):
            g.add_group(group.name, LIF(group.size, group.beta, group.theta, group.reset, core.bias[sl].copy(),
                                        group.beta_syn, group.current_delay, group.max_spikes, group.v_min, group.v_max),
                        core.input_weight[sl].copy(), where)
            if group.skew:
                g.nx.nodes[group.name]["skew"] = group.skew
        for key, m in core.matrices.items():
            g.add_matrix(key, m, where, dense=core.is_dense(key))
        for s in core.synapses:
            g.add_synapse(s.pre, s.post, Synapse(s.matrix, s.alpha, s.delay))
        g.add_output(core.readout_weight, core.readout_bias)
        g._arrays = core
        return g

    # -- passes -----------------------------------------------------------------------------

    def derive(self, pass_name: str) -> Graph:
        """A copy to annotate, recording ``pass_name`` (ops are shared: they are immutable)."""
        out = copy.copy(self)
        out.nx = self.nx.copy()
        out.nx.graph = copy.deepcopy(self.nx.graph)
        for _, d in out.nx.nodes(data=True):
            d.update(copy.deepcopy({k: v for k, v in d.items() if k != "op"}))
        out.passes = [*self.passes, pass_name]
        out._plans = {}
        out._synapse_order = list(self._synapse_order)
        return out

    def plan(self, key: str, build):
        """A back end's plan derived from this graph (e.g. a memory image), built once by ``build(self)``."""
        if key not in self._plans:
            self._plans[key] = build(self)
        return self._plans[key]

    def annotation(self, key: str, node: str | None = None):
        """A pass result: graph attribute ``key``, or node ``node``'s; None if absent."""
        return (self.nx.graph if node is None else self.nx.nodes[node]).get(key)

    def __repr__(self) -> str:
        core = self.arrays()
        return (f"Graph({len(core.groups)} groups, {core.n_neurons} neurons, {core.nonzeros()} synapses, "
                f"passes={self.passes})")
