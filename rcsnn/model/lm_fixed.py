"""The whole language model in integers: what ``rcsnn verilog --lm`` puts on the chip, as a reference.

``rcsnn generate --backend fixed-lm`` runs this; the LM top (:mod:`rcsnn.digital.lm`) must give the
same bytes. Every number below is an integer the hardware holds in a ROM or computes:

* **Embedding**: ``table[c] = sat(round(x(c) · 2^Fv))`` ``(V, N)``, the quantised input currents of
  character ``c`` — exactly what the host feeds the core in ``rcsnn generate --backend fixed``.
* **Readout** (int8, one scale per tensor): ``s_w = max|W_out| / 127``, ``W_q = round(W_out / s_w)``
  in −127..127, ``b_q = round(b_out / s_w)``; logits in units of ``s_w``:
  ``z_c = Σ_i W_q[c, i] s_i + b_q[c]`` (exact integers). Its cost is measured by :func:`readout_cost`.
* **Greedy**: the lowest ``c`` with the largest ``z_c``.
* **Sampled** (Gumbel-max, no exponentials): ``c = argmax_c (z_c + g[u_c])`` (ties: lowest ``c``),
  with ``u_c`` one :data:`UBITS`-bit draw of the LFSR per character of the vocabulary, in vocabulary
  order, and ``g[u] = round(T / s_w · G((u + ½) / 2^UBITS))``, ``G(p) = −ln(−ln p)`` a standard
  Gumbel variate (a ROM of ``2^UBITS`` entries). With exact ``G`` this draws ``c`` with probability
  ``softmax(W_out s + b_out)/T``; here ``p`` is quantised to ``UBITS`` bits (Gumbel tails cut at
  −2.03 and +7.62) and ``g`` rounded to one logit unit ``s_w``.
* **LFSR**: 32-bit Galois, right shift, toggle mask :data:`TAPS` (x^32 + x^22 + x^2 + x + 1, maximal
  length): ``state = (state >> 1) ^ (TAPS if state & 1 else 0)``; a draw advances it :data:`UBITS`
  steps and takes the low ``UBITS`` bits. ``seed`` is loaded at the start of each generation
  (0 loads 1: the all-zero state is a fixed point).
* **Bytes**: the prompt arrives as UTF-8 bytes, decoded by :class:`Utf8Decoder` (the hardware's rule:
  a byte that is not a continuation starts a new character, a stray continuation byte is dropped);
  every decoded character in the vocabulary is one step of the core, any other is dropped. Generated
  characters leave as their UTF-8 bytes.

A generation feeds the prompt, then ``length`` times reads out the last step's spikes, chooses a
character, emits it and steps the core with it (so the core ends having seen every character, as
in :func:`rcsnn.model.generate.generate`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..errors import RcsnnError
from ..ir.graph import Graph
from ..ir.reference import FixedStepper, quantize_core
from ..text import default_text
from .readout import LOG2E, log_softmax

__all__ = ["TAPS", "UBITS", "WEIGHT_MAX", "DEFAULT_TEMPERATURE", "FixedLM", "Lfsr", "Utf8Decoder", "LMGeneration",
           "fixed_lm", "gumbel_table", "lm_generate", "readout_cost"]

#: Toggle mask of the 32-bit Galois LFSR (taps 32, 22, 2, 1).
TAPS = 0x80200003
#: Bits of one uniform draw (and address bits of the Gumbel ROM).
UBITS = 10
#: Largest |W_q| of the int8 readout.
WEIGHT_MAX = 127
#: The sampler's temperature unless given (``rcsnn generate``'s default); a greedy run builds this one too.
DEFAULT_TEMPERATURE = 0.8


class Lfsr:
    """The 32-bit Galois LFSR of the sampler (module docstring); :meth:`draw` gives one ``UBITS``-bit number."""

    def __init__(self, seed: int):
        self.state = (int(seed) & 0xFFFFFFFF) or 1

    def draw(self) -> int:
        for _ in range(UBITS):
            self.state = (self.state >> 1) ^ (TAPS if self.state & 1 else 0)
        return self.state & ((1 << UBITS) - 1)


class Utf8Decoder:
    """The prompt decoder of the chip: :meth:`feed` takes one byte and returns a code point when one is complete."""

    def __init__(self):
        self.need, self.code = 0, 0

    def feed(self, byte: int) -> int | None:
        if byte & 0xC0 == 0x80:  # continuation
            if self.need == 0:
                return None
            self.code, self.need = (self.code << 6) | (byte & 0x3F), self.need - 1
            return self.code if self.need == 0 else None
        if byte < 0x80:
            self.need = 0
            return byte
        self.need = 1 if byte < 0xE0 else 2 if byte < 0xF0 else 3
        self.code = byte & (0x1F, 0x0F, 0x07)[self.need - 1]
        return None


@dataclass(frozen=True)
class FixedLM:
    """The integer language model around a core (module docstring).

    Attributes:
        vocab: the characters, index = token.
        table: embedding ROM, ``(V, N)`` int64 quantised currents (``2^-Fv`` membrane units, without bias).
        weight_q: readout weights ``(V, N)`` int64 in −127..127.
        bias_q: readout biases ``(V,)`` int64.
        scale: ``s_w``, the logit unit (nats per integer step).
        temperature: ``T`` of the sampler (> 0).
        noise: Gumbel ROM ``(2^UBITS,)`` int64, logit units.
    """

    vocab: str
    table: np.ndarray
    weight_q: np.ndarray
    bias_q: np.ndarray
    scale: float
    temperature: float
    noise: np.ndarray

    def logits(self, spikes: np.ndarray) -> np.ndarray:
        """``z = W_q s + b_q`` (int64, units of :attr:`scale`) for spikes ``(..., N)``."""
        return np.asarray(spikes, dtype=np.int64) @ self.weight_q.T + self.bias_q

    def choose(self, spikes: np.ndarray, lfsr: Lfsr | None) -> int:
        """The next token from one step's spikes: greedy without ``lfsr``, else Gumbel-max with its draws."""
        z = self.logits(spikes)
        if lfsr is not None:
            z = z + self.noise[[lfsr.draw() for _ in range(len(z))]]
        return int(np.argmax(z))  # the first (lowest) index of the maximum

    @property
    def utf8(self) -> list[bytes]:
        return [ch.encode("utf-8") for ch in self.vocab]

    def token_of(self, code: int) -> int | None:
        for token, ch in enumerate(self.vocab):
            if ord(ch) == code:
                return token
        return None


