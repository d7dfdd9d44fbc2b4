"""The physical scale of the analog circuit (rcsnn.analog.scale): S volts per membrane unit, supply rails and the
membrane clamp of a bounded core, verified spike for spike in ngspice, with the clamp removed, the clamp at the rail
and the unbounded reference as negative controls, and the refusals."""

from __future__ import annotations

import dataclasses
import json
import math
import re
import shutil

import numpy as np
import pytest
from conftest import SMALL_CHECKPOINT, random_core

from rcsnn.analog.budget import allowance
from rcsnn.analog.design import Design
from rcsnn.analog.fastmodel import parse_deck, run_deck
from rcsnn.analog.netlist import write_netlists
from rcsnn.analog.neurons import plan
from rcsnn.analog.options import SpiceOptions
from rcsnn.analog.partition import partition
from rcsnn.analog.scale import BOUNDED_CORE, CLAMP_RELTOL, clamp_errors, clamp_levels, membrane_range, peak_factor, saturate
from rcsnn.analog.simulate import simulate_dir
from rcsnn.cli import main
from rcsnn.errors import RcsnnError
from rcsnn.frontends.load import load_core
from rcsnn.ir.arrays import Core, NeuronGroup, SynapseBlock
from rcsnn.ir.graph import Graph
from rcsnn.ir.reference import simulate_float
from rcsnn.ir.stimulus import Stimulus
from rcsnn.verify.spice import judge

S = 0.1
RAILS = (-0.5, 0.5)
LOW, HIGH = -4.0, 3.0  # the small core's membranes reach -32 .. 9 units on the held-out sample: both bounds are hit
STEPS = 16


def bounded(graph: Graph, low=LOW, high=HIGH) -> Graph:
    core = graph.arrays()
    groups = tuple(dataclasses.replace(g, v_min=low, v_max=high) for g in core.groups)
    return Graph.from_arrays(dataclasses.replace(core, groups=groups).validate())


def design(**choices) -> Design:
    return Design(**{"volts_per_unit": S, "rail_low": RAILS[0], "rail_high": RAILS[1], **choices}).check()


@pytest.fixture(scope="module")
def small():
    graph = load_core(SMALL_CHECKPOINT)
    return graph, Stimulus.sample(graph, STEPS).currents


def clamp_lines(path) -> list[str]:
    return [line for line in path.read_text().splitlines() if line.startswith("Bclamp")]


@pytest.fixture(scope="module")
def clamped_run(small, tmp_path_factory):
    """The bounded small core at S = 0.1 V per unit within ±0.5 V rails, open loop in 3 decks, run in ngspice."""
    graph, x = small
    g = bounded(graph)
    ref = simulate_float(g, x)
    out = tmp_path_factory.mktemp("scale") / "decks"
    sidecar = write_netlists(partition(g, 3), x, out, design(), "open", ref.spikes, "test")
    return g, ref, out, sidecar, simulate_dir(out, workers=2)


def test_bounded_core_passes_at_100_mV_per_unit_with_clamps_active(clamped_run):
    g, ref, out, sidecar, got = clamped_run
    core = g.arrays()
    assert (ref.membranes == HIGH).sum() >= 10 and (ref.membranes == LOW).sum() >= 10  # the clamps act, both sides
    verdict = judge(core, ref, got, sidecar["budget"], "open")
    assert verdict.passed and verdict.comparison.mismatches == 0 and verdict.violations == 0, verdict.worst
    clamped = (ref.membranes == HIGH) | (ref.membranes == LOW)
    assert np.abs(got.membranes - ref.membranes)[clamped].max() < 1e-4  # membranes read back in units, at the bound
    # the header and core.json state the scale, the bounds in volts and the clamp levels; Gear order 2 in the decks
    scale = sidecar["circuit"]["scale"]
    assert scale["volts_per_unit"] == S and scale["rails"] == list(RAILS) and scale["clock"] == 1e-6
    p = plan(core, design())
    hi = S * HIGH * math.exp((1e-6 - design().syn_end) / p.tau[0])
    assert scale["groups"][0]["v_max_clamp_volts"][0] == pytest.approx(hi, rel=1e-12)
    assert scale["groups"][0]["v_max_volts"][0] == pytest.approx(S * HIGH, rel=1e-12)
    text = (out / "block_000.cir").read_text()
    assert '"volts_per_unit": 0.1' in text and "method=gear maxord=2" in text
    assert len(clamp_lines(out / "block_000.cir")) == 32
    assert all(b["clamp"]["edge"] > 0 for b in sidecar["budget"]["groups"])


