"""The a-priori error budget, `rcsnn verify --netlist DIR`, and the negative controls that must fail it.

Each negative control is a designer's hand edit of a netlist directory written by `rcsnn netlist`,
checked with `rcsnn verify CORE --backend spice --netlist DIR --trust-edits` in real ngspice: it
must FAIL, with the kind of failure asserted (a decidable mismatch or a membrane outside budget).
"""

import json
import re
import shutil

import numpy as np
import pytest
from conftest import SMALL_CHECKPOINT, near_threshold_currents

from rcsnn.analog.budget import CAL_NEURONS, history
from rcsnn.cli import main
from rcsnn.files import sha256_file
from rcsnn.frontends.load import load_core
from rcsnn.ir.reference import simulate_float
from rcsnn.ir.stimulus import Stimulus

STEPS = 30
PROMPT = "def f(x):\n    return x + 1  # spikes"


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    """Open-loop netlists of the small core, ideal and op-amp form, written once."""
    root = tmp_path_factory.mktemp("budget")
    for form in ("ideal", "opamp"):
        assert main(["netlist", str(SMALL_CHECKPOINT), "--prompt", PROMPT, "--steps", str(STEPS), "--mode", "open",
                     "--blocks", "3", "--form", form, "-o", str(root / form)]) == 0
    return root


def copy(written, form, tmp_path):
    shutil.copytree(written / form, tmp_path / form)
    return tmp_path / form


def verify(directory, out, *extra):
    code = main(["verify", str(SMALL_CHECKPOINT), "--backend", "spice", "--netlist", str(directory),
                 "--out", str(out), *extra])
    return code, json.loads((out / "report.json").read_text())


def edit(directory, change):
    """Apply ``change`` to the text of every deck of ``directory``; how many decks changed."""
    changed = 0
    for deck in sorted(directory.glob("block_*.cir")):
        text = deck.read_text()
        new = change(text)
        if new != text:
            deck.write_text(new)
            changed += 1
    return changed


def test_budget_is_written_with_the_netlists(written):
    sidecar = json.loads((written / "ideal" / "core.json").read_text())
    budget = sidecar["budget"]
    assert budget["form"].startswith("|v_spice - v_ref| <= a + b * max(|v_ref| - theta, 0)")
    assert budget["calibration"]["neurons_per_group"] == CAL_NEURONS and "ngspice" in budget["calibration"]["ngspice"]
    graph = load_core(SMALL_CHECKPOINT)
    core = graph.arrays()
    ref = simulate_float(graph, Stimulus.from_prompt(graph, PROMPT).first(STEPS).currents)
    top = history(core, ref.membranes, ref.spikes)
    for g, sl, b in zip(core.groups, core.offsets().values(), budget["groups"]):
        assert b["group"] == g.name and b["history"] == pytest.approx(top[sl].max())
        # the calibrated leak error is the trapezoidal rule's, derived from h and tau (within 10 %)
        assert abs(b["calibrated"]["leak"]) == pytest.approx(b["derived"]["leak"], rel=0.1)
        assert b["a"] == pytest.approx(b["safety"] * (b["leak_error"] * b["history"] + b["gain_error"] * b["theta"]
                                                      + b["reset_error"] * b["largest"] + b["residual"]) + b["sampling"])
        assert b["b"] == pytest.approx(b["safety"] * b["gain_error"])
        assert 0 < b["a"] <= 5e-6 * b["theta"]
    decks = sidecar["decks"]
    assert len({d["max_step"] for d in decks}) == 3  # each group's deck has the step its budget allows
    # the stimulus the decks replay, with its SHA-256 (of the currents, and of the file in the manifest)
    currents = np.load(written / "ideal" / "stimulus.npy")
    np.testing.assert_array_equal(currents, Stimulus.from_prompt(graph, PROMPT).first(STEPS).currents)
    assert sidecar["files"]["stimulus.npy"] == sha256_file(written / "ideal" / "stimulus.npy")


def test_verify_the_directory_as_written_passes(written, tmp_path, capsys):
    code, report = verify(written / "ideal", tmp_path / "v")
    out = capsys.readouterr().out
    assert code == 0, out
    f = report["figures"]
    assert report["verdict"] == "PASS" and f["decidable_mismatches"] == 0 and f["membrane_violations"] == 0
    assert f["worst_membrane"]["ratio"] < 1 and report["comparison"]["steps"] == STEPS
    assert f"netlists: {written / 'ideal'} (as found)" in out
    assert [b["a"] for b in f["budget"]] == [b["a"] for b in json.loads((written / "ideal" / "core.json").read_text())
                                              ["budget"]["groups"]]


def test_verify_netlist_refuses_what_does_not_match(written, tmp_path, capsys):
    import dataclasses

    from rcsnn.frontends.checkpoint import save_checkpoint
    from rcsnn.ir.graph import Graph

    def refused(core, *extra):
        assert main(["verify", str(core), "--backend", "spice", "--netlist", str(directory), "--out",
                     str(tmp_path / "out"), *extra]) == 2
        err = capsys.readouterr().err.strip()
        assert err.count("\n") == 0 and err.startswith("rcsnn: error: ")
        return err

    directory = copy(written, "ideal", tmp_path)
    assert "the given stimulus (--prompt 'other') is not the one the netlists were written with" in \
        refused(SMALL_CHECKPOINT, "--prompt", "other")
    core = load_core(SMALL_CHECKPOINT).arrays()
    bias = core.bias.copy()
    bias[0] += 0.25  # a core with one bias changed is another core
    save_checkpoint(Graph.from_arrays(dataclasses.replace(core, bias=bias)), tmp_path / "other.rcsnn", {})
    assert "written for another core" in refused(tmp_path / "other.rcsnn")
    edit(directory, lambda t: t.replace(".options interp", ".options interp reltol=1e-4"))
    assert "--trust-edits" in refused(SMALL_CHECKPOINT)  # an edited deck runs only when trusted
    np.save(directory / "stimulus.npy", np.load(directory / "stimulus.npy") * 1.01)
    assert "not the stimulus the decks replay" in refused(SMALL_CHECKPOINT, "--trust-edits")


