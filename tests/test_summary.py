"""The one verdict of ``verify --backend all``: a PASS/FAIL line per back end, PASS only if every line is."""

from __future__ import annotations

import json

from rcsnn.verify.compare import Comparison
from rcsnn.verify.report import Provenance, Report, summary_table, write_summary


def _report(backend: str, mismatches: int, passed: bool, seconds: float | None, figures: dict | None = None) -> Report:
    comparison = Comparison(steps=20, neurons=96, reference_spikes=300, backend_spikes=300 + mismatches,
                            mismatches=mismatches, first=None, mismatches_per_group={})
    return Report(backend, "fixed-point reference", passed, comparison, [], figures or {},
                  Provenance("core.rcsnn", "", "sample", "", 20), seconds=seconds)


def test_all_pass_gives_pass_and_one_line_each(tmp_path):
    reports = [_report("fixed", 0, True, 0.42), _report("spice", 0, True, 114.2, {"undecidable": [[3, 7]]}),
               _report("gate", 0, True, None)]
    table = summary_table(reports)
    assert table.startswith("# rcsnn verify: PASS")
    rows = [line for line in table.splitlines() if line.startswith("| ") and "back end" not in line]
    assert rows == ["| fixed | fixed-point reference | 20 | 1,920 | 0 | — | 0.4 | **PASS** |",
                    "| spice | fixed-point reference | 20 | 1,920 | 0 | 1 | 114 | **PASS** |",
                    "| gate | fixed-point reference | 20 | 1,920 | 0 | — | — | **PASS** |"]
    write_summary(reports, tmp_path)
    assert json.loads((tmp_path / "summary.json").read_text())["verdict"] == "PASS"


def test_negative_control_one_failing_back_end_fails_the_verdict(tmp_path):
    reports = [_report("fixed", 0, True, 1.0), _report("icarus", 1, False, 16.0)]
    assert summary_table(reports).startswith("# rcsnn verify: FAIL")
    assert "| icarus | fixed-point reference | 20 | 1,920 | 1 | — | 16 | **FAIL** |" in summary_table(reports)
    write_summary(reports, tmp_path)
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["verdict"] == "FAIL" and summary["backends"] == {"fixed": "PASS", "icarus": "FAIL"}
