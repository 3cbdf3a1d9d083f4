"""Checks shared by the tests of heads with a target axis (causal LMs, token classifiers)."""

from __future__ import annotations

import numpy as np

import hf_seqinterp as hsi


def assert_batch_equals_one_by_one(explainer, texts, targets) -> list[hsi.Explanation]:
    """Explaining `texts` in one batch gives each text's attributions and row probabilities as
    explaining it alone does (1e-5, relative to the largest attribution above 1), and every
    Explanation survives to_dict/from_dict. Returns the batch's Explanations."""
    batch = explainer.explain(texts, target=targets, batch_size=len(texts), progress=False)
    for text, target, expl in zip(texts, targets, batch):
        alone = explainer.explain(text, target=target)
        scale = max(1.0, float(np.abs(alone.attributions).max()))
        np.testing.assert_allclose(expl.attributions, alone.attributions, rtol=1e-5, atol=1e-5 * scale)
        np.testing.assert_allclose(expl.probabilities, alone.probabilities, atol=1e-6)
        assert hsi.Explanation.from_dict(expl.to_dict()) == expl
    return batch
