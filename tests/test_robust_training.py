"""Hardware-aware training: each penalty's gradient, the noise, fine-tuning from a core, the robust example."""

import dataclasses
import json
import math

import numpy as np
import pytest
import torch

from rcsnn.analog.netlist import core_digest
from rcsnn.analog.variation import MAX_TOLERANCE
from rcsnn.cli import main
from rcsnn.errors import RcsnnError
from rcsnn.frontends.checkpoint import load_checkpoint, read_config, save_checkpoint
from rcsnn.ir.arrays import FixedFormat
from rcsnn.ir.graph import Graph
from rcsnn.ir.reference import simulate_float
from rcsnn.model.corpus import Corpus
from rcsnn.model.generate import references_agree_for
from rcsnn.model.robust import (
    MAX_MISMATCH_TOLERANCE,
    PARTS,
    NoisyRecurrent,
    Robustness,
    add_noise,
    margin_histogram,
    margin_penalty,
    mismatch_penalty,
    mismatched_membranes,
    model_from_core,
    near_threshold,
    penalties,
    range_penalty,
)
from rcsnn.model.train import evaluate_core, torch_bits_per_char
from rcsnn.text import default_text, read_text

SMALL = "examples/small_3x32.rcsnn"
ROBUST = "examples/sapu_3x512_robust.rcsnn"


def grad_of(fn, values):
    v = torch.tensor(values, dtype=torch.float64, requires_grad=True)
    fn(v).backward()
    return v.grad


def test_margin_penalty_pushes_membranes_away_from_threshold_on_their_side():
    theta, width = 2.0, 0.05  # the band is |v - θ| < 0.1
    g = grad_of(lambda v: margin_penalty(v, theta, width), [1.95, 1.99, 2.01, 2.08, 2.2, -3.0])
    assert g[0] > 0 and g[1] > 0  # below θ: descent lowers v
    assert g[2] < 0 and g[3] < 0  # above θ: descent raises v
    assert g[1] > g[0] and -g[2] > -g[3]  # stronger nearer θ
    assert g[4] == 0 and g[5] == 0  # negative control: outside the band nothing changes
    assert margin_penalty(torch.tensor([theta]), theta, width).item() == 1.0
    assert margin_penalty(torch.tensor([theta + 0.11, theta - 0.11]), theta, width).item() == 0.0


def test_range_penalty_pulls_membranes_back_inside_the_bound():
    theta, bound = 0.5, 8.0  # rails at ±4
    g = grad_of(lambda v: range_penalty(v, theta, bound), [5.0, -4.5, 3.9, -3.9, 0.0])
    assert g[0] > 0 and g[1] < 0  # outside: descent moves v towards 0
    assert torch.all(g[2:] == 0)  # negative control: inside the rails nothing changes
    # relu(|v|/θ - bound)² for v = 5: (10 - 8)² = 4, mean over 5 entries
    assert math.isclose(range_penalty(torch.tensor([5.0, 0, 0, 0, 0]), theta, bound).item(), 4 / 5, rel_tol=1e-6)


def test_penalties_are_weighted_and_only_those_switched_on():
    spikes = torch.tensor([[1.0, 0.0, 0.0, 1.0]], requires_grad=True)
    membranes = torch.tensor([[1.01, 0.0, 9.0, -0.5]], requires_grad=True)
    assert penalties(Robustness(), spikes, membranes, 1.0) == {}  # negative control: plain training adds nothing
    cfg = Robustness(margin_penalty=3.0, margin_width=0.1, membrane_penalty=2.0, membrane_bound=8.0, rate_penalty=0.5)
    terms = penalties(cfg, spikes, membranes, 1.0)
    assert set(terms) == {"margin", "range", "rate"}
    assert math.isclose(terms["margin"].item(), 3.0 * 0.9**2 / 4, rel_tol=1e-6)
    assert math.isclose(terms["range"].item(), 2.0 * 1.0 / 4, rel_tol=1e-6)
    assert math.isclose(terms["rate"].item(), 0.5 * 0.5)
    terms["rate"].backward()
    assert torch.allclose(spikes.grad, torch.full_like(spikes, 0.5 / 4))  # rate: every spike costs the same


