"""The paper-sized example core in ngspice (minutes: run with -m slow, under nice on a shared machine)."""

import json

import pytest
from conftest import EXAMPLE_CHECKPOINT, ROOT

from rcsnn.cli import main

pytestmark = pytest.mark.slow


@pytest.mark.skipif(not EXAMPLE_CHECKPOINT.exists(), reason="examples/sapu_3x512.rcsnn not trained yet")
def test_example_core_open_loop_200_steps(tmp_path, capsys):
    prompt = (ROOT / "examples" / "prompt.txt").read_text()[:200]
    code = main(["verify", str(EXAMPLE_CHECKPOINT), "--backend", "spice", "--steps", "200", "--prompt", prompt,
                 "--mode", "open", "--workers", "2", "--out", str(tmp_path)])
    print(capsys.readouterr().out)
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["comparison"]["neurons"] == 1536 and report["comparison"]["steps"] == 200
    f = report["figures"]
    assert f["decidable_mismatches"] == 0, report["comparison"]["first_divergence"]
    assert f["membrane_violations"] == 0, f["worst_membrane"]
    assert all(b["a"] <= 5e-6 * b["theta"] for b in f["budget"]), f["budget"]  # the a-priori budget, fixed before
    assert len(f["undecidable_mismatched"]) == f["undecidable_mismatches"]  # every undecidable mismatch is listed
    assert code == 0 and report["verdict"] == "PASS"
