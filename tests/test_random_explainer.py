"""The `random` sanity baseline: seeded, batch-independent, zero at special tokens."""

from __future__ import annotations

import numpy as np
import pytest
from tiny_models import DECODERS, random_texts, tiny_model

from hf_seqinterp import ModelAdapter, get_explainer
from hf_seqinterp.errors import InvalidParameterError


@pytest.mark.parametrize("model_type", ["bert", DECODERS[0]])
def test_seeded_and_batch_independent(model_type):
    adapter = ModelAdapter(*tiny_model(model_type))
    texts = random_texts(7, seed=4)
    batched = get_explainer("random").create(adapter, seed=1).explain(texts, batch_size=3)
    for text, expl in zip(texts, batched):
        alone = get_explainer("random").create(adapter, seed=1).explain(text)
        np.testing.assert_array_equal(alone.attributions, expl.attributions)
        np.testing.assert_allclose(alone.probabilities, expl.probabilities, atol=1e-5)
        special = np.asarray(expl.special_tokens_mask)
        assert (expl.attributions[special] == 0).all()
        assert ((expl.attributions[~special] >= 0) & (expl.attributions[~special] < 1)).all()
    other = get_explainer("random").create(adapter, seed=2).explain(texts[0])
    assert not np.array_equal(other.attributions, batched[0].attributions)
    assert batched[0].params == {"distribution": "uniform", "seed": 1, "score": "logit"}


def test_gaussian_and_errors():
    adapter = ModelAdapter(*tiny_model("bert"))
    expl = get_explainer("random").create(adapter, distribution="gaussian").explain(" ".join(["film"] * 40))
    assert (expl.attributions[1:-1] < 0).any() and expl.predicted == expl.target
    with pytest.raises(InvalidParameterError, match="distribution='normal'"):
        get_explainer("random").create(adapter, distribution="normal")
    with pytest.raises(InvalidParameterError, match="seed must be a non-negative integer"):
        get_explainer("random").create(adapter, seed=-1)