def test_mismatch_penalty_is_zero_unless_the_parts_could_flip_a_decision():
    theta, sigma, safety = 1.0, 0.02, 2.0
    nominal = [1.10, 0.97, 1.02, 0.50, 1.30]
    drawn = [1.11, 0.99, 0.98, 0.60, 1.31]  # |Δ| 0.01 0.02 0.04 0.10 0.01 against |v − θ| 0.10 0.03 0.02 0.50 0.30
    v, v_drawn = torch.tensor(nominal, dtype=torch.float64), torch.tensor(drawn, dtype=torch.float64)
    # relu(2|Δ| − |v − θ|): 0, 0.01, 0.06, 0, 0 → mean 0.014, in units of σθ
    assert math.isclose(mismatch_penalty(v, v_drawn, theta, sigma, safety).item(), 0.014 / sigma, rel_tol=1e-9)
    # a shift both circuits share moves each flip-prone membrane away from θ, on its side ...
    shift = grad_of(lambda p: mismatch_penalty(v + p, v_drawn + p, theta, sigma, safety), [0.0] * 5)
    assert shift[1] > 0 and shift[2] < 0
    assert shift[0] == 0 and shift[3] == 0 and shift[4] == 0  # negative control: safe decisions cost nothing
    # ... and a gain on the parts' error shrinks it
    gain = grad_of(lambda g: mismatch_penalty(v, v + g * (v_drawn - v), theta, sigma, safety), [1.0])
    assert gain[0] > 0
    with pytest.raises(RcsnnError, match="safety 0.5 must be >= 1"):
        Robustness(mismatch_penalty=1.0, mismatch_safety=0.5)
    with pytest.raises(RcsnnError, match=r"tolerance 0.2 in \(0, 0.15\]"):
        Robustness(mismatch_penalty=1.0, mismatch_tolerance=0.2)
    assert MAX_MISMATCH_TOLERANCE == MAX_TOLERANCE  # the Monte Carlo's bound


def test_mismatched_membranes_replay_the_nominal_run():
    """With the parts exact the replay is the model's own run; drawn at 5 % it moves every group, and the
    term is switched on by its weight only (computed lazily)."""
    model = small_model().eval()
    tokens = torch.from_numpy(Corpus.from_text(read_text(None)).held_out[:800].reshape(4, 200).astype(np.int64))
    start = model.initial_state(4)
    with torch.no_grad():
        _, _, spikes, membranes = model(tokens, start)
        torch.manual_seed(0)
        exact = mismatched_membranes(model, tokens, start, spikes, 1e-12)
        drawn = mismatched_membranes(model, tokens, start, spikes, 0.05)
        late = mismatched_membranes(model, tokens, start, spikes.roll(1, dims=1), 1e-12)
    assert torch.allclose(exact, membranes, atol=1e-5)
    assert not torch.allclose(late, membranes, atol=0.1)  # negative control: the raster one step late
    error = (drawn - membranes).abs().mean((0, 1, 3))
    assert torch.all(error > 1e-3) and torch.all(error < 0.5 * model.theta)
    calls = []
    cfg = Robustness(mismatch_penalty=3.0, mismatch_tolerance=0.05)
    terms = penalties(cfg, spikes, membranes, model.theta, lambda: calls.append(1) or drawn)
    assert set(terms) == {"mismatch"} and calls == [1]
    expected = 3.0 * mismatch_penalty(membranes, drawn, model.theta, 0.05, 2.0)
    assert math.isclose(terms["mismatch"].item(), expected.item(), rel_tol=1e-6)
    assert penalties(Robustness(), spikes, membranes, model.theta, lambda: calls.append(1)) == {} and calls == [1]
    with pytest.raises(RcsnnError, match=r"parts \['inputs'\] unknown"):
        mismatched_membranes(model, tokens, start, spikes, 0.05, ("inputs", "leak"))
    with pytest.raises(RcsnnError, match=r"parts \(none\) unknown"):
        Robustness(mismatch_penalty=1.0, mismatch_parts=())


def small_model():
    return model_from_core(load_checkpoint(SMALL).arrays())


def test_weight_noise_is_multiplicative_per_synapse_and_off_in_eval():
    model = small_model()
    clean = model.recurrent.weight().detach().clone()
    add_noise(model, Robustness(weight_noise=0.05))
    assert isinstance(model.recurrent, NoisyRecurrent)
    torch.manual_seed(0)
    model.recurrent.resample()
    noisy = model.recurrent.weight().detach()
    nz = clean != 0
    ratio = noisy[nz] / clean[nz] - 1
    assert torch.all(noisy[~nz] == 0)  # pruned synapses stay pruned
    assert abs(ratio.std().item() - 0.05) < 0.01 and abs(ratio.mean().item()) < 0.01
    assert np.array_equal(model.recurrent.ternary_matrix(), np.sign(clean.numpy()).astype(np.int8))  # export clean
    model.eval()
    assert torch.equal(model.recurrent.weight().detach(), clean)  # negative control: no noise in evaluation


