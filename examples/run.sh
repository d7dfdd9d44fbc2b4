#!/usr/bin/env bash
# The main job on the bundled example core (3 x 512 neurons, one shared ternary T), end to end:
# inspect it, generate text on both references, record rasters, export the graph and NIR,
# write SPICE netlists and check them in ngspice spike for spike (open loop), emit the digital
# core's Verilog, check it bit for bit in Verilator, and synthesise it for an ECP5-25F.
# Outputs go to examples/out/. STEPS sets the length of the hardware checks (default 40).
set -euo pipefail
cd "$(dirname "$0")/.."
CORE=${1:-examples/sapu_3x512.rcsnn}
STEPS=${STEPS:-40}
OUT=examples/out
RCSNN=.venv/bin/rcsnn
PROMPT=$(cat examples/prompt.txt)
mkdir -p "$OUT"
set -x
$RCSNN info "$CORE"
$RCSNN generate "$CORE" --prompt "The import statement " --length 200 --backend float
$RCSNN generate "$CORE" --prompt "The import statement " --length 200 --backend fixed
$RCSNN run "$CORE" --prompt "$PROMPT" --backend float -o "$OUT/raster_float.npz"
$RCSNN run "$CORE" --prompt "$PROMPT" --backend fixed -o "$OUT/raster_fixed.npz"
$RCSNN graph "$CORE" -o "$OUT/core.json"
$RCSNN graph "$CORE" -o "$OUT/core.graphml"
$RCSNN graph "$CORE" -o "$OUT/core.nir"
$RCSNN graph "$CORE" --after place --lanes 8 -o "$OUT/core_placed.json"
$RCSNN info "$OUT/core.nir" --dt 1e-3 --reset zero
$RCSNN netlist "$CORE" --prompt "$PROMPT" --steps "$STEPS" -o "$OUT/netlist"
$RCSNN verify "$CORE" --backend spice --prompt "$PROMPT" --steps "$STEPS" --mode open --out "$OUT/verify-spice"
$RCSNN verilog "$CORE" -o "$OUT/hdl"
$RCSNN verify "$CORE" --backend verilator --prompt "$PROMPT" --steps 500 --out "$OUT/verify-verilator"
$RCSNN synth "$OUT/hdl" --target ecp5-25f
