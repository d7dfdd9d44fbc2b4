"""JSON and GraphML files of the intermediate representation, exact round trip.

On file, the IR is a networkx graph of plain attributes (``docs/ir.md``): every node and edge
has ``kind`` (``input``, ``lif``, ``output``; ``input``, ``synapse``, ``spikes``) and its op's
fields; pass results (``beta_q``, ``blocks``, ``place``, ...) stand beside them, and the graph's
``passes`` lists the passes that wrote them. :func:`to_attributes` and :func:`from_attributes`
convert between that form and :class:`~rcsnn.ir.graph.Graph`.

Arrays are written as ``{"dtype", "shape", "data"}`` (floats as Python's shortest
repr, which reads back to the same float64; a dense float64 weight matrix too); ternary
matrices as CSR ``{"ternary_csr": shape, "indptr", "indices", "signs"}``. A neuron parameter
(``beta``, ``theta``, ``beta_syn``, ``v_min``, ``v_max``) is a number or a per-neuron array; the saturation
bounds are written only where some bound is finite (a per-neuron array may hold ``±Infinity``). GraphML holds only
scalars, so there every array-valued or dict-valued attribute is the JSON text
of the same encoding. Output is deterministic: sorted keys, fixed node order.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import networkx as nx
import numpy as np

from ..errors import RcsnnError
from ..files import atomic_file, field
from .arrays import FixedFormat, TokenFrontend
from .graph import INPUT, OUTPUT, Graph
from .nodes import LIF, Synapse

__all__ = ["FORMAT", "VERSION", "DTYPES", "MAX_ELEMENTS", "to_attributes", "from_attributes", "graph_to_json",
           "graph_from_json", "write_graphml", "read_graphml", "save_graph", "load_graph"]

FORMAT = "rcsnn-graph"
VERSION = 1
#: Array dtypes a file may name (what :func:`encode` writes for the IR's arrays): real numbers only.
DTYPES = ("float64", "float32", "int64", "int32", "int16", "int8", "uint8", "bool")
#: Most entries of one array a file may ask for (a dense ternary matrix is allocated from its shape):
#: 2**28, a 16384 x 16384 matrix; a larger shape is refused before anything is allocated.
MAX_ELEMENTS = 2**28


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


def decode(value, where: str = "graph", key: str = ""):
    """Inverse of :func:`encode`, checking every array before allocating it; errors name ``where`` and ``key``."""
    if isinstance(value, dict):
        if "ternary_csr" in value:
            return _ternary(value, where, key)
        if set(value) == {"dtype", "shape", "data"}:
            return _array(value, where, key)
        return {k: decode(v, where, f"{key}.{k}" if key else k) for k, v in value.items()}
    return value


def _shape(value, where: str, key: str, ndim: int | None = None) -> tuple[int, ...]:
    if not isinstance(value, list) or (ndim is not None and len(value) != ndim) or len(value) > 8 \
            or not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in value):
        dims = f"{ndim} " if ndim else ""
        raise RcsnnError(f"{where}: key {key!r}: shape {str(value)[:60]} is not a list of {dims}whole numbers >= 0")
    if int(np.prod(value, dtype=object)) > MAX_ELEMENTS:
        raise RcsnnError(f"{where}: key {key!r}: shape {value} has more than {MAX_ELEMENTS} entries")
    return tuple(value)


def _numbers(data, dtype: str, where: str, key: str) -> np.ndarray:
    """``data`` (a flat list of JSON numbers) as a 1-D array of ``dtype``, refusing values that do not fit."""
    if not isinstance(data, list) or any(isinstance(x, (list, dict, str)) or x is None for x in data):
        raise RcsnnError(f"{where}: key {key!r}: data is not a flat list of numbers")
    try:
        raw = np.asarray(data) if data else np.zeros(0, dtype=dtype)
        if raw.dtype.kind not in "biuf":
            raise TypeError
        target = np.dtype(dtype)
        if target.kind in "biu":
            wide = raw.astype(np.float64) if raw.dtype.kind == "f" else raw
            if raw.size and (not np.array_equal(wide, np.round(wide)) or raw.min() < (0 if target.kind == "b" else
                             np.iinfo(target).min) or raw.max() > (1 if target.kind == "b" else np.iinfo(target).max)):
                raise OverflowError
        return raw.astype(target)
    except (TypeError, ValueError, OverflowError):
        raise RcsnnError(f"{where}: key {key!r}: data does not fit dtype {dtype}") from None


def _array(value: dict, where: str, key: str) -> np.ndarray:
    dtype = value["dtype"]
    if dtype not in DTYPES:
        raise RcsnnError(f"{where}: key {key!r}: dtype {str(dtype)[:40]!r} is not one of {', '.join(DTYPES)}")
    shape = _shape(value["shape"], where, key)
    data = value["data"]
    if not isinstance(data, list) or len(data) != int(np.prod(shape, dtype=object)):
        size = len(data) if isinstance(data, list) else type(data).__name__
        raise RcsnnError(f"{where}: key {key!r}: {size} data values for shape {list(shape)}")
    return _numbers(data, dtype, where, key).reshape(shape)


def _ternary(value: dict, where: str, key: str) -> np.ndarray:
    """A CSR ternary matrix, checked (row pointers, column indices, signs) before the dense int8 is made."""
    if set(value) != {"ternary_csr", "indptr", "indices", "signs"}:
        raise RcsnnError(f"{where}: key {key!r}: a ternary matrix has exactly the keys ternary_csr, indptr, indices, signs")
    rows, cols = _shape(value["ternary_csr"], where, key, ndim=2)
    indptr = _numbers(value["indptr"], "int64", where, f"{key}.indptr")
    indices = _numbers(value["indices"], "int64", where, f"{key}.indices")
    signs = _numbers(value["signs"], "int64", where, f"{key}.signs")
    if indptr.shape != (rows + 1,) or indptr[0] != 0 or (np.diff(indptr) < 0).any() or indptr[-1] != indices.size:
        raise RcsnnError(f"{where}: key {key!r}: indptr is not {rows + 1} non-decreasing row starts from 0 to "
                         f"{indices.size}")
    if signs.size != indices.size or not np.isin(signs, (-1, 1)).all():
        raise RcsnnError(f"{where}: key {key!r}: signs must be one -1 or +1 per index")
    if indices.size and (indices.min() < 0 or indices.max() >= cols):
        raise RcsnnError(f"{where}: key {key!r}: a column index is outside 0..{cols - 1}")
    dense = np.zeros((rows, cols), dtype=np.int8)
    dense[np.repeat(np.arange(rows), np.diff(indptr)), indices] = signs
    return dense


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
    except (ValueError, RecursionError) as exc:
        raise RcsnnError(f"{where}: not an rcsnn graph JSON file ({exc.__class__.__name__}: {exc})") from None
    for key, kind in (("graph", "dict"), ("nodes", "list"), ("edges", "list")):
        field(data, key, kind, f"{where}: not an rcsnn graph JSON file")
    g = nx.DiGraph(**{str(k): v for k, v in decode(data["graph"], f"{where}: graph").items()})
    for k, node in enumerate(data["nodes"]):
        name = _key(field(node, "id", "str", where, label=f"nodes[{k}].id"), where)
        if name in g:
            raise RcsnnError(f"{where}: node {name!r} appears twice")
        g.add_node(name, **decode({a: v for a, v in node.items() if a != "id"}, f"{where}: node {name!r}"))
    for k, edge in enumerate(data["edges"]):
        ends = [_key(field(edge, end, "str", where, label=f"edges[{k}].{end}"), where) for end in ("source", "target")]
        attrs = {a: v for a, v in edge.items() if a not in ("source", "target")}
        if g.has_edge(*ends):
            raise RcsnnError("{}: edge {}->{} appears twice".format(where, *ends))
        g.add_edge(*ends, **decode(attrs, "{}: edge {}->{}".format(where, *ends)))
    return g


def _key(name: str, where: str) -> str:
    """A node id (checked as a name when the graph is built; this only keeps messages short)."""
    if len(name) > 200:
        raise RcsnnError(f"{where}: node id {name[:40]!r}... is too long")
    return name


def _scalar_form(d: dict) -> dict:
    return {k: (json.dumps(encode(v), sort_keys=True) if isinstance(v, (np.ndarray, dict)) else encode(v))
            for k, v in d.items()}


def _from_scalar_form(d: dict, where: str, owner: str) -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, str) and v[:1] in "{[":
            try:
                v = json.loads(v)
            except (ValueError, RecursionError) as exc:
                raise RcsnnError(f"{where}: {owner}: attribute {k!r} is not valid JSON ({exc})") from None
            v = decode(v, f"{where}: {owner}", k)
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
    where = str(path)
    g = nx.DiGraph(**_from_scalar_form(h.graph, where, "graph"))
    g.add_nodes_from((n, _from_scalar_form(d, where, f"node {n!r}")) for n, d in h.nodes(data=True))
    g.add_edges_from((u, v, _from_scalar_form(d, where, f"edge {u}->{v}")) for u, v, d in h.edges(data=True))
    return g



def to_attributes(graph: Graph) -> nx.DiGraph:
    """The plain-attribute networkx form of ``graph`` (what JSON and GraphML files hold)."""
    g = nx.DiGraph(format=FORMAT, version=VERSION, dt=graph.dt,
                   fixed={"Wv": graph.fixed.Wv, "Fv": graph.fixed.Fv, "Fb": graph.fixed.Fb,
                          **({"Ww": graph.fixed.Ww} if graph.fixed.Ww != FixedFormat.Ww else {})},
                   matrices=dict(graph.matrices), **{k: v for k, v in graph.nx.graph.items()})
    if graph.passes:
        g.graph["passes"] = list(graph.passes)
    if graph.frontend is not None:
        g.graph.update(vocab=graph.frontend.vocab, embedding=graph.frontend.embedding)
    notes = lambda d: {k: v for k, v in d.items() if k != "op"}  # noqa: E731
    g.add_node(INPUT, kind="input", size=graph.input.size)
    for index, (name, lif) in enumerate(graph.groups()):
        g.add_node(name, kind="lif", index=index, size=lif.size, beta=lif.beta, theta=lif.theta, reset=lif.reset,
                   bias=lif.bias, **_optional_fields(lif), **notes(graph.nx.nodes[name]))
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


def _optional_fields(lif: LIF) -> dict:
    """``tau_steps`` (for a per-group β < 1, informative), the CubaLIF fields and the saturation bounds where not
    their defaults, so a LIF group's attributes are those of files written before they existed."""
    out = {"tau_steps": lif.tau_steps} if not np.ndim(lif.beta) and lif.beta < 1.0 else {}
    if np.any(np.asarray(lif.beta_syn) != 0):
        out["beta_syn"] = lif.beta_syn
    if lif.current_delay:
        out["current_delay"] = lif.current_delay
    if lif.max_spikes != 1:
        out["max_spikes"] = lif.max_spikes
    for key in ("v_min", "v_max"):
        if np.isfinite(getattr(lif, key)).any():
            out[key] = getattr(lif, key)
    return out


