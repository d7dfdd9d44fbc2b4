"""rcsnn.tools: finding external tools, running them with a timeout, killing, reporting — on real processes."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import pytest

from rcsnn import tools
from rcsnn.errors import RcsnnError


def _gone(pid: int) -> bool:
    """True once ``pid`` has exited (no such process, or a zombie waiting for init)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return True
    return state in ("Z", "X")


def _all_gone(pids: list[int], within: float = 2.0) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if all(_gone(p) for p in pids):
            return True
        time.sleep(0.02)
    return False


def test_missing_tool_names_the_install_command(monkeypatch, tmp_path):
    monkeypatch.setitem(tools.INSTALL, "rcsnn-no-such-tool", "pip install rcsnn-no-such-tool")
    with pytest.raises(RcsnnError, match=r"^rcsnn-no-such-tool not found; install it with: pip install rcsnn-no-such-tool$"):
        tools.find("rcsnn-no-such-tool")
    with pytest.raises(RcsnnError, match="install it with: pip install rcsnn-no-such-tool"):
        tools.run(["rcsnn-no-such-tool", "-x"], timeout=5, what="demo")
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(RcsnnError, match=r"^iverilog not found; install it with: apt-get install -y iverilog$"):
        tools.find("iverilog")
    with pytest.raises(RcsnnError, match=r"^ngspice not found; install it with: apt-get install -y ngspice libngspice0$"):
        tools.find("ngspice")


def test_unknown_tool_and_path_lookup(monkeypatch):
    with pytest.raises(RcsnnError, match=r"^rcsnn-unlisted-tool not found \(neither next to .* nor on PATH\)$"):
        tools.find("rcsnn-unlisted-tool")
    assert os.access(tools.find("bash"), os.X_OK)  # any executable on PATH
    venv_bin = Path(os.sys.executable).parent
    assert tools.find("python") == str(venv_bin / "python")  # next to this Python first
    with pytest.raises(RcsnnError, match="no such executable"):
        tools.find("/nonexistent/dir/tool")


@pytest.mark.parametrize("timeout", [None, 0, -1.0, float("nan")])
def test_a_timeout_is_required(timeout):
    with pytest.raises(ValueError, match="positive timeout"):
        tools.run(["bash", "-c", "true"], timeout=timeout, what="demo")


def test_timeout_kills_child_and_grandchildren(tmp_path):
    pids = tmp_path / "pids"
    start = time.monotonic()
    with pytest.raises(RcsnnError, match=r"^sleepers: timed out after 0.5 s$"):
        tools.run(["bash", "-c", f"echo $$ > {pids}; sleep 30 & echo $! >> {pids}; sleep 30"],
                  timeout=0.5, what="sleepers")
    assert time.monotonic() - start < 3
    listed = [int(p) for p in pids.read_text().split()]
    assert len(listed) == 2
    assert _all_gone(listed), f"still running: {[p for p in listed if not _gone(p)]}"


def test_ctrl_c_kills_the_process_group(tmp_path):
    pids = tmp_path / "pids"
    main = threading.main_thread().ident
    timer = threading.Timer(0.5, signal.pthread_kill, (main, signal.SIGINT))
    start = time.monotonic()
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            tools.run(["bash", "-c", f"echo $$ > {pids}; sleep 30 & echo $! >> {pids}; sleep 30"],
                      timeout=60, what="sleepers")
    finally:
        timer.cancel()
    assert time.monotonic() - start < 5
    listed = [int(p) for p in pids.read_text().split()]
    assert _all_gone(listed)


@pytest.mark.parametrize("check", [True, False])
def test_killed_by_a_signal(check):
    with pytest.raises(RcsnnError, match=r"^suicide: killed by signal SIGKILL$"):
        tools.run(["bash", "-c", "kill -9 $$"], timeout=10, what="suicide", check=check)


