"""JSON and GraphML files of the intermediate representation, exact round trip.

On file, the IR is a networkx graph of plain attributes (``docs/ir.md``): every node and edge
has ``kind`` (``input``, ``lif``, ``output``; ``input``, ``synapse``, ``spikes``) and its op's
fields; pass results (``beta_q``, ``blocks``, ``place``, ...) stand beside them, and the graph's
``passes`` lists the passes that wrote them. :func:`to_attributes` and :func:`from_attributes`
convert between that form and :class:`~rcsnn.ir.graph.Graph`.

Arrays are written as ``{"dtype", "shape", "data"}`` (floats as Python's shortest
repr, which reads back to the same float64); ternary matrices as CSR
``{"ternary_csr": shape, "indptr", "indices", "signs"}``. GraphML holds only
scalars, so there every array-valued or dict-valued attribute is the JSON text
of the same encoding. Output is deterministic: sorted keys, fixed node order.
"""

from __future__ import annotations

import json
from pathlib import Path

import networkx as nx
import numpy as np

from ..errors import RcsnnError
from .arrays import FixedFormat, TokenFrontend
from .graph import INPUT, OUTPUT, Graph
from .nodes import LIF, Synapse

__all__ = ["FORMAT", "VERSION", "to_attributes", "from_attributes", "graph_to_json", "graph_from_json",
           "write_graphml", "read_graphml", "save_graph", "load_graph"]

FORMAT = "rcsnn-graph"
VERSION = 1


def encode(value):
    """A JSON-able form of an attribute value (arrays, dicts of arrays, scalars)."""
    if isinstance(value, np.ndarray):
        if value.dtype == np.int8 and value.ndim == 2:
            rows, cols = np.nonzero(value)
            indptr = np.searchsorted(rows, np.arange(value.shape[0] + 1))
            return {"ternary_csr": list(value.shape), "indptr": indptr.tolist(), "indices": cols.tolist(),
                    "signs": value[rows, cols].tolist()}
        return {"dtype": str(value.dtype), "shape": list(value.shape), "data": value.ravel().tolist()}
    if isinstance(value, dict):
        return {str(k): encode(v) for k, v in value.items()}
    if isinstance(value, np.generic):
        return value.item()
    return value


def decode(value):
    """Inverse of :func:`encode`."""
    if isinstance(value, dict):
        if "ternary_csr" in value:
            shape = tuple(value["ternary_csr"])
            dense = np.zeros(shape, dtype=np.int8)
            indptr = np.asarray(value["indptr"], dtype=np.int64)
            rows = np.repeat(np.arange(shape[0]), np.diff(indptr))
            dense[rows, np.asarray(value["indices"], dtype=np.int64)] = np.asarray(value["signs"], dtype=np.int8)
            return dense
        if set(value) == {"dtype", "shape", "data"}:
            return np.asarray(value["data"], dtype=value["dtype"]).reshape(value["shape"])
        return {k: decode(v) for k, v in value.items()}
    return value


def graph_to_json(g: nx.DiGraph) -> str:
    data = {
        "graph": encode(g.graph),
        "nodes": [{"id": n, **encode(d)} for n, d in g.nodes(data=True)],
        "edges": [{"source": u, "target": v, **encode(d)} for u, v, d in g.edges(data=True)],
    }
    return json.dumps(data, sort_keys=True, indent=1) + "\n"


def graph_from_json(text: str, where: str) -> nx.DiGraph:
    try:
        data = json.loads(text)
        g = nx.DiGraph(**decode(data["graph"]))
        for node in data["nodes"]:
            g.add_node(node.pop("id"), **decode(node))
        for edge in data["edges"]:
            g.add_edge(edge.pop("source"), edge.pop("target"), **decode(edge))
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise RcsnnError(f"{where}: not an rcsnn graph JSON file ({exc.__class__.__name__}: {exc})") from None
    return g


def _scalar_form(d: dict) -> dict:
    return {k: (json.dumps(encode(v), sort_keys=True) if isinstance(v, (np.ndarray, dict)) else encode(v))
            for k, v in d.items()}


def _from_scalar_form(d: dict) -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, str) and v[:1] in "{[":
            v = decode(json.loads(v))
        out[k] = v
    return out


