"""The event cost model of the digital core: the lower bound on cycles per step that a report compares with."""

from __future__ import annotations

import numpy as np

from ..ir.arrays import Core, array_view

__all__ = ["fanout", "lower_bound", "cycle_report"]


def fanout(core: Core) -> np.ndarray:
    """``(N,)`` synapses leaving each neuron (over all blocks; a shared T counts once per block using it)."""
    core = array_view(core)
    out = np.zeros(core.n_neurons, dtype=np.int64)
    offsets = core.offsets()
    for block in core.synapses:
        out[offsets[block.pre]] += np.count_nonzero(core.matrices[block.matrix], axis=0)
    return out


def lower_bound(core: Core, spikes: np.ndarray, lanes: int) -> np.ndarray:
    """Event lower bound of the cycles of each step: ``(Σ fan-out of the spikes of step t-1 + N) / lanes``."""
    core = array_view(core)
    events = np.concatenate([[0], spikes[:-1].astype(np.int64) @ fanout(core)])
    return (events + core.n_neurons) / lanes


def cycle_report(core: Core, spikes: np.ndarray, cycles: np.ndarray, lanes: int) -> dict:
    """Mean cycles per step, the mean lower bound and their ratio."""
    bound = lower_bound(core, spikes, lanes)
    return {"lanes": lanes, "cycles_per_step": float(cycles.mean()), "lower_bound": float(bound.mean()),
            "ratio": float(cycles.sum() / bound.sum()), "worst_step_ratio": float((cycles / bound).max())}
