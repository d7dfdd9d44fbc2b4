"""The intermediate graph: a networkx ``DiGraph`` every front end lowers to.

Nodes (attribute ``kind``):

* ``input`` — the input port, ``size`` = n_in (a token embedding in the LM);
* ``lif`` — a neuron group: ``size``, ``beta`` (leak per step), ``tau_steps``
  (= −1/ln β, informative), ``theta``, ``reset`` (``zero``/``subtract``),
  ``bias`` (array, one per neuron), ``index`` (order of neuron numbering) and the
  fixed-point parameters ``beta_q``, ``theta_q`` (array ``bias_q``) of the graph's format;
* ``output`` — the output port: the spikes of all groups in group order, with
  an optional float readout ``readout_weight`` / ``readout_bias``.

Edges (attribute ``kind``):

* ``input`` (input → lif): dense ``weight`` (group size × n_in), the external current;
* ``synapse`` (lif → lif): ``matrix`` (a key of ``graph.graph["matrices"]``, a
  ternary int8 array post × pre — a shared T is stored once), ``alpha`` (scale),
  ``alpha_q``, ``delay`` (1: spikes of step t−1; 0: same step, feed-forward),
  ``order`` (summation order);
* ``spikes`` (lif → output).

Graph attributes: ``format`` = ``"rcsnn-graph"``, ``version``, ``dt`` (s),
``fixed`` ({Wv, Fv, Fb}), ``matrices``, and optionally ``vocab``/``embedding``
(the token front end). The fixed-point attributes are derived and rewritten
on every :func:`core_to_graph`; :func:`graph_to_core` checks they agree.
"""

from __future__ import annotations

import networkx as nx
import numpy as np

from ..errors import RcsnnError
from .core import Core, FixedFormat, NeuronGroup, SynapseBlock, TokenFrontend

FORMAT = "rcsnn-graph"
VERSION = 1
INPUT, OUTPUT = "input", "output"


def core_to_graph(core: Core) -> nx.DiGraph:
    """Lower a validated :class:`Core` to the intermediate graph."""
    from ..model.reference import quantize_core

    core.validate()
    q = quantize_core(core)
    g = nx.DiGraph(format=FORMAT, version=VERSION, dt=core.dt,
                   fixed={"Wv": core.fixed.Wv, "Fv": core.fixed.Fv, "Fb": core.fixed.Fb},
                   matrices={k: m.astype(np.int8) for k, m in core.matrices.items()})
    if core.frontend is not None:
        g.graph.update(vocab=core.frontend.vocab, embedding=core.frontend.embedding)
    g.add_node(INPUT, kind="input", size=core.n_inputs)
    for index, (group, sl) in enumerate(zip(core.groups, core.offsets().values())):
        if group.name in (INPUT, OUTPUT):
            raise RcsnnError(f"core: group name {group.name!r} is reserved for a port")
        g.add_node(group.name, kind="lif", index=index, size=group.size, beta=group.beta, tau_steps=group.tau_steps,
                   theta=group.theta, reset=group.reset, bias=core.bias[sl].copy(),
                   beta_q=int(q.beta_q[sl.start]), theta_q=int(q.theta_q[sl.start]), bias_q=q.bias_q[sl].copy())
        g.add_edge(INPUT, group.name, kind="input", weight=core.input_weight[sl].copy())
    out = {"kind": "output", "size": core.n_neurons}
    if core.readout_weight is not None:
        out["readout_weight"] = core.readout_weight
        out["readout_bias"] = core.readout_bias if core.readout_bias is not None else np.zeros(core.readout_weight.shape[0])
    g.add_node(OUTPUT, **out)
    for order, (s, alpha_q) in enumerate(zip(core.synapses, q.alpha_q)):
        if g.has_edge(s.pre, s.post):
            raise RcsnnError(f"core: two synapse blocks {s.pre}->{s.post}; merge them into one matrix")
        g.add_edge(s.pre, s.post, kind="synapse", matrix=s.matrix, alpha=s.alpha, alpha_q=alpha_q, delay=s.delay,
                   order=order)
    for group in core.groups:
        g.add_edge(group.name, OUTPUT, kind="spikes")
    return g


