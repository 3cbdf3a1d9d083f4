"""Base classes of the packaged `evaluate` modules (`metrics/evaluate_modules/<name>/<name>.py`).

Each module file holds one subclass naming its metric; `hf_seqinterp.metrics.load_metric(name)` (or
`evaluate.load(<that folder>)`) loads it offline. The module files import this one as a module
(`from hf_seqinterp.metrics import evaluate_support as support`), because `evaluate` takes the first
`EvaluationModule` subclass it finds in a module's namespace as the metric.

Faithfulness modules take `explanations` (Explanation objects or their JSON) and the model:

    metric = load_metric("aopc_comprehensiveness")
    metric.compute(explanations=explanations, model=adapter, replacement="delete")

Plausibility modules take `predictions` (token scores) and `references` (0/1 human rationale per
token, one list per instance, special tokens left out):

    load_metric("auprc").compute(predictions=[[0.9, 0.1, 0.4]], references=[[1, 0, 0]])
"""

from __future__ import annotations

from typing import Any, ClassVar

import datasets
import evaluate
import numpy as np

from ..adapter import ModelAdapter
from ..errors import InvalidParameterError
from ..explanation import Explanation
from .faithfulness import faithfulness
from .plausibility import plausibility_arrays

_CITATION = """\
@inproceedings{deyoung-etal-2020-eraser,
  title = {{ERASER}: A Benchmark to Evaluate Rationalized {NLP} Models},
  author = {DeYoung, Jay and Jain, Sarthak and Rajani, Nazneen Fatema and Lehman, Eric and Xiong, Caiming
            and Socher, Richard and Wallace, Byron C.},
  booktitle = {Proceedings of ACL},
  year = {2020}
}
"""

_FAITHFULNESS_INPUTS = """
Args:
    explanations: list of `hf_seqinterp.Explanation` (or their `to_json()` strings).
    model: the `ModelAdapter` (or a model folder / Hub id) the explanations were made with.
    rationales: (comprehensiveness, sufficiency) one bool mask per explanation over its tokens;
        default: the top 20% of tokens by score.
    **settings: `FaithfulnessSettings` fields: replacement ('delete'), score ('prob'), bins, rounding,
        rank_by, level, curve_points, top, max_batch_tokens.
Returns:
    {<metric>: mean over explanations, "per_example": [...], "settings": {...}}
"""

_PLAUSIBILITY_INPUTS = """
Args:
    predictions: per instance, the explanation's scores of its (non-special) tokens.
    references: per instance, 1 where the token is in the human rationale, else 0.
    top: predicted rationale size for token F1 / IOU-F1: 'gold', an int, or a fraction.
    rank_by: 'signed' or 'abs'.
    iou_threshold: IOU for a span match (0.5).
Returns:
    {<metric>: ERASER's dataset value, <metric>_micro where defined, "n_evaluated": ...}
"""


def _as_json(explanations: Any) -> Any:
    if explanations is None:
        return None
    return [e.to_json() if isinstance(e, Explanation) else e for e in explanations]


class _PackagedMetric(evaluate.Metric):
    """What every packaged module declares: its metric name, description, inputs and features."""

    metric_name: ClassVar[str] = ""
    about: ClassVar[str] = ""
    inputs_doc: ClassVar[str] = ""
    feature_types: ClassVar[dict[str, Any]] = {}

    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=self.about or self.metric_name,
            citation=_CITATION,
            inputs_description=self.inputs_doc,
            features=datasets.Features(self.feature_types),
        )


class FaithfulnessModule(_PackagedMetric):
    """An `evaluate` metric over Explanations that runs the model (see `metrics.faithfulness`)."""

    inputs_doc = _FAITHFULNESS_INPUTS
    feature_types: ClassVar[dict[str, Any]] = {"explanations": datasets.Value("string")}

    def add_batch(self, *, explanations=None, **kwargs):
        """Add Explanations (or their JSON) to the metric's stack."""
        return super().add_batch(explanations=_as_json(explanations), **kwargs)

    def add(self, *, explanation=None, **kwargs):
        """Add one Explanation (or its JSON) to the metric's stack."""
        if isinstance(explanation, Explanation):
            explanation = explanation.to_json()
        return super().add(explanations=explanation, **kwargs)

    def compute(self, *, explanations=None, **kwargs):
        """Compute the metric over the stacked and the given Explanations (pass `model=`)."""
        return super().compute(explanations=_as_json(explanations), **kwargs)

    def _compute(self, explanations, model=None, rationales=None, **settings):
        if model is None:
            raise InvalidParameterError(f"{self.metric_name} runs the model: pass model=<ModelAdapter or model path>.")
        adapter = model if isinstance(model, ModelAdapter) else ModelAdapter.from_pretrained(model)
        parsed = [Explanation.from_json(e) for e in explanations]
        result = faithfulness(parsed, adapter, [self.metric_name], rationales=rationales, **settings)
        return {
            self.metric_name: result.summary()[self.metric_name],
            "per_example": result.values[self.metric_name].tolist(),
            "settings": result.settings,
        }


class PlausibilityModule(_PackagedMetric):
    """An `evaluate` metric of token scores against human rationale masks (see `metrics.plausibility`)."""

    inputs_doc = _PLAUSIBILITY_INPUTS
    feature_types: ClassVar[dict[str, Any]] = {
        "predictions": datasets.Sequence(datasets.Value("float64")),
        "references": datasets.Sequence(datasets.Value("int32")),
    }

    def _compute(self, predictions, references, top="gold", rank_by="signed", iou_threshold=0.5):
        result = plausibility_arrays(
            [np.asarray(p, dtype=np.float64) for p in predictions],
            [np.asarray(r, dtype=bool) for r in references],
            top=top,
            rank_by=rank_by,
            iou_threshold=iou_threshold,
        )
        summary = result.summary()
        keys = [k for k in summary if k.startswith(self.metric_name)] + ["n_evaluated", "n_skipped"]
        return {k: summary[k] for k in keys}
