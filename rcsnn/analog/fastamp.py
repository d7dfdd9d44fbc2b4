"""Fast circuit model of ``--opamp`` decks: each neuron's feedback network around its amplifier macromodel.

A neuron is ``rcsnn_feedback`` (C, R_L and the reset switch g_on·V(rst)·V(rwin) from the output ``mem`` to the
summing node ``sum``) around ``rcsnn_opamp_macro`` (``rcsnn_opamps.lib``: in+ grounded, in− at ``sum``): a
transconductance A₀/R_o into a pole node R_o ∥ C_p = A₀/(ω_u·R_o), ω_u = 2π·GBW, and an output that follows the pole
node. With x = V(mem) − V(sum) (the capacitor's voltage), m = V(mem), G the conductances into ``sum`` and
q(t) = w(t)·J the line current (J = Σ gain_j·level_j / R_j, w the synaptic window), in the amplifier's linear range:

    C·dx/dt = −(G + 1/R_L + g(t))·x + G·m − q(t),     g(t) = g_on·r·w_r(t)
    dm/dt  = ω_u·(x − (1 + 1/A₀)·m + V_os)

Per neuron the state z = (x, m, 1, J, q) obeys ż = A·z with A constant on each piece of a clock period between the
windows' corners (q's ramps are the state equation q̇ = ±J/edge, so the windows' trapezoids are exact); one period
maps z by the product of the pieces' matrix exponentials, one product per reset level r ∈ {0, 1}. Only the reset
switch's own ramps (g(t) linear in t, ``RESET_SLICES`` midpoint slices each) are not exact: they act on a neuron whose
capacitor the closed switch then discharges by e^{−g_on·A_r/C} (``reset_rc`` = 40 in the default design) and whose
amplifier settles to the closed switch's equilibrium, so what they leave is below ngspice's own error.

The linear range is checked in every step, at every piece's ends and at the extremum inside each piece where q is
constant (there (x, m) is an equilibrium plus two real exponentials, γ₁e^{λ₁t} + γ₂e^{λ₂t}, whose one stationary point
t* = ln(−γ₂λ₂/(γ₁λ₁))/(λ₁ − λ₂) is found in closed form; the window's ramps, an edge long, are checked at their ends):
the input stage does not slew (|V_os − V(sum)| ≤ SR/ω_u, where the transconductance reaches its limit ±SR·C_p) and
the output stays within its swing [V− + headroom_low, V+ − headroom_high]. Beyond either the model refuses in one
line (run ngspice): it does not solve a slewing or clipping amplifier. Comparators sample V(mem) at their instant
after the clock edge.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.linalg
from threadpoolctl import threadpool_limits

from ..errors import RcsnnError

__all__ = ["RESET_SLICES", "Amplifiers", "Piece", "AmplifiedDeck", "assemble_amplified"]

#: Midpoint slices of each ramp of the reset switch's conductance (more change nothing measurable: see the docstring).
RESET_SLICES = 1
_X, _M, _ONE, _J, _Q = range(5)


@dataclass(frozen=True)
class Amplifiers:
    """Each neuron's ``rcsnn_opamp_macro`` instance as read from the deck (per neuron, SI units).

    Attributes:
        names: instance names. gain: A₀. gbw: unity-gain frequency (Hz). slew: SR (V/s). offset: V_os (V).
        low, high: the output's limits, V− + hlo and V+ − hhi (V).
    """

    names: tuple
    gain: np.ndarray
    gbw: np.ndarray
    slew: np.ndarray
    offset: np.ndarray
    low: np.ndarray
    high: np.ndarray


@dataclass(frozen=True)
class Piece:
    """A piece of the clock period with q constant, for its interior extremum: its duration τ (s), per reset level
    and neuron the eigenvalues ``rates`` (2, neurons, 2) of the (x, m) block, its eigenvectors ``vectors`` and their
    inverse (2, neurons, 2, 2), and ``steady`` (2, neurons, 2, 3): (x, m) at equilibrium per (1, J, q)."""

    index: int
    duration: float
    rates: np.ndarray
    vectors: np.ndarray
    inverse: np.ndarray
    steady: np.ndarray

    @classmethod
    def of(cls, index: int, duration: float, a: list[np.ndarray], name: str) -> Piece:
        """From the piece's matrices ``a[r]`` (neurons, 5, 5; ``a[1] is a[0]`` where the switch is open at both)."""
        if len(a) == 2 and a[1] is a[0]:
            one = cls.of(index, duration, a[:1], name)
            return cls(index, duration, *(np.concatenate([x, x]) for x in (one.rates, one.vectors, one.inverse, one.steady)))
        rates, vectors = zip(*(np.linalg.eig(m[:, :2, :2]) for m in a))
        if any(np.iscomplexobj(x) for x in rates):
            raise RcsnnError(f"{name}: an amplified neuron's modes are not real")
        steady = [-np.linalg.solve(m[:, :2, :2], m[:, :2, 2:]) for m in a]
        return cls(index, duration, np.stack(rates), np.stack(vectors), np.linalg.inv(np.stack(vectors)),
                   np.stack(steady))

    def extrema(self, r: np.ndarray, start: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """V(sum) and V(mem) at their stationary points inside the piece (at its start where there is none), per neuron
        from the states ``start`` (neurons, 5) at its start and reset levels ``r``."""
        every = np.arange(r.size)
        lam, vec = self.rates[r, every], self.vectors[r, every]
        eq = np.einsum("nij,nj->ni", self.steady[r, every], start[:, 2:])
        c = np.einsum("nij,nj->ni", self.inverse[r, every], start[:, :2] - eq)
        out = []
        for e in (np.array([-1.0, 1.0]), np.array([0.0, 1.0])):  # V(sum) = m − x, V(mem) = m
            gamma = c * np.einsum("i,nij->nj", e, vec)
            with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
                t = np.log(-gamma[:, 1] * lam[:, 1] / (gamma[:, 0] * lam[:, 0])) / (lam[:, 0] - lam[:, 1])
                t = np.where(np.isfinite(t) & (t > 0) & (t < self.duration), t, 0.0)
            out.append(eq @ e + (gamma * np.exp(lam * t[:, None])).sum(axis=1))
        return out[0], out[1]


@dataclass(frozen=True)
class AmplifiedDeck:
    """One ``--opamp`` deck solved per clock period (module docstring). Per neuron: ``period[r]`` (5 × 5) the map of
    a clock period at reset level r, ``sample`` the map from the clock edge to the comparators' instant, ``corners[r]``
    the maps from the edge to each piece's end (for the linear-range checks)."""

    name: str
    neurons: np.ndarray
    step: float
    threshold: np.ndarray
    hysteresis: np.ndarray
    rows: np.ndarray
    cols: np.ndarray
    weights: np.ndarray
    levels: np.ndarray
    feedback: np.ndarray
    reset_source: np.ndarray
    amplifiers: Amplifiers
    period: np.ndarray  # (2, neurons, 5, 5)
    sample: np.ndarray  # (neurons, 5, 5)
    corners: np.ndarray  # (2, pieces, neurons, 5, 5)
    start: np.ndarray  # (neurons, 5): the operating point ngspice starts from (no input, switch open)
    pieces: tuple  # the Pieces with q constant

    def initial(self) -> np.ndarray:
        """The state ngspice's .tran starts from: the operating point (an offset's equilibrium, the capacitor open)."""
        return self.start.copy()

    def advance(self, z: np.ndarray, j: np.ndarray, reset: np.ndarray, step: int):
        """One clock period from the states ``z`` (neurons, 5) with line currents ``j`` and reset levels ``reset`` (the
        linear range checked on the way): the new states, V(mem) at the next clock edge and at the comparators'
        instant."""
        z = z.copy()
        z[:, _J], z[:, _Q] = j, 0.0
        r = (reset > 0.5).astype(np.intp)
        self._check(r, z, step)
        z = np.einsum("nij,nj->ni", self.period[r, np.arange(r.size)], z)
        return z, z[:, _M], np.einsum("nj,nj->n", self.sample[:, _M], z)

    def _check(self, r: np.ndarray, z: np.ndarray, step: int) -> None:
        """Refuse a step that leaves the amplifiers' linear range (module docstring) from the states ``z`` at its clock
        edge at reset levels ``r``."""
        a = self.amplifiers
        ends = np.einsum("pnij,nj->pni", self.corners[r, :, np.arange(r.size)].transpose(1, 0, 2, 3), z)
        starts = np.concatenate([z[None], ends[:-1]])
        inside = [p.extrema(r, starts[p.index]) for p in self.pieces]
        summing = np.concatenate([ends[..., _M] - ends[..., _X], [s for s, _ in inside]])
        out = np.concatenate([ends[..., _M], [m for _, m in inside]])
        slewing = np.abs(a.offset - summing) > a.slew / (2 * np.pi * a.gbw)
        clipping = (out < a.low) | (out > a.high)
        for bad, what in ((slewing, "slews (|V_os - V(sum)| > SR/(2 pi GBW))"),
                          (clipping, "leaves its output swing")):
            if bad.any():
                i = int(np.argwhere(bad)[0][1])
                raise RcsnnError(f"{self.name}: amplifier {a.names[i]} {what} in step {step}; the fast model solves "
                                 "the amplifiers' linear range only: run ngspice (rcsnn verify --backend spice --opamp)")


def _matrices(c, rl, total, amp: Amplifiers, g, ramp) -> np.ndarray:
    """A (neurons, 5, 5) of one piece: reset conductance ``g`` (S, per neuron), q̇ = ``ramp``·J."""
    n = c.size
    w = 2 * np.pi * amp.gbw
    a = np.zeros((n, 5, 5))
    a[:, _X, _X] = -(total + 1 / rl + g) / c
    a[:, _X, _M] = total / c
    a[:, _X, _Q] = -1 / c
    a[:, _M, _X] = w
    a[:, _M, _M] = -w * (1 + 1 / amp.gain)
    a[:, _M, _ONE] = w * amp.offset
    a[:, _Q, _J] = ramp
    return a


@threadpool_limits.wrap(limits=1, user_api="blas")
def assemble_amplified(circuit, amp: Amplifiers) -> AmplifiedDeck:
    """The :class:`AmplifiedDeck` of a parsed :class:`~rcsnn.analog.fastmodel.Circuit` whose neurons are feedback
    cells around the amplifiers ``amp``.

    Its tens of thousands of 5 × 5 exponentials, eigen-decompositions and products run on one BLAS thread: OpenBLAS
    hands even these to its thread pool, and on a machine whose other cores are busy each call then waits for a
    thread to be scheduled (the example's ``--opamp`` run took 248 s instead of 3.3 s beside one busy core)."""
    ct = circuit
    total = np.bincount(ct.rows, weights=1 / ct.resistance, minlength=ct.neurons.size)
    rw, win = ct.rwin, ct.win
    r0, _ = rw.span(ct.step)
    w0, _ = win.span(ct.step)
    # pieces from the clock edge: (start, end, reset-switch share: a number or "rise"/"fall", q ramp)
    pieces = [(0.0, ct.sample, 0.0, 0.0), (ct.sample, r0, 0.0, 0.0)]
    t = r0
    for duration, share in ((rw.rise, "rise"), (rw.width, 1.0), (rw.fall, "fall")):
        if isinstance(share, str) and duration > 0:
            h = duration / RESET_SLICES
            mid = (np.arange(RESET_SLICES) + 0.5) / RESET_SLICES
            pieces += [(t + k * h, t + (k + 1) * h, m if share == "rise" else 1 - m, 0.0) for k, m in enumerate(mid)]
        elif duration > 0:
            pieces.append((t, t + duration, share, 0.0))
        t += duration
    pieces.append((t, w0, 0.0, 0.0))
    t = w0
    for duration, ramp in ((win.rise, 1.0), (win.width, 0.0), (win.fall, -1.0)):
        if duration > 0:
            pieces.append((t, t + duration, 0.0, ramp / duration))
        t += duration
    pieces.append((t, ct.step, 0.0, 0.0))
    pieces = [p for p in pieces if p[1] > p[0]]
    maps = np.empty((2, len(pieces), ct.neurons.size, 5, 5))
    flat = []
    for k, (start, end, share, ramp) in enumerate(pieces):
        open_ = _matrices(ct.c, ct.rl, total, amp, 0.0, ramp)
        a = [open_, open_ if share == 0 else _matrices(ct.c, ct.rl, total, amp, ct.gon * share, ramp)]
        opened = scipy.linalg.expm(open_ * (end - start))
        exps = [opened, opened if share == 0 else scipy.linalg.expm(a[1] * (end - start))]
        for r in (0, 1):
            maps[r, k] = exps[r] @ (maps[r, k - 1] if k else np.eye(5))
        if ramp == 0:
            flat.append(Piece.of(k, end - start, a, ct.name))
    if not np.isfinite(maps).all():
        raise RcsnnError(f"{ct.name}: the amplified neurons' period maps are not finite")
    resets = ct.levels[:, ct.reset_source[ct.feedback[ct.reset_source] < 0]]
    if not np.isin(resets, (0.0, 1.0)).all():
        raise RcsnnError(f"{ct.name}: a reset level other than 0 or 1 V; the amplified model switches resets on or off")
    # operating point: the equilibrium (x, m) per unit of the constant, switch open and no input (any piece's steady)
    start = np.zeros((ct.neurons.size, 5))
    start[:, :2] = flat[0].steady[0, :, :, 0]
    start[:, _ONE] = 1.0
    lines = ct.gains != 0
    return AmplifiedDeck(ct.name, ct.neurons, ct.step, ct.threshold, ct.hysteresis, ct.rows[lines], ct.cols[lines],
                         (ct.gains / ct.resistance)[lines], ct.levels, ct.feedback, ct.reset_source, amp,
                         maps[:, -1], maps[0, 0], maps, start, tuple(flat))
