"""Issue 10's semantics: neuron kinds, reset modes, per-neuron values, dense weights, retiming.

Property tests (hypothesis, derandomised) draw small random cores — group counts, sizes, β (1 for
IF) and θ per group or per neuron, reset modes, CubaLIF states and current delays, ternary or dense
blocks of any density, delays 0 and 1 — and compare both references with the independent
implementation of docs/contract.md in ``contract_impl.contract_run``; each check has a negative
control.
"""

import numpy as np
import pytest
from contract_impl import contract_run
from hypothesis import HealthCheck, given, settings
from strategies import build, specs

from rcsnn.cli import main
from rcsnn.errors import RcsnnError
from rcsnn.frontends.checkpoint import load_checkpoint, save_checkpoint
from rcsnn.ir.arrays import FixedFormat
from rcsnn.ir.graph import Graph
from rcsnn.ir.nodes import IF, LIF, RESET_MODES, CubaLIF, Synapse
from rcsnn.ir.passes import quantize, retime, skew_currents, unskew_raster
from rcsnn.ir.reference import quantize_core, simulate_fixed, simulate_float
from rcsnn.ir.serialize import load_graph, save_graph

PROPERTY = settings(max_examples=30, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])


def _fixed(fmt: FixedFormat) -> tuple[int, int, int, int]:
    return fmt.Wv, fmt.Fv, fmt.Fb, fmt.Ww


@PROPERTY
@given(specs())
def test_float_reference_is_the_contract(case):
    spec, x, _ = case
    run = simulate_float(build(spec), x)
    spikes, membranes = contract_run(spec, x)
    np.testing.assert_array_equal(run.spikes, spikes)
    np.testing.assert_array_equal(run.membranes, membranes)  # to the last bit


@PROPERTY
@given(specs())
def test_fixed_reference_is_the_integer_contract(case):
    spec, x, fmt = case
    graph = build(spec, fmt)
    run = simulate_fixed(graph, x)
    spikes, membranes = contract_run(spec, x, _fixed(fmt))
    np.testing.assert_array_equal(run.spikes, spikes)
    np.testing.assert_array_equal(run.membranes, membranes)
    # the integer currents give the same run as float currents quantised by the reference
    np.testing.assert_array_equal(simulate_fixed(graph, quantize_core(graph).quantize(x)).membranes, run.membranes)


@PROPERTY
@given(specs())
def test_batch_runs_are_the_single_runs(case):
    spec, x, _ = case
    graph = build(spec)
    both = simulate_float(graph, np.stack([x, x[::-1]], axis=1))
    for k, xs in enumerate((x, x[::-1])):
        np.testing.assert_array_equal(both.membranes[:, k], simulate_float(graph, xs).membranes)


@PROPERTY
@given(specs(levels=True))
def test_retimed_stack_is_the_same_core(case):
    spec, x, fmt = case
    graph = build(spec, fmt)
    timed = retime(graph)
    core = timed.arrays()
    assert all(s.delay == 1 for s in core.synapses) and timed.passes[-1] == "retime"
    skews = [0]
    for k in range(1, len(spec["groups"])):  # one more per same-step block from the group below, else a new stack
        skews.append(skews[-1] + 1 if any(b["pre"] == k - 1 and b["post"] == k for b in spec["blocks"]) else 0)
    assert [g.skew for g in core.groups] == skews
    want, got = simulate_float(graph, x), simulate_float(timed, skew_currents(timed, x))
    for name in ("spikes", "membranes"):
        np.testing.assert_array_equal(unskew_raster(timed, getattr(got, name)), getattr(want, name))
    xq = quantize_core(graph).quantize(x)
    want, got = simulate_fixed(graph, xq), simulate_fixed(timed, skew_currents(timed, xq))
    np.testing.assert_array_equal(unskew_raster(timed, got.membranes), want.membranes)


