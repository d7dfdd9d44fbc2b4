"""What ``rcsnn info`` prints: structure, sparsity, packed sizes, firing rates."""

from __future__ import annotations

import math

import numpy as np

from .arrays import Core
from .graph import Graph
from .reference import simulate_float

__all__ = ["packed_sizes", "sample_rates", "describe"]


def packed_sizes(matrix: np.ndarray) -> dict[str, int]:
    """Bytes of a ternary matrix stored as dense 2-bit codes and as CSR with 16-bit words.

    CSR: one 16-bit word per nonzero (post index and sign, up to 32768 columns) plus
    a 16-bit row pointer per row and one more; rows are presynaptic neurons (fan-out lists).
    """
    rows, cols = matrix.shape
    return {"dense_2bit": math.ceil(rows * cols * 2 / 8), "csr_16bit": 2 * int(np.count_nonzero(matrix)) + 2 * (cols + 1)}


def sample_rates(core: Core, currents: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Firing rate per group and peak |v| per group over a float64 reference run."""

    run = simulate_float(core, currents)
    slices = list(core.offsets().values())
    return (np.array([run.spikes[:, sl].mean() for sl in slices]),
            np.array([np.abs(run.membranes[:, sl]).max() for sl in slices]))


def _span(values, spec: str) -> str:
    """One value, or ``min..max`` of per-neuron values that differ."""
    a = np.asarray(values, dtype=np.float64)
    low, high = a.min(), a.max()
    return format(low, spec) if low == high else f"{format(low, spec).strip()}..{format(high, spec).strip()}"


def describe(graph: Graph, currents: np.ndarray, sample_name: str) -> str:
    """A human-readable report of the IR ``graph`` with rates measured on ``currents``."""
    core = graph.arrays()
    lines = [f"core: {len(core.groups)} groups, {core.n_neurons} neurons, {core.n_inputs} inputs, dt = {core.dt:g} s"]
    rates, peaks = sample_rates(core, currents)
    lines.append(f"{'group':>8} {'size':>5} {'tau/steps':>9} {'beta':>8} {'theta':>7} {'reset':>8} {'kind':>7} "
                 f"{'rate':>6} {'|v|max':>8}")
    for g, rate, peak in zip(core.groups, rates, peaks):
        extra = "".join(f" {key} {_span(getattr(g, key), '.4g')}" for key in ("beta_syn", "current_delay", "skew")
                        if np.any(np.asarray(getattr(g, key)) != 0))
        if g.max_spikes != 1:
            extra += f" max_spikes {g.max_spikes or 'unbounded'}"
        if np.isfinite(g.v_min).any() or np.isfinite(g.v_max).any():
            extra += f" v_min {_span(g.v_min, '.4g')} v_max {_span(g.v_max, '.4g')}"
        lines.append(f"{g.name:>8} {g.size:5d} {_span(g.tau_steps, '9.3f'):>9} {_span(g.beta, '8.5f'):>8} "
                     f"{_span(g.theta, '7.3g'):>7} {g.reset:>8} {g.kind:>7} {rate:6.3f} {peak:8.2f}{extra}")
    lines.append(f"firing rates measured on {sample_name} ({currents.shape[0]} steps)")
    users: dict[str, list[str]] = {}
    for s in core.synapses:
        users.setdefault(s.matrix, []).append(f"{s.pre}->{s.post} (alpha {s.alpha:.6g})")
    for key, m in core.matrices.items():
        if core.is_dense(key):
            nz = m[m != 0]
            span = _span(np.abs(nz), ".4g") if nz.size else "-"
            lines.append(f"matrix {key}: {m.shape[0]}x{m.shape[1]} dense float64, {nz.size} nonzeros, |w| {span}; "
                         f"used by {', '.join(users.get(key, ['nothing']))}")
            continue
        nnz = int(np.count_nonzero(m))
        per_row = np.count_nonzero(m, axis=1)
        sizes = packed_sizes(m)
        lines.append(
            f"matrix {key}: {m.shape[0]}x{m.shape[1]} ternary, {nnz} nonzeros "
            f"(+{int((m > 0).sum())} / -{int((m < 0).sum())}), "
            f"sparsity {1 - nnz / m.size:.4f}, "
            f"nonzeros per row min/mean/max {per_row.min()}/{per_row.mean():.1f}/{per_row.max()}, "
            f"packed {sizes['dense_2bit'] / 1024:.1f} KiB dense 2-bit, {sizes['csr_16bit'] / 1024:.1f} KiB CSR 16-bit; "
            f"used by {', '.join(users.get(key, ['nothing']))}"
        )
    diag = [int(np.count_nonzero(np.diag(m))) for m in core.matrices.values() if m.shape[0] == m.shape[1]]
    if diag:
        lines.append(f"self-synapses (diagonal nonzeros) per square matrix: {diag}")
    f = core.fixed
    dense = f" Ww={f.Ww}" if any(core.is_dense(k) for k in core.matrices) else ""
    lines.append(f"fixed point: Wv={f.Wv} Fv={f.Fv} Fb={f.Fb}{dense} "
                 f"(membrane range ±{2 ** (f.Wv - 1 - f.Fv):g}, resolution {2.0 ** -f.Fv:g})")
    return "\n".join(lines)