def graph_to_core(g: nx.DiGraph, where: str = "graph") -> Core:
    """Validate the intermediate graph and flatten it to arrays."""
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
    groups, bias, inputs = [], [], []
    for name in lif:
        d = g.nodes[name]
        groups.append(NeuronGroup(str(name), int(_attr(d, "size", where, name)), float(_attr(d, "beta", where, name)),
                                  float(_attr(d, "theta", where, name)), str(_attr(d, "reset", where, name))))
        bias.append(np.asarray(_attr(d, "bias", where, name), dtype=np.float64))
        if not g.has_edge(INPUT, name):
            raise RcsnnError(f"{where}: group {name!r} has no input edge")
        inputs.append(np.asarray(_attr(g.edges[INPUT, name], "weight", where, f"{INPUT}->{name}"), dtype=np.float64))
    synapses = []
    for pre, post, d in g.edges(data=True):
        kind = d.get("kind")
        if kind == "synapse":
            edge = f"{pre}->{post}"
            block = SynapseBlock(str(pre), str(post), str(_attr(d, "matrix", where, edge)),
                                 float(_attr(d, "alpha", where, edge)), int(d.get("delay", 1)))
            synapses.append((int(d.get("order", 0)), block))
        elif not ((kind == "input" and pre == INPUT and post in lif) or (kind == "spikes" and pre in lif and post == OUTPUT)):
            raise RcsnnError(f"{where}: edge {pre}->{post} of kind {kind!r} is not allowed there")
    matrices = {k: np.asarray(m) for k, m in g.graph.get("matrices", {}).items()}
    fixed = g.graph.get("fixed") or {}
    out = g.nodes[OUTPUT]
    vocab = g.graph.get("vocab")
    n_in = int(_attr(g.nodes[INPUT], "size", where, INPUT))
    core = Core(
        groups=tuple(groups),
        matrices=matrices,
        synapses=tuple(s for _, s in sorted(synapses, key=lambda p: p[0])),
        bias=np.concatenate(bias) if bias else np.zeros(0),
        input_weight=np.concatenate(inputs) if inputs else np.zeros((0, n_in)),
        dt=float(g.graph.get("dt", 1e-3)),
        fixed=FixedFormat(**{k: int(fixed[k]) for k in ("Wv", "Fv", "Fb") if k in fixed}),
        readout_weight=_optional_array(out.get("readout_weight")),
        readout_bias=_optional_array(out.get("readout_bias")),
        frontend=TokenFrontend(vocab, np.asarray(g.graph["embedding"], dtype=np.float64)) if vocab is not None else None,
    ).validate(where)
    if core.n_inputs != n_in:
        raise RcsnnError(f"{where}: input port size {n_in} but input weights have {core.n_inputs} columns")
    _check_fixed_attributes(g, core, lif, where)
    return core


def _check_fixed_attributes(g: nx.DiGraph, core: Core, lif: list, where: str) -> None:
    """Stored fixed-point attributes, where present, must be the ones the format gives."""
    from ..model.reference import quantize_core

    q = quantize_core(core)
    for name, sl in zip(lif, core.offsets().values()):
        d = g.nodes[name]
        for key, want in (("beta_q", q.beta_q[sl.start]), ("theta_q", q.theta_q[sl.start])):
            if key in d and int(d[key]) != int(want):
                raise RcsnnError(f"{where}: group {name!r}: {key}={d[key]} disagrees with the fixed-point format ({want})")


def _attr(d: dict, key: str, where: str, owner) -> object:
    if key not in d:
        raise RcsnnError(f"{where}: {owner!r} has no attribute {key!r}")
    return d[key]


def _optional_array(value) -> np.ndarray | None:
    return None if value is None else np.asarray(value, dtype=np.float64)
