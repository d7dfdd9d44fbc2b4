"""Issue 10 item 5, the hardware half: property tests over random small IRs through both back ends.

Hypothesis (derandomised, a fixed number of examples) draws small cores with :func:`strategies.specs` —
1-3 groups of IF, LIF and CubaLIF neurons (current_delay 0 and 1), every reset mode, β and θ per group or
per neuron, ternary and dense blocks of densities 0, 0.3 and 1, feed-forward stacks of same-step blocks
that must be retimed — and checks

* the digital core in Amaranth's simulator (``verify_digital``, backend ``amaranth``) against the
  fixed-point reference: 2-12 neurons a group, 5-15 steps, the saved raster equal to the reference's
  spike for spike (on the original steps, also when retimed); a core without synapse blocks is refused
  in one line (the event-driven core needs one);
* a tiny SPICE case: a few cores of 2-4 neurons a group, 5-8 steps, through ``verify_spice`` in open
  loop with 0 decidable mismatches and 0 membranes outside their a-priori budget.

Negative controls: a runner that flips one spike is caught by both, at the flipped (step, neuron); a
SPICE membrane moved by one θ is counted outside its budget. Each example is ``note``d (the spec and
format) for reproduction.
"""

from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, note, settings
from strategies import build, specs

from rcsnn.analog.options import SpiceOptions
from rcsnn.digital.options import DigitalOptions
from rcsnn.errors import RcsnnError
from rcsnn.ir.raster import Raster
from rcsnn.ir.reference import quantize_core, simulate_fixed
from rcsnn.ir.stimulus import Stimulus
from rcsnn.verify import digital, spice
from rcsnn.verify.report import Provenance

#: Examples per property, fixed: with ``derandomize`` the same cores on every run (deterministic CI).
DIGITAL_EXAMPLES = 40
SPICE_EXAMPLES = 3
LANES = 3


def _settings(examples: int):
    return settings(max_examples=examples, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])


def _stimulus(x: np.ndarray) -> tuple[Stimulus, Provenance]:
    stimulus = Stimulus(x, "hypothesis")
    return stimulus, Provenance("hypothesis", "", stimulus.description, stimulus.sha256, stimulus.steps)


def _noted(case: tuple) -> tuple:
    """``case`` (spec, currents, format), ``note``d for reproduction (the spec with its matrices, the currents,
    the format) and counted as events (``--hypothesis-show-statistics``): the kinds, resets and blocks covered."""
    spec, x, fmt = case
    note(f"spec = {spec!r}")
    note(f"x = np.array({x.tolist()!r})")
    note(f"fmt = {fmt!r}")
    for g in spec["groups"]:
        kind = "IF" if min(g["beta"]) == 1 else f"CubaLIF delay {g['current_delay']}" if max(g["beta_syn"]) else "LIF"
        event(f"group {kind}, reset {g['reset']}, {'per-neuron' if len(set(g['theta'])) > 1 else 'shared'} theta")
    for b in spec["blocks"]:
        event(f"block delay {b['delay']} {'dense' if b['dense'] else 'ternary'}")
    event(f"{len(spec['groups'])} group(s), {len(x)} steps, retimed: {any(b['delay'] == 0 for b in spec['blocks'])}")
    return case


def _amaranth(spec: dict, x: np.ndarray, fmt, work: Path):
    """``verify_digital`` on Amaranth's simulator; returns the report, the saved spikes and the fixed-point
    reference's spikes computed here, on the original steps."""
    graph = build(spec, fmt)
    stimulus, provenance = _stimulus(x)
    report = digital.verify_digital(graph, stimulus, "amaranth", DigitalOptions(lanes=LANES), work, provenance)
    want = simulate_fixed(graph, quantize_core(graph).quantize(x)).spikes
    return report, Raster.load(work / "digital-amaranth" / "raster.npz").spikes, want


hardware_specs = specs(levels=True, sizes=(2, 12), steps=(5, 15))


