"""The README's main command (``examples/run.sh``): every ``rcsnn`` line it runs parses with today's CLI.

The run itself takes minutes (the README's first command); this catches an option renamed or removed
under it in a second. The negative control is a line with an option the CLI does not have.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from rcsnn.cli.main import build_parser

ROOT = Path(__file__).resolve().parents[1]
VARIABLES = {"CORE": "examples/sapu_3x512.rcsnn", "STEPS": "20", "OUT": "examples/out", "PROMPT": "The "}


def rcsnn_lines(script: str) -> list[list[str]]:
    """The argument vectors of the script's ``$RCSNN ...`` lines, with its variables substituted."""
    lines = []
    for line in script.splitlines():
        if line.startswith("$RCSNN "):
            text = re.sub(r"\$\{?(\w+)\}?", lambda m: VARIABLES.get(m.group(1), m.group(0)), line[len("$RCSNN "):])
            lines.append(shlex.split(text))
    return lines


def parses(argv: list[str]) -> bool:
    try:
        build_parser().parse_args(argv)
    except SystemExit:
        return False
    return True


def test_main_command_lines_parse():
    lines = rcsnn_lines((ROOT / "examples" / "run.sh").read_text())
    assert len(lines) >= 10
    assert lines[-1][:1] == ["verify"] and "all" in lines[-1], "the main command must end with verify --backend all"
    for argv in lines:
        assert parses(argv), f"examples/run.sh: `rcsnn {shlex.join(argv)}` does not parse"


def test_negative_control_unknown_option_is_caught(capsys):
    assert not parses(["verify", "examples/sapu_3x512.rcsnn", "--backend", "all", "--no-such-option"])
    with pytest.raises(SystemExit):
        build_parser().parse_args(["verify", "x.rcsnn", "--backend", "everything"])
