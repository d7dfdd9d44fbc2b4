#!/usr/bin/env bash
# The robust example core: examples/sapu_3x512.rcsnn fine-tuned with the hardware-aware terms
# (docs/training.md): a margin penalty keeping membranes away from theta at the step boundaries,
# a membrane-range penalty, and noise matching the circuit's Monte Carlo model. One torch thread,
# niced; progress goes to examples/out/train_robust.log. Then the figures of docs/training.md.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p examples/out
RCSNN=.venv/bin/rcsnn
nice $RCSNN finetune examples/sapu_3x512.rcsnn --threads 1 \
    --steps 150 --batch 16 --length 64 --lr 3e-4 --log-every 10 \
    --margin-penalty 30 --margin-width 0.05 --weight-noise 0.02 --membrane-noise 0.005 \
    -o examples/sapu_3x512_robust.rcsnn 2>&1 | tee examples/out/train_robust.log
$RCSNN info examples/sapu_3x512_robust.rcsnn
.venv/bin/python examples/robust_figures.py margins --plot docs/training_margins.png
.venv/bin/python examples/robust_figures.py agreement
