"""Hardware that generates text, against the reference that generates the same text.

``rcsnn generate --backend spice|amaranth|...`` runs the recurrent core in the simulated hardware
(a :class:`~rcsnn.model.generate.Stepper`) and this module runs the reference of the hardware's
arithmetic beside it — the fixed-point reference for a digital core (``quantized`` steppers), the
float64 reference for the circuit — with the same prompt, seed and temperature, and compares.

Until the two rasters first differ, both runs fed the same characters, so the first raster
divergence (step d, lowest neuron) is a decision the hardware made differently from the reference
*given the same past*. It is the event that changed the text, if the text changed. With an error
budget (the circuit: volts), a flip whose reference margin ``|v_ref − θ|`` is within the budget is
*undecidable* (named, not failed); any other flip is a hardware error. A digital core has no
budget: any flip is an error.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from ..ir.graph import Graph
from ..ir.reference import quantize_core
from ..model.generate import Generation, Stepper, generate, reference_stepper
from .compare import locate

__all__ = ["text_finding", "Recorder", "GenerationCheck", "check_generation"]


def text_finding(text: str, reference_text: str, first_char: int | None) -> str:
    """``"N generated characters identical"`` or where ``text`` first differs from ``reference_text``."""
    n = len(reference_text)
    if first_char is None:
        return f"{n} generated characters identical"
    return (f"text identical for {first_char} of {n} characters, then differs at character {first_char} "
            f"({text[first_char]!r} instead of {reference_text[first_char]!r})")


class Recorder:
    """A :class:`~rcsnn.model.generate.Stepper` that keeps the membranes (``stepper.v``) after every step."""

    def __init__(self, stepper: Stepper):
        self.stepper = stepper
        self.quantized = stepper.quantized
        self.unit = "lsb" if stepper.quantized else getattr(stepper, "unit", "V")  # of its membranes
        self.membranes: list[np.ndarray | None] = []

    def step(self, x: np.ndarray) -> np.ndarray:
        spikes = self.stepper.step(x)
        v = getattr(self.stepper, "v", None)
        self.membranes.append(None if v is None else np.array(v, copy=True))
        return spikes


@dataclass(frozen=True)
class GenerationCheck:
    """The hardware's text and raster against the reference's.

    Attributes:
        backend, reference: names (``spice``, ``float64 reference``).
        unit: unit of the membranes and the budget (``V``, ``units`` at S ≠ 1 V per unit, ``lsb``).
        prompt_steps: characters of the prompt (steps before the first generated character).
        text, reference_text: the generated characters of each.
        first_char: 0-based position in the generated text of the first character that differs, or None.
        first_step: first step (0-based) at which the rasters differ, or None.
        flips: the neurons that differ at ``first_step``, most decidable first: dicts with group, index,
            neuron, s_ref, s_hw, v_ref, v_hw, theta, margin (v_ref − θ), budget (``unit``; None: exact)
            and decidable (|margin| > budget).
        budget_note: where the budget comes from ("" for an exact back end).
    """

    backend: str
    reference: str
    unit: str
    prompt_steps: int
    text: str
    reference_text: str
    first_char: int | None
    first_step: int | None
    flips: list[dict] = field(default_factory=list)
    budget_note: str = ""

    @property
    def decidable(self) -> bool:
        """A flip at the first divergence that the budget does not excuse (a hardware error)."""
        return any(f["decidable"] for f in self.flips)

    @property
    def passed(self) -> bool:
        return not self.decidable

    def lines(self) -> list[str]:
        """Findings, one sentence each."""
        n = len(self.text)
        head = f"{self.backend} vs the {self.reference}: " + text_finding(self.text, self.reference_text, self.first_char)
        note = [f"  error budget: {self.budget_note}"] if self.budget_note else []
        if self.first_step is None:
            return [head + f"; rasters equal over {self.prompt_steps + n} steps", *note]
        out = [head + f"; rasters first differ at step {self.first_step} "
                      f"({self._where(self.first_step)}), {len(self.flips)} neuron(s):"]
        for f in self.flips[:3]:
            verdict = "DECIDABLE (a hardware error)" if f["decidable"] else "undecidable (within the budget)"
            v_hw = "n/a" if f["v_hw"] is None else f"{f['v_hw'] - f['theta']:+.3g}"
            budget = "" if f["budget"] is None else f", budget {f['budget']:.3g} {self.unit}"
            out.append(f"  group {f['group']} neuron {f['index']} (global {f['neuron']}): reference s={f['s_ref']}, "
                       f"{self.backend} s={f['s_hw']}; v_ref - theta {f['margin']:+.3g} {self.unit}, "
                       f"v_{self.backend} - theta {v_hw} {self.unit}{budget}: {verdict}")
        return out + note

    def _where(self, step: int) -> str:
        if step < self.prompt_steps:
            return f"prompt character {step}"
        return f"fed generated character {step - self.prompt_steps}, choosing character {step - self.prompt_steps + 1}"

    def to_dict(self) -> dict:
        return {"backend": self.backend, "reference": self.reference, "unit": self.unit,
                "prompt_steps": self.prompt_steps, "text": self.text, "reference_text": self.reference_text,
                "first_char": self.first_char, "first_step": self.first_step, "flips": self.flips,
                "budget_note": self.budget_note, "passed": self.passed}


def check_generation(graph: Graph, prompt: str, hardware: Generation, recorded: Recorder, backend: str, *,
                     seed: int, temperature: float, allowance: Callable[[np.ndarray], np.ndarray] | None = None,
                     budget_note: str = "") -> GenerationCheck:
    """Run the reference of ``recorded``'s arithmetic with the same prompt, length, seed and temperature
    as ``hardware`` (the generation the recorded stepper made) and compare.

    ``allowance(v_ref)``: the error budget ``(N,)`` (the hardware's membrane unit) of decisions whose
    reference membranes are ``v_ref`` ``(N,)``; None: exact, every flip is decidable.
    """
    core = graph.arrays()
    quantized = recorded.quantized
    reference = Recorder(reference_stepper(graph, "fixed" if quantized else "float"))
    length = len(hardware.text)
    ref = generate(graph, prompt, length, reference, seed=seed, temperature=temperature)
    differ = [k for k, (a, b) in enumerate(zip(hardware.text, ref.text)) if a != b]
    steps = min(len(hardware.spikes), len(ref.spikes))
    diverged = np.flatnonzero((hardware.spikes[:steps] != ref.spikes[:steps]).any(axis=1))
    theta = quantize_core(core).theta_q.astype(np.float64) if quantized else core.per_neuron("theta")
    flips: list[dict] = []
    first_step = int(diverged[0]) if diverged.size else None
    if first_step is not None:
        d = first_step
        v_ref, v_hw = reference.membranes[d], recorded.membranes[d]
        bound = None if allowance is None else np.broadcast_to(allowance(v_ref), theta.shape)
        for i in np.flatnonzero(hardware.spikes[d] != ref.spikes[d]):
            group, index = locate(core, int(i))
            margin = float(v_ref[i] - theta[i])
            flips.append({"step": d, "group": group, "index": index, "neuron": int(i),
                          "s_ref": int(ref.spikes[d, i]), "s_hw": int(hardware.spikes[d, i]),
                          "v_ref": float(v_ref[i]), "v_hw": None if v_hw is None else float(v_hw[i]),
                          "theta": float(theta[i]), "margin": margin,
                          "budget": None if bound is None else float(bound[i]),
                          "decidable": bound is None or abs(margin) > bound[i]})
        flips.sort(key=lambda f: (not f["decidable"], -abs(f["margin"])))
    name = "fixed-point reference" if quantized else "float64 reference"
    return GenerationCheck(backend, name, recorded.unit, len(prompt), hardware.text, ref.text, differ[0] if differ else None,
                           first_step, flips, budget_note)
