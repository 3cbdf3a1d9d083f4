r"""Plausibility: how well an explanation agrees with human rationales (ERASER, DeYoung et al. 2020).

Per instance, with t the human rationale over the n non-special tokens, p the predicted rationale
(the top-k tokens of the explanation), s the explanation's scores:

    token P = |t∧p| / |p|,  R = |t∧p| / |t|,  F1 = 2PR / (P + R)       token_iou = |t∧p| / |t∨p|
    IOU-F1: a predicted span (maximal run of p) is a match when its IOU with some human span is
            ≥ θ (0.5); P = matches / #predicted spans, R = matches / #human spans
    AUPRC:  Σ trapezoids of (recall, precision) over every threshold of s (the area sklearn's
            `auc(recall, precision)` gives from `precision_recall_curve`)

Dataset values follow ERASER: `token_f1` is the mean of the instances' F1, `iou_f1` the F1 of the
instances' mean P and mean R, `auprc` the mean of the instances' AUPRC; `*_micro` variants pool the
counts. Instances whose human rationale covers no model token (empty, or truncated away) are
skipped and counted in `n_skipped`.

The predicted rationale has k tokens: `top="gold"` (default) takes as many as the human rationale
(then P = R = F1), an int takes that many, a float in (0, 1) that fraction (rounded up).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import InvalidInputError, InvalidParameterError
from ..explanation import Explanation
from .alignment import char_spans_to_token_mask, char_spans_to_token_spans, mask_to_spans
from .ranking import RANK_BY, rank_features

PLAUSIBILITY_METRICS: tuple[str, ...] = ("token_f1", "iou_f1", "auprc")
Rationale = Sequence[Sequence[int]] | np.ndarray


def _f1(p: float, r: float) -> float:
    return 2 * p * r / (p + r) if p > 0 and r > 0 else 0.0


def auprc(truth: Sequence[bool] | np.ndarray, scores: Sequence[float] | np.ndarray) -> float:
    """Area under the precision-recall curve of `scores` against the binary `truth` (NaN if no positive).

    Thresholds are the distinct scores (tied scores enter together); precision and recall at each,
    plus the point (recall 0, precision 1), joined by the trapezoid rule.
    """
    y = np.asarray(truth, dtype=bool).reshape(-1)
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    if len(y) != len(s):
        raise InvalidInputError(f"truth has {len(y)} entries but scores has {len(s)}.")
    if not y.any():
        return float("nan")
    order = np.argsort(-s, kind="mergesort")
    s, y = s[order], y[order]
    last = np.r_[np.flatnonzero(np.diff(s)), len(s) - 1]
    tps = np.cumsum(y)[last]
    precision = np.r_[(tps / (last + 1))[::-1], 1.0]
    recall = np.r_[(tps / tps[-1])[::-1], 0.0]
    return float(-np.sum(np.diff(recall) * (precision[1:] + precision[:-1]) / 2))


def token_scores(truth: np.ndarray, predicted: np.ndarray) -> tuple[float, float, float, float]:
    """(precision, recall, F1, IOU) of a predicted token mask against the true one."""
    t, p = np.asarray(truth, dtype=bool), np.asarray(predicted, dtype=bool)
    both = int((t & p).sum())
    precision = both / p.sum() if p.any() else 0.0
    recall = both / t.sum() if t.any() else 0.0
    union = int((t | p).sum())
    return float(precision), float(recall), _f1(precision, recall), both / union if union else 0.0


def span_iou(a: tuple[int, int], b: tuple[int, int]) -> float:
    """Intersection over union of two `[start, end)` ranges."""
    inter = max(0, min(a[1], b[1]) - max(a[0], b[0]))
    union = (a[1] - a[0]) + (b[1] - b[0]) - inter
    return inter / union if union else 0.0


def span_matches(gold: Sequence[tuple[int, int]], predicted: Sequence[tuple[int, int]], threshold: float = 0.5) -> int:
    """Number of predicted spans whose best IOU with a gold span is ≥ `threshold` (ERASER)."""
    return sum(max((span_iou(p, g) for g in gold), default=0.0) >= threshold for p in set(predicted))


def top_k_mask(scores: np.ndarray, k: int, eligible: np.ndarray, rank_by: str = "signed") -> np.ndarray:
    """Bool mask of the k best-ranked eligible positions (ties keep text order)."""
    positions = np.flatnonzero(eligible)
    chosen = positions[rank_features(np.asarray(scores, dtype=np.float64)[positions], rank_by)[:k]]
    mask = np.zeros(len(scores), dtype=bool)
    mask[chosen] = True
    return mask


@dataclass
class PlausibilityResult:
    """Per-instance values (arrays of length N; NaN where skipped) and the dataset summary."""

    values: dict[str, np.ndarray]
    counts: dict[str, np.ndarray]
    evaluated: np.ndarray
    settings: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> dict[str, float]:
        ok = self.evaluated
        if not ok.any():
            names = ("token_f1", "token_f1_micro", "iou_f1", "iou_f1_micro", "auprc")
            return {**dict.fromkeys(names, float("nan")), "n_evaluated": 0, "n_skipped": len(ok)}
        c = {k: int(v[ok].sum()) for k, v in self.counts.items()}
        pooled_p = c["overlap"] / c["predicted"] if c["predicted"] else 0.0
        pooled_r = c["overlap"] / c["gold"] if c["gold"] else 0.0
        span_p = c["matches"] / c["predicted_spans"] if c["predicted_spans"] else 0.0
        span_r = c["matches"] / c["gold_spans"] if c["gold_spans"] else 0.0
        return {
            "token_f1": float(np.mean(self.values["token_f1"][ok])),
            "token_f1_micro": _f1(pooled_p, pooled_r),
            "iou_f1": _f1(float(np.mean(self.values["iou_precision"][ok])), float(np.mean(self.values["iou_recall"][ok]))),
            "iou_f1_micro": _f1(span_p, span_r),
            "auprc": float(np.nanmean(self.values["auprc"][ok])),
            "n_evaluated": int(ok.sum()),
            "n_skipped": int((~ok).sum()),
        }


def gold_rationale(expl: Explanation, rationale: Rationale) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """(token mask, token spans) of a human rationale given as character spans or as a bool token mask.
    Spans are `[start, end)` token positions; duplicates are dropped (ERASER compares span sets)."""
    array = np.asarray(rationale)
    if array.dtype == bool:
        if array.shape != (len(expl),):
            raise InvalidInputError(
                f"a rationale token mask needs {len(expl)} entries (one per token), got shape {array.shape}."
            )
        mask = array & ~np.asarray(expl.special_tokens_mask, dtype=bool)
        return mask, mask_to_spans(mask)
    return char_spans_to_token_mask(expl, rationale), sorted(set(char_spans_to_token_spans(expl, rationale)))


def _k(top: str | float, n_gold: int, n: int) -> int:
    if top == "gold":
        return n_gold
    if isinstance(top, (int, np.integer)) and not isinstance(top, bool) and top >= 0:
        return min(int(top), n)
    if isinstance(top, float) and 0 < top < 1:
        return math.ceil(top * n - 1e-9)
    raise InvalidParameterError(f"top={top!r}: use 'gold', a token count (int) or a fraction in (0, 1).")


def plausibility_arrays(
    scores: Sequence[np.ndarray],
    golds: Sequence[np.ndarray],
    gold_spans: Sequence[Sequence[tuple[int, int]]] | None = None,
    *,
    top: str | float = "gold",
    rank_by: str = "signed",
    iou_threshold: float = 0.5,
) -> PlausibilityResult:
    """Plausibility of per-instance token scores against human rationale masks of the same length
    (special tokens already left out). `gold_spans` default to the maximal runs of each mask."""
    if len(scores) != len(golds):
        raise InvalidInputError(f"Got {len(scores)} score vectors for {len(golds)} rationales.")
    if rank_by not in RANK_BY:
        raise InvalidParameterError(f"rank_by={rank_by!r}; use 'signed' or 'abs'.")
    if not 0 < iou_threshold <= 1:
        raise InvalidParameterError(f"iou_threshold={iou_threshold!r}: give a value in (0, 1].")
    _k(top, 0, 1)
    n = len(scores)
    values = {name: np.full(n, np.nan) for name in
              ("token_precision", "token_recall", "token_f1", "token_iou", "iou_precision", "iou_recall", "auprc")}
    counts = {name: np.zeros(n, dtype=np.int64)
              for name in ("overlap", "predicted", "gold", "matches", "predicted_spans", "gold_spans")}
    evaluated = np.zeros(n, dtype=bool)
    for i, (score, gold) in enumerate(zip(scores, golds)):
        score, gold = np.asarray(score, dtype=np.float64), np.asarray(gold, dtype=bool)
        if score.shape != gold.shape:
            raise InvalidInputError(f"Instance {i}: {len(score)} scores but {len(gold)} rationale entries.")
        if not gold.any():
            continue
        spans = mask_to_spans(gold) if gold_spans is None else list(gold_spans[i])
        predicted = top_k_mask(score, _k(top, int(gold.sum()), len(score)), np.ones(len(score), bool), rank_by)
        pred_spans = mask_to_spans(predicted)
        matches = span_matches(spans, pred_spans, iou_threshold)
        precision, recall, f1, iou = token_scores(gold, predicted)
        values["token_precision"][i], values["token_recall"][i], values["token_f1"][i] = precision, recall, f1
        values["token_iou"][i] = iou
        values["iou_precision"][i] = matches / len(pred_spans) if pred_spans else 0.0
        values["iou_recall"][i] = matches / len(spans) if spans else 0.0
        values["auprc"][i] = auprc(gold, score if rank_by == "signed" else np.abs(score))
        found = {"overlap": int((gold & predicted).sum()), "predicted": int(predicted.sum()), "gold": int(gold.sum()),
                 "matches": matches, "predicted_spans": len(pred_spans), "gold_spans": len(spans)}
        for name, value in found.items():
            counts[name][i] = value
        evaluated[i] = True
    settings = {"top": top, "rank_by": rank_by, "iou_threshold": iou_threshold}
    return PlausibilityResult(values=values, counts=counts, evaluated=evaluated, settings=settings)


def plausibility(
    explanations: Explanation | Sequence[Explanation],
    rationales: Sequence[Rationale],
    *,
    top: str | float = "gold",
    rank_by: str = "signed",
    iou_threshold: float = 0.5,
) -> PlausibilityResult:
    """Token F1, IOU-F1 and AUPRC of each explanation against its human rationale.

    Args:
        explanations: the explanations.
        rationales: per explanation, the human rationale as character spans `[(start, end), ...]` of
            `Explanation.text`, or as a bool mask over its tokens.
        top: size of the predicted rationale ('gold', an int, or a fraction).
        rank_by: rank tokens by 'signed' score (evidence for the target first) or 'abs'.
        iou_threshold: IOU at which a predicted span matches a human span.
    """
    explanations = [explanations] if isinstance(explanations, Explanation) else list(explanations)
    if len(rationales) != len(explanations):
        raise InvalidInputError(f"Got {len(rationales)} rationales for {len(explanations)} explanations.")
    scores, golds, spans = [], [], []
    for expl, rationale in zip(explanations, rationales):
        eligible = ~np.asarray(expl.special_tokens_mask, dtype=bool)
        index = np.cumsum(eligible) - 1  # token position -> position among non-special tokens
        mask, token_spans = gold_rationale(expl, rationale)
        scores.append(expl.attributions.astype(np.float64)[eligible])
        golds.append(mask[eligible])
        spans.append([(int(index[a]), int(index[b - 1]) + 1) for a, b in token_spans])
    return plausibility_arrays(scores, golds, spans, top=top, rank_by=rank_by, iou_threshold=iou_threshold)
