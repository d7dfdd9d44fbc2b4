"""Lock-step block decks (rcsnn.analog.lockstep): the same circuit as the monolithic closed-loop deck."""

import contextlib
import dataclasses
import os
import shutil
import uuid
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT, SMALL_CHECKPOINT, interrupt_cli

from rcsnn.analog.design import Design
from rcsnn.analog.lockstep import LockstepStepper
from rcsnn.analog.netlist import write_netlists
from rcsnn.analog.partition import partition
from rcsnn.analog.stream import SpiceStepper
from rcsnn.cli import main
from rcsnn.errors import RcsnnError
from rcsnn.frontends.checkpoint import load_checkpoint
from rcsnn.ir.graph import Graph
from rcsnn.model.generate import generate, reference_stepper
from rcsnn.verify.generation import Recorder, check_generation

PROMPT, LENGTH = "The ", 12
#: Two blocks per group of the small core (3 x 32): each block's synapses come half from the other block.
BLOCKS = 6


@pytest.fixture(scope="module")
def graph():
    return load_checkpoint(SMALL_CHECKPOINT)


def _run(graph, make, circuit=None):
    """Greedy generation of ``graph``'s text by the stepper ``make(circuit graph, planned currents)`` and its check."""
    planned = generate(graph, PROMPT, LENGTH, reference_stepper(graph, "float"), temperature=0)
    with make(circuit or graph, graph.arrays().token_currents(planned.tokens)) as stepper:
        recorded = Recorder(stepper)
        result = generate(graph, PROMPT, LENGTH, recorded, temperature=0)
        check = check_generation(graph, PROMPT, result, recorded, "spice", seed=0, temperature=0,
                                 allowance=stepper.allowance, budget_note=stepper.budget_note)
        return result, check, np.array(stepper.membranes), stepper


def _lockstep(graph, currents):
    return LockstepStepper(partition(graph, BLOCKS), Design.scaled(), currents)


@pytest.fixture(scope="module")
def lockstep(graph):
    return _run(graph, _lockstep)


def test_lockstep_generates_the_monolithic_text_and_raster(graph, lockstep):
    """Same text and raster as the one-deck circuit, every membrane within the a-priori budget of the reference's."""
    result, check, v, stepper = lockstep
    assert all(d["hosted"] for d in stepper.sidecar["decks"])  # every block is coupled through the host
    mono, _, v_mono, _ = _run(graph, lambda g, c: SpiceStepper(g, Design.scaled(), c))
    assert check.passed and check.first_step is None and len(result.text) == LENGTH
    assert result.text == mono.text and np.array_equal(result.spikes, mono.spikes)
    reference = Recorder(reference_stepper(graph, "float"))
    generate(graph, PROMPT, LENGTH, reference, temperature=0)
    v_ref = np.array(reference.membranes)
    assert (np.abs(v - v_ref) <= stepper.allowance(v_ref)).all()
    assert (np.abs(v_mono - v_ref) <= stepper.allowance(v_ref)).all()


def test_lockstep_resistor_off_by_three_percent_is_a_decidable_divergence(graph):
    """Negative control: the decks of a core whose synapses are 3 % stronger (every synapse resistor /1.03)
    diverge from the reference; the first flip is named and decidable against the budget."""
    core = graph.arrays()
    scaled = Graph.from_arrays(dataclasses.replace(
        core, synapses=tuple(dataclasses.replace(s, alpha=s.alpha * 1.03) for s in core.synapses)))
    result, check, _, _ = _run(graph, _lockstep, scaled)
    assert check.first_step is not None and not check.passed
    flip = check.flips[0]
    assert flip["decidable"] and abs(flip["margin"]) > flip["budget"] > 0
    assert (flip["v_hw"] >= flip["theta"]) == bool(flip["s_hw"]) != bool(flip["s_ref"])
    assert f"neuron {flip['index']}" in "\n".join(check.lines())


def test_lockstep_decks_host_only_other_blocks_levels(graph, tmp_path):
    core = graph.arrays()
    sidecar = write_netlists(partition(graph, BLOCKS), np.zeros((3, core.n_neurons)), tmp_path, Design.scaled(),
                             "lockstep", inputs="host", budget=False)
    for deck in sidecar["decks"]:
        text = (tmp_path / deck["netlist"]).read_text()
        sources = sorted(int(line.split()[0][2:]) for line in text.splitlines() if line.startswith("Vs"))
        assert sources == deck["hosted"] and sources
        assert not any(deck["start"] <= j < deck["stop"] for j in sources)
        assert deck["max_step"] < Design.scaled().step / deck["samples_per_step"]
    with pytest.raises(RcsnnError, match="lockstep mode, which requires it"):
        write_netlists(partition(graph, BLOCKS), np.zeros((3, core.n_neurons)), tmp_path / "f", Design.scaled(),
                       "lockstep", budget=False)


def test_lockstep_step_timeout_kills_the_decks(graph):
    planned = np.zeros((3, graph.arrays().n_neurons))
    stepper = LockstepStepper(partition(graph, BLOCKS), Design.scaled(), planned, budget=False)
    stepper.timeout, sessions = 1e-3, list(stepper.sessions)
    with stepper, pytest.raises(RcsnnError, match="timed out"):
        stepper.step(planned[0])
    assert not any(s.running for s in sessions)


def _lockstep_ngspice(mark: str) -> list[int]:
    """``ngspice -p`` processes started with RCSNN_TEST_MARK=mark in their environment."""
    found = []
    for proc in Path("/proc").glob("[0-9]*"):
        with contextlib.suppress(OSError):
            if (proc / "cmdline").read_bytes().split(b"\0")[1:2] == [b"-p"] and \
                    f"RCSNN_TEST_MARK={mark}".encode() in (proc / "environ").read_bytes():
                found.append(int(proc.name))
    return found


def test_sigint_during_lockstep_generation_ends_every_deck(tmp_path):
    """A real Ctrl-C while the block decks step: exit 130 within seconds, no ngspice and no temporary directory left."""
    if not Path("/proc/self/environ").exists() or shutil.which("ngspice") is None:
        pytest.skip("needs ngspice and /proc")
    mark, scratch = uuid.uuid4().hex, tmp_path / "tmp"
    scratch.mkdir()
    env = {**os.environ, "RCSNN_TEST_MARK": mark, "PYTHONPATH": str(ROOT), "TMPDIR": str(scratch)}
    code, err = interrupt_cli(["generate", SMALL_CHECKPOINT, "--prompt", PROMPT, "--length", "200", "--backend", "spice",
                               "--blocks", str(BLOCKS)], env, lambda: len(_lockstep_ngspice(mark)) >= BLOCKS, 120, 0.5)
    assert code == 130 and "Traceback" not in err, err
    assert _lockstep_ngspice(mark) == [] and list(scratch.iterdir()) == []


@pytest.mark.parametrize("extra, message", [(("--backend", "float"), "--blocks: only with --backend spice"),
                                            (("--backend", "spice", "--spice-decks", "one"),
                                             "--blocks: only with --spice-decks blocks")])
def test_blocks_option_is_refused_where_it_means_nothing(capsys, extra, message):
    assert main(["generate", str(SMALL_CHECKPOINT), "--prompt", PROMPT, "--length", "2", "--blocks", "3", *extra]) == 2
    assert message in capsys.readouterr().err
