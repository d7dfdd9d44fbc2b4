"""The digital core on real text: bit-exactness, cycles per step, simulation and FPGA speed, lanes, the estimate.

    python bench/bench_digital.py [--core examples/sapu_3x512.rcsnn] [--steps 10000] [--lanes 8 [16 ...]]
                                  [--synth ecp5-25f ecp5-45f ecp5-85f ice40-up5k] [--out bench-out/digital]
    python bench/bench_digital.py --calibrate      # synthesise rcsnn.digital.estimate.CALIBRATION, fit, print

* per ``--lanes`` value: verifies the core (``rcsnn verify --backend verilator``, the same code) with the
  last ``--steps`` characters of ``pydoc_data.topics`` (held-out text) as stimulus: raster equal to the
  fixed-point reference? Cycles per step (counted by the core) against the event lower bound
  ``(Σ fan-out of the previous step's spikes + N) / lanes``;
* Verilator speed: the built harness run again on the same files (best of three), simulated cycles and
  steps per second of wall time and of CPU time (the CPU figure does not depend on other jobs);
* ``--reuse``: those two from an earlier run's ``<out>/lanes<L>/lanes.json`` (then only synthesis runs);
* ``--synth``: LUT/FF/BRAM/DSP and Fmax per target (``rcsnn synth`` of ``rcsnn verilog CORE --lanes L``
  in ``<out>/synth/<core>-l<L>``; a target already synthesised there is reused: delete it to redo),
  steps/s and synaptic operations/s at Fmax, resources per lane, and ``rcsnn estimate`` beside each
  figure with its error;
* ``--seeds N``: nextpnr places and routes each synthesised netlist again with seeds 2..N: Fmax is a
  distribution over placements (the same netlist spans ±12 % over five seeds), so the estimate's Fmax is
  also judged against the median of the N seeds;
* ``--core untrained``: an untrained, pruned, ternary 3 x 512 stand-in (same shape and sparsity);
* the PyTorch CPU model of the same core (embedding → logits, float32, no grad) at batch 1,
  time steps/s on 1 and 2 threads in the same run; the faster one is the baseline of the
  speed-up at Fmax.

Writes ``<out>/bench_digital.json``; exits 1 if the rasters differ. ``--calibrate`` synthesises the
calibration configurations of :mod:`rcsnn.digital.estimate` (ECP5-85F) and prints the least-squares
coefficients to paste into its ``COEFFICIENTS``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

ESTIMATED = ("LUT", "FF", "BRAM", "DSP", "fmax_mhz")


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


def verilator_speed(work: Path, steps: int, cycles: int, repeats: int = 3) -> dict:
    """The harness built in ``work`` run ``repeats`` times on its files: best cycles and steps per second of wall
    time and of CPU time (``rcsnn.tools.run``: nice 19, timeout from the cycle limit)."""
    from rcsnn.tools import SIM_TIMEOUT, run

    exe = str((work / "obj_dir" / "Vrcsnn_core").resolve())
    runs = [run([exe, f"+steps={steps}"], cwd=work, what="Verilator harness", timeout=SIM_TIMEOUT) for _ in range(repeats)]
    wall, cpu = min(r.seconds for r in runs), min(r.cpu_seconds for r in runs)
    return {"wall_seconds": wall, "cpu_seconds": cpu, "cycles_per_second_wall": cycles / wall,
            "cycles_per_second_cpu": cycles / cpu, "steps_per_second_wall": steps / wall,
            "steps_per_second_cpu": steps / cpu}


def design_dir(core_path: str, lanes: int, out: Path) -> Path:
    """``rcsnn verilog CORE --lanes L`` in ``<out>/synth/<core>-l<L>`` (kept if it exists)."""
    from rcsnn.cli.main import main as rcsnn

    directory = out / "synth" / f"{Path(core_path).stem}-l{lanes}"
    if not (directory / "design.json").exists():
        directory.parent.mkdir(parents=True, exist_ok=True)
        if rcsnn(["verilog", core_path, "-o", str(directory), "--lanes", str(lanes), "--steps", "16"]) != 0:
            raise SystemExit(f"rcsnn verilog {core_path} --lanes {lanes} failed")
    return directory


def synthesized(core_path: str, lanes: int, target: str, out: Path) -> dict:
    """The synthesis report of ``core_path`` at ``lanes`` on ``target`` (reused if present); errors as ``{"error"}``."""
    from rcsnn.digital.synth import synthesize
    from rcsnn.errors import RcsnnError

    directory = design_dir(core_path, lanes, out)
    report = directory / "synth" / target / "report.json"
    if report.exists() and json.loads(report.read_text()).get("fits"):
        return json.loads(report.read_text())
    try:
        return synthesize(directory, target)
    except RcsnnError as exc:
        return {"error": str(exc)}


def seed_fmax(core_path: str, lanes: int, target: str, out: Path, seeds: int) -> list[float]:
    """Fmax (MHz) of the synthesised netlist placed and routed with nextpnr seeds 1..``seeds`` (seed 1: ``rcsnn synth``'s
    own run; the others in ``pnr_seed<S>.json`` beside it, reused if present)."""
    from rcsnn.digital.synth import FREQUENCY_MHZ, TARGETS
    from rcsnn.tools import SYNTH_TIMEOUT, run

    work = design_dir(core_path, lanes, out) / "synth" / target
    fmax = [json.loads((work / "report.json").read_text())["fmax_mhz"]]
    for seed in range(2, seeds + 1):
        pnr = work / f"pnr_seed{seed}.json"
        if not pnr.exists():
            run([TARGETS[target].nextpnr, *TARGETS[target].device, "--json", "netlist.json", "--freq", str(FREQUENCY_MHZ),
                 "--timing-allow-fail", "--report", pnr.name, "--seed", str(seed)], cwd=work,
                what=f"nextpnr seed {seed}", timeout=SYNTH_TIMEOUT)
        fmax.append(min(v["achieved"] for v in json.loads(pnr.read_text())["fmax"].values()))
    return fmax


def estimated(graph, lanes: int, target: str) -> dict:
    """``rcsnn estimate``'s figures for ``graph`` at ``lanes`` on ``target``."""
    from rcsnn.digital.estimate import chain_bits, estimate
    from rcsnn.digital.layout import build_image, place

    image = build_image(place(graph, lanes))
    e = estimate(image, target, chain_bits(image))
    return {k: getattr(e, k) for k in ESTIMATED}


