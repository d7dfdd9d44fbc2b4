"""The language model on chip: cycles per character, characters/s at Fmax, beside host-side PyTorch generation.

    python bench/bench_lm.py [--core examples/sapu_3x512.rcsnn] [--lanes 8] [--length 500] [--prompt "The "]
                             [--synth ecp5-85f] [--out bench-out/lm]

In one run:

* ``rcsnn verilog CORE --lm`` into ``<out>/<core>-l<L>``; the LM top in Verilator generates ``--length``
  characters greedily from ``--prompt`` (the chip does embedding, readout and choice) and its text is compared
  with ``rcsnn generate --backend fixed-lm``'s (the same code); cycles per generated character are counted
  by the harness (from the prompt's last byte to ``busy`` falling, divided by ``--length``);
* the host-side PyTorch generation rate: the float32 ``SpikingLM`` carrying the core's weights (as
  ``bench_digital.py``, its ternary matrix built once), batch 1, 1 thread, greedy, one call per character
  (characters/s, best of three);
* ``--synth T``: Yosys ``synth_ecp5`` + nextpnr (out of context: no pins) of the LM top itself, and
  ``rcsnn synth`` of the core (its serial-pin wrapper), for resources and Fmax; characters/s at Fmax =
  Fmax / cycles per character (the LM top's Fmax if it fits T, else the core's, said so);
* SymbolicLight V1's 22.63 tokens/s CPU runtime, the figure issue 11 compares against (quoted, not measured).

Writes ``<out>/bench_lm.json``; exits 1 if the chip's text differs from the reference's.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

SYMBOLICLIGHT_TOKENS_PER_S = 22.63


def torch_chars_per_second(graph, prompt: str, length: int) -> float:
    """Greedy batch-1 generation with the PyTorch model of ``graph`` on 1 thread: characters/s, best of three."""
    import torch
    from bench_digital import torch_model

    core = graph.arrays()
    torch.set_num_threads(1)
    model = torch_model(core)
    with torch.no_grad():
        weight = model.recurrent.weight()
    model.recurrent.weight = lambda: weight  # the ternary α·T once, as a deployed model would, not per character
    tokens = [int(t) for t in core.frontend.encode(prompt)]

    @torch.no_grad()
    def run() -> float:
        state = None
        start = time.perf_counter()
        for t in tokens[:-1]:
            _, state, *_ = model(torch.tensor([[t]]), state)
        token = tokens[-1]
        for _ in range(length):
            logits, state, *_ = model(torch.tensor([[token]]), state)
            token = int(logits[0, -1].argmax())
        return length / (time.perf_counter() - start)

    run()
    return max(run() for _ in range(3))


#: Bits of one ECP5 DP16KD block RAM.
DP16KD_BITS = 18 * 1024


def synth_lm_top(design: Path, target: str, rom_bits: int) -> dict:
    """``synth_ecp5`` of ``rcsnn_lm.il`` and nextpnr out of context on ``target``: cell use and Fmax (or why not;
    ROMs of more bits than the target's block RAM are refused before the long synthesis)."""
    from rcsnn.digital.synth import FREQUENCY_MHZ, TARGETS
    from rcsnn.errors import RcsnnError
    from rcsnn.tools import SYNTH_TIMEOUT, run, yosys

    spec = TARGETS[target]
    if rom_bits > spec.capacity["BRAM"] * DP16KD_BITS:
        return {"target": target, "fits": False, "synthesis": None,
                "over": f"ROMs {rom_bits:,} bits > {spec.capacity['BRAM']} DP16KD x 18 Kbit = "
                        f"{spec.capacity['BRAM'] * DP16KD_BITS:,} bits of block RAM"}
    work = design / "synth_lm" / target
    work.mkdir(parents=True, exist_ok=True)
    yosys(f"read_rtlil ../../rcsnn_lm.il\n{spec.synth} -top rcsnn_lm -json netlist.json\n"
          "tee -q -o stat.json stat -json\n", work, "yosys (synth LM top)", SYNTH_TIMEOUT)
    cells = json.loads((work / "stat.json").read_text())["design"]["num_cells_by_type"]
    usage = {cls: sum(int(cells.get(c, 0)) for c in types) for cls, types in spec.cells.items()}
    out = {"target": target, "synthesis": usage, "capacity": spec.capacity}
    over = [cls for cls in usage if usage[cls] > spec.capacity[cls]]
    if over:
        return {**out, "fits": False, "over": over}
    try:
        run([spec.nextpnr, *spec.device, "--out-of-context", "--json", "netlist.json", "--freq", str(FREQUENCY_MHZ),
             "--timing-allow-fail", "--report", "pnr.json", "--seed", "1"], cwd=work, what=spec.nextpnr,
            timeout=SYNTH_TIMEOUT)
    except RcsnnError as error:
        return {**out, "fits": False, "error": str(error)}
    pnr = json.loads((work / "pnr.json").read_text())
    return {**out, "fits": True, "fmax_mhz": min(v["achieved"] for v in pnr["fmax"].values())}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--core", default="examples/sapu_3x512.rcsnn")
    p.add_argument("--lanes", type=int, default=8)
    p.add_argument("--length", type=int, default=500)
    p.add_argument("--prompt", default="The ")
    p.add_argument("--synth", default=None, help="ECP5 target of rcsnn.digital.synth.TARGETS (e.g. ecp5-85f)")
    p.add_argument("--out", default="bench-out/lm")
    args = p.parse_args()

    import numpy as np

    from rcsnn.digital.emit import emit
    from rcsnn.digital.layout import build_image, place
    from rcsnn.digital.lm.image import lm_image
    from rcsnn.digital.lm.run import run_lm_verilator
    from rcsnn.frontends.load import load_core
    from rcsnn.model.lm_fixed import fixed_lm, lm_generate, readout_cost

    graph = load_core(args.core)
    model = fixed_lm(graph)
    placed = place(graph, args.lanes)
    image = lm_image(model, build_image(placed))
    design = Path(args.out) / f"{Path(args.core).stem}-l{args.lanes}"
    start = time.perf_counter()
    emit(placed, design, np.zeros((1, graph.arrays().n_neurons), dtype=np.int64), lm=model)
    emitted = time.perf_counter() - start
    prompt = args.prompt.encode()
    reference = lm_generate(graph, model, prompt, args.length, False, 0)
    start = time.perf_counter()
    chip = run_lm_verilator(image, design, prompt, args.length, False, 0)
    built_and_run = time.perf_counter() - start
    per_char = chip.generate_cycles / args.length
    host = torch_chars_per_second(graph, args.prompt, args.length)
    cost = readout_cost(graph, model)
    result = {"core": args.core, "lanes": args.lanes, "length": args.length, "prompt": args.prompt,
              "identical": chip.text == reference.text and bool((chip.spikes == reference.spikes).all()),
              "cycles_per_char": per_char, "prompt_cycles": chip.prompt_cycles, "emit_s": emitted,
              "verilator_build_and_run_s": built_and_run, "verilator_run_s": chip.seconds,
              "torch_chars_per_s": host, "symbolic_light_tokens_per_s": SYMBOLICLIGHT_TOKENS_PER_S,
              "readout_bpc": cost}
    print(f"{args.core}, {args.lanes} lanes: {args.length} characters greedy from {args.prompt!r}: chip text "
          f"{'identical to' if result['identical'] else 'DIFFERENT from'} the fixed-LM reference; "
          f"{per_char:.1f} cycles/character (prompt {chip.prompt_cycles} cycles for {len(prompt)} bytes)")
    print(f"Verilator: emit {emitted:.0f} s, build + run {built_and_run:.0f} s, run {chip.seconds:.2f} s "
          f"({args.length / chip.seconds:.0f} characters/s simulated)", flush=True)
    print(f"readout: bits/char on {cost['characters']} held-out predictions: float {cost['float']:.4f}, "
          f"int8 {cost['int8']:.4f} (+{cost['int8'] - cost['float']:.4f})")
    print(f"host PyTorch (float32, batch 1, 1 thread) greedy generation: {host:.0f} characters/s; "
          f"SymbolicLight V1 CPU runtime (quoted): {SYMBOLICLIGHT_TOKENS_PER_S} tokens/s")
    if args.synth:
        from rcsnn.digital.synth import synthesize

        core_report = synthesize(design, args.synth)
        print(f"{args.synth}: core (rcsnn synth) Fmax {core_report['fmax_mhz']:.1f} MHz", flush=True)
        lm_top = synth_lm_top(design, args.synth, sum(json.loads((design / "design.json").read_text())["lm"]
                                                      ["rom_bits"].values()))
        result["synth"] = {"lm_top": lm_top, "core": {k: core_report.get(k) for k in ("fits", "fmax_mhz", "placed")}}
        fmax, source = ((lm_top["fmax_mhz"], "the LM top's") if lm_top.get("fits")
                        else (core_report["fmax_mhz"], "the core's (the LM top does not fit: "
                              f"{lm_top.get('over') or lm_top.get('error')})"))
        chars = fmax * 1e6 / per_char
        result.update({"fmax_mhz": fmax, "fmax_source": source, "chip_chars_per_s": chars})
        print(f"{args.synth}: LM top {lm_top['synthesis']} (fits: {lm_top['fits']}); Fmax {fmax:.1f} MHz, {source}",
              flush=True)
        print(f"chip: {chars:,.0f} characters/s at Fmax = {chars / host:.0f}x host PyTorch, "
              f"{chars / SYMBOLICLIGHT_TOKENS_PER_S:,.0f}x SymbolicLight V1's CPU figure")
    Path(args.out).mkdir(parents=True, exist_ok=True)
    (Path(args.out) / "bench_lm.json").write_text(json.dumps(result, indent=1) + "\n")
    return 0 if result["identical"] else 1


if __name__ == "__main__":
    sys.exit(main())