def test_membrane_noise_adds_sigma_theta_to_the_currents_in_training_only():
    model = small_model()
    tokens = torch.zeros(4, 200, dtype=torch.long)
    clean = model.input(model.embedding(tokens)).detach()
    add_noise(model, Robustness(membrane_noise=0.02))
    torch.manual_seed(1)
    noisy = model.input(model.embedding(tokens)).detach()
    assert abs((noisy - clean).std().item() - 0.02 * model.theta) < 0.002
    model.eval()
    assert torch.equal(model.input(model.embedding(tokens)).detach(), clean)


def test_model_from_core_reproduces_the_core():
    graph = load_checkpoint(SMALL)
    core = graph.arrays()
    model = small_model()
    back = model.to_graph(core.fixed, core.dt).arrays()
    np.testing.assert_array_equal(back.matrices["T"], core.matrices["T"])
    assert math.isclose(back.synapses[0].alpha, core.synapses[0].alpha, rel_tol=1e-6)
    np.testing.assert_allclose([g.beta for g in back.groups], [g.beta for g in core.groups], rtol=1e-12)
    np.testing.assert_allclose(back.bias, core.bias, rtol=1e-6)
    # the torch model's held-out bits/char is the float64 reference's
    held_out = Corpus.from_text(read_text(None)).held_out[:4000]
    _, metrics = evaluate_core(graph, held_out, log=lambda _: None)
    assert abs(torch_bits_per_char(model, held_out) - metrics["bpc_float64"]) < 1e-3


def bounded(core, bound):
    return dataclasses.replace(core, groups=tuple(dataclasses.replace(g, v_min=-bound, v_max=bound)
                                                  for g in core.groups)).validate()


def test_a_bounded_model_is_its_float64_reference_raster():
    """The torch model of a bounded core clamps as the reference does: the same spikes on 4 x 200 held-out
    characters, and membranes at the bounds; without the clamp (negative control) the spikes differ."""
    core = bounded(load_checkpoint(SMALL).arrays(), 2.0)
    tokens = Corpus.from_text(read_text(None)).held_out[:800].reshape(4, 200)
    run = simulate_float(core, core.token_currents(tokens.T))
    model = model_from_core(core).eval()
    assert model.bounds == ((-2.0,) * 3, (2.0,) * 3)
    with torch.no_grad():
        _, _, spikes, membranes = model(torch.from_numpy(tokens))
    np.testing.assert_array_equal(spikes.numpy().transpose(1, 0, 2), run.spikes)
    assert membranes.abs().max().item() == 2.0 == np.abs(run.membranes).max()
    model.bounds = None
    with torch.no_grad():
        unclamped = model(torch.from_numpy(tokens))[2].numpy().transpose(1, 0, 2)
    assert (unclamped != run.spikes).mean() > 0.01
    assert model_from_core(core).to_graph(core.fixed, core.dt).arrays().groups == core.groups  # bounds exported


