"""The SPICE circuit of issue 10's semantics in real ngspice: IF, per-neuron τ and θ, the reset modes, dense
weights, CubaLIF (current_delay 0 and 1) and retimed feed-forward stacks, each spike for spike within its
a-priori budget, and a negative control per new element (a wrong element value the verdict rejects)."""

import dataclasses
import json
import re

import numpy as np
import pytest
from conftest import random_core

from rcsnn.analog.design import Design
from rcsnn.analog.netlist import EXT_LIBRARY, write_netlists
from rcsnn.analog.simulate import simulate_dir
from rcsnn.cli import main
from rcsnn.errors import RcsnnError
from rcsnn.ir.arrays import SynapseBlock
from rcsnn.ir.graph import Graph
from rcsnn.ir.reference import simulate_float
from rcsnn.verify.spice import judge

STEPS = 16


def regroup(core, **values):
    """``core`` with every group's fields replaced (a callable gets the group)."""
    groups = tuple(dataclasses.replace(g, **{k: v(g) if callable(v) else v for k, v in values.items()})
                   for g in core.groups)
    return dataclasses.replace(core, groups=groups).validate()


def base(seed=41):
    return random_core(seed, sizes=(6, 6))


def per_neuron(core):
    rng = np.random.default_rng(5)
    return regroup(core, beta=lambda g: rng.uniform(0.3, 0.95, g.size), theta=lambda g: rng.uniform(0.5, 1.5, g.size))


def dense(core):
    rng = np.random.default_rng(6)
    m = rng.normal(0, 0.6, (6, 6)) * (rng.random((6, 6)) < 0.5)
    synapses = tuple(dataclasses.replace(s, alpha=1.0) for s in core.synapses)
    return dataclasses.replace(core, matrices={"T": m}, synapses=synapses).validate()


def cuba(delay, resets=("zero", "subtract")):
    def make(core):
        rng = np.random.default_rng(7)
        return regroup(core, beta_syn=lambda g: rng.uniform(0.4, 0.9, g.size), current_delay=delay,
                       reset=lambda g: resets[int(g.name[1:])])
    return make


CASES = {
    "IF": lambda c: regroup(c, beta=1.0),
    "per-neuron tau and theta": per_neuron,
    "subtract_before_decay": lambda c: regroup(c, reset="subtract_before_decay"),
    "zero_drop_input": lambda c: regroup(c, reset="zero_drop_input"),
    "dense weights": dense,
    "CubaLIF current_delay 0": cuba(0, ("zero_drop_input", "subtract_before_decay")),
    "CubaLIF current_delay 1": cuba(1),
}


def currents(core, steps=STEPS, seed=0):
    return core.input_currents(np.random.default_rng(seed).normal(size=(steps, core.n_inputs)))


def write(tmp_path, core, x, mode="closed"):
    ref = simulate_float(core, x)
    graph = Graph.from_arrays(core)
    if mode == "open":
        from rcsnn.analog.partition import partition
        graph = partition(graph, len(core.groups))
    sidecar = write_netlists(graph, x, tmp_path, Design.scaled(), mode, ref.spikes)
    return ref, sidecar


def check(directory, core, ref, sidecar, mode="closed", trust=False):
    got = simulate_dir(directory, workers=2, trust_edits=trust)
    return judge(core, ref, got, sidecar["budget"], mode)


@pytest.fixture(scope="module")
def decks(tmp_path_factory):
    """Each case's core, stimulus, reference and open-loop netlists, written once."""
    root = tmp_path_factory.mktemp("kinds")
    out = {}
    for k, (name, make) in enumerate(CASES.items()):
        core = make(base())
        x = currents(core)
        ref, sidecar = write(root / f"case{k}", core, x, "open")
        out[name] = (root / f"case{k}", core, ref, sidecar)
    return out


@pytest.mark.parametrize("case", list(CASES))
def test_kind_spike_for_spike(decks, case):
    directory, core, ref, sidecar = decks[case]
    assert 0.05 < ref.spikes.mean() < 0.6, ref.spikes.mean()
    verdict = check(directory, core, ref, sidecar, "open")
    assert verdict.comparison.mismatches == 0, verdict.comparison.summary()
    assert verdict.passed and verdict.violations == 0 and verdict.worst["ratio"] < 1, verdict.worst
    assert not any(b["disagrees"] for b in verdict.budgets), verdict.budgets
    assert len(verdict.undecidable) == 0


