"""Per-head statistics: equal to a brute-force computation from `output_attentions` (one text at a
time, plain loops), exact on a planted uniform head, and plotted as the table says."""

from __future__ import annotations

import math
import string

import numpy as np
import pytest
import torch
from tiny_models import random_texts, tiny_causal_lm, tiny_model

import hf_seqinterp as hsi
from hf_seqinterp.errors import InvalidInputError
from hf_seqinterp.network import STATISTICS, head_statistics, plot_head_statistics

pytestmark = pytest.mark.usefixtures("one_thread")

TEXTS = random_texts(30, seed=3)
MODELS = {"bert": lambda: tiny_model("bert"), "llama": lambda: tiny_causal_lm("llama")}


def brute_force(adapter, texts):
    """{statistic: (layers, heads)} averaged over texts, from each text's full attention tensors."""
    tok = adapter.tokenizer
    cls = tok.cls_token_id if tok.cls_token_id is not None else tok.bos_token_id
    sep = tok.sep_token_id if tok.sep_token_id is not None else tok.eos_token_id
    total: dict[str, np.ndarray] = {}
    for text in texts:
        enc = tok(text, return_offsets_mapping=True, return_special_tokens_mask=True)
        ids, special, words = enc["input_ids"], enc["special_tokens_mask"], enc.word_ids()
        punct = [bool(p := text[s:e].strip()) and set(p) <= set(string.punctuation) for s, e in enc["offset_mapping"]]
        with torch.no_grad(), adapter.eager_attention():
            out = adapter.model(input_ids=torch.tensor([ids]), output_attentions=True)
        n = len(ids)
        for layer, weights in enumerate(out.attentions):
            for head, a in enumerate(weights[0].double().numpy()):
                values = {
                    "mean_distance": sum(a[q, k] * abs(q - k) for q in range(n) for k in range(n)) / n,
                    "to_self": sum(a[q, q] for q in range(n)) / n,
                    "to_previous": sum(a[q, q - 1] for q in range(1, n)) / n,
                    "to_next": sum(a[q, q + 1] for q in range(n - 1)) / n,
                    "to_cls": sum(a[q, k] for q in range(n) for k in range(n) if ids[k] == cls) / n
                    if cls is not None else math.nan,
                    "to_sep": sum(a[q, k] for q in range(n) for k in range(n) if ids[k] == sep) / n
                    if sep is not None else math.nan,
                    "to_special": sum(a[q, k] for q in range(n) for k in range(n) if special[k]) / n,
                    "to_punctuation": sum(a[q, k] for q in range(n) for k in range(n) if punct[k]) / n,
                    "to_same_word": sum(
                        a[q, k] for q in range(n) for k in range(n)
                        if k != q and words[q] is not None and words[q] == words[k] and not special[q]
                    ) / n,
                    "entropy": -sum(x * math.log(x) for x in a.flatten() if x > 0) / n,
                }
                for name, value in values.items():
                    total.setdefault(name, np.zeros((len(out.attentions), weights.shape[1])))[layer, head] += value
    return {name: value / len(texts) for name, value in total.items()}


@pytest.mark.parametrize("name", ["bert", "llama"])
def test_equals_a_brute_force_computation_from_output_attentions(name):
    adapter = hsi.ModelAdapter(*MODELS[name]())
    stats = head_statistics(adapter, TEXTS, batch_size=7, progress=False)
    expected = brute_force(adapter, TEXTS)
    assert stats["layer"] == [0, 0, 0, 0, 1, 1, 1, 1] and stats["head"] == [0, 1, 2, 3] * 2
    assert set(stats["texts"]) == {len(TEXTS)}
    for statistic in STATISTICS:
        got = np.array(stats[statistic]).reshape(2, 4)
        np.testing.assert_allclose(got, expected[statistic], atol=1e-6, err_msg=statistic)


def test_a_uniform_head_has_entropy_log_n():
    """Queries zeroed in block 0: every head attends uniformly to the n tokens, so its entropy is log n,
    its self mass 1/n and its mean distance Σ|q − k| / n² = (n² − 1) / (3n), averaged over texts."""
    model, tokenizer = tiny_model("bert")
    query = model.bert.encoder.layer[0].attention.self.query
    saved = query.weight.clone(), query.bias.clone()
    with torch.no_grad():
        query.weight.zero_()
        query.bias.zero_()
    try:
        stats = head_statistics(hsi.ModelAdapter(model, tokenizer), TEXTS, progress=False).filter(
            lambda r: r["layer"] == 0
        )
    finally:
        with torch.no_grad():
            query.weight.copy_(saved[0])
            query.bias.copy_(saved[1])
    lengths = np.array([len(tokenizer(t)["input_ids"]) for t in TEXTS], dtype=float)
    assert stats["entropy"] == pytest.approx([np.log(lengths).mean()] * 4, abs=1e-6)
    assert stats["to_self"] == pytest.approx([(1 / lengths).mean()] * 4, abs=1e-6)
    assert stats["mean_distance"] == pytest.approx([((lengths**2 - 1) / (3 * lengths)).mean()] * 4, abs=1e-5)


def test_the_plot_shows_the_table(tmp_path):
    stats = head_statistics(hsi.ModelAdapter(*tiny_model("bert")), TEXTS[:5], progress=False)
    fig = plot_head_statistics(stats, ["entropy", "to_previous"], path=tmp_path / "heads.png")
    images = [ax.images[0].get_array() for ax in fig.axes if ax.images]
    assert len(images) == 2
    np.testing.assert_allclose(images[0], np.array(stats["entropy"]).reshape(2, 4))
    assert (tmp_path / "heads.png").stat().st_size > 0
    with pytest.raises(InvalidInputError, match="choose one or more of"):
        plot_head_statistics(stats, ["entropi"])
