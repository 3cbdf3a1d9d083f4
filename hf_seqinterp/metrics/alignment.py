"""Human rationales -> model tokens, through the tokenizer's character offsets.

Human rationales come as character spans `[(start, end), ...]` (end exclusive) of the text, or as
word indices of its whitespace-separated words (ERASER's `start_token`/`end_token` are such
indices). A model token belongs to a span when its character range overlaps the span; special
tokens and tokens with empty offsets never do. Spans that fall wholly outside the tokenised part of
the text (after truncation) align to nothing and are counted as lost.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from ..errors import InvalidInputError
from ..text import TokenizedText

Span = tuple[int, int]
_WORD = re.compile(r"\S+")


def word_char_spans(text: str) -> list[Span]:
    """Character span of every whitespace-separated word of `text`."""
    return [m.span() for m in _WORD.finditer(text)]


def words_to_char_spans(text: str, words: Sequence[int] | Sequence[Sequence[int]]) -> list[Span]:
    """Character spans of word indices: either single indices (consecutive ones merge into one span)
    or `[start, end)` word ranges (ERASER evidence)."""
    spans = word_char_spans(text)
    items = list(words)
    if not items:
        return []
    if all(isinstance(w, (int, np.integer)) for w in items):
        ranges, start = [], None
        ordered = sorted({int(w) for w in items})
        for i, w in enumerate(ordered):
            start = w if start is None else start
            if i + 1 == len(ordered) or ordered[i + 1] != w + 1:
                ranges.append((start, w + 1))
                start = None
    else:
        ranges = [(int(r[0]), int(r[1])) for r in items]
    out = []
    for start, end in ranges:
        if not 0 <= start < end <= len(spans):
            raise InvalidInputError(
                f"word range [{start}, {end}) is outside the text's {len(spans)} whitespace-separated words."
            )
        out.append((spans[start][0], spans[end - 1][1]))
    return out


def check_char_spans(text: str, spans: Sequence[Sequence[int]]) -> list[Span]:
    """Validate `[(start, end), ...]` character spans against `text`."""
    out = []
    for span in spans:
        if len(span) != 2 or not 0 <= int(span[0]) < int(span[1]) <= len(text):
            raise InvalidInputError(
                f"rationale span {tuple(span)!r} is not a (start, end) character range inside a text of "
                f"{len(text)} characters."
            )
        out.append((int(span[0]), int(span[1])))
    return out


def char_spans_to_token_spans(text: TokenizedText, spans: Sequence[Sequence[int]]) -> list[Span]:
    """Each character span as a `[first, last + 1)` range of token positions (those overlapping it);
    spans overlapping no token (e.g. truncated away) are dropped."""
    out = []
    for s, e in check_char_spans(text.text, spans):
        hit = text.tokens_in_span(s, e, allow_empty=True)
        if hit.size:
            out.append((int(hit[0]), int(hit[-1]) + 1))
    return out


def char_spans_to_token_mask(text: TokenizedText, spans: Sequence[Sequence[int]]) -> np.ndarray:
    """Bool mask over the text's tokens: True where a token overlaps a rationale span."""
    mask = np.zeros(len(text), dtype=bool)
    for s, e in check_char_spans(text.text, spans):
        mask[text.tokens_in_span(s, e, allow_empty=True)] = True
    return mask


def mask_to_spans(mask: np.ndarray) -> list[Span]:
    """Maximal runs of True in a bool mask, as `[start, end)` position ranges."""
    padded = np.concatenate([[False], np.asarray(mask, dtype=bool), [False]])
    edges = np.flatnonzero(np.diff(padded.astype(np.int8)))
    return [(int(a), int(b)) for a, b in zip(edges[::2], edges[1::2])]
