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
import time

import torch
from common import load_minilm, machine, markdown_table, setup_torch, sst2_dev_sentences


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
    parser.add_argument("--n", type=int, default=256, help="SST-2 dev sentences")
    parser.add_argument("--flow-n", type=int, default=32, help="sentences for attention_flow (slow)")
    parser.add_argument("--flow-lengths", type=int, nargs="*", default=[32, 64, 128, 256])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    setup_torch(args.threads)

    from hf_seqinterp import get_explainer

    adapter = load_minilm()
    texts = sst2_dev_sentences(args.n)
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
        rows.append((method, n, size, "fwd+bwd" if backward else "fwd", floor_s, method_s, method_s / floor_s))
    tutorial_s, fwd_floor = (
        t / args.n
        for t in best_of(
            args.repeats,
            functools.partial(tutorial_rollout, eager, adapter.tokenizer, texts),
            functools.partial(floor, adapter, texts, 64, backward=False),
        )
    )
    recipe = "rollout, per-sentence tutorial recipe (output_attentions=True)"
    rows.append((recipe, args.n, 1, "fwd", fwd_floor, tutorial_s, tutorial_s / fwd_floor))

    print(f"minilm-sst2, SST-2 dev, {machine()}, best of {args.repeats}\n")
    header = ("method", "sentences", "batch", "floor passes", "floor s/sent", "method s/sent", "ratio to floor")
    print(markdown_table(header, rows))

    print("\nattention_flow, one text of L tokens (minilm-sst2, 6 layers)\n")
    ids = adapter.tokenizer(" ".join(sst2_dev_sentences(400)), verbose=False)["input_ids"]
    flow = get_explainer("attention_flow").create(adapter, max_tokens=max(args.flow_lengths, default=1))
    flow_rows = []
    for length in args.flow_lengths:
        text = adapter.tokenizer.decode(ids[1 : length - 1])
        (seconds,) = best_of(1, functools.partial(flow.explain, text, progress=False))
        flow_rows.append((len(adapter.encode([text])[0]), seconds))
    print(markdown_table(("L", "seconds"), flow_rows))


if __name__ == "__main__":
    main()
