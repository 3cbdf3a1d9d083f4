r"""Linear probes per layer with control tasks (diagnostic classifiers; Hewitt & Liang 2019,
arXiv:1909.03368, "Designing and Interpreting Probes with Control Tasks").

A probe is a logistic regression from a frozen representation to a property: the residual stream
after block l at each token (level="token"), or its mean over a text's non-special tokens
(level="sentence"). The control task gives every *type* a random label, drawn once (seeded) from
the property's empirical label distribution and shared by all its occurrences: the lower-cased word
a token belongs to (sub-word pieces share their word's label), or the whole text at sentence level.
A probe that scores well on the control task memorises types rather than reading the property off
the representation, so the quantity reported is

    selectivity(l) = accuracy(l) − control_accuracy(l)

on held-out texts (the split is by text, never by token), with the same probe and settings.
"""

from __future__ import annotations

import math
import string
from collections.abc import Callable, Hashable, Sequence
from typing import Any, Literal

import datasets
import numpy as np
import torch

from ..adapter import Encoding, ModelAdapter
from ..errors import InvalidInputError, InvalidParameterError, MissingDependencyError
from ..mixin import as_adapter
from ..utils import progress_bar
from ..validation import check_batch_size, check_float, check_seed, validate_texts
from .units import capture, run, unit_groups

TokenLabel = Callable[[Encoding, int], Hashable | None]


def is_punctuation(encoding: Encoding, position: int) -> bool | None:
    """A token-level property: whether the token covers only punctuation (None for special tokens)."""
    if encoding.special_tokens_mask[position]:
        return None
    piece = encoding.covered_text(position).strip()
    return bool(piece) and set(piece) <= set(string.punctuation)


def probe(
    model: ModelAdapter | Any,
    texts: Sequence[str],
    labels: Sequence[Hashable] | TokenLabel,
    *,
    level: Literal["sentence", "token"] = "sentence",
    layers: int | Sequence[int] | None = None,
    test_size: float = 0.25,
    seed: int = 0,
    regularization: float = 1.0,
    tokenizer: Any = None,
    batch_size: int | None = None,
    truncation: bool = True,
    progress: bool = True,
) -> datasets.Dataset:
    """Probe accuracy, control-task accuracy and selectivity per layer, on held-out texts.

    Args:
        texts: the texts (split by text into fitting and held-out parts).
        labels: level="sentence": one label per text; level="token": a function
            `(encoding, position) -> label or None` (None leaves the token out), e.g. `is_punctuation`.
        layers: block indices (default: every block); the representation is the block's output.
        test_size: fraction of texts held out.
        seed: fixes the split and the control labels.
        regularization: inverse L2 strength C of the logistic regression.

    Returns a `datasets.Dataset` with one row per layer: layer, accuracy, control_accuracy,
    selectivity, majority (held-out accuracy of always answering the most frequent fitted label),
    train_examples, test_examples.
    """
    try:
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler
    except ImportError as err:  # pragma: no cover - scikit-learn is in the test extras
        raise MissingDependencyError("Probes need scikit-learn: pip install 'hf-seqinterp[surrogate]'.") from err

    if level not in ("sentence", "token"):
        raise InvalidParameterError(f"level={level!r}; use 'sentence' or 'token'.")
    test_size = check_float("test_size", test_size, minimum=0.0, maximum=1.0, open_minimum=True, open_maximum=True)
    seed = check_seed(seed)
    adapter = as_adapter(model, tokenizer)
    texts = validate_texts(texts)
    if level == "sentence" and (callable(labels) or len(labels) != len(texts)):
        raise InvalidInputError("level='sentence' takes one label per text; pass a list as long as texts.")
    if level == "token" and not callable(labels):
        raise InvalidInputError(
            "level='token' takes a function (encoding, position) -> label or None, e.g. is_punctuation."
        )
    groups = unit_groups(adapter, "residual", layers)
    encodings = adapter.encode(texts, truncation=truncation)
    examples = _examples(encodings, labels, level)  # (text, position or None, label, type)
    if len({label for _, _, label, _ in examples}) < 2:
        raise InvalidInputError("The property takes a single value on these texts; a probe needs two or more labels.")
    rng = np.random.default_rng(seed)
    held_out = set(rng.permutation(len(texts))[: max(1, math.ceil(test_size * len(texts)))].tolist())
    test = np.array([text in held_out for text, _, _, _ in examples])
    if test.all() or not test.any():
        raise InvalidInputError(f"test_size={test_size} leaves no texts on one side of the split; use more texts.")
    y = np.array([label for _, _, label, _ in examples])
    control = _control_labels([kind for _, _, _, kind in examples], y, rng)
    features = _features(adapter, encodings, groups, examples, level, check_batch_size(batch_size) or 32, progress)
    rows = []
    for group, x in zip(groups, features):
        scores = []
        for target in (y, control):
            clf = make_pipeline(StandardScaler(), LogisticRegression(C=regularization, max_iter=2000))
            clf.fit(x[~test], target[~test])
            scores.append(float(clf.score(x[test], target[test])))
        values, counts = np.unique(y[~test], return_counts=True)
        rows.append({
            "layer": group.layer, "accuracy": scores[0], "control_accuracy": scores[1],
            "selectivity": scores[0] - scores[1], "majority": float(np.mean(y[test] == values[counts.argmax()])),
            "train_examples": int((~test).sum()), "test_examples": int(test.sum()),
        })  # fmt: skip
    return datasets.Dataset.from_list(rows)


