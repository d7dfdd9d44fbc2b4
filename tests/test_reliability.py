"""Issue 12: every probe of a hostile but realistic user gives a result or one line (exit status 2).

One parametrised test per class of probe: crafted names, numeric options, ``.npy`` inputs, edited IR
JSON / GraphML files, checkpoint configs, output paths that cannot be written, netlist sidecars and
decks, design directories, simulator failures. The escaping of names where they are written (with
the load-time check bypassed) is tested against Icarus, Verilator and ngspice themselves.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import signal
import stat
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import SMALL_CHECKPOINT, random_core
from contract_impl import load_tensors
from safetensors.numpy import save_file

from rcsnn import tools
from rcsnn.arguments import cores
from rcsnn.cli import main
from rcsnn.errors import RcsnnError
from rcsnn.files import manifest
from rcsnn.frontends.checkpoint import save_checkpoint
from rcsnn.ir import graph as graph_module
from rcsnn.ir.graph import Graph
from rcsnn.ir.serialize import save_graph
from rcsnn.templates import markdown_text

CORE = str(SMALL_CHECKPOINT)


def _cli(capsys, *argv) -> tuple[int, str, str]:
    """``rcsnn ARGV`` in-process: (exit status, stdout, stderr); argparse's exits included."""
    try:
        code = main([str(a) for a in argv])
    except SystemExit as exc:
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def _refused(capsys, *argv, words=()) -> str:
    """Assert ``rcsnn ARGV`` exits 2 with one line on stderr holding every word; return the line."""
    code, out, err = _cli(capsys, *argv)
    assert code == 2, (code, out, err)
    assert err.count("\n") == 1 and err.startswith("rcsnn") and "Traceback" not in err, err
    for word in words:
        assert str(word) in err, (word, err)
    return err


# ------------------------------------------------------------------------------------------ names

#: Names that would be code somewhere if written raw: C++ (harness), Verilog ($write), SPICE, Markdown, paths.
CRAFTED = ['g"); system("touch /tmp/rcsnn-pwned"); //', 'x"); $system("touch /tmp/rcsnn-pwned"); //', "a b", "",
           "x" * 65, ".hidden", "ünï", "a\nb", "g|x", "../g", "g;rm -rf", "g\n.control\nshell touch x\n.endc"]
#: Names the front ends produce that must keep working (snnTorch's exporter: ``1_lif``; nested NIR keys).
VALID = ["g0", "1_lif", "rleaky_0", "net.lif1", "G_0.x9", "x" * 64]


def _checkpoint(tmp_path, edit) -> Path:
    """The small checkpoint with ``edit(config, tensors)`` applied."""
    config, tensors = load_tensors(SMALL_CHECKPOINT)
    edit(config, tensors)
    path = tmp_path / "edited.rcsnn"
    save_file(tensors, str(path), metadata={"rcsnn": json.dumps(config)})
    return path


def _rename_group(config, tensors, name):
    old = config["groups"][0]["name"]
    config["groups"][0]["name"] = name
    for s in config["synapses"]:
        for end in ("pre", "post"):
            if s[end] == old:
                s[end] = name


def _rename_matrix(config, tensors, name):
    for s in config["synapses"]:
        s["matrix"] = name
    tensors[f"matrix.{name}"] = tensors.pop("matrix.T")


@pytest.fixture(scope="module")
def graph_json(tmp_path_factory) -> dict:
    """The small core as an IR JSON document (edited per probe)."""
    path = tmp_path_factory.mktemp("graph") / "core.json"
    assert main(["graph", CORE, "-o", str(path)]) == 0
    return json.loads(path.read_text())


def _graph_file(tmp_path, doc: dict, edit=None) -> Path:
    doc = copy.deepcopy(doc)
    if edit is not None:
        edit(doc)
    path = tmp_path / "edited.json"
    path.write_text(json.dumps(doc))
    return path


def _rename_node(doc, name):
    for node in doc["nodes"]:
        if node["id"] == "g0":
            node["id"] = name
    for edge in doc["edges"]:
        for end in ("source", "target"):
            if edge[end] == "g0":
                edge[end] = name


@pytest.mark.parametrize("name", CRAFTED, ids=range(len(CRAFTED)))
def test_crafted_names_are_refused_at_load(tmp_path, capsys, graph_json, name):
    where = _checkpoint(tmp_path, lambda c, t: _rename_group(c, t, name))
    _refused(capsys, "info", where, words=[where, "group name", "not a valid name"])
    where = _checkpoint(tmp_path, lambda c, t: _rename_matrix(c, t, name or "x y"))
    _refused(capsys, "info", where, words=[where, "matrix key", "not a valid name"])
    where = _graph_file(tmp_path, graph_json, lambda d: _rename_node(d, name))
    err = _refused(capsys, "info", where, words=[where])
    assert "not a valid name" in err or "is too long" in err, err


@pytest.mark.parametrize("name", VALID)
def test_names_front_ends_produce_keep_working(tmp_path, capsys, graph_json, name):
    where = _checkpoint(tmp_path, lambda c, t: _rename_group(c, t, name))
    assert _cli(capsys, "info", where, "--steps", "3")[0] == 0
    where = _graph_file(tmp_path, graph_json, lambda d: _rename_node(d, name))
    assert _cli(capsys, "info", where, "--steps", "3")[0] == 0


