"""The fast circuit model (rcsnn/analog/fastmodel.py) and component variation (rcsnn/analog/variation.py).

The model must reproduce the float reference on nominal decks (both resets, cross synapses, open and
closed loop), model what a deck says rather than what the core says (a finite op-amp gain, a hand
edit: checked against ngspice on the same deck within the a-priori budget), and refuse what it
cannot model in one line.
"""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import numpy as np
import pytest
from conftest import near_threshold_currents, random_graph

from rcsnn.analog.budget import allowance
from rcsnn.analog.design import Design
from rcsnn.analog.fastmodel import Pulse, kernel, parse_deck, read_circuit, run_deck
from rcsnn.analog.netlist import write_netlists
from rcsnn.analog.partition import partition
from rcsnn.analog.simulate import simulate_dir
from rcsnn.analog.variation import Tolerance, normals, vary_circuit, vary_deck
from rcsnn.errors import RcsnnError
from rcsnn.ir.graph import Graph
from rcsnn.ir.reference import simulate_float

STEPS = 16


def _write(tmp: Path, graph, x, mode="open", budget=False, **design):
    ref = simulate_float(graph, x)
    parted = partition(graph, 2) if mode == "open" else graph
    sidecar = write_netlists(parted, x, tmp, Design(**design), mode, ref.spikes if mode == "open" else None, "test",
                             budget=budget)
    files = {p.name: p.read_text() for p in tmp.glob("*_stim*.txt")}
    return ref, sidecar, files


def _fast(tmp: Path, sidecar: dict, files: dict, steps=STEPS, edit=lambda text: text):
    spikes = np.zeros((steps, sidecar["neurons"]), dtype=np.int8)
    membranes = np.zeros((steps, sidecar["neurons"]))
    for d in sidecar["decks"]:
        deck = parse_deck(edit((tmp / d["netlist"]).read_text()), files, steps, d["netlist"])
        run = run_deck(deck)
        assert list(deck.neurons) == list(range(d["start"], d["stop"]))
        spikes[:, deck.neurons], membranes[:, deck.neurons] = run.spikes, run.membranes
    return spikes, membranes


@pytest.mark.parametrize("mode", ["open", "closed"])
def test_nominal_decks_reproduce_the_reference(tmp_path, mode):
    graph = random_graph(3, sizes=(10, 10), cross=True)  # a zero-reset and a subtract-reset group
    core = graph.arrays()
    x = near_threshold_currents(core, steps=STEPS, seed=3)
    ref, sidecar, files = _write(tmp_path, graph, x, mode)
    spikes, membranes = _fast(tmp_path, sidecar, files)
    assert ref.spikes.sum() > 20 and (spikes == ref.spikes).all()
    assert np.abs(membranes - ref.membranes).max() < 1e-9  # exact up to rounding (margins here are >= 1e-4)
    # negative control: the first synapse resistor of each deck 1 % off moves its neuron's membranes
    one = lambda t: re.sub(r"^(R\d+_\d+_\d+ \S+ \S+ )(\S+)$", lambda m: m.group(1) + repr(float(m.group(2)) * 1.01), t,  # noqa: E731
                           count=1, flags=re.M)
    _, moved = _fast(tmp_path, sidecar, files, edit=one)
    assert np.abs(moved - ref.membranes).max() > 1e-4


def test_kernel_matches_quadrature():
    design = Design()
    window = Pulse(design.syn_start, design.edge, design.edge, design.syn_width, design.step)
    for tau in (0.3e-6, 1e-6, 4e-6, 16e-6, 1e-3):
        assert kernel(window, design.step, np.array([1 / tau]))[0] == pytest.approx(design.kernel(tau), rel=1e-10)