def test_unbounded_reference_fails_the_clamped_circuit(clamped_run, small):
    """Negative control: the same ngspice run judged against the unbounded core's reference."""
    graph, x = small
    _, _, _, sidecar, got = clamped_run
    verdict = judge(graph.arrays(), simulate_float(graph, x), got, sidecar["budget"], "open")
    assert not verdict.passed and verdict.violations > 10 and verdict.worst["ratio"] > 100


@pytest.mark.parametrize("edit", ["removed", "at the rail"])
def test_clamp_removed_or_at_the_rail_fails(clamped_run, tmp_path, edit):
    """Negative controls: the decks without their clamps, and with clamps at the rails instead of V_clamp."""
    g, ref, out, sidecar, _ = clamped_run
    edited = tmp_path / "decks"
    shutil.copytree(out, edited)
    for deck in edited.glob("*.cir"):
        text = deck.read_text()
        if edit == "removed":
            text = "\n".join(line for line in text.splitlines() if not line.startswith("Bclamp")) + "\n"
        else:
            text = re.sub(r"max\(V\(mem(\d+)\)-[0-9.e-]+,0\)", r"max(V(mem\1)-0.5,0)", text)
            text = re.sub(r"min\(V\(mem(\d+)\)\+[0-9.e-]+,0\)", r"min(V(mem\1)+0.5,0)", text)
        deck.write_text(text)
    got = simulate_dir(edited, workers=2, trust_edits=True)
    verdict = judge(g.arrays(), ref, got, sidecar["budget"], "open")
    assert not verdict.passed and verdict.violations > 10 and verdict.worst["ratio"] > 100


def test_default_scale_keeps_the_bytes_and_scale_moves_only_volts(small, tmp_path):
    graph, x = small
    ref = simulate_float(graph, x).spikes
    for name, d in (("default", Design()), ("one", Design(volts_per_unit=1.0)), ("tenth", Design(volts_per_unit=S))):
        write_netlists(partition(graph, 3), x, tmp_path / name, d, "open", ref, "t", budget=False)
    a, b, c = ((tmp_path / n / "block_001.cir").read_text() for n in ("default", "one", "tenth"))
    assert a == b and "scale" not in json.loads((tmp_path / "one" / "core.json").read_text())["circuit"]
    resistors = [line for line in a.splitlines() if line.startswith("R")]
    assert resistors == [line for line in c.splitlines() if line.startswith("R")]  # no resistor depends on S
    assert re.search(r"^Ee\d+ \S+ 0 \S+ 0 0\.1$", c, re.M) and re.search(r"^Ee\d+ \S+ 0 \S+ 0 1\.0$", a, re.M)
    th = [float(m) for m in re.findall(r"^Vth\d \S+ 0 DC (\S+)$", a, re.M)]
    scaled = [float(m) for m in re.findall(r"^Vth\d \S+ 0 DC (\S+)$", c, re.M)]
    assert scaled == pytest.approx([S * t for t in th], rel=1e-15)
    assert "vntol=1e-07" in c and not clamp_lines(tmp_path / "tenth" / "block_001.cir")