def write_graphml(g: nx.DiGraph, path: Path) -> None:
    h = nx.DiGraph(**_scalar_form(g.graph))
    h.add_nodes_from((n, _scalar_form(d)) for n, d in g.nodes(data=True))
    h.add_edges_from((u, v, _scalar_form(d)) for u, v, d in g.edges(data=True))
    nx.write_graphml(h, path)


def read_graphml(path: Path) -> nx.DiGraph:
    try:
        h = nx.read_graphml(path)
    except Exception as exc:  # networkx raises parser-specific errors
        raise RcsnnError(f"{path}: not a readable GraphML file ({exc.__class__.__name__}: {exc})") from None
    g = nx.DiGraph(**_from_scalar_form(h.graph))
    g.add_nodes_from((n, _from_scalar_form(d)) for n, d in h.nodes(data=True))
    g.add_edges_from((u, v, _from_scalar_form(d)) for u, v, d in h.edges(data=True))
    return g



def to_attributes(graph: Graph) -> nx.DiGraph:
    """The plain-attribute networkx form of ``graph`` (what JSON and GraphML files hold)."""
    g = nx.DiGraph(format=FORMAT, version=VERSION, dt=graph.dt,
                   fixed={"Wv": graph.fixed.Wv, "Fv": graph.fixed.Fv, "Fb": graph.fixed.Fb},
                   matrices=dict(graph.matrices), **{k: v for k, v in graph.nx.graph.items()})
    if graph.passes:
        g.graph["passes"] = list(graph.passes)
    if graph.frontend is not None:
        g.graph.update(vocab=graph.frontend.vocab, embedding=graph.frontend.embedding)
    notes = lambda d: {k: v for k, v in d.items() if k != "op"}  # noqa: E731
    g.add_node(INPUT, kind="input", size=graph.input.size)
    for index, (name, lif) in enumerate(graph.groups()):
        g.add_node(name, kind="lif", index=index, size=lif.size, beta=lif.beta, tau_steps=lif.tau_steps,
                   theta=lif.theta, reset=lif.reset, bias=lif.bias, **notes(graph.nx.nodes[name]))
        g.add_edge(INPUT, name, kind="input", weight=graph.projection(name).weight)
    out = graph.output
    attrs = {"kind": "output", "size": out.size}
    if out.readout_weight is not None:
        attrs.update(readout_weight=out.readout_weight, readout_bias=out.readout_bias)
    g.add_node(OUTPUT, **attrs, **notes(graph.nx.nodes[OUTPUT]))
    for order, (pre, post, s) in enumerate(graph.synapses()):
        g.add_edge(pre, post, kind="synapse", matrix=s.matrix, alpha=s.alpha, delay=s.delay, order=order,
                   **notes(graph.nx.edges[pre, post]))
    for name, _ in graph.groups():
        g.add_edge(name, OUTPUT, kind="spikes")
    return g


#: Attributes of each kind that are op fields or file bookkeeping (the rest are pass results).
_FIELDS = {"input": {"kind", "size"}, "output": {"kind", "size", "readout_weight", "readout_bias"},
           "lif": {"kind", "index", "size", "beta", "tau_steps", "theta", "reset", "bias"},
           "synapse": {"kind", "matrix", "alpha", "delay", "order"}}
_GRAPH_FIELDS = {"format", "version", "dt", "fixed", "matrices", "vocab", "embedding", "passes",
                 "node_default", "edge_default"}  # the last two: GraphML bookkeeping of networkx


