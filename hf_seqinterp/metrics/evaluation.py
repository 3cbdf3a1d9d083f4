"""Rank explanation methods on one model and data set: every applicable method, every metric.

    report = evaluate_methods(adapter, texts, rationales=spans)      # all registered methods that apply
    print(report.to_markdown()); report.save("evaluation/")          # results.md, results.json, deletion_curves.png

Each method explains the same tokenised texts (timed); faithfulness metrics of all methods are then
computed in one batched run (variants shared between methods, e.g. leave-one-out, are scored once);
plausibility metrics need human rationales.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..adapter import ModelAdapter, Target
from ..errors import InputTooLongError, InvalidParameterError
from ..explainers import applicable_explainers
from ..explanation import Explanation
from ..text import KEPT_TOKENS
from ..utils import progress_bar
from ..validation import TextInput, normalize_inputs
from .faithfulness import FAITHFULNESS_METRICS, FaithfulnessSettings, faithfulness
from .plausibility import PLAUSIBILITY_METRICS, plausibility

DEFAULT_FAITHFULNESS = ("aopc_comprehensiveness", "aopc_sufficiency", "deletion_auc", "insertion_auc", "tau_loo")
HIGHER_IS_BETTER: dict[str, bool] = {
    "comprehensiveness": True,
    "sufficiency": False,
    "aopc_comprehensiveness": True,
    "aopc_sufficiency": False,
    "deletion_auc": False,
    "insertion_auc": True,
    "tau_loo": True,
    "token_f1": True,
    "iou_f1": True,
    "auprc": True,
}
TITLES = {
    "comprehensiveness": "comp",
    "sufficiency": "suff",
    "aopc_comprehensiveness": "AOPC-comp",
    "aopc_sufficiency": "AOPC-suff",
    "deletion_auc": "deletion AUC",
    "insertion_auc": "insertion AUC",
    "tau_loo": "tau-LOO",
    "token_f1": "token F1",
    "iou_f1": "IOU-F1",
    "auprc": "AUPRC",
}


@dataclass
class MethodResult:
    """One method's dataset-level metrics, cost and mean deletion curve."""

    method: str
    params: dict[str, Any]
    metrics: dict[str, float]
    explain_seconds: float
    n_texts: int
    deletion_curve: list[float] | None = None
    details: dict[str, float] = field(default_factory=dict)

    @property
    def ms_per_text(self) -> float:
        return 1000 * self.explain_seconds / max(1, self.n_texts)


