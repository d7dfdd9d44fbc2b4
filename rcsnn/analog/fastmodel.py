"""Fast circuit model: the exact solution of a deck's own element values, vectorised over its neurons.

It reads a deck written by :func:`~rcsnn.analog.netlist.write_netlists` (as it stands: a hand edit or a
Monte Carlo variation, :mod:`rcsnn.analog.variation`, is modelled with its values) and solves it
between clock edges in closed form, without a time step. Per neuron, with C and R_L from its
``rcsnn_neuron_*`` instance, g_on its reset conductance, G the sum of the conductances into its
summing node and A the op-amp gain (ideal form: A = ∞), q = 1 + 1/A:

    dv/dt = −λ(t)·v + σ·w(u)·J / (C·q),     λ(t) = 1/(R_L·C) + G/(A·q·C) + g_on·r·w_r(u)/C

with J = Σ_j gain_j·level_j / R_j the current of its lines (level_j constant through the windows,
checked), σ = +1 in the ideal form (a current copier) and −1 in the op-amp form (an inverting
integrator), w the synaptic window and w_r the reset window (PULSE trapezoids of the deck, u the
time from the clock edge) and r the neuron's reset level. As the reset window closes before the
synaptic window opens (checked), one clock period Δt maps

    v[k+1] = v[k]·e^{−λ₀Δt}·e^{−r·g_on·A_r/C} + σ·J[k]·K(λ₀) / (C·q),    K(λ) = ∫ w(u) e^{−λ(Δt−u)} du

(A_r = ∫ w_r, λ₀ the constant part of λ; K in closed form for a trapezoid). The comparator samples
at the middle of the clock's rise t_clk: s = [v·e^{−λ₀t_clk/2} ≥ V(th)], a level for the next step; a
comparator with hysteresis H (``rcsnn_comparator_hys``) trips at V(th) + H·(1/2 − its last decision).
A membrane clamp of a bounded core (``Bclamp<i>`` to ground at levels V_lo < 0 < V_hi, ideal form,
:mod:`rcsnn.analog.scale`) holds a membrane that reaches a level there until the window closes (the
trajectory is monotone inside the window), after which it decays for d = Δt − (end of the window):

    v[k+1] = min(max(v[k+1], V_lo·e^{−λ₀d}), V_hi·e^{−λ₀d})

(exact up to the clamp's finite conductance and the window's falling edge, the two terms
:func:`rcsnn.analog.scale.clamp_errors` derives). Levels come from filesource columns (linear between
rows, as XSPICE interpolates), DC sources, or the deck's own comparators (closed loop). Anything else
is refused in one line naming the element, among it the count quantisers of spike-count neurons
(``max_spikes`` ≠ 1): the model carries 0/1 levels only, and the op-amp form's clamps (across the
feedback C).

Decks with real amplifiers (``--opamp`` with a named part: ``rcsnn_feedback`` cells around ``rcsnn_opamp_macro``
instances) are read here and solved by :mod:`rcsnn.analog.fastamp` (each neuron second order, in the amplifiers'
linear range); a user's own amplifier model is refused (the model knows the macromodel's equations only).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from ..errors import RcsnnError
from .fastamp import AmplifiedDeck, Amplifiers, assemble_amplified

__all__ = ["CELLS", "Pulse", "Circuit", "FastDeck", "FastRun", "kernel", "read_circuit", "assemble", "parse_deck",
           "run_deck"]

#: Subcircuits of ``rcsnn_cells.lib`` the model knows, with their node count.
CELLS = {"rcsnn_neuron_ideal": 5, "rcsnn_neuron_opamp": 4, "rcsnn_feedback": 4, "rcsnn_opamp_macro": 5,
         "rcsnn_comparator": 4, "rcsnn_comparator_hys": 4, "rcsnn_line": 3}
_SKIP = (".include", ".options", ".save", ".tran", ".end")
_PARAM = re.compile(r"(\w+)=(\S+)")
_LIST = re.compile(r"(\w+)=\[([^\]]*)\]")
#: One side of a clamp's current, ``max(V(mem<i>)−V_hi,0)`` or ``min(V(mem<i>)−V_lo,0)`` (scale.clamp_line).
_CLAMP_HIGH = r"max\(V\((?P<high_node>\w+)\)(?P<high>[+-][^,()]+),0\)"
_CLAMP_LOW = r"min\(V\((?P<low_node>\w+)\)(?P<low>[+-][^,()]+),0\)"
#: A membrane clamp's current, I=g*(max(V(n)-V_hi,0)+min(V(n)-V_lo,0)), either side optional (a "+" between both).
_CLAMP = re.compile(rf"I=(?P<g>[^*]+)\*\((?:{_CLAMP_HIGH})?(?:(?(high_node)\+){_CLAMP_LOW})?\)")


@dataclass(frozen=True)
class Pulse:
    """A 0→1 PULSE(0 1 delay rise fall width period) window, s."""

    delay: float
    rise: float
    fall: float
    width: float
    period: float

    @property
    def area(self) -> float:
        """∫ w over one period (s)."""
        return self.width + (self.rise + self.fall) / 2

    def span(self, step: float) -> tuple[float, float]:
        """Opening and closing of the window within a step, from the clock edge (s)."""
        start = self.delay % step
        return start, start + self.rise + self.width + self.fall


@dataclass(frozen=True)
class Circuit:
    """A deck's element values by name, as read (per neuron of the deck unless said): what
    :mod:`rcsnn.analog.variation` varies and :func:`assemble` solves.

    Attributes:
        cells, c, rl, gon, gain: each neuron's cell instance and its C (F), R_L (Ω), g_on (S), op-amp gain (∞: ideal).
        comparators, threshold, hysteresis: each neuron's comparator instance, its threshold V(th) (V) and hysteresis
            H (V; 0: none): it decides v ≥ V(th) + H·(1/2 − its last decision).
        resistors, resistance, rows, cols, gains: per resistor its name, value (Ω), neuron, level source and the
            gain of its line's driver (0 for a resistor to ground).
        clamp_lo, clamp_hi: each neuron's clamp levels V_lo, V_hi (V; ∓inf: no clamp on that side).
        amplifiers: each neuron's amplifier macromodel (``--opamp`` decks), else None.
    """

    name: str
    form: str
    neurons: np.ndarray
    step: float
    sample: float
    rwin: Pulse
    win: Pulse
    cells: tuple
    c: np.ndarray
    rl: np.ndarray
    gon: np.ndarray
    gain: np.ndarray
    comparators: tuple
    threshold: np.ndarray
    hysteresis: np.ndarray
    resistors: tuple
    resistance: np.ndarray
    rows: np.ndarray
    cols: np.ndarray
    gains: np.ndarray
    sources: tuple
    levels: np.ndarray
    feedback: np.ndarray
    reset_source: np.ndarray
    clamp_lo: np.ndarray
    clamp_hi: np.ndarray
    amplifiers: Amplifiers | None = None


@dataclass(frozen=True)
class FastDeck:
    """One deck, solved per clock period (see the module docstring). Arrays are per neuron of the deck
    unless said; ``sources`` are the level nodes; per line resistor, ``rows`` its neuron, ``cols`` its level
    source and ``weights`` its conductance · driver gain (A per V of level)."""

    name: str
    neurons: np.ndarray  # global index of each neuron (from its ``mem<i>`` node)
    step: float
    sample: float  # comparator sampling instant after the clock edge (s)
    decay: np.ndarray  # e^{−λ₀Δt}
    reset: np.ndarray  # e^{−g_on·A_r/C}: the factor a reset level of 1 applies
    inject: np.ndarray  # σ·K(λ₀)/(C·q), V per A of J
    sampled: np.ndarray  # e^{−λ₀·sample}
    threshold: np.ndarray  # V(th) of each comparator
    hysteresis: np.ndarray  # H of each comparator (V): its trip point is V(th) + H·(1/2 − its last decision)
    rows: np.ndarray
    cols: np.ndarray
    weights: np.ndarray
    sources: tuple[str, ...]
    levels: np.ndarray  # (steps, sources) from files / DC; columns of comparator-driven sources are unused
    feedback: np.ndarray  # (sources,) neuron of the deck whose comparator drives the source, −1 if none
    reset_source: np.ndarray  # (neurons,) source index of each neuron's reset level
    floor: np.ndarray  # V_lo·e^{−λ₀d}: the clamp's lower level at the clock edge (−inf: none)
    ceiling: np.ndarray  # V_hi·e^{−λ₀d} (inf: none)

    def initial(self) -> np.ndarray:
        """The membranes ngspice starts from: 0 V."""
        return np.zeros(self.neurons.size)

    def advance(self, v: np.ndarray, j: np.ndarray, reset: np.ndarray, step: int):
        """One clock period from membranes ``v`` with line currents ``j`` and reset levels ``reset``: the new state,
        the membranes at the next clock edge and what the comparators compare there (V)."""
        v = np.clip(v * self.decay * self.reset ** reset + j * self.inject, self.floor, self.ceiling)
        return v, v, v * self.sampled


@dataclass(frozen=True)
class FastRun:
    """Raster (steps, neurons) int8 and membranes at the clock edges (V), like ngspice's, and what each comparator
    compared with its threshold at its sampling instant (V)."""

    spikes: np.ndarray
    membranes: np.ndarray
    compared: np.ndarray


def _phi(y: np.ndarray, rise: bool) -> np.ndarray:
    """∫₀¹ x·e^{yx} dx (rise) or ∫₀¹ (1−x)·e^{yx} dx (fall), series for small |y|."""
    y = np.asarray(y, dtype=np.float64)
    small = np.abs(y) < 1e-3
    ys = np.where(small, 1.0, y)
    exact = (np.exp(ys) * (ys - 1) + 1) / ys**2 if rise else (np.expm1(ys) - ys) / ys**2
    series = 1 / 2 + y / 3 + y**2 / 8 + y**3 / 30 if rise else 1 / 2 + y / 6 + y**2 / 24 + y**3 / 120
    return np.where(small, series, exact)


def kernel(window: Pulse, step: float, rate: np.ndarray) -> np.ndarray:
    """K(λ) = ∫ w(u) e^{−λ(Δt−u)} du over one step (s) for decay rates ``rate`` λ (1/s), exact."""
    start, _ = window.span(step)
    lam = np.asarray(rate, dtype=np.float64)
    at = lambda u: np.exp(-lam * (step - u))  # noqa: E731
    fall = start + window.rise + window.width
    flat = np.where(lam * window.width < 1e-9, window.width * at(fall),
                    -np.expm1(-lam * window.width) * at(fall) / np.where(lam > 0, lam, 1.0))
    return at(start) * window.rise * _phi(lam * window.rise, True) + flat \
        + at(fall) * window.fall * _phi(lam * window.fall, False)


def _number(text: str, where: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise RcsnnError(f"{where}: value {text!r} is not a plain number (the fast model reads numbers only)") from None
    if not np.isfinite(value):
        raise RcsnnError(f"{where}: value {text!r} is not finite")
    return value


def _pulse(fields: list[str], where: str) -> Pulse:
    body = " ".join(fields)
    m = re.fullmatch(r"PULSE\((.*)\)", body)
    if m is None:
        raise RcsnnError(f"{where}: a window must be PULSE(0 1 delay rise fall width period), not {body!r}")
    v = [_number(x, where) for x in m.group(1).split()]
    if len(v) != 7 or v[:2] != [0.0, 1.0] or min(v[2:]) < 0 or v[6] <= 0:
        raise RcsnnError(f"{where}: a window must be PULSE(0 1 delay rise fall width period), not {body!r}")
    return Pulse(*v[2:])


def _filesource(model: str, where: str) -> dict:
    inner = re.fullmatch(r"filesource\s*\((.*)\)", model.strip(), flags=re.S)
    if inner is None:
        raise RcsnnError(f"{where}: not a filesource model")
    model = inner.group(1)
    params = dict(_PARAM.findall(_LIST.sub("", model)))
    lists = {k: [_number(x, where) for x in v.split()] for k, v in _LIST.findall(model)}
    file = re.search(r'file="([^"]+)"', model)
    if file is None or params.get("timerelative", "false") != "false" or params.get("amplstep", "false") != "false":
        raise RcsnnError(f"{where}: only filesource(file=\"...\" timerelative=false amplstep=false) is modelled")
    return {"file": file.group(1), "scale": lists.get("amplscale"), "offset": lists.get("amploffset"),
            "tscale": _number(params.get("timescale", "1"), where), "toffset": _number(params.get("timeoffset", "0"), where)}


class _Parser:
    """Element lines of one deck, by kind (see :func:`parse_deck`)."""

    def __init__(self, text: str, name: str):
        self.name = name
        self.sources: dict[str, tuple] = {}  # node -> ("dc", v) | ("pulse", Pulse)
        self.drivers: dict[str, tuple[str, float, bool]] = {}  # line node -> (level node, gain, gated by win)
        self.neurons: list[tuple[str, list[str], dict[str, float], str]] = []  # (name, nodes, params, form)
        self.comparators: list[tuple[str, list[str], float]] = []  # instance, nodes, hysteresis (V)
        self.resistors: list[tuple[str, str, str, float]] = []
        self.stim: list[tuple[list[str], str]] = []  # (nodes, model)
        self.clamps: dict[str, tuple[float, float]] = {}  # membrane node -> (V_lo, V_hi)
        self.amplifiers: dict[str, tuple[str, list[str], dict[str, float]]] = {}  # output node -> instance
        self.models: dict[str, str] = {}
        self.digital: dict[str, str] = {}  # digital clock node -> analog node
        lines = text.splitlines()
        control = False
        for number, raw in enumerate(lines[1:], start=2):  # line 1 is the title
            line = raw.strip()
            where = f"{name}:{number}"
            if control or not line or line.startswith("*"):
                control = control and line.lower() != ".endc"
                continue
            if line.lower() == ".control":
                control = True
                continue
            if line.lower().startswith(".model"):
                parts = line.split(None, 2)
                self.models[parts[1].lower()] = parts[2] if len(parts) > 2 else ""
                continue
            if line.lower().startswith(_SKIP):
                continue
            self.element(line, where)

    def element(self, line: str, where: str) -> None:
        kind = line[0].upper()
        if kind == "A":
            m = re.fullmatch(r"(\S+)\s+\[([^\]]*)\]\s+(?:\[([^\]]*)\]\s+)?(\S+)", line)
            if m is None:
                raise RcsnnError(f"{where}: XSPICE element {line.split()[0]!r} is not one the fast model knows")
            ins, outs, model = m.group(2).split(), (m.group(3) or "").split(), m.group(4).lower()
            if model == "rcsnn_clock_adc" and len(ins) == len(outs) == 1:
                self.digital[outs[0]] = ins[0]
            elif not outs:
                self.stim.append((ins, model))
            else:
                raise RcsnnError(f"{where}: XSPICE element {line.split()[0]!r} ({model}) is not one the fast model knows")
            return
        fields = line.split()
        if re.match(r"Bclamp\d", fields[0]):
            self.clamp(fields, where)
            return
        if re.match(r"B(c|bit|z)\d", fields[0]):
            raise RcsnnError(f"{where}: element {fields[0]!r} is a spike-count quantiser (max_spikes != 1); the fast "
                             "model carries 0/1 spike levels only; run ngspice (rcsnn verify --backend spice)")
        if kind == "V" and len(fields) >= 4 and fields[2] == "0":
            if fields[3].upper() == "DC" and len(fields) == 5:
                self.sources[fields[1]] = ("dc", _number(fields[4], where))
                return
            if fields[3].upper().startswith("PULSE"):
                self.sources[fields[1]] = ("pulse", _pulse(fields[3:], where))
                return
        elif kind == "E" and len(fields) == 6 and fields[2] == "0" and fields[4] == "0":
            self.drivers[fields[1]] = (fields[3], _number(fields[5], where), False)
            return
        elif kind == "R" and len(fields) == 4:
            self.resistors.append((fields[0], fields[1], fields[2], _number(fields[3], where)))
            return
        elif kind == "X":
            params = dict(_PARAM.findall(line))
            nodes = [f for f in fields[1:] if "=" not in f]
            cell = nodes.pop().lower() if nodes else ""
            if CELLS.get(cell) == len(nodes):
                values = {k: _number(v, where) for k, v in params.items()}
                if cell.startswith("rcsnn_neuron") or cell == "rcsnn_feedback":
                    self.neurons.append((fields[0], nodes, values, cell.rsplit("_", 1)[1]))
                elif cell == "rcsnn_opamp_macro":
                    self.amplifiers[nodes[2]] = (fields[0], nodes, values)
                elif cell.startswith("rcsnn_comparator"):
                    self.comparators.append((fields[0], nodes, values.get("hys", 0.0)))
                else:  # rcsnn_line: out = gain · V(level) · V(win)
                    self.drivers[nodes[2]] = (nodes[0], values.get("gain", 1.0), True)
                return
        raise RcsnnError(f"{where}: element {fields[0]!r} is not one the fast model knows "
                         f"(it models the cells of rcsnn_cells.lib, R, linear E, DC and PULSE V, filesource)")

    def clamp(self, fields: list[str], where: str) -> None:
        """``Bclamp<i> mem<i> 0 I=g*(max(V(mem<i>)−V_hi,0)+min(V(mem<i>)−V_lo,0))``, either side optional."""
        if len(fields) > 2 and re.fullmatch(r"sum\d+", fields[2]):
            raise RcsnnError(f"{where}: clamp {fields[0]!r} across the feedback capacitor (op-amp form) is not modelled; "
                             "run ngspice (rcsnn verify --backend spice)")
        m = _CLAMP.fullmatch("".join(fields[3:]))
        nodes = {m["high_node"], m["low_node"]} - {None} if m else set()
        if len(fields) < 4 or fields[2] != "0" or nodes != {fields[1]}:
            raise RcsnnError(f"{where}: clamp {fields[0]!r} is not one the fast model knows (an ideal-form membrane clamp "
                             "to ground, I=g*(max(V(mem<i>)-V_hi,0)+min(V(mem<i>)-V_lo,0)))")
        low, high = (-_number(m[side], where) if m[side] else bound for side, bound in (("low", -np.inf), ("high", np.inf)))
        if _number(m["g"], where) <= 0 or not low < 0 < high:
            raise RcsnnError(f"{where}: clamp {fields[0]!r}: conductance <= 0 or levels not V_lo < 0 < V_hi")
        self.clamps[fields[1]] = (low, high)

    def pulse(self, node: str, what: str) -> Pulse:
        source = self.sources.get(node)
        if source is None or source[0] != "pulse":
            raise RcsnnError(f"{self.name}: the {what} node {node!r} is not driven by a PULSE source")
        return source[1]


def _table(text: str, where: str) -> np.ndarray:
    try:
        rows = np.array([[float(x) for x in line.split()] for line in text.splitlines() if line.strip()], dtype=np.float64)
    except ValueError:
        raise RcsnnError(f"{where}: a row is not numbers") from None
    if rows.ndim != 2 or rows.shape[0] < 1 or np.any(np.diff(rows[:, 0]) < 0):
        raise RcsnnError(f"{where}: expected rows 'time level ...' of equal length with non-decreasing times")
    return rows


def _levels(p: _Parser, files: Mapping[str, str], times: np.ndarray) -> dict[str, np.ndarray]:
    """Each replayed node's level at ``times`` (steps, k) (linear between rows; held after the last)."""
    out = {}
    for nodes, model in p.stim:
        where = f"{p.name}: filesource {model}"
        if model not in p.models:
            raise RcsnnError(f"{where}: no .model {model}")
        spec = _filesource(p.models[model], where)
        if spec["file"] not in files:
            raise RcsnnError(f"{where}: stimulus file {spec['file']!r} not found")
        rows = _table(files[spec["file"]], f"{p.name}: {spec['file']}")
        if rows.shape[1] != len(nodes) + 1:
            raise RcsnnError(f"{p.name}: {spec['file']} has {rows.shape[1] - 1} columns for {len(nodes)} nodes")
        t = rows[:, 0] * spec["tscale"] + spec["toffset"]
        scale = spec["scale"] or [1.0] * len(nodes)
        offset = spec["offset"] or [0.0] * len(nodes)
        for k, node in enumerate(nodes):
            out[node] = np.interp(times, t, rows[:, k + 1]) * scale[k] + offset[k]
    return out


