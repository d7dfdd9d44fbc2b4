"""The board top: the language model on chip behind a UART (prompt in, characters out).

Protocol (8N1 at the board's baud rate; bytes host -> board), one frame per prompt:

====== ===== ===========================================================================
offset bytes field
====== ===== ===========================================================================
0      2     ``length``, little-endian: characters to generate after the prompt
2      1     ``sample``: bit 0 = 1 for LFSR (Gumbel-max) sampling, 0 for greedy
3      4     ``seed``, little-endian: the LFSR seed (0 acts as 1)
7      2     ``count``, little-endian: prompt bytes that follow (0: the frame is ignored)
9      count the prompt, UTF-8; the last one goes to the LM flagged ``last``
====== ===== ===========================================================================

The board answers with the generated characters' UTF-8 bytes (exactly what
:func:`rcsnn.model.lm_fixed.lm_generate` returns). The received bytes wait in a FIFO of
``fifo_depth`` bytes while the LM steps the core (no flow control: a host sending more than that
ahead of the chip loses bytes, shown on the ``error`` LED with framing errors). The LM keeps its state
between frames (a conversation); the reset button starts afresh.

:class:`BoardTop` is clocked by the ``sync`` domain (Amaranth's simulator drives it);
:class:`BoardPins` adds the board's clock and reset pins and is the synthesis top ``rcsnn_board``.
"""

from __future__ import annotations

from amaranth import C, ClockDomain, ClockSignal, Elaboratable, Instance, Module, ResetSignal, Signal
from amaranth.lib import fifo, stream, wiring
from amaranth.lib.cdc import ResetSynchronizer
from amaranth.lib.wiring import In, Out

from ...errors import RcsnnError
from ..lm.run import LM_TOP
from ..lm.top import PROMPT
from ..wrapper import port_signals
from .uart import UARTReceiver, UARTTransmitter

__all__ = ["HEADER_BYTES", "FIFO_DEPTH", "frame", "BoardTop", "LMInstance", "BoardPins"]

#: Bytes of a frame's header (length, sample, seed, count).
HEADER_BYTES = 9
#: Prompt bytes the board buffers while the LM is busy.
FIFO_DEPTH = 256


def frame(prompt: bytes, length: int, sample: bool, seed: int) -> bytes:
    """The bytes a host sends for one prompt (module docstring)."""
    if not 0 <= length < 1 << 16 or not 0 <= seed < 1 << 32 or len(prompt) >= 1 << 16:
        raise RcsnnError(f"frame: length {length} (16 bits), seed {seed} (32 bits), prompt of {len(prompt)} bytes "
                         "(16 bits): out of range")
    return (length.to_bytes(2, "little") + bytes([int(sample)]) + seed.to_bytes(4, "little")
            + len(prompt).to_bytes(2, "little") + prompt)


def _lm_members() -> dict:
    """The LM top's ports that the board uses (:class:`~rcsnn.digital.lm.top.LanguageModelTop`)."""
    return {"prompt": In(stream.Signature(PROMPT)), "text": Out(stream.Signature(8)),
            "length": In(16), "sample": In(1), "seed": In(32), "busy": Out(1)}


class BoardTop(wiring.Component):
    """UART receiver -> FIFO -> frame parser -> LM -> UART transmitter (module docstring).

    Parameters
    ----------
    lm : wiring.Component
        The LM: a :class:`~rcsnn.digital.lm.top.LanguageModelTop` (simulation) or an :class:`LMInstance`
        of the emitted ``rcsnn_lm`` module (synthesis); its ``load`` port, if any, stays idle.
    divisor : int
        Clock cycles per UART bit (:func:`~rcsnn.digital.board.uart.divisor`).
    fifo_depth : int
        Received bytes buffered while the LM is busy.

    Attributes
    ----------
    rx : In(1)
        UART line from the host (idle high).
    tx : Out(1)
        UART line to the host (idle high).
    error : Out(1)
        Sticky until reset: a framing error or a lost byte (a byte completed while the FIFO was full and the
        previous one still waiting).
    busy : Out(1)
        A frame is being received, parsed or answered (low: every received byte was consumed and the LM is idle).
    """

    def __init__(self, lm: wiring.Component, divisor: int, fifo_depth: int = FIFO_DEPTH):
        self.lm, self.divisor, self.fifo_depth = lm, divisor, fifo_depth
        super().__init__({"rx": In(1, init=1), "tx": Out(1, init=1), "error": Out(1), "busy": Out(1)})

    def elaborate(self, platform):
        m = Module()
        m.submodules.lm = lm = self.lm
        m.submodules.receiver = rx = UARTReceiver(self.divisor)
        m.submodules.transmitter = tx = UARTTransmitter(self.divisor)
        m.submodules.fifo = buf = fifo.SyncFIFOBuffered(width=8, depth=self.fifo_depth)
        m.d.comb += [rx.rx.eq(self.rx), self.tx.eq(tx.tx)]
        wiring.connect(m, rx.data, buf.w_stream)
        wiring.connect(m, lm.text, tx.data)
        with m.If(rx.frame_error | rx.overrun):  # a full FIFO holds the receiver's byte: lost when the next completes
            m.d.sync += self.error.eq(1)

        header, got, left = Signal(8 * HEADER_BYTES), Signal(range(HEADER_BYTES)), Signal(16)
        m.d.comb += [lm.length.eq(header[0:16]), lm.sample.eq(header[16]), lm.seed.eq(header[24:56])]
        with m.FSM() as fsm:
            with m.State("HEADER"):
                m.d.comb += buf.r_stream.ready.eq(1)
                with m.If(buf.r_stream.valid):
                    m.d.sync += [header.eq(header[8:] | buf.r_stream.payload << 8 * (HEADER_BYTES - 1)),
                                 got.eq(got + 1)]
                    with m.If(got == HEADER_BYTES - 1):
                        count = (buf.r_stream.payload << 8) | header[64:72]
                        m.d.sync += [got.eq(0), left.eq(count)]
                        with m.If(count != 0):
                            m.next = "PROMPT"
            with m.State("PROMPT"):  # the LM latches length, sample and seed with the last byte
                m.d.comb += [lm.prompt.valid.eq(buf.r_stream.valid), lm.prompt.payload.byte.eq(buf.r_stream.payload),
                             lm.prompt.payload.last.eq(left == 1), buf.r_stream.ready.eq(lm.prompt.ready)]
                with m.If(buf.r_stream.valid & lm.prompt.ready):
                    m.d.sync += left.eq(left - 1)
                    with m.If(left == 1):
                        m.next = "HEADER"
        m.d.comb += self.busy.eq(lm.busy | buf.r_stream.valid | (got != 0) | fsm.ongoing("PROMPT"))
        return m


