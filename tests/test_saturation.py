"""Membrane saturation bounds (issue 9 item 1): ``LIF.v_min`` / ``LIF.v_max`` in the IR and both references.

The references clip ``v`` after the reset-mode update and before the spike decision (docs/contract.md,
"Saturation"); they are compared with the independent per-neuron loop ``contract_impl.contract_run`` on
random bounded cores, with a negative control that clips after the spike decision. Files keep the bounds
(and an unbounded core's files do not mention them); bad bounds are one-line errors.
"""

import math

import numpy as np
import pytest
from contract_impl import contract_run
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from strategies import build, specs

from rcsnn.errors import RcsnnError
from rcsnn.frontends.checkpoint import load_checkpoint, save_checkpoint
from rcsnn.frontends.nir_export import graph_to_nir
from rcsnn.ir.arrays import FixedFormat
from rcsnn.ir.graph import Graph
from rcsnn.ir.nodes import LIF, UNBOUNDED
from rcsnn.ir.reference import quantize_core, simulate_fixed, simulate_float
from rcsnn.ir.serialize import load_graph, save_graph
from rcsnn.ir.summary import describe

PROPERTY = settings(max_examples=25, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def bounded_specs(draw):
    """``specs()`` with saturation bounds on most groups (per group or per neuron, some infinite) and some
    groups emitting spike counts, so the clip binds and limits the counts."""
    spec, x, fmt = draw(specs())
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    for g in spec["groups"]:
        theta, size = np.array(g["theta"]), g["size"]
        per_neuron = rng.random() < 0.5

        def spread(lo, hi, size=size, per_neuron=per_neuron):
            return rng.uniform(lo, hi, size) if per_neuron else np.full(size, rng.uniform(lo, hi))

        kind = rng.integers(4)  # 0: unbounded, 1: upper only, 2: lower only, 3: both
        if kind in (1, 3):
            g["v_max"] = (theta * spread(1.0, 2.6)).tolist()
        if kind in (2, 3):
            g["v_min"] = (-theta * spread(0.0, 1.5)).tolist()
        g["max_spikes"] = int(rng.choice([1, 1, 3, UNBOUNDED]))
    x = x * 2.0  # larger currents: the bounds bind
    return spec, x, fmt


@PROPERTY
@given(bounded_specs())
def test_bounded_references_are_the_contract(case):
    spec, x, fmt = case
    for simulate, graph, fixed in ((simulate_float, build(spec), None),
                                   (simulate_fixed, build(spec, fmt), (fmt.Wv, fmt.Fv, fmt.Fb, fmt.Ww))):
        run = simulate(graph, x)
        for got, want in zip((run.spikes, run.membranes), contract_run(spec, x, fixed)):
            np.testing.assert_array_equal(got, want)  # float64: to the last bit
    float_run, core = simulate_float(build(spec), x), build(spec).arrays()
    low, high = core.per_neuron("v_min"), core.per_neuron("v_max")
    assert (float_run.membranes >= low).all() and (float_run.membranes <= high).all()
    # the effective count limit of a bounded group is floor(v_max / theta)
    assert (float_run.spikes <= np.floor(high / core.per_neuron("theta"))).all()


def _case(v_min=-1.5, v_max=2.5, max_spikes=UNBOUNDED, reset="subtract"):
    """One group of 3 neurons with strong input: the membrane runs far beyond the bounds."""
    g = Graph(fixed=FixedFormat(Wv=16, Fv=8, Fb=12))
    g.add_input(1)
    g.add_group("a", LIF(3, 0.8, 1.0, reset, np.zeros(3), max_spikes=max_spikes, v_min=v_min, v_max=v_max),
                np.array([[1.0], [-1.0], [0.5]]))
    g.add_output()
    x = np.concatenate([np.full((6, 1), 6.0), np.full((6, 1), -6.0), np.full((6, 1), 6.0)])
    spec = {"groups": [{"size": 3, "beta": [0.8] * 3, "theta": [1.0] * 3, "beta_syn": [0.0] * 3, "bias": [0.0] * 3,
                        "reset": reset, "current_delay": 0, "max_spikes": max_spikes,
                        "v_min": [v_min] * 3, "v_max": [v_max] * 3}], "blocks": []}
    return g.validate(), x, spec


def test_clip_order_negative_control():
    """Clipping after the spike decision gives other spike counts on a constructed case; the references
    match only the contract's order, and an unbounded core differs from a bounded one."""
    graph, x, spec = _case()
    currents = graph.arrays().input_currents(x)
    run = simulate_float(graph, currents)
    assert run.membranes.max() == 2.5 and run.membranes.min() == -1.5  # the bounds bind, exactly
    np.testing.assert_array_equal(run.spikes, contract_run(spec, currents)[0])
    late = contract_run(spec, currents, late_clip=True)[0]
    assert not np.array_equal(run.spikes, late)  # e.g. v = 6: 6 spikes unclipped, 2 clipped
    assert run.spikes.max() == 2 and late.max() > 2
    fmt = graph.fixed
    fixed = (fmt.Wv, fmt.Fv, fmt.Fb, fmt.Ww)
    np.testing.assert_array_equal(simulate_fixed(graph, currents).spikes, contract_run(spec, currents, fixed)[0])
    assert not np.array_equal(simulate_fixed(graph, currents).spikes, contract_run(spec, currents, fixed, True)[0])
    unbounded, _, _ = _case(-math.inf, math.inf)
    assert not np.array_equal(simulate_float(unbounded, currents).membranes, run.membranes)


@pytest.mark.parametrize("reset", ["zero", "subtract", "subtract_before_decay", "zero_drop_input"])
def test_distant_bounds_change_nothing(reset):
    """Bounds the membrane never reaches take the clipping path and give today's runs bit for bit."""
    far, x, _ = _case(-1e6, 1e6, 1, reset)
    none, _, _ = _case(-math.inf, math.inf, 1, reset)
    assert far.arrays().bounded() and not none.arrays().bounded()
    currents = far.arrays().input_currents(x)
    for simulate in (simulate_float, simulate_fixed):
        a, b = simulate(far, currents), simulate(none, currents)
        np.testing.assert_array_equal(a.spikes, b.spikes)
        np.testing.assert_array_equal(a.membranes, b.membranes)


def test_fixed_bounds_are_the_formula():
    """v_lo_q = max(-2**(Wv-1), round(v_min 2**Fv)), v_hi_q = min(2**(Wv-1)-1, round(v_max 2**Fv)), half to even."""
    g = Graph(fixed=FixedFormat(Wv=12, Fv=4, Fb=12))
    g.add_input(1)
    g.add_group("a", LIF(4, 0.5, 1.0, "zero", np.zeros(4), v_min=np.array([-2.5 / 16, -1e9, -math.inf, -0.5]),
                         v_max=np.array([1.5 / 16 + 1, 1e9, math.inf, 3.5 / 16 + 1])), np.ones((4, 1)))
    g.add_output()
    q = quantize_core(g.validate())
    assert q.v_lo_q.dtype == np.int64 and q.v_lo_q.tolist() == [-2, -2048, -2048, -8]
    assert q.v_hi_q.tolist() == [18, 2047, 2047, 20]
    plain, _, _ = _case(-math.inf, math.inf)
    q = quantize_core(plain)
    assert q.v_lo_q.tolist() == [q.v_min] * 3 and q.v_hi_q.tolist() == [q.v_max] * 3


@pytest.mark.parametrize("suffix", [".rcsnn", ".json", ".graphml"])
def test_bounds_round_trip(tmp_path, suffix):
    per_neuron, x, _ = _case(np.array([-1.5, -math.inf, -0.25]), np.array([2.5, 1.0, math.inf]))
    per_group, _, _ = _case(-math.inf, 3.0)
    for graph in (per_neuron, per_group):
        path = tmp_path / f"core{suffix}"
        (save_checkpoint if suffix == ".rcsnn" else save_graph)(graph, path)
        back = (load_checkpoint if suffix == ".rcsnn" else load_graph)(path)
        assert back.arrays().groups == graph.arrays().groups
        for key in ("v_min", "v_max"):
            np.testing.assert_array_equal(back.arrays().per_neuron(key), graph.arrays().per_neuron(key))
        currents = graph.arrays().input_currents(x)
        np.testing.assert_array_equal(simulate_float(back, currents).membranes, simulate_float(graph, currents).membranes)
    assert per_group.arrays().per_neuron("v_min").tolist() == [-math.inf] * 3


def test_unbounded_files_do_not_mention_bounds(tmp_path):
    from safetensors import safe_open

    plain, _, _ = _case(-math.inf, math.inf)
    bounded, _, _ = _case()
    for graph, mentioned in ((plain, False), (bounded, True)):
        save_checkpoint(graph, tmp_path / "c.rcsnn")
        save_graph(graph, tmp_path / "c.json")
        with safe_open(str(tmp_path / "c.rcsnn"), framework="numpy") as f:
            keys = set(f.keys())
        assert ({"groups.v_min", "groups.v_max"} <= keys) == mentioned
        assert ("v_max" in (tmp_path / "c.json").read_text()) == mentioned


@pytest.mark.parametrize("v_min, v_max, message", [
    (-1.0, 0.5, "'groups.v_max'[0] (group 'a') = 0.5 is below theta"),
    (2.0, 3.0, "'groups.v_min'[0] (group 'a') = 2.0 is not below theta"),
    (1.5, 1.2, "'groups.v_min'[0] (group 'a') = 1.5 is not below v_max"),
    (math.nan, 2.0, "'groups.v_min'[0] (group 'a') = nan is not a number"),
    (-1.0, -math.inf, "'groups.v_max'[0] (group 'a') = -inf is not a number > -inf"),
    (-1.0, np.array([2.0, 0.9, 2.0]), "'neurons.v_max'[1] (group 'a', neuron 1) = 0.9 is below theta"),
    (np.array([-1.0, -1.0]), 2.0, "'neurons.v_min' (group 'a'): shape (2,), expected a float or (3,)"),
])
def test_bad_bounds_are_one_line_errors(v_min, v_max, message):
    with pytest.raises(RcsnnError) as error:
        _case(v_min, v_max)
    assert message in str(error.value) and "\n" not in str(error.value)


def test_checkpoint_with_both_forms_is_refused(tmp_path):
    from safetensors import safe_open
    from safetensors.numpy import load_file, save_file

    graph, _, _ = _case()
    save_checkpoint(graph, tmp_path / "c.rcsnn")
    with safe_open(str(tmp_path / "c.rcsnn"), framework="numpy") as f:
        metadata = f.metadata()
    tensors = load_file(str(tmp_path / "c.rcsnn"))
    save_file({**tensors, "neurons.v_max": np.full(3, 2.5)}, str(tmp_path / "both.rcsnn"), metadata=metadata)
    with pytest.raises(RcsnnError, match="keys 'groups.v_max' and 'neurons.v_max': both present"):
        load_checkpoint(tmp_path / "both.rcsnn")


def test_nir_export_refuses_bounds_and_info_shows_them():
    bounded, x, _ = _case()
    with pytest.raises(RcsnnError, match="group 'a' has membrane saturation bounds") as error:
        graph_to_nir(bounded)
    assert "\n" not in str(error.value)
    graph_to_nir(_case(-math.inf, math.inf)[0])  # the same core unbounded exports
    text = describe(bounded, bounded.arrays().input_currents(x), "a test")
    assert "v_min -1.5 v_max 2.5" in text
    assert "v_min" not in describe(_case(-math.inf, math.inf)[0], bounded.arrays().input_currents(x), "a test")
