"""Real amplifiers in the op-amp form (``--opamp``, rcsnn.analog.opamp): the decks they write, their first-order
figures checked against the decks' own resistors, ngspice's membranes scaling with 1/GBW as derived, a user's .subckt
computing what the named part does, the verdict that a real part is not the contract, Monte Carlo of the part in the
fast circuit model judged by ngspice (and a fast model that forgets the offset rejected), and the refusals."""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pytest
from conftest import SMALL_CHECKPOINT

from rcsnn.analog.opamp import LIBRARY, PARTS, parse_opamp
from rcsnn.cli import main
from rcsnn.errors import RcsnnError

SCALE = ["--volts-per-unit", "0.05", "--rails=-2.5,2.5"]  # the small core's membranes reach about ±40 units
OPA381 = PARTS["OPA381"]


def _user_model(path, gbw: float) -> None:
    """A single-pole amplifier written independently of rcsnn's macromodel: linear G/R/C/E elements, no slew or swing
    limit (never reached by the small core at S = 0.05 V), OPA381's gain and the given unity-gain frequency."""
    ro = 1e6
    cp = OPA381.gain / (2 * math.pi * gbw * ro)
    path.write_text("* the user's amplifier\n.subckt myamp inp inn out vp vn\n"
                    f"G1 0 p inp inn {OPA381.gain / ro!r}\nR1 p 0 {ro!r}\nC1 p 0 {cp!r}\nE1 out 0 p 0 1\n.ends myamp\n")


def _netlist(tmp_path, name: str, *options: str) -> dict:
    out = tmp_path / name
    assert main(["netlist", str(SMALL_CHECKPOINT), "--steps", "6", "-o", str(out), *SCALE, *options]) == 0
    return json.loads((out / "core.json").read_text())


def test_named_part_decks_and_their_first_order_figures(tmp_path):
    sidecar = _netlist(tmp_path, "a", "--opamp", "OPA381")
    deck = (tmp_path / "a" / "core.cir").read_text()
    assert f".include {LIBRARY}" in deck and (tmp_path / "a" / LIBRARY).is_file()
    assert "Vdd vdd 0 DC 2.5" in deck and "Vss vss 0 DC -2.5" in deck
    assert re.search(r"^Xa0 0 sum0 mem0 vdd vss rcsnn_opamp_macro a0=\S+ gbw=18000000\.0 ", deck, flags=re.M)
    assert re.search(r"^Xn0 sum0 mem0 \S+ rwin rcsnn_feedback c=", deck, flags=re.M)
    _netlist(tmp_path, "b", "--opamp", "OPA381")
    assert (tmp_path / "b" / "core.cir").read_text() == deck  # same options, same bytes
    record = sidecar["circuit"]["opamp"]
    assert record["name"] == "OPA381" and sidecar["circuit"]["design"]["opamp"] == "OPA381"
    # G of each neuron from the deck's own resistors into its summing node: the sizing's worst neuron per group
    g = {}
    for node, ohms in re.findall(r"^R\S+ \S+ sum(\d+) (\S+)$", deck, flags=re.M):
        g[int(node)] = g.get(int(node), 0.0) + 1 / float(ohms)
    c, step = 1e-12, 1e-6
    for k, group in enumerate(record["sizing"]):
        worst = max(g.get(i, 0.0) for i in range(32 * k, 32 * k + 32))
        assert group["G_max"] == pytest.approx(worst, rel=1e-9)
        assert group["epsilon_B"] == pytest.approx(worst / (2 * math.pi * 18e6 * c), rel=1e-9)
        assert group["epsilon_A"] == pytest.approx(step * worst / (OPA381.gain * c), rel=1e-9)
        assert group["offset_drift"] == pytest.approx(7e-6 * worst * step / (c * 0.05), rel=1e-9)
        # the window's ramp is well within the part's 12 V/µs; a zero reset (g_on/C = 1/ns) asks far more of it
        assert group["slew_needed"] < OPA381.slew < group["reset_slew_needed"] and group["slew_limited"]


