"""The dataset card of a published explanation dataset: YAML metadata and a Markdown body.

Metadata (validated by the Hub): the standard dataset-card fields (license, task, size, source
dataset, pretty name), the `configs` that map each config to its Parquet files, and an
`hf_seqinterp` block naming the model(s) with revision, every method with its parameters, the
faithfulness metrics when given, the row counts and the library and schema versions. The body
describes the data, shows how to load it back, renders one example as a Markdown table (the Hub
renders Markdown, not the HTML heat map's inline styles), and documents the schema.

Everything that comes from data (texts, labels, model and method names, parameter values, metric
names, the source dataset, the title) is rendered as data, never as markup: texts in fenced code
blocks, names and values as inline code, other strings Markdown-escaped (`visualize.markdown_*`).
Model names are the Hub id or the model folder's name, never a local path (`public_model_name`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import datasets
from huggingface_hub import DatasetCard, DatasetCardData

from .dataset import DATASET_SCHEMA_VERSION, SCHEMA, row_to_explanation
from .explanation import public_model_name
from .heads import HEAD_TYPES, ClassificationHead
from .visualize import markdown_block, markdown_code, markdown_text, render_markdown

SIZE_CATEGORIES = ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M"))


#: the Hub task category of each head's explanations
HUB_TASKS: dict[str, str] = {head.kind: head.hub_task for head in HEAD_TYPES}


def size_category(n: int) -> str:
    return next((name for limit, name in SIZE_CATEGORIES if n < limit), "1M<n<10M" if n < 10_000_000 else "n>10M")


def card_metadata(
    dataset: datasets.Dataset,
    configs: Mapping[str, Sequence[str]],
    *,
    split: str,
    config_by: str,
    license: str | None = None,
    source_dataset: str | None = None,
    model_id: str | None = None,
    metrics: Mapping[str, Mapping[str, float]] | None = None,
    pretty_name: str | None = None,
) -> DatasetCardData:
    """YAML metadata; `configs` maps each config name to its files in the repo."""
    from . import __version__

    models = [(public_model_name(name), rev) for name, rev in _unique(dataset, ["model_name", "model_revision"])]
    methods = methods_with_params(dataset)
    info: dict[str, Any] = {
        "library_version": __version__,
        "schema_version": DATASET_SCHEMA_VERSION,
        "config_by": config_by,
        "models": [{"name": model_id or name or None, "revision": rev} for name, rev in models],
        "methods": methods,
        "rows": len(dataset),
        "source_rows": len(set(dataset["source_index"])),
        "heads": sorted({json.loads(e or "{}").get("head", ClassificationHead.kind) for e in dataset["extras"]}),
    }
    if model_id and any(name != model_id for name, _ in models):  # folder names, never paths
        info["models_as_recorded"] = [name for name, _ in models]
    if source_dataset:
        info["source_dataset"] = source_dataset
    if metrics:
        info["metrics"] = {m: {k: float(v) for k, v in values.items()} for m, values in metrics.items()}
    return card_data(
        info, configs, split=split, rows=len(dataset), task_categories=sorted({HUB_TASKS[k] for k in info["heads"] if k in HUB_TASKS}),
        license=license, source_dataset=source_dataset, pretty_name=pretty_name or _title(info, source_dataset),
    )


def card_data(
    info: dict[str, Any],
    configs: Mapping[str, Sequence[str]],
    *,
    split: str,
    rows: int,
    task_categories: list[str],
    license: str | None,
    source_dataset: str | None,
    pretty_name: str,
) -> DatasetCardData:
    """The card's YAML: the standard fields, the configs and their files, and the `hf_seqinterp` block."""
    return DatasetCardData(
        license=license,
        pretty_name=pretty_name,
        task_categories=task_categories,
        tags=["explainability", "interpretability", "feature-attribution", "hf-seqinterp"],
        size_categories=[size_category(rows)],
        source_datasets=[source_dataset] if source_dataset else None,
        configs=[
            {"config_name": name, "data_files": [{"split": split, "path": list(files)}], "default": i == 0}
            for i, (name, files) in enumerate(configs.items())
        ],
        hf_seqinterp=info,
    )


