"""LIME: exact recovery on an additive model, the solver and kernel against scikit-learn, seeds,
batching and the recorded surrogate."""

from __future__ import annotations

import numpy as np
import pytest
from bow_model import bow_model
from conftest import needs_minilm
from tiny_models import random_texts

from hf_seqinterp import InvalidParameterError, ModelAdapter, explain, get_explainer
from hf_seqinterp.explainers._coalitions import lime_coalitions, lime_weights, weighted_ridge


@pytest.fixture(scope="module")
def bow():
    model, tokenizer = bow_model()
    return ModelAdapter(model, tokenizer)


@pytest.mark.parametrize("replacement", ["delete", "attention"])
def test_unregularised_lime_recovers_word_contributions(bow, replacement):
    texts = random_texts(5, seed=11, min_words=4) + ["unbelievably overlong, unwatchable film"]
    for e in explain(texts, bow, method="lime", target=1, alpha=0.0, n_samples=200, replacement=replacement):
        for word in e.to_words():
            expected = sum(bow.model.weight(e.input_ids[i], 1) for i in word.token_indices)
            assert word.score == pytest.approx(expected, abs=1e-6)
        specials = sum(bow.model.weight(i, 1) for i, s in zip(e.input_ids, e.special_tokens_mask) if s)
        assert e.extras["intercept"] == pytest.approx(bow.model.bias[1].item() + specials, abs=1e-6)
        assert e.extras["r2"] == pytest.approx(1.0, abs=1e-9)


def test_weighted_ridge_matches_scikit_learn():
    from sklearn.linear_model import Ridge

    rng = np.random.default_rng(0)
    x = (rng.random((80, 7)) < 0.6).astype(float)
    y = x @ rng.normal(size=7) + rng.normal(scale=0.3, size=80)
    w = rng.random(80) + 0.05
    for alpha in (0.0, 0.5, 3.0):
        coef, intercept, r2 = weighted_ridge(x, y, w, alpha)
        ref = Ridge(alpha=alpha, fit_intercept=True, solver="svd").fit(x, y, sample_weight=w)
        np.testing.assert_allclose(coef, ref.coef_, atol=1e-8)
        assert intercept == pytest.approx(ref.intercept_, abs=1e-8)
        assert r2 == pytest.approx(ref.score(x, y, sample_weight=w), abs=1e-8)


def test_lime_kernel_and_sampler_follow_the_text_setup():
    from sklearn.metrics.pairwise import cosine_distances

    z = lime_coalitions(9, 300, np.random.default_rng(3))
    assert z.shape == (299, 9)
    removed = (~z).sum(1)
    assert removed.min() == 1 and removed.max() == 9  # 1..M features removed
    distance = cosine_distances(z.astype(float), np.ones((1, 9))).ravel() * 100
    np.testing.assert_allclose(lime_weights(z, 25.0), np.sqrt(np.exp(-(distance**2) / 25.0**2)), atol=1e-12)


@needs_minilm
def test_seed_batching_and_extras(minilm):
    from conftest import sst2_dev_sentences

    texts = sst2_dev_sentences(2, offset=30)
    first = explain(texts, minilm, method="lime", n_samples=40, seed=3)
    again = explain(texts, minilm, method="lime", n_samples=40, seed=3)
    other = explain(texts[0], minilm, method="lime", n_samples=40, seed=4)
    for a, b, text in zip(first, again, texts):
        np.testing.assert_array_equal(a.attributions, b.attributions)
        alone = explain(text, minilm, method="lime", n_samples=40, seed=3)
        np.testing.assert_allclose(a.attributions, alone.attributions, atol=1e-5)
        assert set(a.extras) >= {"intercept", "r2", "input_score", "n_evaluations"}
        assert a.params["replacement"] == "mask" and a.params["level"] == "word"
    assert not np.allclose(first[0].attributions, other.attributions)


def test_parameter_errors(bow):
    with pytest.raises(InvalidParameterError, match="alpha must be >= 0"):
        get_explainer("lime").create(bow, alpha=-1)
    with pytest.raises(InvalidParameterError, match="kernel_width must be > 0"):
        get_explainer("lime").create(bow, kernel_width=0)
    with pytest.raises(InvalidParameterError, match="n_samples must be an integer >= 2, got 1"):
        get_explainer("lime").create(bow, n_samples=1)
