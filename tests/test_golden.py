"""Golden fixtures: every committed generated file is regenerated here and compared byte for byte.

``netlists/small_3x32`` and ``hdl/small_3x32`` (with its ECP5 synthesis report) are regenerated into a
temporary directory with exactly the commands of ``netlists/regenerate.sh`` and ``hdl/regenerate.sh``
(in-process, from the repository's root, the same arguments); the set of files and every file's bytes
must equal the committed ones, except the files git ignores (bench outputs, synthesis intermediates).
ECP5 place and route takes about half a minute.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import ROOT

from rcsnn.cli import main

CORE = "examples/small_3x32.rcsnn"
NETLIST_ARGS = ["netlist", CORE, "--prompt", None, "-o", "netlists/small_3x32"]
VERILOG_ARGS = ["verilog", CORE, "-o", "hdl/small_3x32", "--lanes", "4", "--steps", "32"]
SYNTH_ARGS = ["synth", "hdl/small_3x32", "--target", "ecp5-25f"]


def script_prompt() -> str:
    """``PROMPT=$(head -c 32 examples/prompt.txt)``: 32 bytes, trailing newlines stripped, decoded as argv is."""
    return os.fsdecode((ROOT / "examples" / "prompt.txt").read_bytes()[:32]).rstrip("\n")


def _pattern(line: str, base: str) -> tuple[re.Pattern, bool]:
    """A .gitignore line as a regex over paths relative to the repository root, and whether it names directories only."""
    directory = line.endswith("/")
    line = line.rstrip("/")
    anchored = "/" in line
    line = line.lstrip("/")
    out = ""
    for part in re.split(r"(/\*\*/|\*\*/|/\*\*|\*|\?)", line):
        out += {"/**/": "/(?:.*/)?", "**/": "(?:.*/)?", "/**": "/.*", "*": "[^/]*", "?": "[^/]"}.get(part, re.escape(part))
    prefix = re.escape(base) if anchored else re.escape(base) + "(?:.*/)?"
    return re.compile(prefix + out), directory


def ignore_rules() -> list[tuple[re.Pattern, bool]]:
    """The rules of the repository's .gitignore files that concern the fixtures (no negations are used)."""
    rules = []
    for gitignore in (ROOT / ".gitignore", ROOT / "hdl" / ".gitignore", ROOT / "netlists" / ".gitignore"):
        if gitignore.exists():
            base = gitignore.parent.relative_to(ROOT).as_posix() + "/" if gitignore.parent != ROOT else ""
            lines = (line.strip() for line in gitignore.read_text().splitlines())
            rules += [_pattern(line, base) for line in lines if line and not line.startswith("#")]
    return rules


def ignored(path: str, rules) -> bool:
    """Whether git ignores ``path`` (relative to the root): the file itself or one of its directories matches."""
    parts = path.split("/")
    prefixes = ["/".join(parts[:k]) for k in range(1, len(parts) + 1)]
    return any(rule.fullmatch(p) and (not directory or k < len(parts))
               for rule, directory in rules for k, p in enumerate(prefixes, 1))


def files(directory: Path, committed_as: str, rules, part: Callable[[str], bool]) -> dict[str, Path]:
    """Files below ``directory`` whose relative path is in ``part``, except those git ignores at ``committed_as``."""
    found = {}
    for path in sorted(directory.rglob("*")):
        rel = path.relative_to(directory).as_posix()
        if path.is_file() and part(rel) and not ignored(f"{committed_as}/{rel}", rules):
            found[rel] = path
    return found


