"""Bounded formal proofs (SymbiYosys + Boolector) of the neuron update and the synapse accumulator.

Default suite: the accumulator at the example core's widths, the neuron at small widths (both
reset modes), and the negative controls: deliberately wrong reference models must FAIL with a
counterexample. ``-m slow``: the neuron at the example's widths, every group boundary word.
"""

from __future__ import annotations

import pytest
from conftest import EXAMPLE_CHECKPOINT, random_graph

from rcsnn.digital import formal
from rcsnn.digital.layout import build_image, place
from rcsnn.errors import RcsnnError
from rcsnn.frontends.load import load_core
from rcsnn.ir.arrays import FixedFormat


@pytest.fixture(scope="module")
def example():
    return place(load_core(EXAMPLE_CHECKPOINT), 8)


@pytest.fixture(scope="module")
def small():
    """Two groups, zero and subtract reset, Wv = 8, Fb = 4, one lane: words 0-4 and 5-10."""
    return place(random_graph(3, sizes=(5, 6), resets=("zero", "subtract"), shared=False, fixed=FixedFormat(8, 3, 4)), 1)


class Rounding(formal.NeuronModel):
    """Wrong: rounds half up instead of flooring."""

    def floor_div(self, value):
        return (value + (1 << (self.Fb - 1))) >> self.Fb


class Wrapping(formal.NeuronModel):
    """Wrong: drops the saturation (two's complement wrap-around)."""

    def saturate(self, value):
        return value[:self.Wv].as_signed()


class NeverCleared(formal.AccumulatorModel):
    """Wrong: a read does not clear the sum."""

    def after_read(self, total):
        return total


def test_accumulator_is_proved_at_the_example_widths(example):
    image = build_image(example)
    result = formal.prove("accumulator", example)
    assert result.passed, result.summary() + "\n" + result.cases[0].log[-2000:]
    assert result.depth == formal.DEFAULT_DEPTH["accumulator"]
    assert result.widths == {"Wv": image.Wv, "Fb": image.Fb, "acc_width": image.acc_width, "words": image.slots.n_words}
    assert (image.Wv, image.Fb, image.acc_width) == (23, 14, 21)
    assert result.cases[0].workdir is None  # a passing proof in a temporary directory leaves nothing behind


def test_accumulator_that_never_clears_fails_with_a_counterexample(example, tmp_path):
    result = formal.prove("accumulator", example, model=NeverCleared(), workdir=tmp_path)
    assert result.status == "FAIL"
    assert result.trace is not None and result.trace.is_file() and result.trace.stat().st_size > 0
    # the memory keeps the model's sum only until it is cleared: the first assertion to see it may be either
    assert any("a read returns the sum since the last read" in f or "the memory holds the sum" in f
               for f in result.failed), result.failed


def test_neuron_is_proved_at_small_widths_in_both_reset_modes(small):
    image = build_image(small)
    assert image.subtract == (False, True)
    # the last word of the zero-reset group and the first of the subtract one: the group decoding's edge
    result = formal.prove("neuron", small, words=(4, 5))
    assert result.passed, result.summary() + "\n" + result.cases[-1].log[-2000:]
    assert [c.name for c in result.cases] == ["word 4", "word 5"]
    assert result.depth == formal.ISSUES[-1] + 6


@pytest.mark.parametrize("model", [Rounding, Wrapping], ids=["rounding-instead-of-floor", "no-saturation"])
def test_wrong_neuron_models_fail(small, model, tmp_path):
    image = build_image(small)
    result = formal.prove("neuron", small, words=(5,), model=model(image.Wv, image.Fb), workdir=tmp_path)
    assert result.status == "FAIL"
    assert result.trace is not None and result.trace.is_file()
    assert any("v' of the contract" in f or "membrane memory" in f for f in result.failed), result.failed


def test_prove_refuses_unknown_units_short_depths_and_bad_words(small):
    with pytest.raises(RcsnnError, match="unknown unit"):
        formal.prove("synapse", small)
    with pytest.raises(RcsnnError, match="too short"):
        formal.prove("neuron", small, depth=formal.LATENCY)
    with pytest.raises(RcsnnError, match="outside"):
        formal.prove("neuron", small, words=(11,))


def test_boundary_words_straddle_every_group_boundary(example, small):
    assert formal.boundary_words(build_image(example)) == (63, 64, 127, 128, 191)
    assert formal.boundary_words(build_image(small)) == (4, 5, 10)


@pytest.mark.slow
def test_neuron_is_proved_at_the_example_widths(example):
    result = formal.prove("neuron", example, keep_going=True)
    assert result.passed, result.summary()
    assert [c.name for c in result.cases] == ["word 63", "word 64", "word 127", "word 128", "word 191"]


@pytest.mark.slow
def test_rounding_neuron_fails_at_the_example_widths(example, tmp_path):
    result = formal.prove("neuron", example, words=(64,), model=Rounding(23, 14), workdir=tmp_path)
    assert result.status == "FAIL" and result.trace is not None
