"""PNG figures of a SPICE verification (matplotlib, Agg backend): raster overlay, membrane
traces of chosen neurons, histogram of the membrane error at the clock edges."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..analog.simulate import SpiceRun
from ..ir.arrays import Core
from ..ir.reference import Run
from .compare import locate

__all__ = ["TRACES", "chosen_neurons", "write_plots"]

TRACES = 4


def chosen_neurons(ref: Run, got: SpiceRun, verdict) -> list[int]:
    """Up to :data:`TRACES` neurons worth looking at: first divergence, smallest margin, worst error against its
    budget, busiest."""
    picks = [verdict.first["neuron"]] if verdict.first else []
    picks.append(verdict.smallest_at[1])
    picks.append(verdict.worst["neuron"])
    picks.append(int(ref.spikes.sum(axis=0).argmax()))
    return list(dict.fromkeys(picks))[:TRACES]


def write_plots(core: Core, ref: Run, got: SpiceRun, verdict, out: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    steps = np.arange(ref.spikes.shape[0])
    paths = [out / "raster.png", out / "membranes.png", out / "error_hist.png"]

    fig, ax = plt.subplots(figsize=(10, 6))
    t, i = np.nonzero(ref.spikes)
    ax.scatter(t, i, s=12, c="0.75", marker="s", linewidths=0, label="reference")
    t, i = np.nonzero(got.spikes)
    ax.scatter(t, i, s=3, c="tab:blue", marker="o", linewidths=0, label="SPICE")
    t, i = np.nonzero(ref.spikes != got.spikes)
    ax.scatter(t, i, s=40, facecolors="none", edgecolors="tab:red", label=f"mismatch ({len(t)})")
    ax.set(xlabel="step", ylabel="neuron", title=f"raster, {verdict.mode} loop: SPICE vs reference")
    ax.legend(loc="upper right", markerscale=3)
    fig.savefig(paths[0], dpi=120)
    plt.close(fig)

    neurons = chosen_neurons(ref, got, verdict)
    fig, axes = plt.subplots(len(neurons), 1, figsize=(10, 2.2 * len(neurons)), sharex=True, squeeze=False)
    theta = core.per_neuron("theta")
    for ax, n in zip(axes[:, 0], neurons):
        group, index = locate(core, n)
        ax.plot(steps, ref.membranes[:, n], "-", c="0.5", label="reference")
        ax.plot(steps, got.membranes[:, n], ".", c="tab:blue", ms=3, label="SPICE")
        ax.axhline(theta[n], c="tab:red", lw=0.8, ls="--", label="θ")
        ax.set_ylabel(f"{group}[{index}] / V")
    axes[0, 0].legend(loc="upper right")
    axes[-1, 0].set_xlabel("step")
    fig.suptitle("membrane at the clock edges")
    fig.savefig(paths[1], dpi=120)
    plt.close(fig)

    err = np.abs(got.membranes - ref.membranes)[:verdict.judged_steps].ravel()
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.hist(np.log10(np.maximum(err, 1e-15)), bins=80, color="tab:blue")
    for b, color in zip(verdict.budgets, ("tab:red", "tab:orange", "tab:green", "tab:purple", "tab:brown")):
        ax.axvline(np.log10(b["a"]), c=color, ls="--", label=f"budget a of {b['group']}: {b['a']:.2g} V")
    ax.set(xlabel="log10 |v_spice - v_ref| / V", ylabel="events", yscale="log", title="membrane error at the clock edges")
    ax.legend()
    fig.savefig(paths[2], dpi=120)
    plt.close(fig)
    return paths
