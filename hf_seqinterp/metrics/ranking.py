"""Rank helpers shared by the faithfulness and plausibility metrics: feature scores, their order,
Kendall's τ_b and the trapezoid rule."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from ..explanation import Explanation, aggregate

RANK_BY = ("signed", "abs")


def feature_scores(expl: Explanation, groups: Sequence[np.ndarray]) -> np.ndarray:
    """One score per feature: the token's attribution, or the word's aggregated attribution."""
    return np.asarray([aggregate(expl.attributions[g], expl.aggregation) for g in groups], dtype=np.float64)


def rank_features(scores: np.ndarray, rank_by: str = "signed") -> np.ndarray:
    """Feature indices from most to least important (ties keep text order)."""
    key = np.abs(scores) if rank_by == "abs" else scores
    return np.argsort(-key, kind="stable")


def kendall_tau_b(x: np.ndarray, y: np.ndarray) -> float:
    """Kendall's τ_b (ties corrected), NaN when either vector is constant or shorter than 2.

    τ_b = (C − D) / sqrt((n₀ − n_x)(n₀ − n_y)) with n₀ = n(n−1)/2 pairs and n_x, n_y the pairs tied
    in x, in y. O(n²) memory, fine for a few thousand features.
    """
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    n = len(x)
    if n < 2:
        return float("nan")
    i, j = np.triu_indices(n, 1)
    dx, dy = np.sign(x[i] - x[j]), np.sign(y[i] - y[j])
    pairs = len(i)
    denominator = math.sqrt(float(pairs - np.count_nonzero(dx == 0)) * float(pairs - np.count_nonzero(dy == 0)))
    return float((dx * dy).sum() / denominator) if denominator > 0 else float("nan")


def trapezoid_area(y: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Area under each row of y (..., S) over the grid x (S,), by the trapezoid rule."""
    y = np.asarray(y, dtype=np.float64)
    return ((y[..., 1:] + y[..., :-1]) / 2 * np.diff(x)).sum(axis=-1)
