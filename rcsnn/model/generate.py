"""Autoregressive text generation from a language-model core, on any back end that can step it.

The host does the language model's ends — the character embedding (input currents of each token)
and the readout ``logits = W_out s[t] + b_out`` — and a :class:`Stepper` runs the recurrent core
one step at a time: the float64 or fixed-point reference here, a simulated circuit or digital core
from the back ends (``rcsnn generate --backend ...`` builds those: ``rcsnn.analog.stream.SpiceStepper``,
``rcsnn.digital.pysim_stepper.PysimStepper``, ``rcsnn.digital.stream.HdlStepper``), checked against
the reference by ``rcsnn.verify.generation``. The readout is :func:`rcsnn.model.readout.readout_logits`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from ..errors import RcsnnError
from ..ir.graph import Graph
from ..ir.reference import FixedStepper, FloatStepper, quantize_core
from .readout import readout_logits

__all__ = ["Stepper", "Generation", "generate", "reference_stepper", "references_agree_for"]


class Stepper(Protocol):
    """One step of the recurrent core at a time.

    Attributes:
        quantized: True if :meth:`step` takes fixed-point currents (int64, ``2**-Fv`` membrane units:
            the fixed-point reference and the digital cores), False for float64 membrane units.
    """

    quantized: bool

    def step(self, x: np.ndarray) -> np.ndarray:
        """Spikes ``(N,)`` (0/1) of the next step for external currents ``x`` ``(N,)`` (without bias)."""


@dataclass(frozen=True)
class Generation:
    """What a generation run produced.

    Attributes:
        text: the generated characters (after the prompt).
        tokens: every token fed to the core, prompt first, ``(steps,)``.
        spikes: the core's spikes at every step, ``(steps, N)`` int8.
    """

    text: str
    tokens: np.ndarray
    spikes: np.ndarray


def reference_stepper(graph: Graph, backend: str) -> Stepper:
    """The float64 (``float``, alias ``torch``) or fixed-point (``fixed``) reference as a :class:`Stepper`."""
    if backend in ("float", "torch"):
        return FloatStepper(graph)
    if backend == "fixed":
        return FixedStepper(graph)
    raise RcsnnError(f"--backend {backend!r}: not a reference (float, fixed)")


def generate(graph: Graph, prompt: str, length: int, stepper: Stepper, *, seed: int = 0,
             temperature: float = 0.8, progress: Callable[[int, int, str], None] | None = None) -> Generation:
    """Feed ``prompt`` one character per step, then choose ``length`` characters.

    The next character is ``argmax(logits)`` for ``temperature == 0`` (greedy; the lowest index on a
    tie), else drawn from ``softmax(logits / temperature)`` by ``numpy.random.default_rng(seed)`` —
    one draw per character, so two back ends whose spikes agree give the same text.
    ``progress(step, steps, text)``, if given, is called after every step of the core (1-based
    ``step`` of ``steps = len(prompt) + length``; ``text``: the characters generated so far).
    """
    core = graph.arrays()
    if core.frontend is None or core.readout_weight is None:
        raise RcsnnError("generate: the core has no vocabulary/readout (not a language-model core)")
    if not prompt:
        raise RcsnnError("--prompt: must not be empty")
    if not (temperature >= 0 and np.isfinite(temperature)):
        raise RcsnnError(f"--temperature {temperature}: must be >= 0 (0: greedy)")
    if length < 0:
        raise RcsnnError(f"--length {length}: must be >= 0")
    table = core.token_currents(np.arange(len(core.frontend.vocab)))
    if stepper.quantized:
        table = quantize_core(core).quantize(table)
    rng = np.random.default_rng(seed)
    tokens = list(core.frontend.encode(prompt))
    steps = len(tokens) + length
    out: list[str] = []
    raster = []

    def step(token: int) -> None:
        raster.append(np.asarray(stepper.step(table[token]), dtype=np.int8))
        if progress is not None:
            progress(len(raster), steps, "".join(out))

    for t in tokens:
        step(t)
    for _ in range(length):
        logits = readout_logits(core, raster[-1])
        if temperature == 0:
            token = int(np.argmax(logits))
        else:
            scaled = logits / temperature
            p = np.exp(scaled - scaled.max())
            token = int(rng.choice(len(p), p=p / p.sum()))
        out.append(core.frontend.vocab[token])
        tokens.append(token)
        step(token)
    return Generation("".join(out), np.array(tokens, dtype=np.int64), np.stack(raster))


def references_agree_for(graph: Graph, prompt: str, length: int, **options) -> int:
    """Leading characters that :func:`generate` (``options``: seed, temperature) gives alike on the float64 and on
    the fixed-point reference after ``prompt``: ``length`` if the two texts are equal."""
    texts = [generate(graph, prompt, length, reference_stepper(graph, backend), **options).text
             for backend in ("float", "fixed")]
    return next((k for k, (a, b) in enumerate(zip(*texts)) if a != b), length)
