"""Probes with control tasks: a property planted as a direction of the residual stream is read
perfectly and selectively; the same property on random features is only memorised per word type,
as well as the control task is, so its selectivity is about 0."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch
from tiny_models import WORDS, random_texts, tiny_model
from transformers import AutoModelForSequenceClassification

import hf_seqinterp as hsi
from hf_seqinterp.errors import InvalidInputError, InvalidParameterError
from hf_seqinterp.network import is_punctuation, probe
from hf_seqinterp.network.probes import _control_labels

pytestmark = pytest.mark.usefixtures("one_thread")

TEXTS = random_texts(300, seed=9)
PLANTED_WORDS = set(random.Random(0).sample(WORDS, len(WORDS) // 2))


@pytest.fixture(scope="module")
def models():
    """(random BERT, the same BERT with membership in PLANTED_WORDS written into residual dimension 0)."""
    base, tokenizer = tiny_model("bert")
    ids = [tokenizer.convert_tokens_to_ids(w) for w in PLANTED_WORDS]
    planted = AutoModelForSequenceClassification.from_config(base.config).eval()
    planted.load_state_dict(base.state_dict())
    with torch.no_grad():
        emb = planted.bert.embeddings
        emb.word_embeddings.weight[:, 0] = -3.0
        emb.word_embeddings.weight[ids, 0] = 3.0
        emb.position_embeddings.weight[:, 0] = 0.0
        emb.token_type_embeddings.weight[:, 0] = 0.0
        for layer in planted.bert.encoder.layer:  # no sublayer writes dimension 0
            for linear in (layer.attention.output.dense, layer.output.dense):
                linear.weight[0] = 0.0
                linear.bias[0] = 0.0
    return hsi.ModelAdapter(base, tokenizer), hsi.ModelAdapter(planted, tokenizer), set(ids)


def test_a_planted_token_property_is_selective_and_random_features_are_not(models):
    random_features, planted, ids = models
    assert all(len(planted.encode([w])[0]) == 3 for w in WORDS)  # one token per word: word type = token type

    def in_planted_set(enc, t):
        return None if enc.special_tokens_mask[t] else enc.input_ids[t] in ids

    texts = TEXTS[:200]
    good = probe(planted, texts, in_planted_set, level="token", progress=False)
    bad = probe(random_features, texts, in_planted_set, level="token", progress=False)
    assert good["layer"] == [0, 1]
    assert min(good["accuracy"]) >= 0.99
    assert min(good["selectivity"]) > 0.15
    assert max(abs(s) for s in bad["selectivity"]) < 0.07  # memorising types, as the control task does
    for row in (*good, *bad):
        assert row["selectivity"] == pytest.approx(row["accuracy"] - row["control_accuracy"])
        assert row["train_examples"] + row["test_examples"] == sum(
            len(e) - 2 for e in planted.encode(texts)
        )


def test_a_planted_sentence_property_is_selective(models):
    _, planted, ids = models
    labels = [sum(i in ids for i in e.input_ids) * 2 > len(e) - 2 for e in planted.encode(TEXTS)]
    result = probe(planted, TEXTS, labels, level="sentence", layers=-1, progress=False)
    assert result["layer"] == [1]
    assert result["accuracy"][0] >= 0.97
    assert result["selectivity"][0] > 0.2
    assert result["control_accuracy"][0] <= result["majority"][0] + 0.1  # random labels per text: chance
    assert result["test_examples"] == [75]  # a quarter of the texts held out


def test_the_same_seed_gives_the_same_result_and_punctuation_is_found(models):
    adapter = models[0]
    one = probe(adapter, TEXTS[:120], is_punctuation, level="token", layers=0, seed=3, progress=False)
    two = probe(adapter, TEXTS[:120], is_punctuation, level="token", layers=0, seed=3, progress=False)
    assert one.to_list() == two.to_list()
    assert one["accuracy"][0] >= one["majority"][0]


def test_control_labels_are_one_per_type_from_the_label_distribution():
    types = ["a", "b", "a", "c", "b", "a"] * 50
    y = np.array([0, 1, 0, 0, 1, 0] * 50)
    control = _control_labels(types, y, np.random.default_rng(0))
    for t in set(types):
        assert len({c for c, u in zip(control, types) if u == t}) == 1
    assert set(control) <= set(y)


def test_bad_requests_name_the_fix(models):
    adapter = models[0]
    with pytest.raises(InvalidInputError, match="one label per text"):
        probe(adapter, TEXTS[:10], [0, 1], progress=False)
    with pytest.raises(InvalidInputError, match="takes a function"):
        probe(adapter, TEXTS[:10], [0, 1] * 5, level="token", progress=False)
    with pytest.raises(InvalidInputError, match="two or more labels"):
        probe(adapter, TEXTS[:10], [1] * 10, progress=False)
    with pytest.raises(InvalidParameterError, match="test_size"):
        probe(adapter, TEXTS[:10], [0, 1] * 5, test_size=1.0, progress=False)
