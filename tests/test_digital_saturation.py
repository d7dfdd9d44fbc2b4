"""Membrane saturation bounds (issue 9 item 1) in the digital core, bit-exact against the clipped fixed-point reference.

The small example core (examples/small_3x32.rcsnn) with per-group bounds that its held-out text drives the
membranes into on both sides (asserted) passes ``verify_digital`` in Amaranth's simulator, Icarus and Verilator,
with the membranes read back equal to the reference's too; per-neuron bounds (parameter memories), a counting core
(K_eff from v_hi_q), the LM top and the formal proof of the neuron follow the bounds. Negative controls: the same
core built with the Wv range instead of its bounds, or with bounds one LSB inside, fails; per-neuron bounds read
as each group's first neuron's fail; a proof whose model ignores the bounds fails. Unbounded cores (and bounds
beyond the Wv range) give the image, hence the HDL, of today (``tests/test_golden.py`` byte-compares it).
"""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
from conftest import SMALL_CHECKPOINT, random_core
from test_digital_counts import counts_core

from rcsnn.digital import formal
from rcsnn.digital.emit import emit
from rcsnn.digital.estimate import memories
from rcsnn.digital.layout import Image, build_image, place
from rcsnn.digital.lm.image import lm_image
from rcsnn.digital.lm.run import run_lm_pysim
from rcsnn.digital.options import DigitalOptions
from rcsnn.digital.simulate import run_pysim
from rcsnn.errors import RcsnnError
from rcsnn.frontends.checkpoint import load_checkpoint
from rcsnn.ir.arrays import Core, FixedFormat
from rcsnn.ir.graph import Graph
from rcsnn.ir.reference import quantize_core, simulate_fixed
from rcsnn.ir.stimulus import Stimulus
from rcsnn.model.lm_fixed import fixed_lm, lm_generate
from rcsnn.verify.digital import check_design, verify_digital
from rcsnn.verify.lm import check_lm
from rcsnn.verify.report import Provenance

STEPS = 30
LANES = 4
#: (v_min, v_max) per group of the small core, in membrane units (θ = 1): inside its held-out range on both sides.
BOUNDS = {"g0": (-1.5, 2.0), "g1": (-2.0, 3.0), "g2": (-3.0, 4.0)}


def with_bounds(core: Core, bounds: dict) -> Core:
    """``core`` with each group's ``(v_min, v_max)`` of ``bounds`` (floats or per-neuron arrays)."""
    groups = tuple(dataclasses.replace(g, v_min=bounds[g.name][0], v_max=bounds[g.name][1]) for g in core.groups)
    return dataclasses.replace(core, groups=groups).validate()


def per_neuron_bounds(core: Core, seed: int = 0) -> dict:
    """:data:`BOUNDS` varied per neuron by up to ±0.5 (so the group's neurons differ)."""
    rng = np.random.default_rng(seed)
    return {g.name: (lo + rng.uniform(-0.5, 0.5, g.size), hi + rng.uniform(-0.5, 0.5, g.size))
            for g, (lo, hi) in zip(core.groups, BOUNDS.values())}


@pytest.fixture(scope="module")
def plain() -> Graph:
    return load_checkpoint(SMALL_CHECKPOINT)


@pytest.fixture(scope="module")
def bounded(plain) -> Graph:
    return Graph.from_arrays(with_bounds(plain.arrays(), BOUNDS))


@pytest.fixture(scope="module")
def varied(plain) -> Graph:
    return Graph.from_arrays(with_bounds(plain.arrays(), per_neuron_bounds(plain.arrays())))


def _verify(tmp_path, graph: Graph, backend: str):
    stimulus = Stimulus.sample(graph, STEPS)
    return verify_digital(graph, stimulus, backend, DigitalOptions(lanes=LANES), tmp_path,
                          Provenance("test", "", stimulus.description, stimulus.sha256, STEPS))


def _reference(graph: Graph):
    """The stimulus (quantised) and the fixed-point reference run of ``graph``."""
    xq = quantize_core(graph).quantize(Stimulus.sample(graph, STEPS).currents)
    return xq, simulate_fixed(graph, xq)


