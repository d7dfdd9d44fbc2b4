"""How each SNN framework discretises NIR's continuous neurons: the ``--flavor`` presets.

NIR defines only the continuous equations (``r`` and ``w_in`` are input gains)::

    LIF:      tau * dv/dt = (v_leak - v) + r * I
    IF:             dv/dt = r * I
    CubaLIF:  tau_syn * di/dt = -i + w_in * I,    tau_mem * dv/dt = (v_leak - v) + r * i

Each framework steps them its own way and its exporter does not say which. A :class:`Flavor`
names the choices that reproduce one framework's own forward pass (``docs/interop.md`` gives
each framework's source lines); :func:`neuron_params` turns a NIR neuron node into the
contract's per-neuron parameters (``docs/contract.md``)::

    beta     = 1 - dt/tau  (discretize "euler")  or  exp(-dt/tau)  ("exact");   IF: 1
    beta_syn = the same rule with tau_syn (CubaLIF; 0 otherwise)
    gain     = membrane gain * synaptic gain, multiplied into every current entering the node
               membrane gain "nir": r * (1 - beta) (LIF, CubaLIF), r * dt or r (IF, ``if_gain``);  "unit": 1
               synaptic gain "nir": w_in * (1 - beta_syn);  "jump": w_in;  "decayed": w_in * beta_syn
    leak     = (1 - beta) * v_leak, a constant current (LIF only; refused on CubaLIF)

The membrane gain ``r * (1 - beta)`` is forward Euler's ``r * dt/tau`` under ``euler`` and the
exact (zero-order hold) integral of NIR's equation under ``exact``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import nir
import numpy as np

from ..errors import RcsnnError
from ..ir.nodes import RESET_MODES, UNBOUNDED

__all__ = ["DISCRETIZATIONS", "FLAVORS", "DEFAULT_FLAVOR", "Flavor", "NeuronParams", "resolve_flavor",
           "neuron_params"]

DISCRETIZATIONS = ("euler", "exact")


@dataclass(frozen=True)
class Flavor:
    """One framework's discretisation of NIR neurons (see the module docstring for the gains).

    Attributes:
        name: the ``--flavor`` value.
        dt: seconds per step when ``--dt`` is not given (the framework's or its exporter's default).
        discretize: ``"euler"`` or ``"exact"``.
        reset: one of :data:`~rcsnn.ir.nodes.RESET_MODES`.
        mem_gain, syn_gain: see the module docstring.
        if_gain: an IF node's gain, ``"euler"`` ``r * dt`` (NIR's ``dv/dt = r I``) or ``"r"`` (Norse's IAF: ``v += I``).
        current_delay: 0 (the membrane integrates this step's synaptic current) or 1.
        tau_times_dt: the exporter writes ``tau = dt * tau_true`` (Norse 1.1); a tau ``<= dt`` is read so.
        dt_from_r: the exporter writes ``r = tau * exp(-dt/tau) / dt`` (Rockpool 3.1); without
            ``--dt``, dt is solved from it.
        max_spikes: spikes per neuron per step at most in the framework's **default** spike function
            (:attr:`~rcsnn.ir.nodes.LIF.max_spikes`): 1 (binary), 2**16 (Rockpool's ``max_spikes_per_dt``)
            or :data:`~rcsnn.ir.nodes.UNBOUNDED` (Sinabs' ``MultiSpike``); ``--max-spikes`` overrides it.
        fires: the framework's spike test (``v > theta`` or ``v >= theta``; the contract's is ``>=``).
        versions: the framework versions the preset was read from and tested against.
    """

    name: str
    dt: float
    discretize: str
    reset: str
    mem_gain: str = "nir"
    syn_gain: str = "nir"
    current_delay: int = 0
    if_gain: str = "euler"
    tau_times_dt: bool = False
    dt_from_r: bool = False
    max_spikes: int = 1
    fires: str = ">="
    versions: str = ""


FLAVORS = {f.name: f for f in (
    Flavor("snntorch", 1e-4, "euler", "subtract", fires=">", versions="snntorch 1.0.0"),
    Flavor("norse", 1e-3, "euler", "zero", syn_gain="jump", if_gain="r", tau_times_dt=True, fires=">",
           versions="norse 1.1.0"),
    Flavor("spikingjelly", 1e-4, "euler", "zero", versions="spikingjelly 2.0.0"),
    Flavor("sinabs", 1.0, "exact", "subtract_before_decay", max_spikes=UNBOUNDED, versions="sinabs 3.1.3"),
    Flavor("rockpool", 1e-3, "exact", "subtract_before_decay", mem_gain="unit", syn_gain="decayed", dt_from_r=True,
           max_spikes=2**16, versions="rockpool 3.1.0"),
    Flavor("lava-dl", 1.0, "euler", "zero", versions="lava-dl 0.6.0 (source only: it installs on Python < 3.11)"),
)}
#: What rcsnn read before flavours existed (snnTorch's exporter): unchanged without ``--flavor``.
DEFAULT_FLAVOR = Flavor("default", 1e-4, "euler", "subtract", fires=">")


@dataclass(frozen=True)
class NeuronParams:
    """A NIR neuron node in contract units, per neuron (``(n,)`` float64 each), and the step ``dt`` (s) used."""

    dt: float
    beta: np.ndarray
    theta: np.ndarray
    beta_syn: np.ndarray
    gain: np.ndarray
    leak: np.ndarray


def resolve_flavor(name: str | None = None, *, dt: float | None = None, reset: str | None = None,
                   discretize: str | None = None, max_spikes: int | None = None,
                   where: str = "NIR") -> tuple[Flavor, bool]:
    """The preset ``name`` (default: :data:`DEFAULT_FLAVOR`) with single parts overridden.

    Returns ``(flavor, dt_given)``; ``dt_given`` is False when dt is the preset's default.
    """
    if name is not None and name not in FLAVORS:
        raise RcsnnError(f"{where}: flavor {name!r} is not one of {tuple(FLAVORS)}")
    flavor = FLAVORS[name] if name else DEFAULT_FLAVOR
    if dt is not None and not (np.isfinite(dt) and dt > 0):
        raise RcsnnError(f"{where}: dt={dt} must be finite and > 0 (seconds per step)")
    if reset is not None and reset not in RESET_MODES:
        raise RcsnnError(f"{where}: reset {reset!r} is not one of {RESET_MODES}")
    if discretize is not None and discretize not in DISCRETIZATIONS:
        raise RcsnnError(f"{where}: discretize {discretize!r} is not one of {DISCRETIZATIONS}")
    if max_spikes is not None and (isinstance(max_spikes, bool) or int(max_spikes) != max_spikes or max_spikes < 0):
        raise RcsnnError(f"{where}: max_spikes={max_spikes} must be a whole number >= 1 (0: no limit)")
    flavor = replace(flavor, dt=flavor.dt if dt is None else float(dt), reset=reset or flavor.reset,
                     discretize=discretize or flavor.discretize,
                     max_spikes=flavor.max_spikes if max_spikes is None else int(max_spikes))
    return flavor, dt is not None


def neuron_params(flavor: Flavor, node, n: int, label: str, dt_given: bool = True) -> NeuronParams:
    """Contract parameters of a NIR ``LIF``, ``IF`` or ``CubaLIF`` node of ``n`` neurons under ``flavor``.

    ``label`` ("file: node 'key'") starts every error. Refused: tau <= dt (with what wrote it
    so and what to pass), ``v_threshold <= 0``, ``v_reset != 0``, ``v_leak != 0`` on a CubaLIF.
    """
    def field(name: str, default=None) -> np.ndarray:
        value = getattr(node, name, None)
        if value is None:
            value = default
        a = np.asarray(value, dtype=np.float64).reshape(-1)
        if a.size not in (1, n):
            raise RcsnnError(f"{label}: {name}: {a.size} values for {n} neurons")
        if not np.isfinite(a).all():
            raise RcsnnError(f"{label}: {name}: contains NaN or inf")
        return np.broadcast_to(a, (n,)).copy()

    theta, r = field("v_threshold"), field("r", 1.0)
    v_reset, v_leak = field("v_reset", 0.0), field("v_leak", 0.0)
    if (theta <= 0).any():
        raise RcsnnError(f"{label}: v_threshold={theta.min():.6g} must be > 0")
    if (v_reset != 0).any():
        raise RcsnnError(f"{label}: v_reset={v_reset[v_reset != 0][0]:.6g}; every reset mode needs v_reset = 0 "
                         "(zero: v -> 0; subtract: v -> v - theta)")
    zeros = np.zeros(n)
    if isinstance(node, nir.IF):
        gain = np.ones(n) if flavor.mem_gain == "unit" else r if flavor.if_gain == "r" else r * flavor.dt
        return NeuronParams(flavor.dt, np.ones(n), theta, zeros, gain, zeros)
    tau_name = "tau" if isinstance(node, nir.LIF) else "tau_mem"
    dt = _dt(flavor, field(tau_name), r, label, dt_given)
    beta = _decay(flavor, field(tau_name), tau_name, dt, label)
    gain = np.ones(n) if flavor.mem_gain == "unit" else r * (1.0 - beta)
    if isinstance(node, nir.LIF):
        return NeuronParams(dt, beta, theta, zeros, gain, (1.0 - beta) * v_leak)
    if (v_leak != 0).any():
        raise RcsnnError(f"{label}: v_leak={v_leak[v_leak != 0][0]:.6g}: a CubaLIF's leak current enters the "
                         "membrane, not the synaptic current; only v_leak = 0 maps")
    beta_syn = _decay(flavor, field("tau_syn"), "tau_syn", dt, label)
    w_in = field("w_in", 1.0)
    syn = {"nir": w_in * (1.0 - beta_syn), "jump": w_in, "decayed": w_in * beta_syn}[flavor.syn_gain]
    return NeuronParams(dt, beta, theta, beta_syn, gain * syn, zeros)


def _dt(flavor: Flavor, tau: np.ndarray, r: np.ndarray, label: str, dt_given: bool) -> float:
    """The step: ``flavor.dt``, or for Rockpool without ``--dt`` solved from ``r = tau e^{-dt/tau} / dt``.

    With ``x = dt/tau``, ``x e^x = 1/r``; Newton's method from ``min(1/r, 1)`` (``x e^x`` is convex,
    increasing). r is float32 in the file, so dt is snapped to 6 significant digits when that is within 1e-6.
    """
    if dt_given or not flavor.dt_from_r:
        return flavor.dt
    if (r <= 0).any() or (tau <= 0).any():
        raise RcsnnError(f"{label}: r and tau must be > 0 to recover dt (or pass --dt)")
    x = np.minimum(1.0 / r, 1.0)
    for _ in range(60):
        x = x - (x * np.exp(x) - 1.0 / r) / ((1.0 + x) * np.exp(x))
    dts = x * tau
    if np.ptp(dts) > 1e-6 * dts.max():
        raise RcsnnError(f"{label}: r gives different dt per neuron ({dts.min():.6g} .. {dts.max():.6g} s); pass --dt")
    dt = float(np.median(dts))
    rounded = float(f"{dt:.6g}")  # r is stored in float32: snap to the round dt it came from
    return rounded if abs(rounded - dt) <= 1e-6 * dt else dt


def _decay(flavor: Flavor, tau: np.ndarray, name: str, dt: float, label: str) -> np.ndarray:
    """``1 - dt/tau`` or ``exp(-dt/tau)`` per neuron; Norse 1.1's ``tau = dt * tau_true`` undone when tau <= dt."""
    if (tau <= 0).any():
        raise RcsnnError(f"{label}: {name}={tau.min():.6g} must be > 0")
    if flavor.tau_times_dt:
        tau = np.where(tau <= dt, tau / dt, tau)
    if flavor.discretize == "exact":
        return np.exp(-dt / tau)
    if (tau <= dt).any():
        raise RcsnnError(
            f"{label}: {name}={tau.min():.6g} <= dt={dt:.6g} gives beta = 1 - dt/tau <= 0. Norse 1.1's exporter "
            "(norse.torch.to_nir) writes tau = dt*tau_mem: pass --flavor norse --dt <its dt>; SpikingJelly 2.0 "
            "writes tau = dt*tau_steps: pass --flavor spikingjelly --dt <its dt>; Sinabs 3.1 writes tau in steps: "
            "pass --flavor sinabs; else pass the dt the graph was exported with"
        )
    return 1.0 - dt / tau
