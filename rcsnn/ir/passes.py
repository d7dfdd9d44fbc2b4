"""Passes over the IR that every back end shares: each a function ``Graph -> Graph``.

A pass returns a new :class:`~rcsnn.ir.graph.Graph` (the input is not changed) whose nodes and
edges carry the pass's results under the keys it documents, and whose ``passes`` list names it.
:func:`retime` (with :func:`skew_currents` and :func:`unskew_raster`) turns a feed-forward stack
of same-step synapses into the all-delay-1 core the back ends implement. Back-end passes live
with their back end: :func:`rcsnn.analog.partition.partition`
(open-loop deck blocks) and :func:`rcsnn.digital.layout.place` (lanes and memory layout).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from ..errors import RcsnnError
from .arrays import Core, array_view
from .graph import Graph
from .reference import quantize_core

__all__ = ["quantize", "check_quantized", "retime", "skew_currents", "unskew_raster"]


def quantize(graph: Graph) -> Graph:
    """Fixed-point quantisation in the graph's format ``(Wv, Fv, Fb, Ww)`` (contract, fixed point).

    Writes ``beta_q = round(β·2^Fb)``, ``theta_q`` and ``bias_q`` (array) ``= sat(round(value·2^Fv))``
    on every group (``beta_q`` and ``theta_q`` an int for a per-group value, an array for per-neuron
    values), ``beta_syn_q`` on CubaLIF groups, and ``alpha_q`` on every synapse edge: the integers
    the fixed-point reference and the digital core compute with (dense weights: ``FixedCore.weight_q``).
    """
    core = graph.arrays()
    q = quantize_core(core)
    out = graph.derive("quantize")
    for (name, lif), group, sl in zip(graph.groups(), core.groups, core.offsets().values()):
        node = out.nx.nodes[name]
        for key, values, value in (("beta_q", q.beta_q, lif.beta), ("theta_q", q.theta_q, lif.theta)):
            node[key] = values[sl].copy() if np.ndim(value) else int(values[sl.start])
        node["bias_q"] = q.bias_q[sl].copy()
        if group.synaptic:
            node["beta_syn_q"] = q.beta_syn_q[sl].copy() if np.ndim(lif.beta_syn) else int(q.beta_syn_q[sl.start])
    for (pre, post, _), alpha_q in zip(graph.synapses(), q.alpha_q):
        out.nx.edges[pre, post]["alpha_q"] = int(alpha_q)
    return out


def check_quantized(graph: Graph, where: str = "graph") -> None:
    """Quantised attributes present on ``graph`` (a file may carry them) must be the ones its format gives."""
    keys = {"beta_q", "theta_q", "bias_q", "beta_syn_q", "alpha_q"}
    if not any(keys & set(d) for _, d in graph.nx.nodes(data=True)) and \
            not any(keys & set(d) for *_, d in graph.nx.edges(data=True)):
        return
    derived = quantize(graph)
    for node, d in graph.nx.nodes(data=True):
        for key in ("beta_q", "theta_q", "bias_q", "beta_syn_q"):
            if key in d and not _same(d[key], derived.nx.nodes[node].get(key)):
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


def retime(graph: Graph) -> Graph:
    """The equivalent all-delay-1 graph of a stack whose same-step (delay 0) synapses go one level up.

    Group g runs ``skew[g]`` steps late, with ``skew[post] = skew[pre] + 1`` for every delay-0
    synapse and ``skew[post] = skew[pre]`` for every delay-1 synapse (the smallest skews, 0 at the
    bottom of each connected part). Then a delay-0 synapse's spikes of step t arrive one retimed
    step later, exactly when the post group computes its step t, so every delay can be 1. Writes
    ``skew`` on every group that runs late (added to a skew already there) and sets every delay to 1;
    run the result on :func:`skew_currents` and read it with :func:`unskew_raster`. A graph without
    such skews (a delay-0 synapse that skips a level, or a delay-1 synapse between levels) is
    refused naming the synapse.
    """
    skew = _skews(graph.arrays())
    out = graph.derive("retime")
    for name, k in skew.items():
        if k:
            out.nx.nodes[name]["skew"] = out.nx.nodes[name].get("skew", 0) + k
    for pre, post, synapse in graph.synapses():
        out.nx.edges[pre, post]["op"] = replace(synapse, delay=1)
    out._arrays = None
    return out


def _skews(core: Core) -> dict[str, int]:
    """Per group, the steps it runs late (see :func:`retime`); one :class:`RcsnnError` naming a conflicting synapse.

    The skews are potentials along the synapses (+1 over a delay-0 one, 0 over a delay-1 one), spread
    from the first group of each connected part and shifted to start at 0. If they conflict, the
    smallest levels that satisfy every synapse as an inequality name the synapse to blame (for a
    delay-0 synapse that skips a level, that synapse)."""
    steps: dict[str, int] = {}
    neighbours: dict[str, list[tuple[str, int]]] = {g.name: [] for g in core.groups}
    for s in core.synapses:
        neighbours[s.pre].append((s.post, 1 - s.delay))
        neighbours[s.post].append((s.pre, s.delay - 1))
    for g in core.groups:
        part, todo = {g.name: 0}, [g.name]
        while todo and g.name not in steps:
            name = todo.pop()
            for other, step in neighbours[name]:
                if other not in part:
                    part[other] = part[name] + step
                    todo.append(other)
        if g.name not in steps:
            steps.update({name: k - min(part.values()) for name, k in part.items()})
    if all(steps[s.post] - steps[s.pre] == 1 - s.delay for s in core.synapses):
        return steps
    level = dict.fromkeys(steps, 0)
    for _ in range(len(level) + 1):
        for s in core.synapses:
            level[s.post] = max(level[s.post], level[s.pre] + 1 - s.delay)
            if s.delay:
                level[s.pre] = max(level[s.pre], level[s.post])
    s = next(s for s in core.synapses if level[s.post] - level[s.pre] != 1 - s.delay)
    raise RcsnnError(f"retime: synapses {s.pre}->{s.post} (delay {s.delay}) join groups {level[s.post] - level[s.pre]} "
                     "level(s) apart; a same-step synapse must go exactly one level up and a delay-1 synapse stay "
                     "within its level")


def skew_currents(core, currents: np.ndarray) -> np.ndarray:
    """The input stream of a retimed core for the original ``currents`` ``(steps, [batch,] N)`` (no bias).

    ``steps + max skew`` steps: group g gets ``currents[t - skew_g]`` from step ``skew_g`` on, and before
    that exactly ``-b`` (float currents) or ``-b_q`` (integer, already quantised currents) so its total
    input is 0 and it stays at ``v = 0, i = 0, s = 0``; after the original steps, 0.
    """
    core = array_view(core)
    currents = np.asarray(currents)
    integer = np.issubdtype(currents.dtype, np.integer)
    bias = quantize_core(core).bias_q if integer else core.bias
    skew = core.per_neuron("skew").astype(np.int64)
    steps = currents.shape[0]
    out = np.zeros((steps + int(skew.max()),) + currents.shape[1:], dtype=np.int64 if integer else np.float64)
    for k in np.unique(skew):
        cols = skew == k
        out[:k, ..., cols] = -bias[cols]
        out[k:k + steps, ..., cols] = currents[..., cols]
    return out


def unskew_raster(core, raster: np.ndarray) -> np.ndarray:
    """Spikes (or membranes, or any per-step array) ``(steps + max skew, [batch,] N)`` of a retimed core
    read back on the original steps: neuron i's step t is the retimed step ``t + skew_i``."""
    core = array_view(core)
    raster = np.asarray(raster)
    skew = core.per_neuron("skew").astype(np.int64)
    steps = raster.shape[0] - int(skew.max())
    if steps < 0:
        raise RcsnnError(f"raster: {raster.shape[0]} steps, fewer than the core's largest skew {int(skew.max())}")
    out = np.zeros((steps,) + raster.shape[1:], dtype=raster.dtype)
    for k in np.unique(skew):
        cols = skew == k
        out[..., cols] = raster[k:k + steps, ..., cols]
    return out
