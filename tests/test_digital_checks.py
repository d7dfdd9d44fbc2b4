"""Checks of the digital checks: negative controls, cycle limits, four-state outputs, gate level, ``--hdl``,
the hardware generating text, and the paper-sized core in Verilator (CI short form).

Every negative control is a real, deliberately broken core run in the real simulator (no mock):
one synapse's sign flipped in the memory image, one spike masked at the ``spikes`` port, ``done``
never raised, an output driven X. Builds are shared between tests where the Verilog is the same
(module-scoped directories), to keep the suite fast.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import re
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import EXAMPLE_CHECKPOINT, SMALL_CHECKPOINT, random_graph
from faulty_cores import FaultyCore, drive_x, slot_of, weight_flip

from rcsnn.cli import main
from rcsnn.cli.verify import BACKENDS
from rcsnn.digital.cycles import cycle_limit, step_cycle_bound, wall_timeout
from rcsnn.digital.emit import write_core
from rcsnn.digital.layout import build_image, place
from rcsnn.digital.options import CheckOptions, DigitalOptions
from rcsnn.digital.simulate import run_pysim
from rcsnn.digital.stream import HdlStepper
from rcsnn.errors import RcsnnError
from rcsnn.frontends.load import load_core
from rcsnn.ir.graph import Graph
from rcsnn.ir.reference import quantize_core, simulate_fixed
from rcsnn.ir.stimulus import Stimulus
from rcsnn.tools import Session, find
from rcsnn.verify.compare import compare_rasters
from rcsnn.verify.digital import check_design, verify_digital
from rcsnn.verify.report import Provenance

LANES = 4
STEPS = 24  # steps of the negative controls
DROP_STEP = 6  # the faulty core masks one spike of this step
STALL = STEPS + 2  # ... and never raises done again from this step on
TEXT = "The quick brown fox jumps over the lazy dog; def f(x): return x"
HDL = ("verilator", "icarus")
ALL = ("amaranth", *HDL)


@pytest.fixture(scope="module")
def graph() -> Graph:
    return load_core(SMALL_CHECKPOINT)


@pytest.fixture(scope="module")
def image(graph):
    return build_image(place(graph, LANES))


@pytest.fixture(scope="module")
def stimulus(graph) -> Stimulus:
    return Stimulus.from_prompt(graph, TEXT).first(STALL + 1)


@pytest.fixture(scope="module")
def reference(graph, stimulus):
    return simulate_fixed(graph, quantize_core(graph).quantize(stimulus.currents))


@pytest.fixture(scope="module")
def design(tmp_path_factory) -> Path:
    """The small core as ``rcsnn verilog`` writes it (4 lanes)."""
    out = tmp_path_factory.mktemp("design") / "small"
    assert main(["verilog", str(SMALL_CHECKPOINT), "-o", str(out), "--lanes", str(LANES), "--steps", "8"]) == 0
    return out


@pytest.fixture(scope="module")
def builds(tmp_path_factory) -> Path:
    """``--out`` shared by the runs of the unmodified Verilog (one Verilator build for all of them)."""
    return tmp_path_factory.mktemp("builds")


def copy_design(design: Path, to: Path) -> Path:
    shutil.copytree(design, to)
    return to


def verify(graph, stimulus, backend, out, steps=STEPS, hdl=None, lanes=LANES):
    stim = stimulus.first(steps)
    return verify_digital(graph, stim, backend, DigitalOptions(lanes=lanes), out, Provenance.of(SMALL_CHECKPOINT, stim),
                          CheckOptions(hdl=hdl, trust_edits=True))


# ---------------------------------------------------------------------------------------------------------------
# the positive control: the unedited core passes


@pytest.mark.parametrize("backend", HDL)
def test_unedited_design_passes(backend, graph, stimulus, design, builds):
    report = verify(graph, stimulus, backend, builds, hdl=design)
    assert report.passed and report.comparison.steps == STEPS and report.comparison.reference_spikes > 500
    assert report.figures["lower_bound"] <= report.figures["cycles_per_step"] < report.figures["cycle_limit_per_step"]


# ---------------------------------------------------------------------------------------------------------------
# negative control 1: one weight flipped in the memory image


@pytest.fixture(scope="module")
def flip(graph, image, stimulus, reference):
    """The first stored synapse (lane 0 up) whose sign flip changes the raster within STEPS steps; the image with
    it flipped; and the first divergence the fixed-point reference predicts for that flip."""
    core = graph.arrays()
    (name, matrix), = core.matrices.items()  # the small core: one shared T
    xq = quantize_core(graph).quantize(stimulus.currents[:STEPS])
    for lane in range(LANES):
        for entry in range(len(image.entries[lane])):
            flipped, post, pre = weight_flip(image, lane, entry)
            changed = matrix.copy()
            assert changed[post, pre] != 0
            changed[post, pre] = -changed[post, pre]
            broken = Graph.from_arrays(dataclasses.replace(core, matrices={name: changed}))
            comparison = compare_rasters(graph, reference.spikes[:STEPS], simulate_fixed(broken, xq).spikes)
            if not comparison.equal:
                return {"image": flipped, "lane": lane, "entry": entry, "first": comparison.first,
                        "mismatches": comparison.mismatches}
    pytest.fail("no single sign flip changes the small core's raster")


@pytest.mark.parametrize("backend", ALL)
def test_a_flipped_weight_fails_verify_at_the_predicted_spike(backend, graph, image, stimulus, design, builds, flip,
                                                              monkeypatch, tmp_path):
    if backend == "amaranth":
        monkeypatch.setattr("rcsnn.verify.digital.build_image", lambda placed: flip["image"])
        report = verify(graph, stimulus, backend, tmp_path)
    else:
        hdl = copy_design(design, tmp_path / "hdl")
        path = hdl / "mem" / f"lane{flip['lane']}_entries.hex"
        lines = path.read_text().split("\n")
        lines[flip["entry"]] = f"{flip['image'].entries[flip['lane']][flip['entry']]:0{len(lines[flip['entry']])}x}"
        path.write_text("\n".join(lines))
        report = verify(graph, stimulus, backend, builds, hdl=hdl)
    assert not report.passed
    assert report.comparison.first == flip["first"]  # the hardware = the reference with that synapse flipped
    assert report.comparison.mismatches == flip["mismatches"]
    assert report.figures["divergence"]["step"] == flip["first"].step
    assert any(f"at step {flip['first'].step}, {flip['first'].group}[{flip['first'].index}]" in line
               for line in report.lines)


# ---------------------------------------------------------------------------------------------------------------
# negative control 2: one spike dropped; robustness: a core that never raises done


@pytest.fixture(scope="module")
def dropped(image, reference):
    """The spike the faulty core drops: the first neuron of group 1 that fires at DROP_STEP."""
    first = int(np.flatnonzero(reference.spikes[DROP_STEP, 32:])[0]) + 32
    return first, slot_of(image, first)


def faulty(image, dropped):
    word, lane = dropped[1]
    return FaultyCore(image, drop=(DROP_STEP, word, lane), stall_from=STALL)


@pytest.fixture(scope="module")
def faulty_design(design, image, dropped, tmp_path_factory) -> Path:
    """The design directory with the faulty core's Verilog (a hand-edited directory, as far as verify knows)."""
    out = copy_design(design, tmp_path_factory.mktemp("faulty") / "hdl")
    write_core(faulty(image, dropped), out)
    return out


