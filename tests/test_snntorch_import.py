"""snnTorch -> core: an RLeaky's own raster must equal the float64 reference of the imported core."""

from __future__ import annotations

import nir
import numpy as np
import pytest
import torch

snn = pytest.importorskip("snntorch")
from snntorch.export_nir import export_to_nir  # noqa: E402

from rcsnn.errors import RcsnnError  # noqa: E402
from rcsnn.frontends.nir import nir_to_graph, read_nir, write_nir  # noqa: E402
from rcsnn.frontends.snntorch import graph_from_rleaky, load_state_dict_file  # noqa: E402
from rcsnn.ir.graph import Graph  # noqa: E402
from rcsnn.ir.reference import simulate_float  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore:nirtorch.extract_nir_graph is being deprecated:DeprecationWarning")

N_IN, N, STEPS, ALPHA = 4, 16, 150, 0.35
SNNTORCH_DT = 1e-4  # what snntorch.export_to_nir hard-codes


def _net(all_to_all=True, reset_mechanism="subtract", seed=0):
    """nn.Sequential(Linear, RLeaky) with recurrent weights ALPHA * ternary (and a recurrent bias)."""
    torch.manual_seed(seed)
    if all_to_all:
        rleaky = snn.RLeaky(beta=0.85, linear_features=N, reset_mechanism=reset_mechanism, init_hidden=True, output=True)
        with torch.no_grad():
            rleaky.recurrent.weight.copy_(ALPHA * torch.randint(-1, 2, (N, N)) * (torch.rand(N, N) < 0.4))
            rleaky.recurrent.bias.normal_(0.0, 0.1)
    else:
        v = ALPHA * torch.tensor([1.0, -1.0, 0.0, 1.0] * (N // 4))
        rleaky = snn.RLeaky(beta=0.7, V=v, all_to_all=False, reset_mechanism=reset_mechanism, init_hidden=True, output=True)
    return torch.nn.Sequential(torch.nn.Linear(N_IN, N), rleaky)


def _run(net):
    """snnTorch's own raster (float32, as users run it), the RLeaky's input currents and the inputs."""
    inputs = torch.randn(STEPS, 1, N_IN, generator=torch.Generator().manual_seed(1)) * 1.5
    net[1].reset_mem()
    with torch.no_grad():
        spikes = torch.stack([net(inputs[t])[0] for t in range(STEPS)])[:, 0].numpy()
        currents = net[0](inputs[:, 0]).double().numpy()
    assert 0.05 < spikes.mean() < 0.6, spikes.mean()  # the network spikes, so a wrong import would show
    return spikes, currents, inputs[:, 0].double().numpy()


def _simulate(core, inputs):
    return simulate_float(core, core.input_currents(inputs)).spikes


# snnTorch runs in float32 (a float64 RLeaky fails: its spikes are always float32), the
# reference in float64: rasters could differ only where v is within float32 rounding
# (~1e-7 |v|) of theta; these seeded runs have no such event.


@pytest.mark.parametrize("all_to_all", [True, False])
def test_export_to_nir_matches_snntorch(tmp_path, all_to_all):
    net = _net(all_to_all)
    spikes, _, inputs = _run(net)
    graph = export_to_nir(net, torch.randn(N_IN))
    core = nir_to_graph(graph, SNNTORCH_DT, "subtract").arrays()
    assert len(core.groups) == 1 and len(core.synapses) == 1
    assert np.array_equal(_simulate(core, inputs), spikes)
    write_nir(Graph.from_arrays(core), tmp_path / "core.nir")  # and the core survives our own round trip
    assert np.array_equal(_simulate(read_nir(tmp_path / "core.nir", SNNTORCH_DT, "subtract").arrays(), inputs), spikes)


def _nested(flat):
    """snnTorch's older nested form: the RLeaky as a sub-NIRGraph input/lif/w_rec/output."""
    sub = nir.NIRGraph(
        nodes={"input": nir.Input(np.array([N])), "lif": flat.nodes["1.lif"], "w_rec": flat.nodes["1.w_rec"],
               "output": nir.Output(np.array([N]))},
        edges=[("input", "lif"), ("lif", "w_rec"), ("w_rec", "lif"), ("lif", "output")],
    )
    nodes = {"input": flat.nodes["input"], "0": flat.nodes["0"], "1": sub, "output": flat.nodes["output"]}
    return nir.NIRGraph(nodes=nodes, edges=[("input", "0"), ("0", "1"), ("1", "output")])


def test_nested_rleaky_graph_matches_snntorch(tmp_path):
    net = _net()
    spikes, _, inputs = _run(net)
    nested = _nested(export_to_nir(net, torch.randn(N_IN)))
    nir.write(str(tmp_path / "nested.nir"), nested)
    core = read_nir(tmp_path / "nested.nir", SNNTORCH_DT, "subtract").arrays()
    assert [g.name for g in core.groups] == ["1_lif"]
    assert np.array_equal(_simulate(core, inputs), spikes)

    nested.nodes["1"].nodes["w_rec"].weight[0, :5] = np.arange(1.0, 6.0)  # not alpha*T: stored dense (issue 10)
    dense = nir_to_graph(nested, SNNTORCH_DT, "subtract").arrays()
    assert dense.is_dense(dense.synapses[0].matrix) and dense.matrices[dense.synapses[0].matrix][0, 4] == 5.0


@pytest.mark.parametrize("all_to_all", [True, False])
def test_graph_from_rleaky_matches_snntorch(tmp_path, all_to_all):
    net = _net(all_to_all)
    spikes, currents, _ = _run(net)
    core = graph_from_rleaky(net[1]).arrays()
    assert np.array_equal(core.input_weight, np.eye(N))
    assert np.array_equal(simulate_float(core, currents).spikes, spikes)

    torch.save(net.state_dict(), tmp_path / "net.pt")  # prefixed keys "1.beta", ...
    state = load_state_dict_file(tmp_path / "net.pt")
    assert np.array_equal(simulate_float(graph_from_rleaky(state, where="net.pt"), currents).spikes, spikes)


def test_state_dict_from_safetensors(tmp_path):
    from safetensors.torch import save_file

    net = _net()
    spikes, currents, _ = _run(net)
    save_file({k: v.contiguous() for k, v in net[1].state_dict().items()}, str(tmp_path / "rleaky.safetensors"))
    core = graph_from_rleaky(load_state_dict_file(tmp_path / "rleaky.safetensors"), beta=0.85).arrays()
    assert np.array_equal(simulate_float(core, currents).spikes, spikes)


def _refused(obj, *words, **kwargs):
    with pytest.raises(RcsnnError) as info:
        graph_from_rleaky(obj, **kwargs)
    message = str(info.value)
    assert "\n" not in message and all(w in message for w in words), message


def test_refusals():
    _refused(_net(reset_mechanism="zero")[1], "'reset_mechanism_val'", "differs", reset="subtract")
    state = _net()[1].state_dict()
    _refused({**state, "reset_mechanism_val": torch.tensor(2)}, "'reset_mechanism_val'", "none")
    _refused({**state, "graded_spikes_factor": torch.tensor(2.0)}, "'graded_spikes_factor'", "graded")
    _refused({**state, "beta": torch.tensor(1.0)}, "'beta'", "outside (0, 1)")
    _refused({k: v for k, v in state.items() if k != "threshold"}, "'threshold'", "missing")
    _refused(state, "'beta'", "differs", beta=0.5)
    _refused(snn.Leaky(beta=0.9), "Leaky", "not an snntorch.RLeaky")
    _refused(snn.RLeaky(beta=0.9, linear_features=N, reset_delay=False), "reset_delay=False")


def test_load_state_dict_file_never_unpickles(tmp_path):
    torch.save(torch.nn.Linear(2, 2), tmp_path / "module.pt")  # a whole pickled module, not a state_dict
    with pytest.raises(RcsnnError, match="module.pt: cannot load a state_dict"):
        load_state_dict_file(tmp_path / "module.pt")
    torch.save({"w": torch.ones(2), "step": 3}, tmp_path / "mixed.pt")
    with pytest.raises(RcsnnError, match="mixed.pt: key 'step' is a int, not a tensor"):
        load_state_dict_file(tmp_path / "mixed.pt")


@pytest.mark.parametrize("reset", ["subtract", "zero"])
def test_leaky_without_recurrence(reset):
    # snnTorch's Leaky (unlike RLeaky) implements zero reset as mem = (1 - reset) * mem before
    # the leak, which is the contract's zero reset, so both modes map. (With scalar beta and
    # threshold, export_to_nir itself fails NIR's type inference, hence per-neuron tensors.)
    torch.manual_seed(2)
    leaky = snn.Leaky(beta=torch.full((N,), 0.8), threshold=torch.ones(N), reset_mechanism=reset, init_hidden=True,
                      output=True)
    net = torch.nn.Sequential(torch.nn.Linear(N_IN, N), leaky)
    spikes, _, inputs = _run(net)
    core = nir_to_graph(export_to_nir(net, torch.randn(N_IN)), SNNTORCH_DT, reset).arrays()
    assert [(g.size, len(core.synapses)) for g in core.groups] == [(N, 0)]
    assert np.array_equal(_simulate(core, inputs), spikes)


def test_feed_forward_layers_match_snntorch():
    """Linear -> Leaky -> Linear (ternary) -> Leaky: the second layer sees the first's spikes of the same step."""
    torch.manual_seed(2)
    hidden = torch.nn.Linear(N, N, bias=True)
    with torch.no_grad():
        hidden.weight.copy_(0.6 * torch.randint(-1, 2, (N, N)) * (torch.rand(N, N) < 0.5))
    net = torch.nn.Sequential(
        torch.nn.Linear(N_IN, N), snn.Leaky(beta=torch.full((N,), 0.8), threshold=torch.ones(N), init_hidden=True),
        hidden, snn.Leaky(beta=torch.full((N,), 0.6), threshold=torch.full((N,), 0.7), init_hidden=True, output=True),
    )
    inputs = torch.randn(STEPS, 1, N_IN, generator=torch.Generator().manual_seed(3)) * 1.5
    with torch.no_grad():
        first = []
        hook = net[1].register_forward_hook(lambda _m, _i, out: first.append(out))
        second = torch.stack([net(inputs[t])[0] for t in range(STEPS)])[:, 0].numpy()
        hook.remove()
    first = torch.stack(first)[:, 0].numpy()
    assert 0.05 < first.mean() < 0.6 and 0.05 < second.mean() < 0.6
    core = nir_to_graph(export_to_nir(net, torch.randn(N_IN)), SNNTORCH_DT, "subtract").arrays()
    assert [s.delay for s in core.synapses] == [0]
    raster = _simulate(core, inputs[:, 0].double().numpy())
    assert (raster[:, :N] != first).sum() == 0, "first layer"
    assert (raster[:, N:] != second).sum() == 0, "second layer"
