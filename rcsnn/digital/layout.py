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
* ``entries[lane][e] = row | weight << row_bits``: post local index ``i = row * lanes + lane``
  and, for a ternary block, the sign of ``T[i, j]`` (``weight`` = 1 if negative); for a dense
  block (a float matrix M, ``dense``), its quantised weight ``w_q = sat_Ww(round(alpha * M[i, j] * 2**Fv))``
  in two's complement (``weight_bits`` = Ww: the field is that wide only in a core with dense blocks).
  A dense matrix is stored per (matrix, alpha), a ternary one per matrix.

A spike of neuron j of group g becomes one event per synapse block b with ``pre == g``; the
event adds ``±alpha_q[b]`` (ternary) or ``w_q`` (dense) to accumulator word ``post_word_base[b] + row``
of each lane.

Neuron parameters (``beta_q``, ``theta_q``, ``beta_syn_q``, and in a bounded core the membrane bounds
``v_lo_q``, ``v_hi_q``) are constants per group in the logic when every neuron of each group has the same
value, else per-neuron memories of every lane (``parameters``, one word per slot). A core with a synaptic-current
state (CubaLIF groups, ``beta_syn_q``) has a ``current`` memory per lane beside the membranes.

Membrane bounds (contract.md, "Saturation"): the neuron unit clamps v to ``[v_lo_q, v_hi_q]``
(:class:`~rcsnn.ir.reference.FixedCore`); a core whose every clamp is the Wv range (unbounded, or bounds beyond
it) has ``v_lo_q = v_hi_q = ()`` and is the unbounded core bit for bit. The spike compare runs beside the clamp,
so ``v_lo_q < theta_q <= v_hi_q`` must hold for every neuron (``v_hi_q >= theta_q`` follows from
``v_max >= theta``; :func:`~rcsnn.ir.reference.quantize_core` refuses a ``v_lo_q`` that rounds up to ``theta_q``).

