"""Real amplifiers in the op-amp form (``--opamp PART``): a named part's datasheet figures, or the user's own .subckt.

With ``--opamp`` each neuron of the op-amp form is its passive feedback network (``rcsnn_feedback``: C, R_L and the
zero-reset switch from the output ``mem<i>`` to the summing node ``sum<i>``, in :data:`LIBRARY`) around an amplifier
instance ``Xa<i> 0 sum<i> mem<i> vdd vss PART`` on the supply rails (``--rails``, sources ``Vdd``/``Vss``):

* a named part (:data:`PARTS`) is ``rcsnn_opamp_macro``: a single-pole amplifier of DC gain A₀ and unity-gain frequency
  GBW (a transconductance into an RC pole node), whose input stage slews at SR, with an input offset V_os, and whose
  output follows the pole node within ``headroom`` of each rail; ``NAME,key=value,...`` overrides figures
  (``OPA381,vos=0``);
* ``FILE:SUBCKT``: the user's model, a ``.subckt SUBCKT in+ in- out V+ V-``, copied beside the decks.

What an amplifier does to the contract (derived to first order; per neuron G = the sum of the conductances into its
summing node, C its capacitor, ω_u = 2π·GBW, S volts per unit). The summing node sits at
V_s ≈ V_os − V_out/A₀ − V̇_out/ω_u instead of 0 V, so through the resistors into it

* finite gain adds a leak G/(A₀·C): the leak factor β errs by ε_A = Δt·G/(A₀·C) of v per step;
* finite bandwidth adds a capacitance G/ω_u: each step's change of v errs by ε_B = G/(ω_u·C) of it;
* the offset drives V_os·G into C: a drift of δ_os = V_os·G·Δt/(C·S) units per step, and the comparator sees v + V_os/S;
* the input stage slews at SR: a step that moves v by Δv within the synaptic window needs SR ≥ S·|Δv|/window.

:func:`sizing` gives these per group (worst neuron) beside the part's figures: the netlist header and ``core.json``
(``circuit.opamp``) state them, and ``rcsnn verify`` judges the circuit against the contract as always — a real part is
not exact, and the verdict says by how much (docs/analog.md, "Real amplifiers").
"""

from __future__ import annotations

import hashlib
import math
import re
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from ..errors import RcsnnError
from ..ir.arrays import Core
from .neurons import Neurons

__all__ = ["LIBRARY", "Part", "PARTS", "UserPart", "parse_opamp", "conductances", "sizing"]

#: The macromodel and the feedback cells, copied beside the decks and included only where a deck uses them.
LIBRARY = "rcsnn_opamps.lib"


@dataclass(frozen=True)
class Part:
    """A named amplifier: the datasheet's typical figures at 25 °C (SI units).

    Attributes:
        name: the part number.
        gain: DC open-loop gain A₀ (V/V).
        gbw: gain–bandwidth product (Hz).
        slew: slew rate (V/s).
        offset: input offset voltage V_os (V; the datasheet's typical magnitude, applied to every amplifier).
        headroom_low, headroom_high: how close the output swings to the negative and positive rail (V).
        supply: the total supply V+ − V− it is specified for, (min, max) (V).
        quiescent: supply current of one amplifier at no load (A): its static power is quiescent · (V+ − V−).
        source: the datasheet and the conditions of these figures.
    """

    name: str
    gain: float
    gbw: float
    slew: float
    offset: float
    headroom_low: float
    headroom_high: float
    supply: tuple[float, float]
    quiescent: float
    source: str

    subckt = "rcsnn_opamp_macro"
    #: A named part is in :data:`LIBRARY`: no file of its own, and the sidecar keeps the ``--opamp`` text as given.
    library_name = None
    spec = ""

    def instance(self) -> str:
        """The cell and parameters after an amplifier instance's nodes ``in+ in- out V+ V-``."""
        return (f"{self.subckt} a0={self.gain!r} gbw={self.gbw!r} sr={self.slew!r} vos={self.offset!r} "
                f"hlo={self.headroom_low!r} hhi={self.headroom_high!r}")

    def record(self) -> dict:
        """The part's figures for the sidecar and the netlist header."""
        return {**asdict(self), "supply": list(self.supply)}

    def check_rails(self, low: float, high: float) -> None:
        """Raise unless the rails [``low``, ``high``] (V) lie in the part's specified supply range."""
        lo, hi = self.supply
        if not lo <= high - low <= hi:
            raise RcsnnError(f"--opamp {self.name}: rails {low:g},{high:g} V are a {high - low:g} V supply; the part is "
                             f"specified for {lo:g} to {hi:g} V ({self.source})")


