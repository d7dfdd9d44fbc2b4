"""Multi-spike neurons (issue 10): Sinabs' default ``MultiSpike`` and Rockpool's default ``max_spikes_per_dt``.

Networks built with the frameworks' **default** spike functions, driven hard enough that a neuron
fires several spikes in one step, exported with their own exporters, read with ``--flavor`` (whose
default ``max_spikes`` is the framework's) give the framework's spike counts exactly; read with
``--max-spikes 1`` they differ (negative control). Both references are checked against the plain
contract (``contract_impl.contract_run``) on random cores with spike counts; the SPICE circuit carries
the counts (Sinabs' network verifies), and so does the digital core (tests/test_digital_counts.py); parts
built for one spike per step refuse such cores naming the group and the option.
"""

from __future__ import annotations

import json

import nir
import numpy as np
import pytest
import torch
from contract_impl import contract_run
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from strategies import build, specs
from test_frameworks import N_IN, _inputs, _need, rockpool_export, sinabs_export

from rcsnn.cli import main
from rcsnn.errors import RcsnnError
from rcsnn.frontends.load import load_core
from rcsnn.frontends.nir import nir_to_graph
from rcsnn.ir.arrays import FixedFormat
from rcsnn.ir.graph import Graph
from rcsnn.ir.nodes import LIF, UNBOUNDED, Synapse
from rcsnn.ir.raster import Raster
from rcsnn.ir.reference import simulate_fixed, simulate_float
from rcsnn.ir.serialize import load_graph, save_graph

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning")
PROPERTY = settings(max_examples=30, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])


def _sinabs(kind: str):
    """Sinabs LIF / IAF with the default spike function (MultiSpike: floor(v/θ) spikes, no limit)."""
    _need("sinabs")
    import sinabs.layers as sl

    torch.manual_seed(0)
    if kind == "lif":
        make = lambda n: sl.LIF(tau_mem=torch.linspace(3.0, 8.0, n), spike_threshold=torch.ones(n))  # noqa: E731
    else:
        make = lambda n: sl.IAF(spike_threshold=torch.ones(n))  # noqa: E731
    assert make(2).spike_fn.__name__ == "MultiSpike"  # the default, not chosen here
    net = torch.nn.Sequential(torch.nn.Linear(N_IN, 16), make(16), torch.nn.Linear(16, 10), make(10))
    with torch.no_grad():
        net[2].weight.mul_(3.0)
    return sinabs_export(net, _inputs(4.0, 3.0))


def _rockpool(kind: str):
    """Rockpool LIFTorch / LIFNeuronTorch with the default ``max_spikes_per_dt`` (2**16)."""
    _need("rockpool.nn.modules")
    from rockpool.nn.modules import LIFNeuronTorch, LIFTorch

    torch.manual_seed(0)
    if kind == "lif":
        make = lambda n: LIFTorch(n, tau_mem=0.02, tau_syn=0.01, threshold=1.0, dt=1e-3)  # noqa: E731
        u = _inputs(2.0, 0.0)
    else:
        make = lambda n: LIFNeuronTorch(n, tau_mem=0.01, dt=1e-3)  # noqa: E731
        u = _inputs(1.5, 0.0)
    assert int(make(2).max_spikes_per_dt) == 2**16  # the default, not chosen here
    return rockpool_export(make, u)


CASES = {("sinabs", "lif"): _sinabs, ("sinabs", "iaf"): _sinabs,
         ("rockpool", "lif"): _rockpool, ("rockpool", "lif_neuron"): _rockpool}


def _raster(graph: nir.NIRGraph, u: torch.Tensor, **kwargs) -> np.ndarray:
    core = nir_to_graph(graph, **kwargs).arrays()
    return simulate_float(core, core.input_currents(u.double().numpy())).spikes


