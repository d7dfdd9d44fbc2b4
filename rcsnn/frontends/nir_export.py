"""Write the IR (:class:`~rcsnn.ir.graph.Graph`) as a NIR graph (read back by :mod:`rcsnn.frontends.nir`).

Node keys are stable and derived from the group names; edges are written in the order below:

=========================================  ====================================================
core                                       NIR
=========================================  ====================================================
input port (n_in)                          ``input``: Input, shape (n_in,)
input_weight, bias of group g              ``in_<g>``: Affine input -> ``lif_<g>``
group g (beta, theta per neuron)           ``lif_<g>``: LIF, tau = dt/(1-beta), r = tau/dt, v_leak = 0,
                                           v_threshold = theta, v_reset = 0; IF (beta = 1): r = 1/dt;
                                           CubaLIF: also tau_syn = dt/(1-beta_syn), w_in = tau_syn/dt;
                                           metadata["rcsnn"] = reset, fixed-point widths [, max_spikes]
synapses pre -> post, W = alpha*T or M     ``rec_<pre>_<post>``: Linear ``lif_<pre>`` -> ``lif_<post>``
spikes of group g                          ``out_<g>``: Output fed by ``lif_<g>``
readout_weight / readout_bias (optional)   ``ro_<g>``: Affine ``lif_<g>`` -> ``readout`` (Output; NIR
                                           sums the inputs of a node); the bias is on ``ro_<first group>``
=========================================  ====================================================

Under forward Euler with the core's dt every neuron's input gain is 1, so a default read
(:func:`rcsnn.frontends.nir.read_nir`) gives the core back. ``target="snntorch"|"norse"`` writes
instead what that framework's NIR importer runs as rcsnn does (see :func:`graph_to_nir`).
"""

from __future__ import annotations

import re
from pathlib import Path

import networkx as nx
import nir
import numpy as np

from ..errors import RcsnnError
from ..files import atomic_file
from ..ir.arrays import Core, NeuronGroup
from ..ir.graph import Graph

__all__ = ["EXPORT_TARGETS", "graph_to_nir", "write_nir", "on_cycle"]


def on_cycle(links: nx.DiGraph, pre, post) -> bool:
    """True if ``pre -> post`` lies on a cycle (or is a self-loop) of ``links``: NIR readers delay it one step."""
    return pre == post or nx.has_path(links, post, pre)


EXPORT_TARGETS = ("snntorch", "norse")


def graph_to_nir(graph: Graph, target: str | None = None) -> nir.NIRGraph:
    """The IR as a flat NIR graph (see the module docstring for keys and parameters).

    A block on a cycle carries delay 1 and one off every cycle delay 0 in NIR readers;
    blocks whose delay says otherwise are refused. Every neuron node carries the core's
    fixed-point format and the group's reset in ``metadata["rcsnn"]``.

    ``target`` writes a graph that framework's NIR importer simulates as rcsnn does
    (``snntorch.import_nir.import_from_nir``, ``norse.torch.from_nir(graph, dt=core.dt)``):
    one Output (the spikes of the one group no synapse leaves), no input node for a group
    without input, ``zero`` reset LIF groups only (both importers build zero-reset neurons);
    for Norse, whose importer ignores ``r``, ``r = 1`` and the gain ``tau/dt`` in the weights.
    A core with membrane saturation bounds is refused in one line: NIR has no saturation.
    """
    core = graph.arrays()
    if target is not None and target not in EXPORT_TARGETS:
        raise RcsnnError(f"core: NIR export target {target!r} is not one of {EXPORT_TARGETS}")
    bounded = [g.name for g in core.groups if np.isfinite(g.v_min).any() or np.isfinite(g.v_max).any()]
    if bounded:
        raise RcsnnError(f"core: group {bounded[0]!r} has membrane saturation bounds (v_min/v_max), which NIR "
                         "cannot express; export the unbounded core")
    links = nx.DiGraph([(s.pre, s.post) for s in core.synapses])
    for s in core.synapses:
        if on_cycle(links, s.pre, s.post) != bool(s.delay):
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

    offsets, gain = core.offsets(), {}
    for g in core.groups:
        if not re.fullmatch(r"\w+", g.name):
            raise RcsnnError(f"core: group name {g.name!r} is not a NIR node key (letters, digits, _)")
        neuron, gain[g.name] = _neuron_node(core, g, target)
        sl = offsets[g.name]
        if target is None or core.input_weight[sl].any() or core.bias[sl].any():
            weight, bias = gain[g.name][:, None] * core.input_weight[sl], gain[g.name] * core.bias[sl]
            add(f"in_{g.name}", nir.Affine(weight=weight, bias=bias), ("input", f"in_{g.name}"))
            edges.append((f"in_{g.name}", f"lif_{g.name}"))
        add(f"lif_{g.name}", neuron)
    for s in core.synapses:
        key = f"rec_{s.pre}_{s.post}"
        weight = gain[s.post][:, None] * (s.alpha * core.matrices[s.matrix].astype(np.float64))
        add(key, nir.Linear(weight=weight), (f"lif_{s.pre}", key), (key, f"lif_{s.post}"))
    if target is not None:
        sinks = [g for g in core.groups if not any(s.pre == g.name and s.post != g.name for s in core.synapses)]
        if len(sinks) != 1:
            raise RcsnnError(f"core: a {target} NIR import returns one Output; groups {[g.name for g in sinks]} "
                             "feed no other group (export a feed-forward stack with one last group)")
        add("output", nir.Output(output_type=np.array([sinks[0].size])), (f"lif_{sinks[0].name}", "output"))
        return nir.NIRGraph(nodes=nodes, edges=edges)
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


