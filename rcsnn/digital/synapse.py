"""Synapse lane: turns spike events into accumulator adds through this lane's CSR memories.

An event ``(block b, pre index j)`` waits in a small FIFO, then:

1. *fetch*: read ``rowptr[row_base[b] + j] = (start, count)`` into a descriptor register; rows
   with ``count == 0`` are dropped there;
2. *walk*: read ``entries[start .. start + count - 1]``, one per cycle, taking the next row in
   the cycle the last entry of the current one is read (no bubble between rows);
3. *add*: entry ``(row, negative)`` becomes ``acc[post_word_base[b] + row] += ±alpha_q[b]``; in a
   core with dense blocks the entry's field is ``weight_bits`` wide, and an entry ``(row, w_q)`` of a
   dense block adds the signed ``w_q`` (ternary blocks keep the sign in the field's low bit).

Spike counts (``image.spike_bits`` Wc > 1): the event carries the count s of its neuron along the fetch and
walk stages, and the add stage multiplies: ``s * (±alpha_q)`` or ``s * w_q`` (a Wc × acc_width product in
front of the delta register: a small LUT multiplier, or one DSP where the synthesis maps it there).

Throughput: one synapse per cycle; the FIFO lets lanes run ahead of one another, so a step's
propagate time is the largest per-lane fan-out sum, not a sum of per-spike maxima.
"""

from __future__ import annotations

from amaranth import Array, Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import fifo, memory, wiring
from amaranth.lib.wiring import In, Out

from .layout import Image, bits
from .neuron import load_signature

__all__ = ["FIFO_DEPTH", "SynapseLane"]

FIFO_DEPTH = 16


