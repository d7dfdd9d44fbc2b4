"""The analog partition pass: which neurons each open-loop SPICE deck simulates.

In open loop every spike line is replayed from the reference raster, so the core splits into
independent *blocks* (contiguous neuron ranges), one ngspice deck each, run in parallel.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import RcsnnError
from ..ir.graph import Graph

__all__ = ["Block", "partition", "blocks"]


@dataclass(frozen=True)
class Block:
    """Neurons ``start .. stop-1`` (global indices) simulated by one deck; index -1 is the closed-loop deck."""

    index: int
    start: int
    stop: int

    @property
    def stem(self) -> str:
        return "core" if self.index < 0 else f"block_{self.index:03d}"


def partition(graph: Graph, count: int) -> Graph:
    """Split the neurons into about ``count`` contiguous blocks of near-equal size, none straddling two
    groups (so each deck's time step suits its group's τ); every group gets at least one.

    Writes graph attribute ``partition`` = {``blocks``: number of blocks} and on every LIF node
    ``blocks`` = [[start, stop], ...] (global neuron ranges, in order).
    """
    core = graph.arrays()
    n = core.n_neurons
    if isinstance(count, bool) or not 1 <= count <= n:
        raise RcsnnError(f"--blocks {count}: must be between 1 and the number of neurons ({n})")
    out = graph.derive("partition")
    total = 0
    for g, sl in zip(core.groups, core.offsets().values()):
        pieces = min(g.size, max(1, round(count * g.size / n)))
        edges = np.linspace(sl.start, sl.stop, pieces + 1).round().astype(int)
        out.nx.nodes[g.name]["blocks"] = [[int(a), int(b)] for a, b in zip(edges, edges[1:])]
        total += pieces
    out.nx.graph["partition"] = {"blocks": total}
    return out


def blocks(graph: Graph) -> list[Block]:
    """The blocks of a partitioned graph, numbered in neuron order."""
    if graph.annotation("partition") is None:
        raise RcsnnError("open loop: the graph is not partitioned; run rcsnn.analog.partition.partition(graph, blocks)")
    ranges = [r for name, _ in graph.groups() for r in graph.annotation("blocks", name)]
    return [Block(k, a, b) for k, (a, b) in enumerate(ranges)]
