"""The digital core on real text: bit-exactness, cycles per step, simulation and FPGA speed.

    python bench/bench_digital.py [--core examples/sapu_3x512.rcsnn] [--steps 10000] [--lanes 8]
                                  [--synth ecp5-25f ice40-up5k] [--out bench-out/digital]

* verifies the core (``rcsnn verify --backend verilator``, the same code) with the last ``--steps``
  characters of ``pydoc_data.topics`` (held-out text) as stimulus and runs it in Verilator: raster
  equal to the fixed-point reference?
* cycles per step (counted by the core) against the event lower bound
  ``(Σ fan-out of the previous step's spikes + N) / lanes``; Verilator simulated cycles/s;
* ``--synth``: LUT/FF/BRAM/DSP and Fmax per target (``rcsnn synth``), steps/s at Fmax;
* ``--core untrained``: an untrained, pruned, ternary 3 x 512 stand-in (same shape and sparsity);
* the PyTorch CPU model of the same core (embedding → logits, float32, no grad) at batch 1,
  time steps/s on 1 and 2 threads in the same run; the faster one is the baseline of the
  speed-up at Fmax.

Writes ``<out>/bench_digital.json``; exits 1 if the rasters differ.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path


def example_core(path: str):
    """``path`` loaded, or for ``untrained`` the paper-sized stand-in: an untrained 3 x 512 SpikingLM
    (seed 0) pruned to 93.6 % and made ternary, exported with Wv=24, Fv=12, Fb=14 (as bench_model.py)."""
    if path != "untrained":
        from rcsnn.frontends.load import load_core

        return load_core(path)
    import torch

    from rcsnn.ir.arrays import FixedFormat
    from rcsnn.model.corpus import Corpus, default_text
    from rcsnn.model.lm import SpikingLM

    torch.manual_seed(0)
    model = SpikingLM(Corpus.from_text(default_text()).vocab, group_size=512, taus=(1.0, 4.0, 16.0), embed=64)
    model.recurrent.prune_to(0.936)
    model.recurrent.ternary = True
    return model.to_graph(FixedFormat(24, 12, 14))


def torch_model(core):
    """The PyTorch ``SpikingLM`` carrying ``core``'s weights (shared ternary T, one group per timescale)."""
    import torch

    from rcsnn.model.lm import SpikingLM

    model = SpikingLM(core.frontend.vocab, group_size=core.groups[0].size, taus=[g.tau_steps for g in core.groups],
                      embed=core.frontend.embedding.shape[1], theta=core.groups[0].theta, reset=core.groups[0].reset)
    t = torch.from_numpy(core.matrices["T"].astype("float32"))
    with torch.no_grad():
        model.embedding.weight.copy_(torch.from_numpy(core.frontend.embedding))
        model.input.weight.copy_(torch.from_numpy(core.input_weight))
        model.input.bias.copy_(torch.from_numpy(core.bias))
        model.recurrent.latent.copy_(t * core.synapses[0].alpha)
        model.recurrent.mask.copy_(t != 0)
        model.readout.weight.copy_(torch.from_numpy(core.readout_weight))
        model.readout.bias.copy_(torch.from_numpy(core.readout_bias))
    model.recurrent.ternary = True
    return model.eval()


def torch_steps_per_second(core, text: str, threads: int, length: int = 512) -> float:
    """Batch-1 time steps/s of the PyTorch model on ``threads`` threads over ``length`` characters
    (best of three runs after a warm-up)."""
    import torch

    torch.set_num_threads(threads)
    model = torch_model(core)
    tokens = torch.from_numpy(core.frontend.encode(text[:length])).view(1, -1)
    best = float("inf")
    with torch.no_grad():
        model(tokens[:, :32])
        for _ in range(3):
            start = time.perf_counter()
            model(tokens)
            best = min(best, time.perf_counter() - start)
    return tokens.shape[1] / best


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--core", default="examples/sapu_3x512.rcsnn",
                        help="a core file, or 'untrained' for an untrained paper-sized stand-in")
    parser.add_argument("--steps", type=int, default=10000)
    parser.add_argument("--lanes", type=int, default=8)
    parser.add_argument("--synth", nargs="*", default=[], choices=["ecp5-25f", "ice40-up5k"])
    parser.add_argument("--lutram", action="store_true", help="neuron state in LUT RAM (rcsnn verilog --lutram)")
    parser.add_argument("--out", default="bench-out/digital")
    args = parser.parse_args()
    from rcsnn.digital.options import DigitalOptions
    from rcsnn.digital.synth import summary, synthesize
    from rcsnn.errors import RcsnnError
    from rcsnn.ir.stimulus import Stimulus
    from rcsnn.model.corpus import default_text
    from rcsnn.verify.digital import verify_digital
    from rcsnn.verify.report import Provenance, machine

    out = Path(args.out)
    graph = example_core(args.core)
    core = graph.arrays()
    text = default_text()[-args.steps:]
    stimulus = Stimulus(core.text_currents(text), f"the last {args.steps} characters of pydoc_data.topics", text)
    report = verify_digital(graph, stimulus, "verilator", DigitalOptions(lanes=args.lanes, lutram=args.lutram), out,
                            Provenance.of(args.core, stimulus))
    comparison = report.comparison
    result = {"core": args.core, "machine": machine(), "neurons": core.n_neurons, "steps": stimulus.steps,
              "lanes": args.lanes, "firing_rate": comparison.reference_spikes / (comparison.steps * comparison.neurons),
              "bit_exact": report.passed, "comparison": comparison.summary(), **report.figures,
              "verilator_cycles_per_second": report.figures["simulated_cycles_per_second"]}
    per_threads = {n: torch_steps_per_second(core, text, n) for n in (1, 2)}
    result["torch_batch1_steps_per_second_by_threads"] = per_threads
    result["torch_batch1_steps_per_second"] = max(per_threads.values())
    print(f"machine: {result['machine']['cpu']}, {result['machine']['cores']} cores")
    print(f"{core.n_neurons} neurons, {args.lanes} lanes, {stimulus.steps} steps of text, "
          f"firing rate {result['firing_rate']:.3f}")
    print(f"Verilator: {comparison.summary()}")
    print(f"cycles/step {result['cycles_per_step']:.1f}, event lower bound {result['lower_bound']:.1f}, "
          f"ratio {result['ratio']:.3f} (worst step {result['worst_step_ratio']:.3f})")
    print(f"Verilator {result['verilator_cycles_per_second'] / 1e6:.2f} M cycles/s; "
          "PyTorch CPU batch 1: " + ", ".join(f"{v:.0f} steps/s on {n} thread(s)" for n, v in per_threads.items()))
    result["synthesis"] = {}
    for target in args.synth:
        try:
            synthesis = synthesize(out / "digital-verilator", target)
        except RcsnnError as exc:
            print(f"{target}: {exc}")
            result["synthesis"][target] = {"error": str(exc)}
            continue
        steps_per_second = synthesis["fmax_mhz"] * 1e6 / result["cycles_per_step"]
        synthesis["steps_per_second_at_fmax"] = steps_per_second
        synthesis["speedup_vs_torch_batch1"] = steps_per_second / result["torch_batch1_steps_per_second"]
        result["synthesis"][target] = synthesis
        print(f"{summary(synthesis)}: {steps_per_second:.0f} steps/s at Fmax = "
              f"{synthesis['speedup_vs_torch_batch1']:.1f} x PyTorch batch 1")
    (out / "bench_digital.json").write_text(json.dumps(result, indent=1) + "\n")
    return 0 if report.passed else 1


if __name__ == "__main__":
    raise SystemExit(main())
