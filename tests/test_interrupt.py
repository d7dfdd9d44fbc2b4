"""Ctrl-C at several points of ``netlist``, ``verilog`` and ``verify`` leaves the old output or none, never a mix.

In-process, a KeyboardInterrupt is raised at the k-th file the command writes (first, middle, last) and
at the swap of the old directory for the new one; as a subprocess, a real SIGINT reaches ``verify
--backend spice`` while ngspice runs, which must stop at once.
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

import pytest
from conftest import ROOT, SMALL_CHECKPOINT, interrupt_cli, random_graph

from rcsnn import files
from rcsnn.cli import main
from rcsnn.ir.serialize import save_graph

CORE = str(SMALL_CHECKPOINT)

#: command -> (argv of the old output, argv of the interrupted run, the file it writes last); the output
#: directory follows. TINY (a 2 x 4-neuron core) keeps the HDL runs short.
COMMANDS = {
    "netlist": (["netlist", CORE, "--steps", "4"], ["netlist", CORE, "--steps", "6"], "core.json"),
    "verilog": (["verilog", "TINY", "--steps", "3", "--lanes", "2"], ["verilog", "TINY", "--steps", "4", "--lanes", "4"],
                "design.json"),
    "verify": (["verify", "TINY", "--backend", "amaranth", "--steps", "2", "--out"],
               ["verify", "TINY", "--backend", "amaranth", "--steps", "3", "--lanes", "4", "--out"], "report.md"),
}


def _contents(directory: Path) -> dict[str, bytes]:
    return {p.relative_to(directory).as_posix(): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


def _argv(argv: list[str], tiny: Path, out: Path) -> list[str]:
    argv = [str(tiny) if a == "TINY" else a for a in argv]
    return [*argv, str(out)] if argv[-1] == "--out" else [*argv, "-o", str(out)]


class _Interrupt:
    """Raise KeyboardInterrupt when ``Path.write_text`` writes into the output ``out`` (its temporary sibling)
    for the ``at``-th time, or writes the file named ``at``."""

    def __init__(self, monkeypatch, out: Path, at: int | str):
        calls = []
        real = Path.write_text
        mine = f"/.{out.name}."

        def write_text(path, *args, **kwargs):
            if mine in str(path):
                calls.append(path)
                if len(calls) == at or path.name == at:
                    raise KeyboardInterrupt
            return real(path, *args, **kwargs)

        monkeypatch.setattr(Path, "write_text", write_text)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("tiny") / "tiny.json"
    save_graph(random_graph(3, sizes=(4, 4), n_in=2), path)
    return path


@pytest.fixture(scope="module")
def old_outputs(tmp_path_factory, tiny) -> dict[str, dict[str, bytes]]:
    """Each command's old output (its files)."""
    found = {}
    for command, (old_argv, _, _) in COMMANDS.items():
        out = tmp_path_factory.mktemp(command) / "old"
        assert main(_argv(old_argv, tiny, out)) == 0
        found[command] = _contents(out)
    return found


def _siblings(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.parent.iterdir() if p.name.startswith(f".{directory.name}."))


POINTS = [(command, where) for command in COMMANDS for where in ("first", "middle", "last", "swap")
          if (command, where) != ("verilog", "middle")]  # each HDL emission takes seconds


@pytest.mark.parametrize("command, where", POINTS)
def test_ctrl_c_leaves_the_old_output(tmp_path, capsys, monkeypatch, tiny, old_outputs, command, where):
    old_files = old_outputs[command]
    out = tmp_path / "out"
    for rel, data in old_files.items():
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        (out / rel).write_bytes(data)
    if where == "swap":  # after the old directory was moved aside, before the new one is renamed into place
        real, calls = os.rename, []

        def rename(src, dst):
            calls.append(src)
            if len(calls) == 2:
                raise KeyboardInterrupt
            return real(src, dst)

        monkeypatch.setattr(files.os, "rename", rename)
    else:
        _Interrupt(monkeypatch, out, {"first": 1, "middle": 3, "last": COMMANDS[command][2]}[where])
    assert main(_argv(COMMANDS[command][1], tiny, out)) == 130
    assert "interrupted" in capsys.readouterr().err
    assert _contents(out) == old_files
    assert _siblings(out) == []


@pytest.mark.parametrize("command", ["netlist", "verify"])
def test_ctrl_c_without_an_old_output_leaves_none(tmp_path, capsys, monkeypatch, tiny, command):
    out = tmp_path / "out"
    _Interrupt(monkeypatch, out, 3)
    assert main(_argv(COMMANDS[command][1], tiny, out)) == 130
    assert not out.exists() and _siblings(out) == []


def _ngspice_with(mark: str) -> list[int]:
    """ngspice processes started with RCSNN_TEST_MARK=mark in their environment."""
    found = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            if (proc / "comm").read_text().strip() == "ngspice" and \
                    f"RCSNN_TEST_MARK={mark}".encode() in (proc / "environ").read_bytes():
                found.append(int(proc.name))
        except OSError:
            continue
    return found


def test_sigint_stops_ngspice_at_once_and_keeps_the_old_report(tmp_path):
    """A real Ctrl-C (SIGINT) while two ngspice workers run: exit 130 within seconds, no ngspice left, the old
    verify directory intact, no temporary directory left."""
    if not Path("/proc/self/environ").exists() or shutil.which("ngspice") is None:
        pytest.skip("needs ngspice and /proc")
    out = tmp_path / "out"
    out.mkdir()
    (out / "report.json").write_text('{"old": true}\n')
    mark = uuid.uuid4().hex
    env = {**os.environ, "RCSNN_TEST_MARK": mark, "PYTHONPATH": str(ROOT)}
    code, err = interrupt_cli(["verify", CORE, "--backend", "spice", "--steps", "400", "--mode", "open", "--blocks", "2",
                               "--workers", "2", "--oversubscribe", "--out", str(out)], env, lambda: _ngspice_with(mark), 60,
                              0.3)
    assert code == 130 and "interrupted" in err and "Traceback" not in err, err
    assert _ngspice_with(mark) == []
    assert _contents(out) == {"report.json": b'{"old": true}\n'}
    assert _siblings(out) == []
