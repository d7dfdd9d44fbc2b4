"""Speed of the paper-sized spiking LM (3 × 512 neurons, embedding 64): training and inference.

    python bench/bench_model.py [--steps 5] [--length 128] [--threads 2]

* training: optimizer steps/s on batches of 32 × 128 characters (forward, BPTT,
  Adam), timed over ``--steps`` steps after one warm-up step;
* inference at batch 1 and 64, in time steps (characters per stream) per second
  over ``--length`` steps: the torch float32 model (embedding → logits, no grad)
  and the numpy references of its pruned ternary core (front-end currents + core,
  no readout): float64 ``simulate_float`` and fixed-point ``simulate_fixed``.

The weights are untrained (pruned to 93.6 % and made ternary for inference);
timings only, no asserts. ``--threads`` sets torch's and the BLAS thread count;
on a machine busy with another job use ``--threads 1`` (oversubscribed cores make
torch's spinning worker threads run many times slower).
"""

from __future__ import annotations

import argparse
import os
import time


def per_second(fn, count: int, warmup: int = 1) -> float:
    """``count`` divided by the wall time of one ``fn()`` call, after ``warmup`` untimed calls."""
    for _ in range(warmup):
        fn()
    start = time.perf_counter()
    fn()
    return count / (time.perf_counter() - start)


def training_rate(model, corpus, steps: int, batch: int = 32, length: int = 128) -> float:
    """Optimizer steps/s of truncated BPTT with the state carried across segments."""
    import torch
    import torch.nn.functional as F

    from rcsnn.model.corpus import StreamBatches

    batches = StreamBatches(corpus.train, batch, length)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    state = model.initial_state(batch)
    step = 0

    def run(count: int) -> None:
        nonlocal state, step
        for _ in range(count):
            inputs, targets, _ = batches(step)
            logits, state, *_ = model(torch.from_numpy(inputs), state)
            state = tuple(x.detach() for x in state)
            loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), torch.from_numpy(targets).reshape(-1))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            step += 1

    run(1)
    return per_second(lambda: run(steps), steps, warmup=0)


def inference_rates(model, core, batch: int, length: int) -> dict[str, float]:
    """Time steps/s of the torch model and the two numpy references on random tokens ``(batch, length)``."""
    import numpy as np
    import torch

    from rcsnn.ir.reference import simulate_fixed, simulate_float

    tokens = np.random.default_rng(0).integers(0, len(model.vocab), (batch, length))
    torch_tokens = torch.from_numpy(tokens)

    @torch.no_grad()
    def torch_forward():
        model(torch_tokens)

    return {
        "torch float32": per_second(torch_forward, length),
        "numpy float64": per_second(lambda: simulate_float(core, core.token_currents(tokens.T)), length),
        "numpy fixed": per_second(lambda: simulate_fixed(core, core.token_currents(tokens.T)), length),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=5, help="timed training steps (after one warm-up step)")
    parser.add_argument("--length", type=int, default=128, help="time steps per inference run")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(args.threads)  # read when numpy/torch load, hence the imports below
    import torch

    from rcsnn.ir.arrays import FixedFormat
    from rcsnn.model.corpus import Corpus, default_text
    from rcsnn.model.lm import SpikingLM

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    corpus = Corpus.from_text(default_text())
    model = SpikingLM(corpus.vocab, group_size=512, taus=(1.0, 4.0, 16.0), embed=64)
    print(f"3 x 512 spiking LM, {args.threads} threads")
    train_rate = training_rate(model, corpus, args.steps)
    print(f"training (batch 32 x 128): {train_rate:.2f} steps/s = {train_rate * 32 * 128:.0f} chars/s", flush=True)

    model.recurrent.prune_to(0.936)
    model.recurrent.ternary = True
    core = model.to_graph(FixedFormat()).arrays()
    print(f"\ninference ({args.length} steps)  {'batch 1':>10s} {'batch 64':>10s}   time steps/s")
    rates = {batch: inference_rates(model, core, batch, args.length) for batch in (1, 64)}
    for name in rates[1]:
        print(f"{name:24s} {rates[1][name]:10.1f} {rates[64][name]:10.1f}")


if __name__ == "__main__":
    main()
