"""Erasure and occlusion: exact invariants on a bag-of-words model, agreement with Captum's
FeatureAblation / Occlusion on the real model, batching, spans and errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from bow_model import bow_model
from conftest import needs_minilm
from tiny_models import random_texts

from hf_seqinterp import InvalidParameterError, ModelAdapter, explain, get_explainer

TEXTS = random_texts(12, seed=3, min_words=3) + ["unbelievably overlong, unwatchable film"]


@pytest.fixture(scope="module")
def bow():
    model, tokenizer = bow_model()
    return ModelAdapter(model, tokenizer)


def weights_of(adapter, ids, label=1):
    return np.array([adapter.model.weight(i, label) for i in ids])


@pytest.mark.parametrize("replacement", ["delete", "attention", "zero_embedding"])
def test_bow_erasure_equals_token_weight(bow, replacement):
    """Removing token t from f = b + Σ w[x_t] lowers f by exactly w[x_t]; unused tokens score exactly 0."""
    explanations = explain(TEXTS, bow, method="erasure", target=1, replacement=replacement)
    n_unused = 0
    for e in explanations:
        expected = np.where(e.special_tokens_mask, 0.0, weights_of(bow, e.input_ids))
        np.testing.assert_array_equal(e.attributions, expected.astype(np.float32))
        n_unused += int(((expected == 0) & ~np.array(e.special_tokens_mask)).sum())
    assert n_unused >= 5  # the texts contain tokens the model never uses, and those got exactly 0


@pytest.mark.parametrize("replacement", ["mask", "pad", "unk"])
def test_bow_erasure_with_replacement_token(bow, replacement):
    """Replacing t by [MASK]/[PAD]/[UNK] changes f by w[x_t] − w[replacement]."""
    token = bow.token_id(replacement)
    for e in explain(TEXTS[:6], bow, method="erasure", target=1, replacement=replacement):
        expected = weights_of(bow, e.input_ids) - bow.model.weight(token, 1)
        expected[np.array(e.special_tokens_mask)] = 0.0
        np.testing.assert_array_equal(e.attributions, expected.astype(np.float32))
        assert e.params["replacement"] == replacement


def test_bow_word_erasure_and_relative_form(bow):
    """Word erasure removes all of a word's sub-tokens; the relative form divides by |log p|."""
    e = explain(TEXTS[-1], bow, method="erasure", target=1, level="word", relative=True, score="log_prob")
    logits = bow.model.bias.detach().double().numpy() + sum(
        bow.model.embeddings.weight.data[i].double().numpy() for i in e.input_ids
    )
    log_p = torch.log_softmax(torch.tensor(logits), -1)[1].item()
    assert any(len(w.token_indices) > 1 for w in e.to_words())  # a word split into sub-words
    for word in e.to_words():
        reduced = logits - sum(bow.model.embeddings.weight.data[e.input_ids[i]].double().numpy() for i in word.token_indices)
        expected = (log_p - torch.log_softmax(torch.tensor(reduced), -1)[1].item()) / abs(log_p)
        assert word.score == pytest.approx(expected, abs=1e-6)
    assert e.extras["input_score"] == pytest.approx(log_p, abs=1e-6)


def test_spans_map_characters_to_tokens(bow):
    text = "unbelievably overlong, unwatchable film"
    spans = [(0, 12), (13, 22), (35, 39)]  # "unbelievably", "overlong,", "film"
    e = explain(text, bow, method="erasure", target=1, spans=spans)
    weights = weights_of(bow, e.input_ids)
    covered = []
    for (start, end), score in zip(spans, e.extras["span_scores"]):
        tokens = [i for i, (s, t) in enumerate(e.offsets) if s < end and t > start and not e.special_tokens_mask[i]]
        covered += tokens
        assert score == pytest.approx(weights[tokens].sum(), abs=1e-6)
        assert e.attributions[tokens].sum() == pytest.approx(score, abs=1e-6)
    others = [i for i in range(len(e.tokens)) if i not in covered]
    assert np.all(e.attributions[others] == 0)


def test_spans_per_text_and_span_errors(bow):
    texts = ["good film", "a dull plot"]
    both = explain(texts, bow, method="erasure", target=1, spans=[[(0, 4)], [(2, 6), (7, 11)]])
    assert [len(e.extras["span_scores"]) for e in both] == [1, 2]
    with pytest.raises(InvalidParameterError, match="2 lists of spans for 3 texts"):
        explain(texts + ["x"], bow, method="erasure", spans=[[(0, 4)], [(0, 1)]])
    with pytest.raises(InvalidParameterError, match=r"span \(5, 50\) is not a non-empty range"):
        explain("good film", bow, method="erasure", spans=[(5, 50)])
    with pytest.raises(InvalidParameterError, match="covers no token"):
        explain("good  film", bow, method="erasure", spans=[(4, 6)])


