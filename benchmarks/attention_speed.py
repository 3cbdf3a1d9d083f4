"""Speed of the attention explainers on minilm-sst2 and SST-2 dev sentences, as a ratio to their pass floor.

Floors (the raw passes each method must make, length-sorted batches of the explainer's batch size,
timed in the same run): attention / attention_rollout / attention_flow need one forward pass;
gradient_rollout needs one forward + one backward w.r.t. the input embeddings. The floor uses the
model as loaded (SDPA attention, the transformers default); the explainers switch to eager
attention for the call, which is part of what they cost. No peer library is installed that has
attention rollout (Captum has none), so the comparison row is the per-sentence recipe of
tutorials: an eager copy of the model, `output_attentions=True`, then the layer products.

A second table gives attention_flow's time for one text of L tokens (SST-2 dev sentences joined
and cut to L tokens), the measurement behind its default `max_tokens=128`.

    python benchmarks/attention_speed.py [--n 256] [--flow-n 32] [--flow-lengths 32 64 128 256]
                                         [--repeats 3] [--threads 2]

Prints markdown tables (seconds per sentence: best of `--repeats`).
"""

from __future__ import annotations

import argparse
import copy
import functools
import os
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("HF_SEQINTERP_SHARED", REPO.parent / "shared"))


def sst2_dev(n: int) -> list[str]:
    lines = (SHARED / "data" / "sst2" / "dev.tsv").read_text(encoding="utf-8").splitlines()[1:]
    return [line.rsplit("\t", 1)[0] for line in lines if line.strip()][:n]


def best_of(repeats: int, *fns) -> list[float]:
    """Best time of each function over `repeats` rounds, the functions interleaved within a round
    (so a change of load on the shared machine hits all of them alike)."""
    times = [[] for _ in fns]
    for _ in range(repeats):
        for fn, record in zip(fns, times):
            start = time.perf_counter()
            fn()
            record.append(time.perf_counter() - start)
    return [min(t) for t in times]


def floor(adapter, texts: list[str], batch_size: int, backward: bool) -> None:
    """The raw passes: length-sorted batches, forward (+ backward to inputs_embeds)."""
    from hf_seqinterp.utils import length_grouped_batches

    encodings = adapter.encode(texts)
    for group in length_grouped_batches([len(e) for e in encodings], batch_size):
        batch = adapter.collate([encodings[i] for i in group])
        if not backward:
            with torch.no_grad():
                adapter.logits(batch)
            continue
        embeds = adapter.embed(batch.input_ids).detach().requires_grad_(True)
        logits = adapter.logits(batch, embeds)
        torch.autograd.grad(logits.max(-1).values.sum(), embeds)


def naive_rollout(attentions: tuple[torch.Tensor, ...]) -> torch.Tensor:
    """The textbook computation from `output_attentions=True` (first text, mean fusion): row 0 of
    Â_N ··· Â_1 with Â = (W + I) / rowsum(W + I)."""
    eye = torch.eye(attentions[0].shape[-1])
    rollout = eye
    for a in attentions:
        aug = a[0].mean(0) + eye
        rollout = (aug / aug.sum(-1, keepdim=True)) @ rollout
    return rollout[0]


def tutorial_rollout(model, tokenizer, texts: list[str]) -> None:
    """One sentence at a time: output_attentions=True on an eager model, then multiply."""
    for text in texts:
        with torch.no_grad():
            naive_rollout(model(**tokenizer(text, return_tensors="pt"), output_attentions=True).attentions)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=str(SHARED / "models" / "minilm-sst2"))
    parser.add_argument("--n", type=int, default=256, help="SST-2 dev sentences")
    parser.add_argument("--flow-n", type=int, default=32, help="sentences for attention_flow (slow)")
    parser.add_argument("--flow-lengths", type=int, nargs="*", default=[32, 64, 128, 256])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    from hf_seqinterp import ModelAdapter, get_explainer

    adapter = ModelAdapter.from_pretrained(args.model)
    texts = sst2_dev(args.n)
    eager = copy.deepcopy(adapter.model)
    eager.set_attn_implementation("eager")
    rows = []
    for method, n, backward in [
        ("attention", args.n, False),
        ("attention_rollout", args.n, False),
        ("gradient_rollout", args.n, True),
        ("attention_flow", args.flow_n, False),
    ]:
        explainer = get_explainer(method).create(adapter)
        size = explainer.default_batch_size
        subset = texts[:n]
        explainer.explain(subset[:8], progress=False)  # warm-up
        method_s, floor_s = (
            t / n
            for t in best_of(
                args.repeats,
                functools.partial(explainer.explain, subset, progress=False),
                functools.partial(floor, adapter, subset, size, backward),
            )
        )
        passes = "fwd+bwd" if backward else "fwd"
        rows.append((method, n, size, passes, floor_s, method_s))
    tutorial_s, fwd_floor = (
        t / args.n
        for t in best_of(
            args.repeats,
            lambda: tutorial_rollout(eager, adapter.tokenizer, texts),
            lambda: floor(adapter, texts, 64, backward=False),
        )
    )

    print(f"minilm-sst2, SST-2 dev, torch threads={args.threads}, best of {args.repeats}\n")
    print("| method | sentences | batch | floor passes | floor s/sent | method s/sent | ratio to floor |")
    print("|---|---|---|---|---|---|---|")
    for method, n, size, passes, floor_s, method_s in rows:
        print(f"| {method} | {n} | {size} | {passes} | {floor_s:.4f} | {method_s:.4f} | {method_s / floor_s:.2f} |")
    print(
        f"| rollout, per-sentence tutorial recipe (output_attentions=True) | {args.n} | 1 | fwd | {fwd_floor:.4f} "
        f"| {tutorial_s:.4f} | {tutorial_s / fwd_floor:.2f} |"
    )

    print("\nattention_flow, one text of L tokens (minilm-sst2, 6 layers)\n")
    print("| L | seconds |")
    print("|---|---|")
    ids = adapter.tokenizer(" ".join(sst2_dev(400)), verbose=False)["input_ids"]
    flow = get_explainer("attention_flow").create(adapter, max_tokens=max(args.flow_lengths, default=1))
    for length in args.flow_lengths:
        text = adapter.tokenizer.decode(ids[1 : length - 1])
        tokens = len(adapter.encode([text])[0])
        (seconds,) = best_of(1, functools.partial(flow.explain, text, progress=False))
        print(f"| {tokens} | {seconds:.2f} |")


if __name__ == "__main__":
    main()
