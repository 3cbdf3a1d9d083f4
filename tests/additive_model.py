"""A tiny GPT-2 whose logits are additive in its input vectors, so contextual decomposition has an
exact answer: the score of a token set is the sum of the tokens' true contributions."""

from __future__ import annotations

import copy

import numpy as np
import torch
from tiny_models import tiny_model

from hf_seqinterp import ModelAdapter


def additive_gpt2() -> ModelAdapter:
    """GPT-2 made linear in its input vectors x_t = wte[token_t] + wpe[t]: LayerNorms with ε = 1e20
    (so they only centre; weights 1e10 undo the 1/sqrt(ε) scale), attention with zero queries and keys
    (uniform over the causal prefix), MLPs off, a classifier with a bias. Its logits are
    Σ_t c_t + b with c_t linear in x_t."""
    model, tokenizer = tiny_model("gpt2")
    model = copy.deepcopy(model).double()
    d = model.config.n_embd
    torch.manual_seed(0)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.LayerNorm):
                module.eps = 1e20
                module.weight.fill_(1e10)
                module.bias.zero_()
        for block in model.transformer.h:
            block.attn.c_attn.weight[:, : 2 * d] = 0.0
            block.attn.c_attn.bias.zero_()
            block.attn.c_proj.bias.zero_()
            block.mlp.c_fc.weight.zero_()
            block.mlp.c_fc.bias.zero_()
            block.mlp.c_proj.bias.zero_()
        model.score = torch.nn.Linear(d, model.config.num_labels, bias=True).double()
        model.score.bias.copy_(torch.tensor([0.5, -1.0, 2.0]))
    return ModelAdapter(model, tokenizer)


def true_contributions(adapter: ModelAdapter, text: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(c_t (tokens × labels), logits, constant) by brute force: c_t = logits with only x_t left
    (every other position's input vector cancelled) − logits with every input vector cancelled."""
    batch = adapter.collate(adapter.encode([text]))
    words = adapter.model.transformer.wte(batch.input_ids)[0]
    positions = adapter.model.transformer.wpe(batch.position_ids)[0]
    n = words.shape[0]
    with torch.no_grad():
        only = -positions.expand(n + 1, n, -1).clone()  # row n: nothing left
        only[torch.arange(n), torch.arange(n)] = words
        logits = adapter.logits(batch.take([0] * (n + 1)), only)
        full = adapter.logits(batch)
    return (logits[:n] - logits[n]).numpy(), full[0].numpy(), logits[n].numpy()
