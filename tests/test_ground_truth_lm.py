"""Ground truth for generation explanations: a small GPT-2 trained in-process on "copy the letter
after the marker" (recipes/synthetic_tasks.py). Only the marker and the letter after it decide the
answer, so the most-attributed prompt token of the answer's row must be one of those two."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch
from conftest import REPO

import hf_seqinterp as hsi

sys.path.insert(0, str(REPO / "recipes"))
from synthetic_tasks import copy_accuracy, copy_examples, train_copy_lm  # noqa: E402


@pytest.fixture(scope="module")
def copy_lm():
    threads = torch.get_num_threads()
    try:
        model, tokenizer = train_copy_lm(steps=600)
    finally:
        torch.set_num_threads(threads)
    assert copy_accuracy(model, tokenizer, copy_examples(500, seed=1)) >= 0.98
    return hsi.ModelAdapter(model, tokenizer)


@pytest.mark.parametrize(
    ("method", "params"),
    [("erasure", {}), ("integrated_gradients", {"n_steps": 32}), ("occlusion", {"window": 1})],
)
def test_the_rule_tokens_get_the_most_weight(copy_lm, method, params):
    examples = copy_examples(60, seed=2)
    expls = hsi.explain_with(
        copy_lm, [e.prompt for e in examples], method, target=[e.answer for e in examples], progress=False, **params
    )
    hits = []
    for expl, example in zip(expls, examples):
        row = expl.attributions[0, : expl.rows[0]["visible"]]
        hits.append(int(np.argmax(row)) in (example.position - 1, example.position))  # the marker, the letter
    assert np.mean(hits) >= 0.9, (method, np.mean(hits))
