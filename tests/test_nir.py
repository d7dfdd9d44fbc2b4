"""NIR export/import: round trips through .nir files, NIR's LIF semantics, refusals."""

from __future__ import annotations

import dataclasses

import nir
import numpy as np
import pytest
from conftest import random_core

from rcsnn.errors import RcsnnError
from rcsnn.frontends.nir import graph_to_nir, nir_to_graph, read_nir, write_nir
from rcsnn.ir.graph import Graph
from rcsnn.ir.reference import simulate_float


def _with_readout(core, seed=0):
    rng = np.random.default_rng(seed)
    return dataclasses.replace(core, readout_weight=rng.normal(size=(3, core.n_neurons)), readout_bias=rng.normal(size=3))


def _rasters(a, b, steps=200, seed=1):
    x = np.random.default_rng(seed).normal(0.0, 1.0, (steps, a.n_inputs))
    return simulate_float(a, a.input_currents(x)), simulate_float(b, b.input_currents(x))


@pytest.mark.parametrize("reset", ["zero", "subtract"])
def test_round_trip_is_exact_for_dyadic_dt_and_beta(tmp_path, reset):
    # dt = 2**-10 and 1 - beta = 2**-k make tau = dt/(1-beta), r = tau/dt, beta = 1 - dt/tau
    # and the gain r*dt/tau exact, so every parameter comes back bit for bit.
    core = random_core(seed=3, resets=(reset, reset))
    groups = tuple(dataclasses.replace(g, beta=b) for g, b in zip(core.groups, (0.75, 0.9375)))
    core = _with_readout(dataclasses.replace(core, groups=groups, dt=2.0**-10))
    write_nir(Graph.from_arrays(core), tmp_path / "core.nir")
    back = read_nir(tmp_path / "core.nir", dt=core.dt, reset=reset).arrays()
    assert back.groups == core.groups and back.synapses == core.synapses
    assert list(back.matrices) == ["T"] and np.array_equal(back.matrices["T"], core.matrices["T"])
    for key in ("bias", "input_weight", "readout_weight", "readout_bias"):
        assert np.array_equal(getattr(back, key), getattr(core, key)), key
    ref, run = _rasters(core, back)
    assert 0.05 < ref.spikes.mean() < 0.6
    assert np.array_equal(ref.spikes, run.spikes) and np.array_equal(ref.membranes, run.membranes)


@pytest.mark.parametrize("reset", ["zero", "subtract"])
def test_round_trip_rasters_equal_for_any_beta(tmp_path, reset):
    # Generic beta: 1 - dt/tau and r*dt/tau come back within an ulp (often exactly). A spike
    # could only flip if v came within ~1e-15 of theta; random float inputs never do, so no
    # margin filtering is needed and the rasters must be equal.
    core = random_core(seed=4, resets=(reset, reset))
    write_nir(Graph.from_arrays(core), tmp_path / "core.nir")
    back = read_nir(tmp_path / "core.nir", dt=core.dt, reset=reset).arrays()
    assert [g.name for g in back.groups] == ["g0", "g1"]
    for a, b in zip(core.groups, back.groups):
        assert abs(a.beta - b.beta) <= 4e-16 and a.theta == b.theta
    ref, run = _rasters(core, back)
    assert ref.spikes.sum() > 100
    assert np.array_equal(ref.spikes, run.spikes)


def test_export_structure_and_determinism(tmp_path):
    core = _with_readout(random_core(seed=5))
    graph = graph_to_nir(Graph.from_arrays(core))
    assert sorted(graph.nodes) == sorted(["input", "in_g0", "in_g1", "lif_g0", "lif_g1", "rec_g0_g0", "rec_g1_g1",
                                          "out_g0", "out_g1", "ro_g0", "ro_g1", "readout"])
    lif, g = graph.nodes["lif_g1"], core.groups[1]
    assert np.allclose(lif.tau, core.dt / (1 - g.beta)) and np.allclose(lif.r, lif.tau / core.dt)
    assert not lif.v_leak.any() and not lif.v_reset.any() and (lif.v_threshold == g.theta).all()
    write_nir(Graph.from_arrays(core), tmp_path / "a.nir")
    write_nir(Graph.from_arrays(core), tmp_path / "b.nir")
    assert (tmp_path / "a.nir").read_bytes() == (tmp_path / "b.nir").read_bytes()


def _lif(n, tau=2e-3, r=None, v_leak=0.0, theta=1.0, v_reset=0.0):
    full = lambda v: np.broadcast_to(np.asarray(v, dtype=float), (n,)).copy()  # noqa: E731
    tau = full(tau)
    r = tau / 1e-3 if r is None else full(r)
    return nir.LIF(tau=tau, r=r, v_leak=full(v_leak), v_threshold=full(theta), v_reset=full(v_reset))


