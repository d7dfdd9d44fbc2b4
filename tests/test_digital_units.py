"""One Amaranth-simulator test per component of the digital core (rcsnn/digital/*)."""

from __future__ import annotations

import numpy as np
import pytest
from amaranth.sim import Simulator
from conftest import random_core

from rcsnn.digital.accumulator import READ_LATENCY, AccumulatorBank
from rcsnn.digital.controller import Controller
from rcsnn.digital.layout import build_image, place
from rcsnn.digital.neuron import LATENCY, NeuronLane
from rcsnn.digital.spikes import SpikeQueue
from rcsnn.digital.synapse import SynapseLane
from rcsnn.digital.wrapper import SerialWrapper
from rcsnn.ir.arrays import FixedFormat
from rcsnn.ir.graph import Graph


def simulate(dut, bench) -> None:
    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()


def test_accumulator_adds_back_to_back_and_clears():
    dut = AccumulatorBank(depth=8, width=12)
    rng = np.random.default_rng(0)
    adds = [(int(a), int(d)) for a, d in zip(rng.integers(0, 3, 40), rng.integers(-300, 300, 40))]
    expected = np.zeros(8, dtype=np.int64)
    for a, d in adds:
        expected[a] += d
    got = []

    async def bench(ctx):
        for a, d in adds:  # same address in consecutive cycles: the transparent read must see the last add
            ctx.set(dut.add_valid, 1)
            ctx.set(dut.add_addr, a)
            ctx.set(dut.add_delta, d)
            await ctx.tick()
        ctx.set(dut.add_valid, 0)
        await ctx.tick()
        samples = []
        for _ in range(2):  # the second pass reads the words the first one cleared
            for a in range(8):
                ctx.set(dut.rd_en, 1)
                ctx.set(dut.rd_addr, a)
                await ctx.tick()
                samples.append(ctx.get(dut.rd_data))
            ctx.set(dut.rd_en, 0)
            for _ in range(READ_LATENCY):
                await ctx.tick()
                samples.append(ctx.get(dut.rd_data))
        # the read of cycle c is on rd_data READ_LATENCY cycles later (READ_LATENCY - 1 samples on)
        got.extend(samples[READ_LATENCY - 1:][:8] + samples[8 + READ_LATENCY + READ_LATENCY - 1:][:8])

    simulate(dut, bench)
    assert got[:8] == expected.tolist()
    assert got[8:] == [0] * 8


@pytest.mark.parametrize("resets", [("zero", "subtract")])
def test_neuron_lane_matches_the_contract(resets):
    core = random_core(3, sizes=(5, 6), resets=resets, shared=False, fixed=FixedFormat(10, 5, 6))
    image = build_image(place(Graph.from_arrays(core), 1))
    dut = NeuronLane(image, 0)
    rng = np.random.default_rng(1)
    words = image.slots.n_words
    group = np.repeat(np.arange(2), image.slots.words)
    bias = np.array(image.bias[0])
    beta, theta = np.array(image.beta_q)[group], np.array(image.theta_q)[group]
    subtract = np.array(image.subtract)[group]
    v, s = np.zeros(words, dtype=np.int64), np.zeros(words, dtype=np.int64)
    acc_max = 1 << (image.acc_width - 1)
    passes = [(rng.integers(-512, 512, words), rng.integers(-acc_max, acc_max, words)) for _ in range(4)]
    expected, got = [], []
    for x, acc in passes:
        leak = np.where(subtract, ((beta * v) >> image.Fb) - theta * s, (beta * v * (1 - s)) >> image.Fb)
        v = np.clip(leak + x + bias + acc, -512, 511)
        s = (v >= theta).astype(np.int64)
        expected += list(zip(v.tolist(), s.tolist()))

    async def bench(ctx):
        for x, acc in passes:
            for a in range(words + LATENCY + 1):
                ctx.set(dut.in_valid, a < words)
                ctx.set(dut.in_addr, min(a, words - 1))
                ctx.set(dut.in_x, int(x[min(a, words - 1)]))
                ctx.set(dut.acc_data, int(acc[a - 1]) if 1 <= a <= words else 0)
                _, _, valid, spike, out_v = await ctx.tick().sample(dut.out_valid, dut.out_spike, dut.out_v)
                if valid:
                    got.append((out_v, spike))

    simulate(dut, bench)
    assert got == expected