#: Rail-to-rail CMOS amplifiers with their datasheets' typical figures (25 °C, 10 kΩ load).
PARTS = {p.name: p for p in (
    Part("OPA381", gain=10 ** (135 / 20), gbw=18e6, slew=12e6, offset=7e-6, headroom_low=0.03, headroom_high=0.4,
         supply=(2.7, 5.5), quiescent=800e-6,
         source="TI SBOS313B, VS = 5 V: A_OL 135 dB, GBW 18 MHz, SR 12 V/us, V_OS 7 uV, output swing 30 mV from V-, "
                "400 mV from V+ (RL = 10 kOhm), I_Q 800 uA"),
    Part("TSV782", gain=10 ** (120 / 20), gbw=30e6, slew=17e6, offset=50e-6, headroom_low=0.01, headroom_high=0.01,
         supply=(2.0, 5.5), quiescent=3e-3,
         source="ST TSV782 datasheet, VCC = 2 V: A_VD 120 dB, GBP 30 MHz, SR 17 V/us, V_io 50 uV, output drop 10 mV "
                "from either rail (RL = 10 kOhm), I_CC 3 mA per amplifier"),
)}

#: The figures ``NAME,key=value`` may override, and the :class:`Part` field each sets.
OVERRIDES = {"a0": "gain", "gbw": "gbw", "sr": "slew", "vos": "offset", "hlo": "headroom_low", "hhi": "headroom_high",
             "iq": "quiescent"}


@dataclass(frozen=True)
class UserPart:
    """The user's amplifier: ``.subckt`` ``subckt`` (pins in+, in−, out, V+, V−) of the file ``path``."""

    path: Path
    subckt: str
    text: str

    @property
    def name(self) -> str:
        return self.subckt

    @property
    def library_name(self) -> str:
        """The file name the decks include it by (beside them)."""
        return self.path.name

    @property
    def spec(self) -> str:
        """``--opamp`` as the sidecar records it: the copy beside the decks, never the path it was given by."""
        return f"{self.path.name}:{self.subckt}"

    def instance(self) -> str:
        return self.subckt

    def record(self) -> dict:
        return {"name": self.subckt, "file": self.path.name, "sha256": hashlib.sha256(self.text.encode()).hexdigest()}

    #: The user's model states no quiescent current (its static power is not known).
    quiescent = None

    def check_rails(self, low: float, high: float) -> None:
        """The user's model states no supply range: any rails."""


def parse_opamp(spec: str) -> Part | UserPart:
    """``NAME[,key=value...]`` (:data:`PARTS`, :data:`OVERRIDES`) or ``FILE:SUBCKT``; one-line error otherwise."""
    if ":" in spec:
        file, _, subckt = spec.rpartition(":")
        return _user_part(Path(file), subckt)
    name, *settings = spec.split(",")
    if name not in PARTS:
        raise RcsnnError(f"--opamp {spec!r}: unknown part {name!r}; named parts: {', '.join(PARTS)}, or FILE:SUBCKT "
                         "(your .subckt with pins in+ in- out V+ V-)")
    changes = {}
    for setting in settings:
        key, _, value = setting.partition("=")
        try:
            number = float(value)
        except ValueError:
            number = math.nan
        if key not in OVERRIDES or not (math.isfinite(number) and number >= 0):
            raise RcsnnError(f"--opamp {spec!r}: {setting!r}: expected key=value with a number >= 0, key one of "
                             f"{', '.join(OVERRIDES)}")
        changes[OVERRIDES[key]] = number
    part = replace(PARTS[name], **changes)
    if not (part.gain > 0 and part.gbw > 0 and part.slew > 0):
        raise RcsnnError(f"--opamp {spec!r}: a0, gbw and sr must be > 0")
    return part


