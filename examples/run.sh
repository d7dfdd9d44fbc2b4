#!/usr/bin/env bash
# The main job on the bundled example core (3 x 512 neurons, one shared ternary T), end to end:
# inspect it, generate text on both references, record rasters, export the graph and NIR, write
# SPICE netlists and the digital core's Verilog, synthesise it for an ECP5-25F, and end with one
# verdict table: `rcsnn verify --backend all` (fixed point vs float64, SPICE open loop in ngspice,
# Amaranth, Verilator, Icarus, the synthesised gate-level netlist), exit status 0 only if all pass.
# Outputs go to examples/out/. STEPS sets the length of the hardware checks (default 20).
set -euo pipefail
cd "$(dirname "$0")/.."
CORE=${1:-examples/sapu_3x512.rcsnn}
STEPS=${STEPS:-20}
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
$RCSNN graph "$CORE" -o "$OUT/core.nir"
$RCSNN graph "$CORE" --after place --lanes 8 -o "$OUT/core_placed.json"
$RCSNN info "$OUT/core.nir" --dt 1e-3 --reset zero
$RCSNN netlist "$CORE" --prompt "$PROMPT" --steps "$STEPS" -o "$OUT/netlist"
$RCSNN verilog "$CORE" -o "$OUT/hdl"
$RCSNN synth "$OUT/hdl" --target ecp5-25f
$RCSNN verify "$CORE" --backend all --prompt "$PROMPT" --steps "$STEPS" --out "$OUT/verify"
