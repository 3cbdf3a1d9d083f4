"""`Explanation`: the one result type every explainer produces and everything downstream consumes.

An Explanation covers one input and one method. It keeps every model token (special tokens
flagged), the character offsets and word ids needed to map tokens back to the text, the
attributions, the model's prediction on the full input, and everything needed to reproduce it
(method, parameters, score space, model name/revision, library version).

The target axis: a classifier's explanation has one target and one float32 attribution per token.
Heads with several explained outputs per input (a causal LM: one row per continuation token; a QA
model: the answer's start, end and span) hold attributions of shape (rows, tokens) and a description
of each row in `rows`; `row(k)` is row k as a one-target Explanation, so every single-target view
(words, top-k, HTML) applies to it.
"""

from __future__ import annotations

import json
import os
import re
import warnings
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal, NamedTuple

import numpy as np

from .errors import InvalidParameterError, OutputExistsError
from .text import TokenizedText

SCHEMA_VERSION = 2  # 2: the target axis (`rows`); version-1 files load unchanged

Aggregation = Literal["sum", "mean", "max", "absmax", "l2", "sum_renorm"]
AGGREGATIONS: tuple[str, ...] = ("sum", "mean", "max", "absmax", "l2", "sum_renorm")


class Word(NamedTuple):
    """One word of the input with its aggregated score.

    `start`/`end` are character offsets into the word's segment: `Explanation.text` (segment 0) or,
    for sentence pairs, `Explanation.text_pair` (segment 1); `token_indices` are the positions of the
    word's tokens in `Explanation.tokens`.
    """

    text: str
    score: float
    start: int
    end: int
    token_indices: tuple[int, ...]
    segment: int = 0


class Attribution(NamedTuple):
    """A token or word with its score, as returned by `Explanation.top_k`."""

    text: str
    score: float
    index: int


def aggregate(values: np.ndarray, how: str) -> float:
    """Reduce the scores of one word's tokens to a single number.

    `sum` keeps additive attributions additive (Σ words + Σ specials = Σ tokens); `mean` is length-
    normalised; `max`/`l2` suit non-negative saliencies; `absmax` keeps the signed value of largest
    magnitude (display only). `sum_renorm` sums here; renormalisation over words happens in `to_words`.
    """
    if how in ("sum", "sum_renorm"):
        return float(values.sum(dtype=np.float64))
    if how == "mean":
        return float(values.mean(dtype=np.float64))
    if how == "max":
        return float(values.max())
    if how == "absmax":
        return float(values[np.argmax(np.abs(values))])
    if how == "l2":
        return float(np.sqrt(np.square(values, dtype=np.float64).sum()))
    raise InvalidParameterError(f"aggregation={how!r} is not one of {', '.join(AGGREGATIONS)}.")


def public_model_name(name: str | None) -> str | None:
    """The model name an Explanation records: a Hub id as it is; for a local folder, the folder's
    name, never its path (an absolute path would publish the user's file system in every row)."""
    if not name:
        return name
    local = (
        os.path.isabs(name) or name.startswith((".", "~")) or "\\" in name
        or name.count("/") > 1 or os.path.exists(os.path.expanduser(name))
    )
    if not local:
        return name
    return re.split(r"[\\/]", name.rstrip("/\\"))[-1] or name


