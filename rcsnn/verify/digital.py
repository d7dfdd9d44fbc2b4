"""``rcsnn verify --backend amaranth|verilator|icarus``: the core against the fixed-point reference, bit for bit.

On a mismatch: the first divergent (step, group, neuron), the reference and hardware membranes
there, and a VCD around it. Always: cycles per step against the event lower bound
(:mod:`rcsnn.digital.cycles`).
"""

from __future__ import annotations

from dataclasses import asdict, replace
from pathlib import Path

import numpy as np

from ..digital.cycles import cycle_report
from ..digital.emit import emit
from ..digital.layout import build_image, place
from ..digital.options import DigitalOptions
from ..digital.simulate import HardwareRun, run_icarus, run_pysim, run_verilator
from ..ir.graph import Graph
from ..ir.raster import Raster
from ..ir.reference import quantize_core, simulate_fixed
from ..ir.stimulus import Stimulus
from ..tools import version
from .compare import compare_rasters
from .report import Provenance, Report

__all__ = ["DIGITAL_BACKENDS", "verify_digital"]

DIGITAL_BACKENDS = ("amaranth", "verilator", "icarus")
_TOOLS = {"amaranth": (), "verilator": ("verilator",), "icarus": ("iverilog",)}


def _run(backend: str, graph: Graph, xq: np.ndarray, work: Path, membranes: bool, vcd_from: int | None) -> HardwareRun:
    image = build_image(graph)
    if backend == "amaranth":
        return run_pysim(image, xq, vcd=work / "rcsnn.vcd" if vcd_from is not None else None)
    emit(graph, work, xq)
    if backend == "verilator":
        return run_verilator(image, work, len(xq), membranes=membranes, vcd_from=vcd_from)
    return run_icarus(image, work, len(xq), membranes=membranes, vcd=vcd_from is not None)


def verify_digital(graph: Graph, stimulus: Stimulus, backend: str, options: DigitalOptions, out: Path,
                   provenance: Provenance) -> Report:
    """Run ``backend`` on the stimulus; the report passes if the rasters are bit-exact."""
    import amaranth

    placed = place(graph, options.lanes)
    xq = quantize_core(graph).quantize(stimulus.currents)
    reference = simulate_fixed(graph, xq)
    work = Path(out) / f"digital-{backend}"
    work.mkdir(parents=True, exist_ok=True)
    run = _run(backend, placed, xq, work, membranes=False, vcd_from=None)
    comparison = compare_rasters(graph, reference.spikes, run.spikes)
    cycles = cycle_report(graph, reference.spikes, run.cycles, options.lanes)
    rate = float(run.cycles.sum() / max(run.seconds, 1e-9))
    figures = {**cycles, "simulator_seconds": run.seconds, "simulated_cycles_per_second": rate}
    lines = [f"{cycles['cycles_per_step']:.1f} cycles/step, event lower bound {cycles['lower_bound']:.1f} "
             f"({options.lanes} lanes): ratio {cycles['ratio']:.3f}; {rate:.3g} cycles/s simulated"]
    files = []
    if not comparison.equal:
        f = comparison.first
        traced = _run(backend, placed, xq[: f.step + 1], work, membranes=True, vcd_from=max(0, f.step - 2))
        theta = quantize_core(graph).theta_q[f.neuron]
        before = reference.membranes[f.step - 1, f.neuron] if f.step else 0
        d = {"step": f.step, "group": f.group, "index": f.index, "neuron": f.neuron, "theta_q": int(theta),
             "reference_v_before": int(before), "reference_v": int(reference.membranes[f.step, f.neuron]),
             "hardware_v": int(traced.membranes[f.step, f.neuron]), "vcd": str(work / "rcsnn.vcd")}
        figures["divergence"] = d
        files.append(d["vcd"])
        lines.append(f"at step {f.step}, {f.group}[{f.index}] (global {f.neuron}): reference v {d['reference_v_before']} "
                     f"-> {d['reference_v']}, hardware v {d['hardware_v']}, theta_q {d['theta_q']}; waveform {d['vcd']}")
    tools = {"amaranth": amaranth.__version__, **{t: version(t) for t in _TOOLS[backend]}}
    provenance = replace(provenance, tools={**provenance.tools, **tools})
    raster = Raster.of(graph, run.spikes, run.membranes, "lsb", backend, asdict(provenance)).save(work / "raster.npz")
    report = Report(backend, "fixed-point reference", comparison.equal, comparison, lines, figures, provenance,
                    [*files, str(raster)])
    report.write(work)
    return report