def test_the_reference_saturates_on_both_sides_in_every_group(plain, bounded):
    q = quantize_core(bounded)
    _, run = _reference(bounded)
    offsets = bounded.arrays().offsets()
    for name, sl in offsets.items():
        v = run.membranes[:, sl]
        assert (v == q.v_lo_q[sl]).sum() >= 10 and (v == q.v_hi_q[sl]).sum() >= 10, name
        assert (v >= q.v_lo_q[sl]).all() and (v <= q.v_hi_q[sl]).all()
    assert (run.spikes != _reference(plain)[1].spikes).sum() >= 20  # the bounds change the raster
    image = build_image(place(bounded, LANES))
    first = [sl.start for sl in offsets.values()]
    assert image.bounded and image.per_neuron == ()  # per-group constants in the logic
    assert image.v_lo_q == tuple(q.v_lo_q[first]) == (-6144, -8192, -12288)  # -1.5, -2, -3 at Fv = 12
    assert image.v_hi_q == tuple(q.v_hi_q[first]) == (8192, 12288, 16384)


@pytest.mark.parametrize("backend", ["amaranth", "icarus", "verilator"])
def test_bounded_core_is_bit_exact(tmp_path, bounded, backend):
    report = _verify(tmp_path, bounded, backend)
    assert report.passed, report.lines
    saved = np.load(tmp_path / f"digital-{backend}" / "raster.npz")["spikes"]
    assert np.array_equal(saved, _reference(bounded)[1].spikes)


def test_bounded_membranes_are_the_references(bounded):
    xq, reference = _reference(bounded)
    run = run_pysim(build_image(place(bounded, LANES)), xq)
    assert np.array_equal(run.membranes, reference.membranes) and np.array_equal(run.spikes, reference.spikes)


def test_hdl_dir_of_other_bounds_is_refused(tmp_path, plain, bounded):
    """An emitted directory records its bounds (design.json): one of the unbounded core does not verify the bounded one."""
    for graph, out in ((plain, tmp_path / "plain"), (bounded, tmp_path / "bounded")):
        placed = place(graph, LANES)
        emit(placed, out, _reference(graph)[0][:2])
    check_design(place(bounded, LANES), tmp_path / "bounded")
    with pytest.raises(RcsnnError, match=r"design.json: v_lo_q = None does not match CORE"):
        check_design(place(bounded, LANES), tmp_path / "plain", trust_edits=True)
    assert "v_lo_q" not in json.loads((tmp_path / "plain" / "design.json").read_text())


def _loose(image: Image) -> Image:
    return dataclasses.replace(image, v_lo_q=(), v_hi_q=())


def _inside(image: Image) -> Image:
    return dataclasses.replace(image, v_lo_q=tuple(v + 1 for v in image.v_lo_q), v_hi_q=tuple(v - 1 for v in image.v_hi_q))


@pytest.mark.parametrize("broken", [_loose, _inside], ids=["Wv range", "one LSB inside"])
def test_wrong_bounds_fail(tmp_path, monkeypatch, bounded, broken):
    xq, reference = _reference(bounded)
    run = run_pysim(broken(build_image(place(bounded, LANES))), xq)
    assert not np.array_equal(run.membranes, reference.membranes)
    if broken is _loose:  # the lower bounds change the raster: verification fails naming a group
        monkeypatch.setattr("rcsnn.verify.digital.build_image", lambda placed: broken(build_image(placed)))
        assert not _verify(tmp_path, bounded, "amaranth").passed
        divergence = json.loads((tmp_path / "digital-amaranth" / "report.json").read_text())["figures"]["divergence"]
        assert divergence["group"] in BOUNDS


@pytest.mark.parametrize("backend", ["amaranth", "icarus"])
def test_per_neuron_bounds_are_bit_exact(tmp_path, varied, backend):
    image = build_image(place(varied, LANES))
    assert image.per_neuron == ("v_lo", "v_hi")
    assert {"lane0.v_lo", "lane3.v_hi"} <= {m.name for m in memories(image)}  # rcsnn estimate counts them
    assert _verify(tmp_path, varied, backend).passed


def test_per_neuron_bounds_read_as_the_first_neurons_fail(varied):
    """Negative control: the parameter memories dropped, so every neuron gets its group's first neuron's bounds."""
    image = build_image(place(varied, LANES))
    xq, reference = _reference(varied)
    run = run_pysim(dataclasses.replace(image, parameters=()), xq)
    assert not np.array_equal(run.membranes, reference.membranes)


