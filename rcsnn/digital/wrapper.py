"""Synthesis top: the core behind two serial shift chains, so it fits any package's pins.

Every core input (``start``, ``x``, ``load``) is a bit of an input chain shifted in from pin
``si`` each cycle; every core output is captured into an output chain when pin ``capture`` is
high and shifted out on pin ``so`` otherwise. Nothing is optimised away, and the pin count is
4 (plus clock and reset) at the cost of one flip-flop per core port bit (reported separately).
"""

from __future__ import annotations

from amaranth import Cat, Elaboratable, Module, Signal
from amaranth.lib import wiring

from .core import NeuromorphicCore
from .layout import Image

__all__ = ["port_signals", "SerialWrapper"]


def port_signals(component: wiring.Component) -> list[tuple[str, Signal, bool]]:
    """``(verilog name, signal, is_input)`` of a component's ports (constant members skipped)."""
    out = []
    for path, member, value in component.signature.flatten(component):
        value = value.as_value() if hasattr(value, "as_value") else value
        if isinstance(value, Signal):
            out.append(("__".join(map(str, path)), value, member.flow == wiring.In))
    return out


class SerialWrapper(Elaboratable):
    """``NeuromorphicCore(image, preload=preload, lutram=lutram)`` with serial pins ``si``, ``capture``, ``so``.

    An :class:`~amaranth.hdl.Elaboratable` with plain signals (no ``wiring`` signature): its pins are
    the ports of the synthesis top.

    Parameters
    ----------
    image : Image
        Layout, parameters and memory contents of the core.
    preload : bool
        Initialise the core's CSR and bias memories with the contents of ``image``.
    lutram : bool
        Put the core's per-lane neuron state in LUT RAM.

    Attributes
    ----------
    si : Signal(1), in
        Serial input: shifted into the input chain every cycle; the chain drives every core input
        (``inputs``, concatenated, the first one in the low bits).
    capture : Signal(1), in
        High: load every core output (``outputs``, concatenated) into the output chain; low:
        shift the output chain one bit towards ``so``.
    so : Signal(1), out
        Serial output: bit 0 of the output chain.
    core : NeuromorphicCore
        The wrapped core (``trace=False``).
    inputs : list of Signal
        The core's input port signals, in :func:`port_signals` order.
    outputs : list of Signal
        The core's output port signals, in :func:`port_signals` order.
    chain_bits : int
        Flip-flops of both chains (the total width of the core's ports).
    """

    def __init__(self, image: Image, preload: bool = True, lutram: bool = False):
        self.core = NeuromorphicCore(image, preload=preload, lutram=lutram)
        ports = port_signals(self.core)
        self.inputs = [s for _, s, is_input in ports if is_input]
        self.outputs = [s for _, s, is_input in ports if not is_input]
        self.chain_bits = sum(len(s) for s in self.inputs + self.outputs)
        self.si, self.capture, self.so = Signal(), Signal(), Signal()

    def elaborate(self, platform):
        m = Module()
        m.submodules.core = self.core
        inputs = Signal(sum(len(s) for s in self.inputs))
        outputs = Signal(sum(len(s) for s in self.outputs))
        m.d.sync += inputs.eq(Cat(self.si, inputs[:-1]))
        m.d.comb += [Cat(*self.inputs).eq(inputs), self.so.eq(outputs[0])]
        with m.If(self.capture):
            m.d.sync += outputs.eq(Cat(*self.outputs))
        with m.Else():
            m.d.sync += outputs.eq(outputs >> 1)
        return m