def test_finetune_keeps_a_cores_bounds_and_clamp_replaces_them(tmp_path):
    source = tmp_path / "bounded.rcsnn"
    save_checkpoint(Graph.from_arrays(bounded(load_checkpoint(SMALL).arrays(), 3.0)), source)
    args = ["finetune", str(source), "--steps", "2", "--batch", "4", "--length", "16", "--log-every", "1"]
    assert main(args + ["-o", str(tmp_path / "kept.rcsnn")]) == 0
    assert [(g.v_min, g.v_max) for g in load_checkpoint(tmp_path / "kept.rcsnn").arrays().groups] == [(-3.0, 3.0)] * 3
    assert main(args + ["--membrane-clamp", "2", "-o", str(tmp_path / "two.rcsnn")]) == 0
    assert [(g.v_min, g.v_max) for g in load_checkpoint(tmp_path / "two.rcsnn").arrays().groups] == [(-2.0, 2.0)] * 3
    assert read_config(tmp_path / "two.rcsnn")["metrics"]["membrane_abs_max"] == 2.0
    kept, small = load_checkpoint(tmp_path / "kept.rcsnn").arrays().fixed, load_checkpoint(SMALL).arrays().fixed
    assert (kept.Fv, kept.Fb) == (small.Fv, small.Fb)  # the core's format unless asked
    assert main(args + ["--fv", "24", "--fb", "20", "-o", str(tmp_path / "wide.rcsnn")]) == 0
    wide = load_checkpoint(tmp_path / "wide.rcsnn").arrays().fixed
    assert (wide.Wv, wide.Fv, wide.Fb) == (24 + 2 + 1 + 1, 24, 20)  # |v| <= 3: 2 integer bits, sign, 1 headroom
    assert main(["finetune", str(source), "--steps", "0", "--fv", "20", "-o", str(tmp_path / "as_is.rcsnn")]) == 0
    as_is, bounded_core = load_checkpoint(tmp_path / "as_is.rcsnn").arrays(), load_checkpoint(source).arrays()
    assert (as_is.fixed.Fv, as_is.fixed.Fb) == (20, small.Fb)
    assert core_digest(as_is) == core_digest(bounded_core)  # the very core: groups, synapses (alpha), T, bias
    assert all(np.array_equal(getattr(as_is, k), getattr(bounded_core, k)) for k in ("input_weight", "readout_weight"))
    assert main(["finetune", str(source), "--steps", "0", "--membrane-clamp", "2", "-o", str(tmp_path / "x")]) == 2


def test_model_from_core_refuses_a_core_without_readout():
    core = load_checkpoint(SMALL).arrays()
    with pytest.raises(RcsnnError, match="not a language-model core"):
        model_from_core(dataclasses.replace(core, readout_weight=None))


def test_near_threshold_and_histogram():
    v = np.array([[1.0005, 1.005, 0.5, 1.0, 3.0]])
    assert near_threshold(v, 1.0, 1e-3) == 2 / 5
    assert near_threshold(v, np.full(5, 2.0), 1e-3) == 0  # per-neuron θ
    h = margin_histogram(v, 1.0, lowest=-3)
    assert h["edges"] == [0.0, 1e-3, 1e-2, 1e-1, 1.0]
    assert h["counts"] == [2, 1, 0, 1, 1]  # distances 5e-4, 0 / 5e-3 / - / 0.5 / 2.0


def test_finetune_cli_records_its_source_and_refuses_another_vocabulary(tmp_path, capsys):
    out = tmp_path / "ft.rcsnn"
    args = ["finetune", SMALL, "--steps", "3", "--batch", "4", "--length", "16", "--log-every", "1",
            "--margin-penalty", "5", "--membrane-penalty", "0.1", "--membrane-bound", "6", "--weight-noise", "0.02",
            "--membrane-noise", "0.01", "--rate-penalty", "0.1", "--mismatch-penalty", "2", "--mismatch-tolerance",
            "0.03", "--mismatch-parts", "synapse", "-o", str(out)]
    assert main(args) == 0
    log = capsys.readouterr().out
    assert "step     1/3 ternary" in log and all(f"{term} " in log for term in ("margin", "range", "rate", "mismatch"))
    config = read_config(out)
    assert config["training"]["finetuned_from"]["core"] == SMALL
    assert config["training"]["robust"]["margin_penalty"] == 5.0
    assert config["training"]["robust"]["mismatch_tolerance"] == 0.03
    assert config["training"]["robust"]["mismatch_parts"] == ["synapse"]
    metrics = config["metrics"]
    assert 0 <= metrics["near_threshold"]["0.001"] <= metrics["near_threshold"]["0.05"] <= 1
    t0, t1 = load_checkpoint(SMALL).arrays().matrices["T"], load_checkpoint(out).arrays().matrices["T"]
    assert np.count_nonzero(t0) == np.count_nonzero(t1)  # same sparsity (mask kept)
    other = tmp_path / "other.txt"
    other.write_text("abc " * 5000)
    assert main(args[:-1] + [str(tmp_path / "x.rcsnn"), "--text", str(other)]) == 2
    assert "--text: its 4 symbols are not the 103" in capsys.readouterr().err
    assert not (tmp_path / "x.rcsnn").exists()


@pytest.fixture(scope="module")
def example_figures():
    """Held-out figures (float64 and fixed-point references) of the original and the robust example."""
    held_out = Corpus.from_text(read_text(None)).held_out
    return {path: evaluate_core(load_checkpoint(path), held_out, log=lambda _: None)[1]
            for path in (ROBUST, "examples/sapu_3x512.rcsnn")}


