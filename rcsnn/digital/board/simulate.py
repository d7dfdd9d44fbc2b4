"""The whole board top in Amaranth's simulator: a host's UART bytes in, the board's UART bytes out.

:func:`run_board_pysim` builds :class:`~rcsnn.digital.board.top.BoardTop` around a
:class:`~rcsnn.digital.lm.top.LanguageModelTop`, drives its ``rx`` pin with 8N1 frames of the given
bytes (``divisor`` cycles per bit) and decodes its ``tx`` pin the way a host's UART would (sampling
each bit in its middle, checking the stop bit). It stops once every byte was sent, the LM is idle and
the line has been idle for a frame; a run without progress for the LM's per-character cycle limit is
a one-line :class:`~rcsnn.errors.RcsnnError`.

:func:`run_board_verilator` does the same with the board top written as Verilog (``rcsnn_board_sim.v``,
:func:`~rcsnn.digital.emit.write_core`) in Verilator, with the harness ``templates/board_harness.cpp.j2``
(the host's UART in C++, no Python per cycle): for cores too large for Amaranth's simulator.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from ...errors import RcsnnError
from ...templates import render
from ...tools import BUILD_TIMEOUT, run
from ..emit import write_core
from ..lm.image import LMImage
from ..lm.run import char_cycle_limit, lm_timeout
from ..lm.top import LanguageModelTop
from ..simulate import bench_error
from .top import BoardTop

__all__ = ["BoardRun", "send", "run_board_pysim", "SIM_TOP", "run_board_verilator"]

#: Verilog module of the board top for simulation (the UART, FIFO and protocol around the whole LM top).
SIM_TOP = "rcsnn_board_sim"


@dataclass(frozen=True)
class BoardRun:
    """What the host saw: the bytes on ``tx``, stop-bit errors on ``tx``, the ``error`` LED, cycles and wall seconds."""

    received: bytes
    tx_framing_errors: int
    error_led: bool
    cycles: int
    seconds: float


async def send(ctx, pin, data: bytes, divisor: int, bad_stop: frozenset[int] = frozenset()) -> None:
    """A host's UART in an Amaranth testbench: ``data`` as 8N1 frames on ``pin``, ``divisor`` cycles per bit, a 0
    stop bit for the bytes whose index is in ``bad_stop``; the line left idle (high) for one more bit."""
    for index, byte in enumerate(data):
        for bit in [0] + [byte >> i & 1 for i in range(8)] + [int(index not in bad_stop)]:
            ctx.set(pin, bit)
            await ctx.tick().repeat(divisor)
    ctx.set(pin, 1)
    await ctx.tick().repeat(divisor)


def run_board_pysim(lm: LMImage, data: bytes, divisor: int = 4, *, bad_stop: frozenset[int] = frozenset(),
                    timeout: float | None = None) -> BoardRun:
    """Send ``data`` (frames of :func:`~rcsnn.digital.board.top.frame`) to the board top of ``lm``; the bytes
    whose index is in ``bad_stop`` are sent with a 0 stop bit (framing errors)."""
    from amaranth.sim import Simulator

    dut = BoardTop(LanguageModelTop(lm), divisor)
    limit = _limit(lm, data, divisor)
    deadline = time.monotonic() + (lm_timeout(lm, len(data), "amaranth") if timeout is None else timeout)
    state = {"sent": False, "cycle": 0, "errors": 0, "led": False}
    received = bytearray()

    async def host_tx(ctx):
        await send(ctx, dut.rx, data, divisor, bad_stop)
        state["sent"] = True

    async def wait(ctx, cycles: int) -> int:
        """``cycles`` cycles later: the ``tx`` line (the wall-clock limit checked on the way)."""
        for _ in range(cycles):
            await ctx.tick()
            state["cycle"] += 1
            if state["cycle"] % 256 == 0 and time.monotonic() > deadline:
                raise RcsnnError("Amaranth simulator (board top): timed out (wall-clock limit of the run)")
        return ctx.get(dut.tx)

    async def host_rx(ctx):
        quiet = 0
        while not (state["sent"] and quiet > 11 * divisor and not ctx.get(dut.busy)):
            if await wait(ctx, 1):
                quiet += 1
                if quiet > limit:
                    raise RcsnnError(f"Amaranth (board top): no byte on tx within {limit} cycles after "
                                     f"{len(received)} bytes (cycle limit)")
                continue
            quiet = 0
            await wait(ctx, divisor // 2)  # the middle of the start bit, then of each data bit and the stop bit
            byte = 0
            for i in range(8):
                byte |= await wait(ctx, divisor) << i
            if await wait(ctx, divisor):
                received.append(byte)
            else:
                state["errors"] += 1
        state["led"] = bool(ctx.get(dut.error))

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(host_tx)
    sim.add_testbench(host_rx)
    start = time.perf_counter()
    sim.run()
    seconds = time.perf_counter() - start
    return BoardRun(bytes(received), state["errors"], state["led"], state["cycle"], seconds)


def _limit(lm: LMImage, data: bytes, divisor: int) -> int:
    """Most cycles without a byte on the line: a character at its cycle limit, then the frames of ``data``."""
    return char_cycle_limit(lm) + 12 * divisor * (len(data) + 1)


def run_board_verilator(lm: LMImage, data: bytes, work: Path, divisor: int = 4, *,
                        timeout: float | None = None) -> BoardRun:
    """:func:`run_board_pysim` in Verilator: writes ``rcsnn_board_sim.v``, the harness and ``host.bin`` to ``work``,
    builds ``work/obj_board`` (no ``--trace``) and runs it."""
    work = Path(work)
    work.mkdir(parents=True, exist_ok=True)
    write_core(BoardTop(LanguageModelTop(lm), divisor), work, name=SIM_TOP)
    (work / "board_harness.cpp").write_text(render("rcsnn.digital", "board_harness.cpp.j2", divisor=divisor,
                                                   limit=_limit(lm, data, divisor)))
    (work / "host.bin").write_bytes(data)
    run(["verilator", "--cc", "--exe", "--build", "-j", "2", "-O2", "-Wno-WIDTH", "--top-module", SIM_TOP,
         "--Mdir", "obj_board", f"{SIM_TOP}.v", "board_harness.cpp", "-o", f"V{SIM_TOP}"],
        cwd=work, what="verilator build (board top)", timeout=BUILD_TIMEOUT)
    timeout = lm_timeout(lm, len(data), "verilator") if timeout is None else timeout
    proc = run([str((work / "obj_board" / f"V{SIM_TOP}").resolve())], cwd=work, check=False,
               what="Verilator (board top)", timeout=timeout)
    error = bench_error(proc.stdout, "Verilator (board top)")
    if error is not None:
        raise error
    found = {line.split()[0]: line.split()[1:] for line in proc.stdout.splitlines()
             if line.startswith(("RECEIVED", "TXERRORS", "LED", "CYCLES"))}
    if proc.returncode != 0 or len(found) != 4:
        tail = " | ".join((proc.stdout + proc.stderr).strip().splitlines()[-3:])
        raise RcsnnError(f"Verilator (board top) did not finish (exit {proc.returncode}): {tail}")
    return BoardRun(bytes(int(b, 16) for b in found["RECEIVED"]), int(found["TXERRORS"][0]), found["LED"][0] == "1",
                    int(found["CYCLES"][0]), proc.seconds)
