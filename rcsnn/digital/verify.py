"""``rcsnn verify --backend amaranth|verilator|icarus``: the core against the fixed-point reference, bit for bit.

On a mismatch: the first divergent (step, group, neuron), the reference and hardware membranes
there, and a VCD around it. Always: cycles per step against the event lower bound
``(Σ fan-out of the previous step's spikes + N) / lanes`` (a report in ``<out>/digital-<backend>/``).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..graph.core import Core
from ..model.reference import quantize_core, simulate_fixed
from ..verify.compare import compare_rasters
from .emit import emit
from .layout import build_image
from .simulate import HardwareRun, run_icarus, run_pysim, run_verilator

DEFAULT_LANES = 8


def fanout(core: Core) -> np.ndarray:
    """``(N,)`` synapses leaving each neuron (over all blocks; a shared T counts once per block using it)."""
    out = np.zeros(core.n_neurons, dtype=np.int64)
    offsets = core.offsets()
    for block in core.synapses:
        out[offsets[block.pre]] += np.count_nonzero(core.matrices[block.matrix], axis=0)
    return out


def lower_bound(core: Core, spikes: np.ndarray, lanes: int) -> np.ndarray:
    """Event lower bound of the cycles of each step: ``(Σ fan-out of the spikes of step t-1 + N) / lanes``."""
    events = np.concatenate([[0], spikes[:-1].astype(np.int64) @ fanout(core)])
    return (events + core.n_neurons) / lanes


def cycle_report(core: Core, spikes: np.ndarray, cycles: np.ndarray, lanes: int) -> dict:
    """Mean cycles per step, the mean lower bound and their ratio (steps after the first)."""
    bound = lower_bound(core, spikes, lanes)
    return {"lanes": lanes, "cycles_per_step": float(cycles.mean()), "lower_bound": float(bound.mean()),
            "ratio": float(cycles.sum() / bound.sum()), "worst_step_ratio": float((cycles / bound).max())}


def _run(backend: str, core: Core, image, xq: np.ndarray, work: Path, membranes: bool, vcd_from: int | None) -> HardwareRun:
    steps = len(xq)
    if backend == "amaranth":
        return run_pysim(image, xq, vcd=work / "rcsnn.vcd" if vcd_from is not None else None)
    emit(core, image, work, xq)
    if backend == "verilator":
        return run_verilator(image, work, steps, membranes=membranes, vcd_from=vcd_from)
    return run_icarus(image, work, steps, membranes=membranes, vcd=vcd_from is not None)


def verify_digital(core: Core, currents: np.ndarray, backend: str, args) -> int:
    """Run ``backend`` on ``currents`` (float, no bias) for ``args.steps`` steps; 0 if bit-exact, else 1."""
    lanes = getattr(args, "lanes", DEFAULT_LANES)
    image = build_image(core, lanes)
    xq = quantize_core(core).quantize(np.asarray(currents)[: args.steps])
    reference = simulate_fixed(core, xq)
    work = Path(args.out) / f"digital-{backend}"
    work.mkdir(parents=True, exist_ok=True)
    run = _run(backend, core, image, xq, work, membranes=False, vcd_from=None)
    comparison = compare_rasters(core, reference.spikes, run.spikes)
    cycles = cycle_report(core, reference.spikes, run.cycles, lanes)
    report = {"backend": backend, "steps": len(xq), "neurons": core.n_neurons, "equal": comparison.equal,
              "summary": comparison.summary(), "simulator_seconds": run.seconds,
              "simulated_cycles_per_second": float(run.cycles.sum() / max(run.seconds, 1e-9)), **cycles}
    print(f"{backend}: {comparison.summary()}")
    print(f"{backend}: {cycles['cycles_per_step']:.1f} cycles/step, event lower bound {cycles['lower_bound']:.1f} "
          f"({lanes} lanes): ratio {cycles['ratio']:.3f}; {report['simulated_cycles_per_second']:.3g} cycles/s simulated")
    if not comparison.equal:
        f = comparison.first
        traced = _run(backend, core, image, xq[: f.step + 1], work, membranes=True, vcd_from=max(0, f.step - 2))
        theta = quantize_core(core).theta_q[f.neuron]
        before = reference.membranes[f.step - 1, f.neuron] if f.step else 0
        report["divergence"] = {
            "step": f.step, "group": f.group, "neuron": f.index, "theta_q": int(theta),
            "reference_v_before": int(before), "reference_v": int(reference.membranes[f.step, f.neuron]),
            "hardware_v": int(traced.membranes[f.step, f.neuron]), "vcd": str(work / "rcsnn.vcd"),
        }
        d = report["divergence"]
        print(f"{backend}: at step {f.step}, {f.group}[{f.index}]: reference v {d['reference_v_before']} -> "
              f"{d['reference_v']}, hardware v {d['hardware_v']}, theta_q {d['theta_q']}; waveform {d['vcd']}")
    (work / "report.json").write_text(json.dumps(report, indent=1) + "\n")
    return 0 if comparison.equal else 1