@PROPERTY
@given(case=specs())
def test_files_keep_every_field(tmp_path_factory, case):
    spec, x, fmt = case
    graph = build(spec, fmt)
    want = simulate_float(graph, x).membranes
    folder = tmp_path_factory.mktemp("files")
    for name, save, load in (("g.json", save_graph, load_graph), ("g.graphml", save_graph, load_graph),
                             ("g.rcsnn", save_checkpoint, load_checkpoint)):
        save(graph, folder / name)
        back = load(folder / name)
        assert back.arrays().groups == graph.arrays().groups and back.fixed == fmt
        np.testing.assert_array_equal(simulate_float(back, x).membranes, want)


def _stack(bias: float = 0.3) -> Graph:
    """Three levels a -> b -> c (same step), c recurrent, mixed kinds and resets, per-neuron values."""
    rng = np.random.default_rng(4)
    g = Graph()
    g.add_input(2)
    g.add_group("a", LIF(5, rng.uniform(0.5, 0.9, 5), 1.0, "subtract", np.full(5, bias)), rng.normal(0, 1, (5, 2)))
    g.add_group("b", IF(4, np.array([1.0, 0.8, 1.2, 0.9]), "subtract_before_decay", np.full(4, bias)),
                rng.normal(0, 1, (4, 2)))
    g.add_group("c", CubaLIF(3, 0.8, np.array([0.2, 0.5, 0.9]), 1.0, "zero_drop_input", np.full(3, bias), 1),
                rng.normal(0, 1, (3, 2)))
    g.add_matrix("ab", rng.normal(0, 0.8, (4, 5)), dense=True)
    g.add_matrix("bc", rng.integers(-1, 2, (3, 4)))
    g.add_matrix("cc", rng.integers(-1, 2, (3, 3)))
    g.add_synapse("c", "c", Synapse("cc", 0.3, 1))
    g.add_synapse("a", "b", Synapse("ab", 1.0, 0))
    g.add_synapse("b", "c", Synapse("bc", 0.7, 0))
    g.add_output()
    return g.validate()


def _stack_currents(graph: Graph, steps: int = 60) -> np.ndarray:
    return graph.arrays().input_currents(np.random.default_rng(5).normal(0.2, 1.2, (steps, 2)))


def test_stack_fires_and_retimes_with_skews_0_1_2():
    graph = _stack()
    x = _stack_currents(graph)
    run = simulate_float(graph, x)
    rates = [run.spikes[:, sl].mean() for sl in graph.arrays().offsets().values()]
    assert all(0.03 < r < 0.6 for r in rates), rates  # every group active: the comparisons mean something
    assert [g.kind for g in graph.arrays().groups] == ["LIF", "IF", "CubaLIF"]
    timed = retime(graph)
    assert [g.skew for g in timed.arrays().groups] == [0, 1, 2]
    assert skew_currents(timed, x).shape == (62, 12)
    batch = np.stack([x, -x], axis=1)  # (steps, batch, N) streams shift the same way
    got = unskew_raster(timed, simulate_float(timed, skew_currents(timed, batch)).membranes)
    np.testing.assert_array_equal(got, simulate_float(graph, batch).membranes)
    assert retime(timed).arrays().groups == timed.arrays().groups  # nothing left to retime


def test_retime_negative_controls():
    """The -b fill and the skew both matter; a skipping or cross-level edge is refused by name."""
    graph = _stack()
    x = _stack_currents(graph)
    timed = retime(graph)
    want = simulate_float(graph, x).membranes
    zero_fill = skew_currents(timed, x)
    zero_fill[:2] = 0.0  # before their start the late groups would integrate their bias
    assert not np.array_equal(unskew_raster(timed, simulate_float(timed, zero_fill).membranes), want)
    unshifted = np.concatenate([x, np.zeros((2, x.shape[1]))])
    assert not np.array_equal(unskew_raster(timed, simulate_float(timed, unshifted).membranes), want)
    g = Graph()
    g.add_input(1)
    for name in "abc":
        g.add_group(name, LIF(2, 0.9, 1.0, "zero", np.zeros(2)), np.ones((2, 1)))
    g.add_matrix("T", np.eye(2, dtype=np.int8))
    for pre, post in (("a", "b"), ("b", "c"), ("a", "c")):
        g.add_synapse(pre, post, Synapse("T", 0.5, 0))
    g.add_output()
    with pytest.raises(RcsnnError, match=r"retime: synapses a->c \(delay 0\) join groups 2 level\(s\) apart"):
        retime(g.validate())
    g.add_synapse("c", "a", Synapse("T", 0.5, 1))  # a delay-1 synapse between levels
    with pytest.raises(RcsnnError, match=r"retime: synapses .* level\(s\) apart"):
        retime(g.validate())
    with pytest.raises(RcsnnError, match="fewer than the core's largest skew"):
        unskew_raster(timed, np.zeros((1, 12)))


