# amaranth: UnusedElaboratable=no
"""Board tops (`rcsnn synth DIR --board NAME`): the UART, the frame protocol and the whole top, UART bytes in -> out.

Positive runs: bytes through the receiver and the transmitter equal the bytes sent (Amaranth simulator,
async testbenches); the whole board top on the board core equals the fixed-LM reference. Negative controls:
a stop bit of 0 is a framing error (the byte is dropped, ``frame_error`` pulses); a frame with one
prompt byte broken on the line lights the error LED and answers the altered prompt, not the original one;
a placed design slower than the board's clock is refused; a design without the LM has no board top.
Behind ``-m slow``: the board top in Verilator (100 characters) and the bitstreams (Yosys, nextpnr,
ecppack/icepack).
"""

import pytest
from conftest import ROOT

from rcsnn.digital.board.bitstream import build_board, check_timing
from rcsnn.digital.board.boards import BOARDS
from rcsnn.digital.board.simulate import run_board_pysim, run_board_verilator, send
from rcsnn.digital.board.top import HEADER_BYTES, BoardTop, LMInstance, frame, lm_ports
from rcsnn.digital.board.uart import UARTReceiver, UARTTransmitter, divisor
from rcsnn.digital.layout import build_image, place
from rcsnn.digital.lm.image import lm_image
from rcsnn.errors import RcsnnError
from rcsnn.frontends.checkpoint import load_checkpoint
from rcsnn.model.lm_fixed import fixed_lm, lm_generate

BOARD_CORE = ROOT / "examples" / "board_3x8.rcsnn"
LANES = 2
PROMPT = b"12+34="
LENGTH = 6


def _uart_loop(data: bytes, bad_stop: set[int], cycles: int = 5):
    """``data`` sent as 8N1 into a receiver whose bytes go out through a transmitter; returns the bytes the
    receiver gave, the framing errors it flagged and the bytes decoded from the transmitter's line."""
    from amaranth import Module
    from amaranth.lib import wiring
    from amaranth.sim import Simulator

    m = Module()
    m.submodules.rx = rx = UARTReceiver(cycles)
    m.submodules.tx = tx = UARTTransmitter(cycles)
    wiring.connect(m, rx.data, tx.data)
    got, errors, line = [], [0], []

    async def host(ctx):
        await send(ctx, rx.rx, data, cycles, frozenset(bad_stop))
        await ctx.tick().repeat(30 * cycles)

    async def monitor(ctx):
        async for _, _, valid, ready, payload, error, level in ctx.tick().sample(
                rx.data.valid, rx.data.ready, rx.data.payload, rx.frame_error, tx.tx):
            if valid and ready:
                got.append(payload)
            errors[0] += error
            line.append(level)

    sim = Simulator(m)
    sim.add_clock(1e-6)
    sim.add_testbench(host)
    sim.add_testbench(monitor, background=True)
    sim.run()
    return bytes(got), errors[0], _decode(line, cycles)


