"""Real part values (rcsnn.analog.eseries, rcsnn.analog.snap): the IEC 60063 tables, the nearest-value rule, the
snapped core folded into the reference, and its decks verified in ngspice (with the unsnapped reference as the
negative control)."""

from __future__ import annotations

import dataclasses
import json
import math
import re

import numpy as np
import pytest
from conftest import SMALL_CHECKPOINT, random_core

from rcsnn.analog.design import Design
from rcsnn.analog.eseries import E24, E192, SERIES, parse_snap
from rcsnn.analog.netlist import write_netlists
from rcsnn.analog.neurons import plan
from rcsnn.analog.partition import partition
from rcsnn.analog.simulate import simulate_dir
from rcsnn.analog.snap import SNAPPED_CORE, snap_core, snap_graph
from rcsnn.cli import main
from rcsnn.errors import RcsnnError
from rcsnn.ir.graph import Graph
from rcsnn.ir.reference import simulate_float
from rcsnn.verify.spice import judge


def test_series_tables():
    assert [len(SERIES[k]) for k in ("E12", "E24", "E96", "E192")] == [12, 24, 96, 192]
    for table in SERIES.values():
        assert table[0] == 100 and all(a < b for a, b in zip(table, table[1:])) and table[-1] < 1000
    assert set(SERIES["E96"]) < set(E192) and set(SERIES["E12"]) < set(E24)
    # the standard's values, not 10^(k/n) rounded: E24 2.7 (2.61), 8.2 (8.25); E192 9.20 (9.19)
    assert {270, 820} <= set(E24) and 920 in E192 and 919 not in E192
    assert SERIES["E96"][:4] == (100, 102, 105, 107) and SERIES["E96"][-1] == 976


@pytest.mark.parametrize("rule, value, nearest", [
    ("E24", 9.6, 10.0), ("E24", 9.5, 9.1), ("E24", 0.0096, 0.01), ("E24", 1.04e6, 1e6), ("E24", 1.06e6, 1.1e6),
    ("E96", 990.0, 1000.0), ("E96", 980.0, 976.0), ("E96", 100.9, 100.0), ("E96", 101.0, 102.0), ("E192", 9.19e3, 9.2e3),
    ("E192", 1.004e-9, 1e-9), ("unit:1e3", 2600.0, 3000.0), ("unit:1e3", 310.0, 1e3 / 3), ("unit:1e3", 1e3, 1e3)])
def test_nearest_value(rule, value, nearest):
    """Nearest in ratio, across the decade edge (9.6 → 10, not 9.1); part values print as their decimals."""
    assert parse_snap(rule).resistor(value) == nearest


def test_unit_counts_and_capacitors():
    unit = parse_snap("unit:10e3")
    assert [unit.units(r) for r in (10e3, 26e3, 3.1e3, 5e3)] == [1, 3, -3, -2]
    assert unit.capacitor(1.3e-12) == 1.3e-12  # a chip's capacitor is its unit
    assert parse_snap("E96").capacitor(1.3e-12) == 1.2e-12  # capacitors: E12


@pytest.mark.parametrize("bad", ["E97", "e96", "unit:", "unit:-1", "unit:x", "unit:inf"])
def test_bad_rule_refused(bad):
    with pytest.raises(RcsnnError, match="--snap"):
        parse_snap(bad)


def dense_core(resets=("zero", "subtract")):
    """Two groups (zero and subtract reset), ternary recurrent blocks and a dense block g0 → g1."""
    core = random_core(3, sizes=(6, 6), resets=resets, cross=True)
    rng = np.random.default_rng(6)
    m = rng.normal(0, 0.6, (6, 6)) * (rng.random((6, 6)) < 0.5)
    return dataclasses.replace(core, matrices={**core.matrices, "X": m}).validate()


@pytest.mark.parametrize("reset", ["subtract", "subtract_before_decay"])
@pytest.mark.parametrize("rule", ["E24", "E96", "E192", "unit:10e3"])
def test_snapped_core_is_what_the_parts_compute(rule, reset):
    """The snapped core's circuit values are the part values (so the writer's snapping changes them by ~1e-15 only),
    its parameters moved by at most half a series step, and snapping it again changes nothing."""
    core, design, snapping = dense_core(("zero", reset)), Design(), parse_snap(rule)
    snapped, record = snap_core(core, design, snapping)
    p = plan(snapped, design)
    values = [p.tau[np.isfinite(p.tau)] / design.capacitance, p.r_in]
    for s in snapped.synapses:
        w = snapped.block_weights(s)
        values.append(p.r_in[snapped.offsets()[s.post].start + w.rows] / np.abs(w.value))
    subtract = snapped.per_neuron("reset") == reset
    values.append(p.r_mem[subtract] / (p.theta * (p.beta if reset == "subtract_before_decay" else 1.0))[subtract])
    for v in values[:1] + values[2:]:
        assert np.allclose(snapping.resistors(v), v, rtol=1e-12, atol=0)
    table = SERIES.get(rule, (100, 200))  # unit:R: the worst gap is between R (1 unit) and 2R (2 in series)
    half = math.exp(max(math.log(b / a) for a, b in zip(table, (*table[1:], 1000))) / 2) - 1
    resistors = [record[k] for k in ("leak_resistor", "self_resistor", "input_resistor")]
    assert 0 < max(resistors) <= half  # each part within half its series' widest step
    assert 0 < max(record[k] for k in ("alpha", "dense", "beta", "theta")) <= 2 * half  # at most two snapped parts
    again, _ = snap_core(snapped, design, snapping)
    assert [(g.beta, g.theta) for g in again.groups] == [(g.beta, g.theta) for g in snapped.groups]
    assert [s.alpha for s in again.synapses] == [s.alpha for s in snapped.synapses]


