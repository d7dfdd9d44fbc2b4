"""The tables of measured figures in the docs, regenerated: each subcommand runs the real commands and prints one
Markdown table (progress and the commands' own output go to stderr).

    .venv/bin/python docs/figures.py digital-small     # docs/digital.md: small core in Icarus, ECP5, iCE40 (~95 s)
    .venv/bin/python docs/figures.py analog-small      # docs/analog.md: small core in ngspice, four circuits (~15 s)
    .venv/bin/python docs/figures.py example-heldout   # examples/README.md: held-out bits/char, example core (< 1 s)
    .venv/bin/python docs/figures.py all

``digital-small`` and ``analog-small`` run ``rcsnn verify``, ``rcsnn verilog`` and ``rcsnn synth`` on
``examples/small_3x32.rcsnn`` (in-process, the same code as the command line) in a temporary directory
(``--out DIR`` keeps it). ``example-heldout`` formats the figures recorded by the long runs that made them —
``rcsnn train`` (the checkpoint's ``metrics``) and ``examples/baselines.py`` (``examples/baselines.json``) — and
reruns nothing. The tables measured on the paper-sized core with long runs (10,000 steps in Verilator, 200 steps
in ngspice, training) name their bench command, date and machine in the docs instead.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SMALL = "examples/small_3x32.rcsnn"
EXAMPLE = "examples/sapu_3x512.rcsnn"


def rcsnn(*argv: str, ok=(0,)) -> int:
    """``rcsnn ARGV`` in-process from the repository's root, its output on stderr; its exit status."""
    from rcsnn.cli import main

    print("$ rcsnn " + " ".join(argv), file=sys.stderr, flush=True)
    with contextlib.chdir(ROOT), contextlib.redirect_stdout(sys.stderr):
        code = main(list(argv))
    if code not in ok:
        raise SystemExit(f"figures: rcsnn {' '.join(argv)} exited with {code}")
    return code


def table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join("---" for _ in header) + " |"]
    return "\n".join(lines + ["| " + " | ".join(str(c) for c in row) + " |" for row in rows])


def digital_small(out: Path) -> str:
    """The small core: cycles per step of the emitted Verilog in Icarus (200 steps of held-out text, bit-exact
    against the fixed-point reference) and place and route (resources, Fmax, steps/s at Fmax) on ECP5-25F with
    4 lanes (as hdl/small_3x32) and iCE40 UP5K with 1 and 4 lanes."""
    names = {"ecp5-25f": ("ECP5-25F", "DP16KD", "MULT18X18D"), "ice40-up5k": ("iCE40 UP5K", "EBR", "SB_MAC16")}
    rows = []
    for target, lanes in (("ecp5-25f", 4), ("ice40-up5k", 1), ("ice40-up5k", 4)):
        design = out / f"l{lanes}"
        if not (design / "design.json").exists():
            rcsnn("verilog", SMALL, "-o", str(design), "--lanes", str(lanes), "--steps", "32")
        verified = out / f"verify-l{lanes}"
        if not (verified / "digital-icarus" / "report.json").exists():
            rcsnn("verify", SMALL, "--backend", "icarus", "--steps", "200", "--lanes", str(lanes), "--out", str(verified))
        check = json.loads((verified / "digital-icarus" / "report.json").read_text())
        cycles = check["figures"]["cycles_per_step"]
        exact = "yes" if check["verdict"] == "PASS" else "**no**"
        rcsnn("synth", str(design), "--target", target, ok=(0, 2))
        report = json.loads((design / "synth" / target / "report.json").read_text())
        device, bram, dsp = names[target]
        cap = report["capacity"]
        common = [device, lanes, f"{cycles:.1f}", exact]
        if report["fits"]:
            placed = report["placed"]
            rows.append(common + [f"{placed['LUT']:,}/{cap['LUT']:,}", f"{report['synthesis']['FF']:,}",
                                  f"{placed['BRAM']}/{cap['BRAM']} {bram}", f"{placed['DSP']}/{cap['DSP']} {dsp}",
                                  f"{report['fmax_mhz']:.1f}", f"{report['fmax_mhz'] * 1e6 / cycles:,.0f}"])
        else:
            used = report["synthesis"]
            over = ", ".join(f"{used[k]} of {cap[k]} {bram if k == 'BRAM' else dsp if k == 'DSP' else k}"
                             for k in used if used[k] > cap[k])
            rows.append(common + [f"does not fit: {over}", "", "", "", "", ""])
    return table(["target", "lanes", "cycles/step", "bit-exact", "logic cells", "FF", "block RAM", "DSP", "Fmax MHz",
                  "steps/s at Fmax"], rows)


