"""Analog design values and netlist text (no simulator needed)."""

import dataclasses
import json
import math

import numpy as np
import pytest
from conftest import ROOT, random_core, random_graph

from rcsnn.analog.design import Design
from rcsnn.analog.netlist import LIBRARY, STIM_LINE, library_text, stimulus_files, write_netlists
from rcsnn.analog.partition import blocks as blocks_of
from rcsnn.analog.partition import partition
from rcsnn.errors import RcsnnError
from rcsnn.ir.graph import Graph


def test_derived_values_follow_the_equations():
    core = random_core(0)
    d = Design.scaled()
    for g in core.groups:
        v = d.group(g)
        assert math.exp(-d.step / v.tau) == pytest.approx(g.beta, rel=1e-14)
        assert v.r_leak * d.capacitance == pytest.approx(v.tau, rel=1e-14)
        # flat-top part of K in closed form; the two 0.1 ns edges add about edge * (window ends' weights) / 2
        a, b = d.syn_start + d.edge, d.syn_start + d.edge + d.syn_width
        flat = v.tau * (math.exp(-(d.step - b) / v.tau) - math.exp(-(d.step - a) / v.tau))
        assert v.kernel == pytest.approx(flat, rel=3e-4) and v.kernel > flat
        assert v.r_unit == pytest.approx(d.v_spike * v.kernel / d.capacitance, rel=1e-14)
        assert v.v_compare == pytest.approx(g.theta * math.exp(-d.clock_edge / (2 * v.tau)), rel=1e-15)


def test_kernel_of_a_rectangle_without_leak_is_its_width():
    d = Design.scaled()
    assert d.kernel(1e9) == pytest.approx(d.syn_width + d.edge, rel=1e-9)


def test_design_rejects_misordered_windows_and_unknown_forms():
    with pytest.raises(RcsnnError, match="reset end .* must come before synaptic window"):
        Design.scaled(reset_width=100e-9)
    with pytest.raises(RcsnnError, match="synaptic end .* must come before clock period"):
        Design.scaled(syn_width=990e-9)
    with pytest.raises(RcsnnError, match="form 'magic'"):
        Design.scaled(form="magic")
    assert Design.scaled(1e-3).syn_start == pytest.approx(45.03e-6)


def test_stimulus_levels_change_after_each_clock_edge():
    [(name, nodes, text)] = stimulus_files("d", [("x0", np.array([0.5, 0.25, 1 / 3])), ("s1", np.array([0.0, 1.0, 1.0]))],
                                           Design.scaled())
    assert name == "d_stim0.txt" and nodes == ["x0", "s1"]
    assert text.splitlines() == ["0 0.5 0", "1.005e-06 0.5 0", "1.00501e-06 0.25 1", "2.005e-06 0.25 1",
                                 "2.00501e-06 0.3333333333333333 1", "4e-06 0.3333333333333333 1"]


def test_stimulus_lines_fit_ngspice_filesource():
    levels = np.random.default_rng(0).normal(size=(30, 100)) * 1e-7
    files = stimulus_files("d", [(f"x{i}", levels[:, i]) for i in range(100)], Design.scaled())
    assert len(files) > 1 and sum(len(nodes) for _, nodes, _ in files) == 100
    for _, nodes, text in files:
        rows = [line.split() for line in text.splitlines()]
        assert max(map(len, text.splitlines())) <= STIM_LINE and all(len(r) == len(nodes) + 1 for r in rows)
    back = np.array([[float(v) for v in line.split()[1:]] for line in files[0][2].splitlines()])
    np.testing.assert_array_equal(back[2::2][:29], levels[1:, :back.shape[1]])


def test_partition_keeps_groups_apart():
    core = random_graph(0, sizes=(12, 12))
    assert [(b.start, b.stop) for b in blocks_of(partition(core, 5))] == [(0, 6), (6, 12), (12, 18), (18, 24)]
    assert [(b.start, b.stop) for b in blocks_of(partition(core, 1))] == [(0, 12), (12, 24)]
    assert partition(core, 5).annotation("blocks", "g1") == [[12, 18], [18, 24]]
    with pytest.raises(RcsnnError, match="--blocks 0"):
        partition(core, 0)


