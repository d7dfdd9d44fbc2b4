"""Spike counts (``max_spikes`` K != 1) in the digital core (issue 10), bit-exact against the fixed-point reference.

A small core driven hard enough that counts above 1 occur (asserted): K = 3 groups beside a binary group
(subtract and zero resets, dense and ternary blocks, per-neuron θ) and a Sinabs-like group (K unbounded,
``subtract_before_decay``, exact decay). It passes ``verify_digital`` in Amaranth's simulator and in the emitted
Verilog under Icarus (and Verilator: ``-m slow``; the frameworks' own multi-spike networks:
tests/test_multispike.py), comparing COUNTS.
Negative controls: the same core built as if K = 1 (binary hardware), or with each group's count limit one
lower (a truncated count), fails with the first divergence in a counting group. Binary cores are unchanged
(``tests/test_golden.py`` byte-compares the small core's HDL).
"""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from rcsnn.digital.formal import prove
from rcsnn.digital.layout import build_image, place
from rcsnn.digital.options import DigitalOptions
from rcsnn.errors import RcsnnError
from rcsnn.ir.arrays import Core, FixedFormat, NeuronGroup, SynapseBlock
from rcsnn.ir.graph import Graph
from rcsnn.ir.nodes import UNBOUNDED
from rcsnn.ir.reference import quantize_core, simulate_fixed
from rcsnn.ir.stimulus import Stimulus
from rcsnn.verify.digital import verify_digital
from rcsnn.verify.report import Provenance

FIXED = FixedFormat(Wv=12, Fv=6, Fb=9, Ww=8)
STEPS = 24
LANES = 3


def counts_core(seed: int = 0) -> Core:
    """K = 3 groups (subtract with per-neuron θ, zero), a binary group, and a Sinabs-like group (K unbounded,
    subtract_before_decay, exact decay, dense weights) fed by them."""
    rng = np.random.default_rng(seed)
    ternary = lambda r, c: (rng.choice([-1, 1], (r, c)) * (rng.random((r, c)) < 0.4)).astype(np.int8)  # noqa: E731
    groups = (NeuronGroup("a", 7, 0.8, rng.uniform(0.6, 1.2, 7), "subtract", max_spikes=3),
              NeuronGroup("b", 5, 0.7, 0.9, "zero", max_spikes=3),
              NeuronGroup("c", 4, 0.9, 1.0, "subtract_before_decay"),
              NeuronGroup("sinabs", 6, float(np.exp(-1 / 4)), 1.0, "subtract_before_decay", max_spikes=UNBOUNDED))
    matrices = {"Ta": ternary(7, 7), "Mab": rng.normal(0, 0.5, (5, 7)), "Xbc": ternary(4, 5),
                "Ms": rng.normal(0, 0.6, (6, 6)), "Mbs": rng.normal(0.3, 0.8, (6, 5))}
    synapses = (SynapseBlock("a", "a", "Ta", 0.3), SynapseBlock("a", "b", "Mab", 1.0),
                SynapseBlock("b", "c", "Xbc", 0.6), SynapseBlock("sinabs", "sinabs", "Ms", 1.0),
                SynapseBlock("b", "sinabs", "Mbs", 1.0))
    n = sum(g.size for g in groups)
    return Core(groups, matrices, synapses, bias=rng.normal(0.3, 0.2, n), input_weight=rng.normal(0.5, 1.5, (n, 4)),
                fixed=FIXED).validate()


def _verify(tmp_path, core: Core, backend: str):
    graph = Graph.from_arrays(core)
    stimulus = Stimulus(core.input_currents(np.abs(np.random.default_rng(7).standard_normal((STEPS, 4)))), "test")
    report = verify_digital(graph, stimulus, backend, DigitalOptions(lanes=LANES), tmp_path,
                            Provenance("test", "", stimulus.description, stimulus.sha256, STEPS))
    reference = simulate_fixed(core, quantize_core(core).quantize(stimulus.currents))
    return report, reference


def _divergence(tmp_path, backend: str) -> dict:
    return json.loads((tmp_path / f"digital-{backend}" / "report.json").read_text())["figures"]["divergence"]


@pytest.fixture(scope="module")
def core():
    return counts_core()


def test_count_width_is_bounded_by_the_membrane(core):
    image = build_image(place(Graph.from_arrays(core), LANES))
    q = quantize_core(core)
    unbounded = q.v_max // int(q.theta_q[-1])  # v is saturated to Wv bits: 2047 // 64
    assert image.max_spikes == (3, 3, 1, unbounded) == (3, 3, 1, 31) and image.spike_bits == 5
    binary = dataclasses.replace(core, groups=tuple(dataclasses.replace(g, max_spikes=1) for g in core.groups))
    plain = build_image(place(Graph.from_arrays(binary), LANES))
    assert plain.spike_bits == 1 and plain.max_spikes == () and plain.acc_width < image.acc_width


@pytest.mark.parametrize("backend", ["amaranth", "icarus", pytest.param("verilator", marks=pytest.mark.slow)])
def test_counts_are_bit_exact(tmp_path, core, backend):
    report, reference = _verify(tmp_path, core, backend)
    counts = reference.spikes
    assert counts.dtype == np.int32 and (counts[:, :12] > 1).sum() >= 10 and (counts[:, -6:] > 3).sum() >= 5
    assert counts[:, :12].max() == 3 and (counts[:, 12:16] <= 1).all()  # clipped at K; the binary group is 0/1
    assert report.passed, report.lines
    saved = np.load(tmp_path / f"digital-{backend}" / "raster.npz")["spikes"]
    assert np.array_equal(saved, counts)


#: Negative controls: the hardware as if every group were binary, or with every count limit one lower.
BROKEN = {"binary": lambda image: dataclasses.replace(image, max_spikes=()),
          "truncated": lambda image: dataclasses.replace(image, max_spikes=tuple(max(1, k - 1) for k in image.max_spikes))}


@pytest.mark.parametrize("broken", sorted(BROKEN))
def test_negative_control_fails_in_amaranth(tmp_path, monkeypatch, core, broken):
    monkeypatch.setattr("rcsnn.verify.digital.build_image", lambda placed: BROKEN[broken](build_image(placed)))
    report, _ = _verify(tmp_path, core, "amaranth")
    assert not report.passed
    assert _divergence(tmp_path, "amaranth")["group"] in {"a", "b", "sinabs"}


def test_negative_control_fails_in_icarus(tmp_path, monkeypatch, core):
    """The emitted Verilog of the binary-built core runs, and its 0/1 spikes fail against the counts."""
    broken = lambda placed: BROKEN["binary"](build_image(placed))  # noqa: E731
    monkeypatch.setattr("rcsnn.digital.emit.build_image", broken)
    monkeypatch.setattr("rcsnn.verify.digital.build_image", broken)
    report, _ = _verify(tmp_path, core, "icarus")
    assert not report.passed


def test_formal_proof_refuses_counts(core):
    with pytest.raises(RcsnnError, match=r"formal: group 'a' emits spike counts \(up to 3 .*--max-spikes 1"):
        prove("neuron", Graph.from_arrays(core), lanes=2)

