"""Text corpora, character vocabularies, the held-out split and training batches."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import RcsnnError
from ..text import default_text, read_text

__all__ = ["HELD_OUT_FRACTION", "Corpus", "StreamBatches", "default_text", "read_text"]

HELD_OUT_FRACTION = 0.1


@dataclass(frozen=True)
class Corpus:
    """A text split into training (first 90 %) and held-out (last 10 %) token arrays."""

    vocab: str
    train: np.ndarray
    held_out: np.ndarray

    @classmethod
    def from_text(cls, text: str) -> Corpus:
        vocab = "".join(sorted(set(text)))
        index = {c: i for i, c in enumerate(vocab)}
        tokens = np.array([index[c] for c in text], dtype=np.int64)
        split = int(len(tokens) * (1 - HELD_OUT_FRACTION))
        return cls(vocab, tokens[:split], tokens[split:])

    def prompts(self, count: int = 10, size: int = 40) -> list[str]:
        """``count`` prompts of ``size`` held-out characters at evenly spaced offsets of the held-out split."""
        step = (len(self.held_out) - size) // count
        return ["".join(self.vocab[t] for t in self.held_out[k * step: k * step + size]) for k in range(count)]


class StreamBatches:
    """Contiguous streams for truncated BPTT with state carried across segments.

    The training text is cut into ``batch`` equal streams; call ``k`` returns
    inputs and targets ``(batch, length)`` for segment ``k`` of every stream and
    whether the carried state must be reset (the streams wrapped around).
    """

    def __init__(self, tokens: np.ndarray, batch: int, length: int):
        per_stream = len(tokens) // batch
        if per_stream < length + 1:
            raise RcsnnError(f"corpus: {len(tokens)} training characters are too few for {batch} streams of {length}")
        self.streams = tokens[: per_stream * batch].reshape(batch, per_stream)
        self.length = length
        self.segments = (per_stream - 1) // length

    def __call__(self, k: int) -> tuple[np.ndarray, np.ndarray, bool]:
        seg = k % self.segments
        lo = seg * self.length
        chunk = self.streams[:, lo : lo + self.length + 1]
        return chunk[:, :-1], chunk[:, 1:], seg == 0
