"""The paper-size example core generates text in the closed-loop circuit (ngspice, hours): `-m slow` only."""

import json
import subprocess
import sys
import time

import numpy as np
import pytest
from conftest import EXAMPLE_CHECKPOINT

from rcsnn.analog.budget import allowance
from rcsnn.frontends.checkpoint import load_checkpoint
from rcsnn.model.generate import generate, reference_stepper
from rcsnn.verify.generation import Recorder

#: Greedy from this prompt, the example's float reference decides every event of the first 106 steps at
#: least 2.7e-5 θ from threshold (checked below against the deck's a-priori budget).
PROMPT = "class "
LENGTH = 100


@pytest.mark.slow
def test_example_core_generates_the_float_text_in_spice(tmp_path):
    """`rcsnn generate examples/sapu_3x512.rcsnn --backend spice`: 100 characters greedy, identical to the float64
    reference. Measured (docs/analog.md): about 70 s of ngspice CPU per step, 106 steps."""
    deck = tmp_path / "deck"
    argv = [sys.executable, "-m", "rcsnn.cli", "generate", str(EXAMPLE_CHECKPOINT), "--prompt", PROMPT,
            "--length", str(LENGTH), "--temperature", "0", "--backend", "spice", "--netlist", str(deck)]
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    err = []
    for line in proc.stderr:  # progress, shown live with -s
        sys.stderr.write(line)
        err.append(line)
    out = proc.stdout.read()
    proc.wait()
    err = "".join(err)
    print(f"spice generate of the example: {time.perf_counter() - start:.0f} s wall")
    assert proc.returncode == 0, err[-2000:]
    graph = load_checkpoint(EXAMPLE_CHECKPOINT)
    recorded = Recorder(reference_stepper(graph, "float"))
    reference = generate(graph, PROMPT, LENGTH, recorded, temperature=0)
    assert out == PROMPT + reference.text + "\n"
    assert f"{LENGTH} generated characters identical; rasters equal over {len(PROMPT) + LENGTH} steps" in err
    core = graph.arrays()
    v = np.array(recorded.membranes)
    budget = json.loads((deck / "core.json").read_text())["budget"]
    assert (np.abs(v - core.per_neuron("theta")) > allowance(core, budget, v)).all(), "a decision within the budget"
