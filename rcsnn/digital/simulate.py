"""Run the core: Amaranth's simulator on the design, Verilator and Icarus on the emitted Verilog.

Every runner takes quantised currents ``xq`` ``(steps, N)`` int64 and returns a :class:`HardwareRun`
in neuron order; the HDL runners use the files written by :mod:`rcsnn.digital.emit` and the
harness/testbench there (stimulus ``x.hex``: one beat of L currents per line, slot order; the
memory images ``mem/*.hex`` are written through the load port first, see :mod:`.testbench`).

Every run is bounded twice (:mod:`rcsnn.digital.cycles`): a step that does not raise ``done``
within :func:`~rcsnn.digital.cycles.cycle_limit` cycles is a one-line :class:`RcsnnError` naming
the step, and the whole run has a wall-clock timeout (:func:`~rcsnn.digital.cycles.wall_timeout`,
from the number of steps). Icarus runs four-state: an X/Z on an output is an error too.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import RcsnnError
from ..ir.reference import raster_dtype
from ..tools import BUILD_TIMEOUT, ToolRun, run
from .core import NeuromorphicCore
from .cycles import cycle_limit, wall_timeout
from .layout import Image

__all__ = ["VERILATOR_FLAGS", "TRACE_FLAGS", "HardwareRun", "beats", "unpack_membranes", "unpack_spikes", "pysim_step",
           "run_pysim", "build_verilator", "run_verilator", "compile_icarus", "run_icarus", "bench_error"]

#: Verilator's own optimisations at their highest and X assignments and initial values as fast as possible (the
#: design resets or initialises every register and the benches load every memory: nothing reads an X). No
#: ``--trace``: a traced model is a separate build (:data:`TRACE_FLAGS`, in ``obj_dir_trace``) made only when a
#: waveform is asked for. (g++ -O2 instead of Verilator's -Os for the model, and Verilator 5.48 instead of 5.006,
#: measured no faster on the example: docs/digital.md.)
VERILATOR_FLAGS = ["-O3", "--x-assign", "fast", "--x-initial", "fast", "-Wno-WIDTH", "--top-module", "rcsnn_core"]
TRACE_FLAGS = ["--trace", "--Mdir", "obj_dir_trace"]

@dataclass(frozen=True)
class HardwareRun:
    """Spikes ``(steps, N)`` int8 (int32 spike counts in a core with counting groups), membranes ``(steps, N)`` int64
    (None if not traced), cycles per step, and the simulator's wall time in seconds (without builds)."""

    spikes: np.ndarray
    membranes: np.ndarray | None
    cycles: np.ndarray
    seconds: float = 0.0


def beats(image: Image, xq: np.ndarray) -> np.ndarray:
    """``(steps, N)`` currents -> ``(steps, n_words)`` packed beats (lane k at bit ``k * Wv``), as Python ints."""
    mask = (1 << image.Wv) - 1
    slots = image.slots.to_slots(np.asarray(xq, dtype=np.int64)) & mask
    out = np.zeros(slots.shape[:2], dtype=object)
    for k in range(image.lanes):
        out = out + (slots[..., k].astype(object) << (k * image.Wv))
    return out


def unpack_membranes(image: Image, packed: np.ndarray) -> np.ndarray:
    """``(steps, n_words)`` packed ``L × signed(Wv)`` words -> ``(steps, N)`` int64."""
    wv = image.Wv
    lanes = np.stack([(packed >> (k * wv)) & ((1 << wv) - 1) for k in range(image.lanes)], axis=-1).astype(np.int64)
    return image.slots.from_slots(np.where(lanes >= 1 << (wv - 1), lanes - (1 << wv), lanes))


def unpack_spikes(image: Image, words: np.ndarray) -> np.ndarray:
    """``(steps, n_words)`` lane masks -> ``(steps, N)`` int8; in a core with spike counts (``image.max_spikes``),
    the L counts of ``image.spike_bits`` bits (lane k at bit ``k * Wc``) -> int32 counts."""
    wc = image.spike_bits
    words = np.asarray(words, dtype=object if wc > 1 else np.int64)
    fields = np.stack([(words >> (k * wc)) & ((1 << wc) - 1) for k in range(image.lanes)], axis=-1)
    fields = fields.astype(raster_dtype(bool(image.max_spikes)))
    return image.slots.from_slots(fields)


