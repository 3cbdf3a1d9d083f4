"""`explain_series_dataset`: a whole dataset of series explained on one or many processes, resumably.

The run is `explain_dataset`'s (`hf_seqinterp.distributed.run_sharded`): shards of `shard_size`
series written as Parquet the moment they are done, round robin over the processes
(`accelerate launch` / `torchrun`), a manifest that refuses to mix runs, a lock, checksums, and a
rerun with the same arguments computes only the missing shards. What differs is the rows: one per
(series, method) with `SERIES_FEATURES` (+ the source row's position in `source_index`), merged in
source order.

A row of the source dataset is a series in `values_column` (time × channels), with the covariates
an encoder–decoder forecaster takes in columns of their input names (`past_time_features`, ...).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import datasets
import numpy as np
import pyarrow as pa

from ..distributed import Methods, _has_accelerator, _json_params, checked_specs, run_sharded
from ..errors import InvalidInputError
from ..shards import plan_shards
from ..validation import check_batch_size, check_int
from .adapter import SeriesAdapter, SeriesTarget
from .base import get_series_method
from .data import channel_names as dataset_channel_names
from .data import load_ts
from .explanation import SCHEMA_VERSION, SERIES_FEATURES, series_explanation_to_row

DEFAULT_SHARD_SIZE = 256


def explain_series_dataset(
    model: SeriesAdapter | Any,
    dataset: datasets.Dataset | str | Path,
    methods: Methods = "integrated_gradients",
    *,
    output_dir: str | Path,
    values_column: str = "past_values",
    label_column: str | None = None,
    target: SeriesTarget = None,
    target_column: str | None = None,
    channel_names: Sequence[str] | None = None,
    batch_size: int | None = None,
    shard_size: int = DEFAULT_SHARD_SIZE,
    cpu: bool | None = None,
    overwrite: bool = False,
    progress: bool = True,
) -> datasets.Dataset:
    """Explain every series of `dataset` with every method; returns the series-explanation dataset.

    Args:
        model: a `SeriesAdapter`, or a transformers time-series model (wrapped with `channel_names`,
            by default those recorded in the dataset by `load_ts` / `series_dataset`).
        dataset: a `datasets.Dataset` with a series per row, or a `.ts` file.
        methods: a series method name, a list of names, or {name: {parameter: value}}.
        output_dir: where shards are written; rerunning with the same arguments resumes there.
        values_column: the column holding each series, (time, channels).
        label_column: copied into each row's `label` (class ids).
        target, target_column: the target for every series, or per series from a column.
        batch_size: series per batch (default: each method's own).
        shard_size: series per shard; a crash loses at most one shard per process.
        cpu: force the CPU (default: on machines without an accelerator).
        overwrite: delete the shards of a different earlier run in `output_dir` instead of failing.
        progress: show a progress bar on the main process.

    Returns the merged `datasets.Dataset` (`SERIES_FEATURES`): one row per (series, method), in
    source order, methods in the given order.
    """
    from accelerate import Accelerator

    started = time.perf_counter()
    batch_size = check_batch_size(batch_size)
    shard_size = check_int("shard_size", shard_size)
    if isinstance(dataset, (str, Path)):
        dataset = load_ts(dataset, channel_names=channel_names)
    if not isinstance(dataset, datasets.Dataset) or len(dataset) == 0:
        raise InvalidInputError("Pass a datasets.Dataset of series (or a .ts file) with at least one row.")
    specs = checked_specs(dataset, (values_column, label_column, target_column), target, target_column, methods,
                          get_series_method)
    adapter = model if isinstance(model, SeriesAdapter) else SeriesAdapter(
        model, channel_names=channel_names or dataset_channel_names(dataset) or None
    )
    accelerator = Accelerator(cpu=not _has_accelerator() if cpu is None else cpu)
    adapter.model.to(accelerator.device)
    explainers = {name: get_series_method(name).create(adapter, **params) for name, params in specs.items()}

    items = series_inputs(dataset, adapter, values_column)
    targets = list(dataset[target_column]) if target_column else [target] * len(items)
    labels = list(dataset[label_column]) if label_column else None
    adapter.prepare(items, targets)  # every series and target checked before any work
    manifest = {
        "kind": "series",
        "schema_version": SCHEMA_VERSION,
        "model_name": adapter.model_name,
        "methods": {name: _json_params(e) for name, e in explainers.items()},
        "values_column": values_column,
        "label_column": label_column,
        "target": json.loads(json.dumps(target)),
        "target_column": target_column,
        "num_rows": len(items),
        "data_sha256": _digest(items, targets, labels),
        "shard_size": shard_size,
        "shard_plan": "rows by decreasing length",
    }
    plan = plan_shards([len(_values(item)) for item in items], shard_size)

    def explain_shard(rows: Sequence[int], on_batch: Callable[[int], None] | None) -> pa.Table:
        out = [[] for _ in rows]
        for explainer in explainers.values():
            expls = explainer.explain([items[i] for i in rows], [targets[i] for i in rows], batch_size=batch_size, progress=False)
            for position, (i, expl) in enumerate(zip(rows, expls)):
                out[position].append(series_explanation_to_row(expl, source_index=i, label=labels[i] if labels else None))
            if on_batch is not None:
                on_batch(len(rows))
        return pa.Table.from_pylist([row for rows_of_one in out for row in rows_of_one], schema=SERIES_FEATURES.arrow_schema)

    return run_sharded(Path(output_dir), manifest, plan, list(explainers), explain_shard, accelerator,
                       features=SERIES_FEATURES, overwrite=overwrite, progress=progress, started=started)


def series_inputs(dataset: datasets.Dataset, adapter: SeriesAdapter, values_column: str = "past_values") -> list[Any]:
    """Each row's series as the adapter takes it: an array, or a dict with the model's covariates."""
    missing = [name for name in adapter.covariates if name not in dataset.column_names]
    if missing:
        raise InvalidInputError(
            f"{adapter.model_class} takes {', '.join(adapter.covariates)}; the dataset lacks the columns {missing}."
        )
    values = [np.asarray(v, dtype=np.float32) for v in dataset[values_column]]
    if not adapter.covariates:
        return values
    columns = {name: dataset[name] for name in adapter.covariates}
    return [{"past_values": v, **{name: columns[name][i] for name in columns}} for i, v in enumerate(values)]


def _values(item: Any) -> np.ndarray:
    return item["past_values"] if isinstance(item, dict) else item


def _digest(items: list[Any], targets: list[Any], labels: list[Any] | None) -> str:
    """sha256 of everything read from the source, so a resumed run knows it is the same data."""
    h = hashlib.sha256()
    for item in items:
        parts = item.items() if isinstance(item, dict) else [("past_values", item)]
        for name, value in sorted(parts, key=lambda part: part[0]):
            h.update(name.encode())
            h.update(np.ascontiguousarray(value, dtype=np.float64).tobytes())
        h.update(b"\x00")
    h.update(repr((targets, labels)).encode("utf-8"))
    return h.hexdigest()