def read_circuit(text: str, files: Mapping[str, str], steps: int, name: str = "deck") -> Circuit:
    """The :class:`Circuit` of a deck's ``text`` for ``steps`` clock periods; ``files`` maps the stimulus
    file names the deck replays to their text. One-line :class:`RcsnnError` for what it cannot model."""
    p = _Parser(text, name)
    if not p.neurons:
        raise RcsnnError(f"{name}: no rcsnn_neuron_* cell")
    forms = {form for *_, form in p.neurons}
    if len(forms) != 1:
        raise RcsnnError(f"{name}: neurons of more than one kind in one deck ({', '.join(sorted(forms))})")
    amplified = forms == {"feedback"}
    form = "opamp" if amplified else forms.pop()
    first = p.neurons[0][1]
    rwin = p.pulse(first[3], "reset window")
    win = p.pulse(first[4] if form == "ideal" else _window_node(text, name), "synaptic window")
    shared = {tuple(nodes[3:]) for _, nodes, _, _ in p.neurons}
    if len(shared) != 1 or len({nodes[2] for _, nodes, _ in p.comparators}) > 1:
        raise RcsnnError(f"{name}: the neurons do not share one reset window, synaptic window and clock")
    if not p.comparators:
        raise RcsnnError(f"{name}: no rcsnn_comparator")
    clock = p.pulse(p.digital.get(p.comparators[0][1][2], p.comparators[0][1][2]), "clock")
    step = clock.period
    for what, pulse in (("reset window", rwin), ("synaptic window", win)):
        if not np.isclose(pulse.period, step, rtol=1e-12, atol=0):
            raise RcsnnError(f"{name}: the {what}'s period {pulse.period:g} s differs from the clock's {step:g} s")
    sample = clock.delay % step + clock.rise / 2
    r0, r1 = rwin.span(step)
    w0, w1 = win.span(step)
    if not sample < r0 <= r1 <= w0 <= w1 <= step:
        raise RcsnnError(f"{name}: windows not in the order clock sample ({sample:g} s) < reset window "
                         f"[{r0:g}, {r1:g}] s <= synaptic window [{w0:g}, {w1:g}] s <= clock period {step:g} s")
    mem_of = {}
    for k, (inst, nodes, _, _) in enumerate(p.neurons):
        m = re.fullmatch(r"mem(\d+)", nodes[1])
        if m is None:
            raise RcsnnError(f"{name}: neuron {inst}: membrane node {nodes[1]!r} is not mem<i>")
        mem_of[nodes[1]] = k
    n = len(p.neurons)
    index = np.array([int(nodes[1][3:]) for _, nodes, _, _ in p.neurons])
    sum_of = {nodes[0]: k for k, (_, nodes, _, _) in enumerate(p.neurons)}
    try:
        c = np.array([v["c"] for *_, v, _ in p.neurons])
        rl = np.array([v["rl"] for *_, v, _ in p.neurons])
        gon = np.array([v.get("gon", 0.0) for *_, v, _ in p.neurons])
        gain = np.array([v.get("gain", 1e9) if form == "opamp" and not amplified else np.inf for *_, v, _ in p.neurons])
    except KeyError as exc:
        raise RcsnnError(f"{name}: a neuron cell lacks parameter {exc}") from None
    if np.any(c <= 0) or np.any(rl <= 0) or np.any(gon < 0) or np.any(gain <= 0):
        raise RcsnnError(f"{name}: a neuron has c, rl or gain <= 0 or gon < 0")
    # comparators: threshold and the level node they drive
    threshold, hysteresis = np.full(n, np.nan), np.zeros(n)
    driven_by = {}
    for inst, (mem, th, _, out), hys in p.comparators:
        if mem not in mem_of:
            raise RcsnnError(f"{name}: comparator {inst} watches {mem!r}, not a membrane of the deck")
        src = p.sources.get(th)
        if src is None or src[0] != "dc":
            raise RcsnnError(f"{name}: comparator {inst}: threshold node {th!r} is not a DC source")
        if not hys >= 0:
            raise RcsnnError(f"{name}: comparator {inst}: hysteresis {hys:g} V must be >= 0")
        threshold[mem_of[mem]], hysteresis[mem_of[mem]] = src[1], hys
        driven_by[out] = mem_of[mem]
    if np.isnan(threshold).any():
        raise RcsnnError(f"{name}: neuron {p.neurons[int(np.isnan(threshold).argmax())][0]} has no comparator")
    # level nodes: lines' controls and reset levels
    levels_needed = sorted({d[0] for d in p.drivers.values()} | {nodes[2] for _, nodes, _, _ in p.neurons})
    col = {node: k for k, node in enumerate(levels_needed)}
    inset = 1e-3 * np.array([rwin.rise, -rwin.fall, win.rise, -win.fall])  # where the windows are just open
    times = np.arange(steps)[:, None] * step + np.array([r0, r1, w0, w1]) + inset
    replayed = _levels(p, files, times)
    levels = np.zeros((steps, len(levels_needed)))
    feedback = np.full(len(levels_needed), -1)
    for node, k in col.items():
        if node in driven_by:
            feedback[k] = driven_by[node]
        elif node in replayed:
            at = replayed[node]
            if np.any(at != at[:, :1]):
                t = int(np.argwhere(at != at[:, :1])[0][0])
                raise RcsnnError(f"{name}: level {node!r} changes inside a window of step {t}; the fast model needs "
                                 "levels constant through the reset and synaptic windows")
            levels[:, k] = at[:, 0]
        elif node in p.sources and p.sources[node][0] == "dc":
            levels[:, k] = p.sources[node][1]
        elif node == "0":
            continue
        else:
            raise RcsnnError(f"{name}: level node {node!r} has no source the fast model knows")
    # resistors: line (or ground) -> summing node
    rows, cols, gains, values = [], [], [], []
    for inst, a, b, r in p.resistors:
        if r <= 0:
            raise RcsnnError(f"{name}: resistor {inst} = {r:g} ohm must be > 0")
        if (a in sum_of) == (b in sum_of):
            raise RcsnnError(f"{name}: resistor {inst} ({a}, {b}) must join one summing node to a line")
        node, line = (b, a) if b in sum_of else (a, b)
        if line != "0" and line not in p.drivers:
            raise RcsnnError(f"{name}: resistor {inst}: node {line!r} is driven by no line driver")
        level, g, gated = p.drivers[line] if line != "0" else ("0", 0.0, form == "opamp")
        if gated != (form == "opamp"):  # the window gates once: at the copier (ideal) or at the line (op-amp)
            raise RcsnnError(f"{name}: resistor {inst}: line {line!r} is {'' if gated else 'not '}window-gated, "
                             f"which the {form} form's neurons {'also gate' if gated else 'need'}")
        rows.append(sum_of[node])
        cols.append(col[level] if line != "0" else 0)
        gains.append(g)
        values.append(r)
    comparator = [""] * n
    for inst, (mem, *_), _ in p.comparators:
        comparator[mem_of[mem]] = inst
    unknown = sorted(set(p.clamps) - set(mem_of))
    if unknown:
        raise RcsnnError(f"{name}: a clamp holds node {unknown[0]!r}, not a membrane of the deck")
    if p.clamps and form != "ideal":
        raise RcsnnError(f"{name}: clamps in an op-amp form deck are not modelled; run ngspice")
    clamp = np.array([p.clamps.get(nodes[1], (-np.inf, np.inf)) for _, nodes, _, _ in p.neurons]).reshape(n, 2)
    amplifiers = _amplifiers(p, name) if amplified else None
    if p.amplifiers and not amplified:
        raise RcsnnError(f"{name}: amplifier {next(iter(p.amplifiers.values()))[0]} beside neuron cells that are not "
                         "rcsnn_feedback")
    return Circuit(name, form, index, step, sample, rwin, win, tuple(inst for inst, *_ in p.neurons), c, rl, gon, gain,
                   tuple(comparator), threshold, hysteresis, tuple(r[0] for r in p.resistors),
                   np.array(values, dtype=np.float64),
                   np.array(rows, dtype=np.int64), np.array(cols, dtype=np.int64), np.array(gains, dtype=np.float64),
                   tuple(levels_needed), levels, feedback, np.array([col[nodes[2]] for _, nodes, _, _ in p.neurons]),
                   clamp[:, 0], clamp[:, 1], amplifiers)


