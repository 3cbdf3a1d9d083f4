"""Rationale generator: explaining and training speed vs. their pass-count floors, in one run.

    python benchmarks/rationale.py [--n 256] [--batch-size 32] [--threads 2] [--repeats 3]

Model: ../shared/models/minilm-sst2; data: the first N SST-2 dev sentences; an untrained generator
built in-process (`RationaleGenerator.for_predictor`, seeded; speed does not depend on its weights).
- `rationale` explainer. Floor: per length-sorted batch, 1 generator forward + 2 model forwards (the
  full text and the rationale alone), on prebuilt tensors (no tokenising, no masking, no results).
- one training epoch (HardKuma: the model's forward + backward to its input embeddings per step;
  REINFORCE: the model's forward only; both: the generator's forward + backward, plus one model
  forward per text for the targets). Floor: those raw passes over the same length-sorted batches.
No peer library trains or runs Lei-style rationale generators (Captum, inseq, ferret,
transformers-interpret have none), so there is no peer column.
"""

from __future__ import annotations

import argparse
from functools import partial

import torch
from common import load_minilm, machine, markdown_table, setup_torch, sst2_dev_sentences, timed

from hf_seqinterp import get_explainer
from hf_seqinterp.rationale import RationaleGenerator, RationaleTrainingArguments, train_rationale_generator
from hf_seqinterp.utils import length_grouped_batches


def prebuilt(adapter, generator, encodings, batch_size):
    groups = length_grouped_batches([len(e) for e in encodings], batch_size)
    return [(adapter.collate([encodings[i] for i in g]), generator.word_batch([encodings[i] for i in g])) for g in groups]


def explain_floor(model, generator, batches):
    with torch.no_grad():
        for batch, words in batches:
            generator(words.input_ids, words.lengths, words.word_index)
            for _ in range(2):
                model(input_ids=batch.input_ids, attention_mask=batch.attention_mask)


def training_floor(model, generator, batches, through_model: bool):
    embed = model.get_input_embeddings()
    with torch.no_grad():
        for batch, _ in batches:  # the targets: one forward per text
            model(input_ids=batch.input_ids, attention_mask=batch.attention_mask)
    for batch, words in batches:
        generator(words.input_ids, words.lengths, words.word_index).sum().backward()
        if through_model:
            embeds = embed(batch.input_ids).detach().requires_grad_(True)
            logits = model(inputs_embeds=embeds, attention_mask=batch.attention_mask).logits
            torch.autograd.grad(logits.sum(), embeds)
        else:
            with torch.no_grad():
                model(input_ids=batch.input_ids, attention_mask=batch.attention_mask)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    setup_torch(args.threads)
    adapter = load_minilm()
    texts = sst2_dev_sentences(args.n)
    encodings = adapter.encode(texts)
    rows = []
    for estimator in ("hardkuma", "reinforce"):
        torch.manual_seed(0)
        generator = RationaleGenerator.for_predictor(adapter, estimator=estimator, target_rate=0.3, sparsity=0.5)
        batches = prebuilt(adapter, generator, encodings, args.batch_size)
        generator.eval()
        explainer = get_explainer("rationale").create(adapter, generator=generator)
        floor = timed(partial(explain_floor, adapter.model, generator, batches), args.repeats)
        method = timed(partial(explainer.explain, texts, batch_size=args.batch_size, progress=False), args.repeats)
        rows.append([f"rationale explainer ({estimator})", "gen fwd + 2 fwd", floor / args.n, method / args.n, method / floor])

        settings = RationaleTrainingArguments(epochs=1, batch_size=args.batch_size, progress=False, seed=0)
        generator.train()
        floor = timed(partial(training_floor, adapter.model, generator, batches, estimator == "hardkuma"), args.repeats)
        method = timed(partial(train_rationale_generator, adapter, texts, generator=generator, args=settings), args.repeats)
        passes = "fwd + (gen fwd+bwd, fwd+bwd) per step" if estimator == "hardkuma" else "fwd + (gen fwd+bwd, fwd) per step"
        rows.append([f"training epoch ({estimator})", passes, floor / args.n, method / args.n, method / floor])
    print(f"{args.n} SST-2 dev sentences, batch {args.batch_size}, best of {args.repeats}; {machine()}\n")
    print(markdown_table(["work", "floor passes", "floor s/sent", "method s/sent", "ratio to floor"], rows))


if __name__ == "__main__":
    main()