def assert_same_files(generated: Path, committed_as: str, script: str, part: Callable[[str], bool]) -> None:
    """The same set of files in ``generated`` as committed under ``committed_as`` (within ``part``), the same bytes."""
    rules = ignore_rules()
    new = files(generated, committed_as, rules, part)
    old = files(ROOT / committed_as, committed_as, rules, part)
    how = f"regenerate the committed files with `bash {script}` and commit them"
    assert new, f"nothing generated in {generated}"
    missing, extra = sorted(set(new) - set(old)), sorted(set(old) - set(new))
    assert not missing, f"{committed_as}: generated but not committed: {', '.join(missing)}; {how}"
    assert not extra, f"{committed_as}: committed but no longer generated: {', '.join(extra)}; {how}"
    for rel in new:
        same = new[rel].read_bytes() == old[rel].read_bytes()
        assert same, f"{committed_as}/{rel} differs from what rcsnn writes now; {how}"


def everything(rel: str) -> bool:
    return True


def synthesis(rel: str) -> bool:
    return rel.startswith("synth/")


def not_synthesis(rel: str) -> bool:
    return not synthesis(rel)


def rooted(args: list, out: Path, committed_as: str) -> list:
    """``args`` with the committed directory replaced by ``out``."""
    return [str(out) if a == committed_as else a for a in args]


def test_regenerate_scripts_run_these_commands():
    """If a script changes, change the commands here with it (and the other way round)."""
    hdl = (ROOT / "hdl" / "regenerate.sh").read_text()
    netlists = (ROOT / "netlists" / "regenerate.sh").read_text()
    assert '"$RCSNN" ' + " ".join(VERILOG_ARGS) + "\n" in hdl
    assert '"$RCSNN" ' + " ".join(SYNTH_ARGS) + "\n" in hdl
    assert "PROMPT=$(head -c 32 examples/prompt.txt)\n" in netlists
    assert "$RCSNN " + " ".join(a or '"$PROMPT"' for a in NETLIST_ARGS) + "\n" in netlists


def test_netlists_match_the_committed_fixtures(tmp_path):
    out = tmp_path / "netlists" / "small_3x32"
    argv = [script_prompt() if a is None else a for a in rooted(NETLIST_ARGS, out, "netlists/small_3x32")]
    with contextlib.chdir(ROOT):  # the scripts run from the root with relative paths
        assert main(argv) == 0
    assert_same_files(out, "netlists/small_3x32", "netlists/regenerate.sh", everything)


@pytest.fixture(scope="module")
def hdl_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("hdl") / "small_3x32"
    with contextlib.chdir(ROOT):  # the scripts run from the root with relative paths
        assert main(rooted(VERILOG_ARGS, out, "hdl/small_3x32")) == 0
    return out


def test_hdl_matches_the_committed_fixtures(hdl_dir):
    assert_same_files(hdl_dir, "hdl/small_3x32", "hdl/regenerate.sh", not_synthesis)


def test_ecp5_report_matches_the_committed_one(hdl_dir):
    with contextlib.chdir(ROOT):  # the scripts run from the root with relative paths
        assert main(rooted(SYNTH_ARGS, hdl_dir, "hdl/small_3x32")) == 0
    assert_same_files(hdl_dir, "hdl/small_3x32", "hdl/regenerate.sh", synthesis)
    assert sorted(files(hdl_dir, "hdl/small_3x32", ignore_rules(), synthesis)) == [
        "synth/ecp5-25f/report.json", "synth/ecp5-25f/report.md"]


def test_ignore_rules_leave_out_bench_outputs_and_synthesis_intermediates():
    rules = ignore_rules()
    for path in ("hdl/small_3x32/synth/ecp5-25f/pnr.json", "hdl/small_3x32/synth/ecp5-25f/nextpnr.log",
                 "hdl/small_3x32/obj_dir/Vrcsnn_core", "hdl/small_3x32/tb", "hdl/small_3x32/wave.vcd",
                 "netlists/small_3x32/core.raw"):
        assert ignored(path, rules), path
    for path in ("hdl/small_3x32/synth/ecp5-25f/report.json", "hdl/small_3x32/tb_rcsnn.v", "hdl/small_3x32/load.hex",
                 "netlists/small_3x32/core.cir"):
        assert not ignored(path, rules), path
