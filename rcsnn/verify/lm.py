"""The language model on chip against its integer reference: same bytes, and if not, where it went wrong.

The chip (:mod:`rcsnn.digital.lm`) and :func:`rcsnn.model.lm_fixed.lm_generate` start from the same
prompt, length, seed and sampling mode. Both rasters are compared step by step: until they first
differ both cores saw the same characters, so

* a first raster difference at step d names the step's input character and the neurons — the core
  or its embedding ROM is wrong there (the readout only reads spikes);
* equal rasters up to the step that chose the first differing character k (later steps were fed
  different characters) mean the chip chose differently from the same spikes — its readout ROM,
  accumulators or sampler is wrong — and the reference's scores of both characters at that choice
  are reported.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..ir.graph import Graph
from ..model.lm_fixed import FixedLM, LMGeneration
from .compare import locate
from .generation import text_finding

__all__ = ["LMCheck", "check_lm"]


@dataclass(frozen=True)
class LMCheck:
    """The chip's generation against the reference's.

    Attributes:
        backend: the simulator's name.
        prompt_steps: steps of the prompt (characters of it in the vocabulary).
        text, reference_text: the generated characters (decoded UTF-8).
        first_char: first generated character (0-based) that differs, or None.
        first_step: first step (0-based) whose spikes differ, up to the step that chose ``first_char``, or None.
        flips: the neurons that differ at ``first_step`` (group, index, neuron, s_ref, s_chip).
        inputs: the character fed at each step of the reference run.
        scores: at ``first_char`` with equal rasters: the reference's ``z`` of its choice and of the chip's.
        steps, reference_steps: steps of the chip's raster and of the reference's.
    """

    backend: str
    prompt_steps: int
    text: str
    reference_text: str
    first_char: int | None
    first_step: int | None
    inputs: str
    steps: int
    reference_steps: int
    flips: list[dict] = field(default_factory=list)
    scores: dict | None = None

    @property
    def passed(self) -> bool:
        return (self.first_char is None and self.first_step is None and len(self.text) == len(self.reference_text)
                and self.steps == self.reference_steps)

    def lines(self) -> list[str]:
        """Findings, one sentence each."""
        head = f"{self.backend} LM top vs the fixed-point LM reference: "
        if self.first_char is None and len(self.text) != len(self.reference_text):
            head += f"{len(self.text)} characters generated, the reference {len(self.reference_text)}"
        else:
            head += text_finding(self.text, self.reference_text, self.first_char)
        if self.first_step is None:
            span = self.steps if self.first_char is None else self.prompt_steps + self.first_char
            out = [head + f"; rasters equal over {span} steps" + (" (up to that choice)" if self.scores else "")
                   + ("" if self.steps == self.reference_steps else f"; the chip ran {self.steps} steps, the reference "
                                                                     f"{self.reference_steps}")]
            if self.scores is not None:
                s = self.scores
                out.append(f"  same spikes, different choice at character {self.first_char} (step {s['step']}): the "
                           f"readout or the sampler is wrong; reference z[{s['reference']!r}] = {s['z_reference']}, "
                           f"z[{s['chip']!r}] = {s['z_chip']} (logit units)")
            return out
        d = self.first_step
        where = (f"prompt character {d}" if d < self.prompt_steps
                 else f"generated character {d - self.prompt_steps}")
        out = [head + f"; rasters first differ at step {d} (input {self.inputs[d]!r}, {where}), {len(self.flips)} "
                      f"neuron(s): the core or its embedding ROM is wrong there"]
        out += [f"  group {f['group']} neuron {f['index']} (global {f['neuron']}): reference s={f['s_ref']}, "
                f"{self.backend} s={f['s_chip']}" for f in self.flips[:3]]
        return out

    def to_dict(self) -> dict:
        return {"backend": self.backend, "prompt_steps": self.prompt_steps, "text": self.text,
                "reference_text": self.reference_text, "first_char": self.first_char, "first_step": self.first_step,
                "flips": self.flips, "scores": self.scores, "passed": self.passed}


def check_lm(graph: Graph, model: FixedLM, reference: LMGeneration, text: bytes, spikes: np.ndarray,
             backend: str, length: int) -> LMCheck:
    """Compare the chip's ``text`` and ``spikes`` ``(steps, N)`` with ``reference``
    (:func:`~rcsnn.model.lm_fixed.lm_generate` of the same prompt, ``length``, seed and mode)."""
    core = graph.arrays()
    chip_text, ref_text = text.decode("utf-8", "replace"), reference.text.decode("utf-8", "replace")
    differ = [k for k, (a, b) in enumerate(zip(chip_text, ref_text)) if a != b]
    first_char = differ[0] if differ else None
    prompt_steps = len(reference.tokens) - length
    # up to the step that chose the first differing character both ran on the same inputs
    steps = min(len(spikes), len(reference.spikes), len(spikes) if first_char is None else prompt_steps + first_char)
    diverged = np.flatnonzero((spikes[:steps] != reference.spikes[:steps]).any(axis=1))
    first_step = int(diverged[0]) if diverged.size else None
    flips = []
    if first_step is not None:
        for i in np.flatnonzero(spikes[first_step] != reference.spikes[first_step]):
            group, index = locate(core, int(i))
            flips.append({"group": group, "index": index, "neuron": int(i),
                          "s_ref": int(reference.spikes[first_step, i]), "s_chip": int(spikes[first_step, i])})
    scores = None
    if first_char is not None and first_step is None:
        step = prompt_steps + first_char - 1  # the step whose spikes chose character first_char
        z = model.logits(reference.spikes[step]) if step >= 0 else model.bias_q
        scores = {"step": step, "reference": ref_text[first_char], "chip": chip_text[first_char],
                  "z_reference": int(z[model.vocab.index(ref_text[first_char])]),
                  "z_chip": int(z[model.vocab.index(chip_text[first_char])]) if chip_text[first_char] in model.vocab
                  else None}
    inputs = "".join(model.vocab[t] for t in reference.tokens)
    return LMCheck(backend, prompt_steps, chip_text, ref_text, first_char, first_step, inputs, len(spikes),
                   len(reference.spikes), flips, scores)
