"""Checkpoints: exact round trip, and one clear line for every kind of malformed file."""

import json
import pickle

import numpy as np
import pytest
from conftest import SMALL_CHECKPOINT
from contract_impl import load_tensors
from safetensors.numpy import save_file

from rcsnn.errors import RcsnnError
from rcsnn.frontends.checkpoint import load_checkpoint, save_checkpoint
from rcsnn.ir.graph import Graph
from rcsnn.ir.reference import simulate_float


def _rewrite(tmp_path, edit_tensors=None, edit_config=None):
    config, tensors = load_tensors(SMALL_CHECKPOINT)
    if edit_tensors:
        edit_tensors(tensors)
    if edit_config:
        edit_config(config)
    path = tmp_path / "bad.rcsnn"
    save_file(tensors, str(path), metadata={"rcsnn": json.dumps(config)})
    return path


def _error(path) -> str:
    with pytest.raises(RcsnnError) as info:
        load_checkpoint(path)
    message = str(info.value)
    assert "\n" not in message and str(path) in message
    return message


def test_round_trip_is_exact(tmp_path, small_core):
    path = tmp_path / "c.rcsnn"
    save_checkpoint(Graph.from_arrays(small_core), path)
    again = load_checkpoint(path).arrays()
    x = small_core.input_currents(np.random.default_rng(0).normal(size=(80, small_core.n_inputs)))
    a, b = simulate_float(small_core, x), simulate_float(again, x)
    np.testing.assert_array_equal(a.membranes, b.membranes)
    save_checkpoint(Graph.from_arrays(again), tmp_path / "d.rcsnn")
    assert (tmp_path / "c.rcsnn").read_bytes() == (tmp_path / "d.rcsnn").read_bytes()


def _set(key, value):
    return lambda t: t.__setitem__(key, value)


@pytest.mark.parametrize("edit, words", [
    (lambda t: t.pop("matrix.T"), ["'matrix.T'", "missing"]),
    (lambda t: t.pop("neurons.bias"), ["'neurons.bias'", "missing"]),
    (lambda t: t.__setitem__("neurons.bias", t["neurons.bias"][:-1].copy()), ["'neurons.bias'", "shape"]),
    (lambda t: t.__setitem__("input.weight", t["input.weight"][:, :3].copy()), ["'frontend.embedding'", "shape"]),
    (lambda t: t.__setitem__("matrix.T", np.full_like(t["matrix.T"], 2)), ["'matrix.T'", "not ternary"]),
    (lambda t: t.__setitem__("matrix.T", t["matrix.T"].astype(np.float32)), ["'matrix.T'", "int8"]),
    (lambda t: t["neurons.bias"].__setitem__(3, np.nan), ["'neurons.bias'", "NaN"]),
    (lambda t: t["input.weight"].__setitem__((0, 0), np.inf), ["'input.weight'", "inf"]),
    (lambda t: t["groups.beta"].__setitem__(1, 1.0 + 1e-9), ["'groups.beta'", "outside (0, 1]"]),
    (lambda t: t["groups.beta"].__setitem__(0, -0.2), ["'groups.beta'", "outside (0, 1]"]),
    (lambda t: t["groups.theta"].__setitem__(2, 0.0), ["'groups.theta'", "> 0"]),
    (lambda t: t["synapses.alpha"].__setitem__(0, -1.0), ["'synapses.alpha'", "> 0"]),
    (lambda t: t.__setitem__("groups.beta", t["groups.beta"][:2].copy()), ["'groups.beta'", "shape"]),
])
def test_malformed_tensor(tmp_path, edit, words):
    message = _error(_rewrite(tmp_path, edit_tensors=edit))
    for w in words:
        assert w in message, message


@pytest.mark.parametrize("edit, words", [
    (lambda c: c.__setitem__("version", 99), ["version 99", "not supported"]),
    (lambda c: c.pop("groups"), ["'groups'", "missing"]),
    (lambda c: c.__setitem__("format", "something-else"), ["format", "something-else"]),
    (lambda c: c["groups"][0].__setitem__("reset", "sideways"), ["reset", "sideways"]),
])
def test_malformed_config(tmp_path, edit, words):
    message = _error(_rewrite(tmp_path, edit_config=edit))
    for w in words:
        assert w in message, message


def test_truncated_empty_and_wrong_type(tmp_path):
    data = SMALL_CHECKPOINT.read_bytes()
    truncated = tmp_path / "truncated.rcsnn"
    truncated.write_bytes(data[: len(data) // 2])
    assert "truncated" in _error(truncated)
    empty = tmp_path / "empty.rcsnn"
    empty.write_bytes(b"")
    assert "empty" in _error(empty)
    text = tmp_path / "notes.rcsnn"
    text.write_text("hello, I am not a checkpoint\n" * 10)
    assert "safetensors" in _error(text)
    assert "no such file" in _error(tmp_path / "missing.rcsnn")
    plain = tmp_path / "plain.safetensors"
    save_file({"x": np.zeros(3)}, str(plain))
    assert "'rcsnn' config" in _error(plain)


class _Payload:
    def __reduce__(self):
        import pathlib

        return (pathlib.Path.touch, (pathlib.Path(self.marker),))


def test_pickle_is_never_run(tmp_path):
    payload = _Payload()
    payload.marker = str(tmp_path / "pwned")
    path = tmp_path / "evil.rcsnn"
    path.write_bytes(pickle.dumps(payload))
    _error(path)
    assert not (tmp_path / "pwned").exists()
