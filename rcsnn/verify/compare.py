"""Raster comparison shared by every back-end check: equal, or where they first differ.

Steps are 0-based; a neuron is named by its group, its index in the group and its global index.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from ..errors import RcsnnError
from ..ir.arrays import Core, array_view

__all__ = ["Divergence", "Comparison", "locate", "compare_rasters"]


@dataclass(frozen=True)
class Divergence:
    """A (step, neuron) where two rasters differ, with the neuron's group and index in it."""

    step: int
    neuron: int
    group: str
    index: int
    expected: int
    got: int


@dataclass(frozen=True)
class Comparison:
    """Result of comparing a backend's raster with the reference's, both ``(steps, N)``."""

    steps: int
    neurons: int
    reference_spikes: int
    backend_spikes: int
    mismatches: int
    first: Divergence | None
    mismatches_per_group: dict[str, int]

    def to_dict(self) -> dict:
        return {"steps": self.steps, "neurons": self.neurons, "reference_spikes": self.reference_spikes,
                "backend_spikes": self.backend_spikes, "mismatches": self.mismatches,
                "mismatches_per_group": self.mismatches_per_group,
                "first_divergence": None if self.first is None else asdict(self.first)}

    @property
    def equal(self) -> bool:
        return self.mismatches == 0

    def summary(self) -> str:
        head = (f"{self.steps} steps x {self.neurons} neurons: reference {self.reference_spikes} spikes, "
                f"backend {self.backend_spikes}, mismatches {self.mismatches}")
        if self.first is None:
            return head + " — rasters equal"
        f = self.first
        return (head + f"; first divergence at step {f.step}, group {f.group} neuron {f.index} (global {f.neuron}): "
                f"expected {f.expected}, got {f.got}")


def locate(core: Core, neuron: int) -> tuple[str, int]:
    """(group name, index within the group) of a global neuron index."""
    return array_view(core).locate(neuron)


def compare_rasters(core: Core, reference: np.ndarray, backend: np.ndarray) -> Comparison:
    """Compare two ``(steps, N)`` rasters; the first divergence is the earliest step, lowest neuron."""
    core = array_view(core)
    reference = np.asarray(reference)
    backend = np.asarray(backend)
    if reference.shape != backend.shape:
        raise RcsnnError(f"raster shapes differ: reference {reference.shape}, backend {backend.shape}")
    differ = reference != backend
    first = None
    if differ.any():
        t, i = (int(k) for k in np.argwhere(differ)[0])
        group, index = locate(core, i)
        first = Divergence(t, i, group, index, int(reference[t, i]), int(backend[t, i]))
    per_group = {g.name: int(differ[:, sl].sum()) for g, sl in zip(core.groups, core.offsets().values())}
    return Comparison(reference.shape[0], reference.shape[1], int(reference.sum()), int(backend.sum()),
                      int(differ.sum()), first, per_group)
