"""Invariants every head with a target axis (explained rows: causal LMs, encoder–decoders, token
classifiers) must satisfy, shared by their test files."""

from __future__ import annotations

import json

import numpy as np
import pytest

import hf_seqinterp as hsi
from hf_seqinterp.explainers import get_explainer, list_methods

#: methods that explain rows, and the others (which must refuse such heads)
ROW_METHODS = [m for m in list_methods() if get_explainer(m).multi_row]
OTHER_METHODS = [m for m in list_methods() if not get_explainer(m).multi_row]
#: parameters that keep the sampling and integrating methods quick on tiny models
FAST = {"integrated_gradients": {"n_steps": 8}, "lime": {"n_samples": 30}, "kernel_shap": {"n_samples": 30},
        "shapley_sampling": {"n_samples": 3}}
#: methods whose rows score later tokens exactly 0 (token-level features: a window or a word straddling a
#: row's last visible token shares its score with later tokens; a regression on samples, as in LIME or
#: KernelSHAP, gives a token that changes nothing a small weight, not exactly 0), with their tolerance
CAUSAL = {"saliency": 0.0, "gradient_x_input": 0.0, "integrated_gradients": 0.0, "erasure": 1e-6,
          "shapley_sampling": 1e-6}
CAUSAL_PARAMS = {"integrated_gradients": {"n_steps": 8}, "shapley_sampling": {"n_samples": 3, "level": "token"}}


def row_explainer(adapter: hsi.ModelAdapter, method: str) -> hsi.explainers.Explainer:
    """`method` for `adapter` with the quick settings of `FAST`."""
    return get_explainer(method).create(adapter, **FAST.get(method, {}))


def assert_batch_equals_one_by_one(explainer, texts, targets) -> list[hsi.Explanation]:
    """Explaining `texts` in one batch gives each text's attributions and row probabilities as
    explaining it alone does (1e-5, relative to the largest attribution above 1), and every
    Explanation survives a JSON round trip. Returns the batch's Explanations."""
    batch = explainer.explain(texts, target=targets, batch_size=len(texts), progress=False)
    for text, target, expl in zip(texts, targets, batch):
        alone = explainer.explain(text, target=target)
        scale = max(1.0, float(np.abs(alone.attributions).max()))
        np.testing.assert_allclose(expl.attributions, alone.attributions, rtol=1e-5, atol=1e-5 * scale)
        np.testing.assert_allclose(expl.probabilities, alone.probabilities, atol=1e-6)
        assert hsi.Explanation.from_dict(json.loads(json.dumps(expl.to_dict()))) == expl
    return batch


def assert_complete_per_row(expl: hsi.Explanation) -> None:
    """Integrated gradients: each row's attributions add up to f_k(x) − f_k(baseline) within 1 %, and
    the recorded convergence delta is that gap."""
    for k, row in enumerate(expl.rows):
        gap, total = row["input_score"] - row["baseline_score"], float(expl.attributions[k].sum(dtype=np.float64))
        assert abs(total - gap) <= 1e-2 * max(abs(gap), 1e-3)
        assert row["convergence_delta"] == pytest.approx(total - gap, abs=1e-6)
    assert not expl.warnings


def assert_efficient_per_row(expl: hsi.Explanation) -> None:
    """Shapley sampling: each row's attributions add up to f_k(x) − f_k(baseline) exactly."""
    for k, row in enumerate(expl.rows):
        assert float(expl.attributions[k].sum(dtype=np.float64)) == pytest.approx(
            row["input_score"] - row["baseline_score"], abs=1e-5
        )


def assert_rows_never_see_later_tokens(expl: hsi.Explanation) -> None:
    """Row k scores the tokens from its `visible` on exactly 0 (`CAUSAL` tolerance), and `row(k)` is
    row k over the tokens it can see."""
    for k, row in enumerate(expl.rows):
        np.testing.assert_allclose(expl.attributions[k, row["visible"]:], 0.0, atol=CAUSAL[expl.method])
        view = expl.row(k)
        assert len(view.tokens) == row["visible"] and view.target_label == row["label"]
        np.testing.assert_array_equal(view.attributions, expl.attributions[k, : row["visible"]])
