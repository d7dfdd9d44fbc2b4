"""Run the LM top: in Amaranth's simulator, and (emitted by :mod:`.emit`) in Verilator.

Both runners offer the prompt bytes on ``prompt`` (``last`` on the final one), then clock until
``busy`` falls, and return a :class:`ChipRun`: the bytes of ``text``, the core's raster (``trace``)
and the cycles. ``stall`` holds ``text.ready`` low every third cycle (back-pressure, as a UART gives).
A run that makes no progress — no prompt byte accepted, no text byte, no step finished — for
:func:`char_cycle_limit` cycles is a one-line :class:`~rcsnn.errors.RcsnnError`; the whole run has a
wall-clock timeout.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...errors import RcsnnError
from ...tools import BUILD_TIMEOUT, run
from ..cycles import RATE_FLOOR, cycle_limit
from ..simulate import bench_error, unpack_spikes
from .image import LMImage
from .top import LanguageModelTop

__all__ = ["LM_TOP", "ChipRun", "char_cycle_limit", "lm_timeout", "run_lm_pysim", "build_lm_verilator",
           "run_lm_verilator"]

#: Verilog module (and Verilator class ``V<LM_TOP>``) of the LM top.
LM_TOP = "rcsnn_lm"


@dataclass(frozen=True)
class ChipRun:
    """What the chip did: generated ``text`` (UTF-8 bytes), the core's ``spikes`` ``(steps, N)`` int8, the cycles
    spent on the prompt (reset to the last byte accepted) and on generating (from then until ``busy`` fell), and the
    simulator's wall seconds."""

    text: bytes
    spikes: np.ndarray
    prompt_cycles: int
    generate_cycles: int
    seconds: float


def char_cycle_limit(lm: LMImage) -> int:
    """Most cycles between two signs of progress of a working chip: a step at its cycle limit, the readout of a step
    where every neuron fired (``2 · n_words + N``), the search and the choice (``2 V``), and slack."""
    slots = lm.core.slots
    return cycle_limit(lm.core) + 2 * slots.n_words + slots.n_words * slots.lanes + 2 * lm.vocab_size + 64


def lm_timeout(lm: LMImage, characters: int, simulator: str) -> float:
    """Wall seconds allowed for ``characters`` prompt and generated characters (every one at the cycle limit)."""
    return 60.0 + characters * char_cycle_limit(lm) * lm.core.lanes / RATE_FLOOR[simulator]


def _check(prompt: bytes, length: int, seed: int) -> None:
    if not prompt:
        raise RcsnnError("--prompt: must not be empty")
    if not 0 <= length < 1 << 16:
        raise RcsnnError(f"--length {length}: the chip's length port is 16 bits (0..65535)")
    if not 0 <= seed < 1 << 32:
        raise RcsnnError(f"--seed {seed}: the chip's seed port is 32 bits")


def run_lm_pysim(lm: LMImage, prompt: bytes, length: int, sample: bool, seed: int, *, stall: bool = False,
                 timeout: float | None = None) -> ChipRun:
    """The LM top in Amaranth's simulator (~1 K cycles/s: small cores only)."""
    from amaranth.sim import Simulator

    _check(prompt, length, seed)
    dut = LanguageModelTop(lm, trace=True)
    image, limit = lm.core, char_cycle_limit(lm)
    deadline = time.monotonic() + (lm_timeout(lm, len(prompt) + length, "amaranth") if timeout is None else timeout)
    text, raster, masks = bytearray(), [], np.zeros(image.slots.n_words, dtype=np.int64)
    count = {"cycle": 0, "idle": 0, "prompt": 0}

    async def tick(ctx) -> tuple[int, int]:
        ready = not (stall and count["cycle"] % 3 == 2)
        ctx.set(dut.text.ready, ready)
        _, _, p_valid, p_ready, t_valid, t_byte, s_valid, word, mask, stepped, busy = await ctx.tick().sample(
            dut.prompt.valid, dut.prompt.ready, dut.text.valid, dut.text.payload, dut.spikes.valid,
            dut.spikes.payload.word, dut.spikes.payload.mask, dut.stepped, dut.busy)
        count["cycle"] += 1
        progress = (p_valid and p_ready) or (t_valid and ready) or stepped
        if t_valid and ready:
            text.append(t_byte)
        if s_valid:
            masks[word] = mask
        if stepped:
            raster.append(masks.copy())
            masks[:] = 0
        count["idle"] = 0 if progress else count["idle"] + 1
        if count["idle"] > limit:
            raise RcsnnError(f"Amaranth (LM top): no progress within {limit} cycles after {len(raster)} steps and "
                             f"{len(text)} text bytes (cycle limit)")
        if count["cycle"] % 256 == 0 and time.monotonic() > deadline:
            raise RcsnnError("Amaranth simulator (LM top): timed out (wall-clock limit of the run)")
        return p_ready, busy

    async def bench(ctx):
        ctx.set(dut.length, length)
        ctx.set(dut.sample, int(sample))
        ctx.set(dut.seed, seed)
        for i, byte in enumerate(prompt):
            ctx.set(dut.prompt.valid, 1)
            ctx.set(dut.prompt.payload, {"byte": byte, "last": int(i == len(prompt) - 1)})
            while not (await tick(ctx))[0]:
                pass
        ctx.set(dut.prompt.valid, 0)
        count["prompt"] = count["cycle"]
        while (await tick(ctx))[1]:
            pass

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    start = time.perf_counter()
    sim.run()
    seconds = time.perf_counter() - start
    return ChipRun(bytes(text), _raster(lm, raster), count["prompt"], count["cycle"] - count["prompt"], seconds)


