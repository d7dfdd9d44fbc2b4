"""SPICE netlists of a core: deterministic text, one deck per block, a JSON sidecar.

A deck simulates the neurons of one *block* (a range of global neuron indices):

* ``closed`` mode: one block holding every neuron; each comparator output ``c<j>`` drives
  neuron j's spike lines and reset — the circuit runs on its own;
* ``open`` mode: several blocks; every spike line and reset is driven by a level ``s<j>``
  replayed from the *reference* raster, and the comparator outputs ``c<i>`` are only observed,
  so each step is checked given the reference past (``docs/contract.md``);
* ``lockstep`` mode: the blocks of ``open`` mode, closed through the host: a block's own
  comparators drive its neurons' resets and its own spike lines, and the spike level of every
  presynaptic neuron of another block is a DC source ``Vs<j>`` (node ``s<j>``, at first 0 V) the host
  sets each step to that neuron's latched spike, read from its own block's deck
  (:mod:`rcsnn.analog.lockstep`; host-driven inputs only).

Spike counts (groups with ``max_spikes`` ≠ 1): a neuron's level is its count s (s volts), so its lines
carry s·V_S; its comparator is a count quantiser (:meth:`DeckWriter.quantiser`), its zero reset takes
min(V(level), 1) (``Bz<i>``). Decks of binary cores are unchanged.

Physical scale (:mod:`rcsnn.analog.scale`): at S volts per unit every line is driven at S·V_S per unit (the
resistors do not change), the thresholds are S·θ·e^{−t_clk/2τ} and ngspice's absolute tolerances are scaled by
S; a bounded core's neurons get a membrane clamp ``Bclamp<i>`` at S·bound·e^{d/τ} and its decks Gear order 2;
with rails, :func:`write_netlists` refuses a clamp level or reference membrane beyond them. The header and the
sidecar's ``circuit.scale`` state it; at the default scale an unbounded core's decks are the bytes they were.

A real amplifier (``--opamp``, :mod:`rcsnn.analog.opamp`): each neuron of the op-amp form is its feedback network
``Xn<i>`` (``rcsnn_feedback``) and an amplifier ``Xa<i> 0 sum<i> mem<i> vdd vss PART`` on the rails' sources ``Vdd``/``Vss``;
``rcsnn_opamps.lib`` (and a user's model file) are copied beside the decks, and the sidecar's ``circuit.opamp`` holds the
part and its first-order figures.

Stimulus levels (inputs, and reference spikes in open mode) are replayed by XSPICE
``filesource`` models from text files ``<deck>_stim<k>.txt`` beside the deck: a PWL source costs
ngspice a scan of all its earlier points at every evaluation (quadratic in the run length), a
file source reads forward. ngspice 39's filesource reads lines of at most 511 characters
(:data:`STIM_LINE`), so levels are packed into as many files as that takes.

Node names (global neuron index ``i``): ``mem<i>`` membrane, ``sum<i>`` summing node, ``c<i>``
comparator output, ``e<i>``/``n<i>`` excitatory/inhibitory spike lines, ``x<i>`` input level,
``xl<i>`` input line. Synapse ``T_ij = +1`` is a resistor ``e<j> → sum<i>``, ``-1`` one from
``n<j>``; its value is ``R_unit(post) / α``. The input level of step k is ``x[k] + b`` (model
units), driven as ``V_S · level · w(u)`` through ``R_unit``.

The deck's skeleton (title, comments, ``.include``, ``.save``, ``.tran``, ``.control``) is the
Jinja2 template ``rcsnn/analog/templates/deck.cir.j2``; :class:`DeckWriter` makes the element lines.

Same inputs, same bytes: values print as Python ``repr`` floats, times with 12 digits, in
neuron order, with no dates or absolute paths (the cell library is copied beside the decks, and
decks name it and their stimulus files relative to their directory).
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import replace
from importlib import resources
from pathlib import Path

import numpy as np

from .. import __version__
from ..errors import RcsnnError
from ..files import manifest
from ..ir.arrays import Core
from ..ir.graph import Graph
from ..ir.reference import simulate_float
from ..templates import render
from .design import DAC_RISE, DFF_DELAY, SIDECAR, Design, input_resistor, tau_of, tran_line
from .eseries import Snapping, parse_snap
from .neurons import MAX_COMPARATORS, ZERO_RESETS, count_levels, plan
from .opamp import LIBRARY as OPAMP_LIBRARY
from .opamp import Part, conductances, parse_opamp, sizing
from .partition import Block, blocks
from .scale import CLAMP_RELTOL, check_rails, clamp_levels, clamp_line, scale_record

__all__ = ["LIBRARY", "EXT_LIBRARY", "GMIN", "SIDECAR", "STIMULUS", "MODES", "LOCKSTEP", "INPUTS", "STIM_LINE",
           "library_text", "tran_line", "samples_per_step", "host_tran_line", "stimulus_files", "DeckWriter", "core_digest",
           "write_netlists"]

LIBRARY = "rcsnn_cells.lib"
#: The leak-free cells (IF, a CubaLIF state with β_s = 1), copied and included only where a deck uses them.
EXT_LIBRARY = "rcsnn_cells_ext.lib"
#: The currents x (steps, N) the decks replay, float64, beside them (``rcsnn verify --netlist DIR``).
STIMULUS = "stimulus.npy"
MODES = ("closed", "open")
#: The mode of host-coupled block decks (:mod:`rcsnn.analog.lockstep`): written by the stepper, not offered as ``--mode``.
LOCKSTEP = "lockstep"
#: Where a deck's input levels come from: ``files`` (replayed by filesource, the whole run known in advance)
#: or ``host`` (one DC source per neuron whose value the host changes between steps; closed loop only:
#: ``closed`` or ``lockstep`` mode, which requires it).
INPUTS = ("files", "host")
#: ngspice ``gmin`` (S) of decks with leak-free cells (:meth:`DeckWriter.options`).
GMIN = 1e-20
#: Longest line of a stimulus file: ngspice 39's filesource reads lines through a 512-byte buffer.
STIM_LINE = 500


def library_text(name: str = LIBRARY) -> str:
    """A cell library shipped as package data (the one source of ``rcsnn_cells.lib``, ``rcsnn_cells_ext.lib`` and
    ``rcsnn_opamps.lib``)."""
    return resources.files("rcsnn.analog").joinpath(name).read_text()


def samples_per_step(design: Design, max_step: float) -> int:
    """Output rows per step of a host-driven deck (``inputs="host"``): ``M`` with ``Δt/M`` after each clock
    edge (s) after the comparators' outputs settle and, plus the ``max_step`` (s) by which ngspice may pass
    that row before it stops, before the synaptic window opens (the host changes the input levels there)."""
    settle = design.clock_edge + DFF_DELAY + DAC_RISE
    room = design.syn_start - max_step
    rows = math.ceil(2 * design.step / room) if room > 0 else 0
    if rows < 1 or not settle < design.step / rows < room:
        raise RcsnnError(f"host-driven deck: no output row fits between the spike levels settling ({settle:g} s after "
                         f"the clock edge) and the synaptic window ({design.syn_start:g} s) less the maximum time step "
                         f"({max_step:g} s); lower --max-step")
    return rows


def host_tran_line(design: Design, steps: int, max_step: float) -> str:
    """``.tran`` of a host-driven deck: an output row every ``Δt/M`` (:func:`samples_per_step`) up to
    (steps + ½)Δt, so row ``kM`` is v at the k-th clock edge and row ``kM + 1`` the spike level s[k]."""
    rows = samples_per_step(design, max_step)
    return f".tran {design.step / rows:.12g} {(steps + 0.5) * design.step:.12g} 0 {max_step:.12g}"


def _num(x: float) -> str:
    return repr(float(x))


def _level(x: float) -> str:
    """A level as text that reads back to the same double (integers without a fraction)."""
    return str(int(x)) if x.is_integer() and abs(x) < 1e15 else repr(x)


def stimulus_files(stem: str, columns: list[tuple[str, np.ndarray]], design: Design) -> list[tuple[str, list[str], str]]:
    """Files replaying ``columns`` [(node, level of each step)] as [(file name, nodes, text)].

    Row times: 0, then ``level_at`` and ``level_at + edge`` after each clock edge (old, then new
    level), and a last row one step after the end; the value of step t (1-based) is ``levels[t-1]``.
    """
    steps = len(columns[0][1]) if columns else 0
    times, rows = ["0"], [0]
    for k in range(1, steps):
        t = k * design.step + design.level_at
        times += [f"{t:.12g}", f"{t + design.edge:.12g}"]
        rows += [k - 1, k]
    times.append(f"{(steps + 1) * design.step:.12g}")
    rows.append(steps - 1)
    budget = STIM_LINE - max(map(len, times), default=0)
    files, chunk, used = [], [], 0
    for node, levels in columns + [("", None)]:
        text = [_level(x) for x in levels.tolist()] if levels is not None else []
        width = 1 + max(map(len, text), default=0)
        if chunk and (levels is None or used + width > budget):
            body = "".join(t + "".join(" " + c[r] for _, c in chunk) + "\n" for t, r in zip(times, rows))
            files.append((f"{stem}_stim{len(files)}.txt", [n for n, _ in chunk], body))
            chunk, used = [], 0
        if levels is not None:
            if width > budget:
                raise RcsnnError(f"stimulus {node}: a level is {width} characters, too long for ngspice's filesource")
            chunk.append((node, text))
            used += width
    return files


class DeckWriter:
    """Builds the text of one deck; see the module docstring for the circuit and names."""

    #: When set, every resistor is printed as its part value (a snapped core's, :mod:`rcsnn.analog.snap`).
    snap: Snapping | None = None

    def __init__(self, core: Core, design: Design, levels: np.ndarray, reference: np.ndarray | None,
                 inputs: str = "files", counts: np.ndarray | None = None):
        """``levels`` (steps, N): x + b, the input level of each step (``inputs="host"``: the first step's
        only, the host sets the others); ``reference`` (steps, N): the raster replayed in open mode, else None;
        ``counts`` (G,): each group's K_eff (:func:`~rcsnn.analog.neurons.count_levels`; None: all binary)."""
        self.core, self.design = core, design
        self.levels = levels
        self.inputs = inputs
        self.reference = reference
        self.own: range | None = None  # lockstep mode: the neurons of the deck being written
        self.sources: list[int] = []  # lockstep mode: the host-set levels of the deck last written (:meth:`hosted`)
        self.plan = plan(core, design)
        self.group_of = np.repeat(np.arange(len(core.groups)), [g.size for g in core.groups])
        self.count = np.ones(core.n_neurons, dtype=np.int64) if counts is None else np.asarray(counts)[self.group_of]
        self.limits: dict[int, float] = {}  # group index -> largest step its error budget allows (s)
        #: (V_lo, V_hi) per neuron (V) of a bounded core's membrane clamps (:mod:`rcsnn.analog.scale`), else None
        self.clamps = clamp_levels(core, design, self.plan) if core.bounded() else None
        if design.form == "opamp":
            if (self.plan.reset == "zero_drop_input").any():
                raise RcsnnError("--form opamp: reset 'zero_drop_input' gates a neuron's window, and the op-amp form "
                                 "gates each line instead; use --form ideal")
            if self.plan.cuba.any():
                raise RcsnnError("--form opamp: CubaLIF neurons are built in the ideal form only; use --form ideal")
            if self.count.max(initial=1) > MAX_COMPARATORS:
                g = core.groups[int(self.group_of[int(self.count.argmax())])]
                raise RcsnnError(f"--form opamp: group {g.name!r} reaches spike counts up to {int(self.count.max())} "
                                 f"(K_eff), {int(self.count.max())} comparators per neuron; the op-amp form builds at "
                                 f"most {MAX_COMPARATORS}; use --form ideal")
        #: The real amplifier of every neuron (``--opamp``, :mod:`rcsnn.analog.opamp`), else None.
        self.part = parse_opamp(design.opamp) if design.opamp else None
        if self.part is not None:
            if not (math.isfinite(design.rail_low) and math.isfinite(design.rail_high)):
                raise RcsnnError(f"--opamp {design.opamp}: the amplifiers need their supply: give --rails LO,HI")
            self.part.check_rails(design.rail_low, design.rail_high)
            if self.part.library_name in (LIBRARY, EXT_LIBRARY, OPAMP_LIBRARY):
                raise RcsnnError(f"--opamp {design.opamp}: rename the file: {self.part.library_name} is a library of "
                                 "rcsnn's")

    def ohms(self, r: float) -> str:
        """A resistor's value (Ω) as deck text: ``r``, or its part value when snapping."""
        return _num(r if self.snap is None else self.snap.resistor(r))

    def input_gain(self, i: int) -> float:
        """Gain of neuron i's input line: ±V_S, times R_x'/R_x when snapping (the input DAC absorbs the snapped
        input resistor, so the current is the core's x + b)."""
        gain = self.design.polarity * self.design.line_volts
        return gain if self.snap is None else gain * self.snap.resistor(self.plan.r_in[i]) / self.plan.r_in[i]

    def level(self, j: int) -> str:
        """Node carrying neuron j's spike level (0/1 V, or its count in volts): its comparator, or the replayed
        reference (open mode) or host-set level (lockstep mode, a neuron of another block)."""
        foreign = self.reference is not None or (self.own is not None and j not in self.own)
        return f"s{j}" if foreign else f"c{j}"

    def synapses(self, block: Block) -> tuple[list[str], set[int], set[int]]:
        """Resistor lines into the block, and the neurons whose e- and n-lines they use."""
        lines, used_e, used_n = [], set(), set()
        offsets = self.core.offsets()
        for b, syn in enumerate(self.core.synapses):
            post, pre = offsets[syn.post], offsets[syn.pre]
            lo, hi = max(post.start, block.start), min(post.stop, block.stop)
            if lo >= hi:
                continue
            weights = self.core.block_weights(syn)  # ternary: ±alpha; dense: alpha·M_ij, the sign picks the line
            inside = (weights.rows >= lo - post.start) & (weights.rows < hi - post.start)
            for r_i, c_j, w in zip(weights.rows[inside], weights.cols[inside], weights.value[inside]):
                i, j = post.start + int(r_i), pre.start + int(c_j)
                line = "e" if w > 0 else "n"
                (used_e if line == "e" else used_n).add(j)
                lines.append(f"R{b}_{i}_{j} {line}{j} sum{i} {self.ohms(self.plan.r_in[i] / abs(w))}")
        p = self.plan
        weights = p.self_weight
        for i in range(block.start, block.stop):
            if weights[i]:
                used_n.add(i)  # weight −θ, or −β·θ: β(v − θ s) = βv − βθ s
                lines.append(f"Rself{i} n{i} {self.membrane_node(i)} {self.ohms(p.r_mem[i] / weights[i])}")
        return lines, used_e, used_n

    def membrane_node(self, i: int) -> str:
        """Summing node of neuron i's membrane: ``sum<i>`` (LIF, IF), ``sv<i>`` (CubaLIF: sum<i> is its state's)."""
        return f"sv{i}" if self.plan.cuba[i] else f"sum{i}"

    def threshold(self, i: int) -> str:
        """Comparator threshold node of neuron i: its group's ``th<g>``, or its own ``thn<i>`` in a group whose
        neurons differ in β or θ."""
        g = self.group_of[i]
        return f"th{g}" if self.plan.uniform[g] else f"thn{i}"

    def cell(self, window: str, rl: float, gon: float) -> str:
        """The instance text after the ports: a leaky cell (``rl``, Ω) or, for rl = inf, a leak-free integrator."""
        d = self.design
        leaky = math.isfinite(rl)
        if self.part is not None:  # the feedback network; the amplifier is the instance Xa<i> (:meth:`neurons`)
            head = "rcsnn_feedback" if leaky else "rcsnn_feedback_if"
        else:
            name = ("rcsnn_neuron_" if leaky else "rcsnn_integrator_") + d.form
            head = (f"{window} {name}" if d.form == "ideal" else f"{name} gain={_num(d.gain)}")
        return f"{head} c={_num(d.capacitance)}" + (f" rl={self.ohms(rl)}" if leaky else "") + f" gon={_num(gon)}"

    def neurons(self, block: Block, stimulus: list) -> list[str]:
        """Cell, comparator and input line of each neuron; input levels go to ``stimulus`` (host inputs: a DC
        source per neuron, ``Vx<i>``, instead)."""
        d, p = self.design, self.plan
        out = []
        for i in range(block.start, block.stop):
            gon = d.g_reset if p.reset[i] in ZERO_RESETS else 0.0
            window = p.membrane_window(i)
            rst = self.level(i)
            if self.count[i] > 1 and p.reset[i] in ZERO_RESETS:  # a zero reset uses min(s, 1)
                out.append(f"Bz{i} z{i} 0 V=min(V({rst}),1)")
                rst = f"z{i}"
            if p.reset[i] == "zero_drop_input":  # the membrane's window, closed after a spike: v = (βv + J)(1 − s)
                out.append(f"Bwg{i} wg{i} 0 V=V({window})*(1-V({rst}))")
                window = f"wg{i}"
            rl = p.tau[i] / d.capacitance
            if p.cuba[i]:
                out.append(f"Xs{i} sum{i} syn{i} 0 0 {self.cell(p.charge_window(i), p.tau_syn[i] / d.capacitance, 0.0)}")
                out.append(f"Es{i} sl{i} 0 syn{i} 0 1")
                out.append(f"Rs{i} sl{i} sv{i} {self.ohms(p.r_transfer[i])}")
            out.append(f"Xn{i} {self.membrane_node(i)} mem{i} {rst} rwin {self.cell(window, rl, gon)}")
            if self.part is not None:
                out.append(f"Xa{i} 0 {self.membrane_node(i)} mem{i} vdd vss {self.part.instance()}")
            if self.clamps is not None and (np.isfinite(self.clamps[0][i]) or np.isfinite(self.clamps[1][i])):
                out.append(clamp_line(i, self.clamps[0][i], self.clamps[1][i], d.form, self.membrane_node(i)))
            out += self.quantiser(i) if self.count[i] > 1 else [self.comparator(i)]
            if self.inputs == "host":
                out.append(f"Vx{i} x{i} 0 DC {_num(self.levels[0, i])}")
            elif self.levels[:, i].any():
                stimulus.append((f"x{i}", self.levels[:, i]))
            else:
                continue
            out.append(self.line(f"x{i}", f"x{i}", f"xl{i}", self.input_gain(i)))
            out.append(f"{input_resistor(i)} xl{i} sum{i} {self.ohms(p.r_in[i])}")
        return out

    def comparator(self, i: int) -> str:
        """Neuron i's clocked comparator, driving its spike level ``c<i>``: ``rcsnn_comparator``, or
        ``rcsnn_comparator_hys`` with the design's hysteresis."""
        hys = self.design.hysteresis
        cell = f"rcsnn_comparator_hys hys={_num(hys)}" if hys else "rcsnn_comparator"
        return f"Xc{i} mem{i} {self.threshold(i)} clk c{i} {cell}"

    def quantiser(self, i: int) -> list[str]:
        """The count s = min(max(floor(v/θ), 1), K_eff) for v ≥ θ, else 0, of neuron i, held for the next step as
        the level ``c<i>`` = s V. Ideal form: an *ideal flash ADC*, a behavioural source per bit of the clamped
        floor(V(mem)/V(th)) (``Bbit<i>_<b>``), each latched by a comparator against 0.5 V (``half``) at the clock
        edge, summed with weights 2^b (``Bc<i>``). Op-amp form: K_eff comparators against k·V(th), k = 1..K_eff
        (nodes ``<th>_<k>``, k ≥ 2), summed (a thermometer code)."""
        th, k_eff = self.threshold(i), int(self.count[i])
        if self.design.hysteresis:
            raise RcsnnError(f"--hysteresis: neuron {i} counts up to {k_eff} spikes per step (max_spikes != 1); only "
                             "single-spike comparators take hysteresis")
        if self.design.form == "ideal":
            q = f"min(max(floor(V(mem{i})/V({th})),0),{k_eff})"
            weights = [2 ** b for b in range(k_eff.bit_length())]
            out = [line for b, w in enumerate(weights)
                   for line in (f"Bbit{i}_{b} bit{i}_{b} 0 V=floor({q}/{w})-2*floor({q}/{2 * w})",
                                f"Xc{i}_{b} bit{i}_{b} half clk c{i}_{b} rcsnn_comparator")]
        else:
            weights = [1] * k_eff
            out = [f"Xc{i}_{b} mem{i} {self.count_threshold(th, b + 1)} clk c{i}_{b} rcsnn_comparator"
                   for b in range(k_eff)]
        return out + [f"Bc{i} c{i} 0 V=" + "+".join(f"{w}*V(c{i}_{b})" for b, w in enumerate(weights))]

    @staticmethod
    def count_threshold(th: str, k: int) -> str:
        """Node of the op-amp form's k-th count comparator threshold k·V(th) (k = 1: ``th`` itself)."""
        return th if k == 1 else f"{th}_{k}"

    def line(self, name: str, level: str, out: str, gain: float) -> str:
        """Driver of line ``out`` at ``gain`` · V(``level``): ideal form, a linear VCVS ``E<name>`` (the
        neuron cell gates its input current with the synaptic window); op-amp form, ``rcsnn_line``
        ``X<name>``, gated by the window itself (``gain · V(level) · V(win)``)."""
        if self.design.form == "ideal":
            return f"E{name} {out} 0 {level} 0 {_num(gain)}"
        return f"X{name} {level} win {out} rcsnn_line gain={_num(gain)}"

    def lines(self, used_e: set[int], used_n: set[int], block: Block, stimulus: list) -> list[str]:
        """Spike-line drivers; in open mode the replayed reference levels go to ``stimulus``, in lockstep mode
        the other blocks' levels are DC sources ``Vs<j>`` (:meth:`hosted`)."""
        d = self.design
        self.sources = self.hosted(used_e | used_n)
        out = [f"Vs{j} s{j} 0 DC 0" for j in self.sources]
        if self.reference is not None:
            resets = {i for i in range(block.start, block.stop) if self.plan.reset[i] in ZERO_RESETS}
            for j in sorted(used_e | used_n | resets):
                stimulus.append((f"s{j}", np.concatenate([[0.0], self.reference[:-1, j].astype(np.float64)])))
        for j in sorted(used_e):
            out.append(self.line(f"e{j}", self.level(j), f"e{j}", d.polarity * d.line_volts))
        for j in sorted(used_n):
            out.append(self.line(f"i{j}", self.level(j), f"n{j}", -d.polarity * d.line_volts))
        return out

    def hosted(self, used: set[int]) -> list[int]:
        """The presynaptic neurons among ``used`` whose spike levels the host sets (lockstep mode), in order."""
        return sorted(j for j in used if self.level(j) == f"s{j}") if self.reference is None else []

    def globals(self, block: Block) -> list[str]:
        d = self.design
        # the clock falls from level_at to reset_start, breakpoints ngspice already has (fewer restarts)
        fall = d.reset_start - d.level_at
        out = [f"Vclk clka 0 PULSE(0 1 {d.step:.12g} {d.clock_edge:.12g} {fall:.12g} "
               f"{d.level_at - d.clock_edge:.12g} {d.step:.12g})",
               "Aclk [clka] [clk] rcsnn_clock_adc",
               f"Vrwin rwin 0 PULSE(0 1 {d.reset_start:.12g} {d.edge:.12g} {d.edge:.12g} "
               f"{d.reset_width:.12g} {d.step:.12g})",
               f"Vwin win 0 PULSE(0 1 {d.syn_start:.12g} {d.edge:.12g} {d.edge:.12g} {d.syn_width:.12g} {d.step:.12g})"]
        if self.part is not None:
            out += [f"Vdd vdd 0 DC {_num(d.rail_high)}", f"Vss vss 0 DC {_num(d.rail_low)}"]
        if self.plan.cuba[block.start:block.stop].any():
            out.append(f"Vtwin twin 0 PULSE(0 1 {d.tail_start:.12g} {d.tail_edge:.12g} {d.tail_edge:.12g} "
                       f"{d.reset_width:.12g} {d.step:.12g})")
        first = {}
        for i in range(block.start, block.stop):
            first.setdefault(self.threshold(i), i)
        for node, i in first.items():
            out.append(f"V{node} {node} 0 DC {_num(self.plan.v_compare[i])}")
        counting = [i for i in range(block.start, block.stop) if self.count[i] > 1]
        if counting and d.form == "ideal":
            out.append("Vhalf half 0 DC 0.5")
        elif counting:
            extra = {self.count_threshold(self.threshold(i), k): k * self.plan.v_compare[i]
                     for i in counting for k in range(2, int(self.count[i]) + 1)}
            out += [f"V{node} {node} 0 DC {_num(v)}" for node, v in extra.items()]
        return out

    def libraries(self) -> list[str]:
        """The cell libraries the decks include: ``rcsnn_cells_ext.lib`` too if a cell is leak-free, and the amplifiers'
        (``rcsnn_opamps.lib``, or the user's file) with ``--opamp``."""
        out = [LIBRARY, EXT_LIBRARY] if self.plan.uses_ext else [LIBRARY]
        if self.part is not None:  # the feedback cells (and the macromodel), and a user's model file
            out += [OPAMP_LIBRARY, *([self.part.library_name] if self.part.library_name else [])]
        return out

    def library(self, name: str) -> str:
        """The text of library ``name`` of :meth:`libraries`."""
        return self.part.text if self.part is not None and name == self.part.library_name else library_text(name)

    def opamp_record(self, reference) -> dict:
        """``circuit.opamp``: the part, and for a named part its first-order errors per group
        (:func:`~rcsnn.analog.opamp.sizing`) from the float reference's run (``reference``: membranes and spikes) if
        given."""
        record = self.part.record()
        if isinstance(self.part, Part):
            p = self.plan
            if reference is not None:
                v = reference.membranes
                changes = np.abs(np.diff(v, axis=0, prepend=0.0)).max(axis=0)
                peaks = np.where(reference.spikes > 0, np.abs(v), 0.0).max(axis=0)
            else:
                changes = peaks = np.zeros(p.theta.size)
            inputs = np.ones(p.theta.size, bool) if self.inputs == "host" else self.levels.any(axis=0)  # an Rx<i>
            g = conductances(self.core, p, inputs)
            record["sizing"] = sizing(self.core, self.part, self.design, g, changes, peaks)
        return record

    def options(self) -> str:
        """``.options``: ``interp`` (output rows at exact times); with leak-free cells also ``gmin`` = :data:`GMIN`
        (ngspice's default 1e-12 S on a membrane node is a leak of 1e-6 per µs step at C = 1 pF, which an IF
        neuron has no leak resistor to hide it in); Gear order 2 where the design says (clamps), and a bounded
        core's ``reltol`` = :data:`~rcsnn.analog.scale.CLAMP_RELTOL` (Newton converged through the clamp); at S ≠ 1 V per
        unit ngspice's absolute tolerances scaled by S (vntol 1 µV, abstol 1 pA, chgtol 1e-14 C), so a membrane
        unit is integrated as at 1 V per unit."""
        d = self.design
        out = ["interp"] + ([f"gmin={GMIN:g}"] if self.plan.uses_ext else [])
        out += [f"method={d.method} maxord=2"] if d.method != "trap" else []
        out += [f"reltol={CLAMP_RELTOL:g}"] if self.core.bounded() else []
        if d.volts_per_unit != 1.0:
            out += [f"{k}={v * d.volts_per_unit:.6g}" for k, v in (("vntol", 1e-6), ("abstol", 1e-12), ("chgtol", 1e-14))]
        return " ".join(out)

    def max_step(self, block: Block) -> float:
        """ngspice maximum step (s): the design's rule, and no more than any of the block's groups' budget allows;
        in a host-driven deck also at most a quarter of ``syn_start``, which keeps it below the output row spacing
        Δt/M (:func:`samples_per_step`): with a larger one ngspice 39 integrates the step after a ``resume`` wrongly
        (measured: 1.3e-4 V on a membrane at 20 ns against 12.5 ns rows, 3e-12 V at 10 ns)."""
        groups = set(self.group_of[block.start:block.stop].tolist())
        p = self.plan
        taus = [*p.tau[block.start:block.stop], *p.tau_syn[block.start:block.stop][p.cuba[block.start:block.stop]]]
        taus = [t if math.isfinite(t) else self.design.step for t in taus]  # leak-free: the clock is its time scale
        host = [self.design.syn_start / 4] if self.inputs == "host" else []
        return min([self.design.deck_max_step(taus), *host, *(self.limits[g] for g in groups if g in self.limits)])

    def stimulus(self, stem: str, columns: list) -> tuple[list[str], dict[str, str]]:
        """filesource elements replaying ``columns`` [(node, levels per step)], and their files."""
        lines, files = [], {}
        for k, (name, nodes, text) in enumerate(stimulus_files(stem, columns, self.design)):
            files[name] = text
            lines.append(f"Astim{k} [{' '.join(nodes)}] rcsnn_stim{k}")
            lines.append(f'.model rcsnn_stim{k} filesource(file="{name}" amploffset=[{" 0" * len(nodes)} ] '
                         f'amplscale=[{" 1" * len(nodes)} ] timeoffset=0 timescale=1 timerelative=false amplstep=false)')
        return lines, files

    def deck(self, block: Block, header: list[str]) -> tuple[str, dict[str, str], int]:
        """The deck's text, its stimulus files and its number of synapse resistors."""
        steps = self.levels.shape[0]
        if self.own is not None:
            self.own = range(block.start, block.stop)
        synapses, used_e, used_n = self.synapses(block)
        columns: list = []
        neurons = self.neurons(block, columns)
        lines = self.lines(used_e, used_n, block, columns)
        stimulus, files = self.stimulus(block.stem, columns)
        tran = host_tran_line if self.inputs == "host" else tran_line
        text = render("rcsnn.analog", "deck.cir.j2", stem=block.stem, start=block.start, stop=block.stop,
                      header=header, libraries=self.libraries(), options=self.options(), globals=self.globals(block),
                      neurons=neurons,
                      spike_lines=lines, stimulus=stimulus, synapses=synapses,
                      tran=tran(self.design, steps, self.max_step(block)))
        return text, files, len(synapses)


