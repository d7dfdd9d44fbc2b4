"""The closed-loop circuit as block decks in parallel ngspice processes, coupled by the host in lock-step.

:class:`~rcsnn.analog.stream.SpiceStepper` runs the whole core as one deck in one libngspice; on the
example core (1536 neurons, ~47k resistors) one step costs minutes of one core. Here the partitioned
core (:func:`~rcsnn.analog.partition.partition`) is written in ``lockstep`` mode
(:func:`~rcsnn.analog.netlist.write_netlists`): one deck per block, whose own comparators ``c<i>``
drive its neurons' resets and their spike lines, and in which each presynaptic neuron ``j`` of
another block is a DC source ``Vs<j>`` (node ``s<j>``). Every deck runs in its own ``ngspice -p``
process (:class:`rcsnn.tools.Session`: commands on stdin, a timeout on every exchange, the process
group killed on any error or Ctrl-C), all of them at once.

Step t (0-based), in every deck: the host sets the changed input levels ``Vx<i>`` to x[t] + b and
the changed ``Vs<j>`` to s[t−1][j] (0 before the first step), the spike neuron j latched at clock
edge t, read from the deck that owns j; arms ``stop when time > (t+1)Δt + Δt/2M``; ``run``\\ s or
``resume``\\ s; and prints the comparators ``v(c<i>)`` at row (t+1)M + 1 and the membranes
``v(mem<i>)`` at row (t+1)M (M: the deck's output rows per step), which the host checks are at the
expected times, and each level 0 or 1 V.

Why this is the monolithic circuit: a spike level ``c<j>`` reaches another neuron only as the
voltage of its line ``e<j>``/``n<j>``, a linear, unloaded function of the level, whose current
the receiving cell (ideal form) or the line driver itself (op-amp form) multiplies by the
synaptic window — exactly 0 outside [syn_start, syn_end] of each step. Within the window the
monolithic level is the latched flip-flop output, an ideal 0 or 1 V constant from DFF_DELAY + DAC_RISE
after the clock edge to the next edge; the host-set level is the same constant from the host's stop
(at most ``max_step`` after row (t+1)M + 1, before the window opens: :func:`~rcsnn.analog.netlist.samples_per_step`).
Everything else a level drives — resets, the subtract-reset line, a zero-drop gate — is a neuron's
own, and stays on its comparator in its deck. So during every window each block sees the same
line voltages as in the monolithic deck; the decks differ from it only in the time steps ngspice
takes (each block's own ``max_step``, which the a-priori budget covers, as in open loop).
"""

from __future__ import annotations

import re
import tempfile
import time
from pathlib import Path

import numpy as np

from ..errors import RcsnnError
from ..ir.graph import Graph
from ..tools import SIM_TIMEOUT, Session
from .design import Design
from .netlist import LOCKSTEP
from .ngspice import failure, prepare, without_control
from .stream import CircuitStepper

__all__ = ["DONE", "LockstepStepper"]

#: The line each deck's process echoes after a step's output.
DONE = "@@rcsnn-step-done"

_VALUE = re.compile(r"^(\S+) = (\S+)$")


