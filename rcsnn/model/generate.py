"""Autoregressive text generation from a language-model core, on a reference backend."""

from __future__ import annotations

import numpy as np

from ..errors import RcsnnError
from ..ir.graph import Graph
from ..ir.reference import FixedStepper, FloatStepper

__all__ = ["generate"]


def generate(graph: Graph, prompt: str, length: int, backend: str = "float", seed: int = 0,
             temperature: float = 0.8) -> str:
    """Feed ``prompt`` one character per step, then sample ``length`` characters.

    The next character is drawn from ``softmax((W_out s[t] + b_out) / temperature)``
    with a seeded generator; ``backend`` is ``float`` (alias ``torch``, the float64
    reference) or ``fixed`` (the fixed-point reference, whose spikes feed the same readout).
    """
    core = graph.arrays()
    if core.frontend is None or core.readout_weight is None:
        raise RcsnnError("generate: the core has no vocabulary/readout (not a language-model core)")
    if not prompt:
        raise RcsnnError("--prompt: must not be empty")
    if temperature <= 0:
        raise RcsnnError(f"--temperature: {temperature} must be > 0")
    fixed = backend == "fixed"
    stepper = FixedStepper(core) if fixed else FloatStepper(core)
    table = core.token_currents(np.arange(len(core.frontend.vocab)))
    if fixed:
        table = stepper.q.quantize(table)
    bias = core.readout_bias if core.readout_bias is not None else 0.0
    rng = np.random.default_rng(seed)
    spikes = None
    for token in core.frontend.encode(prompt):
        spikes = stepper.step(table[token])
    out = []
    for _ in range(length):
        logits = (core.readout_weight @ spikes + bias) / temperature
        p = np.exp(logits - logits.max())
        token = int(rng.choice(len(p), p=p / p.sum()))
        out.append(core.frontend.vocab[token])
        spikes = stepper.step(table[token])
    return "".join(out)
