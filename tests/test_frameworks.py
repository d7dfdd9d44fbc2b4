"""Networks built IN each SNN framework, exported by ITS OWN NIR exporter, read with ``--flavor NAME``.

The framework's own forward pass (float32, as users run it) gives the reference raster; rcsnn's
float64 reference of the imported core must equal it spike for spike, with arbitrary dense
weights (``nn.Linear``'s default initialisation, not ternary). Reading the same file with any
other flavour must be refused or give a different raster (negative control). The frameworks
are the ``frameworks`` extra (``tools/setup.sh`` installs it); a missing one fails with the
install command instead of skipping.
"""

from __future__ import annotations

import importlib
import warnings
from dataclasses import replace

import nir
import numpy as np
import pytest
import torch

from rcsnn.cli import main
from rcsnn.errors import RcsnnError
from rcsnn.frontends.flavors import FLAVORS
from rcsnn.frontends.nir import EXPORT_TARGETS, graph_to_nir, nir_to_graph
from rcsnn.ir.arrays import Core, NeuronGroup, SynapseBlock
from rcsnn.ir.graph import Graph
from rcsnn.ir.raster import Raster
from rcsnn.ir.reference import simulate_float
from rcsnn.ir.serialize import save_graph

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning")

STEPS, N_IN = 150, 5
INSTALL = "bash tools/setup.sh (or: .venv/bin/pip install --no-deps -e '.[frameworks]' loguru pbr tqdm)"


def _need(module: str):
    """Import a framework module, or fail naming the install command (CI must have them)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return importlib.import_module(module)
    except ImportError as exc:
        pytest.fail(f"{module} is not installed ({exc}); install the test frameworks: {INSTALL}")


def _inputs(scale: float, offset: float, seed: int = 0) -> torch.Tensor:
    return torch.randn(STEPS, N_IN, generator=torch.Generator().manual_seed(seed)) * scale + offset


def _amplify(linear: torch.nn.Module, factor: float) -> None:
    """Scale a layer's (random, dense) weights so that the next layer fires too."""
    with torch.no_grad():
        linear.weight.mul_(factor)


def _stepwise(layers, u, call):
    """Run ``Linear, neuron, Linear, neuron, ...`` one step at a time; spikes of every neuron layer."""
    rows = []
    with torch.no_grad():
        for t in range(STEPS):
            x, out = u[t:t + 1], []
            for k in range(0, len(layers), 2):
                x = call(k + 1, layers[k](x))
                out.append(x)
            rows.append(torch.cat(out, 1)[0])
    return torch.stack(rows).numpy()


# --------------------------------------------------------------------------- the frameworks


def _snntorch(kind: str):
    snn = _need("snntorch")
    from snntorch.export_nir import export_to_nir

    torch.manual_seed(0)
    full = lambda n, v: torch.full((n,), v)  # noqa: E731 (its exporter needs per-neuron parameters)
    if kind == "leaky":
        net = torch.nn.Sequential(torch.nn.Linear(N_IN, 16), snn.Leaky(beta=full(16, 0.9), threshold=full(16, 1.0),
                                                                       init_hidden=True),
                                  torch.nn.Linear(16, 10), snn.Leaky(beta=torch.rand(10) * 0.5 + 0.4,
                                                                     threshold=full(10, 0.7), init_hidden=True))
        u = _inputs(0.8, 0.3)
    elif kind == "rsynaptic":  # a recurrent CubaLIF (RSynaptic) with dense weights
        net = torch.nn.Sequential(torch.nn.Linear(N_IN, 12), snn.RSynaptic(alpha=0.7, beta=0.85, linear_features=12,
                                                                           init_hidden=True))
        u = _inputs(0.3, 0.0)
    else:  # Synaptic (CubaLIF) into a recurrent RLeaky with dense weights
        net = torch.nn.Sequential(torch.nn.Linear(N_IN, 12), snn.Synaptic(alpha=full(12, 0.8), beta=full(12, 0.9),
                                                                          threshold=full(12, 1.0), init_hidden=True),
                                  torch.nn.Linear(12, 8), snn.RLeaky(beta=0.85, linear_features=8, init_hidden=True))
        u = _inputs(0.4, 0.0)
    for m in net:
        if hasattr(m, "reset_mem"):
            m.reset_mem()
    spikes = _stepwise(net, u, lambda k, x: net[k](x))
    return export_to_nir(net, torch.randn(N_IN)), u, spikes


