#!/usr/bin/env bash
# Regenerate the committed example netlists (docs/analog.md). Deterministic: same inputs, same bytes.
set -euo pipefail
cd "$(dirname "$0")/.."
RCSNN=${RCSNN:-.venv/bin/rcsnn}
PROMPT=$(head -c 32 examples/prompt.txt)
$RCSNN netlist examples/small_3x32.rcsnn --prompt "$PROMPT" -o netlists/small_3x32
if [ -f examples/sapu_3x512.rcsnn ]; then
    $RCSNN netlist examples/sapu_3x512.rcsnn --prompt "$PROMPT" -o netlists/sapu_3x512
fi
