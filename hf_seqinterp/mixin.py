"""`ExplainableMixin` gives a model `model.explain(...)`; `explainable(model)` adds it to a loaded model.

    class MyClassifier(ExplainableMixin, BertForSequenceClassification): ...
    model = MyClassifier.from_pretrained(path)
    model.explain("a gripping film", method="integrated_gradients", n_steps=32)

    model = explainable(AutoModelForSequenceClassification.from_pretrained(path), tokenizer)
    model.explain(["great", "dull"], method="gradient_x_input", target="POSITIVE")
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from .adapter import ModelAdapter, Target
from .errors import UnsupportedModelError
from .explainers import DEFAULT_METHOD, explain_with
from .explanation import Explanation
from .validation import TextInput


class ExplainableMixin:
    """Adds `explain()` to a Hugging Face sequence classifier (as a base class or via `explainable`)."""

    def _explained_model(self) -> torch.nn.Module:
        return self  # type: ignore[return-value]

    def set_explain_tokenizer(self, tokenizer: Any) -> None:
        """The tokenizer `explain()` uses (else it loads one from the model's `name_or_path`)."""
        self.__dict__["_hfsi_tokenizer"] = tokenizer
        self.__dict__.pop("_hfsi_adapter", None)

    def explain_adapter(self) -> ModelAdapter:
        """The ModelAdapter behind `explain()` (created on first use)."""
        adapter = self.__dict__.get("_hfsi_adapter")
        if adapter is None:
            model = self._explained_model()
            tokenizer = self.__dict__.get("_hfsi_tokenizer")
            if tokenizer is None:
                tokenizer = _load_tokenizer(model)
            adapter = ModelAdapter(model, tokenizer)
            self.__dict__["_hfsi_adapter"] = adapter
        return adapter

    def explain(
        self,
        texts: TextInput | Sequence[TextInput],
        method: str = DEFAULT_METHOD,
        target: Target | Sequence[Target] = None,
        **kwargs: Any,
    ) -> Explanation | list[Explanation]:
        """Explain the model's prediction(s) on `texts` with `method`.

        Args:
            texts: a string or a sentence pair `(text, text_pair)` (returns one Explanation), or a
                list of these (returns a list).
            method: a registered method name; see `hf_seqinterp.list_methods()`.
            target: None (the predicted class), a class id, a label name, or one per text.
            **kwargs: `text_pair`, `batch_size`, `truncation`, `progress` (see `Explainer.explain`),
                and the method's parameters, e.g. `n_steps=32, baseline="mask"` for integrated
                gradients, `score="log_prob"` for any method.
        """
        return explain_with(self.explain_adapter(), texts, method, target, **kwargs)


class ExplainableModel(ExplainableMixin):
    """A thin view of a loaded model that adds `explain()`; every other attribute and call goes to
    the model itself, which is never copied or modified. `unwrap()` returns it."""

    def __init__(self, model: torch.nn.Module, tokenizer: Any = None):
        self.__dict__["_hfsi_model"] = model
        if tokenizer is not None:
            self.__dict__["_hfsi_tokenizer"] = tokenizer

    def _explained_model(self) -> torch.nn.Module:
        return self.__dict__["_hfsi_model"]

    def unwrap(self) -> torch.nn.Module:
        return self.__dict__["_hfsi_model"]

    def __getattr__(self, name: str) -> Any:
        # only called for attributes not found on the view; guard against recursion during unpickling
        model = self.__dict__.get("_hfsi_model")
        if model is None:
            raise AttributeError(name)
        return getattr(model, name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self.unwrap(), name, value)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.unwrap()(*args, **kwargs)

    def __repr__(self) -> str:
        return f"ExplainableModel({self.unwrap()!r})"


def explainable(model: torch.nn.Module, tokenizer: Any = None) -> ExplainableMixin:
    """Give an already-loaded model an `explain()` method without copying its weights.

    Returns `model` itself if its class already has the mixin (setting `tokenizer` if given), else
    an `ExplainableModel` view that forwards everything else to `model`.
    """
    if isinstance(model, ExplainableMixin):
        if tokenizer is not None:
            model.set_explain_tokenizer(tokenizer)
        return model
    if not isinstance(model, torch.nn.Module) or not hasattr(model, "config"):
        raise UnsupportedModelError(
            f"explainable() expects a Hugging Face model (a torch.nn.Module with a config), got {type(model).__name__}."
        )
    return ExplainableModel(model, tokenizer)


def as_adapter(model: ModelAdapter | torch.nn.Module | str | None, tokenizer: Any = None) -> ModelAdapter:
    """A ModelAdapter for what the user passed: an adapter (as is), a loaded model (with `tokenizer`
    or the one saved next to it), a folder or Hub id, or None for the bundled default model."""
    if isinstance(model, ModelAdapter):
        return model
    if model is None or isinstance(model, str):
        return ModelAdapter.from_pretrained(model)
    return explainable(model, tokenizer).explain_adapter()


def _load_tokenizer(model: torch.nn.Module) -> Any:
    from transformers import AutoTokenizer

    source = getattr(model.config, "_name_or_path", "") or getattr(model, "name_or_path", "")
    try:
        return AutoTokenizer.from_pretrained(source)
    except Exception as err:
        raise UnsupportedModelError(
            f"Could not load a tokenizer for {type(model).__name__} from {source!r} ({err}). "
            "Pass one: explainable(model, tokenizer) or model.set_explain_tokenizer(tokenizer)."
        ) from err
