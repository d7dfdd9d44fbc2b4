#!/usr/bin/env bash
# The robust example core (docs/training.md), in five runs:
#   1. the example's training (rcsnn train's defaults: 1000 float, 700 prune, 700 ternary steps) with a
#      margin penalty keeping membranes away from theta at the step boundaries from the first step
#      (about 32 min on one thread);
#   2. a fine-tune of it with the same term and every membrane clamped to +-8 theta (--membrane-clamp 8:
#      the saved core carries the saturation bounds the circuit's clamps and the digital core implement;
#      6,000 steps, about 16 min), saved in the fixed-point format Fv = 24, Fb = 20 (float and fixed-point
#      generation agree; the format enters only the evaluation, not the training);
#   3.-5. three fine-tunes of 3,000 steps (about 9 min each) that widen the margin band to 0.2 and 0.5 theta,
#      then weigh it more: a wide band is what buys Monte Carlo agreement (a narrow one only thins the density
#      at theta).
# One torch thread, niced; progress goes to examples/out/train_robust*.log. Then the figures of docs/training.md.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p examples/out
RCSNN=.venv/bin/rcsnn
FORMAT="--membrane-clamp 8 --fv 24 --fb 20"
nice $RCSNN train --threads 1 --log-every 100 --margin-penalty 30 --margin-width 0.05 \
    -o examples/out/robust_1.rcsnn 2>&1 | tee examples/out/train_robust_1.log
nice $RCSNN finetune examples/out/robust_1.rcsnn --threads 1 --steps 6000 --batch 16 --length 64 --lr 5e-4 \
    --log-every 250 --margin-penalty 30 --margin-width 0.05 $FORMAT \
    -o examples/out/robust_2.rcsnn 2>&1 | tee examples/out/train_robust_2.log
run=2
for margin in "30 0.2" "30 0.5" "100 0.5"; do
    set -- $margin
    nice $RCSNN finetune examples/out/robust_$run.rcsnn --threads 1 --steps 3000 --batch 16 --length 64 --lr 3e-4 \
        --log-every 500 --margin-penalty "$1" --margin-width "$2" $FORMAT \
        -o examples/out/robust_$((run + 1)).rcsnn 2>&1 | tee examples/out/train_robust_$((run + 1)).log
    run=$((run + 1))
done
cp examples/out/robust_$run.rcsnn examples/sapu_3x512_robust.rcsnn
$RCSNN info examples/sapu_3x512_robust.rcsnn
.venv/bin/python examples/robust_figures.py margins --plot docs/training_margins.png
.venv/bin/python examples/robust_figures.py agreement
