"""Pipelined neuron update of one lane: leak, reset, input, bias, synaptic input, saturate, compare.

For the neuron at word ``a`` (contract.md, fixed point; all products exact; ``J`` the current it
integrates, ``I = x + b[a] + acc[a]``)::

    zero:                   v' = sat_Wv( floor(beta_q * v * (1 - s) / 2**Fb) + J )
    subtract:               v' = sat_Wv( floor(beta_q * v / 2**Fb) - theta_q * s + J )
    subtract_before_decay:  v' = sat_Wv( floor(beta_q * (v - theta_q * s) / 2**Fb) + J )
    zero_drop_input:        v' = sat_Wv( (floor(beta_q * v / 2**Fb) + J) * (1 - s) )
    s' = v' >= theta_q;   counts: s' = min(v' // theta_q, K_eff) if v' >= theta_q else 0
    bounded core: clip(·, v_lo_q, v_hi_q) in place of sat_Wv for v' (the membrane bounds; i' keeps sat_Wv)
    LIF, IF:  J = I;   CubaLIF:  i' = sat_Wv( floor(beta_syn_q * i / 2**Fb) + I ),  J = i' (current_delay 0) or i (1)

``v`` (signed Wv) and ``s`` share one membrane word ``{s, v}`` (Wv + Wc bits, Wc = ``image.spike_bits``);
``floor`` is an arithmetic shift right. ``beta_q``, ``theta_q``, ``beta_syn_q`` (and a bounded core's ``v_lo_q``,
``v_hi_q``) are per-group constants, or per-neuron memories where a group's neurons differ; the reset modes and the
CubaLIF current (a ``current`` memory and a second multiplier) are built only into a core that has them. Stages
(one neuron per cycle, latency 5):

0. ``in_valid``: read membrane[a], bias[a] (and current[a], parameters[a]; the accumulator is read by
   the caller at the same address);
1. register v (``v - theta_q * s`` for subtract_before_decay), s, x, and b and the accumulator value as the
   block RAMs give them (no logic after a RAM's output);
2. ``beta_q * v`` (a multiplier with registered inputs and output), ``x + b + acc``; ``beta_syn_q * i``;
3. ``leak - theta_q * s`` or the zero reset, plus J (i' computed here), or 0 (zero_drop_input after a spike);
4. saturate (to Wv bits, or to ``[v_lo_q, v_hi_q]``), and compare (in parallel: ``v_lo_q < theta_q <= v_hi_q``,
   so the comparison may use the unsaturated sum); write i' back;
5. write ``{s', v'}`` back; ``out_*`` valid.

Spike counts (a core with ``image.spike_bits`` Wc > 1, see :mod:`.layout`): the resets remove ``theta_q * s``
(a Wv × Wc product: in cycle 1 for subtract_before_decay, in cycle 2, registered, for subtract), the zero
resets test ``s != 0``, and the count
``min(sat(v') // theta_q, K_eff)`` comes from a pipelined restoring divider after cycle 5: Q =
``image.quotient_bits`` stages of one compare-subtract each (a Wv-bit subtractor and about 3 Wv flip-flops per
stage: remainder, v', theta_q), then the clamp to the group's K_eff and the write-back of ``{s', v'}``. The
latency is :func:`latency` = 5 + Q cycles (5 without counts).
"""

from __future__ import annotations

from amaranth import Array, Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out

from .layout import Image, bits

__all__ = ["LATENCY", "latency", "state_memory", "load_signature", "group_of", "neuron_memories", "NeuronLane"]

LATENCY = 5


def latency(image: Image) -> int:
    """Cycles from an issue to its write-back: :data:`LATENCY`, plus the count divider's ``quotient_bits`` stages in a
    core with spike counts (``spike_bits`` > 1)."""
    return LATENCY + (image.quotient_bits if image.spike_bits > 1 else 0)


