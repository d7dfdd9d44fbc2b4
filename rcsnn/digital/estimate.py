"""``rcsnn estimate CORE --target T --lanes L``: LUT, FF, block RAM, DSP and Fmax of the digital core, before synthesis.

Memories and multipliers are derived from the architecture (docs/digital.md), as Yosys maps them on ECP5:

* **memories** (:func:`memories`): per lane the CSR row pointers (R × (start + count bits)), the lane's entries
  (E_k × (row + weight bits)), biases, membranes ``{s, v}`` and accumulators (n_words × Wv, Wv + 1, acc_width), the
  other per-neuron memories and the event FIFO (:data:`~rcsnn.digital.synapse.FIFO_DEPTH` ×
  (block + pre bits)); once, the spike queue (n_words × (group + pre bits + L·Wc)). Each goes where Yosys's
  ``memory_libmap`` puts it: block RAM (DP16KD, 18 Kbit as 16K×1, 8K×2, 4K×4, 2K×9, 1K×18 or 512×36, cost
  :data:`BRAM_COST` each) or LUT RAM (TRELLIS_DPR16X4, 16 × 4 bits, cost :data:`LUTRAM_COST` each, plus one per
  bit of the read multiplexer that joins them), whichever costs less; ``--lutram`` marks the neuron state for LUT RAM.
* **DSP**: per lane the leak multiplier ``β_q · v`` (Fb + 1 by Wv bits; a CubaLIF core also ``β_syn_q · i``),
  ⌈a/18⌉ · ⌈b/18⌉ MULT18X18D each.
* **LUT, FF** (LUT4 and TRELLIS_FF after ``synth_ecp5``): linear in architecture features —
  ``LUT = Σ_k c_k f_k`` with f = (1, L·(Wv + acc_width), L·a, LUT RAM read-multiplexer bits) and
  ``FF = chain + Σ_k d_k g_k`` with g = (1, L·(Wv + acc_width), L·a), where a = start + count + row + word bits
  (each lane's address and counter widths: the CSR walk and the neuron words) and ``chain`` the serial wrapper's
  flip-flops (exact) —, the coefficients :data:`COEFFICIENTS`
  fitted (:func:`fit`, least squares) on synthesised calibration configurations that are *not* the ones the
  model is judged on (:data:`CALIBRATION`; ``python bench/bench_digital.py --calibrate`` re-fits them).
* **Fmax** (nextpnr, seed 1): ``1 / Fmax = t0 + t1 · L + t2 · log2(depth of the deepest block-RAM memory)`` ns
  (0 without block RAM): the events and the spike mask fan out to and in from L lanes, and a memory deeper than
  one DP16KD is a cascade of blocks behind an output multiplexer; the same fit.

Accuracy, measured against real synthesis of the example core at 4, 8 and 16 lanes (ECP5-85F): docs/digital.md.
"""

from __future__ import annotations

import gc
import math
import warnings
from dataclasses import dataclass

import numpy as np
from amaranth.hdl import UnusedElaboratable

from ..errors import RcsnnError
from .core import memory_map
from .layout import Image, require_binary
from .neuron import neuron_memories
from .synapse import FIFO_DEPTH
from .wrapper import SerialWrapper

__all__ = ["BRAM_COST", "LUTRAM_COST", "BRAM_SHAPES", "CALIBRATION", "COEFFICIENTS", "Memory", "Estimate",
           "memories", "chain_bits", "features", "fit", "estimate"]

#: memory_libmap's costs (share/lattice/brams_16kd.txt, lutrams_trellis.txt of the installed Yosys).
BRAM_COST, LUTRAM_COST = 128, 4
#: DP16KD aspect ratios (width, depth); 36 bits wide only as a simple dual-port (PDPW16KD) block.
BRAM_SHAPES = ((1, 16384), (2, 8192), (4, 4096), (9, 2048), (18, 1024), (36, 512))
#: Configurations the coefficients were fitted on: (core, lanes), synthesised with ``rcsnn synth --target ecp5-85f``.
CALIBRATION = (("examples/small_3x32.rcsnn", 1), ("examples/small_3x32.rcsnn", 2), ("examples/small_3x32.rcsnn", 8),
               ("examples/small_3x32.rcsnn", 16), ("examples/sapu_3x512.rcsnn", 2), ("examples/sapu_3x512.rcsnn", 12))
#: Fitted by :func:`fit` on :data:`CALIBRATION` (``bench/bench_digital.py --calibrate``), re-fitted 2026-12-04 after
#: the spike queue stored each entry's first pre index (no multiplication by L behind its block RAM read): LUT, FF and
#: ``period_ns`` on all six (their Yosys statistics; nextpnr seed 1).
COEFFICIENTS = {"LUT": (193.974549, 4.392546, 6.643398, 0.666527), "FF": (204.797281, 8.937455, 3.707775),
                "period_ns": (9.842055, 0.122074, 0.079422)}


