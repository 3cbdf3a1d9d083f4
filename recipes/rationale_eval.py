"""Comparing a rationale generator with attribution methods at the same selection rate (used by
`eraser_rationales.py` and `sst2_rationales.py`).

Every method becomes a binary rationale per text: the generator's selected words; for an
attribution method, its k best words by word score (the Explanation's own word aggregation,
evidence for the target first), with k the number of words the generator selected in that text.
Each rationale is then scored with the library's metrics: the model's prediction from the
rationale alone, comprehensiveness and sufficiency (`hf_seqinterp.metrics.faithfulness`, with
explicit rationales), and, where human rationales exist, token F1 / IOU-F1 / AUPRC
(`hf_seqinterp.metrics.plausibility_arrays`, one instance at a time so that each text gets its own k).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from hf_seqinterp import Explanation, ModelAdapter, get_explainer, metrics
from hf_seqinterp.masking import feature_groups, keep_masks, variant_logits
from hf_seqinterp.metrics.plausibility import PlausibilityResult, gold_rationale, plausibility_arrays

Span = tuple[int, int]


@dataclass
class MethodRationales:
    """One method's explanations and its binary token rationale for each text."""

    name: str
    explanations: list[Explanation]
    masks: list[np.ndarray]
    seconds: float = 0.0
    scores: list[np.ndarray] = field(default_factory=list)  # per token, for AUPRC


def selected_words(expl: Explanation, mask: np.ndarray) -> int:
    """Number of words with a token in the rationale `mask`."""
    return int(sum(mask[positions].any() for positions in feature_groups(expl, "word")))


def top_word_masks(explanations: Sequence[Explanation], counts: Sequence[int]) -> list[np.ndarray]:
    """Token masks of each explanation's `counts[i]` best words (ties: earlier word first)."""
    masks = []
    for expl, k in zip(explanations, counts):
        groups = feature_groups(expl, "word")
        scores = np.asarray([w.score for w in expl.to_words()], dtype=np.float64)
        chosen = np.zeros(len(groups), dtype=bool)
        chosen[np.argsort(-scores, kind="stable")[:k]] = True
        masks.append(keep_masks(expl, chosen[None], groups)[0] & ~np.asarray(expl.special_tokens_mask))
    return masks


def run_method(name: str, adapter: ModelAdapter, texts: Sequence[str], counts: Sequence[int], **params) -> MethodRationales:
    start = time.perf_counter()
    explanations = get_explainer(name).create(adapter, **params).explain(list(texts), progress=True)
    seconds = time.perf_counter() - start
    scores = [e.attributions.astype(np.float64) for e in explanations]
    return MethodRationales(name, explanations, top_word_masks(explanations, counts), seconds, scores)


def generator_rationales(adapter: ModelAdapter, texts: Sequence[str], generator) -> MethodRationales:
    start = time.perf_counter()
    explanations = get_explainer("rationale").create(adapter, generator=generator).explain(list(texts), progress=True)
    seconds = time.perf_counter() - start
    masks = [e.attributions > 0 for e in explanations]
    scores = []  # each token scored by its word's selection probability
    for e in explanations:
        token = np.zeros(len(e), dtype=np.float64)
        for p, positions in zip(e.extras["word_probabilities"], feature_groups(e, "word")):
            token[positions] = p
        scores.append(token)
    return MethodRationales("rationale generator", explanations, masks, seconds, scores)


def rationale_predictions(adapter: ModelAdapter, method: MethodRationales, replacement: str) -> np.ndarray:
    keeps = [(m | np.asarray(e.special_tokens_mask))[None] for e, m in zip(method.explanations, method.masks)]
    logits = variant_logits(adapter, method.explanations, keeps, replacement=replacement)
    return np.asarray([row[0].argmax() for row in logits])


def plausibility_of_masks(method: MethodRationales, gold_spans: Sequence[Sequence[Span]]) -> dict[str, float]:
    """Token F1, IOU-F1 (ERASER aggregation) of the binary rationales, AUPRC of the token scores."""
    parts = []
    for expl, mask, score, spans in zip(method.explanations, method.masks, method.scores, gold_spans):
        eligible = ~np.asarray(expl.special_tokens_mask, dtype=bool)
        index = np.cumsum(eligible) - 1
        gold, token_spans = gold_rationale(expl, spans)
        spans_here = [(int(index[a]), int(index[b - 1]) + 1) for a, b in token_spans]
        part = plausibility_arrays([mask[eligible].astype(np.float64)], [gold[eligible]], [spans_here],
                                   top=int(mask[eligible].sum()))
        part.values["auprc"][:] = metrics.auprc(gold[eligible], score[eligible]) if gold[eligible].any() else np.nan
        parts.append(part)
    merged = PlausibilityResult(
        values={k: np.concatenate([p.values[k] for p in parts]) for k in parts[0].values},
        counts={k: np.concatenate([p.counts[k] for p in parts]) for k in parts[0].counts},
        evaluated=np.concatenate([p.evaluated for p in parts]),
    )
    return merged.summary()


def compare(
    adapter: ModelAdapter,
    methods: Sequence[MethodRationales],
    labels: Sequence[int] | None,
    gold_spans: Sequence[Sequence[Span]] | None,
    replacements: Sequence[str] = ("mask", "delete"),
) -> list[dict[str, float | str]]:
    """One row of metrics per method."""
    rows = []
    for method in methods:
        row: dict[str, float | str] = {"method": method.name}
        rates = [selected_words(e, m) / len(feature_groups(e, "word")) for e, m in zip(method.explanations, method.masks)]
        row["selection rate"] = float(np.mean(rates))
        predicted = np.asarray([e.predicted for e in method.explanations])
        alone = rationale_predictions(adapter, method, replacements[0])
        row["fidelity"] = float(np.mean(alone == predicted))
        if labels is not None:
            row["accuracy (rationale only)"] = float(np.mean(alone == np.asarray(labels)))
        if gold_spans is not None:
            found = plausibility_of_masks(method, gold_spans)
            row.update({"token F1": found["token_f1"], "IOU-F1": found["iou_f1"], "AUPRC": found["auprc"]})
        for replacement in replacements:
            result = metrics.faithfulness(method.explanations, adapter, ["comprehensiveness", "sufficiency"],
                                          rationales=method.masks, replacement=replacement, score="prob")
            summary = result.summary()
            row[f"comp. ({replacement})"] = summary["comprehensiveness"]
            row[f"suff. ({replacement})"] = summary["sufficiency"]
        row["explain s/text"] = method.seconds / len(method.explanations)
        rows.append(row)
    return rows


def markdown(rows: Sequence[dict[str, float | str]]) -> str:
    header = list(rows[0])
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    for row in rows:
        cells = [f"{row[h]:.3f}" if isinstance(row[h], float) else str(row[h]) for h in header]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
