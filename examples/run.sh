#!/usr/bin/env bash
# The main job on the bundled example core (3 x 512 neurons, one shared ternary T):
# inspect it, generate text on both references, record a raster, export the graph and NIR.
# Outputs go to examples/out/.
set -euo pipefail
cd "$(dirname "$0")/.."
CORE=${1:-examples/sapu_3x512.rcsnn}
OUT=examples/out
RCSNN=.venv/bin/rcsnn
mkdir -p "$OUT"
set -x
$RCSNN info "$CORE"
$RCSNN generate "$CORE" --prompt "The import statement " --length 200 --backend float
$RCSNN generate "$CORE" --prompt "The import statement " --length 200 --backend fixed
$RCSNN run "$CORE" --prompt "$(head -c 200 examples/prompt.txt)" --backend float -o "$OUT/raster_float.npz"
$RCSNN run "$CORE" --prompt "$(head -c 200 examples/prompt.txt)" --backend fixed -o "$OUT/raster_fixed.npz"
$RCSNN graph "$CORE" -o "$OUT/core.json"
$RCSNN graph "$CORE" -o "$OUT/core.graphml"
$RCSNN graph "$CORE" -o "$OUT/core.nir"
$RCSNN info "$OUT/core.nir" --dt "$(.venv/bin/python -c "from rcsnn.model.checkpoint import read_config; print(read_config('$CORE')['dt'])")" --reset zero