def _norse(kind: str):
    norse = _need("norse.torch")
    torch.manual_seed(0)
    if kind == "lifbox":
        p, cell = norse.LIFBoxParameters(tau_mem_inv=torch.tensor(100.0), v_th=torch.tensor(0.3)), norse.LIFBoxCell
    elif kind == "iaf":  # IF: v += I, no dt
        p, cell = norse.IAFParameters(v_th=torch.tensor(1.0)), norse.IAFCell
    else:
        p = norse.LIFParameters(tau_mem_inv=torch.tensor(100.0), tau_syn_inv=torch.tensor(200.0), v_th=torch.tensor(0.3))
        cell = norse.LIFCell
    net = norse.SequentialState(torch.nn.Linear(N_IN, 16), cell(p), torch.nn.Linear(16, 10), cell(p))
    _amplify(net[2], 3.0)
    u = {"lifbox": _inputs(2.0, 1.5), "iaf": _inputs(0.8, 0.2)}.get(kind, _inputs(1.0, 0.3))
    states = {}

    def call(k, x):
        z, states[k] = net[k](x, states.get(k))
        return z

    spikes = _stepwise(net, u, call)
    return norse.to_nir(net, torch.randn(1, N_IN)), u, spikes  # its default dt = 1e-3, the cells' too


def _spikingjelly(kind: str):
    _need("spikingjelly.activation_based.neuron")
    from spikingjelly.activation_based import functional, layer, neuron
    from spikingjelly.activation_based.nir_exchange import export_to_nir

    torch.manual_seed(0)
    make, u, factor = {
        "lif": (lambda: neuron.LIFNode(tau=3.0), _inputs(3.0, 1.5), 5.0),
        "lif_no_decay_input": (lambda: neuron.LIFNode(tau=4.0, decay_input=False, v_threshold=2.0), _inputs(1.5, 0.8),
                               4.0),
        "if": (lambda: neuron.IFNode(v_threshold=1.5), _inputs(1.5, 0.5), 1.0),
    }[kind]
    net = torch.nn.Sequential(layer.Linear(N_IN, 16), make(), layer.Linear(16, 10), make())
    _amplify(net[2], factor)
    functional.reset_net(net)
    spikes = _stepwise(net, u, lambda k, x: net[k](x))
    functional.reset_net(net)
    return export_to_nir(net, torch.randn(1, N_IN)), u, spikes


def sinabs_export(net, u: torch.Tensor):
    """Sinabs' own forward pass of ``Linear, neuron, Linear, neuron`` (whole sequences: batch, time,
    features) and its own NIR export: ``(graph, u, spikes)``."""
    from sinabs.nir import to_nir

    with torch.no_grad():
        first = net[1](net[0](u[None]))
        spikes = torch.cat([first, net[3](net[2](first))], 2)[0].numpy()
    return to_nir(net, torch.randn(1, 1, N_IN)), u, spikes


def rockpool_export(make, u: torch.Tensor):
    """Rockpool's ``Linear, make(16), Linear, make(10)``: its own forward pass and NIR export, ``(graph, u, spikes)``."""
    from rockpool.nn.combinators import Sequential
    from rockpool.nn.modules import LinearTorch
    from rockpool.nn.modules.torch.nir import to_nir

    net = Sequential(LinearTorch((N_IN, 16)), make(16), LinearTorch((16, 10)), make(10))
    net.reset_state()
    with torch.no_grad():
        first, _, _ = net[1](net[0](u[None])[0])
        second, _, _ = net[3](net[2](first)[0])
    return to_nir(net), u, torch.cat([first, second], 2)[0].numpy()


def _sinabs(kind: str):
    _need("sinabs")
    import sinabs.layers as sl
    from sinabs.activation import SingleSpike

    torch.manual_seed(0)
    if kind == "lif":
        make = lambda n: sl.LIF(tau_mem=torch.linspace(3.0, 8.0, n), spike_threshold=torch.ones(n),  # noqa: E731
                                spike_fn=SingleSpike)
        u = _inputs(4.0, 3.0)
    else:
        make = lambda n: sl.IAF(spike_threshold=torch.tensor(2.0), spike_fn=SingleSpike)  # noqa: E731
        u = _inputs(1.0, 0.3)
    net = torch.nn.Sequential(torch.nn.Linear(N_IN, 16), make(16), torch.nn.Linear(16, 10), make(10))
    _amplify(net[2], 6.0 if kind == "lif" else 1.0)
    return sinabs_export(net, u)


