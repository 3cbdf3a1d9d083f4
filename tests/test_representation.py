"""Representation erasure: exact values on the bag-of-words model, agreement with a one-unit-at-a-time
reference across architectures, the acceptance run on minilm-sst2, and errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from bow_model import bow_model
from conftest import needs_minilm, needs_sst2, sst2_dev
from tiny_models import ARCHITECTURES, random_texts, tiny_model

from hf_seqinterp import (
    InvalidInputError,
    InvalidParameterError,
    ModelAdapter,
    UnsupportedModelError,
    representation_erasure,
)

TEXTS = random_texts(4, seed=9, min_words=3, max_words=10)


def reference_drops(adapter, module, texts, labels, units):
    """Mean log-likelihood drop per unit, one text and one unit per forward (no batching, no broadcast)."""
    drops = np.zeros((len(texts), len(units)))
    scale = np.zeros(len(texts))
    for i, (text, label) in enumerate(zip(texts, labels)):
        batch = adapter.collate(adapter.encode([text]))
        with torch.no_grad():
            full = torch.log_softmax(adapter.logits(batch), -1)[0, label].item()
        scale[i] = abs(full)
        for k, unit in enumerate(units):

            def zero_unit(_module, _args, output, unit=unit):
                hidden = output[0] if isinstance(output, tuple) else output
                hidden = hidden.clone()
                hidden[..., unit] = 0
                return (hidden, *output[1:]) if isinstance(output, tuple) else hidden

            handle = module.register_forward_hook(zero_unit)
            with torch.no_grad():
                erased = torch.log_softmax(adapter.logits(batch), -1)[0, label].item()
            handle.remove()
            drops[i, k] = full - erased
    return drops.mean(0), (drops / scale[:, None]).mean(0)


def by_dimension(table):
    return {row["dimension"]: row for row in table}


def test_bow_embedding_dimensions_exact():
    """On the bag-of-words model, erasing embedding dimension c sets logit c to its bias."""
    model, tokenizer = bow_model(num_labels=3)
    adapter = ModelAdapter(model, tokenizer)
    labels = [0, 2, 1, 2]
    table = representation_erasure(adapter, TEXTS, labels=labels, progress=False)
    by_ratio = representation_erasure(adapter, TEXTS, labels=labels, relative=True, progress=False)
    assert table["rank"] == [1, 2, 3] and sorted(table["dimension"]) == [0, 1, 2]
    bias = model.bias.detach().double().numpy()
    drops = np.zeros((len(TEXTS), 3))
    rel = np.zeros((len(TEXTS), 3))
    for i, (text, label) in enumerate(zip(TEXTS, labels)):
        ids = tokenizer(text)["input_ids"]
        logits = bias + model.embeddings.weight.data[ids].double().numpy().sum(0)
        full = torch.log_softmax(torch.tensor(logits), -1)[label].item()
        for c in range(3):
            erased = logits.copy()
            erased[c] = bias[c]
            drops[i, c] = full - torch.log_softmax(torch.tensor(erased), -1)[label].item()
            rel[i, c] = drops[i, c] / abs(full)
    rows = by_dimension(table)
    for c in range(3):
        assert rows[c]["log_likelihood_drop"] == pytest.approx(drops[:, c].mean(), abs=1e-6)
        assert rows[c]["relative_drop"] == pytest.approx(rel[:, c].mean(), abs=1e-6)
    assert table["log_likelihood_drop"] == sorted(table["log_likelihood_drop"], reverse=True)
    assert by_ratio["relative_drop"] == sorted(by_ratio["relative_drop"], reverse=True)
    def forms(t):
        return {r["dimension"]: (r["log_likelihood_drop"], r["relative_drop"]) for r in t}

    assert forms(by_ratio) == forms(table)  # the same numbers, ranked by the other form


@pytest.mark.parametrize("arch", [a for a in ARCHITECTURES if a != "albert"])
@pytest.mark.parametrize("level", ["embedding", "hidden"])
def test_matches_one_unit_at_a_time(arch, level):
    adapter = ModelAdapter(*tiny_model(arch))
    labels = [0, 1, 2, 1]
    units = [0, 5, 13]
    layer = 0 if level == "hidden" else None
    table = representation_erasure(adapter, TEXTS, level=level, layer=layer, labels=labels, units=units,
                                   max_batch_tokens=40, progress=False)
    module = adapter.layers[0] if level == "hidden" else adapter.embeddings
    drop, relative = reference_drops(adapter, module, TEXTS, labels, units)
    rows = by_dimension(table)
    np.testing.assert_allclose([rows[u]["log_likelihood_drop"] for u in units], drop, atol=1e-5)
    np.testing.assert_allclose([rows[u]["relative_drop"] for u in units], relative, rtol=1e-4, atol=1e-5)


def test_errors_name_the_problem():
    adapter = ModelAdapter(*tiny_model("albert"))
    with pytest.raises(UnsupportedModelError, match="shared across depth"):
        representation_erasure(adapter, TEXTS, level="hidden")
    bert = ModelAdapter(*tiny_model("bert"))
    with pytest.raises(InvalidParameterError, match="layer=7 is out of range .* 2 layers"):
        representation_erasure(bert, TEXTS, level="hidden", layer=7)
    with pytest.raises(InvalidParameterError, match="level='words'"):
        representation_erasure(bert, TEXTS, level="words")
    with pytest.raises(InvalidParameterError, match="Got 1 labels for 4 texts"):
        representation_erasure(bert, TEXTS, labels=[0])
    with pytest.raises(InvalidParameterError, match=r"units=\[40\] must be distinct indices in \[0, 32\)"):
        representation_erasure(bert, TEXTS, units=[40])


def test_dataset_input_uses_its_label_column():
    from datasets import Dataset

    adapter = ModelAdapter(*tiny_model("bert"))
    data = Dataset.from_dict({"sentence": TEXTS, "label": [2, 0, 1, 1]})
    from_dataset = representation_erasure(adapter, data, units=[1, 2], progress=False)
    from_lists = representation_erasure(adapter, TEXTS, labels=["positive", "negative", "neutral", "neutral"],
                                        units=[1, 2], progress=False)
    assert from_dataset.to_dict() == from_lists.to_dict()
    with pytest.raises(InvalidInputError, match="no column 'text'"):
        representation_erasure(adapter, data, text_column="text")


@pytest.mark.slow
@needs_minilm
@needs_sst2
def test_minilm_acceptance_200_sentences(minilm):
    """All 384 embedding dimensions and the 384 units of the last layer over 200 SST-2 dev sentences.
    Erasing the top-ranked unit, re-measured one text at a time, changes the mean log-likelihood of
    the gold label more than erasing a randomly chosen unit."""
    texts, labels = sst2_dev(200)
    rng = np.random.default_rng(0)
    for level, layer in (("embedding", None), ("hidden", 5)):
        table = representation_erasure(minilm, texts, labels=labels, level=level, layer=layer, progress=False)
        assert len(table) == 384 and sorted(table["dimension"]) == list(range(384))
        assert table["rank"] == list(range(1, 385))
        top, other = table[0]["dimension"], table[int(rng.integers(1, 384))]["dimension"]
        module = minilm.embeddings if level == "embedding" else minilm.layers[layer]
        drop, _ = reference_drops(minilm, module, texts, labels, [top, other])
        rows = by_dimension(table)
        np.testing.assert_allclose(drop, [rows[top]["log_likelihood_drop"], rows[other]["log_likelihood_drop"]], atol=1e-4)
        assert drop[0] > abs(drop[1])