def state_memory(shape, depth: int, init=(), lutram: bool = False) -> memory.Memory:
    """A per-lane neuron-state memory; ``lutram`` marks it for LUT RAM (``ram_style = "distributed"``),
    worth it with many lanes, when each memory is too small to be worth a block RAM."""
    return memory.Memory(shape=shape, depth=depth, init=init, attrs={"ram_style": "distributed"} if lutram else None)


def load_signature(addr_width: int, data_width: int) -> wiring.Signature:
    """Run-time write port of a memory: ``en``, ``addr``, ``data`` (driven by the loader)."""
    return wiring.Signature({"en": Out(1), "addr": Out(addr_width), "data": Out(data_width)})


def group_of(image: Image, addr) -> Signal:
    """Index of the group holding word ``addr`` (a comparator chain over the group boundaries)."""
    return sum((addr >= b for b in image.slots.word_base[1:]), Const(0, image.group_bits))


def neuron_memories(image: Image) -> tuple[tuple[str, int, bool], ...]:
    """``(name, width, signed)`` of a lane's per-neuron memories beyond membranes and biases: ``current`` (the
    synaptic state i, a core with CubaLIF groups) and the parameters held per neuron (``image.parameters``)."""
    widths = {"beta": (image.Fb + 1, False), "theta": (image.Wv, True), "beta_syn": (image.Fb + 1, False),
              "v_lo": (image.Wv, True), "v_hi": (image.Wv, True)}
    current = (("current", image.Wv, True),) if image.cuba else ()
    return current + tuple((name, *widths[name]) for name in image.per_neuron)


class _Carried:
    """A per-neuron parameter along the pipeline: ``chain[k]`` in cycle ``k + 1``, indexed like a per-group
    table by the group signal of that cycle (``group[k]``)."""

    def __init__(self, chain: list, group: list):
        self.chain, self.group = chain, group

    def __getitem__(self, stage_group):
        return self.chain[next(k for k, g in enumerate(self.group) if g is stage_group)]


def _flags(values) -> Array:
    """A per-group one-bit constant table (indexed by a group signal)."""
    return Array(Const(int(v), 1) for v in values)