@dataclass
class Explanation(TokenizedText):
    """Attribution of one model prediction to the tokens of one input (a text or a text pair; the
    token fields are `TokenizedText`'s).

    Sign convention: a positive attribution supports `target`. Attributions are raw (never
    normalised), so additive methods keep their completeness/efficiency properties.

    With a target axis (`rows` set): `attributions` is (len(rows), tokens); row k describes its
    target in `rows[k]` ("target" id, "label", "probability", "position" of the output it reads,
    "visible": how many leading tokens it can see — later ones score exactly 0 — and per-row
    extras such as IG's "convergence_delta"); `target` is -1, `target_label` what the rows explain
    together (a causal LM's continuation, a QA model's answer) and `probabilities` each row's
    probability of its target.
    """

    attributions: np.ndarray
    target: int
    target_label: str | None
    probabilities: np.ndarray
    method: str
    params: dict[str, Any] = field(default_factory=dict)
    aggregation: str = "sum"
    labels: list[str] | None = None
    model_name: str | None = None
    model_revision: str | None = None
    warnings: list[str] = field(default_factory=list)
    extras: dict[str, Any] = field(default_factory=dict)
    library_version: str | None = None
    rows: list[dict[str, Any]] | None = None

    def __post_init__(self) -> None:
        shape = (-1,) if self.rows is None else (len(self.rows), len(self.tokens))
        self.attributions = np.asarray(self.attributions, dtype=np.float32).reshape(shape)
        self.probabilities = np.asarray(self.probabilities, dtype=np.float32).reshape(-1)
        super().__post_init__()
        if self.library_version is None:
            from . import __version__

            self.library_version = __version__

    # ----------------------------------------------------------------- derived views
    @property
    def score(self) -> str:
        """The score space that was explained: 'logit', 'log_prob' or 'prob'."""
        return self.params.get("score", "logit")

    @property
    def predicted(self) -> int:
        """The class the model predicts for the full input (-1 when no class distribution is kept)."""
        return int(np.argmax(self.probabilities)) if len(self.probabilities) and self.rows is None else -1

    @property
    def predicted_label(self) -> str | None:
        return self.labels[self.predicted] if self.labels and self.predicted >= 0 else None

    def token_fields(self) -> dict[str, Any]:
        return {**super().token_fields(), "attributions": None if self.rows is not None else self.attributions}

    # ----------------------------------------------------------------- the target axis
    @property
    def n_rows(self) -> int:
        """Explained targets: 1, or one per row of a target axis."""
        return 1 if self.rows is None else len(self.rows)

    def row(self, k: int) -> Explanation:
        """Row k of a target axis as a one-target Explanation over the tokens it can see (for a
        causal LM: the prompt and the continuation before token k); `self` when there is no axis."""
        if self.rows is None:
            if k not in (0, -1):
                raise InvalidParameterError(f"row={k}: this explanation has one target (row 0).")
            return self
        if not -len(self.rows) <= k < len(self.rows):
            raise InvalidParameterError(f"row={k}: this explanation has {len(self.rows)} rows.")
        info = self.rows[k]
        n = int(info.get("visible", len(self.tokens)))
        cut = {name: (None if value is None else list(value[:n])) for name, value in TokenizedText.token_fields(self).items()}
        return Explanation(
            text=self.text,
            tokens=self.tokens[:n],
            **cut,
            text_pair=self.text_pair,
            attributions=self.attributions[k, :n],
            target=int(info["target"]),
            target_label=info.get("label"),
            probabilities=np.zeros(0, dtype=np.float32),
            method=self.method,
            params=self.params,
            aggregation=self.aggregation,
            model_name=self.model_name,
            model_revision=self.model_revision,
            warnings=list(self.warnings),
            extras={**self.extras, **info},
            library_version=self.library_version,
        )

    def row_views(self) -> list[Explanation]:
        """`row(k)` for every row."""
        return [self.row(k) for k in range(self.n_rows)]

    def _single(self, view: str) -> None:
        if self.rows is not None:
            raise InvalidParameterError(
                f"This explanation has {len(self.rows)} rows (one per explained output); {view} applies to "
                f"one row: use explanation.row(k){view}, or explanation.row_views()."
            )

    def to_words(self, aggregation: str | None = None) -> list[Word]:
        """Word-level view: the scores of each word's tokens reduced with `aggregation`.

        Words come from the fast tokenizer's word ids (per segment, for pairs); special tokens are
        left out (their scores are in `special_scores()`). The default aggregation is the one the
        method declared: `sum` for additive methods, so Σ word scores + Σ special-token scores ==
        Σ token scores.
        """
        self._single(".to_words()")
        how = aggregation or self.aggregation
        if how not in AGGREGATIONS:
            raise InvalidParameterError(f"aggregation={how!r} is not one of {', '.join(AGGREGATIONS)}.")
        words = []
        for group in self.word_groups():
            start, end = self.word_span(group)
            score = aggregate(self.attributions[list(group.positions)], how)
            words.append(Word(self.segment_text(group.segment)[start:end], score, start, end, group.positions, group.segment))
        if how == "sum_renorm":
            total = sum(w.score for w in words)
            if total != 0:
                words = [w._replace(score=w.score / total) for w in words]
        return words

    def special_scores(self) -> dict[int, float]:
        """Scores of the special tokens, by token position."""
        self._single(".special_scores()")
        return {i: float(a) for i, (a, s) in enumerate(zip(self.attributions, self.special_tokens_mask)) if s}

    def top_k(
        self,
        k: int = 5,
        *,
        level: Literal["token", "word"] = "token",
        by: Literal["abs", "positive", "negative"] = "abs",
    ) -> list[Attribution]:
        """The `k` highest-scoring tokens (or words), special tokens excluded.

        `by="abs"` ranks by magnitude, `"positive"` keeps only scores > 0 (evidence for the target),
        `"negative"` only scores < 0 (evidence against), ranked by magnitude.
        """
        self._single(".top_k()")
        if level == "token":
            items = [
                Attribution(t, float(a), i)
                for i, (t, a, s) in enumerate(zip(self.tokens, self.attributions, self.special_tokens_mask))
                if not s
            ]
        elif level == "word":
            items = [Attribution(w.text, w.score, i) for i, w in enumerate(self.to_words())]
        else:
            raise InvalidParameterError(f"level={level!r}; use 'token' or 'word'.")
        if by == "positive":
            items = [x for x in items if x.score > 0]
        elif by == "negative":
            items = [x for x in items if x.score < 0]
        elif by != "abs":
            raise InvalidParameterError(f"by={by!r}; use 'abs', 'positive' or 'negative'.")
        return sorted(items, key=lambda x: -abs(x.score))[:k]

    # ----------------------------------------------------------------- serialisation
    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON dict; `Explanation.from_dict(e.to_dict())` gives back an equal object.

        float32 values survive exactly: every float32 is representable as a Python float.
        """
        out: dict[str, Any] = {"schema_version": SCHEMA_VERSION}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, np.ndarray):
                value = value.tolist()
            elif f.name == "offsets":
                value = [list(o) for o in value]
            out[f.name] = _jsonable(value)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Explanation:
        """Inverse of `to_dict`. Unknown keys (from a newer version) are dropped with a warning."""
        kwargs = known_fields(cls, data)
        kwargs["offsets"] = [tuple(o) for o in kwargs.get("offsets", [])]
        return cls(**kwargs)  # version 1 has no `rows`: one target, as before

    def to_json(self, **kwargs: Any) -> str:
        return json.dumps(self.to_dict(), **kwargs)

    @classmethod
    def from_json(cls, text: str) -> Explanation:
        return cls.from_dict(json.loads(text))

    def save(self, path: str | Path, *, overwrite: bool = False) -> Path:
        """Write the explanation as JSON; refuses to replace an existing file unless `overwrite=True`."""
        path = Path(path)
        if path.exists() and not overwrite:
            raise OutputExistsError(f"{path} exists; pass overwrite=True to replace it.")
        path.write_text(self.to_json(), encoding="utf-8")
        return path

    @classmethod
    def load(cls, path: str | Path) -> Explanation:
        return cls.from_json(Path(path).read_text(encoding="utf-8"))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Explanation):
            return NotImplemented
        return self.to_dict() == other.to_dict()

    # ----------------------------------------------------------------- rendering
    def to_html(
        self, *, full_page: bool = False, level: Literal["token", "word"] = "token", true_label: int | str | None = None
    ) -> str:
        """Self-contained HTML heat map (inline CSS, no scripts or network fetches); `level="word"`
        merges sub-words into words, `true_label` shows the gold class next to the prediction."""
        from .visualize import render_html

        return render_html([self], full_page=full_page, level=level, true_label=true_label)

    def _repr_html_(self) -> str:
        return self.to_html()

    def to_terminal(self, *, color: bool | None = None) -> str:
        """Heat map for a terminal (24-bit ANSI background colours; plain brackets when colour is off)."""
        from .visualize import render_terminal

        return render_terminal(self, color=color)

    def __repr__(self) -> str:
        if self.rows is not None:
            what = (
                f"rows={len(self.rows)}, continuation={self.target_label!r}" if self.target_label is not None
                else f"rows={[row_name(row) for row in self.rows]}"
            )
            return f"Explanation(method={self.method!r}, {what}, tokens={len(self)})"
        label = self.target_label if self.target_label is not None else self.target
        top = ", ".join(f"{a.text}={a.score:+.3g}" for a in self.top_k(3))
        return (
            f"Explanation(method={self.method!r}, target={label!r}, "
            f"p={self.probabilities[self.target]:.3f}, tokens={len(self)}, top=[{top}])"
            if self.target < len(self.probabilities)
            else f"Explanation(method={self.method!r}, target={label!r}, tokens={len(self)}, top=[{top}])"
        )


def known_fields(cls: type, data: dict[str, Any]) -> dict[str, Any]:
    """The entries of `data` that are fields of the dataclass `cls`; unknown keys (from a newer
    version) are dropped with a warning, `schema_version` silently."""
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - known - {"schema_version"})
    if unknown:
        warnings.warn(f"{cls.__name__}.from_dict ignores unknown keys: {unknown}", stacklevel=3)
    return {k: v for k, v in data.items() if k in known}


def row_name(row: dict[str, Any]) -> str:
    """How a row of a target axis is named in views: its label, and the text it covers where it
    has one (a token classifier's word or entity: "PER 'Angela'")."""
    label = str(row.get("label", row.get("target", "")))
    return f"{label} {row['text']!r}" if "text" in row else label


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value
