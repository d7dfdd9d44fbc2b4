"""Reference step functions: float64 and fixed-point, the two oracles of every backend.

Both follow ``docs/contract.md`` and accept currents shaped
``(steps, N)`` or ``(steps, batch, N)``; state starts at ``v = 0, s = 0``.

Float64 order of operations (so an independent implementation can match it to
the last bit)::

    I = x[t] + b
    I += alpha * (T @ s[t-1])                   # per delayed block, in synapse order; the
                                                # integer count T @ s is exact, alpha rounds
    per group, in Core.update_order():
        I += alpha * (T @ s[t])                 # same-step (feed-forward) blocks into it
        v = beta * v * (1 - s[t-1]) + I         # zero reset
        v = (beta * v - theta * s[t-1]) + I     # subtract reset
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
from .arrays import Core, array_view

__all__ = ["Run", "FixedCore", "quantize_core", "FloatStepper", "FixedStepper", "simulate_float", "simulate_fixed"]


@dataclass(frozen=True)
class Run:
    """A simulated run: spikes ``(steps, [batch,] N)`` int8 and membranes after each step."""

    spikes: np.ndarray
    membranes: np.ndarray


@dataclass(frozen=True)
class FixedCore:
    """Integer parameters of a core in its :class:`~rcsnn.ir.arrays.FixedFormat`."""

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
    """Integer parameters of ``core`` (an IR graph or its array view) in its fixed-point format."""
    core = array_view(core)
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


class _Stepper:
    """One step of the contract: currents, then each group's update in :meth:`Core.update_order`.

    Delayed blocks (``delay=1``) add ``alpha * (T @ s[t-1])``; same-step blocks
    (``delay=0``) add ``alpha * (T @ s[t])`` of a group updated earlier in the step.
    The spike count ``T @ s`` is an integer sum, exact in float64 and int64, so
    only the multiplication by alpha rounds. Subclasses supply the arithmetic.
    """

    dtype: type

    def __init__(self, core: Core, batch_shape: tuple[int, ...], alphas, bias: np.ndarray):
        self.core = core = array_view(core)
        self.bias = bias
        offsets = core.offsets()
        matrices = {k: m.astype(self.dtype) for k, m in core.matrices.items()}
        self.blocks = [(offsets[b.pre], offsets[b.post], matrices[b.matrix].T, a, b.delay)
                       for b, a in zip(core.synapses, alphas)]
        self.order = [offsets[name] for name in core.update_order()]
        self.v = np.zeros(batch_shape + (core.n_neurons,), dtype=self.dtype)
        self.s = np.zeros_like(self.v)

    def step(self, x: np.ndarray, forced: np.ndarray | None = None) -> np.ndarray:
        """The spikes of the next step for external currents ``x``.

        ``forced`` (open loop): the spikes every synapse and reset sees for this step are ``forced``
        (e.g. another run's raster), not this stepper's own, so an error cannot cascade; the
        returned spikes are still this stepper's decisions.
        """
        current = x + self.bias
        for pre, post, t_transposed, alpha, delay in self.blocks:
            if delay:
                current[..., post] = current[..., post] + alpha * (self.s[..., pre] @ t_transposed)
        spikes = np.zeros_like(self.s)
        seen = spikes if forced is None else np.asarray(forced, dtype=self.dtype)
        for group in self.order:
            for pre, post, t_transposed, alpha, delay in self.blocks:
                if not delay and post == group:
                    current[..., post] = current[..., post] + alpha * (seen[..., pre] @ t_transposed)
            self.v[..., group], spikes[..., group] = self.update(group, self.v[..., group], self.s[..., group],
                                                                 current[..., group])
        self.s = spikes if forced is None else seen
        return spikes

    def update(self, group: slice, v, s, current):
        """New ``(v, s)`` of the neurons in ``group`` from their previous ``(v, s)`` and input."""
        raise NotImplementedError


class FloatStepper(_Stepper):
    """Float64 reference, one step at a time: ``spikes = stepper.step(x)``."""

    dtype = np.float64
    quantized = False

    def __init__(self, core: Core, batch_shape: tuple[int, ...] = ()):
        core = array_view(core)
        super().__init__(core, batch_shape, [b.alpha for b in core.synapses], core.bias)
        self.beta = core.per_neuron("beta")
        self.theta = core.per_neuron("theta")
        self.subtract = core.reset_subtract()

    def update(self, group, v, s, current):
        beta, theta = self.beta[group], self.theta[group]
        v = np.where(self.subtract[group], beta * v - theta * s, beta * v * (1.0 - s)) + current
        return v, (v >= theta).astype(np.float64)


class FixedStepper(_Stepper):
    """Fixed-point reference, one step at a time; ``x`` are int64 quantised currents."""

    dtype = np.int64
    quantized = True

    def __init__(self, core: Core, batch_shape: tuple[int, ...] = (), fixed: FixedCore | None = None):
        core = array_view(core)
        self.q = fixed or quantize_core(core)
        super().__init__(core, batch_shape, self.q.alpha_q, self.q.bias_q)

    def update(self, group, v, s, current):
        q = self.q
        beta_q, theta_q = q.beta_q[group], q.theta_q[group]
        leak = np.where(q.subtract[group], ((beta_q * v) >> q.Fb) - theta_q * s, (beta_q * v * (1 - s)) >> q.Fb)
        v = q.saturate(leak + current)
        return v, (v >= theta_q).astype(np.int64)


def _run(stepper, currents: np.ndarray, membrane_dtype, forced: np.ndarray | None = None) -> Run:
    spikes = np.zeros(currents.shape, dtype=np.int8)
    membranes = np.zeros(currents.shape, dtype=membrane_dtype)
    for t in range(currents.shape[0]):
        spikes[t] = stepper.step(currents[t], None if forced is None else forced[t])
        membranes[t] = stepper.v
    return Run(spikes, membranes)


def simulate_float(core: Core, currents: np.ndarray) -> Run:
    """Float64 reference run for external currents ``x`` (no bias: the core adds it)."""
    core = array_view(core)
    x = _check_currents(core, currents).astype(np.float64)
    return _run(FloatStepper(core, x.shape[1:-1]), x, np.float64)


def simulate_fixed(core: Core, currents: np.ndarray, fixed: FixedCore | None = None,
                   forced: np.ndarray | None = None) -> Run:
    """Fixed-point reference run; ``currents`` are float (quantised here) or already int64.

    ``forced`` ``(steps, [batch,] N)``: open loop, every synapse and reset sees these spikes
    (:meth:`_Stepper.step`), e.g. the float reference's raster.
    """
    core = array_view(core)
    x = _check_currents(core, currents)
    stepper = FixedStepper(core, x.shape[1:-1], fixed)
    xq = x.astype(np.int64) if np.issubdtype(x.dtype, np.integer) else stepper.q.quantize(x)
    return _run(stepper, xq, np.int64, forced)
