"""Rationales for movie reviews: train rationale generators on ERASER Movie Reviews (both estimators,
several seeds) and compare their rationales with integrated gradients, word-level erasure and
random words at the same selection rate, against the human evidence.

1. Inputs. Each review is cut to its first `--max-tokens` tokens (default 510, with [CLS] and [SEP]
   the predictor's 512; `--window tail` keeps the end instead). Human evidence spans are clipped to
   the window; reviews left without any are skipped by the plausibility metrics. Training uses a
   fixed random subset of `--limit-train` training reviews (default 300 of 1,600, both classes).
2. Predictor. The bundled default model (6-layer MiniLM-style BERT distilled for SST-2), fine-tuned
   for `--finetune-epochs` (default 2) on the training windows with half of each batch's reviews
   getting a random share of their words [MASK]ed, so that a mostly-[MASK] rationale is in its
   input distribution (Madsen et al. 2023, "faithfulness measurable models"); `--finetune-epochs 0`
   explains the SST-2 model as it is.
3. Generators. `RationaleGenerator.for_predictor` (a BiGRU of 64 units per direction over 128
   features) selecting `--unit`s (default: phrases, since the movie evidence is phrases). What the
   generator reads (`--features`): in the post-hoc setting the output of the frozen predictor's
   last block, projected to 128 features (`predictor`, the default; read once for the training
   reviews and shared by every warm start); in the joint setting, where
   the predictor changes, the predictor's token embeddings reduced to 128 principal components
   (`embeddings`). Each generator is warm-started from the top words of `--warm-start` (default:
   integrated gradients with `--ig-steps`, computed once on the training reviews; gradient × input
   is one backward per review) for `--warm-start-epochs`, then trained with each of `--estimators`
   for every seed in `--seeds` for `--generator-epochs` at `--generator-lr`, holding the selection
   rate at `--target-rate` (default 0.1 of the words; the human evidence covers about 6% of the
   windows).
   `--setting post-hoc` (default) explains the frozen fine-tuned predictor: the target is its own
   prediction. `--setting joint` trains a fresh copy of the predictor with each generator on the
   gold labels from the rationale alone (Lei et al. 2016); its rows then report the task accuracy
   of that jointly trained model from the rationale alone.
4. Evaluation on the validation windows (all 200 unless `--limit-val`; with `--heldout-reviews N`
   also on N training reviews outside the training subset): the prediction from the
   rationale alone (fidelity to the full-text prediction; accuracy against the gold label),
   selection rate, token F1 / IOU-F1 / AUPRC against the human evidence, and comprehensiveness and
   sufficiency (probabilities, unselected words replaced as `--replacements` say), for each
   generator and, review by review at the generator's selected word count k, the top-k words of
   integrated gradients (`--ig-steps`) and random words; word-level erasure ([MASK] one word at a
   time: one forward per word, about 40 s per review on 2 cores) runs on the first
   `--erasure-docs` reviews, where a second table compares all methods. Tables give the mean ±
   standard deviation over the seeds.

Everything is written under `--output` (default outputs/eraser, ignored by git): the fine-tuned
classifier, the cached attributions, one folder per generator (with its training history),
results.md and results.json. `--reuse` skips the stages whose outputs exist. Run from the
repository root (figures and CPU time in docs/methods/rationales.md):

    HF_HUB_OFFLINE=1 python recipes/eraser_rationales.py
    HF_HUB_OFFLINE=1 python recipes/eraser_rationales.py --setting joint --output outputs/eraser-joint --reuse
"""

from __future__ import annotations

import argparse
import json
import math
import pickle
import random
import sys
import time
from collections.abc import Collection, Sequence
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
    per_text,
    run_method,
    selected_words,
    table,
    top_word_masks,
)
from tqdm.auto import tqdm
from train_default_model import collate, length_sorted_batches
from transformers import (
    AutoModelForSequenceClassification,
    AutoTokenizer,
    get_linear_schedule_with_warmup,
    set_seed,
)

from hf_seqinterp import Explanation, ModelAdapter, get_explainer, metrics
from hf_seqinterp.metrics.plausibility import gold_rationale
from hf_seqinterp.rationale import (
    RationaleGenerator,
    RationaleTrainingArguments,
    distil_word_scores,
    predicted_labels,
    predictor_states,
    train_rationale_generator,
)

