"""The language model on chip: the core between a prompt decoder, an embedding ROM, a readout and a sampler.

:class:`LanguageModelTop` computes exactly :func:`rcsnn.model.lm_fixed.lm_generate` (its module
docstring states the arithmetic). Per character, one FSM (V characters, L lanes, ``n_words`` words):

* ``IDLE``: accepts one prompt byte (``prompt.ready``); the UTF-8 decoder either completes a code
  point (→ ``SEARCH``) or waits for more bytes. The byte flagged ``last`` also latches ``length``,
  ``sample`` and ``seed`` and resets the decoder; after it the chip generates.
* ``SEARCH``: compares the code point with the ``codes`` ROM, one character per cycle (≤ V cycles);
  found: ``START`` with that token, not found: the byte sequence is dropped.
* ``START``, ``STEP``: one step of the core; the ``x`` stream comes from the ``embed`` ROM at
  ``token · n_words + word``; the core's ``spikes`` beats (word, lane mask) are written to the spike list.
* ``GENERATE``: ``length`` characters left? Load the accumulators with ``b_q``, else back to ``IDLE``.
* ``FETCH``, ``LOAD``, ``WALK``: replay the spike list; every spike (lowest lane first) reads its
  readout column (V × int8) and adds it to the V accumulators ``z_c`` the next cycle
  (2 cycles per word with spikes + 1 per spike).
* ``CHOOSE``: ``c = 0 .. V-1``, one per cycle: with ``sample`` the LFSR advances ``UBITS`` steps and its
  low bits address the ``noise`` ROM; a cycle later ``z_c (+ g)`` replaces the best if larger (ties:
  the lowest c stays). V + 1 cycles.
* ``EMIT``: the chosen character's 1–3 UTF-8 bytes on ``text`` (``valid``/``ready``), then ``START``
  with it as the next input.

The core keeps its state between prompts (a conversation); :func:`~rcsnn.model.lm_fixed.lm_generate`
models one prompt after reset.
"""

from __future__ import annotations

from amaranth import Array, Cat, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from ...model.lm_fixed import TAPS, UBITS
from ..core import NeuromorphicCore, load_layout
from .image import LMImage

__all__ = ["PROMPT", "lfsr_advance", "LanguageModelTop"]

#: Payload of the ``prompt`` stream.
PROMPT = data.StructLayout({"byte": 8, "last": 1})


def lfsr_advance(state, steps: int = UBITS):
    """``state`` (32 bits) after ``steps`` steps of the Galois LFSR (:data:`~rcsnn.model.lm_fixed.TAPS`), in one cycle.

    The LFSR is linear over GF(2): each bit of the result is the XOR of a fixed set of bits of ``state``,
    found here by stepping the sets (bit masks of ``state``'s bits) through the LFSR's rule."""
    sets = [1 << i for i in range(32)]
    for _ in range(steps):
        out = sets[0]
        sets = [sets[i + 1] if i < 31 else 0 for i in range(32)]
        sets = [s ^ (out if TAPS >> i & 1 else 0) for i, s in enumerate(sets)]
    return Cat(*[(state & s).xor() for s in sets])


