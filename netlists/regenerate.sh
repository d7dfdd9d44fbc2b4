#!/usr/bin/env bash
# Regenerate the golden fixtures under netlists/: the small core's SPICE netlists (docs/analog.md),
# deterministic: same inputs, same bytes. tests/test_golden.py runs exactly this command into a temporary
# directory and byte-compares every file; run this script (and commit the result) after a change that
# changes what `rcsnn netlist` writes. The paper-sized example's netlists are not committed:
# examples/run.sh writes them under examples/out/.
set -euo pipefail
cd "$(dirname "$0")/.."
RCSNN=${RCSNN:-.venv/bin/rcsnn}
PROMPT=$(head -c 32 examples/prompt.txt)
rm -rf netlists/small_3x32  # no stale file survives a change of what is written
$RCSNN netlist examples/small_3x32.rcsnn --prompt "$PROMPT" -o netlists/small_3x32
