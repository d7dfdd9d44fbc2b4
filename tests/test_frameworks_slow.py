"""A network from each framework (its own exporter, ``--flavor NAME``) through the hardware back ends.

``rcsnn verify FILE.nir --flavor NAME --backend verilator|spice`` must pass on the framework's
own network: dense weights, per-neuron β, IF / CubaLIF neurons, every reset mode the flavours
use, same-step layers (retimed). tests/test_frameworks.py shows the float raster equals the
framework's; here the digital core equals the fixed-point reference and the SPICE circuit the
float reference within its a-priori budget (their negative controls: tests/test_digital_checks.py,
tests/test_analog_budget.py). Minutes per case: ``pytest -m slow tests/test_frameworks_slow.py``.
"""

from __future__ import annotations

import dataclasses

import nir
import numpy as np
import pytest
import torch
from test_frameworks import CASES

from rcsnn.cli import main

pytestmark = [pytest.mark.slow,
              pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning")]

ONE_PER_FRAMEWORK = [("snntorch", "synaptic_rleaky"), ("norse", "lifcell"), ("spikingjelly", "if"),
                     ("sinabs", "lif"), ("rockpool", "lif")]


def _writable(node):
    """Norse writes torch tensors and 0-d values, which ``nir.write`` (HDF5) cannot store: numpy, 1-d."""
    if isinstance(node, nir.NIRGraph):
        return nir.NIRGraph(nodes={k: _writable(v) for k, v in node.nodes.items()}, edges=node.edges, type_check=False)
    if not any(isinstance(getattr(node, f.name), torch.Tensor) for f in dataclasses.fields(node)):
        return node
    changes = {f.name: np.atleast_1d(np.asarray(getattr(node, f.name), dtype=np.float64))
               for f in dataclasses.fields(node) if isinstance(getattr(node, f.name), (torch.Tensor, np.ndarray, float))}
    return dataclasses.replace(node, **changes)


@pytest.mark.parametrize("flavor,kind", ONE_PER_FRAMEWORK, ids=[f for f, _ in ONE_PER_FRAMEWORK])
@pytest.mark.parametrize("backend", ["verilator", "spice"])
def test_framework_network_verifies_in_hardware(tmp_path, flavor, kind, backend):
    graph, u, _ = CASES[flavor, kind](kind)
    nir.write(str(tmp_path / "net.nir"), _writable(graph))
    np.save(tmp_path / "u.npy", u.double().numpy())
    assert main(["verify", str(tmp_path / "net.nir"), "--flavor", flavor, "--input", str(tmp_path / "u.npy"),
                 "--backend", backend, "--steps", "100", "--out", str(tmp_path / "out"),
                 "--max-spikes", "1"]) == 0  # these are binary networks (counts: tests/test_multispike.py)
