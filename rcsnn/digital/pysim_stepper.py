"""The digital core in Amaranth's simulator, one step at a time (``rcsnn generate --backend amaranth``).

One :class:`~amaranth.sim.Simulator` lives as long as the stepper: its testbench waits, clock
cycle by clock cycle, until the host hands it a step's currents, runs that step with
:func:`~rcsnn.digital.simulate.pysim_step` (the same code as :func:`~rcsnn.digital.simulate.run_pysim`)
and waits again; :meth:`PysimStepper.step` drives the simulator with ``Simulator.advance()``
until the step is done. The core keeps its membranes and spike queue between steps, so a run of
``k`` steps costs what ``run_pysim`` costs for ``k`` steps (plus one idle cycle per step).
"""

from __future__ import annotations

import numpy as np

from ..ir.graph import Graph
from .core import NeuromorphicCore
from .layout import build_image, place
from .simulate import beats, pysim_step, unpack_membranes, unpack_spikes

__all__ = ["CLOCK_PERIOD", "PysimStepper"]

#: Simulated clock period, seconds (only names time in a VCD; the core counts cycles).
CLOCK_PERIOD = 1e-8


class PysimStepper:
    """:class:`~rcsnn.model.generate.Stepper` of the digital core in Amaranth's simulator.

    ``step(xq)`` takes the quantised currents ``xq`` ``(N,)`` int64 (``2**-Fv`` membrane units, without
    bias) and returns the spikes ``(N,)`` int8 (int32 counts with counting groups) the core raised; :attr:`v`
    holds its membranes after the step (int64, ``2**-Fv`` units) and :attr:`cycles` the clock cycles of each step so far.

    Parameters
    ----------
    graph : Graph
        The core (placed here with ``lanes`` lanes).
    lanes : int
        Parallel synapse/neuron lanes of the digital core.

    A step that has not raised ``done`` within :func:`~rcsnn.digital.cycles.cycle_limit` cycles is an
    :class:`~rcsnn.errors.RcsnnError` (raised by :func:`~rcsnn.digital.simulate.pysim_step`).
    """

    quantized = True

    def __init__(self, graph: Graph, lanes: int = 8):
        from amaranth.sim import Simulator

        self.image = build_image(place(graph, lanes))
        self.dut = NeuromorphicCore(self.image, trace=True)
        n_words = self.image.slots.n_words
        self._masks = np.zeros(n_words, dtype=object)
        self._membranes = np.zeros(n_words, dtype=object)
        self._pending: np.ndarray | None = None
        self._done: int | None = None
        self.cycles: list[int] = []
        self.v = np.zeros(graph.arrays().n_neurons, dtype=np.int64)
        self.sim = Simulator(self.dut)
        self.sim.add_clock(CLOCK_PERIOD)
        self.sim.add_testbench(self._bench)

    async def _bench(self, ctx) -> None:
        while True:
            if self._pending is None:
                await ctx.tick()  # idle until the host hands over a step
                continue
            words, self._pending = self._pending, None
            self._masks[:] = 0
            self._done = await pysim_step(ctx, self.dut, words, self._masks, self._membranes, step=len(self.cycles))

    def step(self, x: np.ndarray) -> np.ndarray:
        """Spikes ``(N,)`` int8 of one step of the core for quantised currents ``x`` ``(N,)`` int64."""
        self._pending = beats(self.image, np.asarray(x, dtype=np.int64)[None])[0]
        self._done = None
        while self._done is None:
            self.sim.advance()
        self.cycles.append(self._done)
        self.v = unpack_membranes(self.image, self._membranes[None])[0]
        return unpack_spikes(self.image, self._masks[None])[0]