def _rockpool(kind: str):
    _need("rockpool.nn.modules")
    from rockpool.nn.modules import LIFNeuronTorch, LIFTorch

    torch.manual_seed(0)
    if kind == "lif":  # LIFTorch: a synaptic current (NIR CubaLIF); binary spikes need max_spikes_per_dt=1
        make = lambda n: LIFTorch(n, tau_mem=0.02, tau_syn=0.01, threshold=4.0, max_spikes_per_dt=1, dt=1e-3)  # noqa: E731
        u = _inputs(0.5, 0.0)
    else:
        make = lambda n: LIFNeuronTorch(n, tau_mem=0.01, dt=1e-3, max_spikes_per_dt=1)  # noqa: E731
        u = _inputs(0.6, 0.0)
    return rockpool_export(make, u)


CASES = {
    ("snntorch", "leaky"): _snntorch, ("snntorch", "synaptic_rleaky"): _snntorch, ("snntorch", "rsynaptic"): _snntorch,
    ("norse", "lifbox"): _norse, ("norse", "lifcell"): _norse, ("norse", "iaf"): _norse,
    ("spikingjelly", "lif"): _spikingjelly, ("spikingjelly", "lif_no_decay_input"): _spikingjelly,
    ("spikingjelly", "if"): _spikingjelly,
    ("sinabs", "lif"): _sinabs, ("sinabs", "iaf"): _sinabs,
    ("rockpool", "lif"): _rockpool, ("rockpool", "lif_neuron"): _rockpool,
}


def _core(graph: nir.NIRGraph, **kwargs):
    return nir_to_graph(graph, **kwargs).arrays()


def _raster(core, u: torch.Tensor) -> np.ndarray:
    return simulate_float(core, core.input_currents(u.double().numpy())).spikes


def _same_semantics(a, b) -> bool:
    """Two cores that compute the same thing (equal per-neuron parameters, weights, biases)."""
    return (all(np.array_equal(a.per_neuron(k), b.per_neuron(k)) for k in ("beta", "theta", "beta_syn", "reset",
                                                                              "current_delay"))
            and np.array_equal(a.input_weight, b.input_weight) and np.array_equal(a.bias, b.bias)
            and all(np.array_equal(a.block_weights(x).value, b.block_weights(y).value)
                    for x, y in zip(a.synapses, b.synapses)))


@pytest.mark.parametrize("flavor,kind", list(CASES), ids=[f"{f}-{k}" for f, k in CASES])
def test_framework_export_simulates_identically(flavor, kind):
    graph, u, spikes = CASES[flavor, kind](kind)
    assert spikes.shape[0] >= 100 and 0.05 <= spikes.mean() <= 0.30, spikes.mean()  # the network fires
    assert set(np.unique(spikes)) <= {0.0, 1.0}
    core = _core(graph, flavor=flavor, max_spikes=1)  # binary networks (SingleSpike, max_spikes_per_dt=1)
    assert all(spikes[:, sl].mean() >= 0.01 for sl in core.offsets().values())  # every layer fires
    if flavor == "rockpool":  # dt recovered from r = tau e^(-dt/tau) / dt (float32), snapped
        assert core.dt == 1e-3
    got = _raster(core, u)
    assert np.array_equal(got, spikes), f"{int((got != spikes).sum())} of {spikes.size} spikes differ"
    differ = 0  # negative control: every other framework's reading is refused, differs, or means the same
    for other in sorted(set(FLAVORS) - {flavor}):
        try:
            wrong = _core(graph, flavor=other, max_spikes=1)
        except RcsnnError:
            continue
        same = np.array_equal(_raster(wrong, u), spikes)
        assert not same or _same_semantics(wrong, core), other
        differ += not same
    assert differ >= 1


def test_sinabs_through_rcsnn_run(tmp_path):
    graph, u, spikes = _sinabs("lif")
    nir.write(str(tmp_path / "net.nir"), graph)
    np.save(tmp_path / "u.npy", u.double().numpy())
    args = ["run", str(tmp_path / "net.nir"), "--input", str(tmp_path / "u.npy"), "-o", str(tmp_path / "r.npz"),
            "--max-spikes", "1"]  # a SingleSpike network (the flavour's default is MultiSpike: tests/test_multispike.py)
    assert main([*args, "--flavor", "sinabs"]) == 0
    assert np.array_equal(Raster.load(tmp_path / "r.npz").spikes, spikes)
    for part in (["--reset", "subtract"], ["--discretize", "euler"]):  # one part overridden: differs
        assert main([*args, "--flavor", "sinabs", *part]) == 0
        assert not np.array_equal(Raster.load(tmp_path / "r.npz").spikes, spikes)


def test_norse_tau_times_dt_is_named_without_the_flavour():
    graph, u, spikes = _norse("lifbox")
    with pytest.raises(RcsnnError) as info:
        _core(graph)  # snnTorch's conventions: tau = dt * tau_mem = 1e-5 <= dt
    message = str(info.value)
    assert "\n" not in message and all(w in message for w in ("'1'", "tau", "Norse 1.1", "--flavor norse")), message
    assert np.array_equal(_raster(_core(graph, flavor="norse", dt=1e-3), u), spikes)