def _scale(value: str, factor: float) -> str:
    return repr(float(value) * factor)


def edited(directory, tmp_path, pattern, change):
    """A copy of ``directory`` whose deck lines matching ``pattern`` are rewritten by ``change(line)``; how many."""
    import shutil

    target = tmp_path / "edited"
    shutil.copytree(directory, target)
    count = 0
    for deck in sorted(target.glob("*.cir")):
        lines = deck.read_text().splitlines(keepends=True)
        for k, line in enumerate(lines):
            if re.match(pattern, line):
                lines[k] = change(line)
                count += 1
        deck.write_text("".join(lines))
    return target, count


def last_value(factor):
    """Multiply the last field of an element line (its value) by ``factor``."""
    def change(line):
        head, value = line.rstrip("\n").rsplit(" ", 1)
        return f"{head} {_scale(value, factor)}\n"
    return change


def param(name, factor):
    def change(line):
        return re.sub(rf"\b{name}=(\S+)", lambda m: f"{name}={_scale(m.group(1), factor)}", line)
    return change


NEGATIVE = {  # case: (element lines, the wrong value), each must FAIL with membranes outside the budget
    "IF": (r"Xn\d+ .*rcsnn_integrator_ideal", param("c", 1.002)),  # integrator capacitors 0.2 % large
    "per-neuron tau and theta": (r"Xn\d+ ", param("rl", 1.02)),  # each neuron's own leak 2 % off
    "subtract_before_decay": (r"Rself\d+ ", last_value(0.9)),  # a self-synapse of −θ·β/0.9
    "zero_drop_input": (r"Bwg\d+ ", lambda line: re.sub(r"\*\(1-V\(\w+\)\)", "", line)),  # the input is not dropped
    "dense weights": (r"R\d+_\d+_\d+ ", last_value(1.005)),  # dense synapse resistors 0.5 % large
    "CubaLIF current_delay 0": (r"Rs\d+ ", last_value(1.005)),  # transfer resistors 0.5 % large
    "CubaLIF current_delay 1": (r"Xs\d+ ", param("rl", 1.02)),  # the synaptic state's leak 2 % off
}


@pytest.mark.parametrize("case", list(NEGATIVE))
def test_wrong_element_value_fails(decks, case, tmp_path):
    directory, core, ref, sidecar = decks[case]
    pattern, change = NEGATIVE[case]
    target, count = edited(directory, tmp_path, pattern, change)
    assert count > 0
    verdict = check(target, core, ref, sidecar, "open", trust=True)
    assert not verdict.passed and verdict.violations > 0 and verdict.worst["ratio"] > 2, verdict.worst


def test_netlist_elements_of_the_new_kinds(decks):
    """Per-neuron thresholds and leaks, the leak-free cell library, the tail window and CubaLIF's elements."""
    text = {name: "".join(p.read_text() for p in sorted(d[0].glob("*.cir"))) for name, d in decks.items()}
    assert f".include {EXT_LIBRARY}" in text["IF"] and "rcsnn_integrator_ideal" in text["IF"]
    assert "gmin=1e-20" in text["IF"] and f".include {EXT_LIBRARY}" not in text["dense weights"]
    core = decks["per-neuron tau and theta"][1]
    assert len(set(re.findall(r"^Vthn\d+ thn\d+ 0 DC (\S+)", text["per-neuron tau and theta"], re.M))) == core.n_neurons
    assert len(set(re.findall(r"rl=(\S+)", text["per-neuron tau and theta"]))) == core.n_neurons
    for name, delay in (("CubaLIF current_delay 0", 0), ("CubaLIF current_delay 1", 1)):
        assert "Vtwin twin 0 PULSE" in text[name] and re.search(r"^Es6 sl6 0 syn6 0 1$", text[name], re.M)
        state = re.search(r"^Xs6 sum6 syn6 0 0 (\w+) ", text[name], re.M).group(1)
        membrane = re.search(r"^Xn6 sv6 mem6 \w+ rwin (\w+) ", text[name], re.M).group(1)
        assert (state, membrane) == (("win", "twin") if delay == 0 else ("twin", "win"))
        assert re.search(r"^Rself6 n6 sv6 ", text[name], re.M)  # the self-synapse acts on the membrane
    # zero_drop_input in a current_delay 0 CubaLIF group gates its membrane's (tail) window
    assert re.search(r"^Bwg0 wg0 0 V=V\(twin\)\*\(1-V\(s0\)\)$", text["CubaLIF current_delay 0"], re.M)
    assert "Vtwin" not in text["dense weights"] and re.search(r"^Bwg0 wg0 0 V=V\(win\)\*\(1-V\(s0\)\)$",
                                                             text["zero_drop_input"], re.M)
    budget = decks["CubaLIF current_delay 1"][3]["budget"]["groups"][0]
    assert budget["state"]["history"] > 0 and budget["state"]["current"] > 0 and "state_gain" in budget["calibrated"]
    assert "state" not in decks["IF"][3]["budget"]["groups"][0]