@pytest.mark.parametrize("mode", RESET_MODES)
def test_each_reset_mode_by_hand(mode):
    """One neuron, constant input 0.7, θ = 1, β = 0.5: the documented update, step by step."""
    g = Graph()
    g.add_input(1)
    g.add_group("n", LIF(1, 0.5, 1.0, mode, np.zeros(1)), np.ones((1, 1)))
    g.add_output()
    run = simulate_float(g, np.full((8, 1), 0.7))
    v, s, seen = 0.0, 0, []
    for _ in range(8):
        v = {"zero": 0.5 * v * (1 - s) + 0.7, "subtract": 0.5 * v - 1.0 * s + 0.7,
             "subtract_before_decay": 0.5 * (v - 1.0 * s) + 0.7, "zero_drop_input": (0.5 * v + 0.7) * (1 - s)}[mode]
        s = int(v >= 1.0)
        seen.append(v)
    np.testing.assert_array_equal(run.membranes[:, 0], seen)
    assert run.spikes.sum() >= 2


def test_reset_modes_and_kinds_differ():
    """Negative control of the properties: every mode, and each CubaLIF delay, gives its own membranes
    (except IF's two subtract modes: with β = 1, β (v − θ s) = β v − θ s)."""
    rng = np.random.default_rng(2)
    x = rng.normal(0.6, 0.6, (40, 3))
    runs = {}
    for mode in RESET_MODES:
        for kind in ("LIF", "IF", "Cuba0", "Cuba1"):
            g = Graph()
            g.add_input(3)
            bias = np.zeros(3)
            lif = {"LIF": LIF(3, 0.8, 1.0, mode, bias), "IF": IF(3, 1.0, mode, bias),
                   "Cuba0": CubaLIF(3, 0.8, 0.5, 1.0, mode, bias), "Cuba1": CubaLIF(3, 0.8, 0.5, 1.0, mode, bias, 1)}[kind]
            g.add_group("n", lif, np.eye(3))
            g.add_output()
            runs[mode, kind] = simulate_float(g, x).membranes.tobytes()
    assert runs["subtract", "IF"] == runs.pop(("subtract_before_decay", "IF"))
    assert len(set(runs.values())) == len(runs)


def test_independent_implementation_catches_a_wrong_mode():
    """Negative control of ``contract_run`` itself: told the wrong mode it disagrees with rcsnn."""
    spec = {"groups": [{"size": 2, "beta": [0.8, 0.9], "theta": [1.0, 1.0], "beta_syn": [0.0, 0.0],
                        "bias": [0.1, 0.2], "reset": "subtract_before_decay", "current_delay": 0}], "blocks": []}
    x = np.full((20, 2), 0.6)
    run = simulate_float(build(spec), x)
    spec["groups"][0]["reset"] = "subtract"
    assert not np.array_equal(contract_run(spec, x)[1], run.membranes)


def test_cubalif_with_zero_current_leak_is_lif_and_i_is_reported():
    lif, cuba = Graph(), Graph()
    for g, op in ((lif, LIF(2, 0.8, 1.0, "zero", np.zeros(2))), (cuba, CubaLIF(2, 0.8, 0.0, 1.0, "zero", np.zeros(2)))):
        g.add_input(2)
        g.add_group("n", op, np.eye(2))
        g.add_output()
    x = np.random.default_rng(0).normal(0.5, 1.0, (30, 2))
    assert cuba.arrays().groups[0].kind == "LIF" and simulate_float(cuba, x).synaptic is None
    np.testing.assert_array_equal(simulate_float(cuba, x).membranes, simulate_float(lif, x).membranes)
    delayed = Graph()
    delayed.add_input(2)
    delayed.add_group("n", CubaLIF(2, 0.8, 0.0, 1.0, "zero", np.zeros(2), current_delay=1), np.eye(2))
    delayed.add_output()
    run = simulate_float(delayed, x)
    np.testing.assert_array_equal(run.synaptic, x)  # beta_syn 0: i[t] = I[t]
    assert not np.array_equal(run.membranes, simulate_float(lif, x).membranes)


