"""The language model on chip (`rcsnn verilog --lm`) against the integer reference (`rcsnn generate --backend fixed-lm`).

Positive runs: the small core's LM top in Amaranth's simulator and in Verilator gives the reference's bytes
and raster (greedy and sampled, UTF-8 and out-of-vocabulary prompt bytes, a stalling receiver); the slow
test: 500 characters of the example core in Verilator. Negative controls: one readout weight flipped and one
embedding entry changed, each found from the reference so that it must change the text, are caught and
located (the choice with equal rasters / the step and neurons); units: the LFSR in hardware equals the
reference's, the decoder equals Python's UTF-8, the sampler draws softmax(z/T), the readout's cost.
"""

import dataclasses
import json

import numpy as np
import pytest
from conftest import EXAMPLE_CHECKPOINT, SMALL_CHECKPOINT

from rcsnn.cli import main
from rcsnn.digital.layout import build_image, place
from rcsnn.digital.lm.image import lm_image
from rcsnn.digital.lm.run import run_lm_pysim, run_lm_verilator
from rcsnn.digital.lm.top import lfsr_advance
from rcsnn.errors import RcsnnError
from rcsnn.frontends.checkpoint import load_checkpoint
from rcsnn.model.lm_fixed import (
    DEFAULT_TEMPERATURE,
    TAPS,
    UBITS,
    FixedLM,
    Lfsr,
    Utf8Decoder,
    fixed_lm,
    gumbel_table,
    lm_generate,
    readout_cost,
)
from rcsnn.verify.lm import check_lm

LANES = 4
#: "°" is two UTF-8 bytes and in the vocabulary; "€" (three bytes) is not and is dropped by both.
PROMPT = "def f(°x):".encode() + "€".encode() + b"\x80 "
LENGTH = 8


@pytest.fixture(scope="module")
def graph():
    return load_checkpoint(SMALL_CHECKPOINT)


@pytest.fixture(scope="module")
def model(graph):
    return fixed_lm(graph, 0.8)


def _image(graph, model: FixedLM):
    return lm_image(model, build_image(place(graph, LANES)))


def _check(graph, model, chip, reference, length=LENGTH):
    return check_lm(graph, model, reference, chip.text, chip.spikes, "amaranth", length)


# ---- units --------------------------------------------------------------------------------------------------


def test_lfsr_in_hardware_is_the_references():
    from amaranth import Module, Signal
    from amaranth.sim import Simulator

    state, out = Signal(32), Signal(32)
    m = Module()
    m.d.comb += out.eq(lfsr_advance(state))
    seeds = [1, 0xFFFFFFFF, 0x80000000, 0x12345678, 0xDEADBEEF]

    async def bench(ctx):
        for seed in seeds:
            ctx.set(state, seed)
            ref = Lfsr(seed)
            ref.draw()
            assert ctx.get(out) == ref.state

    sim = Simulator(m)
    sim.add_testbench(bench)
    sim.run()
    assert Lfsr(0).state == Lfsr(1).state == 1
    lfsr = Lfsr(7)
    assert len({lfsr.draw() for _ in range(2000)}) > 800  # uniform draws: 1024 (1 - e^(-2000/1024)) = 879 expected


def _compose(a: list[int], b: list[int]) -> list[int]:
    """Columns of the GF(2) matrix product a·b (column j: the image of bit j, as an int)."""
    def apply(m, v):
        out = 0
        for j in range(32):
            if v >> j & 1:
                out ^= m[j]
        return out
    return [apply(a, col) for col in b]


def _power(m: list[int], n: int) -> list[int]:
    out = [1 << j for j in range(32)]
    while n:
        if n & 1:
            out = _compose(out, m)
        m, n = _compose(m, m), n >> 1
    return out


