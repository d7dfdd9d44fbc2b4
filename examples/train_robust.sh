#!/usr/bin/env bash
# The robust example core, in two fine-tunes of examples/sapu_3x512.rcsnn (docs/training.md):
#   1. the hardware-aware terms: a margin penalty keeping membranes away from theta at the step
#      boundaries and noise matching the circuit's Monte Carlo model (150 steps);
#   2. the same terms with every membrane clamped to +-8 theta (--membrane-clamp 8: the saved core
#      carries the saturation bounds the circuit's clamps and the digital core implement; 6,000 steps),
#      saved in the fixed-point format Fv = 24, Fb = 20 (float and fixed-point generation agree; the
#      format enters only the evaluation, not the training).
# One torch thread, niced; progress goes to examples/out/train_robust*.log. Then the figures of docs/training.md.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p examples/out
RCSNN=.venv/bin/rcsnn
TERMS="--margin-penalty 30 --margin-width 0.05 --weight-noise 0.02 --membrane-noise 0.005"
nice $RCSNN finetune examples/sapu_3x512.rcsnn --threads 1 \
    --steps 150 --batch 16 --length 64 --lr 3e-4 --log-every 10 $TERMS \
    -o examples/out/robust_unclamped.rcsnn 2>&1 | tee examples/out/train_robust_1.log
nice $RCSNN finetune examples/out/robust_unclamped.rcsnn --threads 1 \
    --steps 6000 --batch 16 --length 64 --lr 5e-4 --log-every 200 $TERMS --membrane-clamp 8 \
    --fv 24 --fb 20 -o examples/sapu_3x512_robust.rcsnn 2>&1 | tee examples/out/train_robust_2.log
$RCSNN info examples/sapu_3x512_robust.rcsnn
.venv/bin/python examples/robust_figures.py margins --plot docs/training_margins.png
.venv/bin/python examples/robust_figures.py agreement
