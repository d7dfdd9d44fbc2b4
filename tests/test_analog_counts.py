"""Spike counts (``max_spikes`` K ≠ 1, docs/contract.md) in the SPICE circuit, count for count, in real ngspice.

Small cores (2 groups × 8 neurons, 16 steps) driven hard enough that counts > 1 occur (asserted): K = 3 with
the zero and subtract resets, K = 2 with ``zero_drop_input`` and ``subtract_before_decay``, and unbounded
counts with ``subtract_before_decay`` (Sinabs' MultiSpike), open loop in both forms and closed loop: the SPICE
count raster equals the float reference's, every membrane within its a-priori budget. Negative controls
(hand edits of the written decks): spike lines clipped to 0/1 and a subtract reset that removes θ·min(s, 1)
instead of θ·s fail with membranes outside the budget; a closed-loop quantiser clipped to 1 fails with
decidable count mismatches. The count boundaries of the verdict, K_eff and the refusals are checked too.
"""

import dataclasses
import re

import numpy as np
import pytest
from conftest import random_core
from test_analog_kinds import edited

from rcsnn.analog.design import Design
from rcsnn.analog.fastmodel import parse_deck
from rcsnn.analog.netlist import write_netlists
from rcsnn.analog.neurons import MAX_COMPARATORS, count_levels
from rcsnn.analog.partition import partition
from rcsnn.analog.simulate import simulate_dir
from rcsnn.errors import RcsnnError
from rcsnn.ir.graph import Graph
from rcsnn.ir.nodes import UNBOUNDED
from rcsnn.ir.reference import simulate_float
from rcsnn.verify.spice import judge, margins

STEPS = 16
#: name -> (max_spikes, resets of the two groups)
CORES = {"K3": (3, ("zero", "subtract")), "K2 drop": (2, ("zero_drop_input", "subtract_before_decay")),
         "unbounded": (UNBOUNDED, ("subtract_before_decay", "subtract_before_decay"))}
#: (core, form, loop)
CASES = [("K3", "ideal", "open"), ("K2 drop", "ideal", "open"), ("unbounded", "ideal", "open"),
         ("K3", "opamp", "open"), ("unbounded", "opamp", "open"), ("unbounded", "ideal", "closed")]


def count_core(name, seed=41):
    limit, resets = CORES[name]
    core = random_core(seed, sizes=(8, 8), resets=resets)
    return dataclasses.replace(core, groups=tuple(dataclasses.replace(g, max_spikes=limit) for g in core.groups)).validate()


def strong(core, gain=3.0, steps=STEPS):
    return core.input_currents(gain * np.random.default_rng(0).normal(size=(steps, core.n_inputs)))


def design(form):
    return Design.scaled(form="opamp", gain=1e9) if form == "opamp" else Design.scaled()


def write(directory, core, x, form, loop):
    ref = simulate_float(core, x)
    graph = Graph.from_arrays(core)
    graph = partition(graph, 2) if loop == "open" else graph
    return ref, write_netlists(graph, x, directory, design(form), loop, ref.spikes)


@pytest.fixture(scope="module")
def decks(tmp_path_factory):
    root = tmp_path_factory.mktemp("counts")
    out = {}
    for k, (name, form, loop) in enumerate(CASES):
        core = count_core(name)
        x = strong(core)
        out[name, form, loop] = (root / f"case{k}", core, *write(root / f"case{k}", core, x, form, loop))
    return out


def verdict_of(directory, core, ref, sidecar, loop, trust=False):
    got = simulate_dir(directory, workers=2, trust_edits=trust)
    return got, judge(core, ref, got, sidecar["budget"], loop)


@pytest.mark.parametrize("case", CASES, ids=["-".join(c) for c in CASES])
def test_counts_spike_for_spike(decks, case):
    directory, core, ref, sidecar = decks[case]
    assert (ref.spikes > 1).sum() >= 10 and 0.05 < (ref.spikes > 0).mean() < 0.6  # counts > 1 occur, often
    got, verdict = verdict_of(directory, core, ref, sidecar, case[2])
    assert got.spikes.dtype == np.int32 and np.array_equal(got.spikes, ref.spikes), verdict.comparison.summary()
    assert verdict.passed and verdict.violations == 0 and verdict.worst["ratio"] < 1, verdict.worst
    assert not any(b["disagrees"] for b in verdict.budgets), verdict.budgets
    assert len(verdict.undecidable) == 0
    limit = CORES[case[0]][0]
    levels = [g["count_levels"] for g in sidecar["groups"]]
    assert levels == count_levels(core, ref.membranes).tolist()
    assert all(k > ref.spikes.max() or k == limit for k in levels)  # room above every reference count


def test_count_elements_and_binary_decks_unchanged(decks, tmp_path):
    text = (decks["K3", "ideal", "open"][0] / "block_000.cir").read_text()
    assert re.search(r"^Bbit0_1 bit0_1 0 V=floor\(min\(max\(floor\(V\(mem0\)/V\(th0\)\),0\),3\)/2\)", text, re.M)
    assert "Vhalf half 0 DC 0.5" in text and re.search(r"^Bc0 c0 0 V=1\*V\(c0_0\)\+2\*V\(c0_1\)$", text, re.M)
    assert re.search(r"^Bz0 z0 0 V=min\(V\(s0\),1\)$", text, re.M)  # the zero reset uses min(s, 1)
    opamp = (decks["K3", "opamp", "open"][0] / "block_000.cir").read_text()
    assert "Xc0_2 mem0 th0_3 clk c0_2 rcsnn_comparator" in opamp and re.search(r"^Vth0_3 th0_3 0 DC ", opamp, re.M)
    binary = random_core(41, sizes=(8, 8))  # the same core with binary spikes: no count element, no count key
    x = strong(binary)
    sidecar = write_netlists(Graph.from_arrays(binary), x, tmp_path, Design.scaled(), budget=False)
    plain = (tmp_path / "core.cir").read_text()
    assert not re.search(r"^(Bc|Bbit|Bz|Vhalf)", plain, re.M) and "Xc0 mem0 th0 clk c0 rcsnn_comparator" in plain
    assert not any("count_levels" in g or "max_spikes" in g for g in sidecar["groups"])