Spike counts (groups with ``max_spikes`` K != 1, contract.md): v is clamped to at most ``v_hi_q``, so a neuron
of group g emits at most ``K_eff[g] = min(K, max v_hi_q // min theta_q)`` spikes per step (K = 0: no limit, so
``max v_hi_q // min theta_q``; ``v_hi_q`` is the Wv maximum where unbounded); spikes are ``spike_bits`` Wc =
bits(max K_eff) wide words everywhere (membrane word ``{s, v}``, spike queue, events, output stream); Wc = 1
in a core whose groups are all binary, which is then the binary core bit for bit. An event of a neuron that
emitted s spikes adds ``s * (±alpha_q)`` or ``s * w_q``; the accumulators are widened by the largest K_eff.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import RcsnnError
from ..ir.arrays import Core
from ..ir.graph import Graph
from ..ir.passes import quantize, retime, skew_currents
from ..ir.reference import FixedCore, quantize_core

__all__ = ["bits", "Block", "Slots", "Image", "place", "build_image", "input_stream", "require_binary"]


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
    dense: bool = False  # entries carry the quantised weight w_q (else the sign of alpha_q)


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
    beta_q: tuple[int, ...]  # per group (its first neuron's; per neuron in ``parameters`` if they differ)
    theta_q: tuple[int, ...]
    reset: tuple[str, ...]  # per group, one of RESET_MODES
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
    weight_bits: int = 1  # the entries' weight field: a ternary sign (1) or Ww (a core with dense blocks)
    cuba: tuple[bool, ...] = ()  # per group: has the synaptic-current state; empty: no CubaLIF group
    beta_syn_q: tuple[int, ...] = ()  # per group (with cuba)
    current_delay: tuple[int, ...] = ()  # per group (with beta_syn_q): v uses the current of step t (0) or t-1 (1)
    parameters: tuple[tuple[str, tuple[tuple[int, ...], ...]], ...] = ()  # per-neuron memories (name, [lane][word])
    v_lo_q: tuple[int, ...] = ()  # per group membrane clamp (a bounded core); empty: the Wv range
    v_hi_q: tuple[int, ...] = ()
    max_spikes: tuple[int, ...] = ()  # per group K_eff (spike counts: a group with max_spikes != 1), else empty
    max_quotient: int = 1  # largest v_hi_q // theta_q of a counting group: the count divider's quotient range
    names: tuple[str, ...] = ()  # group names (messages)

    @property
    def spike_bits(self) -> int:
        """Wc: width of a neuron's spike count (1: binary spikes)."""
        return bits(max(self.max_spikes, default=1))

    @property
    def quotient_bits(self) -> int:
        """Bits of the count divider's quotient ``v // theta_q`` (restoring steps)."""
        return bits(self.max_quotient)

    @property
    def lanes(self) -> int:
        return self.slots.lanes

    @property
    def subtract(self) -> tuple[bool, ...]:
        return tuple(r == "subtract" for r in self.reset)

    @property
    def bounded(self) -> bool:
        """The neuron unit clamps v to ``[v_lo_q, v_hi_q]`` rather than to the Wv range."""
        return bool(self.v_lo_q)

    @property
    def per_neuron(self) -> tuple[str, ...]:
        """Names of the parameters held in per-neuron memories (``beta``, ``theta``, ``beta_syn``, ``v_lo``,
        ``v_hi``)."""
        return tuple(name for name, _ in self.parameters)

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

    @property
    def group_bits(self) -> int:
        """Width of a group index."""
        return bits(len(self.slots.sizes) - 1)


def _csr(shape: tuple[int, int], rows: np.ndarray, cols: np.ndarray, fields: np.ndarray,
         lanes: int) -> list[list[list[tuple[int, int]]]]:
    """``[lane][pre j] -> [(row, field)]`` for the weights at ``(rows[e], cols[e])`` (row-major order) of a
    ``shape`` (post, pre) block, post index ``i = row * lanes + lane`` with ``i % lanes == lane``."""
    out = [[[] for _ in range(shape[1])] for _ in range(lanes)]
    for i, j, f in zip(rows.tolist(), cols.tolist(), fields.tolist()):
        out[i % lanes][j].append((i // lanes, f))
    return out


def place(graph: Graph, lanes: int) -> Graph:
    """The digital placement pass (after :func:`~rcsnn.ir.passes.quantize`, run here if it was not, and, for a
    graph with same-step synapses, :func:`~rcsnn.ir.passes.retime`: the placed core is the all-delay-1 retimed
    core, to be run on :func:`~rcsnn.ir.passes.skew_currents`).

    Writes graph attribute ``place`` = {``lanes``, ``n_words``, ``word_bits``, ``acc_width``,
    ``start_bits``, ``row_bits``, ``synapse_words`` (per lane), ``rowptr_words``}; on every LIF node
    ``place`` = {``word_base``, ``words``} (its slots, see the module docstring); on every synapse
    edge ``place`` = {``row_base``, ``post_word_base``} (where its events read and add).
    """
    if graph.arrays().same_step_blocks():
        graph = retime(graph)
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


def input_stream(placed: Graph, xq: np.ndarray) -> np.ndarray:
    """The quantised currents ``(steps, N)`` as the placed core takes them: unchanged, or for a retimed core
    (:func:`place` of a graph with same-step synapses) the skewed stream of ``steps + max skew`` steps
    (:func:`~rcsnn.ir.passes.skew_currents`; read its rasters back with :func:`~rcsnn.ir.passes.unskew_raster`)."""
    return skew_currents(placed, xq) if "retime" in placed.passes else xq


def build_image(graph: Graph) -> Image:
    """The memory image of a placed graph (:func:`place`): the plan the Amaranth core is built from."""
    placement = graph.annotation("place")
    if placement is None:
        raise RcsnnError("digital core: the graph is not placed; run rcsnn.digital.layout.place(graph, lanes) first")
    return graph.plan("digital.image", lambda g: _layout(g.arrays(), int(placement["lanes"])))


def require_binary(image: Image, what: str) -> None:
    """Refuse (one line) a core with spike counts in ``what``, a part of the digital flow built for 0/1 spikes."""
    for name, k in zip(image.names, image.max_spikes):
        if k > 1:
            raise RcsnnError(f"{what}: group {name!r} emits spike counts (up to {k} per step, max_spikes != 1); "
                             f"{what} is built for binary spikes: read the NIR file with --max-spikes 1, or verify "
                             "the counting core with verify --backend amaranth|verilator|icarus")


def _count_limits(core: Core, slots: Slots, theta_q: np.ndarray, v_hi_q: np.ndarray) -> tuple[tuple[int, ...], int]:
    """Per group ``K_eff = min(K, max v_hi_q // min theta_q)`` (K = 0: no limit) and the largest
    ``max v_hi_q // min theta_q`` of a counting group; ``((), 1)`` if every group is binary."""
    if not core.multi_spike():
        return (), 1
    limits, top = [], 1
    for g, o in zip(core.groups, slots.offsets):
        bound = int(v_hi_q[o: o + g.size].max()) // int(theta_q[o: o + g.size].min())
        limits.append(1 if g.max_spikes == 1 else min(g.max_spikes or bound, bound))
        if g.max_spikes != 1:
            top = max(top, bound)
    return tuple(limits), top


def _bounds(q: FixedCore) -> dict[str, tuple[np.ndarray, int]]:
    """``{"v_lo": (v_lo_q, pad), "v_hi": (v_hi_q, pad)}`` of a bounded core (some clamp inside the Wv range), else
    ``{}``. (:func:`~rcsnn.ir.reference.quantize_core` refuses a ``v_lo_q`` not below ``theta_q``.)"""
    if (q.v_lo_q == q.v_min).all() and (q.v_hi_q == q.v_max).all():
        return {}
    return {"v_lo": (q.v_lo_q, q.v_min), "v_hi": (q.v_hi_q, q.v_max)}


def _per_group(slots: Slots, values: np.ndarray) -> tuple[int, ...] | None:
    """Each group's value of a per-neuron integer parameter, or None if some group's neurons differ."""
    groups = [values[o: o + n] for o, n in zip(slots.offsets, slots.sizes)]
    return tuple(int(v[0]) for v in groups) if all((v == v[0]).all() for v in groups) else None


def _memory(slots: Slots, values: np.ndarray, pad: int) -> tuple[tuple[int, ...], ...]:
    """``[lane][word]`` contents of a per-neuron parameter memory (``pad`` in padding slots)."""
    words = np.where(slots.neurons() >= 0, slots.to_slots(values), pad)
    return tuple(tuple(int(v) for v in words[:, lane]) for lane in range(slots.lanes))


def _stored(core: Core, block, field: int) -> tuple[object, tuple[int, int], np.ndarray, np.ndarray, np.ndarray]:
    """Storage key, shape, rows, columns and entry fields of a synapse block's nonzero weights: a ternary T is
    stored once per matrix (field: the sign), a dense matrix once per (matrix, alpha) (field: ``w_q`` mod
    ``2**field``)."""
    w = core.block_weights(block)
    shape = core.matrices[block.matrix].shape
    if core.is_dense(block.matrix):
        return (block.matrix, block.alpha), shape, w.rows, w.cols, w.quantized & ((1 << field) - 1)
    return block.matrix, shape, w.rows, w.cols, (w.quantized < 0).astype(np.int64)


def _layout(core: Core, lanes: int) -> Image:
    """Lay ``core`` out for ``lanes`` parallel lanes (see the module docstring)."""
    if not 1 <= lanes <= 32:
        raise RcsnnError(f"--lanes {lanes}: must be 1..32")
    if not core.synapses:
        raise RcsnnError("digital core: the core has no synapse blocks; the event-driven core needs at least one")
    q = quantize_core(core)
    late = core.per_neuron("skew") > 0
    if (q.bias_q[late] == q.v_min).any():
        raise RcsnnError(f"digital core: a bias of a retimed group is the most negative Wv={q.Wv}-bit value; the input "
                         "stream cannot cancel it (-b_q) before the group starts; use a wider Wv")
    names = [g.name for g in core.groups]
    slots = Slots(lanes, tuple(g.size for g in core.groups))
    counts, quotient = _count_limits(core, slots, q.theta_q, q.v_hi_q)
    most = max(counts, default=1)
    field = core.fixed.Ww if any(core.is_dense(s.matrix) for s in core.synapses) else 1
    stored = [_stored(core, s, field) for s in core.synapses]
    used = {}
    for key, shape, *_ in stored:
        used.setdefault(key, shape[1])
    row_base = dict(zip(used, np.cumsum([0, *list(used.values())[:-1]]).tolist()))
    csr = {key: _csr(shape, rows, cols, fields, lanes) for key, shape, rows, cols, fields in stored}
    rows = [[row for m in used for row in csr[m][lane]] for lane in range(lanes)]
    start_bits = bits(max(sum(len(r) for r in lane) for lane in rows))
    row_bits = bits(max(slots.words) - 1)
    rowptr, entries = [], []
    for lane in rows:
        starts = np.cumsum([0] + [len(r) for r in lane[:-1]]).tolist()
        rowptr.append(tuple(int(s) | len(r) << start_bits for s, r in zip(starts, lane)))
        entries.append(tuple(i | f << row_bits for r in lane for i, f in r) or (0,))
    order = sorted(range(len(core.synapses)), key=lambda k: names.index(core.synapses[k].pre))
    blocks, fan_in = [], [0] * len(names)
    for k in order:
        s, dense = core.synapses[k], core.is_dense(core.synapses[k].matrix)
        pre, post = names.index(s.pre), names.index(s.post)
        blocks.append(Block(pre, post, q.alpha_q[k], row_base[stored[k][0]], slots.word_base[post], dense))
        # largest |synaptic input| of the post group: every synapse of every block active, K_eff spikes each
        many = counts[pre] if counts else 1
        if dense:
            w = core.block_weights(s)
            fan_in[post] += many * int(np.bincount(w.rows, np.abs(w.quantized), minlength=1).max())
        else:
            fan_in[post] += many * q.alpha_q[k] * slots.sizes[pre]
    groups = range(len(names))
    pre_first = tuple(next((b for b, blk in enumerate(blocks) if blk.pre == g), 0) for g in groups)
    pre_count = tuple(sum(blk.pre == g for blk in blocks) for g in groups)
    bias = slots.to_slots(q.bias_q)
    first = list(slots.offsets)
    values = {"beta": (q.beta_q, 0), "theta": (q.theta_q, q.v_max)}
    cuba = tuple(bool(g.synaptic) for g in core.groups)
    if any(cuba):
        values["beta_syn"] = (q.beta_syn_q, 0)
    bounds = _bounds(q)
    values.update(bounds)
    memories = tuple((name, _memory(slots, v, pad)) for name, (v, pad) in values.items() if _per_group(slots, v) is None)
    return Image(
        slots=slots, Wv=q.Wv, Fb=q.Fb, beta_q=tuple(int(q.beta_q[i]) for i in first),
        theta_q=tuple(int(q.theta_q[i]) for i in first), reset=tuple(g.reset for g in core.groups),
        blocks=tuple(blocks), pre_first=pre_first, pre_count=pre_count, start_bits=start_bits,
        count_bits=bits(max(slots.words)), row_bits=row_bits, acc_width=bits(max(max(fan_in), most << (field - 1))) + 1,
        bias=tuple(tuple(int(b) for b in bias[:, lane]) for lane in range(lanes)),
        rowptr=tuple(rowptr), entries=tuple(entries), weight_bits=field,
        beta_syn_q=tuple(int(q.beta_syn_q[i]) for i in first) if any(cuba) else (),
        current_delay=tuple(int(g.current_delay) for g in core.groups) if any(cuba) else (),
        cuba=cuba if any(cuba) else (), parameters=memories, max_spikes=counts, max_quotient=quotient,
        v_lo_q=tuple(int(q.v_lo_q[i]) for i in first) if bounds else (),
        v_hi_q=tuple(int(q.v_hi_q[i]) for i in first) if bounds else (), names=tuple(names),
    )