def _amplifiers(p: _Parser, name: str) -> Amplifiers:
    """Each feedback neuron's ``rcsnn_opamp_macro``: in+ grounded, in− its summing node, out its membrane node, the
    supply pins at DC sources."""
    rows = []
    for inst, (summing, mem, *_), _, _ in p.neurons:
        if mem not in p.amplifiers:
            raise RcsnnError(f"{name}: neuron {inst}: no rcsnn_opamp_macro drives {mem!r} (a user's amplifier model is "
                             "not one the fast model knows: run ngspice)")
        amp, (inp, inn, _, vp, vn), values = p.amplifiers[mem]
        supply = [p.sources.get(node) for node in (vp, vn)]
        if inp != "0" or inn != summing or any(s is None or s[0] != "dc" for s in supply):
            raise RcsnnError(f"{name}: amplifier {amp} must be 'X 0 {summing} {mem} V+ V- rcsnn_opamp_macro ...' with DC "
                             "supply sources")
        try:
            a0, gbw, sr = values["a0"], values["gbw"], values["sr"]
            figures = (a0, gbw, sr, values["vos"], supply[1][1] + values["hlo"], supply[0][1] - values["hhi"])
        except KeyError as exc:
            raise RcsnnError(f"{name}: amplifier {amp} lacks parameter {exc}") from None
        if not (a0 > 0 and gbw > 0 and sr > 0 and figures[4] < figures[5]):
            raise RcsnnError(f"{name}: amplifier {amp}: a0, gbw and sr must be > 0 and its output swing not empty")
        rows.append((amp, *figures))
    names, *columns = zip(*rows)
    return Amplifiers(names, *(np.array(c, dtype=np.float64) for c in columns))