class LockstepStepper(CircuitStepper):
    """:class:`~rcsnn.model.generate.Stepper` of the closed-loop circuit as lock-step block decks (see the module docstring).

    As :class:`~rcsnn.analog.stream.SpiceStepper` (``step``, :attr:`v`, :attr:`membranes`, :attr:`seconds`,
    :meth:`allowance`, a context manager), for a partitioned ``graph`` (the blocks are its decks).
    ``timeout``: wall-clock seconds one step may take in every deck (the first includes the operating point).
    """

    def __init__(self, graph: Graph, design: Design, planned: np.ndarray, directory: str | Path | None = None,
                 budget: bool = True, timeout: float = SIM_TIMEOUT):
        super().__init__(graph, design, planned, directory, budget, LOCKSTEP)
        self.timeout = timeout
        self._sent = np.zeros(self.core.n_neurons)  # the levels the Vs<j> sources hold
        self._latched = np.zeros(self.core.n_neurons)  # the spikes of the last step
        self._work = tempfile.TemporaryDirectory(prefix="rcsnn-lockstep-")
        self.sessions: list[Session] = []
        try:
            for deck in self.sidecar["decks"]:
                stem = Path(deck["netlist"]).stem
                run = Path(self._work.name) / deck["netlist"]
                text = (self.directory / deck["netlist"]).read_text()
                run.write_text(without_control(prepare(text, self.directory, run.with_suffix(".raw"), None)))
                session = Session(["ngspice", "-p"], what=f"lockstep {stem}: ngspice", cwd=self._work.name)
                self.sessions.append(session)
                session.send(f"source {run.name}\nset numdgt=17\n", self.timeout)
        except BaseException:
            self.close()
            raise

    def _commands(self, deck: dict, level: np.ndarray, changed: np.ndarray) -> str:
        """Step ``self.t``'s commands for ``deck``: set levels, run to the stop, print the rows, echo :data:`DONE`."""
        start, stop, rows = deck["start"], deck["stop"], int(deck["samples_per_step"])
        out = [f"alter vx{i} dc = {float(level[i])!r}" for i in changed[(changed >= start) & (changed < stop)]]
        out += [f"alter vs{j} dc = {self._latched[j]:g}" for j in deck["hosted"] if self._sent[j] != self._latched[j]]
        edge = self.t + 1
        row = edge * rows
        out += ["delete all"] if self.t else []
        out += [f"stop when time > {(edge + 0.5 / rows) * self.design.step!r}", "resume" if self.t else "run",
                f"print time[{row}] time[{row + 1}]"]
        out += [f"print v(mem{i})[{row}] v(c{i})[{row + 1}]" for i in range(start, stop)]
        return "\n".join([*out, f"echo {DONE}", ""])

    def _read(self, session: Session, deck: dict, deadline: float) -> tuple[np.ndarray, np.ndarray]:
        """Membranes and comparator levels (V) of ``deck``'s neurons, printed by ``session`` before :data:`DONE`."""
        start, stop, rows = deck["start"], deck["stop"], int(deck["samples_per_step"])
        values, log = {}, []
        while (line := session.readline(max(deadline - time.monotonic(), 1e-3))) != DONE:
            log.append(line)
            if m := _VALUE.match(line.strip()):
                values[m.group(1)] = m.group(2)
        where = f"lockstep {Path(deck['netlist']).stem}, step {self.t}"
        error = failure(where, "\n".join(log))
        if error is not None:
            raise error
        edge = self.t + 1
        row = edge * rows

        def value(name: str) -> float:
            if name not in values:
                tail = " | ".join(log[-3:])
                raise RcsnnError(f"{where}: ngspice printed no {name} ({tail or 'no output'})")
            return float(values[name])

        for r, want in ((row, edge), (row + 1, edge + 1 / rows)):
            got = value(f"time[{r}]")
            if abs(got - want * self.design.step) > 1e-6 * self.design.step:
                raise RcsnnError(f"{where}: output row {r} is at {got:.9g} s, expected {want * self.design.step:.9g} s "
                                 "(ngspice did not stop there)")
        v = np.array([value(f"v(mem{i})[{row}]") for i in range(start, stop)]) / self.design.volts_per_unit  # units
        return v, np.array([value(f"v(c{i})[{row + 1}]") for i in range(start, stop)])

    def step(self, x: np.ndarray) -> np.ndarray:
        """Spikes ``(N,)`` int8 of the next step for currents ``x`` ``(N,)`` (membrane units, without bias)."""
        if not self.sessions:
            raise RcsnnError("lockstep stepper: closed")
        start = time.perf_counter()
        level, changed = self.levels(x)
        decks = self.sidecar["decks"]
        deadline = time.monotonic() + self.timeout
        for session, deck in zip(self.sessions, decks):
            session.send(self._commands(deck, level, changed), self.timeout)
        self._sent = self._latched.copy()
        v, levels = np.zeros(self.core.n_neurons), np.zeros(self.core.n_neurons)
        for session, deck in zip(self.sessions, decks):
            v[deck["start"]:deck["stop"]], levels[deck["start"]:deck["stop"]] = self._read(session, deck, deadline)
        spikes = self.spikes(levels, v, start)
        self._latched = spikes.astype(np.float64)
        return spikes

    def close(self) -> None:
        """End every deck's ngspice process and remove the temporary directories."""
        sessions, self.sessions = self.sessions, []
        for session in sessions:
            session.kill()
        self._work.cleanup()
        self.cleanup()