class NeuronLane(wiring.Component):
    """Update pipeline of lane ``lane``: membranes, biases (and currents, parameters) of its ``n_words`` slots.

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
        The update issued :func:`latency` cycles earlier is done: ``out_*`` are valid and ``{s', v'}``
        is written back in this cycle.
    out_addr : Out(unsigned(image.word_bits))
        Word address of the updated neuron.
    out_spike : Out(image.spike_bits)
        The neuron's spikes (``v' >= theta_q``; the count with Wc > 1); 0 while ``out_valid`` is low.
    out_v : Out(signed(image.Wv))
        Its new, saturated membrane potential v'.
    busy : Out(1)
        A neuron is in the pipeline.
    load_membrane : In(load_signature(image.word_bits, image.Wv + image.spike_bits))
        Run-time write port (``en``, ``addr``, ``data``) of the membrane memory: ``{s, v}`` words;
        a pipeline write-back in the same cycle takes precedence.
    load_bias : In(load_signature(image.word_bits, image.Wv))
        Run-time write port (``en``, ``addr``, ``data``) of the bias memory: signed Wv words.
    load_current, load_beta, load_theta, load_beta_syn, load_v_lo, load_v_hi : In(load_signature(image.word_bits, width))
        Only in a core that has these memories (:func:`neuron_memories`): their run-time write ports
        (the current i: signed Wv, a pipeline write-back takes precedence; beta_q, beta_syn_q: Fb + 1
        bits; theta_q, v_lo_q, v_hi_q: Wv bits).
    """

    def __init__(self, image: Image, lane: int, preload: bool = True, lutram: bool = False):
        self.image, self.lane, self.preload, self.lutram = image, lane, preload, lutram
        words, wv, wc = image.slots.n_words, image.Wv, image.spike_bits
        aw = bits(words - 1)
        loads = {f"load_{name}": In(load_signature(aw, width)) for name, width, _ in neuron_memories(image)}
        super().__init__({
            "in_valid": In(1), "in_addr": In(aw), "in_x": In(signed(wv)),
            "acc_data": In(signed(image.acc_width)),
            "out_valid": Out(1), "out_addr": Out(aw), "out_spike": Out(wc), "out_v": Out(signed(wv)),
            "busy": Out(1),
            "load_membrane": In(load_signature(aw, wv + wc)), "load_bias": In(load_signature(aw, wv)), **loads,
        })

    def _memory(self, m: Module, name: str, shape, init) -> memory.ReadPort:
        """A per-neuron memory ``name`` of the lane, written through ``load_<name>``, read at ``in_addr``."""
        image = self.image
        m.submodules[name] = mem = state_memory(shape, image.slots.n_words, init if self.preload else (), self.lutram)
        wr, rd, port = mem.write_port(), mem.read_port(), getattr(self, f"load_{name}")
        m.d.comb += [wr.en.eq(port.en), wr.addr.eq(port.addr), wr.data.eq(port.data), rd.addr.eq(self.in_addr)]
        return rd

    def _parameters(self, m: Module, group: list) -> dict:
        """``name -> table`` of the parameters (``beta``, ``theta``, ``beta_syn``; ``v_lo``, ``v_hi`` in a bounded core):
        ``table[group[k]]`` is the value of the neuron in pipeline cycle ``k + 1`` (``group[k]`` its group): a per-group
        constant, or the lane's per-neuron memory read at the issue and carried along the pipeline (:class:`_Carried`)."""
        im, out = self.image, {}
        shapes = {"beta": unsigned(im.Fb + 1), "theta": signed(im.Wv), "beta_syn": unsigned(im.Fb + 1),
                  "v_lo": signed(im.Wv), "v_hi": signed(im.Wv)}
        per_group = {"beta": im.beta_q, "theta": im.theta_q, "beta_syn": im.beta_syn_q, "v_lo": im.v_lo_q,
                     "v_hi": im.v_hi_q}
        memories = dict(im.parameters)
        names = ("beta", "theta") + ("beta_syn",) * bool(im.cuba) + ("v_lo", "v_hi") * im.bounded
        for name in names:
            if name in memories:
                chain = [self._memory(m, name, shapes[name], memories[name][self.lane]).data]
                for k in range(2, LATENCY):
                    chain.append(Signal(shapes[name], name=f"{name}{k}"))
                    m.d.sync += chain[-1].eq(chain[-2])
                out[name] = _Carried(chain, group)
            else:
                out[name] = Array(Const(v, shapes[name]) for v in per_group[name])
        return out

    def elaborate(self, platform):
        im, m = self.image, Module()
        wv, wc = im.Wv, im.spike_bits
        words, lutram = im.slots.n_words, self.lutram
        m.submodules.membrane = membrane = state_memory(unsigned(wv + wc), words, lutram=lutram)
        m.submodules.bias = bias = state_memory(signed(wv), words, im.bias[self.lane] if self.preload else (), lutram)
        v_wr, b_wr = membrane.write_port(), bias.write_port()
        v_rd, b_rd = membrane.read_port(), bias.read_port()
        modes = set(im.reset)
        subtract = _flags(im.subtract)

        depth = latency(im)
        valid = [Signal(name=f"valid{k}") for k in range(1, depth + 1)]
        addr = [Signal.like(self.in_addr, name=f"addr{k}") for k in range(1, depth + 1)]
        group = [Signal.like(group_of(im, self.in_addr), name=f"group{k}") for k in range(1, depth + 1)]
        m.d.sync += [valid[0].eq(self.in_valid), addr[0].eq(self.in_addr), group[0].eq(group_of(im, self.in_addr))]
        m.d.sync += [d.eq(s) for chain in (valid, addr, group) for d, s in zip(chain[1:], chain[:-1])]
        m.d.comb += [v_rd.addr.eq(self.in_addr), b_rd.addr.eq(self.in_addr)]
        param = self._parameters(m, group)
        beta, theta = param["beta"], param["theta"]

        x1 = Signal(signed(wv))
        m.d.sync += x1.eq(self.in_x)
        # subtract_before_decay: v - theta_q * s enters the multiplier (one bit wider)
        v2, s2 = Signal(signed(wv + ("subtract_before_decay" in modes))), Signal(wc)
        # the block-RAM outputs (bias, accumulator) only into registers: their adder comes a cycle later
        x2, b2, acc2 = Signal(signed(wv)), Signal(signed(wv)), Signal(signed(im.acc_width))
        v1, s1 = v_rd.data[:wv], v_rd.data[wv:]
        if "subtract_before_decay" in modes:
            before = _flags(r == "subtract_before_decay" for r in im.reset)[group[0]]
            v1 = v1.as_signed() - _removed(theta[group[0]], s1, before)
        m.d.sync += [v2.eq(v1), s2.eq(s1), x2.eq(x1), b2.eq(b_rd.data), acc2.eq(self.acc_data)]

        product3 = Signal(signed(len(v2) + im.Fb + 2))
        s3, input3 = Signal(wc), Signal(signed(max(wv, im.acc_width) + 2))
        m.d.sync += [product3.eq(v2 * beta[group[1]]),
                     s3.eq(s2), input3.eq(x2 + b2 + acc2)]
        if wc > 1:  # the count's theta_q * s in its own cycle (a multiplier), registered beside beta_q * v
            removed3 = Signal(signed(wv + wc + 1))
            m.d.sync += removed3.eq(_removed(theta[group[1]], s2))

        leak = Signal(signed(len(v2) + 1))
        m.d.comb += leak.eq(product3 >> im.Fb)
        fired3 = s3 if wc == 1 else s3.any()
        if modes <= {"zero", "subtract"}:
            reset_leak = Mux(subtract[group[2]], leak - (removed3 if wc > 1 else _removed(theta[group[2]], s3)),
                             Mux(fired3, 0, leak))
        else:
            zero = _flags(r == "zero" for r in im.reset)[group[2]]
            reset_leak = Mux(subtract[group[2]], leak - (removed3 if wc > 1 else _removed(theta[group[2]], s3)),
                             Mux(fired3 & zero, 0, leak))
        total4 = Signal(signed(input3.shape().width + 2))
        current = self._current(m, param["beta_syn"], valid, addr, group, input3) if im.cuba else input3
        if "zero_drop_input" in modes:
            drop = _flags(r == "zero_drop_input" for r in im.reset)[group[2]] & fired3
            m.d.sync += total4.eq(Mux(drop, 0, reset_leak + current))
        else:
            m.d.sync += total4.eq(reset_leak + current)

        # saturate and compare in parallel: v_lo < theta_q <= v_hi, so sat(v) >= theta_q iff v >= theta_q
        v5, spike5 = Signal(signed(wv)), Signal(wc)
        bounds = (param["v_lo"][group[3]], param["v_hi"][group[3]]) if im.bounded else None
        if wc == 1:
            m.d.sync += [v5.eq(_saturate(total4, wv, bounds)), spike5.eq(total4 >= theta[group[3]])]
        else:
            fires5, theta5 = Signal(), Signal(unsigned(wv))
            m.d.sync += [v5.eq(_saturate(total4, wv, bounds)), fires5.eq(total4 >= theta[group[3]]),
                         theta5.eq(theta[group[3]])]
            v5, quotient, fires5 = _divider(m, v5, theta5, fires5, im.quotient_bits)
            limit = Array(Const(k, wc) for k in im.max_spikes)[group[-1]]
            m.d.comb += spike5.eq(Mux(fires5, Mux(quotient > limit, limit, quotient), 0))
        m.d.comb += [
            v_wr.en.eq(valid[-1] | self.load_membrane.en),
            v_wr.addr.eq(Mux(valid[-1], addr[-1], self.load_membrane.addr)),
            v_wr.data.eq(Mux(valid[-1], Cat(v5, spike5), self.load_membrane.data)),
            b_wr.en.eq(self.load_bias.en), b_wr.addr.eq(self.load_bias.addr), b_wr.data.eq(self.load_bias.data),
            self.out_valid.eq(valid[-1]), self.out_addr.eq(addr[-1]),
            self.out_spike.eq(valid[-1] & spike5 if wc == 1 else Mux(valid[-1], spike5, 0)),
            self.out_v.eq(v5), self.busy.eq(Cat(valid).any()),
        ]
        return m

    def _current(self, m: Module, beta_syn, valid: list, addr: list, group: list, input3):
        """The synaptic state of CubaLIF groups, beside the membrane: read with it, ``i' = sat_Wv(floor(beta_syn_q *
        i / 2**Fb) + I)`` in cycle 3 and written back in cycle 4; returns what the membrane integrates in cycle 3:
        ``I`` (LIF and IF groups), ``i'`` (``current_delay`` 0) or ``i`` (``current_delay`` 1)."""
        im, wv = self.image, self.image.Wv
        m.submodules.current = mem = state_memory(signed(wv), im.slots.n_words, lutram=self.lutram)
        wr, rd, load = mem.write_port(), mem.read_port(), self.load_current
        m.d.comb += rd.addr.eq(self.in_addr)
        i2, i3 = Signal(signed(wv)), Signal(signed(wv))
        decay3 = Signal(signed(wv + im.Fb + 2))
        m.d.sync += [i2.eq(rd.data), i3.eq(i2), decay3.eq(i2 * beta_syn[group[1]])]
        i_next = _saturate((decay3 >> im.Fb) + input3, wv)
        i4 = Signal(signed(wv))
        m.d.sync += i4.eq(i_next)
        m.d.comb += [
            wr.en.eq(valid[3] | load.en), wr.addr.eq(Mux(valid[3], addr[3], load.addr)),
            wr.data.eq(Mux(valid[3], i4, load.data)),
        ]
        delayed = _flags(im.current_delay)[group[2]]
        return Mux(_flags(im.cuba)[group[2]], Mux(delayed, i3, i_next), input3)