def test_nonzero_exit_gives_the_tail():
    script = "echo one; echo two; echo four; echo three >&2; exit 3"
    with pytest.raises(RcsnnError, match=r"^demo failed \(exit 3\): two \| four \| three$"):
        tools.run(["bash", "-c", script], timeout=10, what="demo")
    done = tools.run(["bash", "-c", script], timeout=10, what="demo", check=False)
    assert done.returncode == 3
    assert done.stdout == "one\ntwo\nfour\n" and done.stderr == "three\n"
    assert done.argv[0] == tools.find("bash")


def test_resource_usage_is_filled():
    work = "x = bytearray(64 * 2**20); s = sum(i * i for i in range(2 * 10**6)); print(len(x) + s % 2)"
    done = tools.run(["python", "-c", work], timeout=60, what="work")
    assert done.returncode == 0 and done.stdout.strip()
    assert done.cpu_seconds > 0.01
    assert done.peak_kib > 64 * 1024
    assert done.seconds >= done.cpu_seconds * 0.5 > 0


def test_stdout_to_a_file_niced_in_its_own_session(tmp_path):
    log = tmp_path / "tool.log"
    probe = "import os, sys; print(os.nice(0)); print(os.getsid(0) == os.getpid()); print('err', file=sys.stderr)"
    done = tools.run(["python", "-c", probe], timeout=60, what="probe", stdout=log, cwd=tmp_path)
    assert done.stdout == log.read_text()
    assert done.stdout.split() == ["19", "True", "err"] and done.stderr == ""
    plain = tools.run(["python", "-c", "import os; print(os.nice(0))"], timeout=60, what="probe", nice=False)
    assert plain.stdout.strip() == str(os.nice(0))


@pytest.mark.skipif(not os.path.exists("/proc/self/autogroup"), reason="kernel without sched_autogroup")
def test_niced_across_sessions():
    """The child leads its own session: with autogroup scheduling its session's group must be niced too, or
    nice 19 would only rank it inside its own group (as fast as the user's whole desktop session)."""
    group = tools.run(["cat", "/proc/self/autogroup"], timeout=60, what="probe").stdout
    assert group.split()[-2:] == ["nice", "19"], group
    plain = tools.run(["cat", "/proc/self/autogroup"], timeout=60, what="probe", nice=False).stdout
    assert plain.split()[-2:] == ["nice", "0"], plain  # the control: not niced unless asked


def test_versions():
    line = tools.version("ngspice")
    assert line and "ngspice" in line.lower() and "\n" not in line
    assert tools.version("ngspice") is line  # cached
    assert tools.version("verilator").startswith("Verilator")
    assert tools.version("iverilog").startswith("Icarus Verilog")
    assert tools.version("bash")  # not in INSTALL, still a version line
    with pytest.raises(RcsnnError, match="not found"):
        tools.version("rcsnn-unlisted-tool")


def test_unstartable_executable_is_one_line(tmp_path):
    script = tmp_path / "tool"
    script.write_bytes(b"\x00\x01 not an executable format")
    script.chmod(0o755)
    with pytest.raises(RcsnnError, match=r"^bad: cannot start .*tool \(Exec format error\)$"):
        tools.run([str(script)], timeout=5, what="bad")


def test_parallel_runs_from_threads():
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(4) as pool:
        runs = list(pool.map(lambda k: tools.run(["bash", "-c", f"sleep 0.2; echo {k}"], timeout=30, what=f"r{k}"),
                             range(8)))
    assert [r.stdout.strip() for r in runs] == [str(k) for k in range(8)]


def test_yosys_script_runs_and_is_removed(tmp_path):
    (tmp_path / "inv.v").write_text("module inv(input a, output y); assign y = ~a; endmodule\n")
    done = tools.yosys("read_verilog inv.v\nsynth -top inv\nwrite_verilog out.v\n", tmp_path, "yosys (demo)", 300)
    assert done.returncode == 0 and (tmp_path / "out.v").exists()
    assert not (tmp_path / ".yosys_script.ys").exists()
    with pytest.raises(RcsnnError, match=r"^yosys \(bad\) failed \(exit 1\): .*nope\.v"):
        tools.yosys("read_verilog nope.v\n", tmp_path, "yosys (bad)", 300)
    assert not (tmp_path / ".yosys_script.ys").exists()
