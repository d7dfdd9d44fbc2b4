"""Bill of materials (rcsnn.analog.bom) and energy from ngspice's source currents (rcsnn.analog.energy, rcsnn bom)."""

from __future__ import annotations

import json
import re
import shutil

import numpy as np
import pytest
from conftest import SMALL_CHECKPOINT, random_core

from rcsnn.analog.bom import count_parts
from rcsnn.analog.design import Design
from rcsnn.analog.energy import energy_deck, netlist_energy
from rcsnn.analog.eseries import parse_snap
from rcsnn.analog.netlist import write_netlists
from rcsnn.analog.neurons import plan
from rcsnn.analog.partition import partition
from rcsnn.analog.snap import snap_graph
from rcsnn.cli import main
from rcsnn.errors import RcsnnError
from rcsnn.ir.graph import Graph
from rcsnn.ir.reference import simulate_float

STEPS = 12


def core_and_currents():
    core = random_core(8, sizes=(8, 8), cross=True)  # zero and subtract reset, a cross block
    return core, core.input_currents(np.random.default_rng(1).normal(size=(STEPS, core.n_inputs)))


def deck_text(directory) -> str:
    (deck,) = directory.glob("*.cir")
    return deck.read_text()


@pytest.mark.parametrize("form", ["ideal", "opamp"])
def test_parts_are_the_cores(tmp_path, form):
    """Every synapse, leak, input and self-synapse resistor, one capacitor, comparator and reset switch per neuron."""
    core, x = core_and_currents()
    write_netlists(Graph.from_arrays(core), x, tmp_path, Design(form=form), "closed", budget=False)
    bom = count_parts(deck_text(tmp_path))
    subtract = int(core.reset_subtract().sum())
    inputs = int(((x + core.bias) != 0).any(axis=0).sum())
    assert sum(bom.resistors.values()) == core.nonzeros() + core.n_neurons + inputs + subtract
    assert sum(bom.capacitors.values()) == core.n_neurons and set(bom.capacitors) == {1e-12}
    assert bom.parts["comparators (clocked, with a D flip-flop)"] == core.n_neurons
    assert bom.parts["reset switches"] == core.n_neurons - subtract
    amplifiers = "op-amps (integrators)" if form == "opamp" else "ideal gated current copiers (ideal form: no buyable part)"
    assert bom.parts[amplifiers] == core.n_neurons
    assert bom.units is None
    assert not any(n for kind, n in bom.parts.items() if kind.startswith("trims"))  # no calibration: no trims
    trimmed = count_parts(deck_text(tmp_path), trim=("input", "leak")).parts
    assert trimmed["trims of the input (calibration, one per input resistor)"] == inputs
    assert trimmed["trims of the leak (calibration, one per leaky cell)"] == core.n_neurons
    # negative control: a deck with one synapse resistor fewer is counted with one fewer
    text = deck_text(tmp_path)
    fewer = re.sub(r"^R\d+_\d+_\d+ .*\n", "", text, count=1, flags=re.M)
    assert sum(count_parts(fewer).resistors.values()) == sum(bom.resistors.values()) - 1


def test_unit_count(tmp_path):
    """unit:R: every resistor is n units in series or in parallel, and the integrated count is their sum."""
    core, x = core_and_currents()
    snap = parse_snap("unit:50e3")
    graph = snap_graph(Graph.from_arrays(core), Design(), snap)
    write_netlists(graph, x, tmp_path, Design(), "closed", budget=False)
    bom = count_parts(deck_text(tmp_path), snap)
    for ohms in bom.resistors:
        n = snap.units(ohms)
        assert ohms == pytest.approx(50e3 * n if n > 0 else 50e3 / -n, rel=1e-15)
    assert bom.units["unit_resistors"] == sum(abs(snap.units(v)) * k for v, k in bom.resistors.items())
    assert bom.units["unit_resistors"] > sum(bom.resistors.values())


def test_energy_matches_the_element_values(tmp_path):
    """The spike lines' energy integrated from ngspice's source currents is V_S²·Σ s_j·Σ_i 1/R_ij·Δt, each level held
    a whole step from 5 ns after its edge (within 0.5 % per step); a deck whose synapse resistors are doubled draws
    half of it (negative control: the figure follows the circuit, not the core)."""
    core, x = core_and_currents()
    graph = partition(Graph.from_arrays(core), 2)
    ref = simulate_float(core, x)
    design = Design()
    write_netlists(graph, x, tmp_path / "a", design, "open", ref.spikes, budget=False)
    p, conductance = plan(core, design), np.zeros(core.n_neurons)
    offsets = core.offsets()
    for s in core.synapses:
        w = core.block_weights(s)
        np.add.at(conductance, offsets[s.pre].start + w.cols, np.abs(w.value) / p.r_in[offsets[s.post].start + w.rows])
    subtract = core.reset_subtract()
    conductance[subtract] += p.theta[subtract] / p.r_mem[subtract]  # the self-synapse on the own n-line
    levels = np.vstack([np.zeros(core.n_neurons), ref.spikes[:-1]])
    expected = design.v_spike ** 2 * (levels @ conductance) * design.step
    energy = netlist_energy(tmp_path / "a", workers=2)
    assert (expected > 0).sum() > 3
    # a level of step k holds from (k-1)Δt + 5 ns to kΔt + 5 ns: compare sums over steps with equal levels at both ends
    assert energy["spike_lines"][1:].sum() == pytest.approx(expected[1:].sum(), rel=5e-3)
    assert all(energy[k].sum() > 0 for k in ("input_lines", "membranes")) and energy["buffers"].sum() == 0
    edited = tmp_path / "b"
    shutil.copytree(tmp_path / "a", edited)
    for deck in edited.glob("*.cir"):
        doubled = re.sub(r"^(R(?:\d+_\d+_\d+|self\d+) \S+ \S+ )(\S+)$", lambda m: m.group(1) + repr(2 * float(m.group(2))),
                         deck.read_text(), flags=re.M)
        deck.write_text(doubled)
    halved = netlist_energy(edited, workers=2)
    assert halved["spike_lines"][1:].sum() == pytest.approx(expected[1:].sum() / 2, rel=5e-3)


def test_energy_refuses_opamp_decks(tmp_path):
    core, x = core_and_currents()
    write_netlists(Graph.from_arrays(core), x, tmp_path, Design(form="opamp"), "closed", budget=False)
    with pytest.raises(RcsnnError, match="ideal form only"):
        energy_deck(deck_text(tmp_path))


def test_cli_bom(tmp_path, capsys):
    out = tmp_path / "bom"
    assert main(["bom", str(SMALL_CHECKPOINT), "--snap", "E96", "--steps", "8", "--energy-steps", "6",
                 "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "# Bill of materials" in printed and "per step = per character" in printed and "bits per character" in printed
    document = json.loads((out / "bom.json").read_text())
    energy = document["energy"]
    assert energy["steps"] == 6 and energy["synaptic_operations"] > 0 and energy["joules_per_step"] > 0
    assert document["snap"]["rule"] == "E96" and document["bom"]["distinct_resistor_values"] < 20
    assert (out / "bom.csv").read_text().startswith("part,value,unit,count\nresistor,")
    assert main(["bom", str(SMALL_CHECKPOINT), "--snap", "E48", "-o", str(tmp_path / "x")]) == 2
    assert main(["bom", str(SMALL_CHECKPOINT), "--trim", "synapse", "--energy-steps", "0", "-o", str(tmp_path / "y")]) == 2
    assert "--trim synapse: give each of input, leak at most once" in capsys.readouterr().err
