"""Rationales for movie reviews: train a rationale generator against a sentiment classifier
(optionally fine-tuned on the reviews first) on ERASER Movie Reviews, and compare its rationales with
gradient × input, leave-one-out and random selections at the same selection rate on the validation
reviews, against the human evidence.

1. Inputs. Reviews have 600–1,000+ words; to fit 2 CPU cores each review is cut to its last
   `--max-tokens` tokens (default 128, about 100 words; the verdict usually sits at the end: 41% of
   the validation evidence lies in the last 220 words, 25% in the first 220). Human evidence spans
   are shifted into the window; evidence outside it is dropped (reviews left without any are
   skipped by the plausibility metrics). The generator trains on a seeded random subset of
   `--limit-train` training reviews (default 800 of 1,600).
2. Predictor. By default the bundled default model (3-layer BERT distilled for SST-2) as it is: 78.5%
   accuracy on the 128-token validation windows. `--finetune-epochs N` fine-tunes it on the training
   windows first, with half of each batch's reviews getting a random fraction of their words
   [MASK]ed, so that a mostly-[MASK] rationale is in its training distribution (Madsen et al. 2023,
   "faithfulness measurable models"); that costs about 5 s per batch of 16 on a busy 2-core CPU.
3. Generator. `RationaleGenerator.for_predictor` (embeddings: the classifier's, reduced to 128
   principal components, frozen; a BiGRU of 64 units per direction) trained with HardKuma and a
   Lagrangian target selection rate (default 0.1, roughly the human evidence's share of the
   windows) against the frozen classifier: the target is the classifier's own prediction.
4. Evaluation on the 200 validation windows: task accuracy and fidelity from the rationale alone,
   selection rate, token F1 / IOU-F1 / AUPRC against the human evidence, comprehensiveness and
   sufficiency (probabilities; unselected words [MASK]ed as in training, and deleted as in ERASER),
   for the generator, top-k gradient × input and random words with k = the generator's selected
   word count per review, and the human evidence itself. Word-level leave-one-out costs one forward
   per word, so it runs on the first `--loo-docs` reviews (a second table compares all methods there).

Everything is written under `--output` (default outputs/eraser, ignored by git): the classifier,
the generator (with its checkpoints), results.md and results.json. `--reuse` skips the stages whose
outputs exist. Run from the repository root (CPU time in docs/methods/rationales.md):

    HF_HUB_OFFLINE=1 python recipes/eraser_rationales.py --threads 1
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from rationale_eval import (
    MethodRationales,
    compare,
    generator_rationales,
    markdown,
    run_method,
    selected_words,
)
from tqdm.auto import tqdm
from train_default_model import collate, length_sorted_batches
from transformers import (
    AutoModelForSequenceClassification,
    AutoTokenizer,
    get_linear_schedule_with_warmup,
    set_seed,
)

from hf_seqinterp import ModelAdapter, metrics
from hf_seqinterp.metrics.plausibility import gold_rationale
from hf_seqinterp.rationale import (
    RationaleGenerator,
    RationaleTrainingArguments,
    predicted_labels,
    train_rationale_generator,
)

REPO_ROOT = Path(__file__).resolve().parent.parent
Span = tuple[int, int]


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--eraser-dir", type=Path, default=REPO_ROOT / "../shared/data/eraser_movies")
    parser.add_argument("--base", type=Path, default=REPO_ROOT / "hf_seqinterp/default_model",
                        help="the predictor (a BERT-like *ForSequenceClassification folder; default: the bundled "
                        "SST-2 model), used as is or fine-tuned on the reviews with --finetune-epochs")
    parser.add_argument("--output", type=Path, default=REPO_ROOT / "outputs/eraser")
    parser.add_argument("--max-tokens", type=int, default=128, help="tokens per review window (its end)")
    parser.add_argument("--finetune-epochs", type=int, default=1, help="0: use --base as is")
    parser.add_argument("--finetune-lr", type=float, default=5e-5)
    parser.add_argument("--mask-augment", type=float, default=0.5,
                        help="fraction of fine-tuning examples with a random share of their words [MASK]ed")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--estimator", choices=("hardkuma", "reinforce"), default="reinforce")
    parser.add_argument("--target-rate", type=float, default=0.1, help="HardKuma: selection rate bound")
    parser.add_argument("--sparsity", type=float, default=0.4, help="REINFORCE: λ1 per selected word share")
    parser.add_argument("--coherence", type=float, default=0.2, help="λ2 per transition per word boundary")
    parser.add_argument("--generator-epochs", type=int, default=2)
    parser.add_argument("--generator-lr", type=float, default=3e-3)
    parser.add_argument("--lagrange-lr", type=float, default=0.5)
    parser.add_argument("--lambda-max", type=float, default=30.0,
                        help="HardKuma: the multiplier's cap (the rate's gradient per word shrinks as 1/words)")
    parser.add_argument("--lambda-init", type=float, default=1.0,
                        help="HardKuma: the initial multiplier (small values let the task loss open every gate first)")
    parser.add_argument("--loo-docs", type=int, default=50, help="validation reviews for leave-one-out")
    parser.add_argument("--limit-train", type=int, default=800, help="a seeded random subset of N training reviews "
                        "(0: all 1,600)")
    parser.add_argument("--limit-val", type=int, help="evaluate a seeded random subset of N validation reviews")
    parser.add_argument("--reuse", action="store_true", help="skip stages whose outputs exist in --output")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (1 is faster on a busy machine)")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


# ----------------------------------------------------------------------------- data
@dataclass
class Split:
    texts: list[str]
    labels: list[int]
    evidence: list[list[Span]]
    ids: list[str]


def tail_start(text: str, tokenizer, max_tokens: int) -> int:
    """Character offset of the first word of the longest tail of `text` that fits in `max_tokens`."""
    starts = [s for s, _ in metrics.word_char_spans(text)]
    lo, hi = 0, len(starts) - 1  # the smallest word index whose tail fits
    while lo < hi:
        mid = (lo + hi) // 2
        if len(tokenizer(text[starts[mid]:], verbose=False)["input_ids"]) <= max_tokens:
            hi = mid
        else:
            lo = mid + 1
    return starts[lo]


def shift_spans(spans: Sequence[Span], start: int) -> list[Span]:
    """Spans of the full text as spans of text[start:], clipped; those wholly before `start` dropped."""
    return [(max(s, start) - start, e - start) for s, e in spans if e > start]


def read_split(eraser_dir: Path, split: str, tokenizer, max_tokens: int, limit: int | None, seed: int) -> Split:
    """The reviews of `split` cut to their last `max_tokens` tokens; `limit`: a seeded random subset
    (the files list all negative reviews first, so their first N would all be negative)."""
    data = metrics.load_eraser(eraser_dir / f"{split}.jsonl", eraser_dir / "docs")
    records = [json.loads(line) for line in (eraser_dir / f"{split}.jsonl").read_text().splitlines() if line.strip()]
    label_of = {r["annotation_id"]: int(r["classification"] == "POS") for r in records}
    rows = range(len(data.texts))
    if limit is not None and limit < len(rows):
        rows = sorted(random.Random(seed).sample(rows, limit))
    texts, evidence = [], []
    for i in rows:
        start = tail_start(data.texts[i], tokenizer, max_tokens)
        texts.append(data.texts[i][start:])
        evidence.append(shift_spans(data.rationales[i], start))
    ids = [data.ids[i] for i in rows]
    return Split(texts, [label_of[i] for i in ids], evidence, ids)


# ----------------------------------------------------------------------------- classifier
def masked_words(ids: list[int], word_ids: list[int | None], mask_id: int, rng: random.Random) -> list[int]:
    """Each word [MASK]ed (all its tokens) with one probability drawn uniformly for the text."""
    rate = rng.random()
    dropped = {w for w in set(word_ids) - {None} if rng.random() < rate}
    return [mask_id if w in dropped else i for i, w in zip(ids, word_ids)]


def finetune(args: argparse.Namespace, train: Split, folder: Path) -> None:
    tokenizer = AutoTokenizer.from_pretrained(args.base)
    model = AutoModelForSequenceClassification.from_pretrained(args.base, dtype=torch.float32)
    encoded = tokenizer(train.texts)
    ids, word_ids = encoded["input_ids"], [encoded.word_ids(i) for i in range(len(train.texts))]
    rng = random.Random(args.seed)
    total = args.finetune_epochs * math.ceil(len(ids) / args.batch_size)
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.finetune_lr, weight_decay=0.01)
    schedule = get_linear_schedule_with_warmup(optimizer, int(0.06 * total), total)
    labels = torch.tensor(train.labels)
    model.train()
    bar = tqdm(total=total, desc="fine-tuning the classifier")
    for epoch in range(args.finetune_epochs):
        for batch in length_sorted_batches([len(i) for i in ids], args.batch_size, rng):
            rows = [
                masked_words(ids[i], word_ids[i], tokenizer.mask_token_id, rng) if rng.random() < args.mask_augment
                else ids[i]
                for i in batch
            ]
            loss = F.cross_entropy(model(**collate(rows, tokenizer.pad_token_id)).logits, labels[batch])
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            schedule.step()
            optimizer.zero_grad(set_to_none=True)
            bar.update(1)
            bar.set_postfix(epoch=epoch + 1, loss=f"{loss.item():.3f}")
    bar.close()
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)


def accuracy(adapter: ModelAdapter, split: Split) -> float:
    predicted = predicted_labels(adapter, adapter.encode(split.texts)).numpy()
    return float((predicted == np.asarray(split.labels)).mean())


# ----------------------------------------------------------------------------- generator
def train_generator(args: argparse.Namespace, adapter: ModelAdapter, train: Split, folder: Path) -> dict:
    torch.manual_seed(args.seed)
    generator = RationaleGenerator.for_predictor(
        adapter, estimator=args.estimator, target_rate=args.target_rate, sparsity=args.sparsity,
        coherence=args.coherence, hidden_size=64, embedding_size=128,
    )
    settings = RationaleTrainingArguments(
        output_dir=str(folder), epochs=args.generator_epochs, batch_size=args.batch_size,
        learning_rate=args.generator_lr, lagrange_lr=args.lagrange_lr, lambda_init=args.lambda_init,
        lambda_max=args.lambda_max, seed=args.seed,
        logging_steps=10,
    )
    result = train_rationale_generator(adapter, train.texts, generator=generator, args=settings)
    (folder / "history.json").write_text(json.dumps(result.history, indent=1))
    return {"steps": result.global_step, "seconds": result.seconds, "last": result.history[-1]}


# ----------------------------------------------------------------------------- evaluation
def human_rationales(reference: MethodRationales, evidence: Sequence[Sequence[Span]]) -> MethodRationales:
    masks = [gold_rationale(e, spans)[0] for e, spans in zip(reference.explanations, evidence)]
    return MethodRationales("human evidence", reference.explanations, masks, 0.0, [m.astype(float) for m in masks])


def head(method: MethodRationales, n: int) -> MethodRationales:
    return MethodRationales(method.name, method.explanations[:n], method.masks[:n],
                            method.seconds * n / len(method.masks), method.scores[:n])


def evaluate(args: argparse.Namespace, adapter: ModelAdapter, val: Split, generator: Path) -> dict:
    produced = generator_rationales(adapter, val.texts, str(generator))
    counts = [selected_words(e, m) for e, m in zip(produced.explanations, produced.masks)]
    gxi = run_method("gradient_x_input", adapter, val.texts, counts, at="word_embeddings")  # as in the docs tables
    gxi.name = "gradient × input, top-k words"
    rand = run_method("random", adapter, val.texts, counts, seed=args.seed)
    rand.name = "random words"
    human = human_rationales(produced, val.evidence)
    everything = compare(adapter, [produced, gxi, rand, human], val.labels, val.evidence)
    n = min(args.loo_docs, len(val.texts))
    loo = run_method("erasure", adapter, val.texts[:n], counts[:n], level="word", replacement="mask")
    loo.name = "leave-one-out (word, [MASK]), top-k words"
    subset = compare(adapter, [head(produced, n), head(gxi, n), loo, head(rand, n), head(human, n)],
                     val.labels[:n], val.evidence[:n])
    return {"all": everything, "loo_subset": subset, "loo_docs": n}


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    if not (args.eraser_dir / "val.jsonl").exists():
        sys.exit(f"ERASER movies not found at {args.eraser_dir} (see --eraser-dir)")
    torch.set_num_threads(args.threads)
    set_seed(args.seed)
    args.output.mkdir(parents=True, exist_ok=True)
    times: dict[str, float] = {}
    started = time.perf_counter()
    tokenizer = AutoTokenizer.from_pretrained(args.base)
    train = read_split(args.eraser_dir, "train", tokenizer, args.max_tokens, args.limit_train or None, args.seed)
    val = read_split(args.eraser_dir, "val", tokenizer, args.max_tokens, args.limit_val, args.seed)
    times["data"] = time.perf_counter() - started

    classifier = args.base
    if args.finetune_epochs > 0:
        classifier = args.output / "classifier"
        if not (args.reuse and (classifier / "config.json").exists()):
            stage = time.perf_counter()
            finetune(args, train, classifier)
            times["fine-tuning"] = time.perf_counter() - stage
    adapter = ModelAdapter.from_pretrained(str(classifier))
    facts = {"val_accuracy_full_window": accuracy(adapter, val), "train_reviews": len(train.texts)}
    print(f"classifier accuracy on the validation windows: {facts['val_accuracy_full_window']:.3f}")

    generator = args.output / "generator"
    if not (args.reuse and (generator / "config.json").exists()):
        stage = time.perf_counter()
        facts["generator_training"] = train_generator(args, adapter, train, generator)
        times["generator training"] = time.perf_counter() - stage
    stage = time.perf_counter()
    results = evaluate(args, adapter, val, generator)
    times["evaluation"] = time.perf_counter() - stage
    times["total"] = time.perf_counter() - started

    report = [
        (f"ERASER movies, validation ({len(val.texts)} reviews, last {args.max_tokens} tokens of each); "
         f"classifier accuracy on the full windows {facts['val_accuracy_full_window']:.3f}."),
        "", markdown(results["all"]), "",
        f"First {results['loo_docs']} validation reviews, with word-level leave-one-out:", "",
        markdown(results["loo_subset"]), "",
        "Minutes: " + ", ".join(f"{k} {v / 60:.1f}" for k, v in times.items()),
    ]
    (args.output / "results.md").write_text("\n".join(report) + "\n")
    (args.output / "results.json").write_text(json.dumps(
        {"args": {k: str(v) for k, v in vars(args).items()}, "facts": facts, "times_s": times, **results}, indent=1))
    print("\n".join(report))


if __name__ == "__main__":
    main()
