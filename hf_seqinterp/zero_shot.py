"""Explaining zero-shot classification: which words of a text made an NLI model pick a label.

transformers' zero-shot-classification pipeline turns each candidate label into a hypothesis
("This example is {label}."), scores every (text, hypothesis) pair with an NLI model and ranks the
labels by the entailment logit (softmax over the labels' entailment logits when one label is true;
entailment vs contradiction per label when several may be). `explain_zero_shot` scores the labels
the same way and explains the entailment logit of each pair, so attributions say which words of the
text (and of the hypothesis) support "the text is about this label".
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from .adapter import ModelAdapter
from .errors import InvalidInputError, UnsupportedModelError
from .explainers import DEFAULT_METHOD, get_explainer
from .explanation import Explanation


def entailment_id(adapter: ModelAdapter) -> int:
    """The class id of "entailment" in the model's labels (the first label starting with 'entail',
    as transformers' zero-shot pipeline looks it up)."""
    for i, label in enumerate(adapter.labels):
        if label.lower().startswith("entail"):
            return i
    raise UnsupportedModelError(
        f"{type(adapter.model).__name__} has no 'entailment' label (labels: {adapter.labels}); zero-shot "
        "classification needs an NLI model, e.g. facebook/bart-large-mnli."
    )


def explain_zero_shot(
    text: str,
    candidate_labels: Sequence[str],
    adapter: ModelAdapter,
    method: str = DEFAULT_METHOD,
    *,
    hypothesis_template: str = "This example is {}.",
    multi_label: bool = False,
    **params: Any,
) -> list[Explanation]:
    """One Explanation per candidate label, best label first, each explaining the entailment logit
    of (text, hypothesis_template.format(label)).

    The label scores are those of transformers' zero-shot pipeline, stored as
    `extras["zero_shot"] = {"label": ..., "score": ..., "hypothesis": ...}`: softmax of the labels'
    entailment logits, or with `multi_label=True` each label's softmax over (contradiction,
    entailment). `params` are the method's parameters.
    """
    if isinstance(candidate_labels, str):
        candidate_labels = [candidate_labels]
    labels = [str(label) for label in candidate_labels]
    if not labels or len(set(labels)) != len(labels):
        raise InvalidInputError(f"candidate_labels={labels!r}: give at least one label, each once.")
    if "{}" not in hypothesis_template:
        raise InvalidInputError(
            f"hypothesis_template={hypothesis_template!r} has no '{{}}' for the label, e.g. 'This example is {{}}.'"
        )
    entail = entailment_id(adapter)
    hypotheses = [hypothesis_template.format(label) for label in labels]
    explainer = get_explainer(method).create(adapter, **params)
    pairs = [(text, h) for h in hypotheses]
    explanations = explainer.explain(pairs, entail)
    with torch.no_grad(), adapter.evaluating():  # raw logits, as the pipeline compares them
        logits = adapter.logits(adapter.collate(adapter.encode(pairs))).double().cpu().numpy()
    if multi_label:
        contradiction = next(
            (i for i, label in enumerate(adapter.labels) if label.lower().startswith("contradict")), None
        )
        if contradiction is None:
            raise UnsupportedModelError(f"multi_label needs a 'contradiction' label; labels: {adapter.labels}.")
        pair = logits[:, [contradiction, entail]]
        scores = np.exp(pair[:, 1]) / np.exp(pair).sum(-1)
    else:
        entail_logits = logits[:, entail]
        scores = np.exp(entail_logits - entail_logits.max())
        scores /= scores.sum()
    for expl, label, hypothesis, score in zip(explanations, labels, hypotheses, scores):
        expl.extras["zero_shot"] = {"label": label, "score": float(score), "hypothesis": hypothesis}
    order = np.argsort(-scores, kind="stable")
    return [explanations[i] for i in order]
