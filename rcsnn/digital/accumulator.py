"""Synaptic accumulators of one lane: read-modify-write adds during propagate, read-and-clear during update.

The block RAM's read data is registered and the sum is registered before it is written back, so no path runs
from a memory output through logic into a memory input (on ECP5 the DP16KD has 5.6 ns clock-to-out; the
unregistered read-modify-write was the core's critical path, docs/digital.md). One operation (an add, or a
read-and-clear) enters per cycle; operation k issued in cycle t of address A::

    t     S0  request   read port: address A (the read is transparent: it sees a write landing in cycle t)
    t+1   S1  read      q <- memory word A; hit1 <- op k-1 (in S2) is to A; hit2 <- op k-2 (in S3) is to A
    t+2   S2  forward   value = hit1 ? w3 : hit2 ? w4 : q;  rd_data = value;  w3 <- value + delta (add) or 0
    t+3   S3  write     memory[A] <- w3;  w4 <- w3

The read of op k misses exactly the writes of ops k-1 and k-2 (they land in cycles t+2 and t+1); the forward
stage takes the newer one of them where it is to the same address (``w3``: op k-1's result, being written in
t+2; ``w4``: op k-2's, written in t+1), so back-to-back operations on one address chain exactly as if each
waited for the one before. Latencies: :data:`READ_LATENCY` = 2 (``rd_en`` to ``rd_data``),
:data:`WRITE_LATENCY` = 3 (an operation to its write).
"""

from __future__ import annotations

from amaranth import Module, Mux, Signal, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .neuron import state_memory

__all__ = ["READ_LATENCY", "WRITE_LATENCY", "AccumulatorBank"]

#: Cycles from ``rd_en`` to ``rd_data`` (S0 -> S2).
READ_LATENCY = 2
#: Cycles from an add or read-and-clear to the cycle its write lands in the memory (S0 -> S3).
WRITE_LATENCY = 3


class AccumulatorBank(wiring.Component):
    """``depth`` signed accumulators of ``width`` bits, one memory (one read, one write port; LUT RAM if ``lutram``).

    Propagate: ``add_valid`` with ``add_addr``, ``add_delta`` performs ``acc[addr] += delta``;
    one add per cycle, any address sequence (back-to-back adds to one address are forwarded, see the
    module docstring). The write lands :data:`WRITE_LATENCY` cycles later.

    Update: ``rd_en`` with ``rd_addr`` returns ``acc[addr]`` on ``rd_data`` :data:`READ_LATENCY` cycles
    later and clears the word to 0 (written :data:`WRITE_LATENCY` cycles later, through the same
    pipeline, so adds and reads may follow each other in any order). Adds and reads must not be issued
    in the same cycle.

    Parameters
    ----------
    depth : int
        Number of accumulators (``image.slots.n_words``: one per update word of the lane).
    width : int
        Signed width of each accumulator (``image.acc_width``).
    lutram : bool
        Mark the memory for LUT RAM (``ram_style = "distributed"``) instead of block RAM.

    Attributes
    ----------
    add_valid : In(1)
        Propagate port: perform ``acc[add_addr] += add_delta``.
    add_addr : In(unsigned(max(1, (depth - 1).bit_length())))
        Address of the accumulator to add to.
    add_delta : In(signed(width))
        Signed value to add (``±alpha_q`` of a synapse block).
    rd_en : In(1)
        Update port: read ``acc[rd_addr]`` and clear it to 0; not in the same cycle as ``add_valid``.
    rd_addr : In(unsigned(max(1, (depth - 1).bit_length())))
        Address of the accumulator to read and clear.
    rd_data : Out(signed(width))
        The accumulator read by ``rd_en``, :data:`READ_LATENCY` cycles later.
    busy : Out(1)
        An add is still in the pipeline (S1 to S3: not yet written).
    """

    def __init__(self, depth: int, width: int, lutram: bool = False):
        self.depth, self.width, self.lutram = depth, width, lutram
        addr = unsigned(max(1, (depth - 1).bit_length()))
        super().__init__({
            "add_valid": In(1), "add_addr": In(addr), "add_delta": In(signed(width)),
            "rd_en": In(1), "rd_addr": In(addr), "rd_data": Out(signed(width)),
            "busy": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.mem = mem = state_memory(signed(self.width), self.depth, lutram=self.lutram)
        wr = mem.write_port()
        rd = mem.read_port(transparent_for=(wr,))
        # stage registers: valid, add (vs clear), address and delta of the operation in S1, S2, S3
        valid = [Signal(name=f"valid{k}") for k in (1, 2, 3)]
        add = [Signal(name=f"add{k}") for k in (1, 2, 3)]
        addr = [Signal.like(self.add_addr, name=f"addr{k}") for k in (1, 2, 3)]
        delta = [Signal.like(self.add_delta, name=f"delta{k}") for k in (1, 2)]
        q, w3, w4 = (Signal(signed(self.width), name=n) for n in ("q", "w3", "w4"))
        hit1, hit2 = Signal(), Signal()
        m.d.comb += [
            rd.en.eq(self.add_valid | self.rd_en),
            rd.addr.eq(Mux(self.add_valid, self.add_addr, self.rd_addr)),
        ]
        m.d.sync += [
            valid[0].eq(self.add_valid | self.rd_en), add[0].eq(self.add_valid), addr[0].eq(rd.addr),
            delta[0].eq(self.add_delta),
            *(s[k + 1].eq(s[k]) for s in (valid, add, addr) for k in (0, 1)), delta[1].eq(delta[0]),
            q.eq(rd.data),
            hit1.eq(valid[1] & (addr[1] == addr[0])), hit2.eq(valid[2] & (addr[2] == addr[0])),
        ]
        value = self.forward(hit1, hit2, w3, w4, q)
        m.d.sync += [w3.eq(Mux(add[1], value + delta[1], 0)), w4.eq(w3)]
        m.d.comb += [
            wr.en.eq(valid[2]), wr.addr.eq(addr[2]), wr.data.eq(w3),
            self.rd_data.eq(value),
            self.busy.eq((valid[0] & add[0]) | (valid[1] & add[1]) | (valid[2] & add[2])),
        ]
        return m

    @staticmethod
    def forward(hit1, hit2, w3, w4, q):
        """The accumulator as operation k sees it in S2: op k-1's result ``w3`` if it is to the same word
        (``hit1``), else op k-2's ``w4`` (``hit2``), else the registered read ``q``."""
        return Mux(hit1, w3, Mux(hit2, w4, q))