@dataclass(frozen=True)
class Memory:
    """One memory of the design: ``depth`` words of ``width`` bits; ``distributed``: marked for LUT RAM."""

    name: str
    depth: int
    width: int
    distributed: bool = False

    @property
    def bram_blocks(self) -> int:
        """DP16KD blocks of the cheapest aspect ratio."""
        return min(-(-self.width // w) * -(-self.depth // d) for w, d in BRAM_SHAPES)

    @property
    def lutram_cells(self) -> int:
        """TRELLIS_DPR16X4 cells (16 words × 4 bits each)."""
        return -(-self.depth // 16) * -(-self.width // 4)

    @property
    def mux_bits(self) -> int:
        """2:1 multiplexer bits that join the LUT RAM cells of a deeper-than-16 memory: (⌈depth/16⌉ − 1) · width."""
        return (-(-self.depth // 16) - 1) * self.width

    @property
    def in_bram(self) -> bool:
        """memory_libmap's choice: block RAM if it costs less than the LUT RAM cells plus their read multiplexer
        (one unit of logic cost per bit, its ``-logic-cost-ram`` default)."""
        return not self.distributed and BRAM_COST * self.bram_blocks < LUTRAM_COST * self.lutram_cells + self.mux_bits


def memories(image: Image, lutram: bool = False) -> list[Memory]:
    """Every memory of the core (module docstring); ``lutram``: the neuron state marked for LUT RAM."""
    state = ("bias", "membrane", *(name for name, _, _ in neuron_memories(image)))
    out = [Memory(name, depth, width, lutram and name.split(".")[1] in state)
           for _, name, depth, width, _ in memory_map(image)]
    for lane in range(image.lanes):
        out.append(Memory(f"lane{lane}.acc", image.slots.n_words, image.acc_width, lutram))
        out.append(Memory(f"lane{lane}.events", FIFO_DEPTH - 1,
                          image.block_bits + image.pre_bits + (image.spike_bits if image.spike_bits > 1 else 0)))
    out.append(Memory("queue", image.slots.n_words, image.group_bits + image.pre_bits + image.lanes * image.spike_bits))
    return [m for m in out if m.depth > 0]


def chain_bits(image: Image, preload: bool = True, lutram: bool = False) -> int:
    """Flip-flops of the serial wrapper's chains (:class:`~rcsnn.digital.wrapper.SerialWrapper`): the total width of
    the core's ports. The wrapper is built for its port widths only and never elaborated (no warning about it)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnusedElaboratable)
        wrapper = SerialWrapper(image, preload, lutram)
        bits = wrapper.chain_bits
        del wrapper
        gc.collect()
    return bits


def _tiles(a: int, b: int) -> int:
    return -(-a // 18) * -(-b // 18)


def features(image: Image, lutram: bool = False) -> dict:
    """The architecture figures the model is linear in: lanes, L·(Wv + acc_width), L·(address and counter bits), LUT
    RAM multiplexer bits, block RAM, DSP."""
    mems = memories(image, lutram)
    multipliers = 1 + any(image.cuba)
    return {"lanes": image.lanes, "data_bits": image.lanes * (image.Wv + image.acc_width),
            "address_bits": image.lanes * (image.start_bits + image.count_bits + image.row_bits + image.word_bits),
            "bram_depth_bits": max((math.log2(m.depth) for m in mems if m.in_bram), default=0.0),
            "lutram_mux_bits": sum(m.mux_bits for m in mems if not m.in_bram),
            "BRAM": sum(m.bram_blocks for m in mems if m.in_bram),
            "DSP": image.lanes * multipliers * _tiles(image.Wv, image.Fb + 1)}


def _rows(f: dict) -> dict[str, list[float]]:
    lanes = f["lanes"]
    return {"LUT": [1.0, f["data_bits"], f["address_bits"], f["lutram_mux_bits"]],
            "FF": [1.0, f["data_bits"], f["address_bits"]],
            "period_ns": [1.0, float(lanes), f["bram_depth_bits"]]}


def fit(samples: list[tuple[dict, dict]]) -> dict[str, tuple[float, ...]]:
    """Least-squares coefficients from ``(features, synthesis report)`` pairs (reports of :mod:`.synth`)."""
    out = {}
    for key in ("LUT", "FF", "period_ns"):
        a = np.array([_rows(f)[key] for f, _ in samples])
        if key == "LUT":
            y = [r["synthesis"]["LUT"] for _, r in samples]
        elif key == "FF":
            y = [r["synthesis"]["FF"] - r["wrapper_chain_ffs"] for _, r in samples]
        else:
            y = [1e3 / r["fmax_mhz"] for _, r in samples]
        out[key] = tuple(float(c) for c in np.linalg.lstsq(a, np.array(y, dtype=float), rcond=None)[0])
    return out


@dataclass(frozen=True)
class Estimate:
    """Predicted synthesis of one configuration (LUT4, TRELLIS_FF, DP16KD, MULT18X18D, Fmax in MHz)."""

    target: str
    lanes: int
    LUT: int
    FF: int
    BRAM: int
    DSP: int
    fmax_mhz: float
    capacity: dict

    def fits(self) -> bool:
        return all(getattr(self, k) <= self.capacity[k] for k in ("LUT", "FF", "BRAM", "DSP"))

    def summary(self) -> str:
        use = ", ".join(f"{k} {getattr(self, k)}/{self.capacity[k]}" for k in ("LUT", "FF", "BRAM", "DSP"))
        return (f"{self.target}, {self.lanes} lanes (estimate): {use}; Fmax {self.fmax_mhz:.1f} MHz; "
                + ("fits" if self.fits() else "does not fit"))


def estimate(image: Image, target: str, chain_bits: int, lutram: bool = False,
             coefficients: dict | None = None) -> Estimate:
    """The estimate for ``image`` (a placed core's) on ECP5 ``target``; ``chain_bits``: the serial wrapper's FFs."""
    from .synth import TARGETS

    if not target.startswith("ecp5"):
        raise RcsnnError(f"--target {target}: the estimate models ECP5 (ecp5-25f, ecp5-45f, ecp5-85f) only")
    require_binary(image, "the estimate")  # its LUT model has no count divider or count multipliers
    c = COEFFICIENTS if coefficients is None else coefficients
    f = features(image, lutram)
    rows = _rows(f)
    value = {k: float(np.dot(c[k], rows[k])) for k in c}
    return Estimate(target, image.lanes, round(value["LUT"]), chain_bits + round(value["FF"]), f["BRAM"], f["DSP"],
                    1e3 / value["period_ns"], dict(TARGETS[target].capacity))