def test_retimed_stack_verifies(tmp_path, capsys):
    """A feed-forward stack (delay-0 synapses one level up) is retimed, verified on its skewed stream, and its
    unskewed SPICE raster equals the stack's own float reference."""
    core = random_core(43, sizes=(6, 6, 6), resets=("zero", "subtract", "subtract_before_decay"), shared=False)
    rng = np.random.default_rng(3)
    stack = (SynapseBlock("g0", "g1", "A", 0.5, delay=0), SynapseBlock("g1", "g2", "B", 1.0, delay=0))
    matrices = {**core.matrices, "A": (rng.choice([-1, 1], (6, 6)) * (rng.random((6, 6)) < 0.5)).astype(np.int8),
                "B": rng.normal(0, 0.7, (6, 6)) * (rng.random((6, 6)) < 0.5)}
    core = dataclasses.replace(core, matrices=matrices, synapses=core.synapses + stack).validate()
    graph = Graph.from_arrays(core)
    with pytest.raises(RcsnnError, match="delay 0"):
        write_netlists(graph, currents(core), tmp_path / "refused", Design.scaled())
    graph_file = tmp_path / "stack.json"
    np.save(tmp_path / "u.npy", np.random.default_rng(0).normal(size=(12, core.n_inputs)))
    _save(graph, graph_file)
    code = main(["verify", str(graph_file), "--backend", "spice", "--input", str(tmp_path / "u.npy"),
                 "--mode", "closed", "--out", str(tmp_path / "v")])
    out = capsys.readouterr().out
    report = json.loads((tmp_path / "v" / "report.json").read_text())
    assert code == 0 and report["verdict"] == "PASS", out
    assert report["figures"]["retimed"] == {"skew": {"g1": 1, "g2": 2}, "unskewed_differences": 0}
    assert report["comparison"]["steps"] == 14 and "retimed (same-step synapses)" in out


def _save(graph, path):
    from rcsnn.ir.serialize import save_graph

    save_graph(graph, path)
    return path


def test_what_the_circuit_lacks_is_refused(tmp_path):
    core = regroup(base(), beta_syn=0.0, current_delay=1)
    with pytest.raises(RcsnnError, match="beta_syn 0 and current_delay 1 is a one-step delay line"):
        write_netlists(Graph.from_arrays(core), currents(core), tmp_path / "a", Design.scaled(), budget=False)
    for make, what in ((cuba(0), "CubaLIF"), (CASES["zero_drop_input"], "zero_drop_input")):
        with pytest.raises(RcsnnError, match=f"--form opamp: .*{what}"):
            write_netlists(Graph.from_arrays(make(base())), currents(base()), tmp_path / "b",
                           Design.scaled(form="opamp"), budget=False)


def test_opamp_form_per_neuron_if_and_dense(tmp_path):
    """The op-amp form builds per-neuron leaks, the leak-free integrator (IF) and dense weights too."""
    rng = np.random.default_rng(8)
    core = regroup(dense(base()), beta=lambda g: 1.0 if g.name == "g0" else rng.uniform(0.4, 0.95, g.size),
                   reset="subtract_before_decay")
    x = currents(core)
    ref = simulate_float(core, x)
    sidecar = write_netlists(Graph.from_arrays(core), x, tmp_path, Design.scaled(form="opamp", gain=1e9), "closed",
                             ref.spikes)
    text = (tmp_path / "core.cir").read_text()
    assert "rcsnn_integrator_opamp gain=" in text and "rcsnn_neuron_opamp gain=" in text
    verdict = check(tmp_path, core, ref, sidecar)
    assert ref.spikes.sum() > 10 and verdict.passed and verdict.comparison.mismatches == 0, verdict.worst
