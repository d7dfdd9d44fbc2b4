"""Pipelined LIF update of one lane: leak, reset, input, bias, synaptic input, saturate, compare.

For the neuron at word ``a`` of group g (contract.md, fixed point; all products exact)::

    zero:      v' = sat_Wv( floor(beta_q[g] * v * (1 - s) / 2**Fb) + x + b[a] + acc[a] )
    subtract:  v' = sat_Wv( floor(beta_q[g] * v / 2**Fb) - theta_q[g] * s + x + b[a] + acc[a] )
    s' = v' >= theta_q[g]

``v`` (signed Wv) and ``s`` share one membrane word ``{s, v}`` (Wv + 1 bits); ``floor`` is an
arithmetic shift right. Stages (one neuron per cycle, latency 5):

0. ``in_valid``: read membrane[a], bias[a] (the accumulator is read by the caller at the same address);
1. register v, s and ``x + b``; the accumulator value arrives;
2. ``beta_q * v`` (a multiplier with registered inputs and output), ``x + b + acc``;
3. ``leak - theta_q * s`` or the zero reset, plus the input sum;
4. saturate, and compare (in parallel: ``0 < theta_q <= v_max``, so the comparison may use the
   unsaturated sum);
5. write ``{s', v'}`` back; ``out_*`` valid.
"""

from __future__ import annotations

from amaranth import Array, Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out

from .layout import Image, bits

__all__ = ["LATENCY", "state_memory", "load_signature", "group_of", "NeuronLane"]

LATENCY = 5


def state_memory(shape, depth: int, init=(), lutram: bool = False) -> memory.Memory:
    """A per-lane neuron-state memory; ``lutram`` marks it for LUT RAM (``ram_style = "distributed"``),
    worth it with many lanes, when each memory is too small to be worth a block RAM."""
    return memory.Memory(shape=shape, depth=depth, init=init, attrs={"ram_style": "distributed"} if lutram else None)


def load_signature(addr_width: int, data_width: int) -> wiring.Signature:
    """Run-time write port of a memory: ``en``, ``addr``, ``data`` (driven by the loader)."""
    return wiring.Signature({"en": Out(1), "addr": Out(addr_width), "data": Out(data_width)})


def group_of(image: Image, addr) -> Signal:
    """Index of the group holding word ``addr`` (a comparator chain over the group boundaries)."""
    bounds = image.slots.word_base[1:]
    return sum((addr >= b for b in bounds), Const(0, bits(len(bounds))))


