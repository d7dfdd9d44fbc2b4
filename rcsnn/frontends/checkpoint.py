"""Checkpoints: one safetensors file, tensors plus a versioned JSON config.

Nothing is unpickled: the file is parsed by ``safetensors`` (a JSON header and raw
little-endian buffers), the config is JSON in the header's metadata under the key
``"rcsnn"``. Layout (version 1)::

    config (JSON): format="rcsnn-core", version=1, dt, fixed{Wv,Fv,Fb[,Ww]},
                   groups[{name,size,reset[,current_delay][,skew][,max_spikes]}], synapses[{pre,post,matrix,delay}],
                   vocab, training{...}, metrics{...}
    groups.beta         (G,)        float64   leak factor per step         } one of the two: per group,
    neurons.beta        (N,)        float64   leak factor per neuron       } or per neuron
    groups.theta        (G,)        float64   threshold                    } likewise
    neurons.theta       (N,)        float64   threshold per neuron         }
    neurons.beta_syn    (N,)        float64   synaptic leak, optional (absent: 0, no CubaLIF group)
    groups.v_min        (G,)        float64   membrane saturation bounds, optional (absent: -inf / +inf,
    groups.v_max        (G,)        float64   unbounded; written only when some bound is finite),
    neurons.v_min/v_max (N,)        float64   per group or per neuron like theta
    synapses.alpha      (S,)        float64   scale of each synapse block
    matrix.<name>       (post, pre) int8      ternary T (a shared T is stored once), or
                                    float64   dense M (W = alpha * M)
    neurons.bias        (N,)        float64
    input.weight        (N, E)      float64
    readout.weight      (V, N)      float64   optional
    readout.bias        (V,)        float64   optional
    frontend.embedding  (V, E)      float64   optional, with config "vocab"
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..errors import RcsnnError
from ..files import atomic_file, field
from ..ir.arrays import Core, FixedFormat, NeuronGroup, SynapseBlock, TokenFrontend
from ..ir.graph import Graph

__all__ = ["FORMAT", "VERSION", "SUFFIX", "save_checkpoint", "read_config", "load_checkpoint"]

FORMAT = "rcsnn-core"
VERSION = 1
SUFFIX = ".rcsnn"


def save_checkpoint(graph: Graph, path: str | Path, extra: dict | None = None) -> None:
    """Write the IR ``graph`` (and JSON-able ``extra`` such as training and metrics) to ``path``."""
    from safetensors.numpy import save_file

    core = graph.arrays()
    fixed = {"Wv": core.fixed.Wv, "Fv": core.fixed.Fv, "Fb": core.fixed.Fb}
    if core.fixed.Ww != FixedFormat.Ww:
        fixed["Ww"] = core.fixed.Ww
    config = {
        "format": FORMAT,
        "version": VERSION,
        "dt": core.dt,
        "fixed": fixed,
        "groups": [{"name": g.name, "size": g.size, "reset": g.reset,
                    **{k: getattr(g, k) for k in ("current_delay", "skew") if getattr(g, k)},
                    **({"max_spikes": g.max_spikes} if g.max_spikes != 1 else {})} for g in core.groups],
        "synapses": [{"pre": s.pre, "post": s.post, "matrix": s.matrix, "delay": s.delay} for s in core.synapses],
        "vocab": core.frontend.vocab if core.frontend else None,
        **(extra or {}),
    }
    tensors = {
        **{_parameter_key(core, k): _parameter(core, k) for k in ("beta", "theta")},
        "synapses.alpha": np.array([s.alpha for s in core.synapses], dtype=np.float64),
        "neurons.bias": core.bias,
        "input.weight": core.input_weight,
        **{f"matrix.{k}": m if core.is_dense(k) else m.astype(np.int8) for k, m in core.matrices.items()},
    }
    if any(g.synaptic for g in core.groups):
        tensors["neurons.beta_syn"] = core.per_neuron("beta_syn")
    for key in ("v_min", "v_max"):
        if np.isfinite(core.per_neuron(key)).any():
            tensors[_parameter_key(core, key)] = _parameter(core, key)
    if core.readout_weight is not None:
        tensors["readout.weight"] = core.readout_weight
        if core.readout_bias is not None:
            tensors["readout.bias"] = core.readout_bias
    if core.frontend is not None:
        tensors["frontend.embedding"] = core.frontend.embedding
    tensors = {k: np.ascontiguousarray(v) for k, v in tensors.items()}
    with atomic_file(path) as tmp:
        save_file(tensors, str(tmp), metadata={"rcsnn": json.dumps(config, sort_keys=True)})


def _parameter_key(core: Core, name: str) -> str:
    """``groups.<name>`` when every group has one value, else ``neurons.<name>``."""
    return f"neurons.{name}" if any(np.ndim(getattr(g, name)) for g in core.groups) else f"groups.{name}"


def _parameter(core: Core, name: str) -> np.ndarray:
    """The tensor of :func:`_parameter_key`: one value per group or per neuron."""
    if _parameter_key(core, name).startswith("neurons."):
        return core.per_neuron(name)
    return np.array([getattr(g, name) for g in core.groups], dtype=np.float64)


#: Optional neuron parameters and their values when absent (``beta_syn`` is stored per neuron only).
_OPTIONAL = {"beta_syn": 0.0, "v_min": -np.inf, "v_max": np.inf}


def _group_parameters(config_groups: list, tensor, where: str) -> list[tuple]:
    """``(beta, theta, beta_syn, v_min, v_max)`` of each group from ``groups.*`` (G,) or ``neurons.*`` (N,) tensors."""
    sizes = [g.get("size") if isinstance(g, dict) else None for g in config_groups]
    if not all(isinstance(n, int) and n >= 1 for n in sizes):
        return [(0.0, 0.0, 0.0, -np.inf, np.inf)] * len(sizes)  # the group's own check names the bad size
    starts = np.cumsum([0, *sizes])
    out = []
    for name in ("beta", "theta", *_OPTIONAL):
        per_group = tensor(f"groups.{name}", np.float64, 1, optional=True) if name != "beta_syn" else None
        per_neuron = tensor(f"neurons.{name}", np.float64, 1, optional=True)
        if (per_group is None) == (per_neuron is None) and (name not in _OPTIONAL or per_group is not None):
            state = "both" if per_group is not None else "neither"
            raise RcsnnError(f"{where}: keys 'groups.{name}' and 'neurons.{name}': {state} present, expected one")
        if per_group is not None:
            if per_group.shape != (len(sizes),):
                raise RcsnnError(f"{where}: key 'groups.{name}': shape {per_group.shape}, expected ({len(sizes)},) "
                                 "from the config")
            out.append([float(b) for b in per_group])
        elif per_neuron is not None:
            if per_neuron.shape != (starts[-1],):
                raise RcsnnError(f"{where}: key 'neurons.{name}': shape {per_neuron.shape}, expected ({starts[-1]},) "
                                 "from the config")
            out.append([_one_or_each(per_neuron[a:b]) for a, b in zip(starts[:-1], starts[1:])])
        else:
            out.append([_OPTIONAL[name]] * len(sizes))
    return list(zip(*out))


def _one_or_each(values: np.ndarray) -> float | np.ndarray:
    """A group's per-neuron values, as one float when they are all equal (the same semantics)."""
    return float(values[0]) if values.size and (values == values[0]).all() else values.copy()


