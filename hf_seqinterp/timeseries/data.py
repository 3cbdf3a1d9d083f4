r"""Multivariate series as a `datasets.Dataset`: UEA/sktime `.ts` files and numpy arrays.

One row per series: `past_values`, a (time, channels) float32 matrix (the layout transformers'
time-series models take as `past_values`), and `label` (a `ClassLabel` for classification sets,
float32 for regression sets). Series may differ in length; a model with a fixed context length
takes them through `fixed_length`. Missing values (`?` in a `.ts` file) are NaN; the series
adapter passes them to the model as unobserved. Channel names live in the dataset's description
(`channel_names(dataset)`), so they survive `select`, `filter` and `save_to_disk`.

The `.ts` format (Löning et al., sktime; the UEA/UCR archive): `#` comments, `@key value` headers
up to `@data`, then one series per line: the channels separated by `:`, the values of a channel by
`,`, the class label (`@classLabel true ...`) or regression target (`@targetLabel true`) last.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import datasets
import numpy as np
from datasets import ClassLabel, Features, List, Value

from ..errors import InvalidInputError

SERIES_COLUMN = "past_values"


def load_ts(path: str | Path, *, channel_names: Sequence[str] | None = None) -> datasets.Dataset:
    """A `.ts` file as a Dataset (`past_values` (time, channels), `label`).

    `channel_names` name the channels (default "dim_0", "dim_1", ... as sktime names them).
    Time-stamped `.ts` files (`@timeStamps true`) are refused: their values carry explicit times.
    """
    path = Path(path)
    if not path.is_file():
        raise InvalidInputError(f"{path} is not a file; pass the path of a .ts file (e.g. BasicMotions_TRAIN.ts).")
    header: dict[str, str] = {}
    series, labels = [], []
    in_data = False
    for number, raw in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if not in_data:
            if not line.startswith("@"):
                raise InvalidInputError(f"{path}:{number}: expected a @header or @data before the values, got {line[:40]!r}.")
            key, _, value = line[1:].partition(" ")
            header[key.lower()] = value.strip()
            in_data = key.lower() == "data"
            classes, target = _label_kind(header)
            if header.get("timestamps", "false").lower() == "true":
                raise InvalidInputError(f"{path}: time-stamped .ts files are not supported; export the values without stamps.")
            continue
        fields = line.split(":")
        if classes is not None or target:
            *fields, label = fields
            labels.append(label.strip())
        try:
            channels = [np.array([np.nan if v.strip() == "?" else float(v) for v in f.split(",")]) for f in fields]
        except ValueError as err:
            raise InvalidInputError(f"{path}:{number}: a value is not a number ({err}).") from None
        if len({len(c) for c in channels}) != 1:
            raise InvalidInputError(
                f"{path}:{number}: the channels of one series differ in length ({[len(c) for c in channels]})."
            )
        series.append(np.stack(channels, axis=1))
    if not in_data or not series:
        raise InvalidInputError(f"{path} has no @data section with series; is it a .ts file?")
    if classes is not None:
        unknown = sorted(set(labels) - set(classes))
        if unknown:
            raise InvalidInputError(f"{path}: labels {unknown} are not among @classLabel {classes}.")
        return series_dataset(series, [classes.index(v) for v in labels], label_names=classes,
                              channel_names=channel_names, name=header.get("problemname"))
    return series_dataset(series, [float(v) for v in labels] if target else None,
                          channel_names=channel_names, name=header.get("problemname"))


def _label_kind(header: dict[str, str]) -> tuple[list[str] | None, bool]:
    """(class names when `@classLabel true ...`, whether `@targetLabel true`)."""
    words = header.get("classlabel", "false").split()
    classes = words[1:] if words and words[0].lower() == "true" else None
    return classes, header.get("targetlabel", "false").lower() == "true"


def series_dataset(
    values: np.ndarray | Sequence[np.ndarray],
    labels: Sequence[int] | Sequence[float] | None = None,
    *,
    label_names: Sequence[str] | None = None,
    channel_names: Sequence[str] | None = None,
    name: str | None = None,
) -> datasets.Dataset:
    """Series as a Dataset: `values` (series, time, channels), or one (time, channels) array per
    series; `labels` class ids (with `label_names`) or regression targets (floats)."""
    arrays = [np.asarray(v, dtype=np.float32) for v in values]
    if not arrays or any(a.ndim != 2 for a in arrays):
        raise InvalidInputError("Pass series as an array (series, time, channels) or a list of (time, channels) arrays.")
    n_channels = arrays[0].shape[1]
    if any(a.shape[1] != n_channels for a in arrays):
        raise InvalidInputError(f"Every series needs the same channels; got {sorted({a.shape[1] for a in arrays})}.")
    names = list(channel_names) if channel_names is not None else [f"dim_{c}" for c in range(n_channels)]
    if len(names) != n_channels:
        raise InvalidInputError(f"Got {len(names)} channel names for {n_channels} channels.")
    columns: dict[str, Any] = {SERIES_COLUMN: [a.tolist() for a in arrays]}
    features: dict[str, Any] = {SERIES_COLUMN: List(List(Value("float32")))}
    if labels is not None:
        if len(labels) != len(arrays):
            raise InvalidInputError(f"Got {len(labels)} labels for {len(arrays)} series.")
        columns["label"] = list(labels)
        features["label"] = ClassLabel(names=list(label_names)) if label_names is not None else Value("float32")
    info = datasets.DatasetInfo(
        description=json.dumps({"channel_names": names, "problem": name}), features=Features(features)
    )
    return datasets.Dataset.from_dict(columns, info=info)


def channel_names(dataset: datasets.Dataset) -> list[str]:
    """The channel names a series dataset records ("dim_0", ... when it records none)."""
    try:
        return list(json.loads(dataset.info.description or "{}")["channel_names"])
    except (ValueError, KeyError, TypeError):
        n = len(dataset[0][SERIES_COLUMN][0])
        return [f"dim_{c}" for c in range(n)]


def fixed_length(values: np.ndarray, length: int) -> np.ndarray:
    """A (time, channels) series cut or padded to `length` steps for a model with a fixed context:
    longer series keep their last `length` steps; shorter ones are padded in front with NaN (unobserved:
    the series adapter gives the model 0 there and an observed mask of 0)."""
    values = np.asarray(values, dtype=np.float32)
    if len(values) >= length:
        return values[len(values) - length :]
    pad = np.full((length - len(values), values.shape[1]), np.nan, dtype=np.float32)
    return np.concatenate([pad, values])
