"""Cost of the faithfulness metrics on minilm-sst2, against their pass-count floor and a per-sentence loop.

    python benchmarks/metrics.py                      # 64 SST-2 dev sentences, loop on 8 of them
    python benchmarks/metrics.py --sentences 200 --loop-sentences 16 --replacement mask

Work: AOPC comprehensiveness + sufficiency (ERASER bins), deletion + insertion curves (11 points)
and tau-LOO of gradient×input explanations, deletion of tokens, probability of the explained class.

Rows (seconds per sentence, and ratio to the floor):
- `hf_seqinterp`: `metrics.faithfulness`, all variants of all sentences in length-sorted batches
  under a token budget, identical edited inputs scored once.
- floor: the same distinct edited inputs as raw `model(input_ids, attention_mask)` forwards in the
  same length-sorted batches, tensors built before the clock starts.
- per-sentence loop: what ferret (`aopc_compr`, `aopc_suff`, `taucorr_loo`) and Captum-tutorial
  style code does: every variant of every metric decoded to text, re-tokenised and run alone
  (batch 1), nothing shared between metrics. ferret itself is not run: ferret-xai 0.4.2 pins
  transformers 4.x, datasets<3 and captum<0.8; Captum has no AOPC/deletion/LOO-correlation metric.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np
import torch
from common import MINILM, machine, setup_torch, sst2_dev_sentences

from hf_seqinterp import ModelAdapter, get_explainer
from hf_seqinterp.metrics import faithfulness
from hf_seqinterp.metrics.faithfulness import FaithfulnessSettings, plan_variants
from hf_seqinterp.utils import length_grouped_batches

METRICS = ["aopc_comprehensiveness", "aopc_sufficiency", "deletion_auc", "insertion_auc", "tau_loo"]


def edited_ids(plan, replacement_id: int | None) -> tuple[list[list[int]], list[int]]:
    """Token ids of every distinct edited input (deletion when replacement_id is None) and its target."""
    rows, targets = [], []
    for text, keeps, target in zip(plan.texts, plan.keeps, plan.targets):
        ids = np.asarray(text.input_ids)
        for keep in keeps:
            rows.append((ids[keep] if replacement_id is None else np.where(keep, ids, replacement_id)).tolist())
            targets.append(target)
    return rows, targets


def floor_seconds(adapter: ModelAdapter, rows: list[list[int]], max_tokens: int, repeats: int) -> float:
    """Raw forwards of `rows` in length-sorted batches (the same grouping score_variants uses)."""
    batches = []
    for group in length_grouped_batches([len(r) for r in rows], 512, max_tokens):
        width = max(len(rows[i]) for i in group)
        ids = torch.full((len(group), width), adapter.pad_id)
        mask = torch.zeros((len(group), width), dtype=torch.long)
        for j, i in enumerate(group):
            ids[j, : len(rows[i])] = torch.tensor(rows[i])
            mask[j, : len(rows[i])] = 1
        batches.append((ids, mask))
    times = []
    with torch.no_grad():
        for _ in range(repeats):
            start = time.perf_counter()
            for ids, mask in batches:
                adapter.model(input_ids=ids, attention_mask=mask)
            times.append(time.perf_counter() - start)
    return min(times)


def loop_seconds(adapter: ModelAdapter, explanations, config: FaithfulnessSettings, replacement_id) -> float:
    """One decode + re-tokenise + batch-1 forward per variant per metric (nothing shared)."""
    tokenizer, model = adapter.tokenizer, adapter.model
    start = time.perf_counter()
    with torch.no_grad():
        for expl in explanations:
            for metric in METRICS:
                plan = plan_variants([expl], [metric], config)
                ids = np.asarray(expl.input_ids)
                special = np.asarray(expl.special_tokens_mask)
                for index in plan.needs[0][1][metric].tolist() + plan.needs[0][1]["full"].tolist():
                    keep = plan.keeps[0][index]
                    edited = ids[keep & ~special] if replacement_id is None else np.where(keep, ids, replacement_id)[~special]
                    enc = tokenizer(tokenizer.decode(edited.tolist()), return_tensors="pt")
                    torch.softmax(model(**enc).logits, -1)[0, expl.target].item()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=str(MINILM))
    parser.add_argument("--sentences", type=int, default=64)
    parser.add_argument("--loop-sentences", type=int, default=8)
    parser.add_argument("--replacement", default="delete", choices=("delete", "mask", "pad"))
    parser.add_argument("--max-batch-tokens", type=int, default=8192)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=min(2, os.cpu_count() or 1))
    args = parser.parse_args()
    setup_torch(args.threads)

    adapter = ModelAdapter.from_pretrained(args.model)
    texts = sst2_dev_sentences(args.sentences)
    explanations = get_explainer("gradient_x_input").create(adapter).explain(texts, progress=False)
    config = FaithfulnessSettings(replacement=args.replacement, max_batch_tokens=args.max_batch_tokens)
    replacement_id = None if args.replacement == "delete" else adapter.token_id(args.replacement)
    n = len(texts)

    faithfulness(explanations[:4], adapter, METRICS, **config.to_dict())  # warm-up
    ours = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        result = faithfulness(explanations, adapter, METRICS, **config.to_dict())
        ours.append(time.perf_counter() - start)
    rows, _ = edited_ids(plan_variants(explanations, METRICS, config), replacement_id)
    floor = floor_seconds(adapter, rows, args.max_batch_tokens, args.repeats)
    subset = explanations[: args.loop_sentences]
    loop = loop_seconds(adapter, subset, config, replacement_id) / len(subset)
    undeduplicated = sum(
        len(needs[m]) + 1 for e in subset for _, needs in plan_variants([e], METRICS, config).needs for m in METRICS
    ) / len(subset)

    best = min(ours)
    print(f"minilm-sst2, {n} SST-2 dev sentences (mean {statistics.mean(len(e) for e in explanations):.1f} tokens), "
          f"replacement {args.replacement}; {machine()}")
    print(f"metrics: {', '.join(METRICS)}; {result.n_variants / n:.1f} distinct edited inputs per sentence "
          f"({undeduplicated:.1f} without sharing)\n")
    print("| implementation | s/sentence | × floor |")
    print("|---|---|---|")
    print(f"| floor: raw batched forwards of the distinct edited inputs | {floor / n:.4f} | 1.00 |")
    print(f"| `hf_seqinterp.metrics.faithfulness` (best of {args.repeats}) | {best / n:.4f} | {best / floor:.2f} |")
    print(f"| per-sentence loop, decode + re-tokenise, batch 1 ({len(subset)} sentences) | {loop:.4f} | "
          f"{loop / (floor / n):.2f} |")


if __name__ == "__main__":
    main()
