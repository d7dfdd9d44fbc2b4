"""Training: surrogate-gradient BPTT, L1 + magnitude pruning, ternary QAT, evaluation.

Three phases, counted in optimizer steps so a seed fixes the result:

1. *float*: dense float recurrent weights;
2. *prune*: L1 on the latent weights and a cubic magnitude-pruning ramp
   ``sparsity(k) = target · (1 - (1 - k/K)^3)`` to the target sparsity;
3. *ternary*: mask frozen, ``W = α·sign(W)·mask`` with a straight-through gradient.

Fine-tuning a trained core (``rcsnn finetune``) is a run of ternary steps only, from
:func:`rcsnn.model.robust.model_from_core`. The hardware-aware terms and noise of
:mod:`rcsnn.model.robust` (``TrainConfig.robust``) apply to every phase, and so does the membrane clamp
``TrainConfig.membrane_clamp`` = B: ``v = clamp(v, -Bθ, Bθ)`` after the update and before the spike (the
exported core carries ``v_min = -Bθ``, ``v_max = Bθ`` per group).

Every phase uses Adam with a cosine learning rate over the whole run, gradient
clipping at 1.0, batches of contiguous streams with the state carried across
segments (truncated BPTT).
"""

from __future__ import annotations

import dataclasses
import functools
import math
import time
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from ..ir.arrays import Core, FixedFormat
from ..ir.graph import Graph
from ..ir.reference import Run, simulate_fixed, simulate_float
from .corpus import Corpus, StreamBatches
from .lm import SpikingLM
from .readout import LOG2E, bits_per_char
from .robust import Robustness, add_noise, margin_histogram, mismatched_membranes, near_threshold, penalties

__all__ = ["LOG2E", "TrainConfig", "train", "torch_bits_per_char", "reference_run", "bits_per_char_from_spikes",
           "choose_width", "config_dict", "evaluate_core", "NEAR_THRESHOLD"]

#: distances from threshold (θ units) whose event fractions ``evaluate_core`` reports
NEAR_THRESHOLD = (1e-3, 1e-2, 5e-2)


@dataclass
class TrainConfig:
    """Everything that determines a training run (recorded in the checkpoint)."""

    group_size: int = 512
    taus: tuple[float, ...] = (1.0, 4.0, 16.0)
    embed: int = 64
    theta: float = 1.0
    reset: str = "zero"
    sparsity: float = 0.936
    float_steps: int = 1000
    prune_steps: int = 700
    ternary_steps: int = 700
    batch: int = 32
    length: int = 128
    lr: float = 1e-2
    l1: float = 2e-5
    robust: Robustness = field(default_factory=Robustness)
    seed: int = 0
    dt: float = 1e-3
    fixed: FixedFormat = field(default_factory=FixedFormat)
    log_every: int = 50
    membrane_clamp: float = 0.0  # B >= 1 (θ units): membranes clamped to ±Bθ; 0: none (a fine-tuned core keeps its own)

    @property
    def total_steps(self) -> int:
        return self.float_steps + self.prune_steps + self.ternary_steps


def _phase(cfg: TrainConfig, step: int) -> str:
    if step < cfg.float_steps:
        return "float"
    return "prune" if step < cfg.float_steps + cfg.prune_steps else "ternary"


