"""Running decks in ngspice: ``ngspice -b`` subprocesses, or in-process through PySpice.

Both runners execute the deck's own ``run`` and ``write <stem>.raw`` (binary rawfile) and read
the saved vectors with numpy. ``.options interp`` makes the rows the ``.tran`` output grid.
Failures become one-line :class:`RcsnnError`\\ s: ngspice or libngspice missing (with the
install command), timestep too small, no convergence, a timeout, or output of the wrong length
— never an empty result.
"""

from __future__ import annotations

import ctypes.util
import glob
import os
import re
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import tools
from ..errors import RcsnnError

__all__ = ["INSTALL", "DECK_TIMEOUT", "FATAL", "CAUSES", "Waveforms", "read_raw", "failure", "prepare", "without_control",
           "find_ngspice", "run_subprocess", "find_libngspice", "run_inprocess", "RUNNERS"]

INSTALL = tools.INSTALL["ngspice"]

#: Wall-clock limit of one deck in the subprocess runner when the caller gives none, seconds.
DECK_TIMEOUT = 3600.0

#: Lines (not warnings) that mean a run failed; ngspice -b exits with status 0 all the same.
FATAL = ("simulation(s) aborted", "error", "timestep too small", "transient solution failed")

#: Causes to name, most specific first, found in any line of the log (warnings included).
CAUSES = (
    ("cannot open file", "a stimulus file is missing or unreadable"),
    ("singular matrix", "singular matrix (a floating node or a loop of ideal sources)"),
    ("timestep too small", "timestep too small (the transient solver gave up)"),
    ("iteration limit", "no convergence (Newton iteration limit reached)"),
    ("gmin stepping failed", "no convergence of the operating point (gmin stepping failed)"),
    ("source stepping failed", "no convergence of the operating point (source stepping failed)"),
    ("could not find include file", "cell library not found"),
    ("unknown subckt", "unknown subcircuit"),
    ("unable to find definition of model", "unknown model"),
)


@dataclass(frozen=True)
class Waveforms:
    """Saved vectors of one run on the output grid: ``vectors[name]`` (lower-case, e.g. ``v(mem3)``)."""

    time: np.ndarray
    vectors: dict[str, np.ndarray]
    seconds: float  # wall time of the simulation
    cpu_seconds: float  # CPU time of the simulator process (subprocess runner), else the wall time
    peak_kib: int  # peak resident memory of the simulator process (subprocess runner), else 0
    log: str


def read_raw(path: Path) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Parse an ngspice binary rawfile (real data): (time, {name: values})."""
    data = path.read_bytes()
    marker = data.find(b"Binary:\n")
    if marker < 0:
        raise RcsnnError(f"{path}: not a binary ngspice rawfile")
    head = data[:marker].decode("ascii", "replace")
    n_vars = int(re.search(r"No\. Variables:\s*(\d+)", head).group(1))
    n_points = int(re.search(r"No\. Points:\s*(\d+)", head).group(1))
    names = [line.split("\t")[2].lower() for line in head.split("Variables:\n", 1)[1].splitlines() if line.startswith("\t")]
    values = np.frombuffer(data, dtype="<f8", offset=marker + 8)
    if len(names) != n_vars or values.size != n_vars * n_points:
        raise RcsnnError(f"{path}: rawfile holds {values.size} values, header says {n_points} points x {n_vars} vectors")
    table = values.reshape(n_points, n_vars)
    return table[:, 0].copy(), {name: table[:, k].copy() for k, name in enumerate(names) if k}


def failure(where: str, log: str) -> RcsnnError | None:
    """The error a simulator log reports, if any: its most specific cause and the line that says so."""
    lines = [line.strip() for line in log.splitlines()]
    fatal = [line for line in lines if not line.lower().startswith("warning")
             and any(p in line.lower() for p in FATAL)]
    if not fatal:
        return None
    for pattern, meaning in CAUSES:
        for line in lines:
            if pattern in line.lower():
                return RcsnnError(f"{where}: ngspice: {meaning}: {line}")
    return RcsnnError(f"{where}: ngspice: {fatal[0]}")


def _stimulus_path(directory: Path, name: str, scratch: Path) -> Path:
    """Where a filesource finds ``directory/name``: ngspice 39 lower-cases a model's ``file`` parameter, so
    a path with upper-case letters is reached through a symbolic link in the run's ``scratch`` directory."""
    path = directory / name
    if str(path) == str(path).lower():
        return path
    link = scratch / name
    if not link.is_symlink():
        link.symlink_to(path)
    return link


def prepare(deck: str, directory: Path, raw: Path, tran: str | None) -> str:
    """The deck with its relative file names (cell library, stimulus files) resolved in
    ``directory``, its results written to ``raw`` and, if given, another ``.tran`` line (stimulus
    files under a path with upper-case letters are linked from ``raw``'s directory, a scratch one)."""
    directory = Path(directory).resolve()
    if any(c.isspace() for c in str(directory) + str(raw)):
        raise RcsnnError(f"{directory}: ngspice cannot include files from a path with spaces; move the netlists")
    deck = re.sub(r"^\.include (\S+)$", lambda m: f".include {directory / m.group(1)}", deck, flags=re.M)
    deck = re.sub(r'file="([^"/]+)"', lambda m: f'file="{_stimulus_path(directory, m.group(1), raw.parent)}"', deck)
    deck = re.sub(r"^write \S+$", f"write {raw}", deck, count=1, flags=re.M)
    if tran is not None:
        deck = re.sub(r"^\.tran .*$", tran, deck, count=1, flags=re.M)
    return deck


