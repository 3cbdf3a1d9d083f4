"""Measuring explanations: faithfulness to the model, plausibility to humans, and method rankings.

    from hf_seqinterp import metrics
    metrics.aopc_comprehensiveness(explanations, adapter)            # per-explanation values
    metrics.faithfulness(explanations, adapter).summary()            # every faithfulness metric, one batched run
    metrics.plausibility(explanations, rationales).summary()         # token F1, IOU-F1, AUPRC
    metrics.evaluate_methods(adapter, texts).to_markdown()           # rank every applicable method
    metrics.load_metric("aopc_comprehensiveness")                    # the same, as an `evaluate` module
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import InvalidParameterError
from .alignment import (
    char_spans_to_token_mask,
    char_spans_to_token_spans,
    mask_to_spans,
    word_char_spans,
    words_to_char_spans,
)
from .data import EvaluationData, from_dataset, load_eraser, load_examples
from .evaluation import HIGHER_IS_BETTER, EvaluationReport, MethodResult, evaluate_methods
from .faithfulness import (
    ERASER_BINS,
    FAITHFULNESS_METRICS,
    FaithfulnessResult,
    FaithfulnessSettings,
    aopc_comprehensiveness,
    aopc_sufficiency,
    comprehensiveness,
    deletion_auc,
    faithfulness,
    insertion_auc,
    leave_one_out,
    sufficiency,
    tau_loo,
)
from .plausibility import (
    PLAUSIBILITY_METRICS,
    PlausibilityResult,
    auprc,
    plausibility,
    plausibility_arrays,
    span_matches,
    token_scores,
)
from .ranking import kendall_tau_b

EVALUATE_MODULES = Path(__file__).resolve().parent / "evaluate_modules"


def metric_module_path(name: str) -> Path:
    """Folder of the packaged `evaluate` module for metric `name`."""
    path = EVALUATE_MODULES / name / f"{name}.py"
    if not path.exists():
        available = sorted(p.name for p in EVALUATE_MODULES.iterdir() if (p / f"{p.name}.py").exists())
        raise InvalidParameterError(f"No evaluate module named {name!r}; available: {', '.join(available)}.")
    return path.parent


def load_metric(name: str, **kwargs: Any):
    """`evaluate.load(...)` of the packaged module for metric `name` (works offline)."""
    import evaluate

    return evaluate.load(str(metric_module_path(name)), **kwargs)


__all__ = [
    "ERASER_BINS",
    "EVALUATE_MODULES",
    "FAITHFULNESS_METRICS",
    "HIGHER_IS_BETTER",
    "PLAUSIBILITY_METRICS",
    "EvaluationData",
    "EvaluationReport",
    "FaithfulnessResult",
    "FaithfulnessSettings",
    "MethodResult",
    "PlausibilityResult",
    "aopc_comprehensiveness",
    "aopc_sufficiency",
    "auprc",
    "char_spans_to_token_mask",
    "char_spans_to_token_spans",
    "comprehensiveness",
    "deletion_auc",
    "evaluate_methods",
    "faithfulness",
    "from_dataset",
    "insertion_auc",
    "kendall_tau_b",
    "leave_one_out",
    "load_eraser",
    "load_examples",
    "load_metric",
    "mask_to_spans",
    "metric_module_path",
    "plausibility",
    "plausibility_arrays",
    "span_matches",
    "sufficiency",
    "tau_loo",
    "token_scores",
    "word_char_spans",
    "words_to_char_spans",
]
