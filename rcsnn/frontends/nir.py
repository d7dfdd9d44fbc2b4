"""NIR interop: write the IR (:class:`~rcsnn.ir.graph.Graph`) as a NIR graph and read NIR graphs back.

NIR's neurons are continuous-time and carry neither a step Δt nor a reset mode::

    LIF: tau * dv/dt = (v_leak - v) + r * I,   IF: dv/dt = r * I,
    CubaLIF: tau_syn * di/dt = -i + w_in * I,  tau_mem * dv/dt = (v_leak - v) + r * i

How each framework steps them (beta, the gains folded into the weights and biases, the reset)
is a *flavour* (:mod:`rcsnn.frontends.flavors`, ``docs/interop.md``); without one, a node is
read as forward Euler with ``beta = 1 - dt/tau``, gain ``r*dt/tau``, bias ``(dt/tau)*v_leak``,
``dt = 1e-4`` s (what ``snntorch.export_to_nir`` hard-codes) and ``reset = "subtract"``.

Writing is :mod:`rcsnn.frontends.nir_export` (re-exported here). The reader numbers neurons
layer by layer — neuron nodes in feed-forward order from the Input (a recurrent cycle is one
layer), nodes of one layer by natural order of their keys (``g2`` before ``g10``) — independent
of the edge order (nirtorch's varies between processes), so a written core reads back in order.

Reading (:func:`nir_to_graph`, :func:`read_nir`); nested ``NIRGraph`` nodes (snnTorch's
RLeaky) are flattened with keys joined by ``"."``; their Input/Output nodes are pass-throughs:

=========================================  ====================================================
NIR                                        core
=========================================  ====================================================
exactly one Input, shape (n_in,)           input port (leading 1s of a shape dropped: [1, n])
Input -> Affine/Linear -> neurons          input_weight rows (times the gain); Affine bias -> bias
Input -> neurons                           identity input weights
LIF / IF / CubaLIF node (scalar, 0-d or    one group per node, beta/theta (beta_syn) per neuron;
per-neuron parameters)                     group name from the node key (``lif_`` prefix dropped,
                                           other characters than ASCII letters, digits, ``_`` -> ``_``)
neurons -> Affine/Linear -> neurons, on a  a synapse block (alpha*T when its nonzero weights share
cycle (self-loop or strongly connected)    one magnitude after the gain, else dense M); delay 1
neurons -> Affine/Linear -> neurons, off   the same with delay 0: the spikes of the same step, the
cycles (feed-forward layers)               pre group updated first (as frameworks run a Sequential)
neurons -> Output                          spikes (nothing to store)
neurons -> Affine/Linear -> Output         readout_weight / readout_bias (one such Output)
=========================================  ====================================================

Refused, with one :class:`~rcsnn.errors.RcsnnError` line naming the node: any other node
type (LI, I, Conv*, Flatten, Delay, Scale, Threshold, pooling, ...); zero or several Input
nodes; weight nodes without exactly one source or chained weight nodes; what
:func:`~rcsnn.frontends.flavors.neuron_params` refuses (tau <= dt, v_threshold <= 0,
v_reset != 0). Inside a cycle through several neuron nodes every edge is taken with the
one-step delay; NIR tools that break such a cycle at a single edge will differ.

Differences that remain: snnTorch and Norse fire on ``v > theta``, the contract on
``v >= theta`` (only exact ties differ); the reset mode is not carried (but written to
metadata), so a core mixing reset modes does not round-trip; ``tau`` and ``r`` are rounded,
so ``beta`` and the gain read back within a few ulp. A readout sees the spikes of the same step.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import networkx as nx
import nir
import numpy as np

from ..errors import RcsnnError
from ..ir.arrays import Core, NeuronGroup, SynapseBlock
from ..ir.graph import Graph
from .flavors import neuron_params, resolve_flavor
from .nir_export import EXPORT_TARGETS, graph_to_nir, on_cycle, write_nir

__all__ = ["EXPORT_TARGETS", "Population", "Projection", "assemble", "graph_to_nir", "write_nir",
           "read_nir", "nir_to_graph"]


_WEIGHTS = (nir.Affine, nir.Linear)
_NEURONS = (nir.LIF, nir.IF, nir.CubaLIF)
_NEURON_FIELDS = ("tau", "tau_mem", "tau_syn", "r", "w_in", "v_leak", "v_threshold", "v_reset")
_SUPPORTED = "Input, Output, Affine, Linear, LIF, IF, CubaLIF and nested NIRGraph"


# --------------------------------------------------------------------------- assembly


@dataclass
class Population:
    """One neuron layer in contract units, per neuron (a NIR LIF/IF/CubaLIF node, an snnTorch RLeaky).

    Attributes:
        name: group name.
        beta, theta: ``(n,)`` leak factor per step and threshold.
        bias: ``(n,)`` constant current per step.
        input_weight: ``(n, n_in)`` input-port -> current.
        beta_syn: ``(n,)`` synaptic-current leak (CubaLIF), or None (no synaptic state).
    """

    name: str
    beta: np.ndarray
    theta: np.ndarray
    bias: np.ndarray
    input_weight: np.ndarray
    beta_syn: np.ndarray | None = None


@dataclass
class Projection:
    """Weights ``(n_post, n_pre)`` between populations in contract units; ``where`` names their origin."""

    pre: str
    post: str
    weight: np.ndarray
    where: str
    delay: int = 1


def assemble(
    populations: list[Population],
    projections: list[Projection],
    *,
    dt: float,
    reset: str,
    where: str,
    readout_weight: np.ndarray | None = None,
    readout_bias: np.ndarray | None = None,
    current_delay: int = 0,
    max_spikes: int = 1,
) -> Graph:
    """Build and validate the IR from per-neuron layers: one group per population.

    ``beta``, ``theta`` (and ``beta_syn``) are stored as one float when all neurons share them,
    else per neuron; every group gets ``max_spikes`` (1: binary spikes). A projection whose nonzero
    weights share one magnitude is stored as
    ``alpha * T`` with ternary ``T`` (identical ``T`` once: ``"T"`` if there is one, else ``"T0"``,
    ``"T1"``, ...); any other as a dense float64 ``M`` (``"M0"``, ``"M1"``, ...) with ``alpha = 1``.
    """
    groups = []
    for pop in populations:
        synaptic = pop.beta_syn is not None
        groups.append(NeuronGroup(pop.name, pop.beta.size, _compact(pop.beta), _compact(pop.theta), reset,
                                  _compact(pop.beta_syn) if synaptic else 0.0, current_delay if synaptic else 0,
                                  max_spikes=max_spikes))
    ternary: dict[tuple, tuple[int, np.ndarray]] = {}  # (shape, bytes) of T -> (index, T)
    dense: list[np.ndarray] = []
    blocks = []
    for proj in projections:
        if not proj.weight.any():
            continue
        found = _ternary(proj.weight)
        if found is None:
            dense.append(proj.weight)
            blocks.append((proj.pre, proj.post, f"M{len(dense) - 1}", 1.0, proj.delay))
        else:
            alpha, t = found
            index, _ = ternary.setdefault((t.shape, t.tobytes()), (len(ternary), t))
            blocks.append((proj.pre, proj.post, index, alpha, proj.delay))
    names = ["T"] if len(ternary) == 1 else [f"T{k}" for k in range(len(ternary))]
    matrices = {names[k]: t for k, t in ternary.values()} | {f"M{k}": m for k, m in enumerate(dense)}
    return Graph.from_arrays(Core(
        groups=tuple(groups),
        matrices=matrices,
        synapses=tuple(SynapseBlock(pre, post, m if isinstance(m, str) else names[m], alpha, delay)
                       for pre, post, m, alpha, delay in blocks),
        bias=np.concatenate([p.bias for p in populations]),
        input_weight=np.vstack([p.input_weight for p in populations]),
        dt=dt,
        readout_weight=readout_weight,
        readout_bias=readout_bias,
    ), where)


def _compact(values: np.ndarray) -> float | np.ndarray:
    """One float when every neuron has the same value, else the ``(n,)`` float64 array."""
    values = np.asarray(values, dtype=np.float64)
    return float(values[0]) if (values == values[0]).all() else values.copy()


def _ternary(w: np.ndarray) -> tuple[float, np.ndarray] | None:
    """``(alpha, T)`` with ``w == alpha * T`` exactly and T ternary int8, or None."""
    mags = np.unique(np.abs(w[w != 0]))
    return (float(mags[0]), np.sign(w).astype(np.int8)) if mags.size == 1 else None


# --------------------------------------------------------------------------- import


def read_nir(path: str | Path, dt: float | None = None, reset: str | None = None, *, flavor: str | None = None,
             discretize: str | None = None, max_spikes: int | None = None) -> Graph:
    """Read a ``.nir`` file with :func:`nir_to_graph`; errors name the file."""
    try:
        graph = nir.read(str(path), type_check=False)  # exporters write inconsistent port shapes ([1, n] vs [n])
    except Exception as exc:  # h5py and nir raise many types; the user needs one line
        raise RcsnnError(f"{path}: cannot read as a NIR graph ({type(exc).__name__}: {exc})") from exc
    return nir_to_graph(graph, dt, reset, where=str(path), flavor=flavor, discretize=discretize, max_spikes=max_spikes)


def nir_to_graph(graph: nir.NIRGraph, dt: float | None = None, reset: str | None = None, where: str = "NIR graph", *,
                 flavor: str | None = None, discretize: str | None = None, max_spikes: int | None = None) -> Graph:
    """Map a NIR graph to the IR, or raise :class:`RcsnnError` naming the node that cannot map.

    Args:
        graph: flat or nested NIR graph (see the module docstring for what maps).
        dt: seconds per step, the Δt the graph was exported with (default: the flavour's).
        reset: one of :data:`~rcsnn.ir.nodes.RESET_MODES` for every group (default: the flavour's).
        where: label for error messages (the file name).
        flavor: the framework that wrote the graph (:data:`~rcsnn.frontends.flavors.FLAVORS`);
            None reads as rcsnn always did (snnTorch's conventions).
        discretize: ``"euler"`` or ``"exact"`` (default: the flavour's).
        max_spikes: spikes per neuron per step at most, 0 for no limit (default: the flavour's, the
            framework's default spike function; 1 without a flavour). NIR does not record it.
    """
    preset, dt_given = resolve_flavor(flavor, dt=dt, reset=reset, discretize=discretize, max_spikes=max_spikes,
                                      where=where)
    nodes, edges = _flatten(graph, where)
    for key, node in nodes.items():
        if not isinstance(node, (nir.Input, nir.Output, *_NEURONS, *_WEIGHTS)):
            raise RcsnnError(f"{where}: node {key!r} is a {type(node).__name__}: not supported (supported: {_SUPPORTED})")
    inputs = [k for k, n in nodes.items() if isinstance(n, nir.Input)]
    if len(inputs) != 1:
        raise RcsnnError(f"{where}: {len(inputs)} Input nodes {inputs}; exactly one input port is supported")
    n_in = _shape(nodes[inputs[0]].input_type["input"], inputs[0], where)
    paths = _paths(nodes, edges, where)
    sizes = _lif_sizes(nodes, paths, n_in, where)
    links = nx.DiGraph([(a, b) for a, _, b in paths if a in sizes and b in sizes])

    raw_in = {k: np.zeros((n, n_in)) for k, n in sizes.items()}
    raw_bias = {k: np.zeros(n) for k, n in sizes.items()}
    raw_rec: dict[tuple[str, str], list] = {}
    for src, w_key, dst in paths:
        label = w_key or f"{src} -> {dst}"
        if src in inputs and dst not in sizes:
            raise RcsnnError(f"{where}: {label}: the Input reaches an Output without passing neurons; not supported")
        if dst not in sizes:
            continue  # neurons -> Output (spikes) or a readout, see _readout
        weight, bias = _weights(nodes, w_key, label, sizes[dst], sizes.get(src, n_in), where)
        raw_bias[dst] += bias
        if src in inputs:
            raw_in[dst] += weight
        else:
            raw_rec.setdefault((src, dst), [0.0, label])[0] += weight

    pops, gains, steps = {}, {}, set()
    for key, n in sizes.items():
        p = neuron_params(preset, nodes[key], n, f"{where}: {type(nodes[key]).__name__} node {key!r}", dt_given)
        gains[key] = p.gain
        steps.add(p.dt)
        synaptic = p.beta_syn if isinstance(nodes[key], nir.CubaLIF) else None
        pops[key] = Population(_group_name(key), p.beta, p.theta, p.gain * raw_bias[key] + p.leak,
                               p.gain[:, None] * raw_in[key], synaptic)
    projections = [
        Projection(pops[a].name, pops[b].name, gains[b][:, None] * w, f"{where}: {label}", int(on_cycle(links, a, b)))
        for (a, b), (w, label) in raw_rec.items()
    ]
    readout_weight, readout_bias = _readout(nodes, paths, sizes, where)
    if len(steps) > 1:
        raise RcsnnError(f"{where}: the neuron nodes' r give different dt {sorted(steps)}; pass --dt")
    return assemble(
        list(pops.values()), projections, dt=steps.pop() if steps else preset.dt, reset=preset.reset, where=where,
        readout_weight=readout_weight, readout_bias=readout_bias, current_delay=preset.current_delay,
        max_spikes=preset.max_spikes,
    )


def _group_name(key: str) -> str:
    """The group name of a neuron node key: ``lif_`` prefix dropped, other characters than ``\\w`` -> ``_``."""
    name = re.sub(r"[^A-Za-z0-9_]", "_", key)
    return name[4:] if name.startswith("lif_") and len(name) > 4 else name


def _readout(nodes: dict, paths: list, sizes: dict[str, int], where: str) -> tuple[np.ndarray | None, np.ndarray | None]:
    """``(readout_weight (V, N), readout_bias (V,))`` from LIF -> Affine/Linear -> Output paths."""
    found = [(src, w, dst) for src, w, dst in paths if w and src in sizes and dst not in sizes]
    if not found:
        return None, None
    outputs = sorted({dst for _, _, dst in found})
    if len(outputs) > 1:
        raise RcsnnError(f"{where}: readouts into {len(outputs)} Outputs {outputs}; one is supported")
    parts = [(src, *_weights(nodes, w_key, w_key, None, sizes[src], where)) for src, w_key, _ in found]
    rows = {w.shape[0] for _, w, _ in parts}
    if len(rows) != 1:
        raise RcsnnError(f"{where}: readout weights into {outputs[0]!r} have different numbers of rows {sorted(rows)}")
    n_out = rows.pop()
    weight = np.hstack([sum((w for s, w, _ in parts if s == k), np.zeros((n_out, n))) for k, n in sizes.items()])
    return weight, sum((b for _, _, b in parts), np.zeros(n_out))


def _flatten(graph: nir.NIRGraph, where: str) -> tuple[dict, list]:
    """Nodes and edges with nested graphs inlined (keys ``outer.inner``) and pass-throughs removed.

    The Input/Output nodes of nested graphs are pass-throughs: an edge into a nested graph
    enters its Input, an edge out of it leaves its Output.
    """
    nodes, edges, through = {}, [], []

    def visit(g: nir.NIRGraph, prefix: str) -> None:
        for key, node in g.nodes.items():
            if isinstance(node, nir.NIRGraph):
                visit(node, f"{prefix}{key}.")
            else:
                nodes[prefix + key] = node
                if prefix and isinstance(node, (nir.Input, nir.Output)):
                    through.append(prefix + key)
        for a, b in g.edges:
            edges.append((port(g, a, prefix, nir.Output), port(g, b, prefix, nir.Input)))

    def port(g: nir.NIRGraph, key: str, prefix: str, kind: type) -> str:
        sub = g.nodes.get(key)
        if not isinstance(sub, nir.NIRGraph):
            return prefix + key
        ends = [k for k, n in sub.nodes.items() if isinstance(n, kind)]
        if len(ends) != 1:
            raise RcsnnError(f"{where}: nested graph {prefix + key!r} has {len(ends)} {kind.__name__} nodes; "
                             "one is supported")
        return f"{prefix}{key}.{ends[0]}"

    visit(graph, "")
    for a, b in edges:
        for k in (a, b):
            if k not in nodes:
                raise RcsnnError(f"{where}: edge {a!r} -> {b!r} names no node {k!r}")
    for p in through:
        after = [b for a, b in edges if a == p and b != p]
        edges = [(a, b2) for a, b in edges if a != p for b2 in (after if b == p else [b])]
        del nodes[p]
    return nodes, edges


def _paths(nodes: dict, edges: list, where: str) -> list[tuple[str, str | None, str]]:
    """``(source, weight node or None, target)`` for every connection, in edge order.

    Sources are the Input or LIF nodes, targets LIF or Output nodes, and at most one
    Affine/Linear sits between them.
    """
    sources = Counter(b for _, b in edges)
    for key, node in nodes.items():
        if isinstance(node, _WEIGHTS) and sources[key] != 1:
            raise RcsnnError(f"{where}: node {key!r} ({type(node).__name__}) has {sources[key]} sources; "
                             "exactly one (the Input or a LIF node) is supported")
    paths = []
    for a, b in edges:
        if isinstance(nodes[a], nir.Output):
            raise RcsnnError(f"{where}: Output node {a!r} has an outgoing edge to {b!r}")
        if isinstance(nodes[b], nir.Input):
            raise RcsnnError(f"{where}: edge {a!r} -> {b!r} enters the Input node")
        if isinstance(nodes[a], _WEIGHTS):
            if isinstance(nodes[b], _WEIGHTS):
                raise RcsnnError(f"{where}: {a!r} -> {b!r}: chained weight nodes are not supported "
                                 "(one Affine/Linear between neurons)")
        elif isinstance(nodes[b], _WEIGHTS):
            paths += [(a, b, c) for x, c in edges if x == b]
        else:
            paths.append((a, None, b))
    return paths


def _lif_sizes(nodes: dict, paths: list, n_in: int, where: str) -> dict[str, int]:
    """Neuron count of each LIF node, in layer order (see the module docstring).

    Taken from per-neuron parameters, the weights into and out of the node and direct
    Input edges; scalar parameters are broadcast to it.
    """
    order = _layer_order([k for k, n in nodes.items() if isinstance(n, _NEURONS)], paths)
    seen: dict[str, set] = {k: set() for k in order}
    for key in order:
        seen[key] |= {np.asarray(getattr(nodes[key], f)).size for f in _NEURON_FIELDS
                      if getattr(nodes[key], f, None) is not None} - {1}
    for a, w, b in paths:
        shape = np.asarray(nodes[w].weight).shape if w else None
        if a in seen and shape:
            seen[a].add(shape[-1])
        if b in seen:
            seen[b].add(shape[0] if shape else n_in if isinstance(nodes[a], nir.Input) else None)
    sizes = {}
    for key in order:
        found = seen[key] - {None}
        if len(found) != 1:
            problem = (f"inconsistent sizes {sorted(found)}" if found
                       else "cannot infer its size (scalar parameters, no weights)")
            raise RcsnnError(f"{where}: LIF node {key!r}: {problem}")
        sizes[key] = found.pop()
    return sizes


def _layer_order(lif: list[str], paths: list) -> list[str]:
    """LIF keys by (feed-forward depth of their strongly connected component, natural key order)."""
    links = nx.DiGraph()
    links.add_nodes_from(lif)
    links.add_edges_from((a, b) for a, _, b in paths if a in links and b in links)
    layers = nx.condensation(links)
    depth = {}
    for component in nx.topological_sort(layers):
        depth[component] = max((depth[p] + 1 for p in layers.predecessors(component)), default=0)
    natural = lambda key: [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", key)]  # noqa: E731
    return sorted(lif, key=lambda k: (depth[layers.graph["mapping"][k]], natural(k)))


def _weights(nodes: dict, key: str | None, label: str, n_out: int | None, n_src: int, where: str):
    """``(weight, bias)`` of weight node ``key`` (identity for a direct edge), shape-checked."""
    node = nodes.get(key)
    weight = np.eye(n_src) if node is None else _array(node.weight, None, f"{where}: {key}: weight")
    want = (n_out if n_out is not None else weight.shape[0], n_src)
    if weight.shape != want:
        raise RcsnnError(f"{where}: {label}: weight shape {weight.shape}, expected {want}")
    if isinstance(node, nir.Affine):
        return weight, _array(node.bias, want[0], f"{where}: {key}: bias")
    return weight, np.zeros(want[0])


def _array(value, n: int | None, where: str) -> np.ndarray:
    """``value`` as finite float64; with ``n``, a scalar-sized value is broadcast to ``(n,)``."""
    a = np.asarray(value, dtype=np.float64)
    if not np.isfinite(a).all():
        raise RcsnnError(f"{where}: contains NaN or inf")
    if n is None:
        return a
    if a.size not in (1, n):
        raise RcsnnError(f"{where}: {a.size} values for {n} neurons")
    return np.broadcast_to(a.reshape(-1), (n,)).copy()


def _shape(shape, key: str, where: str) -> int:
    """The length of a 1-D NIR shape; leading 1s (Rockpool's ``[1, n]``, a batch axis) are dropped."""
    shape = np.asarray(shape).reshape(-1)
    while shape.size > 1 and shape[0] == 1:
        shape = shape[1:]
    if shape.size != 1:
        raise RcsnnError(f"{where}: node {key!r}: shape {shape.tolist()}; only 1-D ports are supported")
    return int(shape[0])