def test_reserved_and_duplicate_names_name_the_file():
    graph = Graph()
    graph.add_input(1)
    with pytest.raises(RcsnnError, match=r"^f.json: group name 'input' is reserved"):
        graph.add_group("input", None, np.zeros((1, 1)), "f.json")


def test_markdown_text_keeps_a_table_cell_one_cell():
    for name in CRAFTED:
        cell = markdown_text(name)
        assert "\n" not in cell and cell.replace("\\|", "").count("|") == 0 and cell.isprintable()
    assert markdown_text("g0") == "g0" and markdown_text("lif_0") == "lif\\_0"


@pytest.fixture
def unchecked_names(monkeypatch):
    """Bypass the load-time name check, to test the escaping where names are written on its own."""
    monkeypatch.setattr(graph_module, "check_name", lambda name, what, where: name)


def _crafted_core_file(tmp_path, name: str) -> Path:
    core = random_core(5, sizes=(4, 4), n_in=3)
    graph = Graph.from_arrays(core)
    path = tmp_path / "crafted.json"
    save_graph(graph, path)
    doc = json.loads(path.read_text())
    _rename_node(doc, name)
    path.write_text(json.dumps(doc))
    return path


def _path_without(tmp_path, *tools_kept) -> str:
    """A PATH holding only ``tools_kept`` (no ``nice``, no shell utilities)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in tools_kept:
        (bin_dir / tool).symlink_to(shutil.which(tool))
    return str(bin_dir)


@pytest.mark.parametrize("backend", ["icarus", "verilator"])
def test_crafted_group_name_runs_nothing_in_the_hdl_benches(tmp_path, capsys, monkeypatch, unchecked_names, backend):
    """A name that would close the string literal of harness.cpp's GROUPS[] or the bench's $write and call
    system()/$system() stays a string: the bench runs (and passes) and the command never runs. Icarus runs
    with a PATH without ``nice`` (the tool runner lowers the priority itself)."""
    if shutil.which("iverilog" if backend == "icarus" else "verilator") is None:
        pytest.skip(f"{backend} not installed")
    marker = tmp_path / "pwned"
    name = f'g"); system("touch {marker}"); $system("touch {marker}"); //'
    core = _crafted_core_file(tmp_path, name)
    if backend == "icarus":
        monkeypatch.setenv("PATH", _path_without(tmp_path, "iverilog", "vvp"))
    code, out, err = _cli(capsys, "verify", core, "--backend", backend, "--steps", "6", "--lanes", "2",
                          "--out", tmp_path / "out")
    assert code == 0 and "PASS" in out, out + err
    assert not marker.exists()
    work = next((tmp_path / "out").glob(f"digital-{backend}*"))
    bench = (work / ("harness.cpp" if backend == "verilator" else "tb_rcsnn.v")).read_text()
    assert 'system("touch' not in bench and '\\"); system(\\"touch' in bench


def test_crafted_group_name_stays_a_comment_in_spice(tmp_path, capsys, unchecked_names):
    """A name with line breaks and a ``.control`` block stays inside one SPICE comment line (JSON-escaped),
    so ngspice runs the deck and not the name."""
    if shutil.which("ngspice") is None:
        pytest.skip("ngspice not installed")
    marker = tmp_path / "pwned"
    core = _crafted_core_file(tmp_path, f"g\n.control\nshell touch {marker}\n.endc\n")
    assert _cli(capsys, "netlist", core, "--steps", "3", "-o", tmp_path / "n")[0] == 0
    deck = (tmp_path / "n" / "core.cir").read_text()
    assert ".control\nshell" not in deck and all(not line.startswith("shell") for line in deck.splitlines())
    code, out, err = _cli(capsys, "simulate", tmp_path / "n")
    assert code == 0, err
    assert not marker.exists()


# ------------------------------------------------------------------------------------------ numeric options

NUMERIC = [
    (["run", CORE, "--prompt", "ab", "--steps", "0", "-o", "r.npz"], "--steps"),
    (["run", CORE, "--prompt", "ab", "--steps", "-5", "-o", "r.npz"], "--steps"),
    (["run", CORE, "--prompt", "ab", "--steps", "1e3", "-o", "r.npz"], "--steps"),
    (["info", CORE, "--steps", "0"], "--steps"),
    (["info", "core.nir", "--dt", "0"], "--dt"),
    (["netlist", CORE, "--steps", "-5", "-o", "d"], "--steps"),
    (["netlist", CORE, "--max-step", "-1", "-o", "d"], "--max-step"),
    (["netlist", CORE, "--max-step", "nan", "-o", "d"], "--max-step"),
    (["netlist", CORE, "--clock", "0", "-o", "d"], "--clock"),
    (["netlist", CORE, "--gain", "-3", "-o", "d"], "--gain"),
    (["netlist", CORE, "--mode", "open", "--blocks", "0", "-o", "d"], "--blocks"),
    (["simulate", "d", "--workers", "0"], "--workers"),
    (["simulate", "d", "--workers", str(cores() + 1)], "--oversubscribe"),
    (["simulate", "d", "--timeout", "0"], "--timeout"),
    (["simulate", "d", "--steps", "0"], "--steps"),
    (["verify", CORE, "--backend", "amaranth", "--steps", "0"], "--steps"),
    (["verify", CORE, "--backend", "spice", "--workers", "-1"], "--workers"),
    (["verify", CORE, "--backend", "spice", "--workers", str(cores() + 1)], "--oversubscribe"),
    (["verilog", CORE, "--lanes", "0", "-o", "d"], "--lanes"),
    (["verilog", CORE, "--lanes", "33", "-o", "d"], "--lanes"),
    (["graph", CORE, "--after", "place", "--lanes", "64", "-o", "g.json"], "--lanes"),
    (["graph", CORE, "--after", "partition", "--blocks", "0", "-o", "g.json"], "--blocks"),
    (["generate", CORE, "--prompt", "a", "--length", "-1"], "--length"),
    (["generate", CORE, "--prompt", "a", "--temperature", "-0.5"], "--temperature"),
    (["generate", CORE, "--prompt", "a", "--seed", "-1"], "--seed"),
    (["train", "--neurons", "0", "-o", "x.rcsnn"], "--neurons"),
    (["train", "--sparsity", "1.5", "-o", "x.rcsnn"], "--sparsity"),
    (["train", "--lr", "inf", "-o", "x.rcsnn"], "--lr"),
    (["train", "--fv", "38", "-o", "x.rcsnn"], "--fv"),
    (["finetune", CORE, "--fb", "21", "-o", "x.rcsnn"], "--fb"),
    (["train", "--threads", str(cores() + 1), "-o", "x.rcsnn"], "--threads"),
    (["run", CORE, "--prompt", "", "-o", "r.npz"], "--prompt"),
]


@pytest.mark.parametrize("argv, option", NUMERIC, ids=[" ".join(a[:1] + a[2:]) for a, _ in NUMERIC])
def test_numeric_options_are_refused_before_any_work(tmp_path, capsys, monkeypatch, argv, option):
    monkeypatch.chdir(tmp_path)
    _refused(capsys, *argv, words=[option])
    assert not any(tmp_path.iterdir())  # nothing written


# ------------------------------------------------------------------------------------------ .npy inputs


def _npy(tmp_path, kind: str) -> Path:
    path = tmp_path / f"{kind}.npy"
    good = np.zeros((5, 64))
    if kind == "complex":
        np.save(path, good + 1j)
    elif kind == "string":
        np.save(path, np.full((5, 64), "a"))
    elif kind == "structured":
        np.save(path, np.zeros(5, dtype=[("a", "f8")]))
    elif kind == "object":
        np.save(path, np.array([[object()] * 64] * 5, dtype=object), allow_pickle=True)
    elif kind == "npz":
        with open(path, "wb") as f:
            np.savez(f, x=good)
    elif kind == "3d":
        np.save(path, np.zeros((5, 64, 2)))
    elif kind == "1d":
        np.save(path, np.zeros(64))
    elif kind == "width":
        np.save(path, np.zeros((5, 63)))
    elif kind == "nan":
        bad = good.copy()
        bad[2, 3] = np.nan
        np.save(path, bad)
    elif kind == "inf":
        bad = good.copy()
        bad[4, 0] = -np.inf
        np.save(path, bad)
    elif kind == "empty":
        np.save(path, np.zeros((0, 64)))
    elif kind == "huge":  # a header announcing 10**9 x 64 doubles, then 8 bytes of data
        np.save(path, good)
        data = path.read_bytes().replace(b"(5, 64)", b"(1000000000, 64)")
        path.write_bytes(data[:data.index(b"\n") + 1] + b"\0" * 8)
    elif kind == "truncated":
        np.save(path, good)
        path.write_bytes(path.read_bytes()[:-100])
    elif kind == "text":
        path.write_text("1 2 3\n")
    elif kind == "directory":
        path.mkdir()
    return path


NPY = {"complex": "dtype complex128", "string": "dtype <U1", "structured": "dtype", "object": "dtype object",
       "npz": "not a .npy file", "3d": "shape (5, 64, 2)", "1d": "shape (64,)", "width": "shape (5, 63)",
       "nan": "entry [2, 3] is nan", "inf": "entry [4, 0] is -inf", "empty": "shape (0, 64)",
       "huge": "more than the file's", "truncated": "more than the file's", "text": "not a .npy file",
       "directory": "cannot read"}


@pytest.mark.parametrize("kind", NPY)
def test_npy_inputs(tmp_path, capsys, kind):
    path = _npy(tmp_path, kind)
    _refused(capsys, "run", CORE, "--input", path, "-o", tmp_path / "r.npz", words=[path, NPY[kind]])
    assert not (tmp_path / "r.npz").exists()


def test_currents_of_the_wrong_length_are_refused_not_clipped(tmp_path, capsys):
    np.save(tmp_path / "x.npy", np.zeros((5, 96)))
    _refused(capsys, "netlist", CORE, "--currents", tmp_path / "x.npy", "--steps", "6", "-o", tmp_path / "n",
             words=["--steps 6", "only 5 steps"])
    np.save(tmp_path / "y.npy", np.zeros((5, 97)))
    _refused(capsys, "netlist", CORE, "--currents", tmp_path / "y.npy", "-o", tmp_path / "n", words=["(5, 97)"])


# ------------------------------------------------------------------------------------------ IR files


def _lif(doc) -> dict:
    return next(n for n in doc["nodes"] if n["kind"] == "lif")


def _matrix(doc) -> dict:
    return doc["graph"]["matrices"]["T"]


def _edge(doc, kind) -> dict:
    return next(e for e in doc["edges"] if e.get("kind") == kind)


GRAPH_EDITS = {
    "float('abc')": (lambda d: _lif(d).__setitem__("beta", "abc"), "key 'beta' = 'abc'"),
    "bool size": (lambda d: _lif(d).__setitem__("size", True), "key 'size' = True"),
    "string dtype": (lambda d: _lif(d)["bias"].__setitem__("dtype", "<U5"), "dtype '<U5'"),
    "object dtype": (lambda d: _lif(d)["bias"].__setitem__("dtype", "object"), "dtype 'object'"),
    "strings in data": (lambda d: _lif(d)["bias"]["data"].__setitem__(0, "1.5"), "not a flat list of numbers"),
    "nested data": (lambda d: _lif(d)["bias"]["data"].__setitem__(0, [1, 2]), "not a flat list of numbers"),
    "data length": (lambda d: _lif(d)["bias"]["data"].pop(), "31 data values for shape [32]"),
    "NaN bias": (lambda d: _lif(d)["bias"]["data"].__setitem__(3, float("nan")), "NaN"),
    "huge shape": (lambda d: _lif(d)["bias"].__setitem__("shape", [10**6, 10**6]), "more than 268435456 entries"),
    "negative shape": (lambda d: _lif(d)["bias"].__setitem__("shape", [-32]), "not a list of whole numbers"),
    "missing kind (KeyError)": (lambda d: _lif(d).pop("kind"), "unknown kind None"),
    "missing size (KeyError)": (lambda d: _lif(d).pop("size"), "key 'size' is missing"),
    "index list": (lambda d: _lif(d).__setitem__("index", [1]), "key 'index'"),
    "index gap": (lambda d: _lif(d).__setitem__("index", 7), "'index' values"),
    "column out of range (IndexError)": (lambda d: _matrix(d)["indices"].__setitem__(0, 10**6), "column index"),
    "short indptr": (lambda d: _matrix(d).__setitem__("indptr", [0]), "indptr"),
    "int8 overflow": (lambda d: _matrix(d)["signs"].__setitem__(0, 300), "signs"),
    "931 GiB matrix": (lambda d: _matrix(d).__setitem__("ternary_csr", [10**6, 10**6]), "more than 268435456"),
    "matrix is a list": (lambda d: d["graph"]["matrices"].__setitem__("T", [[1]]), "matrices.T"),
    "nodes not a list": (lambda d: d.__setitem__("nodes", 5), "key 'nodes' = 5"),
    "node id a number": (lambda d: d["nodes"][0].__setitem__("id", 3), "nodes[0].id"),
    "dt a string": (lambda d: d["graph"].__setitem__("dt", "x"), "key 'dt' = 'x'"),
    "fixed a string": (lambda d: d["graph"].__setitem__("fixed", {"Wv": "a"}), "fixed.Wv"),
    "vocab a number": (lambda d: d["graph"].__setitem__("vocab", 12345), "key 'vocab' = 12345"),
    "passes a string": (lambda d: d["graph"].__setitem__("passes", "quantize"), "key 'passes'"),
    "order a string": (lambda d: _edge(d, "synapse").__setitem__("order", "x"), "key 'order' = 'x'"),
    "delay 2": (lambda d: _edge(d, "synapse").__setitem__("delay", 2), "delay 2"),
    "synapse to the output": (lambda d: _edge(d, "synapse").__setitem__("target", "output"), "appears twice"),
    "duplicate node": (lambda d: d["nodes"].append(dict(_lif(d))), "appears twice"),
    "edge to no node": (lambda d: _edge(d, "spikes").__setitem__("target", "nowhere"), "nowhere"),
    "weight missing": (lambda d: _edge(d, "input").pop("weight"), "key 'weight' is missing"),
    "bias_q disagrees": (lambda d: _lif(d).__setitem__("bias_q", {"dtype": "int64", "shape": [1], "data": [5]}),
                         "bias_q"),
    "not JSON": (None, "not an rcsnn graph JSON file"),
    "a JSON list": (None, "not an rcsnn graph JSON file"),
}


@pytest.mark.parametrize("probe", GRAPH_EDITS)
def test_edited_graph_json(tmp_path, capsys, graph_json, probe):
    edit, words = GRAPH_EDITS[probe]
    path = _graph_file(tmp_path, graph_json, edit)
    if probe == "not JSON":
        path.write_bytes(b"\xff{not json")
    elif probe == "a JSON list":
        path.write_text("[1, 2]")
    _refused(capsys, "info", path, words=[path, words])


def test_graph_json_round_trips_exactly(tmp_path, capsys, graph_json):
    assert _cli(capsys, "graph", _graph_file(tmp_path, graph_json), "-o", tmp_path / "again.json")[0] == 0
    assert json.loads((tmp_path / "again.json").read_text()) == graph_json


@pytest.mark.parametrize("old, new, words", [
    ('<data key="d3">0.36787944117144233</data>', '<data key="d3">abc</data>', "not a readable GraphML"),
    ('"dtype": "float64"', '"dtype": "complex128"', "dtype 'complex128'"),
    ('"ternary_csr": [32, 32]', '"ternary_csr": [1000000, 1000000]', "more than 268435456"),
    ('<graphml', '<graphml><oops', "not a readable GraphML"),
])
def test_edited_graphml(tmp_path, capsys, old, new, words):
    path = tmp_path / "core.graphml"
    assert _cli(capsys, "graph", CORE, "-o", path)[0] == 0
    text = path.read_text()
    if old.startswith("<data"):
        key = next(line for line in text.splitlines() if 'attr.name="beta"' in line).split('id="')[1].split('"')[0]
        old, new = old.replace("d3", key), new.replace("d3", key)
    assert old in text
    path.write_text(text.replace(old, new, 1))
    _refused(capsys, "info", path, words=[path, words])


# ------------------------------------------------------------------------------------------ checkpoint configs

CONFIG_EDITS = {
    "vocab a number": (lambda c, t: c.__setitem__("vocab", 12345), "key 'vocab' = 12345"),
    "vocab a list": (lambda c, t: c.__setitem__("vocab", ["a"]), "key 'vocab'"),
    "groups a number": (lambda c, t: c.__setitem__("groups", 5), "key 'groups' = 5"),
    "group a number": (lambda c, t: c.__setitem__("groups", [5, 6, 7]), "groups[0]"),
    "size a string": (lambda c, t: c["groups"][1].__setitem__("size", "32"), "groups[1]: key 'size'"),
    "size 10**12": (lambda c, t: c["groups"][0].__setitem__("size", 10**12), "shape"),
    "delay a string": (lambda c, t: c["synapses"][0].__setitem__("delay", "x"), "key 'delay' = 'x'"),
    "dt true": (lambda c, t: c.__setitem__("dt", True), "key 'dt' = True"),
    "dt missing": (lambda c, t: c.pop("dt"), "key 'dt' is missing"),
    "fixed missing a key": (lambda c, t: c["fixed"].pop("Fb"), "fixed.Fb"),
    "training a number": (lambda c, t: c.__setitem__("training", 5), "key 'training' = 5"),
    "synapses missing": (lambda c, t: c.pop("synapses"), "key 'synapses' is missing"),
    "matrix a path": (lambda c, t: [s.__setitem__("matrix", "../x") for s in c["synapses"]], "matrix.../x"),
}


@pytest.mark.parametrize("probe", CONFIG_EDITS)
def test_edited_checkpoint_config(tmp_path, capsys, probe):
    edit, words = CONFIG_EDITS[probe]
    path = _checkpoint(tmp_path, edit)
    _refused(capsys, "info", path, words=[path, words])


def test_training_command_with_control_characters_is_shown_escaped(tmp_path, capsys):
    path = _checkpoint(tmp_path, lambda c, t: c["training"].__setitem__("command", "rcsnn train\x1b[2J"))
    code, out, _ = _cli(capsys, "info", path, "--steps", "3")
    assert code == 0 and "\x1b" not in out and "\\x1b[2J" in out


# ------------------------------------------------------------------------------------------ outputs


def _read_only_dir(tmp_path) -> Path:
    """A directory where no file can be created, even by root (/sys) or by the owner (mode 0500)."""
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(stat.S_IRUSR | stat.S_IXUSR)
    try:
        (ro / "probe").touch()
    except OSError:
        return ro
    (ro / "probe").unlink()
    try:
        Path("/sys/rcsnn-probe").touch()
    except OSError:
        return Path("/sys")
    pytest.skip("no read-only directory available")


@pytest.fixture(scope="module")
def netlist_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("netlists") / "n"
    assert main(["netlist", CORE, "--steps", "3", "-o", str(out)]) == 0
    return out


FILE_OUTPUTS = {  # command -> argv with the output path last
    "run": ["run", CORE, "--prompt", "ab", "-o"],
    "graph": ["graph", CORE, "-o"],
    "simulate": ["simulate", "NETLISTS", "-o"],
    "train": ["train", "--neurons", "4", "-o"],
}
DIR_OUTPUTS = {
    "netlist": ["netlist", CORE, "--steps", "3", "-o"],
    "verilog": ["verilog", CORE, "--steps", "3", "-o"],
    "verify": ["verify", CORE, "--backend", "amaranth", "--steps", "2", "--out"],
}


@pytest.fixture
def no_long_work(monkeypatch):
    """Fail if a command starts its long work (training, ngspice) before it checked its output."""
    from rcsnn.analog import simulate
    from rcsnn.model import train

    def refuse(*args, **kwargs):
        raise AssertionError("the long work started before the output was checked")

    monkeypatch.setattr(train, "train", refuse)
    monkeypatch.setattr(simulate, "simulate_dir", refuse)


@pytest.mark.parametrize("case", ["read-only directory", "missing parent", "parent is a file", "path is a directory"])
@pytest.mark.parametrize("command", FILE_OUTPUTS)
def test_file_output_failures_come_first(tmp_path, capsys, netlist_dir, no_long_work, command, case):
    name = {"run": "r.npz", "graph": "g.json", "simulate": "s.npz", "train": "c.rcsnn"}[command]
    (tmp_path / "afile").write_text("")
    out = {"read-only directory": lambda: _read_only_dir(tmp_path) / name,
           "missing parent": lambda: tmp_path / "nowhere" / name,
           "parent is a file": lambda: tmp_path / "afile" / name,
           "path is a directory": lambda: (tmp_path / name).mkdir() or tmp_path / name}[case]()
    argv = [netlist_dir if a == "NETLISTS" else a for a in FILE_OUTPUTS[command]] + [out]
    words = {"read-only directory": "cannot write in", "missing parent": "does not exist",
             "parent is a file": "not a directory", "path is a directory": "is a directory"}[case]
    _refused(capsys, *argv, words=[out, words])


@pytest.mark.parametrize("case", ["read-only directory", "path is a file", "foreign directory"])
@pytest.mark.parametrize("command", DIR_OUTPUTS)
def test_directory_output_failures_come_first(tmp_path, capsys, command, case):
    if case == "read-only directory":
        out = _read_only_dir(tmp_path) / "out"
    elif case == "path is a file":
        out = tmp_path / "afile"
        out.write_text("mine")
    else:
        out = tmp_path / "mine"
        out.mkdir()
        (out / "thesis.tex").write_text("mine")
    words = {"read-only directory": "cannot write in", "path is a file": "not a directory",
             "foreign directory": "did not write"}[case]
    _refused(capsys, *DIR_OUTPUTS[command], out, words=[out, words])
    if case == "path is a file":
        assert out.read_text() == "mine"
    if case == "foreign directory":
        assert [p.name for p in out.iterdir()] == ["thesis.tex"]


def test_run_prints_the_file_it_wrote(tmp_path, capsys):
    code, out, _ = _cli(capsys, "run", CORE, "--prompt", "ab", "-o", tmp_path / "raster")
    assert code == 0 and out.rstrip().endswith(f"-> {tmp_path / 'raster.npz'}") and (tmp_path / "raster.npz").is_file()


def test_reemitting_leaves_no_stale_decks(tmp_path, capsys):
    out = tmp_path / "n"
    assert _cli(capsys, "netlist", CORE, "--steps", "3", "--mode", "open", "--blocks", "6", "-o", out)[0] == 0
    six = sorted(p.name for p in out.iterdir())
    assert _cli(capsys, "netlist", CORE, "--steps", "3", "--mode", "open", "--blocks", "3", "-o", out)[0] == 0
    three = sorted(p.name for p in out.iterdir())
    assert "block_005.cir" in six and not any(name.startswith(("block_003", "block_004", "block_005")) for name in three)
    sidecar = json.loads((out / "core.json").read_text())
    assert sorted(sidecar["files"]) == sorted(set(three) - {"core.json"})
    assert [p.name for p in tmp_path.iterdir()] == ["n"]  # no temporary sibling left


# ------------------------------------------------------------------------------------------ read back: netlists


def _sidecar(path: Path, edit):
    doc = json.loads((path / "core.json").read_text())
    edit(doc)
    (path / "core.json").write_text(json.dumps(doc))


def _lines(path: Path, edit):
    path.write_text("".join(edit(path.read_text().splitlines(keepends=True))))


SIDECAR_PROBES = {
    "no core.json": (lambda d: (d / "core.json").unlink(), "cannot read the netlist sidecar"),
    "broken core.json": (lambda d: (d / "core.json").write_text("{"), "not valid JSON"),
    "core.json a list": (lambda d: (d / "core.json").write_text("[]"), "not an object"),
    "without steps": (lambda d: _sidecar(d, lambda s: s.pop("steps")), "key 'steps' is missing"),
    "steps a string": (lambda d: _sidecar(d, lambda s: s.__setitem__("steps", "3")), "key 'steps' = '3'"),
    "unknown design key": (lambda d: _sidecar(d, lambda s: s["circuit"]["design"].__setitem__("foo", 1)),
                           "circuit.design.foo"),
    "no decks": (lambda d: _sidecar(d, lambda s: s.__setitem__("decks", [])), "key 'decks' is empty"),
    "deck outside": (lambda d: _sidecar(d, lambda s: s["decks"][0].__setitem__("netlist", "../x.cir")),
                     "not a file name"),
    "no hashes (older rcsnn)": (lambda d: _sidecar(d, lambda s: s.pop("files")), "key 'files'"),
    "deleted neuron line": (lambda d: _lines(d / "core.cir", lambda ls: [x for x in ls if not x.startswith("Xn5 ")]),
                            "core.cir: edited"),
    "garbage stimulus value": (lambda d: _lines(d / "core_stim0.txt", lambda ls: [ls[0], "0 x 1e9\n", *ls[2:]]),
                               "core_stim0.txt: edited"),
    "stimulus cut short": (lambda d: _lines(d / "core_stim1.txt", lambda ls: ls[:2]), "core_stim1.txt: edited"),
    "missing stimulus file": (lambda d: (d / "core_stim2.txt").unlink(), "core_stim2.txt: missing file"),
    "a .control block added": (lambda d: _lines(d / "core.cir", lambda ls: [*ls[:-1], ".control\nshell id\n.endc\n",
                                                                             ls[-1]]), "core.cir: edited"),
}


@pytest.mark.parametrize("probe", SIDECAR_PROBES)
def test_netlist_directory_read_back(tmp_path, capsys, netlist_dir, probe):
    edit, words = SIDECAR_PROBES[probe]
    copy_ = tmp_path / "n"
    shutil.copytree(netlist_dir, copy_)
    edit(copy_)
    _refused(capsys, "simulate", copy_, words=[words])


def test_trust_edits_runs_a_hand_edited_deck(tmp_path, capsys, netlist_dir):
    if shutil.which("ngspice") is None:
        pytest.skip("ngspice not installed")
    copy_ = tmp_path / "n"
    shutil.copytree(netlist_dir, copy_)
    _lines(copy_ / "core.cir", lambda ls: [*ls[:-1], "* a comment of mine\n", ls[-1]])
    _refused(capsys, "simulate", copy_, words=["--trust-edits"])
    code, out, err = _cli(capsys, "simulate", copy_, "--trust-edits")
    assert code == 0 and "3 steps x 96 neurons" in out, err


# ------------------------------------------------------------------------------------------ read back: designs


@pytest.fixture
def design_dir(tmp_path) -> Path:
    """A design directory as rcsnn verilog leaves it, for what synth reads (no HDL needs to be real here)."""
    out = tmp_path / "hdl"
    (out / "mem").mkdir(parents=True)
    (out / "rcsnn_synth.il").write_text("# rtlil\n")
    (out / "mem" / "lane0_bias.hex").write_text("00\n")
    design = {"top": "rcsnn_core", "lanes": 2, "Wv": 21, "preload": True, "lutram": False, "chain_bits": 3,
              "groups": [{"name": "g0", "size": 4}],
              "files": manifest(out, ["rcsnn_synth.il", "mem/lane0_bias.hex"])}
    (out / "design.json").write_text(json.dumps(design))
    return out


DESIGN_PROBES = {
    "missing design.json": (lambda d: (d / "design.json").unlink(), "cannot read the design description"),
    "broken design.json": (lambda d: (d / "design.json").write_text("{'lanes': 2"), "not valid JSON"),
    "lanes a string": (lambda d: _design(d, lambda x: x.__setitem__("lanes", "8")), "key 'lanes' = '8'"),
    "lanes 0": (lambda d: _design(d, lambda x: x.__setitem__("lanes", 0)), "must be 1..32"),
    "groups missing": (lambda d: _design(d, lambda x: x.pop("groups")), "key 'groups' is missing"),
    "no hashes": (lambda d: _design(d, lambda x: x.pop("files")), "key 'files'"),
    "edited RTLIL": (lambda d: (d / "rcsnn_synth.il").write_text("# mine\n"), "rcsnn_synth.il: edited"),
    "missing memory image": (lambda d: (d / "mem" / "lane0_bias.hex").unlink(), "missing file"),
    "not a directory": (lambda d: shutil.rmtree(d), "not a directory"),
}


def _design(path: Path, edit):
    doc = json.loads((path / "design.json").read_text())
    edit(doc)
    (path / "design.json").write_text(json.dumps(doc))


@pytest.mark.parametrize("probe", DESIGN_PROBES)
def test_synth_reads_design_json_back(capsys, monkeypatch, design_dir, probe):
    from rcsnn.digital import synth

    monkeypatch.setattr(synth, "yosys", lambda *a, **k: pytest.fail("synthesis started on a refused directory"))
    edit, words = DESIGN_PROBES[probe]
    edit(design_dir)
    _refused(capsys, "synth", design_dir, "--target", "ice40-up5k", words=[design_dir, words])


# ------------------------------------------------------------------------------------------ read back: rasters


def _raster_probe(tmp_path, kind: str) -> Path:
    from rcsnn.ir.raster import Raster

    good = Raster(np.zeros((2, 3), np.int8), None, "membrane", "float", ("g",), (0,), (3,), {"x": 1})
    path = good.save(tmp_path / "r.npz")
    if kind == "text":
        path.write_text("not a raster")
    elif kind == "truncated":
        path.write_bytes(path.read_bytes()[:200])
    else:
        with np.load(path) as z:
            data = {k: z[k] for k in z.files}
        {"missing spikes": lambda: data.pop("spikes"), "spikes float": lambda: data.__setitem__("spikes", np.zeros((2, 3))),
         "groups numbers": lambda: data.__setitem__("groups", np.array([1])),
         "provenance not JSON": lambda: data.__setitem__("provenance", np.array("{")),
         "membranes of another shape": lambda: data.__setitem__("membranes", np.zeros((5, 3)))}[kind]()
        with open(path, "wb") as f:
            np.savez(f, **data)
    return path


@pytest.mark.parametrize("kind, words", [("text", "not an .npz archive"), ("truncated", "cannot read"),
                                         ("missing spikes", "key 'spikes' is missing"), ("spikes float", "key 'spikes'"),
                                         ("groups numbers", "'groups'"), ("provenance not JSON", "'provenance'"),
                                         ("membranes of another shape", "'membranes'")])
def test_raster_files_read_back(tmp_path, kind, words):
    from rcsnn.ir.raster import Raster

    path = _raster_probe(tmp_path, kind)
    with pytest.raises(RcsnnError) as info:
        Raster.load(path)
    assert str(path) in str(info.value) and words in str(info.value) and "\n" not in str(info.value)


# ------------------------------------------------------------------------------------------ simulator failures


def _fake_tool(tmp_path, name: str, body: str) -> None:
    path = tmp_path / "fakebin" / name
    path.parent.mkdir(exist_ok=True)
    path.write_text("#!/bin/sh\n" + body + "\n")
    path.chmod(0o755)


@pytest.mark.parametrize("body, options, words", [
    ("kill -SEGV $$", [], "core: ngspice: killed by signal SIGSEGV"),
    ("kill -KILL $$", [], "core: ngspice: killed by signal SIGKILL"),
    ("exec sleep 30", ["--timeout", "0.5"], "core: ngspice: timed out after 0.5 s"),
    ("exit 3", [], "ngspice wrote no results"),
])
def test_ngspice_failures_name_their_cause(tmp_path, capsys, monkeypatch, netlist_dir, body, options, words):
    _fake_tool(tmp_path, "ngspice", body)
    monkeypatch.setenv("PATH", f"{tmp_path / 'fakebin'}{os.pathsep}{os.environ['PATH']}")
    start = time.monotonic()
    _refused(capsys, "simulate", netlist_dir, *options, "-o", tmp_path / "s.npz", words=[words])
    assert time.monotonic() - start < 10 and not (tmp_path / "s.npz").exists()


def test_a_failed_deck_stops_the_other_ngspice_workers_at_once(tmp_path, capsys, monkeypatch):
    """Three decks in parallel: the one that crashes is reported at once and the other two ngspice processes
    (sleeping 30 s here) are killed, not waited for."""
    assert _cli(capsys, "netlist", CORE, "--steps", "2", "--mode", "open", "--blocks", "3", "-o", tmp_path / "n")[0] == 0
    _fake_tool(tmp_path, "ngspice", 'case "$2" in block_001*) sleep 0.5; kill -SEGV $$;; *) exec sleep 30;; esac')
    monkeypatch.setenv("PATH", f"{tmp_path / 'fakebin'}{os.pathsep}{os.environ['PATH']}")
    start = time.monotonic()
    _refused(capsys, "simulate", tmp_path / "n", "--workers", "3", "--oversubscribe",
             words=["block_001: ngspice: killed by signal SIGSEGV"])
    assert time.monotonic() - start < 8 and not _children_named("sleep")


def test_missing_stimulus_file_is_named_by_ngspice_too(tmp_path, netlist_dir):
    """With --trust-edits a file may vanish after the check; ngspice's own message is then the cause shown."""
    from rcsnn.analog.ngspice import run_subprocess

    if shutil.which("ngspice") is None:
        pytest.skip("ngspice not installed")
    shutil.copytree(netlist_dir, tmp_path / "n")
    (tmp_path / "n" / "core_stim0.txt").unlink()
    with pytest.raises(RcsnnError, match="core: ngspice: a stimulus file is missing or unreadable: .*core_stim0.txt"):
        run_subprocess((tmp_path / "n" / "core.cir").read_text(), "core", tmp_path / "n", timeout=60)


