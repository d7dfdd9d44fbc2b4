"""The event cost model of the digital core: the lower bound on cycles per step that a report compares with,
and the upper bound every simulator run is held to.

**Lower bound** (:func:`lower_bound`): ``(Σ fan-out of the spikes of step t-1 + N) / lanes`` — one
synapse and one neuron update per lane per cycle, nothing else. A neuron that emitted a spike *count* is one
event per block, like a single spike (the synapse lanes multiply by the count).

**Cycle limit** (:func:`cycle_limit`): a working core ends every step within
:func:`step_cycle_bound` cycles, the cost of a step after *every* neuron fired::

    1 + E + max over lanes of Σ_events max(1, fan-out of the event in the lane) + 2 n_words + PIPELINE_CYCLES
      + the count divider's stages (a core with spike counts: latency(image) - LATENCY)

(E = Σ over synapse blocks of the pre group's size: the spike queue offers one event per cycle;
a lane walks one synapse per cycle and spends at least one cycle on every event; the update
phase issues ``n_words`` words; the queue may pause once per stored word; pipelines fill and
drain). Every simulator run stops a step that has not raised ``done`` after
``LIMIT_FACTOR * step_cycle_bound + LIMIT_SLACK`` cycles and fails naming the step: a hung core
is an error, never a hang. :func:`wall_timeout` turns the limit (and the memory loading) into a
wall-clock timeout for the process running it.
"""

from __future__ import annotations

import numpy as np

from ..ir.arrays import Core, array_view
from .core import memory_map
from .layout import Image
from .neuron import LATENCY, latency

__all__ = ["PIPELINE_CYCLES", "LIMIT_FACTOR", "LIMIT_SLACK", "RATE_FLOOR", "fanout", "lower_bound", "cycle_report",
           "step_cycle_bound", "cycle_limit", "load_cycles", "wall_timeout"]

#: Fill and drain of the spike-queue, synapse (FIFO, fetch, walk, add), accumulator (3 stages: registered read,
#: forward, write), neuron issue (1 cycle behind the accumulator read) and neuron (5 stages) pipelines, with room
#: (a step without events takes n_words + 9 cycles in all).
PIPELINE_CYCLES = 32
#: The per-step cycle limit is ``LIMIT_FACTOR * step_cycle_bound(image) + LIMIT_SLACK``.
LIMIT_FACTOR, LIMIT_SLACK = 2, 64
#: Slowest simulated speed assumed for a wall-clock timeout, in cycles x lanes per second (per simulator); measured
#: on a 2-core machine loaded by other jobs (small core / example core): Verilator 3e6 (example), Icarus 2e4 (example),
#: Amaranth 1e5 (small), gate level 2e2 (small) and 2e1 (example). A working core's steps take 4-20x fewer cycles
#: than the limit the timeout is computed from, a further margin.
RATE_FLOOR = {"amaranth": 5e3, "verilator": 2e5, "icarus": 5e3, "gate": 10.0}


def fanout(core: Core) -> np.ndarray:
    """``(N,)`` synapses leaving each neuron (over all blocks; a shared T counts once per block using it)."""
    core = array_view(core)
    out = np.zeros(core.n_neurons, dtype=np.int64)
    offsets = core.offsets()
    for block in core.synapses:
        out[offsets[block.pre]] += np.count_nonzero(core.matrices[block.matrix], axis=0)
    return out


def lower_bound(core: Core, spikes: np.ndarray, lanes: int) -> np.ndarray:
    """Event lower bound of the cycles of each step: ``(Σ fan-out of the neurons that spiked in step t-1 + N) / lanes``
    (a spike count costs what one spike does)."""
    core = array_view(core)
    events = np.concatenate([[0], (spikes[:-1] != 0).astype(np.int64) @ fanout(core)])
    return (events + core.n_neurons) / lanes


def cycle_report(core: Core, spikes: np.ndarray, cycles: np.ndarray, lanes: int) -> dict:
    """Mean cycles per step, the mean lower bound and their ratio."""
    bound = lower_bound(core, spikes, lanes)
    return {"lanes": lanes, "cycles_per_step": float(cycles.mean()), "lower_bound": float(bound.mean()),
            "ratio": float(cycles.sum() / bound.sum()), "worst_step_ratio": float((cycles / bound).max())}


def step_cycle_bound(image: Image) -> int:
    """Most cycles one step of a working core can take: every neuron fired in the step before (module docstring)."""
    counts = np.array([[word >> image.start_bits for word in lane] for lane in image.rowptr], dtype=np.int64)
    events, work = 0, np.zeros(image.lanes, dtype=np.int64)
    for block in image.blocks:
        rows = counts[:, block.row_base: block.row_base + image.slots.sizes[block.pre]]
        events += rows.shape[1]
        work += np.maximum(rows, 1).sum(axis=1)
    return int(1 + events + work.max() + 2 * image.slots.n_words + PIPELINE_CYCLES + latency(image) - LATENCY)


def cycle_limit(image: Image) -> int:
    """Cycles after which a step that has not raised ``done`` is an error (module docstring)."""
    return LIMIT_FACTOR * step_cycle_bound(image) + LIMIT_SLACK


def load_cycles(image: Image) -> int:
    """Cycles the benches spend writing every memory image through the load port (one word per cycle)."""
    return sum(depth for _, _, depth, _, _ in memory_map(image))


def wall_timeout(image: Image, steps: int, simulator: str, base: float = 60.0) -> float:
    """Wall-clock seconds allowed for ``steps`` steps in ``simulator`` (a key of :data:`RATE_FLOOR`): ``base``
    plus the memory loading and every step at its cycle limit, simulated at the floor rate (per lane)."""
    return base + (steps * cycle_limit(image) + load_cycles(image)) * image.lanes / RATE_FLOOR[simulator]