def gumbel_table(temperature: float, scale: float) -> np.ndarray:
    """``g[u] = round(T / s_w · G((u + ½) / 2^UBITS))``, ``G(p) = −ln(−ln p)``: ``(2^UBITS,)`` int64."""
    p = (np.arange(1 << UBITS, dtype=np.float64) + 0.5) / (1 << UBITS)
    return np.round(temperature / scale * -np.log(-np.log(p))).astype(np.int64)


def fixed_lm(graph: Graph, temperature: float = DEFAULT_TEMPERATURE) -> FixedLM:
    """The integer language model of ``graph`` (an LM core) sampling at ``temperature`` (> 0)."""
    core = graph.arrays()
    if core.frontend is None or core.readout_weight is None:
        raise RcsnnError("--lm: the core has no vocabulary/readout (not a language-model core)")
    if not (temperature > 0 and math.isfinite(temperature)):
        raise RcsnnError(f"--temperature {temperature}: the chip's sampler needs T > 0 (greedy is sample = 0)")
    vocab = core.frontend.vocab
    if any(ord(ch) > 0xFFFF for ch in vocab):
        raise RcsnnError("--lm: the vocabulary has a character outside the Basic Multilingual Plane")
    table = quantize_core(core).quantize(core.token_currents(np.arange(len(vocab))))
    weight = core.readout_weight
    bias = core.readout_bias if core.readout_bias is not None else np.zeros(len(vocab))
    top = float(np.abs(weight).max())
    scale = top / WEIGHT_MAX if top > 0 else 1.0
    weight_q = np.round(weight / scale).astype(np.int64)
    bias_q = np.round(bias / scale).astype(np.int64)
    return FixedLM(vocab, table, weight_q, bias_q, scale, float(temperature), gumbel_table(temperature, scale))


@dataclass(frozen=True)
class LMGeneration:
    """A run of the integer LM: the generated ``text`` (bytes, UTF-8), every token fed ``(steps,)`` and the
    core's spikes ``(steps, N)`` int8."""

    text: bytes
    tokens: np.ndarray
    spikes: np.ndarray


def lm_generate(graph: Graph, lm: FixedLM, prompt: bytes, length: int, sample: bool, seed: int) -> LMGeneration:
    """Feed the UTF-8 ``prompt`` bytes, then generate ``length`` characters (module docstring)."""
    if not 0 <= length < 1 << 16:
        raise RcsnnError(f"--length {length}: the chip's length port is 16 bits (0..65535)")
    stepper = FixedStepper(graph)
    decoder = Utf8Decoder()
    tokens: list[int] = []
    raster = [np.zeros(graph.arrays().n_neurons, dtype=np.int8)]

    def step(token: int) -> None:
        tokens.append(token)
        raster.append(np.asarray(stepper.step(lm.table[token]), dtype=np.int8))

    for byte in prompt:
        code = decoder.feed(byte)
        token = None if code is None else lm.token_of(code)
        if token is not None:
            step(token)
    lfsr = Lfsr(seed) if sample else None
    out = bytearray()
    for _ in range(length):
        token = lm.choose(raster[-1], lfsr)
        out += lm.utf8[token]
        step(token)
    spikes = np.stack(raster[1:]) if len(raster) > 1 else np.zeros((0, len(raster[0])), dtype=np.int8)
    return LMGeneration(bytes(out), np.array(tokens, dtype=np.int64), spikes)


def readout_cost(graph: Graph, lm: FixedLM, steps: int = 3000) -> dict:
    """Bits per character of the float readout and of the int8 readout (``s_w · z``) on the fixed-point
    reference's spikes for the last ``steps`` characters of ``pydoc_data.topics`` (``steps − 1`` predictions)."""
    core = graph.arrays()
    text = default_text()[-steps:]
    tokens = core.frontend.encode(text)
    stepper = FixedStepper(graph)
    spikes = np.stack([stepper.step(lm.table[t]) for t in tokens[:-1]])
    bias = core.readout_bias if core.readout_bias is not None else 0.0

    def bpc(logits: np.ndarray) -> float:
        return float(-np.take_along_axis(log_softmax(logits), tokens[1:, None], -1).mean() * LOG2E)

    return {"characters": len(tokens) - 1, "float": bpc(spikes @ core.readout_weight.T + bias),
            "int8": bpc(lm.scale * lm.logits(spikes).astype(np.float64))}
