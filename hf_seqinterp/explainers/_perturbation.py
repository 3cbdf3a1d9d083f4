"""Base class of the perturbation explainers: features → coalitions → one batched scoring call →
attributions.

A subclass says which coalitions of a text's M features it needs (`_coalitions`) and how to turn
their values into one score per feature (`_attribute`). The base class resolves the targets from one
forward of the unedited texts, scores the unedited text and every distinct coalition of every text
of the group in one `masking.score_variants` call (large length-sorted batches under a token
budget; for a causal LM every row of a continuation from the same teacher-forced forward), and
spreads each feature's score evenly over its tokens (so word-level views, which sum, give back the
feature's score exactly; special tokens get 0). With a row axis, `_attribute` runs once per row.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..adapter import Batch, Encoding
from ..masking import (
    FeatureLevel,
    check_level,
    feature_groups,
    keep_masks,
    resolve_replacement,
    score_variants,
)
from ..validation import check_seed, check_token_budget
from .base import Explainer, RowResult, hidden_size


class PerturbationExplainer(Explainer):
    """Shared machinery of erasure, occlusion, LIME, KernelSHAP and Shapley sampling."""

    default_batch_size = 32
    multi_row = True

    def __init__(
        self,
        adapter,
        *,
        level: FeatureLevel = "token",
        replacement: str = "auto",
        max_batch_tokens: int = 8192,
        score: str = "logit",
    ):
        self.level = check_level(level)
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
        logits = self._unperturbed_logits(batch)
        chosen = self._targets(logits, targets)[0]
        groups = [self._features(enc) for enc in encodings]
        plans = [self._coalitions(len(g)) for g in groups]
        distinct, where = [], []
        for plan in plans:
            rows = np.vstack([np.ones((1, plan.shape[1]), dtype=bool), plan])
            unique, inverse = np.unique(rows, axis=0, return_inverse=True)
            distinct.append(unique)
            where.append(inverse.reshape(-1))
        keeps = [keep_masks(enc, z, g) for enc, z, g in zip(encodings, distinct, groups)]
        explained = [
            int(c) if enc.n_rows is None else c[: enc.n_rows] for enc, c in zip(encodings, chosen.tolist())
        ]
        scored = score_variants(
            self.adapter, encodings, keeps, explained, replacement=self.replacement, score=self.score,
            max_batch_tokens=self.max_batch_tokens,
        )
        scores, extras = [], []
        for i, enc in enumerate(encodings):
            values = scored[i][where[i]]  # the unedited text first; (1 + n,) or (1 + n, rows)
            per_row = []
            for column in np.atleast_2d(values.T):  # one explained row at a time
                phi, info = self._attribute(plans[i], column[1:], float(column[0]))
                per_row.append((spread(phi, groups[i], len(enc)), {"input_score": float(column[0]), **info}))
            if values.ndim == 1:
                scores.append(per_row[0][0])
                extras.append({**per_row[0][1], "n_evaluations": len(distinct[i])})
            else:
                scores.append(np.stack([s for s, _ in per_row]))
                extras.append({"rows": [info for _, info in per_row], "n_evaluations": len(distinct[i])})
        return self._results(batch, scores, logits, chosen, extras)


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

