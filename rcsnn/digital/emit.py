"""``rcsnn verilog``: write the core's HDL, memory images, benches and documentation to a directory.

Files (byte-identical for the same core and options):

* ``rcsnn_core.v`` / ``rcsnn_core.il``: the core with the ``membranes`` trace port (simulation);
* ``rcsnn_synth.il``: the synthesis top (:class:`~rcsnn.digital.wrapper.SerialWrapper`, no trace);
* ``mem/lane<k>_<kind>.hex``: memory images (``$readmemh``), ``load.hex``: the same as ``load``
  stream payloads; ``design.json``: parameters for the runners and ``rcsnn synth``;
* ``tb_rcsnn.v``, ``harness.cpp``, ``rcsnn.gtkw``: the benches (:mod:`rcsnn.digital.testbench`);
* ``x.hex``, ``expected.hex``: an example stimulus and its fixed-point reference raster;
* ``README.md``: ports, memory map, slot layout and the commands.
* with ``lm`` (``--lm``): ``rcsnn_lm.v`` / ``rcsnn_lm.il`` (the LM top) and ``lm_harness.cpp``
  (:mod:`rcsnn.digital.lm.emit`).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from amaranth.back import rtlil

from ..errors import RcsnnError
from ..files import check_manifest, field, manifest, read_json, snapshot, written_since
from ..ir.arrays import Core
from ..ir.graph import Graph
from ..ir.reference import simulate_fixed
from ..model.lm_fixed import FixedLM
from ..tools import EMIT_TIMEOUT, yosys
from . import testbench
from .core import NeuromorphicCore, load_layout, load_words, memory_map
from .layout import Image, build_image
from .lm.emit import lm_harness, lm_info, lm_readme
from .lm.image import lm_image
from .lm.run import LM_TOP
from .lm.top import LanguageModelTop
from .simulate import beats
from .wrapper import SerialWrapper, port_signals

__all__ = ["TOP", "DESIGN", "write_core", "write_stimulus", "design_info", "emit", "read_design"]

TOP = "rcsnn_core"
#: The sidecar of an emitted directory (:func:`design_info` plus ``files``: SHA-256 of every file written).
DESIGN = "design.json"


def _rtlil(top, name: str, ports: dict) -> str:
    return rtlil.convert(top, name=name, ports=ports, emit_src=False)


def _hex_lines(values, width: int) -> str:
    digits = max(1, (width + 3) // 4)
    return "".join(f"{int(v):0{digits}x}\n" for v in values)


def write_core(core, out: Path, name: str = TOP) -> None:
    """``<name>.il`` and ``<name>.v`` in ``out`` for ``core``: a :class:`NeuromorphicCore` or any
    component with the same ports (:func:`~rcsnn.digital.wrapper.port_signals` names them; ``name``: another top,
    e.g. the LM top of :mod:`rcsnn.digital.lm.emit`)."""
    (out / f"{name}.il").write_text(_rtlil(core, name, {n: (s, None) for n, s, _ in port_signals(core)}))
    yosys(f"read_rtlil {name}.il\nproc -norom\npmuxtree\nmemory_collect\n"
          f"attrmap -remove generator -remove top -remove src -remove amaranth.hierarchy -remove amaranth.decoding\n"
          f"write_verilog {name}.v\n", out, "yosys (write_verilog)", EMIT_TIMEOUT)


def write_stimulus(out: Path, image: Image, xq: np.ndarray, expected: np.ndarray) -> None:
    """``x.hex`` (beats) and ``expected.hex`` (lane masks; L counts of Wc bits with spike counts) for ``(steps, N)``
    currents and raster."""
    (out / "x.hex").write_text(_hex_lines(beats(image, xq).ravel(), image.lanes * image.Wv))
    wc = image.spike_bits
    masks = image.slots.to_slots(expected.astype(np.int64)).astype(object) << (wc * np.arange(image.lanes))
    (out / "expected.hex").write_text(_hex_lines(masks.sum(axis=-1).ravel(), image.lanes * wc))


def design_info(core: Core, image: Image, preload: bool, lutram: bool, chain_bits: int) -> dict:
    """What the runners and ``rcsnn synth`` need to know about an emitted design (``design.json``)."""
    s = image.slots
    return {
        "top": TOP, "lanes": image.lanes, "Wv": image.Wv, "Fb": image.Fb, "n_words": s.n_words,
        "word_bits": image.word_bits, "acc_width": image.acc_width, "preload": preload, "lutram": lutram,
        **({"spike_bits": image.spike_bits, "max_spikes": list(image.max_spikes)} if image.max_spikes else {}),
        **({"v_lo_q": list(image.v_lo_q), "v_hi_q": list(image.v_hi_q)} if image.bounded else {}),
        "groups": [{"name": g.name, "size": n, "word_base": b, "words": w}
                   for g, n, b, w in zip(core.groups, s.sizes, s.word_base, s.words)],
        "synapse_words": [len(e) for e in image.entries], "rowptr_words": image.n_rows,
        "chain_bits": chain_bits,
    }


def emit(graph: Graph, out: Path, xq: np.ndarray, preload: bool = True, lutram: bool = False,
         lm: FixedLM | None = None) -> list[Path]:
    """Write every file of the module docstring to ``out`` for a placed graph (:func:`~rcsnn.digital.layout.place`);
    ``xq`` is the example stimulus ``(steps, N)``, quantised; ``lm`` (``--lm``): also the LM top of that integer
    model (:mod:`rcsnn.digital.lm.emit`)."""
    core, image = graph.arrays(), build_image(graph)
    out.mkdir(parents=True, exist_ok=True)
    (out / "mem").mkdir(exist_ok=True)
    before = snapshot(out)
    names = [g.name for g in core.groups]
    write_core(NeuromorphicCore(image, trace=True, preload=preload, lutram=lutram), out)
    wrapper = SerialWrapper(image, preload, lutram)
    pins = {"si": (wrapper.si, None), "capture": (wrapper.capture, None), "so": (wrapper.so, None)}
    (out / "rcsnn_synth.il").write_text(_rtlil(wrapper, "rcsnn_synth", pins))
    for _mem, name, _depth, width, contents in memory_map(image):
        (out / testbench.image_file(name)).write_text(_hex_lines(contents, width))
    layout = load_layout(image)
    loads = load_words(image)
    (out / "load.hex").write_text(_hex_lines(loads, layout.size))
    (out / "tb_rcsnn.v").write_text(testbench.verilog_testbench(image, names))
    (out / "harness.cpp").write_text(testbench.verilator_harness(image, names))
    (out / "rcsnn.gtkw").write_text(testbench.gtkwave_save(image))
    write_stimulus(out, image, xq, simulate_fixed(core, xq).spikes)
    info = design_info(core, image, preload, lutram, wrapper.chain_bits)
    from .docs import readme

    text = readme(core, image, info, len(xq))
    if lm is not None:
        info["lm"] = _write_lm(lm, image, out, preload, lutram)
        text += lm_readme(info["lm"])
    (out / "README.md").write_text(text)
    info["files"] = manifest(out, written_since(out, before))  # SHA-256 of every file written: readers check them
    (out / "design.json").write_text(json.dumps(info, indent=1) + "\n")
    return sorted(p for p in out.rglob("*") if p.is_file())


def _write_lm(model: FixedLM, image: Image, out: Path, preload: bool, lutram: bool) -> dict:
    """``rcsnn_lm.il``/``.v`` (the LM top with ``trace``) and ``lm_harness.cpp``; returns ``design.json``'s ``lm``."""
    chip = lm_image(model, image)
    write_core(LanguageModelTop(chip, trace=True, preload=preload, lutram=lutram), out, name=LM_TOP)
    (out / "lm_harness.cpp").write_text(lm_harness(chip))
    return lm_info(model, chip)