def test_a_tool_killed_by_a_signal_is_named(tmp_path):
    threading.Timer(0.3, lambda: [os.kill(pid, signal.SIGTERM) for pid in _children_named("sleep")]).start()
    with pytest.raises(RcsnnError, match="^sleeper: killed by signal SIGTERM$"):
        tools.run(["sleep", "20"], timeout=10, what="sleeper")


def _children_named(name: str) -> list[int]:
    me = os.getpid()
    found = []
    for stat_file in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat_file.read_text().rsplit(")", 1)
        except OSError:
            continue
        if fields[0].endswith("(" + name) and int(fields[1].split()[1]) == me:
            found.append(int(stat_file.parent.name))
    return found


def test_a_cancelled_run_stops_its_tool_at_once(tmp_path):
    stop = threading.Event()
    threading.Timer(0.3, stop.set).start()
    start = time.monotonic()
    with tools.cancellable(stop), pytest.raises(RcsnnError, match="^sleeper: stopped$"):
        tools.run(["sleep", "20"], timeout=10, what="sleeper")
    assert time.monotonic() - start < 2 and not _children_named("sleep")


def test_checkpoint_is_saved_whole(tmp_path, small_core):
    """save_checkpoint writes through a temporary sibling: an error leaves the old file."""
    path = tmp_path / "c.rcsnn"
    path.write_bytes(b"old")
    graph = Graph.from_arrays(small_core)
    with pytest.raises(TypeError):
        save_checkpoint(graph, path, {"training": object()})  # not JSON-able: fails inside the write
    assert path.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["c.rcsnn"]
