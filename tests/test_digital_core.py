"""The whole digital core: bit-exact runs against the fixed-point reference, emitted files, HDL simulators."""

from __future__ import annotations

import dataclasses
import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
from amaranth.sim import Simulator
from conftest import SMALL_CHECKPOINT, random_core

from rcsnn.cli import main
from rcsnn.digital import synth
from rcsnn.digital.core import NeuromorphicCore, load_words
from rcsnn.digital.cycles import lower_bound
from rcsnn.digital.emit import emit
from rcsnn.digital.layout import build_image, place
from rcsnn.digital.options import DigitalOptions
from rcsnn.digital.simulate import beats, run_pysim
from rcsnn.errors import RcsnnError
from rcsnn.frontends.load import load_core
from rcsnn.ir.arrays import FixedFormat
from rcsnn.ir.graph import Graph
from rcsnn.ir.reference import quantize_core, simulate_fixed
from rcsnn.ir.stimulus import Stimulus
from rcsnn.tools import find
from rcsnn.verify.digital import verify_digital
from rcsnn.verify.report import Provenance

CASES = {
    "shared-T zero/subtract": dict(seed=1, sizes=(12, 12), resets=("zero", "subtract")),
    "per-group T + cross edge": dict(seed=2, sizes=(10, 13), resets=("subtract", "zero"), shared=False, cross=True),
    "saturating 8-bit": dict(seed=3, sizes=(9, 9, 9), resets=("subtract", "zero", "subtract"), density=0.5,
                             fixed=FixedFormat(8, 4, 6)),
}


def quantized_run(core, steps: int, scale: float = 3.0, seed: int = 0):
    xq = quantize_core(core).quantize(core.input_currents(
        np.random.default_rng(seed).standard_normal((steps, core.n_inputs)) * scale))
    return xq, simulate_fixed(core, xq)


@pytest.mark.parametrize("lanes", [1, 3, 4])
@pytest.mark.parametrize("case", sorted(CASES))
def test_pysim_is_bit_exact(case, lanes):
    core = random_core(**CASES[case])
    xq, ref = quantized_run(core, 25)
    run = run_pysim(build_image(place(Graph.from_arrays(core), lanes)), xq)
    assert np.array_equal(run.spikes, ref.spikes)
    assert np.array_equal(run.membranes, ref.membranes)
    assert (ref.membranes < 0).any() and ref.spikes.any()
    if case.startswith("saturating"):
        q = quantize_core(core)
        assert (ref.membranes == q.v_max).any() or (ref.membranes == q.v_min).any()


def test_shared_matrix_is_stored_once():
    core = random_core(6, sizes=(16, 16, 16), resets=("zero",) * 3)
    image = build_image(place(Graph.from_arrays(core), 4))
    assert sum(len(e) for e in image.entries) == np.count_nonzero(core.matrices["T"])
    assert {b.row_base for b in image.blocks} == {0}
    values = np.arange(core.n_neurons)
    assert np.array_equal(image.slots.from_slots(image.slots.to_slots(values)), values)


def test_run_time_load_replaces_preloaded_memories():
    """A core built without memory contents, loaded through the load port, runs bit-exact."""
    core = random_core(7, sizes=(8, 8), resets=("subtract", "zero"))
    image = build_image(place(Graph.from_arrays(core), 2))
    xq, ref = quantized_run(core, 6)
    dut = NeuromorphicCore(image, preload=False)
    stimulus = beats(image, xq)
    masks = np.zeros(stimulus.shape, dtype=np.int64)

    async def bench(ctx):
        for word in load_words(image):
            ctx.set(dut.load.valid, 1)
            ctx.set(dut.load.payload.as_value(), word)
            await ctx.tick()
        ctx.set(dut.load.valid, 0)
        for t in range(len(xq)):
            ctx.set(dut.start, 1)
            beat = 0
            while True:
                ctx.set(dut.x.valid, 1)
                ctx.set(dut.x.payload.as_value(), int(stimulus[t, min(beat, stimulus.shape[1] - 1)]))
                _, _, ready, valid, word, mask, done = await ctx.tick().sample(
                    dut.x.ready, dut.spikes.valid, dut.spikes.payload.word, dut.spikes.payload.mask, dut.done)
                ctx.set(dut.start, 0)
                beat += ready
                if valid:
                    masks[t, word] = mask
                if done:
                    break

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    spikes = image.slots.from_slots((masks[..., None] >> np.arange(2)) & 1)
    assert np.array_equal(spikes, ref.spikes)


