"""The digital core on the neuron kinds and weights of issue 10, bit-exact against the fixed-point reference.

Per-neuron β/θ (parameter memories), IF (β = 1), every reset mode, CubaLIF (a second state, current_delay 0
and 1), dense multi-bit weights beside ternary blocks, and retimed feed-forward stacks (skewed input stream):
each case passes ``verify_digital`` in Amaranth's simulator, and each has a negative control — the hardware
built without that feature (a broken memory image or stream) fails naming the first divergence. The
emitted Verilog runs bit-exact in Icarus (default) and Verilator (``-m slow``) on a core with every feature.
"""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from rcsnn.digital.formal import prove
from rcsnn.digital.layout import build_image, place
from rcsnn.digital.options import DigitalOptions
from rcsnn.digital.simulate import run_pysim
from rcsnn.errors import RcsnnError
from rcsnn.ir.arrays import Core, FixedFormat, NeuronGroup, SynapseBlock
from rcsnn.ir.graph import Graph
from rcsnn.ir.reference import quantize_core, simulate_fixed
from rcsnn.ir.stimulus import Stimulus
from rcsnn.verify.digital import verify_digital
from rcsnn.verify.report import Provenance

FIXED = FixedFormat(Wv=14, Fv=7, Fb=9, Ww=8)


def kinds_core(case: str, seed: int = 0) -> Core:
    """A small random core exercising ``case`` (see :data:`CASES`)."""
    rng = np.random.default_rng(seed)

    def ternary(rows, cols, density=0.4):
        return (rng.choice([-1, 1], (rows, cols)) * (rng.random((rows, cols)) < density)).astype(np.int8)

    def dense(rows, cols, density=0.5, scale=0.5):
        return rng.normal(0, scale, (rows, cols)) * (rng.random((rows, cols)) < density)

    per = dict(beta=rng.uniform(0.3, 0.95, 7), theta=rng.uniform(0.6, 1.4, 7))
    if case == "per-neuron":
        groups = (NeuronGroup("a", 7, reset="zero", **per), NeuronGroup("b", 7, 0.8, rng.uniform(0.6, 1.4, 7), "subtract"))
        matrices = {"T": ternary(7, 7)}
        synapses = (SynapseBlock("a", "a", "T", 0.3), SynapseBlock("b", "b", "T", 0.25))
    elif case == "IF and resets":
        groups = (NeuronGroup("if_sbd", 6, 1.0, 1.0, "subtract_before_decay"),
                  NeuronGroup("drop", 6, 0.7, 0.9, "zero_drop_input"), NeuronGroup("if_zero", 5, 1.0, 1.2, "zero"),
                  NeuronGroup("sbd", 5, 0.6, 0.8, "subtract_before_decay"))
        matrices = {f"T{g.name}": ternary(g.size, g.size) for g in groups}
        synapses = tuple(SynapseBlock(g.name, g.name, f"T{g.name}", 0.3) for g in groups)
    elif case == "CubaLIF":
        groups = (NeuronGroup("now", 7, reset="subtract", beta_syn=rng.uniform(0.2, 0.9, 7), **per),
                  NeuronGroup("late", 6, 0.8, 0.9, "zero", beta_syn=0.6, current_delay=1),
                  NeuronGroup("lif", 5, 0.7, 1.0, "subtract_before_decay"))
        matrices = {f"T{g.name}": ternary(g.size, g.size) for g in groups}
        synapses = tuple(SynapseBlock(g.name, g.name, f"T{g.name}", 0.3) for g in groups)
    elif case == "dense":
        groups = (NeuronGroup("a", 7, 0.8, 1.0, "subtract"), NeuronGroup("b", 7, 0.6, 0.8, "zero"))
        matrices = {"M": dense(7, 7, scale=0.8), "X": ternary(7, 7)}  # scale 0.8: some w_q saturate at Ww = 8
        synapses = (SynapseBlock("a", "a", "M", 1.0), SynapseBlock("b", "b", "M", 1.0), SynapseBlock("a", "b", "X", 0.4))
    elif case == "retimed":
        groups = (NeuronGroup("in", 8, 0.9, 1.0, "subtract"), NeuronGroup("mid", 7, 0.7, 0.9, "zero"),
                  NeuronGroup("out", 6, 0.8, 0.8, "subtract_before_decay"))
        matrices = {"Tin": ternary(8, 8), "Xim": ternary(7, 8), "Tmid": ternary(7, 7), "Mmo": dense(6, 7)}
        synapses = (SynapseBlock("in", "in", "Tin", 0.3), SynapseBlock("in", "mid", "Xim", 0.6, delay=0),
                    SynapseBlock("mid", "mid", "Tmid", 0.2), SynapseBlock("mid", "out", "Mmo", 1.0, delay=0))
    else:  # "everything": every feature in one core (the HDL simulators' case)
        groups = (NeuronGroup("a", 7, reset="subtract", **per), NeuronGroup("b", 6, 1.0, 1.0, "subtract_before_decay"),
                  NeuronGroup("c", 5, 0.8, 0.9, "zero", beta_syn=0.6, current_delay=1),
                  NeuronGroup("d", 5, 0.7, 0.8, "zero_drop_input", beta_syn=rng.uniform(0.2, 0.9, 5)))
        matrices = {"Ta": ternary(7, 7), "Xab": ternary(6, 7), "Mb": dense(6, 6), "Xbc": ternary(5, 6), "Mbd": dense(5, 6)}
        synapses = (SynapseBlock("a", "a", "Ta", 0.3), SynapseBlock("a", "b", "Xab", 0.6, delay=0),
                    SynapseBlock("b", "b", "Mb", 1.0), SynapseBlock("b", "c", "Xbc", 0.5, delay=0),
                    SynapseBlock("b", "d", "Mbd", 1.0, delay=0))
    n = sum(g.size for g in groups)
    return Core(groups, matrices, synapses, bias=rng.normal(0, 0.2, n), input_weight=rng.normal(0, 0.8, (n, 4)),
                fixed=FIXED).validate()


