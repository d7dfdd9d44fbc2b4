"""NIR interop: write the IR (:class:`~rcsnn.ir.graph.Graph`) as a NIR graph and read NIR graphs back.

NIR's LIF is continuous-time and carries neither a step Δt nor a reset mode::

    tau * dv/dt = (v_leak - v) + r * I,   spike when v > v_threshold,   then v = v_reset

Its forward-Euler step with Δt (the discretisation snnTorch's exporter inverts) is::

    v[t] = (1 - dt/tau) * v[t-1] + (dt/tau) * v_leak + (r * dt/tau) * I[t]

so a LIF node maps to the contract (``contract.md``) with ``beta = 1 - dt/tau`` (not
``exp(-dt/tau)``), a *gain* ``r*dt/tau`` on every current entering the node and a constant
bias ``(dt/tau) * v_leak``. The gain is folded into the input weights, the biases and the
recurrent weights of the node. ``dt`` and the reset mode must therefore be given when
reading; the CLI's defaults are ``dt = 1e-4`` s (what ``snntorch.export_to_nir`` hard-codes)
and ``reset = "subtract"`` (snnTorch's default reset mechanism).

Writing (:func:`graph_to_nir`, :func:`write_nir`), node keys are stable and derived from the
group names; edges are written in the order below. The reader numbers neurons layer by
layer — LIF nodes in feed-forward order from the Input (a recurrent cycle is one layer), nodes
of one layer by natural order of their keys (``g2`` before ``g10``) — independent of the edge
order (nirtorch's varies between processes), so a written core reads back in order:

=========================================  ====================================================
core                                       NIR
=========================================  ====================================================
input port (n_in)                          ``input``: Input, shape (n_in,)
input_weight, bias of group g              ``in_<g>``: Affine input -> ``lif_<g>``
group g (beta, theta)                      ``lif_<g>``: LIF, tau = dt/(1-beta), r = tau/dt,
                                           v_leak = 0, v_threshold = theta, v_reset = 0
synapses pre -> post, W = alpha*T          ``rec_<pre>_<post>``: Linear ``lif_<pre>`` -> ``lif_<post>``
spikes of group g                          ``out_<g>``: Output fed by ``lif_<g>``
readout_weight / readout_bias (optional)   ``ro_<g>``: Affine ``lif_<g>`` -> ``readout`` (Output; NIR
                                           sums the inputs of a node); the bias is on ``ro_<first group>``
=========================================  ====================================================

Reading (:func:`nir_to_graph`, :func:`read_nir`); nested ``NIRGraph`` nodes (snnTorch's
RLeaky) are flattened with keys joined by ``"."``; their Input/Output nodes are pass-throughs:

=========================================  ====================================================
NIR                                        core
=========================================  ====================================================
exactly one Input, shape (n_in,)           input port
Input -> Affine/Linear -> LIF              input_weight rows (times the gain); Affine bias -> bias
Input -> LIF                               identity input weights
LIF (scalar or per-neuron params)          groups: contiguous runs of equal (tau, v_threshold);
                                           group names from the node key (``lif_`` prefix dropped,
                                           other characters than ASCII letters, digits, ``_`` -> ``_``)
LIF -> Affine/Linear -> LIF, on a cycle    synapse blocks alpha*T, one alpha per block after the
(self-loop or strongly connected)          gain; delay 1 (spikes of step t-1); Affine bias -> bias
LIF -> Affine/Linear -> LIF, off cycles    synapse blocks alpha*T with delay 0: the spikes of the
(feed-forward layers)                      same step, the pre group updated first (as snnTorch runs
                                           a Sequential of layers)
LIF -> Output                              spikes (nothing to store)
LIF -> Affine/Linear -> Output             readout_weight / readout_bias (one such Output)
=========================================  ====================================================

Refused, with one :class:`~rcsnn.errors.RcsnnError` line naming the node: any other node
type (CubaLIF, IF, LI, I, Conv*, Flatten, Delay, Scale, Threshold, pooling, ...);
zero or several Input nodes; weight nodes without exactly one source or chained weight
nodes; ``tau <= dt``; ``v_threshold <= 0``; ``v_reset != 0`` (both reset modes reset to 0 or
subtract ``theta``); weights between LIF nodes that are not ``alpha * {-1, 0, +1}`` per
block. In snnTorch and NIR's usual discrete semantics a feed-forward edge delivers spikes
in the *same* step and a recurrent one (RLeaky) those of step t-1; the core's synapse
blocks carry that delay. Inside a cycle through several LIF nodes every edge is taken with the
one-step delay; NIR tools that break such a cycle at a single edge will differ.

Differences that remain: NIR and snnTorch fire on ``v > theta``, the contract on
``v >= theta`` (only exact ties differ); the reset mode is not carried, so a core mixing
reset modes does not round-trip; ``tau`` and ``r`` are rounded, so ``beta`` and the gain read
back within a few ulp (exactly when dt and ``1 - beta`` are powers of two). A readout sees
the spikes of the same step. snnTorch: ``export_to_nir`` (with nirtorch 2) writes an RLeaky
flat as ``<i>.lif`` / ``<i>.w_rec`` (group ``<i>_lif``); a Leaky's ``zero`` reset is the
contract's, but an RLeaky's is not (it also drops the step's input, see
:mod:`rcsnn.frontends.snntorch`), and the graph does not say which one wrote it.
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
from ..files import atomic_file
from ..ir.arrays import Core, NeuronGroup, SynapseBlock
from ..ir.graph import Graph
from ..ir.nodes import RESET_MODES

__all__ = ["DEFAULT_DT", "DEFAULT_RESET", "Population", "Projection", "assemble", "graph_to_nir", "write_nir",
           "read_nir", "nir_to_graph"]

DEFAULT_DT = 1e-4
DEFAULT_RESET = "subtract"

_WEIGHTS = (nir.Affine, nir.Linear)
_LIF_FIELDS = ("tau", "r", "v_leak", "v_threshold", "v_reset")
_SUPPORTED = "Input, Output, Affine, Linear, LIF and nested NIRGraph"


# --------------------------------------------------------------------------- assembly


@dataclass
class Population:
    """One LIF layer in contract units, per neuron (a NIR LIF node, an snnTorch RLeaky).

    Attributes:
        name: group name (a suffix ``_k`` is added when the layer splits into groups).
        beta, theta: ``(n,)`` leak factor per step and threshold.
        bias: ``(n,)`` constant current per step.
        input_weight: ``(n, n_in)`` input-port -> current.
    """

    name: str
    beta: np.ndarray
    theta: np.ndarray
    bias: np.ndarray
    input_weight: np.ndarray


@dataclass
class Projection:
    """Recurrent weights ``(n_post, n_pre)`` in contract units; ``where`` names their origin."""

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
) -> Graph:
    """Build and validate the IR from per-neuron layers.

    Each population splits into groups at every change of ``(beta, theta)``; each
    projection splits into blocks between those groups, and every nonzero block must be
    ``alpha * T`` with ternary ``T`` and one ``alpha > 0``. Identical ``T`` are stored once
    (``"T"`` if there is one, else ``"T0"``, ``"T1"``, ... in order of first use).
    """
    groups, pieces = [], {}
    for pop in populations:
        change = np.flatnonzero((pop.beta[1:] != pop.beta[:-1]) | (pop.theta[1:] != pop.theta[:-1])) + 1
        bounds = [0, *change.tolist(), pop.beta.size]
        runs = list(zip(bounds[:-1], bounds[1:]))
        names = [pop.name] if len(runs) == 1 else [f"{pop.name}_{k}" for k in range(len(runs))]
        pieces[pop.name] = list(zip(names, runs))
        for name, (a, b) in pieces[pop.name]:
            groups.append(NeuronGroup(name, b - a, float(pop.beta[a]), float(pop.theta[a]), reset))
    shared: dict[tuple, tuple[int, np.ndarray]] = {}  # (shape, bytes) of T -> (index, T)
    blocks = []
    for proj in projections:
        split = len(pieces[proj.pre]) * len(pieces[proj.post]) > 1
        for pre, (pa, pb) in pieces[proj.pre]:
            for post, (qa, qb) in pieces[proj.post]:
                w = proj.weight[qa:qb, pa:pb]
                if w.any():
                    alpha, t = _ternary(w, f"{proj.where} (block {pre}->{post})" if split else proj.where)
                    index, _ = shared.setdefault((t.shape, t.tobytes()), (len(shared), t))
                    blocks.append((pre, post, index, alpha, proj.delay))
    names = ["T"] if len(shared) == 1 else [f"T{k}" for k in range(len(shared))]
    return Graph.from_arrays(Core(
        groups=tuple(groups),
        matrices={names[k]: t for k, t in shared.values()},
        synapses=tuple(SynapseBlock(pre, post, names[k], alpha, delay) for pre, post, k, alpha, delay in blocks),
        bias=np.concatenate([p.bias for p in populations]),
        input_weight=np.vstack([p.input_weight for p in populations]),
        dt=dt,
        readout_weight=readout_weight,
        readout_bias=readout_bias,
    ), where)


def _ternary(w: np.ndarray, where: str) -> tuple[float, np.ndarray]:
    """``(alpha, T)`` with ``w == alpha * T`` exactly, T ternary int8; else raise naming ``where``."""
    mags = np.unique(np.abs(w[w != 0]))
    if mags.size != 1:
        raise RcsnnError(
            f"{where}: weights take {mags.size} distinct magnitudes ({mags.min():.6g} .. {mags.max():.6g}), "
            "not alpha*{-1,0,+1}"
        )
    return float(mags[0]), np.sign(w).astype(np.int8)


def _one_step_ok(links: nx.DiGraph, pre, post) -> bool:
    """True if ``pre -> post`` lies on a cycle (or is a self-loop) of ``links``."""
    return pre == post or nx.has_path(links, post, pre)


def _check_args(dt: float, reset: str, where: str) -> None:
    if not (np.isfinite(dt) and dt > 0):
        raise RcsnnError(f"{where}: dt={dt} must be finite and > 0 (seconds per step)")
    if reset not in RESET_MODES:
        raise RcsnnError(f"{where}: reset {reset!r} is not one of {RESET_MODES}")


# --------------------------------------------------------------------------- export


def graph_to_nir(graph: Graph) -> nir.NIRGraph:
    """The IR as a flat NIR graph (see the module docstring for keys and parameters).

    A block on a cycle carries delay 1 and one off every cycle delay 0 in NIR readers;
    blocks whose delay says otherwise are refused.
    """
    core = graph.arrays()
    links = nx.DiGraph([(s.pre, s.post) for s in core.synapses])
    for s in core.synapses:
        if _one_step_ok(links, s.pre, s.post) != bool(s.delay):
            raise RcsnnError(
                f"core: synapses {s.pre}->{s.post} have delay {s.delay}, but NIR readers deliver a connection "
                f"{'on' if s.delay == 0 else 'off'} a cycle {'one step later' if s.delay == 0 else 'in the same step'}"
            )
    nodes: dict[str, nir.NIRNode] = {"input": nir.Input(input_type=np.array([core.n_inputs]))}
    edges: list[tuple[str, str]] = []

    def add(key: str, node: nir.NIRNode, *new_edges: tuple[str, str]) -> None:
        if key in nodes:
            raise RcsnnError(f"core: NIR node key {key!r} is used twice (rename the groups)")
        nodes[key] = node
        edges.extend(new_edges)

    offsets = core.offsets()
    for g in core.groups:
        if not re.fullmatch(r"\w+", g.name):
            raise RcsnnError(f"core: group name {g.name!r} is not a NIR node key (letters, digits, _)")
        sl, tau = offsets[g.name], np.full(g.size, core.dt / (1.0 - g.beta))
        add(f"in_{g.name}", nir.Affine(weight=core.input_weight[sl], bias=core.bias[sl]), ("input", f"in_{g.name}"))
        zeros = np.zeros(g.size)
        lif = nir.LIF(tau=tau, r=tau / core.dt, v_leak=zeros, v_threshold=np.full(g.size, g.theta), v_reset=zeros)
        add(f"lif_{g.name}", lif, (f"in_{g.name}", f"lif_{g.name}"))
    for s in core.synapses:
        key = f"rec_{s.pre}_{s.post}"
        weight = s.alpha * core.matrices[s.matrix].astype(np.float64)
        add(key, nir.Linear(weight=weight), (f"lif_{s.pre}", key), (key, f"lif_{s.post}"))
    for g in core.groups:
        add(f"out_{g.name}", nir.Output(output_type=np.array([g.size])), (f"lif_{g.name}", f"out_{g.name}"))
    if core.readout_weight is not None:
        n_out = core.readout_weight.shape[0]
        add("readout", nir.Output(output_type=np.array([n_out])))
        for k, g in enumerate(core.groups):
            bias = core.readout_bias if k == 0 and core.readout_bias is not None else np.zeros(n_out)
            affine = nir.Affine(weight=core.readout_weight[:, offsets[g.name]], bias=bias)
            add(f"ro_{g.name}", affine, (f"lif_{g.name}", f"ro_{g.name}"), (f"ro_{g.name}", "readout"))
    return nir.NIRGraph(nodes=nodes, edges=edges)


def write_nir(graph: Graph, path: str | Path) -> None:
    """Write ``graph_to_nir(graph)`` to a ``.nir`` (HDF5) file, whole or not at all; same graph, same bytes."""
    nir_graph = graph_to_nir(graph)
    with atomic_file(path) as tmp:
        nir.write(str(tmp), nir_graph)


# --------------------------------------------------------------------------- import


def read_nir(path: str | Path, dt: float, reset: str) -> Graph:
    """Read a ``.nir`` file with :func:`nir_to_graph`; errors name the file."""
    try:
        graph = nir.read(str(path))
    except Exception as exc:  # h5py and nir raise many types; the user needs one line
        raise RcsnnError(f"{path}: cannot read as a NIR graph ({type(exc).__name__}: {exc})") from exc
    return nir_to_graph(graph, dt, reset, where=str(path))


def nir_to_graph(graph: nir.NIRGraph, dt: float, reset: str, where: str = "NIR graph") -> Graph:
    """Map a NIR graph to the IR, or raise :class:`RcsnnError` naming the node that cannot map.

    Args:
        graph: flat or nested NIR graph (see the module docstring for what maps).
        dt: seconds per step, the Δt the graph was exported with (snnTorch: 1e-4).
        reset: ``"zero"`` or ``"subtract"`` (snnTorch's RLeaky/Leaky default), for every group.
        where: label for error messages (the file name).
    """
    _check_args(dt, reset, where)
    nodes, edges = _flatten(graph, where)
    for key, node in nodes.items():
        if not isinstance(node, (nir.Input, nir.Output, nir.LIF, *_WEIGHTS)):
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
            continue  # LIF -> Output (spikes) or a readout, see _readout
        weight, bias = _weights(nodes, w_key, label, sizes[dst], sizes.get(src, n_in), where)
        raw_bias[dst] += bias
        if src in inputs:
            raw_in[dst] += weight
        else:
            raw_rec.setdefault((src, dst), [0.0, label])[0] += weight

    pops, gains = {}, {}
    for key, n in sizes.items():
        name, beta, theta, leak, gains[key] = _lif_params(key, nodes[key], n, dt, where)
        pops[key] = Population(name, beta, theta, gains[key] * raw_bias[key] + leak, gains[key][:, None] * raw_in[key])
    projections = [
        Projection(pops[a].name, pops[b].name, gains[b][:, None] * w, f"{where}: {label}", int(_one_step_ok(links, a, b)))
        for (a, b), (w, label) in raw_rec.items()
    ]
    readout_weight, readout_bias = _readout(nodes, paths, sizes, where)
    return assemble(
        list(pops.values()), projections, dt=dt, reset=reset, where=where,
        readout_weight=readout_weight, readout_bias=readout_bias,
    )


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
    order = _layer_order([k for k, n in nodes.items() if isinstance(n, nir.LIF)], paths)
    seen: dict[str, set] = {k: set() for k in order}
    for key in order:
        seen[key] |= {np.size(getattr(nodes[key], f)) for f in _LIF_FIELDS} - {1}
    for a, w, b in paths:
        shape = np.shape(nodes[w].weight) if w else None
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


def _lif_params(key: str, lif: nir.LIF, n: int, dt: float, where: str):
    """``(group name, beta, theta, leak bias, gain)`` of a LIF node, per neuron.

    ``beta = 1 - dt/tau``, leak bias ``(dt/tau) * v_leak``, gain ``r * dt/tau``.
    """
    tau, r, v_leak, theta, v_reset = (
        _array(getattr(lif, f), n, f"{where}: LIF node {key!r}: {f}") for f in _LIF_FIELDS
    )
    if (tau <= dt).any():
        raise RcsnnError(f"{where}: LIF node {key!r}: tau={tau.min():.6g} <= dt={dt:.6g} gives beta = 1 - dt/tau <= 0 "
                         "(give the dt the graph was exported with)")
    if (theta <= 0).any():
        raise RcsnnError(f"{where}: LIF node {key!r}: v_threshold={theta.min():.6g} must be > 0")
    if (v_reset != 0).any():
        raise RcsnnError(f"{where}: LIF node {key!r}: v_reset={v_reset[v_reset != 0][0]:.6g}; both reset modes "
                         "(zero: v -> 0, subtract: v -> v - theta) need v_reset = 0")
    name = re.sub(r"[^A-Za-z0-9_]", "_", key)
    name = name[4:] if name.startswith("lif_") and len(name) > 4 else name
    k = dt / tau
    return name, 1.0 - k, theta, k * v_leak, r * k


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
    """The length of a 1-D NIR shape."""
    shape = np.asarray(shape).reshape(-1)
    if shape.size != 1:
        raise RcsnnError(f"{where}: node {key!r}: shape {shape.tolist()}; only 1-D ports are supported")
    return int(shape[0])