class NeuronLane(wiring.Component):
    """Update pipeline of lane ``lane``: membranes and biases of its ``n_words`` slots.

    ``preload=False`` leaves the bias memory uninitialised (to be written through ``load_bias``);
    ``lutram`` puts membranes and biases in LUT RAM.

    Parameters
    ----------
    image : Image
        Layout and parameters of the core (``Wv``, ``Fb``, ``beta_q``, ``theta_q``, resets, ``bias[lane]``).
    lane : int
        Lane index, ``0 .. image.lanes - 1``.
    preload : bool
        Initialise the bias memory with ``image.bias[lane]``.
    lutram : bool
        Mark the membrane and bias memories for LUT RAM instead of block RAM.

    Attributes
    ----------
    in_valid : In(1)
        Start the update of the neuron at word ``in_addr`` of this lane (one per cycle).
    in_addr : In(unsigned(image.word_bits))
        Word address of the neuron.
    in_x : In(signed(image.Wv))
        Its input current x_q.
    acc_data : In(signed(image.acc_width))
        The accumulator of ``in_addr``, one cycle after ``in_valid``.
    out_valid : Out(1)
        The update issued :data:`LATENCY` cycles earlier is done: ``out_*`` are valid and ``{s', v'}``
        is written back in this cycle.
    out_addr : Out(unsigned(image.word_bits))
        Word address of the updated neuron.
    out_spike : Out(1)
        The neuron fired (``v' >= theta_q``); low while ``out_valid`` is low.
    out_v : Out(signed(image.Wv))
        Its new, saturated membrane potential v'.
    busy : Out(1)
        A neuron is in the pipeline.
    load_membrane : In(load_signature(image.word_bits, image.Wv + 1))
        Run-time write port (``en``, ``addr``, ``data``) of the membrane memory: ``{s, v}`` words;
        a pipeline write-back in the same cycle takes precedence.
    load_bias : In(load_signature(image.word_bits, image.Wv))
        Run-time write port (``en``, ``addr``, ``data``) of the bias memory: signed Wv words.
    """

    def __init__(self, image: Image, lane: int, preload: bool = True, lutram: bool = False):
        self.image, self.lane, self.preload, self.lutram = image, lane, preload, lutram
        words, wv = image.slots.n_words, image.Wv
        aw = bits(words - 1)
        super().__init__({
            "in_valid": In(1), "in_addr": In(aw), "in_x": In(signed(wv)),
            "acc_data": In(signed(image.acc_width)),
            "out_valid": Out(1), "out_addr": Out(aw), "out_spike": Out(1), "out_v": Out(signed(wv)),
            "busy": Out(1),
            "load_membrane": In(load_signature(aw, wv + 1)), "load_bias": In(load_signature(aw, wv)),
        })

    def elaborate(self, platform):
        im, m = self.image, Module()
        wv = im.Wv
        words, lutram = im.slots.n_words, self.lutram
        m.submodules.membrane = membrane = state_memory(unsigned(wv + 1), words, lutram=lutram)
        m.submodules.bias = bias = state_memory(signed(wv), words, im.bias[self.lane] if self.preload else (), lutram)
        v_wr, b_wr = membrane.write_port(), bias.write_port()
        v_rd, b_rd = membrane.read_port(), bias.read_port()
        beta = Array(Const(b, unsigned(im.Fb + 1)) for b in im.beta_q)
        theta = Array(Const(t, signed(wv)) for t in im.theta_q)
        subtract = Array(Const(s, 1) for s in im.subtract)

        valid = [Signal(name=f"valid{k}") for k in range(1, LATENCY + 1)]
        addr = [Signal.like(self.in_addr, name=f"addr{k}") for k in range(1, LATENCY + 1)]
        group = [Signal.like(group_of(im, self.in_addr), name=f"group{k}") for k in range(1, LATENCY + 1)]
        m.d.sync += [valid[0].eq(self.in_valid), addr[0].eq(self.in_addr), group[0].eq(group_of(im, self.in_addr))]
        m.d.sync += [d.eq(s) for chain in (valid, addr, group) for d, s in zip(chain[1:], chain[:-1])]
        m.d.comb += [v_rd.addr.eq(self.in_addr), b_rd.addr.eq(self.in_addr)]

        x1 = Signal(signed(wv))
        m.d.sync += x1.eq(self.in_x)
        v2, s2 = Signal(signed(wv)), Signal()
        input2 = Signal(signed(max(wv, im.acc_width) + 2))
        m.d.sync += [v2.eq(v_rd.data[:wv]), s2.eq(v_rd.data[wv]), input2.eq(x1 + b_rd.data + self.acc_data)]

        product3 = Signal(signed(wv + im.Fb + 2))
        s3, input3 = Signal(), Signal.like(input2)
        m.d.sync += [product3.eq(v2 * beta[group[1]]),
                     s3.eq(s2), input3.eq(input2)]

        leak = Signal(signed(wv + 1))
        m.d.comb += leak.eq(product3 >> im.Fb)
        reset_leak = Mux(subtract[group[2]], leak - Mux(s3, theta[group[2]], 0), Mux(s3, 0, leak))
        total4 = Signal(signed(input2.shape().width + 2))
        m.d.sync += total4.eq(reset_leak + input3)

        # saturate and compare in parallel: 0 < theta_q <= v_max, so sat(v) >= theta_q iff v >= theta_q
        v_max, v_min = (1 << (wv - 1)) - 1, -(1 << (wv - 1))
        v5, spike5 = Signal(signed(wv)), Signal()
        m.d.sync += [v5.eq(Mux(total4 > v_max, v_max, Mux(total4 < v_min, v_min, total4))),
                     spike5.eq(total4 >= theta[group[3]])]
        m.d.comb += [
            v_wr.en.eq(valid[4] | self.load_membrane.en),
            v_wr.addr.eq(Mux(valid[4], addr[4], self.load_membrane.addr)),
            v_wr.data.eq(Mux(valid[4], Cat(v5, spike5), self.load_membrane.data)),
            b_wr.en.eq(self.load_bias.en), b_wr.addr.eq(self.load_bias.addr), b_wr.data.eq(self.load_bias.data),
            self.out_valid.eq(valid[4]), self.out_addr.eq(addr[4]), self.out_spike.eq(valid[4] & spike5),
            self.out_v.eq(v5), self.busy.eq(Cat(valid).any()),
        ]
        return m