REPO_ROOT = Path(__file__).resolve().parent.parent
#: at 1e-3, HardKuma's selection rate on the validation reviews fell to 0.049 (seed 0; 0.074 at 5e-4)
GENERATOR_LR = {"reinforce": 1e-3, "hardkuma": 5e-4}
Span = tuple[int, int]


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--eraser-dir", type=Path, default=REPO_ROOT / "../shared/data/eraser_movies")
    parser.add_argument("--base", type=Path, default=REPO_ROOT / "hf_seqinterp/default_model",
                        help="the predictor (a BERT-like *ForSequenceClassification folder; default: the bundled "
                        "SST-2 model), explained as is or fine-tuned on the reviews with --finetune-epochs")
    parser.add_argument("--output", type=Path, default=REPO_ROOT / "outputs/eraser")
    parser.add_argument("--setting", choices=("post-hoc", "joint"), default="post-hoc",
                        help="post-hoc: explain the frozen predictor; joint: train the predictor on the rationales "
                        "with the gold labels (Lei et al.)")
    parser.add_argument("--window", choices=("head", "tail"), default="head", help="which end of each review to keep")
    parser.add_argument("--max-tokens", type=int, default=510, help="tokens per review window (510 + [CLS], [SEP])")
    parser.add_argument("--finetune-epochs", type=int, default=2, help="0: use --base as is")
    parser.add_argument("--finetune-lr", type=float, default=5e-5)
    parser.add_argument("--mask-augment", type=float, default=0.5,
                        help="fraction of fine-tuning examples with a random share of their words [MASK]ed")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--estimators", nargs="+", choices=("hardkuma", "reinforce"), default=["hardkuma", "reinforce"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--unit", choices=("word", "phrase", "sentence"), default="phrase", help="what one gate selects")
    parser.add_argument("--target-rate", type=float, default=0.1, help="share of words to select")
    parser.add_argument("--coherence", type=float, default=0.0, help="λ2 per transition per unit boundary")
    parser.add_argument("--warm-start", choices=("gradient_x_input", "integrated_gradients", "none"),
                        default="integrated_gradients", help="distil this method's top words before training (none: off)")
    parser.add_argument("--warm-start-epochs", type=int, default=6, help="epochs of fitting the warm start's top words")
    parser.add_argument("--features", choices=("embeddings", "predictor"),
                        help="what the generator reads: the output of the predictor's last block (post-hoc only; the "
                        "post-hoc default) or token embeddings (the joint default)")
    parser.add_argument("--samples-per-text", type=int, default=2,
                        help="draws of the gates per text and step (REINFORCE: leave-one-out baseline; HardKuma: "
                        "the relaxed gradient averaged over them)")
    parser.add_argument("--generator-epochs", type=int, default=1)
    parser.add_argument("--generator-lr", type=float,
                        help=f"the generators' learning rate (default: {GENERATOR_LR} by estimator)")
    parser.add_argument("--ig-steps", type=int, default=8, help="integrated gradients' Gauss-Legendre steps")
    parser.add_argument("--erasure-docs", type=int, default=20,
                        help="validation reviews for word-level erasure (one forward per word: ~40 s per review)")
    parser.add_argument("--replacements", nargs="+", default=["mask"], choices=("mask", "delete"),
                        help="how comprehensiveness and sufficiency remove words")
    parser.add_argument("--limit-train", type=int, default=300, help="a seeded random subset of N training reviews "
                        "(0: all 1,600)")
    parser.add_argument("--limit-val", type=int, help="evaluate a seeded random subset of N validation reviews")
    parser.add_argument("--heldout-reviews", type=int, default=0,
                        help="also evaluate on a seeded random N of the training reviews outside --limit-train "
                        "(used neither for training nor for choosing the settings)")
    parser.add_argument("--reuse", action="store_true", help="skip stages whose outputs exist in --output")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    args = parser.parse_args(argv)
    if args.features is None:
        args.features = "predictor" if args.setting == "post-hoc" else "embeddings"
    return args


# ----------------------------------------------------------------------------- data
@dataclass
class Split:
    texts: list[str]
    labels: list[int]
    evidence: list[list[Span]]
    ids: list[str]


