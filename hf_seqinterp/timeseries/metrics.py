r"""Agreement of series attributions with known salient cells (Ismail et al. 2020's benchmark metrics).

For a relevance s = |A| over the (time, channel) cells and the true salient cells B:
for each share p ∈ {0.1, …, 0.9} of the total relevance, S_p is the smallest set of top-ranked cells
holding at least p of it, and

    precision(p) = Σ_{S_p ∩ B} s / Σ_{S_p} s,      recall(p) = Σ_{S_p ∩ B} s / Σ_B s;

AUP and AUR are the trapezoid areas under these curves over p, divided by the p range (so 1 is
perfect). `top_k_precision` is the share of B among the |B| (or k) cells of largest s.
"""

from __future__ import annotations

import numpy as np

from ..errors import InvalidInputError

SHARES = np.linspace(0.1, 0.9, 9)


def precision_recall_areas(attributions: np.ndarray, salient: np.ndarray) -> tuple[float, float]:
    """(AUP, AUR) of one (time, channels) attribution grid against a boolean mask of the salient cells."""
    s = np.abs(np.asarray(attributions, dtype=np.float64)).ravel()
    box = np.asarray(salient, dtype=bool).ravel()
    if s.shape != box.shape or not box.any():
        raise InvalidInputError("Pass attributions and a salient-cell mask of the same (time, channels) shape, with a salient cell.")
    if s.sum() == 0:
        return 0.0, 0.0
    order = np.argsort(-s, kind="stable")
    mass = np.cumsum(s[order]) / s.sum()
    hits = np.cumsum(s[order] * box[order])
    sizes = np.searchsorted(mass, SHARES - 1e-12) + 1
    precision = hits[sizes - 1] / (mass[sizes - 1] * s.sum())
    recall = hits[sizes - 1] / max(s[box].sum(), 1e-300)
    return _mean_area(precision), _mean_area(recall)


def _mean_area(curve: np.ndarray) -> float:
    """Trapezoid area under a curve on the evenly spaced SHARES, divided by their range."""
    return float((curve.sum() - (curve[0] + curve[-1]) / 2) / (len(curve) - 1))


def top_k_precision(attributions: np.ndarray, salient: np.ndarray, k: int | None = None) -> float:
    """Share of salient cells among the k cells of largest |attribution| (k = the number of salient cells)."""
    box = np.asarray(salient, dtype=bool).ravel()
    k = int(box.sum()) if k is None else k
    order = np.argsort(-np.abs(np.asarray(attributions, dtype=np.float64)).ravel(), kind="stable")[:k]
    return float(box[order].mean())
