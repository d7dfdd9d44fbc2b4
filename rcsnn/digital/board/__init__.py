"""Board tops (``rcsnn synth DIR --board NAME``): the LM on chip behind a UART, with a clock, a reset and pins.

Modules: :mod:`.uart` (8N1 receiver and transmitter), :mod:`.top` (the frame protocol, the board top and its
pins), :mod:`.boards` (ULX3S 85F and iCEBreaker: device, clock, pins, constraints), :mod:`.bitstream` (Yosys,
nextpnr, ecppack/icepack and the report), :mod:`.simulate` (the whole board top, UART bytes in and out, in
Amaranth's simulator).
"""

__all__: list[str] = []
