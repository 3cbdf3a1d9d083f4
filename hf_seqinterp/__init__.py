"""hf_seqinterp: explain what Hugging Face sequence classifiers do.

    import hf_seqinterp
    adapter = hf_seqinterp.ModelAdapter.from_pretrained()          # the bundled sentiment model
    expl = hf_seqinterp.explain("a gripping, funny film", adapter, method="integrated_gradients")
    expl.to_words(), expl.top_k(3), expl.to_html()
    hf_seqinterp.metrics.evaluate_methods(adapter, texts).to_markdown()  # rank methods by faithfulness

Importing the package registers the `explain-text` pipeline task with transformers.
"""

from __future__ import annotations

__version__ = "0.1.0"

import functools
from typing import Any

from .adapter import DEFAULT_MODEL_DIR, ModelAdapter, default_model_path
from .callbacks import ExplanationCallback
from .errors import (
    CorruptShardError,
    HubError,
    InputTooLongError,
    InvalidInputError,
    InvalidParameterError,
    OutputFolderBusyError,
    SeqInterpError,
    UnknownMethodError,
    UnknownTargetError,
    UnsupportedModelError,
)
from .explainers import (
    DEFAULT_METHOD,
    Explainer,
    applicable_explainers,
    describe_methods,
    explain_with,
    get_explainer,
    list_methods,
    register_explainer,
)
from .explanation import Explanation, Word
from .mixin import ExplainableMixin, ExplainableModel, explainable
from .pipeline import ExplainTextPipeline, register_pipeline
from .representation import representation_erasure
from .visualize import render_html, render_markdown, render_terminal, save_html

register_pipeline()

# Dataset and Hub features import `datasets` and `accelerate`; load them on first use.
_LAZY = {
    "explain_dataset": "distributed",
    "push_explanations_to_hub": "hub",
    "load_explanations": "hub",
    "load_explanation_dataset": "hub",
    "EXPLANATION_FEATURES": "dataset",
    "explanation_to_row": "dataset",
    "row_to_explanation": "dataset",
    "explanations_to_dataset": "dataset",
    "dataset_to_explanations": "dataset",
    "load_text_dataset": "data",
    "explain_zero_shot": "zero_shot",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def explain(
    texts: Any,
    model: ModelAdapter | Any = None,
    method: str = DEFAULT_METHOD,
    target: Any = None,
    *,
    tokenizer: Any = None,
    **kwargs: Any,
) -> Explanation | list[Explanation]:
    """Explain `texts` with `method` on `model`.

    `model` is a ModelAdapter, a loaded model (with `tokenizer`), a path or Hub id, or None for the
    bundled default sentiment classifier (loaded once, then reused). Other arguments as in
    `ExplainableMixin.explain`.
    """
    if isinstance(model, ModelAdapter):
        adapter = model
    elif model is None:
        adapter = _default_adapter()
    elif isinstance(model, str):
        adapter = ModelAdapter.from_pretrained(model)
    else:
        adapter = explainable(model, tokenizer).explain_adapter()
    return explain_with(adapter, texts, method, target, **kwargs)


@functools.lru_cache(maxsize=1)
def _default_adapter() -> ModelAdapter:
    return ModelAdapter.from_pretrained()


__all__ = [
    "explain_zero_shot",
    "DEFAULT_METHOD",
    "DEFAULT_MODEL_DIR",
    "EXPLANATION_FEATURES",
    "CorruptShardError",
    "ExplainTextPipeline",
    "ExplainableMixin",
    "ExplainableModel",
    "Explainer",
    "Explanation",
    "ExplanationCallback",
    "HubError",
    "InputTooLongError",
    "InvalidInputError",
    "InvalidParameterError",
    "ModelAdapter",
    "OutputFolderBusyError",
    "SeqInterpError",
    "UnknownMethodError",
    "UnknownTargetError",
    "UnsupportedModelError",
    "Word",
    "__version__",
    "applicable_explainers",
    "dataset_to_explanations",
    "default_model_path",
    "describe_methods",
    "explain",
    "explain_dataset",
    "explainable",
    "explanation_to_row",
    "explanations_to_dataset",
    "get_explainer",
    "list_methods",
    "load_explanation_dataset",
    "load_explanations",
    "load_text_dataset",
    "push_explanations_to_hub",
    "register_explainer",
    "render_html",
    "render_markdown",
    "render_terminal",
    "representation_erasure",
    "row_to_explanation",
    "save_html",
]
