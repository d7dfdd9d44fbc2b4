"""Training: determinism, pruning to the target, ternary export, surrogate gradient."""

import math

import numpy as np
import torch

from rcsnn.cli import main
from rcsnn.frontends.checkpoint import load_checkpoint, read_config
from rcsnn.model.lm import ArctanSpike, SpikingLM

TINY = ["train", "--neurons", "16", "--float-steps", "6", "--prune-steps", "4", "--ternary-steps", "4",
        "--batch", "4", "--length", "16", "--log-every", "2", "--threads", "1", "--sparsity", "0.9"]


def test_training_is_deterministic_and_reaches_target(tmp_path, capsys):
    a, b, c = tmp_path / "a.rcsnn", tmp_path / "b.rcsnn", tmp_path / "c.rcsnn"
    assert main(TINY + ["-o", str(a)]) == 0
    out = capsys.readouterr().out
    assert "step     2/14 float" in out and "rates" in out and "end of ternary phase" in out  # visible progress
    assert main(TINY + ["-o", str(b)]) == 0
    assert main(TINY + ["--seed", "1", "-o", str(c)]) == 0
    core = load_checkpoint(a).arrays()
    t = core.matrices["T"]
    assert abs(1 - np.count_nonzero(t) / t.size - 0.9) < 0.01
    np.testing.assert_array_equal(t, load_checkpoint(b).matrices["T"])
    assert not np.array_equal(t, load_checkpoint(c).matrices["T"])
    metrics = read_config(a)["metrics"]
    for key in ("bpc_float", "bpc_prune", "bpc_ternary", "bpc_float64", "bpc_fixed", "raster_mismatch"):
        assert math.isfinite(metrics[key]) if key != "raster_mismatch" else 0 <= metrics[key] <= 1
    # The float64 reference of the exported core agrees with the torch ternary model it came from.
    assert abs(metrics["bpc_float64"] - metrics["bpc_ternary"]) < 0.05


def test_arctan_surrogate_gradient():
    u = torch.tensor([-1.0, 0.0, 0.5], requires_grad=True)
    ArctanSpike.apply(u).sum().backward()
    k = ArctanSpike.slope
    expected = (k / 2) / (1 + (math.pi * k * u.detach() / 2) ** 2)
    assert torch.allclose(u.grad, expected)
    assert ArctanSpike.apply(torch.tensor([0.0])).item() == 1.0  # fires on v >= theta


def test_ternary_weights_and_pruning():
    model = SpikingLM("abc", group_size=20, taus=(2.0, 8.0))
    model.recurrent.prune_to(0.75)
    assert abs(model.recurrent.sparsity() - 0.75) < 0.01
    model.recurrent.ternary = True
    w = model.recurrent.weight().detach()
    alpha = model.recurrent.alpha()
    assert set(torch.unique(w / alpha).round().tolist()) <= {-1.0, 0.0, 1.0}
    assert torch.allclose(w.abs()[model.recurrent.mask], alpha.expand(int(model.recurrent.mask.sum())))


def test_membrane_clamp_bounds_training_and_the_exported_core(tmp_path):
    """``--membrane-clamp B``: membranes within ±Bθ in training and in the saved core's v_min/v_max; B < 1 refused."""
    out = tmp_path / "clamped.rcsnn"
    assert main(TINY + ["--theta", "0.5", "--membrane-clamp", "1.5", "-o", str(out)]) == 0
    core = load_checkpoint(out).arrays()
    assert [(g.v_min, g.v_max) for g in core.groups] == [(-0.75, 0.75)] * 3
    metrics = read_config(out)["metrics"]
    assert metrics["membrane_abs_max"] <= 0.75
    assert abs(metrics["bpc_float64"] - metrics["bpc_ternary"]) < 0.05  # the torch model clamps as the reference does
    assert main(TINY + ["--membrane-clamp", "0.5", "-o", str(tmp_path / "x.rcsnn")]) == 2
    assert not (tmp_path / "x.rcsnn").exists()