def lm_ports(rtlil: str) -> dict[str, tuple[int, bool]]:
    """``{port: (width, is_input)}`` of module ``rcsnn_lm`` in the emitted ``rcsnn_lm.il``."""
    ports, inside = {}, False
    for line in rtlil.splitlines():
        words = line.split()
        if words[:2] == ["module", f"\\{LM_TOP}"]:
            inside = True
        elif inside and words[:1] == ["end"]:
            break
        elif inside and words[:1] == ["wire"] and ("input" in words or "output" in words):
            width = int(words[words.index("width") + 1]) if "width" in words else 1
            ports[words[-1].lstrip("\\")] = (width, "input" in words)
    if not ports:
        raise RcsnnError(f"rcsnn_lm.il: no module \\{LM_TOP} with ports; write the design with: rcsnn verilog CORE --lm")
    return ports


class LMInstance(wiring.Component):
    """The emitted ``rcsnn_lm`` module (read with its RTLIL) as a component with the LM's ports.

    Parameters
    ----------
    ports : dict
        ``{port: (width, is_input)}`` of the module (:func:`lm_ports`); inputs the board does not use
        (the ``load`` stream) are tied to 0, unused outputs (the trace) left open.
    """

    def __init__(self, ports: dict[str, tuple[int, bool]]):
        self.ports = ports
        super().__init__(_lm_members())
        for name, signal, is_input in port_signals(self):
            if ports.get(name) != (len(signal), is_input):
                raise RcsnnError(f"rcsnn_lm.il: port {name!r} is {ports.get(name)}, the board needs "
                                 f"{(len(signal), is_input)} (width, input)")

    def elaborate(self, platform):
        mine = {name: (signal, is_input) for name, signal, is_input in port_signals(self)}
        args = {"i_clk": ClockSignal(), "i_rst": ResetSignal()}
        args.update({("i_" if is_input else "o_") + name: signal for name, (signal, is_input) in mine.items()})
        for name, (width, is_input) in self.ports.items():
            if is_input and name not in mine and name not in ("clk", "rst"):
                args[f"i_{name}"] = C(0, width)
        m = Module()
        m.submodules.lm = Instance(LM_TOP, **args)
        return m


class BoardPins(Elaboratable):
    """:class:`BoardTop` with the board's pins: ``clk`` (the oscillator), ``button`` (reset, synchronised; active
    low if ``reset_low``), ``rx``, ``tx`` and ``led`` (``error``; active low if ``led_low``)."""

    def __init__(self, top: BoardTop, reset_low: bool, led_low: bool):
        self.top, self.reset_low, self.led_low = top, reset_low, led_low
        self.clk, self.button, self.led = Signal(name="clk"), Signal(name="button"), Signal(name="led")
        self.rx, self.tx = Signal(name="rx", init=1), Signal(name="tx")

    def ports(self) -> list[Signal]:
        return [self.clk, self.button, self.rx, self.tx, self.led]

    def elaborate(self, platform):
        m = Module()
        m.domains.sync = ClockDomain("sync")
        m.d.comb += ClockSignal("sync").eq(self.clk)
        reset = Signal()
        m.d.comb += reset.eq(~self.button if self.reset_low else self.button)
        m.submodules.reset = ResetSynchronizer(reset, domain="sync")
        m.submodules.top = top = self.top
        m.d.comb += [top.rx.eq(self.rx), self.tx.eq(top.tx), self.led.eq(top.error ^ self.led_low)]
        return m
