"""The language model's readout on a raster: logits, and held-out bits per character.

Every figure of bits per character in rcsnn comes from here: training's held-out metrics
(:func:`rcsnn.model.train.evaluate_core`), ``rcsnn generate`` (the next character's logits) and
``rcsnn verify --bpc`` (the hardware's own spikes). No torch: the readout is float64 numpy.
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import RcsnnError
from ..ir.arrays import Core, array_view

__all__ = ["LOG2E", "readout_logits", "log_softmax", "bits_per_char"]

#: log2(e): nats to bits.
LOG2E = 1.0 / math.log(2.0)


def readout_logits(core: Core, spikes: np.ndarray) -> np.ndarray:
    """``W_out s + b_out`` (float64, natural-log units) for spikes ``(..., N)``: logits ``(..., V)``."""
    core = array_view(core)
    if core.readout_weight is None:
        raise RcsnnError("the core has no readout (not a language-model core)")
    bias = core.readout_bias if core.readout_bias is not None else 0.0
    return np.asarray(spikes, dtype=np.float64) @ core.readout_weight.T + bias


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """Log-probabilities (nats) over the last axis, computed stably."""
    shifted = logits - logits.max(-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))


def bits_per_char(core: Core, spikes: np.ndarray, targets: np.ndarray) -> float:
    """Mean −log2 p(target) of the readout of ``spikes`` ``(steps, [streams,] N)``.

    ``targets`` ``(steps, [streams])`` are the token indices the spikes of each step must predict
    (the *next* character: spikes at step t, target token t + 1). Bits per character.
    """
    targets = np.asarray(targets, dtype=np.int64)
    spikes = np.asarray(spikes)
    if spikes.shape[:-1] != targets.shape or targets.size == 0:
        raise RcsnnError(f"bits per character: spikes {spikes.shape} do not match targets {targets.shape}")
    logp = log_softmax(readout_logits(core, spikes))
    picked = np.take_along_axis(logp, targets[..., None], -1)
    return float(-picked.mean() * LOG2E)