def scale_synapses(factor):
    def change(text):
        return re.sub(r"^(R\d+_\d+_\d+ \S+ \S+) (\S+)$", lambda m: f"{m.group(1)} {float(m.group(2)) * factor!r}",
                      text, flags=re.M)
    return change


def move_one_synapse(text):
    """The first synapse R<b>_<i>_<j> from an excitatory line e<j> whose inhibitory line n<j> is driven too, moved
    to n<j>: (the edited text, i)."""
    for m in re.finditer(r"^(R\d+_(\d+)_\d+) e(\d+) (sum\d+ \S+)$", text, flags=re.M):
        j = m.group(3)
        if re.search(rf"^[XE]i{j} ", text, flags=re.M):
            return text[:m.start()] + f"{m.group(1)} n{j} {m.group(4)}" + text[m.end():], int(m.group(2))
    raise AssertionError("no synapse with both lines driven")


def comparator_offset(volts):
    def change(text):
        return re.sub(r"^(Vth\d+ th\d+ 0 DC) (\S+)$", lambda m: f"{m.group(1)} {float(m.group(2)) + volts!r}", text,
                      flags=re.M)
    return change


def test_negative_control_synapse_resistors_scaled(written, tmp_path):
    directory = copy(written, "ideal", tmp_path)
    assert edit(directory, scale_synapses(1.005)) == 3
    code, report = verify(directory, tmp_path / "v", "--trust-edits")
    f = report["figures"]
    assert code == 1 and report["verdict"] == "FAIL"
    assert f["membrane_violations"] > 100 and f["worst_membrane"]["ratio"] > 10


def test_negative_control_one_synapse_on_the_wrong_line(written, tmp_path):
    directory = copy(written, "ideal", tmp_path)
    deck = directory / "block_000.cir"
    text, neuron = move_one_synapse(deck.read_text())
    deck.write_text(text)
    code, report = verify(directory, tmp_path / "v", "--trust-edits")
    f = report["figures"]
    assert code == 1 and report["verdict"] == "FAIL" and f["membrane_violations"] >= 1
    assert f["worst_membrane"]["neuron"] == neuron and f["worst_membrane"]["ratio"] > 10


def test_negative_control_comparator_offset(tmp_path):
    core = load_core(SMALL_CHECKPOINT).arrays()
    np.save(tmp_path / "x.npy", near_threshold_currents(core, 10, deltas=(3e-4, 6e-4, 0.01, 0.3)))
    directory = tmp_path / "net"
    assert main(["netlist", str(SMALL_CHECKPOINT), "--currents", str(tmp_path / "x.npy"), "--mode", "open",
                 "--blocks", "3", "-o", str(directory)]) == 0
    ref = simulate_float(core, np.load(tmp_path / "x.npy"))
    above = int(((ref.membranes - core.per_neuron("theta") >= 0) & (ref.membranes - core.per_neuron("theta") < 1e-3))
                .sum())
    assert above > 50  # reference spikes within 1 mV above threshold
    assert edit(directory, comparator_offset(1e-3)) == 3
    code, report = verify(directory, tmp_path / "v", "--trust-edits")
    f = report["figures"]
    assert code == 1 and report["verdict"] == "FAIL"
    assert f["decidable_mismatches"] == above and f["undecidable_mismatches"] == 0  # each of them lost its spike
    assert f["membrane_violations"] == 0  # open loop: the comparator only observes, membranes are unchanged


def test_negative_control_opamp_gain(written, tmp_path, capsys):
    directory = copy(written, "opamp", tmp_path)
    code, report = verify(directory, tmp_path / "ok")
    assert code == 0 and report["verdict"] == "PASS", capsys.readouterr().out  # A = 1e9 is within the budget
    assert edit(directory, lambda t: t.replace("gain=1000000000.0", "gain=10000.0")) == 3
    code, report = verify(directory, tmp_path / "v", "--trust-edits")
    f = report["figures"]
    assert code == 1 and report["verdict"] == "FAIL" and f["membrane_violations"] > 100


def test_a_wrong_design_is_not_calibrated_away(tmp_path):
    """A circuit that does not implement the model (here an op-amp of gain 1e4 as written, not a hand edit) makes its
    own calibration disagree with the derived integration error: the budget keeps the derived values and FAILs it."""
    code = main(["verify", str(SMALL_CHECKPOINT), "--backend", "spice", "--prompt", PROMPT, "--steps", "20",
                 "--mode", "open", "--blocks", "3", "--form", "opamp", "--gain", "1e4", "--out", str(tmp_path)])
    report = json.loads((tmp_path / "report.json").read_text())
    f = report["figures"]
    assert code == 1 and report["verdict"] == "FAIL" and f["membrane_violations"] > 100
    assert all(b["disagrees"] for b in f["budget"]) and all(b["a"] <= 1e-5 * b["theta"] for b in f["budget"])
    assert any(line.startswith("CALIBRATION DISAGREES for g0") for line in report["findings"])
