"""An 8N1 UART for the board tops: :class:`UARTReceiver` and :class:`UARTTransmitter`.

One frame on the line (idle high) is a start bit (0), 8 data bits least significant first and a stop
bit (1), each ``divisor`` clock cycles long: ``divisor = round(f_clk / baud)`` (:func:`divisor`), e.g.
25 MHz / 115 200 Bd = 217 cycles (+0.006 % rate error). The receiver samples each bit in its middle
(``divisor // 2`` cycles after the falling edge of the start bit, then every ``divisor`` cycles), so it
tolerates a rate mismatch of up to ``±(divisor // 2) / (9.5 · divisor)`` ≈ ±5 % over a frame.
"""

from __future__ import annotations

from amaranth import Cat, Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.cdc import FFSynchronizer
from amaranth.lib.wiring import In, Out

from ...errors import RcsnnError

__all__ = ["divisor", "UARTReceiver", "UARTTransmitter"]


def divisor(clock_hz: float, baud: int) -> int:
    """Clock cycles per bit, ``round(clock_hz / baud)``; the rate error must stay under 2 % (a frame drifts < 20 %
    of a bit, as the receiver's mid-bit sampling allows half a bit)."""
    cycles = round(clock_hz / baud)
    if cycles < 4 or abs(clock_hz / cycles - baud) / baud > 0.02:
        raise RcsnnError(f"--baud {baud}: {clock_hz / 1e6:g} MHz / {baud} Bd needs >= 4 cycles per bit within 2 % "
                         f"(got {clock_hz / baud:.2f})")
    return cycles


def _check(cycles: int) -> None:
    if cycles < 4:
        raise RcsnnError(f"UART divisor {cycles}: needs at least 4 clock cycles per bit")


class UARTReceiver(wiring.Component):
    """8N1 receiver: the ``rx`` pin to a stream of bytes.

    Parameters
    ----------
    divisor : int
        Clock cycles per bit (>= 4).

    Attributes
    ----------
    rx : In(1)
        The line (idle high), synchronised here with two flip-flops.
    data : Out(stream.Signature(8))
        Received bytes; a byte waits for ``ready`` and is lost (``overrun``) if the next one completes first.
    frame_error : Out(1)
        One cycle high when a stop bit is 0 (its byte is dropped).
    overrun : Out(1)
        One cycle high when a completed byte replaced one that was never taken.
    """

    def __init__(self, divisor: int):
        _check(divisor)
        self.divisor = divisor
        super().__init__({"rx": In(1, init=1), "data": Out(stream.Signature(8)), "frame_error": Out(1),
                          "overrun": Out(1)})

    def elaborate(self, platform):
        m = Module()
        rx = Signal(init=1)
        m.submodules.sync_rx = FFSynchronizer(self.rx, rx, init=1)
        timer, bit, shift = Signal(range(self.divisor)), Signal(range(10)), Signal(9)
        with m.If(self.data.ready):
            m.d.sync += self.data.valid.eq(0)
        with m.FSM():
            with m.State("IDLE"), m.If(~rx):
                m.d.sync += [timer.eq(self.divisor // 2 - 1), bit.eq(0)]
                m.next = "FRAME"
            with m.State("FRAME"):
                m.d.sync += timer.eq(timer - 1)
                with m.If(timer == 0):  # the middle of bit number `bit` (0: start, 1-8: data, 9: stop)
                    m.d.sync += [timer.eq(self.divisor - 1), bit.eq(bit + 1), shift.eq(Cat(shift[1:], rx))]
                    with m.If((bit == 0) & rx):  # a glitch, not a start bit
                        m.next = "IDLE"
                    with m.If(bit == 9):
                        with m.If(rx):
                            m.d.sync += [self.data.payload.eq(shift[1:]), self.data.valid.eq(1)]
                            m.d.comb += self.overrun.eq(self.data.valid & ~self.data.ready)
                        with m.Else():
                            m.d.comb += self.frame_error.eq(1)
                        m.next = "IDLE"
        return m


class UARTTransmitter(wiring.Component):
    """8N1 transmitter: a stream of bytes to the ``tx`` pin, ``divisor`` (>= 4) clock cycles per bit.

    Attributes
    ----------
    data : In(stream.Signature(8))
        Bytes to send; ``ready`` while the line is idle (one frame at a time, back to back).
    tx : Out(1)
        The line (idle high).
    """

    def __init__(self, divisor: int):
        _check(divisor)
        self.divisor = divisor
        super().__init__({"data": In(stream.Signature(8)), "tx": Out(1, init=1)})

    def elaborate(self, platform):
        m = Module()
        timer, shift, left = Signal(range(self.divisor)), Signal(10, init=1), Signal(range(11))
        m.d.comb += [self.tx.eq(shift[0]), self.data.ready.eq(left == 0)]
        with m.If(self.data.ready & self.data.valid):  # start bit, 8 data bits, stop bit, each `divisor` cycles
            m.d.sync += [shift.eq(Cat(0, self.data.payload, 1)), left.eq(10), timer.eq(self.divisor - 1)]
        with m.Elif((left != 0) & (timer == 0)):
            m.d.sync += [shift.eq(Cat(shift[1:], 1)), left.eq(left - 1), timer.eq(self.divisor - 1)]
        with m.Elif(left != 0):
            m.d.sync += timer.eq(timer - 1)
        return m