def window(text: str, tokenizer, max_tokens: int, end: str) -> tuple[int, int]:
    """[start, end) characters of the most whole words at the `end` ("head" or "tail") of `text`
    whose tokens (special tokens not counted) fit in `max_tokens`."""
    spans = metrics.word_char_spans(text)

    def piece(n: int) -> tuple[int, int]:  # the first / last n words
        return (0, spans[n - 1][1]) if end == "head" else (spans[-n][0], len(text))

    lo, hi = 1, len(spans)  # the most words that fit
    while lo < hi:
        mid = (lo + hi + 1) // 2
        start, stop = piece(mid)
        if len(tokenizer(text[start:stop], add_special_tokens=False, verbose=False)["input_ids"]) <= max_tokens:
            lo = mid
        else:
            hi = mid - 1
    return piece(lo)


def shift_spans(spans: Sequence[Span], start: int, end: int) -> list[Span]:
    """Spans of the full text as spans of text[start:end], clipped; those wholly outside dropped."""
    return [(max(s, start) - start, min(e, end) - start) for s, e in spans if e > start and s < end]


def read_split(
    eraser_dir: Path, split: str, tokenizer, args: argparse.Namespace, limit: int | None, exclude: Collection[str] = (),
) -> Split:
    """The reviews of `split` but those whose ids are in `exclude`, cut to their first (`--window
    head`) or last `max_tokens` tokens; `limit`: a seeded random subset (the files list all negative
    reviews first)."""
    data = metrics.load_eraser(eraser_dir / f"{split}.jsonl", eraser_dir / "docs")
    records = [json.loads(line) for line in (eraser_dir / f"{split}.jsonl").read_text().splitlines() if line.strip()]
    label_of = {r["annotation_id"]: int(r["classification"] == "POS") for r in records}
    rows = [i for i, review in enumerate(data.ids) if review not in exclude]
    if limit is not None and limit < len(rows):
        rows = sorted(random.Random(0).sample(rows, limit))
    texts, evidence = [], []
    for i in rows:
        text = data.texts[i]
        start, end = window(text, tokenizer, args.max_tokens, args.window)
        texts.append(text[start:end])
        evidence.append(shift_spans(data.rationales[i], start, end))
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
    rng = random.Random(0)
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


# ----------------------------------------------------------------------------- attributions
def explanations(name: str, adapter: ModelAdapter, texts: Sequence[str], path: Path, reuse: bool, **params):
    """An explainer's explanations of `texts`, cached in `path` (pickle) and the seconds they took."""
    if reuse and path.exists():
        return pickle.loads(path.read_bytes())
    start = time.perf_counter()
    found = get_explainer(name).create(adapter, **params).explain(list(texts), progress=True)
    result = (found, time.perf_counter() - start)
    path.write_bytes(pickle.dumps(result))
    return result


def word_scores(found: Sequence[Explanation]) -> list[np.ndarray]:
    return [np.asarray([w.score for w in e.to_words()]) for e in found]


# ----------------------------------------------------------------------------- generator
def train_generator(
    args: argparse.Namespace, adapter: ModelAdapter, train: Split, warm: list[np.ndarray] | None,
    estimator: str, seed: int, folder: Path, states: list[torch.Tensor] | None,
) -> dict:
    """One generator (and, in the joint setting, the predictor trained with it), saved in `folder`;
    `states`: the frozen predictor's states of the training reviews, shared by the warm starts."""
    torch.manual_seed(seed)
    generator = RationaleGenerator.for_predictor(
        adapter, estimator=estimator, target_rate=args.target_rate, coherence=args.coherence, unit=args.unit,
        hidden_size=64, embedding_size=128, features=args.features,
    )
    started = time.perf_counter()
    if warm is not None:
        distil_word_scores(generator, adapter, train.texts, warm, epochs=args.warm_start_epochs,
                           batch_size=args.batch_size, seed=seed, states=states)
    joint = args.setting == "joint"
    settings = RationaleTrainingArguments(
        output_dir=str(folder), epochs=args.generator_epochs, batch_size=args.batch_size,
        learning_rate=args.generator_lr or GENERATOR_LR[estimator], samples_per_text=args.samples_per_text,
        train_predictor=joint, seed=seed, logging_steps=5, save_steps=10**9,
    )
    result = train_rationale_generator(adapter, train.texts, train.labels if joint else None,
                                       generator=generator, args=settings)
    (folder / "history.json").write_text(json.dumps(result.history, indent=1))
    return {"steps": result.global_step, "seconds": time.perf_counter() - started, "last": result.history[-1]}


