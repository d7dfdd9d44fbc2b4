"""The accumulator's registered read and its forwarding (rcsnn/digital/accumulator.py): back-to-back operations on one
address chain exactly, alone and in the whole core; the same bank without the forwarding (negative control) does not.
"""

from __future__ import annotations

import numpy as np
import pytest
from amaranth.sim import Simulator
from conftest import EXAMPLE_CHECKPOINT, random_core

from rcsnn.digital import core as core_module
from rcsnn.digital import formal
from rcsnn.digital.accumulator import READ_LATENCY, WRITE_LATENCY, AccumulatorBank
from rcsnn.digital.core import NeuromorphicCore
from rcsnn.digital.cycles import cycle_limit
from rcsnn.digital.layout import build_image, place
from rcsnn.digital.simulate import beats, pysim_step, unpack_spikes
from rcsnn.frontends.load import load_core
from rcsnn.ir.graph import Graph
from rcsnn.ir.reference import quantize_core, simulate_fixed


class Unforwarded(AccumulatorBank):
    """Wrong: S2 takes the registered read as it is, missing the writes of the two operations before."""

    @staticmethod
    def forward(hit1, hit2, w3, w4, q):
        return q


def operations(seed: int = 0, cycles: int = 400, depth: int = 6) -> list[tuple[str, int, int] | None]:
    """Per cycle ``None`` (idle), ``("add", addr, delta)`` or ``("read", addr, 0)``: few addresses, so an operation
    often meets one to its address 1, 2 and 3 cycles before."""
    rng = np.random.default_rng(seed)
    kinds = rng.choice(["add", "add", "add", "read", None], cycles)
    return [None if k is None else (str(k), int(rng.integers(0, depth)), int(rng.integers(-500, 500))) for k in kinds]


def same_address_at(ops, distance: int) -> int:
    """Operations that meet an operation to the same address ``distance`` cycles before."""
    return sum(1 for t in range(distance, len(ops)) if ops[t] and ops[t - distance] and ops[t][1] == ops[t - distance][1])


def bank_reads(bank_class, ops, depth: int = 6) -> tuple[list[int], list[int]]:
    """``(rd_data of every read, the model's sums)`` of ``ops`` through a ``bank_class`` of ``depth`` words."""
    dut = bank_class(depth=depth, width=14)
    model, expected, got = np.zeros(depth, dtype=np.int64), [], []

    async def bench(ctx):
        reads = []
        for t, op in enumerate([*ops, *[None] * (WRITE_LATENCY + 1)]):
            ctx.set(dut.add_valid, bool(op) and op[0] == "add")
            ctx.set(dut.rd_en, bool(op) and op[0] == "read")
            if op:
                kind, addr, delta = op
                ctx.set(dut.add_addr if kind == "add" else dut.rd_addr, addr)
                ctx.set(dut.add_delta, delta)
                if kind == "add":
                    model[addr] += delta
                else:
                    expected.append(int(model[addr]))
                    model[addr] = 0
                    reads.append(t + READ_LATENCY)
            await ctx.tick()
            # now in cycle t + 1: rd_data holds the read of cycle t + 1 - READ_LATENCY
            while reads and reads[0] == t + 1:
                got.append(ctx.get(dut.rd_data))
                reads.pop(0)

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return got, expected


def test_back_to_back_operations_on_one_address_are_forwarded():
    ops = operations()
    # the stimulus has what the forwarding is for: same address one, two and three cycles apart
    assert all(same_address_at(ops, d) > 20 for d in (1, 2, 3))
    got, expected = bank_reads(AccumulatorBank, ops)
    assert len(got) == len(expected) > 50 and any(expected)
    assert got == expected


def test_without_forwarding_the_bank_is_wrong():
    got, expected = bank_reads(Unforwarded, operations())
    assert len(got) == len(expected)
    assert sum(g != e for g, e in zip(got, expected)) > 10


def core_run(bank_class, monkeypatch, steps: int = 12):
    """The spikes of a random core (1 lane) in Amaranth's simulator with ``bank_class`` accumulators, the fixed-point
    reference's, and per lane the cycles of the accumulators' operations ``(cycle, address)``."""
    # sparse rows (about one synapse each): consecutive events often land on one post neuron
    core = random_core(2, sizes=(16, 16), resets=("zero", "subtract"), density=0.08)
    xq = quantize_core(core).quantize(core.input_currents(np.random.default_rng(5).standard_normal((steps, 5)) * 3.0))
    image = build_image(place(Graph.from_arrays(core), 1))
    banks = []

    class Recorded(bank_class):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            banks.append(self)

    monkeypatch.setattr(core_module, "AccumulatorBank", Recorded)
    dut = NeuromorphicCore(image, trace=True)
    stimulus = beats(image, xq)
    masks = np.zeros(stimulus.shape, dtype=object)
    membranes = np.zeros(stimulus.shape, dtype=object)
    seen: list[tuple[int, int]] = []

    async def bench(ctx):
        for t in range(steps):
            await pysim_step(ctx, dut, stimulus[t], masks[t], membranes[t], step=t, limit=cycle_limit(image))

    async def monitor(ctx):
        bank = banks[0]
        cycle = 0
        async for _, _, add, add_addr, rd, rd_addr in ctx.tick().sample(bank.add_valid, bank.add_addr, bank.rd_en,
                                                                        bank.rd_addr):
            if add or rd:
                seen.append((cycle, add_addr if add else rd_addr))
            cycle += 1

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.add_process(monitor)
    sim.run()
    return unpack_spikes(image, masks), simulate_fixed(core, xq).spikes, seen


def back_to_back(seen, distance: int) -> int:
    cycles = dict(seen)
    return sum(1 for c, a in seen if cycles.get(c - distance) == a)


@pytest.mark.parametrize("bank_class", [AccumulatorBank, Unforwarded], ids=["forwarded", "unforwarded"])
def test_the_core_is_bit_exact_only_with_forwarding(bank_class, monkeypatch):
    spikes, reference, seen = core_run(bank_class, monkeypatch)
    # the synapse lane adds to one word again one and two cycles later (consecutive events into one post)
    assert back_to_back(seen, 1) > 0 and back_to_back(seen, 2) > 0
    assert reference.any()
    if bank_class is AccumulatorBank:
        assert np.array_equal(spikes, reference)
    else:
        assert not np.array_equal(spikes, reference)


def test_the_formal_proof_fails_without_forwarding(monkeypatch, tmp_path):
    """The accumulator proof (rcsnn.digital.formal, default depth) finds the missing forwarding."""
    monkeypatch.setattr(formal, "AccumulatorBank", Unforwarded)
    result = formal.prove("accumulator", place(load_core(EXAMPLE_CHECKPOINT), 8), workdir=tmp_path)
    assert result.status == "FAIL"
    assert result.depth == formal.DEFAULT_DEPTH["accumulator"]
    assert any("a read returns the sum since the last read" in f or "the memory holds the sum" in f
               for f in result.failed), result.failed
