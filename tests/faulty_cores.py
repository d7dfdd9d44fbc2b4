"""Deliberately broken digital cores for the negative controls (tests only).

:class:`FaultyCore` is the real :class:`~rcsnn.digital.core.NeuromorphicCore` (trace port included)
behind a thin shell with the very same ports, which counts steps (``done`` pulses) and injects
one fault at the ports:

* ``drop=(step, word, lane)``: the spike of slot ``word * lanes + lane`` at that step is masked out
  of the ``spikes`` stream. The core inside is untouched (its spike queue still replays the spike),
  so exactly one spike is missing: the raster differs in one (step, neuron) and nowhere else.
* ``stall_from=step``: ``done`` is never raised again from that step on — a core that hangs.

The same shell runs in Amaranth's simulator (as the DUT) and, written to ``rcsnn_core.v`` by
:func:`rcsnn.digital.emit.write_core`, in Verilator and Icarus. :func:`weight_flip` flips the sign
of one stored synapse; :func:`drive_x` edits emitted Verilog so that lane 0's spike output is X
whenever that lane fires.
"""

from __future__ import annotations

import dataclasses
import re

import numpy as np
from amaranth import Module, Mux, Signal
from amaranth.lib import wiring

from rcsnn.digital.core import NeuromorphicCore
from rcsnn.digital.layout import Image
from rcsnn.digital.wrapper import port_signals


class FaultyCore(wiring.Component):
    """``NeuromorphicCore(image, trace=True)`` with one fault at its ports (module docstring)."""

    def __init__(self, image: Image, *, drop: tuple[int, int, int] | None = None, stall_from: int | None = None):
        self.image, self.drop, self.stall_from = image, drop, stall_from
        self.inner = NeuromorphicCore(image, trace=True)
        super().__init__(self.inner.signature)

    def elaborate(self, platform):
        m = Module()
        m.submodules.core = core = self.inner
        for (name, mine, is_input), (_, theirs, _) in zip(port_signals(self), port_signals(core)):
            if is_input:
                m.d.comb += theirs.eq(mine)
            elif name not in ("spikes__payload", "done"):
                m.d.comb += mine.eq(theirs)
        step = Signal(32)
        with m.If(core.done):
            m.d.sync += step.eq(step + 1)
        mask = core.spikes.payload.mask
        if self.drop is not None:
            t, word, lane = self.drop
            hit = (step == t) & (core.spikes.payload.word == word)
            mask = Mux(hit, mask & ~(1 << lane), mask)
        done = core.done if self.stall_from is None else core.done & (step < self.stall_from)
        m.d.comb += [self.spikes.payload.word.eq(core.spikes.payload.word), self.spikes.payload.mask.eq(mask),
                     self.done.eq(done)]
        return m


def slot_of(image: Image, neuron: int) -> tuple[int, int]:
    """``(word, lane)`` of global neuron ``neuron``."""
    word, lane = np.argwhere(image.slots.neurons() == neuron)[0]
    return int(word), int(lane)


def weight_flip(image: Image, lane: int, entry: int) -> tuple[Image, int, int]:
    """``image`` with the sign of stored synapse ``entries[lane][entry]`` flipped, and where that synapse is:
    ``(image, post local index i, rowptr row)`` (row = the matrix's ``row_base`` + pre index j)."""
    word = image.entries[lane][entry]
    counts = [(r & ((1 << image.start_bits) - 1), r >> image.start_bits) for r in image.rowptr[lane]]
    row = next(k for k, (start, count) in enumerate(counts) if start <= entry < start + count)
    entries = list(image.entries)
    entries[lane] = entries[lane][:entry] + (word ^ (1 << image.row_bits),) + entries[lane][entry + 1:]
    post = (word & ((1 << image.row_bits) - 1)) * image.lanes + lane
    return dataclasses.replace(image, entries=tuple(entries)), post, row


def drive_x(verilog: str) -> str:
    """Emitted ``rcsnn_core.v`` with lane 0's bit of the ``spikes`` mask X whenever lane 0 fires."""
    pattern = re.compile(r"(assign spikes__payload\[\d+:\d+\] = \{.*), out_spike \};")
    edited, n = pattern.subn(r"\1, (out_spike ? 1'bx : 1'b0) };", verilog)
    assert n == 1, "the spikes mask assignment of rcsnn_core.v changed shape; update drive_x"
    return edited
