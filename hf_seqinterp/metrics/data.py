"""Evaluation data: texts and optional human rationales from a `datasets` dataset, a local file, a
saved dataset folder, a Hub id (all read by `hf_seqinterp.data.load_text_dataset`), or ERASER's
annotation JSONL + docs folder.

Rationales are kept as character spans of each text, whatever the source format: a column of
`[[start, end], ...]` character spans, or a column of word indices (`[3, 4, 7]`, or `[[start, end), ...]`
word ranges) into the text's whitespace-separated words. ERASER evidence is converted the same way
(its `start_token`/`end_token` index the whitespace-separated words of the document). Published
annotation files carry some empty (start == end) or inverted evidence spans: they mark nothing, so
they are skipped and counted in `EvaluationData.notes` (and the evaluation report), not rejected.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import InvalidInputError
from .alignment import Span, check_char_spans, words_to_char_spans


@dataclass
class EvaluationData:
    """Texts to explain, with human rationales (character spans per text) when the data has them."""

    texts: list[str]
    rationales: list[list[Span]] | None = None
    ids: list[str] | None = None
    source: str = ""
    pairs: list[str] | None = None
    #: what loading changed or skipped (shown in the evaluation report)
    notes: list[str] = field(default_factory=list)

    @property
    def inputs(self) -> list[str | tuple[str, str]]:
        """What is explained: the texts, or (text, text_pair) sentence pairs."""
        return list(self.texts) if self.pairs is None else list(zip(self.texts, self.pairs))

    def __len__(self) -> int:
        return len(self.texts)

    def head(self, n: int | None) -> EvaluationData:
        """The first `n` examples (all when n is None)."""
        if n is None:
            return self
        return EvaluationData(
            self.texts[:n],
            None if self.rationales is None else self.rationales[:n],
            None if self.ids is None else self.ids[:n],
            self.source,
            None if self.pairs is None else self.pairs[:n],
            self.notes,
        )


def _parse(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def from_dataset(
    dataset: Any,
    *,
    text_column: str | None = None,
    rationale_column: str | None = None,
    rationale_words_column: str | None = None,
    id_column: str | None = None,
    text_pair_column: str | None = None,
    source: str = "dataset",
) -> EvaluationData:
    """EvaluationData from a `datasets.Dataset` (or anything with `column_names` and `dataset[column]`).

    `rationale_column` holds character spans, `rationale_words_column` word indices or word ranges;
    values may be JSON strings (as in CSV files). Rationales index `text_column`'s texts;
    `text_pair_column` holds the second segment of sentence pairs.
    """
    from ..data import text_column as pick_text_column  # imports `datasets`: load it only when used

    columns = list(dataset.column_names)
    text_column = pick_text_column(dataset, text_column)
    for name in (rationale_column, rationale_words_column, id_column, text_pair_column):
        if name is not None and name not in columns:
            raise InvalidInputError(f"Column {name!r} is not in the data; its columns are {columns}.")
    texts = [str(t) for t in dataset[text_column]]
    rationales = None
    if rationale_column is not None:
        rationales = [check_char_spans(t, _parse(v) or []) for t, v in zip(texts, dataset[rationale_column])]
    elif rationale_words_column is not None:
        rationales = [words_to_char_spans(t, _parse(v) or []) for t, v in zip(texts, dataset[rationale_words_column])]
    ids = [str(i) for i in dataset[id_column]] if id_column else None
    pairs = [str(t) for t in dataset[text_pair_column]] if text_pair_column else None
    return EvaluationData(texts, rationales, ids, source, pairs)


def load_eraser(annotations: str | Path, docs_dir: str | Path, *, limit: int | None = None) -> EvaluationData:
    """ERASER annotations (`val.jsonl`: annotation_id, classification, evidences) with the document
    texts from `docs_dir`. The text is the document file as is; evidences become character spans."""
    annotations, docs_dir = Path(annotations), Path(docs_dir)
    if not docs_dir.is_dir():
        raise InvalidInputError(f"ERASER docs folder {docs_dir} does not exist.")
    texts, rationales, ids = [], [], []
    skipped = 0
    with annotations.open(encoding="utf-8") as lines:
        for line in lines:
            if limit is not None and len(texts) >= limit:
                break
            if not line.strip():
                continue
            record = json.loads(line)
            evidences = [ev for group in record.get("evidences", []) for ev in group]
            docids = {ev["docid"] for ev in evidences} or {record["annotation_id"]}
            if len(docids) != 1:
                raise InvalidInputError(
                    f"ERASER instance {record['annotation_id']} spans documents {sorted(docids)}; "
                    "only single-document tasks (e.g. movies) are supported."
                )
            docid = docids.pop()
            path = docs_dir / docid
            if not path.exists():
                raise InvalidInputError(f"ERASER document {docid} is missing from {docs_dir}.")
            text = path.read_text(encoding="utf-8").strip()
            spans = {(ev["start_token"], ev["end_token"]) for ev in evidences}
            ranges = sorted((start, end) for start, end in spans if start < end)
            skipped += len(spans) - len(ranges)
            texts.append(text)
            rationales.append(words_to_char_spans(text, ranges))
            ids.append(str(record["annotation_id"]))
    notes = [f"{skipped} empty or inverted ERASER evidence spans (start_token >= end_token) were skipped."] if skipped else []
    return EvaluationData(texts, rationales, ids, f"ERASER {annotations}", notes=notes)


def load_examples(
    source: Any,
    *,
    text_column: str | None = None,
    rationale_column: str | None = None,
    rationale_words_column: str | None = None,
    id_column: str | None = None,
    text_pair_column: str | None = None,
    split: str | None = None,
    eraser_docs: str | Path | None = None,
    limit: int | None = None,
) -> EvaluationData:
    """Load evaluation examples from a `datasets.Dataset`, ERASER JSONL (with `eraser_docs`), or
    anything `hf_seqinterp.data.load_text_dataset` reads (a local file, a `save_to_disk` folder, a Hub id)."""
    if eraser_docs is not None:
        return load_eraser(source, eraser_docs, limit=limit)
    columns = {
        "text_column": text_column,
        "rationale_column": rationale_column,
        "rationale_words_column": rationale_words_column,
        "id_column": id_column,
        "text_pair_column": text_pair_column,
    }
    if not isinstance(source, (str, Path)):
        return from_dataset(source, **columns).head(limit)
    from ..data import load_text_dataset

    dataset = load_text_dataset(source, split=split)
    if limit is not None:
        dataset = dataset.select(range(min(limit, len(dataset))))
    return from_dataset(dataset, source=str(source), **columns)