def _examples(encodings: Sequence[Encoding], labels, level: str) -> list[tuple[int, int | None, Hashable, str]]:
    """(text index, token position or None, label, control type) of every probed example."""
    if level == "sentence":
        return [(i, None, label, enc.text) for i, (enc, label) in enumerate(zip(encodings, labels))]
    out = []
    for i, enc in enumerate(encodings):
        words = _word_texts(enc)
        for t in range(len(enc)):
            label = labels(enc, t)
            if label is not None:
                out.append((i, t, label, words.get(enc.word_ids[t], enc.tokens[t])))
    return out


def _word_texts(enc: Encoding) -> dict[int, str]:
    """Lower-cased text of each word (the span its tokens cover)."""
    spans: dict[int, tuple[int, int]] = {}
    for t, word in enumerate(enc.word_ids):
        if word is not None and not enc.special_tokens_mask[t]:
            start, end = enc.offsets[t]
            old = spans.get(word, (start, end))
            spans[word] = (min(old[0], start), max(old[1], end))
    return {word: enc.text[s:e].strip().lower() for word, (s, e) in spans.items()}


def _control_labels(types: Sequence[str], y: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One label per type, drawn from the empirical distribution of `y`, shared by its occurrences."""
    distinct = sorted(set(types))
    drawn = dict(zip(distinct, rng.choice(y, size=len(distinct))))
    return np.array([drawn[t] for t in types])


def _features(adapter, encodings, groups, examples, level, batch_size, progress) -> list[np.ndarray]:
    """Per layer, the (examples, hidden) representations: token vectors or non-special means."""
    wanted: dict[int, list[int]] = {}
    for text, position, _, _ in examples:
        wanted.setdefault(text, []).append(-1 if position is None else position)
    per_text: dict[int, list[np.ndarray]] = {}
    with adapter.evaluating(), capture(adapter, groups) as captured, progress_bar(
        len(encodings), "probe features", enabled=progress
    ) as bar:
        for start in range(0, len(encodings), batch_size):
            batch = adapter.collate(encodings[start : start + batch_size])
            run(adapter, batch)
            states = [captured.pop(g.name).cpu() for g in groups]  # (B, L, D) each
            for row, enc in enumerate(batch.encodings):
                text = start + row
                span = batch.token_slice(row)
                if level == "sentence":
                    keep = ~torch.tensor(enc.special_tokens_mask)
                    keep = keep if keep.any() else torch.ones_like(keep)  # a text of special tokens only
                    per_text[text] = [s[row, span][keep].mean(0).numpy() for s in states]
                else:
                    index = torch.tensor(wanted.get(text, []), dtype=torch.long)
                    per_text[text] = [s[row, span][index].numpy() for s in states]
            bar.update(len(batch))
    return [
        np.concatenate([np.atleast_2d(per_text[text][k]) for text in sorted(wanted)]) for k in range(len(groups))
    ]
