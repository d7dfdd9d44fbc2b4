#!/usr/bin/env bash
# Regenerate the HDL of the example cores under hdl/ (byte-identical for the same core and rcsnn version),
# with ECP5 synthesis reports. The paper-sized core is done when examples/sapu_3x512.rcsnn exists.
set -euo pipefail
cd "$(dirname "$0")/.."
RCSNN=${RCSNN:-.venv/bin/rcsnn}
nice -n 19 "$RCSNN" verilog examples/small_3x32.rcsnn -o hdl/small_3x32 --lanes 4 --steps 32
nice -n 19 "$RCSNN" synth hdl/small_3x32 --target ecp5-25f
if [ -f examples/sapu_3x512.rcsnn ]; then
    nice -n 19 "$RCSNN" verilog examples/sapu_3x512.rcsnn -o hdl/sapu_3x512 --lanes 8 --steps 32
    nice -n 19 "$RCSNN" synth hdl/sapu_3x512 --target ecp5-25f
fi