def test_bill_of_materials_counts_the_part(tmp_path):
    """The feedback cells' capacitors and leak resistors, and one amplifier per neuron by its part number."""
    out = tmp_path / "bom"
    assert main(["bom", str(SMALL_CHECKPOINT), "--opamp", "OPA381,vos=0", *SCALE, "--energy-steps", "0",
                 "-o", str(out)]) == 0
    bom = json.loads((out / "bom.json").read_text())
    assert bom["opamp"] == "OPA381,vos=0" and bom["form"] == "opamp"
    parts = bom["bom"]["parts"]
    assert parts["op-amps (integrators): OPA381"] == 96 and parts["reset switches"] == 96
    assert sum(c["count"] for c in bom["bom"]["capacitors"]) == 96
    supply = bom["amplifier_supply"]  # the datasheet's 800 µA per amplifier on the 5 V between the rails
    assert supply["watts"] == pytest.approx(96 * 800e-6 * 5.0) and supply["joules_per_step"] == pytest.approx(384e-3 * 1e-6)
    assert "96 × 800 µA × 5 V = 384 mW static" in (out / "bom.md").read_text()
    assert parse_opamp("OPA381,iq=1e-3").quiescent == 1e-3
    plain = tmp_path / "plain"
    assert main(["bom", str(SMALL_CHECKPOINT), "--form", "opamp", "--energy-steps", "0", "-o", str(plain)]) == 0
    assert json.loads((plain / "bom.json").read_text())["bom"]["resistors"] == bom["bom"]["resistors"]  # R_L included


def test_refusals(tmp_path, capsys):
    with pytest.raises(RcsnnError, match="unknown part 'LM741'"):
        parse_opamp("LM741")
    with pytest.raises(RcsnnError, match="'gbw=fast'"):
        parse_opamp("OPA381,gbw=fast")
    with pytest.raises(RcsnnError, match="cannot read"):
        parse_opamp(f"{tmp_path / 'none.lib'}:amp")
    _user_model(tmp_path / "amp.lib", 18e6)
    with pytest.raises(RcsnnError, match="has no '.subckt other'"):
        parse_opamp(f"{tmp_path / 'amp.lib'}:other")
    (tmp_path / "three.lib").write_text(".subckt amp3 inp inn out\nE1 out 0 inp inn 1e5\n.ends\n")
    with pytest.raises(RcsnnError, match="3 pins"):
        parse_opamp(f"{tmp_path / 'three.lib'}:amp3")
    for options, message in ((["--opamp", "OPA381", "--volts-per-unit", "0.05"], "give --rails"),
                             (["--opamp", "OPA381", "--volts-per-unit", "0.05", "--rails=-5,5"], "10 V supply"),
                             (["--opamp", "OPA381", "--gain", "1e6", *SCALE], "the part has its own gain"),
                             (["--opamp", f"{tmp_path / 'amp.lib'}:amp", *SCALE], "has no '.subckt amp'")):
        assert main(["netlist", str(SMALL_CHECKPOINT), "--steps", "4", "-o", str(tmp_path / "x"), *options]) == 2
        assert message in capsys.readouterr().err
    # membranes that fit the rails but not the part's output swing (V- + 30 mV): refused, naming the swing
    tight = ["--steps", "20", "--volts-per-unit", "0.0865", "--rails=-2.5,2.5"]
    assert main(["netlist", str(SMALL_CHECKPOINT), *tight, "-o", str(tmp_path / "r")]) == 0
    assert main(["netlist", str(SMALL_CHECKPOINT), *tight, "--opamp", "OPA381", "-o", str(tmp_path / "s")]) == 2
    assert "below the OPA381 output swing (the rails less its headroom) -2.47,2.1 V" in capsys.readouterr().err
    _user_model(tmp_path / "mine.lib", 18e6)
    for options, message in ((["--opamp", f"{tmp_path / 'mine.lib'}:myamp"], "not a model of your own"),
                             (["--amp-offset", "1e-4"], "give --opamp"),
                             # at the default 1 µs clock the part's zero resets slew: the fast model refuses
                             (["--opamp", "OPA381"], "slews (|V_os - V(sum)| > SR/(2 pi GBW)) in step 1")):
        assert main(["montecarlo", str(SMALL_CHECKPOINT), "--runs", "1", "--steps", "4", *SCALE, *options,
                     "--scheduler", "serial", "-o", str(tmp_path / "mc")]) == 2
        assert message in capsys.readouterr().err


def _verify(tmp_path, name: str, spec: str) -> tuple[int, dict, np.ndarray]:
    out = tmp_path / name
    code = main(["verify", str(SMALL_CHECKPOINT), "--backend", "spice", "--steps", "10", "--opamp", spec, *SCALE,
                 "--out", str(out)])
    figures = json.loads((out / "report.json").read_text())["figures"]
    return code, figures, np.load(out / "spice_run.npz")["membranes"]