def test_what_the_deck_says_against_ngspice(tmp_path):
    """An op-amp of gain 1e6 (membranes ~1e-4 off the reference) and a hand edit (every synapse × 1.005):
    the fast model follows the deck and agrees with ngspice on it within the a-priori budget."""
    graph = random_graph(5, sizes=(8, 8))
    core = graph.arrays()
    x = near_threshold_currents(core, steps=12, seed=5, deltas=(0.05, 0.1))
    ref, sidecar, files = _write(tmp_path, graph, x, budget=True, form="opamp", gain=1e6)
    for d in sidecar["decks"]:  # the hand edit: every synapse resistor x 1.005
        path = tmp_path / d["netlist"]
        path.write_text(re.sub(r"^(R\d+_\d+_\d+ \S+ \S+ )(\S+)$", lambda m: m.group(1) + repr(float(m.group(2)) * 1.005),
                               path.read_text(), flags=re.M))
    spikes, membranes = _fast(tmp_path, sidecar, files, steps=12)
    spice = simulate_dir(tmp_path, workers=1, trust_edits=True)
    allow = allowance(core, sidecar["budget"], membranes)
    off = np.abs(membranes - ref.membranes) / allowance(core, sidecar["budget"], ref.membranes)
    assert off.max() > 20  # the reference is far outside the budget of this circuit ...
    assert (np.abs(spice.membranes - membranes) <= allow).all()  # ... the fast model is within it
    decidable = np.abs(membranes - core.per_neuron("theta")) > allow
    assert (spice.spikes == spikes)[decidable].all()


def test_refuses_what_it_cannot_model(tmp_path):
    graph = random_graph(1, sizes=(6, 6))
    x = near_threshold_currents(graph.arrays(), steps=4)
    _, sidecar, files = _write(tmp_path, graph, x)
    text = (tmp_path / sidecar["decks"][0]["netlist"]).read_text()
    parse_deck(text, files, 4)
    cases = {"element 'L1' is not one": text.replace(".options interp", "L1 sum0 0 1e-6\n.options interp"),
             "must join one summing node": re.sub(r"^(R\S+) (\S+) (sum\d+)", r"\1 \2 xl0", text, count=1, flags=re.M),
             "not found": text.replace("_stim0.txt", "_missing.txt"),
             "not driven by a PULSE": re.sub(r"^Vwin win 0 PULSE\(.*\)$", "Vwin win 0 DC 1", text, flags=re.M),
             "window-gated": re.sub(r"^E(\S+) (\S+) 0 (\S+) 0 (\S+)$", r"X\1 \3 win \2 rcsnn_line gain=\4", text, count=1,
                                    flags=re.M),
             "windows not in the order": re.sub(r"^(Vwin win 0 PULSE\(0 1 )\S+", r"\g<1>1e-9", text, flags=re.M),
             "across the feedback capacitor": text.replace(".options interp", "Bclamp0 mem0 sum0 I=1000.0*(max(V(mem0,sum0)"
                                                                              "-2,0))\n.options interp")}
    for message, broken in cases.items():
        with pytest.raises(RcsnnError, match=message):
            parse_deck(broken, files, 4)
    stim = next(iter(files))
    moved = "\n".join(" ".join([f"{float(r.split()[0]) + 3e-8!r}", *r.split()[1:]]) if i >= 2 and i % 2 == 0 else r
                      for i, r in enumerate(files[stim].splitlines()))  # level changes inside the windows
    with pytest.raises(RcsnnError, match="changes inside a window"):
        parse_deck(text, {**files, stim: moved}, 4)