def test_dense_weights_quantise_to_ww_and_block_weights_agree():
    graph = _stack()
    core = graph.arrays()
    q = quantize_core(core)
    ab, bc = core.synapses[1], core.synapses[2]
    dense = core.block_weights(ab)
    m = core.matrices["ab"]
    assert core.is_dense("ab") and not core.is_dense("bc")
    np.testing.assert_array_equal(dense.value, m[dense.rows, dense.cols])
    np.testing.assert_array_equal(dense.quantized, np.round(m[m != 0] * 2**12).astype(np.int64))
    np.testing.assert_array_equal(q.weight_q[1][dense.rows, dense.cols], dense.quantized)
    tern = core.block_weights(bc)
    assert set(np.abs(tern.quantized)) == {q.alpha_q[2]} and np.allclose(np.abs(tern.value), 0.7)
    narrow = Graph.from_arrays(type(core)(**{**core.__dict__, "fixed": FixedFormat(Ww=4)}))
    clipped = narrow.arrays().block_weights(ab).quantized
    assert clipped.min() == -8 and clipped.max() == 7  # saturated to 4 signed bits


def test_quantize_pass_writes_per_neuron_and_synaptic_integers():
    graph = _stack()
    out = quantize(graph)
    a, b, c = (out.nx.nodes[n] for n in "abc")
    assert isinstance(a["beta_q"], np.ndarray) and a["beta_q"].shape == (5,) and isinstance(a["theta_q"], int)
    assert b["beta_q"] == 2**14 and isinstance(b["theta_q"], np.ndarray) and "beta_syn_q" not in b
    np.testing.assert_array_equal(c["beta_syn_q"], np.round(np.array([0.2, 0.5, 0.9]) * 2**14))


@pytest.mark.parametrize("edit, words", [
    (lambda g: g.__setitem__("beta", np.array([0.5, 1.5, 0.9, 0.9, 0.9])), ["'neurons.beta'[1]", "neuron 1", "(0, 1]"]),
    (lambda g: g.__setitem__("beta", np.array([0.5, 0.9])), ["'neurons.beta'", "shape (2,)"]),
    (lambda g: g.__setitem__("theta", np.array([1.0, 1.0, 0.0, 1.0, 1.0])), ["'neurons.theta'[2]", "> 0"]),
    (lambda g: g.__setitem__("beta_syn", -0.1), ["'groups.beta_syn'[0]", "[0, 1]"]),
    (lambda g: g.__setitem__("current_delay", 2), ["current_delay 2"]),
    (lambda g: g.__setitem__("reset", "soft"), ["reset 'soft'", "subtract_before_decay"]),
])
def test_validation_names_the_neuron_parameter(edit, words):
    fields = {"size": 5, "beta": 0.9, "theta": 1.0, "reset": "zero", "bias": np.zeros(5), "beta_syn": 0.0,
              "current_delay": 0}
    edit(fields)
    g = Graph()
    g.add_input(1)
    g.add_group("a", LIF(**fields), np.zeros((5, 1)))
    g.add_output()
    with pytest.raises(RcsnnError) as info:
        g.validate()
    assert all(w in str(info.value) for w in words), str(info.value)
    fields = {"size": 5, "beta": 0.9, "theta": 1.0, "reset": "zero", "bias": np.zeros(5)}  # positive control
    ok = Graph()
    ok.add_input(1)
    ok.add_group("a", LIF(**fields), np.zeros((5, 1)))
    ok.add_output()
    ok.validate()


