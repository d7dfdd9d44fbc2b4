"""Monte Carlo on dask.distributed (rcsnn/verify/montecarlo.py, sweep.py, rcsnn montecarlo).

A sweep gives the same results serially and on a LocalCluster, resumes after an interruption with the
same table, survives a worker killed mid-task (the task is retried and reported), and the command
refuses bad options and a directory of other settings.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time

import numpy as np
import pytest
from conftest import SMALL_CHECKPOINT

from rcsnn.analog.design import Design
from rcsnn.analog.variation import Tolerance
from rcsnn.cli.main import main
from rcsnn.frontends.load import load_core
from rcsnn.ir.stimulus import Stimulus
from rcsnn.verify.montecarlo import TIMINGS, plan, prepare, summarize
from rcsnn.verify.sweep import run_tasks

STEPS = 16


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    """A bundle of the small core (written once), the tasks of a 2-point sweep and their serial results."""
    graph = load_core(SMALL_CHECKPOINT)
    directory = tmp_path_factory.mktemp("mc")
    bundle = prepare(graph, Stimulus.sample(graph, STEPS), Design(), directory, 3, 600.0, {"seed": 0})
    tasks = plan([Tolerance()], 1, 0, 1, bundle.blocks) + plan([Tolerance(r=0.03, offset=5e-4)], 2, 0, 1, bundle.blocks)
    return bundle, tasks, run_tasks(bundle, tasks, directory / "serial", "serial")


def _stripped(results: dict) -> dict:
    return {k: {f: v for f, v in r.items() if f not in TIMINGS} for k, r in results.items()}


def test_serial_dask_and_resume_give_one_table(sweep, tmp_path):
    bundle, tasks, serial = sweep
    rows = summarize(tasks, serial.results)
    assert rows[0]["agreement"]["min"] == 1.0 and rows[0]["judge_passed"] == rows[0]["judged_blocks"] == 1
    assert rows[1]["agreement"]["max"] < 1.0  # the variation changes decisions
    assert rows[1]["judge_passed"] == rows[1]["judged_blocks"] == 2  # and ngspice agrees with the fast model on them
    assert np.isfinite(rows[1]["bpc"]["mean"]) and rows[1]["bpc"]["sd"] > 0

    def interrupt(done, total, task, result):
        if done == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_tasks(bundle, tasks, tmp_path / "resumed", "serial", progress=interrupt)
    assert len(list((tmp_path / "resumed" / "parts").glob("*.json"))) == 2
    resumed = run_tasks(bundle, tasks, tmp_path / "resumed", "local", workers=2)
    assert len(resumed.resumed) == 2 and len(resumed.computed) == len(tasks) - 2
    assert _stripped(resumed.results) == _stripped(serial.results)
    assert summarize(tasks, resumed.results) == rows


def test_a_killed_worker_is_retried_and_reported(sweep, tmp_path):
    from distributed import Client, LocalCluster

    bundle, tasks, serial = sweep
    killed = []
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        def kill_one():
            with Client(cluster.scheduler_address) as watcher:
                deadline = time.monotonic() + 120
                while time.monotonic() < deadline and not killed:
                    for worker, keys in watcher.processing().items():
                        if any(str(k).startswith("judge_") for k in keys):
                            pid = watcher.run(os.getpid, workers=[worker])[worker]
                            os.kill(pid, signal.SIGKILL)  # the worker process dies mid-task
                            killed.append((worker, pid))
                            break
                    time.sleep(0.005)

        thread = threading.Thread(target=kill_one)
        thread.start()
        outcome = run_tasks(bundle, tasks, tmp_path / "dask", cluster.scheduler_address)
        thread.join()
    assert killed, "no worker was killed"
    assert outcome.retried and all(n >= 1 for n in outcome.retried.values())
    assert _stripped(outcome.results) == _stripped(serial.results)  # nothing lost, nothing different


def test_command(tmp_path, capsys):
    out = tmp_path / "mc"
    args = ["montecarlo", str(SMALL_CHECKPOINT), "--steps", "12", "--runs", "2", "--r-tol", "2%", "--offset", "1mV",
            "--scheduler", "serial", "-o", str(out)]
    assert main(args) == 0
    first = json.loads((out / "results.json").read_text())
    assert [r["runs"] for r in first["table"]] == [1, 2] and first["judge_failed"] == []
    assert (out / "agreement.png").stat().st_size > 0 and (out / "bpc.png").stat().st_size > 0
    assert "| r 2%, c 0%, offset 1 mV | 2 |" in (out / "results.md").read_text()
    assert main(args) == 0  # everything resumed from the parts: the same table
    again = json.loads((out / "results.json").read_text())
    assert again["resumed"] == len(again["tasks"]) and again["table"] == first["table"]
    capsys.readouterr()
    assert main([*args[:-2], "--seed", "5", "-o", str(out)]) == 2
    assert "other settings (seed differ)" in capsys.readouterr().err
    for bad, message in ((["--r-tol", "1%", "2%", "--c-tol", "1%", "2%", "3%"], "--r-tol: 2 values"),
                         (["--r-tol", "40%"], "--r-tol 0.4: must be between")):
        assert main(["montecarlo", str(SMALL_CHECKPOINT), "--steps", "4", "--scheduler", "serial", *bad,
                     "-o", str(tmp_path / "bad")]) == 2
        assert message in capsys.readouterr().err


def test_a_calibrated_circuit_is_judged_by_ngspice_and_errs_less(tmp_path, capsys):
    """``--trim input leak``: ngspice runs the calibrated decks (vary_deck) and agrees with the fast model
    (vary_circuit); the same draws uncalibrated, the negative control, err more."""
    rows = {}
    for name, trim in (("plain", []), ("trimmed", ["--trim", "input", "leak"])):
        out = tmp_path / name
        assert main(["montecarlo", str(SMALL_CHECKPOINT), "--steps", "12", "--runs", "2", "--r-tol", "5%", *trim,
                     "--scheduler", "serial", "-o", str(out)]) == 0
        result = json.loads((out / "results.json").read_text())
        assert result["judge_failed"] == [] and result["table"][1]["judge_passed"] == 2
        rows[name] = result["table"][1]
    assert rows["trimmed"]["label"] == "r 5%, c 0%, offset 0 mV, input and leak trimmed to 0.1%"
    # the parts in either order are one calibration: the same tasks, resumed, not run again
    assert main(["montecarlo", str(SMALL_CHECKPOINT), "--steps", "12", "--runs", "2", "--r-tol", "5%", "--trim", "leak",
                 "input", "--scheduler", "serial", "-o", str(tmp_path / "trimmed")]) == 0
    again = json.loads((tmp_path / "trimmed" / "results.json").read_text())
    assert again["resumed"] == len(again["tasks"]) and again["table"][1] == rows["trimmed"]
    assert rows["trimmed"]["error_median"] < 0.7 * rows["plain"]["error_median"]
    assert rows["trimmed"]["equal"] >= rows["plain"]["equal"]
    capsys.readouterr()
    assert main(["montecarlo", str(SMALL_CHECKPOINT), "--steps", "12", "--runs", "2", "--r-tol", "5%", "--trim", "input",
                 "--scheduler", "serial", "-o", str(tmp_path / "trimmed")]) == 2
    assert "other settings (trim differ)" in capsys.readouterr().err
    assert main(["montecarlo", str(SMALL_CHECKPOINT), "--steps", "12", "--runs", "1", "--r-tol", "5%", "--band",
                 "--judge-blocks", "0", "--scheduler", "serial", "-o", str(tmp_path / "band")]) == 0
    banded = json.loads((tmp_path / "band" / "results.json").read_text())["table"][1]
    assert banded["label"] == "r ±5%, c ±0%, offset 0 mV" and banded["band"] is True
    assert main(["montecarlo", str(SMALL_CHECKPOINT), "--steps", "4", "--trim", "synapse", "--scheduler", "serial",
                 "-o", str(tmp_path / "bad")]) == 2
    assert "--trim synapse: give each of input, leak at most once" in capsys.readouterr().err


def test_at_a_physical_scale(tmp_path):
    """At S volts per unit the resistors are those of 1 V per unit, so resistor variation gives the same table (the
    fast model's membranes read back in units: without that their errors would be ~|v|), and ngspice judges the decks
    in units against the same budget; a comparator offset in volts weighs 1/S units, so at S = 0.1 V the same 5 mV
    offsets flip more decisions than at 1 V."""
    rows = {}
    for scale in ("1", "0.1"):
        out = tmp_path / f"s{scale}"
        assert main(["montecarlo", str(SMALL_CHECKPOINT), "--steps", "12", "--runs", "2", "--r-tol", "1%",
                     "--offset", "0", "5mV", "--volts-per-unit", scale, "--scheduler", "serial", "-o", str(out)]) == 0
        result = json.loads((out / "results.json").read_text())
        assert result["judge_failed"] == [] and all(r["judge_passed"] == r["judged_blocks"] for r in result["table"])
        rows[scale] = {r["label"]: r for r in result["table"]}
    plain, offset = "r 1%, c 0%, offset 0 mV", "r 1%, c 0%, offset 5 mV"
    for key in ("agreement", "equal", "error_median", "error_p99", "error_max"):
        assert rows["0.1"][plain][key] == pytest.approx(rows["1"][plain][key], rel=1e-6, abs=1e-12)
    assert rows["0.1"][offset]["equal"] < rows["1"][offset]["equal"]