def _digest(*arrays: np.ndarray) -> str:
    h = hashlib.sha256()
    for a in arrays:
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()[:16]


def core_digest(core: Core) -> str:
    """SHA-256 of what a core's circuit is made of (groups, synapses, matrices, bias, Δt), whatever file it came from.

    A per-neuron parameter enters as the SHA-256 of its float64 values; a group's ``beta_syn``,
    ``current_delay``, ``skew`` and ``max_spikes``, and the saturation bounds, only where they are not the LIF defaults
    (so a LIF core's digest is the one it always had)."""
    def value(x):
        return float(x) if np.ndim(x) == 0 else hashlib.sha256(np.ascontiguousarray(x, dtype=np.float64)).hexdigest()

    def group(g):
        extra = [(k, value(getattr(g, k))) for k in ("beta_syn", "current_delay", "skew") if np.any(getattr(g, k))]
        extra += [("max_spikes", g.max_spikes)] if g.max_spikes != 1 else []
        extra += [(k, value(getattr(g, k))) for k in ("v_min", "v_max") if np.isfinite(getattr(g, k)).any()]
        return (g.name, g.size, value(g.beta), value(g.theta), g.reset, *extra)

    h = hashlib.sha256(json.dumps([[group(g) for g in core.groups],
                                   [(s.pre, s.post, s.matrix, s.alpha, s.delay) for s in core.synapses],
                                   sorted(core.matrices), core.dt]).encode())
    for name in sorted(core.matrices):
        h.update(np.ascontiguousarray(core.matrices[name], dtype=np.float64 if core.is_dense(name) else np.int8).tobytes())
    h.update(np.ascontiguousarray(core.bias, dtype=np.float64).tobytes())
    return h.hexdigest()