@_settings(DIGITAL_EXAMPLES)
@given(hardware_specs)
def test_amaranth_core_is_the_fixed_point_reference(case):
    spec, x, fmt = _noted(case)
    with tempfile.TemporaryDirectory() as work:
        if not spec["blocks"]:
            with pytest.raises(RcsnnError, match="no synapse blocks; the event-driven core needs at least one"):
                _amaranth(spec, x, fmt, Path(work))
            return
        report, got, want = _amaranth(spec, x, fmt, Path(work))
    assert report.passed, report.lines
    assert got.shape == want.shape == x.shape
    np.testing.assert_array_equal(got, want)


def _flip_one(run, step: int, neuron: int):
    spikes = run.spikes.copy()
    spikes[step, neuron] ^= 1
    return dataclasses.replace(run, spikes=spikes)


@_settings(3)
@given(hardware_specs.filter(lambda case: case[0]["blocks"]))
def test_negative_control_a_flipped_spike_fails_the_digital_property(case):
    """The hardware run with one spike flipped (mid-run, in the middle neuron) fails, naming that event."""
    spec, x, fmt = _noted(case)
    real = digital.run_pysim
    where = {}

    def flipped(image, xq, vcd=None):
        run = real(image, xq, vcd)
        where.setdefault("at", (len(xq) // 2, run.spikes.shape[1] // 2))
        return _flip_one(run, *where["at"])

    with tempfile.TemporaryDirectory() as work, mock.patch.object(digital, "run_pysim", flipped):
        report, got, want = _amaranth(spec, x, fmt, Path(work))
    divergence = report.figures["divergence"]
    assert not report.passed and (divergence["step"], divergence["neuron"]) == where["at"]
    assert (got != want).sum() == 1


def _spice(spec: dict, x: np.ndarray, work: Path):
    stimulus, provenance = _stimulus(x)
    return spice.verify_spice(build(spec), stimulus, SpiceOptions(mode="open"), work, provenance)


tiny_specs = specs(levels=True, sizes=(2, 4), steps=(5, 8)).filter(lambda case: case[0]["blocks"])


@_settings(SPICE_EXAMPLES)
@given(tiny_specs)
def test_tiny_spice_case_verifies_in_open_loop(case):
    spec, x, fmt = _noted(case)
    with tempfile.TemporaryDirectory() as work:
        report = _spice(spec, x, Path(work))
    f = report.figures
    assert f["decidable_mismatches"] == 0 and f["membrane_violations"] == 0, report.lines
    assert f["judged_steps"] == report.comparison.steps and report.passed


@_settings(1)
@given(tiny_specs)
def test_negative_control_a_broken_spice_run_fails(case):
    """One spike flipped where the membrane is farthest from θ (a decidable event) and, one step later, one
    membrane moved by θ: exactly one decidable mismatch and one membrane outside its budget."""
    spec, x, fmt = _noted(case)
    real = spice._simulate
    theta = build(spec).arrays().per_neuron("theta")
    where = {}

    def broken(directory, steps, options, trust_edits):
        run, retries = real(directory, steps, options, trust_edits)
        step, neuron = np.unravel_index(int(np.abs(run.membranes - theta).argmax()), run.membranes.shape)
        later = (step + 1) % steps
        membranes = run.membranes.copy()
        membranes[later, neuron] += theta[neuron]
        where.update(flip=(int(step), int(neuron)), moved=(later, int(neuron)))
        return dataclasses.replace(_flip_one(run, step, neuron), membranes=membranes), retries

    with tempfile.TemporaryDirectory() as work, mock.patch.object(spice, "_simulate", broken):
        report = _spice(spec, x, Path(work))
    f = report.figures
    assert not report.passed
    assert f["decidable_mismatches"] == 1 and f["membrane_violations"] == 1, report.lines
    assert (f["first_divergence"]["step"], f["first_divergence"]["neuron"]) == where["flip"]
    assert (f["worst_membrane"]["step"], f["worst_membrane"]["neuron"]) == where["moved"]
