"""Synaptic accumulators of one lane: read-modify-write adds during propagate, read-and-clear during update."""

from __future__ import annotations

from amaranth import Module, Mux, Signal, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .neuron import state_memory

__all__ = ["AccumulatorBank"]


class AccumulatorBank(wiring.Component):
    """``depth`` signed accumulators of ``width`` bits, one memory (one read, one write port; LUT RAM if ``lutram``).

    Propagate: ``add_valid`` with ``add_addr``, ``add_delta`` performs ``acc[addr] += delta``;
    one add per cycle, any address sequence (the read port is transparent to the write port,
    so back-to-back adds to one address see each other). The write lands one cycle later.

    Update: ``rd_en`` with ``rd_addr`` returns ``acc[addr]`` on ``rd_data`` one cycle later and
    clears the word to 0 in that cycle. Adds and reads must not be issued in the same cycle.

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
        Propagate port: perform ``acc[add_addr] += add_delta`` (written one cycle later).
    add_addr : In(unsigned(max(1, (depth - 1).bit_length())))
        Address of the accumulator to add to.
    add_delta : In(signed(width))
        Signed value to add (``±alpha_q`` of a synapse block).
    rd_en : In(1)
        Update port: read ``acc[rd_addr]`` and clear it to 0; not in the same cycle as ``add_valid``.
    rd_addr : In(unsigned(max(1, (depth - 1).bit_length())))
        Address of the accumulator to read and clear.
    rd_data : Out(signed(width))
        The accumulator read by ``rd_en``, one cycle later.
    busy : Out(1)
        An add is still being written (high the cycle after ``add_valid``).
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
        adding = Signal()
        clearing = Signal()
        delta = Signal.like(self.add_delta)
        m.d.comb += [
            rd.en.eq(self.add_valid | self.rd_en),
            rd.addr.eq(Mux(self.add_valid, self.add_addr, self.rd_addr)),
        ]
        m.d.sync += [
            adding.eq(self.add_valid), clearing.eq(self.rd_en),
            delta.eq(self.add_delta), wr.addr.eq(rd.addr),
        ]
        m.d.comb += [
            wr.en.eq(adding | clearing),
            wr.data.eq(Mux(adding, rd.data + delta, 0)),
            self.rd_data.eq(rd.data),
            self.busy.eq(adding),
        ]
        return m