def _without(feature: str):
    """The image as a core without ``feature`` would have it (the negative control's broken hardware)."""
    def broken(image):
        if feature == "per-neuron":  # per-group constants (each group's first neuron) instead of the memories
            return dataclasses.replace(image, parameters=())
        if feature == "resets":  # the new modes read as the old ones
            old = {"subtract_before_decay": "subtract", "zero_drop_input": "zero"}
            return dataclasses.replace(image, reset=tuple(old.get(r, r) for r in image.reset))
        if feature == "IF":  # beta_q in Fb bits, one too few for IF: 2**Fb wraps to 0
            return dataclasses.replace(image, beta_q=tuple(b & ((1 << image.Fb) - 1) for b in image.beta_q))
        if feature == "CubaLIF":  # the other current_delay
            return dataclasses.replace(image, current_delay=tuple(1 - d for d in image.current_delay))
        if feature == "dense":  # dense entries read as ternary signs times alpha_q
            return dataclasses.replace(image, blocks=tuple(dataclasses.replace(b, dense=False) for b in image.blocks))
        raise AssertionError(feature)
    return broken


CASES = ("per-neuron", "IF and resets", "CubaLIF", "dense", "retimed")
STEPS = 30


def _verify(tmp_path, core: Core, backend: str, lanes: int = 3):
    graph = Graph.from_arrays(core)
    stimulus = Stimulus(core.input_currents(np.random.default_rng(7).standard_normal((STEPS, core.n_inputs))), "test")
    report = verify_digital(graph, stimulus, backend, DigitalOptions(lanes=lanes), tmp_path,
                            Provenance("test", "", stimulus.description, stimulus.sha256, STEPS))
    reference = simulate_fixed(core, quantize_core(core).quantize(stimulus.currents))
    return report, reference


@pytest.mark.parametrize("case", CASES)
def test_amaranth_is_bit_exact(tmp_path, case):
    core = kinds_core(case)
    report, reference = _verify(tmp_path, core, "amaranth")
    assert report.passed, report.lines
    saved = np.load(tmp_path / "digital-amaranth" / "raster.npz")
    assert np.array_equal(saved["spikes"], reference.spikes)  # on the original steps, also when retimed
    rates = [reference.spikes[:, sl].mean() for sl in core.offsets().values()]
    assert min(rates) > 0.02 and max(rates) < 0.8, rates  # every group fires, none always
    if case == "dense":
        w = core.block_weights(core.synapses[0]).quantized
        assert (np.abs(w) == 1 << (FIXED.Ww - 1)).any() or (w == (1 << (FIXED.Ww - 1)) - 1).any()  # w_q saturates


