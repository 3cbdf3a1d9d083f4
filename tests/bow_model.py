"""A bag-of-words classifier with a Hugging Face interface, for exact tests of perturbation methods
and metrics.

    logit_c(x) = b_c + Σ_t m_t · W[x_t, c]          (m = attention mask)

Its input embedding of token x_t is the row W[x_t] (embedding size = number of labels), so it takes
`input_ids` or `inputs_embeds` like any HF classifier, and zeroing embedding dimension c removes
every token's contribution to class c. Weights are multiples of 1/4, so every sum the tests compare
is exact in float32. A chosen fraction of the vocabulary gets all-zero rows: tokens the model never
uses.

    model, tokenizer = bow_model()
    adapter = ModelAdapter(model, tokenizer)
    model.weight(token_id, label)   # W[token_id, label] as a Python float
"""

from __future__ import annotations

import numpy as np
import torch
from tiny_models import wordpiece_tokenizer
from transformers import PretrainedConfig
from transformers.modeling_outputs import SequenceClassifierOutput


class BagOfWordsConfig(PretrainedConfig):
    model_type = "bag-of-words"

    def __init__(self, vocab_size: int = 260, num_labels: int = 2, pad_token_id: int = 0, **kwargs):
        super().__init__(num_labels=num_labels, **kwargs)
        self.vocab_size = vocab_size
        self.pad_token_id = pad_token_id


class BagOfWordsClassifier(torch.nn.Module):
    """logit_c = b_c + Σ over attended tokens of W[token, c]."""

    def __init__(self, config: BagOfWordsConfig, weights: np.ndarray, bias: np.ndarray):
        super().__init__()
        self.config = config
        self.embeddings = torch.nn.Embedding(config.vocab_size, config.num_labels)
        self.embeddings.weight.data = torch.as_tensor(weights, dtype=torch.float32)
        self.bias = torch.nn.Parameter(torch.as_tensor(bias, dtype=torch.float32))

    def get_input_embeddings(self) -> torch.nn.Module:
        return self.embeddings

    def forward(self, input_ids=None, attention_mask=None, inputs_embeds=None, position_ids=None, **kwargs):
        embeds = self.embeddings(input_ids) if inputs_embeds is None else inputs_embeds
        mask = torch.ones(embeds.shape[:2], dtype=embeds.dtype) if attention_mask is None else attention_mask
        return SequenceClassifierOutput(logits=(embeds * mask.unsqueeze(-1).to(embeds.dtype)).sum(1) + self.bias)

    def weight(self, token_id: int, label: int) -> float:
        return float(self.embeddings.weight.data[token_id, label])


def bow_model(seed: int = 0, unused_fraction: float = 0.3, num_labels: int = 2):
    """(model, tokenizer): random quarter-integer weights in [-2, 2], a fraction of tokens unused."""
    tokenizer = wordpiece_tokenizer()
    rng = np.random.default_rng(seed)
    vocab = len(tokenizer)
    weights = rng.integers(-8, 9, size=(vocab, num_labels)) / 4.0
    weights[rng.random(vocab) < unused_fraction] = 0.0
    bias = rng.integers(-4, 5, size=num_labels) / 4.0
    config = BagOfWordsConfig(
        vocab_size=vocab,
        num_labels=num_labels,
        pad_token_id=tokenizer.pad_token_id,
        id2label={i: f"class_{i}" for i in range(num_labels)},
        label2id={f"class_{i}": i for i in range(num_labels)},
    )
    return BagOfWordsClassifier(config, weights, bias).eval(), tokenizer
