"""ROM contents and widths of the LM top: the integer model of :mod:`rcsnn.model.lm_fixed` in slot order.

Memories of :class:`~rcsnn.digital.lm.top.LanguageModelTop` (V characters, N slots = ``n_words × L``):

* ``codes``: V × 16 bits, the character's code point (the prompt decoder searches it);
* ``utf8``: V × 26 bits, ``count | b0 << 2 | b1 << 10 | b2 << 18``: the character's 1–3 UTF-8 bytes;
* ``embed``: ``V · n_words`` words of ``L × Wx`` bits, word ``token · n_words + w`` = the quantised
  currents of update word w (lane k at bit ``k · Wx``, two's complement), ``Wx`` the narrowest signed
  width that holds the table (the core's ``x`` stream is ``Wv`` bits: sign-extended);
* ``readout``: N words of ``V × 8`` bits, word ``slot`` = column ``W_q[:, neuron(slot)]`` (character c
  at bit ``8c``; padding slots 0);
* ``noise``: ``2^UBITS`` words of ``Wg`` bits, the Gumbel table ``g[u]``;
* the biases ``b_q`` are the accumulators' reset values (``Wz`` bits, signed, with ``Wz`` holding
  every reachable ``|z_c| = |Σ W_q s + b_q|`` and ``Wz + 1`` every score ``z + g``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...errors import RcsnnError
from ...model.lm_fixed import FixedLM
from ..layout import Image, require_binary

__all__ = ["LMImage", "signed_bits", "lm_image"]


def signed_bits(values) -> int:
    """Narrowest two's-complement width holding every value of ``values`` (at least 2)."""
    lo, hi = int(np.min(values)), int(np.max(values))
    return max(2, (max(hi, -lo - 1)).bit_length() + 1)


@dataclass(frozen=True)
class LMImage:
    """The LM top's parameters (module docstring) around the core's :class:`~rcsnn.digital.layout.Image`."""

    core: Image
    codes: tuple[int, ...]
    utf8: tuple[int, ...]
    embed: tuple[int, ...]
    readout: tuple[int, ...]
    noise: tuple[int, ...]
    bias: tuple[int, ...]
    x_bits: int
    z_bits: int
    noise_bits: int

    @property
    def vocab_size(self) -> int:
        return len(self.codes)


def _pack(values: np.ndarray, width: int) -> tuple[int, ...]:
    """``(rows, k)`` signed values -> one int per row, element j at bit ``j · width``."""
    mask = (1 << width) - 1
    return tuple(sum((int(v) & mask) << (j * width) for j, v in enumerate(row)) for row in values)


def lm_image(lm: FixedLM, image: Image) -> LMImage:
    """The LM top's ROMs for ``lm`` around the placed core ``image`` (not a retimed one: its steps lag its inputs)."""
    if any(getattr(image, "skew", ())):
        raise RcsnnError("--lm: a retimed core (same-step synapses) runs its groups late; the LM top needs every "
                         "group's spikes of the step it fed")
    require_binary(image, "the LM top (--lm) and the board tops")
    slots = image.slots
    x_bits = signed_bits(lm.table)
    embed = _pack(slots.to_slots(lm.table).reshape(-1, image.lanes), x_bits)  # (V · n_words, L)
    columns = slots.to_slots(lm.weight_q).reshape(len(lm.vocab), -1).T  # (slots, V)
    reach = np.abs(lm.weight_q).sum(axis=1) + np.abs(lm.bias_q)
    utf8 = tuple(len(b) | int.from_bytes(b, "little") << 2 for b in lm.utf8)
    return LMImage(image, tuple(ord(ch) for ch in lm.vocab), utf8, embed, _pack(columns, 8),
                   tuple(int(g) & ((1 << signed_bits(lm.noise)) - 1) for g in lm.noise), tuple(int(b) for b in lm.bias_q),
                   x_bits, signed_bits(np.concatenate([reach, -reach])), signed_bits(lm.noise))

