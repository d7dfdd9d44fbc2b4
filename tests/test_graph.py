"""The intermediate graph: structure, validation, exact JSON/GraphML round trips, determinism."""

import networkx as nx
import numpy as np
import pytest

from conftest import SMALL_CHECKPOINT, random_core
from rcsnn.errors import RcsnnError
from rcsnn.graph.network import core_to_graph, graph_to_core
from rcsnn.graph.serialize import graph_from_json, graph_to_json, load_graph, save_graph
from rcsnn.model.checkpoint import load_checkpoint
from rcsnn.model.reference import simulate_fixed, simulate_float


def _rasters(core, steps=150, seed=0):
    x = core.input_currents(np.random.default_rng(seed).normal(0, 1.2, (steps, core.n_inputs)))
    return simulate_float(core, x), simulate_fixed(core, x)


def test_graph_structure_of_shared_core():
    core = load_checkpoint(SMALL_CHECKPOINT)
    g = core_to_graph(core)
    lif = [n for n, d in g.nodes(data=True) if d["kind"] == "lif"]
    assert len(lif) == 3 and g.nodes["input"]["size"] == 64 and g.nodes["output"]["size"] == 96
    synapses = [d for _, _, d in g.edges(data=True) if d["kind"] == "synapse"]
    assert {d["matrix"] for d in synapses} == {"T"} and len(g.graph["matrices"]) == 1  # shared T stored once
    taus = [g.nodes[n]["tau_steps"] for n in lif]
    assert taus == sorted(taus) and g.nodes[lif[0]]["beta_q"] == round(g.nodes[lif[0]]["beta"] * 2**core.fixed.Fb)


@pytest.mark.parametrize("suffix", [".json", ".graphml"])
@pytest.mark.parametrize("kind", ["checkpoint", "cross"])
def test_round_trip_gives_the_same_raster(tmp_path, suffix, kind):
    core = load_checkpoint(SMALL_CHECKPOINT) if kind == "checkpoint" else random_core(seed=2, cross=True, shared=False)
    path = tmp_path / f"core{suffix}"
    save_graph(core, path)
    again = load_graph(path)
    for a, b in zip(_rasters(core), _rasters(again)):
        np.testing.assert_array_equal(a.spikes, b.spikes)
        np.testing.assert_array_equal(a.membranes, b.membranes)
    assert a.spikes.any()
    save_graph(again, tmp_path / f"again{suffix}")
    assert path.read_bytes() == (tmp_path / f"again{suffix}").read_bytes()


def _broken(mutate):
    g = core_to_graph(random_core(seed=1))
    mutate(g)
    with pytest.raises(RcsnnError) as info:
        graph_to_core(g, "g.json")
    return str(info.value)


def test_validation_names_the_problem():
    assert "'output'" in _broken(lambda g: g.remove_node("output"))
    assert "not ternary" in _broken(lambda g: g.graph["matrices"]["T"].__setitem__((0, 0), 3))
    assert "theta_q" in _broken(lambda g: g.nodes["g0"].__setitem__("theta_q", 1))
    assert "beta" in _broken(lambda g: g.nodes["g1"].__setitem__("beta", 1.5))
    assert "unknown kind" in _broken(lambda g: g.add_node("mystery", kind="conv"))
    assert "not allowed" in _broken(lambda g: g.add_edge("input", "output", kind="input"))
    assert "version" in _broken(lambda g: g.graph.__setitem__("version", 7))
    assert "'neurons.bias'" in _broken(lambda g: g.nodes["g0"].__setitem__("bias", np.array([np.nan] * 12)))


def test_json_is_deterministic_and_rejects_garbage(tmp_path):
    core = random_core(seed=4)
    assert graph_to_json(core_to_graph(core)) == graph_to_json(core_to_graph(random_core(seed=4)))
    with pytest.raises(RcsnnError, match="not an rcsnn graph JSON"):
        graph_from_json("{nope", "x.json")
    assert isinstance(graph_from_json(graph_to_json(core_to_graph(core)), "x.json"), nx.DiGraph)
