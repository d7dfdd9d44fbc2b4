"""JSON and GraphML files of the intermediate graph, exact round trip.

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
from .core import Core
from .network import core_to_graph, graph_to_core


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


def save_graph(core: Core, path: str | Path) -> None:
    """Write ``core`` as ``.json`` or ``.graphml`` (chosen by suffix)."""
    path = Path(path)
    g = core_to_graph(core)
    if path.suffix == ".json":
        path.write_text(graph_to_json(g))
    elif path.suffix == ".graphml":
        write_graphml(g, path)
    else:
        raise RcsnnError(f"{path}: unknown graph file type {path.suffix!r} (use .json, .graphml or .nir)")


def load_graph(path: str | Path) -> Core:
    """Read a ``.json`` or ``.graphml`` intermediate graph and flatten it to a validated core."""
    path = Path(path)
    if not path.is_file():
        raise RcsnnError(f"{path}: no such file")
    if path.suffix == ".json":
        g = graph_from_json(path.read_text(), str(path))
    else:
        g = read_graphml(path)
    return graph_to_core(g, str(path))