@dataclass
class EvaluationReport:
    """Results of `evaluate_methods`: rows, skipped methods, settings and the explanations themselves."""

    results: list[MethodResult]
    metrics: list[str]
    skipped: dict[str, str]
    settings: dict[str, Any]
    info: dict[str, Any]
    fractions: list[float]
    explanations: dict[str, list[Explanation]] = field(default_factory=dict, repr=False)

    @property
    def sort_metric(self) -> str:
        return self.settings.get("sort_by") or self.metrics[0]

    def ranks(self) -> dict[str, dict[str, int]]:
        """Method -> metric -> rank (1 = best; ties share the best rank; NaN ranks last)."""
        out: dict[str, dict[str, int]] = {r.method: {} for r in self.results}
        for metric in self.metrics:
            sign = -1.0 if HIGHER_IS_BETTER[metric] else 1.0
            keys = {r.method: sign * r.metrics[metric] if not math.isnan(r.metrics[metric]) else math.inf
                    for r in self.results}
            for method, key in keys.items():
                out[method][metric] = 1 + sum(other < key for other in keys.values())
        return out

    def ranked(self) -> list[MethodResult]:
        """Rows sorted by `sort_metric` (best first), then by mean rank."""
        ranks = self.ranks()
        return sorted(
            self.results,
            key=lambda r: (ranks[r.method][self.sort_metric], float(np.mean(list(ranks[r.method].values())))),
        )

    def to_markdown(self) -> str:
        ranks = self.ranks()
        head = ["rank", "method"] + [f"{TITLES[m]} {'↑' if HIGHER_IS_BETTER[m] else '↓'}" for m in self.metrics]
        head += ["mean rank", "explain s", "ms/text"]
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for position, row in enumerate(self.ranked(), 1):
            cells = [str(position), f"`{row.method}`"] + [f"{row.metrics[m]:.3f}" for m in self.metrics]
            cells += [f"{np.mean(list(ranks[row.method].values())):.2f}", f"{row.explain_seconds:.1f}",
                      f"{row.ms_per_text:.1f}"]
            lines.append("| " + " | ".join(cells) + " |")
        info = self.info
        first = (
            f"Model `{info.get('model')}`, {info.get('n_texts')} texts from {info.get('source') or 'memory'} "
            f"({info.get('n_truncated', 0)} truncated to their {KEPT_TOKENS[info.get('truncation_side', 'right')]} "
            f"{info.get('max_length')} tokens). "
            f"Sorted by {TITLES[self.sort_metric]}; ↑/↓: higher/lower is better."
        )
        notes = [first, *self.info.get("data_notes", [])]
        faith = self.settings.get("faithfulness")
        if faith:
            notes.append(
                f"Faithfulness: replacement `{faith['replacement']}`, score `{faith['score']}` of the explained target, "
                f"{faith['level']} features ranked by {faith['rank_by']} score, AOPC bins {faith['bins']} "
                f"(k = {faith['rounding']}(b·n)), {faith['curve_points']}-point deletion/insertion curves; "
                f"{self.info.get('n_variants', 0)} edited inputs scored in {self.info.get('metric_seconds', 0):.1f} s."
            )
        plaus = self.settings.get("plausibility")
        if plaus:
            size = "as many as the human rationale has" if plaus["top"] == "gold" else f"top {plaus['top']}"
            notes.append(
                f"Plausibility: predicted rationale = the highest-{plaus['rank_by']}-score tokens, {size}; "
                f"IOU threshold {plaus['iou_threshold']}; {self.info.get('plausibility_evaluated')} of "
                f"{self.info.get('n_texts')} texts have human rationale tokens inside the model's window."
            )
        params = "; ".join(f"`{r.method}` {json.dumps(r.params)}" for r in self.results)
        notes.append(f"Method parameters: {params}.")
        if self.skipped:
            notes.append("Not applicable: " + "; ".join(f"`{m}`: {why}" for m, why in self.skipped.items()) + ".")
        return "\n".join(lines) + "\n\n" + "\n".join(f"- {n}" for n in notes) + "\n"

    def to_dict(self) -> dict[str, Any]:
        ranks = self.ranks()
        return {
            "metrics": self.metrics,
            "higher_is_better": {m: HIGHER_IS_BETTER[m] for m in self.metrics},
            "results": [
                {"rank": i, "method": r.method, "params": r.params, "metrics": r.metrics, "ranks": ranks[r.method],
                 "explain_seconds": r.explain_seconds, "ms_per_text": r.ms_per_text, "n_texts": r.n_texts,
                 "deletion_curve": r.deletion_curve, "details": r.details}
                for i, r in enumerate(self.ranked(), 1)
            ],
            "fractions": self.fractions,
            "skipped": self.skipped,
            "settings": self.settings,
            "info": self.info,
        }

    def to_json(self, **kwargs: Any) -> str:
        return json.dumps(_finite(self.to_dict()), **kwargs)

    def plot_deletion_curves(self, path: str | Path) -> Path | None:
        """PNG of each method's mean deletion curve (None when deletion_auc was not computed).

        Every method has its own colour-blind-safe style (`method_style`); the legend sits outside
        the axes, so it never covers a curve.
        """
        rows = [r for r in self.ranked() if r.deletion_curve is not None]
        if not rows:
            return None
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(9.5, 4.8), dpi=120)
        for row in rows:
            label = f"{row.method} (AUC {row.metrics['deletion_auc']:.3f})"
            ax.plot(self.fractions, row.deletion_curve, label=label, linewidth=1.6, markersize=4, **method_style(row.method))
        score = self.settings["faithfulness"]["score"]
        ax.set_xlabel("fraction of tokens removed (highest-ranked first)")
        ax.set_ylabel(f"mean {score} of the explained class")
        ax.set_title(f"Deletion curves, {self.info.get('n_texts')} texts ({self.settings['faithfulness']['replacement']})")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0, title="lower AUC = more faithful", title_fontsize=8)
        path = Path(path)
        fig.savefig(path, bbox_inches="tight")
        plt.close(fig)
        return path

    def save(self, output_dir: str | Path) -> dict[str, Path]:
        """Write results.md, results.json and deletion_curves.png (when available) into `output_dir`."""
        out = Path(output_dir)
        out.mkdir(parents=True, exist_ok=True)
        paths = {"markdown": out / "results.md", "json": out / "results.json"}
        paths["markdown"].write_text(self.to_markdown(), encoding="utf-8")
        paths["json"].write_text(self.to_json(indent=2), encoding="utf-8")
        plot = self.plot_deletion_curves(out / "deletion_curves.png")
        if plot is not None:
            paths["plot"] = plot
        return paths


