"""The boards ``rcsnn synth DIR --board NAME`` builds for: device, clock, pins and constraints.

* ``ulx3s-85f``: Radiona ULX3S with an LFE5U-85F (CABGA381); 25 MHz oscillator on G2, the FT231X
  USB UART (``ftdi_txd`` M1 into the FPGA, ``ftdi_rxd`` L4 out of it), button FIRE2 (T1, active
  high) as reset, LED 0 (B2) as the error light. Pins from the board's published constraints
  ``ulx3s_v20.lpf`` (github.com/emard/ulx3s, doc/constraints).
* ``icebreaker``: 1BitSquared iCEBreaker with an iCE40UP5K (SG48); 12 MHz oscillator on pin 35, the
  FT2232H's second channel as UART (RX pin 6 into the FPGA, TX pin 9 out), the user button
  (pin 10, active low) as reset, the red LED (pin 11, active low) as the error light. Pins from
  the board's published ``icebreaker.pcf`` (github.com/icebreaker-fpga/icebreaker-examples).

The parameters are in the bitstream: the LM top's ROMs and the core's memories (``rcsnn verilog
--lm`` with preloading) map to block RAM with initial contents (ECP5 DP16KD, iCE40 SB_RAM40_4K);
SPRAM, which has none, is not used. A design that does not fit fails in synthesis with what would.
"""

from __future__ import annotations

from dataclasses import dataclass

from ...templates import render

__all__ = ["Board", "BOARDS"]


@dataclass(frozen=True)
class Board:
    """A board: ``target`` (a key of :data:`rcsnn.digital.synth.TARGETS`), oscillator, pins (port, site, what)."""

    name: str
    title: str
    target: str
    clock_mhz: float
    pins: tuple[tuple[str, str, str], ...]
    reset_low: bool
    led_low: bool
    source: str

    @property
    def ecp5(self) -> bool:
        return self.target.startswith("ecp5")

    @property
    def constraints_file(self) -> str:
        """``board.lpf`` (ECP5) or ``board.pcf`` (iCE40)."""
        return "board.lpf" if self.ecp5 else "board.pcf"

    def constraints(self) -> str:
        """The constraints file's text: every pin of :class:`~rcsnn.digital.board.top.BoardPins`, and the clock."""
        return render("rcsnn.digital", f"{self.constraints_file}.j2", board=self, pins=self.pins)


BOARDS = {
    "ulx3s-85f": Board("ulx3s-85f", "Radiona ULX3S, LFE5U-85F", "ecp5-85f", 25.0,
                       (("clk", "G2", "clk_25mhz, 25 MHz oscillator"), ("button", "T1", "btn[6] FIRE2, reset"),
                        ("rx", "M1", "ftdi_txd: FT231X to FPGA"), ("tx", "L4", "ftdi_rxd: FPGA to FT231X"),
                        ("led", "B2", "led[0]: error")),
                       False, False, "github.com/emard/ulx3s doc/constraints/ulx3s_v20.lpf"),
    "icebreaker": Board("icebreaker", "1BitSquared iCEBreaker, iCE40UP5K-SG48", "ice40-up5k", 12.0,
                        (("clk", "35", "CLK, 12 MHz oscillator"), ("button", "10", "BTN_N, reset"),
                         ("rx", "6", "RX: FT2232H to FPGA"), ("tx", "9", "TX: FPGA to FT2232H"),
                         ("led", "11", "LEDR_N: error")),
                        True, True, "github.com/icebreaker-fpga/icebreaker-examples icebreaker.pcf"),
}
