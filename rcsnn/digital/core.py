"""The event-driven neuromorphic core: spike queue, synapse lanes, accumulators, neuron lanes, controller.

Per step (contract.md, fixed point), with L = ``lanes``:

* propagate: every spike of step t-1 is replayed as events; lane k adds ``±alpha_q`` into the
  accumulators of its post neurons (local index ≡ k mod L) — Σ fan-out / L cycles when balanced;
* update: ``n_words`` beats of the ``x`` stream (L currents x_q each, slot order of
  :class:`~rcsnn.digital.layout.Slots`); each lane updates one neuron per cycle and clears
  its accumulator; spiking words go to the ``spikes`` stream and the spike queue.

Ports (``wiring`` signature; Verilog names ``<member>`` / ``<stream>__payload|valid|ready``):

* ``start`` In, ``busy``/``done`` Out, ``cycles`` Out(32): step control and cycles per step;
* ``x``: In stream, payload L × signed(Wv) (lane k in bits ``k*Wv ..``), valid/ready;
* ``spikes``: Out stream (always ready), payload ``{word, mask}``: slot ``word * L + k`` fired for
  each set bit k of ``mask``; in a core with spike counts (Wc = ``image.spike_bits`` > 1) ``mask`` holds
  L counts of Wc bits (lane k at bit ``k * Wc``);
* ``membranes`` (``trace=True`` only): Out stream (always ready), payload ``{word, v: L × signed(Wv)}``,
  every updated word;
* ``load``: In stream (always ready, only while idle), payload ``{mem, addr, data}``: write ``data``
  to word ``addr`` of memory ``mem = K * lane + kind`` (kind 0 rowptr, 1 entries, 2 bias,
  3 membrane ``{s, v}``, then — only in a core that has them, K = 4 otherwise — the synaptic
  current ``i`` of CubaLIF groups and the per-neuron parameters ``beta``, ``theta``, ``beta_syn``, ``v_lo``, ``v_hi``);
  see :func:`memory_kinds` and :func:`memory_map`.
"""

from __future__ import annotations

from amaranth import Cat, Module, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from .accumulator import AccumulatorBank
from .controller import CYCLE_BITS, Controller
from .layout import Image, bits
from .neuron import NeuronLane, neuron_memories
from .spikes import SpikeQueue
from .synapse import SynapseLane

__all__ = ["MEMORY_KINDS", "memory_kinds", "memory_map", "load_layout", "load_words", "NeuromorphicCore"]

MEMORY_KINDS = ("rowptr", "entries", "bias", "membrane")


def memory_kinds(image: Image) -> tuple[str, ...]:
    """The memories of each lane, in ``mem`` id order: :data:`MEMORY_KINDS`, then the lane's other per-neuron
    memories (:func:`~rcsnn.digital.neuron.neuron_memories`) if the core has them."""
    return MEMORY_KINDS + tuple(name for name, _, _ in neuron_memories(image))


def memory_map(image: Image) -> list[tuple[int, str, int, int, tuple[int, ...]]]:
    """``(mem id, name, depth, width, contents)`` of every run-time loadable memory (membranes and currents: 0)."""
    out, kinds = [], memory_kinds(image)
    words = image.slots.n_words
    parameters = dict(image.parameters)
    for lane in range(image.lanes):
        mems = [(len(image.rowptr[lane]), image.start_bits + image.count_bits, image.rowptr[lane]),
                (len(image.entries[lane]), image.row_bits + image.weight_bits, image.entries[lane]),
                (words, image.Wv, tuple(b & ((1 << image.Wv) - 1) for b in image.bias[lane])),
                (words, image.Wv + image.spike_bits, (0,) * words)]
        for name, width, _ in neuron_memories(image):
            contents = parameters[name][lane] if name in parameters else (0,) * words
            mems.append((words, width, tuple(v & ((1 << width) - 1) for v in contents)))
        for kind, (name, (depth, width, contents)) in enumerate(zip(kinds, mems)):
            out.append((len(kinds) * lane + kind, f"lane{lane}.{name}", depth, width, contents))
    return out


