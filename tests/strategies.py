"""Hypothesis strategies shared by the property tests: small random cores as plain descriptions.

``specs`` draws a core as ``contract_run``'s ``spec`` (tests/contract_impl.py), its currents and a fixed-point
format; ``build`` turns a spec into the rcsnn IR. Used by tests/test_semantics.py (references against the
contract) and tests/test_properties_hardware.py (the back ends against the references).
"""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from rcsnn.ir.arrays import FixedFormat
from rcsnn.ir.graph import Graph
from rcsnn.ir.nodes import LIF, RESET_MODES, Synapse

__all__ = ["specs", "build"]


@st.composite
def specs(draw, levels: bool = False, sizes: tuple[int, int] = (1, 4), steps: tuple[int, int] = (8, 24)):
    """A plain description of a small core (``contract_run``'s ``spec``), its currents and a fixed format.

    ``levels``: same-step blocks go exactly one group up and delay-1 blocks only into the group
    itself (a stack :func:`retime` accepts); otherwise blocks of both delays between any groups,
    same-step ones only forward (no cycle). ``sizes``, ``steps``: inclusive ranges of neurons per group
    and of time steps."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    n_groups = draw(st.integers(1, 3))
    groups = []
    for _ in range(n_groups):
        size = draw(st.integers(*sizes))
        kind = draw(st.sampled_from(["IF", "LIF", "CubaLIF"]))
        per_neuron = draw(st.booleans())

        def pick(low, high, size=size, per_neuron=per_neuron):
            return rng.uniform(low, high, size) if per_neuron else np.full(size, rng.uniform(low, high))

        beta = np.ones(size) if kind == "IF" else np.where(rng.random(size) < 0.2, 1.0, pick(0.3, 0.99))
        beta_syn = pick(0.0, 0.95) if kind == "CubaLIF" else np.zeros(size)
        groups.append({"size": size, "beta": beta.tolist(), "theta": pick(0.3, 2.0).tolist(),
                       "beta_syn": beta_syn.tolist(), "bias": rng.normal(0, 0.2, size).tolist(),
                       "reset": draw(st.sampled_from(RESET_MODES)),
                       "current_delay": draw(st.integers(0, 1)) if kind == "CubaLIF" else 0})
    blocks = []
    for post in range(n_groups):
        for pre in range(n_groups):
            level_delays = [1] if pre == post else [0] if pre == post - 1 else []
            delays = level_delays if levels else [0, 1] if pre < post else [1]
            delay = draw(st.sampled_from([None, *delays])) if delays else None
            if delay is None:
                continue
            density, dense = draw(st.sampled_from([0.0, 0.3, 1.0])), draw(st.booleans())
            shape = (groups[post]["size"], groups[pre]["size"])
            mask = rng.random(shape) < density
            matrix = rng.normal(0, 0.6, shape) * mask if dense else rng.integers(-1, 2, shape) * mask
            blocks.append({"pre": pre, "post": post, "matrix": matrix, "dense": dense, "delay": delay,
                           "alpha": 1.0 if dense else float(rng.uniform(0.1, 1.0))})
    n_steps, n = draw(st.integers(*steps)), sum(g["size"] for g in groups)
    x = rng.normal(0.3, 0.8, (n_steps, n))
    wv = draw(st.integers(10, 24))
    fmt = FixedFormat(Wv=wv, Fv=draw(st.integers(6, wv - 3)), Fb=draw(st.integers(6, 14)), Ww=draw(st.integers(6, 16)))
    return {"groups": groups, "blocks": blocks}, x, fmt


def build(spec: dict, fmt: FixedFormat | None = None) -> Graph:
    """The rcsnn IR of ``spec``: a per-neuron list stays an array, a uniform one becomes one float."""
    g = Graph(fixed=fmt)
    g.add_input(1)
    one = lambda values: values[0] if len(set(values)) == 1 else np.array(values)  # noqa: E731
    for k, d in enumerate(spec["groups"]):
        g.add_group(f"g{k}", LIF(d["size"], one(d["beta"]), one(d["theta"]), d["reset"], np.array(d["bias"]),
                                 one(d["beta_syn"]), d["current_delay"], d.get("max_spikes", 1),
                                 one(d.get("v_min", [-np.inf])), one(d.get("v_max", [np.inf]))),
                    np.zeros((d["size"], 1)))
    for k, b in enumerate(spec["blocks"]):
        g.add_matrix(f"m{k}", b["matrix"], dense=b["dense"])
        g.add_synapse(f"g{b['pre']}", f"g{b['post']}", Synapse(f"m{k}", b["alpha"], b["delay"]))
    g.add_output()
    return g.validate()