def test_refusals():
    core, design = random_core(3, sizes=(6, 6)), Design()
    cuba = dataclasses.replace(core, groups=(dataclasses.replace(core.groups[0], beta_syn=0.5), core.groups[1]))
    with pytest.raises(RcsnnError, match="CubaLIF"):
        snap_core(cuba, design, parse_snap("E96"))
    with pytest.raises(RcsnnError, match="capacitor 1.3e-12 F is not an E12 value"):
        snap_core(core, dataclasses.replace(design, capacitance=1.3e-12), parse_snap("E96"))
    per_neuron = dataclasses.replace(core, groups=(dataclasses.replace(core.groups[0], beta=np.linspace(0.4, 0.8, 6)),
                                                   core.groups[1]))
    with pytest.raises(RcsnnError, match="ternary, into neurons of different beta"):
        snap_core(per_neuron, design, parse_snap("E96"))


RESISTOR = re.compile(r"^(R\S+) \S+ \S+ (\S+)$|rl=(\S+)", re.M)


def part_values(text: str) -> set[float]:
    return {float(a or b) for _, a, b in RESISTOR.findall(text)}


def test_snapped_decks_pass_and_unsnapped_reference_fails(tmp_path):
    """Open loop, E24 (the coarsest series): every resistor of the deck is an E24 value, the decks are byte-identical
    when written twice, ngspice matches the snapped core spike for spike within the a-priori budget — and the same
    run judged against the unsnapped core's reference fails (the negative control)."""
    core = dense_core()
    x = core.input_currents(np.random.default_rng(0).normal(size=(24, core.n_inputs)))
    graph = snap_graph(Graph.from_arrays(core), Design(), parse_snap("E24"))
    snapped = graph.arrays()
    ref = simulate_float(snapped, x)
    sides = [write_netlists(partition(graph, 2), x, tmp_path / d, Design(), "open", ref.spikes) for d in ("a", "b")]
    decks = sorted(p.name for p in (tmp_path / "a").glob("*.cir"))
    assert decks and all((tmp_path / "a" / d).read_bytes() == (tmp_path / "b" / d).read_bytes() for d in decks)
    e24 = {m * 10.0 ** k / 100 for m in E24 for k in range(12)}
    values = set().union(*(part_values((tmp_path / "a" / d).read_text()) for d in decks))
    assert len(values) > 3 and all(min(abs(v / e - 1) for e in e24) < 1e-12 for v in values)
    assert sides[0]["snap"]["rule"] == "E24" and sides[0]["snap"]["alpha"] > 0.005
    got = simulate_dir(tmp_path / "a", workers=2)
    verdict = judge(snapped, ref, got, sides[0]["budget"], "open")
    assert verdict.passed and verdict.violations == 0 and verdict.decidable_mismatches == 0
    unsnapped = judge(core, simulate_float(core, x), got, sides[0]["budget"], "open")
    assert not unsnapped.passed and unsnapped.violations > 0 and unsnapped.worst["ratio"] > 10


def test_cli_netlist_snap_and_verify_netlist(tmp_path, capsys):
    """``rcsnn netlist --snap E96`` records the snapped core beside the decks; ``verify --netlist`` passes with it and
    refuses the original core (another core's decks)."""
    out = tmp_path / "nl"
    assert main(["netlist", str(SMALL_CHECKPOINT), "--snap", "E96", "--steps", "12", "--mode", "open", "--blocks", "3",
                 "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "snapped to E96" in printed and "bits per character" in printed
    sidecar = json.loads((out / "core.json").read_text())
    assert sidecar["snap"]["rule"] == "E96" and math.isfinite(sidecar["snap"]["bits_per_char"]["snapped"])
    assert main(["verify", str(out / SNAPPED_CORE), "--backend", "spice", "--netlist", str(out),
                 "--out", str(tmp_path / "v")]) == 0
    assert main(["verify", str(SMALL_CHECKPOINT), "--backend", "spice", "--netlist", str(out),
                 "--out", str(tmp_path / "w")]) == 2
    assert "written for another core" in capsys.readouterr().err
    assert main(["netlist", str(SMALL_CHECKPOINT), "--snap", "E95", "-o", str(tmp_path / "x")]) == 2


def test_cli_verify_and_generate_snap(tmp_path, capsys):
    """``verify --snap`` judges a back end against the snapped core and says so in its report; ``generate --snap``
    generates with it; the integer LM (``fixed-lm``) refuses it rather than ignore it."""
    out = tmp_path / "v"
    assert main(["verify", str(SMALL_CHECKPOINT), "--backend", "fixed", "--snap", "E24", "--steps", "10",
                 "--out", str(out)]) == 0
    report = json.loads((out / "fixed" / "report.json").read_text())
    assert report["figures"]["snap"]["rule"] == "E24" and any("snapped core (E24)" in line for line in report["findings"])
    assert main(["generate", str(SMALL_CHECKPOINT), "--prompt", "def", "--length", "3", "--snap", "E96"]) == 0
    assert "snapped to E96" in capsys.readouterr().out
    assert main(["generate", str(SMALL_CHECKPOINT), "--prompt", "def", "--backend", "fixed-lm", "--snap", "E96"]) == 2
    assert "--snap" in capsys.readouterr().err