def assemble(circuit: Circuit) -> FastDeck | AmplifiedDeck:
    """The per-step maps of a :class:`Circuit` (see the module docstring; with amplifiers: :mod:`.fastamp`)."""
    if circuit.amplifiers is not None:
        return assemble_amplified(circuit, circuit.amplifiers)
    ct = circuit
    n = ct.neurons.size
    lines = ct.gains != 0
    total = np.bincount(ct.rows, weights=1 / ct.resistance, minlength=n)
    q = 1 + 1 / ct.gain
    rate = 1 / (ct.rl * ct.c) + total / (ct.gain * q * ct.c)
    sign = 1.0 if ct.form == "ideal" else -1.0
    after = np.exp(-rate * (ct.step - ct.win.span(ct.step)[1]))  # decay from the window's end to the clock edge
    return FastDeck(ct.name, ct.neurons, ct.step, ct.sample, np.exp(-rate * ct.step), np.exp(-ct.gon * ct.rwin.area / ct.c),
                    sign * kernel(ct.win, ct.step, rate) / (ct.c * q), np.exp(-rate * ct.sample), ct.threshold,
                    ct.hysteresis,
                    ct.rows[lines], ct.cols[lines], (ct.gains / ct.resistance)[lines], ct.sources, ct.levels, ct.feedback,
                    ct.reset_source, ct.clamp_lo * after, ct.clamp_hi * after)