def _raster(lm: LMImage, masks: list) -> np.ndarray:
    packed = np.array(masks, dtype=np.int64).reshape(len(masks), lm.core.slots.n_words)
    return unpack_spikes(lm.core, packed)


def build_lm_verilator(work: Path) -> Path:
    """Compile ``rcsnn_lm.v`` + ``lm_harness.cpp`` in ``work`` into ``work/obj_lm`` (no ``--trace``) unless the same
    sources were built there."""
    obj = work / "obj_lm"
    exe, stamp = obj / f"V{LM_TOP}", obj / "rcsnn.sources"
    sources = hashlib.sha256(b"".join((work / f).read_bytes() for f in (f"{LM_TOP}.v", "lm_harness.cpp"))).hexdigest()
    if exe.exists() and stamp.exists() and stamp.read_text() == sources:
        return exe
    run(["verilator", "--cc", "--exe", "--build", "-j", "2", "-O2", "-Wno-WIDTH", "--top-module", LM_TOP,
         "--Mdir", "obj_lm", f"{LM_TOP}.v", "lm_harness.cpp", "-o", f"V{LM_TOP}"],
        cwd=work, what="verilator build (LM top)", timeout=BUILD_TIMEOUT)
    stamp.write_text(sources)
    return exe


def run_lm_verilator(lm: LMImage, work: Path, prompt: bytes, length: int, sample: bool, seed: int, *,
                     stall: bool = False, timeout: float | None = None) -> ChipRun:
    """The emitted LM top (``rcsnn verilog --lm`` files in ``work``) in Verilator: ``prompt.bin`` holds the prompt;
    the harness prints one ``STEP t mask_0 ..`` line per step, ``TEXT`` (hex bytes) and ``CYCLES prompt generate``."""
    _check(prompt, length, seed)
    exe = build_lm_verilator(work).resolve()
    (work / "prompt.bin").write_bytes(prompt)
    args = [f"+length={length}", f"+sample={int(sample)}", f"+seed={seed}"] + ["+stall"] * stall
    timeout = lm_timeout(lm, len(prompt) + length, "verilator") if timeout is None else timeout
    proc = run([str(exe), *args], cwd=work, check=False, what="Verilator (LM top)", timeout=timeout)
    error = bench_error(proc.stdout, "Verilator (LM top)")
    if error is not None:
        raise error
    lines = proc.stdout.splitlines()
    found = {line.split()[0]: line.split()[1:] for line in lines if line.startswith(("TEXT", "CYCLES"))}
    if proc.returncode != 0 or set(found) != {"TEXT", "CYCLES"}:
        tail = " | ".join((proc.stdout + proc.stderr).strip().splitlines()[-3:])
        raise RcsnnError(f"Verilator (LM top) did not finish (exit {proc.returncode}): {tail}")
    masks = [[int(m, 16) for m in line.split()[2:]] for line in lines if line.startswith("STEP ")]
    cycles = [int(c) for c in found["CYCLES"]]
    return ChipRun(bytes(int(b, 16) for b in found["TEXT"]), _raster(lm, masks), cycles[0], cycles[1], proc.seconds)