def test_real_amplifier_in_ngspice(tmp_path):
    """ngspice with the part (offset and slew limit set aside: sr=1e12): the membranes err as the first order says
    (∝ 1/GBW: ×10 bandwidth, ÷10 error), the verdict fails the part at 18 MHz (decidable flips: a real amplifier is not
    the contract at a 1 µs clock), and a user's independently written .subckt of the same amplifier gives the same
    membranes."""
    code, slow, slow_v = _verify(tmp_path, "slow", "OPA381,vos=0,sr=1e12")
    assert code == 1 and slow["decidable_mismatches"] > 0 and not slow["passed"]
    assert "with amplifier OPA381,vos=0,sr=1e12 (not the contract" in (tmp_path / "slow" / "report.md").read_text()
    _, fast, _ = _verify(tmp_path, "fast", "OPA381,vos=0,sr=1e12,gbw=180e6")
    assert 8.5 < slow["largest_error"] / fast["largest_error"] < 11.5
    _user_model(tmp_path / "myamp.lib", 18e6)
    _, user, user_v = _verify(tmp_path, "user", f"{tmp_path / 'myamp.lib'}:myamp")
    assert (tmp_path / "user" / "netlists" / "myamp.lib").is_file()
    assert np.abs(user_v - slow_v).max() < 1e-6 * slow["largest_error"] + 1e-9
    _, _, slewing_v = _verify(tmp_path, "slewing", "OPA381,vos=0")  # the part's own slew rate: the resets slew
    assert np.abs(slewing_v - slow_v).max() > 1e-3


def test_generation_with_the_part_reports_in_units(capsys):
    """generate --backend spice runs the lock-step decks with the part; at S ≠ 1 V per unit its divergence report and
    budget are in units (volts / S), as verify's: the part parts from the float text with a named, decidable flip."""
    code = main(["generate", str(SMALL_CHECKPOINT), "--backend", "spice", "--prompt", "The ", "--length", "3",
                 "--temperature", "0", "--opamp", "OPA381", *SCALE])
    err = capsys.readouterr().err
    assert code == 1 and "DECIDABLE (a hardware error)" in err
    assert "v_ref - theta" in err and " units, budget " in err and "g0 a " in err and " V," not in err


MC = ["montecarlo", str(SMALL_CHECKPOINT), "--steps", "10", "--runs", "2", "--r-tol", "0", "--opamp", "OPA381", *SCALE,
      "--clock", "1e-4", "--scheduler", "serial"]


def test_monte_carlo_of_amplifier_offsets(tmp_path):
    """At a 100 µs clock OPA381 stays linear, so the fast model solves its macromodel (offset included) and ngspice
    judges it within the a-priori budget; each amplifier's offset drawn around the part's flips decisions."""
    out = tmp_path / "mc"
    assert main([*MC, "--amp-offset", "0", "2mV", "-o", str(out)]) == 0
    result = json.loads((out / "results.json").read_text())
    assert result["judge_failed"] == [] and all(r["judge_passed"] == r["judged_blocks"] for r in result["table"])
    rows = {r["label"]: r for r in result["table"]}
    nominal, drawn = rows["r 0%, c 0%, offset 0 mV"], rows["r 0%, c 0%, offset 0 mV, amp offset 2 mV"]
    assert nominal["equal"] == nominal["events"] and drawn["equal"] < drawn["events"]
    assert drawn["error_max"] > 10 * nominal["error_max"]


def test_a_fast_model_without_the_offset_is_rejected(tmp_path, monkeypatch):
    """Negative control: the fast model with every amplifier's offset set to 0 (the decks keep the part's 7 µV) drifts
    from ngspice beyond the budget, and the judge fails the sweep."""
    import dataclasses

    from rcsnn.analog import fastmodel
    from rcsnn.verify import montecarlo

    def forgetful(text, files, steps, name="deck"):
        circuit = fastmodel.read_circuit(text, files, steps, name)
        amps = dataclasses.replace(circuit.amplifiers, offset=np.zeros_like(circuit.amplifiers.offset))
        return fastmodel.assemble(dataclasses.replace(circuit, amplifiers=amps))

    monkeypatch.setattr(montecarlo, "parse_deck", forgetful)
    out = tmp_path / "mc"
    assert main([*MC, "-o", str(out)]) == 1
    result = json.loads((out / "results.json").read_text())
    assert result["judge_failed"] and max(t.get("worst_ratio", 0) for t in result["tasks"].values()) > 10


def test_the_amplified_model_runs_on_one_blas_thread(tmp_path, monkeypatch):
    """Every matrix exponential of the amplified model runs with each BLAS library limited to one thread, whatever the
    caller allowed (two here): OpenBLAS's threads on 5 x 5 matrices stall when the other cores are busy."""
    from threadpoolctl import threadpool_info, threadpool_limits

    from rcsnn.analog import fastamp

    seen = []

    def expm(a):
        seen.extend(lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas")
        return original(a)

    original = fastamp.scipy.linalg.expm
    monkeypatch.setattr(fastamp.scipy.linalg, "expm", expm)
    with threadpool_limits(limits=2, user_api="blas"):
        assert main([*MC, "--runs", "1", "--judge-blocks", "0", "-o", str(tmp_path / "mc")]) == 0
    assert seen and set(seen) == {1}
