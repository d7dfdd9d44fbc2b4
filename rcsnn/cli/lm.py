"""``rcsnn generate --backend fixed-lm`` and ``--backend amaranth|verilator --lm``: the whole language model in integers.

``fixed-lm`` runs :func:`rcsnn.model.lm_fixed.lm_generate` (embedding ROM, int8 readout, greedy or LFSR
Gumbel-max choice); with ``--lm`` the chip (:mod:`rcsnn.digital.lm`) does the same from the prompt's bytes
alone, and its text and raster are checked against that reference (:mod:`rcsnn.verify.lm`; exit 1 on a
difference). ``--temperature 0`` is greedy (``sample = 0``); any other T is built into the sampler's ROM.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np

from ..digital import options as digital_options
from ..errors import RcsnnError
from .common import load

__all__ = ["LM_BACKENDS", "generate_lm"]

#: Back ends that run the LM top (``--lm``).
LM_BACKENDS = ("amaranth", "verilator")


def generate_lm(args) -> int:
    """The ``generate`` command for ``--backend fixed-lm`` or ``--lm``; returns the exit status."""
    from ..digital.layout import build_image, place
    from ..digital.lm.image import lm_image
    from ..model.lm_fixed import DEFAULT_TEMPERATURE, fixed_lm, lm_generate
    from ..verify.lm import check_lm

    if args.backend != "fixed-lm" and args.backend not in LM_BACKENDS:
        raise RcsnnError(f"--lm: with --backend {' or '.join(LM_BACKENDS)} (the reference is --backend fixed-lm), "
                         f"not {args.backend}")
    graph = load(args)
    core = graph.arrays()
    if core.frontend is None:
        raise RcsnnError("generate: the core has no vocabulary/readout (not a language-model core)")
    core.frontend.encode(args.prompt)  # refuses characters outside the vocabulary, as every back end does
    sample = args.temperature > 0
    model = fixed_lm(graph, args.temperature if sample else DEFAULT_TEMPERATURE)  # greedy: the sampler is unused
    prompt = args.prompt.encode("utf-8")
    reference = lm_generate(graph, model, prompt, args.length, sample, args.seed)
    if args.backend == "fixed-lm":
        print(args.prompt + reference.text.decode("utf-8"), flush=True)
        return 0
    placed = place(graph, digital_options.from_arguments(args).lanes)
    image = lm_image(model, build_image(placed))
    if args.backend == "amaranth":
        from ..digital.lm.run import run_lm_pysim

        chip = run_lm_pysim(image, prompt, args.length, sample, args.seed)
    else:
        chip = _verilator(graph, placed, model, image, prompt, args)
    print(args.prompt + chip.text.decode("utf-8", "replace"), flush=True)
    check = check_lm(graph, model, reference, chip.text, chip.spikes, args.backend, args.length)
    per_char = chip.generate_cycles / max(1, args.length)
    print("\n".join([*check.lines(), f"{args.backend}: {chip.generate_cycles} cycles for {args.length} characters "
                     f"({per_char:.1f} cycles/character), {chip.seconds:.1f} s simulated"]), file=sys.stderr)
    return 0 if check.passed else 1


def _verilator(graph, placed, model, image, prompt: bytes, args):
    from ..digital.emit import emit
    from ..digital.lm.run import run_lm_verilator

    scratch = tempfile.TemporaryDirectory(prefix="rcsnn-lm-") if args.build_dir is None else None
    work = Path(scratch.name if scratch else args.build_dir)
    try:
        emit(placed, work, np.zeros((1, graph.arrays().n_neurons), dtype=np.int64), lm=model)
        return run_lm_verilator(image, work, prompt, args.length, args.temperature > 0, args.seed)
    finally:
        if scratch is not None:
            scratch.cleanup()
