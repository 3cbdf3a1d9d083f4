"""Base class of the perturbation explainers: features → coalitions → one batched scoring call →
attributions.

A subclass says which coalitions of a text's M features it needs (`_coalitions`) and how to turn
their values into one score per feature (`_attribute`). The base class scores the unedited text and
every distinct coalition of every text of the group in one `masking.variant_logits` call (large
length-sorted batches under a token budget), resolves the target from the unedited text's logits,
and spreads each feature's score evenly over its tokens (so word-level views, which sum, give back
the feature's score exactly; special tokens get 0).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from ..adapter import Batch, Encoding
from ..errors import InvalidParameterError
from ..masking import (
    FeatureLevel,
    feature_groups,
    keep_masks,
    resolve_replacement,
    target_scores,
    variant_logits,
)
from ..validation import check_seed, check_token_budget
from .base import Explainer, RowResult, hidden_size


class PerturbationExplainer(Explainer):
    """Shared machinery of erasure, occlusion, LIME, KernelSHAP and Shapley sampling."""

    default_batch_size = 32

    def __init__(
        self,
        adapter,
        *,
        level: FeatureLevel = "token",
        replacement: str = "auto",
        max_batch_tokens: int = 8192,
        score: str = "logit",
    ):
        if level not in ("token", "word"):
            raise InvalidParameterError(f"level={level!r}; use 'token' or 'word'.")
        self.level = level
        self.replacement = resolve_replacement(adapter, replacement)
        self.max_batch_tokens = check_token_budget("max_batch_tokens", max_batch_tokens, hidden_size(adapter))
        super().__init__(adapter, score=score)

    # ----------------------------------------------------------------- for subclasses
    def _features(self, encoding: Encoding) -> list[np.ndarray]:
        """Token positions of each feature of one text."""
        return feature_groups(encoding, self.level)

    def _coalitions(self, n_features: int) -> np.ndarray:
        """(n, M) bool coalitions to score (1 = feature kept); the unedited text is always scored too."""
        raise NotImplementedError

    def _attribute(self, z: np.ndarray, values: np.ndarray, full_value: float) -> tuple[np.ndarray, dict[str, Any]]:
        """Per-feature scores (M,) and extras from the coalitions, their values and v(all features)."""
        raise NotImplementedError

    # ----------------------------------------------------------------- the shared loop
    def _explain(self, batch: Batch, targets: list[int | None]) -> list[RowResult]:
        encodings = batch.encodings
        groups = [self._features(enc) for enc in encodings]
        plans = [self._coalitions(len(g)) for g in groups]
        distinct, where = [], []
        for plan in plans:
            rows = np.vstack([np.ones((1, plan.shape[1]), dtype=bool), plan])
            unique, inverse = np.unique(rows, axis=0, return_inverse=True)
            distinct.append(unique)
            where.append(inverse.reshape(-1))
        keeps = [keep_masks(enc, z, g) for enc, z, g in zip(encodings, distinct, groups)]
        scored = variant_logits(
            self.adapter, encodings, keeps, replacement=self.replacement, max_batch_tokens=self.max_batch_tokens
        )
        logits = [rows[index] for rows, index in zip(scored, where)]
        unperturbed = np.stack([rows[0] for rows in logits])
        chosen = self._targets(torch.as_tensor(unperturbed), targets)[0].tolist()
        scores, extras = [], []
        for i, enc in enumerate(encodings):
            values = target_scores(self.adapter, logits[i], chosen[i], self.score)
            phi, info = self._attribute(plans[i], values[1:], float(values[0]))
            scores.append(spread(phi, groups[i], len(enc)))
            extras.append({"input_score": float(values[0]), **info, "n_evaluations": len(distinct[i])})
        return self._results(batch, scores, unperturbed, chosen, extras)


class SampledPerturbationExplainer(PerturbationExplainer):
    """A perturbation explainer that draws its coalitions at random: each text's from a fresh
    `numpy.random.default_rng(seed)`, so a text's numbers do not depend on its batch."""

    def __init__(self, adapter, *, seed: int = 0, level: FeatureLevel = "word", replacement: str = "auto",
                 max_batch_tokens: int = 8192, score: str = "logit"):
        self.seed = check_seed(seed)
        super().__init__(adapter, level=level, replacement=replacement, max_batch_tokens=max_batch_tokens, score=score)

    def _rng(self) -> np.random.Generator:
        return np.random.default_rng(self.seed)


def spread(phi: np.ndarray, groups: Sequence[np.ndarray], n_tokens: int) -> np.ndarray:
    """Token attributions from feature scores: each feature's score split evenly over its tokens."""
    out = np.zeros(n_tokens, dtype=np.float64)
    for value, positions in zip(phi, groups):
        out[positions] += value / len(positions)
    return out.astype(np.float32)