def _graph(nodes, edges):
    return nir.NIRGraph(nodes=nodes, edges=edges, type_check=False)


def _recurrent_graph(lif, w_rec, n_in=3, seed=0):
    rng = np.random.default_rng(seed)
    n = w_rec.shape[0]
    nodes = {"input": nir.Input(np.array([n_in])), "fc": nir.Affine(rng.normal(size=(n, n_in)), rng.normal(0, 0.1, n)),
             "lif": lif, "w_rec": nir.Affine(w_rec, rng.normal(0, 0.1, n)), "output": nir.Output(np.array([n]))}
    return _graph(nodes, [("input", "fc"), ("fc", "lif"), ("lif", "w_rec"), ("w_rec", "lif"), ("lif", "output")])


def _ternary(n, alpha, seed=0):
    rng = np.random.default_rng(seed)
    return alpha * rng.choice([-1.0, 0.0, 1.0], size=(n, n), p=[0.25, 0.5, 0.25])


def test_gain_and_leak_follow_nir_euler_step():
    """Zero reset is NIR's own reset to v_reset = 0: check against a direct Euler loop of
    tau dv/dt = (v_leak - v) + r I with r*dt/tau != 1 and v_leak != 0."""
    n, dt = 8, 1e-3
    tau, r, v_leak = np.linspace(3e-3, 6e-3, n), 0.5 + np.arange(n) % 2, 0.3
    w_rec = _ternary(n, 0.4) / (r * dt / tau)[:, None]  # alpha*T once the gain is folded in
    graph = _recurrent_graph(_lif(n, tau=tau, r=r, v_leak=v_leak), w_rec)
    core = nir_to_graph(graph, dt, "zero").arrays()
    assert len(core.groups) == 1 and np.shape(core.groups[0].beta) == (n,)  # every neuron has its own tau
    u = np.random.default_rng(2).normal(0, 2.0, (150, 3))
    run = simulate_float(core, core.input_currents(u))
    fc, rec = graph.nodes["fc"], graph.nodes["w_rec"]
    v, s, spikes = np.zeros(n), np.zeros(n), []
    for t in range(len(u)):
        current = fc.weight @ u[t] + fc.bias + rec.weight @ s + rec.bias
        v = v * (1 - s)  # reset to v_reset = 0 after a spike
        v = v + dt / tau * (v_leak - v + r * current)
        s = (v > 1.0).astype(float)
        spikes.append(s)
    assert 0 < run.spikes.sum() < run.spikes.size
    assert np.array_equal(run.spikes, np.array(spikes))


def test_per_neuron_parameters_stay_per_neuron_and_scalars_broadcast():
    tau = np.array([2e-3] * 4 + [5e-3] * 6)
    core = nir_to_graph(_recurrent_graph(_lif(10, tau=tau), _ternary(10, 0.25)), 1e-3, "subtract").arrays()
    assert [g.name for g in core.groups] == ["lif"]
    assert np.array_equal(core.per_neuron("beta"), [0.5] * 4 + [0.8] * 6)
    (block,) = core.synapses
    assert (block.pre, block.post) == ("lif", "lif")
    assert np.allclose(np.abs(core.block_weights(block).value), 0.25, rtol=1e-12, atol=0)  # gain r*dt/tau = 1 (ulp)
    for shape in [(), (1,)]:  # snnTorch's Leaky writes 0-d parameters
        one = np.ones(shape)
        scalar = nir.LIF(tau=2e-3 * one, r=2 * one, v_leak=0 * one, v_threshold=one, v_reset=0 * one)
        core = nir_to_graph(_recurrent_graph(scalar, _ternary(7, 0.5)), 1e-3, "zero").arrays()
        assert [(g.size, g.beta) for g in core.groups] == [(7, 0.5)]


def _refused(graph, *words, reset="subtract", dt=1e-3):
    with pytest.raises(RcsnnError) as info:
        nir_to_graph(graph, dt, reset)
    message = str(info.value)
    assert "\n" not in message and all(w in message for w in words), message


def test_dense_weights_are_stored_dense_and_ternary_ones_ternary():
    w = np.random.default_rng(0).normal(size=(5, 5))
    core = nir_to_graph(_recurrent_graph(_lif(5, r=1.0), w), 1e-3, "subtract").arrays()
    (block,) = core.synapses
    assert core.is_dense(block.matrix) and block.alpha == 1.0
    assert np.array_equal(core.matrices[block.matrix], w * 0.5)  # the gain r*dt/tau = 0.5 folded in
    core = nir_to_graph(_recurrent_graph(_lif(5, r=1.0), _ternary(5, 0.6)), 1e-3, "subtract").arrays()
    assert not core.is_dense(core.synapses[0].matrix) and core.synapses[0].alpha == 0.3


