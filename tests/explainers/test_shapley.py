"""KernelSHAP and Shapley value sampling: efficiency, exactness against brute-force Shapley values,
the additive game, seeds and batching."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from bow_model import bow_model
from conftest import needs_minilm
from tiny_models import random_texts

from hf_seqinterp import InvalidParameterError, ModelAdapter, explain, get_explainer
from hf_seqinterp.explainers._coalitions import constrained_least_squares, kernel_shap_coalitions
from hf_seqinterp.masking import feature_groups, keep_masks, score_variants

SHAPLEY = ("kernel_shap", "shapley_sampling")


@pytest.fixture(scope="module")
def bow():
    model, tokenizer = bow_model()
    return ModelAdapter(model, tokenizer)


def brute_force_shapley(adapter, text, level, replacement, target, score="logit"):
    """Exact Shapley values by enumerating all 2^M coalitions (independent of the explainers' code)."""
    enc = adapter.encode([text])[0]
    groups = feature_groups(enc, level)
    m = len(groups)
    coalitions = np.array(list(itertools.product([0, 1], repeat=m)), dtype=bool)
    values = score_variants(adapter, [enc], [keep_masks(enc, coalitions, groups)], [target],
                            replacement=replacement, score=score)[0]
    value = {tuple(c): v for c, v in zip(coalitions.astype(int).tolist(), values)}
    phi = np.zeros(m)
    for c, v in value.items():
        size = sum(c)
        for j in range(m):
            if c[j]:
                without = c[:j] + (0,) + c[j + 1 :]
                phi[j] += math.factorial(size - 1) * math.factorial(m - size) / math.factorial(m) * (v - value[without])
    return phi, groups


def word_scores(explanation):
    return np.array([w.score for w in explanation.to_words()])


@pytest.mark.parametrize("method", SHAPLEY)
@pytest.mark.parametrize("n_samples", [1, 3, 10])
def test_bow_additive_game_gives_the_weights(bow, method, n_samples):
    """On an additive model every Shapley estimate is the feature's own weight (unused tokens: 0),
    whatever the sample count, and the values add up to f(x) − f(baseline)."""
    budget = n_samples if method == "shapley_sampling" else 40 * n_samples  # KernelSHAP needs >= M samples
    for e in explain(random_texts(4, seed=5, min_words=4), bow, method=method, target=1, level="token",
                     replacement="delete", n_samples=budget):
        expected = np.array([0.0 if s else bow.model.weight(i, 1) for i, s in zip(e.input_ids, e.special_tokens_mask)])
        np.testing.assert_allclose(e.attributions, expected, atol=1e-6)
        gap = e.extras["input_score"] - e.extras["baseline_score"]
        assert e.attributions.sum(dtype=np.float64) == pytest.approx(gap, abs=1e-5)


@needs_minilm
@pytest.mark.parametrize("n_samples", [1, 3])
def test_shapley_sampling_efficiency_on_real_model(minilm, n_samples):
    from conftest import sst2_dev_sentences

    for e in explain(sst2_dev_sentences(2, offset=10), minilm, method="shapley_sampling", n_samples=n_samples,
                     replacement="mask", score="prob"):
        gap = e.extras["input_score"] - e.extras["baseline_score"]
        assert abs(e.attributions.sum(dtype=np.float64) - gap) <= 1e-6 * max(1.0, abs(gap))


@needs_minilm
def test_kernel_shap_efficiency_when_sampled(minilm):
    text = "the performances are uniformly excellent , but the script is a mess of clichés and dead ends"
    e = explain(text, minilm, method="kernel_shap", n_samples=60, replacement="mask")
    assert not e.extras["exact"]
    gap = e.extras["input_score"] - e.extras["baseline_score"]
    assert e.attributions.sum(dtype=np.float64) == pytest.approx(gap, abs=1e-4)


@needs_minilm
def test_exact_kernel_shap_equals_brute_force_shapley(minilm):
    """With every coalition enumerated, KernelSHAP is the exact Shapley value; permutation sampling
    converges to it."""
    text = "a gripping but overlong film"
    reference, groups = brute_force_shapley(minilm, text, "word", "mask", target=1)
    exact = explain(text, minilm, method="kernel_shap", target=1, replacement="mask", n_samples=2 ** len(groups))
    assert exact.extras["exact"]
    np.testing.assert_allclose(word_scores(exact), reference, atol=2e-5)
    sampled = explain(text, minilm, method="shapley_sampling", target=1, replacement="mask", n_samples=400)
    np.testing.assert_allclose(word_scores(sampled), reference, atol=0.1 * np.abs(reference).max())


def test_constrained_least_squares_matches_kkt_solution():
    """The eliminated solve equals the KKT system of the equality-constrained problem."""
    rng = np.random.default_rng(0)
    z = rng.random((40, 6)) < 0.5
    y, w = rng.normal(size=40), rng.random(40) + 0.1
    phi = constrained_least_squares(z, y, w, total=1.5)
    a = z.astype(float)
    kkt = np.block([[2 * a.T @ (w[:, None] * a), np.ones((6, 1))], [np.ones((1, 6)), np.zeros((1, 1))]])
    rhs = np.concatenate([2 * a.T @ (w * y), [1.5]])
    np.testing.assert_allclose(phi, np.linalg.solve(kkt, rhs)[:6], atol=1e-10)
    assert phi.sum() == pytest.approx(1.5, abs=1e-12)


def test_kernel_shap_sampler():
    rng = np.random.default_rng(0)
    z = kernel_shap_coalitions(12, 1000, rng, paired=True)
    assert not z[0].any() and len(z) == 1001
    sizes = z[1:].sum(1)
    assert sizes.min() >= 1 and sizes.max() <= 11
    np.testing.assert_array_equal(z[1::2], ~z[2::2])  # complementary pairs
    exact = kernel_shap_coalitions(4, 14, rng, paired=True)
    assert len({tuple(r) for r in exact[1:].tolist()}) == 14


@needs_minilm
@pytest.mark.parametrize("method", SHAPLEY)
def test_same_seed_same_numbers_and_batch_equals_one_by_one(minilm, method):
    from conftest import sst2_dev_sentences

    texts = [t for t in sst2_dev_sentences(20, offset=20) if 8 <= len(t.split()) <= 14][:2]
    params = {"n_samples": 30 if method == "kernel_shap" else 2, "level": "token"}
    first = explain(texts, minilm, method=method, seed=7, **params)
    again = explain(texts, minilm, method=method, seed=7, **params)
    other = explain(texts, minilm, method=method, seed=8, **params)
    for a, b, c, text in zip(first, again, other, texts):
        np.testing.assert_array_equal(a.attributions, b.attributions)
        alone = explain(text, minilm, method=method, seed=7, **params)
        np.testing.assert_allclose(a.attributions, alone.attributions, atol=1e-5)
        assert not np.allclose(a.attributions, c.attributions)  # a sampled estimate (not exact enumeration)


def test_parameter_errors(bow):
    with pytest.raises(InvalidParameterError, match="n_samples must be an integer >= 1, got 0"):
        get_explainer("kernel_shap").create(bow, n_samples=0)
    with pytest.raises(InvalidParameterError, match="seed must be a non-negative integer, got -1"):
        get_explainer("shapley_sampling").create(bow, seed=-1)
