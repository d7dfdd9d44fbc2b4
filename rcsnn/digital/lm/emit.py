"""``rcsnn verilog CORE --lm``: what the LM top adds to a design directory (written by :func:`rcsnn.digital.emit.emit`).

Files added to the design directory (``emit(..., lm=)``):

* ``rcsnn_lm.v`` / ``rcsnn_lm.il``: :class:`~rcsnn.digital.lm.top.LanguageModelTop` with ``trace`` (its ROMs
  initialised in the Verilog);
* ``lm_harness.cpp``: the Verilator harness (:mod:`rcsnn.digital.lm.run`; template ``templates/lm_harness.cpp.j2``);
* ``design.json`` gains ``lm`` (:func:`lm_info`) and ``README.md`` a section (:func:`lm_readme`).
"""

from __future__ import annotations

from ...model.lm_fixed import TAPS, UBITS, FixedLM
from ...templates import render
from .image import LMImage
from .run import LM_TOP, char_cycle_limit

__all__ = ["lm_harness", "lm_info", "lm_readme"]


def lm_harness(lm: LMImage) -> str:
    """``lm_harness.cpp`` for ``verilator --cc --exe --build ... rcsnn_lm.v lm_harness.cpp``."""
    im = lm.core
    return render("rcsnn.digital", "lm_harness.cpp.j2", nw=im.slots.n_words, lanes=im.lanes, wb=im.word_bits,
                  char_limit=char_cycle_limit(lm))


def lm_info(model: FixedLM, lm: LMImage) -> dict:
    """``design.json``'s ``lm``: the integer model's constants and the ROMs' sizes (bits)."""
    im = lm.core
    return {"top": LM_TOP, "vocab_size": lm.vocab_size, "temperature": model.temperature, "logit_scale": model.scale,
            "readout": "int8, one scale per tensor", "x_bits": lm.x_bits, "z_bits": lm.z_bits,
            "noise_bits": lm.noise_bits, "ubits": UBITS, "lfsr_taps": f"0x{TAPS:08x}",
            "rom_bits": {"embed": len(lm.embed) * im.lanes * lm.x_bits, "readout": len(lm.readout) * 8 * lm.vocab_size,
                         "noise": len(lm.noise) * lm.noise_bits, "codes": 16 * lm.vocab_size,
                         "utf8": 26 * lm.vocab_size},
            "char_cycle_limit": char_cycle_limit(lm)}


def lm_readme(info: dict) -> str:
    """The README section of the LM top."""
    roms = ", ".join(f"{name} {bits:,} bits" for name, bits in info["rom_bits"].items())
    return f"""
## The language model on chip (`--lm`)

`rcsnn_lm.v` (module `{LM_TOP}`) wraps the core with the prompt decoder (UTF-8), the embedding ROM, the int8
readout (logit unit {info['logit_scale']:.6g} nats) and the character choice (greedy, or Gumbel-max with a 32-bit
Galois LFSR, taps {info['lfsr_taps']}, {info['ubits']}-bit draws, T = {info['temperature']:g}); arithmetic in
`rcsnn/model/lm_fixed.py`, the FSM in `rcsnn/digital/lm/top.py`. Ports: `prompt` (stream of
`{{byte[8], last[1]}}`), `text` (stream of bytes), `length[16]`, `sample`, `seed[32]`, `busy`, the core's `load`,
and (trace) `spikes`, `stepped`. ROMs: {roms}.

* Verilator: `verilator --cc --exe --build -O2 -Wno-WIDTH --top-module {LM_TOP} --Mdir obj_lm {LM_TOP}.v lm_harness.cpp
  -o V{LM_TOP}`, write the prompt to `prompt.bin`, then `obj_lm/V{LM_TOP} +length=N [+sample=1 +seed=S] [+stall]`.
* Checked against the integer reference: `rcsnn generate CORE --backend verilator --lm --prompt TEXT`.
"""
