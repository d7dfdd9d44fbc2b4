"""Compare a trained spiking core with an add-k n-gram and a GRU of equal size and training time.

    python examples/baselines.py [--checkpoint CKPT] [--seconds S] [--threads T] [-o OUT.json]

Reads the checkpoint's training config and metrics (no tensors) — without a checkpoint,
the default recipe of ``rcsnn train`` and ``--seconds`` (so the baselines can train
beside the spiking model) — rebuilds its corpus, finds the best add-k n-gram (order and
k picked on the held-out text), trains a GRU with as many trainable parameters as the
spiking model for the same wall-clock time (``metrics.train_seconds``, or ``--seconds``)
and the same batches (early-stopped on the held-out split, see ``train_gru``), prints a
table and writes the figures as JSON. The spiking model's ``train_seconds`` include its
end-of-phase held-out evaluations, so at equal wall time the GRU gets slightly more
training.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from rcsnn.frontends.checkpoint import read_config
from rcsnn.model.baselines import best_ngram, count_parameters, gru_hidden_for_params, spiking_parameter_count, train_gru
from rcsnn.model.corpus import Corpus, read_text
from rcsnn.model.train import TrainConfig, config_dict

SPIKING_METRICS = ("bpc_float", "bpc_ternary", "bpc_float64", "bpc_fixed")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", help="trained spiking core (default: the default training recipe)")
    parser.add_argument("--seconds", type=float, help="GRU training time (default: the spiking model's train_seconds)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("-o", "--output", default=str(Path(__file__).with_name("baselines.json")))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    log = lambda line: print(line, flush=True)  # noqa: E731

    if args.checkpoint:
        config = read_config(args.checkpoint)
        training, metrics = config["training"], config["metrics"]
    elif args.seconds is None:
        parser.error("--seconds is required without --checkpoint")
    else:
        training, metrics = {**config_dict(TrainConfig()), "text": "pydoc_data.topics"}, {}
    text = training["text"]
    corpus = Corpus.from_text(read_text(None if text == "pydoc_data.topics" else text))
    vocab_size = len(corpus.vocab)
    spiking_params = spiking_parameter_count(vocab_size, len(training["taus"]), training["group_size"], training["embed"])
    seconds = args.seconds if args.seconds is not None else metrics["train_seconds"]

    ngram = best_ngram(corpus.train, corpus.held_out, vocab_size)
    log(f"best n-gram: order {ngram['order']} k {ngram['k']} -> {ngram['bpc']:.4f} bits/char")
    hidden = gru_hidden_for_params(spiking_params, vocab_size, training["embed"])
    log(f"training a GRU (H={hidden}) for {seconds:.0f} s on batches of {training['batch']} x {training['length']}")
    gru, gru_metrics = train_gru(corpus, hidden, training["embed"], seconds, training["batch"], training["length"],
                                 seed=training["seed"], log=log)
    gru_params = count_parameters(gru)

    spiking = {key: metrics[key] for key in SPIKING_METRICS if key in metrics}
    result = {
        "checkpoint": args.checkpoint,
        "text": text,
        "ngram": ngram,
        "gru": {"hidden": hidden, "embed": training["embed"], "parameters": gru_params, **gru_metrics},
        "spiking": {"parameters": spiking_params, "seconds": metrics.get("train_seconds"), **spiking},
    }
    rows = [(f"n-gram (order {ngram['order']}, k {ngram['k']})", "-", "-", ngram["bpc"]),
            (f"GRU (H={hidden})", gru_params, gru_metrics["seconds"], gru_metrics["bpc"])]
    rows += [(f"spiking {key[4:]}", spiking_params, metrics.get("train_seconds"), value) for key, value in spiking.items()]
    print(f"\n{'model':34s} {'parameters':>10s} {'seconds':>8s} {'bits/char':>9s}")
    for name, params, secs, bpc in rows:
        print(f"{name:34s} {params!s:>10s} {secs!s:>8s} {bpc:9.4f}")
    Path(args.output).write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
