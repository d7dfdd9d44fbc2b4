"""The fixed-point reference against the float reference within the derived quantisation bound, and its negative controls."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from conftest import SMALL_CHECKPOINT, random_graph

import rcsnn.verify.fixed as check
from rcsnn.frontends.load import load_core
from rcsnn.ir.arrays import FixedFormat
from rcsnn.ir.reference import quantize_core
from rcsnn.ir.stimulus import Stimulus
from rcsnn.verify.report import Provenance

CORES = {
    "small checkpoint": lambda: load_core(SMALL_CHECKPOINT),
    "both resets, cross edge": lambda: random_graph(3, sizes=(10, 12), resets=("zero", "subtract"), shared=False,
                                                    cross=True),
    "coarse 12-bit format": lambda: random_graph(4, resets=("subtract", "zero"), fixed=FixedFormat(12, 5, 6)),
}


def _verify(graph, tmp_path, steps=120):
    stimulus = Stimulus.sample(graph, steps)
    if graph.arrays().frontend is None:  # a stronger drive than the N(0,1) sample, so that neurons fire
        stimulus = Stimulus(stimulus.currents * 3.0, "3 x N(0,1)")
    return check.verify_fixed(graph, stimulus, tmp_path, Provenance("core", "", stimulus.description, "", steps))


@pytest.mark.parametrize("name", sorted(CORES))
def test_fixed_point_reference_is_within_its_derived_bound(name, tmp_path):
    report = _verify(CORES[name](), tmp_path)
    assert report.passed, report.lines
    assert report.figures["membranes_outside_interval"] == 0
    assert report.comparison.reference_spikes > 0 and (tmp_path / "fixed" / "report.json").exists()


def _broken(monkeypatch, mutate):
    real = check.simulate_fixed

    def broken(core, currents, fixed=None, forced=None):
        return real(core, currents, mutate(quantize_core(core)), forced)

    monkeypatch.setattr(check, "simulate_fixed", broken)


@pytest.mark.parametrize("control", ["beta_q + 1 in one group", "bias_q + 1 LSB on one neuron", "alpha_q - 1"])
def test_negative_controls_fail(control, monkeypatch, tmp_path):
    def mutate(q):
        if control.startswith("beta"):
            return dataclasses.replace(q, beta_q=q.beta_q + (np.arange(q.beta_q.size) < 32))
        if control.startswith("bias"):
            return dataclasses.replace(q, bias_q=q.bias_q + (np.arange(q.bias_q.size) == 40))
        return dataclasses.replace(q, alpha_q=tuple(a - 1 for a in q.alpha_q))

    _broken(monkeypatch, mutate)
    report = _verify(load_core(SMALL_CHECKPOINT), tmp_path)
    assert not report.passed and report.figures["membranes_outside_interval"] > 0
    assert "first membrane outside" in report.lines[-1]
