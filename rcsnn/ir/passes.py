"""Passes over the IR that every back end shares: each a function ``Graph -> Graph``.

A pass returns a new :class:`~rcsnn.ir.graph.Graph` (the input is not changed) whose nodes and
edges carry the pass's results under the keys it documents, and whose ``passes`` list names it.
Back-end passes live with their back end: :func:`rcsnn.analog.partition.partition`
(open-loop deck blocks) and :func:`rcsnn.digital.layout.place` (lanes and memory layout).
"""

from __future__ import annotations

import numpy as np

from ..errors import RcsnnError
from .graph import Graph
from .reference import quantize_core

__all__ = ["quantize", "check_quantized"]


def quantize(graph: Graph) -> Graph:
    """Fixed-point quantisation in the graph's format ``(Wv, Fv, Fb)`` (contract, fixed point).

    Writes ``beta_q = round(β·2^Fb)``, ``theta_q`` and ``bias_q`` (array) ``= sat(round(value·2^Fv))``
    on every LIF node and ``alpha_q`` on every synapse edge: the integers the fixed-point
    reference and the digital core compute with.
    """
    q = quantize_core(graph.arrays())
    out = graph.derive("quantize")
    for (name, _), sl in zip(graph.groups(), graph.arrays().offsets().values()):
        out.nx.nodes[name].update(beta_q=int(q.beta_q[sl.start]), theta_q=int(q.theta_q[sl.start]),
                                  bias_q=q.bias_q[sl].copy())
    for (pre, post, _), alpha_q in zip(graph.synapses(), q.alpha_q):
        out.nx.edges[pre, post]["alpha_q"] = int(alpha_q)
    return out


def check_quantized(graph: Graph, where: str = "graph") -> None:
    """Quantised attributes present on ``graph`` (a file may carry them) must be the ones its format gives."""
    keys = {"beta_q", "theta_q", "bias_q", "alpha_q"}
    if not any(keys & set(d) for _, d in graph.nx.nodes(data=True)) and \
            not any(keys & set(d) for *_, d in graph.nx.edges(data=True)):
        return
    derived = quantize(graph)
    for node, d in graph.nx.nodes(data=True):
        for key in ("beta_q", "theta_q", "bias_q"):
            if key in d and not _same(d[key], derived.nx.nodes[node][key]):
                raise RcsnnError(f"{where}: group {node!r}: {key}={_short(d[key])} disagrees with the fixed-point format "
                                 f"({_short(derived.nx.nodes[node][key])})")
    for pre, post, d in graph.nx.edges(data=True):
        if "alpha_q" in d and not _same(d["alpha_q"], derived.nx.edges[pre, post]["alpha_q"]):
            raise RcsnnError(f"{where}: synapses {pre}->{post}: alpha_q={_short(d['alpha_q'])} disagrees with the "
                             f"fixed-point format ({derived.nx.edges[pre, post]['alpha_q']})")


def _same(found, derived) -> bool:
    """Equal values and shapes (a file's value of any type against the derived integers)."""
    if isinstance(found, int) and not isinstance(found, bool):
        found = np.asarray(found)
    return isinstance(found, np.ndarray) and found.dtype.kind in "iu" and np.array_equal(found, np.asarray(derived))


def _short(value) -> str:
    """A value on one short line (arrays are summarised)."""
    if isinstance(value, np.ndarray) and value.size > 4:
        return f"array of shape {value.shape}"
    text = " ".join(repr(value.tolist() if isinstance(value, np.ndarray) else value).split())
    return text if len(text) <= 60 else text[:57] + "..."