def read_config(path: str | Path) -> dict:
    """The JSON config of a checkpoint (no tensors loaded)."""
    return _open(Path(path))[0]


def load_checkpoint(path: str | Path) -> Graph:
    """Load a checkpoint into a validated IR graph; every problem is one :class:`RcsnnError` line."""
    path = Path(path)
    config, tensors = _open(path)
    where = str(path)

    def tensor(key: str, dtype, ndim: int, optional: bool = False):
        if key not in tensors:
            if optional:
                return None
            raise RcsnnError(f"{where}: key {key!r} is missing")
        a = tensors[key]
        if a.ndim != ndim:
            raise RcsnnError(f"{where}: key {key!r}: shape {a.shape}, expected {ndim}-D")
        if dtype is np.int8:
            if a.dtype not in (np.int8, np.float64):
                raise RcsnnError(f"{where}: key {key!r}: dtype {a.dtype}, expected int8 (ternary) or float64 (dense)")
            return a
        if not np.issubdtype(a.dtype, np.floating):
            raise RcsnnError(f"{where}: key {key!r}: dtype {a.dtype}, expected floating point")
        return a.astype(np.float64)

    cfg = f"{where}: config"
    groups_cfg = field(config, "groups", "list", cfg)
    synapses_cfg = field(config, "synapses", "list", cfg)
    fixed_cfg = field(config, "fixed", "dict", cfg)
    fixed = FixedFormat(**{k: field(fixed_cfg, k, "int", cfg, label=f"fixed.{k}")
                           for k in ("Wv", "Fv", "Fb", "Ww") if k in fixed_cfg or k != "Ww"})
    dt = field(config, "dt", "number", cfg)
    vocab = field(config, "vocab", "str", cfg, default=None)
    for key in ("training", "metrics"):
        field(config, key, "dict", cfg, default=None)
    alpha = tensor("synapses.alpha", np.float64, 1)
    if alpha.shape != (len(synapses_cfg),):
        raise RcsnnError(f"{where}: key 'synapses.alpha': shape {alpha.shape}, expected ({len(synapses_cfg)},) "
                         "from the config")
    groups = tuple(NeuronGroup(field(g, "name", "str", f"{cfg}: groups[{k}]"),
                               field(g, "size", "int", f"{cfg}: groups[{k}]", minimum=1), b, t,
                               field(g, "reset", "str", f"{cfg}: groups[{k}]"), b_syn,
                               field(g, "current_delay", "int", f"{cfg}: groups[{k}]", default=0),
                               field(g, "skew", "int", f"{cfg}: groups[{k}]", default=0),
                               field(g, "max_spikes", "int", f"{cfg}: groups[{k}]", default=1), low, high)
                   for k, (g, (b, t, b_syn, low, high))
                   in enumerate(zip(groups_cfg, _group_parameters(groups_cfg, tensor, where))))
    synapses = tuple(SynapseBlock(*(field(s, key, "str", f"{cfg}: synapses[{k}]") for key in ("pre", "post", "matrix")),
                                  float(a), field(s, "delay", "int", f"{cfg}: synapses[{k}]", default=1))
                     for k, (s, a) in enumerate(zip(synapses_cfg, alpha)))
    matrices = {s.matrix: tensor(f"matrix.{s.matrix}", np.int8, 2) for s in synapses}
    embedding = tensor("frontend.embedding", np.float64, 2, optional=vocab is None)
    core = Core(
        groups=groups,
        matrices=matrices,
        synapses=synapses,
        bias=tensor("neurons.bias", np.float64, 1),
        input_weight=tensor("input.weight", np.float64, 2),
        dt=dt,
        fixed=fixed,
        readout_weight=tensor("readout.weight", np.float64, 2, optional=True),
        readout_bias=tensor("readout.bias", np.float64, 1, optional=True),
        frontend=TokenFrontend(vocab, embedding) if vocab is not None else None,
    )
    return Graph.from_arrays(core, where)


