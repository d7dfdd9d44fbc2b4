"""The robust example's figures beside the original's: generation agreement and the margin histogram.

    .venv/bin/python examples/robust_figures.py agreement [CORE ...]     # float vs fixed `rcsnn generate`
    .venv/bin/python examples/robust_figures.py margins [CORE ...] [--plot docs/training_margins.png]

``agreement``: for each of 10 prompts (40 held-out characters each, at evenly spaced offsets of the held-out
split), ``rcsnn generate``'s code (:func:`rcsnn.model.generate.generate`, temperature 0.8, seed 0, the
command's defaults) generates ``--length`` characters on the float64 and on the fixed-point reference; the
figure is the number of leading characters the two texts share. ``margins``: the distances ``|v − θ| / θ``
of every float64 membrane over the held-out text (16 streams; the histogram ``rcsnn train`` / ``finetune`` recorded in
the checkpoint if it has one, else measured the same way) in decades, as a
Markdown table and, with ``--plot``, a bar chart. Default cores: the example and the robust example.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from rcsnn.frontends.checkpoint import load_checkpoint, read_config
from rcsnn.model.corpus import Corpus
from rcsnn.model.generate import references_agree_for
from rcsnn.model.robust import margin_histogram
from rcsnn.model.train import reference_run
from rcsnn.text import read_text

CORES = ["examples/sapu_3x512.rcsnn", "examples/sapu_3x512_robust.rcsnn"]


def agreement(path: str, length: int) -> list[int]:
    """Leading characters of float64 and fixed-point generation that agree, per prompt."""
    graph = load_checkpoint(path)
    agreed = []
    for prompt in Corpus.from_text(read_text(None)).prompts():
        same = references_agree_for(graph, prompt, length)
        agreed.append(same)
        print(f"{path}: {same} of {length} characters agree after {prompt[:20]!r}...", file=sys.stderr, flush=True)
    return agreed


def margins(path: str) -> dict[str, list]:
    """The histogram ``rcsnn train`` / ``finetune`` recorded in the checkpoint's metrics, else measured the same way."""
    recorded = read_config(path).get("metrics", {}).get("margin_histogram")
    if recorded:
        return recorded
    core = load_checkpoint(path).arrays()
    run, _ = reference_run(core, Corpus.from_text(read_text(None)).held_out, "float")
    return margin_histogram(run.membranes, core.per_neuron("theta"))


def plot(histograms: dict[str, dict], out: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3.5))
    labels = None
    width = 0.8 / len(histograms)
    for k, (path, h) in enumerate(histograms.items()):
        counts = np.array(h["counts"], dtype=float)
        labels = [f"<{h['edges'][1]:.0e}"] + [f"{a:.0e}–{b:.0e}" for a, b in zip(h["edges"][1:], h["edges"][2:])] \
            + [f"≥{h['edges'][-1]:.0f}"]
        ax.bar(np.arange(len(counts)) + k * width, counts / counts.sum(), width, label=path.split("/")[-1],
               log=True)
    ax.set_xticks(np.arange(len(labels)) + 0.4 - width / 2, labels, rotation=45, ha="right", fontsize=7)
    ax.set_xlabel("|v − θ| / θ at the step boundary (float64 reference, held-out text)")
    ax.set_ylabel("fraction of events")
    first = h["edges"].index(1e-3)  # the bin starting at 1e-3 θ: the target's boundary
    ax.axvline(first - 0.1 - width / 2, color="grey", ls=":", lw=1)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=110, metadata={"Software": None})
    print(f"wrote {out}", file=sys.stderr)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=("agreement", "margins"))
    parser.add_argument("cores", nargs="*", default=CORES)
    parser.add_argument("--length", type=int, default=1000)
    parser.add_argument("--plot", default=None, help="margins: write the bar chart here (.png)")
    args = parser.parse_args()
    if args.what == "agreement":
        print(f"| core | characters agreeing (of {args.length}) for the 10 prompts | all {args.length} |\n|---|---|---|")
        for path in args.cores:
            agreed = agreement(path, args.length)
            print(f"| `{path}` | {', '.join(map(str, agreed))} | {sum(a == args.length for a in agreed)} of 10 |")
        return
    histograms = {path: margins(path) for path in args.cores}
    edges = next(iter(histograms.values()))["edges"]
    bins = [f"[{a:g}, {b:g})" for a, b in zip(edges, edges[1:])] + [f"[{edges[-1]:g}, ∞)"]
    print("| \\|v − θ\\| / θ | " + " | ".join(f"`{p.split('/')[-1]}`" for p in histograms) + " |")
    print("|---|" + "---|" * len(histograms))
    for k, name in enumerate(bins):
        print(f"| {name} | " + " | ".join(f"{h['counts'][k]:,}" for h in histograms.values()) + " |")
    if args.plot:
        plot(histograms, args.plot)


if __name__ == "__main__":
    main()