@pytest.mark.slow
def test_the_robust_example_keeps_bits_per_char_and_has_fewer_events_near_threshold(example_figures):
    """The shipped robust core: held-out bits/char within 3 % of the original's (<= 1.93), and fewer events within
    1e-3 θ and 1e-2 θ of threshold than the original (the measured baseline: the original misses both)."""
    robust, original = example_figures[ROBUST], example_figures["examples/sapu_3x512.rcsnn"]
    assert robust["bpc_float64"] <= min(1.93, 1.03 * original["bpc_float64"])
    for within in ("0.001", "0.01"):
        assert robust["near_threshold"][within] < original["near_threshold"][within]


@pytest.mark.slow
def test_the_robust_example_stays_within_8_theta(example_figures):
    """Issue 9's range target on the held-out text: |v| <= 8 θ (the shipped core carries ±8 θ bounds, and its
    float64 reference clamps to them), the original's reaching far beyond."""
    robust, original = example_figures[ROBUST], example_figures["examples/sapu_3x512.rcsnn"]
    core = load_checkpoint(ROBUST).arrays()
    assert (core.per_neuron("v_max") == 8.0).all() and (core.per_neuron("v_min") == -8.0).all()
    assert robust["membrane_abs_max"] <= 8.0 < original["membrane_abs_max"]


@pytest.mark.slow
@pytest.mark.xfail(strict=True, reason="not reached yet (docs/training.md): more than 1 event in 1e5 lies within "
                                       "1e-3 theta of threshold")
def test_the_robust_example_meets_the_margin_target(example_figures):
    """Issue 9's margin target on the held-out text (float64 reference): fewer than 1 event in 1e5 within 1e-3 θ of
    threshold."""
    assert example_figures[ROBUST]["near_threshold"]["0.001"] < 1e-5


def test_float_and_fixed_generate_agree_for_1000_characters_on_the_robust_example():
    """Issue 9's target: ``rcsnn generate`` on the float64 and the fixed-point reference gives the same 1,000
    characters after each of 10 held-out prompts. Negative control: the same core in a narrow format (Fv = 8,
    Fb = 10: a membrane error of ~1e-2 theta flips the events nearer threshold) parts early."""
    graph = load_checkpoint(ROBUST)
    prompts = Corpus.from_text(read_text(None)).prompts()
    assert [references_agree_for(graph, p, 1000) for p in prompts] == [1000] * 10
    narrow = dataclasses.replace(graph.arrays(), fixed=FixedFormat(Wv=14, Fv=8, Fb=10))
    assert max(references_agree_for(Graph.from_arrays(narrow), p, 1000) for p in prompts[:3]) < 1000


def test_the_mismatch_model_flips_what_the_monte_carlo_flips(tmp_path):
    """The mismatch term's circuit flips as many of the robust example's decisions at 5 % as the fast circuit
    model's Monte Carlo does (within 25 %: the calibration on 16 other held-out streams gave 0.92 at 1 % and
    5 %, and two Monte Carlo runs vary by about 3 %); leaving out the input resistors (negative control) misses
    half of them."""
    assert main(["montecarlo", ROBUST, "--runs", "2", "--r-tol", "5%", "--steps", "200", "--judge-blocks", "0",
                 "--scheduler", "serial", "-o", str(tmp_path / "mc")]) == 0
    (row,) = [r for r in json.loads((tmp_path / "mc" / "results.json").read_text())["table"] if r["r"] == 0.05]
    monte_carlo = 1 - row["agreement"]["mean"]  # the same 200 characters: Stimulus.sample
    core = load_checkpoint(ROBUST).arrays()
    model = model_from_core(core).eval()
    tokens = torch.tensor([[core.frontend.vocab.index(c) for c in default_text()[-200:]]] * 16)

    def flips(parts):
        torch.manual_seed(0)
        with torch.no_grad():
            _, _, spikes, membranes = model(tokens)
            drawn = mismatched_membranes(model, tokens, model.initial_state(16), spikes, 0.05, parts)
        return ((drawn >= model.theta) != (membranes >= model.theta)).double().mean().item()

    assert 0.75 < flips(PARTS) / monte_carlo < 1.25
    assert flips(("leak", "synapse")) / monte_carlo < 0.75