# ----------------------------------------------------------------------------- evaluation
def human_rationales(reference: MethodRationales, evidence: Sequence[Sequence[Span]]) -> MethodRationales:
    masks = [gold_rationale(e, spans)[0] for e, spans in zip(reference.explanations, evidence)]
    return MethodRationales("human evidence", reference.explanations, masks, 0.0, [m.astype(float) for m in masks])


def head(method: MethodRationales, n: int) -> MethodRationales:
    return MethodRationales(method.name, method.explanations[:n], method.masks[:n],
                            method.seconds * n / len(method.masks), method.scores[:n])


def at_counts(name: str, found: tuple[list[Explanation], float], counts: Sequence[int]) -> MethodRationales:
    """The top `counts[i]` words of each cached explanation."""
    explained, seconds = found
    return MethodRationales(name, explained, top_word_masks(explained, counts), seconds,
                            [e.attributions.astype(np.float64) for e in explained])


def evaluate(args: argparse.Namespace, adapter: ModelAdapter, val: Split, generator: Path, seed: int,
             baselines: dict[str, tuple[list[Explanation], float]]) -> dict:
    """Every method's rationales at the generator's word counts, on all validation reviews and on the
    first `--erasure-docs` (where word-level erasure was computed)."""
    produced = generator_rationales(adapter, val.texts, str(generator))
    counts = [selected_words(e, m) for e, m in zip(produced.explanations, produced.masks)]
    methods = [produced]
    if "integrated_gradients" in baselines:
        methods.append(at_counts("integrated gradients, top-k words", baselines["integrated_gradients"], counts))
    methods.append(run_method("random", adapter, val.texts, counts, seed=seed))
    methods[-1].name = "random words"
    values = per_text(adapter, methods, val.labels, args.replacements)
    results = {"all": table(methods, values, val.evidence)}
    if "erasure" in baselines:  # the same per-text values on the first n reviews, plus erasure's
        n = len(baselines["erasure"][0])
        erased = at_counts("erasure, top-k words", baselines["erasure"], counts[:n])
        subset = [head(m, n) for m in methods] + [erased]
        subset_values = [{k: v[:n] for k, v in found.items()} for found in values]
        subset_values += per_text(adapter, [erased], val.labels[:n], args.replacements)
        results["erasure_subset"] = table(subset, subset_values, val.evidence[:n])
    return results


