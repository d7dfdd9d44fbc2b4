"""Reference step functions: float64 and fixed-point, the two oracles of every backend.

Both follow ``docs/contract.md`` and accept currents shaped ``(steps, N)`` or
``(steps, batch, N)``; state starts at ``v = 0, i = 0, s = 0``.

Float64 order of operations (so an independent implementation can match it to the last bit),
per step, ``s`` the previous step's spikes::

    I = x[t] + b
    per group, in Core.update_order():
        per synapse block into it, in synapse order (s_pre: last step's spikes for delay 1, this
        step's spikes of a group updated earlier for delay 0):
            I += alpha * (T @ s_pre)            # ternary: the count T @ s_pre is exact, alpha rounds once
            I += fsum_j(w_ij * s_pre_j)         # dense, w = alpha * M: the exact sum of the weights of
                                                # the spiking neurons, rounded once
        i_new = beta_syn * i + I;  J = i_new (current_delay 0) or i (1);  i = i_new   # CubaLIF groups
        J = I                                                                          # LIF, IF groups
        zero:                   v = beta * v * (1 - s) + J
        subtract:               v = (beta * v - theta * s) + J
        subtract_before_decay:  v = beta * (v - theta * s) + J
        zero_drop_input:        v = (beta * v + J) * (1 - s)
        v = min(max(v, v_min), v_max)                        # saturation bounds (none: -inf, +inf)
        s = v >= theta                                       # max_spikes 1 (binary spikes)
        s = (v >= theta) * clip(floor(v / theta), 1, K)      # max_spikes K > 1 (no upper clip if unbounded)

With spike counts (max_spikes != 1) ``s`` is a count: synapses add ``W s`` (dense: the exact sum of
``s_j * w_ij``, rounded once), the subtract resets remove ``theta * s``, and the zero resets use
``min(s, 1)`` in place of ``s``.

Fixed point (all integers; ``>>`` is an arithmetic shift, i.e. floor)::

    beta_q, beta_syn_q = round(value * 2**Fb);  theta_q, alpha_q, b_q, x_q = sat(round(value * 2**Fv))
    dense w_q = sat_Ww(round(alpha * M * 2**Fv))
    I = x_q + b_q + alpha_q * (T @ s) + w_q @ s            (exact int64 sums)
    CubaLIF:                i_new = sat(((beta_syn_q * i) >> Fb) + I);  J = i_new or i (current_delay)
    zero:                   v = sat(((beta_q * v * (1 - s)) >> Fb) + J)
    subtract:               v = sat(((beta_q * v) >> Fb) - theta_q * s + J)
    subtract_before_decay:  v = sat(((beta_q * (v - theta_q * s)) >> Fb) + J)
    zero_drop_input:        v = sat((((beta_q * v) >> Fb) + J) * (1 - s))
    (each membrane ``sat`` above is clip(., v_lo_q, v_hi_q): v_lo_q = max(-2**(Wv-1), round(v_min * 2**Fv)),
     v_hi_q = min(2**(Wv-1) - 1, round(v_max * 2**Fv)); an infinite bound gives the Wv limit, i.e. sat)
    s = v >= theta_q;   counts: s = (v >= theta_q) * clip(v // theta_q, 1, K)    (// floors)

``round`` is numpy's round-half-to-even; ``sat`` clamps to the signed Wv-bit range (Ww for w_q).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from ..errors import RcsnnError
from .arrays import Core, FixedFormat, array_view

__all__ = ["Run", "FixedCore", "quantize_core", "FloatStepper", "FixedStepper", "simulate_float", "simulate_fixed",
           "raster_dtype", "spike_dtype"]


@dataclass(frozen=True)
class Run:
    """A simulated run: spikes ``(steps, [batch,] N)`` int8 (int32 spike counts in a core with a
    ``max_spikes != 1`` group), membranes after each step and, for a core
    with CubaLIF groups, the synaptic currents ``i`` after each step (else None)."""

    spikes: np.ndarray
    membranes: np.ndarray
    synaptic: np.ndarray | None = None


@dataclass(frozen=True)
class FixedCore:
    """Integer parameters of a core in its :class:`~rcsnn.ir.arrays.FixedFormat`.

    Per neuron ``(N,)``: ``beta_q``, ``beta_syn_q``, ``theta_q``, ``bias_q`` (int64), ``reset``
    (str), ``subtract`` (bool, reset ``subtract``), the membrane saturation bounds ``v_lo_q``, ``v_hi_q``
    (int64, the Wv limits where unbounded); per synapse block: ``alpha_q`` and ``weight_q`` (the
    ``(post, pre)`` int64 ``w_q`` of a dense block, None for a ternary one).
    """

    beta_q: np.ndarray
    theta_q: np.ndarray
    bias_q: np.ndarray
    alpha_q: tuple[int, ...]
    subtract: np.ndarray
    Wv: int
    Fv: int
    Fb: int
    beta_syn_q: np.ndarray
    reset: np.ndarray
    weight_q: tuple[np.ndarray | None, ...]
    v_lo_q: np.ndarray
    v_hi_q: np.ndarray
    Ww: int = FixedFormat.Ww

    @property
    def v_min(self) -> int:
        return -(1 << (self.Wv - 1))

    @property
    def v_max(self) -> int:
        return (1 << (self.Wv - 1)) - 1

    def saturate(self, values: np.ndarray, group: slice | None = None) -> np.ndarray:
        """``sat_Wv(values)``; with ``group`` (the neurons' slice), the membrane clip to ``[v_lo_q, v_hi_q]``."""
        if group is None:
            return np.clip(values, self.v_min, self.v_max)
        return np.clip(values, self.v_lo_q[group], self.v_hi_q[group])

    def quantize(self, values: np.ndarray) -> np.ndarray:
        """``sat(round(values * 2**Fv))`` as int64."""
        return FixedFormat(self.Wv, self.Fv, self.Fb, self.Ww).quantize(values)


def quantize_core(core: Core) -> FixedCore:
    """Integer parameters of ``core`` (an IR graph or its array view) in its fixed-point format."""
    core = array_view(core)
    fmt = core.fixed
    fmt.check()
    beta_q, beta_syn_q = (np.round(core.per_neuron(k) * float(1 << fmt.Fb)).astype(np.int64) for k in ("beta", "beta_syn"))
    theta_q = fmt.quantize(core.per_neuron("theta"))
    alpha_q = tuple(int(fmt.quantize(s.alpha)) for s in core.synapses)
    for s, a in zip(core.synapses, alpha_q):
        if a == 0 and not core.is_dense(s.matrix):
            raise RcsnnError(f"fixed-point format: alpha={s.alpha} of {s.pre}->{s.post} rounds to 0 with Fv={fmt.Fv}")
    if (theta_q <= 0).any():
        raise RcsnnError(f"fixed-point format: a threshold rounds to {theta_q.min()} with Fv={fmt.Fv}")
    v_lo_q, v_hi_q = fmt.quantize(core.per_neuron("v_min")), fmt.quantize(core.per_neuron("v_max"))
    if (v_lo_q >= theta_q).any():
        i = int(np.argmax(v_lo_q >= theta_q))
        raise RcsnnError(f"fixed-point format: v_min of neuron {i} rounds to {v_lo_q[i]}, not below theta_q {theta_q[i]} "
                         f"with Fv={fmt.Fv}")
    weight_q = tuple(fmt.quantize(s.alpha * core.matrices[s.matrix], fmt.Ww) if core.is_dense(s.matrix) else None
                     for s in core.synapses)
    return FixedCore(beta_q, theta_q, fmt.quantize(core.bias), alpha_q, core.reset_subtract(), fmt.Wv, fmt.Fv, fmt.Fb,
                     beta_syn_q, core.per_neuron("reset"), weight_q, v_lo_q, v_hi_q, fmt.Ww)


def _check_currents(core: Core, currents: np.ndarray) -> np.ndarray:
    currents = np.asarray(currents)
    if currents.ndim not in (2, 3) or currents.shape[-1] != core.n_neurons:
        raise RcsnnError(f"currents: shape {currents.shape}, expected (steps, [batch,] {core.n_neurons})")
    return currents


class _Stepper:
    """One step of the contract: currents, then each group's update in :meth:`Core.update_order`.

    Each group's current adds the blocks into it in synapse order: delayed blocks (``delay=1``)
    from ``s[t-1]``, same-step blocks (``delay=0``) from ``s[t]`` of a group updated earlier in the
    step; the order does not depend on the delays, so :func:`rcsnn.ir.passes.retime` keeps every
    bit. Subclasses supply the arithmetic: :meth:`block_current`, :meth:`synaptic`, :meth:`membrane`.
    """

    dtype: type

    def __init__(self, core: Core, batch_shape: tuple[int, ...], weights, bias: np.ndarray):
        self.core = core = array_view(core)
        self.bias = bias
        offsets = core.offsets()
        self.blocks = [(offsets[b.pre], offsets[b.post], w, b.delay) for b, w in zip(core.synapses, weights)]
        self.order = [(offsets[name], core.group(name)) for name in core.update_order()]
        self.v = np.zeros(batch_shape + (core.n_neurons,), dtype=self.dtype)
        self.s = np.zeros_like(self.v)
        self.i = np.zeros_like(self.v)

    def step(self, x: np.ndarray, forced: np.ndarray | None = None) -> np.ndarray:
        """The spikes of the next step for external currents ``x``.

        ``forced`` (open loop): the spikes every synapse and reset sees for this step are ``forced``
        (e.g. another run's raster), not this stepper's own, so an error cannot cascade; the
        returned spikes are still this stepper's decisions.
        """
        current = x + self.bias
        spikes = np.zeros_like(self.s)
        seen = spikes if forced is None else np.asarray(forced, dtype=self.dtype)
        for sl, group in self.order:
            for pre, post, weight, delay in self.blocks:
                if post == sl:
                    source = self.s if delay else seen
                    current[..., post] = current[..., post] + self.block_current(weight, source[..., pre])
            j = current[..., sl]
            if group.synaptic:
                previous = self.i[..., sl].copy()
                self.i[..., sl] = self.synaptic(sl, previous, j)
                j = previous if group.current_delay else self.i[..., sl]
            self.v[..., sl] = self.membrane(group.reset, sl, self.v[..., sl], self.s[..., sl], j)
            spikes[..., sl] = self.fire(group, self.v[..., sl], self.theta[sl])
        self.s = spikes if forced is None else seen
        return spikes

    def fire(self, group, v: np.ndarray, theta: np.ndarray) -> np.ndarray:
        """Spikes of ``group``'s neurons at membrane ``v``: ``v >= theta``, or the count
        ``(v >= theta) * clip(floor(v / theta), 1, max_spikes)`` (no upper bound when max_spikes is 0)."""
        fired = v >= theta
        if group.max_spikes == 1:
            return fired
        count = np.maximum(self.count(v, theta), 1)
        if group.max_spikes:
            count = np.minimum(count, group.max_spikes)
        return np.where(fired, count, 0)

    def count(self, v: np.ndarray, theta: np.ndarray) -> np.ndarray:
        """``floor(v / theta)`` in the stepper's arithmetic."""
        raise NotImplementedError

    def block_current(self, weight, spikes: np.ndarray) -> np.ndarray:
        """The current of one synapse block for presynaptic ``spikes``."""
        raise NotImplementedError

    def synaptic(self, group: slice, i: np.ndarray, current: np.ndarray) -> np.ndarray:
        """New synaptic current ``i`` of the neurons in ``group``."""
        raise NotImplementedError

    def membrane(self, reset: str, group: slice, v: np.ndarray, s: np.ndarray, j: np.ndarray) -> np.ndarray:
        """New membrane of the neurons in ``group`` (reset mode ``reset``) from ``v``, ``s`` and the current ``j``."""
        raise NotImplementedError


class _DenseSum:
    """Row sums of a float64 weight matrix over the spiking presynaptic neurons, exact and rounded once.

    The result is ``math.fsum`` of each row's selected weights. Each weight is an integer multiple of
    ``2**base`` split into two int64 parts, ``w = (hi * 2**31 + lo) * 2**base``, so ``spikes @ hi.T``
    and ``spikes @ lo.T`` are exact integer sums and Python's int -> float conversion rounds the total
    once (half to even, as fsum). Weights spanning more binary orders than int64 holds use ``math.fsum``.
    """

    def __init__(self, weights: np.ndarray):
        self.weights = weights
        mantissa, exponent = np.frexp(weights)
        nonzero = weights != 0
        low = int(exponent[nonzero].min()) if nonzero.any() else 0
        shift = np.where(nonzero, exponent - low, 0).astype(np.int64)
        self.base = low - 53
        top = int(shift.max()) + 22 + weights.shape[1].bit_length()  # bits of the largest sum of hi parts
        self.exact = top <= 62 and self.base > -1000
        if self.exact:
            whole = np.abs(mantissa * 2.0**53).astype(np.int64)  # exact: |mantissa| < 1
            up = np.maximum(shift - 31, 0)
            down = np.maximum(31 - shift, 0)
            hi = (whole >> down) << up
            lo = (whole & ((np.int64(1) << down) - 1)) << np.minimum(shift, 31)
            sign = np.sign(weights).astype(np.int64)
            self.hi, self.lo = (sign * hi).T.copy(), (sign * lo).T.copy()

    def __call__(self, spikes: np.ndarray) -> np.ndarray:
        """``fsum_j(spikes_j * w_ij)`` per row: exact, rounded once (``spikes`` are 0/1 or spike counts)."""
        if spikes.size and spikes.max() > 1:
            return self._counts(spikes)
        if not self.exact:
            out = np.zeros(spikes.shape[:-1] + (self.weights.shape[0],))
            for index in np.ndindex(spikes.shape[:-1]):
                active = np.flatnonzero(spikes[index])
                if active.size:
                    out[index] = [math.fsum(row) for row in self.weights[:, active].tolist()]
            return out
        on = spikes.astype(np.int64)
        hi, lo = on @ self.hi, on @ self.lo
        total = [math.ldexp(float((h << 31) + k), self.base) for h, k in zip(hi.ravel().tolist(), lo.ravel().tolist())]
        return np.array(total, dtype=np.float64).reshape(hi.shape)

    def _counts(self, spikes: np.ndarray) -> np.ndarray:
        """Spike counts: the exact rational sum of ``count_j * w_ij``, rounded once (``Fraction`` -> float
        rounds half to even, as fsum)."""
        out = np.zeros(spikes.shape[:-1] + (self.weights.shape[0],))
        for index in np.ndindex(spikes.shape[:-1]):
            active = np.flatnonzero(spikes[index])
            counts = [int(c) for c in spikes[index][active]]
            for row, weights in enumerate(self.weights[:, active].tolist()):
                out[index + (row,)] = float(sum(Fraction(w) * c for w, c in zip(weights, counts)))
        return out


class FloatStepper(_Stepper):
    """Float64 reference, one step at a time: ``spikes = stepper.step(x)``."""

    dtype = np.float64
    quantized = False

    def __init__(self, core: Core, batch_shape: tuple[int, ...] = ()):
        core = array_view(core)
        weights = [(_DenseSum(s.alpha * core.matrices[s.matrix]), None) if core.is_dense(s.matrix)
                   else (s.alpha, core.matrices[s.matrix].T.astype(np.float64)) for s in core.synapses]
        super().__init__(core, batch_shape, weights, core.bias)
        self.beta, self.theta, self.beta_syn = (core.per_neuron(k) for k in ("beta", "theta", "beta_syn"))
        self.bounds = (core.per_neuron("v_min"), core.per_neuron("v_max")) if core.bounded() else None

    def block_current(self, weight, spikes):
        scale, t_transposed = weight
        return scale(spikes) if t_transposed is None else scale * (spikes @ t_transposed)

    def synaptic(self, group, i, current):
        return self.beta_syn[group] * i + current

    def count(self, v, theta):
        return np.floor(v / theta)

    def membrane(self, reset, group, v, s, j):
        v = self.update(reset, group, v, s, j)
        if self.bounds is None:
            return v
        return np.minimum(np.maximum(v, self.bounds[0][group]), self.bounds[1][group])

    def update(self, reset, group, v, s, j):
        """The reset mode's membrane update, before the saturation bounds."""
        beta, theta = self.beta[group], self.theta[group]
        if reset == "zero":
            return beta * v * (1.0 - np.minimum(s, 1.0)) + j
        if reset == "subtract":
            return beta * v - theta * s + j
        if reset == "subtract_before_decay":
            return beta * (v - theta * s) + j
        return (beta * v + j) * (1.0 - np.minimum(s, 1.0))


class FixedStepper(_Stepper):
    """Fixed-point reference, one step at a time; ``x`` are int64 quantised currents."""

    dtype = np.int64
    quantized = True

    def __init__(self, core: Core, batch_shape: tuple[int, ...] = (), fixed: FixedCore | None = None):
        core = array_view(core)
        self.q = q = fixed or quantize_core(core)
        weights = [(1, w.T) if w is not None else (a, core.matrices[s.matrix].T.astype(np.int64))
                   for s, a, w in zip(core.synapses, q.alpha_q, q.weight_q)]
        super().__init__(core, batch_shape, weights, q.bias_q)
        self.theta = q.theta_q

    def block_current(self, weight, spikes):
        scale, transposed = weight
        return scale * (spikes @ transposed)

    def synaptic(self, group, i, current):
        return self.q.saturate(((self.q.beta_syn_q[group] * i) >> self.q.Fb) + current)

    def count(self, v, theta):
        return v // theta

    def membrane(self, reset, group, v, s, j):
        q = self.q
        beta_q, theta_q = q.beta_q[group], q.theta_q[group]
        if reset == "zero":
            return q.saturate(((beta_q * v * (1 - np.minimum(s, 1))) >> q.Fb) + j, group)
        if reset == "subtract":
            return q.saturate(((beta_q * v) >> q.Fb) - theta_q * s + j, group)
        if reset == "subtract_before_decay":
            return q.saturate(((beta_q * (v - theta_q * s)) >> q.Fb) + j, group)
        return q.saturate((((beta_q * v) >> q.Fb) + j) * (1 - np.minimum(s, 1)), group)


def _run(stepper, currents: np.ndarray, membrane_dtype, forced: np.ndarray | None = None) -> Run:
    spikes = np.zeros(currents.shape, dtype=spike_dtype(stepper.core))
    membranes = np.zeros(currents.shape, dtype=membrane_dtype)
    synaptic = np.zeros(currents.shape, dtype=membrane_dtype) if any(g.synaptic for g in stepper.core.groups) else None
    for t in range(currents.shape[0]):
        spikes[t] = stepper.step(currents[t], None if forced is None else forced[t])
        membranes[t] = stepper.v
        if synaptic is not None:
            synaptic[t] = stepper.i
    return Run(spikes, membranes, synaptic)


def raster_dtype(counts: bool) -> type:
    """The dtype of every raster: int8 (0/1 spikes), int32 when it holds spike counts (``counts``)."""
    return np.int32 if counts else np.int8


def spike_dtype(core: Core) -> type:
    """The raster dtype of ``core`` (:func:`raster_dtype`): int32 when a group emits spike counts."""
    return raster_dtype(array_view(core).multi_spike())


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
