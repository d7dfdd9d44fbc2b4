"""Circuit values derived from a :class:`~rcsnn.ir.arrays.Core`: the analog design, in SI units.

One network step is one clock period ``Δt``. Membrane voltages are ``S`` volts per model unit
(``volts_per_unit``, default 1): every line is driven at ``S·V_S·level``, so every node voltage scales by S
and the resistors do not change; the supply rails ``[rail_low, rail_high]`` (V) bound them
(:mod:`rcsnn.analog.scale`).
Within step ``k`` (time ``u`` from the clock edge at ``(k-1)Δt``):

* ``[0, t_clk]``: the clock edge; the comparator latches ``s[k-1] = [v ≥ θ]``;
* ``[reset_start, reset_start + reset_width]``: reset window (zero reset: ``v → 0`` if ``s = 1``);
* ``[syn_start, syn_start + 2·edge + syn_width]``: synaptic window, a trapezoid ``w(u)`` (PULSE);
  the current of a line at ``V_S · level`` is let into the membrane as ``V_S · level · w(u) / R``
  (ideal form: the neuron's current copier is gated by w; op-amp form: the line itself is).

A line at ``V`` through ``R`` into the virtual-ground summing node adds to the membrane

    Δv = V / (R · C) · K,    K = ∫_0^Δt w(u) · exp(-(Δt - u)/τ) du,

so ``R_unit = V_S · K / C`` gives ``Δv = S`` for a line at ``S·V_S`` (one unit) and a synapse of weight ``α``
is ``R_unit / α``
(the window's shape and the leak during it fold exactly into the resistor). The leak is
``τ = R_L · C = -Δt / ln β``, and the comparator compares at the middle of the clock edge, so its
threshold is ``S · θ · exp(-t_clk / 2τ)``.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass

import numpy as np

from ..errors import RcsnnError
from ..ir.arrays import Core, NeuronGroup

__all__ = ["FORMS", "OPTIONAL_FIELDS", "METHODS",
           "SIDECAR", "DFF_DELAY", "DAC_RISE", "LEAK_SHARE", "GAIN_SHARE", "GroupValues", "Design", "tran_line",
           "tau_of", "uniform", "input_resistor", "INPUT_RESISTOR"]

FORMS = ("ideal", "opamp")


def input_resistor(i: int) -> str:
    """The deck's name of neuron ``i``'s input resistor (carrying x + b into its summing node)."""
    return f"Rx{i}"


#: Matches (``fullmatch``) the names :func:`input_resistor` gives: the parts ``--trim input`` calibrates.
INPUT_RESISTOR = re.compile(r"Rx\d+")

#: The JSON sidecar of a netlist directory (every design choice, derived value, deck and the error budget).
SIDECAR = "core.json"

#: Switching delays of the cell library's models (rcsnn_cells.lib): D flip-flop clock-to-Q and
#: the spike DAC's rise time, in seconds; the reset window must open after both.
DFF_DELAY = 1e-9
DAC_RISE = 1e-10

#: Shares of the budget target the leak-history and the gain terms may use when a deck's time step is
#: chosen (:meth:`Design.budget_step`); the rest is for the residual and comparator sampling.
LEAK_SHARE = 0.7
GAIN_SHARE = 0.2


#: The fields of :class:`Design` added after its first decks (physical scale, integration method, hysteresis, a real
#: amplifier); the netlist header records them only where they are not their defaults (1 V per unit, no rails,
#: trapezoidal, none),
#: so the default decks are the bytes they always were.
OPTIONAL_FIELDS = ("volts_per_unit", "rail_low", "rail_high", "method", "hysteresis", "opamp")
#: ngspice's integration methods the design uses, with the ratio of their local truncation error constants to the
#: trapezoidal rule's (1/12): Gear order 2 (BDF2, 2/9), L-stable, for decks with membrane clamps (a stiff
#: conductance the trapezoidal rule lets ring: measured 1.9e-4 V off at a clamp after a slow approach).
METHODS = {"trap": 1.0, "gear": 8 / 3}


def tau_of(step: float, beta: float) -> float:
    """Time constant τ = −Δt / ln β (s) of a leak factor β per clock period ``step`` (s); inf for β = 1 (IF: no leak)."""
    return math.inf if beta == 1.0 else -step / math.log(beta)


def uniform(value) -> float | None:
    """The one value of a per-group or per-neuron parameter (a float, or an array whose entries are all equal),
    else None."""
    a = np.asarray(value, dtype=np.float64).ravel()
    return float(a[0]) if a.size and (a == a[0]).all() else None


@dataclass(frozen=True)
class GroupValues:
    """Component values of one neuron group.

    Attributes:
        tau: membrane time constant τ = -Δt / ln β (s); inf for IF (β = 1).
        r_leak: leak resistor R_L = τ / C (Ω); inf: no leak resistor (IF).
        kernel: K = ∫ w(u) e^{-(Δt-u)/τ} du over one step (s).
        r_unit: resistance of a unit-weight synapse, V_S · K / C (Ω).
        v_compare: comparator threshold S · θ · e^{-t_clk/2τ} (V).
    """

    name: str
    tau: float
    r_leak: float
    kernel: float
    r_unit: float
    v_compare: float


@dataclass(frozen=True)
class Design:
    """Timing, component and simulator choices of the analog core (SI units).

    Attributes:
        step: clock period Δt (s); one network step.
        capacitance: membrane capacitor C (F).
        v_spike: spike-line amplitude V_S (V).
        edge: rise and fall time of the windows, input and reference-spike edges (s).
        clock_edge: rise time t_clk of the sampling clock (s).
        reset_start, reset_width: zero-reset window, from the clock edge (s).
        reset_rc: reset-window width in units of the switch's R_on·C (residual e^-reset_rc).
        syn_start, syn_width: synaptic window opening and flat top (s); it opens as the reset
            window closes, so their breakpoints share one cluster of small ngspice steps.
        level_at: where spike and input levels change within a step, from the clock edge (s); they
            must settle before the reset window opens (a reset gated by a falling level would
            partly discharge), which by default opens right after, in the same breakpoint cluster.
        form: "ideal" (a 0 V ammeter's current copied into C, gated by the window) or "opamp"
            (inverting integrator, finite gain).
        gain: open-loop gain of the op-amp form.
        max_step: cap on ngspice's maximum time step (s).
        steps_per_tau: a deck's maximum time step is at most τ_min / steps_per_tau for the fastest
            group τ_min in it, and at most the step its error budget allows (:meth:`budget_step`).
        safety: safety factor S of the a-priori error budget (:mod:`rcsnn.analog.budget`).
        budget_target: the budget's threshold figure ``a`` a deck's time step is chosen for, as a
            fraction of θ (the netlist writer picks h so that the derived leak-history term uses
            :data:`LEAK_SHARE` of it).
        volts_per_unit: S, membrane volts per model unit (lines at S·V_S per unit; ``--volts-per-unit``).
        rail_low, rail_high: supply rails (V), ±inf: none; every clamp level and membrane must lie within them.
        method: ngspice's integration method, a key of :data:`METHODS` (``gear``: Gear order 2, chosen by the
            netlist writer for a bounded core; its derived errors are :data:`METHODS`' factor times the trapezoid's).
        hysteresis: the comparators' hysteresis H (V; ``--hysteresis``): a latch that trips at V(th) + H/2 after a 0
            and at V(th) − H/2 after a 1 (``rcsnn_comparator_hys``). A departure from the contract, which decides at
            θ whatever the last decision: the circuit is verified only when H = 0; Monte Carlo measures what H costs.
        opamp: op-amp form only: a real amplifier instead of the behavioural gain ``gain`` (``--opamp``: a part name
            of :data:`rcsnn.analog.opamp.PARTS` with overrides, or ``FILE:SUBCKT``; :mod:`rcsnn.analog.opamp`); "": none.
    """

    step: float = 1e-6
    capacitance: float = 1e-12
    v_spike: float = 1.0
    edge: float = 1e-11
    clock_edge: float = 1e-12
    reset_start: float = 5.01e-9
    reset_width: float = 40e-9
    reset_rc: float = 40.0
    syn_start: float = 45.03e-9
    syn_width: float = 900e-9
    level_at: float = 5e-9
    form: str = "ideal"
    gain: float = 1e9
    max_step: float = 20e-9
    steps_per_tau: float = 200.0
    safety: float = 2.0
    budget_target: float = 4.5e-6
    volts_per_unit: float = 1.0
    rail_low: float = -math.inf
    rail_high: float = math.inf
    method: str = "trap"
    hysteresis: float = 0.0
    opamp: str = ""

    @classmethod
    def scaled(cls, step: float = 1e-6, **choices) -> Design:
        """The default timing scaled to a clock period ``step`` (s), with other fields overridden."""
        ratio = step / cls.step
        timing = {k: getattr(cls, k) * ratio for k in ("edge", "reset_start", "reset_width", "syn_start", "syn_width",
                                                       "level_at", "max_step")}
        return cls(step=step, **{**timing, **choices}).check()

    def deck_max_step(self, taus) -> float:
        """ngspice maximum time step (s) for a deck whose groups have time constants ``taus`` (s), before
        the error budget's limit (:meth:`budget_step`); Gear order 2 (clamped decks) at most an eighth of the reset
        window: the reset switch's residual, of v, was measured 2.8e-8 at h = 20 ns, 1.6e-8 at 10 ns and 2e-9 at
        5 ns (calibration, Δt = 1 µs; the budget's cap is 1e-8)."""
        gear = [self.reset_width / 8] if self.method == "gear" else []
        return min(self.max_step, min(taus) / self.steps_per_tau, *gear)

    def leak_error(self, tau: float, h: float) -> float:
        """Derived error ε_L of the per-step leak factor β when ngspice integrates the leak with the
        trapezoidal rule at steps of at most ``h`` (s): each step decays by (1 − h/2τ)/(1 + h/2τ) =
        e^{−(h/τ)(1 + (h/τ)²/12 + …)}, so over Δt the factor is β·(1 − (Δt/τ)(h/τ)²/12):
        ε_L = β (Δt/τ) (h/τ)² / 12 (shorter steps only lower it; 0 for τ = inf, no leak); Gear order 2: times
        its :data:`METHODS` factor 8/3."""
        if math.isinf(tau):
            return 0.0
        return METHODS[self.method] * math.exp(-self.step / tau) * (self.step / tau) * (h / tau) ** 2 / 12

    def gain_error(self, tau: float, h: float) -> float:
        """Derived relative error ε_I of the charge one step's input adds (same cause as
        :meth:`leak_error`: the injected charge decays at the trapezoidal rate while the window is
        open): at most (h/τ)² / 12 (0 for τ = inf), times the method's :data:`METHODS` factor."""
        return METHODS[self.method] * (h / tau) ** 2 / 12

    def budget_step(self, g: NeuronGroup, history: float, tau: float | None = None, theta: float | None = None) -> float:
        """Largest ngspice step h (s) for group ``g`` whose derived errors keep the budget's history term
        S·ε_L(h)·M (M = ``history``: the largest leaky sum Σ β^k |v[t−1−k]| of the reference, V) within
        :data:`LEAK_SHARE` of ``budget_target``·θ, h = τ·sqrt(12·share·target·θ / (S·β·(Δt/τ)·M)), and its
        gain term S·ε_I(h)·θ within :data:`GAIN_SHARE`, h = τ·sqrt(12·share·target / S). ``tau`` and
        ``theta`` (per-neuron groups): the group's smallest τ (s, the largest errors) and smallest θ;
        inf for a group without leak (IF: the trapezoidal rule integrates a capacitor exactly)."""
        tau = tau_of(self.step, g.beta) if tau is None else tau
        theta = g.theta if theta is None else theta
        if math.isinf(tau):
            return math.inf
        gain = tau * math.sqrt(12 * GAIN_SHARE * self.budget_target / (self.safety * METHODS[self.method]))
        if history <= 0:
            return gain
        room = LEAK_SHARE * self.budget_target * theta / (self.safety * history)
        return min(gain, tau * math.sqrt(room / self.leak_error(tau, tau)))

    @property
    def syn_end(self) -> float:
        """End of the synaptic window's falling edge (s)."""
        return self.syn_start + 2 * self.edge + self.syn_width

    @property
    def tail_start(self) -> float:
        """Opening of the *tail window* (s), as the synaptic window closes: a window as long as the reset
        window, used only by the neuron kinds that need a second phase (CubaLIF: the synaptic state's charge or
        its transfer into the membrane, :mod:`rcsnn.analog.neurons`)."""
        return self.syn_end

    @property
    def tail_edge(self) -> float:
        """Rise and fall time of the tail window (s): as small a fraction of it as the synaptic window's edges are of
        that window (ngspice's first step after a window corner errs in proportion to the edge)."""
        return self.edge * self.reset_width / self.syn_width

    @property
    def tail_end(self) -> float:
        """End of the tail window's falling edge (s)."""
        return self.tail_start + 2 * self.tail_edge + self.reset_width

    @property
    def g_reset(self) -> float:
        """Reset conductance (S): ``reset_rc`` time constants R_on·C fit in the reset window."""
        return self.reset_rc * self.capacitance / self.reset_width

    @property
    def line_volts(self) -> float:
        """Volts of a line at one unit, S·V_S (V)."""
        return self.volts_per_unit * self.v_spike

    @property
    def railed(self) -> bool:
        """Whether the design has supply rails (a finite rail)."""
        return math.isfinite(self.rail_low) or math.isfinite(self.rail_high)

    @property
    def polarity(self) -> int:
        """Sign of an excitatory line: the op-amp integrator inverts, so its lines are negative."""
        return 1 if self.form == "ideal" else -1

    def check(self) -> Design:
        """Raise :class:`RcsnnError` unless the windows are ordered inside one clock period."""
        if self.form not in FORMS:
            raise RcsnnError(f"analog design: form {self.form!r} is not one of {FORMS}")
        if self.method not in METHODS:
            raise RcsnnError(f"analog design: method {self.method!r} is not one of {tuple(METHODS)}")
        if not (self.safety >= 1 and self.budget_target > 0):
            raise RcsnnError(f"analog design: safety {self.safety} must be >= 1 and budget target {self.budget_target} > 0")
        if not (math.isfinite(self.volts_per_unit) and self.volts_per_unit > 0):
            raise RcsnnError(f"--volts-per-unit {self.volts_per_unit:g}: must be a finite number > 0")
        if self.railed and not self.rail_low <= 0 < self.rail_high:
            raise RcsnnError(f"--rails {self.rail_low:g},{self.rail_high:g}: need LO <= 0 V < HI (the membrane's "
                             "rest is 0 V)")
        if not (math.isfinite(self.hysteresis) and self.hysteresis >= 0):
            raise RcsnnError(f"--hysteresis {self.hysteresis:g}: must be a finite voltage >= 0")
        if self.opamp and self.form != "opamp":
            raise RcsnnError(f"--opamp {self.opamp}: a real amplifier is built in the op-amp form only (--form opamp)")
        if self.form == "opamp" and not self.gain > 0:
            raise RcsnnError(f"analog design: op-amp gain {self.gain} must be > 0")
        spike = ("clock edge + flip-flop + DAC", self.clock_edge + DFF_DELAY + DAC_RISE)
        reset_end = ("reset end", self.reset_start + 2 * self.edge + self.reset_width)
        window = ("synaptic window", self.syn_start)
        before = [(spike, ("level change", self.level_at)),
                  (("level edge", self.level_at + self.edge), ("reset window", self.reset_start)), (reset_end, window),
                  (("synaptic end", self.syn_end), ("clock period", self.step))]
        for (a, ta), (b, tb) in before:
            if not 0 < ta <= tb * (1 + 1e-12):
                raise RcsnnError(f"analog design: step {self.step:g} s: {a} at {ta:g} s must come before {b} at {tb:g} s")
        return self

    def check_tail(self) -> Design:
        """Raise :class:`RcsnnError` unless the tail window (:attr:`tail_start`) ends before the next clock edge."""
        if not self.tail_end < self.step:
            raise RcsnnError(f"analog design: step {self.step:g} s: the tail window (CubaLIF) ends at {self.tail_end:g} s, "
                             "after the clock period; shorten the synaptic window")
        return self

    def kernel(self, tau: float, window: str = "syn", decay=None) -> float:
        """K = ∫_0^Δt w(u) e^{-(Δt-u)/τ} du (s) for the trapezoidal window ``window`` (``syn``: the synaptic
        window; ``tail``: :attr:`tail_start`); ``decay(u)`` (optional) multiplies the integrand (a CubaLIF
        transfer: the synaptic state's own decay, :mod:`rcsnn.analog.neurons`). τ = inf: no leak."""
        nodes, weights = np.polynomial.legendre.leggauss(12)
        a = self.syn_start if window == "syn" else self.tail_start
        e, flat = (self.edge, self.syn_width) if window == "syn" else (self.tail_edge, self.reset_width)
        segments = [(a, a + e, lambda u: (u - a) / e), (a + e, a + e + flat, lambda u: np.ones_like(u)),
                    (a + e + flat, a + 2 * e + flat, lambda u: (a + 2 * e + flat - u) / e)]
        total = 0.0
        for lo, hi, shape in segments:
            u = 0.5 * (hi - lo) * nodes + 0.5 * (hi + lo)
            extra = 1.0 if decay is None else decay(u)
            total += 0.5 * (hi - lo) * float(np.sum(weights * shape(u) * np.exp(-(self.step - u) / tau) * extra))
        return total

    def values(self, name: str, beta: float, theta: float) -> GroupValues:
        """Component values of a LIF/IF neuron (or a group of equal ones) with leak ``beta`` and threshold ``theta``."""
        tau = tau_of(self.step, beta)
        kernel = self.kernel(tau)
        return GroupValues(name, tau, tau / self.capacitance, kernel, self.v_spike * kernel / self.capacitance,
                           self.volts_per_unit * theta * math.exp(-self.clock_edge / (2 * tau)))

    def group(self, g: NeuronGroup) -> GroupValues:
        """Values of group ``g`` if every neuron of it has the same β and θ (else see :mod:`rcsnn.analog.neurons`)."""
        beta, theta = uniform(g.beta), uniform(g.theta)
        if beta is None or theta is None:
            raise RcsnnError(f"analog design: group {g.name!r} has per-neuron beta or theta; use its neurons' values")
        return self.values(g.name, beta, theta)

    def sampling_uncertainty(self, core: Core) -> np.ndarray:
        """Bound (V) per neuron on the comparator's sampling-instant error near threshold: it samples somewhere in
        the clock edge, where a membrane at θ decays by at most θ·(1 - e^{-t_clk/2τ}) from the middle."""
        tau = np.array([tau_of(self.step, b) for b in core.per_neuron("beta")])
        return -core.per_neuron("theta") * np.expm1(-self.clock_edge / (2 * tau))

    def record(self, core: Core) -> dict:
        """Every choice and derived value, for the netlist header and the JSON sidecar."""
        design = {k: v for k, v in asdict(self).items() if k not in OPTIONAL_FIELDS or v != getattr(Design, k)}
        return {"design": design, "g_reset": self.g_reset, "polarity": self.polarity,
                "dff_delay": DFF_DELAY, "dac_rise": DAC_RISE,
                "groups": [self._group_record(g) for g in core.groups],
                "synapses": [self._synapse_record(core, s) for s in core.synapses]}

    def _group_record(self, g: NeuronGroup) -> dict:
        """A uniform LIF group's :class:`GroupValues`; per-neuron or CubaLIF groups: their ranges (each neuron's
        values are in its deck lines)."""
        beta, theta = uniform(g.beta), uniform(g.theta)
        if beta is not None and theta is not None and not g.synaptic:  # IF: τ and R_L inf, written null (no leak)
            return {k: None if isinstance(v, float) and math.isinf(v) else v
                    for k, v in asdict(self.values(g.name, beta, theta)).items()}
        taus = [tau_of(self.step, b) for b in np.ravel(g.beta)]
        taus = [None if math.isinf(t) else t for t in (min(taus), max(taus))]
        return {"name": g.name, "kind": g.kind, "per_neuron": True, "tau": taus,
                "theta": [float(np.min(g.theta)), float(np.max(g.theta))],
                "beta_syn": [float(np.min(g.beta_syn)), float(np.max(g.beta_syn))], "current_delay": int(g.current_delay)}

    def _synapse_record(self, core: Core, s) -> dict:
        post = core.group(s.post)
        if not core.is_dense(s.matrix) and uniform(post.beta) is not None and uniform(post.theta) is not None \
                and not post.synaptic:
            return {"pre": s.pre, "post": s.post, "alpha": s.alpha, "resistance": self.group(post).r_unit / s.alpha}
        return {"pre": s.pre, "post": s.post, "alpha": s.alpha, "matrix": s.matrix, "dense": core.is_dense(s.matrix),
                "resistance": "per synapse, in the decks"}


def tran_line(design: Design, steps: int, max_step: float) -> str:
    """``.tran``: output every Δt/2 up to (steps + ½)Δt, so row 2k is v at the k-th clock edge
    and row 2k+1 the spike level s[k] held mid-step (``max_step``: ngspice's maximum step, s)."""
    return f".tran {design.step / 2:.12g} {(steps + 0.5) * design.step:.12g} 0 {max_step:.12g}"
