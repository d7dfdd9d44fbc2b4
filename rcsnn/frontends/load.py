"""Open any CORE argument — an rcsnn checkpoint, an IR file or a NIR file — as the IR."""

from __future__ import annotations

from pathlib import Path

from ..errors import RcsnnError
from ..ir.graph import Graph

__all__ = ["load_core"]


def load_core(path: str | Path, dt: float | None = None, reset: str | None = None, *, flavor: str | None = None,
              discretize: str | None = None, max_spikes: int | None = None) -> Graph:
    """Load ``path`` by its suffix: ``.nir`` (with ``dt``, ``reset``, ``flavor``, ``discretize``, ``max_spikes``),
    ``.json``/``.graphml``,
    else a checkpoint."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".nir":
        from .nir import read_nir

        return read_nir(path, dt, reset, flavor=flavor, discretize=discretize, max_spikes=max_spikes)
    if any(v is not None for v in (dt, reset, flavor, discretize, max_spikes)):
        raise RcsnnError(f"{path}: --dt, --reset, --flavor, --discretize and --max-spikes apply only to NIR files; "
                         f"a {suffix or 'checkpoint'} file records its own")
    if suffix in (".json", ".graphml"):
        from ..ir.serialize import load_graph

        return load_graph(path)
    from .checkpoint import load_checkpoint

    return load_checkpoint(path)