#: Per negative control: the core it runs on and the groups where its first divergence must be (those using
#: the feature).
CONTROLS = {"per-neuron": ("per-neuron", {"a", "b"}), "resets": ("IF and resets", {"if_sbd", "drop", "sbd"}),
            "IF": ("IF and resets", {"if_sbd", "if_zero"}), "CubaLIF": ("CubaLIF", {"now", "late"}),
            "dense": ("dense", {"a", "b"}), "retimed": ("retimed", {"mid", "out"})}


@pytest.mark.parametrize("feature", sorted(CONTROLS))
def test_negative_control_without_the_feature_fails(tmp_path, monkeypatch, feature):
    case, groups = CONTROLS[feature]
    core = kinds_core(case)
    if case == "retimed":  # the hardware on the stream without the skew: group g gets x[t] instead of x[t - skew_g]
        skew = place(Graph.from_arrays(core), 3).arrays().per_neuron("skew").astype(int)
        real = run_pysim

        def unskewed(image, xq, vcd=None):
            padded = np.concatenate([xq, np.zeros((int(skew.max()),) + xq.shape[1:], dtype=xq.dtype)])
            return real(image, np.stack([padded[k: k + len(xq), i] for i, k in enumerate(skew)], axis=-1), vcd)

        monkeypatch.setattr("rcsnn.verify.digital.run_pysim", unskewed)
    else:
        monkeypatch.setattr("rcsnn.verify.digital.build_image", lambda placed: _without(feature)(build_image(placed)))
    report, _ = _verify(tmp_path, core, "amaranth")
    assert not report.passed
    d = json.loads((tmp_path / "digital-amaranth" / "report.json").read_text())["figures"]["divergence"]
    assert d["group"] in groups, d


def test_a_stack_that_cannot_be_retimed_is_refused():
    core = kinds_core("retimed")
    skip = SynapseBlock("in", "out", "Skip", 0.5, delay=0)  # level 0 -> level 2
    core = dataclasses.replace(core, matrices={**core.matrices, "Skip": np.ones((6, 8), np.int8)},
                               synapses=core.synapses + (skip,)).validate()
    with pytest.raises(RcsnnError, match=r"retime: synapses \w+->out"):
        place(Graph.from_arrays(core), 2)


@pytest.mark.parametrize(("case", "named"), [("IF and resets", "reset modes"), ("CubaLIF", "CubaLIF groups"),
                                             ("dense", "dense weights")])
def test_formal_proof_refuses_what_its_models_do_not_cover(case, named):
    with pytest.raises(RcsnnError, match=f"formal: .*this core has .*{named}"):
        prove("neuron", Graph.from_arrays(kinds_core(case)), lanes=2)


@pytest.mark.parametrize("lanes", [1, 4])
def test_parameter_memories_hold_each_neuron_in_its_slot(lanes):
    core = kinds_core("CubaLIF")
    image = build_image(place(Graph.from_arrays(core), lanes))
    q = quantize_core(core)
    memories = dict(image.parameters)
    assert set(memories) == {"beta", "theta", "beta_syn"} and image.cuba == (True, True, False)
    for name, values in (("beta", q.beta_q), ("theta", q.theta_q), ("beta_syn", q.beta_syn_q)):
        slots = np.array(memories[name]).T  # (n_words, lanes)
        assert np.array_equal(image.slots.from_slots(slots), values)
    plain = build_image(place(Graph.from_arrays(kinds_core("dense")), lanes))
    assert plain.parameters == () and plain.cuba == ()  # no memories, no second state where no group needs them


@pytest.fixture(scope="module")
def everything():
    return kinds_core("everything")


def test_everything_in_icarus(tmp_path, everything):
    report, _ = _verify(tmp_path, everything, "icarus")
    assert report.passed, report.lines


def test_everything_negative_control_in_icarus(tmp_path, monkeypatch, everything):
    """A dense block read as ternary in the emitted Verilog fails in Icarus."""
    monkeypatch.setattr("rcsnn.digital.emit.build_image", lambda placed: _without("dense")(build_image(placed)))
    monkeypatch.setattr("rcsnn.verify.digital.build_image", lambda placed: _without("dense")(build_image(placed)))
    report, _ = _verify(tmp_path, everything, "icarus")
    assert not report.passed


@pytest.mark.slow
def test_everything_in_verilator(tmp_path, everything):
    report, _ = _verify(tmp_path, everything, "verilator")
    assert report.passed, report.lines
