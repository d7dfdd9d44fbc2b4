"""The one raster file schema: spikes and membranes of a run, with the neurons' names and provenance.

A ``.npz`` written by :meth:`Raster.save` (``rcsnn run``, ``rcsnn simulate``, ``verify`` outputs)
holds:

=================  ===========================  ==============================================
key                shape, dtype                 meaning
=================  ===========================  ==============================================
``format``         0-d str                      ``"rcsnn-raster"``; ``version`` 0-d int = 1
``spikes``         (steps, N) int8 or int32     s[t] of every neuron, step 0 first: 0/1 (int8), or
                                                the spike count per step (int32) in a core with a
                                                ``max_spikes != 1`` group
``membranes``      (steps, N) float64 or int64  v[t] after step t (absent if not recorded)
``unit``           0-d str                      unit of the membranes: ``"membrane"`` (model
                                                units), ``"V"`` (a circuit) or ``"lsb"``
                                                (fixed-point integers, 2^-Fv membrane units)
``backend``        0-d str                      ``float``, ``fixed``, ``spice``, ``verilator``, ...
``groups``         (G,) str                     group names, in neuron order
``group_start``    (G,) int64                   global index of each group's first neuron
``group_size``     (G,) int64                   neurons per group
``provenance``     0-d str                      JSON: core SHA-256, stimulus, rcsnn version, ...
=================  ===========================  ==============================================

Steps are 0-based everywhere; neuron ``i`` of group ``g`` is global ``group_start[g] + i``.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import RcsnnError
from ..files import atomic_file
from .arrays import array_view
from .reference import spike_dtype

__all__ = ["Raster", "FORMAT", "VERSION", "UNITS"]

FORMAT = "rcsnn-raster"
VERSION = 1
UNITS = ("membrane", "V", "lsb")


@dataclass(frozen=True)
class Raster:
    """A run's spikes ``(steps, N)`` and membranes, with group names and provenance (see the module docstring)."""

    spikes: np.ndarray
    membranes: np.ndarray | None
    unit: str
    backend: str
    groups: tuple[str, ...]
    group_start: tuple[int, ...]
    group_size: tuple[int, ...]
    provenance: dict = field(default_factory=dict)

    @classmethod
    def of(cls, graph, spikes: np.ndarray, membranes: np.ndarray | None, unit: str, backend: str,
           provenance: dict | None = None) -> Raster:
        """A raster of the IR ``graph``'s neurons."""
        core = array_view(graph)
        offsets = core.offsets()
        return cls(np.asarray(spikes, dtype=spike_dtype(core)), membranes, unit, backend, tuple(offsets),
                   tuple(sl.start for sl in offsets.values()), tuple(g.size for g in core.groups), dict(provenance or {}))

    @property
    def steps(self) -> int:
        return int(self.spikes.shape[0])

    def locate(self, neuron: int) -> tuple[str, int]:
        """``(group name, index in the group)`` of a global neuron index."""
        for name, start, size in zip(self.groups, self.group_start, self.group_size):
            if start <= neuron < start + size:
                return name, neuron - start
        raise IndexError(neuron)

    def rates(self) -> dict[str, float]:
        """Mean firing rate of each group (NaN-free: a 0-step raster is refused at construction)."""
        return {name: float(self.spikes[:, start:start + size].mean())
                for name, start, size in zip(self.groups, self.group_start, self.group_size)}

    @staticmethod
    def npz_path(path: str | Path) -> Path:
        """The file :meth:`save` writes for ``path``: ``.npz`` is added if missing."""
        path = Path(path)
        return path if path.suffix == ".npz" else path.with_name(path.name + ".npz")

    def save(self, path: str | Path) -> Path:
        """Write the ``.npz`` (the suffix is added if missing), whole or not at all; returns the path written."""
        path = self.npz_path(path)
        arrays = {"format": np.array(FORMAT), "version": np.array(VERSION), "spikes": self.spikes,
                  "unit": np.array(self.unit), "backend": np.array(self.backend), "groups": np.array(self.groups),
                  "group_start": np.array(self.group_start, dtype=np.int64),
                  "group_size": np.array(self.group_size, dtype=np.int64),
                  "provenance": np.array(json.dumps(self.provenance, sort_keys=True))}
        if self.membranes is not None:
            arrays["membranes"] = self.membranes
        with atomic_file(path) as tmp, open(tmp, "wb") as f:
            np.savez_compressed(f, **arrays)
        return path

    @classmethod
    def load(cls, path: str | Path) -> Raster:
        """Read a raster file, checking its schema; errors name the file and the key (one line each)."""
        try:
            with open(path, "rb") as f:
                if f.read(4) != b"PK\x03\x04":
                    raise RcsnnError(f"{path}: not an .npz archive (a raster is written by rcsnn run/simulate/verify)")
                f.seek(0)
                with np.load(f, allow_pickle=False) as z:
                    data = {k: z[k] for k in z.files}
        except RcsnnError:
            raise
        except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
            raise RcsnnError(f"{path}: cannot read as an rcsnn raster .npz ({' '.join(str(exc).split())})") from None
        scalar = {k: data[k].item() if data.get(k) is not None and data[k].shape == () else None
                  for k in ("format", "version", "unit", "backend", "provenance")}
        if scalar["format"] != FORMAT or scalar["version"] != VERSION:
            raise RcsnnError(f"{path}: not an rcsnn raster (format {FORMAT!r} version {VERSION})")
        for key in ("spikes", "unit", "backend", "groups", "group_start", "group_size", "provenance"):
            if key not in data:
                raise RcsnnError(f"{path}: key {key!r} is missing")
        spikes, sizes, starts, groups = data["spikes"], data["group_size"], data["group_start"], data["groups"]
        if not (sizes.ndim == starts.ndim == groups.ndim == 1 and sizes.shape == starts.shape == groups.shape
                and sizes.dtype.kind in "iu" and starts.dtype.kind in "iu" and groups.dtype.kind == "U"):
            raise RcsnnError(f"{path}: keys 'groups', 'group_start', 'group_size' are not one name and two whole "
                             "numbers per group")
        if spikes.ndim != 2 or spikes.dtype not in (np.int8, np.int32) or int(sizes.sum()) != spikes.shape[1]:
            raise RcsnnError(f"{path}: key 'spikes': {spikes.dtype} {spikes.shape} does not match the groups")
        membranes = data.get("membranes")
        if membranes is not None and (membranes.shape != spikes.shape or membranes.dtype.kind not in "iuf"):
            raise RcsnnError(f"{path}: key 'membranes': {membranes.dtype} {membranes.shape} does not match 'spikes'")
        try:
            provenance = json.loads(str(scalar["provenance"]))
        except ValueError:
            provenance = None
        if not isinstance(provenance, dict):
            raise RcsnnError(f"{path}: key 'provenance' is not a JSON object")
        return cls(spikes, membranes, str(scalar["unit"]), str(scalar["backend"]), tuple(str(g) for g in groups),
                   tuple(int(s) for s in starts), tuple(int(s) for s in sizes), provenance)