class SynapseLane(wiring.Component):
    """CSR walker of lane ``lane`` (memory contents from :class:`~rcsnn.digital.layout.Image`).

    ``preload=False`` leaves the CSR memories uninitialised (to be written through the load ports).

    Parameters
    ----------
    image : Image
        Layout and memory contents of the core (``rowptr[lane]``, ``entries[lane]``, blocks).
    lane : int
        Lane index, ``0 .. image.lanes - 1``: the lane's post neurons have local index ≡ ``lane``
        mod ``image.lanes``.
    preload : bool
        Initialise the CSR memories with the contents of ``image``.

    Attributes
    ----------
    ev_valid : In(1)
        A spike event ``(ev_block, ev_pre)`` is offered; it is queued (up to :data:`FIFO_DEPTH`)
        in a cycle where ``ev_ready`` is high.
    ev_ready : Out(1)
        The event FIFO has room.
    ev_block : In(unsigned(image.block_bits))
        Synapse block of the event.
    ev_pre : In(unsigned(image.pre_bits))
        Index of the spiking neuron within the block's pre group.
    add_valid : Out(1)
        Perform ``acc[add_addr] += add_delta`` in the lane's accumulators.
    add_addr : Out(unsigned(image.word_bits))
        Accumulator (update word) address, ``post_word_base[b] + row``.
    add_delta : Out(signed(image.acc_width))
        ``+alpha_q[b]`` or ``-alpha_q[b]`` by the sign of the synapse.
    busy : Out(1)
        An event or synapse is in flight (FIFO, fetch, walk or add stage).
    ev_count : In(unsigned(image.spike_bits))
        Wc > 1 only: the spike count of the event's neuron (the delta is multiplied by it).
    load_rowptr : In(load_signature(bits(image.n_rows - 1), image.start_bits + image.count_bits))
        Run-time write port (``en``, ``addr``, ``data``) of the row-pointer memory:
        ``start | count << image.start_bits`` words.
    load_entries : In(load_signature(bits(len(image.entries[lane]) - 1), image.row_bits + image.weight_bits))
        Run-time write port (``en``, ``addr``, ``data``) of the entry memory:
        ``row | negative << image.row_bits`` words (``row | w_q << image.row_bits`` for a dense block).
    """

    def __init__(self, image: Image, lane: int, preload: bool = True):
        self.image, self.lane, self.preload = image, lane, preload
        rows, ents = image.n_rows, len(image.entries[lane])
        super().__init__({
            "ev_valid": In(1), "ev_ready": Out(1), "ev_block": In(image.block_bits), "ev_pre": In(image.pre_bits),
            "add_valid": Out(1), "add_addr": Out(image.word_bits), "add_delta": Out(signed(image.acc_width)),
            "busy": Out(1), **({"ev_count": In(image.spike_bits)} if image.spike_bits > 1 else {}),
            "load_rowptr": In(load_signature(bits(rows - 1), image.start_bits + image.count_bits)),
            "load_entries": In(load_signature(bits(ents - 1), image.row_bits + image.weight_bits)),
        })

    def elaborate(self, platform):
        im, m = self.image, Module()
        wc = im.spike_bits
        counted = wc > 1
        m.submodules.events = events = fifo.SyncFIFOBuffered(width=im.block_bits + im.pre_bits + counted * wc,
                                                             depth=FIFO_DEPTH)
        m.submodules.rowptr = rowptr = memory.Memory(
            shape=im.start_bits + im.count_bits, depth=im.n_rows, init=im.rowptr[self.lane] if self.preload else [])
        m.submodules.entries = entries = memory.Memory(
            shape=im.row_bits + im.weight_bits, depth=len(im.entries[self.lane]),
            init=im.entries[self.lane] if self.preload else [])
        for mem, port in ((rowptr, self.load_rowptr), (entries, self.load_entries)):
            wr = mem.write_port()
            m.d.comb += [wr.en.eq(port.en), wr.addr.eq(port.addr), wr.data.eq(port.data)]
        rp, ent = rowptr.read_port(), entries.read_port()
        row_base = Array(Const(b.row_base, bits(im.n_rows)) for b in im.blocks)
        post_base = Array(Const(b.post_word_base, im.word_bits) for b in im.blocks)
        alpha = Array(Const(b.alpha_q, signed(im.acc_width)) for b in im.blocks)

        m.d.comb += [
            events.w_en.eq(self.ev_valid),
            events.w_data.eq(Cat(self.ev_block, self.ev_pre, *([self.ev_count] if counted else []))),
            self.ev_ready.eq(events.w_rdy),
        ]
        # fetch: FIFO head -> rowptr read (output held) -> descriptor registers -> walker. Every
        # handshake depends on registers only, so no memory output drives a memory enable.
        fetched, fetched_block = Signal(), Signal(im.block_bits)
        desc_valid, desc_block = Signal(), Signal(im.block_bits)
        desc_start, desc_count = Signal(im.start_bits), Signal(im.count_bits)
        walk_valid, walk_ptr = Signal(), Signal(im.start_bits)
        walk_left, walk_block = Signal(im.count_bits), Signal(im.block_bits)
        take = ~walk_valid | (walk_left == 1)
        consumed = desc_valid & ((desc_count == 0) | take)
        move = fetched & (~desc_valid | consumed)
        fetch = events.r_rdy & (~fetched | move)
        head_block = events.r_data[:im.block_bits]
        head_pre = events.r_data[im.block_bits: im.block_bits + im.pre_bits]
        # the spike count rides along with the block through every stage
        count = [events.r_data[im.block_bits + im.pre_bits:]] + [Signal(wc, name=f"spikes{k}") for k in range(4)] \
            if counted else []
        m.d.comb += [events.r_en.eq(fetch), rp.en.eq(fetch), rp.addr.eq(row_base[head_block] + head_pre)]
        with m.If(fetch):
            m.d.sync += [fetched.eq(1), fetched_block.eq(head_block), *([count[1].eq(count[0])] if counted else [])]
        with m.Elif(move):
            m.d.sync += fetched.eq(0)
        with m.If(move):
            m.d.sync += [desc_valid.eq(1), desc_block.eq(fetched_block), *([count[2].eq(count[1])] if counted else []),
                         desc_start.eq(rp.data[:im.start_bits]), desc_count.eq(rp.data[im.start_bits:])]
        with m.Elif(consumed):
            m.d.sync += desc_valid.eq(0)
        # walk: one entry read per cycle
        m.d.comb += ent.addr.eq(walk_ptr)
        with m.If(desc_valid & (desc_count != 0) & take):
            m.d.sync += [walk_valid.eq(1), walk_ptr.eq(desc_start), walk_left.eq(desc_count), walk_block.eq(desc_block),
                         *([count[3].eq(count[2])] if counted else [])]
        with m.Elif(walk_valid):
            m.d.sync += [walk_valid.eq(walk_left != 1), walk_ptr.eq(walk_ptr + 1), walk_left.eq(walk_left - 1)]
        # add: entry -> accumulator address and signed delta
        entry_valid, entry_block = Signal(), Signal(im.block_bits)
        m.d.sync += [entry_valid.eq(walk_valid), entry_block.eq(walk_block), self.add_valid.eq(entry_valid),
                     *([count[4].eq(count[3])] if counted else [])]
        row, negative = ent.data[:im.row_bits], ent.data[im.row_bits]
        delta = Mux(negative, -alpha[entry_block], alpha[entry_block])
        if any(b.dense for b in im.blocks):
            dense = Array(Const(b.dense, 1) for b in im.blocks)[entry_block]
            delta = Mux(dense, ent.data[im.row_bits:].as_signed(), delta)
        if counted:
            delta = delta * count[4]
        m.d.sync += [
            self.add_addr.eq(post_base[entry_block] + row),
            self.add_delta.eq(delta),
        ]
        busy = Cat(events.level != 0, fetched, desc_valid, walk_valid, entry_valid, self.add_valid)
        m.d.comb += self.busy.eq(busy.any())
        return m