def train(cfg: TrainConfig, corpus: Corpus, log=print, model: SpikingLM | None = None) -> tuple[SpikingLM, dict]:
    """Train a :class:`SpikingLM` (a new one, or ``model`` to fine-tune it) on ``corpus.train``; ``log``
    receives one progress line at a time.

    Returns the model (in ternary mode when ternary steps were run; with ``cfg.robust``'s noise installed,
    active in training mode only) and the held-out bits/char of the torch model at the end of each phase
    (``bpc_<phase>``), noise-free.
    """
    torch.manual_seed(cfg.seed)
    np.random.seed(cfg.seed)
    if model is None:
        model = SpikingLM(corpus.vocab, cfg.group_size, cfg.taus, cfg.embed, cfg.theta, cfg.reset)
    if cfg.membrane_clamp:
        bound = cfg.membrane_clamp * cfg.theta
        model.set_bounds([-bound] * model.groups, [bound] * model.groups)
    add_noise(model, cfg.robust)
    resample = getattr(model.recurrent, "resample", lambda: None)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, max(cfg.total_steps, 1))
    batches = StreamBatches(corpus.train, cfg.batch, cfg.length)
    state = None
    metrics = {}
    start = last = time.perf_counter()
    for step in range(cfg.total_steps):
        phase = _phase(cfg, step)
        end_of_phase = phase if step + 1 == cfg.total_steps or _phase(cfg, step + 1) != phase else None
        if phase == "prune":
            k = (step - cfg.float_steps + 1) / cfg.prune_steps
            model.recurrent.prune_to(cfg.sparsity * (1 - (1 - k) ** 3))
        model.recurrent.ternary = phase == "ternary"
        inputs, targets, fresh = batches(step)
        if fresh or state is None:
            state = model.initial_state(cfg.batch)
        resample()
        tokens, carried = torch.from_numpy(inputs), state
        logits, state, spikes, membranes = model(tokens, state)
        state = tuple(x.detach() for x in state)
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), torch.from_numpy(targets).reshape(-1))
        total = loss
        if phase == "prune":
            total = total + cfg.l1 * model.recurrent.latent.abs().sum()
        terms = penalties(cfg.robust, spikes, membranes, cfg.theta, functools.partial(
            mismatched_membranes, model, tokens, carried, spikes, cfg.robust.mismatch_tolerance,
            cfg.robust.mismatch_parts))
        total = total + sum(terms.values())
        optimizer.zero_grad(set_to_none=True)
        total.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        if (step + 1) % cfg.log_every == 0 or step + 1 == cfg.total_steps:
            now = time.perf_counter()
            rates = spikes.detach().view(-1, model.groups, model.group_size).mean((0, 2))
            log(
                f"step {step + 1:5d}/{cfg.total_steps} {phase:7s} loss {loss.item():.3f} "
                f"bpc {loss.item() * LOG2E:.3f} sparsity {model.recurrent.sparsity():.3f} "
                f"rates {' '.join(f'{r:.3f}' for r in rates.tolist())} "
                f"|v|max {membranes.detach().abs().max().item():.1f} "
                + "".join(f"{name} {term.item():.4f} " for name, term in terms.items()) +
                f"{cfg.log_every / (now - last):.2f} steps/s {now - start:.0f}s"
            )
            last = now
        if end_of_phase:
            model.eval()
            metrics[f"bpc_{end_of_phase}"] = torch_bits_per_char(model, corpus.held_out)
            model.train()
            log(f"end of {end_of_phase} phase: held-out {metrics[f'bpc_{end_of_phase}']:.4f} bits/char (torch, float32)")
    metrics["train_seconds"] = round(time.perf_counter() - start, 1)
    return model, metrics


def _chunks(tokens: np.ndarray, chunks: int) -> np.ndarray:
    per = len(tokens) // chunks
    return tokens[: per * chunks].reshape(chunks, per)


@torch.no_grad()
def torch_bits_per_char(model: torch.nn.Module, tokens: np.ndarray, chunks: int = 16) -> float:
    """Held-out bits/char of a torch LM (float32), ``chunks`` streams evaluated in parallel.

    ``model(tokens (B, L))`` must return the logits ``(B, L, V)`` first (any further outputs are ignored).
    """
    data = torch.from_numpy(_chunks(tokens, chunks))
    logits, *_ = model(data[:, :-1])
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), data[:, 1:].reshape(-1)).item() * LOG2E


def reference_run(core: Core, tokens: np.ndarray, backend: str, chunks: int = 16) -> tuple[Run, np.ndarray]:
    """Float64 (``"float"``) or fixed-point (``"fixed"``) run over ``chunks`` parallel streams.

    Returns the run (arrays ``(steps, chunks, N)``) and the token chunks ``(chunks, steps+1)``."""
    data = _chunks(tokens, chunks)
    currents = core.token_currents(data[:, :-1].T)
    simulate = simulate_float if backend == "float" else simulate_fixed
    return simulate(core, currents), data