def read_design(directory: str | Path, trust_edits: bool = False) -> dict:
    """``design.json`` of a directory written by :func:`emit`, the keys synthesis uses checked and its files' SHA-256
    compared with the ones it records (unless ``trust_edits``; the files must exist either way).
    Every problem is one :class:`RcsnnError` line naming the file and the key."""
    directory = Path(directory)
    rewrite = f"rcsnn verilog CORE -o {directory}"
    if not directory.is_dir():
        raise RcsnnError(f"{directory}: not a directory; write the design first with: {rewrite}")
    where = str(directory / DESIGN)
    design = read_json(directory / DESIGN, "design description", f"write the design with: {rewrite}")
    if not 1 <= field(design, "lanes", "int", where) <= 32:
        raise RcsnnError(f"{where}: key 'lanes' = {design['lanes']}: must be 1..32")
    field(design, "Wv", "int", where, minimum=2)
    field(design, "chain_bits", "int", where, minimum=0)
    field(design, "preload", "bool", where)
    field(design, "lutram", "bool", where, default=False)
    for k, group in enumerate(field(design, "groups", "list", where)):
        field(group, "size", "int", f"{where}: groups[{k}]", minimum=1)
    check_manifest(directory, design.get("files"), where, trust_edits=trust_edits, rewrite=rewrite)
    return design
