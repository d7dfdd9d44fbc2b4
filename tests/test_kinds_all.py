"""IF, CubaLIF and per-neuron τ/θ cores through the one verdict: ``rcsnn verify CORE --backend all``.

Each core of issue 10's neuron kinds (the small random cores of tests/test_digital_kinds.py), written as
an IR file, must pass every back end in one run — fixed point vs float64, SPICE open loop within the
a-priori budget, Amaranth, Verilator, Icarus and the synthesised gate-level netlist — with exit status 0
and a PASS line per back end in ``summary.json``. The per-back-end negative controls of these kinds are in
tests/test_digital_kinds.py and tests/test_analog_kinds.py, the summary's (one failing back end makes the
verdict FAIL) in tests/test_summary.py. About 30-40 s per core.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from test_digital_kinds import kinds_core

from rcsnn.cli import main
from rcsnn.ir.graph import Graph
from rcsnn.ir.serialize import save_graph

STEPS = 30
KINDS = ("IF and resets", "CubaLIF", "per-neuron")


def _ir_file(tmp_path, case: str):
    core = kinds_core(case)
    save_graph(Graph.from_arrays(core), tmp_path / "core.json")
    np.save(tmp_path / "x.npy", np.random.default_rng(7).standard_normal((STEPS, core.n_inputs)))
    return tmp_path / "core.json", tmp_path / "x.npy"


@pytest.mark.parametrize("case", KINDS)
def test_kind_passes_every_backend(tmp_path, case):
    core, x = _ir_file(tmp_path, case)
    status = main(["verify", str(core), "--backend", "all", "--input", str(x), "--lanes", "3",
                   "--out", str(tmp_path / "verify")])
    summary = json.loads((tmp_path / "verify" / "summary.json").read_text())
    assert summary["backends"] == dict.fromkeys(("fixed", "spice", "amaranth", "verilator", "icarus", "gate"),
                                                "PASS"), summary["backends"]
    assert summary["verdict"] == "PASS" and status == 0
