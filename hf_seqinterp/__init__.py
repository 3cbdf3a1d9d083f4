"""hf_seqinterp: explain what Hugging Face sequence classifiers do.

    import hf_seqinterp
    adapter = hf_seqinterp.ModelAdapter.from_pretrained()          # the bundled sentiment model
    expl = hf_seqinterp.explain("a gripping, funny film", adapter, method="integrated_gradients")
    expl.to_words(), expl.top_k(3), expl.to_html()
    hf_seqinterp.metrics.evaluate_methods(adapter, texts).to_markdown()  # rank methods by faithfulness

Names load on first use (torch and transformers with the first model-related name; `datasets`,
`accelerate` and training code only with the features that need them), so `import hf_seqinterp` and
the `hf-seqinterp` command stay fast. The `explain-text` pipeline task is registered with transformers
on first use of the package, or at import when transformers is already imported;
`hf_seqinterp.register_pipeline()` registers it explicitly.
"""

from __future__ import annotations

__version__ = "0.1.0"

import importlib
import sys
from typing import TYPE_CHECKING, Any

from .errors import (
    CorruptShardError,
    HubError,
    InputTooLongError,
    InvalidInputError,
    InvalidParameterError,
    MissingDependencyError,
    OutputFolderBusyError,
    SeqInterpError,
    UnknownMethodError,
    UnknownTargetError,
    UnsupportedModelError,
)
from .method_table import DEFAULT_METHOD

if TYPE_CHECKING:
    from .adapter import ModelAdapter
    from .explanation import Explanation

# public name -> submodule that defines it
_LAZY = {
    "DEFAULT_MODEL_DIR": "adapter",
    "ModelAdapter": "adapter",
    "default_model_path": "adapter",
    "ExplanationCallback": "callbacks",
    "Explainer": "explainers",
    "applicable_explainers": "explainers",
    "describe_methods": "explainers",
    "explain_with": "explainers",
    "get_explainer": "explainers",
    "list_methods": "explainers",
    "register_explainer": "explainers",
    "Explanation": "explanation",
    "Word": "explanation",
    "ExplainableMixin": "mixin",
    "ExplainableModel": "mixin",
    "explainable": "mixin",
    "ExplainTextPipeline": "pipeline",
    "register_pipeline": "pipeline",
    "representation_erasure": "representation",
    "render_html": "visualize",
    "render_markdown": "visualize",
    "render_terminal": "visualize",
    "save_html": "visualize",
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
    "PhraseScores": "surrogate",
    "SurrogateReport": "surrogate",
    "fit_surrogates": "surrogate",
    "phrase_scores": "surrogate",
}


def _register_pipeline() -> None:
    importlib.import_module(".pipeline", __name__).register_pipeline()


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        try:  # subpackages and modules: hf_seqinterp.metrics, hf_seqinterp.rationale, ...
            return importlib.import_module(f".{name}", __name__)
        except ModuleNotFoundError as err:
            if err.name != f"{__name__}.{name}":
                raise
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    _register_pipeline()
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


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
    from .adapter import ModelAdapter
    from .explainers import explain_with
    from .mixin import explainable

    _register_pipeline()
    if isinstance(model, ModelAdapter):
        adapter = model
    elif model is None:
        adapter = _default_adapter()
    elif isinstance(model, str):
        adapter = ModelAdapter.from_pretrained(model)
    else:
        adapter = explainable(model, tokenizer).explain_adapter()
    return explain_with(adapter, texts, method, target, **kwargs)


_DEFAULT_ADAPTER: list[ModelAdapter] = []


def _default_adapter() -> ModelAdapter:
    """The bundled default model, loaded once."""
    if not _DEFAULT_ADAPTER:
        from .adapter import ModelAdapter

        _DEFAULT_ADAPTER.append(ModelAdapter.from_pretrained())
    return _DEFAULT_ADAPTER[0]


if "transformers" in sys.modules:  # `pipeline("explain-text")` works right after `import hf_seqinterp`
    _register_pipeline()

__all__ = [
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
    "MissingDependencyError",
    "ModelAdapter",
    "OutputFolderBusyError",
    "PhraseScores",
    "SeqInterpError",
    "SurrogateReport",
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
    "explain_with",
    "explain_zero_shot",
    "explainable",
    "explanation_to_row",
    "explanations_to_dataset",
    "fit_surrogates",
    "get_explainer",
    "list_methods",
    "load_explanation_dataset",
    "load_explanations",
    "load_text_dataset",
    "phrase_scores",
    "push_explanations_to_hub",
    "register_explainer",
    "register_pipeline",
    "render_html",
    "render_markdown",
    "render_terminal",
    "representation_erasure",
    "row_to_explanation",
    "save_html",
]