def _open(path: Path) -> tuple[dict, dict[str, np.ndarray]]:
    from safetensors import SafetensorError, safe_open
    from safetensors.numpy import load_file

    where = str(path)
    if not path.is_file():
        raise RcsnnError(f"{where}: no such file")
    if path.stat().st_size == 0:
        raise RcsnnError(f"{where}: empty file, not an rcsnn checkpoint")
    try:
        with safe_open(str(path), framework="numpy") as f:
            metadata = f.metadata() or {}
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__
        raise RcsnnError(f"{where}: not a readable safetensors checkpoint (truncated or wrong file type: {first})") from None
    if "rcsnn" not in metadata:
        raise RcsnnError(f"{where}: safetensors file without an 'rcsnn' config in its metadata")
    try:
        config = json.loads(metadata["rcsnn"])
    except json.JSONDecodeError as exc:
        raise RcsnnError(f"{where}: config is not valid JSON ({exc})") from None
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        found = config.get("format") if isinstance(config, dict) else config
        raise RcsnnError(f"{where}: config format {found!r} is not {FORMAT!r}")
    if config.get("version") != VERSION:
        raise RcsnnError(f"{where}: config version {config.get('version')!r} is not supported "
                         f"(this rcsnn reads version {VERSION})")
    return config, tensors
