"""Memory image of a core for the event-driven hardware: what goes in which lane's memories.

Neurons live in *slots*: group g occupies ``words[g] * lanes`` consecutive slots starting at
``word_base[g] * lanes`` (each group padded to a multiple of ``lanes``); slot ``s`` is held by
lane ``s % lanes`` at word address ``s // lanes``. Local neuron ``i`` of group g sits at slot
``word_base[g] * lanes + i``, so a lane owns the same local indices ``i ≡ lane (mod lanes)`` of
every group. Padding slots get no input, bias or synapses and never fire.

Synapses are stored in CSR by presynaptic neuron, per lane and **per matrix** (a matrix named
by several synapse blocks — the shared T — is stored once):

* ``rowptr[lane][row_base[m] + j] = start | count << start_bits``: the fan-out of pre neuron j
  through matrix m into this lane's post neurons is ``entries[lane][start : start + count]``;
* ``entries[lane][e] = row | negative << row_bits``: post local index ``i = row * lanes + lane``
  and the sign of ``T[i, j]``.

A spike of neuron j of group g becomes one event per synapse block b with ``pre == g``; the
event adds ``±alpha_q[b]`` to accumulator word ``post_word_base[b] + row`` of each lane.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import RcsnnError
from ..ir.arrays import Core
from ..ir.graph import Graph
from ..ir.passes import quantize
from ..ir.reference import quantize_core

__all__ = ["bits", "Block", "Slots", "Image", "place", "build_image"]


def bits(n: int) -> int:
    """Unsigned width that holds ``0..n`` (at least 1)."""
    return max(1, int(n).bit_length())


@dataclass(frozen=True)
class Block:
    """A synapse block as the hardware sees it."""

    pre: int  # group index
    post: int  # group index
    alpha_q: int
    row_base: int  # first rowptr row of its matrix
    post_word_base: int  # accumulator word of the post group's local index 0


@dataclass(frozen=True)
class Slots:
    """Placement of neurons in (word, lane) slots, groups padded to a multiple of ``lanes``."""

    lanes: int
    sizes: tuple[int, ...]

    @property
    def words(self) -> tuple[int, ...]:
        return tuple(-(-n // self.lanes) for n in self.sizes)

    @property
    def word_base(self) -> tuple[int, ...]:
        return tuple(int(x) for x in np.cumsum((0,) + self.words[:-1]))

    @property
    def offsets(self) -> tuple[int, ...]:
        """Global neuron index of each group's first neuron."""
        return tuple(int(x) for x in np.cumsum((0,) + self.sizes[:-1]))

    @property
    def n_words(self) -> int:
        return sum(self.words)

    @property
    def n_neurons(self) -> int:
        return sum(self.sizes)

    def neurons(self) -> np.ndarray:
        """``(n_words, lanes)`` global neuron index of each slot, -1 for padding."""
        out = np.full((self.n_words, self.lanes), -1, dtype=np.int64)
        for n, base, offset in zip(self.sizes, self.word_base, self.offsets):
            i = np.arange(n)
            out[base + i // self.lanes, i % self.lanes] = offset + i
        return out

    def to_slots(self, values: np.ndarray) -> np.ndarray:
        """``(..., N)`` per-neuron values -> ``(..., n_words, lanes)`` slot order, 0 in padding."""
        slots = self.neurons()
        out = np.zeros(values.shape[:-1] + slots.shape, dtype=values.dtype)
        out[..., slots >= 0] = values[..., slots[slots >= 0]]
        return out

    def from_slots(self, values: np.ndarray) -> np.ndarray:
        """Inverse of :meth:`to_slots`: ``(..., n_words, lanes)`` -> ``(..., N)``."""
        slots = self.neurons()
        out = np.zeros(values.shape[:-2] + (self.n_neurons,), dtype=values.dtype)
        out[..., slots[slots >= 0]] = values[..., slots >= 0]
        return out


@dataclass(frozen=True)
class Image:
    """Parameters, widths and per-lane memory contents of the hardware core (see module docstring)."""

    slots: Slots
    Wv: int
    Fb: int
    beta_q: tuple[int, ...]  # per group
    theta_q: tuple[int, ...]
    subtract: tuple[bool, ...]
    blocks: tuple[Block, ...]  # sorted by pre group
    pre_first: tuple[int, ...]  # first block with pre == g
    pre_count: tuple[int, ...]
    start_bits: int
    count_bits: int
    row_bits: int
    acc_width: int  # signed width of the accumulators
    bias: tuple[tuple[int, ...], ...]  # [lane][word], signed
    rowptr: tuple[tuple[int, ...], ...]  # [lane][row], encoded
    entries: tuple[tuple[int, ...], ...]  # [lane][entry], encoded

    @property
    def lanes(self) -> int:
        return self.slots.lanes

    @property
    def n_rows(self) -> int:
        return len(self.rowptr[0])

    @property
    def pre_bits(self) -> int:
        return bits(max(self.slots.sizes) - 1)

    @property
    def block_bits(self) -> int:
        return bits(len(self.blocks) - 1)

    @property
    def word_bits(self) -> int:
        return bits(self.slots.n_words - 1)


def _csr(matrix: np.ndarray, lanes: int) -> list[list[list[tuple[int, int]]]]:
    """``[lane][pre j] -> [(row, negative)]`` for the nonzeros ``T[i, j]`` with ``i % lanes == lane``."""
    out = [[[] for _ in range(matrix.shape[1])] for _ in range(lanes)]
    for i, j in zip(*np.nonzero(matrix)):
        out[i % lanes][j].append((int(i) // lanes, int(matrix[i, j] < 0)))
    return out


def place(graph: Graph, lanes: int) -> Graph:
    """The digital placement pass (after :func:`~rcsnn.ir.passes.quantize`, run here if it was not).

    Writes graph attribute ``place`` = {``lanes``, ``n_words``, ``word_bits``, ``acc_width``,
    ``start_bits``, ``row_bits``, ``synapse_words`` (per lane), ``rowptr_words``}; on every LIF node
    ``place`` = {``word_base``, ``words``} (its slots, see the module docstring); on every synapse
    edge ``place`` = {``row_base``, ``post_word_base``} (where its events read and add).
    """
    quantized = graph if "quantize" in graph.passes else quantize(graph)
    image = _layout(graph.arrays(), lanes)
    out = quantized.derive("place")
    s = image.slots
    out.nx.graph["place"] = {"lanes": lanes, "n_words": s.n_words, "word_bits": image.word_bits,
                             "acc_width": image.acc_width, "start_bits": image.start_bits, "row_bits": image.row_bits,
                             "synapse_words": [len(e) for e in image.entries], "rowptr_words": image.n_rows}
    for (name, _), base, words in zip(graph.groups(), s.word_base, s.words):
        out.nx.nodes[name]["place"] = {"word_base": base, "words": words}
    names = [name for name, _ in graph.groups()]
    for block in image.blocks:
        pre, post = names[block.pre], names[block.post]
        out.nx.edges[pre, post]["place"] = {"row_base": block.row_base, "post_word_base": block.post_word_base}
    return out


def build_image(graph: Graph) -> Image:
    """The memory image of a placed graph (:func:`place`): the plan the Amaranth core is built from."""
    placement = graph.annotation("place")
    if placement is None:
        raise RcsnnError("digital core: the graph is not placed; run rcsnn.digital.layout.place(graph, lanes) first")
    return graph.plan("digital.image", lambda g: _layout(g.arrays(), int(placement["lanes"])))


def _layout(core: Core, lanes: int) -> Image:
    """Lay ``core`` out for ``lanes`` parallel lanes (see the module docstring)."""
    if not 1 <= lanes <= 32:
        raise RcsnnError(f"--lanes {lanes}: must be 1..32")
    if not core.synapses:
        raise RcsnnError("digital core: the core has no synapse blocks; the event-driven core needs at least one")
    same_step = ", ".join(f"{s.pre}->{s.post}" for s in core.same_step_blocks())
    if same_step:
        raise RcsnnError(f"digital core: same-step (delay 0) synapse blocks {same_step} are not supported; "
                         "the core replays the spikes of step t-1 only (delay 1)")
    q = quantize_core(core)
    names = [g.name for g in core.groups]
    slots = Slots(lanes, tuple(g.size for g in core.groups))
    used = list(dict.fromkeys(s.matrix for s in core.synapses))
    row_base = dict(zip(used, np.cumsum([0] + [core.matrices[m].shape[1] for m in used[:-1]]).tolist()))
    csr = {m: _csr(core.matrices[m], lanes) for m in used}
    rows = [[row for m in used for row in csr[m][lane]] for lane in range(lanes)]
    start_bits = bits(max(sum(len(r) for r in lane) for lane in rows))
    row_bits = bits(max(slots.words) - 1)
    rowptr, entries = [], []
    for lane in rows:
        starts = np.cumsum([0] + [len(r) for r in lane[:-1]]).tolist()
        rowptr.append(tuple(int(s) | len(r) << start_bits for s, r in zip(starts, lane)))
        entries.append(tuple(i | neg << row_bits for r in lane for i, neg in r) or (0,))
    order = sorted(range(len(core.synapses)), key=lambda k: names.index(core.synapses[k].pre))
    blocks = []
    for k in order:
        s = core.synapses[k]
        post = names.index(s.post)
        blocks.append(Block(names.index(s.pre), post, q.alpha_q[k], row_base[s.matrix], slots.word_base[post]))
    groups = range(len(names))
    pre_first = tuple(next((b for b, blk in enumerate(blocks) if blk.pre == g), 0) for g in groups)
    pre_count = tuple(sum(blk.pre == g for blk in blocks) for g in groups)
    # Largest |synaptic input| a post group can see: every synapse of every block active.
    fan_in = [sum(b.alpha_q * slots.sizes[b.pre] for b in blocks if b.post == g) for g in groups]
    bias = slots.to_slots(q.bias_q)
    first = list(slots.offsets)
    return Image(
        slots=slots, Wv=q.Wv, Fb=q.Fb, beta_q=tuple(int(q.beta_q[i]) for i in first),
        theta_q=tuple(int(q.theta_q[i]) for i in first), subtract=tuple(bool(q.subtract[i]) for i in first),
        blocks=tuple(blocks), pre_first=pre_first, pre_count=pre_count, start_bits=start_bits,
        count_bits=bits(max(slots.words)), row_bits=row_bits, acc_width=bits(max(fan_in)) + 1,
        bias=tuple(tuple(int(b) for b in bias[:, lane]) for lane in range(lanes)),
        rowptr=tuple(rowptr), entries=tuple(entries),
    )
