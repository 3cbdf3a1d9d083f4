"""Rationales for SST-2: train a rationale generator against the frozen minilm-sst2 classifier and
compare its rationales with gradient × input, leave-one-out and random words at the same selection
rate on SST-2 dev sentences.

The classifier is used as it is (not fine-tuned on masked inputs), so this recipe also shows how a
generator copes with a predictor for which a mostly-[MASK]ed input is unusual. The generator is
trained with HardKuma (default target rate 0.3: SST-2 phrases are short) on the first
`--train-sentences` training sentences, with the classifier's own predictions as targets. The
evaluation uses the first `--dev-sentences` dev sentences with at least `--min-words` words (shorter
phrases have trivial rationales): fidelity and accuracy from the rationale alone, comprehensiveness
and sufficiency (probabilities, unselected words [MASK]ed and deleted). SST-2 has no human
rationales, so there are no plausibility columns. Outputs go to `--output` (default outputs/sst2).

    HF_HUB_OFFLINE=1 python recipes/sst2_rationales.py --threads 1
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import torch
from rationale_eval import compare, generator_rationales, markdown, run_method, selected_words
from transformers import set_seed

from hf_seqinterp import ModelAdapter
from hf_seqinterp.rationale import RationaleGenerator, RationaleTrainingArguments, train_rationale_generator

REPO_ROOT = Path(__file__).resolve().parent.parent


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, default=REPO_ROOT / "../shared/models/minilm-sst2")
    parser.add_argument("--data-dir", type=Path, default=REPO_ROOT / "../shared/data/sst2")
    parser.add_argument("--output", type=Path, default=REPO_ROOT / "outputs/sst2")
    parser.add_argument("--train-sentences", type=int, default=8000)
    parser.add_argument("--dev-sentences", type=int, default=500)
    parser.add_argument("--min-words", type=int, default=6)
    parser.add_argument("--target-rate", type=float, default=0.3)
    parser.add_argument("--coherence", type=float, default=0.1)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--lagrange-lr", type=float, default=0.1)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def read_sst2(path: Path) -> tuple[list[str], list[int]]:
    lines = path.read_text(encoding="utf-8").splitlines()[1:]
    pairs = [line.rsplit("\t", 1) for line in lines if line.strip()]
    return [p[0].strip() for p in pairs], [int(p[1]) for p in pairs]


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    for path in (args.model / "config.json", args.data_dir / "train.tsv", args.data_dir / "dev.tsv"):
        if not path.exists():
            sys.exit(f"missing input: {path}")
    torch.set_num_threads(args.threads)
    set_seed(args.seed)
    args.output.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    adapter = ModelAdapter.from_pretrained(str(args.model))
    train_texts, _ = read_sst2(args.data_dir / "train.tsv")
    dev_texts, dev_labels = read_sst2(args.data_dir / "dev.tsv")
    keep = [i for i, t in enumerate(dev_texts) if len(t.split()) >= args.min_words][: args.dev_sentences]
    dev_texts, dev_labels = [dev_texts[i] for i in keep], [dev_labels[i] for i in keep]

    torch.manual_seed(args.seed)
    generator = RationaleGenerator.for_predictor(
        adapter, estimator="hardkuma", target_rate=args.target_rate, coherence=args.coherence,
        hidden_size=64, embedding_size=128,
    )
    settings = RationaleTrainingArguments(
        output_dir=str(args.output / "generator"), epochs=args.epochs, batch_size=args.batch_size,
        learning_rate=args.lr, lagrange_lr=args.lagrange_lr, seed=args.seed,
    )
    trained = train_rationale_generator(adapter, train_texts[: args.train_sentences], generator=generator, args=settings)
    training_minutes = trained.seconds / 60

    stage = time.perf_counter()
    produced = generator_rationales(adapter, dev_texts, generator)
    counts = [selected_words(e, m) for e, m in zip(produced.explanations, produced.masks)]
    gxi = run_method("gradient_x_input", adapter, dev_texts, counts, at="word_embeddings")  # as in the docs tables
    gxi.name = "gradient × input, top-k words"
    loo = run_method("erasure", adapter, dev_texts, counts, level="word", replacement="mask")
    loo.name = "leave-one-out (word, [MASK]), top-k words"
    rand = run_method("random", adapter, dev_texts, counts, seed=args.seed)
    rand.name = "random words"
    rows = compare(adapter, [produced, gxi, loo, rand], dev_labels, None)
    evaluation_minutes = (time.perf_counter() - stage) / 60

    report = [
        (f"SST-2 dev, first {len(dev_texts)} sentences with >= {args.min_words} words; generator trained on "
         f"{min(args.train_sentences, len(train_texts))} training sentences ({trained.global_step} steps)."),
        "", markdown(rows), "",
        (f"Minutes: generator training {training_minutes:.1f}, evaluation {evaluation_minutes:.1f}, "
         f"total {(time.perf_counter() - started) / 60:.1f}"),
    ]
    (args.output / "results.md").write_text("\n".join(report) + "\n")
    (args.output / "results.json").write_text(json.dumps(
        {"args": {k: str(v) for k, v in vars(args).items()}, "rows": rows, "history": trained.history}, indent=1))
    print("\n".join(report))


if __name__ == "__main__":
    main()
