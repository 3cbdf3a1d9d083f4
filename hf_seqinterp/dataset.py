"""Explanations as a `datasets.Dataset`: the fixed explanation-dataset schema and lossless conversions.

One row per (source row, method): an Explanation is one text, one target, one method, so a row is
one Explanation plus where it came from (`source_index`, `source_id`, the gold `label`). Several
methods over the same corpus are several rows per source row (source-major order: row 0's methods,
then row 1's, ...). A long table keeps the Features identical whatever methods were run, so
datasets from different runs concatenate, and a per-method view is `ds.filter(method == ...)`
(on the Hub, one config per method). The method's parameters and its extras differ per method, so
they are JSON strings: typed nested features would change the schema with every method.

`row_to_explanation(explanation_to_row(e)) == e` for every Explanation: float32 values are stored as
float32, `None` word ids as nulls, params and extras as JSON (exact for floats).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

import datasets
import numpy as np
from datasets import Features, List, Value

from .errors import InvalidInputError
from .explanation import Explanation

#: version of the explanation-dataset schema below; bumped on any change to its columns
DATASET_SCHEMA_VERSION = 3  # 2: sentence pairs; 3: the target axis (`rows`)

#: column -> (feature, description). The descriptions are the documented schema (docs and cards).
SCHEMA: dict[str, tuple[Any, str]] = {
    "schema_version": (Value("int32"), "version of this schema (DATASET_SCHEMA_VERSION)"),
    "source_index": (Value("int64"), "position of the explained row in the source dataset"),
    "source_id": (Value("string"), "the source row's id column, or str(source_index) when there is none"),
    "text": (Value("string"), "the explained text (a sentence pair's first segment)"),
    "text_pair": (Value("string"), "a sentence pair's second segment (null for single texts)"),
    "label": (Value("int64"), "gold label of the source row (null when no label column was given)"),
    "method": (Value("string"), "registered explanation method"),
    "params": (Value("string"), "every parameter of the method, incl. the score space, as a JSON object"),
    "tokens": (List(Value("string")), "model tokens, special tokens included"),
    "input_ids": (List(Value("int64")), "token ids"),
    "offsets": (
        List(List(Value("int32"), length=2)),
        "[start, end) character span of each token in its segment (`text`, or `text_pair` where `segment_ids` is 1)",
    ),
    "word_ids": (List(Value("int32")), "word index of each token (null for special tokens)"),
    "special_tokens_mask": (List(Value("bool")), "true at special tokens"),
    "segment_ids": (List(Value("int32")), "sentence pairs: 0 (text) or 1 (text_pair) per token, null at specials"),
    "token_type_ids": (List(Value("int32")), "sentence pairs: the token type ids the model was given"),
    "attributions": (
        List(Value("float32")),
        "one attribution per token; positive supports `target` (with `rows`: row-major, one run of tokens per row)",
    ),
    "rows": (
        Value("string"),
        "heads with a target axis (a causal LM's continuation tokens): the explained rows as a JSON list; null otherwise",
    ),
    "target": (Value("int32"), "explained class id"),
    "target_label": (Value("string"), "explained class name"),
    "prediction": (Value("int32"), "class the model predicts for the full text"),
    "predicted_label": (Value("string"), "name of the predicted class"),
    "probabilities": (List(Value("float32")), "model output on the full text (softmax, sigmoid or raw)"),
    "labels": (List(Value("string")), "class names of the model, by id"),
    "aggregation": (Value("string"), "default reduction of sub-word scores to word scores"),
    "model_name": (Value("string"), "model name or path"),
    "model_revision": (Value("string"), "model commit hash, when loaded from the Hub"),
    "warnings": (List(Value("string")), "e.g. truncation, mixed precision"),
    "extras": (Value("string"), "method-specific outputs as a JSON object"),
    "library_version": (Value("string"), "hf_seqinterp version that computed the row"),
}

EXPLANATION_FEATURES = Features({name: feature for name, (feature, _) in SCHEMA.items()})

_DERIVED = ("schema_version", "source_index", "source_id", "label", "prediction", "predicted_label")
#: columns added after schema 1 (2: sentence pairs, 3: the target axis); older datasets lack them
_ADDED_COLUMNS = ("text_pair", "segment_ids", "token_type_ids", "rows")


def explanation_to_row(
    expl: Explanation, *, source_index: int | None = None, source_id: str | None = None, label: int | None = None
) -> dict[str, Any]:
    """One dataset row (a dict matching `EXPLANATION_FEATURES`) for an Explanation."""
    data = expl.to_dict()
    data.pop("schema_version")
    data["params"] = json.dumps(data["params"])
    data["extras"] = json.dumps(data["extras"])
    data["attributions"] = np.asarray(data["attributions"], dtype=np.float32).reshape(-1).tolist()
    data["rows"] = None if data["rows"] is None else json.dumps(data["rows"])
    return {
        "schema_version": DATASET_SCHEMA_VERSION,
        "source_index": source_index,
        "source_id": source_id if source_id is not None or source_index is None else str(source_index),
        "label": label,
        "prediction": expl.predicted,
        "predicted_label": expl.predicted_label,
        **data,
    }


def row_to_explanation(row: dict[str, Any]) -> Explanation:
    """The Explanation stored in a row (inverse of `explanation_to_row`)."""
    version = row.get("schema_version")
    if version is not None and version > DATASET_SCHEMA_VERSION:
        from . import __version__

        raise InvalidInputError(
            f"This row uses explanation-dataset schema {version}, newer than the {DATASET_SCHEMA_VERSION} "
            f"hf_seqinterp {__version__} reads; upgrade hf_seqinterp."
        )
    data = {k: v for k, v in row.items() if k not in _DERIVED}
    data["params"] = json.loads(data["params"])
    data["extras"] = json.loads(data["extras"])
    data["rows"] = json.loads(data["rows"]) if data.get("rows") is not None else None
    return Explanation.from_dict(data)


def explanations_to_dataset(
    explanations: Iterable[Explanation],
    *,
    source_indices: Sequence[int] | None = None,
    source_ids: Sequence[str] | None = None,
    labels: Sequence[int | None] | None = None,
) -> datasets.Dataset:
    """A Dataset with `EXPLANATION_FEATURES`; `source_index` defaults to each explanation's position."""
    expls = list(explanations)
    n = len(expls)
    for name, values in (("source_indices", source_indices), ("source_ids", source_ids), ("labels", labels)):
        if values is not None and len(values) != n:
            raise InvalidInputError(f"Got {len(values)} {name} for {n} explanations; pass one per explanation.")
    rows = [
        explanation_to_row(
            e,
            source_index=source_indices[i] if source_indices is not None else i,
            source_id=source_ids[i] if source_ids is not None else None,
            label=labels[i] if labels is not None else None,
        )
        for i, e in enumerate(expls)
    ]
    return datasets.Dataset.from_list(rows, features=EXPLANATION_FEATURES)


def in_source_order(dataset: datasets.Dataset) -> datasets.Dataset:
    """Rows sorted by `source_index`; the rows of one source row keep their order (stable sort)."""
    return dataset.select(np.argsort(np.asarray(dataset["source_index"], dtype=np.int64), kind="stable"))


def dataset_to_explanations(dataset: datasets.Dataset) -> list[Explanation]:
    """Every row of an explanation dataset as an Explanation, in row order."""
    missing = sorted(set(EXPLANATION_FEATURES) - set(dataset.column_names) - set(_DERIVED) - set(_ADDED_COLUMNS))
    if missing:
        raise InvalidInputError(
            f"This dataset is not an explanation dataset: it lacks the columns {missing} "
            f"(its columns: {dataset.column_names})."
        )
    return [row_to_explanation(row) for row in dataset]