def _parameter(d: dict, key: str, where: str, default=None):
    """A neuron parameter: a number, or a 1-D real array (per neuron; its length is checked with the group)."""
    if isinstance(d.get(key), np.ndarray):
        return _array_attr(d, key, where, 1)
    return field(d, key, "number", where, **({} if default is None else {"default": default}))


#: Attributes of each kind that are op fields or file bookkeeping (the rest are pass results).
_FIELDS = {"input": {"kind", "size"}, "output": {"kind", "size", "readout_weight", "readout_bias"},
           "lif": {"kind", "index", "size", "beta", "tau_steps", "theta", "reset", "bias", "beta_syn", "current_delay",
                   "max_spikes", "v_min", "v_max"},
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
    index = {n: field(g.nodes[n], "index", "int", f"{where}: node {n!r}") for n in lif}
    if sorted(index.values()) != list(range(len(lif))):
        raise RcsnnError(f"{where}: the LIF nodes' 'index' values {sorted(index.values())[:10]} are not 0..{len(lif) - 1}")
    lif.sort(key=index.__getitem__)
    graph_where = f"{where}: graph"
    fixed = field(g.graph, "fixed", "dict", graph_where, default={})
    vocab = field(g.graph, "vocab", "str", graph_where, default=None)
    embedding = _array_attr(g.graph, "embedding", graph_where, 2) if vocab is not None else None
    passes = field(g.graph, "passes", "list", graph_where, default=[])
    if not all(isinstance(p, str) for p in passes):
        raise RcsnnError(f"{where}: graph: key 'passes' is not a list of pass names")
    out = Graph(dt=field(g.graph, "dt", "number", graph_where, default=1e-3),
                fixed=FixedFormat(**{k: field(fixed, k, "int", graph_where, label=f"fixed.{k}")
                                     for k in ("Wv", "Fv", "Fb", "Ww") if k in fixed}),
                frontend=TokenFrontend(vocab, embedding) if vocab is not None else None)
    out.passes = list(passes)
    out.nx.graph.update({k: v for k, v in g.graph.items() if k not in _GRAPH_FIELDS})
    out.add_input(field(g.nodes[INPUT], "size", "int", f"{where}: node 'input'", minimum=0))
    for name in lif:
        d, node = g.nodes[name], f"{where}: node {name!r}"
        if not g.has_edge(INPUT, name):
            raise RcsnnError(f"{where}: group {name!r} has no input edge")
        op = LIF(field(d, "size", "int", node, minimum=1), _parameter(d, "beta", node), _parameter(d, "theta", node),
                 field(d, "reset", "str", node), _array_attr(d, "bias", node, 1), _parameter(d, "beta_syn", node, 0.0),
                 field(d, "current_delay", "int", node, default=0), field(d, "max_spikes", "int", node, default=1),
                 _parameter(d, "v_min", node, -math.inf), _parameter(d, "v_max", node, math.inf))
        out.add_group(name, op, _array_attr(g.edges[INPUT, name], "weight", f"{where}: edge {INPUT}->{name}", 2), where)
        out.nx.nodes[name].update({k: v for k, v in d.items() if k not in _FIELDS["lif"]})
    for key, m in field(g.graph, "matrices", "dict", graph_where, default={}).items():
        if not (isinstance(m, np.ndarray) and m.ndim == 2):
            raise RcsnnError(f"{where}: graph: key 'matrices.{key}' is not a 2-D ternary or float64 matrix")
        out.add_matrix(key, m, where, dense=m.dtype.kind == "f")
    synapses = []
    for pre, post, d in g.edges(data=True):
        kind = d.get("kind")
        if kind == "synapse":
            edge = f"{where}: edge {pre}->{post}"
            op = Synapse(field(d, "matrix", "str", edge), field(d, "alpha", "number", edge),
                         field(d, "delay", "int", edge, default=1))
            synapses.append((field(d, "order", "int", edge, default=0), pre, post, op, d))
        elif not ((kind == "input" and pre == INPUT and post in lif)
                  or (kind == "spikes" and pre in lif and post == OUTPUT)):
            raise RcsnnError(f"{where}: edge {pre}->{post} of kind {kind!r} is not allowed there")
    for _, pre, post, op, d in sorted(synapses, key=lambda s: s[0]):
        if pre not in lif or post not in lif:
            raise RcsnnError(f"{where}: edge {pre}->{post}: a synapse joins two LIF groups")
        out.add_synapse(pre, post, op)
        out.nx.edges[pre, post].update({k: v for k, v in d.items() if k not in _FIELDS["synapse"]})
    d = g.nodes[OUTPUT]
    weight = _array_attr(d, "readout_weight", f"{where}: node 'output'", 2, optional=True)
    bias = _array_attr(d, "readout_bias", f"{where}: node 'output'", 1, optional=True)
    out.add_output(weight, bias)
    out.validate(where)
    from .passes import check_quantized

    check_quantized(out, where)
    return out


def _array_attr(d: dict, key: str, where: str, ndim: int, optional: bool = False) -> np.ndarray | None:
    """Attribute ``key``: a real ``ndim``-D array (a decoded ``{dtype, shape, data}``) as float64."""
    value = d.get(key)
    if value is None:
        if optional:
            return None
        raise RcsnnError(f"{where}: key {key!r} is missing")
    if not isinstance(value, np.ndarray) or value.ndim != ndim or value.dtype.kind not in "biuf":
        shape = f"{value.dtype} array of shape {value.shape}" if isinstance(value, np.ndarray) else type(value).__name__
        raise RcsnnError(f"{where}: key {key!r}: a {shape}, expected a {ndim}-D array of numbers")
    return value.astype(np.float64)


def save_graph(graph: Graph, path: str | Path) -> None:
    """Write ``graph`` as ``.json`` or ``.graphml`` (chosen by suffix), whole or not at all
    (:func:`rcsnn.files.atomic_file`)."""
    path = Path(path)
    if path.suffix not in (".json", ".graphml"):
        raise RcsnnError(f"{path}: unknown graph file type {path.suffix!r} (use .json, .graphml or .nir)")
    g = to_attributes(graph)
    with atomic_file(path) as tmp:
        if path.suffix == ".json":
            tmp.write_text(graph_to_json(g))
        else:
            write_graphml(g, tmp)


def load_graph(path: str | Path) -> Graph:
    """Read a ``.json`` or ``.graphml`` IR file into a validated :class:`Graph`."""
    path = Path(path)
    if not path.is_file():
        raise RcsnnError(f"{path}: no such file")
    if path.suffix == ".json":
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise RcsnnError(f"{path}: not an rcsnn graph JSON file (not UTF-8 text: {exc.reason})") from None
        g = graph_from_json(text, str(path))
    else:
        g = read_graphml(path)
    return from_attributes(g, str(path))
