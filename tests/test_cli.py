"""The rcsnn command on the small shipped checkpoint."""

import subprocess
import sys

import numpy as np
import pytest
from conftest import SMALL_CHECKPOINT

from rcsnn.cli import main
from rcsnn.frontends.checkpoint import load_checkpoint
from rcsnn.ir.reference import simulate_fixed


def _run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_info(capsys):
    code, out, _ = _run(capsys, "info", SMALL_CHECKPOINT)
    assert code == 0
    assert "3 groups, 96 neurons" in out and "sparsity 0.93" in out and "KiB CSR 16-bit" in out
    assert "g2    32    16.000" in out and "trained by: rcsnn train" in out


def test_generate_is_seeded(capsys):
    args = ("generate", SMALL_CHECKPOINT, "--prompt", "The ", "--length", "40", "--seed", "3")
    first, second = _run(capsys, *args)[1], _run(capsys, *args)[1]
    other = _run(capsys, *args[:-1], "4")[1]
    assert first == second and first.startswith("The ") and len(first.strip()) == 44 and first != other
    assert _run(capsys, *args, "--backend", "fixed")[0] == 0


def test_run_writes_raster(tmp_path, capsys):
    out = tmp_path / "r.npz"
    code, text, _ = _run(capsys, "run", SMALL_CHECKPOINT, "--prompt", "import numpy as np\n", "--backend", "fixed",
                         "-o", out)
    assert code == 0 and "19 steps x 96 neurons" in text
    data = np.load(out)
    assert data["spikes"].dtype == np.int8 and data["spikes"].shape == (19, 96)
    core = load_checkpoint(SMALL_CHECKPOINT).arrays()
    np.testing.assert_array_equal(data["spikes"], simulate_fixed(core, core.text_currents("import numpy as np\n")).spikes)


def test_run_with_input_array_and_graph_file(tmp_path, capsys):
    graph = tmp_path / "core.json"
    assert _run(capsys, "graph", SMALL_CHECKPOINT, "-o", graph)[0] == 0
    x = np.random.default_rng(0).normal(size=(30, 64))
    np.save(tmp_path / "x.npy", x)
    code, text, _ = _run(capsys, "run", graph, "--input", tmp_path / "x.npy", "--steps", "20", "-o", tmp_path / "r.npz")
    assert code == 0 and np.load(tmp_path / "r.npz")["spikes"].shape == (20, 96)
    np.save(tmp_path / "bad.npy", x[:, :10])
    code, _, err = _run(capsys, "run", graph, "--input", tmp_path / "bad.npy", "-o", tmp_path / "r.npz")
    assert code == 2 and "shape (30, 10), expected (steps, 64)" in err


@pytest.mark.parametrize("argv, words", [
    (["info", "missing.rcsnn"], "missing.rcsnn: no such file"),
    (["info", SMALL_CHECKPOINT, "--dt", "1e-3"], "apply only to NIR"),
    (["generate", SMALL_CHECKPOINT, "--prompt", "\u2603"], "not in the core's vocabulary"),
    (["graph", SMALL_CHECKPOINT, "-o", "x.txt"], "unknown graph file type"),
])
def test_errors_are_one_line(capsys, argv, words):
    code, out, err = _run(capsys, *argv)
    assert code == 2 and words in err and err.count("\n") == 1


def test_console_script_reports_error_without_traceback(tmp_path):
    bad = tmp_path / "bad.rcsnn"
    bad.write_bytes(b"\x00" * 100)
    proc = subprocess.run([sys.executable, "-m", "rcsnn.cli", "info", str(bad)], capture_output=True, text=True)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr and str(bad) in proc.stderr
