"""``rcsnn estimate``: the ECP5 resource and clock model of the digital core (rcsnn/digital/estimate.py).

Quick: the memory mapping rule (block RAM vs LUT RAM) against the cases Yosys decided, the estimate of the small
core at 4 lanes (not a calibration configuration) against its committed synthesis report, the fit on known
coefficients, the command line. Slow (``-m slow``): the example core synthesised at 4, 8 and 16 lanes for
ECP5-85F, every estimated figure, Fmax included, within 10 % of the real one.
"""

from __future__ import annotations

import json

import pytest
from conftest import EXAMPLE_CHECKPOINT, ROOT, SMALL_CHECKPOINT

from rcsnn.cli import main
from rcsnn.digital.estimate import CALIBRATION, Memory, chain_bits, estimate, features, fit, memories
from rcsnn.digital.layout import build_image, place
from rcsnn.frontends.load import load_core

FIGURES = ("LUT", "FF", "BRAM", "DSP")


def small_image(lanes: int):
    return build_image(place(load_core(SMALL_CHECKPOINT), lanes))


def test_memories_go_where_yosys_puts_them():
    # decided by synth_ecp5 on the small core: 96 x 18 accumulators in a DP16KD at 1 lane, 48 x 18 in LUT RAM at 2
    assert Memory("acc", 96, 18).in_bram and not Memory("acc", 48, 18).in_bram
    assert not Memory("queue", 96, 8).in_bram  # 12 LUT RAM cells are cheaper than a block
    assert not Memory("acc", 96, 18, distributed=True).in_bram  # --lutram
    assert Memory("entries", 2091, 7).bram_blocks == 2 and Memory("rowptr", 512, 19).bram_blocks == 1
    assert Memory("m", 48, 21).lutram_cells == 18 and Memory("m", 48, 21).mux_bits == 42
    names = {m.name for m in memories(small_image(2))}
    assert {"lane0.rowptr", "lane1.entries", "lane0.acc", "lane1.events", "queue"} <= names


def test_small_core_estimate_matches_its_synthesis():
    """hdl/small_3x32 (4 lanes, not among the calibration configurations) and its committed ECP5-25F report."""
    assert (str(SMALL_CHECKPOINT.relative_to(ROOT)), 4) not in CALIBRATION
    report = json.loads((ROOT / "hdl/small_3x32/synth/ecp5-25f/report.json").read_text())
    image = small_image(4)
    e = estimate(image, "ecp5-25f", chain_bits(image))
    assert (report["synthesis"]["BRAM"], report["synthesis"]["DSP"]) == (e.BRAM, e.DSP)
    for key in ("LUT", "FF"):
        assert abs(getattr(e, key) / report["synthesis"][key] - 1) < 0.10, key
    assert abs(e.fmax_mhz / report["fmax_mhz"] - 1) < 0.10
    assert e.fits() and e.capacity["BRAM"] == 56
    other = small_image(8)  # negative control: the 8-lane estimate is not within 10 % of the 4-lane design
    wrong = estimate(other, "ecp5-25f", chain_bits(other))
    assert abs(wrong.LUT / report["synthesis"]["LUT"] - 1) > 0.10 and report["synthesis"]["DSP"] != wrong.DSP


def test_fit_recovers_known_coefficients():
    truth = {"LUT": (100.0, 20.0, 3.0, 0.5), "FF": (50.0, 10.0, 2.0), "period_ns": (8.0, 0.2, 0.3)}
    samples = []
    for core, lanes in ((SMALL_CHECKPOINT, 1), (SMALL_CHECKPOINT, 2), (SMALL_CHECKPOINT, 8), (EXAMPLE_CHECKPOINT, 2),
                        (EXAMPLE_CHECKPOINT, 12)):
        image = build_image(place(load_core(core), lanes))
        e = estimate(image, "ecp5-85f", 100, coefficients=truth)
        samples.append((features(image), {"synthesis": {"LUT": e.LUT, "FF": e.FF}, "wrapper_chain_ffs": 100,
                                          "fmax_mhz": e.fmax_mhz}))
    got = fit(samples)
    for key, values in truth.items():
        assert got[key] == pytest.approx(values, rel=0.02, abs=0.5), key


def test_estimate_command(capsys):
    assert main(["estimate", str(SMALL_CHECKPOINT), "--target", "ecp5-85f", "--lanes", "4"]) == 0
    out = capsys.readouterr().out
    assert "ecp5-85f, 4 lanes (estimate): LUT " in out and "BRAM 0/208, DSP 8/156" in out and "fits" in out
    for bad in (["--target", "ice40-up5k"], ["--lanes", "33"]):  # iCE40 is not modelled; lanes are 1..32
        with pytest.raises(SystemExit) as exc:
            main(["estimate", str(SMALL_CHECKPOINT), *bad])
        assert exc.value.code == 2


@pytest.fixture(scope="module")
def example_synthesis(tmp_path_factory):
    """The example core emitted and synthesised for ECP5-85F at 4, 8 and 16 lanes (minutes each), with estimates."""
    from rcsnn.digital.synth import synthesize

    out = {}
    for lanes in (4, 8, 16):
        assert (str(EXAMPLE_CHECKPOINT.relative_to(ROOT)), lanes) not in CALIBRATION
        design = tmp_path_factory.mktemp("example") / f"l{lanes}"
        assert main(["verilog", str(EXAMPLE_CHECKPOINT), "-o", str(design), "--lanes", str(lanes), "--steps", "4"]) == 0
        report = synthesize(design, "ecp5-85f")
        image = build_image(place(load_core(EXAMPLE_CHECKPOINT), lanes))
        out[lanes] = (estimate(image, "ecp5-85f", report["wrapper_chain_ffs"]), report)
    return out


@pytest.mark.slow
@pytest.mark.parametrize("lanes", [4, 8, 16])
def test_example_resources_within_10_percent_of_synthesis(lanes, example_synthesis):
    e, report = example_synthesis[lanes]
    for key in FIGURES:
        assert abs(getattr(e, key) / report["synthesis"][key] - 1) <= 0.10, (key, getattr(e, key), report)


@pytest.mark.slow
@pytest.mark.parametrize("lanes", [4, 8, 16])
def test_example_fmax_within_10_percent_of_synthesis(lanes, example_synthesis):
    e, report = example_synthesis[lanes]
    assert abs(e.fmax_mhz / report["fmax_mhz"] - 1) <= 0.10, (e.fmax_mhz, report["fmax_mhz"])
