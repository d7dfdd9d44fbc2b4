"""The hardware generates text: `rcsnn generate --backend amaranth|spice` against the references, and `verify --bpc`."""

import dataclasses
import json

import numpy as np
import pytest
import torch
from conftest import SMALL_CHECKPOINT, random_graph

from rcsnn.analog.budget import allowance
from rcsnn.analog.design import Design
from rcsnn.analog.netlist import samples_per_step, write_netlists
from rcsnn.analog.stream import SpiceStepper
from rcsnn.cli import main
from rcsnn.digital.pysim_stepper import PysimStepper
from rcsnn.errors import RcsnnError
from rcsnn.frontends.checkpoint import load_checkpoint
from rcsnn.ir.graph import Graph
from rcsnn.ir.reference import simulate_fixed
from rcsnn.ir.stimulus import Stimulus
from rcsnn.model.generate import generate, reference_stepper
from rcsnn.model.readout import LOG2E, bits_per_char, readout_logits
from rcsnn.verify.bpc import bpc_figures
from rcsnn.verify.generation import Recorder, check_generation

#: Greedy from this prompt, every decision of the small core's float reference is at least 1.2e-3 θ from
#: its threshold for 30 characters (checked below against the deck's a-priori budget, not assumed).
SPICE_PROMPT = "The "


def _run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def graph():
    return load_checkpoint(SMALL_CHECKPOINT)


@pytest.mark.parametrize("temperature, seed", [(0.0, 0), (0.8, 11)])
def test_amaranth_generates_the_fixed_point_text(capsys, temperature, seed):
    args = ("generate", SMALL_CHECKPOINT, "--prompt", "The ", "--length", 50, "--temperature", temperature,
            "--seed", seed)
    code, hardware, err = _run(capsys, *args, "--backend", "amaranth", "--quiet")
    assert code == 0, err
    assert "amaranth vs the fixed-point reference: 50 generated characters identical; rasters equal over 54 steps" in err
    code, fixed, _ = _run(capsys, *args, "--backend", "fixed")
    assert code == 0 and hardware == fixed and len(hardware.rstrip("\n")) == 54


def test_amaranth_flip_is_named_and_decidable(graph):
    """A digital core with one weight of T flipped must fail the check, naming the first flipped decision."""
    core = graph.arrays()
    t = core.matrices["T"].copy()
    i, j = np.argwhere(t != 0)[0]
    t[i, j] = -t[i, j]
    broken = Graph.from_arrays(dataclasses.replace(core, matrices={**core.matrices, "T": t}))
    recorded = Recorder(PysimStepper(broken))
    result = generate(graph, "The ", 12, recorded, temperature=0)
    check = check_generation(graph, "The ", result, recorded, "amaranth", seed=0, temperature=0)
    reference = simulate_fixed(graph, core.token_currents(result.tokens))
    first = int(np.flatnonzero((reference.spikes != result.spikes).any(axis=1))[0])
    assert not check.passed and check.first_step == first
    assert check.flips and all(f["decidable"] and f["budget"] is None for f in check.flips)
    assert {f["neuron"] for f in check.flips} == set(np.flatnonzero(reference.spikes[first] != result.spikes[first]))
    assert "DECIDABLE" in "\n".join(check.lines())


def test_spice_generates_the_float_text(tmp_path, capsys, graph):
    """30 characters greedy from the closed-loop circuit in libngspice: every decision of the reference is outside
    the deck's a-priori budget, so the text must equal the float64 reference's (not merely be excused)."""
    deck = tmp_path / "deck"
    code, out, err = _run(capsys, "generate", SMALL_CHECKPOINT, "--prompt", SPICE_PROMPT, "--length", 30,
                          "--temperature", 0, "--backend", "spice", "--netlist", deck)
    assert code == 0, err
    assert "spice vs the float64 reference: 30 generated characters identical; rasters equal over 34 steps" in err
    assert "a-priori budget" in err and "spice: step 34/34" in err  # progress lines
    assert out == _run(capsys, "generate", SMALL_CHECKPOINT, "--prompt", SPICE_PROMPT, "--length", 30,
                       "--temperature", 0, "--backend", "float")[1]
    sidecar = json.loads((deck / "core.json").read_text())
    assert sidecar["inputs"] == "host" and sidecar["decks"][0]["samples_per_step"] >= 2
    recorded = Recorder(reference_stepper(graph, "float"))
    generate(graph, SPICE_PROMPT, 30, recorded, temperature=0)
    v = np.array(recorded.membranes)
    margin = np.abs(v - graph.arrays().per_neuron("theta"))
    assert (margin > allowance(graph.arrays(), sidecar["budget"], v)).all()


