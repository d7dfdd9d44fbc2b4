"""Spike queue: the update phase stores (word, lane mask) of the words that fired; the next
propagate phase replays them as one event per (spike, outgoing synapse block).

Memory: ``n_words`` entries of ``group + pre_bits + lanes`` bits (``{mask, base, group}``), written in order;
only words with at least one spike are stored, so replay costs one cycle per event with no
scan of silent neurons. Event ``(b, j)``: block b (``pre_first[g] .. + pre_count[g]``) and the
local index ``j = base + lane`` of the spiking neuron of group g, where ``base = (word - word_base[g]) * lanes``
is computed when the word is written (from the neuron lanes' registered address), so the block RAM's read goes
straight into registers on replay: no group comparators, subtraction or multiplication by ``lanes`` behind it.

Spike counts (``image.spike_bits`` Wc > 1): entries are ``{counts, base, group}`` (Wc bits per lane, lane k at bit
``k * Wc``; the mask is ``count != 0`` per lane) and each event carries its neuron's count ``ev_count``: one
event per (spiking neuron, block), whatever the count.
"""

from __future__ import annotations

from amaranth import Array, Cat, Const, Module, Mux, Signal
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out

from .layout import Image, bits
from .neuron import group_of

__all__ = ["SpikeQueue"]


class SpikeQueue(wiring.Component):
    """Spike list of one step and its replay as synapse events.

    Parameters
    ----------
    image : Image
        Layout of the core: words, lanes, groups and synapse blocks (``pre_first``, ``pre_count``).

    Attributes
    ----------
    clear : In(1)
        Pulse high for one cycle to empty the list (at the start of an update phase).
    wr_valid : In(1)
        Append ``{wr_mask, wr_word}`` to the list in this cycle.
    wr_word : In(unsigned(image.word_bits))
        Word address of the neurons that fired.
    wr_mask : In(unsigned(image.lanes * image.spike_bits))
        Lanes of ``wr_word`` that fired (bit k: lane k); nonzero. With Wc > 1: the lanes' counts (Wc bits each).
    start : In(1)
        Pulse high for one cycle to replay the list from its first entry (at the start of a
        propagate phase).
    ev_valid : Out(1)
        An event ``(ev_block, ev_pre)`` is offered.
    ev_ready : In(1)
        The synapse lanes take the event (valid/ready handshake: it moves when both are high).
    ev_block : Out(unsigned(image.block_bits))
        Synapse block of the event, ``pre_first[g] .. pre_first[g] + pre_count[g] - 1`` for the
        group g of the spiking neuron.
    ev_pre : Out(unsigned(image.pre_bits))
        Index of the spiking neuron within its group, ``(word - word_base[g]) * lanes + lane``.
    busy : Out(1)
        Entries or events are left to replay.
    ev_count : Out(unsigned(image.spike_bits))
        Wc > 1 only: the spike count of the event's neuron.
    """

    def __init__(self, image: Image):
        self.image = image
        wc = image.spike_bits
        super().__init__({
            "clear": In(1), "wr_valid": In(1), "wr_word": In(image.word_bits), "wr_mask": In(image.lanes * wc),
            "start": In(1),
            "ev_valid": Out(1), "ev_ready": In(1), "ev_block": Out(image.block_bits), "ev_pre": Out(image.pre_bits),
            "busy": Out(1), **({"ev_count": Out(wc)} if wc > 1 else {}),
        })

    def elaborate(self, platform):
        im, m = self.image, Module()
        lanes, n_words, wc = im.lanes, im.slots.n_words, im.spike_bits
        group_bits = im.group_bits
        m.submodules.mem = mem = memory.Memory(shape=group_bits + im.pre_bits + lanes * wc, depth=n_words, init=[])
        wr, rd = mem.write_port(), mem.read_port()
        count, ptr = Signal(bits(n_words)), Signal(bits(n_words))
        # the entry's group and first pre index (times ``lanes`` as shifts and adds, so no multiplier is spent on
        # a constant), from the written word
        word_group = Signal(group_bits)
        m.d.comb += word_group.eq(group_of(im, self.wr_word))
        word_base = Array(Const(b, im.word_bits) for b in im.slots.word_base)[word_group]
        base = sum((self.wr_word - word_base) << k for k in range(lanes.bit_length()) if lanes >> k & 1)
        m.d.comb += [wr.en.eq(self.wr_valid), wr.addr.eq(count),
                     wr.data.eq(Cat(word_group, base[:im.pre_bits], self.wr_mask))]
        with m.If(self.clear):
            m.d.sync += count.eq(0)
        with m.Elif(self.wr_valid):
            m.d.sync += count.eq(count + 1)

        # replay: the current word's remaining mask, its group and first pre index
        mask, group, pre_base = Signal(lanes), Signal(group_bits), Signal(im.pre_bits)
        cursor = Signal(im.block_bits)
        # lane of the lowest set bit of the mask (one lane: always 0, and no zero-width signal, which
        # Verilog would declare as ``[-1:0]``)
        lowest = Signal(range(lanes), name="lowest") if lanes > 1 else Const(0, 1)
        for k in reversed(range(lanes) if lanes > 1 else ()):
            with m.If(mask[k]):
                m.d.comb += lowest.eq(k)
        n_blocks = Array(Const(n, bits(len(im.blocks))) for n in im.pre_count)[group]
        first = Array(Const(f, im.block_bits) for f in im.pre_first)[group]
        last_block = (n_blocks == 0) | (cursor + 1 == n_blocks)
        advance = (mask != 0) & ((n_blocks == 0) | self.ev_ready)
        rest = Mux(advance & last_block, mask & (mask - 1), mask)
        running = Signal()
        load = running & (rest == 0) & (ptr != count)
        m.d.comb += [
            self.ev_valid.eq((mask != 0) & (n_blocks != 0)),
            self.ev_block.eq(first + cursor), self.ev_pre.eq(pre_base + lowest),
            rd.addr.eq(Mux(self.start, 0, Mux(load, ptr + 1, ptr))),
            self.busy.eq(running & ((mask != 0) | (ptr != count))),
        ]
        with m.If(advance):
            m.d.sync += cursor.eq(Mux(last_block, 0, cursor + 1))
        m.d.sync += mask.eq(rest)
        stored_group, stored_base = rd.data[:group_bits], rd.data[group_bits:group_bits + im.pre_bits]
        stored, loaded = rd.data[group_bits + im.pre_bits:], []
        if wc > 1:  # counts: the lane mask is count != 0; the counts are kept for the events
            counts = Signal(lanes * wc)
            m.d.comb += self.ev_count.eq(counts.word_select(lowest, wc))
            loaded = [counts.eq(stored)]
            stored = Cat(stored.word_select(k, wc).any() for k in range(lanes))
        with m.If(self.start):
            m.d.sync += [ptr.eq(0), running.eq(1)]
        with m.Elif(~self.busy):
            m.d.sync += running.eq(0)
        with m.Elif(load):
            m.d.sync += [
                *loaded, mask.eq(stored), group.eq(stored_group), pre_base.eq(stored_base), ptr.eq(ptr + 1),
            ]
        return m
