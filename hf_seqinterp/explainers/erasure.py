r"""Erasure (leave-one-out) and occlusion: how much the score drops when part of the input is removed.

Both score edited copies of the text through `masking` (tokens replaced per `replacement`, all copies
of all texts of a batch in large length-sorted forward batches) and need no gradients, so they work
for any model, including those without `inputs_embeds`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..adapter import Encoding
from ..errors import InvalidParameterError
from ..explanation import Explanation
from ..masking import FeatureLevel, span_groups
from ..validation import check_int
from ._coalitions import window_average, window_coalitions
from ._perturbation import PerturbationExplainer
from .base import register_explainer

Span = tuple[int, int]


@register_explainer("erasure")
class Erasure(PerturbationExplainer):
    r"""Leave-one-out erasure of tokens, words or given spans (Li, Monroe & Jurafsky 2016).

    For feature j (a token, a word, or a character span), with f the explained score:
        a_j = f(x) − f(x_{¬j})
    where x_{¬j} is x with j's tokens erased per `replacement` (default `delete`: the tokens are
    dropped, as in the paper). With `relative=True` (needs score="log_prob"), Li et al.'s relative
    log-likelihood form a_j = (S(x) − S(x_{¬j})) / |S(x)| with S = log p(target | x); dividing by |S|
    rather than S keeps "positive supports the target" (S < 0). It explodes when p → 1, which is
    why the absolute drop is the default.
    Spans are `[start, end)` character offsets into the text (one list for every text, or one list
    per text); a span covers the non-special tokens its characters overlap, and its score is
    spread evenly over them (also listed in `extras["span_scores"]`).
    Cost: M + 1 forwards per text (M features), batched. Reference: arXiv:1612.08220.
    """


    def __init__(
        self,
        adapter,
        *,
        level: FeatureLevel = "token",
        spans: Sequence[Span] | Sequence[Sequence[Span]] | None = None,
        replacement: str = "delete",
        relative: bool = False,
        max_batch_tokens: int = 8192,
        score: str = "logit",
    ):
        if relative and score != "log_prob":
            raise InvalidParameterError(
                f"relative=True is Li et al.'s relative drop in log-likelihood; it needs score='log_prob', got {score!r}."
            )
        self.spans = None if spans is None else _normalise_spans(spans)
        self.relative = bool(relative)
        self._text_spans: dict[int, Sequence[Span]] = {}
        super().__init__(adapter, level=level, replacement=replacement, max_batch_tokens=max_batch_tokens, score=score)

    def explain_encodings(self, encodings: Sequence[Encoding], targets, **kwargs: Any) -> list[Explanation]:
        if self.spans is None:
            return super().explain_encodings(encodings, targets, **kwargs)
        per_text = self.spans if _is_span_list(self.spans[0]) else [self.spans] * len(encodings)
        if len(per_text) != len(encodings):
            raise InvalidParameterError(
                f"spans has {len(per_text)} lists of spans for {len(encodings)} texts; give one list per text, "
                "or a single list of (start, end) pairs for every text."
            )
        self._text_spans = {id(enc): spans for enc, spans in zip(encodings, per_text)}
        try:
            return super().explain_encodings(encodings, targets, **kwargs)
        finally:
            self._text_spans = {}

    def _features(self, encoding: Encoding) -> list[np.ndarray]:
        if self.spans is None:
            return super()._features(encoding)
        return span_groups(encoding, self._text_spans[id(encoding)])

    def _coalitions(self, n_features: int) -> np.ndarray:
        return window_coalitions(n_features, 1, 1)

    def _attribute(self, z, values, full_value):
        drops = full_value - values
        if self.relative:
            drops = drops / abs(full_value)
        extras = {"span_scores": drops.tolist()} if self.spans is not None else {}
        return drops, extras


@register_explainer("occlusion")
class Occlusion(PerturbationExplainer):
    r"""Occlusion: the score drop when a sliding window of k tokens or words is replaced (Zeiler & Fergus 2014).

    Windows of `window` consecutive features start every `stride` features (plus one flush with the
    end, so every feature is covered). For window w, Δ_w = f(x) − f(x with w replaced); a feature's
    score is the mean Δ_w over the windows containing it, as in Captum's `Occlusion`. With
    window=1, stride=1 it is leave-one-out erasure. Cost: ⌈(M − k)/s⌉ + 2 forwards per text, batched.
    Reference: arXiv:1311.2901.
    """


    def __init__(
        self,
        adapter,
        *,
        window: int = 3,
        stride: int = 1,
        level: FeatureLevel = "token",
        replacement: str = "auto",
        max_batch_tokens: int = 8192,
        score: str = "logit",
    ):
        self.window = check_int("window", window)
        self.stride = check_int("stride", stride)
        super().__init__(adapter, level=level, replacement=replacement, max_batch_tokens=max_batch_tokens, score=score)

    def _coalitions(self, n_features: int) -> np.ndarray:
        return window_coalitions(n_features, self.window, self.stride)

    def _attribute(self, z, values, full_value):
        return window_average(z, full_value - values), {}


def _is_span_list(value: Any) -> bool:
    """True for a list of (start, end) pairs, False for a single pair."""
    return len(value) > 0 and not isinstance(value[0], (int, np.integer))


def _normalise_spans(spans: Any) -> list:
    """Spans as tuples: a list of (start, end) pairs, or a list of such lists (one per text)."""
    if isinstance(spans, (str, bytes)) or not len(spans):
        raise InvalidParameterError(f"spans={spans!r}; give (start, end) character spans, or None.")
    if _is_span_list(spans[0]):
        return [[tuple(span) for span in per_text] for per_text in spans]
    return [tuple(span) for span in spans]
