"""Shared helpers of the metrics tests: the bag-of-words classifier (whose outputs can be computed by
hand) as an adapter, and Explanations with hand-set attributions."""

from __future__ import annotations

import numpy as np
import torch
from bow_model import bow_model

from hf_seqinterp import Explanation, ModelAdapter


def bow_adapter(seed: int = 0) -> ModelAdapter:
    """The shared bag-of-words classifier (`tests/bow_model.py`), 3 labels, every token used."""
    return ModelAdapter(*bow_model(seed, unused_fraction=0.0, num_labels=3))


def bow_logits(adapter: ModelAdapter, ids) -> np.ndarray:
    """The bag-of-words logits of the token ids `ids`, by hand: b + Σ_t W[ids_t]."""
    model = adapter.model
    return model.embeddings.weight.detach().double().numpy()[np.asarray(ids)].sum(0) + model.bias.detach().double().numpy()


def softmax(logits: np.ndarray) -> np.ndarray:
    z = np.exp(logits - logits.max())
    return z / z.sum()


def make_explanation(adapter: ModelAdapter, text: str, attributions=None, target: int | None = None,
                     method: str = "manual") -> Explanation:
    """An Explanation of `text` with the given attributions (default: 0 at specials, then n, n-1, ..., 1)."""
    enc = adapter.encode([text])[0]
    with torch.no_grad():
        logits = adapter.logits(adapter.collate([enc]))[0].double()
    if attributions is None:
        n = len(enc) - sum(enc.special_tokens_mask)
        values = iter(range(n, 0, -1))
        attributions = [0.0 if s else float(next(values)) for s in enc.special_tokens_mask]
    chosen = int(logits.argmax()) if target is None else target
    return Explanation(
        text=text, tokens=enc.tokens, input_ids=enc.input_ids, offsets=enc.offsets, word_ids=enc.word_ids,
        special_tokens_mask=enc.special_tokens_mask, attributions=np.asarray(attributions, dtype=np.float32),
        target=chosen, target_label=adapter.labels[chosen], probabilities=torch.softmax(logits, -1).numpy(),
        method=method, labels=adapter.labels,
    )


def distinct_word_texts(n: int, seed: int = 0, min_words: int = 3, max_words: int = 10) -> list[str]:
    """Texts without repeated words: on an order-blind bag of words, removing either copy of a
    repeated word gives the same output in exact arithmetic but not in float, which would make
    tie-sensitive values (Kendall τ) differ from a hand computation by tie-breaking alone."""
    import random

    from tiny_models import WORDS

    rng = random.Random(seed)
    return [" ".join(rng.sample(WORDS, rng.randint(min_words, max_words))) for _ in range(n)]
