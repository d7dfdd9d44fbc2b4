"""The SAPU-style multi-timescale spiking language model (PyTorch, trainable).

token -> embedding (E) -> input projection (G·n currents, its bias is the neuron
bias b) -> G LIF groups sharing one ternary recurrent matrix T (n×n, W = α·T;
no cross-group synapses) -> readout from the spikes -> logits. Optional membrane saturation bounds per
group (``v = clamp(v, v_min, v_max)`` after the update, before the spike; ``torch.clamp``, so the gradient
is zero where a bound binds) are exported as the core's ``v_min`` / ``v_max``.

The spiking step is the contract's (``docs/contract.md``), in float32
for training; :meth:`SpikingLM.to_graph` hands the trained numbers to the float64
and fixed-point references.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from ..errors import RcsnnError
from ..ir.arrays import Core, FixedFormat, NeuronGroup, SynapseBlock, TokenFrontend
from ..ir.graph import Graph

__all__ = ["ArctanSpike", "TernaryRecurrent", "SpikingLM"]


class ArctanSpike(torch.autograd.Function):
    """Heaviside ``[u >= 0]`` forward; arctan surrogate ``(k/2) / (1 + (π k u / 2)^2)`` backward."""

    slope = 2.0

    @staticmethod
    def forward(ctx, u):
        ctx.save_for_backward(u)
        return (u >= 0).to(u.dtype)

    @staticmethod
    def backward(ctx, grad):
        (u,) = ctx.saved_tensors
        k = ArctanSpike.slope
        return grad * (k / 2) / (1 + (math.pi * k * u / 2) ** 2)


class TernaryRecurrent(nn.Module):
    """Latent float recurrent weights with a pruning mask and a ternary mode.

    float mode: ``W = latent * mask``; ternary mode: ``W = α · sign(latent) · mask``
    with ``α = mean |latent|`` over the surviving synapses, and a straight-through
    gradient to ``latent``.
    """

    def __init__(self, n: int, init_scale: float):
        super().__init__()
        self.latent = nn.Parameter(torch.randn(n, n) * init_scale / math.sqrt(n))
        self.register_buffer("mask", torch.ones(n, n, dtype=torch.bool))
        self.ternary = False

    def alpha(self) -> torch.Tensor:
        return self.latent.detach().abs()[self.mask].mean()

    def weight(self) -> torch.Tensor:
        w = self.latent * self.mask
        if not self.ternary:
            return w
        t = self.alpha() * torch.sign(self.latent.detach()) * self.mask
        return w + (t - w).detach()

    def prune_to(self, sparsity: float) -> None:
        """Keep the largest ``1 - sparsity`` fraction of |latent| (over all entries)."""
        magnitude = self.latent.detach().abs().flatten()
        keep = int(round(magnitude.numel() * (1 - sparsity)))
        if keep <= 0:
            self.mask.zero_()
            return
        cut = torch.topk(magnitude, keep).values[-1]
        self.mask.copy_(self.latent.detach().abs() >= cut)

    def sparsity(self) -> float:
        return 1.0 - self.mask.float().mean().item()

    def ternary_matrix(self) -> np.ndarray:
        return (torch.sign(self.latent.detach()) * self.mask).to(torch.int8).numpy()


class SpikingLM(nn.Module):
    """Character LM around a multi-timescale ternary spiking core.

    Args:
        vocab: the characters, index = token.
        group_size: neurons per group (n).
        taus: membrane time constant of each group in steps; ``β = exp(-1/τ)``.
        embed: embedding width E.
        theta: threshold of every group.
        reset: ``"zero"`` or ``"subtract"``.
        bounds: ``(v_min, v_max)``, each one float per group (membrane units), or None: unbounded.
    """

    def __init__(self, vocab: str, group_size: int = 512, taus=(1.0, 4.0, 16.0), embed: int = 64,
                 theta: float = 1.0, reset: str = "zero", bounds: tuple | None = None):
        super().__init__()
        self.vocab = vocab
        self.group_size = group_size
        self.taus = tuple(float(t) for t in taus)
        self.theta = float(theta)
        self.reset = reset
        groups = len(self.taus)
        self.embedding = nn.Embedding(len(vocab), embed)
        self.input = nn.Linear(embed, groups * group_size)
        self.recurrent = TernaryRecurrent(group_size, init_scale=1.0)
        self.readout = nn.Linear(groups * group_size, len(vocab))
        beta = torch.tensor([math.exp(-1.0 / t) for t in self.taus], dtype=torch.float64)
        self.register_buffer("beta", beta.float().view(1, groups, 1))
        self.bounds: tuple[tuple[float, ...], tuple[float, ...]] | None = None
        if bounds is not None:
            self.set_bounds(*bounds)

    def set_bounds(self, v_min, v_max) -> None:
        """Saturation bounds per group (sequences of G floats, membrane units), in the forward pass and the export."""
        self.bounds = tuple(float(x) for x in v_min), tuple(float(x) for x in v_max)
        if any(len(b) != self.groups for b in self.bounds):
            raise RcsnnError(f"bounds: {self.groups} values per bound expected, one per group")
        for name, values in zip(("v_lo", "v_hi"), self.bounds):
            self.register_buffer(name, torch.tensor(values, dtype=torch.float32).view(1, self.groups, 1),
                                 persistent=False)

    @property
    def groups(self) -> int:
        return len(self.taus)

    def initial_state(self, batch: int) -> tuple[torch.Tensor, torch.Tensor]:
        z = torch.zeros(batch, self.groups, self.group_size)
        return z, z.clone()

    def update(self, v: torch.Tensor, fired: torch.Tensor, current: torch.Tensor, beta: torch.Tensor) -> torch.Tensor:
        """One step of the membranes ``v`` (the contract's): leak by ``beta``, reset where ``fired`` (the last
        step's spikes; zero or subtract θ), add ``current``, clamp to the bounds if any."""
        kept = beta * v * (1 - fired) if self.reset == "zero" else beta * v - self.theta * fired
        v = kept + current
        return v if self.bounds is None else torch.clamp(v, self.v_lo, self.v_hi)

    def forward(self, tokens: torch.Tensor, state=None):
        """Run ``tokens (B, L)``; return logits ``(B, L, V)``, the final ``(v, s)`` and
        the spikes ``(B, L, G·n)`` and membranes ``(B, L, G, n)``."""
        batch, length = tokens.shape
        v, s = state if state is not None else self.initial_state(batch)
        x = self.input(self.embedding(tokens)).view(batch, length, self.groups, self.group_size)
        w_t = self.recurrent.weight().t()
        spikes, membranes = [], []
        for t in range(length):
            v = self.update(v, s.detach(), x[:, t] + s @ w_t, self.beta)
            s = ArctanSpike.apply(v - self.theta)
            spikes.append(s)
            membranes.append(v)
        spikes = torch.stack(spikes, 1).reshape(batch, length, -1)
        return self.readout(spikes), (v, s), spikes, torch.stack(membranes, 1)

    def to_graph(self, fixed: FixedFormat, dt: float = 1e-3) -> Graph:
        """The trained core as the IR (requires ternary mode), float64."""
        f64 = lambda p: p.detach().double().numpy().copy()  # noqa: E731
        names = [f"g{k}" for k in range(self.groups)]
        beta = [math.exp(-1.0 / t) for t in self.taus]
        low, high = self.bounds or ((-math.inf,) * self.groups, (math.inf,) * self.groups)
        groups = tuple(NeuronGroup(nm, self.group_size, b, self.theta, self.reset, v_min=lo, v_max=hi)
                       for nm, b, lo, hi in zip(names, beta, low, high))
        alpha = float(self.recurrent.alpha().double())
        synapses = tuple(SynapseBlock(nm, nm, "T", alpha) for nm in names)
        return Graph.from_arrays(Core(
            groups=groups,
            matrices={"T": self.recurrent.ternary_matrix()},
            synapses=synapses,
            bias=f64(self.input.bias),
            input_weight=f64(self.input.weight),
            dt=dt,
            fixed=fixed,
            readout_weight=f64(self.readout.weight),
            readout_bias=f64(self.readout.bias),
            frontend=TokenFrontend(self.vocab, f64(self.embedding.weight)),
        ).validate())