def _user_part(path: Path, subckt: str) -> UserPart:
    """Read ``path`` and find ``.subckt subckt`` with five pins (parameters after them allowed)."""
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise RcsnnError(f"--opamp {path}:{subckt}: cannot read {path} ({exc})") from None
    if not re.fullmatch(r"[A-Za-z_][\w.-]*", subckt):
        raise RcsnnError(f"--opamp {path}:{subckt}: {subckt!r} is not a subcircuit name")
    found = re.search(rf"^\s*\.subckt\s+{re.escape(subckt)}\s+(.*)$", text, flags=re.M | re.I)
    if found is None:
        raise RcsnnError(f"--opamp {path}:{subckt}: {path} has no '.subckt {subckt}'")
    pins = [p for p in found.group(1).split() if "=" not in p and p.lower() != "params:"]
    if len(pins) != 5:
        raise RcsnnError(f"--opamp {path}:{subckt}: the subcircuit has {len(pins)} pins ({' '.join(pins)}); rcsnn "
                         "connects five: in+ in- out V+ V-")
    return UserPart(path, subckt, text)


def conductances(core: Core, plan: Neurons, inputs: np.ndarray) -> np.ndarray:
    """G per neuron (S): the conductances into its summing node — its synapses (|w|/r_in), its input line (1/r_in where
    ``inputs`` is true) and a subtract reset's self-synapse (:attr:`~rcsnn.analog.neurons.Neurons.self_weight`/r_mem)."""
    total = np.where(inputs, 1 / plan.r_in, 0.0) + plan.self_weight / plan.r_mem
    offsets = core.offsets()
    for syn in core.synapses:
        w = core.block_weights(syn)
        post = offsets[syn.post]
        total[post] += np.bincount(w.rows, weights=np.abs(w.value), minlength=post.stop - post.start) / plan.r_in[post]
    return total


def sizing(core: Core, part: Part, design, conductance: np.ndarray, changes: np.ndarray,
           peaks: np.ndarray) -> list[dict]:
    """Per group, at its worst neuron, the first-order errors of the module docstring: ``epsilon_A`` and ``epsilon_B``
    (relative), ``offset_drift`` (units per step), ``offset_threshold`` (units), ``gbw_for_1e-3`` (the GBW that would
    bring ε_B to 1e-3), and the slew rates (V/s) the step asks of the output beside the part's: ``slew_needed``, the
    synaptic window's ramp S·|Δv|/window for the largest change of the reference's membranes in one step (``changes``,
    units, per neuron), and ``reset_slew_needed``, a zero reset's discharge S·v·g_on/C at the largest membrane the
    reference spikes from (``peaks``, units, per neuron; 0 for other resets)."""
    d = design
    out = []
    for g, sl in zip(core.groups, core.offsets().values()):
        if not g.size:
            continue
        worst = float(conductance[sl].max())
        ramp = d.volts_per_unit * float(changes[sl].max()) / d.syn_width
        reset = d.volts_per_unit * float(peaks[sl].max()) * d.g_reset / d.capacitance if g.reset.startswith("zero") else 0.0
        out.append({"group": g.name, "G_max": worst,
                    "epsilon_A": d.step * worst / (part.gain * d.capacitance),
                    "epsilon_B": worst / (2 * math.pi * part.gbw * d.capacitance),
                    "gbw_for_1e-3": worst / (2 * math.pi * 1e-3 * d.capacitance),
                    "offset_drift": part.offset * worst * d.step / (d.capacitance * d.volts_per_unit),
                    "offset_threshold": part.offset / d.volts_per_unit,
                    "slew_needed": ramp, "reset_slew_needed": reset, "slew_limited": max(ramp, reset) > part.slew})
    return out
