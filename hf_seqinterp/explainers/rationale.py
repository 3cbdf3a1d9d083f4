r"""The `rationale` explainer: runs a trained rationale generator (see `hf_seqinterp.rationale`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..adapter import Batch, Encoding
from ..errors import InvalidParameterError
from ..masking import check_replacement, keep_masks, variant_logits
from ..rationale import RationaleGenerator, load_generator
from ..rationale.gates import select_words
from ..rationale.modeling import reading_states
from ..validation import check_float
from .base import Explainer, RowResult, register_explainer


@register_explainer("rationale")
class Rationale(Explainer):
    r"""Rationale: the words a trained generator selects as enough for the prediction (Lei et al. 2016).

    A `RationaleGenerator` gives every unit j (a word; a phrase or sentence for generators trained
    with `unit`) a selection probability p_j = P(z_j > 0); the rationale is deterministic: the
    most probable units up to about Σ_j m_j p_j words, m_j the words of unit j (threshold="expected",
    the generator's default), or z_j = 1[p_j > threshold] for a number. Every token of a selected
    unit gets attribution 1, all other tokens 0; special tokens are never selected (and always kept
    when the model reads the rationale).

    `extras`: `spans` (the selected runs of units as {start, end, text} character spans),
    `selection_rate` (selected words / words), `word_probabilities` (each word's unit's p_j), and the model on the
    rationale alone, unselected words replaced as `replacement` says (default: as in training):
    `rationale_prediction`, `rationale_label`, `rationale_probabilities`, `rationale_score` (the
    target's score there). The selection does not depend on `target`, which only picks the class
    whose rationale score is reported. Cost: 1 generator forward + 2 model forwards per batch (a
    generator that reads the predictor's states, `features="predictor"`, reads them in the first).
    References: arXiv:1606.04155 (Lei et al.), arXiv:1905.08160 (HardKuma, Bastings et al.).
    """

    word_aggregation = "max"
    default_batch_size = 32

    def __init__(
        self,
        adapter,
        *,
        generator: str | Path | RationaleGenerator | None = None,
        threshold: float | str | None = None,
        replacement: str | None = None,
        score: str = "logit",
    ):
        if generator is None:
            raise InvalidParameterError(
                "The 'rationale' method needs a trained generator: generator=<folder saved with save_pretrained, "
                "Hub id, or RationaleGenerator>; train one with hf_seqinterp.rationale.train_rationale_generator."
            )
        model = load_generator(generator)
        model.check_tokenizer(adapter.tokenizer)
        if threshold is not None and threshold != "expected":
            threshold = check_float("threshold", threshold, minimum=0.0, maximum=1.0, open_minimum=True, open_maximum=True)
        self._generator = model.to(adapter.device)
        self.generator = str(generator) if isinstance(generator, (str, Path)) else (model.name_or_path or "in-memory")
        chosen = threshold if threshold is not None else model.config.threshold
        self.threshold = chosen if chosen == "expected" else float(chosen)
        self.replacement = check_replacement(adapter, replacement or model.config.replacement)
        super().__init__(adapter, score=score)

    def _explain(self, batch: Batch, targets: list[int | None]) -> list[RowResult]:
        adapter = self.adapter
        states = None
        if self._generator.config.features == "predictor":  # read in the forward that predicts the full text
            with reading_states(adapter) as read:
                logits = self._unperturbed_logits(batch)
                states = read(batch)
        else:
            logits = self._unperturbed_logits(batch)
        chosen, _ = self._targets(logits, targets)
        words = self._generator.word_batch(batch.encodings, adapter, states)
        probabilities = self._generator.selection_probabilities(words)
        groups = words.groups
        sizes = [words.sizes[i, : len(g)].long().cpu().numpy() for i, g in enumerate(groups)]
        selected = [select_words(p, self.threshold, m) for p, m in zip(probabilities, sizes)]
        keeps = [keep_masks(enc, s[None], g) for enc, s, g in zip(batch.encodings, selected, groups)]
        alone = np.concatenate(variant_logits(adapter, batch.encodings, keeps, replacement=self.replacement))
        alone_t = torch.as_tensor(alone, dtype=logits.dtype, device=logits.device)
        alone_scores = adapter.score(alone_t, chosen, self.score).double().cpu().numpy()
        alone_probs = adapter.probabilities(alone_t).cpu().numpy()
        labels = adapter.labels
        scores, extras = [], []
        for i, enc in enumerate(batch.encodings):
            special = np.asarray(enc.special_tokens_mask, dtype=bool)
            scores.append((keeps[i][0] & ~special).astype(np.float32))
            predicted = int(alone[i].argmax())
            extras.append({
                "spans": selected_spans(enc, groups[i], selected[i]),
                "selection_rate": float(sizes[i] @ selected[i] / sizes[i].sum()) if len(selected[i]) else 0.0,
                "word_probabilities": [float(p) for p in np.repeat(probabilities[i], sizes[i])],
                "rationale_prediction": predicted,
                "rationale_label": labels[predicted] if predicted < len(labels) else None,
                "rationale_probabilities": [float(p) for p in alone_probs[i]],
                "rationale_score": float(alone_scores[i]),
            })
        return self._results(batch, scores, logits, chosen, extras)


def selected_spans(enc: Encoding, groups: list[np.ndarray], selected: np.ndarray) -> list[dict[str, Any]]:
    """Runs of consecutive selected words as character spans {start, end, text} of `enc.text`."""
    spans: list[dict[str, Any]] = []
    previous = -2
    for j in np.flatnonzero(selected):
        start, end = enc.offsets[int(groups[j][0])][0], enc.offsets[int(groups[j][-1])][1]
        if j == previous + 1 and spans:
            spans[-1]["end"] = end
        else:
            spans.append({"start": start, "end": end})
        previous = j
    for span in spans:
        span["text"] = enc.text[span["start"] : span["end"]]
    return spans