@pytest.fixture(scope="module")
def faulty_out(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("faulty-out")


@pytest.mark.parametrize("backend", ALL)
def test_one_dropped_spike_fails_verify_naming_it(backend, graph, image, stimulus, dropped, faulty_design, faulty_out,
                                                  monkeypatch, tmp_path):
    if backend == "amaranth":
        monkeypatch.setattr("rcsnn.digital.simulate.NeuromorphicCore", lambda im, trace: faulty(im, dropped))
        report = verify(graph, stimulus, backend, tmp_path)
    else:
        report = verify(graph, stimulus, backend, faulty_out, hdl=faulty_design)
    neuron = dropped[0]
    assert not report.passed
    assert report.comparison.mismatches == 1  # exactly the one spike, nothing else
    first = report.comparison.first
    assert (first.step, first.neuron, first.group, first.index) == (DROP_STEP, neuron, "g1", neuron - 32)
    assert report.comparison.reference_spikes - report.comparison.backend_spikes == 1


@pytest.mark.parametrize("backend", ALL)
def test_a_core_that_never_raises_done_is_an_error_naming_the_step(backend, graph, image, stimulus, dropped,
                                                                   faulty_design, faulty_out, monkeypatch, tmp_path):
    start = time.monotonic()
    with pytest.raises(RcsnnError, match=rf"step {STALL}: the core did not raise done within {cycle_limit(image)} "
                                         r"cycles \(cycle limit\)$") as caught:
        if backend == "amaranth":
            monkeypatch.setattr("rcsnn.digital.simulate.NeuromorphicCore", lambda im, trace: faulty(im, dropped))
            verify(graph, stimulus, backend, tmp_path, steps=STALL + 1)
        else:
            verify(graph, stimulus, backend, faulty_out, steps=STALL + 1, hdl=faulty_design)
    assert "\n" not in str(caught.value)  # one line, naming the step (not the wall timeout's "timed out")
    assert time.monotonic() - start < 300  # seconds: the build is shared with the previous test


def test_cycle_limit_holds_when_every_neuron_fires_every_step():
    """The bound the limit is built on is an upper bound: a core firing everywhere stays below it."""
    for lanes in (1, 3):
        graph = random_graph(1, sizes=(12, 12), resets=("zero", "subtract"), density=0.9)
        image = build_image(place(graph, lanes))
        q = quantize_core(graph)
        xq = np.full((5, image.slots.n_neurons), int(q.theta_q.max()) * 50, dtype=np.int64)
        assert simulate_fixed(graph, xq).spikes[1:].all()
        cycles = run_pysim(image, xq).cycles
        assert cycles[1:].max() <= step_cycle_bound(image) < cycle_limit(image)
        assert cycles[1:].max() > 0.5 * step_cycle_bound(image)  # and not a vacuous one
        assert wall_timeout(image, 100, "verilator") > wall_timeout(image, 10, "verilator") > 0


# ---------------------------------------------------------------------------------------------------------------
# four-state outputs (Icarus)


def test_an_x_on_an_output_is_an_error_in_icarus(graph, image, stimulus, reference, design, tmp_path):
    hdl = copy_design(design, tmp_path / "hdl")
    (hdl / "rcsnn_core.v").write_text(drive_x((hdl / "rcsnn_core.v").read_text()))
    with pytest.raises(RcsnnError, match=r"^Icarus: step (\d+): output spikes\.payload is X/Z \(.*\)$") as caught:
        verify(graph, stimulus, "icarus", tmp_path / "out", hdl=hdl)
    step = int(re.search(r"step (\d+)", str(caught.value)).group(1))
    lane0 = image.slots.neurons()[:, 0]
    fires = reference.spikes[:, lane0[lane0 >= 0]].any(axis=1)
    assert step <= int(np.flatnonzero(fires)[0])  # at the latest when lane 0 first fires


# ---------------------------------------------------------------------------------------------------------------
# gate level


def test_gate_level_netlist_is_bit_exact(graph, tmp_path, capsys):
    assert BACKENDS.index("gate") > BACKENDS.index("icarus")  # --backend all runs it after the others
    code = main(["verify", str(SMALL_CHECKPOINT), "--backend", "gate", "--steps", "30", "--gate-steps", "20",
                 "--lanes", str(LANES), "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert code == 0, out
    report = json.loads((tmp_path / "digital-gate" / "report.json").read_text())
    assert report["verdict"] == "PASS" and report["comparison"]["steps"] == 20
    assert report["comparison"]["reference_spikes"] > 100
    assert "the first 20 of 30 steps" in out
    netlist = (tmp_path / "digital-gate" / "gate" / "rcsnn_gate.v").read_text()
    assert "MULT18X18D" in netlist and "TRELLIS_FF" in netlist and "LUT4" in netlist  # cells, not RTL
    assert "module DP16KD" not in (tmp_path / "digital-gate" / "gate" / "models" / "cells_sim.v").read_text()


@pytest.mark.slow
def test_gate_level_netlist_with_block_ram_is_bit_exact(tmp_path, capsys):
    """The example core synthesised with block RAM (DP16KD in 36-bit pseudo-dual-port and 18/9/4-bit modes,
    rcsnn's model) runs bit-exact from the INITVAL contents (+preload); ~2 min of CPU."""
    code = main(["verify", str(EXAMPLE_CHECKPOINT), "--backend", "gate", "--steps", "4", "--gate-steps", "1",
                 "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert code == 0, out
    report = json.loads((tmp_path / "digital-gate" / "report.json").read_text())
    assert report["verdict"] == "PASS" and report["comparison"]["reference_spikes"] > 0
    netlist = (tmp_path / "digital-gate" / "gate" / "rcsnn_gate.v").read_text()
    assert "DP16KD #(" in netlist and ".DATA_WIDTH_A(32'd36)" in netlist


# ---------------------------------------------------------------------------------------------------------------
# --hdl DIR: verify what the user has


def test_hdl_dir_must_match_the_core(graph, stimulus, design, tmp_path):
    with pytest.raises(RcsnnError, match=r"design.json: lanes = 4 does not match CORE \(8\)"):
        verify(graph, stimulus, "icarus", tmp_path, hdl=design, lanes=8)
    other = random_graph(3, sizes=(32, 32, 32), resets=("zero",) * 3)
    with pytest.raises(RcsnnError, match=r"design.json: \w+ = .* does not match CORE"):
        check_design(place(other, LANES), design, trust_edits=True)
    with pytest.raises(RcsnnError, match=r"--hdl: .*verilator or icarus only, not amaranth"):
        verify(graph, stimulus, "amaranth", tmp_path, hdl=design)


def test_hdl_dir_passes_unedited_and_runs_its_own_files(graph, stimulus, design, builds, tmp_path, capsys):
    """Through the command line: the lanes come from DIR's design.json; the stimulus is the one asked for."""
    code = main(["verify", str(SMALL_CHECKPOINT), "--backend", "icarus", "--hdl", str(design), "--prompt", TEXT,
                 "--steps", "40", "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert code == 0, out
    report = json.loads((tmp_path / "digital-icarus" / "report.json").read_text())
    assert report["verdict"] == "PASS" and report["comparison"]["steps"] == 40  # not the 8 steps DIR was written with
    assert report["figures"]["hdl"] == str(design) and report["figures"]["lanes"] == LANES


# ---------------------------------------------------------------------------------------------------------------
# lanes = 1


def test_one_lane_core_has_no_empty_vectors_and_lints(tmp_path):
    out = tmp_path / "one"
    assert main(["verilog", str(SMALL_CHECKPOINT), "-o", str(out), "--lanes", "1", "--steps", "4"]) == 0
    verilog = (out / "rcsnn_core.v").read_text()
    assert "[-1:0]" not in verilog
    import subprocess

    proc = subprocess.run([find("verilator"), "--lint-only", "-Wno-WIDTH", "rcsnn_core.v"], cwd=out,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr


# ---------------------------------------------------------------------------------------------------------------
# the hardware generates text


def generate(backend, temperature, build_dir, capsys, length=100):
    args = ["generate", str(SMALL_CHECKPOINT), "--prompt", "def f(x):\n    return", "--length", str(length),
            "--backend", backend, "--temperature", str(temperature), "--seed", "7", "--lanes", str(LANES), "--quiet"]
    code = main(args + (["--build-dir", str(build_dir)] if build_dir else []))
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return captured.out


@pytest.mark.parametrize("temperature", [0, 0.8])
@pytest.mark.parametrize("backend", HDL)
def test_hdl_generates_the_same_text_as_the_fixed_point_reference(backend, temperature, builds, capsys):
    fixed = generate("fixed", temperature, None, capsys)
    hardware = generate(backend, temperature, builds / f"digital-{backend}", capsys)
    assert hardware == fixed
    assert len(set(fixed[len("def f(x):\n    return"):])) > (1 if temperature else 0)


def test_stepper_process_ends_with_the_block_and_on_an_error(graph, image, tmp_path):
    xq = quantize_core(graph).quantize(Stimulus.from_prompt(graph, "hello").currents)
    with HdlStepper(graph, "icarus", LANES, tmp_path) as stepper:
        pid = stepper.session.proc.pid
        spikes = np.stack([stepper.step(x) for x in xq])
        assert np.array_equal(spikes, simulate_fixed(graph, xq).spikes)
        assert len(stepper.cycles) == len(xq) and min(stepper.cycles) > 0
    assert stepper.session is None
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    with contextlib.ExitStack() as stack:
        stepper = stack.enter_context(HdlStepper(graph, "icarus", LANES, tmp_path))
        pid = stepper.session.proc.pid
        with pytest.raises(RcsnnError, match=r"^Icarus"):  # the bench's ERROR: line, or its exit after it
            stepper.session.send("zz\n" * image.slots.n_words, 10)
            stepper.step(xq[0])
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_session_times_out_and_kills_the_tool():
    with Session(["sh", "-c", "read line; sleep 30"], what="sleeper") as session:
        pid = session.proc.pid
        session.send("go\n", 5)
        start = time.monotonic()
        with pytest.raises(RcsnnError, match=r"^sleeper: timed out after 0\.5 s waiting for its output"):
            session.readline(0.5)
        assert time.monotonic() - start < 5
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    with pytest.raises(RcsnnError, match=r"exited \(status 3\).*oops"), \
            Session(["sh", "-c", "echo oops >&2; exit 3"], what="failing") as session:
        session.readline(10)


@pytest.mark.slow
@pytest.mark.parametrize("temperature", [0, 0.8])
def test_example_core_generates_500_characters_in_verilator_like_fixed(temperature, tmp_path_factory, capsys):
    if not EXAMPLE_CHECKPOINT.exists():
        pytest.skip(f"{EXAMPLE_CHECKPOINT} not trained yet")
    build = tmp_path_factory.getbasetemp() / "example-stream"
    args = ["generate", str(EXAMPLE_CHECKPOINT), "--prompt", "The ", "--length", "500", "--temperature",
            str(temperature), "--seed", "3", "--quiet"]
    assert main([*args, "--backend", "fixed"]) == 0
    fixed = capsys.readouterr().out
    assert main([*args, "--backend", "verilator", "--lanes", "8", "--build-dir", str(build)]) == 0
    assert capsys.readouterr().out == fixed


# ---------------------------------------------------------------------------------------------------------------
# CI short form of the headline check: the paper-sized core in Verilator


def test_example_core_in_verilator_for_200_steps(tmp_path, capsys):
    if not EXAMPLE_CHECKPOINT.exists():
        pytest.skip(f"{EXAMPLE_CHECKPOINT} not trained yet")
    code = main(["verify", str(EXAMPLE_CHECKPOINT), "--backend", "verilator", "--steps", "200", "--lanes", "8",
                 "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert code == 0, out
    report = json.loads((tmp_path / "digital-verilator" / "report.json").read_text())
    assert report["verdict"] == "PASS" and report["comparison"]["steps"] == 200
    assert report["comparison"]["reference_spikes"] > 10_000
    assert report["figures"]["ratio"] <= 1.25
