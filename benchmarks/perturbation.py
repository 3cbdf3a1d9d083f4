"""Speed of the perturbation explainers against their pass-count floor and against Captum.

    python benchmarks/perturbation.py                      # minilm-sst2, 256 SST-2 dev sentences
    python benchmarks/perturbation.py --n 64 --peer-sentences 8 --threads 1

Floor: the raw forward passes a method must make (token erasure: the text and its M one-token
deletions, M+1 rows; LIME and KernelSHAP: `--samples` rows per sentence), prebuilt as padded id
tensors and run through the model in the same length-sorted batches under the same token budget,
with no Python bookkeeping. LIME and KernelSHAP score fewer rows than that (repeated draws once,
all coalitions of short texts once), so they are also timed against the floor of the distinct
rows they do score, which isolates their own overhead. Ours and the floor are timed in alternation, chunk by chunk, so load
changes on a shared machine hit both alike. Captum's FeatureAblation / Lime / KernelShap run one
sentence at a time as in its tutorials: with its default perturbations_per_eval=1, and with
`--peer-batch` perturbations per forward.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import torch
from common import load_minilm, machine, markdown_table, setup_torch, sst2_dev_sentences

from hf_seqinterp import ModelAdapter, get_explainer
from hf_seqinterp.masking import feature_groups, keep_masks
from hf_seqinterp.utils import length_grouped_batches

METHODS = ("erasure", "lime", "kernel_shap")
TARGETS = {"erasure": 1.2, "lime": 1.3, "kernel_shap": 1.3}  # the targets for ours / floor


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=256, help="SST-2 dev sentences (the first N)")
    parser.add_argument("--samples", type=int, default=500, help="LIME / KernelSHAP samples per sentence")
    parser.add_argument("--peer-sentences", type=int, default=16, help="sentences for the Captum comparison")
    parser.add_argument("--peer-batch", type=int, default=50, help="Captum perturbations_per_eval, tuned run")
    parser.add_argument("--max-batch-tokens", type=int, default=8192)
    parser.add_argument("--chunk", type=int, default=8, help="sentences per alternation of ours and floors")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    parser.add_argument("--skip-peers", action="store_true", help="leave out the Captum comparison")
    return parser.parse_args()


# ----------------------------------------------------------------------------- the floor
def erasure_rows(adapter: ModelAdapter, texts: list[str]) -> list[list[int]]:
    """The M + 1 inputs token erasure (delete) must score per text."""
    rows = []
    for enc in adapter.encode(texts):
        groups = feature_groups(enc, "token")
        z = np.vstack([np.ones((1, len(groups)), bool), ~np.eye(len(groups), dtype=bool)])
        ids = np.asarray(enc.input_ids)
        rows += [ids[keep].tolist() for keep in keep_masks(enc, z, groups)]
    return rows


def sample_rows(adapter: ModelAdapter, texts: list[str], samples: int) -> list[list[int]]:
    """`samples` full-length inputs per text (what a masking sampler with a [MASK] replacement scores)."""
    return [enc.input_ids for enc in adapter.encode(texts) for _ in range(samples)]


def own_rows(adapter: ModelAdapter, explainer, texts: list[str]) -> list[list[int]]:
    """The distinct edited inputs a sampling explainer actually scores (its own coalitions, the
    unedited text included; [MASK] replacement): the floor of its overhead alone."""
    rows = []
    for enc in adapter.encode(texts):
        groups = explainer._features(enc)
        plan = np.vstack([np.ones((1, len(groups)), bool), explainer._coalitions(len(groups))])
        ids = np.asarray(enc.input_ids)
        rows += [np.where(keep, ids, adapter.token_id("mask")).tolist()
                 for keep in keep_masks(enc, np.unique(plan, axis=0), groups)]
    return rows


def prebuilt_batches(adapter: ModelAdapter, rows: list[list[int]], max_tokens: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    batches = []
    for group in length_grouped_batches([len(r) for r in rows], 512, max_tokens):
        width = max(len(rows[i]) for i in group)
        ids = torch.full((len(group), width), adapter.token_id("pad"), dtype=torch.long)
        mask = torch.zeros_like(ids)
        for j, i in enumerate(group):
            ids[j, : len(rows[i])] = torch.tensor(rows[i])
            mask[j, : len(rows[i])] = 1
        batches.append((ids, mask))
    return batches


def run_floor(adapter: ModelAdapter, batches) -> float:
    start = time.perf_counter()
    with torch.no_grad():
        for ids, mask in batches:
            adapter.model(input_ids=ids, attention_mask=mask)
    return time.perf_counter() - start


def run_ours(explainer, texts: list[str]) -> tuple[float, int]:
    start = time.perf_counter()
    explanations = explainer.explain(texts, progress=False)
    return time.perf_counter() - start, sum(e.extras["n_evaluations"] for e in explanations)


# ----------------------------------------------------------------------------- Captum
def captum_seconds(adapter: ModelAdapter, texts: list[str], method: str, samples: int, per_eval: int) -> float:
    from captum.attr import FeatureAblation, KernelShap, Lime

    model = adapter.model

    def forward(ids):
        return model(input_ids=ids, attention_mask=torch.ones_like(ids)).logits

    mask_id = adapter.token_id("mask")
    start = time.perf_counter()
    for enc in adapter.encode(texts):
        ids = torch.tensor([enc.input_ids])
        special = torch.tensor([enc.special_tokens_mask])
        baseline = torch.where(special, ids, mask_id)
        with torch.no_grad():
            target = int(forward(ids).argmax(-1))
            if method == "erasure":
                FeatureAblation(forward).attribute(
                    ids, baselines=baseline, target=target, feature_mask=torch.arange(ids.shape[1])[None],
                    perturbations_per_eval=per_eval,
                )
            else:
                words = [w if w is not None else -1 - i for i, w in enumerate(enc.word_ids)]
                _, feature_ids = np.unique(words, return_inverse=True)
                explainer = Lime(forward) if method == "lime" else KernelShap(forward)
                explainer.attribute(
                    ids, baselines=baseline, target=target, feature_mask=torch.tensor(feature_ids)[None],
                    n_samples=samples, perturbations_per_eval=per_eval,
                )
    return time.perf_counter() - start


def build(adapter: ModelAdapter, method: str, samples: int, max_batch_tokens: int):
    """(label, explainer, texts -> the floor's rows) for one method."""
    if method == "erasure":
        explainer = get_explainer("erasure").create(adapter, max_batch_tokens=max_batch_tokens)
        return "erasure (token, delete)", explainer, lambda t: erasure_rows(adapter, t)
    explainer = get_explainer(method).create(adapter, n_samples=samples, replacement="mask", max_batch_tokens=max_batch_tokens)
    return f"{method} ({samples} samples, word, mask)", explainer, lambda t: sample_rows(adapter, t, samples)


def main() -> None:
    args = parse_args()
    setup_torch(args.threads)
    adapter = load_minilm()
    texts = sst2_dev_sentences(args.n)
    methods = {m: build(adapter, m, args.samples, args.max_batch_tokens) for m in args.methods}
    run_floor(adapter, prebuilt_batches(adapter, erasure_rows(adapter, texts[:8]), 4096))  # warm-up

    print(f"minilm-sst2, {len(texts)} SST-2 dev sentences, {machine()}, "
          f"load average at start {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs\n")
    rows = []
    for method, (name, explainer, floor_rows) in methods.items():
        sampled = method != "erasure"  # erasure's floor rows are already exactly the rows it scores
        ours = floor = own_floor = 0.0
        evaluations = floor_count = 0
        for start in range(0, len(texts), args.chunk):
            chunk = texts[start : start + args.chunk]
            batches = prebuilt_batches(adapter, floor_rows(chunk), args.max_batch_tokens)
            own = prebuilt_batches(adapter, own_rows(adapter, explainer, chunk), args.max_batch_tokens) if sampled else []
            seconds, n = run_ours(explainer, chunk)
            ours += seconds
            evaluations += n
            floor += run_floor(adapter, batches)
            own_floor += run_floor(adapter, own)
            floor_count += sum(len(ids) for ids, _ in batches)
        n = len(texts)
        own_ratio = f"{ours / own_floor:.2f}" if sampled else "(same rows)"
        rows.append([name, f"{evaluations / n:.1f} / {floor_count / n:.1f}", ours / n, floor / n, ours / floor,
                     f"≤ {TARGETS[method]}", own_ratio])
        print(f"done: {name}", flush=True)
    print(markdown_table(["method", "forwards per sentence (ours / floor)", "ours (s/sentence)",
                          "floor (s/sentence)", "ours / floor", "target", "ours / floor of its own rows"], rows),
          flush=True)
    if args.skip_peers:
        return

    peers = texts[: args.peer_sentences]
    rows = []
    for method, (name, explainer, _) in methods.items():
        ours, _ = run_ours(explainer, peers)
        default = captum_seconds(adapter, peers, method, args.samples, 1)
        tuned = captum_seconds(adapter, peers, method, args.samples, args.peer_batch)
        n = len(peers)
        rows.append([name, ours / n, default / n, tuned / n, default / ours, tuned / ours])
    print(f"\nCaptum, one sentence at a time, on the first {len(peers)} sentences (seconds per sentence):\n")
    print(markdown_table(["method", "ours", "Captum (perturbations_per_eval=1)",
                          f"Captum (perturbations_per_eval={args.peer_batch})", "Captum (1) / ours",
                          f"Captum ({args.peer_batch}) / ours"], rows))


if __name__ == "__main__":
    main()
