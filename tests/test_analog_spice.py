"""The circuit in real ngspice: small cores spike for spike, both runners, clear errors."""

import dataclasses
import json
import time

import numpy as np
import pytest
from conftest import EXAMPLE_CHECKPOINT, ROOT, SMALL_CHECKPOINT, near_threshold_currents, random_core

from rcsnn.analog.design import Design
from rcsnn.analog.netlist import write_netlists
from rcsnn.analog.ngspice import find_libngspice, run_subprocess
from rcsnn.analog.partition import partition
from rcsnn.analog.simulate import simulate_dir
from rcsnn.cli import main
from rcsnn.errors import RcsnnError
from rcsnn.ir.graph import Graph
from rcsnn.ir.reference import simulate_float
from rcsnn.verify.spice import judge

STEPS = 40


def random_currents(core, steps=STEPS, scale=1.0, seed=0):
    return scale * core.input_currents(np.random.default_rng(seed).normal(size=(steps, core.n_inputs)))


def spice_check(tmp_path, core, currents, mode="closed", blocks=1, design=None, runner="subprocess"):
    design = design or Design.scaled()
    ref = simulate_float(core, currents)
    graph = Graph.from_arrays(core)
    sidecar = write_netlists(partition(graph, blocks) if mode == "open" else graph, currents, tmp_path, design, mode,
                             ref.spikes)
    got = simulate_dir(tmp_path, runner=runner, workers=2)
    return judge(core, ref, got, sidecar["budget"], mode), ref, got


def within_target(verdict, fraction=5e-6):
    """Every group's a-priori budget a is at most ``fraction`` of its θ (the design's target, with room)."""
    return all(b["a"] <= fraction * b["theta"] for b in verdict.budgets)


def inhibition_heavy(seed):
    core = random_core(seed, sizes=(16,), resets=("zero",), density=0.5)
    matrices = {k: -np.abs(m) + (np.random.default_rng(seed).random(m.shape) < 0.05) for k, m in core.matrices.items()}
    matrices = {k: np.clip(m, -1, 1).astype(np.int8) for k, m in matrices.items()}
    return dataclasses.replace(core, matrices=matrices, bias=np.full(16, 0.6)).validate()