def test_refusals(small, tmp_path):
    graph, x = small
    g = bounded(graph)
    with pytest.raises(RcsnnError, match=r"group 'g0' neuron 0: v_min -4 clamps at -0.42\d+ V .* outside the rails"):
        write_netlists(g, x, tmp_path / "a", design(rail_low=-0.3, rail_high=0.3), "closed")
    with pytest.raises(RcsnnError, match=r"group 'g\d' neuron \d+ step \d+: the reference membrane .* V, (above|below) "
                                         r"the rails .*--saturate"):
        write_netlists(graph, x, tmp_path / "b", design(), "closed", budget=True)
    cuba = dataclasses.replace(g.arrays(), groups=tuple(dataclasses.replace(k, beta_syn=0.5) for k in g.arrays().groups))
    with pytest.raises(RcsnnError, match="group 'g0' neuron 0: saturation bounds on a CubaLIF membrane"):
        write_netlists(Graph.from_arrays(cuba.validate()), x, tmp_path / "e", Design(), "closed", budget=False)
    positive = bounded(graph, low=0.5)
    with pytest.raises(RcsnnError, match="v_min 0.5 > 0; the circuit's clamp needs v_min <= 0"):
        write_netlists(positive, x, tmp_path / "c", Design(), "closed", budget=False)
    two = random_core(0)
    two = dataclasses.replace(two, groups=(two.groups[0], dataclasses.replace(two.groups[1], theta=2.0))).validate()
    with pytest.raises(RcsnnError, match=r"--theta-volts 0.1: the core has 2 thresholds theta"):
        SpiceOptions(theta_volts=0.1).design(two)
    assert SpiceOptions(theta_volts=0.1).design(graph.arrays()).volts_per_unit == pytest.approx(0.1)
    with pytest.raises(RcsnnError, match="--saturate: needs --rails"):
        SpiceOptions(saturate=True).check()
    with pytest.raises(RcsnnError, match="--rails 0.1,0.5: need LO <= 0 V < HI"):
        Design(rail_low=0.1, rail_high=0.5).check()
    write_netlists(g, x[:2], tmp_path / "d", design(), "closed", budget=False)
    deck = (tmp_path / "d" / "core.cir").read_text()
    stim = {p.name: p.read_text() for p in (tmp_path / "d").glob("*_stim*.txt")}
    parse_deck(deck, stim, 2)
    for broken, message in ((re.sub(r"^(Bclamp0 mem0) 0 ", r"\1 sum0 ", deck, flags=re.M), "across the feedback capacitor"),
                            (re.sub(r"^(Bclamp0 mem)0 ", r"\g<1>1 ", deck, flags=re.M), "not one the fast model knows"),
                            (deck.replace("Bclamp0 mem0 0 I=1000.0*", "Bclamp0 mem0 0 I=-1.0*"), "conductance <= 0")):
        with pytest.raises(RcsnnError, match=message):
            parse_deck(broken, stim, 2)


def test_fast_model_follows_the_clamps(clamped_run):
    """The fast circuit model solves the clamped decks: ngspice's raster, membranes within the a-priori budget;
    negative control: the same decks with the clamps taken out leave the budget."""
    g, ref, out, sidecar, got = clamped_run
    core = g.arrays()
    files = {p.name: p.read_text() for p in out.glob("*_stim*.txt")}

    def fast(edit=lambda text: text):
        spikes, membranes = np.zeros_like(ref.spikes), np.zeros_like(ref.membranes)
        for d in sidecar["decks"]:
            run = run_deck(parse_deck(edit((out / d["netlist"]).read_text()), files, STEPS, d["netlist"]))
            spikes[:, d["start"]:d["stop"]], membranes[:, d["start"]:d["stop"]] = run.spikes, run.membranes / S
        return spikes, membranes

    spikes, membranes = fast()
    assert (spikes == ref.spikes).all() and (spikes == got.spikes).all()
    allow = allowance(core, sidecar["budget"], ref.membranes)
    assert (np.abs(membranes - got.membranes) <= allow).all() and (np.abs(membranes - ref.membranes) <= allow).all()
    unclamped = fast(lambda text: "\n".join(x for x in text.splitlines() if not x.startswith("Bclamp")))[1]
    assert (np.abs(unclamped - ref.membranes) > allow).sum() > 10


def test_clipping_warns_and_says_so_in_the_header(small, tmp_path, capsys):
    graph, x = small
    write_netlists(graph, x, tmp_path / "a", design(), "closed", clipping=True)
    assert "WARNING: group" in capsys.readouterr().err
    assert "not verifiable beyond the rails" in (tmp_path / "a" / "core.cir").read_text()


