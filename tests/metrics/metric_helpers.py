"""Shared helpers of the metrics tests: a bag-of-words classifier whose outputs can be computed by
hand, and Explanations with hand-set attributions."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import torch
from tiny_models import wordpiece_tokenizer
from transformers import BertConfig

from hf_seqinterp import Explanation, ModelAdapter


class BagOfWords(torch.nn.Module):
    """logits(x) = Σ_t W[x_t] over the attended tokens (special tokens included): removing a token
    subtracts its row of W, so every faithfulness value has a closed form."""

    def __init__(self, vocab_size: int, num_labels: int = 3, seed: int = 0):
        super().__init__()
        self.config = BertConfig(
            vocab_size=vocab_size, num_labels=num_labels, max_position_embeddings=64,
            id2label={i: f"class{i}" for i in range(num_labels)},
        )
        self.weight = torch.nn.Embedding(vocab_size, num_labels)
        with torch.no_grad():
            self.weight.weight.copy_(torch.randn(vocab_size, num_labels, generator=torch.Generator().manual_seed(seed)))

    def get_input_embeddings(self) -> torch.nn.Module:
        return self.weight

    def forward(self, input_ids=None, attention_mask=None, inputs_embeds=None, position_ids=None, **kwargs):
        embeds = self.weight(input_ids) if inputs_embeds is None else inputs_embeds
        return SimpleNamespace(logits=(embeds * attention_mask.unsqueeze(-1).to(embeds.dtype)).sum(1))

    def table(self) -> np.ndarray:
        return self.weight.weight.detach().double().numpy()


def bow_adapter(seed: int = 0) -> ModelAdapter:
    tokenizer = wordpiece_tokenizer()
    return ModelAdapter(BagOfWords(len(tokenizer), seed=seed).eval(), tokenizer)


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