async def pysim_step(ctx, dut: NeuromorphicCore, words: np.ndarray, masks: np.ndarray, membranes: np.ndarray, *,
                     step: int = 0, limit: int | None = None, deadline: float | None = None) -> int:
    """One step of ``dut`` (built with ``trace=True``) in an Amaranth testbench ``ctx``: pulse ``start``, stream
    the packed currents ``words`` ``(n_words,)`` (:func:`beats`), collect the lane masks into ``masks`` and the
    packed membranes into ``membranes`` ``(n_words,)`` until ``done``; returns the step's cycle count.

    A step without ``done`` after ``limit`` cycles (default :func:`~rcsnn.digital.cycles.cycle_limit`) or
    running past ``deadline`` (``time.monotonic()`` seconds) is an :class:`RcsnnError` naming ``step``."""
    n_words = len(words)
    limit = cycle_limit(dut.image) if limit is None else limit
    ctx.set(dut.start, 1)
    beat = 0
    for cycle in range(limit + 1):
        if cycle == limit:
            raise RcsnnError(f"Amaranth: step {step}: the core did not raise done within {limit} cycles (cycle limit)")
        if deadline is not None and cycle % 256 == 0 and time.monotonic() > deadline:
            raise RcsnnError(f"Amaranth simulator: timed out at step {step} (wall-clock limit of the run)")
        ctx.set(dut.x.valid, beat < n_words)
        ctx.set(dut.x.payload.as_value(), int(words[min(beat, n_words - 1)]))
        _, _, ready, sv, word, mask, mv, mword, v, done, count = await ctx.tick().sample(
            dut.x.ready, dut.spikes.valid, dut.spikes.payload.word, dut.spikes.payload.mask,
            dut.membranes.valid, dut.membranes.payload.word, dut.membranes.payload.v.as_value(),
            dut.done, dut.cycles)
        ctx.set(dut.start, 0)
        beat += bool(ready and beat < n_words)
        if sv:
            masks[word] = mask
        if mv:
            membranes[mword] = v
        if done:
            return int(count)


def run_pysim(image: Image, xq: np.ndarray, vcd: Path | None = None, *, timeout: float | None = None) -> HardwareRun:
    """Run ``steps`` steps in Amaranth's simulator (~25 K cycles/s: small cores only), every step within the
    cycle limit and the run within ``timeout`` wall seconds (default :func:`~rcsnn.digital.cycles.wall_timeout`)."""
    from amaranth.sim import Simulator

    dut = NeuromorphicCore(image, trace=True)
    stimulus = beats(image, xq)
    steps, n_words = stimulus.shape
    masks = np.zeros((steps, n_words), dtype=object)
    membranes = np.zeros((steps, n_words), dtype=object)
    cycles = np.zeros(steps, dtype=np.int64)

    limit = cycle_limit(image)
    deadline = time.monotonic() + (wall_timeout(image, steps, "amaranth") if timeout is None else timeout)

    async def bench(ctx):
        for t in range(steps):
            cycles[t] = await pysim_step(ctx, dut, stimulus[t], masks[t], membranes[t], step=t, limit=limit,
                                         deadline=deadline)

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    start = time.perf_counter()
    if vcd is None:
        sim.run()
    else:
        with sim.write_vcd(str(vcd)):
            sim.run()
    seconds = time.perf_counter() - start
    return HardwareRun(unpack_spikes(image, masks), unpack_membranes(image, membranes), cycles, seconds)


def _read_hex(path: Path) -> np.ndarray:
    return np.array([int(line, 16) for line in path.read_text().split()], dtype=object)


def _collect(image: Image, work: Path, steps: int, membranes: bool, seconds: float) -> HardwareRun:
    """Read ``spikes.hex``, ``cycles.txt`` and (optionally) ``membranes.hex`` written by a bench in ``work``."""
    n_words = image.slots.n_words
    words = np.loadtxt(work / "spikes.hex", dtype=str, ndmin=1)
    masks = np.array([int(w, 16) for w in words], dtype=object).reshape(steps, n_words)
    cycles = np.loadtxt(work / "cycles.txt", dtype=np.int64, ndmin=1)
    v = unpack_membranes(image, _read_hex(work / "membranes.hex").reshape(steps, n_words)) if membranes else None
    return HardwareRun(unpack_spikes(image, masks), v, cycles, seconds)


def bench_error(text: str, tool: str) -> RcsnnError | None:
    """The bench's first ``ERROR: ...`` line in ``text`` as a one-line error naming ``tool``, if any."""
    for line in text.splitlines():
        if line.startswith("ERROR:"):
            return RcsnnError(f"{tool}: {line[len('ERROR:'):].strip()}")
    return None