def test_variation_is_a_function_of_seed_name_and_tolerance(tmp_path):
    graph = random_graph(2, sizes=(40, 40), density=0.5)
    x = near_threshold_currents(graph.arrays(), steps=6)
    _, sidecar, files = _write(tmp_path, graph, x)
    closed_dir = tmp_path / "closed"
    _, closed, _ = _write(closed_dir, graph, x, "closed")
    block = (tmp_path / sidecar["decks"][0]["netlist"]).read_text()
    whole = (closed_dir / "core.cir").read_text()
    tol = Tolerance(r=0.02, c=0.01, offset=1e-3)
    assert vary_deck(block, Tolerance(), 7) == block
    a, b, c = vary_deck(block, tol, 7), vary_deck(block, tol, 7), vary_deck(block, tol, 8)
    assert a == b and a != c
    values = lambda text: {f[0]: float(f[3]) for f in (ln.split() for ln in text.splitlines()) if f and f[0][:1] == "R"}  # noqa: E731
    nominal, varied = values(block), values(a)
    factors = np.array([varied[k] / nominal[k] - 1 for k in nominal])
    assert len(factors) > 300 and 0.016 < factors.std() < 0.024 and abs(factors.mean()) < 0.003
    whole_varied = values(vary_deck(whole, tol, 7))
    assert all(whole_varied[k] == varied[k] for k in varied)  # the same part in the block and the closed-loop deck
    z = normals(3, tuple(f"k{i}" for i in range(20000)), "r")
    assert abs(z.mean()) < 0.03 and abs(z.std() - 1) < 0.03 and (np.abs(z) > 3).mean() < 0.005
    # the fast model's path varies the parsed values by the same factors: the same numbers
    by_text = read_circuit(a, files, 6)
    by_values = vary_circuit(read_circuit(block, files, 6), tol, 7)
    for field in ("resistance", "rl", "c", "threshold"):
        assert np.array_equal(getattr(by_text, field), getattr(by_values, field)), field
    # the offsets reach the fast model: per-neuron thresholds, σ = 1 mV around the nominal
    deck = parse_deck(a, files, 6)
    nominal_th = parse_deck(block, files, 6).threshold
    assert 0.5e-3 < np.std(deck.threshold - nominal_th) < 1.6e-3
    with pytest.raises(RcsnnError, match="--r-tol"):
        Tolerance(r=0.5).check()
    assert json.loads(json.dumps(sidecar))["decks"]


def test_a_tolerance_band_keeps_every_part_within_it(tmp_path):
    """``band``: a datasheet's ±tol, drawn uniform (σ = tol/√3), the same numbers in the deck and the fast model;
    the normal draw of the same σ-value, the negative control, leaves parts outside the band."""
    graph = random_graph(4, sizes=(40, 40), density=0.5)
    x = near_threshold_currents(graph.arrays(), steps=6)
    _, sidecar, files = _write(tmp_path, graph, x)
    block = (tmp_path / sidecar["decks"][0]["netlist"]).read_text()
    nominal = read_circuit(block, files, 6)
    band, sigma = Tolerance(r=0.01, c=0.02, band=True), Tolerance(r=0.01, c=0.02)
    drawn = vary_circuit(nominal, band, 9)
    error = np.concatenate([drawn.resistance / nominal.resistance, drawn.rl / nominal.rl]) - 1
    assert np.abs(error).max() <= 0.01 and 0.85 < error.std() / (0.01 / 3**0.5) < 1.15
    assert np.abs(drawn.c / nominal.c - 1).max() <= 0.02
    assert (np.abs(vary_circuit(nominal, sigma, 9).resistance / nominal.resistance - 1) > 0.01).mean() > 0.2
    by_text = read_circuit(vary_deck(block, band, 9), files, 6)
    for field in ("resistance", "rl", "c"):
        assert np.array_equal(getattr(by_text, field), getattr(drawn, field)), field
    assert band.label == "r ±1%, c ±2%, offset 0 mV" and sigma.label == "r 1%, c 2%, offset 0 mV"


