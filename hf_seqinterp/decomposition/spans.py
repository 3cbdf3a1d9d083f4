"""Relevant sets from user input: phrases, character spans and token ranges, and their scored results.

A span is given as
* a phrase string: its first whole-word, case-insensitive occurrence in the text;
* a pair (start, end): a half-open character range, or a token-index range with `tokens=True`;
* a list of those: their union (a set of spans, e.g. two separated words).
Character ranges select every non-special token whose characters overlap the range.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from ..adapter import Encoding
from ..errors import InvalidParameterError

SpanPiece = str | tuple[int, int]
Span = SpanPiece | Sequence[SpanPiece]


@dataclass(frozen=True)
class SpanScore:
    """CD score of one relevant set: β of the target logit (the classifier bias is in γ)."""

    tokens: tuple[int, ...]
    text: str
    score: float

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "tokens": list(self.tokens)}


@dataclass(frozen=True)
class Interaction:
    """Interaction of two disjoint spans: s(A ∪ B) − s(A) − s(B)."""

    a: SpanScore
    b: SpanScore
    joint: SpanScore

    @property
    def value(self) -> float:
        return self.joint.score - self.a.score - self.b.score

    def to_dict(self) -> dict[str, Any]:
        return {
            "a": self.a.to_dict(),
            "b": self.b.to_dict(),
            "joint": self.joint.to_dict(),
            "interaction": self.value,
        }


def phrase_occurrences(text: str, phrase: str) -> list[tuple[int, int]]:
    """Character ranges of every whole-word, case-insensitive occurrence of `phrase` in `text`."""
    if not isinstance(phrase, str) or not phrase.strip():
        raise InvalidParameterError(f"A phrase must be a non-empty string, got {phrase!r}.")
    pattern = r"(?<!\w)" + re.escape(phrase.strip()) + r"(?!\w)"
    return [m.span() for m in re.finditer(pattern, text, flags=re.IGNORECASE)]


def resolve_span(enc: Encoding, span: Span, *, tokens: bool = False) -> tuple[int, ...]:
    """Sorted token indices of a span (see the module docstring for the accepted forms)."""
    pieces = [span] if isinstance(span, (str, tuple)) else list(span)
    if not pieces:
        raise InvalidParameterError(
            "An empty list is not a span; pass a phrase, a (start, end) pair or a list of them."
        )
    chosen: set[int] = set()
    for piece in pieces:
        if isinstance(piece, str):
            found = phrase_occurrences(enc.text, piece)
            if not found:
                raise InvalidParameterError(f"Phrase {piece!r} does not occur in the text {enc.text!r}.")
            chosen.update(enc.tokens_in_span(*found[0]).tolist())
        elif isinstance(piece, tuple) and len(piece) == 2:
            if tokens:
                start, end = piece
                if not (isinstance(start, int) and isinstance(end, int)) or not 0 <= start < end <= len(enc):
                    raise InvalidParameterError(
                        f"Token range {piece!r} is not a non-empty range inside the text's {len(enc)} tokens."
                    )
                chosen.update(range(start, end))
            else:
                chosen.update(enc.tokens_in_span(*piece).tolist())
        else:
            raise InvalidParameterError(
                f"Cannot read {piece!r} as a span: use a phrase string, a (start, end) tuple, or a list of them."
            )
    return tuple(sorted(chosen))


def span_text(enc: Encoding, token_indices: Sequence[int]) -> str:
    """The text a token set covers: each run of adjacent tokens as in the input, runs joined by ' … '."""
    runs: list[list[int]] = []
    for t in sorted(token_indices):
        if runs and runs[-1][-1] == t - 1:
            runs[-1].append(t)
        else:
            runs.append([t])
    pieces = []
    for run in runs:
        real = [t for t in run if not enc.special_tokens_mask[t]]
        if not real:
            pieces.append(" ".join(enc.tokens[t] for t in run))
            continue
        start, end = enc.offsets[real[0]][0], enc.offsets[real[-1]][1]
        pieces.append(enc.text[start:end].strip())
    return " … ".join(pieces)