def _bench_output(proc: ToolRun, tool: str) -> None:
    """Raise on an ``ERROR:`` line (cycle limit, X/Z, a bad memory image) or unless the bench printed PASS or
    FAIL (a crash or a missing file is an error, a FAIL is data)."""
    error = bench_error(proc.stdout, tool)
    if error is not None:
        raise error
    if "PASS" not in proc.stdout and "FAIL" not in proc.stdout:
        tail = " | ".join((proc.stdout + proc.stderr).strip().splitlines()[-3:])
        raise RcsnnError(f"{tool} bench did not finish: {tail}")


def build_verilator(work: Path, trace: bool = False) -> Path:
    """Compile ``rcsnn_core.v`` + ``harness.cpp`` in ``work`` into ``obj_dir/Vrcsnn_core`` (``trace``: with VCD
    support, into ``obj_dir_trace/Vrcsnn_core``; 5-90 s, at most :data:`~rcsnn.tools.BUILD_TIMEOUT`) unless the
    same sources were built there with the same flags."""
    flags = [*VERILATOR_FLAGS, *(TRACE_FLAGS if trace else [])]
    obj = work / ("obj_dir_trace" if trace else "obj_dir")
    exe, stamp = obj / "Vrcsnn_core", obj / "rcsnn.sources"
    digest = hashlib.sha256(b"".join((work / f).read_bytes() for f in ("rcsnn_core.v", "harness.cpp"))
                            + " ".join(flags).encode()).hexdigest()
    if exe.exists() and stamp.exists() and stamp.read_text() == digest:
        return exe
    run(["verilator", "--cc", "--exe", "--build", "-j", "2", *flags, "rcsnn_core.v", "harness.cpp", "-o", "Vrcsnn_core"],
        cwd=work, what="verilator build", timeout=BUILD_TIMEOUT)
    stamp.write_text(digest)
    return exe


def run_verilator(image: Image, work: Path, steps: int, membranes: bool = False,
                  vcd_from: int | None = None, *, timeout: float | None = None) -> HardwareRun:
    """Run the Verilator harness on the files emitted in ``work`` (x.hex, expected.hex, mem/), stopping it after
    ``timeout`` seconds of wall time (default :func:`~rcsnn.digital.cycles.wall_timeout`; the build has its own)."""
    exe = build_verilator(work, trace=vcd_from is not None).resolve()
    args = [f"+steps={steps}"] + ["+membranes"] * membranes
    if vcd_from is not None:
        args += ["+vcd", f"+vcd_from={vcd_from}"]
    timeout = wall_timeout(image, steps, "verilator") if timeout is None else timeout
    proc = run([str(exe), *args], cwd=work, check=False, what="Verilator harness", timeout=timeout)
    _bench_output(proc, "Verilator")
    return _collect(image, work, steps, membranes, proc.seconds)


def compile_icarus(work: Path, steps: int = 1, sources: tuple[str, ...] = ("rcsnn_core.v",),
                   flags: tuple[str, ...] = ()) -> None:
    """``iverilog`` ``tb_rcsnn.v`` and ``sources`` in ``work`` into ``work/tb``
    (at most :data:`~rcsnn.tools.BUILD_TIMEOUT`)."""
    run(["iverilog", "-g2012", *flags, f"-Ptb.STEPS={steps}", "-o", "tb", "tb_rcsnn.v", *sources],
        cwd=work, what="iverilog", timeout=BUILD_TIMEOUT)


def run_icarus(image: Image, work: Path, steps: int, membranes: bool = False, vcd: bool = False, *,
               timeout: float | None = None, sources: tuple[str, ...] = ("rcsnn_core.v",), flags: tuple[str, ...] = (),
               plusargs: tuple[str, ...] = (), simulator: str = "icarus", tool: str = "Icarus") -> HardwareRun:
    """Compile ``tb_rcsnn.v`` with Icarus (with ``sources`` and ``flags``) and run it on the files emitted in
    ``work``, stopping ``vvp`` after ``timeout`` seconds of wall time (default
    :func:`~rcsnn.digital.cycles.wall_timeout` of ``simulator``; the compile has its own limit)."""
    compile_icarus(work, steps, sources, flags)
    timeout = wall_timeout(image, steps, simulator) if timeout is None else timeout
    proc = run(["vvp", "-n", "tb", *plusargs, *(["+membranes"] * membranes), *(["+vcd"] * vcd)], cwd=work,
               check=False, what=f"vvp ({tool})", timeout=timeout)
    _bench_output(proc, tool)
    return _collect(image, work, steps, membranes, proc.seconds)