def bits_per_char_from_spikes(core: Core, spikes: np.ndarray, data: np.ndarray) -> float:
    """Held-out bits/char of the float64 readout applied to a raster ``(steps, chunks, N)`` of the token
    chunks ``data`` ``(chunks, steps + 1)`` (:func:`rcsnn.model.readout.bits_per_char`)."""
    return bits_per_char(core, spikes, data[:, 1:].T)


def choose_width(core: Core, float_run: Run, headroom_bits: int = 1) -> FixedFormat:
    """The fixed-point format of ``core`` with Wv just wide enough for the run's membranes."""
    fmt = core.fixed
    peak = max(float(np.abs(float_run.membranes).max()), max(g.theta for g in core.groups))
    wv = int(math.ceil(math.log2(peak * 2**fmt.Fv + 1))) + 1 + headroom_bits
    return FixedFormat(Wv=max(wv, fmt.Fv + 2), Fv=fmt.Fv, Fb=fmt.Fb)


def config_dict(cfg: TrainConfig) -> dict:
    d = asdict(cfg)
    d["taus"] = list(cfg.taus)
    d["robust"] = asdict(cfg.robust)
    return d


def evaluate_core(graph: Graph, held_out: np.ndarray, log=print) -> tuple[Graph, dict]:
    """Reference figures of a trained core; returns it with a fitted Wv and the metrics.

    ``bpc_float64`` and ``bpc_fixed`` are held-out bits/char of the float64 and
    fixed-point references; ``raster_mismatch`` is the fraction of (t, stream,
    neuron) where the two rasters differ (closed loop: one flip can cascade), and
    ``first_mismatch_step`` the earliest step at which any stream differs; ``near_threshold``
    the fraction of float64 membrane values within each of :data:`NEAR_THRESHOLD` (θ units) of
    threshold, and ``margin_histogram`` their distances in decades (:func:`rcsnn.model.robust.margin_histogram`).
    """
    core = graph.arrays()
    float_run, data = reference_run(core, held_out, "float")
    fitted = dataclasses.replace(core, fixed=choose_width(core, float_run))
    fixed_run, _ = reference_run(fitted, held_out, "fixed")
    differ = float_run.spikes != fixed_run.spikes
    steps_differ = np.flatnonzero(differ.any(axis=(1, 2)))
    theta = core.per_neuron("theta")
    metrics = {
        "bpc_float64": bits_per_char_from_spikes(core, float_run.spikes, data),
        "bpc_fixed": bits_per_char_from_spikes(core, fixed_run.spikes, data),
        "raster_mismatch": float(differ.mean()),
        "first_mismatch_step": int(steps_differ[0]) if steps_differ.size else None,
        "membrane_abs_max": float(np.abs(float_run.membranes).max()),
        "membrane_abs_mean": [float(np.abs(float_run.membranes[..., sl]).mean()) for sl in core.offsets().values()],
        "firing_rates": [float(float_run.spikes[..., sl].mean()) for sl in core.offsets().values()],
        "near_threshold": {f"{d:g}": near_threshold(float_run.membranes, theta, d) for d in NEAR_THRESHOLD},
        "margin_histogram": margin_histogram(float_run.membranes, theta),
        "fixed": dataclasses.asdict(fitted.fixed),
    }
    log(f"held-out: float64 reference {metrics['bpc_float64']:.4f} bits/char, fixed-point {metrics['bpc_fixed']:.4f} "
        f"(Wv={fitted.fixed.Wv} Fv={fitted.fixed.Fv} Fb={fitted.fixed.Fb}); rasters differ at "
        f"{metrics['raster_mismatch']:.2%} of events, first at step {metrics['first_mismatch_step']}; |v| <= "
        f"{metrics['membrane_abs_max']:.2f}; within 1e-3 theta of threshold: {metrics['near_threshold']['0.001']:.2e}")
    return Graph.from_arrays(fitted), metrics