# --------------------------------------------------------------------------- export out


def _feed_forward_core():
    """Input -> group a (12) -> dense, delay-0 -> group b (8, per-neuron beta); zero reset (what the importers build)."""
    rng = np.random.default_rng(0)
    return Core(groups=(NeuronGroup("a", 12, 0.9, 1.0, "zero"), NeuronGroup("b", 8, np.linspace(0.6, 0.95, 8), 0.7, "zero")),
                matrices={"M0": rng.normal(0.0, 0.6, (8, 12))}, synapses=(SynapseBlock("a", "b", "M0", 1.0, 0),),
                bias=np.r_[rng.normal(0.0, 0.05, 12), np.zeros(8)],
                input_weight=np.vstack([rng.normal(0.0, 0.7, (12, 4)), np.zeros((8, 4))]), dt=1e-4)


def _run_import(net, u: np.ndarray, output) -> np.ndarray:
    rows, state = [], None
    with torch.no_grad():
        for t in range(len(u)):
            y, state = net(torch.tensor(u[t:t + 1], dtype=torch.float32), state)
            rows.append(output(y, state))
    return torch.cat(rows).numpy()


def test_rcsnn_export_simulates_identically_in_snntorch_and_norse(tmp_path):
    _need("snntorch")
    norse = _need("norse.torch")
    from snntorch.import_nir import import_from_nir

    core = _feed_forward_core()
    u = np.random.default_rng(1).normal(0.3, 1.0, (STEPS, 4))
    want = simulate_float(core, core.input_currents(u)).spikes[:, 12:]  # group b: the one Output
    assert 0.05 <= want.mean() <= 0.30
    save_graph(Graph.from_arrays(core), tmp_path / "core.json")
    for target in EXPORT_TARGETS:  # through the CLI: rcsnn graph CORE -o x.nir --nir-for TARGET
        assert main(["graph", str(tmp_path / "core.json"), "-o", str(tmp_path / f"{target}.nir"), "--nir-for", target]) == 0
    read = {t: nir.read(str(tmp_path / f"{t}.nir")) for t in EXPORT_TARGETS}
    assert read["norse"].nodes["lif_b"].metadata["rcsnn"] == {"reset": "zero", "Wv": 24, "Fv": 12, "Fb": 14, "Ww": 16}
    snn_net = import_from_nir(read["snntorch"])
    assert np.array_equal(_run_import(snn_net, u, lambda y, state: y), want)
    # Norse's executor returns the last module it ran, not the Output: read the Output from its cache
    from_norse = lambda g: _run_import(norse.from_nir(g, dt=core.dt), u, lambda y, s: s.cache["output"])  # noqa: E731
    assert np.array_equal(from_norse(read["norse"]), want)
    assert not np.array_equal(from_norse(read["snntorch"]), want)  # negative control: Norse ignores r
    with pytest.raises(RcsnnError, match="group 'a' .* reset 'subtract'"):
        graph_to_nir(Graph.from_arrays(replace(core, groups=(replace(core.groups[0], reset="subtract"),
                                                             core.groups[1]))), "norse")


def test_snntorch_rleaky_zero_reset_is_zero_drop_input():
    """snnTorch's RLeaky zero reset, (beta*mem + x + W s) * (1 - reset), read from its module and its NIR export."""
    snn = _need("snntorch")
    from snntorch.export_nir import export_to_nir

    from rcsnn.frontends.snntorch import graph_from_rleaky

    torch.manual_seed(3)
    net = torch.nn.Sequential(torch.nn.Linear(N_IN, 10),
                              snn.RLeaky(beta=0.8, linear_features=10, reset_mechanism="zero", init_hidden=True))
    u = _inputs(1.0, 0.3)
    net[1].reset_mem()
    spikes = _stepwise(net, u, lambda k, x: net[k](x))
    assert 0.05 <= spikes.mean() <= 0.30, spikes.mean()
    graph = export_to_nir(net, torch.randn(N_IN))
    assert np.array_equal(_raster(_core(graph, flavor="snntorch", reset="zero_drop_input"), u), spikes)
    assert not np.array_equal(_raster(_core(graph, flavor="snntorch", reset="zero"), u), spikes)  # negative control
    layer = graph_from_rleaky(net[1]).arrays()  # the module alone: its input is the Linear's output
    currents = net[0](u).double().detach().numpy()
    assert layer.groups[0].reset == "zero_drop_input"
    assert np.array_equal(simulate_float(layer, currents).spikes, spikes)