@pytest.mark.parametrize("flavor,kind", list(CASES), ids=[f"{f}-{k}" for f, k in CASES])
def test_default_multi_spike_networks_import_exactly(flavor, kind):
    graph, u, spikes = CASES[flavor, kind](kind)
    assert (spikes > 1).sum() >= 10 and (spikes > 0).mean() >= 0.05  # counts > 1 occur, often
    assert np.array_equal(spikes, np.floor(spikes))
    core = nir_to_graph(graph, flavor=flavor).arrays()
    assert {g.max_spikes for g in core.groups} == {UNBOUNDED if flavor == "sinabs" else 2**16}
    got = _raster(graph, u, flavor=flavor)
    assert got.dtype == np.int32
    assert np.array_equal(got, spikes), f"{int((got != spikes).sum())} of {spikes.size} counts differ"
    binary = _raster(graph, u, flavor=flavor, max_spikes=1)  # negative control: binary spikes differ
    assert binary.max() == 1 and (binary != spikes).sum() >= 10
    top = int(spikes.max())
    capped = _raster(graph, u, flavor=flavor, max_spikes=top - 1)  # a lower limit clips the counts
    assert capped.max() == top - 1 and not np.array_equal(capped, spikes)


def test_multi_spike_through_rcsnn_run_and_info(tmp_path, capsys):
    graph, u, spikes = _sinabs("iaf")
    nir.write(str(tmp_path / "net.nir"), graph)
    np.save(tmp_path / "u.npy", u.double().numpy())
    args = ["run", str(tmp_path / "net.nir"), "--input", str(tmp_path / "u.npy"), "-o", str(tmp_path / "r.npz"),
            "--flavor", "sinabs"]
    assert main(args) == 0
    raster = Raster.load(tmp_path / "r.npz")
    assert raster.spikes.dtype == np.int32 and np.array_equal(raster.spikes, spikes)
    assert main([*args, "--max-spikes", "1"]) == 0
    binary = Raster.load(tmp_path / "r.npz").spikes
    assert binary.dtype == np.int8 and not np.array_equal(binary, spikes)
    capsys.readouterr()
    assert main(["info", str(tmp_path / "net.nir"), "--flavor", "sinabs", "--steps", "20"]) == 0
    assert "max_spikes unbounded" in capsys.readouterr().out
    assert main(["info", str(tmp_path / "net.nir"), "--flavor", "sinabs", "--max-spikes", "1", "--steps", "20"]) == 0
    assert "max_spikes" not in capsys.readouterr().out


def test_sinabs_multi_spike_verifies_in_spice(tmp_path):
    """Sinabs' LIF with its default MultiSpike, its own exporter, ``verify --backend spice --flavor sinabs``: the
    SPICE circuit carries the counts (tests/test_analog_counts.py has the negative controls)."""
    graph, u, spikes = _sinabs("lif")
    nir.write(str(tmp_path / "net.nir"), graph)
    np.save(tmp_path / "u.npy", u.double().numpy())
    assert (spikes > 1).sum() >= 10
    assert main(["verify", str(tmp_path / "net.nir"), "--flavor", "sinabs", "--input", str(tmp_path / "u.npy"),
                 "--backend", "spice", "--out", str(tmp_path / "out")]) == 0
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["verdict"] == "PASS" and report["figures"]["retimed"]["unskewed_differences"] == 0
    assert report["figures"]["decidable_mismatches"] == 0 and report["figures"]["membrane_violations"] == 0
    got = Raster.load(tmp_path / "out" / "spice_run.npz").spikes
    assert got.dtype == np.int32 and (got > 1).sum() >= 10


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["verilator", "spice"])
@pytest.mark.parametrize("flavor,kind", list(CASES), ids=[f"{f}-{k}" for f, k in CASES])
def test_default_multi_spike_networks_verify_in_hardware(tmp_path, flavor, kind, backend):
    """Each framework's network with its DEFAULT spike function (Sinabs MultiSpike, Rockpool 2**16 per step),
    written by its own exporter: the hardware carries the counts (the float raster equals the framework's:
    :func:`test_default_multi_spike_networks_import_exactly`)."""
    graph, u, spikes = CASES[flavor, kind](kind)
    nir.write(str(tmp_path / "net.nir"), graph)
    np.save(tmp_path / "u.npy", u.double().numpy())
    out = tmp_path / "out"
    assert main(["verify", str(tmp_path / "net.nir"), "--flavor", flavor, "--input", str(tmp_path / "u.npy"),
                 "--backend", backend, "--out", str(out)]) == 0
    raster = np.load(next(out.rglob("raster.npz")))["spikes"] if backend == "verilator" else \
        Raster.load(out / "spice_run.npz").spikes
    assert raster.dtype == np.int32 and (raster > 1).sum() >= 5  # the hardware emitted counts above 1