def calibrate(out: Path) -> None:
    """Synthesise every configuration of ``CALIBRATION`` on ECP5-85F, fit the estimate, print the coefficients."""
    from rcsnn.digital.estimate import CALIBRATION, features, fit
    from rcsnn.digital.layout import build_image, place
    from rcsnn.frontends.load import load_core

    samples = []
    for core_path, lanes in CALIBRATION:
        report = synthesized(core_path, lanes, "ecp5-85f", out)
        if "error" in report:
            raise SystemExit(f"{core_path} at {lanes} lanes: {report['error']}")
        samples.append((features(build_image(place(load_core(core_path), lanes))), report))
        print(f"{core_path}, {lanes} lanes: {summary_line(report)}")
    print("COEFFICIENTS = " + repr({k: tuple(round(c, 6) for c in v) for k, v in fit(samples).items()}))


def summary_line(report: dict) -> str:
    s = report["synthesis"]
    return f"LUT {s['LUT']}, FF {s['FF']}, BRAM {s['BRAM']}, DSP {s['DSP']}, Fmax {report['fmax_mhz']:.1f} MHz"


def verified(graph, core, args, lanes: int, out: Path) -> dict:
    """``rcsnn verify --backend verilator`` at ``lanes`` on the last ``--steps`` characters, and the harness's speed."""
    import numpy as np

    from rcsnn.digital.cycles import fanout
    from rcsnn.digital.options import DigitalOptions
    from rcsnn.ir.stimulus import Stimulus
    from rcsnn.model.corpus import default_text
    from rcsnn.verify.digital import verify_digital
    from rcsnn.verify.report import Provenance

    text = default_text()[-args.steps:]
    stimulus = Stimulus(core.text_currents(text), f"the last {args.steps} characters of pydoc_data.topics", text)
    report = verify_digital(graph, stimulus, "verilator", DigitalOptions(lanes=lanes, lutram=args.lutram), out,
                            Provenance.of(args.core, stimulus))
    comparison = report.comparison
    raster = np.load(out / "digital-verilator" / "raster.npz")["spikes"]
    cycles = int(round(report.figures["cycles_per_step"] * stimulus.steps))
    print(f"--- {lanes} lanes: Verilator {comparison.summary()}")
    return {"lanes": lanes, "bit_exact": report.passed, "comparison": comparison.summary(), **report.figures,
            "firing_rate": comparison.reference_spikes / (comparison.steps * comparison.neurons),
            "synaptic_ops_per_step": float((raster[:-1].astype(np.int64) @ fanout(core)).sum() / len(raster)),
            "verilator": verilator_speed(out / "digital-verilator", stimulus.steps, cycles)}