def analog_small(out: Path) -> str:
    """The small core in ngspice, 60 steps of held-out text against the float64 reference: open loop (the default of
    verify) and closed loop in the ideal form, open loop in the op-amp form at two gains."""
    runs = [("open", "ideal", ()), ("closed", "ideal", ("--mode", "closed")),
            ("open", "op-amp, A = 1e9", ("--form", "opamp", "--gain", "1e9")),
            ("open", "op-amp, A = 1e6", ("--form", "opamp", "--gain", "1e6"))]
    rows = []
    for k, (mode, form, extra) in enumerate(runs):
        directory = out / f"spice-{k}"
        rcsnn("verify", SMALL, "--backend", "spice", "--steps", "60", "--workers", "2", "--out", str(directory), *extra,
              ok=(0, 1))
        report = json.loads((directory / "report.json").read_text())
        c, f = report["comparison"], report["figures"]
        rows.append([mode, form, report["verdict"], f"{c['steps'] * c['neurons']:,}", f"{c['reference_spikes']:,}",
                     f"{c['backend_spikes']:,}", f["decidable_mismatches"], f["membrane_violations"],
                     f"{f['smallest_margin']:.1e}", f"{max(b['a'] for b in f['budget']):.1e}",
                     f"{f['largest_error']:.1e}", f"{f['worst_membrane']['ratio']:.2g}", len(f["undecidable"]),
                     f"{f['cpu_seconds_per_step']:.3f}"])
    return table(["loop", "form", "verdict", "events", "reference spikes", "SPICE spikes", "decidable mismatches",
                  "membranes outside budget", "smallest margin V", "largest budget a V", "largest error V",
                  "worst error / budget", "undecidable", "ngspice CPU s/step"], rows)


def example_heldout(out: Path) -> str:
    """Held-out bits/char of the example core and the baselines, as recorded by ``rcsnn train`` in the checkpoint
    and by ``examples/baselines.py`` in ``examples/baselines.json`` (nothing is rerun)."""
    from rcsnn.frontends.checkpoint import read_config

    config = read_config(ROOT / EXAMPLE)
    m, t, fx = config["metrics"], config["training"], config["fixed"]
    base = json.loads((ROOT / "examples" / "baselines.json").read_text())
    ngram, gru = base["ngram"], base["gru"]
    rows = [
        [f"dense float (torch, float32), after {t['float_steps']} steps", f"{m['bpc_float']:.4f}"],
        [f"pruned to {100 * t['sparsity']:.1f} %, float (torch)", f"{m['bpc_prune']:.4f}"],
        ["ternary (torch, float32)", f"{m['bpc_ternary']:.4f}"],
        ["**ternary core, float64 reference** (what the SPICE netlist must match)", f"**{m['bpc_float64']:.4f}**"],
        [f"**ternary core, fixed-point reference** Wv = {fx['Wv']}, Fv = {fx['Fv']}, Fb = {fx['Fb']} "
         "(what the digital core must match)", f"**{m['bpc_fixed']:.4f}**"],
        [f"best add-k character n-gram (order {ngram['order']} = {ngram['order'] - 1} characters of context, "
         f"k = {ngram['k']}, chosen on this split)", f"{ngram['bpc']:.4f}"],
        [f"GRU, {gru['parameters']:,} parameters (H = {gru['hidden']}), same wall time ({gru['seconds']:.0f} s), "
         f"early-stopped on this split (best at step {gru['best_step']} of {gru['steps']}; {gru['final_bpc']:.4f} at the "
         "end: it memorises the training text)", f"{gru['bpc']:.4f}"],
    ]
    return table(["model", "bits/char"], rows)


TABLES = {"digital-small": digital_small, "analog-small": analog_small, "example-heldout": example_heldout}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("table", choices=[*TABLES, "all"])
    parser.add_argument("--out", default=None, help="keep the runs' outputs in this directory (default: a temporary one)")
    args = parser.parse_args()
    from rcsnn.verify.report import machine

    here = machine()
    with tempfile.TemporaryDirectory(prefix="rcsnn-figures-") as tmp:
        for name in TABLES if args.table == "all" else [args.table]:
            out = Path(args.out or tmp) / name
            out.mkdir(parents=True, exist_ok=True)
            start = time.perf_counter()
            text = TABLES[name](out)
            seconds = time.perf_counter() - start
            print(f"{text}\n\nRegenerate: `.venv/bin/python docs/figures.py {name}` ({seconds:.0f} s"
                  f" on {here['cores']} cores of {here['cpu']}, {time.strftime('%Y-%m-%d')}).\n", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
