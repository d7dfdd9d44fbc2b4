"""SPICE netlists of a core: deterministic text, one deck per block, a JSON sidecar.

A deck simulates the neurons of one *block* (a range of global neuron indices):

* ``closed`` mode: one block holding every neuron; each comparator output ``c<j>`` drives
  neuron j's spike lines and reset — the circuit runs on its own;
* ``open`` mode: several blocks; every spike line and reset is driven by a level ``s<j>``
  replayed from the *reference* raster, and the comparator outputs ``c<i>`` are only observed,
  so each step is checked given the reference past (``docs/contract.md``).

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
from .design import DAC_RISE, DFF_DELAY, SIDECAR, Design, tran_line
from .partition import Block, blocks

__all__ = ["LIBRARY", "SIDECAR", "STIMULUS", "MODES", "INPUTS", "STIM_LINE", "library_text", "tran_line", "samples_per_step",
           "host_tran_line", "stimulus_files", "DeckWriter", "core_digest", "write_netlists"]

LIBRARY = "rcsnn_cells.lib"
#: The currents x (steps, N) the decks replay, float64, beside them (``rcsnn verify --netlist DIR``).
STIMULUS = "stimulus.npy"
MODES = ("closed", "open")
#: Where a deck's input levels come from: ``files`` (replayed by filesource, the whole run known in advance)
#: or ``host`` (one DC source per neuron whose value the host changes between steps; closed loop only).
INPUTS = ("files", "host")
#: Longest line of a stimulus file: ngspice 39's filesource reads lines through a 512-byte buffer.
STIM_LINE = 500


def library_text() -> str:
    """The cell library shipped as package data (the one source of ``rcsnn_cells.lib``)."""
    return resources.files("rcsnn.analog").joinpath(LIBRARY).read_text()


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

    def __init__(self, core: Core, design: Design, levels: np.ndarray, reference: np.ndarray | None,
                 inputs: str = "files"):
        """``levels`` (steps, N): x + b, the input level of each step (``inputs="host"``: the first step's
        only, the host sets the others); ``reference`` (steps, N): the raster replayed in open mode, else None."""
        self.core, self.design = core, design
        self.levels = levels
        self.inputs = inputs
        self.reference = reference
        self.values = [design.group(g) for g in core.groups]
        self.group_of = np.repeat(np.arange(len(core.groups)), [g.size for g in core.groups])
        self.subtract = core.reset_subtract()
        self.theta = core.per_neuron("theta")
        self.limits: dict[int, float] = {}  # group index -> largest step its error budget allows (s)

    def level(self, j: int) -> str:
        """Node carrying neuron j's 0/1 spike level: its comparator, or the replayed reference."""
        return f"c{j}" if self.reference is None else f"s{j}"

    def synapses(self, block: Block) -> tuple[list[str], set[int], set[int]]:
        """Resistor lines into the block, and the neurons whose e- and n-lines they use."""
        lines, used_e, used_n = [], set(), set()
        offsets = self.core.offsets()
        for b, syn in enumerate(self.core.synapses):
            post, pre = offsets[syn.post], offsets[syn.pre]
            lo, hi = max(post.start, block.start), min(post.stop, block.stop)
            if lo >= hi:
                continue
            rows = self.core.matrices[syn.matrix][lo - post.start:hi - post.start]
            r = _num(self.values[self.group_of[lo]].r_unit / syn.alpha)
            for r_i, c_j in zip(*np.nonzero(rows)):
                i, j = lo + int(r_i), pre.start + int(c_j)
                line = "e" if rows[r_i, c_j] > 0 else "n"
                (used_e if line == "e" else used_n).add(j)
                lines.append(f"R{b}_{i}_{j} {line}{j} sum{i} {r}")
        for i in range(block.start, block.stop):
            if self.subtract[i]:
                used_n.add(i)
                lines.append(f"Rself{i} n{i} sum{i} {_num(self.values[self.group_of[i]].r_unit / self.theta[i])}")
        return lines, used_e, used_n

    def neurons(self, block: Block, stimulus: list) -> list[str]:
        """Cell, comparator and input line of each neuron; input levels go to ``stimulus`` (host inputs: a DC
        source per neuron, ``Vx<i>``, instead)."""
        d = self.design
        cell = ("win " if d.form == "ideal" else "") + f"rcsnn_neuron_{d.form}" \
            + (f" gain={_num(d.gain)}" if d.form == "opamp" else "")
        out = []
        for i in range(block.start, block.stop):
            g = self.group_of[i]
            v = self.values[g]
            gon = 0.0 if self.subtract[i] else d.g_reset
            out.append(f"Xn{i} sum{i} mem{i} {self.level(i)} rwin {cell} "
                       f"c={_num(d.capacitance)} rl={_num(v.r_leak)} gon={_num(gon)}")
            out.append(f"Xc{i} mem{i} th{g} clk c{i} rcsnn_comparator")
            if self.inputs == "host":
                out.append(f"Vx{i} x{i} 0 DC {_num(self.levels[0, i])}")
            elif self.levels[:, i].any():
                stimulus.append((f"x{i}", self.levels[:, i]))
            else:
                continue
            out.append(self.line(f"x{i}", f"x{i}", f"xl{i}", d.polarity * d.v_spike))
            out.append(f"Rx{i} xl{i} sum{i} {_num(v.r_unit)}")
        return out

    def line(self, name: str, level: str, out: str, gain: float) -> str:
        """Driver of line ``out`` at ``gain`` · V(``level``): ideal form, a linear VCVS ``E<name>`` (the
        neuron cell gates its input current with the synaptic window); op-amp form, ``rcsnn_line``
        ``X<name>``, gated by the window itself (``gain · V(level) · V(win)``)."""
        if self.design.form == "ideal":
            return f"E{name} {out} 0 {level} 0 {_num(gain)}"
        return f"X{name} {level} win {out} rcsnn_line gain={_num(gain)}"

    def lines(self, used_e: set[int], used_n: set[int], block: Block, stimulus: list) -> list[str]:
        """Spike-line drivers; in open mode the replayed reference levels go to ``stimulus``."""
        d = self.design
        out = []
        if self.reference is not None:
            resets = {i for i in range(block.start, block.stop) if not self.subtract[i]}
            for j in sorted(used_e | used_n | resets):
                stimulus.append((f"s{j}", np.concatenate([[0.0], self.reference[:-1, j].astype(np.float64)])))
        for j in sorted(used_e):
            out.append(self.line(f"e{j}", self.level(j), f"e{j}", d.polarity * d.v_spike))
        for j in sorted(used_n):
            out.append(self.line(f"i{j}", self.level(j), f"n{j}", -d.polarity * d.v_spike))
        return out

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
        for g in sorted(set(self.group_of[block.start:block.stop].tolist())):
            out.append(f"Vth{g} th{g} 0 DC {_num(self.values[g].v_compare)}")
        return out

    def max_step(self, block: Block) -> float:
        """ngspice maximum step (s): the design's rule, and no more than any of the block's groups' budget allows."""
        groups = set(self.group_of[block.start:block.stop].tolist())
        return min([self.design.deck_max_step([self.values[g].tau for g in groups]),
                    *(self.limits[g] for g in groups if g in self.limits)])

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
        synapses, used_e, used_n = self.synapses(block)
        columns: list = []
        neurons = self.neurons(block, columns)
        lines = self.lines(used_e, used_n, block, columns)
        stimulus, files = self.stimulus(block.stem, columns)
        tran = host_tran_line if self.inputs == "host" else tran_line
        text = render("rcsnn.analog", "deck.cir.j2", stem=block.stem, start=block.start, stop=block.stop,
                      header=header, library=LIBRARY, globals=self.globals(block), neurons=neurons,
                      spike_lines=lines, stimulus=stimulus, synapses=synapses,
                      tran=tran(self.design, steps, self.max_step(block)))
        return text, files, len(synapses)