def test_dense_matrix_with_nan_and_files_with_both_parameter_forms_are_refused(tmp_path):
    g = Graph()
    g.add_input(1)
    g.add_group("a", LIF(2, 0.9, 1.0, "zero", np.zeros(2)), np.zeros((2, 1)))
    g.add_matrix("M", np.array([[0.1, np.nan], [0.0, 0.2]]), dense=True)
    g.add_synapse("a", "a", Synapse("M", 1.0))
    g.add_output()
    with pytest.raises(RcsnnError, match=r"'matrix.M': contains NaN"):
        g.validate()
    from safetensors import safe_open
    from safetensors.numpy import load_file, save_file

    save_checkpoint(_stack(), tmp_path / "s.rcsnn")
    with safe_open(str(tmp_path / "s.rcsnn"), framework="numpy") as f:
        metadata = f.metadata()
    tensors = load_file(str(tmp_path / "s.rcsnn"))
    assert "neurons.beta" in tensors and "groups.theta" not in tensors and "neurons.beta_syn" in tensors
    for key, value, words in (("groups.beta", np.ones(3) * 0.5, "both present"),
                              ("neurons.theta", np.ones(7), "'neurons.theta': shape (7,), expected (12,)")):
        broken = {**tensors, key: value}
        save_file(broken, str(tmp_path / "b.rcsnn"), metadata=metadata)
        with pytest.raises(RcsnnError, match=words.replace("(", r"\(").replace(")", r"\)")):
            load_checkpoint(tmp_path / "b.rcsnn")
    save_file(tensors, str(tmp_path / "ok.rcsnn"), metadata=metadata)  # positive control: unbroken reads
    assert load_checkpoint(tmp_path / "ok.rcsnn").arrays().groups == _stack().arrays().groups


@pytest.mark.parametrize("spread", [1.0, 1e12], ids=["int64-sums", "fsum"])
def test_dense_sums_are_exact_for_any_weight_range(spread):
    """Dense currents are the exact sums rounded once, whether the weights fit the int64 split or not."""
    rng = np.random.default_rng(6)
    matrix = rng.normal(0, 0.5, (6, 40)) * np.where(rng.random((6, 40)) < 0.5, 1.0, 1.0 / spread)
    spec = {"groups": [{"size": 40, "beta": [0.9] * 40, "theta": [0.5] * 40, "beta_syn": [0.0] * 40,
                        "bias": [0.0] * 40, "reset": "subtract", "current_delay": 0},
                       {"size": 6, "beta": [0.9] * 6, "theta": [3.0] * 6, "beta_syn": [0.0] * 6,
                        "bias": [0.0] * 6, "reset": "zero", "current_delay": 0}],
            "blocks": [{"pre": 0, "post": 1, "matrix": matrix * 1e3, "dense": True, "alpha": 1.0, "delay": 0}]}
    x = np.concatenate([rng.normal(0.3, 0.5, (30, 40)), np.zeros((30, 6))], axis=1)
    run = simulate_float(build(spec), x)
    assert 0.1 < run.spikes[:, :40].mean() < 0.9
    np.testing.assert_array_equal(run.membranes, contract_run(spec, x)[1])


def test_parameters_are_floats_or_float64_arrays():
    g = Graph()
    g.add_input(1)
    g.add_group("a", LIF(2, [0.5, 0.6], np.float32(1.0), "zero", np.zeros(2)), np.zeros((2, 1)))
    lif = g.groups()[0][1]
    assert lif.beta.dtype == np.float64 and type(lif.theta) is float and type(lif.beta_syn) is float
    with pytest.raises(RcsnnError, match="group 'b': beta 'fast' is not a number"):
        g.add_group("b", LIF(2, "fast", 1.0, "zero", np.zeros(2)), np.zeros((2, 1)))


def test_cli_writes_the_retimed_graph_and_info_shows_kinds(tmp_path, capsys):
    save_graph(_stack(), tmp_path / "stack.json")
    assert main(["graph", str(tmp_path / "stack.json"), "--after", "retime", "-o", str(tmp_path / "timed.json")]) == 0
    timed = load_graph(tmp_path / "timed.json")
    assert timed.passes == ["retime"] and [g.skew for g in timed.arrays().groups] == [0, 1, 2]
    capsys.readouterr()
    assert main(["info", str(tmp_path / "stack.json"), "--steps", "5"]) == 0
    out = capsys.readouterr().out
    assert "subtract_before_decay      IF" in out and "CubaLIF" in out and "beta_syn 0.2..0.9 current_delay 1" in out
    assert "matrix ab: 4x5 dense float64" in out and "Ww=16" in out