def test_lfsr_is_maximal_length():
    """One LFSR step is a linear map A; the period is 2^32 - 1 iff A^(2^32-1) = I and A^((2^32-1)/q) != I for every
    prime q of 2^32 - 1 = 3·5·17·257·65537. A toggle mask without the x^2 tap is not (negative control)."""
    def step_matrix(taps):
        return [(1 << j >> 1) ^ (taps if j == 0 else 0) for j in range(32)]

    identity = [1 << j for j in range(32)]
    order = (1 << 32) - 1
    for taps, maximal in ((TAPS, True), (TAPS & ~0b10, False)):
        a = step_matrix(taps)
        full = _power(a, order) == identity and all(_power(a, order // q) != identity for q in (3, 5, 17, 257, 65537))
        assert full == maximal, hex(taps)
    draw = _power(step_matrix(TAPS), UBITS)  # the matrix is the reference's step: one draw = UBITS steps
    for seed in (1, 0x12345678, 0xFFFFFFFF):
        lfsr = Lfsr(seed)
        lfsr.draw()
        assert _compose(draw, [seed])[0] == lfsr.state


def test_decoder_is_utf8_and_drops_strays():
    text = "a°ß–…\n"
    decoder = Utf8Decoder()
    codes = [c for b in text.encode() if (c := decoder.feed(b)) is not None]
    assert codes == [ord(ch) for ch in text]
    decoder = Utf8Decoder()
    assert [decoder.feed(b) for b in b"\x80\xbfA"] == [None, None, ord("A")]  # stray continuations dropped
    decoder = Utf8Decoder()
    assert [decoder.feed(b) for b in b"\xe2\x80B"] == [None, None, ord("B")]  # an unfinished character is dropped


def _frequencies(noise: np.ndarray, bias: np.ndarray, draws: int) -> np.ndarray:
    lm = FixedLM("abcd", np.zeros((4, 1), dtype=np.int64), np.zeros((4, 1), dtype=np.int64), bias, 1.0, 1.0, noise)
    lfsr = Lfsr(5)
    picks = [lm.choose(np.zeros(1), lfsr) for _ in range(draws)]
    return np.bincount(picks, minlength=4) / draws


def test_sampler_draws_the_softmax():
    """Gumbel-max with the LFSR and the quantised table draws softmax(z · s_w / T); a table of zeros (no noise) is
    greedy and fails the same comparison (negative control)."""
    scale, temperature = 0.05, 0.8
    bias = np.array([0, 10, 20, 25])  # logit units
    p = np.exp(bias * scale / temperature)
    p /= p.sum()
    draws = 20000
    sigma = np.sqrt(p * (1 - p) / draws)
    got = _frequencies(gumbel_table(temperature, scale), bias, draws)
    assert (np.abs(got - p) < 4 * sigma + 2.0 / (1 << UBITS)).all(), (got, p)
    greedy = _frequencies(np.zeros(1 << UBITS, dtype=np.int64), bias, 500)
    assert not (np.abs(greedy - p) < 4 * sigma + 2.0 / (1 << UBITS)).all()
    assert greedy[3] == 1.0


def test_readout_cost_is_measured(graph, model):
    cost = readout_cost(graph, model, steps=400)
    assert cost["characters"] == 399
    assert cost["int8"] != cost["float"] and abs(cost["int8"] - cost["float"]) < 0.05
    coarse = dataclasses.replace(model, weight_q=np.round(model.weight_q / 32) * 32)  # 3-bit weights: costs more
    assert readout_cost(graph, coarse, steps=400)["int8"] > cost["int8"] + 0.01


# ---- the chip in Amaranth's simulator -----------------------------------------------------------------------


@pytest.mark.parametrize("sample, seed", [(False, 0), (True, 11)])
def test_amaranth_chip_is_the_reference(graph, model, sample, seed):
    reference = lm_generate(graph, model, PROMPT, LENGTH, sample, seed)
    assert len(reference.tokens) == len("def f(°x): ") + LENGTH  # "€" and the stray byte gave no step
    chip = run_lm_pysim(_image(graph, model), PROMPT, LENGTH, sample, seed, stall=True)
    check = _check(graph, model, chip, reference)
    assert check.passed, check.lines()
    assert chip.text == reference.text and len(chip.text.decode()) == LENGTH
    assert (chip.spikes == reference.spikes).all() and chip.generate_cycles > 0


def _readout_fault(graph, model, prompt: bytes, length: int) -> FixedLM:
    """The model with one readout weight negated — the one of a spiking neuron that most raises a rival of the
    first greedy choice it can overturn — so that the text must change."""
    reference = lm_generate(graph, model, prompt, length, False, 0)
    prompt_steps = len(reference.tokens) - length
    for k in range(length):
        spikes = reference.spikes[prompt_steps + k - 1]
        z, fired = model.logits(spikes), np.flatnonzero(spikes)
        best = int(np.argmax(z))
        gain = -2 * model.weight_q[:, fired]  # z[c] after negating W_q[c, i]: z[c] + gain
        for c, f in sorted(np.ndindex(gain.shape), key=lambda cf: -gain[cf]):
            if c != best and (z[c] + gain[c, f] > z[best] or (z[c] + gain[c, f] == z[best] and c < best)):
                w = model.weight_q.copy()
                w[c, fired[f]] = -w[c, fired[f]]
                return dataclasses.replace(model, weight_q=w)
    raise AssertionError("no single readout flip changes the text")


def test_amaranth_flipped_readout_weight_is_located(graph, model):
    prompt = b"The "  # greedy choices with small margins (PROMPT's are hundreds of logit units apart)
    faulty = _readout_fault(graph, model, prompt, LENGTH)
    reference = lm_generate(graph, model, prompt, LENGTH, False, 0)
    expected = lm_generate(graph, faulty, prompt, LENGTH, False, 0).text.decode()
    k = next(i for i, (a, b) in enumerate(zip(expected, reference.text.decode())) if a != b)
    chip = run_lm_pysim(_image(graph, faulty), prompt, LENGTH, False, 0)
    assert chip.text.decode() == expected
    check = _check(graph, model, chip, reference)
    assert not check.passed and check.first_char == k and check.first_step is None
    assert f"same spikes, different choice at character {k}" in check.lines()[1]


def test_amaranth_wrong_embedding_entry_is_located(graph, model):
    """The first entry of the first prompt character's ROM row whose negation changes the text is negated; the
    check names the step where the rasters part and the neurons, as the reference of the edited ROM predicts."""
    prompt = b"The "
    reference = lm_generate(graph, model, prompt, LENGTH, False, 0)
    token = reference.tokens[0]
    for i in np.flatnonzero(model.table[token]):
        table = model.table.copy()
        table[token, i] = -table[token, i]
        faulty = dataclasses.replace(model, table=table)
        expected = lm_generate(graph, faulty, prompt, LENGTH, False, 0)
        if expected.text != reference.text:
            break
    else:
        raise AssertionError("no single embedding entry changes the text")
    step = int(np.flatnonzero((expected.spikes != reference.spikes).any(axis=1))[0])
    chip = run_lm_pysim(_image(graph, faulty), prompt, LENGTH, False, 0)
    assert chip.text == expected.text
    check = _check(graph, model, chip, reference)
    assert not check.passed and check.first_char is not None and check.first_step == step
    assert [f["neuron"] for f in check.flips] == list(np.flatnonzero(expected.spikes[step] != reference.spikes[step]))
    assert f"rasters first differ at step {step} (input {check.inputs[step]!r}" in check.lines()[0]


def test_chip_refuses_bad_ports(graph, model):
    with pytest.raises(RcsnnError, match="--length 70000"):
        run_lm_pysim(_image(graph, model), b"a", 70000, False, 0)
    with pytest.raises(RcsnnError, match="--prompt"):
        run_lm_pysim(_image(graph, model), b"", 3, False, 0)


# ---- the emitted LM top in Verilator, and the command line --------------------------------------------------


@pytest.fixture(scope="module")
def verilator_dir(tmp_path_factory):
    """``rcsnn verilog SMALL --lm`` (the default temperature, as ``model``)."""
    out = tmp_path_factory.mktemp("lm") / "design"
    assert main(["verilog", str(SMALL_CHECKPOINT), "--lm", "--lanes", str(LANES), "--steps", "4", "-o", str(out)]) == 0
    design = json.loads((out / "design.json").read_text())
    assert design["lm"]["vocab_size"] == 103 and design["lm"]["temperature"] == DEFAULT_TEMPERATURE
    assert {"rcsnn_lm.v", "lm_harness.cpp"} <= set(design["files"])  # hashed like every emitted file
    assert "## The language model on chip" in (out / "README.md").read_text()
    return out


@pytest.mark.parametrize("sample, seed", [(False, 0), (True, 3)])
def test_verilator_chip_is_the_reference(graph, model, verilator_dir, sample, seed):
    length = 100
    reference = lm_generate(graph, model, PROMPT, length, sample, seed)
    chip = run_lm_verilator(_image(graph, model), verilator_dir, PROMPT, length, sample, seed, stall=sample)
    check = check_lm(graph, model, reference, chip.text, chip.spikes, "verilator", length)
    assert check.passed, check.lines()
    assert len(chip.text.decode()) == length and chip.spikes.shape == reference.spikes.shape


def test_generate_cli_fixed_lm_and_verilator_agree(capsys, verilator_dir):
    args = ["generate", str(SMALL_CHECKPOINT), "--prompt", "def f(x):", "--length", "40", "--temperature", "0.8",
            "--seed", "3", "--lanes", str(LANES)]
    assert main([*args, "--backend", "fixed-lm"]) == 0
    fixed = capsys.readouterr().out
    assert main([*args, "--backend", "verilator", "--lm", "--build-dir", str(verilator_dir)]) == 0
    out, err = capsys.readouterr()
    assert out == fixed and "40 generated characters identical; rasters equal over 49 steps" in err
    assert main([*args, "--backend", "icarus", "--lm"]) == 2
    assert "--lm: with --backend amaranth or verilator" in capsys.readouterr().err


@pytest.mark.slow
def test_example_500_characters_in_verilator(tmp_path, capsys):
    """Done-when of issue 11 item 1: 500 characters of the example core, greedy and sampled."""
    for temperature, seed in (("0", "0"), ("0.8", "3")):
        args = ["generate", str(EXAMPLE_CHECKPOINT), "--prompt", "The ", "--length", "500",
                "--temperature", temperature, "--seed", seed]
        assert main([*args, "--backend", "fixed-lm"]) == 0
        fixed = capsys.readouterr().out
        # one build for both: a greedy run builds the sampler's ROM of the default temperature
        assert main([*args, "--backend", "verilator", "--lm", "--build-dir", str(tmp_path)]) == 0
        out, err = capsys.readouterr()
        assert out == fixed and "500 generated characters identical; rasters equal over 504 steps" in err
