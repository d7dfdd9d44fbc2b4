"""Baselines for the spiking LM: add-k character n-grams and a GRU of equal size.

Both are scored like :class:`~rcsnn.model.lm.SpikingLM`: held-out bits per
character on the last 10 % of the corpus (:class:`~rcsnn.model.corpus.Corpus`).
"""

from __future__ import annotations

import math
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .corpus import Corpus, StreamBatches
from .train import LOG2E, torch_bits_per_char

__all__ = ["ngram_bits_per_char", "best_ngram", "count_parameters", "spiking_parameter_count", "GRULanguageModel",
           "gru_parameter_count", "gru_hidden_for_params", "train_gru"]


def _ngram_counts(train: np.ndarray, held_out: np.ndarray, order: int, vocab_size: int) -> tuple[np.ndarray, np.ndarray]:
    """``count(ctx, c)`` and ``count(ctx)`` in ``train`` for every held-out character ``c``.

    A window of ``order`` tokens is one integer ``Σ_j tokens[j]·V^(order-1-j)``
    (exact in int64 for ``V^order < 2^63``); its context is that integer ``// V``.
    The first held-out characters take their context from the end of ``train``.
    """
    if vocab_size**order >= 2**63:
        raise ValueError(f"n-gram: {vocab_size}^{order} windows do not fit in int64")
    powers = vocab_size ** np.arange(order - 1, -1, -1, dtype=np.int64)

    def windows(tokens: np.ndarray) -> np.ndarray:
        return np.lib.stride_tricks.sliding_window_view(tokens.astype(np.int64), order) @ powers

    train_keys = windows(train)
    query = windows(np.concatenate([train[len(train) - (order - 1):], held_out]))

    def lookup(keys: np.ndarray, wanted: np.ndarray) -> np.ndarray:
        unique, counts = np.unique(keys, return_counts=True)
        at = np.minimum(np.searchsorted(unique, wanted), len(unique) - 1)
        return np.where(unique[at] == wanted, counts[at], 0)

    return lookup(train_keys, query), lookup(train_keys // vocab_size, query // vocab_size)


def _add_k_bits(joint: np.ndarray, context: np.ndarray, k: float, vocab_size: int) -> float:
    """Mean of ``-log2 P(c|ctx)`` with ``P = (count(ctx,c) + k) / (count(ctx) + k·V)``."""
    return float(np.mean(np.log2(context + k * vocab_size) - np.log2(joint + k)))


def ngram_bits_per_char(train_tokens: np.ndarray, held_out_tokens: np.ndarray, order: int, k: float,
                        vocab_size: int) -> float:
    """Held-out bits/char of an add-k smoothed character n-gram.

    ``P(c | ctx) = (count(ctx, c) + k) / (count(ctx) + k·V)``, ctx = the previous
    ``order - 1`` characters (``order = 1``: unigram). Every held-out character is
    scored: the first ones take their context from the end of the training text.
    """
    return _add_k_bits(*_ngram_counts(train_tokens, held_out_tokens, order, vocab_size), k, vocab_size)


def best_ngram(train: np.ndarray, held_out: np.ndarray, vocab_size: int, orders=range(1, 7),
               ks=(1.0, 0.3, 0.1, 0.03, 0.01, 0.003)) -> dict:
    """The best add-k n-gram over a grid of orders and k.

    Returns ``{"order", "k", "bpc", "table": [{"order", "k", "bpc"}, ...]}``.
    Order and k are chosen on the held-out text itself, so the reported figure
    is optimistic for the n-gram: a fair (if anything generous) floor to beat.
    """
    table = []
    for order in orders:
        joint, context = _ngram_counts(train, held_out, order, vocab_size)
        table += [{"order": order, "k": k, "bpc": _add_k_bits(joint, context, k, vocab_size)} for k in ks]
    return {**min(table, key=lambda row: row["bpc"]), "table": table}


def count_parameters(module: nn.Module) -> int:
    """Number of trainable scalars (``requires_grad`` parameters; buffers excluded)."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def spiking_parameter_count(vocab_size: int, groups: int, group_size: int, embed: int) -> int:
    """Trainable scalars of a :class:`~rcsnn.model.lm.SpikingLM`.

    embedding ``V·E`` + input ``G·n·E + G·n`` + latent recurrent ``n·n`` (shared by
    the groups) + readout ``V·G·n + V``.
    """
    neurons = groups * group_size
    return vocab_size * embed + neurons * (embed + 1) + group_size**2 + vocab_size * (neurons + 1)


class GRULanguageModel(nn.Module):
    """Character LM: embedding (E) → one GRU layer (H) → linear readout → logits."""

    def __init__(self, vocab_size: int, embed: int, hidden: int):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embed)
        self.gru = nn.GRU(embed, hidden, batch_first=True)
        self.readout = nn.Linear(hidden, vocab_size)

    def forward(self, tokens: torch.Tensor, state: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``tokens (B, L)`` → logits ``(B, L, V)`` and the final hidden state ``(1, B, H)``."""
        out, state = self.gru(self.embedding(tokens), state)
        return self.readout(out), state


def gru_parameter_count(vocab_size: int, embed: int, hidden: int) -> int:
    """Trainable scalars of :class:`GRULanguageModel`: ``V·E + 3H·(E + H + 2) + V·H + V``."""
    return vocab_size * embed + 3 * hidden * (embed + hidden + 2) + vocab_size * (hidden + 1)


def gru_hidden_for_params(target_params: int, vocab_size: int, embed: int) -> int:
    """The hidden size H ≥ 1 whose :class:`GRULanguageModel` size is closest to ``target_params``.

    Solves ``3H² + (3E + 6 + V)·H + V·(E + 1) = target`` and rounds to the nearer integer count.
    """
    a, b, c = 3, 3 * embed + 6 + vocab_size, vocab_size * (embed + 1) - target_params
    root = (-b + math.sqrt(max(b * b - 4 * a * c, 0))) / (2 * a)
    candidates = {max(1, math.floor(root)), max(1, math.ceil(root))}
    return min(sorted(candidates), key=lambda h: abs(gru_parameter_count(vocab_size, embed, h) - target_params))


def train_gru(corpus: Corpus, hidden: int, embed: int, seconds: float, batch: int = 32, length: int = 128,
              lr: float = 3e-3, seed: int = 0, log=print, log_every: float = 10.0,
              eval_every: float = 120.0) -> tuple[GRULanguageModel, dict]:
    """Train a :class:`GRULanguageModel` for a wall-clock budget of ``seconds``.

    Same batching as the spiking model (:class:`StreamBatches`, truncated BPTT with
    the state carried across segments), Adam with a cosine learning rate over the
    *time* budget (``lr·(1 + cos(π·elapsed/seconds))/2``), gradient clipping at 1.0.
    ``log`` gets a progress line every ``log_every`` seconds and at the end.

    A GRU of this size memorises the training text long before the budget ends, so
    it is early-stopped: every ``eval_every`` training seconds (and at the end) the
    held-out bits/char is measured, off the clock, and the best model is returned —
    selection on the held-out split, optimistic for the GRU.

    Returns the model and ``{"bpc", "steps", "best_step", "final_bpc", "seconds"}``:
    best and final held-out bits/char (float32, 16 parallel chunks), optimizer steps
    done, the step of the best model and training seconds (evaluations excluded).
    """
    torch.manual_seed(seed)
    model = GRULanguageModel(len(corpus.vocab), embed, hidden)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    batches = StreamBatches(corpus.train, batch, length)
    state = None
    step = last_step = 0
    best = (math.inf, 0, None)
    clock = time.perf_counter
    start = last_log = clock()
    paused = 0.0
    next_eval = eval_every
    while (elapsed := clock() - start - paused) < seconds:
        for group in optimizer.param_groups:
            group["lr"] = lr * 0.5 * (1 + math.cos(math.pi * elapsed / seconds))
        inputs, targets, fresh = batches(step)
        logits, state = model(torch.from_numpy(inputs), None if fresh else state)
        state = state.detach()
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), torch.from_numpy(targets).reshape(-1))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        step += 1
        now = clock()
        if now - last_log >= log_every:
            log(f"gru step {step:5d} loss {loss.item():.3f} bpc {loss.item() * LOG2E:.3f} "
                f"{(step - last_step) / (now - last_log):.2f} steps/s {now - start - paused:.0f}/{seconds:.0f}s")
            last_log, last_step = now, step
        if now - start - paused >= next_eval:
            best, _ = _keep_best(model, corpus, step, best, log)
            paused += clock() - now
            next_eval += eval_every
    trained = clock() - start - paused
    (bpc, best_step, weights), final_bpc = _keep_best(model, corpus, step, best, log)
    model.load_state_dict(weights)
    log(f"gru (H={hidden}, {count_parameters(model)} parameters): held-out {bpc:.4f} bits/char at step {best_step} "
        f"(final {final_bpc:.4f} after {step} steps)")
    return model, {"bpc": bpc, "steps": step, "best_step": best_step, "final_bpc": final_bpc, "seconds": round(trained, 1)}


def _keep_best(model: nn.Module, corpus: Corpus, step: int, best: tuple, log) -> tuple[tuple, float]:
    """The better of ``best`` and the model now as ``(bpc, step, state_dict)``, and the held-out bpc now."""
    bpc = torch_bits_per_char(model, corpus.held_out)
    log(f"gru step {step:5d}: held-out {bpc:.4f} bits/char")
    if bpc < best[0]:
        best = (bpc, step, {k: v.clone() for k, v in model.state_dict().items()})
    return best, bpc
