"""The batching invariant every explainer keeps: explaining inputs together equals explaining each alone."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

import hf_seqinterp as hsi


def assert_batch_equals_one_by_one(explainer: Any, inputs: Sequence[Any], targets: Sequence[Any]) -> list[hsi.Explanation]:
    """One batch of all `inputs` against one call per input: attributions (1e-5 of the largest),
    probabilities and targets agree, and each Explanation survives a to_dict/from_dict round trip.
    Returns the batch's Explanations."""
    batch = explainer.explain(list(inputs), target=list(targets), batch_size=len(inputs), progress=False)
    for item, target, expl in zip(inputs, targets, batch):
        alone = explainer.explain(item, target=target)
        scale = max(1.0, float(np.abs(alone.attributions).max()))
        np.testing.assert_allclose(expl.attributions, alone.attributions, rtol=1e-5, atol=1e-5 * scale)
        np.testing.assert_allclose(expl.probabilities, alone.probabilities, rtol=1e-5, atol=1e-6)
        assert expl.target == alone.target and expl.target_label == alone.target_label
        assert hsi.Explanation.from_dict(expl.to_dict()) == expl
    return batch