def load_layout(image: Image) -> data.StructLayout:
    """Payload of the ``load`` stream: ``{mem, addr, data}`` (``mem`` in the low bits)."""
    mmap = memory_map(image)
    return data.StructLayout({"mem": bits(len(mmap) - 1), "addr": bits(max(m[2] for m in mmap) - 1),
                              "data": max(m[3] for m in mmap)})


def load_words(image: Image) -> list[int]:
    """Packed ``load`` payloads writing every memory of :func:`memory_map` (parameters and zero membranes)."""
    layout = load_layout(image)
    shift_addr, shift_data = layout["addr"].offset, layout["data"].offset
    return [mem | addr << shift_addr | word << shift_data
            for mem, _, _, _, contents in memory_map(image) for addr, word in enumerate(contents)]


class NeuromorphicCore(wiring.Component):
    """Top-level core for one :class:`~rcsnn.digital.layout.Image` (see the module docstring).

    ``trace`` adds the ``membranes`` stream; ``preload=False`` leaves the parameter memories
    (CSR, bias) uninitialised, for targets whose RAM cannot be preloaded (iCE40 SPRAM): write
    them through ``load`` before the first step (:func:`load_words` lists the writes); ``lutram``
    puts the per-lane neuron state (accumulators, membranes, biases) in LUT RAM.

    Parameters
    ----------
    image : Image
        Layout, parameters and memory contents of the core (:func:`~rcsnn.digital.layout.build_image`).
    trace : bool
        Add the ``membranes`` stream.
    preload : bool
        Initialise the CSR and bias memories with the contents of ``image``.
    lutram : bool
        Put accumulators, membranes and biases in LUT RAM instead of block RAM.

    Attributes
    ----------
    start : In(1)
        Pulse high for one cycle to begin a step; accepted only while ``busy`` is low.
    busy : Out(1)
        A step is running.
    done : Out(1)
        High for one cycle at the end of a step.
    cycles : Out(CYCLE_BITS)
        Cycles of the last step, from the accepted ``start`` to ``done`` (``CYCLE_BITS`` = 32).
    x : In(stream.Signature(data.ArrayLayout(signed(image.Wv), image.lanes)))
        Input currents x_q of the update phase: ``image.slots.n_words`` beats per step, words
        ``0 .. n_words - 1`` in order, element k the current of lane k (``valid``/``ready``).
        Its payload layout is called ``currents`` below.
    spikes : Out(stream.Signature(data.StructLayout({"word": image.word_bits, "mask": image.lanes * Wc}), always_ready=True))
        One beat per updated word with spikes: slot ``word * image.lanes + k`` fired for each set
        bit k of ``mask`` (Wc = ``image.spike_bits`` > 1: fired ``mask[k * Wc: (k + 1) * Wc]`` spikes). No back-pressure.
    load : In(stream.Signature(load_layout(image), always_ready=True))
        Run-time memory writes, only while idle: payload ``{mem, addr, data}`` writes ``data`` to
        word ``addr`` of memory ``mem = K * lane + kind`` (:func:`memory_kinds`, K of them; :func:`memory_map`).
    membranes : Out(stream.Signature(data.StructLayout({"word": image.word_bits, "v": currents}), always_ready=True))
        ``trace=True`` only: the new membranes v' of every updated word, element k of ``v`` the
        neuron of lane k. No back-pressure.
    """

    def __init__(self, image: Image, trace: bool = False, preload: bool = True, lutram: bool = False):
        self.image, self.trace, self.preload, self.lutram = image, trace, preload, lutram
        lanes, wv = image.lanes, image.Wv
        currents = data.ArrayLayout(signed(wv), lanes)
        members = {
            "start": In(1), "busy": Out(1), "done": Out(1), "cycles": Out(CYCLE_BITS),
            "x": In(stream.Signature(currents)),
            "spikes": Out(stream.Signature(data.StructLayout({"word": image.word_bits, "mask": lanes * image.spike_bits}),
                                           always_ready=True)),
            "load": In(stream.Signature(load_layout(image), always_ready=True)),
        }
        if trace:
            members["membranes"] = Out(stream.Signature(
                data.StructLayout({"word": image.word_bits, "v": currents}), always_ready=True))
        super().__init__(members)

    def elaborate(self, platform):
        im, m = self.image, Module()
        m.submodules.control = ctl = Controller(im.slots.n_words)
        m.submodules.queue = queue = SpikeQueue(im)
        syn = [SynapseLane(im, k, self.preload) for k in range(im.lanes)]
        acc = [AccumulatorBank(im.slots.n_words, im.acc_width, self.lutram) for _ in range(im.lanes)]
        neu = [NeuronLane(im, k, self.preload, self.lutram) for k in range(im.lanes)]
        # the neuron lanes take a word one cycle after the accumulators: a neuron lane wants acc_data one cycle after
        # its issue, the accumulators' registered read gives it READ_LATENCY = 2 cycles after theirs
        issued, issued_addr = Signal(), Signal.like(ctl.issue_addr)
        issued_x = Signal(data.ArrayLayout(signed(im.Wv), im.lanes))
        m.d.sync += [issued.eq(ctl.issue), issued_addr.eq(ctl.issue_addr), issued_x.eq(self.x.payload)]
        for k in range(im.lanes):
            m.submodules[f"synapse{k}"], m.submodules[f"acc{k}"], m.submodules[f"neuron{k}"] = syn[k], acc[k], neu[k]
            m.d.comb += [
                syn[k].ev_valid.eq(queue.ev_valid & queue.ev_ready),
                syn[k].ev_block.eq(queue.ev_block), syn[k].ev_pre.eq(queue.ev_pre),
                *([syn[k].ev_count.eq(queue.ev_count)] if im.spike_bits > 1 else []),
                acc[k].add_valid.eq(syn[k].add_valid), acc[k].add_addr.eq(syn[k].add_addr),
                acc[k].add_delta.eq(syn[k].add_delta),
                acc[k].rd_en.eq(ctl.issue), acc[k].rd_addr.eq(ctl.issue_addr),
                neu[k].in_valid.eq(issued), neu[k].in_addr.eq(issued_addr), neu[k].in_x.eq(issued_x[k]),
                neu[k].acc_data.eq(acc[k].rd_data),
            ]
            kinds = memory_kinds(im)
            ports = (syn[k].load_rowptr, syn[k].load_entries, neu[k].load_bias, neu[k].load_membrane,
                     *(getattr(neu[k], f"load_{name}") for name in kinds[len(MEMORY_KINDS):]))
            for kind, port in enumerate(ports):
                m.d.comb += [
                    port.en.eq(self.load.valid & (self.load.payload.mem == len(kinds) * k + kind)),
                    port.addr.eq(self.load.payload.addr), port.data.eq(self.load.payload.data),
                ]
        mask = Cat(n.out_spike for n in neu)
        word_done = neu[0].out_valid
        m.d.comb += [
            queue.ev_ready.eq(Cat(s.ev_ready for s in syn).all()),
            queue.start.eq(ctl.queue_start), queue.clear.eq(ctl.clear),
            queue.wr_valid.eq(word_done & mask.any()), queue.wr_word.eq(neu[0].out_addr), queue.wr_mask.eq(mask),
            ctl.start.eq(self.start), ctl.x_valid.eq(self.x.valid), self.x.ready.eq(ctl.x_ready),
            ctl.prop_busy.eq(queue.busy | Cat(s.busy for s in syn).any() | Cat(a.busy for a in acc).any()),
            ctl.update_busy.eq(neu[0].busy | issued),
            self.busy.eq(ctl.busy), self.done.eq(ctl.done), self.cycles.eq(ctl.cycles),
            self.spikes.valid.eq(queue.wr_valid), self.spikes.payload.word.eq(neu[0].out_addr),
            self.spikes.payload.mask.eq(mask),
        ]
        if self.trace:
            m.d.comb += [
                self.membranes.valid.eq(word_done), self.membranes.payload.word.eq(neu[0].out_addr),
                self.membranes.payload.v.eq(Cat(n.out_v for n in neu)),
            ]
        return m
