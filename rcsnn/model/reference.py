"""Reference step functions: float64 and fixed-point, the two oracles of every backend.

Both follow ``shared/design/contract.md`` and accept currents shaped
``(steps, N)`` or ``(steps, batch, N)``; state starts at ``v = 0, s = 0``.

Float64 order of operations (so an independent implementation can match it to
the last bit)::

    r = alpha * (T @ s[t-1])                    # integer sum, exact, times alpha
    I = (x[t] + b) + r                          # blocks add in synapse order
    v = beta * v * (1 - s[t-1]) + I             # zero reset
    v = (beta * v - theta * s[t-1]) + I         # subtract reset
    s = v >= theta

Fixed point (all integers; ``>>`` is an arithmetic shift, i.e. floor)::

    beta_q = round(beta * 2**Fb);  theta_q, alpha_q, b_q, x_q = sat(round(value * 2**Fv))
    zero:     v = sat((beta_q * v * (1 - s)) >> Fb + x_q + b_q + alpha_q * (T @ s))
    subtract: v = sat((beta_q * v) >> Fb - theta_q * s + x_q + b_q + alpha_q * (T @ s))
    s = v >= theta_q

``round`` is numpy's round-half-to-even; ``sat`` clamps to the signed Wv-bit range.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import RcsnnError
from ..graph.core import Core


@dataclass(frozen=True)
class Run:
    """A simulated run: spikes ``(steps, [batch,] N)`` int8 and membranes after each step."""

    spikes: np.ndarray
    membranes: np.ndarray


@dataclass(frozen=True)
class FixedCore:
    """Integer parameters of a core in its :class:`~rcsnn.graph.core.FixedFormat`."""

    beta_q: np.ndarray  # (N,) int64
    theta_q: np.ndarray  # (N,) int64
    bias_q: np.ndarray  # (N,) int64
    alpha_q: tuple[int, ...]  # per synapse block
    subtract: np.ndarray  # (N,) bool
    Wv: int
    Fv: int
    Fb: int

    @property
    def v_min(self) -> int:
        return -(1 << (self.Wv - 1))

    @property
    def v_max(self) -> int:
        return (1 << (self.Wv - 1)) - 1

    def saturate(self, values: np.ndarray) -> np.ndarray:
        return np.clip(values, self.v_min, self.v_max)

    def quantize(self, values: np.ndarray) -> np.ndarray:
        """``sat(round(values * 2**Fv))`` as int64."""
        scaled = np.round(np.asarray(values, dtype=np.float64) * float(1 << self.Fv))
        return self.saturate(np.clip(scaled, -(2.0**62), 2.0**62)).astype(np.int64)


def quantize_core(core: Core) -> FixedCore:
    """Integer parameters of ``core`` in its fixed-point format."""
    fmt = core.fixed
    fmt.check()
    beta_q = np.round(core.per_neuron("beta") * float(1 << fmt.Fb)).astype(np.int64)
    probe = FixedCore(beta_q, beta_q, beta_q, (), core.reset_subtract(), fmt.Wv, fmt.Fv, fmt.Fb)
    theta_q = probe.quantize(core.per_neuron("theta"))
    alpha_q = tuple(int(probe.quantize(np.array(s.alpha))) for s in core.synapses)
    for s, a in zip(core.synapses, alpha_q):
        if a == 0:
            raise RcsnnError(f"fixed-point format: alpha={s.alpha} of {s.pre}->{s.post} rounds to 0 with Fv={fmt.Fv}")
    if (theta_q <= 0).any():
        raise RcsnnError(f"fixed-point format: a threshold rounds to {theta_q.min()} with Fv={fmt.Fv}")
    return FixedCore(beta_q, theta_q, probe.quantize(core.bias), alpha_q, probe.subtract, fmt.Wv, fmt.Fv, fmt.Fb)


def _check_currents(core: Core, currents: np.ndarray) -> np.ndarray:
    currents = np.asarray(currents)
    if currents.ndim not in (2, 3) or currents.shape[-1] != core.n_neurons:
        raise RcsnnError(f"currents: shape {currents.shape}, expected (steps, [batch,] {core.n_neurons})")
    return currents


def _recurrent(core: Core, matrices: dict, spikes: np.ndarray, alphas) -> list[tuple[slice, np.ndarray]]:
    """Per synapse block: (post slice, alpha * T @ s_pre) with the integer sum done first.

    ``matrices`` are ``core.matrices`` cast to the dtype of ``spikes`` (float64 sums
    of at most 2**53 ones are exact, so the count is exact in both references).
    """
    offsets = core.offsets()
    out = []
    for block, alpha in zip(core.synapses, alphas):
        counts = spikes[..., offsets[block.pre]] @ matrices[block.matrix].T
        out.append((offsets[block.post], alpha * counts))
    return out


class FloatStepper:
    """Float64 reference, one step at a time: ``spikes = stepper.step(x)``."""

    def __init__(self, core: Core, batch_shape: tuple[int, ...] = ()):
        self.core = core
        self.beta = core.per_neuron("beta")
        self.theta = core.per_neuron("theta")
        self.subtract = core.reset_subtract()
        self.matrices = {k: m.astype(np.float64) for k, m in core.matrices.items()}
        self.alphas = [s.alpha for s in core.synapses]
        self.v = np.zeros(batch_shape + (core.n_neurons,))
        self.s = np.zeros_like(self.v)

    def step(self, x: np.ndarray) -> np.ndarray:
        current = x + self.core.bias
        for post, r in _recurrent(self.core, self.matrices, self.s, self.alphas):
            current[..., post] = current[..., post] + r
        leak = np.where(self.subtract, self.beta * self.v - self.theta * self.s, self.beta * self.v * (1.0 - self.s))
        self.v = leak + current
        self.s = (self.v >= self.theta).astype(np.float64)
        return self.s


class FixedStepper:
    """Fixed-point reference, one step at a time; ``x`` are int64 quantised currents."""

    def __init__(self, core: Core, batch_shape: tuple[int, ...] = (), fixed: FixedCore | None = None):
        self.core = core
        self.q = fixed or quantize_core(core)
        self.matrices = {k: m.astype(np.int64) for k, m in core.matrices.items()}
        self.v = np.zeros(batch_shape + (core.n_neurons,), dtype=np.int64)
        self.s = np.zeros_like(self.v)

    def step(self, xq: np.ndarray) -> np.ndarray:
        q = self.q
        current = xq + q.bias_q
        for post, r in _recurrent(self.core, self.matrices, self.s, q.alpha_q):
            current[..., post] += r
        leak = np.where(q.subtract, ((q.beta_q * self.v) >> q.Fb) - q.theta_q * self.s,
                        (q.beta_q * self.v * (1 - self.s)) >> q.Fb)
        self.v = q.saturate(leak + current)
        self.s = (self.v >= q.theta_q).astype(np.int64)
        return self.s


def _run(stepper, currents: np.ndarray, membrane_dtype) -> Run:
    spikes = np.zeros(currents.shape, dtype=np.int8)
    membranes = np.zeros(currents.shape, dtype=membrane_dtype)
    for t in range(currents.shape[0]):
        spikes[t] = stepper.step(currents[t])
        membranes[t] = stepper.v
    return Run(spikes, membranes)


def simulate_float(core: Core, currents: np.ndarray) -> Run:
    """Float64 reference run for external currents ``x`` (no bias: the core adds it)."""
    x = _check_currents(core, currents).astype(np.float64)
    return _run(FloatStepper(core, x.shape[1:-1]), x, np.float64)


def simulate_fixed(core: Core, currents: np.ndarray, fixed: FixedCore | None = None) -> Run:
    """Fixed-point reference run; ``currents`` are float (quantised here) or already int64."""
    x = _check_currents(core, currents)
    stepper = FixedStepper(core, x.shape[1:-1], fixed)
    xq = x.astype(np.int64) if np.issubdtype(x.dtype, np.integer) else stepper.q.quantize(x)
    return _run(stepper, xq, np.int64)
