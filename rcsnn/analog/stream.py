"""The closed-loop circuit in libngspice, one step at a time, with the host in the loop.

``rcsnn generate --backend spice --spice-decks one`` runs the recurrent core as a circuit (by default the
same circuit runs as block decks in lock-step, :mod:`rcsnn.analog.lockstep`): at every character the host
reads the circuit's spikes, computes the readout, chooses the next character and drives the
circuit's input levels for the next step. The circuit is simulated once, from t = 0 to the last
step, never restarted (no quadratic re-simulation):

* The deck is :func:`~rcsnn.analog.netlist.write_netlists`' closed-loop deck with ``inputs="host"``:
  each neuron's input level is a DC source ``Vx<i>`` (instead of a filesource column) and the
  ``.tran`` writes an output row every Δt/M (``.options interp``,
  :func:`~rcsnn.analog.netlist.samples_per_step`), so row kM is the clock edge k·Δt (membranes v[k−1])
  and row kM + 1 falls after the comparators have latched s[k−1], before the synaptic window opens.
* Step t (0-based): the host sets each changed input level to x[t] + b (``alter vx<i> dc = ...``),
  arms ``stop when time > (t+1)Δt + Δt/2M`` and ``run``s (first step) or ``resume``s the transient
  in the foreground; ngspice returns once it has written row (t+1)M + 1. The host reads the
  comparator outputs ``v(c<i>)`` there and the membranes ``v(mem<i>)`` at row (t+1)M, and deletes
  the stop. ngspice stops at most one time step past that row, before the synaptic window opens:
  no line current reaches a membrane then (the window gates it to exactly 0), so the new levels
  act from the next window exactly as a replayed level would.

The library runs in this process (PySpice's ``NgSpiceShared``, the one instance the in-process
runner also uses) and cannot be interrupted, so each call does bounded work: one step.

Measured with ngspice 39 (the small core, 19 steps): a source written ``V... dc 0 external`` crashes
libngspice when the circuit is parsed; ``V... external`` works (PySpice's ``get_vsrc_data``
callback) but ngspice calls it for every source at every Newton iteration (~600 times per source
per step), which doubled the run time; ``alter`` costs one command per changed level per step and
runs within 25 % of the replayed deck (1.85 s against 1.5 s), with the same membranes to 1e-15 V.
``stop when time >= T`` under ``.options interp`` fires at t = 0 (ngspice compares the time with
the last stop time, 0 before any), hence ``>``; a fired ``stop when`` stays armed until deleted.
"""

from __future__ import annotations

import contextlib
import re
import tempfile
import time
from pathlib import Path

import numpy as np

from ..errors import RcsnnError
from ..ir.graph import Graph
from .budget import allowance
from .design import Design
from .netlist import write_netlists
from .ngspice import _ngspice_shared, failure, prepare, without_control
from .simulate import LEVEL_TOLERANCE

__all__ = ["PROVISIONAL_ERROR", "STIMULUS", "CircuitStepper", "SpiceStepper"]

#: Membrane error of the circuit per unit of θ assumed when a deck carries no a-priori budget
#: (``write_netlists(..., budget=False)``): 4× the largest near-threshold error measured on the example
#: core before the budget existed (2.65e-5 V at θ = 1 V). Conservative: events within it are undecidable.
PROVISIONAL_ERROR = 1e-4

#: Sidecar ``stimulus`` of a host-driven deck.
STIMULUS = "input levels driven by the host (rcsnn generate --backend spice)"

#: ngspice keeps every command it executed; PySpice frees them this often, and so do we.
_RELEASE_EVERY = 10_000


