#!/usr/bin/env bash
# Set up rcsnn on a fresh Debian 12 machine: system simulators, a virtual environment, the package.
# Idempotent: a second run only checks. As root it installs the Debian packages itself; as another
# user it uses sudo when it can, else it names the command to run.
set -euo pipefail
cd "$(dirname "$0")/.."

DEBIAN_PACKAGES=(ngspice libngspice0 iverilog verilator python3-venv)
missing=()
for p in "${DEBIAN_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ]; then SUDO=""; elif command -v sudo >/dev/null; then SUDO="sudo"; else
        echo "setup: missing Debian packages; run as root: apt-get install -y ${missing[*]}" >&2; exit 1
    fi
    echo "setup: installing Debian packages: ${missing[*]}"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
# torch is pinned to the CPU build (a plain 'torch' would pull a multi-GB CUDA build).
.venv/bin/python -m pip install -q --disable-pip-version-check "torch==2.13.0"
.venv/bin/python -m pip install -q --disable-pip-version-check -e ".[test]"
# The SNN frameworks of tests/test_frameworks.py, without their dependencies (norse and spikingjelly
# would replace the CPU torch with a CUDA build): the pinned list is pyproject's "frameworks" extra.
mapfile -t FRAMEWORKS < <(.venv/bin/python -c 'import tomllib; print("\n".join(tomllib.load(open("pyproject.toml", "rb"))["project"]["optional-dependencies"]["frameworks"]))')
.venv/bin/python -m pip install -q --disable-pip-version-check --no-deps "${FRAMEWORKS[@]}"
echo "setup: ready ($(.venv/bin/python -c 'import torch, amaranth, nir; print("torch", torch.__version__, "amaranth", amaranth.__version__, "nir", nir.__version__)'))"