def _digest(*arrays: np.ndarray) -> str:
    h = hashlib.sha256()
    for a in arrays:
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()[:16]


def core_digest(core: Core) -> str:
    """SHA-256 of what a core's circuit is made of (groups, synapses, matrices, bias, Δt), whatever file it came from."""
    h = hashlib.sha256(json.dumps([[(g.name, g.size, g.beta, g.theta, g.reset) for g in core.groups],
                                   [(s.pre, s.post, s.matrix, s.alpha, s.delay) for s in core.synapses],
                                   sorted(core.matrices), core.dt]).encode())
    for name in sorted(core.matrices):
        h.update(np.ascontiguousarray(core.matrices[name], dtype=np.int8).tobytes())
    h.update(np.ascontiguousarray(core.bias, dtype=np.float64).tobytes())
    return h.hexdigest()


def write_netlists(graph: Graph, currents: np.ndarray, out_dir: str | Path, design: Design, mode: str = "closed",
                   reference: np.ndarray | None = None, stimulus: str = "", inputs: str = "files",
                   budget: bool = True) -> dict:
    """Write the deck(s), the cell library and the sidecar ``core.json`` into ``out_dir``.

    ``currents`` are the external inputs x (steps, N) without bias; ``reference`` is the float
    reference raster (steps, N), required in open mode, where the decks are the blocks of the
    partitioned ``graph`` (:func:`~rcsnn.analog.partition.partition`). ``inputs="host"`` (closed mode):
    the input levels are DC sources the host changes between steps (``rcsnn generate --backend
    spice``, :mod:`rcsnn.analog.stream`), at first ``currents[0]`` + bias; the deck runs ``steps``
    steps, and ``currents`` are the run the host expects (the float reference's generation), for the budget.
    With ``budget``, each group's maximum step is chosen for the design's
    budget target and the a-priori error budget (:mod:`rcsnn.analog.budget`, a short calibration run in
    ngspice) is written into the sidecar, with the currents as ``stimulus.npy``. Returns the sidecar dict.
    """
    core = graph.arrays()
    if mode not in MODES:
        raise RcsnnError(f"--mode {mode!r}: not one of {MODES}")
    if inputs not in INPUTS or (inputs == "host" and mode != "closed"):
        raise RcsnnError(f"inputs {inputs!r}: not one of {INPUTS} (host: closed mode only)")
    currents = np.asarray(currents, dtype=np.float64)
    if currents.ndim != 2 or currents.shape[1] != core.n_neurons or currents.shape[0] < 1:
        raise RcsnnError(f"stimulus: currents of shape {currents.shape}, expected (steps >= 1, {core.n_neurons})")
    for syn in core.same_step_blocks():
        raise RcsnnError(f"synapses {syn.pre}->{syn.post}: delay 0 (same step); the clocked circuit carries spikes "
                         "to the next step only (delay 1)")
    if mode == "open" and (reference is None or reference.shape != currents.shape):
        raise RcsnnError("open mode: a reference raster of the stimulus' shape is required")
    design.check()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    parts = blocks(graph) if mode == "open" else [Block(-1, 0, core.n_neurons)]
    record = design.record(core)
    sidecar = {
        "rcsnn": __version__, "mode": mode, "steps": int(currents.shape[0]), "neurons": core.n_neurons,
        "stimulus": stimulus, "stimulus_sha256": hashlib.sha256(currents.tobytes()).hexdigest(),
        "core_sha256": core_digest(core),
        "reference_sha256": _digest(reference) if mode == "open" else None,
        "groups": [{"name": g.name, "size": g.size, "start": sl.start, "beta": g.beta, "theta": g.theta, "reset": g.reset}
                   for g, sl in zip(core.groups, core.offsets().values())],
        "circuit": record, "library": LIBRARY, "decks": [],
    }
    header = ["* generated by rcsnn " + __version__ + " (rcsnn netlist); derived values also in " + SIDECAR,
              *("* " + line for line in json.dumps(record, indent=1, sort_keys=True).splitlines())]
    if inputs == "host":
        sidecar["inputs"] = inputs
    writer = DeckWriter(core, design, currents + core.bias, reference if mode == "open" else None, inputs)
    if budget:  # the a-priori budget: the float reference of this stimulus, no circuit run
        from .budget import history

        ref = simulate_float(core, currents)
        top = history(core, ref.membranes, ref.spikes)
        writer.limits = {k: design.budget_step(g, float(top[sl].max()))
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
    (out / LIBRARY).write_text(library_text())
    written = [name for d in sidecar["decks"] for name in (d["netlist"], *d["stimulus"])] + [LIBRARY]
    if budget:
        from .budget import budget_record, calibrate, group_budgets

        # the calibration writes its decks with this function (budget does not import this module)
        steps = {g.name: max(d["max_step"] for d in sidecar["decks"] if d["start"] < sl.stop and sl.start < d["stop"])
                 for g, sl in zip(core.groups, core.offsets().values()) if g.size}
        groups = [g for g in core.groups if g.size]
        sidecar["budget"] = budget_record(group_budgets(core, design, steps, ref.membranes, ref.spikes,
                                                        calibrate(design, groups, steps, write_netlists)))
        np.save(out / STIMULUS, currents)
        written.append(STIMULUS)
    sidecar["files"] = manifest(out, written)  # SHA-256 of every file: simulate refuses edited decks
    (out / SIDECAR).write_text(json.dumps(sidecar, indent=1, sort_keys=True) + "\n")
    return sidecar
