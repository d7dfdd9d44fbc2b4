"""Fuzz: any checkpoint config or IR JSON file gives a result or one line (exit status 2), never a traceback or a hang.

Hypothesis edits valid documents — the small core's checkpoint config and a tiny core's graph JSON
(plain and after the place pass) — at 1 to 3 random places: a key deleted, or its value replaced by
any JSON value (deep, huge, negative, NaN, strings, ...). ``rcsnn info`` must then exit 0 or 2 with one
line on stderr; anything else (a traceback, a hang past the deadline) fails. Bounded: ~35 s.
"""

from __future__ import annotations

import copy
import json
from datetime import timedelta
from pathlib import Path

import pytest
from conftest import SMALL_CHECKPOINT, random_graph
from contract_impl import load_tensors
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from safetensors.numpy import save_file

from rcsnn.cli import main
from rcsnn.digital.layout import place
from rcsnn.ir.serialize import graph_to_json, to_attributes

LEAVES = (st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.sampled_from([0, -1, 1, 2**31, 2**63, 10**12])
          | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=12)
          | st.sampled_from(["", "float64", "<U5", "object", "int8", "lif", "synapse", "input", "T", "g0", "abc"]))
VALUES = st.recursive(LEAVES, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                                           max_size=4), max_leaves=12)
#: Long number lists are entered at their first and last element only (their other elements are alike).
_ENDS = 2


def _paths(doc, prefix=()) -> list[tuple]:
    """Every place in ``doc`` a mutation can hit (all keys; list elements: the first and last few)."""
    out = []
    if isinstance(doc, dict):
        items = list(doc.items())
    elif isinstance(doc, list):
        index = list(range(len(doc)))
        index = index if len(index) <= 2 * _ENDS else index[:_ENDS] + index[-_ENDS:]
        items = [(k, doc[k]) for k in index]
    else:
        return out
    for key, value in items:
        out.append((*prefix, key))
        out.extend(_paths(value, (*prefix, key)))
    return out


def _mutate(doc, edits):
    doc = copy.deepcopy(doc)
    for path, value in edits:
        parent = doc
        try:
            for key in path[:-1]:
                parent = parent[key]
            if value is _DELETE:
                del parent[path[-1]]
            else:
                parent[path[-1]] = value
        except (KeyError, IndexError, TypeError):
            continue  # an earlier edit removed or replaced the place
    return doc


_DELETE = object()


def _edits(doc):
    places = _paths(doc)
    return st.lists(st.tuples(st.sampled_from(places), st.just(_DELETE) | VALUES), min_size=1, max_size=3)


def _check(capsys, path: Path) -> None:
    try:
        code = main(["info", str(path), "--steps", "3"])
    except SystemExit as exc:
        code = exc.code
    out, err = capsys.readouterr()
    assert code in (0, 2), (code, err)
    if code == 2:
        assert err.startswith("rcsnn: error: ") and err.count("\n") == 1, err


CONFIG, TENSORS = load_tensors(SMALL_CHECKPOINT)
GRAPHS = [json.loads(graph_to_json(to_attributes(g)))
          for g in (random_graph(4, sizes=(3, 3), n_in=2), place(random_graph(6, sizes=(4, 3), n_in=2, shared=False), 2))]

FUZZ = settings(max_examples=120, deadline=timedelta(seconds=10), derandomize=True, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                       HealthCheck.data_too_large])


@pytest.fixture(scope="module")
def scratch(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


@FUZZ
@given(edits=_edits(CONFIG))
def test_any_checkpoint_config(capsys, scratch, edits):
    path = scratch / "fuzz.rcsnn"
    save_file(TENSORS, str(path), metadata={"rcsnn": json.dumps(_mutate(CONFIG, edits))})
    _check(capsys, path)


@pytest.mark.parametrize("base", range(len(GRAPHS)), ids=["plain", "placed"])
def test_any_graph_json(capsys, scratch, base):
    @FUZZ
    @given(edits=_edits(GRAPHS[base]))
    def fuzz(edits):
        path = scratch / "fuzz.json"
        path.write_text(json.dumps(_mutate(GRAPHS[base], edits)))
        _check(capsys, path)

    fuzz()