def lines_clipped(line):
    """A spike-line driver ``E<name> <out> 0 <level> 0 <gain>`` that carries 0/1 only: gain·min(V(level), 1)."""
    name, out, _, level, _, gain = line.split()
    return f"B{name[1:]} {out} 0 V={gain}*min(V({level}),1)\n"


def reset_clipped(line):
    """The subtract self-synapse ``Rself<i> n<i> <node> R`` fed by −V_S·min(s, 1): removes θ·min(s, 1)."""
    name, _, node, value = line.split()
    i = name[len("Rself"):]
    return f"Bclip{i} nclip{i} 0 V=-min(V(s{i}),1)\n{name} nclip{i} {node} {value}\n"


@pytest.mark.parametrize("what,pattern,change", [("spike lines 0/1", r"E[ei]\d+ ", lines_clipped),
                                                 ("reset theta*min(s,1)", r"Rself\d+ ", reset_clipped)])
def test_counts_clipped_to_one_fail(decks, tmp_path, what, pattern, change):
    directory, core, ref, sidecar = decks["unbounded", "ideal", "open"]
    target, count = edited(directory, tmp_path, pattern, change)
    assert count > 0
    _, verdict = verdict_of(target, core, ref, sidecar, "open", trust=True)
    assert not verdict.passed and verdict.violations > 0 and verdict.worst["ratio"] > 2, verdict.worst


def test_closed_loop_quantiser_clipped_fails(decks, tmp_path):
    directory, core, ref, sidecar = decks["unbounded", "ideal", "closed"]
    target, count = edited(directory, tmp_path, r"Bc\d+ ", lambda line: line.replace(" V=", " V=min(1,", 1)
                           .rstrip("\n") + ")\n")
    assert count == core.n_neurons
    got, verdict = verdict_of(target, core, ref, sidecar, "closed", trust=True)
    assert got.spikes.max() == 1 and not verdict.passed
    assert verdict.decidable_mismatches > 0 and verdict.first["decidable"] and verdict.first["s_ref"] > 1, verdict.first


def test_margin_is_to_the_nearest_count_boundary():
    core = count_core("K3")  # θ of group g0, K = 3: boundaries θ, 2θ, 3θ
    theta = core.per_neuron("theta")[0]
    budget = {"groups": [{"group": g.name, "sampling": 1e-7} for g in core.groups]}
    v = np.zeros((6, core.n_neurons))
    v[:, 0] = [0.5 * theta, 2 * theta + 1e-6, 2.6 * theta, 5 * theta, 3 * theta - 2e-6, 1.0 * theta]
    margin, band = margins(core, budget, v, np.full(v.shape, 1e-5))
    np.testing.assert_allclose(margin[:, 0], [0.5 * theta, 1e-6, 0.4 * theta, 2 * theta, 2e-6, 0.0], atol=1e-12)
    np.testing.assert_allclose(band[:, 0], 1e-5 + np.array([0, 1, 2, 2, 2, 0]) * 1e-7)
    binary = dataclasses.replace(core, groups=tuple(dataclasses.replace(g, max_spikes=1) for g in core.groups))
    margin, _ = margins(binary, budget, v, np.full(v.shape, 1e-5))  # negative control: binary, only θ counts
    np.testing.assert_allclose(margin[:, 0], np.abs(v[:, 0] - theta))
    assert margin[1, 0] > 1e-5 and margin[4, 0] > 1e-5


def test_count_levels_and_refusals(tmp_path, decks):
    core = count_core("unbounded")
    x = strong(core, gain=12.0)
    ref = simulate_float(core, x)
    levels = count_levels(core, ref.membranes)
    assert (levels > MAX_COMPARATORS).any() and ref.spikes.max() < levels.max()
    k3 = count_core("K3")
    assert count_levels(k3, simulate_float(k3, strong(k3, gain=12.0)).membranes).tolist() == [3, 3]
    graph = Graph.from_arrays(core)
    with pytest.raises(RcsnnError, match=rf"--form opamp: group 'g\d' reaches spike counts up to {levels.max()} .*"
                                         rf"at most {MAX_COMPARATORS}; use --form ideal"):
        write_netlists(graph, x, tmp_path / "a", Design.scaled(form="opamp"), budget=False)
    write_netlists(graph, x, tmp_path / "b", Design.scaled(), budget=False)  # the ideal form builds it
    with pytest.raises(RcsnnError, match="spike counts .* not in host-driven decks"):
        write_netlists(graph, x, tmp_path / "c", Design.scaled(), inputs="host", budget=False)
    directory = decks["K3", "ideal", "open"][0]
    with pytest.raises(RcsnnError, match="spike-count quantiser .* the fast model carries 0/1 spike levels only"):
        parse_deck((directory / "block_000.cir").read_text(), {}, STEPS, "block_000.cir")
