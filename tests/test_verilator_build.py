"""The Verilator harness is built twice at most: a fast model without trace code (every run) and, only when a
waveform is asked for, a traced one in ``obj_dir_trace`` (rcsnn/digital/simulate.py, harness.cpp.j2)."""

from __future__ import annotations

import shutil

import numpy as np
from conftest import ROOT, SMALL_CHECKPOINT

from rcsnn.digital.layout import build_image, place
from rcsnn.digital.simulate import run_verilator
from rcsnn.frontends.load import load_core
from rcsnn.tools import run

STEPS = 32  # hdl/small_3x32's stimulus


def test_fast_build_has_no_trace_and_the_traced_build_writes_the_same_raster(tmp_path):
    work = tmp_path / "hdl"
    shutil.copytree(ROOT / "hdl" / "small_3x32", work, ignore=shutil.ignore_patterns("obj_dir*", "synth"))
    image = build_image(place(load_core(SMALL_CHECKPOINT), 4))
    fast = run_verilator(image, work, STEPS)
    assert not list((work / "obj_dir").glob("*Trace*")) and not (work / "obj_dir_trace").exists()
    exe = str(work / "obj_dir" / "Vrcsnn_core")
    proc = run([exe, f"+steps={STEPS}"], cwd=work, what="harness", timeout=120)
    assert f"PASS: {STEPS} steps, rasters equal" in proc.stdout
    # negative control: the fast model cannot write a waveform, and says so instead of writing an empty one
    proc = run([exe, f"+steps={STEPS}", "+vcd"], cwd=work, what="harness", timeout=120, check=False)
    assert proc.returncode == 3 and "ERROR: +vcd: this harness was built without --trace" in proc.stdout
    assert not (work / "rcsnn.vcd").exists()
    traced = run_verilator(image, work, STEPS, membranes=True, vcd_from=STEPS - 3)
    assert list((work / "obj_dir_trace").glob("*Trace*")) and (work / "rcsnn.vcd").stat().st_size > 1000
    assert np.array_equal(traced.spikes, fast.spikes) and np.array_equal(traced.cycles, fast.cycles)
    assert fast.spikes.sum() > 100