def _decode(line: list[int], cycles: int) -> bytes:
    """A host's UART on a sampled line: start bit found, then each bit read in its middle (stop bit must be 1)."""
    out, t = bytearray(), 0
    while t < len(line):
        if line[t]:
            t += 1
            continue
        bits = [line[t + cycles // 2 + k * cycles] for k in range(10)] if t + 10 * cycles < len(line) else None
        if bits is None:
            break
        assert bits[0] == 0 and bits[9] == 1, f"bad frame on tx at sample {t}: {bits}"
        out.append(sum(b << i for i, b in enumerate(bits[1:9])))
        t += 10 * cycles - cycles // 2
    return bytes(out)


def test_uart_loops_bytes_and_flags_framing_errors():
    data = bytes([0x00, 0xFF, 0x55, 0xA5, 0x31, 0x80])
    got, errors, echoed = _uart_loop(data, set())
    assert got == data and echoed == data and errors == 0
    got, errors, echoed = _uart_loop(data, {2, 4})  # negative control: two stop bits of 0
    assert errors == 2
    assert got == echoed == bytes(b for i, b in enumerate(data) if i not in {2, 4})


def test_divisor_and_frame_refuse_bad_values():
    assert divisor(25e6, 115200) == 217 and divisor(12e6, 115200) == 104
    with pytest.raises(RcsnnError, match="--baud 2200000"):
        divisor(12e6, 2_200_000)  # 5.45 cycles per bit: 5 is 9 % fast
    with pytest.raises(RcsnnError, match="--baud 4000000"):
        divisor(12e6, 4_000_000)  # 3 cycles per bit
    with pytest.raises(RcsnnError, match="out of range"):
        frame(b"a", 1 << 16, False, 0)
    assert frame(b"ab", 258, True, 0x01020304) == bytes([2, 1, 1, 4, 3, 2, 1, 2, 0]) + b"ab"
    assert len(frame(b"", 0, False, 0)) == HEADER_BYTES


def test_sums_text_is_its_recipe():
    """``examples/sums.txt`` (the board core's training text) is what docs/digital.md says: 2,500 lines a+b=c."""
    import random

    rng = random.Random(0)
    lines = []
    for _ in range(2500):
        a, b = rng.randrange(100), rng.randrange(100)
        lines.append(f"{a}+{b}={a + b}")
    assert (ROOT / "examples" / "sums.txt").read_text() == "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def board_lm():
    graph = load_checkpoint(BOARD_CORE)
    model = fixed_lm(graph, 0.8)
    return graph, model, lm_image(model, build_image(place(graph, LANES)))


def test_board_top_answers_the_reference(board_lm):
    graph, model, image = board_lm
    reference = lm_generate(graph, model, PROMPT, LENGTH, True, 7).text
    run = run_board_pysim(image, frame(PROMPT, LENGTH, True, 7))
    assert run.received == reference and len(reference) == LENGTH
    assert run.tx_framing_errors == 0 and not run.error_led
    # negative control: prompt byte 2 ("+") broken on the line is dropped; the host's next byte ends the prompt
    broken = frame(PROMPT, LENGTH, True, 7) + b"5"
    altered = PROMPT[:2] + PROMPT[3:] + b"5"
    expected = lm_generate(graph, model, altered, LENGTH, True, 7).text
    assert expected != reference  # the check can fail
    run = run_board_pysim(image, broken, bad_stop=frozenset({HEADER_BYTES + 2}))
    assert run.error_led and run.received == expected != reference


def test_timing_and_missing_lm_are_refused(tmp_path):
    report = {"board": "icebreaker", "fmax_mhz": 11.9, "clock_mhz": 12.0}
    with pytest.raises(RcsnnError, match="timing not met: Fmax 11.9 MHz < board clock 12 MHz"):
        check_timing(report)
    check_timing({**report, "fmax_mhz": 12.0})
    from rcsnn.cli import main

    main(["verilog", str(BOARD_CORE), "--lanes", str(LANES), "-o", str(tmp_path / "d")])
    with pytest.raises(RcsnnError, match="no key 'lm'"):
        build_board(tmp_path / "d", "icebreaker")
    assert {b.target for b in BOARDS.values()} == {"ecp5-85f", "ice40-up5k"}
    assert 'LOCATE COMP "rx" SITE "M1"' in BOARDS["ulx3s-85f"].constraints()
    assert "set_io tx 9" in BOARDS["icebreaker"].constraints()


def test_lm_instance_checks_the_emitted_ports():
    from amaranth.back import rtlil

    ports = {"prompt__payload": (9, True), "prompt__valid": (1, True), "prompt__ready": (1, False),
             "text__payload": (8, False), "text__valid": (1, False), "text__ready": (1, True), "length": (16, True),
             "sample": (1, True), "seed": (32, True), "busy": (1, False), "load__valid": (1, True),
             "clk": (1, True), "rst": (1, True)}
    text = "module \\rcsnn_lm\n" + "".join(
        f"  wire width {w} {'input' if i else 'output'} {k} \\{name}\n" for k, (name, (w, i)) in enumerate(ports.items()))
    assert lm_ports(text + "end\n") == ports
    top = BoardTop(LMInstance(ports), 4)
    assert "rcsnn_lm" in rtlil.convert(top, name="t")
    with pytest.raises(RcsnnError, match="port 'seed' is \\(31, True\\)"):  # negative control: a narrower seed
        LMInstance({**ports, "seed": (31, True)})
    with pytest.raises(RcsnnError, match="no module"):
        lm_ports("module \\other\nend\n")


@pytest.mark.slow
@pytest.mark.parametrize("board", sorted(BOARDS))
def test_bitstream_builds(tmp_path, board, capsys):
    from rcsnn.cli import main

    main(["verilog", str(BOARD_CORE), "--lm", "--lanes", str(LANES), "-o", str(tmp_path / "d")])
    main(["synth", str(tmp_path / "d"), "--board", board])
    out = capsys.readouterr().out
    report = (tmp_path / "d" / "board" / board / "report.md").read_text()
    assert "timing met" in report and "Bitstream" in report and board in out
    bitstream = tmp_path / "d" / "board" / board / ("board.bit" if board.startswith("ulx3s") else "board.bin")
    assert bitstream.stat().st_size > 10_000


@pytest.mark.slow
def test_board_top_in_verilator_is_the_reference(board_lm, tmp_path):
    graph, model, image = board_lm
    for sample, seed in ((False, 0), (True, 3)):
        reference = lm_generate(graph, model, PROMPT, 100, sample, seed).text
        run = run_board_verilator(image, frame(PROMPT, 100, sample, seed), tmp_path / f"v{seed}")
        assert run.received == reference and run.tx_framing_errors == 0 and not run.error_led


@pytest.mark.slow
def test_example_board_top_in_verilator_is_the_reference(tmp_path):
    """Done-when of issue 11 item 2: the board top around the example's LM, UART bytes in and out, 500 characters
    (the example fits no board: docs/digital.md, On a board; simulated all the same)."""
    graph = load_checkpoint(ROOT / "examples" / "sapu_3x512.rcsnn")
    model = fixed_lm(graph, 0.8)
    image = lm_image(model, build_image(place(graph, 8)))
    reference = lm_generate(graph, model, b"The ", 500, True, 3).text
    run = run_board_verilator(image, frame(b"The ", 500, True, 3), tmp_path)
    assert run.received == reference and run.tx_framing_errors == 0 and not run.error_led