def _neuron_node(core: Core, g: NeuronGroup, target: str | None) -> tuple[nir.NIRNode, np.ndarray]:
    """The NIR node of group ``g`` and the gain its incoming weights take (1, or tau/dt for Norse).

    LIF: ``tau = dt/(1-beta)``, ``r = tau/dt`` (forward Euler's gain ``r dt/tau = 1``); IF (beta = 1):
    ``r = 1/dt``; CubaLIF: also ``tau_syn = dt/(1-beta_syn)``, ``w_in = tau_syn/dt``.
    """
    n, dt = g.size, core.dt
    beta, theta = np.broadcast_to(g.beta, (n,)).astype(np.float64), np.broadcast_to(g.theta, (n,)).astype(np.float64)
    zeros, ones = np.zeros(n), np.ones(n)
    fixed = core.fixed
    meta = {"rcsnn": {"reset": g.reset, "Wv": fixed.Wv, "Fv": fixed.Fv, "Fb": fixed.Fb, "Ww": fixed.Ww,
                      **({"max_spikes": g.max_spikes} if g.max_spikes != 1 else {})}}
    if target is not None and (g.reset != "zero" or g.kind != "LIF" or g.max_spikes != 1):
        raise RcsnnError(f"core: group {g.name!r} is a {g.kind} with reset {g.reset!r}, max_spikes {g.max_spikes}; "
                         f"{target}'s NIR importer builds zero-reset binary LIF neurons only")
    if g.synaptic and g.current_delay:
        raise RcsnnError(f"core: group {g.name!r}: current_delay 1 has no NIR CubaLIF form")
    if g.kind == "IF":
        return nir.IF(r=ones / dt, v_threshold=theta, v_reset=zeros, metadata=meta), ones
    tau = dt / (1.0 - beta)
    r, gain = (ones, tau / dt) if target == "norse" else (tau / dt, ones)
    if not g.synaptic:
        return nir.LIF(tau=tau, r=r, v_leak=zeros, v_threshold=theta, v_reset=zeros, metadata=meta), gain
    tau_syn = dt / (1.0 - np.broadcast_to(g.beta_syn, (n,)).astype(np.float64))
    return nir.CubaLIF(tau_syn=tau_syn, tau_mem=tau, r=r, v_leak=zeros, v_threshold=theta, v_reset=zeros,
                       w_in=tau_syn / dt, metadata=meta), gain


def write_nir(graph: Graph, path: str | Path, target: str | None = None) -> None:
    """Write ``graph_to_nir(graph, target)`` to a ``.nir`` (HDF5) file, whole or not at all; same graph, same bytes."""
    nir_graph = graph_to_nir(graph, target)
    with atomic_file(path) as tmp:
        nir.write(str(tmp), nir_graph)
