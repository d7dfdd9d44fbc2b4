#!/usr/bin/env bash
# Regenerate the golden fixtures under hdl/: the small core's HDL (byte-identical for the same core and
# rcsnn version) and its ECP5 synthesis report (nextpnr seed 1: deterministic). tests/test_golden.py runs
# exactly these commands into a temporary directory and byte-compares every file; run this script (and
# commit the result) after a change that changes what `rcsnn verilog` or `rcsnn synth` writes.
# The paper-sized example's HDL is not committed: examples/run.sh writes it under examples/out/.
set -euo pipefail
cd "$(dirname "$0")/.."
RCSNN=${RCSNN:-.venv/bin/rcsnn}
rm -rf hdl/small_3x32  # no stale file survives a change of what is emitted
nice -n 19 "$RCSNN" verilog examples/small_3x32.rcsnn -o hdl/small_3x32 --lanes 4 --steps 32
nice -n 19 "$RCSNN" synth hdl/small_3x32 --target ecp5-25f
