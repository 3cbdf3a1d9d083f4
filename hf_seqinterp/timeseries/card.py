"""The dataset card of a published series-explanation dataset (`push_explanations_to_hub` with the
rows of `explain_series_dataset` or `series_explanations_to_dataset`).

Metadata: the standard fields and configs (`card.card_data`, shared with text cards) and an
`hf_seqinterp` block naming the model(s), every method with its parameters, the heads, the channels
and the row counts. Body: what the data is, the methods, the **variable importance** per method
(mean |Σ_t A[0, t, c]| over the explanations, the first row of each), how to load it back, the
first series' channel totals per method, and the schema. Names, labels and parameter values are
rendered as data (inline code or escaped Markdown), never as markup.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import datasets
import numpy as np
from huggingface_hub import DatasetCard

from ..card import _metrics_section, _params_text, _type_name, _unique, card_data, methods_with_params
from ..explanation import public_model_name
from ..visualize import markdown_code, markdown_text
from .explanation import SCHEMA_VERSION, SERIES_SCHEMA

#: the Hub task category of each series head (classification and regression have none)
SERIES_HUB_TASKS = {"prediction": "time-series-forecasting"}


def series_card(
    dataset: datasets.Dataset,
    configs: Mapping[str, Sequence[str]],
    repo_id: str,
    *,
    split: str,
    config_by: str,
    license: str | None = None,
    source_dataset: str | None = None,
    model_id: str | None = None,
    metrics: Mapping[str, Mapping[str, float]] | None = None,
    pretty_name: str | None = None,
) -> DatasetCard:
    """YAML metadata and Markdown body for a series-explanation dataset; `configs` maps each config
    to its files in the repo."""
    from .. import __version__

    models = [public_model_name(name) for (name,) in _unique(dataset, ["model_name"])]
    methods = methods_with_params(dataset)
    channels = dataset[0]["channel_names"]
    kinds = sorted(set(dataset["kind"]))
    info: dict[str, Any] = {
        "library_version": __version__,
        "schema_version": SCHEMA_VERSION,
        "modality": "time series",
        "config_by": config_by,
        "models": [{"name": model_id or name or None} for name in models],
        "methods": methods,
        "heads": kinds,
        "channels": channels,
        "rows": len(dataset),
        "source_rows": len(set(dataset["source_index"])),
    }
    if source_dataset:
        info["source_dataset"] = source_dataset
    if metrics:
        info["metrics"] = {m: {k: float(v) for k, v in values.items()} for m, values in metrics.items()}
    model = info["models"][0]["name"] or "a time-series model"
    data = card_data(
        info, configs, split=split, rows=len(dataset), task_categories=sorted({SERIES_HUB_TASKS[k] for k in kinds if k in SERIES_HUB_TASKS}),
        license=license, source_dataset=source_dataset,
        pretty_name=pretty_name or f"Explanations of {model}" + (f" on {source_dataset}" if source_dataset else ""),
    )
    names = ", ".join(markdown_code(m["name"]) if m["name"] else "an unnamed model" for m in info["models"])
    source = markdown_code(source_dataset) if source_dataset else "a series dataset"
    method_rows = "\n".join(f"| {markdown_code(name)} | {'; '.join(_params_text(p) for p in params)} |" for name, params in methods.items())
    sections = [
        f"# {markdown_text(data.pretty_name)}",
        (
            f"Attributions over time × channel explaining {names} ({', '.join(kinds)}) on {info['source_rows']} series of "
            f"{source}, computed with hf_seqinterp {__version__}. Each row is one explanation: one series, one method, "
            f"one or more explained targets (column `rows`), an attribution per (target, time step, channel) "
            f"({info['rows']} rows; one config per {config_by}: {', '.join(markdown_code(c) for c in configs)}). "
            f"Channels: {', '.join(markdown_code(c) for c in channels)}. A positive attribution supports the target."
        ),
        "## Methods\n\n| method | parameters |\n|---|---|\n" + method_rows,
        _importance_section(dataset, channels),
    ]
    if "metrics" in info:
        sections.append(_metrics_section(info["metrics"]))
    sections += [
        (
            "## Usage\n\n```python\nfrom hf_seqinterp.hub import load_explanations\n\n"
            f'explanations = load_explanations("{repo_id}")   # list of hf_seqinterp.timeseries.SeriesExplanation\n'
            "explanations[0].channel_totals()                  # variable importance of its first row\n```\n\n"
            "or as a plain dataset:\n\n```python\nfrom datasets import load_dataset\n\n"
            f'ds = load_dataset("{repo_id}", "{next(iter(configs))}", split="{split}")\n```'
        ),
        _example_section(dataset, channels),
        f"## Schema\n\nOne row per (series, method), schema version {SCHEMA_VERSION}; `params`, `rows` and `extras` "
        "are JSON.\n\n| column | type | description |\n|---|---|---|\n"
        + "\n".join(f"| `{n}` | {_type_name(f)} | {d} |" for n, (f, d) in SERIES_SCHEMA.items()),
    ]
    return DatasetCard(f"---\n{data.to_yaml()}\n---\n\n" + "\n\n".join(sections) + "\n")


def _channel_totals(attributions: list) -> np.ndarray:
    """Σ over time of the first row's attributions, per channel."""
    return np.asarray(attributions[0], dtype=np.float64).sum(0)


def _importance_section(dataset: datasets.Dataset, channels: list[str]) -> str:
    """Mean |channel total| per method and channel, over the explanations with these channels."""
    totals: dict[str, list[np.ndarray]] = {}
    for row in dataset.select_columns(["method", "channel_names", "attributions"]):
        if row["channel_names"] == channels and row["attributions"]:
            totals.setdefault(row["method"], []).append(np.abs(_channel_totals(row["attributions"])))
    header = "| channel | " + " | ".join(markdown_code(m) for m in totals) + " |"
    lines = [header, "|---|" + "---:|" * len(totals)]
    means = {m: np.mean(v, axis=0) for m, v in totals.items()}
    for c, name in enumerate(channels):
        lines.append(f"| {markdown_code(name)} | " + " | ".join(f"{means[m][c]:.4g}" for m in totals) + " |")
    return (
        "## Variable importance\n\nMean |Σ over time of the attributions| per channel (the first explained row of each "
        "explanation), by method:\n\n" + "\n".join(lines)
    )


def _example_section(dataset: datasets.Dataset, channels: list[str]) -> str:
    """The first series' channel totals (its first row) under each method."""
    head = list(dataset.select(range(min(len(dataset), 64))))
    first = [r for r in head if r["source_index"] == head[0]["source_index"] and r["channel_names"] == channels]
    label = json.loads(first[0]["rows"])[0].get("label")
    gold = "" if first[0]["label"] is None else f" (gold label id {first[0]['label']})"
    lines = ["| channel | " + " | ".join(markdown_code(r["method"]) for r in first) + " |", "|---|" + "---:|" * len(first)]
    sums = [_channel_totals(r["attributions"]) for r in first]
    for c, name in enumerate(channels):
        lines.append(f"| {markdown_code(name)} | " + " | ".join(f"{s[c]:+.4g}" for s in sums) + " |")
    return (
        f"## Example\n\nSeries {first[0]['source_index']}{gold}, explained target {markdown_code(str(label))}: "
        "Σ over time of each channel's attributions.\n\n" + "\n".join(lines)
    )
