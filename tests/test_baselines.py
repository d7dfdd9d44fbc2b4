"""Baselines: n-gram bits/char computable by hand, GRU sizing, a 1-second GRU run."""

import math

import numpy as np
import pytest

from rcsnn.model.baselines import (
    GRULanguageModel,
    best_ngram,
    count_parameters,
    gru_hidden_for_params,
    ngram_bits_per_char,
    spiking_parameter_count,
    train_gru,
)
from rcsnn.model.corpus import Corpus
from rcsnn.model.lm import SpikingLM


def tokens(text: str, vocab: str = "abc") -> np.ndarray:
    return np.array([vocab.index(c) for c in text], dtype=np.int64)


def test_unigram_add_one_by_hand():
    # counts a:2 b:1, V=2: P(b) = (1 + 1) / (3 + 2)
    assert ngram_bits_per_char(tokens("aab"), tokens("b"), 1, 1.0, 2) == pytest.approx(-math.log2(0.4))


def test_periodic_text():
    # period "aabc": after one character "a" is followed by a or b equally often (1 bit at
    # half the positions); two characters determine the next one.
    train, held = tokens("aabc" * 200), tokens("aabc" * 20)
    assert ngram_bits_per_char(train, held, 2, 1e-9, 3) == pytest.approx(0.5, abs=1e-6)
    for order in (3, 4, 6):
        assert ngram_bits_per_char(train, held, order, 1e-9, 3) < 1e-6


def test_held_out_context_comes_from_training_text():
    # the first held-out "b" follows the training text's final "a": predictable at order 2
    assert ngram_bits_per_char(tokens("ab" * 50 + "a"), tokens("ba"), 2, 1e-9, 3) < 1e-6


def test_huge_k_is_uniform():
    rng = np.random.default_rng(0)
    bpc = ngram_bits_per_char(rng.integers(0, 7, 1000), rng.integers(0, 7, 100), 1, 1e9, 7)
    assert bpc == pytest.approx(math.log2(7), abs=1e-6)


def test_best_ngram_is_the_table_minimum():
    result = best_ngram(tokens("aabc" * 200), tokens("aabc" * 20), 3, orders=(1, 2, 3), ks=(1.0, 0.01))
    assert len(result["table"]) == 6
    assert result["bpc"] == min(row["bpc"] for row in result["table"])
    assert result["order"] == 3 and result["k"] == 0.01


@pytest.mark.parametrize("target", [10_000, 24_000, 526_887])
def test_gru_hidden_for_params_is_closest(target):
    hidden = gru_hidden_for_params(target, 103, 64)
    size = lambda h: abs(count_parameters(GRULanguageModel(103, 64, h)) - target)  # noqa: E731
    assert size(hidden) <= size(hidden - 1) and size(hidden) <= size(hidden + 1)


def test_spiking_parameter_count():
    model = SpikingLM("abcdefg", group_size=12, taus=(1.0, 4.0), embed=5)
    assert spiking_parameter_count(7, 2, 12, 5) == count_parameters(model)


def test_train_gru_one_second():
    corpus = Corpus.from_text("the quick brown fox jumps over the lazy dog. " * 60)
    model, result = train_gru(corpus, hidden=16, embed=8, seconds=1.0, batch=4, length=16, log=lambda line: None)
    assert result["steps"] >= 1 and math.isfinite(result["bpc"]) and 0 < result["bpc"] < 10
    assert count_parameters(model) > 0
