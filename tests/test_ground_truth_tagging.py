"""Ground truth for token-classification explanations: a small BERT tagger trained in-process on
"tag the word after `not` as B-NEG" (recipes/synthetic_tasks.py). The tagged word is random, so only
the marker before it says that it is tagged: the most-attributed token of the tagged word's row must
be the marker (the strict criterion; not the word itself, and never the decoy `very`). Slow: the
training takes 20-80 s on 2 shared CPU cores."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch
from conftest import REPO

import hf_seqinterp as hsi

sys.path.insert(0, str(REPO / "recipes"))
from synthetic_tasks import DECOY, tagging_accuracy, tagging_examples, train_tagger


@pytest.fixture(scope="module")
def tagger():
    threads = torch.get_num_threads()
    try:
        model, tokenizer = train_tagger()
    finally:
        torch.set_num_threads(threads)
    assert tagging_accuracy(model, tokenizer, tagging_examples(500, seed=1)) >= 0.99
    return hsi.ModelAdapter(model, tokenizer)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("method", "params"), [("erasure", {"replacement": "mask"}), ("integrated_gradients", {"n_steps": 32})]
)
def test_the_marker_gets_the_most_weight(tagger, method, params):
    examples = tagging_examples(60, seed=2)
    expls = hsi.explain_with(
        tagger, [e.text for e in examples], method, target=[e.tagged for e in examples], progress=False, **params
    )
    hits, decoys = [], []
    for expl, example in zip(expls, examples):
        (row,) = expl.rows
        assert row["label"] == "B-NEG" and row["probability"] > 0.5  # the model tags the word
        top = int(np.argmax(expl.attributions[0]))
        hits.append(top == example.marker + 1)  # +1: [CLS]
        decoys.append(expl.tokens[top] == DECOY)
    assert np.mean(hits) >= 0.9 and not any(decoys), (method, np.mean(hits))
