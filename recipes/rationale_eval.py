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
from hf_seqinterp.masking import feature_groups, keep_masks
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


def per_text(
    adapter: ModelAdapter,
    methods: Sequence[MethodRationales],
    labels: Sequence[int] | None,
    replacements: Sequence[str] = ("mask", "delete"),
) -> list[dict[str, np.ndarray]]:
    """Per method, per text: the selection rate; whether the prediction from the rationale alone
    (unselected words replaced as `replacements[0]` says) is the full-text prediction ("fidelity")
    and the gold label ("accuracy (rationale only)"); comprehensiveness and sufficiency for each
    replacement. Every method's edited inputs go into one `metrics.faithfulness` run per
    replacement, so each full text is scored once; the rationale-only prediction is read off the
    sufficiency input, f(r) = f(x) − sufficiency, which for a binary classifier keeps the explained
    class exactly when f(r) > 1/2."""
    if adapter.num_labels != 2:
        raise ValueError("per_text reads the rationale-only prediction off the sufficiency input: binary classifiers only.")
    explanations = [e for m in methods for e in m.explanations]
    masks = [mask for m in methods for mask in m.masks]
    owner = np.repeat(np.arange(len(methods)), [len(m.explanations) for m in methods])
    values: list[dict[str, np.ndarray]] = [{} for _ in methods]
    for i, method in enumerate(methods):
        values[i]["selection rate"] = np.asarray(
            [selected_words(e, m) / len(feature_groups(e, "word")) for e, m in zip(method.explanations, method.masks)])
    for r, replacement in enumerate(replacements):
        result = metrics.faithfulness(explanations, adapter, ["comprehensiveness", "sufficiency"],
                                      rationales=masks, replacement=replacement, score="prob")
        for i in range(len(methods)):
            values[i][f"comp. ({replacement})"] = result.values["comprehensiveness"][owner == i]
            values[i][f"suff. ({replacement})"] = result.values["sufficiency"][owner == i]
        if r == 0:
            target = np.asarray([e.target for e in explanations])
            alone = np.where(result.full_scores - result.values["sufficiency"] > 0.5, target, 1 - target)
            for i, method in enumerate(methods):
                values[i]["fidelity"] = (alone[owner == i] == np.asarray([e.predicted for e in method.explanations]))
                if labels is not None:
                    values[i]["accuracy (rationale only)"] = alone[owner == i] == np.asarray(labels)
    return values


def table(
    methods: Sequence[MethodRationales],
    values: Sequence[dict[str, np.ndarray]],
    gold_spans: Sequence[Sequence[Span]] | None,
) -> list[dict[str, float | str]]:
    """One row per method: the means of its `per_text` values, and token F1 / IOU-F1 / AUPRC against
    `gold_spans` when given."""
    order = ["selection rate", "fidelity", "accuracy (rationale only)"]
    rows = []
    for method, found in zip(methods, values):
        row: dict[str, float | str] = {"method": method.name}
        row.update({key: float(np.mean(found[key])) for key in order if key in found})
        if gold_spans is not None:
            plausible = plausibility_of_masks(method, gold_spans)
            row.update({"token F1": plausible["token_f1"], "IOU-F1": plausible["iou_f1"], "AUPRC": plausible["auprc"]})
        row.update({key: float(np.mean(v)) for key, v in found.items() if key not in order})
        row["explain s/text"] = method.seconds / len(method.explanations)
        rows.append(row)
    return rows


def compare(
    adapter: ModelAdapter,
    methods: Sequence[MethodRationales],
    labels: Sequence[int] | None,
    gold_spans: Sequence[Sequence[Span]] | None,
    replacements: Sequence[str] = ("mask", "delete"),
) -> list[dict[str, float | str]]:
    """One row of metrics per method (`table` of `per_text`)."""
    return table(methods, per_text(adapter, methods, labels, replacements), gold_spans)


def markdown(rows: Sequence[dict[str, float | str]]) -> str:
    header = list(rows[0])
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    for row in rows:
        cells = [f"{row[h]:.3f}" if isinstance(row[h], float) else str(row[h]) for h in header]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