def test_a_calibration_trims_the_input_resistors_and_the_leak_to_its_step(tmp_path):
    graph = random_graph(3, sizes=(40, 40), density=0.5)
    x = near_threshold_currents(graph.arrays(), steps=6)
    _, sidecar, files = _write(tmp_path, graph, x)
    block = (tmp_path / sidecar["decks"][0]["netlist"]).read_text()
    nominal = read_circuit(block, files, 6)
    drawn, step = Tolerance(r=0.05, c=0.02), 0.002
    untrimmed = vary_circuit(nominal, drawn, 5)
    trimmed = vary_circuit(nominal, dataclasses.replace(drawn, trim=("input", "leak"), trim_step=step), 5)
    inputs = np.array([bool(re.fullmatch(r"Rx\d+", name)) for name in nominal.resistors])
    assert inputs.sum() == len(nominal.cells) and (~inputs).sum() > 300
    error = lambda varied, field: getattr(varied, field) / getattr(nominal, field) - 1  # noqa: E731
    tau = trimmed.rl * trimmed.c / (nominal.rl * nominal.c) - 1
    assert np.abs(error(untrimmed, "resistance")[inputs]).max() > 10 * step  # the draw is far off the grid...
    assert np.abs(error(trimmed, "resistance")[inputs]).max() <= step / 2 + 1e-12  # ...and the trim brings it back
    assert np.abs(tau).max() <= step / 2 + 1e-12 and np.abs(error(trimmed, "c")).max() > 10 * step
    assert 0.2 < np.std(error(trimmed, "resistance")[inputs]) / (step / 12**0.5) < 1.6  # a residual, not zero
    assert np.array_equal(trimmed.resistance[~inputs], untrimmed.resistance[~inputs])  # synapses are not trimmed
    only_inputs = vary_circuit(nominal, dataclasses.replace(drawn, trim=("input",), trim_step=step), 5)
    assert np.array_equal(only_inputs.rl, untrimmed.rl)
    # the deck's text is varied by the same factors
    text = vary_deck(block, dataclasses.replace(drawn, trim=("input", "leak"), trim_step=step), 5)
    by_text = read_circuit(text, files, 6)
    for field in ("resistance", "rl", "c"):
        assert np.array_equal(getattr(by_text, field), getattr(trimmed, field)), field
    with pytest.raises(RcsnnError, match="--trim synapse"):
        Tolerance(r=0.01, trim=("synapse",)).check()
    with pytest.raises(RcsnnError, match="--trim-step"):
        Tolerance(r=0.01, trim=("leak",), trim_step=0.0).check()


def test_comparator_hysteresis_in_ngspice_and_in_the_fast_model(tmp_path):
    """``--hysteresis H``: each comparator trips at θ + H/2 after a 0 and at θ − H/2 after a 1. ngspice's decisions
    follow that rule and the fast model's equal them; the hysteresis changes decisions the contract takes at θ.
    Negative control: the fast model of the same decks without it parts from ngspice."""
    hys = 0.02
    graph = random_graph(7, sizes=(8, 8))
    core = graph.arrays()
    x = near_threshold_currents(core, steps=12, seed=7, deltas=(0.002, 0.005, 0.05))
    ref, sidecar, files = _write(tmp_path, graph, x, mode="closed", budget=True, hysteresis=hys)
    deck = (tmp_path / sidecar["decks"][0]["netlist"]).read_text()
    assert deck.count("rcsnn_comparator_hys hys=0.02") == core.n_neurons
    spikes, membranes = _fast(tmp_path, sidecar, files, steps=12)
    spice = simulate_dir(tmp_path, workers=1)
    allow = allowance(core, sidecar["budget"], membranes)
    assert (np.abs(spice.membranes - membranes) <= allow).all()
    trip = core.per_neuron("theta") + hys * (0.5 - np.vstack([np.zeros((1, core.n_neurons)), spice.spikes[:-1]]))
    decidable = np.abs(spice.membranes - trip) > allow
    assert (spice.spikes == (spice.membranes >= trip))[decidable].all()  # the rule, in ngspice
    assert (spice.spikes == spikes)[decidable].all() and decidable.mean() > 0.95
    assert (spikes != ref.spikes).any()  # decisions the contract takes otherwise
    plain, _ = _fast(tmp_path, sidecar, files, steps=12, edit=lambda t: t.replace("rcsnn_comparator_hys hys=0.02",
                                                                                   "rcsnn_comparator"))
    assert (plain != spice.spikes)[decidable].any()


def test_hysteresis_is_refused_for_spike_counts(tmp_path):
    graph = random_graph(2, sizes=(6, 6))
    counted = graph.arrays()
    counted = dataclasses.replace(counted, groups=tuple(dataclasses.replace(g, max_spikes=3) for g in counted.groups))
    x = near_threshold_currents(counted, steps=4)
    with pytest.raises(RcsnnError, match="only single-spike comparators take hysteresis"):
        write_netlists(Graph.from_arrays(counted), x, tmp_path, Design(hysteresis=0.01), "closed", None, "test")
