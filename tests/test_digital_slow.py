"""The paper-sized example core in Verilator: 10,000 steps of real text (slow: run with ``pytest -m slow``)."""

from __future__ import annotations

import json

import pytest
from conftest import EXAMPLE_CHECKPOINT

from rcsnn.cli import main


@pytest.mark.slow
def test_example_core_is_bit_exact_for_10k_steps_near_the_event_bound(tmp_path):
    if not EXAMPLE_CHECKPOINT.exists():
        pytest.skip(f"{EXAMPLE_CHECKPOINT} not trained yet")
    code = main(["verify", str(EXAMPLE_CHECKPOINT), "--backend", "verilator", "--steps", "10000", "--lanes", "8",
                 "--out", str(tmp_path)])
    report = json.loads((tmp_path / "digital-verilator" / "report.json").read_text())
    assert code == 0 and report["verdict"] == "PASS" and report["comparison"]["steps"] == 10000
    assert report["figures"]["ratio"] <= 1.25
