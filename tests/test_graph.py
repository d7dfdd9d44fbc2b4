"""The IR: typed graph, passes, validation, exact JSON/GraphML round trips, determinism."""

import json

import networkx as nx
import numpy as np
import pytest
from conftest import SMALL_CHECKPOINT, random_graph

from rcsnn.analog.partition import partition
from rcsnn.cli import main
from rcsnn.digital.layout import build_image, place
from rcsnn.errors import RcsnnError
from rcsnn.frontends.checkpoint import load_checkpoint
from rcsnn.ir.graph import Graph
from rcsnn.ir.nodes import LIF, Synapse
from rcsnn.ir.passes import quantize
from rcsnn.ir.reference import quantize_core, simulate_fixed, simulate_float
from rcsnn.ir.serialize import from_attributes, graph_from_json, graph_to_json, load_graph, save_graph, to_attributes


def _rasters(graph, steps=150, seed=0):
    core = graph.arrays()
    x = core.input_currents(np.random.default_rng(seed).normal(0, 1.2, (steps, core.n_inputs)))
    return simulate_float(graph, x), simulate_fixed(graph, x)


def test_typed_graph_of_shared_core():
    graph = load_checkpoint(SMALL_CHECKPOINT)
    groups = graph.groups()
    assert [type(op) for _, op in groups] == [LIF] * 3 and graph.input.size == 64 and graph.output.size == 96
    synapses = graph.synapses()
    assert {s.matrix for *_, s in synapses} == {"T"} and len(graph.matrices) == 1  # shared T stored once
    assert all(isinstance(s, Synapse) and pre == post for pre, post, s in synapses)
    taus = [op.tau_steps for _, op in groups]
    assert taus == sorted(taus)
    g = to_attributes(graph)
    assert [g.nodes[n]["kind"] for n, _ in groups] == ["lif"] * 3 and "beta_q" not in g.nodes[groups[0][0]]


def test_builder_refuses_malformed_structure():
    g = Graph()
    with pytest.raises(RcsnnError, match="input port before"):
        g.add_group("a", LIF(2, 0.5, 1.0, "zero", np.zeros(2)), np.zeros((2, 1)))
    g.add_input(1)
    g.add_group("a", LIF(2, 0.5, 1.0, "zero", np.zeros(2)), np.zeros((2, 3)))
    g.add_output()
    with pytest.raises(RcsnnError, match=r"group 'a': input weight of shape \(2, 3\), expected \(2, 1\)"):
        g.validate("g")
    with pytest.raises(RcsnnError, match="reserved"):
        g.add_group("output", LIF(1, 0.5, 1.0, "zero", np.zeros(1)), np.zeros((1, 1)))


def test_quantize_pass_writes_the_reference_integers():
    graph = load_checkpoint(SMALL_CHECKPOINT)
    q = quantize(graph)
    ref = quantize_core(graph)
    assert q.passes == ["quantize"] and graph.passes == [] and "beta_q" not in graph.nx.nodes["g0"]
    for (name, _), sl in zip(graph.groups(), graph.arrays().offsets().values()):
        d = q.nx.nodes[name]
        assert d["beta_q"] == ref.beta_q[sl.start] and d["theta_q"] == ref.theta_q[sl.start]
        np.testing.assert_array_equal(d["bias_q"], ref.bias_q[sl])
    assert [q.nx.edges[pre, post]["alpha_q"] for pre, post, _ in graph.synapses()] == list(ref.alpha_q)


def test_partition_and_place_annotate_the_graph(tmp_path):
    graph = load_checkpoint(SMALL_CHECKPOINT)
    placed = place(graph, 4)
    assert placed.passes == ["quantize", "place"]
    image = build_image(placed)
    p = placed.annotation("place")
    assert p["lanes"] == 4 and p["n_words"] == image.slots.n_words and p["synapse_words"] == [len(e) for e in image.entries]
    assert [placed.annotation("place", n)["word_base"] for n, _ in graph.groups()] == list(image.slots.word_base)
    parted = partition(graph, 6)
    assert [parted.annotation("blocks", n) for n, _ in graph.groups()] == [[[0, 16], [16, 32]], [[32, 48], [48, 64]],
                                                                          [[64, 80], [80, 96]]]
    for annotated in (placed, parted):  # pass results survive a file round trip, byte for byte
        save_graph(annotated, tmp_path / "a.json")
        again = load_graph(tmp_path / "a.json")
        assert again.passes == annotated.passes
        save_graph(again, tmp_path / "b.json")
        assert (tmp_path / "a.json").read_bytes() == (tmp_path / "b.json").read_bytes()
    with pytest.raises(RcsnnError, match="not placed"):
        build_image(graph)


def test_cli_graph_after_each_pass(tmp_path, capsys):
    for name in ("quantize", "retime", "partition", "place"):
        out = tmp_path / f"{name}.json"
        assert main(["graph", str(SMALL_CHECKPOINT), "--after", name, "--lanes", "2", "--blocks", "3", "-o", str(out)]) == 0
        data = json.loads(out.read_text())
        assert name in data["graph"]["passes"]
        assert f"after {', '.join(data['graph']['passes'])}" in capsys.readouterr().out


@pytest.mark.parametrize("suffix", [".json", ".graphml"])
@pytest.mark.parametrize("kind", ["checkpoint", "cross"])
def test_round_trip_gives_the_same_raster(tmp_path, suffix, kind):
    graph = load_checkpoint(SMALL_CHECKPOINT) if kind == "checkpoint" else random_graph(seed=2, cross=True, shared=False)
    path = tmp_path / f"core{suffix}"
    save_graph(graph, path)
    again = load_graph(path)
    for a, b in zip(_rasters(graph), _rasters(again)):
        np.testing.assert_array_equal(a.spikes, b.spikes)
        np.testing.assert_array_equal(a.membranes, b.membranes)
    assert a.spikes.any()
    save_graph(again, tmp_path / f"again{suffix}")
    assert path.read_bytes() == (tmp_path / f"again{suffix}").read_bytes()


def _broken(mutate):
    g = to_attributes(quantize(random_graph(seed=1)))
    mutate(g)
    with pytest.raises(RcsnnError) as info:
        from_attributes(g, "g.json")
    return str(info.value)


def test_validation_names_the_problem():
    assert "'output'" in _broken(lambda g: g.remove_node("output"))
    assert "not ternary" in _broken(lambda g: g.graph["matrices"]["T"].__setitem__((0, 0), 3))
    assert "theta_q" in _broken(lambda g: g.nodes["g0"].__setitem__("theta_q", 1))
    assert "alpha_q" in _broken(lambda g: g.edges["g0", "g0"].__setitem__("alpha_q", 1))
    assert "beta" in _broken(lambda g: g.nodes["g1"].__setitem__("beta", 1.5))
    assert "unknown kind" in _broken(lambda g: g.add_node("mystery", kind="conv"))
    assert "not allowed" in _broken(lambda g: g.add_edge("input", "output", kind="input"))
    assert "version" in _broken(lambda g: g.graph.__setitem__("version", 7))
    assert "'neurons.bias'" in _broken(lambda g: g.nodes["g0"].__setitem__("bias", np.array([np.nan] * 12)))


def test_json_is_deterministic_and_rejects_garbage():
    graph = random_graph(seed=4)
    assert graph_to_json(to_attributes(graph)) == graph_to_json(to_attributes(random_graph(seed=4)))
    with pytest.raises(RcsnnError, match="not an rcsnn graph JSON"):
        graph_from_json("{nope", "x.json")
    assert isinstance(graph_from_json(graph_to_json(to_attributes(graph)), "x.json"), nx.DiGraph)