def test_emitted_files_are_deterministic(tmp_path):
    core = random_core(8, sizes=(6, 6))
    xq, _ = quantized_run(core, 4)
    placed = place(Graph.from_arrays(core), 2)
    first = emit(placed, tmp_path / "a", xq)
    second = emit(placed, tmp_path / "b", xq)
    assert [p.relative_to(tmp_path / "a") for p in first] == [p.relative_to(tmp_path / "b") for p in second]
    for a, b in zip(first, second):
        assert a.read_bytes() == b.read_bytes(), a.name
    names = {p.name for p in first}
    assert {"rcsnn_core.v", "rcsnn_core.il", "rcsnn_synth.il", "tb_rcsnn.v", "harness.cpp", "rcsnn.gtkw",
            "README.md", "load.hex", "design.json", "x.hex", "expected.hex"} <= names


@pytest.fixture(scope="module")
def small_design(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("hdl")
    assert main(["verilog", str(SMALL_CHECKPOINT), "-o", str(out), "--lanes", "4", "--steps", "12"]) == 0
    return out


def test_verilator_lint_of_emitted_verilog(small_design):
    proc = subprocess.run([find("verilator"), "--lint-only", "-Wno-WIDTH", "rcsnn_core.v"], cwd=small_design,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_divergence_is_reported_with_membranes_and_vcd(tmp_path, monkeypatch, capsys):
    graph = load_core(SMALL_CHECKPOINT)
    good = build_image(place(graph, 4))
    broken = dataclasses.replace(good, bias=((good.bias[0][0] + 4096,) + good.bias[0][1:],) + good.bias[1:])
    monkeypatch.setattr("rcsnn.verify.digital.build_image", lambda placed: broken)
    stimulus = Stimulus.from_prompt(graph, "The quick brown fox").first(12)
    report = verify_digital(graph, stimulus, "amaranth", DigitalOptions(lanes=4), tmp_path,
                            Provenance.of(SMALL_CHECKPOINT, stimulus))
    assert not report.passed
    saved = json.loads((tmp_path / "digital-amaranth" / "report.json").read_text())
    d = saved["figures"]["divergence"]
    assert saved["verdict"] == "FAIL" and d["group"] == graph.arrays().groups[0].name and d["index"] == 0
    assert d["hardware_v"] != d["reference_v"]
    assert Path(d["vcd"]).stat().st_size > 0
    assert saved["comparison"]["first_divergence"]["step"] == d["step"]


def test_lower_bound_counts_fanout_of_previous_spikes():
    core = random_core(9, sizes=(5, 5))
    spikes = np.zeros((3, 10), dtype=np.int8)
    spikes[0, 2] = 1
    bound = lower_bound(core, spikes, lanes=2)
    fan = sum(np.count_nonzero(core.matrices[b.matrix][:, 2]) for b in core.synapses if b.pre == "g0")
    assert bound.tolist() == [5.0, (fan + 10) / 2, 5.0]


def test_synth_reports_what_would_fit(tmp_path, monkeypatch):
    (tmp_path / "rcsnn_synth.il").write_text("")
    (tmp_path / "design.json").write_text(json.dumps({"lanes": 8, "Wv": 24, "preload": True, "chain_bits": 10,
                                                     "groups": [{"size": 512}]}))

    def fake_yosys(script, cwd, what, timeout=None):
        cells = {"SB_LUT4": 9000, "SB_RAM40_4K": 90, "SB_MAC16": 8}
        (cwd / "stat.json").write_text(json.dumps({"design": {"num_cells_by_type": cells}}))

    monkeypatch.setattr(synth, "yosys", fake_yosys)
    with pytest.raises(RcsnnError, match=r"does not fit ice40-up5k: uses 9000 LUT of 5280, 90 BRAM of 30.*--lanes 4.*SPRAM"):
        synth.synthesize(tmp_path, "ice40-up5k", trust_edits=True)  # a hand-written design.json: no SHA-256


def test_same_step_blocks_are_retimed_by_place():
    """The core replays the spikes of step t-1 only: place retimes a same-step block (g1 runs one step late)."""
    core = random_core(12, sizes=(5, 5), shared=False, cross=True)
    core = dataclasses.replace(core, synapses=core.synapses[:-1] + (dataclasses.replace(core.synapses[-1], delay=0),))
    placed = place(Graph.from_arrays(core), 2)
    assert "retime" in placed.passes and not placed.arrays().same_step_blocks()
    assert [g.skew for g in placed.arrays().groups] == [0, 1]
    assert [g.skew for g in place(Graph.from_arrays(random_core(12)), 2).arrays().groups] == [0, 0]


def test_missing_tool_names_the_install_command(monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(RcsnnError, match="apt-get install -y iverilog"):
        find("iverilog")