CASES = {
    "both resets": lambda: (c := random_core(11, resets=("zero", "subtract")), random_currents(c)),
    "subtract, per-group T, cross edges": lambda: (c := random_core(12, sizes=(10, 14), resets=("subtract", "zero"),
                                                                    shared=False, cross=True), random_currents(c)),
    "inhibition heavy": lambda: (c := inhibition_heavy(13), random_currents(c)),
    "bias only": lambda: (dataclasses.replace(random_core(14), bias=np.linspace(0.2, 0.9, 24)), np.zeros((STEPS, 24))),
    "strong input": lambda: (c := random_core(15), random_currents(c, scale=6.0)),
    "near threshold": lambda: (c := random_core(16, resets=("zero", "subtract")), near_threshold_currents(c)),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_spike_for_spike_closed_loop(tmp_path, case):
    core, currents = CASES[case]()
    verdict, ref, _ = spice_check(tmp_path, core, currents)
    assert ref.spikes.sum() > 10 and (ref.spikes == 0).sum() > 10
    assert verdict.comparison.mismatches == 0, verdict.comparison.summary()
    assert verdict.passed and verdict.violations == 0 and verdict.worst["ratio"] < 1
    assert within_target(verdict), verdict.budgets
    assert len(verdict.undecidable) == 0


def test_near_threshold_events_are_decided_within_the_bound(tmp_path):
    core = random_core(17, sizes=(16,), resets=("zero",))
    verdict, ref, got = spice_check(tmp_path, core, near_threshold_currents(core, deltas=(1e-4,)))
    assert verdict.smallest_margin == pytest.approx(1e-4, rel=1e-6)
    assert verdict.comparison.mismatches == 0 and verdict.passed and within_target(verdict)
    assert np.abs(got.membranes - ref.membranes).max() < 5e-6


def test_opamp_form_with_high_gain(tmp_path):
    core = random_core(18, resets=("zero", "subtract"))
    verdict, _, _ = spice_check(tmp_path, core, random_currents(core), design=Design.scaled(form="opamp", gain=1e9))
    assert verdict.comparison.mismatches == 0 and verdict.passed and within_target(verdict)


def test_open_loop_blocks_match_closed_loop(tmp_path):
    core = random_core(19, resets=("zero", "subtract"))
    currents = random_currents(core)
    closed, _, got_closed = spice_check(tmp_path / "closed", core, currents)
    opened, _, got_open = spice_check(tmp_path / "open", core, currents, mode="open", blocks=4)
    assert closed.comparison.mismatches == opened.comparison.mismatches == 0
    np.testing.assert_array_equal(got_closed.spikes, got_open.spikes)
    assert np.abs(got_closed.membranes - got_open.membranes).max() < 5e-6


def test_inprocess_runner_matches_subprocess(tmp_path):
    find_libngspice()
    core = random_core(20, sizes=(4,), resets=("zero",))
    currents = random_currents(core, steps=10)
    write_netlists(Graph.from_arrays(core), currents, tmp_path, Design.scaled())
    a = simulate_dir(tmp_path, runner="subprocess")
    b = simulate_dir(tmp_path, runner="pyspice")
    np.testing.assert_array_equal(a.spikes, b.spikes)
    np.testing.assert_allclose(a.membranes, b.membranes, atol=1e-9)
    assert a.spikes.sum() > 0


def test_cli_netlist_simulate_verify(tmp_path, capsys):
    net = tmp_path / "net"
    assert main(["netlist", str(SMALL_CHECKPOINT), "--prompt", "def f(x):\n    return x", "-o", str(net)]) == 0
    assert main(["simulate", str(net), "--steps", "12"]) == 0
    out = capsys.readouterr().out
    assert "wrote 1 deck(s)" in out and "spice: 12 steps x 96 neurons" in out
    code = main(["verify", str(SMALL_CHECKPOINT), "--backend", "spice", "--steps", "30", "--mode", "open",
                 "--out", str(tmp_path / "v")])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "spice: PASS" in out and "mismatches 0" in out and "a-priori budget g0: a = " in out
    assert "undecidable events" in out
    assert "s per step; per deck per step" in out and "cores" in out
    for name in ("raster.png", "membranes.png", "error_hist.png", "report.json", "report.md", "spice_run.npz"):
        assert (tmp_path / "v" / name).stat().st_size > 500


def test_mismatch_gives_nonzero_exit(tmp_path, capsys, monkeypatch):
    import rcsnn.verify.spice as verify

    real = verify.simulate_float

    def shifted(core, currents):  # a reference that disagrees: the SPICE run sees other currents
        return real(core, currents + 0.5)

    monkeypatch.setattr(verify, "simulate_float", shifted)
    code = main(["verify", str(SMALL_CHECKPOINT), "--backend", "spice", "--steps", "8", "--mode", "closed",
                 "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert code == 1 and "first divergence: step" in out and "v_ref" in out


@pytest.fixture
def tiny_deck(tmp_path):
    core = random_core(21, sizes=(3,), resets=("zero",))
    write_netlists(Graph.from_arrays(core), random_currents(core, steps=STEPS), tmp_path, Design.scaled())
    return tmp_path


def test_missing_ngspice_names_the_install_command(tiny_deck, monkeypatch):
    monkeypatch.setenv("PATH", str(tiny_deck))
    with pytest.raises(RcsnnError, match="ngspice not found; install it with: apt-get install -y ngspice libngspice0"):
        simulate_dir(tiny_deck)


def test_missing_libngspice_is_named(monkeypatch, tmp_path):
    monkeypatch.setenv("NGSPICE_LIBRARY_PATH", str(tmp_path / "libngspice.so.0"))
    with pytest.raises(RcsnnError, match="no such file; install libngspice with: apt-get install"):
        find_libngspice()


def test_timeout_stops_ngspice(tiny_deck):
    deck = (tiny_deck / "core.cir").read_text()
    start = time.monotonic()
    with pytest.raises(RcsnnError, match=r"core: ngspice: timed out after 0.5 s"):
        run_subprocess(deck, "core", tiny_deck, tran=".tran 5e-07 0.01 0 5e-09", timeout=0.5)
    assert time.monotonic() - start < 5


def test_failing_simulation_is_a_clear_error(tiny_deck):
    deck = (tiny_deck / "core.cir").read_text().replace("* synapses\n", "Vshort win 0 DC 0\n* synapses\n")
    with pytest.raises(RcsnnError, match=r"bad: ngspice: singular matrix .* vwin#branch"):
        run_subprocess(deck, "bad", tiny_deck, timeout=60)


def test_short_output_is_never_a_result(tiny_deck):
    deck = (tiny_deck / "core.cir").read_text()
    with pytest.raises(RcsnnError, match="returned 21 output rows, expected 82"):
        run_subprocess(deck, "core", tiny_deck, expected_rows=82, tran=".tran 5e-07 1e-05 0 2e-08")
    with pytest.raises(RcsnnError, match=r"--steps 41: the netlists .* have stimulus for 1..40 steps"):
        simulate_dir(tiny_deck, steps=41)
    with pytest.raises(RcsnnError, match="cannot read the netlist sidecar"):
        simulate_dir(tiny_deck / "nowhere")


@pytest.mark.skipif(not EXAMPLE_CHECKPOINT.exists(), reason="examples/sapu_3x512.rcsnn not trained yet")
def test_example_core_open_loop_short(tmp_path, capsys):
    """CI's short form of the headline check: the paper-sized example, open loop, 3 steps, within its budget."""
    prompt = (ROOT / "examples" / "prompt.txt").read_text()[:3]
    code = main(["verify", str(EXAMPLE_CHECKPOINT), "--backend", "spice", "--prompt", prompt, "--mode", "open",
                 "--workers", "2", "--out", str(tmp_path)])
    out = capsys.readouterr().out
    report = json.loads((tmp_path / "report.json").read_text())
    f = report["figures"]
    assert report["comparison"]["neurons"] == 1536 and report["comparison"]["steps"] == 3
    assert code == 0 and report["verdict"] == "PASS", out
    assert f["decidable_mismatches"] == 0 and f["membrane_violations"] == 0 and f["worst_membrane"]["ratio"] < 1
    assert all(b["a"] <= 5e-6 * b["theta"] for b in f["budget"]), f["budget"]
    assert len(f["deck_cpu_seconds_per_step"]) == 12 and f["machine"]["cores"] >= 1


def test_netlists_under_an_upper_case_path_run(tmp_path):
    """ngspice lower-cases a filesource's file name; a directory like /home/Alice/... must still run."""
    core = random_core(22, sizes=(3,), resets=("zero",))
    directory = tmp_path / "Upper" / "Net"
    write_netlists(Graph.from_arrays(core), random_currents(core, steps=4), directory, Design.scaled())
    run = simulate_dir(directory)
    assert run.spikes.shape == (4, 3) and np.isfinite(run.membranes).all()