def _group_entry(g, start: int, k_eff: int) -> dict:
    """A group in the sidecar: per-neuron parameters as lists; CubaLIF and retiming fields only where set; a
    count group's ``max_spikes`` and ``count_levels`` K_eff (the largest level its comparators show)."""
    def value(x):
        return np.asarray(x, dtype=np.float64).tolist() if np.ndim(x) else x

    entry = {"name": g.name, "size": g.size, "start": start, "beta": value(g.beta), "theta": value(g.theta),
             "reset": g.reset}
    entry.update({k: value(getattr(g, k)) for k in ("beta_syn", "current_delay", "skew") if np.any(getattr(g, k))})
    if g.max_spikes != 1:
        entry.update(max_spikes=g.max_spikes, count_levels=k_eff)
    return entry


def _budget_step(design: Design, g, history: float, state_history: float) -> float:
    """Largest ngspice step (s) the budget allows group ``g`` (:meth:`Design.budget_step`), at its smallest β and θ;
    a CubaLIF group's synaptic state too (its leak history ``state_history`` at its smallest β_s)."""
    theta = float(np.min(g.theta))
    h = design.budget_step(g, history, tau_of(design.step, float(np.min(g.beta))), theta)
    syn = np.ravel(g.beta_syn)
    if g.synaptic and (syn > 0).any():
        h = min(h, design.budget_step(g, state_history, tau_of(design.step, float(syn[syn > 0].min())), theta))
    return h