def _finite(value: Any) -> Any:
    """NaN/inf -> None, so the JSON is standard."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


# Okabe & Ito's colour-blind-safe palette (black is kept for the random baseline)
OKABE_ITO = ("#E69F00", "#56B4E9", "#009E73", "#F0E442", "#0072B2", "#D55E00", "#CC79A7")
LINE_STYLES = ("-", "--", ":", "-.")
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")


def method_style(method: str) -> dict[str, str]:
    """Matplotlib style of `method` in plots: the same in every plot, and distinct for each of the first
    28 registered methods (7 colours x 4 line styles, plus a marker); `random` is black, dashed."""
    if method == "random":
        return {"color": "black", "linestyle": "--", "marker": ""}
    from ..method_table import METHODS

    names = [name for name in METHODS if name != "random"]
    index = names.index(method) if method in names else len(names) + sum(map(ord, method))
    return {
        "color": OKABE_ITO[index % len(OKABE_ITO)],
        "linestyle": LINE_STYLES[index // len(OKABE_ITO) % len(LINE_STYLES)],
        "marker": MARKERS[index % len(MARKERS)],
    }


def evaluate_methods(
    adapter: ModelAdapter,
    texts: Sequence[TextInput],
    *,
    rationales: Sequence[Sequence[tuple[int, int]]] | None = None,
    methods: Sequence[str] | None = None,
    exclude: Sequence[str] = (),
    method_params: Mapping[str, Mapping[str, Any]] | None = None,
    metrics: Sequence[str] | None = None,
    target: Target | Sequence[Target] = None,
    head_options: Mapping[str, Any] | None = None,
    sort_by: str | None = None,
    top: str | float = "gold",
    iou_threshold: float = 0.5,
    batch_size: int | None = None,
    source: str = "",
    notes: Sequence[str] = (),
    progress: bool = True,
    **faithfulness_settings: Any,
) -> EvaluationReport:
    """Explain `texts` with every method and score each on every metric.

    Args:
        adapter: the model.
        texts: the texts or (text, text_pair) sentence pairs (truncated to the model's maximum
            length, and counted); rationales index the (first) texts.
        rationales: human rationales as character spans per text; enables plausibility metrics.
        methods: method names (default: every registered method that can be constructed with its
            defaults for this model; the others are listed in `report.skipped`).
        exclude: method names to leave out.
        method_params: method -> parameters (e.g. {"integrated_gradients": {"n_steps": 16}}).
        metrics: metric names (default: AOPC comp/suff, deletion/insertion AUC, tau-LOO, and
            token F1 / IOU-F1 / AUPRC when rationales are given).
        target: the class to explain (default: the predicted class, ERASER's convention); for a
            causal LM the continuation (default: generated), scored row by row (`faithfulness`).
        head_options: the model head's `explain` options (a causal LM's `generation`, ...).
        sort_by: metric that orders the table (default: the first metric).
        top, iou_threshold: plausibility settings (see `plausibility`).
        source, notes: where the texts come from, and what loading them skipped (`EvaluationData`),
            both shown in the report.
        **faithfulness_settings: `FaithfulnessSettings` fields (replacement, score, bins, ...).
    """
    metrics = _choose_metrics(metrics, rationales is not None)
    if sort_by is not None and sort_by not in metrics:
        raise InvalidParameterError(f"sort_by={sort_by!r} is not one of the computed metrics {metrics}.")
    faith_metrics = [m for m in metrics if m in FAITHFULNESS_METRICS]
    plaus_metrics = [m for m in metrics if m in PLAUSIBILITY_METRICS]
    config = FaithfulnessSettings.from_kwargs(**faithfulness_settings)
    explainers, skipped = applicable_explainers(adapter, methods, exclude=exclude, params=method_params)
    if not explainers:
        raise InvalidParameterError(f"No method applies to this model: {skipped}.")

    items, _ = normalize_inputs(list(texts))
    encodings, targets = adapter.prepare(items, target, truncation=True, **dict(head_options or {}))
    if rationales is not None and len(rationales) != len(encodings):
        raise InvalidParameterError(f"Got {len(rationales)} rationales for {len(encodings)} texts.")

    explained: dict[str, list[Explanation]] = {}
    seconds: dict[str, float] = {}
    # one bar over every (method, text): nested bars leave cursor escapes behind outside a terminal
    with progress_bar(len(explainers) * len(encodings), "explaining", enabled=progress, unit="text") as bar:
        for done, (name, explainer) in enumerate(explainers.items(), 1):
            bar.set_postfix_str(name)
            start = time.perf_counter()
            try:
                explained[name] = explainer.explain_encodings(
                    encodings, targets, batch_size=batch_size, progress=False, on_batch=bar.update
                )
            except InputTooLongError as err:  # raised before any work: the method does not apply to this data
                skipped[name] = str(err)
            else:
                seconds[name] = time.perf_counter() - start
            bar.update(done * len(encodings) - bar.n)
    if not explained:
        raise InvalidParameterError(f"No method applies to these texts: {skipped}.")

    per_method: dict[str, dict[str, float]] = {name: {} for name in explained}
    curves: dict[str, list[float]] = {}
    info: dict[str, Any] = {
        "model": adapter.model_name,
        "n_texts": len(encodings),
        "n_truncated": sum(bool(e.warnings) for e in encodings),
        "max_length": adapter.max_length,
        "truncation_side": adapter.truncation_side,
        "source": source,
        "data_notes": list(notes),
    }
    settings: dict[str, Any] = {"sort_by": sort_by or metrics[0]}
    if faith_metrics:
        start = time.perf_counter()
        flat = [e for name in explained for e in explained[name]]
        result = faithfulness(flat, adapter, faith_metrics, progress=progress, **config.to_dict())
        info.update(metric_seconds=time.perf_counter() - start, n_variants=result.n_variants)
        settings["faithfulness"] = result.settings
        for block, name in enumerate(explained):
            rows = slice(block * len(encodings), (block + 1) * len(encodings))
            for metric in faith_metrics:
                values = result.values[metric][rows]
                finite = values[~np.isnan(values)]
                per_method[name][metric] = float(finite.mean()) if finite.size else float("nan")
            if "deletion" in result.curves:
                curves[name] = result.curves["deletion"][rows].mean(axis=0).tolist()
    details: dict[str, dict[str, float]] = {name: {} for name in explained}
    if plaus_metrics:
        for name, expls in explained.items():
            summary = plausibility(expls, rationales, top=top, iou_threshold=iou_threshold,
                                   rank_by=config.rank_by).summary()
            per_method[name].update({m: summary[m] for m in plaus_metrics})
            details[name] = {k: v for k, v in summary.items() if k not in plaus_metrics}
            info["plausibility_evaluated"] = summary["n_evaluated"]
        settings["plausibility"] = {"top": top, "rank_by": config.rank_by, "iou_threshold": iou_threshold}

    results = [
        MethodResult(name, explainers[name].params, per_method[name], seconds[name], len(encodings),
                     curves.get(name), details[name])
        for name in explained
    ]
    return EvaluationReport(results, metrics, skipped, settings, info, config.fractions.tolist(), explained)


def _choose_metrics(metrics: Sequence[str] | None, has_rationales: bool) -> list[str]:
    if metrics is None:
        return list(DEFAULT_FAITHFULNESS) + (list(PLAUSIBILITY_METRICS) if has_rationales else [])
    metrics = [metrics] if isinstance(metrics, str) else list(metrics)
    unknown = [m for m in metrics if m not in HIGHER_IS_BETTER]
    if unknown or not metrics:
        raise InvalidParameterError(f"unknown metric(s) {unknown!r}; choose from {', '.join(HIGHER_IS_BETTER)}.")
    if not has_rationales and any(m in PLAUSIBILITY_METRICS for m in metrics):
        raise InvalidParameterError("plausibility metrics (token_f1, iou_f1, auprc) need human rationales.")
    return metrics