def test_saturate_puts_the_clamps_at_the_rails(small):
    graph, _ = small
    d = design()
    g = saturate(graph, d)
    core = g.arrays()
    low, high = clamp_levels(core, d, plan(core, d))
    assert high == pytest.approx(np.full(96, RAILS[1]), rel=1e-14) and low == pytest.approx(np.full(96, RAILS[0]), rel=1e-14)
    assert g.annotation("saturate") == {"rails": list(RAILS), "volts_per_unit": S}
    with pytest.raises(RcsnnError, match=r"--saturate: .*v_max.* is below theta"):  # a rail below theta = 0.1 V
        saturate(graph, design(rail_high=0.05))


def test_clamp_error_terms_are_derived(small):
    graph, x = small
    core = bounded(graph).arrays()
    d = design()
    p = plan(core, d)
    edge, conductance = clamp_errors(core, d, p, simulate_float(graph, x).spikes, x + core.bias)
    assert edge == pytest.approx(d.edge / (2 * p.tau), rel=1e-14) and edge[0] == pytest.approx(5e-6, rel=1e-9)
    assert (conductance > 0).all() and conductance.max() < 1e-7  # I/g: far below the budget (a ≈ 4.5e-6·θ and more)
    assert peak_factor(d, p)[0] == pytest.approx(math.exp((d.step - d.syn_end) / p.tau[0]), rel=1e-14)


def test_info_and_netlist_commands(small, tmp_path, capsys):
    graph, _ = small
    assert main(["info", str(SMALL_CHECKPOINT), "--steps", "40", "--theta-volts", "0.1", "--rails=-0.5,0.5"]) == 0
    shown = capsys.readouterr().out
    assert "S = 0.1 V per membrane unit, rails -0.5,0.5 V" in shown and "EXCEEDS the rails" in shown
    out = tmp_path / "n"
    assert main(["netlist", str(SMALL_CHECKPOINT), "-o", str(out), "--steps", "4", "--volts-per-unit", "0.1",
                 "--rails=-0.5,0.5", "--saturate"]) == 0
    saved = load_core(out / BOUNDED_CORE).arrays()
    assert saved.per_neuron("v_max") == pytest.approx(saturate(graph, design()).arrays().per_neuron("v_max"), rel=0)
    assert main(["verify", str(out / BOUNDED_CORE), "--backend", "spice", "--netlist", str(out), "--out",
                 str(tmp_path / "v")]) == 0  # the decks compute the bounded core ...
    assert main(["verify", str(SMALL_CHECKPOINT), "--backend", "spice", "--netlist", str(out), "--out",
                 str(tmp_path / "w")]) == 2  # ... not the core they were derived from
    assert "written for another core" in capsys.readouterr().err
    assert main(["netlist", str(SMALL_CHECKPOINT), "-o", str(tmp_path / "m"), "--steps", "4", "--volts-per-unit", "0.1",
                 "--rails=-0.05,0.05"]) == 2
    assert "above the rails" in capsys.readouterr().err
    assert main(["montecarlo", str(SMALL_CHECKPOINT), "--runs", "1", "--r-tol", "1%", "--steps", "4", "--scheduler",
                 "serial", "--volts-per-unit", "0.1", "--rails=-0.05,0.05", "-o", str(tmp_path / "mc")]) == 2
    assert "above the rails" in capsys.readouterr().err  # Monte Carlo's decks are the same writer's


def test_membrane_range_of_a_bounded_core(small):
    graph, x = small
    core = bounded(graph).arrays()
    lines = membrane_range(core, design(), simulate_float(graph, x).membranes)
    assert all("clamp levels" in line and "fits the rails" in line for line in lines[1:])


@pytest.mark.slow
@pytest.mark.parametrize("case", ["IF", "per-neuron tau and theta", "zero_drop_input", "subtract_before_decay",
                                  "dense weights"])
