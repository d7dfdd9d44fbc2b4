"""Step controller: propagate phase, then update phase, and the cycles-per-step counter."""

from __future__ import annotations

from amaranth import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .layout import bits

__all__ = ["CYCLE_BITS", "Controller"]

CYCLE_BITS = 32


class Controller(wiring.Component):
    """Sequences one network step over ``n_words`` update words.

    A step: ``start`` (accepted when idle) -> *propagate* (``queue_start`` pulses; the phase
    ends when ``prop_busy`` falls) -> *update* (``clear`` pulses; word ``issue_addr`` is issued
    to the lanes on every ``x_valid & x_ready``; the phase ends when all words are issued and
    ``update_busy`` falls) -> ``done`` pulses with ``cycles`` = cycles from the accepted
    ``start`` to the end of the update phase (``1 + propagate + update``).

    Parameters
    ----------
    n_words : int
        Update words per step (``image.slots.n_words``).

    Attributes
    ----------
    start : In(1)
        Pulse high for one cycle to begin a step; accepted only while idle (``busy`` low).
    busy : Out(1)
        High during the propagate and update phases of a step.
    done : Out(1)
        High for one cycle when a step ends; ``cycles`` is valid from then on.
    cycles : Out(CYCLE_BITS)
        Cycles of the last step, from the accepted ``start`` to the end of its update phase
        (``CYCLE_BITS`` = 32). Held until the next ``done``.
    queue_start : Out(1)
        One-cycle pulse to the spike queue: replay the spike list (the start of propagate).
    clear : Out(1)
        One-cycle pulse to the spike queue: empty the spike list (the start of update).
    prop_busy : In(1)
        The spike queue, synapse lanes or accumulators still work on the propagate phase;
        propagate ends in the first cycle it is low.
    update_busy : In(1)
        The neuron pipeline still holds a neuron; update ends when every word is issued and this
        is low.
    x_valid : In(1)
        An update word (the currents of the ``x`` stream) is offered.
    x_ready : Out(1)
        High during update while words remain to be issued.
    issue : Out(1)
        ``x_valid & x_ready``: word ``issue_addr`` goes to the accumulators and neuron lanes in
        this cycle.
    issue_addr : Out(unsigned(bits(n_words)))
        Address of the next update word, ``0 .. n_words - 1`` (``n_words`` once all are issued).
    """

    def __init__(self, n_words: int):
        self.n_words = n_words
        super().__init__({
            "start": In(1), "busy": Out(1), "done": Out(1), "cycles": Out(CYCLE_BITS),
            "queue_start": Out(1), "clear": Out(1),
            "prop_busy": In(1), "update_busy": In(1),
            "x_valid": In(1), "x_ready": Out(1), "issue": Out(1), "issue_addr": Out(bits(n_words)),
        })

    def elaborate(self, platform):
        m = Module()
        counter = Signal(CYCLE_BITS)
        m.d.sync += [self.done.eq(0), counter.eq(counter + 1)]
        with m.FSM():
            with m.State("IDLE"), m.If(self.start):
                m.d.comb += self.queue_start.eq(1)
                m.d.sync += counter.eq(1)
                m.next = "PROPAGATE"
            with m.State("PROPAGATE"):
                m.d.comb += self.busy.eq(1)
                with m.If(~self.prop_busy):
                    m.d.comb += self.clear.eq(1)
                    m.d.sync += self.issue_addr.eq(0)
                    m.next = "UPDATE"
            with m.State("UPDATE"):
                remaining = self.issue_addr != self.n_words
                m.d.comb += [self.busy.eq(1), self.x_ready.eq(remaining), self.issue.eq(self.x_valid & remaining)]
                with m.If(self.issue):
                    m.d.sync += self.issue_addr.eq(self.issue_addr + 1)
                with m.If(~remaining & ~self.update_busy):
                    m.d.sync += [self.done.eq(1), self.cycles.eq(counter + 1)]
                    m.next = "IDLE"
        return m