def write_netlists(graph: Graph, currents: np.ndarray, out_dir: str | Path, design: Design, mode: str = "closed",
                   reference: np.ndarray | None = None, stimulus: str = "", inputs: str = "files",
                   budget: bool = True, clipping: bool = False) -> dict:
    """Write the deck(s), the cell library and the sidecar ``core.json`` into ``out_dir``.

    ``currents`` are the external inputs x (steps, N) without bias; ``reference`` is the float
    reference raster (steps, N), required in open mode, where the decks are the blocks of the
    partitioned ``graph`` (:func:`~rcsnn.analog.partition.partition`). ``inputs="host"`` (closed mode):
    the input levels are DC sources the host changes between steps (``rcsnn generate --backend
    spice``, :mod:`rcsnn.analog.stream`), at first ``currents[0]`` + bias; the deck runs ``steps``
    steps, and ``currents`` are the run the host expects (the float reference's generation), for the budget.
    With ``budget``, each group's maximum step is chosen for the design's
    budget target and the a-priori error budget (:mod:`rcsnn.analog.budget`, a short calibration run in
    ngspice) is written into the sidecar, with the currents as ``stimulus.npy``; with rails, the reference's
    membranes must fit them (:func:`~rcsnn.analog.scale.check_rails`; ``clipping``: warn instead, and the header
    says so). Returns the sidecar dict.
    """
    core = graph.arrays()
    if mode not in (*MODES, LOCKSTEP):
        raise RcsnnError(f"--mode {mode!r}: not one of {MODES}")
    if inputs not in INPUTS or (inputs == "host" and mode == "open") or (mode == LOCKSTEP and inputs != "host"):
        raise RcsnnError(f"inputs {inputs!r}, mode {mode!r}: inputs not one of {INPUTS} (host: closed mode only, "
                         "or lockstep mode, which requires it)")
    currents = np.asarray(currents, dtype=np.float64)
    if currents.ndim != 2 or currents.shape[1] != core.n_neurons or currents.shape[0] < 1:
        raise RcsnnError(f"stimulus: currents of shape {currents.shape}, expected (steps >= 1, {core.n_neurons})")
    for syn in core.same_step_blocks():
        raise RcsnnError(f"synapses {syn.pre}->{syn.post}: delay 0 (same step); the clocked circuit carries spikes "
                         "to the next step only (delay 1); retime the stack first (rcsnn.ir.passes.retime, as verify does)")
    if mode == "open" and (reference is None or reference.shape != currents.shape):
        raise RcsnnError("open mode: a reference raster of the stimulus' shape is required")
    if core.bounded():  # the clamps' stiff conductance: Gear order 2 (the trapezoidal rule lets it ring)
        design = replace(design, method="gear")
    design.check()
    counts = ref = None
    if budget or core.multi_spike():
        ref = simulate_float(core, currents)
    if core.multi_spike():
        if inputs == "host":
            raise RcsnnError(f"group {core.multi_spike()[0].name!r}: spike counts (max_spikes != 1) are built in "
                             "open- and closed-loop decks with a known stimulus only, not in host-driven decks "
                             "(rcsnn generate --backend spice); pass --max-spikes 1 or verify with --backend spice")
        counts = count_levels(core, ref.membranes)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    parts = [Block(-1, 0, core.n_neurons)] if mode == "closed" else blocks(graph)
    record = design.record(core)
    writer = DeckWriter(core, design, currents + core.bias, reference if mode == "open" else None, inputs, counts)
    if writer.part is not None:  # a user's file by its copy beside the decks (not the path it was given by)
        record["design"]["opamp"] = writer.part.spec or design.opamp
        record["opamp"] = writer.opamp_record(ref)
    scale = scale_record(core, design, writer.plan)
    if scale is not None:
        checked, what = design, "rails"
        if isinstance(writer.part, Part):  # the membranes must fit the amplifier's output swing
            checked = replace(design, rail_low=design.rail_low + writer.part.headroom_low,
                              rail_high=design.rail_high - writer.part.headroom_high)
            what = f"{writer.part.name} output swing (the rails less its headroom)"
        clipped = check_rails(core, checked, writer.plan, ref.membranes, clipping, what) if budget else []
        record["scale"] = {**scale, **({"clipping": clipped} if clipped else {})}
    sidecar = {
        "rcsnn": __version__, "mode": mode, "steps": int(currents.shape[0]), "neurons": core.n_neurons,
        "stimulus": stimulus, "stimulus_sha256": hashlib.sha256(currents.tobytes()).hexdigest(),
        "core_sha256": core_digest(core),
        "reference_sha256": _digest(reference) if mode == "open" else None,
        "groups": [_group_entry(g, sl.start, int(counts[k]) if counts is not None else 1)
                   for k, (g, sl) in enumerate(zip(core.groups, core.offsets().values()))],
        "circuit": record, "library": LIBRARY, "decks": [],
    }
    header = ["* generated by rcsnn " + __version__ + " (rcsnn netlist); derived values also in " + SIDECAR,
              *("* " + line for line in json.dumps(record, indent=1, sort_keys=True).splitlines())]
    if inputs == "host":
        sidecar["inputs"] = inputs
    writer.own = range(0) if mode == LOCKSTEP else None
    snapped = graph.annotation("snap")  # a snapped core (rcsnn.analog.snap): part values, the rule in the sidecar
    if snapped is not None:
        writer.snap, sidecar["snap"] = parse_snap(snapped["rule"]), snapped
    if budget:  # the a-priori budget: the float reference of this stimulus, no circuit run
        from .budget import history, state_history

        top, (state_top, _) = history(core, ref.membranes, ref.spikes), state_history(core, ref)
        writer.limits = {k: _budget_step(design, g, float(top[sl].max()), float(state_top[sl].max()))
                         for k, (g, sl) in enumerate(zip(core.groups, core.offsets().values())) if g.size}
    for b in parts:
        text, files, resistors = writer.deck(b, header)
        (out / f"{b.stem}.cir").write_text(text)
        for name, table in files.items():
            (out / name).write_text(table)
        sidecar["decks"].append({"netlist": f"{b.stem}.cir", "stimulus": sorted(files), "start": b.start, "stop": b.stop,
                                 "max_step": writer.max_step(b), "resistors": resistors})
        if inputs == "host":
            sidecar["decks"][-1]["samples_per_step"] = samples_per_step(design, writer.max_step(b))
        if mode == LOCKSTEP:
            sidecar["decks"][-1]["hosted"] = writer.sources
    for name in writer.libraries():
        (out / name).write_text(writer.library(name))
    written = [name for d in sidecar["decks"] for name in (d["netlist"], *d["stimulus"])] + writer.libraries()
    if budget:
        from .budget import budget_record, calibrate, group_budgets

        # the calibration writes its decks with this function (budget does not import this module)
        steps = {g.name: max(d["max_step"] for d in sidecar["decks"] if d["start"] < sl.stop and sl.start < d["stop"])
                 for g, sl in zip(core.groups, core.offsets().values()) if g.size}
        groups = [g for g in core.groups if g.size]
        sidecar["budget"] = budget_record(group_budgets(core, design, steps, ref,
                                                        calibrate(design, groups, steps, write_netlists),
                                                        currents + core.bias))
        np.save(out / STIMULUS, currents)
        written.append(STIMULUS)
    sidecar["files"] = manifest(out, written)  # SHA-256 of every file: simulate refuses edited decks
    (out / SIDECAR).write_text(json.dumps(sidecar, indent=1, sort_keys=True) + "\n")
    return sidecar
