"""The `explain-text` pipeline, registered with transformers when `hf_seqinterp` is imported.

    import hf_seqinterp
    from transformers import pipeline
    explain = pipeline("explain-text", model="path/or/hub-id", method="integrated_gradients")
    explain(["a gripping film", "dull"], batch_size=8)

Inputs are those of transformers' text-classification pipeline: a string, a sentence pair
`{"text": ..., "text_pair": ...}`, or a list of either; for a causal LM, prompts (with the head's
options: `generation=`, `contrast=`, `chat_template=`). Each result is plain data: the prediction,
the target, and token and word attributions (per explained row for heads with a target axis); pass
`return_explanation=True` to also get the `Explanation` object.
"""

from __future__ import annotations

from typing import Any

from transformers import AutoModelForSequenceClassification, Pipeline
from transformers.pipelines import PIPELINE_REGISTRY

from .adapter import DEFAULT_MODEL_DIR, ModelAdapter
from .explainers import DEFAULT_METHOD, get_explainer
from .explanation import Explanation
from .heads import HEAD_OPTIONS
from .validation import normalize_inputs

TASK = "explain-text"


class ExplainTextPipeline(Pipeline):
    """Explain a model's predictions on texts with any registered method.

    Call arguments (also accepted by the constructor): `method`, `target` (None = predicted class,
    a class id or a label name; a causal LM's continuation), `truncation`, `return_explanation`,
    the model head's options (`heads.HEAD_OPTIONS`) and the method's own parameters (e.g.
    `n_steps=32`, `score="log_prob"`). `batch_size` and `device` work as in every pipeline: texts of
    one batch are explained together.
    """

    _load_processor = False
    _load_image_processor = False
    _load_feature_extractor = False
    _load_tokenizer = True

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.adapter = ModelAdapter(self.model, self.tokenizer)
        self._explainers: dict[tuple, Any] = {}

    def __call__(self, inputs: Any, *args: Any, **kwargs: Any) -> Any:
        """Explain a text or a sentence pair {"text": ..., "text_pair": ...} (returns one result) or a
        list of them (a list of results). The inputs are checked first (`hf_seqinterp.validation`):
        an empty list, None, bytes or a dict other than {"text", "text_pair"} get an
        `InvalidInputError` that names the item. Datasets and generators are streamed as transformers
        does, each item checked as it comes."""
        if isinstance(inputs, (str, list, tuple, dict)) or inputs is None or isinstance(inputs, (bytes, bytearray)):
            items, single = normalize_inputs(inputs)
            inputs = items[0] if single else items
        return super().__call__(inputs, *args, **kwargs)

    def _sanitize_parameters(
        self,
        method: str | None = None,
        target: Any = None,
        truncation: bool | None = None,
        return_explanation: bool | None = None,
        **method_params: Any,
    ) -> tuple[dict, dict, dict]:
        preprocess: dict[str, Any] = {}
        forward: dict[str, Any] = {}
        postprocess: dict[str, Any] = {}
        if truncation is not None:
            preprocess["truncation"] = truncation
        if method is not None:
            get_explainer(method)  # unknown names fail here, listing the available ones
            forward["method"] = method
        if target is not None:
            preprocess["target"] = target
        head_options = {k: method_params.pop(k) for k in HEAD_OPTIONS if k in method_params}
        if head_options:
            preprocess["head_options"] = head_options
        if method_params:
            forward["method_params"] = method_params
        if return_explanation is not None:
            postprocess["return_explanation"] = return_explanation
        return preprocess, forward, postprocess

    def preprocess(
        self,
        item: tuple[str, str | None],
        truncation: bool = True,
        target: Any = None,
        head_options: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """The input's encoding and validated target (a causal LM's continuation is generated here
        when not given)."""
        encodings, targets = self.adapter.prepare([item], target, truncation=truncation, **(head_options or {}))
        return {"encoding": encodings[0], "target": targets[0]}

    def _explainer(self, method: str, params: dict[str, Any]):
        key = (method, tuple(sorted((k, repr(v)) for k, v in params.items())))
        if key not in self._explainers:
            self._explainers[key] = get_explainer(method).create(self.adapter, **params)
        return self._explainers[key]

    def _forward(
        self,
        model_inputs: dict[str, Any],
        method: str = DEFAULT_METHOD,
        method_params: dict[str, Any] | None = None,
    ) -> dict[str, list[Explanation]]:
        encodings, targets = model_inputs["encoding"], model_inputs["target"]
        if not isinstance(encodings, list):  # one input, not a batch
            encodings, targets = [encodings], [targets]
        explainer = self._explainer(method, method_params or {})
        explanations = explainer.explain_encodings(encodings, targets, batch_size=len(encodings), progress=False)
        return {"explanations": explanations}

    def postprocess(self, model_outputs: dict[str, Any], return_explanation: bool = False) -> dict[str, Any]:
        expl = model_outputs["explanations"]
        expl = expl[0] if isinstance(expl, list) else expl
        result = explanation_summary(expl)
        if return_explanation:
            result["explanation"] = expl
        return result


def explanation_summary(expl: Explanation) -> dict[str, Any]:
    """Plain-data view of an Explanation: prediction, target, token and word attributions; with a
    target axis, the attributions of each row (over the tokens it can see) with its description."""
    pair = {"text_pair": expl.text_pair} if expl.is_pair else {}
    if expl.rows is not None:
        return {
            "text": expl.text,
            **pair,
            "target": expl.target_label,
            "method": expl.method,
            "rows": [{**meta, **_attributions(view)} for meta, view in zip(expl.rows, expl.row_views())],
            "warnings": list(expl.warnings),
        }
    return {
        "text": expl.text,
        **pair,
        "label": expl.predicted_label if expl.labels else expl.predicted,
        "score": float(expl.probabilities[expl.predicted]),
        "target": expl.target_label if expl.target_label is not None else expl.target,
        "method": expl.method,
        **_attributions(expl),
        "warnings": list(expl.warnings),
    }


def _attributions(expl: Explanation) -> dict[str, list[dict[str, Any]]]:
    pair = expl.is_pair
    return {
        "tokens": [
            {"token": tok, "attribution": float(a), "start": s, "end": e, "special": sp}
            for tok, a, (s, e), sp in zip(expl.tokens, expl.attributions, expl.offsets, expl.special_tokens_mask)
        ],
        "words": [
            {"word": w.text, "attribution": w.score, "start": w.start, "end": w.end, **({"segment": w.segment} if pair else {})}
            for w in expl.to_words()
        ],
    }


def register_pipeline() -> None:
    """Register the `explain-text` task (idempotent; done on `import hf_seqinterp`)."""
    if TASK in PIPELINE_REGISTRY.supported_tasks:
        return
    PIPELINE_REGISTRY.register_pipeline(
        TASK,
        pipeline_class=ExplainTextPipeline,
        pt_model=AutoModelForSequenceClassification,
        default={"model": (str(DEFAULT_MODEL_DIR), None)},
        type="text",
    )