def parse_deck(text: str, files: Mapping[str, str], steps: int, name: str = "deck") -> FastDeck | AmplifiedDeck:
    """The :class:`FastDeck` of a deck's ``text`` for ``steps`` clock periods; ``files`` maps the stimulus
    file names the deck replays to their text. One-line :class:`RcsnnError` for what it cannot model."""
    return assemble(read_circuit(text, files, steps, name))


def _window_node(text: str, name: str) -> str:
    """The op-amp form's synaptic window node: the ``win`` input of its ``rcsnn_line`` drivers."""
    nodes = {m.group(1) for m in re.finditer(r"^X\S+\s+\S+\s+(\S+)\s+\S+\s+rcsnn_line\b", text, flags=re.M)}
    if len(nodes) != 1:
        raise RcsnnError(f"{name}: op-amp form: the rcsnn_line drivers share no one window node ({sorted(nodes)})")
    return nodes.pop()


def run_deck(deck: FastDeck | AmplifiedDeck, steps: int | None = None) -> FastRun:
    """Simulate ``steps`` clock periods (default: all the deck's levels): the raster at the clock edges
    (comparator decisions) and the membranes there, from the deck's initial state and comparator outputs 0; each
    period is the deck's own ``advance`` (:class:`FastDeck`, or :class:`~rcsnn.analog.fastamp.AmplifiedDeck`)."""
    steps = deck.levels.shape[0] if steps is None else steps
    n = deck.neurons.size
    fed = deck.feedback >= 0
    state = deck.initial()
    level = deck.levels[0].copy()
    level[fed] = 0.0
    spikes = np.zeros((steps, n), dtype=np.int8)
    membranes, compared = np.empty((steps, n)), np.empty((steps, n))
    for k in range(steps):
        if k:
            level[~fed] = deck.levels[k, ~fed]
        j = np.bincount(deck.rows, weights=deck.weights * level[deck.cols], minlength=n)
        state, membranes[k], compared[k] = deck.advance(state, j, level[deck.reset_source], k)
        spikes[k] = compared[k] >= deck.threshold + deck.hysteresis * (0.5 - spikes[k - 1] if k else 0.5)
        level[fed] = spikes[k, deck.feedback[fed]]
    return FastRun(spikes, membranes, compared)