def without_control(deck: str) -> str:
    """``deck`` without its ``.control`` block, for an in-process caller that issues the commands itself."""
    return re.sub(r"^\.control$.*?^\.endc$\n", "", deck, flags=re.M | re.S)


def _check(where: str, raw: Path, log: str, expected_rows: int | None) -> tuple[np.ndarray, dict]:
    error = failure(where, log)
    if error is not None:
        raise error
    if not raw.exists() or raw.stat().st_size == 0:
        tail = " | ".join(log.strip().splitlines()[-3:])
        raise RcsnnError(f"{where}: ngspice wrote no results ({tail or 'no output'})")
    t, vectors = read_raw(raw)
    if expected_rows is not None and len(t) != expected_rows:
        raise RcsnnError(f"{where}: ngspice returned {len(t)} output rows, expected {expected_rows} (run cut short?)")
    return t, vectors


def find_ngspice() -> str:
    """Path of the ngspice executable, or an error saying how to install it (see :func:`rcsnn.tools.find`)."""
    return tools.find("ngspice")


def run_subprocess(deck: str, stem: str, directory: Path, expected_rows: int | None = None, tran: str | None = None,
                   timeout: float | None = None) -> Waveforms:
    """Run ``ngspice -b`` on ``deck`` (text of a generated netlist in ``directory``) in a scratch directory,
    for at most ``timeout`` seconds of wall time (None: :data:`DECK_TIMEOUT`)."""
    timeout = DECK_TIMEOUT if timeout is None else timeout
    with tempfile.TemporaryDirectory(prefix="rcsnn-ngspice-") as tmp:
        work = Path(tmp)
        (work / f"{stem}.cir").write_text(prepare(deck, directory, work / f"{stem}.raw", tran))
        done = tools.run(["ngspice", "-b", f"{stem}.cir"], timeout=timeout, what=f"{stem}: ngspice", cwd=work,
                         check=False, stdout=work / "ngspice.log")
        log = done.stdout
        t, vectors = _check(stem, work / f"{stem}.raw", log, expected_rows)
        if done.returncode != 0:
            raise RcsnnError(f"{stem}: ngspice exited with status {done.returncode}")
    return Waveforms(t, vectors, done.seconds, done.cpu_seconds, done.peak_kib, log)


def find_libngspice() -> str:
    """``libngspice.so.0`` for the in-process runner: $NGSPICE_LIBRARY_PATH, the linker's cache, lib dirs."""
    env = os.environ.get("NGSPICE_LIBRARY_PATH")
    if env:
        if not Path(env).exists():
            raise RcsnnError(f"NGSPICE_LIBRARY_PATH={env}: no such file; install libngspice with: {INSTALL}")
        return env
    found = ctypes.util.find_library("ngspice")
    if found:
        return found
    for pattern in ("/usr/lib/*/libngspice.so*", "/usr/lib/libngspice.so*", "/usr/local/lib/libngspice.so*"):
        hits = sorted(glob.glob(pattern))
        if hits:
            return hits[0]
    raise RcsnnError(f"libngspice: not found (set NGSPICE_LIBRARY_PATH); install it with: {INSTALL}")


_shared = None


def _ngspice_shared():
    """The process's one PySpice NgSpiceShared instance, loaded from :func:`find_libngspice`."""
    global _shared
    if _shared is None:
        import logging

        logging.getLogger("PySpice").setLevel(logging.CRITICAL)  # "Unsupported Ngspice version 39" is harmless
        from PySpice.Spice.NgSpice.Shared import NgSpiceShared

        NgSpiceShared.LIBRARY_PATH = find_libngspice()
        try:
            _shared = NgSpiceShared.new_instance()
        except OSError as exc:
            raise RcsnnError(f"libngspice: cannot load {NgSpiceShared.LIBRARY_PATH} ({exc}); "
                             f"install it with: {INSTALL}") from None
    return _shared


def run_inprocess(deck: str, stem: str, directory: Path, expected_rows: int | None = None, tran: str | None = None,
                  timeout: float | None = None) -> Waveforms:
    """Run ``deck`` inside this process through PySpice's NgSpiceShared (no timeout: it cannot be interrupted)."""
    from PySpice.Spice.NgSpice.Shared import NgSpiceCircuitError

    if timeout is not None:
        raise RcsnnError("the in-process runner cannot time out a simulation; use the subprocess runner")
    ng = _ngspice_shared()
    with tempfile.TemporaryDirectory(prefix="rcsnn-ngspice-") as tmp:
        raw = Path(tmp) / f"{stem}.raw"
        circuit = without_control(prepare(deck, directory, raw, tran))
        start = time.perf_counter()
        try:
            ng.load_circuit(circuit)
            ng.exec_command("set filetype=binary")
            ng.run()
            ng.exec_command(f"write {raw}")
        except NgSpiceCircuitError:
            pass  # the log below names the problem
        seconds = time.perf_counter() - start
        log = ng.stdout + "\n" + ng.stderr
        try:
            t, vectors = _check(stem, raw, log, expected_rows)
        finally:
            ng.remove_circuit()
            ng.destroy()
    return Waveforms(t, vectors, seconds, seconds, 0, log)


RUNNERS = {"subprocess": run_subprocess, "pyspice": run_inprocess}
