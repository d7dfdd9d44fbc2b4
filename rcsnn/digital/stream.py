"""The emitted Verilog in Verilator or Icarus, one step at a time (``rcsnn generate --backend verilator|icarus``).

:class:`HdlStepper` emits the core (:func:`~rcsnn.digital.emit.emit`), builds the Verilator
harness or compiles the Icarus testbench, and starts ONE simulator process in the benches'
``+stream`` mode (:mod:`rcsnn.digital.testbench`): every :meth:`HdlStepper.step` writes the step's
``n_words`` beats (hex, one per line) to its stdin and reads back one line
``STEP t cycles mask_0 .. mask_{n_words-1}``. The core keeps its membranes and spike queue
between steps, exactly as in a file-driven run; the benches load the memory images first and hold
every step to the cycle limit (Icarus: and to four-state outputs), answering ``ERROR: ...``
instead. The process runs through :class:`rcsnn.tools.Session`: every round trip has a timeout
(:func:`~rcsnn.digital.cycles.wall_timeout` of one step, at least :data:`MIN_STEP_TIMEOUT` s), and
the process group is killed on :meth:`~HdlStepper.close`, on leaving a ``with`` block and on
Ctrl-C.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from ..errors import RcsnnError
from ..ir.graph import Graph
from ..tools import Session
from .cycles import wall_timeout
from .emit import _hex_lines, emit
from .layout import build_image, place
from .simulate import beats, bench_error, build_verilator, compile_icarus, unpack_spikes

__all__ = ["SIMULATORS", "MIN_STEP_TIMEOUT", "HdlStepper"]

SIMULATORS = {"verilator": "Verilator", "icarus": "Icarus"}
#: Shortest timeout of one round trip, seconds (a loaded machine may stall a process for a while).
MIN_STEP_TIMEOUT = 30.0


class HdlStepper:
    """:class:`~rcsnn.model.generate.Stepper` of the emitted Verilog in one Verilator or Icarus process.

    ``step(xq)`` takes the quantised currents ``xq`` ``(N,)`` int64 (``2**-Fv`` membrane units, without
    bias) and returns the spikes ``(N,)`` int8 (int32 counts with counting groups) the core raised; :attr:`cycles`
    lists the clock cycles of every step so far.

    Parameters
    ----------
    graph : Graph
        The core (placed here with ``lanes`` lanes).
    simulator : str
        ``verilator`` or ``icarus``.
    lanes : int
        Parallel synapse/neuron lanes of the digital core.
    work : Path, optional
        Directory for the emitted design and the build (kept; an unchanged design there reuses its
        Verilator build). Default: a temporary directory, removed by :meth:`close`.
    step_timeout : float, optional
        Seconds allowed for one round trip (default from the cycle limit, at least :data:`MIN_STEP_TIMEOUT`).
    """

    quantized = True

    def __init__(self, graph: Graph, simulator: str, lanes: int = 8, work: str | Path | None = None,
                 step_timeout: float | None = None):
        if simulator not in SIMULATORS:
            raise RcsnnError(f"--backend {simulator}: not an HDL simulator ({', '.join(SIMULATORS)})")
        self.tool = SIMULATORS[simulator]
        placed = place(graph, lanes)
        self.image = build_image(placed)
        self._scratch = tempfile.TemporaryDirectory(prefix="rcsnn-stream-") if work is None else None
        self.work = Path(self._scratch.name if work is None else work)
        self.session: Session | None = None
        self.cycles: list[int] = []
        try:
            emit(placed, self.work, np.zeros((1, self.image.slots.n_neurons), dtype=np.int64))
            if simulator == "verilator":
                argv = [str(build_verilator(self.work).resolve()), "+stream"]
            else:
                compile_icarus(self.work)
                argv = ["vvp", "-n", "tb", "+stream"]
            self.step_timeout = (max(MIN_STEP_TIMEOUT, wall_timeout(self.image, 1, simulator, base=0.0))
                                 if step_timeout is None else step_timeout)
            self.session = Session(argv, what=f"{self.tool} (+stream)", cwd=self.work)
        except BaseException:
            self.close()
            raise

    def __enter__(self) -> HdlStepper:
        return self

    def __exit__(self, kind, value, traceback) -> None:
        self.close()

    def step(self, x: np.ndarray) -> np.ndarray:
        """Spikes ``(N,)`` int8 of one step of the core for quantised currents ``x`` ``(N,)`` int64."""
        if self.session is None:
            raise RcsnnError(f"{self.tool} stepper: already closed")
        t = len(self.cycles)
        words = beats(self.image, np.asarray(x, dtype=np.int64)[None])[0]
        self.session.send(_hex_lines(words, self.image.lanes * self.image.Wv), self.step_timeout)
        while True:
            line = self.session.readline(self.step_timeout)
            error = bench_error(line, self.tool)
            if error is not None:
                self.close()
                raise error
            if line.startswith("STEP "):
                break
        fields = line.split()
        if len(fields) != 3 + self.image.slots.n_words or fields[1] != str(t):
            self.close()
            raise RcsnnError(f"{self.tool} (+stream): step {t}: unexpected answer {line[:80]!r}")
        self.cycles.append(int(fields[2]))
        masks = np.array([int(m, 16) for m in fields[3:]], dtype=object)
        return unpack_spikes(self.image, masks[None])[0]

    def close(self) -> None:
        """Stop the simulator (its process group) and remove the temporary directory, if any."""
        try:
            if self.session is not None:
                self.session.close(grace=5.0)
                self.session = None
        finally:
            if self._scratch is not None:
                self._scratch.cleanup()
                self._scratch = None
