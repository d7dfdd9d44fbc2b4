"""The float64 and fixed-point references against independent implementations of the contract."""

import numpy as np
import pytest
from conftest import EXAMPLE_CHECKPOINT, SMALL_CHECKPOINT, random_core
from contract_impl import contract_fixed_raster, contract_float_raster

from rcsnn.frontends.checkpoint import load_checkpoint
from rcsnn.ir.arrays import FixedFormat
from rcsnn.ir.reference import quantize_core, simulate_fixed, simulate_float
from rcsnn.model.corpus import Corpus, default_text


def _full_blocks(core):
    """Each synapse block as an N x N matrix at its group offsets."""
    offsets = core.offsets()
    blocks = []
    for s in core.synapses:
        full = np.zeros((core.n_neurons, core.n_neurons), dtype=np.int64)
        full[offsets[s.post], offsets[s.pre]] = core.matrices[s.matrix]
        blocks.append(full)
    return blocks


def _held_out_tokens(core, steps):
    corpus = Corpus.from_text(default_text())
    text = "".join(corpus.vocab[t] for t in corpus.held_out[:steps])
    return core.frontend.encode(text)


@pytest.mark.parametrize("path", [SMALL_CHECKPOINT, EXAMPLE_CHECKPOINT], ids=["small", "example"])
def test_independent_contract_implementation_reproduces_raster(path):
    core = load_checkpoint(path).arrays()
    tokens = _held_out_tokens(core, 200)
    ours = simulate_float(core, core.token_currents(tokens)).spikes
    theirs = contract_float_raster(path, tokens)
    assert ours.sum() > 0.02 * ours.size  # the core is active, so the comparison means something
    np.testing.assert_array_equal(ours, theirs)


@pytest.mark.parametrize("resets", [("zero", "zero"), ("subtract", "subtract"), ("zero", "subtract")])
@pytest.mark.parametrize("cross", [False, True])
def test_fixed_point_matches_integer_contract(resets, cross):
    core = random_core(seed=3, sizes=(10, 10), resets=resets, cross=cross, fixed=FixedFormat(Wv=12, Fv=6, Fb=8))
    rng = np.random.default_rng(1)
    x = core.input_currents(rng.normal(0, 1.5, (60, core.n_inputs)))
    run = simulate_fixed(core, x)
    theirs = contract_fixed_raster(core.per_neuron("beta"), core.per_neuron("theta"), [s.alpha for s in core.synapses],
                                   _full_blocks(core), core.bias, x, core.reset_subtract(), 12, 6, 8)
    np.testing.assert_array_equal(run.spikes, theirs)
    assert (run.membranes < 0).any(), "negative membranes must be exercised (floor, not truncation)"
    assert run.spikes.any()


def test_fixed_point_saturates():
    core = random_core(seed=5, sizes=(6, 6), fixed=FixedFormat(Wv=8, Fv=4, Fb=8))
    x = core.input_currents(np.full((40, core.n_inputs), -30.0))
    run = simulate_fixed(core, x)
    q = quantize_core(core)
    assert run.membranes.min() == q.v_min  # clamped, not wrapped
    assert run.membranes.max() <= q.v_max


def test_float_reference_contract_equations_by_hand():
    """One neuron, no synapses: v follows the two reset rules exactly."""
    core = random_core(seed=0, sizes=(1, 1), resets=("zero", "subtract"), density=0.0)
    x = core.input_currents(np.ones((6, core.n_inputs)))
    run = simulate_float(core, x)
    for k, g in enumerate(core.groups):
        v, s = 0.0, 0.0
        xin = x[:, k] + core.bias[k]
        for t in range(6):
            v = (g.beta * v - g.theta * s if g.reset == "subtract" else g.beta * v * (1 - s)) + xin[t]
            s = float(v >= g.theta)
            assert run.membranes[t, k] == v and run.spikes[t, k] == s


def test_fixed_differs_little_from_float_on_trained_core():
    core = load_checkpoint(SMALL_CHECKPOINT).arrays()
    x = core.token_currents(_held_out_tokens(core, 300))
    f, q = simulate_float(core, x), simulate_fixed(core, x)
    fixed = quantize_core(core)
    # Same membranes to within the quantisation of a few steps' inputs.
    assert np.abs(f.membranes[:5] - q.membranes[:5] / 2**fixed.Fv).max() < 1e-2
    assert (f.spikes != q.spikes).mean() < 0.05
