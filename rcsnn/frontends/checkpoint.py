"""Checkpoints: one safetensors file, tensors plus a versioned JSON config.

Nothing is unpickled: the file is parsed by ``safetensors`` (a JSON header and raw
little-endian buffers), the config is JSON in the header's metadata under the key
``"rcsnn"``. Layout (version 1)::

    config (JSON): format="rcsnn-core", version=1, dt, fixed{Wv,Fv,Fb},
                   groups[{name,size,reset}], synapses[{pre,post,matrix,delay}], vocab,
                   training{...}, metrics{...}
    groups.beta         (G,)        float64   leak factor per step
    groups.theta        (G,)        float64   threshold
    synapses.alpha      (S,)        float64   scale of each synapse block
    matrix.<name>       (post, pre) int8      ternary T (a shared T is stored once)
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
    config = {
        "format": FORMAT,
        "version": VERSION,
        "dt": core.dt,
        "fixed": {"Wv": core.fixed.Wv, "Fv": core.fixed.Fv, "Fb": core.fixed.Fb},
        "groups": [{"name": g.name, "size": g.size, "reset": g.reset} for g in core.groups],
        "synapses": [{"pre": s.pre, "post": s.post, "matrix": s.matrix, "delay": s.delay} for s in core.synapses],
        "vocab": core.frontend.vocab if core.frontend else None,
        **(extra or {}),
    }
    tensors = {
        "groups.beta": np.array([g.beta for g in core.groups], dtype=np.float64),
        "groups.theta": np.array([g.theta for g in core.groups], dtype=np.float64),
        "synapses.alpha": np.array([s.alpha for s in core.synapses], dtype=np.float64),
        "neurons.bias": core.bias,
        "input.weight": core.input_weight,
        **{f"matrix.{k}": m.astype(np.int8) for k, m in core.matrices.items()},
    }
    if core.readout_weight is not None:
        tensors["readout.weight"] = core.readout_weight
        if core.readout_bias is not None:
            tensors["readout.bias"] = core.readout_bias
    if core.frontend is not None:
        tensors["frontend.embedding"] = core.frontend.embedding
    tensors = {k: np.ascontiguousarray(v) for k, v in tensors.items()}
    with atomic_file(path) as tmp:
        save_file(tensors, str(tmp), metadata={"rcsnn": json.dumps(config, sort_keys=True)})


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
            if a.dtype != np.int8:
                raise RcsnnError(f"{where}: key {key!r}: dtype {a.dtype}, expected int8")
            return a
        if not np.issubdtype(a.dtype, np.floating):
            raise RcsnnError(f"{where}: key {key!r}: dtype {a.dtype}, expected floating point")
        return a.astype(np.float64)

    cfg = f"{where}: config"
    groups_cfg = field(config, "groups", "list", cfg)
    synapses_cfg = field(config, "synapses", "list", cfg)
    fixed_cfg = field(config, "fixed", "dict", cfg)
    fixed = FixedFormat(**{k: field(fixed_cfg, k, "int", cfg, label=f"fixed.{k}") for k in ("Wv", "Fv", "Fb")})
    dt = field(config, "dt", "number", cfg)
    vocab = field(config, "vocab", "str", cfg, default=None)
    for key in ("training", "metrics"):
        field(config, key, "dict", cfg, default=None)
    beta = tensor("groups.beta", np.float64, 1)
    theta = tensor("groups.theta", np.float64, 1)
    alpha = tensor("synapses.alpha", np.float64, 1)
    for key, a, want in (("groups.beta", beta, len(groups_cfg)), ("groups.theta", theta, len(groups_cfg)),
                         ("synapses.alpha", alpha, len(synapses_cfg))):
        if a.shape != (want,):
            raise RcsnnError(f"{where}: key {key!r}: shape {a.shape}, expected ({want},) from the config")
    groups = tuple(NeuronGroup(field(g, "name", "str", f"{cfg}: groups[{k}]"),
                               field(g, "size", "int", f"{cfg}: groups[{k}]", minimum=1), float(b), float(t),
                               field(g, "reset", "str", f"{cfg}: groups[{k}]"))
                   for k, (g, b, t) in enumerate(zip(groups_cfg, beta, theta)))
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
