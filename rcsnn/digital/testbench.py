"""Self-checking benches for the emitted Verilog: a Verilog testbench (Icarus) and a Verilator C++ harness.

Both run ``rcsnn_core`` with the same files, protocol and checks:

* memories: after reset every image ``mem/lane<k>_<kind>.hex`` is written through the ``load`` port
  (so the images in ``mem/`` are what runs, hand-edited or not; a missing or non-hex line is an
  error); ``+preload`` skips that and runs on the contents compiled into the design;
* ``x.hex``: ``STEPS * n_words`` lines, one ``x`` beat each (L currents, lane k at bit ``k * Wv``);
* ``expected.hex``: ``STEPS * n_words`` lines, the expected lane mask of each word (in a core with spike
  counts, Wc = ``image.spike_bits`` > 1: the L counts of Wc bits, lane k at bit ``k * Wc``);
* writes ``spikes.hex`` (same layout as ``expected.hex``), ``cycles.txt`` (cycles of each step) and,
  with ``+membranes``, ``membranes.hex`` (one line of L membranes per word per step);
* prints ``PASS`` or ``FAIL`` with the first divergent (step, group, neuron); ``+vcd`` writes
  ``rcsnn.vcd`` (Verilator: from step ``+vcd_from=T``);
* ``+stream``: no files; one step per round trip: ``n_words`` hex beats on stdin, then one line
  ``STEP t cycles mask_0 .. mask_{n_words-1}`` (hex) on stdout, flushed; end of input ends the run
  (``END: n steps``);
* errors are one line ``ERROR: ...``: a step that does not raise ``done`` within the cycle limit
  (:func:`rcsnn.digital.cycles.cycle_limit`, ``+cycle_limit=C`` overrides it), and in Icarus (four-state)
  any X/Z on an output after reset (``busy``, ``done``, ``cycles``, ``x.ready``, ``spikes.valid`` and
  ``.payload``, ``membranes.valid``, and ``membranes.payload`` while valid).

Protocol per step: ``start`` high for one cycle, ``x`` valid until ``n_words`` beats were
accepted, then wait for ``done`` (which carries ``cycles``).

The code is in the Jinja2 templates ``rcsnn/digital/templates/`` (``tb_rcsnn.v.j2``,
``harness.cpp.j2``, ``rcsnn.gtkw.j2``); this module computes the numbers they are rendered with.
Group names reach the benches only as string literals (:func:`rcsnn.templates.c_string`).
"""

from __future__ import annotations

from ..templates import render
from .core import load_layout, memory_map
from .cycles import cycle_limit
from .layout import Image

__all__ = ["image_file", "verilog_testbench", "verilator_harness", "gtkwave_save"]

PACKAGE = "rcsnn.digital"


def image_file(name: str) -> str:
    """The memory image file of memory ``name`` (``lane<k>.<kind>`` of :func:`~rcsnn.digital.core.memory_map`)."""
    return f"mem/{name.replace('.', '_')}.hex"


def _common(image: Image, names: list[str]) -> dict:
    """Sizes shared by both benches, the load payload and memory images, the cycle limit, the group names
    and each group's first word."""
    layout = load_layout(image)
    mmap = memory_map(image)
    return {"nw": image.slots.n_words, "lanes": image.lanes, "wv": image.Wv, "wb": image.word_bits,
            "load_width": layout.size, "mem_bits": layout["addr"].offset, "addr_shift": layout["addr"].offset,
            "data_shift": layout["data"].offset, "data_width": layout.size - layout["data"].offset,
            "max_depth": max(depth for _, _, depth, _, _ in mmap),
            "memories": [{"id": mem, "file": image_file(name), "depth": depth} for mem, name, depth, _, _ in mmap],
            "cycle_limit": cycle_limit(image), "wc": image.spike_bits,
            "names": list(names), "groups": [{"index": g, "base": base} for g, base in enumerate(image.slots.word_base)]}


def verilog_testbench(image: Image, names: list[str]) -> str:
    """``tb_rcsnn.v`` for Icarus (``iverilog -g2012 -Ptb.STEPS=N``)."""
    return render(PACKAGE, "tb_rcsnn.v.j2", **_common(image, names))


def _cxx_word_io(width: int, port: str) -> tuple[str, str]:
    """C++ statements setting ``top->{port}`` from ``uint32_t *w`` and reading it into ``w``."""
    n, port = (width + 31) // 32, _vname(port)
    if width > 64:
        return (f"for (int i = 0; i < {n}; ++i) top->{port}[i] = w[i];",
                f"for (int i = 0; i < {n}; ++i) w[i] = top->{port}[i];")
    if width > 32:
        return (f"top->{port} = (uint64_t)w[0] | (uint64_t)w[1] << 32;",
                f"w[0] = (uint32_t)top->{port}; w[1] = (uint32_t)(top->{port} >> 32);")
    return f"top->{port} = w[0];", f"w[0] = top->{port};"


def _vname(port: str) -> str:
    """Verilator's C++ member name of a Verilog port (``__`` is escaped as ``___05F``)."""
    return port.replace("__", "___05F")


def verilator_harness(image: Image, names: list[str]) -> str:
    """``harness.cpp`` for ``verilator --cc --exe --build`` (same files and messages as the testbench)."""
    lanes, wv, wb, wc = image.lanes, image.Wv, image.word_bits, image.spike_bits
    xw, sw, mw, lw = lanes * wv, wb + lanes * wc, wb + lanes * wv, load_layout(image).size
    set_x, _ = _cxx_word_io(xw, "x__payload")
    _, get_s = _cxx_word_io(sw, "spikes__payload")
    _, get_m = _cxx_word_io(mw, "membranes__payload")
    set_l, _ = _cxx_word_io(lw, "load__payload")
    return render(PACKAGE, "harness.cpp.j2", x_words=(xw + 31) // 32, m_words=(mw + 31) // 32, s_words=(sw + 31) // 32,
                  l_words=(lw + 31) // 32, set_x=set_x, get_s=get_s, get_m=get_m, set_l=set_l, **_common(image, names))


def gtkwave_save(image: Image) -> str:
    """``rcsnn.gtkw``: the step handshake, the x and spike streams and the per-step cycle count."""
    return render(PACKAGE, "rcsnn.gtkw.j2", x_width=image.lanes * image.Wv,
                  spikes_width=image.word_bits + image.lanes * image.spike_bits)
