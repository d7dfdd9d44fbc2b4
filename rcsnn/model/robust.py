"""Hardware-aware training: penalties and noise that make a trained core buildable as a circuit.

A circuit decides ``s = v >= θ`` with a comparator whose membrane carries component error, so a core is
robust when its membranes stay away from θ at every step boundary and inside the rails. Terms added to
the cross-entropy (membranes ``v`` of shape ``(B, L, G, n)``, spikes ``s``; ``mean`` over all entries):

    margin:   λ_m · mean(relu(1 − |v − θ| / (w θ))²)        w = margin width (θ units); zero beyond w θ
    range:    λ_r · mean(relu(|v| / θ − bound)²)              bound in θ units (the rails)
    rate:     λ_f · mean(s)                                   firing rate (energy, digital cycles)
    mismatch: λ_x · mean(relu(κ |v' − v| − |v − θ|)) / (σ θ)  decisions a built circuit would flip

where ``v'`` is the membrane of a circuit whose parts are drawn at tolerance σ — every input resistor
(``x' = x / (1 + σ ε)`` per neuron), leak resistor (``β' = β^(1 / (1 + σ ε))`` per neuron) and synapse
(``W' = W / (1 + σ ε)`` per synapse), one draw per stream of the batch and optimizer step, as a Monte Carlo
run draws them (:mod:`rcsnn.analog.variation`) — replaying the core's own spikes as the open-loop Monte
Carlo does (recurrent input and reset from the nominal raster). A decision flips when ``|v' − v|`` exceeds
``|v − θ|``; the term is non-zero where it exceeds ``|v − θ| / κ`` (κ ≥ 1, a safety factor), and its
gradient both moves such membranes away from θ and makes them less sensitive to the parts.

and noise matching a Monte Carlo model of the circuit, resampled every optimizer step:

    weights:  W' = W ⊙ (1 + σ_w ε),  ε ~ N(0, 1) per synapse, one draw per step of training (a Monte
              Carlo run draws every resistor once: the draw is fixed along the sequence)
    membrane: I'[t] = I[t] + σ_v θ ε[t],  ε ~ N(0, 1) per neuron, stream and time step (integrator and
              comparator noise, in θ units per step)

The exported core (:meth:`rcsnn.model.lm.SpikingLM.to_graph`) is the noise-free one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import RcsnnError
from ..ir.arrays import Core
from .lm import SpikingLM, TernaryRecurrent

__all__ = ["Robustness", "PARTS", "MAX_MISMATCH_TOLERANCE", "margin_penalty", "range_penalty", "mismatched_membranes",
           "mismatch_penalty", "penalties", "NoisyRecurrent", "add_noise", "model_from_core", "margin_histogram",
           "near_threshold"]


#: The parts a Monte Carlo run draws, by class: input resistors, leak resistors, synapse resistors.
PARTS = ("input", "leak", "synapse")
#: Largest tolerance of the mismatch term: the Monte Carlo's own bound (``rcsnn.analog.variation.MAX_TOLERANCE``,
#: a layer above this one; a test keeps the two equal), beyond which a 5σ draw makes a part's value ≤ 0.
MAX_MISMATCH_TOLERANCE = 0.15


@dataclass(frozen=True)
class Robustness:
    """Weights and widths of the hardware-aware terms; all zero: plain training."""

    margin_penalty: float = 0.0
    margin_width: float = 0.05
    membrane_penalty: float = 0.0
    membrane_bound: float = 8.0
    rate_penalty: float = 0.0
    weight_noise: float = 0.0
    membrane_noise: float = 0.0
    mismatch_penalty: float = 0.0
    mismatch_tolerance: float = 0.01
    mismatch_safety: float = 2.0
    mismatch_parts: tuple[str, ...] = PARTS

    def __post_init__(self):
        if self.mismatch_penalty and not (self.mismatch_safety >= 1
                                          and 0 < self.mismatch_tolerance <= MAX_MISMATCH_TOLERANCE):
            raise RcsnnError(f"mismatch term: safety {self.mismatch_safety:g} must be >= 1 and tolerance "
                             f"{self.mismatch_tolerance:g} in (0, {MAX_MISMATCH_TOLERANCE:g}]")
        _check_parts(self.mismatch_parts)


def _check_parts(parts: tuple[str, ...]) -> None:
    if not parts or set(parts) - set(PARTS):
        raise RcsnnError(f"mismatch: parts {sorted(set(parts) - set(PARTS)) or '(none)'} unknown; the parts are "
                         f"{', '.join(PARTS)}")


def margin_penalty(membranes: torch.Tensor, theta: float, width: float) -> torch.Tensor:
    """``mean(relu(1 − |v − θ| / (width θ))²)``: 1 at threshold, 0 from ``width·θ`` away; its gradient
    pushes every membrane within ``width·θ`` of θ away from it, on the side it is on."""
    distance = (membranes - theta).abs() / (width * theta)
    return F.relu(1 - distance).pow(2).mean()


def range_penalty(membranes: torch.Tensor, theta: float, bound: float) -> torch.Tensor:
    """``mean(relu(|v| / θ − bound)²)``: zero inside ``±bound·θ``, pulls membranes beyond it back."""
    return F.relu(membranes.abs() / theta - bound).pow(2).mean()


def mismatched_membranes(model: SpikingLM, tokens: torch.Tensor, state, spikes: torch.Tensor,
                         tolerance: float, parts: tuple[str, ...] = PARTS) -> torch.Tensor:
    """Membranes ``(B, L, G, n)`` of ``model`` run on ``tokens (B, L)`` from ``state`` with the ``parts`` (all by
    default) drawn at relative tolerance ``tolerance`` (one draw per stream; see the module docstring), replaying
    the nominal run's ``spikes (B, L, G·n)`` as recurrent input and reset (open loop). Its input currents are
    computed again, so with ``membrane_noise`` installed they carry a draw of their own (the circuit's noise)."""
    _check_parts(parts)
    batch, length = tokens.shape
    groups, n = model.groups, model.group_size
    v, s = state

    def gain(part, *shape):  # the conductance of a resistor R·(1 + σε), relative to its nominal value
        return 1 / (1 + tolerance * torch.randn(*shape)) if part in parts else torch.ones(shape)

    x = model.input(model.embedding(tokens)).view(batch, length, groups, n) * gain("input", batch, 1, groups, n)
    beta = model.beta ** gain("leak", batch, groups, n)
    w = model.recurrent.weight() * gain("synapse", batch, n, n)
    fired = torch.cat([s.detach().unsqueeze(1), spikes.detach().view(batch, length, groups, n)[:, :-1]], 1)
    x = x + torch.einsum("blgj,bij->blgi", fired, w)
    membranes = []
    for t in range(length):
        v = model.update(v, fired[:, t], x[:, t], beta)
        membranes.append(v)
    return torch.stack(membranes, 1)


def mismatch_penalty(membranes: torch.Tensor, mismatched: torch.Tensor, theta: float, tolerance: float,
                     safety: float) -> torch.Tensor:
    """``mean(relu(κ |v' − v| − |v − θ|)) / (σ θ)``: the decisions a circuit at tolerance σ would flip (or come
    within a factor κ of flipping), in units of the tolerance."""
    return F.relu(safety * (mismatched - membranes).abs() - (membranes - theta).abs()).mean() / (tolerance * theta)


def penalties(cfg: Robustness, spikes: torch.Tensor, membranes: torch.Tensor, theta: float,
              mismatched=None) -> dict[str, torch.Tensor]:
    """The weighted terms of ``cfg`` that are switched on (weight > 0), by name; ``mismatched()`` gives the
    membranes of a drawn circuit (:func:`mismatched_membranes`), called only when the mismatch term is on."""
    terms = {}
    if cfg.margin_penalty:
        terms["margin"] = cfg.margin_penalty * margin_penalty(membranes, theta, cfg.margin_width)
    if cfg.membrane_penalty:
        terms["range"] = cfg.membrane_penalty * range_penalty(membranes, theta, cfg.membrane_bound)
    if cfg.rate_penalty:
        terms["rate"] = cfg.rate_penalty * spikes.mean()
    if cfg.mismatch_penalty:
        terms["mismatch"] = cfg.mismatch_penalty * mismatch_penalty(
            membranes, mismatched(), theta, cfg.mismatch_tolerance, cfg.mismatch_safety)
    return terms


class NoisyRecurrent(TernaryRecurrent):
    """A :class:`TernaryRecurrent` whose :meth:`weight` carries multiplicative noise ``(1 + σ ε)`` while
    training (:meth:`resample` draws ε); evaluation mode and the exported core are noise-free."""

    def __init__(self, base: TernaryRecurrent, sigma: float):
        nn.Module.__init__(self)
        self.latent, self.ternary, self.sigma = base.latent, base.ternary, sigma
        self.register_buffer("mask", base.mask)
        self.register_buffer("gain", torch.ones_like(base.latent), persistent=False)

    def resample(self) -> None:
        self.gain.copy_(1 + self.sigma * torch.randn_like(self.gain))

    def weight(self) -> torch.Tensor:
        w = super().weight()
        return w * self.gain if self.training else w


def add_noise(model: SpikingLM, cfg: Robustness) -> None:
    """Install ``cfg``'s noise in ``model`` (in place): weight noise on the recurrent matrix, membrane noise
    on the input currents (a forward hook on the input projection, active in training mode only).
    Call ``model.recurrent.resample()`` once per optimizer step when ``cfg.weight_noise`` is set."""
    if cfg.weight_noise:
        model.recurrent = NoisyRecurrent(model.recurrent, cfg.weight_noise)
    if cfg.membrane_noise:
        sigma = cfg.membrane_noise * model.theta

        def noisy(module, inputs, output):
            return output + sigma * torch.randn_like(output) if module.training else output

        model.input.register_forward_hook(noisy)


def model_from_core(core: Core) -> SpikingLM:
    """A trainable :class:`SpikingLM` holding the numbers of a trained language-model core, in ternary mode.

    The latent recurrent weights are ``α·T`` (so ``sign`` and ``α`` reproduce the core) and the mask is
    ``T ≠ 0`` (fine-tuning keeps the sparsity; a synapse can change sign). The core must be one made by
    ``rcsnn train``: groups of equal size and threshold, one shared T with one α, token front end, readout;
    saturation bounds, if any, one value per group (kept: the model clamps its membranes to them).
    """
    if core.frontend is None or core.readout_weight is None:
        raise RcsnnError("finetune: the core has no vocabulary/readout (not a language-model core)")
    offsets = core.offsets()
    theta, beta = core.per_neuron("theta"), core.per_neuron("beta")
    betas = [np.unique(beta[offsets[g.name]]) for g in core.groups]
    if len({g.size for g in core.groups}) != 1 or len(np.unique(theta)) != 1 or len({g.reset for g in core.groups}) != 1 \
            or any(len(b) != 1 or not 0 < b[0] < 1 for b in betas) or len(core.matrices) != 1 \
            or len({s.alpha for s in core.synapses}) != 1 or core.groups[0].reset not in ("zero", "subtract") \
            or np.any(core.per_neuron("beta_syn")) or any(g.skew or g.current_delay for g in core.groups) \
            or [(s.pre, s.post, s.delay) for s in core.synapses] != [(g.name, g.name, 1) for g in core.groups] \
            or any(np.ndim(g.v_min) or np.ndim(g.v_max) for g in core.groups):
        raise RcsnnError("finetune: the core is not an `rcsnn train` core (equal LIF groups with one threshold, zero or "
                         "subtract reset, each group recurrent through one shared T and one alpha, bounds per group)")
    (t,) = core.matrices.values()
    taus = [-1.0 / np.log(b[0]) for b in betas]
    model = SpikingLM(core.frontend.vocab, core.groups[0].size, taus, core.frontend.embedding.shape[1],
                      float(theta[0]), core.groups[0].reset,
                      ([g.v_min for g in core.groups], [g.v_max for g in core.groups]) if core.bounded() else None)
    f32 = lambda a: torch.from_numpy(np.asarray(a, dtype=np.float32))  # noqa: E731
    with torch.no_grad():
        model.embedding.weight.copy_(f32(core.frontend.embedding))
        model.input.weight.copy_(f32(core.input_weight))
        model.input.bias.copy_(f32(core.bias))
        model.readout.weight.copy_(f32(core.readout_weight))
        model.readout.bias.copy_(f32(core.readout_bias))
        model.recurrent.latent.copy_(f32(core.synapses[0].alpha * t))
        model.recurrent.mask.copy_(torch.from_numpy(t != 0))
    model.recurrent.ternary = True
    return model


def near_threshold(membranes: np.ndarray, theta, within: float) -> float:
    """Fraction of membrane values ``(…, N)`` with ``|v − θ| < within·θ`` (``theta`` a number or per neuron)."""
    return float(np.mean(np.abs(np.asarray(membranes) - theta) < within * theta))


def margin_histogram(membranes: np.ndarray, theta, lowest: int = -7) -> dict[str, list]:
    """Counts of ``|v − θ| / θ`` in the bins ``[0, 10^lowest), [10^lowest, 10^(lowest+1)), …, [1, ∞)``:
    ``{"edges": [0, 10^lowest, …, 1], "counts": [...]}`` (``theta`` a number or per neuron)."""
    distance = np.abs(np.asarray(membranes, dtype=np.float64) - theta) / theta
    edges = [0.0] + [10.0**k for k in range(lowest, 1)]
    return {"edges": edges, "counts": [int(c) for c in np.histogram(distance, bins=[*edges, np.inf])[0]]}