def test_refuses_unsupported_nodes():
    graph = _recurrent_graph(_lif(4), _ternary(4, 1.0))
    one = np.ones(4)
    graph.nodes["lif"] = nir.LI(tau=one, r=one, v_leak=0 * one)
    _refused(graph, "'lif'", "LI", "supported")


def test_feed_forward_lif_chain_is_same_step():
    n = 4
    nodes = {"input": nir.Input(np.array([n])), "a": _lif(n), "ab": nir.Linear(0.5 * np.eye(n)), "b": _lif(n),
             "output": nir.Output(np.array([n]))}
    core = nir_to_graph(_graph(nodes, [("input", "a"), ("a", "ab"), ("ab", "b"), ("b", "output")]), 1e-3, "zero").arrays()
    assert [(s.pre, s.post, s.delay) for s in core.synapses] == [("a", "b", 0)]


def test_accepts_two_lif_cycle_with_one_step_delay():
    n = 3
    nodes = {"input": nir.Input(np.array([n])), "a": _lif(n), "ab": nir.Linear(np.eye(n)), "b": _lif(n, theta=0.5),
             "ba": nir.Linear(-2 * np.eye(n)), "output": nir.Output(np.array([n]))}
    edges = [("input", "a"), ("a", "ab"), ("ab", "b"), ("b", "ba"), ("ba", "a"), ("b", "output")]
    core = nir_to_graph(_graph(nodes, edges), 1e-3, "zero").arrays()
    assert [(s.pre, s.post, s.alpha) for s in core.synapses] == [("a", "b", 1.0), ("b", "a", 2.0)]


def test_refuses_v_reset_and_bad_tau_and_two_inputs():
    _refused(_recurrent_graph(_lif(4, v_reset=0.2), _ternary(4, 1.0)), "'lif'", "v_reset", reset="zero")
    _refused(_recurrent_graph(_lif(4, tau=1e-4), _ternary(4, 1.0)), "'lif'", "tau", "dt")
    graph = _recurrent_graph(_lif(4), _ternary(4, 1.0))
    graph.nodes["input2"] = nir.Input(np.array([4]))
    graph.edges.append(("input2", "lif"))
    _refused(graph, "Input nodes", "input2")


def test_export_refuses_delays_nir_cannot_express():
    with pytest.raises(RcsnnError, match="g0->g1 have delay 1"):
        graph_to_nir(Graph.from_arrays(random_core(cross=True)))


def test_read_nir_names_the_file(tmp_path):
    path = tmp_path / "broken.nir"
    path.write_bytes(b"not hdf5")
    with pytest.raises(RcsnnError, match="broken.nir"):
        read_nir(path, 1e-3, "zero")


@pytest.mark.parametrize("reset", ["subtract_before_decay", "zero_drop_input"])
def test_round_trip_of_if_cubalif_and_per_neuron_groups(tmp_path, reset):
    # IF (beta = 1): r = 1/dt; CubaLIF: tau_syn = dt/(1-beta_syn), w_in = tau_syn/dt; per-neuron beta
    # and theta; dyadic values, so every parameter comes back bit for bit; and the metadata.
    core = random_core(seed=6, resets=(reset, reset))
    g0, g1 = core.groups
    per_neuron = 1.0 - 2.0 ** -np.arange(1, g1.size + 1).clip(max=6)
    groups = (dataclasses.replace(g0, beta=1.0, theta=2.0),
              dataclasses.replace(g1, beta=per_neuron, theta=np.linspace(0.5, 1.0, g1.size), beta_syn=0.75))
    core = dataclasses.replace(core, groups=groups, dt=2.0**-10)
    assert [g.kind for g in core.groups] == ["IF", "CubaLIF"]
    write_nir(Graph.from_arrays(core), tmp_path / "core.nir")
    read = nir.read(str(tmp_path / "core.nir"))
    assert [type(read.nodes[k]).__name__ for k in ("lif_g0", "lif_g1")] == ["IF", "CubaLIF"]
    assert read.nodes["lif_g1"].metadata["rcsnn"]["reset"] == reset
    back = read_nir(tmp_path / "core.nir", dt=core.dt, reset=reset).arrays()
    assert back.groups == core.groups
    ref, run = _rasters(core, back)
    assert 0.02 < ref.spikes.mean() < 0.6
    assert np.array_equal(ref.spikes, run.spikes)
    delayed = dataclasses.replace(core, groups=(g0, dataclasses.replace(groups[1], current_delay=1)))
    with pytest.raises(RcsnnError, match="group 'g1': current_delay 1"):  # negative control: NIR cannot say it
        graph_to_nir(Graph.from_arrays(delayed))