@pytest.mark.parametrize("node, key, value, words", [
    ("c", "beta_syn", "slow", ["node 'c'", "'beta_syn'", "expected a finite number"]),
    ("c", "beta_syn", {"dtype": "float64", "shape": [2], "data": [0.1, 0.2]}, ["'neurons.beta_syn'", "shape (2,)"]),
    ("c", "current_delay", 2, ["group 'c'", "current_delay 2"]),
    ("b", "skew", -1, ["group 'b'", "skew -1"]),
    ("a", "beta", {"dtype": "float64", "shape": [5], "data": [0.5, 0.5, 0.5, 0.5, 1.5]}, ["'neurons.beta'[4]", "(0, 1]"]),
])
def test_graph_files_with_bad_new_fields_are_refused(tmp_path, node, key, value, words):
    import json

    save_graph(_stack(), tmp_path / "ok.json")
    data = json.loads((tmp_path / "ok.json").read_text())
    next(n for n in data["nodes"] if n["id"] == node)[key] = value
    (tmp_path / "bad.json").write_text(json.dumps(data))
    with pytest.raises(RcsnnError) as info:
        load_graph(tmp_path / "bad.json")
    message = str(info.value)
    assert "bad.json" in message and all(w in message for w in words) and "\n" not in message, message
    load_graph(tmp_path / "ok.json")  # positive control


def _outside(graph: Graph, x: np.ndarray, q=None) -> np.ndarray:
    """Where the open-loop fixed-point membrane error leaves the interval ``verify --backend fixed`` derives."""
    from rcsnn.verify.fixed import error_interval

    core = graph.arrays()
    ref = simulate_float(core, x)
    fixed = simulate_fixed(core, x, fixed=q, forced=ref.spikes)
    lo, hi = error_interval(core, ref, x, quantize_core(core))
    error = fixed.membranes * 2.0 ** -core.fixed.Fv - ref.membranes
    return (error < lo) | (error > hi)


@PROPERTY
@given(specs())
def test_fixed_point_error_stays_in_the_derived_interval(case):
    spec, x, fmt = case
    assert not _outside(build(spec, fmt), x).any()


@pytest.mark.parametrize("control", ["beta_syn_q + 1", "dense w_q + 1", "theta_q + 1 (subtract before decay)"])
def test_derived_interval_negative_controls(control):
    """A fixed-point model off by one LSB in a new field leaves the interval."""
    import dataclasses

    graph = _stack()
    x = _stack_currents(graph, 120)
    q = quantize_core(graph)
    assert not _outside(graph, x, q).any()
    if control.startswith("beta_syn"):
        q = dataclasses.replace(q, beta_syn_q=q.beta_syn_q + 1)
    elif control.startswith("dense"):
        q = dataclasses.replace(q, weight_q=tuple(w if w is None else w + 1 for w in q.weight_q))
    else:
        q = dataclasses.replace(q, theta_q=q.theta_q + 1)
    assert _outside(graph, x, q).any()


def test_quantized_file_with_per_neuron_integers_is_checked(tmp_path):
    import json

    save_graph(quantize(_stack()), tmp_path / "q.json")
    assert load_graph(tmp_path / "q.json").passes == ["quantize"]  # per-neuron beta_q, beta_syn_q read back and agree
    data = json.loads((tmp_path / "q.json").read_text())
    c = next(n for n in data["nodes"] if n["id"] == "c")
    c["beta_syn_q"]["data"][1] += 1
    (tmp_path / "bad.json").write_text(json.dumps(data))
    with pytest.raises(RcsnnError, match="group 'c': beta_syn_q=.* disagrees with the fixed-point format"):
        load_graph(tmp_path / "bad.json")
