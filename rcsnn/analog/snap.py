"""The snapped core: a core whose circuit is built of preferred part values, its parameters recomputed from them.

Every resistor of the deck becomes a part value (:mod:`rcsnn.analog.eseries`), and the core's parameters are
recomputed from the snapped elements (:mod:`rcsnn.analog.design` for the equations), so the snapped circuit
computes exactly the *snapped core*, whose float64 reference it is verified against:

* leak R_L = τ/C → R_L' : β' = exp(−Δt / (R_L'·C)) (per group, or per neuron where β is per neuron);
* the unit resistance of the snapped leak, R_unit' = V_S·K(τ')/C, is what a weight means: a ternary block's
  resistors all have R_unit'/α, so they snap to one value R' and the block gets one α' = R_unit'/R'; a dense
  block's resistors snap one by one, w'_ij = ±R_unit'/R'_ij;
* subtract reset: the self-synapse R_unit'/θ snaps to R', θ' = R_unit'/R' (``subtract_before_decay``:
  R_unit'/(β'θ), θ' = R_unit'/(β'·R')); the comparator threshold θ'·e^{−t_clk/2τ'} is a reference voltage,
  set exactly;
* input and bias enter through a DAC and the input resistor R_x = R_unit': R_x snaps to R_x' and the DAC's
  output is scaled by R_x'/R_unit' (:class:`~rcsnn.analog.netlist.DeckWriter`), so x and b are unchanged;
* the membrane capacitor C must already be a preferred value (:data:`~rcsnn.analog.eseries.CAPACITOR_SERIES`;
  the default 1 pF is); switches (the reset conductance) and sources are not parts that snap.

CubaLIF neurons (a transfer resistor whose gain no core parameter holds) are refused. The snapped graph carries
the annotation ``snap`` (the rule and the worst relative change of each parameter class), which
:func:`~rcsnn.analog.netlist.write_netlists` reads: it prints each resistor as its part value and records the
annotation in ``core.json``.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np

from ..errors import RcsnnError
from ..frontends.checkpoint import save_checkpoint
from ..ir.arrays import Core
from ..ir.graph import Graph
from ..ir.reference import simulate_float
from ..ir.stimulus import Stimulus
from ..model.readout import bits_per_char
from .design import Design, tau_of
from .eseries import CAPACITOR_SERIES, Snapping, parse_snap

__all__ = ["ANNOTATION", "SNAPPED_CORE", "snap_core", "snap_graph", "snapped_arguments", "text_cost", "save_snapped",
           "annotate_report"]

#: The graph attribute (and ``core.json`` key) recording a snapping.
ANNOTATION = "snap"
#: The snapped core's checkpoint in a netlist directory (``rcsnn verify SNAPPED_CORE --netlist DIR``).
SNAPPED_CORE = "snapped.rcsnn"


def _change(new, old) -> float:
    """Largest relative change |new/old − 1| (0 for no entries)."""
    new, old = np.asarray(new, dtype=np.float64), np.asarray(old, dtype=np.float64)
    return float(np.max(np.abs(new / old - 1), initial=0.0))


def _collapse(values: np.ndarray):
    """A per-neuron array as the group keeps it: one float if all entries are equal."""
    return float(values[0]) if (values == values[0]).all() else values.copy()


def _neurons(core: Core, design: Design, snapping: Snapping) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict]:
    """Per neuron: the snapped β' and θ', the unit resistance R_unit' of the snapped leak (Ω), and the worst relative
    changes of β, θ, the leak and self-synapse resistors."""
    c, step = design.capacitance, design.step
    beta, theta, reset = core.per_neuron("beta"), core.per_neuron("theta"), core.per_neuron("reset")
    tau = np.array([tau_of(step, b) for b in beta])
    leaky = np.isfinite(tau)
    r_leak = snapping.resistors(tau[leaky] / c)
    beta2 = beta.copy()
    beta2[leaky] = np.exp(-step / (r_leak * c))
    units = {b: design.values("", b, 1.0).r_unit for b in np.unique(beta2)}
    r_unit = np.array([units[b] for b in beta2])
    before = reset == "subtract_before_decay"  # self-synapse of weight β'θ, else θ
    selfs = np.isin(reset, ("subtract", "subtract_before_decay"))
    ideal = (r_unit / np.where(before, beta2 * theta, theta))[selfs]
    r_self = snapping.resistors(ideal)
    theta2 = theta.copy()
    theta2[selfs] = r_unit[selfs] / (r_self * np.where(before, beta2, 1.0)[selfs])
    changes = {"beta": _change(beta2, beta), "leak_resistor": _change(r_leak, tau[leaky] / c),
               "theta": _change(theta2, theta), "self_resistor": _change(r_self, ideal)}
    return beta2, theta2, r_unit, changes


def _synapses(core: Core, r_unit: np.ndarray, snapping: Snapping) -> tuple[dict, tuple, dict]:
    """The snapped matrices and synapse blocks (one α' per ternary block, w'_ij per dense resistor), and the worst
    relative changes of α and of the dense weights."""
    matrices, synapses, changes = dict(core.matrices), [], {"alpha": 0.0, "dense": 0.0}
    offsets = core.offsets()
    for s in core.synapses:
        ru = r_unit[offsets[s.post]]
        if not core.is_dense(s.matrix):
            if not (ru == ru[0]).all():
                raise RcsnnError(f"--snap: synapses {s.pre}->{s.post}: ternary, into neurons of different beta; their "
                                 "resistors would need one alpha per neuron (make the matrix dense first)")
            alpha = float(ru[0] / snapping.resistor(ru[0] / abs(s.alpha))) * math.copysign(1.0, s.alpha)
            changes["alpha"] = max(changes["alpha"], _change(alpha, s.alpha))
            synapses.append(replace(s, alpha=alpha))
            continue
        if sum(t.matrix == s.matrix for t in core.synapses) > 1:
            raise RcsnnError(f"--snap: dense matrix {s.matrix!r} is shared by several blocks; each block's resistors "
                             "snap to their own values")
        w = s.alpha * core.matrices[s.matrix]
        rows, cols = np.nonzero(w)
        snapped = np.sign(w[rows, cols]) * ru[rows] / snapping.resistors(ru[rows] / np.abs(w[rows, cols]))
        matrices[s.matrix] = np.zeros_like(w)
        matrices[s.matrix][rows, cols] = snapped / s.alpha
        changes["dense"] = max(changes["dense"], _change(snapped, w[rows, cols]))
        synapses.append(s)
    return matrices, tuple(synapses), changes


def snap_core(core: Core, design: Design, snapping: Snapping) -> tuple[Core, dict]:
    """The snapped core (module docstring) and its record: the rule and, per parameter class, the worst relative
    change of the parameter (``beta``, ``theta``, ``alpha``, ``dense``) and of the resistors (``*_resistor``)."""
    for g in core.groups:
        if g.synaptic:
            raise RcsnnError(f"--snap: group {g.name!r} is CubaLIF; its transfer resistor's gain is no core parameter, "
                             "so snapping it cannot be folded into the reference")
    if snapping.capacitor(design.capacitance) != design.capacitance:
        raise RcsnnError(f"--snap {snapping.rule}: the membrane capacitor {design.capacitance:g} F is not an "
                         f"{CAPACITOR_SERIES} value; choose one")
    beta, theta, r_unit, neurons = _neurons(core, design, snapping)
    groups = tuple(replace(g, beta=_collapse(beta[sl]), theta=_collapse(theta[sl]))
                   for g, sl in zip(core.groups, core.offsets().values()))
    matrices, synapses, weights = _synapses(core, r_unit, snapping)
    snapped = replace(core, groups=groups, matrices=matrices, synapses=synapses).validate("snapped core")
    record = {"rule": snapping.rule, "capacitor_series": CAPACITOR_SERIES if snapping.unit_ohms is None else "unit",
              **neurons, **weights, "input_resistor": _change(snapping.resistors(r_unit), r_unit)}
    return snapped, record


def snap_graph(graph: Graph, design: Design, snapping: Snapping) -> Graph:
    """The IR of the snapped core (:func:`snap_core`), annotated with :data:`ANNOTATION` = its record."""
    core, record = snap_core(graph.arrays(), design, snapping)
    out = Graph.from_arrays(core, "snapped core")
    out.passes = [*graph.passes, ANNOTATION]
    out.nx.graph[ANNOTATION] = record
    return out


def snapped_arguments(graph: Graph, rule: str | None, design: Design) -> Graph:
    """The graph a command works on: ``graph`` itself, or snapped by ``--snap rule`` (a one-line summary printed)."""
    if rule is None:
        return graph
    out = snap_graph(graph, design, parse_snap(rule))
    r = out.annotation(ANNOTATION)
    print(f"snapped to {r['rule']} (capacitors {r['capacitor_series']}): worst relative change of alpha "
          f"{r['alpha']:.2%}, dense weights {r['dense']:.2%}, beta {r['beta']:.2%}, theta {r['theta']:.2%}; input "
          f"resistors {r['input_resistor']:.2%} (absorbed by the input DAC's gain)", flush=True)
    return out


def text_cost(original: Graph, snapped: Graph, stimulus: Stimulus) -> dict | None:
    """Bits per character of the original and the snapped core's float64 references on a text stimulus (the next
    character from each step's spikes, as ``rcsnn verify --bpc``), added to the snapped graph's record; None when
    the stimulus is not text for a language-model core."""
    core = original.arrays()
    if stimulus.text is None or core.frontend is None or core.readout_weight is None or len(stimulus.text) < 2:
        return None
    tokens = np.asarray(core.frontend.encode(stimulus.text), dtype=np.int64)[1:]
    scores = {name: bits_per_char(g.arrays(), simulate_float(g, stimulus.currents).spikes[:-1], tokens)
              for name, g in (("original", original), ("snapped", snapped))}
    cost = {"characters": len(tokens), **scores}
    snapped.nx.graph[ANNOTATION]["bits_per_char"] = cost
    print(f"bits per character on {len(tokens)} predictions of {stimulus.description}: original "
          f"{scores['original']:.4f}, snapped {scores['snapped']:.4f}", flush=True)
    return cost


def save_snapped(graph: Graph, directory) -> None:
    """Write a derived core into ``directory``, the core the decks compute: a saturated one
    (:func:`rcsnn.analog.scale.saturate`, snapped or not) as :data:`~rcsnn.analog.scale.BOUNDED_CORE`, else a
    snapped one as :data:`SNAPPED_CORE`; nothing for the core as given."""
    from .scale import ANNOTATION as SATURATED
    from .scale import BOUNDED_CORE

    name = BOUNDED_CORE if graph.annotation(SATURATED) is not None else \
        SNAPPED_CORE if graph.annotation(ANNOTATION) is not None else None
    if name is not None:
        save_checkpoint(graph, f"{directory}/{name}")


def annotate_report(report, graph: Graph) -> None:
    """Add a snapped graph's record to a verify report (``figures["snap"]`` and a finding); nothing if unsnapped."""
    r = graph.annotation(ANNOTATION)
    if r is None:
        return
    report.figures["snap"] = r
    cost = r.get("bits_per_char")
    report.lines.insert(0, f"snapped core ({r['rule']}): judged against its own float64 reference; worst relative "
                           f"change of alpha {r['alpha']:.2%}, dense weights {r['dense']:.2%}, beta {r['beta']:.2%}, "
                           f"theta {r['theta']:.2%}" + (f"; bits/char original {cost['original']:.4f}, snapped "
                                                       f"{cost['snapped']:.4f}" if cost else ""))