def summarise(runs: Sequence[dict], table: str) -> list[dict[str, str]]:
    """Mean ± standard deviation over the runs (seeds) of each method's metrics in `table`."""
    rows = []
    for i, first in enumerate(runs[0][table]):
        row: dict[str, str] = {"method": str(first["method"])}
        for key, value in first.items():
            if isinstance(value, float) and key != "explain s/text":
                values = np.asarray([run[table][i][key] for run in runs], dtype=np.float64)
                row[key] = f"{np.nanmean(values):.3f} ± {np.nanstd(values):.3f}"
        rows.append(row)
    return rows


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    if not (args.eraser_dir / "val.jsonl").exists():
        sys.exit(f"ERASER movies not found at {args.eraser_dir} (see --eraser-dir)")
    torch.set_num_threads(args.threads)
    set_seed(0)
    args.output.mkdir(parents=True, exist_ok=True)
    times: dict[str, float] = {}
    started = time.perf_counter()
    tokenizer = AutoTokenizer.from_pretrained(args.base)
    train = read_split(args.eraser_dir, "train", tokenizer, args, args.limit_train or None)
    val = read_split(args.eraser_dir, "val", tokenizer, args, args.limit_val)
    heldout = (read_split(args.eraser_dir, "train", tokenizer, args, args.heldout_reviews, exclude=set(train.ids))
               if args.heldout_reviews else None)
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

    stage = time.perf_counter()
    warm = None
    if args.warm_start != "none":
        params = {"n_steps": args.ig_steps} if args.warm_start == "integrated_gradients" else {}
        warm = word_scores(explanations(args.warm_start, adapter, train.texts, args.output / f"warm_start_{args.warm_start}.pkl",
                                        args.reuse, **params)[0])
    baselines = {}
    if args.setting == "post-hoc":  # a jointly trained predictor is a different model in every run
        baselines["integrated_gradients"] = explanations(
            "integrated_gradients", adapter, val.texts, args.output / "integrated_gradients.pkl", args.reuse,
            n_steps=args.ig_steps)
        if args.erasure_docs:
            baselines["erasure"] = explanations(
                "erasure", adapter, val.texts[: args.erasure_docs], args.output / "erasure.pkl", args.reuse,
                level="word", replacement="mask")
    heldout_baselines = {}
    if heldout and args.setting == "post-hoc":
        heldout_baselines["integrated_gradients"] = explanations(
            "integrated_gradients", adapter, heldout.texts,
            args.output / f"heldout{len(heldout.texts)}_integrated_gradients.pkl", args.reuse, n_steps=args.ig_steps)
    times["attributions"] = time.perf_counter() - stage
    reference = MethodRationales("", baselines["integrated_gradients"][0], []) if baselines else None
    human = compare(adapter, [human_rationales(reference, val.evidence)], val.labels, val.evidence,
                    args.replacements) if reference else []

    states = None  # a frozen predictor's states of the training reviews, read once for every warm start
    runs: dict[str, list[dict]] = {}
    heldout_runs: dict[str, list[dict]] = {}
    for estimator in args.estimators:
        for seed in args.seeds:
            folder = args.output / f"{args.setting}-{estimator}-seed{seed}"
            run_adapter = adapter if args.setting == "post-hoc" else ModelAdapter.from_pretrained(str(classifier))
            stage = time.perf_counter()
            if not (args.reuse and (folder / "config.json").exists()):
                if states is None and warm is not None and args.features == "predictor":
                    states = predictor_states(adapter, adapter.encode(train.texts), args.batch_size)[0]
                facts[folder.name] = train_generator(args, run_adapter, train, warm, estimator, seed, folder, states)
            times[f"training {folder.name}"] = time.perf_counter() - stage
            stage = time.perf_counter()
            runs.setdefault(estimator, []).append(evaluate(args, run_adapter, val, folder, seed, baselines))
            times[f"evaluation {folder.name}"] = time.perf_counter() - stage
            if heldout:
                stage = time.perf_counter()
                heldout_runs.setdefault(estimator, []).append(evaluate(args, run_adapter, heldout, folder, seed,
                                                                       heldout_baselines))
                times[f"held-out evaluation {folder.name}"] = time.perf_counter() - stage
    times["total"] = time.perf_counter() - started

    report = [
        (f"ERASER movies, validation ({len(val.texts)} reviews, {args.window} {args.max_tokens} tokens of each), "
        f"{args.setting}; classifier accuracy on the full windows {facts['val_accuracy_full_window']:.3f}. "
        f"Generators: unit {args.unit}, target rate {args.target_rate}, features {args.features}, "
        f"warm start {args.warm_start} ({args.warm_start_epochs} epochs), {args.generator_epochs} epoch(s) at lr {args.generator_lr or GENERATOR_LR}, "
        f"{len(train.texts)} training reviews; mean ± standard deviation over seeds {args.seeds}."),
    ]
    if human:
        report += ["", "The human evidence itself:", "", markdown(human)]
    for estimator, found in runs.items():
        per_seed = ", ".join(f"seed {seed}: {run['all'][0]['selection rate']:.3f}" for seed, run in zip(args.seeds, found))
        report += ["", f"**{estimator}**, all validation reviews (generator's selection rate by seed: {per_seed}):", "",
                   markdown(summarise(found, "all"))]
        if "erasure_subset" in found[0]:
            report += ["", (f"**{estimator}**, the first {len(baselines['erasure'][0])} reviews, with word-level "
                       "erasure ([MASK]):"), "", markdown(summarise(found, "erasure_subset"))]
    for estimator, found in heldout_runs.items():
        report += ["", (f"**{estimator}**, {len(heldout.texts)} held-out training reviews (used neither for training "
                   "nor for choosing the settings):"), "", markdown(summarise(found, "all"))]
    report += ["", "Minutes: " + ", ".join(f"{k} {v / 60:.1f}" for k, v in times.items())]
    (args.output / "results.md").write_text("\n".join(report) + "\n")
    (args.output / "results.json").write_text(json.dumps(
        {"args": {k: str(v) for k, v in vars(args).items()}, "facts": facts, "times_s": times, "human": human,
         "runs": runs, "heldout_runs": heldout_runs}, indent=1))
    print("\n".join(report))


if __name__ == "__main__":
    main()