class LanguageModelTop(wiring.Component):
    """The core of ``lm.core`` inside the language model's ends (module docstring).

    Parameters
    ----------
    lm : LMImage
        ROM contents and widths (:func:`~rcsnn.digital.lm.image.lm_image`).
    trace : bool
        Add the ``spikes`` and ``stepped`` outputs (the core's raster, for checking).
    preload, lutram : bool
        As for :class:`~rcsnn.digital.core.NeuromorphicCore`.

    Attributes
    ----------
    prompt : In(stream.Signature(StructLayout({"byte": 8, "last": 1})))
        Prompt bytes (UTF-8); ``last`` marks the final byte of a prompt, after which the chip generates.
    text : Out(stream.Signature(8))
        Generated characters as UTF-8 bytes; the chip waits while ``ready`` is low.
    length : In(16)
        Characters to generate after the prompt (read with the ``last`` byte).
    sample : In(1)
        0: greedy (argmax); 1: Gumbel-max sampling with the LFSR (read with the ``last`` byte).
    seed : In(32)
        LFSR seed of the generation (0 acts as 1; read with the ``last`` byte).
    busy : Out(1)
        Low while the chip waits for a prompt byte.
    load : In(stream.Signature(load_layout(lm.core), always_ready=True))
        The core's ``load`` port (run-time parameter writes while idle; see :func:`~rcsnn.digital.core.memory_map`).
    spikes : Out(stream.Signature(StructLayout({"word", "mask"}), always_ready=True))
        ``trace`` only: the core's ``spikes`` stream.
    stepped : Out(1)
        ``trace`` only: the core's ``done`` (one cycle at the end of each step).
    """

    def __init__(self, lm: LMImage, trace: bool = False, preload: bool = True, lutram: bool = False):
        self.lm, self.trace, self.preload, self.lutram = lm, trace, preload, lutram
        im = lm.core
        members = {
            "prompt": In(stream.Signature(PROMPT)), "text": Out(stream.Signature(8)),
            "length": In(16), "sample": In(1), "seed": In(32), "busy": Out(1),
            "load": In(stream.Signature(load_layout(im), always_ready=True)),
        }
        if trace:
            members["spikes"] = Out(stream.Signature(data.StructLayout({"word": im.word_bits, "mask": im.lanes}),
                                                     always_ready=True))
            members["stepped"] = Out(1)
        super().__init__(members)

    def elaborate(self, platform):
        lm, m = self.lm, Module()
        im = lm.core
        V, L, nw, xb = lm.vocab_size, im.lanes, im.slots.n_words, lm.x_bits
        m.submodules.core = core = NeuromorphicCore(im, preload=self.preload, lutram=self.lutram)
        wiring.connect(m, wiring.flipped(self.load), core.load)

        def rom(name: str, width: int, init, domain: str = "sync"):
            m.submodules[name] = mem = memory.Memory(shape=unsigned(width), depth=len(init), init=init)
            return mem.read_port(domain=domain)

        codes, utf8 = rom("codes", 16, lm.codes, "comb"), rom("utf8", 26, lm.utf8, "comb")
        embed, readout = rom("embed", L * xb, lm.embed), rom("readout", 8 * V, lm.readout)
        noise = rom("noise", lm.noise_bits, lm.noise)
        m.submodules.spike_list = spike_list = memory.Memory(shape=unsigned(L + im.word_bits), depth=nw, init=[])
        list_wr, list_rd = spike_list.write_port(), spike_list.read_port()

        token, best, idx, cmp_idx = Signal(range(V)), Signal(range(V)), Signal(range(V + 1)), Signal(range(V))
        need, code, last, gen, cmp_valid = Signal(2), Signal(21), Signal(), Signal(), Signal()
        remaining, sample, lfsr = Signal(16), Signal(), Signal(32)
        beat, wp, rp = Signal(range(nw + 1)), Signal(range(nw + 1)), Signal(range(nw + 1))
        word, mask, add, lane, nbyte = Signal(im.word_bits), Signal(L), Signal(), Signal(range(L)), Signal(2)
        acc = [Signal(signed(lm.z_bits), name=f"z{c}") for c in range(V)]
        score_shape = signed(max(lm.z_bits, lm.noise_bits) + 1)
        score, best_score = Signal(score_shape), Signal(score_shape)
        byte, complete, new_code = self.prompt.payload.byte, Signal(), Signal(21)
        handshake = core.x.valid & core.x.ready

        # the spike list: every spikes beat of a step, in order
        m.d.comb += [list_wr.en.eq(core.spikes.valid), list_wr.addr.eq(wp),
                     list_wr.data.eq(Cat(core.spikes.payload.mask, core.spikes.payload.word))]
        with m.If(core.spikes.valid):
            m.d.sync += wp.eq(wp + 1)
        # the readout's add stage: the column read in the cycle before
        m.d.sync += add.eq(0)
        with m.If(add):
            m.d.sync += [z.eq(z + readout.data[8 * c: 8 * c + 8].as_signed()) for c, z in enumerate(acc)]
        for k in reversed(range(L)):  # lowest set lane of the current word
            with m.If(mask[k]):
                m.d.comb += lane.eq(k)
        m.d.comb += [codes.addr.eq(idx), utf8.addr.eq(best),
                     [core.x.payload[k].eq(embed.data[k * xb: (k + 1) * xb].as_signed()) for k in range(L)]]

        with m.FSM() as fsm:
            with m.State("IDLE"):
                m.d.comb += self.prompt.ready.eq(1)
                with m.If(self.prompt.valid):
                    with m.If(byte[6:] == 0b10):  # continuation: dropped unless a character is open
                        m.d.comb += new_code.eq(Cat(byte[:6], code))
                        with m.If(need != 0):
                            m.d.comb += complete.eq(need == 1)
                            m.d.sync += [code.eq(new_code), need.eq(need - 1)]
                    with m.Elif(~byte[7]):
                        m.d.comb += [new_code.eq(byte), complete.eq(1)]
                        m.d.sync += [code.eq(new_code), need.eq(0)]
                    with m.Elif(byte[5:] == 0b110):
                        m.d.sync += [code.eq(byte[:5]), need.eq(1)]
                    with m.Elif(byte[4:] == 0b1110):
                        m.d.sync += [code.eq(byte[:4]), need.eq(2)]
                    with m.Else():
                        m.d.sync += [code.eq(byte[:3]), need.eq(3)]
                    m.d.sync += [last.eq(self.prompt.payload.last), gen.eq(0), idx.eq(0)]
                    with m.If(self.prompt.payload.last):
                        m.d.sync += [need.eq(0), remaining.eq(self.length), sample.eq(self.sample),
                                     lfsr.eq(Mux(self.seed == 0, 1, self.seed))]
                    with m.If(complete):
                        m.next = "SEARCH"
                    with m.Elif(self.prompt.payload.last):
                        m.next = "GENERATE"
            with m.State("SEARCH"):
                with m.If(codes.data == code):
                    m.d.sync += token.eq(idx)
                    m.next = "START"
                with m.Elif(idx == V - 1):
                    m.next = "DROP"
                with m.Else():
                    m.d.sync += idx.eq(idx + 1)
            with m.State("DROP"):  # a character outside the vocabulary: no step
                with m.If(last):
                    m.next = "GENERATE"
                with m.Else():
                    m.next = "IDLE"
            with m.State("START"):
                m.d.comb += [core.start.eq(1), embed.addr.eq(token * nw)]
                m.d.sync += [beat.eq(0), wp.eq(0)]
                m.next = "STEP"
            with m.State("STEP"):
                m.d.comb += [core.x.valid.eq(beat < nw), embed.addr.eq(token * nw + beat + handshake)]
                m.d.sync += beat.eq(beat + handshake)
                with m.If(core.done):
                    with m.If(gen | last):
                        m.next = "GENERATE"
                    with m.Else():
                        m.next = "IDLE"
            with m.State("GENERATE"):
                with m.If(remaining == 0):
                    m.d.sync += gen.eq(0)
                    m.next = "IDLE"
                with m.Else():
                    m.d.sync += [gen.eq(1), rp.eq(0), [z.eq(b) for z, b in zip(acc, lm.bias)]]
                    m.next = "FETCH"
            with m.State("FETCH"):
                with m.If(rp == wp):
                    m.d.sync += [idx.eq(0), cmp_valid.eq(0)]
                    m.next = "CHOOSE"
                with m.Else():
                    m.d.comb += list_rd.addr.eq(rp)
                    m.d.sync += rp.eq(rp + 1)
                    m.next = "LOAD"
            with m.State("LOAD"):
                m.d.sync += [mask.eq(list_rd.data[:L]), word.eq(list_rd.data[L:])]
                m.next = "WALK"
            with m.State("WALK"):
                with m.If(mask == 0):
                    m.next = "FETCH"
                with m.Else():
                    m.d.comb += readout.addr.eq(word * L + lane)
                    m.d.sync += [mask.eq(mask & (mask - 1)), add.eq(1)]
            with m.State("CHOOSE"):
                advanced = lfsr_advance(lfsr)
                m.d.comb += noise.addr.eq(advanced[:UBITS])
                m.d.sync += cmp_valid.eq(idx < V)
                with m.If(idx < V):
                    m.d.sync += [cmp_idx.eq(idx), idx.eq(idx + 1)]
                    with m.If(sample):
                        m.d.sync += lfsr.eq(advanced)
                m.d.comb += score.eq(Array(acc)[cmp_idx] + Mux(sample, noise.data.as_signed(), 0))
                with m.If(cmp_valid):
                    with m.If((cmp_idx == 0) | (score > best_score)):
                        m.d.sync += [best.eq(cmp_idx), best_score.eq(score)]
                    with m.If(cmp_idx == V - 1):
                        m.d.sync += nbyte.eq(0)
                        m.next = "EMIT"
            with m.State("EMIT"):
                m.d.comb += [self.text.valid.eq(1), self.text.payload.eq(utf8.data[2:].word_select(nbyte, 8))]
                with m.If(self.text.ready):
                    with m.If(nbyte + 1 == utf8.data[:2]):
                        m.d.sync += [token.eq(best), remaining.eq(remaining - 1), nbyte.eq(0)]
                        m.next = "START"
                    with m.Else():
                        m.d.sync += nbyte.eq(nbyte + 1)
        m.d.comb += self.busy.eq(~fsm.ongoing("IDLE"))
        if self.trace:
            m.d.comb += [self.spikes.valid.eq(core.spikes.valid), self.spikes.payload.eq(core.spikes.payload),
                         self.stepped.eq(core.done)]
        return m