def test_synapse_lane_walks_csr_rows_under_back_pressure():
    core = random_core(4, sizes=(9, 9), density=0.5, shared=False, cross=True)
    image = build_image(place(Graph.from_arrays(core), 2))
    lane = 1
    dut = SynapseLane(image, lane)
    rng = np.random.default_rng(2)
    events = [(int(b), int(j)) for b, j in zip(rng.integers(0, len(image.blocks), 30), rng.integers(0, 9, 30))]
    expected = []
    for b, j in events:
        block = image.blocks[b]
        word = image.rowptr[lane][block.row_base + j]
        start, count = word & ((1 << image.start_bits) - 1), word >> image.start_bits
        for e in image.entries[lane][start:start + count]:
            row, negative = e & ((1 << image.row_bits) - 1), e >> image.row_bits
            expected.append((block.post_word_base + row, -block.alpha_q if negative else block.alpha_q))
    got = []

    async def bench(ctx):
        pending = list(events)
        for _ in range(400):
            offer = bool(pending) and rng.random() < 0.7
            ctx.set(dut.ev_valid, offer)
            if pending:
                ctx.set(dut.ev_block, pending[0][0])
                ctx.set(dut.ev_pre, pending[0][1])
            _, _, ready, valid, addr, delta = await ctx.tick().sample(
                dut.ev_ready, dut.add_valid, dut.add_addr, dut.add_delta)
            if offer and ready:
                pending.pop(0)
            if valid:
                got.append((addr, delta))
        assert not ctx.get(dut.busy)

    simulate(dut, bench)
    assert got == expected


def test_spike_queue_replays_words_as_block_events():
    core = random_core(5, sizes=(6, 7), shared=False, cross=True)  # group g0 feeds two blocks, g1 one
    image = build_image(place(Graph.from_arrays(core), 4))
    dut = SpikeQueue(image)
    fired = [(0, 0b1011), (1, 0b0100), (3, 0b1001)]  # (word, lane mask)
    expected = []
    for word, mask in fired:
        g = 0 if word < image.slots.word_base[1] else 1
        for k in range(4):
            if mask >> k & 1:
                j = (word - image.slots.word_base[g]) * 4 + k
                expected += [(image.pre_first[g] + n, j) for n in range(image.pre_count[g])]
    got = []
    rng = np.random.default_rng(3)

    async def bench(ctx):
        ctx.set(dut.clear, 1)
        await ctx.tick()
        ctx.set(dut.clear, 0)
        for word, mask in fired:
            ctx.set(dut.wr_valid, 1)
            ctx.set(dut.wr_word, word)
            ctx.set(dut.wr_mask, mask)
            await ctx.tick()
        ctx.set(dut.wr_valid, 0)
        ctx.set(dut.start, 1)
        await ctx.tick()
        ctx.set(dut.start, 0)
        for _ in range(60):
            ready = rng.random() < 0.6
            ctx.set(dut.ev_ready, ready)
            _, _, valid, block, pre = await ctx.tick().sample(dut.ev_valid, dut.ev_block, dut.ev_pre)
            if valid and ready:
                got.append((block, pre))
        assert not ctx.get(dut.busy)

    simulate(dut, bench)
    assert got == expected


def test_controller_sequences_phases_and_counts_cycles():
    dut = Controller(n_words=5)
    log = []

    async def bench(ctx):
        ctx.set(dut.start, 1)
        ctx.set(dut.prop_busy, 1)
        ctx.set(dut.x_valid, 1)
        for cycle in range(30):
            ctx.set(dut.prop_busy, cycle < 4)
            ctx.set(dut.update_busy, 0 < cycle - 4 < 10)
            _, _, issue, addr, done, cycles = await ctx.tick().sample(dut.issue, dut.issue_addr, dut.done, dut.cycles)
            ctx.set(dut.start, 0)
            log.append((issue, addr, done, cycles))
            if done:
                break

    simulate(dut, bench)
    issued = [addr for issue, addr, _, _ in log if issue]
    assert issued == [0, 1, 2, 3, 4]
    assert log[-1][2] == 1 and log[-1][3] == len(log) - 1


def test_serial_wrapper_shifts_pins_through_the_core_ports():
    image = build_image(place(Graph.from_arrays(random_core(10, sizes=(4, 4))), 2))
    dut = SerialWrapper(image)
    n_in = sum(len(s) for s in dut.inputs)
    seen, captured = [], []

    async def bench(ctx):
        ctx.set(dut.si, 1)
        for _ in range(n_in):
            await ctx.tick()
        assert all(ctx.get(s) == (1 << len(s)) - 1 for s in dut.inputs)
        ctx.set(dut.capture, 1)
        captured.append(ctx.get(dut.outputs[0]))
        await ctx.tick()
        ctx.set(dut.capture, 0)
        for _ in range(len(dut.outputs[0])):
            seen.append(ctx.get(dut.so))
            await ctx.tick()

    simulate(dut, bench)
    assert sum(bit << k for k, bit in enumerate(seen)) == captured[0]
