"""Bits per character from a back end's own spikes (``rcsnn verify --bpc``).

The stimulus is text (the held-out sample — the last characters of ``pydoc_data.topics``,
:meth:`~rcsnn.ir.stimulus.Stimulus.sample` — or ``--prompt``), one character per step. The
raster the back end produced in ``verify`` (closed loop: its own run; open loop: each step's
decisions given the reference past) is read out like the model's (``W_out s[t] + b_out``,
log-softmax) and scored on the next character: ``steps − 1`` predictions,
:func:`rcsnn.model.readout.bits_per_char`. The float64 and fixed-point references are scored
on the same text beside it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import RcsnnError
from ..ir.graph import Graph
from ..ir.raster import Raster
from ..ir.reference import simulate_fixed, simulate_float
from ..ir.stimulus import Stimulus
from ..model.readout import bits_per_char
from .report import Report

__all__ = ["text_targets", "bpc_figures", "report_raster", "add_bpc"]


def text_targets(graph: Graph, stimulus: Stimulus) -> np.ndarray:
    """The stimulus' characters as token indices ``(steps,)``; an error unless it is text for a language-model core."""
    core = graph.arrays()
    if stimulus.text is None or core.frontend is None or core.readout_weight is None:
        raise RcsnnError("--bpc: needs a language-model core and a text stimulus (the held-out sample or --prompt), "
                         f"not {stimulus.description}")
    if len(stimulus.text) < 2:
        raise RcsnnError("--bpc: the text must have at least 2 characters (one prediction)")
    return np.asarray(core.frontend.encode(stimulus.text), dtype=np.int64)


def bpc_figures(graph: Graph, stimulus: Stimulus, spikes: np.ndarray) -> dict:
    """Bits per character of ``spikes`` ``(steps, N)`` on the stimulus' text and of both references; a raster
    shorter than the text (the gate level runs the first steps only) is scored on that many characters."""
    tokens = text_targets(graph, stimulus)
    if not 2 <= spikes.shape[0] <= len(tokens):
        raise RcsnnError(f"--bpc: the raster has {spikes.shape[0]} steps, the text {len(tokens)} characters")
    text = stimulus.description
    if spikes.shape[0] < len(tokens):
        text = f"the first {spikes.shape[0]} steps of {text}"
        stimulus = stimulus.first(spikes.shape[0])
        tokens = tokens[: spikes.shape[0]]
    score = lambda s: bits_per_char(graph, s[:-1], tokens[1:])  # noqa: E731
    return {"characters": int(len(tokens) - 1), "text": text, "backend": score(spikes),
            "float64_reference": score(simulate_float(graph, stimulus.currents).spikes),
            "fixed_reference": score(simulate_fixed(graph, stimulus.currents).spikes)}


def report_raster(report: Report) -> Path:
    """The raster file a back end's report lists (the ``.npz`` among ``report.files``); the report lives beside it."""
    rasters = [Path(f) for f in report.files if f.endswith(".npz")]
    if len(rasters) != 1:
        raise RcsnnError(f"--bpc: the {report.backend} report lists {len(rasters)} raster files, expected one")
    return rasters[0]


def add_bpc(report: Report, graph: Graph, stimulus: Stimulus) -> dict:
    """Score the raster ``report``'s back end produced; add the figures (``bpc``) and a finding to the report
    and write it again where it was written (beside its raster). Returns the figures."""
    path = report_raster(report)
    figures = bpc_figures(graph, stimulus, Raster.load(path).spikes)
    report.figures["bpc"] = figures
    report.lines.append(f"bits per character on {figures['characters']} predictions of {figures['text']}: "
                        f"{report.backend} {figures['backend']:.4f} (from its own spikes), float64 reference "
                        f"{figures['float64_reference']:.4f}, fixed-point reference {figures['fixed_reference']:.4f}")
    report.write(path.parent)
    return figures