def test_digital_parts_without_counts_refuse_them(tmp_path, capsys):
    """The digital core carries counts (tests/test_digital_counts.py); the ECP5 estimate, whose model has no count
    divider, refuses the core in one line naming the group, its count limit and the option."""
    graph, _, _ = _sinabs("lif")
    nir.write(str(tmp_path / "net.nir"), graph)
    capsys.readouterr()
    assert main(["estimate", str(tmp_path / "net.nir"), "--flavor", "sinabs", "--lanes", "2"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "emits spike counts (up to" in err and "--max-spikes 1" in err, err
    assert "group '" in err
    assert main(["estimate", str(tmp_path / "net.nir"), "--flavor", "sinabs", "--lanes", "2", "--max-spikes", "1"]) == 0


def _with_counts(case, limits):
    """``specs``' core with each group's ``max_spikes`` from ``limits`` and currents strong enough for counts."""
    spec, x, fmt = case
    for g, limit in zip(spec["groups"], limits):
        g["max_spikes"] = limit
    return spec, 4.0 * x, fmt


COUNTS = st.tuples(specs(), st.lists(st.sampled_from([UNBOUNDED, 2, 3, 1]), min_size=3, max_size=3))


@PROPERTY
@given(COUNTS)
def test_references_with_spike_counts_are_the_contract(drawn):
    spec, x, fmt = _with_counts(*drawn)
    run = simulate_float(build(spec), x)
    spikes, membranes = contract_run(spec, x)
    np.testing.assert_array_equal(run.spikes, spikes)
    np.testing.assert_array_equal(run.membranes, membranes)  # to the last bit
    fixed = simulate_fixed(build(spec, fmt), x)
    spikes, membranes = contract_run(spec, x, (fmt.Wv, fmt.Fv, fmt.Fb, fmt.Ww))
    np.testing.assert_array_equal(fixed.spikes, spikes)
    np.testing.assert_array_equal(fixed.membranes, membranes)


def _counting_core(max_spikes: int, reset: str = "subtract_before_decay") -> Graph:
    """One group of 3 with a dense recurrent block, driven so that counts occur."""
    g = Graph(fixed=FixedFormat(Wv=20, Fv=8, Fb=10))
    g.add_input(1)
    g.add_group("a", LIF(3, 0.9, np.array([0.5, 0.7, 1.0]), reset, np.array([0.3, 1.1, 2.2]), max_spikes=max_spikes),
                np.ones((3, 1)))
    g.add_matrix("M", np.array([[0.0, 0.3, -0.2], [0.1, 0.0, 0.4], [-0.3, 0.25, 0.0]]), dense=True)
    g.add_synapse("a", "a", Synapse("M", 1.0, 1))
    g.add_output()
    return g.validate()


@pytest.mark.parametrize("reset", ["zero", "subtract", "subtract_before_decay", "zero_drop_input"])
def test_contract_negative_controls(reset):
    """The contract with counts is not the binary one, and a wrong limit is told apart, in both references."""
    x = np.random.default_rng(1).uniform(0.0, 2.0, (40, 3))
    spec = {"groups": [{"size": 3, "beta": [0.9] * 3, "theta": [0.5, 0.7, 1.0], "beta_syn": [0.0] * 3,
                        "bias": [0.3, 1.1, 2.2], "reset": reset, "current_delay": 0, "max_spikes": UNBOUNDED}],
            "blocks": [{"pre": 0, "post": 0, "delay": 1, "dense": True, "alpha": 1.0,
                        "matrix": np.array([[0.0, 0.3, -0.2], [0.1, 0.0, 0.4], [-0.3, 0.25, 0.0]])}]}
    currents = np.zeros((40, 3)) + x
    for fixed in (None, (20, 8, 10, 16)):
        run = (simulate_fixed if fixed else simulate_float)(_counting_core(UNBOUNDED, reset), currents)
        spikes, membranes = contract_run(spec, currents, fixed)
        assert run.spikes.max() > 1
        np.testing.assert_array_equal(run.spikes, spikes)
        np.testing.assert_array_equal(run.membranes, membranes)
        binary = (simulate_fixed if fixed else simulate_float)(_counting_core(1, reset), currents)
        assert binary.spikes.max() == 1 and not np.array_equal(binary.membranes, run.membranes)
        spec["groups"][0]["max_spikes"] = 2
        assert not np.array_equal(contract_run(spec, currents, fixed)[0], spikes)
        spec["groups"][0]["max_spikes"] = UNBOUNDED


def test_max_spikes_serialises_and_is_checked(tmp_path):
    for limit in (UNBOUNDED, 7):
        save_graph(_counting_core(limit), tmp_path / "c.json")
        assert f'"max_spikes": {limit}' in (tmp_path / "c.json").read_text()
        assert load_graph(tmp_path / "c.json").arrays().groups[0].max_spikes == limit
    save_graph(_counting_core(1), tmp_path / "c.json")  # the default is not written: old files are unchanged
    assert "max_spikes" not in (tmp_path / "c.json").read_text()
    for bad in (-1, True, 1.5):
        with pytest.raises(RcsnnError, match="group 'a': max_spikes"):
            _counting_core(bad).arrays()
    with pytest.raises(RcsnnError, match="--max-spikes apply only to NIR files"):  # an IR file records its own
        load_core(tmp_path / "c.json", max_spikes=2)
    with pytest.raises(RcsnnError, match="max_spikes=-2"):
        nir_to_graph(_sinabs("iaf")[0], flavor="sinabs", max_spikes=-2)


def test_fixed_verification_measures_count_margins(tmp_path):
    """``verify --backend fixed`` on spike counts: a count that differs lies at a boundary k·θ within the
    quantisation bound (measured from k·θ, not θ: from θ the margin would be about θ)."""
    import json

    graph, u, _ = _sinabs("lif")
    nir.write(str(tmp_path / "net.nir"), graph)
    np.save(tmp_path / "u.npy", u.double().numpy())
    assert main(["verify", str(tmp_path / "net.nir"), "--flavor", "sinabs", "--input", str(tmp_path / "u.npy"),
                 "--backend", "fixed", "--steps", "100", "--out", str(tmp_path / "out")]) == 0
    figures = json.loads((tmp_path / "out" / "fixed" / "report.json").read_text())["figures"]
    assert figures["differing_events"] >= 1
    assert figures["differing_margin_max"] <= figures["interval_width_max"] < 0.1


def test_nir_export_records_counts_and_targets_refuse_them():
    from rcsnn.frontends.nir_export import graph_to_nir

    nodes = graph_to_nir(_counting_core(3)).nodes
    assert [n.metadata["rcsnn"].get("max_spikes") for n in nodes.values() if isinstance(n, nir.LIF)] == [3]
    binary = graph_to_nir(_counting_core(1)).nodes
    assert all("max_spikes" not in n.metadata["rcsnn"] for n in binary.values() if isinstance(n, nir.LIF))
    with pytest.raises(RcsnnError, match="group 'a' .*max_spikes 3"):
        graph_to_nir(_counting_core(3, "zero"), target="snntorch")
