"""snnTorch interop: an ``snntorch.RLeaky`` layer (module or state_dict) as a core.

snnTorch's RLeaky (checked against snntorch 1.0.0, ``_neurons/rleaky.py`` and
``neurons.py``), per step with ``reset_mechanism="subtract"`` and ``reset_delay=True``::

    reset = mem[t-1] - threshold > 0                       # = spk[t-1] for binary spikes
    mem[t] = clamp(beta, 0, 1) * mem[t-1] + x[t] + recurrent(spk[t-1]) - reset * threshold
    spk[t] = mem[t] - threshold > 0

with ``recurrent(s) = W s + b`` (``all_to_all=True``: an ``nn.Linear``) or ``V * s``
(``all_to_all=False``). That is the contract's subtract reset with input weights = identity
(``x`` is the layer's input current), ``W`` (stored ``alpha * T`` when ternary, else dense) and neuron
bias ``b``. Differences:

* snnTorch fires on ``>``, the contract on ``>=`` (only exact ties differ);
* snnTorch clamps beta to [0, 1]; the contract needs ``0 < beta < 1`` (else refused);
* per-neuron beta or threshold splits the layer into groups of equal (beta, threshold);
* every snnTorch surrogate's forward is ``(v - threshold > 0)``; a custom ``spike_grad``
  must be too (it cannot be checked);
* ``reset_mechanism="zero"`` computes ``(beta*mem + x + rec) * (1 - reset)``: it drops the
  step's input too, the contract's ``zero_drop_input`` reset (a Leaky's zero reset,
  ``beta*mem*(1 - reset) + x``, is the contract's ``zero``);
* refused: ``"none"``, ``reset_delay=False`` (immediate reset), ``inhibition``, ``state_quant``,
  graded spikes (``graded_spikes_factor != 1``) and convolutional recurrence.

A state_dict carries beta, threshold, the reset mechanism, the graded-spike factor and the
recurrent weights, but not ``reset_delay``, ``inhibition`` or ``state_quant``: for a
state_dict, snnTorch's defaults (True, False, False) are assumed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..errors import RcsnnError
from ..ir.graph import Graph
from .nir import Population, Projection, assemble

__all__ = ["load_state_dict_file", "graph_from_rleaky"]

_RESETS = {0: "subtract", 1: "zero_drop_input", 2: "none"}  # reset_mechanism_val -> the contract's reset


def load_state_dict_file(path: str | Path) -> dict[str, torch.Tensor]:
    """Tensors of a ``.safetensors`` file, or of a ``torch.save``-d state_dict loaded with
    ``weights_only=True`` (never full unpickling); errors name the file and key."""
    path = Path(path)
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # safetensors, pickle and OS errors: the user needs one line
        raise RcsnnError(f"{path}: cannot load a state_dict ({type(exc).__name__}: {exc})") from exc
    if not isinstance(state, dict):
        raise RcsnnError(f"{path}: holds a {type(state).__name__}, not a state_dict (save module.state_dict())")
    for key, value in state.items():
        if not isinstance(value, torch.Tensor):
            raise RcsnnError(f"{path}: key {key!r} is a {type(value).__name__}, not a tensor")
    return state


def graph_from_rleaky(
    module_or_state_dict: torch.nn.Module | dict,
    *,
    beta: float | np.ndarray | None = None,
    threshold: float | np.ndarray | None = None,
    reset: str | None = None,
    dt: float = 1e-3,
    where: str = "RLeaky",
) -> Graph:
    """The IR of one RLeaky layer: input weights = identity, ``W`` the recurrent weights, bias = recurrent bias.

    Args:
        module_or_state_dict: an ``snntorch.RLeaky`` or its state_dict (keys may carry one
            prefix such as ``"1."`` from an ``nn.Sequential``).
        beta, threshold: used when the state_dict lacks them; when both are given they must
            agree at the stored precision.
        reset: ``"subtract"`` or ``"zero_drop_input"`` (an RLeaky's ``"zero"``, see the module docstring);
            default: the layer's ``reset_mechanism_val`` (subtract when the state_dict lacks it), which
            must agree when both are given.
        dt: seconds per step recorded in the core (snnTorch has no time step).
        where: label for error messages (the file name).
    """
    if reset not in (None, "subtract", "zero_drop_input"):
        raise RcsnnError(f"{where}: reset={reset!r}: an RLeaky resets by subtract or (reset_mechanism='zero') "
                         "zero_drop_input")
    if isinstance(module_or_state_dict, torch.nn.Module):
        _check_module(module_or_state_dict, where)
        state = module_or_state_dict.state_dict()
    else:
        state = dict(module_or_state_dict)
    prefix = _prefix(state, where)

    def value(key: str, given=None, default=None) -> np.ndarray:
        stored = state.get(prefix + key)
        if stored is None:
            if given is None and default is None:
                raise RcsnnError(f"{where}: key {prefix + key!r} is missing (or give {key}=...)")
            return np.asarray(given if given is not None else default, dtype=np.float64)
        a = stored.detach().cpu().to(torch.float64).numpy()
        if given is not None:
            here = torch.as_tensor(given, dtype=stored.dtype).double().numpy().reshape(-1)  # at the stored precision
            if here.size not in (1, a.size) or (here != a.reshape(-1)).any():
                raise RcsnnError(f"{where}: key {prefix + key!r} = {a.tolist()} differs from the given {key}={given}")
        if not np.isfinite(a).all():
            raise RcsnnError(f"{where}: key {prefix + key!r} contains NaN or inf")
        return a

    mode = int(value("reset_mechanism_val", default=1 if reset == "zero_drop_input" else 0))
    reset = reset or _RESETS.get(mode)
    if _RESETS.get(mode) != reset or reset == "none":
        raise RcsnnError(f"{where}: key {prefix + 'reset_mechanism_val'!r} = {mode} ({_RESETS.get(mode, '?')}) "
                         f"differs from reset={reset!r} (0: subtract, 1: zero_drop_input; 'none' does not map)")
    graded = value("graded_spikes_factor", default=1.0)
    if (graded != 1).any():
        raise RcsnnError(f"{where}: key {prefix + 'graded_spikes_factor'!r} = {graded}: graded spikes do not map "
                         "(spikes are 0/1)")

    if prefix + "recurrent.weight" in state:
        key = prefix + "recurrent.weight"
        weight = value("recurrent.weight")
        if weight.ndim != 2 or weight.shape[0] != weight.shape[1]:
            raise RcsnnError(f"{where}: key {key!r}: shape {weight.shape}; only a square Linear recurrence maps "
                             "(not conv2d)")
        n = weight.shape[0]
        bias = value("recurrent.bias", default=np.zeros(n))
    else:
        key = prefix + "recurrent.V"
        v = value("recurrent.V")
        n = max(np.size(v), np.size(value("beta", beta)), np.size(value("threshold", threshold)))
        if n == 1 and np.ndim(v) == 0:
            raise RcsnnError(f"{where}: key {key!r} is a scalar and beta/threshold are too: the layer size is unknown")
        weight, bias = np.diag(np.broadcast_to(v.reshape(-1), (n,))), np.zeros(n)
    b = _per_neuron(value("beta", beta), n, f"{where}: key {prefix + 'beta'!r}")
    theta = _per_neuron(value("threshold", threshold), n, f"{where}: key {prefix + 'threshold'!r}")
    if not ((b > 0) & (b < 1)).all():
        raise RcsnnError(f"{where}: key {prefix + 'beta'!r}: {b.min():.6g}..{b.max():.6g} outside (0, 1) "
                         "(snnTorch clamps beta to [0, 1]; 0 and 1 are not leaky neurons)")
    if bias.shape != (n,):
        raise RcsnnError(f"{where}: key {prefix + 'recurrent.bias'!r}: shape {bias.shape}, expected ({n},)")
    pop = Population("rleaky", b, theta, bias, np.eye(n))
    return assemble([pop], [Projection("rleaky", "rleaky", weight, f"{where}: key {key!r}")],
                    dt=dt, reset=reset, where=where)


def _check_module(module: torch.nn.Module, where: str) -> None:
    """Refuse modules whose forward pass is not the one in the module docstring."""
    import snntorch

    if not isinstance(module, snntorch.RLeaky):
        raise RcsnnError(f"{where}: a {type(module).__name__}, not an snntorch.RLeaky (pass the layer itself, e.g. net[1])")
    for found, problem in (
        (not module.reset_delay, "reset_delay=False (reset in the same step)"),
        (bool(module.inhibition), "inhibition"),
        (bool(module.state_quant), "state_quant"),
    ):
        if found:
            raise RcsnnError(f"{where}: {problem} does not map to the core")


def _prefix(state: dict, where: str) -> str:
    """The one key prefix under which the state_dict holds an RLeaky's recurrence."""
    prefixes = sorted({k[: -len(s)] for k in state for s in ("recurrent.weight", "recurrent.V") if k.endswith(s)})
    if len(prefixes) != 1:
        found = (f"several RLeaky layers {prefixes}; pass one layer" if prefixes
                 else "no key 'recurrent.weight' or 'recurrent.V'")
        raise RcsnnError(f"{where}: not one RLeaky state_dict: {found}")
    return prefixes[0]


def _per_neuron(a: np.ndarray, n: int, where: str) -> np.ndarray:
    """A scalar or ``(n,)`` parameter as ``(n,)`` float64."""
    if a.size not in (1, n):
        raise RcsnnError(f"{where}: {a.size} values for {n} neurons")
    return np.broadcast_to(a.reshape(-1), (n,)).astype(np.float64)