def from_attributes(g: nx.DiGraph, where: str = "graph") -> Graph:
    """Validate the plain-attribute form and build the :class:`Graph` (pass results carried over)."""
    if g.graph.get("format") != FORMAT:
        raise RcsnnError(f"{where}: graph format {g.graph.get('format')!r} is not {FORMAT!r}")
    if g.graph.get("version") != VERSION:
        raise RcsnnError(f"{where}: graph version {g.graph.get('version')!r} is not supported (this rcsnn reads {VERSION})")
    for node in (INPUT, OUTPUT):
        if node not in g or g.nodes[node].get("kind") != node:
            raise RcsnnError(f"{where}: node {node!r} of kind {node!r} is missing")
    lif = [n for n, d in g.nodes(data=True) if d.get("kind") == "lif"]
    other = [n for n, d in g.nodes(data=True) if d.get("kind") not in ("lif", INPUT, OUTPUT)]
    if other:
        raise RcsnnError(f"{where}: node {other[0]!r} has unknown kind {g.nodes[other[0]].get('kind')!r}")
    lif.sort(key=lambda n: _attr(g.nodes[n], "index", where, n))
    fixed = g.graph.get("fixed") or {}
    vocab = g.graph.get("vocab")
    out = Graph(dt=float(g.graph.get("dt", 1e-3)),
                fixed=FixedFormat(**{k: int(fixed[k]) for k in ("Wv", "Fv", "Fb") if k in fixed}),
                frontend=(TokenFrontend(vocab, np.asarray(g.graph["embedding"], dtype=np.float64))
                          if vocab is not None else None))
    out.passes = list(g.graph.get("passes", []))
    out.nx.graph.update({k: v for k, v in g.graph.items() if k not in _GRAPH_FIELDS})
    out.add_input(int(_attr(g.nodes[INPUT], "size", where, INPUT)))
    for name in lif:
        d = g.nodes[name]
        if not g.has_edge(INPUT, name):
            raise RcsnnError(f"{where}: group {name!r} has no input edge")
        op = LIF(int(_attr(d, "size", where, name)), float(_attr(d, "beta", where, name)),
                 float(_attr(d, "theta", where, name)), str(_attr(d, "reset", where, name)),
                 np.asarray(_attr(d, "bias", where, name), dtype=np.float64))
        out.add_group(str(name), op, np.asarray(_attr(g.edges[INPUT, name], "weight", where, f"{INPUT}->{name}"),
                                                dtype=np.float64))
        out.nx.nodes[str(name)].update({k: v for k, v in d.items() if k not in _FIELDS["lif"]})
    for key, m in (g.graph.get("matrices") or {}).items():
        out.add_matrix(key, np.asarray(m))
    synapses = []
    for pre, post, d in g.edges(data=True):
        kind = d.get("kind")
        if kind == "synapse":
            edge = f"{pre}->{post}"
            op = Synapse(str(_attr(d, "matrix", where, edge)), float(_attr(d, "alpha", where, edge)), int(d.get("delay", 1)))
            synapses.append((int(d.get("order", 0)), str(pre), str(post), op, d))
        elif not ((kind == "input" and pre == INPUT and post in lif)
                  or (kind == "spikes" and pre in lif and post == OUTPUT)):
            raise RcsnnError(f"{where}: edge {pre}->{post} of kind {kind!r} is not allowed there")
    for _, pre, post, op, d in sorted(synapses, key=lambda s: s[0]):
        out.add_synapse(pre, post, op)
        out.nx.edges[pre, post].update({k: v for k, v in d.items() if k not in _FIELDS["synapse"]})
    d = g.nodes[OUTPUT]
    out.add_output(_optional_array(d.get("readout_weight")), _optional_array(d.get("readout_bias")))
    out.validate(where)
    from .passes import check_quantized

    check_quantized(out, where)
    return out


def _attr(d: dict, key: str, where: str, owner) -> object:
    if key not in d:
        raise RcsnnError(f"{where}: {owner!r} has no attribute {key!r}")
    return d[key]


def _optional_array(value) -> np.ndarray | None:
    return None if value is None else np.asarray(value, dtype=np.float64)


def save_graph(graph: Graph, path: str | Path) -> None:
    """Write ``graph`` as ``.json`` or ``.graphml`` (chosen by suffix)."""
    path = Path(path)
    g = to_attributes(graph)
    if path.suffix == ".json":
        path.write_text(graph_to_json(g))
    elif path.suffix == ".graphml":
        write_graphml(g, path)
    else:
        raise RcsnnError(f"{path}: unknown graph file type {path.suffix!r} (use .json, .graphml or .nir)")


def load_graph(path: str | Path) -> Graph:
    """Read a ``.json`` or ``.graphml`` IR file into a validated :class:`Graph`."""
    path = Path(path)
    if not path.is_file():
        raise RcsnnError(f"{path}: no such file")
    g = graph_from_json(path.read_text(), str(path)) if path.suffix == ".json" else read_graphml(path)
    return from_attributes(g, str(path))
