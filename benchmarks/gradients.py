"""Gradient explainers: wall time vs. their pass-count floor and vs. peers, in one run.

    python benchmarks/gradients.py [--n 256] [--steps 50] [--threads 2]

Model: ../shared/models/minilm-sst2; data: the first N SST-2 dev sentences.
- floor: the raw batched passes the method needs, over the same length-sorted batches
  (gradient×input: 1 forward + 1 backward per batch; integrated gradients: n_steps forward+backward
  rows per sentence, packed as ours are), with nothing else (no tokenising, no targets, no results).
- Captum per sentence, as its BERT tutorial does: a prediction forward, then `InputXGradient` on
  the input embeddings / `LayerIntegratedGradients` on the word embeddings with the
  [CLS] [PAD]… [SEP] baseline and `return_convergence_delta=True`.
- transformers-interpret's `SequenceClassificationExplainer` (IG), when importable (it pins old
  dependencies; install it with `pip install --no-deps transformers-interpret`).
"""

from __future__ import annotations

import argparse

import torch
from common import load_minilm, machine, markdown_table, setup_torch, sst2_dev_sentences, timed

import hf_seqinterp as hsi
from hf_seqinterp.utils import chunks, length_grouped_batches


def gxi_floor(adapter, encodings, batch_size):
    model = adapter.model
    for group in length_grouped_batches([len(e) for e in encodings], batch_size):
        batch = adapter.collate([encodings[i] for i in group])
        embeds = adapter.embed(batch.input_ids).detach().requires_grad_(True)
        logits = model(inputs_embeds=embeds, attention_mask=batch.attention_mask).logits
        torch.autograd.grad(logits.max(-1).values.sum(), embeds)


def ig_floor(adapter, encodings, batch_size, n_steps, max_batch_tokens):
    model = adapter.model
    alphas = torch.linspace(0.01, 0.99, n_steps)
    for group in length_grouped_batches([len(e) for e in encodings], batch_size):
        batch = adapter.collate([encodings[i] for i in group])
        with torch.no_grad():
            embeds = adapter.embed(batch.input_ids)
        rows = len(group) * n_steps
        for part in chunks(rows, max(1, max_batch_tokens // batch.input_ids.shape[1])):
            flat = torch.arange(part.start, part.stop)
            text, step = flat // n_steps, flat % n_steps
            points = (alphas[step, None, None] * embeds[text]).requires_grad_(True)
            logits = model(inputs_embeds=points, attention_mask=batch.attention_mask[text]).logits
            torch.autograd.grad(logits[:, 0].sum(), points)


def captum_gxi(adapter, texts):
    from captum.attr import InputXGradient

    model, tok = adapter.model, adapter.tokenizer
    explainer = InputXGradient(lambda e: model(inputs_embeds=e).logits)
    for text in texts:
        ids = tok(text, return_tensors="pt")["input_ids"]
        with torch.no_grad():
            target = int(model(input_ids=ids).logits.argmax(-1))
        explainer.attribute(adapter.embed(ids).detach(), target=target).sum(-1)


def captum_ig(adapter, texts, n_steps):
    from captum.attr import LayerIntegratedGradients

    model, tok = adapter.model, adapter.tokenizer
    lig = LayerIntegratedGradients(lambda ids: model(input_ids=ids).logits, model.get_input_embeddings())
    for text in texts:
        ids = tok(text, return_tensors="pt")["input_ids"]
        ref = torch.full_like(ids, tok.pad_token_id)
        ref[0, 0], ref[0, -1] = ids[0, 0], ids[0, -1]
        with torch.no_grad():
            target = int(model(input_ids=ids).logits.argmax(-1))
        attr, _ = lig.attribute(ids, baselines=ref, target=target, n_steps=n_steps, return_convergence_delta=True)
        attr.sum(-1)


def transformers_interpret_ig(adapter, texts, n_steps):
    from transformers_interpret import SequenceClassificationExplainer

    explainer = SequenceClassificationExplainer(adapter.model, adapter.tokenizer)
    for text in texts:
        explainer(text, n_steps=n_steps)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=256, help="SST-2 dev sentences")
    parser.add_argument("--steps", type=int, default=50, help="integrated-gradients steps")
    parser.add_argument("--batch-size", type=int, default=32, help="texts per batch for gradient x input")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    setup_torch(args.threads)

    adapter = load_minilm()
    texts = sst2_dev_sentences(args.n)
    encodings = adapter.encode(texts)
    gxi = hsi.get_explainer("gradient_x_input").create(adapter, at="word_embeddings")  # what Captum InputXGradient computes
    ig = hsi.get_explainer("integrated_gradients").create(adapter, n_steps=args.steps)
    ig_batch = ig.default_batch_size
    hsi.explain(texts[:8], adapter, method="integrated_gradients", n_steps=4)  # warm-up

    with adapter.evaluating():
        rows = []
        ours = timed(lambda: gxi.explain(texts, batch_size=args.batch_size, progress=False))
        floor = timed(lambda: gxi_floor(adapter, encodings, args.batch_size))
        peer = timed(lambda: captum_gxi(adapter, texts))
        rows.append(["gradient_x_input", ours, floor, ours / floor, peer, peer / ours, "—"])

        ours = timed(lambda: ig.explain(texts, progress=False))
        floor = timed(lambda: ig_floor(adapter, encodings, ig_batch, args.steps, ig.max_batch_tokens))
        peer = timed(lambda: captum_ig(adapter, texts, args.steps))
        try:
            ti = timed(lambda: transformers_interpret_ig(adapter, texts, args.steps))
            ti_cell = f"{ti:.3g} s ({ti / ours:.2g}×)"
        except ImportError:
            ti_cell = "not installed"
        rows.append([f"integrated_gradients ({args.steps} steps)", ours, floor, ours / floor, peer, peer / ours, ti_cell])

    print(f"minilm-sst2, {len(texts)} SST-2 dev sentences, {machine()}\n")
    print(
        markdown_table(
            ["method", "ours (s)", "floor (s)", "ours / floor", "Captum per sentence (s)", "Captum / ours", "transformers-interpret"],
            rows,
        )
    )


if __name__ == "__main__":
    main()