def lanes_run(graph, core, args, lanes: int, torch_rate: float) -> dict:
    """Verify and time (``--reuse``: an earlier run's figures) and (``--synth``) synthesise and estimate the core at
    ``lanes``; prints a block of lines."""
    from rcsnn.digital.synth import summary

    out = Path(args.out) / f"lanes{lanes}"
    saved = out / "lanes.json"
    if args.reuse and saved.exists():
        result = json.loads(saved.read_text())
        print(f"--- {lanes} lanes: reused {saved} ({result['comparison']})")
    else:
        result = verified(graph, core, args, lanes, out)
        saved.write_text(json.dumps(result, indent=1) + "\n")
    speed, sops = result["verilator"], result["synaptic_ops_per_step"]
    print(f"cycles/step {result['cycles_per_step']:.1f}, event lower bound {result['lower_bound']:.1f}, "
          f"ratio {result['ratio']:.3f} (worst step {result['worst_step_ratio']:.3f}); "
          f"{sops:.0f} synaptic operations/step")
    print(f"Verilator: {speed['cycles_per_second_wall'] / 1e6:.2f} M cycles/s = {speed['steps_per_second_wall']:.0f} "
          f"steps/s wall, {speed['cycles_per_second_cpu'] / 1e6:.2f} M cycles/s = {speed['steps_per_second_cpu']:.0f} "
          f"steps/s CPU; PyTorch CPU batch 1: {torch_rate:.0f} steps/s")
    result["synthesis"] = {}
    for target in args.synth:
        synthesis = synthesized(args.core, lanes, target, Path(args.out)) if args.core != "untrained" else {
            "error": "synthesis of the untrained stand-in: use the existing digital-verilator directory"}
        if "error" in synthesis:
            print(f"{target}: {synthesis['error']}")
            result["synthesis"][target] = synthesis
            continue
        rate = synthesis["fmax_mhz"] * 1e6 / result["cycles_per_step"]
        synthesis.update(steps_per_second_at_fmax=rate, synaptic_ops_per_second_at_fmax=rate * sops,
                         speedup_vs_torch_batch1=rate / torch_rate,
                         per_lane={k: v / lanes for k, v in synthesis["synthesis"].items()})
        if target.startswith("ecp5"):
            est = estimated(graph, lanes, target)
            real = {**synthesis["synthesis"], "fmax_mhz": synthesis["fmax_mhz"]}
            synthesis["estimate"] = est
            synthesis["estimate_error"] = {k: est[k] / real[k] - 1 if real[k] else float(est[k] != 0) for k in est}
            print(f"{target} estimate: " + ", ".join(f"{k} {est[k]:.0f} ({synthesis['estimate_error'][k]:+.1%})"
                                                     for k in ESTIMATED))
            if args.seeds > 1:
                fmax = seed_fmax(args.core, lanes, target, Path(args.out), args.seeds)
                median = float(statistics.median(fmax))
                synthesis.update(fmax_by_seed=fmax, fmax_median=median, fmax_median_error=est["fmax_mhz"] / median - 1)
                print(f"{target} Fmax over seeds 1..{args.seeds}: " + ", ".join(f"{f:.1f}" for f in fmax)
                      + f" MHz; median {median:.1f}, range {min(fmax) / median - 1:+.1%} .. {max(fmax) / median - 1:+.1%};"
                      f" estimate {est['fmax_mhz']:.1f} ({synthesis['fmax_median_error']:+.1%} of the median)")
        result["synthesis"][target] = synthesis
        per_lane = ", ".join(f"{k} {v:.1f}" for k, v in synthesis["per_lane"].items())
        print(f"{summary(synthesis)}: {rate:.0f} steps/s, {rate * sops / 1e6:.1f} M synaptic ops/s at Fmax = "
              f"{synthesis['speedup_vs_torch_batch1']:.1f} x PyTorch batch 1; per lane: {per_lane}")
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--core", default="examples/sapu_3x512.rcsnn",
                        help="a core file, or 'untrained' for an untrained paper-sized stand-in")
    parser.add_argument("--steps", type=int, default=10000)
    parser.add_argument("--lanes", type=int, nargs="+", default=[8])
    parser.add_argument("--synth", nargs="*", default=[], choices=["ecp5-25f", "ecp5-45f", "ecp5-85f", "ice40-up5k"])
    parser.add_argument("--lutram", action="store_true", help="neuron state in LUT RAM (rcsnn verilog --lutram)")
    parser.add_argument("--calibrate", action="store_true", help="fit the estimate's coefficients (see above)")
    parser.add_argument("--reuse", action="store_true",
                        help="reuse the verification and Verilator figures of an earlier run (<out>/lanes<L>/lanes.json)")
    parser.add_argument("--seeds", type=int, default=1,
                        help="--synth: also place and route with nextpnr seeds 2..N and judge Fmax against the median")
    parser.add_argument("--out", default="bench-out/digital")
    args = parser.parse_args()
    from rcsnn.verify.report import machine

    out = Path(args.out)
    if args.calibrate:
        calibrate(out)
        return 0
    graph = example_core(args.core)
    core = graph.arrays()
    text = default_text_tail(args.steps)
    per_threads = {n: torch_steps_per_second(core, text, n) for n in (1, 2)}
    torch_rate = max(per_threads.values())
    result = {"core": args.core, "machine": machine(), "neurons": core.n_neurons, "steps": args.steps,
              "torch_batch1_steps_per_second_by_threads": per_threads, "torch_batch1_steps_per_second": torch_rate}
    print(f"machine: {result['machine']['cpu']}, {result['machine']['cores']} cores; {core.n_neurons} neurons, "
          f"{args.steps} steps of text; PyTorch CPU batch 1: "
          + ", ".join(f"{v:.0f} steps/s on {n} thread(s)" for n, v in per_threads.items()))
    result["by_lanes"] = [lanes_run(graph, core, args, lanes, torch_rate) for lanes in args.lanes]
    out.mkdir(parents=True, exist_ok=True)
    (out / "bench_digital.json").write_text(json.dumps(result, indent=1) + "\n")
    return 0 if all(r["bit_exact"] for r in result["by_lanes"]) else 1


def default_text_tail(steps: int) -> str:
    from rcsnn.model.corpus import default_text

    return default_text()[-steps:]


if __name__ == "__main__":
    raise SystemExit(main())