def test_spice_flip_is_named(graph):
    """The circuit of a core whose synapse scale is 3 % off must diverge; the check names the first flipped
    decision with the reference margin and the circuit's membrane, decidable against the budget."""
    core = graph.arrays()
    scaled = Graph.from_arrays(dataclasses.replace(
        core, synapses=tuple(dataclasses.replace(s, alpha=s.alpha * 1.03) for s in core.synapses)))
    planned = generate(graph, SPICE_PROMPT, 8, reference_stepper(graph, "float"), temperature=0)
    with SpiceStepper(scaled, Design.scaled(), core.token_currents(planned.tokens)) as stepper:
        recorded = Recorder(stepper)
        result = generate(graph, SPICE_PROMPT, 8, recorded, temperature=0)
        check = check_generation(graph, SPICE_PROMPT, result, recorded, "spice", seed=0, temperature=0,
                                 allowance=stepper.allowance, budget_note=stepper.budget_note)
        assert len(stepper.membranes) == len(result.tokens)
    assert check.first_step is not None and not check.passed
    flip = check.flips[0]
    assert flip["decidable"] and abs(flip["margin"]) > flip["budget"] > 0
    assert (flip["v_hw"] >= flip["theta"]) == bool(flip["s_hw"]) != bool(flip["s_ref"])
    lines = "\n".join(check.lines())
    assert f"rasters first differ at step {check.first_step}" in lines and f"neuron {flip['index']}" in lines


def test_host_driven_deck(tmp_path):
    graph = random_graph(3)
    currents = np.zeros((5, graph.arrays().n_neurons))
    sidecar = write_netlists(graph, currents, tmp_path, Design.scaled(), inputs="host", budget=False)
    deck = (tmp_path / "core.cir").read_text()
    n = graph.arrays().n_neurons
    assert sum(line.startswith("Vx") and " DC " in line for line in deck.splitlines()) == n
    assert "filesource" not in deck and sidecar["decks"][0]["stimulus"] == []
    rows = sidecar["decks"][0]["samples_per_step"]
    assert f".tran {1e-6 / rows:.12g} " in deck
    design = Design.scaled()
    assert design.clock_edge + 1.1e-9 < design.step / rows < design.syn_start - sidecar["decks"][0]["max_step"]
    with pytest.raises(RcsnnError, match="closed mode only"):
        write_netlists(graph, currents, tmp_path / "o", design, "open", np.zeros_like(currents), inputs="host")
    with pytest.raises(RcsnnError, match="lower --max-step"):
        samples_per_step(design, design.syn_start)


def test_bits_per_char_is_the_cross_entropy(graph):
    core = graph.arrays()
    text = Stimulus.sample(graph, 60).text
    tokens = core.frontend.encode(text)
    spikes = simulate_fixed(graph, core.text_currents(text)).spikes
    logits = torch.from_numpy(readout_logits(core, spikes[:-1]))
    expected = torch.nn.functional.cross_entropy(logits, torch.from_numpy(tokens[1:])).item() * LOG2E
    assert bits_per_char(core, spikes[:-1], tokens[1:]) == pytest.approx(expected, rel=1e-12)


def test_bpc_comes_from_the_backend_spikes(graph):
    stim = Stimulus.sample(graph, 40)
    own = simulate_fixed(graph, stim.currents).spikes
    figures = bpc_figures(graph, stim, own)
    assert figures["backend"] == figures["fixed_reference"] and figures["characters"] == 39
    flipped = own.copy()
    flipped[10:20] ^= 1
    assert bpc_figures(graph, stim, flipped)["backend"] != figures["backend"]
    prefix = bpc_figures(graph, stim, own[:20])  # the gate level runs the first steps only
    assert prefix["characters"] == 19 and prefix["text"].startswith("the first 20 steps of")
    assert prefix["backend"] == bpc_figures(graph, stim.first(20), own[:20])["backend"] != figures["backend"]


def test_verify_bpc(tmp_path, capsys):
    out = tmp_path / "v"
    code, text, err = _run(capsys, "verify", SMALL_CHECKPOINT, "--backend", "amaranth", "--steps", 30, "--bpc",
                           "--out", out)
    assert code == 0, err
    report = json.loads(next(out.rglob("report.json")).read_text())
    bpc = report["figures"]["bpc"]
    assert bpc["characters"] == 29 and bpc["backend"] == bpc["fixed_reference"] > 0
    assert f"amaranth {bpc['backend']:.4f} (from its own spikes)" in text
    np.save(tmp_path / "x.npy", np.zeros((5, 64)))
    code, _, err = _run(capsys, "verify", SMALL_CHECKPOINT, "--backend", "amaranth", "--input", tmp_path / "x.npy",
                        "--bpc", "--out", tmp_path / "w")
    assert code == 2 and "--bpc: needs a language-model core and a text stimulus" in err and err.count("\n") == 1