class CircuitStepper:
    """What the circuit's steppers share: the host-driven deck(s) written for the planned run, the a-priori
    error budget (:meth:`allowance`, :attr:`budget_note`), the checked spike levels and the record.

    ``mode``: ``closed`` (one deck, :class:`SpiceStepper`) or ``lockstep`` (one deck per block of the
    partitioned ``graph``, :class:`~rcsnn.analog.lockstep.LockstepStepper`); the other parameters as
    :class:`SpiceStepper`'s.
    """

    quantized = False

    def __init__(self, graph: Graph, design: Design, planned: np.ndarray, directory: str | Path | None, budget: bool,
                 mode: str):
        self.core = core = graph.arrays()
        self.design, self.steps = design, int(planned.shape[0])
        self._tmp = tempfile.TemporaryDirectory(prefix="rcsnn-stream-") if directory is None else None
        self.directory = Path(self._tmp.name if self._tmp else directory)
        self.sidecar = write_netlists(graph, planned, self.directory, design, mode, stimulus=STIMULUS,
                                      inputs="host", budget=budget)
        #: Unit of the membranes read back and of the budget: volts at 1 V per unit, else units (volts / S).
        self.unit = "V" if design.volts_per_unit == 1.0 else "units"
        if "budget" in self.sidecar:
            groups = ", ".join(f"{b['group']} a {b['a']:.2g} {self.unit}, b {b['b']:.2g}"
                               for b in self.sidecar["budget"]["groups"])
            self.budget_note = f"a-priori budget a + b·max(|v_ref| − θ, 0) of the deck's core.json: {groups}"
        else:
            sampling = design.sampling_uncertainty(core).max()
            self.budget_note = (f"no a-priori budget: {PROVISIONAL_ERROR:g}·θ + comparator sampling {sampling:.2g} "
                                f"{self.unit}")
        self.v = np.zeros(core.n_neurons)
        self.membranes: list[np.ndarray] = []
        self.seconds: list[float] = []
        self.t = 0
        self._level = np.asarray(planned[0], dtype=np.float64) + core.bias  # the decks' DC values

    def allowance(self, v_ref: np.ndarray) -> np.ndarray:
        """Error budget (V) of decisions whose reference membranes are ``v_ref`` ``(N,)``: a margin
        |v_ref − θ| within it is undecidable."""
        if "budget" in self.sidecar:
            return allowance(self.core, self.sidecar["budget"], np.asarray(v_ref, dtype=np.float64)[None])[0]
        return self.core.per_neuron("theta") * PROVISIONAL_ERROR + self.design.sampling_uncertainty(self.core)

    def levels(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The input levels x + b ``(N,)`` of the next step and the neurons whose level changed (none left: an error)."""
        if self.t >= self.steps:
            raise RcsnnError(f"spice stepper: the deck was written for {self.steps} steps")
        level = np.asarray(x, dtype=np.float64) + self.core.bias
        changed = np.flatnonzero(level != self._level)
        self._level = level
        return level, changed

    def spikes(self, levels: np.ndarray, v: np.ndarray, start: float) -> np.ndarray:
        """Record a step whose comparator outputs are ``levels`` (V) and membranes ``v`` (V), begun at
        ``start`` (``time.perf_counter()``); its spikes ``(N,)`` int8, each level checked to be 0 or 1 V."""
        spikes = np.rint(levels)
        bad = (np.abs(levels - spikes) > LEVEL_TOLERANCE) | ~np.isin(spikes, (0, 1))
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise RcsnnError(f"spice stepper, step {self.t}: comparator of neuron {i} is at {levels[i]:.6g} V, not 0 or 1")
        self.v = v
        self.membranes.append(v)
        self.seconds.append(time.perf_counter() - start)
        self.t += 1
        return spikes.astype(np.int8)

    def cleanup(self) -> None:
        """Remove the temporary directory (if any)."""
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def close(self) -> None:
        """End the simulation (each stepper's own) and remove the temporary directory."""
        self.cleanup()

    def __enter__(self) -> CircuitStepper:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class SpiceStepper(CircuitStepper):
    """:class:`~rcsnn.model.generate.Stepper` of the closed-loop circuit in libngspice (see the module docstring).

    ``step(x)`` takes the currents ``x`` ``(N,)`` (membrane units, without bias) of the next step and
    returns the comparators' spikes ``(N,)`` int8; :attr:`v` holds the membranes at that step's clock
    edge (membrane units: volts / S), :attr:`membranes` every step's, :attr:`seconds` every step's wall
    time; :meth:`allowance` is the a-priori error budget a decision is judged against. Use as a context
    manager, or call :meth:`close`.

    Parameters
    ----------
    graph : Graph
        The core.
    design : Design
        The circuit's design (form, clock, time step).
    planned : ndarray
        ``(steps, N)`` currents (membrane units, without bias) of the run the host expects — the float64
        reference's generation with the same prompt and seed. They set the deck's length (at most
        ``steps`` calls of :meth:`step`) and, before the circuit runs, the a-priori error budget
        (:mod:`rcsnn.analog.budget`: its history term comes from the reference's membranes); the
        currents actually applied are those given to :meth:`step`.
    directory : str or Path, optional
        Where to write the deck, its sidecar and the cell library (default: a temporary directory).
    budget : bool
        Derive the a-priori budget (a short ngspice calibration run) and choose the deck's time step
        for it; without, decisions are judged against :data:`PROVISIONAL_ERROR`.
    """

    def __init__(self, graph: Graph, design: Design, planned: np.ndarray, directory: str | Path | None = None,
                 budget: bool = True):
        super().__init__(graph, design, planned, directory, budget, "closed")
        deck = self.sidecar["decks"][0]
        self.rows = int(deck["samples_per_step"])
        self.max_step = float(deck["max_step"])
        self._commands = 0
        self._plot: str | None = None
        self._ng = _ngspice_shared()
        text = (self.directory / deck["netlist"]).read_text()
        self._load(without_control(prepare(text, self.directory, self.directory / "core.raw", None)))

    # -- ngspice ---------------------------------------------------------------------------------------

    def _load(self, circuit: str) -> None:
        from PySpice.Spice.NgSpice.Shared import NgSpiceCircuitError

        ng = self._ng
        with contextlib.suppress(NgSpiceCircuitError):  # the log names the problem
            ng.load_circuit(circuit)
        error = failure("spice stepper: loading the deck", ng.stdout + "\n" + ng.stderr)
        if error is not None:
            self.close()
            raise error

    def _command(self, command: str, check: bool = True) -> str:
        """Run one ngspice command; returns its log. ``check``: raise the error the log reports, if any."""
        from PySpice.Spice.NgSpice.Shared import ffi

        ng = self._ng
        ng.clear_output()
        ng._ngspice_shared.ngSpice_Command(command.encode("ascii"))
        self._commands += 1
        if self._commands % _RELEASE_EVERY == 0:
            ng._ngspice_shared.ngSpice_Command(ffi.NULL)
        log = ng.stdout + "\n" + ng.stderr
        error = failure(f"spice stepper, step {self.t} ({command.split()[0]})", log) if check else None
        if error is not None:
            raise error
        return log

    def _value(self, name: str, row: int) -> float:
        """Row ``row`` of the output vector ``name`` of the running transient."""
        from PySpice.Spice.NgSpice.Shared import ffi

        info = self._ng._ngspice_shared.ngGet_Vec_Info(f"{self._plot}.{name}".encode("ascii"))
        if info == ffi.NULL or info.v_length <= row:
            have = 0 if info == ffi.NULL else info.v_length
            raise RcsnnError(f"spice stepper, step {self.t}: ngspice output {name} has {have} rows, row {row} expected")
        return float(info.v_realdata[row])

    # -- the Stepper protocol ------------------------------------------------------------------------

    def step(self, x: np.ndarray) -> np.ndarray:
        """Spikes ``(N,)`` int8 of the next step for currents ``x`` ``(N,)`` (membrane units, without bias)."""
        if self._ng is None:
            raise RcsnnError("spice stepper: closed")
        from PySpice.Spice.NgSpice.Shared import ffi

        start = time.perf_counter()
        level, changed = self.levels(x)
        for i in changed:
            self._command(f"alter vx{i} dc = {float(level[i])!r}")
        edge = self.t + 1  # the clock edge that latches this step's spikes
        stop_at = (edge + 0.5 / self.rows) * self.design.step
        self._command(f"stop when time > {stop_at!r}")
        log = self._command("run" if self.t == 0 else "resume")
        met = re.search(r"(\d+): condition met", log)
        if met is None:
            tail = " | ".join(log.strip().splitlines()[-3:])
            raise RcsnnError(f"spice stepper, step {self.t}: ngspice did not stop at {stop_at:.9g} s ({tail})")
        self._command(f"delete {met.group(1)}")
        if self._plot is None:
            self._plot = ffi.string(self._ng._ngspice_shared.ngSpice_CurPlot()).decode()
        row = edge * self.rows
        for r, want in ((row, edge), (row + 1, edge + 1 / self.rows)):
            got = self._value("time", r)
            if abs(got - want * self.design.step) > 1e-6 * self.design.step:
                raise RcsnnError(f"spice stepper, step {self.t}: output row {r} is at {got:.9g} s, "
                                 f"expected {want * self.design.step:.9g} s")
        n = self.core.n_neurons
        levels = np.array([self._value(f"v(c{i})", row + 1) for i in range(n)])
        volts = np.array([self._value(f"v(mem{i})", row) for i in range(n)])
        return self.spikes(levels, volts / self.design.volts_per_unit, start)  # membrane units

    def close(self) -> None:
        """Remove the circuit and its results from ngspice and the temporary directory (if any)."""
        if self._ng is not None:
            self._command("remcirc", check=False)
            self._command("destroy all", check=False)
            self._ng = None
        self.cleanup()