def test_occlusion_window_one_is_erasure_and_windows_average(bow):
    texts = TEXTS[:5]
    erasure = explain(texts, bow, method="erasure", target=1, replacement="mask")
    occlusion = explain(texts, bow, method="occlusion", target=1, window=1, replacement="mask")
    for a, b in zip(erasure, occlusion):
        np.testing.assert_array_equal(a.attributions, b.attributions)
    # window 3 on an additive model: each window's drop is the sum of its features' drops
    e = explain(TEXTS[2], bow, method="occlusion", target=1, window=3, stride=2, replacement="attention")
    w = weights_of(bow, e.input_ids)[1:-1]
    m = len(w)
    starts = sorted(set(range(0, m - 2, 2)) | {m - 3})
    expected = np.zeros(m)
    for j in range(m):
        drops = [w[s : s + 3].sum() for s in starts if s <= j < s + 3]
        expected[j] = np.mean(drops)
    np.testing.assert_allclose(e.attributions[1:-1], expected, atol=1e-6)


def test_errors_name_the_problem(bow):
    with pytest.raises(InvalidParameterError, match="needs score='log_prob'"):
        get_explainer("erasure").create(bow, relative=True)
    with pytest.raises(InvalidParameterError, match="window must be an integer >= 1, got 0"):
        get_explainer("occlusion").create(bow, window=0)
    with pytest.raises(InvalidParameterError, match="level='paragraph'"):
        get_explainer("erasure").create(bow, level="paragraph")
    with pytest.raises(InvalidParameterError, match="replacement='blank' is not one of"):
        get_explainer("erasure").create(bow, replacement="blank")


# ----------------------------------------------------------------------------- real model
def _captum_forward(adapter, target):
    def forward(ids):
        with torch.no_grad():
            logits = adapter.model(input_ids=ids, attention_mask=torch.ones_like(ids)).logits
        return logits[:, target]

    return forward


@needs_minilm
def test_erasure_equals_captum_feature_ablation_and_occlusion(minilm):
    from captum.attr import FeatureAblation
    from captum.attr import Occlusion as CaptumOcclusion

    text = "a gripping, funny and thoroughly unpretentious film"
    ours = explain(text, minilm, method="erasure", replacement="mask")
    window1 = explain(text, minilm, method="occlusion", window=1, replacement="mask")
    window3 = explain(text, minilm, method="occlusion", window=3, replacement="mask")
    ids = torch.tensor([ours.input_ids])
    special = torch.tensor([ours.special_tokens_mask])
    baseline = torch.where(special, ids, minilm.token_id("mask"))  # specials are never replaced
    forward = _captum_forward(minilm, ours.target)
    ablation = FeatureAblation(forward).attribute(
        ids, baselines=baseline, feature_mask=torch.arange(ids.shape[1])[None], perturbations_per_eval=8
    )
    occluded = CaptumOcclusion(forward).attribute(ids, sliding_window_shapes=(1,), baselines=baseline)
    np.testing.assert_allclose(ours.attributions, ablation[0].numpy(), atol=1e-5)
    np.testing.assert_allclose(window1.attributions, occluded[0].numpy(), atol=1e-5)

    # windows of 3 over the non-special tokens: Captum on the inner ids, specials re-attached
    inner = ids[:, 1:-1]

    def inner_forward(x):
        full = torch.cat([ids[:, :1].expand(len(x), 1), x, ids[:, -1:].expand(len(x), 1)], dim=1)
        return forward(full)

    expected = CaptumOcclusion(inner_forward).attribute(
        inner, sliding_window_shapes=(3,), baselines=minilm.token_id("mask")
    )
    np.testing.assert_allclose(window3.attributions[1:-1], expected[0].numpy(), atol=1e-5)


@needs_minilm
@pytest.mark.parametrize("method,params", [("erasure", {}), ("occlusion", {"level": "word", "replacement": "attention"})])
def test_batch_equals_one_by_one(minilm, method, params):
    from conftest import sst2_dev_sentences

    texts = sst2_dev_sentences(6)
    together = explain(texts, minilm, method=method, **params)
    for text, e in zip(texts, together):
        alone = explain(text, minilm, method=method, **params)
        np.testing.assert_allclose(e.attributions, alone.attributions, atol=1e-5)
        assert e.target == alone.target
        np.testing.assert_allclose(e.probabilities, alone.probabilities, atol=1e-6)


@needs_minilm
def test_erasure_input_score_and_cost(minilm):
    """input_score is the model's own score on the text; cost is M + 1 distinct forwards."""
    e = explain("an utterly charming film", minilm, method="erasure", target="POSITIVE", score="log_prob")
    batch = minilm.collate(minilm.encode(["an utterly charming film"]))
    with torch.no_grad():
        log_p = torch.log_softmax(minilm.logits(batch), -1)[0, 1].item()
    assert e.extras["input_score"] == pytest.approx(log_p, abs=1e-5)
    assert e.extras["n_evaluations"] == sum(not s for s in e.special_tokens_mask) + 1
    restored = type(e).from_dict(e.to_dict())
    assert restored == e
