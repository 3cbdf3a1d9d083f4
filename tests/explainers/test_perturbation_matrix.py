"""Every perturbation explainer across the architecture matrix: batch == one-by-one, efficiency of
the Shapley estimators, special tokens never perturbed, and the clear error for an empty input."""

from __future__ import annotations

import numpy as np
import pytest
from tiny_models import ARCHITECTURES, DECODERS, random_texts, tiny_model

from hf_seqinterp import InvalidParameterError, ModelAdapter, explain

METHODS = {
    "erasure": {},
    "occlusion": {"window": 2, "level": "word"},
    "lime": {"n_samples": 40},
    "kernel_shap": {"n_samples": 40, "level": "token"},
    "shapley_sampling": {"n_samples": 2},
}
TEXTS = random_texts(3, seed=2, min_words=2, max_words=9)


@pytest.fixture(scope="module", params=list(ARCHITECTURES))
def adapter(request):
    return ModelAdapter(*tiny_model(request.param))


@pytest.mark.parametrize("method", list(METHODS))
def test_batch_equals_one_by_one(adapter, method):
    together = explain(TEXTS, adapter, method=method, target=2, **METHODS[method])
    for text, e in zip(TEXTS, together):
        alone = explain(text, adapter, method=method, target=2, **METHODS[method])
        np.testing.assert_allclose(e.attributions, alone.attributions, atol=1e-5)
        assert np.all(e.attributions[np.array(e.special_tokens_mask)] == 0)
        if "baseline_score" in e.extras:
            gap = e.extras["input_score"] - e.extras["baseline_score"]
            assert e.attributions.sum(dtype=np.float64) == pytest.approx(gap, abs=1e-5)


@pytest.mark.parametrize("replacement", ["attention", "zero_embedding", "unk"])
def test_shapley_efficiency_for_each_replacement(adapter, replacement):
    for e in explain(TEXTS[:3], adapter, method="shapley_sampling", n_samples=2, replacement=replacement):
        gap = e.extras["input_score"] - e.extras["baseline_score"]
        assert e.attributions.sum(dtype=np.float64) == pytest.approx(gap, abs=1e-5)
        assert e.params["replacement"] == replacement


def test_deleting_every_token_is_a_clear_error():
    adapter = ModelAdapter(*tiny_model(DECODERS[0]))  # decoder tokenizers add no special tokens
    with pytest.raises(InvalidParameterError, match="removes every token of text 0"):
        explain("good film", adapter, method="kernel_shap", replacement="delete")