def test_clamp_with_the_other_neuron_kinds(case, tmp_path):
    """Each kind bounded at its reference's 10th/90th percentiles (v_max >= theta), S = 0.1, open loop: PASS."""
    from test_analog_kinds import CASES, base, currents, regroup

    core = CASES[case](base())
    x = currents(core)
    v = simulate_float(core, x).membranes
    high = max(float(np.percentile(v, 90)), 1.05 * float(core.per_neuron("theta").max()))
    core = regroup(core, v_min=min(float(np.percentile(v, 10)), -0.1), v_max=high)
    ref = simulate_float(core, x)
    assert (ref.membranes == high).sum() > 5
    sidecar = write_netlists(partition(Graph.from_arrays(core), 2), x, tmp_path, Design.scaled(volts_per_unit=S), "open",
                             ref.spikes)
    verdict = judge(core, ref, simulate_dir(tmp_path, workers=2), sidecar["budget"], "open")
    assert verdict.passed and verdict.violations == 0, verdict.worst


@pytest.mark.slow
@pytest.mark.parametrize("form, mode", [("opamp", "open"), ("ideal", "closed")])
def test_clamp_in_the_opamp_form_and_closed_loop(small, tmp_path, form, mode):
    """The op-amp form's clamp across the feedback capacitor (anti-windup), and the ideal form in closed loop."""
    graph, x = small
    g = bounded(graph)
    ref = simulate_float(g, x)
    d = design(form=form)
    sidecar = write_netlists(partition(g, 3) if mode == "open" else g, x, tmp_path, d, mode, ref.spikes, "test")
    if form == "opamp":
        deck = (tmp_path / "block_000.cir").read_text()
        assert re.search(r"^Bclamp0 mem0 sum0 I=1000\.0\*\(max\(V\(mem0,sum0\)", deck, re.M)
    verdict = judge(g.arrays(), ref, simulate_dir(tmp_path, workers=2), sidecar["budget"], mode)
    assert verdict.passed and verdict.violations == 0, verdict.worst


def test_a_membrane_reaching_its_clamp_late_in_the_window(tmp_path):
    """Regression (issue 9, a Monte Carlo judge FAIL at 2.5× the budget): a membrane that reaches its clamp in
    ngspice's last step before the synaptic window closes, by less than reltol·|V_clamp|, was accepted by Newton
    beyond the clamp (8e-3 V past it at reltol 1e-3) and left 1.3e-5 units after the decay; the clamped decks'
    ``reltol`` (:data:`~rcsnn.analog.scale.CLAMP_RELTOL`) converges it. τ = 16 µs, bounds ±8 at 1 V per unit, the
    step-0 input 8 + δ (δ = 0.5e-3 … 8e-3) beyond v_min; negative control: the same decks at ngspice's reltol."""
    n = 16
    group = NeuronGroup("g", n, math.exp(-1 / 16), 1.0, "zero", v_min=-8.0, v_max=8.0)
    core = Core((group,), {"T": np.zeros((n, n), dtype=np.int8)}, (SynapseBlock("g", "g", "T", 0.1),), bias=np.zeros(n),
                input_weight=np.eye(n)).validate()
    x = np.zeros((3, n))
    x[0] = -8.0 - np.linspace(5e-4, 8e-3, n)
    ref = simulate_float(core, x)
    assert (ref.membranes[0] == -8.0).all()
    out = tmp_path / "decks"
    sidecar = write_netlists(partition(Graph.from_arrays(core), 1), x, out, Design(), "open", ref.spikes, "test")
    deck = out / "block_000.cir"
    assert f"reltol={CLAMP_RELTOL:g}" in deck.read_text()
    verdict = judge(core, ref, simulate_dir(out), sidecar["budget"], "open")
    assert verdict.passed and verdict.violations == 0, verdict.worst
    fast = run_deck(parse_deck(deck.read_text(), {p.name: p.read_text() for p in out.glob("*_stim*.txt")}, 3))
    assert np.abs(fast.membranes - ref.membranes).max() < 1e-6  # the fast model: the clamp, up to the falling edge
    deck.write_text(deck.read_text().replace(f" reltol={CLAMP_RELTOL:g}", ""))
    verdict = judge(core, ref, simulate_dir(out, trust_edits=True), sidecar["budget"], "open")
    assert not verdict.passed and verdict.worst["ratio"] > 1.5