def _removed(theta, s, enable=None):
    """``theta_q * s``: what a subtract reset removes (``s`` 1 bit: a mux; a count: a Wv × Wc product), 0 unless
    ``enable``."""
    if len(s) == 1:
        return Mux(s if enable is None else enable & s, theta, 0)
    product = theta * s
    return product if enable is None else Mux(enable, product, 0)


def _divider(m: Module, v, theta, fires, width: int):
    """Pipelined restoring division ``v // theta`` (for ``0 < theta <= v``, a quotient below ``2**width``): ``width``
    register stages, stage j subtracting ``theta << (width - 1 - j)`` where it fits. Returns the last stage's ``v``,
    the quotient and ``fires`` (carried along)."""
    rest, digits = v.as_unsigned(), Const(0, 0)
    for k in reversed(range(width)):
        step = theta << k
        v_k, theta_k, fires_k = Signal.like(v, name=f"v_div{k}"), Signal.like(theta, name=f"theta_div{k}"), Signal()
        rest_k, digits_k = Signal(len(v), name=f"rest_div{k}"), Signal(width - k, name=f"digits_div{k}")
        take = rest >= step
        m.d.sync += [v_k.eq(v), theta_k.eq(theta), fires_k.eq(fires), rest_k.eq(Mux(take, rest - step, rest)),
                     digits_k.eq(Cat(take, digits))]
        v, theta, fires, rest, digits = v_k, theta_k, fires_k, rest_k, digits_k
    return v, digits, fires


def _saturate(value, width: int, bounds=None):
    """``value`` clamped to the signed ``width``-bit range, or to ``bounds = (low, high)`` (values within it)."""
    v_min, v_max = bounds or (-(1 << (width - 1)), (1 << (width - 1)) - 1)
    return Mux(value > v_max, v_max, Mux(value < v_min, v_min, value))