def test_counting_core_limits_counts_by_the_upper_bound(tmp_path):
    core = counts_core()
    q = quantize_core(core)
    bounds = {g.name: (-2.0, 2.5 * float(np.max(core.per_neuron("theta")[sl])))
              for g, sl in zip(core.groups, core.offsets().values())}
    graph = Graph.from_arrays(with_bounds(core, bounds))
    bq = quantize_core(graph)
    image = build_image(place(graph, 3))
    unbounded = q.v_max // int(q.theta_q[-1])
    k_eff = [min(k, int(bq.v_hi_q[sl].max()) // int(bq.theta_q[sl].min()))
             for k, sl in zip((3, 3, 1, unbounded), core.offsets().values())]
    assert image.max_spikes == tuple(k_eff) and image.max_spikes[-1] < unbounded and image.spike_bits == 2
    stimulus = Stimulus(core.input_currents(np.abs(np.random.default_rng(7).standard_normal((24, 4)))), "test")
    report = verify_digital(graph, stimulus, "amaranth", DigitalOptions(lanes=3), tmp_path,
                            Provenance("test", "", stimulus.description, stimulus.sha256, 24))
    assert report.passed, report.lines
    counts = simulate_fixed(graph, bq.quantize(stimulus.currents)).spikes
    assert (counts[:, -6:] == k_eff[-1]).sum() >= 5  # the Sinabs group reaches its bounded count


def test_bounds_beyond_the_wv_range_change_nothing(plain):
    """Finite bounds the Wv range already enforces build exactly today's image, hence the same HDL."""
    far = with_bounds(plain.arrays(), {name: (-1e9, 1e9) for name in BOUNDS})
    assert far.bounded()
    assert build_image(place(Graph.from_arrays(far), LANES)) == build_image(place(plain, LANES))


def test_lm_top_runs_the_bounded_core(plain, bounded):
    model = fixed_lm(bounded, 0.8)
    prompt = b"def f(x): "
    reference = lm_generate(bounded, model, prompt, 8, False, 0)
    assert (reference.spikes != lm_generate(plain, fixed_lm(plain, 0.8), prompt, 8, False, 0).spikes).any()
    chip = run_lm_pysim(lm_image(model, build_image(place(bounded, LANES))), prompt, 8, False, 0)
    check = check_lm(bounded, model, reference, chip.text, chip.spikes, "amaranth", 8)
    assert check.passed, check.lines()


@pytest.fixture(scope="module")
def small_bounded() -> Graph:
    """Two groups, zero and subtract reset, Wv = 8, Fv = 3 (bounds -2/-1.5 and 3/4: inside the ±16 range)."""
    core = random_core(3, sizes=(5, 6), resets=("zero", "subtract"), shared=False, fixed=FixedFormat(8, 3, 4))
    return place(Graph.from_arrays(with_bounds(core, {"g0": (-2.0, 3.0), "g1": (-1.5, 4.0)})), 1)


class IgnoresBounds(formal.NeuronModel):
    """Wrong: saturates to the Wv range, not the bounds."""

    def clip(self, value, low, high):
        return super().clip(value, self.v_min, self.v_max)


def test_formal_proof_includes_the_bounds(small_bounded, tmp_path):
    image = build_image(small_bounded)
    assert image.v_lo_q == (-16, -12) and image.v_hi_q == (24, 32)
    result = formal.prove("neuron", small_bounded, words=(5,))
    assert result.passed, result.summary() + "\n" + result.cases[-1].log[-2000:]
    wrong = formal.prove("neuron", small_bounded, words=(5,), model=IgnoresBounds(image.Wv, image.Fb), workdir=tmp_path)
    assert wrong.status == "FAIL" and any("v' of the contract" in f for f in wrong.failed), wrong.failed


def test_formal_proof_refuses_per_neuron_bounds():
    core = random_core(3, sizes=(5, 6), resets=("zero", "subtract"), shared=False, fixed=FixedFormat(8, 3, 4))
    varied = with_bounds(core, {"g0": (-2.0, 3.0), "g1": (np.linspace(-1.5, -1.0, 6), 4.0)})
    with pytest.raises(RcsnnError, match="formal: a group with per-neuron beta/theta/reset/bounds"):
        formal.prove("neuron", place(Graph.from_arrays(varied), 1), words=(5,))