@pytest.mark.parametrize("mode, blocks", [("closed", 1), ("open", 3)])
def test_netlists_are_byte_identical_and_complete(tmp_path, mode, blocks):
    graph = partition(random_graph(3, resets=("zero", "subtract")), blocks)
    core = graph.arrays()
    x = core.input_currents(np.random.default_rng(1).normal(size=(15, core.n_inputs)))
    ref = np.random.default_rng(2).integers(0, 2, x.shape).astype(np.int8)
    first = write_netlists(graph, x, tmp_path / "a", Design.scaled(), mode, ref)
    write_netlists(graph, x, tmp_path / "b", Design.scaled(), mode, ref)
    names = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert names == sorted(p.name for p in (tmp_path / "b").iterdir()) and LIBRARY in names and "core.json" in names
    for name in names:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    sidecar = json.loads((tmp_path / "a" / "core.json").read_text())
    assert sidecar == first and sidecar["steps"] == 15 and sidecar["mode"] == mode
    values = sidecar["circuit"]["groups"][0]
    assert {"tau", "r_leak", "kernel", "r_unit", "v_compare"} <= set(values)
    deck = (tmp_path / "a" / sidecar["decks"][0]["netlist"]).read_text()
    assert f".include {LIBRARY}" in deck and '"r_unit"' in deck and "filesource(file=" in deck
    assert all((tmp_path / "a" / name).exists() for d in sidecar["decks"] for name in d["stimulus"])
    assert sum(d["stop"] - d["start"] for d in sidecar["decks"]) == core.n_neurons
    # every nonzero of T is one resistor with R = R_unit / alpha
    total = sum(d["resistors"] for d in sidecar["decks"])
    assert total == core.nonzeros() + int(core.reset_subtract().sum())


def test_write_rejects_bad_stimulus_and_missing_reference(tmp_path):
    core = random_graph(0)
    with pytest.raises(RcsnnError, match=r"currents of shape \(4, 3\)"):
        write_netlists(core, np.zeros((4, 3)), tmp_path, Design.scaled())
    with pytest.raises(RcsnnError, match="reference raster"):
        write_netlists(partition(core, 2), np.zeros((4, 24)), tmp_path, Design.scaled(), "open")


def test_same_step_synapses_are_refused(tmp_path):
    core = random_core(0, cross=True)
    core = dataclasses.replace(core, synapses=core.synapses[:-1] + (dataclasses.replace(core.synapses[-1], delay=0),))
    with pytest.raises(RcsnnError, match=r"synapses g0->g1: delay 0 \(same step\)"):
        write_netlists(Graph.from_arrays(core), np.zeros((3, core.n_neurons)), tmp_path, Design.scaled())


def test_malformed_graph_file_is_a_one_line_error(tmp_path, capsys):
    from rcsnn.cli import main
    from rcsnn.ir.serialize import save_graph

    save_graph(random_graph(0), tmp_path / "g.json")
    text = (tmp_path / "g.json").read_text()
    (tmp_path / "bad.json").write_text(text.replace('"beta": 0.7140250967589452', '"beta": 1.5'))
    assert main(["netlist", str(tmp_path / "bad.json"), "--steps", "5", "-o", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "beta" in err and "1.5" in err and not (tmp_path / "out").exists()


def test_committed_library_copies_match_the_package():
    copies = sorted((ROOT / "netlists").glob(f"**/{LIBRARY}"))
    for copy in copies:
        assert copy.read_text() == library_text(), f"{copy} differs from rcsnn/analog/{LIBRARY}; regenerate (docs/analog.md)"


def test_cli_netlist_from_a_current_file(tmp_path, capsys):
    from rcsnn.cli import main
    from rcsnn.ir.serialize import save_graph

    save_graph(random_graph(4), tmp_path / "g.json")
    np.save(tmp_path / "x.npy", np.random.default_rng(0).normal(size=(9, 24)))
    argv = ["netlist", str(tmp_path / "g.json"), "--currents", str(tmp_path / "x.npy"), "--mode", "open", "--blocks", "4"]
    assert main(argv + ["-o", str(tmp_path / "out")]) == 0
    sidecar = json.loads((tmp_path / "out" / "core.json").read_text())
    assert sidecar["steps"] == 9 and sidecar["mode"] == "open" and len(sidecar["decks"]) == 4
    np.save(tmp_path / "bad.npy", np.zeros((9, 3)))
    bad_argv = ["netlist", str(tmp_path / "g.json"), "--currents", str(tmp_path / "bad.npy"), "-o", str(tmp_path / "o2")]
    assert main(bad_argv) == 2
    assert "shape (9, 3), expected (steps, 24) (steps x neurons)" in capsys.readouterr().err