def render_card(dataset: datasets.Dataset, data: DatasetCardData, repo_id: str, *, split: str) -> DatasetCard:
    """The full card: metadata, description, usage, example, schema."""
    info = data.to_dict()["hf_seqinterp"]
    configs = [c["config_name"] for c in data.to_dict()["configs"]]
    models = ", ".join(
        (markdown_code(m["name"]) if m["name"] else "an unnamed model")
        + (f" (revision {markdown_code(m['revision'])})" if m["revision"] else "")
        for m in info["models"]
    )
    source = markdown_code(info["source_dataset"]) if "source_dataset" in info else "a text dataset"
    rowed = bool(set(info.get("heads", ())) - {ClassificationHead.kind})  # explanations with a target axis
    method_rows = "\n".join(
        f"| {markdown_code(name)} | {'; '.join(_params_text(p) for p in params)} |" for name, params in info["methods"].items()
    )
    sections = [
        f"# {markdown_text(data.pretty_name)}",
        (
            f"Token attributions explaining the predictions of {models} on {info['source_rows']} rows of {source}, "
            f"computed with hf_seqinterp {info['library_version']}. Each row is one explanation: one source text, "
            f"one method, one explained target ({info['rows']} rows; one config per {info['config_by']}: "
            f"{', '.join(markdown_code(c) for c in configs)}). Attributions are raw (not normalised); a positive "
            "score supports the explained target."
            + (
                " Models with a target axis (a causal LM's continuation tokens) have one attribution row per "
                "explained output: column `rows` describes them, `attributions` holds them row after row."
                if rowed
                else ""
            )
        ),
        "## Methods\n\n| method | parameters |\n|---|---|\n" + method_rows,
    ]
    warned = sum(1 for w in dataset["warnings"] if w)
    if warned:
        sections[1] += f" {warned} of {info['rows']} rows carry warnings (column `warnings`: truncation, mixed precision)."
    if "metrics" in info:
        sections.append(_metrics_section(info["metrics"]))
    sections += [
        (
            "## Usage\n\n```python\nfrom hf_seqinterp import load_explanations\n\n"
            f'explanations = load_explanations("{repo_id}")   # list of hf_seqinterp.Explanation\n'
            + (
                "explanations[0].row(0).to_words()                 # word-level scores of the first row\n```\n\n"
                if rowed
                else "explanations[0].to_words()                        # word-level scores\n```\n\n"
            )
            + "or as a plain dataset:\n\n```python\nfrom datasets import load_dataset\n\n"
            f'ds = load_dataset("{repo_id}", "{configs[0]}", split="{split}")\n```'
        ),
        _example_section(dataset),
        "## Schema\n\nOne row per (source row, method), schema version "
        f"{DATASET_SCHEMA_VERSION}; `params` and `extras` are JSON objects.\n\n| column | type | description |\n"
        "|---|---|---|\n" + "\n".join(f"| `{n}` | {_type_name(f)} | {d} |" for n, (f, d) in SCHEMA.items()),
    ]
    return DatasetCard(f"---\n{data.to_yaml()}\n---\n\n" + "\n\n".join(sections) + "\n")


def _example_section(dataset: datasets.Dataset) -> str:
    """The first source row's explanations (those sharing its tokenisation) as a Markdown table."""
    head_rows = list(dataset.select(range(min(len(dataset), 64))))
    same_row = [r for r in head_rows if r["source_index"] == head_rows[0]["source_index"]]
    expls = [row_to_explanation(r) for r in same_row]
    expls = [e for e in expls if e.tokens == expls[0].tokens]
    head = expls[0]
    gold = "" if same_row[0]["label"] is None else f" (gold label id {same_row[0]['label']})"
    if head.rows is not None:  # a target axis: show the last row, which sees the most tokens
        last = head.rows[-1]
        return (
            "## Example\n\n"
            f"{markdown_block(head.text.strip())}\n\n"
            f"Explained: {head.n_rows} rows{gold}"
            + (f", explaining:\n\n{markdown_block(str(head.target_label))}\n\n" if head.target_label else ".\n\n")
            + f"Word scores of its last row ({markdown_code(str(last['label']))}, p = {last['probability']:.3f}), "
            "under each method's default aggregation; bold: the three largest magnitudes per method.\n\n"
            + render_markdown([e.row(e.n_rows - 1) for e in expls])
        )
    target = head.target_label or head.target
    prediction = head.predicted_label or head.predicted
    return (
        "## Example\n\n"
        f"{markdown_block(head.text.strip())}\n\n"
        f"Predicted: **{markdown_text(str(prediction))}**{gold}, p = {head.probabilities[head.predicted]:.3f}; "
        f"explained class: **{markdown_text(str(target))}**. "
        "Word scores (each method's default aggregation of its token scores); bold: the three largest "
        "magnitudes per method.\n\n" + render_markdown(expls)
    )


def _metrics_section(metrics: Mapping[str, Mapping[str, float]]) -> str:
    names = sorted({k for values in metrics.values() for k in values})
    lines = ["| method | " + " | ".join(markdown_text(n) for n in names) + " |", "|---|" + "---:|" * len(names)]
    for method, values in metrics.items():
        lines.append(f"| {markdown_code(method)} | " + " | ".join(f"{values[n]:.4g}" if n in values else "" for n in names) + " |")
    return "## Faithfulness\n\n" + "\n".join(lines)


def methods_with_params(dataset: datasets.Dataset) -> dict[str, list[dict[str, Any]]]:
    """{method: [each distinct parameter set it ran with]}, in order of appearance."""
    methods: dict[str, list[dict[str, Any]]] = {}
    for method, params in _unique(dataset, ["method", "params"]):
        methods.setdefault(method, []).append(json.loads(params))
    return methods


def _unique(dataset: datasets.Dataset, columns: list[str]) -> list[tuple]:
    seen: dict[tuple, None] = {}
    for values in zip(*(dataset[c] for c in columns)):
        seen.setdefault(tuple(values), None)
    return list(seen)


def _params_text(params: Mapping[str, Any]) -> str:
    return ", ".join(markdown_code(f"{k}={json.dumps(v)}") for k, v in params.items()) or "(none)"


def _type_name(feature: Any) -> str:
    if isinstance(feature, datasets.Value):
        return feature.dtype
    inner = _type_name(feature.feature)
    return f"list[{inner}]" if feature.length == -1 else f"list[{inner}, {feature.length}]"


def _title(info: Mapping[str, Any], source_dataset: str | None) -> str:
    model = info["models"][0]["name"] or "a model"
    return f"Explanations of {model}" + (f" on {source_dataset}" if source_dataset else "")
