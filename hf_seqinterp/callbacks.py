"""Trainer callback: explain a fixed probe set at every evaluation and track how faithful it stays.

    callback = ExplanationCallback(["a gripping, funny film", "dull and overlong"])
    trainer = Trainer(model, args, train_dataset=..., eval_dataset=..., processing_class=tokenizer)
    callback.attach(trainer)          # before the reporters, so TensorBoard & co. receive its metrics
    trainer.train()

At each evaluation the callback explains the probe texts with `methods`, computes faithfulness
`metrics` and adds them to the evaluation's logs as `eval_<method>_<metric>` (e.g.
`eval_integrated_gradients_aopc_comprehensiveness`): they land in `trainer.state.log_history` next to
`eval_loss`, in the dict `trainer.evaluate()` returns (so `metric_for_best_model` can use them), and
in every reporter that runs after the callback. At each checkpoint it writes, into `checkpoint-N/`
and into `output_dir` (which `trainer.push_to_hub()` uploads):

    explanations.json   {"global_step", "metrics", "settings", "explanations": {method: [Explanation.to_dict()]}}
    explanations.html   a self-contained heat map of every probe text for every method

Default cost per evaluation: one forward+backward over the probes and ~10 forwards per probe.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from transformers import TrainerCallback
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

from .adapter import ModelAdapter, Target
from .errors import InvalidParameterError
from .explainers import DEFAULT_METHOD, applicable_explainers
from .explanation import Explanation
from .metrics.faithfulness import FAITHFULNESS_METRICS, FaithfulnessSettings, faithfulness
from .validation import validate_texts
from .visualize import render_html

logger = logging.getLogger(__name__)
JSON_NAME = "explanations.json"
HTML_NAME = "explanations.html"


@dataclass
class _Snapshot:
    step: int
    metrics: dict[str, float]
    explanations: dict[str, list[Explanation]]


class ExplanationCallback(TrainerCallback):
    """Explains `texts` at each evaluation, logs faithfulness metrics, saves explanations in checkpoints.

    Args:
        texts: the probe texts (keep it small: they are explained at every evaluation).
        methods: explanation methods (default: `DEFAULT_METHOD`, integrated gradients, as everywhere else).
        metrics: faithfulness metrics (default: AOPC comprehensiveness and sufficiency).
        tokenizer: the model's fast tokenizer; default: the Trainer's `processing_class`.
        target: class to explain (default: the predicted class).
        method_params: method -> parameters.
        save: write explanations.json/.html into each checkpoint and output_dir.
        **settings: `FaithfulnessSettings` fields (replacement, score, bins, ...).
    """

    def __init__(
        self,
        texts: Sequence[str],
        *,
        methods: Sequence[str] = (DEFAULT_METHOD,),
        metrics: Sequence[str] = ("aopc_comprehensiveness", "aopc_sufficiency"),
        tokenizer: Any = None,
        target: Target | Sequence[Target] = None,
        method_params: Mapping[str, Mapping[str, Any]] | None = None,
        save: bool = True,
        **settings: Any,
    ):
        self.texts = validate_texts(texts)
        self.methods = list(methods)
        self.metrics = list(metrics)
        unknown = [m for m in self.metrics if m not in FAITHFULNESS_METRICS]
        if unknown:
            raise InvalidParameterError(f"unknown metric(s) {unknown}; choose from {', '.join(FAITHFULNESS_METRICS)}.")
        self.settings = FaithfulnessSettings.from_kwargs(**settings)
        self.tokenizer = tokenizer
        self.target = target
        self.method_params = dict(method_params or {})
        self.save = save
        self._attached = False
        self._warned = False
        self._last: _Snapshot | None = None

    def attach(self, trainer: Any) -> ExplanationCallback:
        """Add this callback to `trainer` ahead of its reporting callbacks (TensorBoard, W&B, ...), which
        otherwise log an evaluation before this callback has added its metrics to it."""
        callbacks = trainer.callback_handler.callbacks
        if self in callbacks:
            callbacks.remove(self)
        from transformers.trainer_callback import DefaultFlowCallback

        position = next((i + 1 for i, cb in enumerate(callbacks) if isinstance(cb, DefaultFlowCallback)), 0)
        callbacks.insert(position, self)
        self._attached = True
        return self

    # ----------------------------------------------------------------- work
    def explain_and_score(self, model: Any, tokenizer: Any, step: int) -> _Snapshot:
        """Explain the probes with the current weights and compute the metrics (cached per step)."""
        if self._last is not None and self._last.step == step:
            return self._last
        tokenizer = self.tokenizer or tokenizer
        if tokenizer is None:
            raise InvalidParameterError(
                "ExplanationCallback needs the tokenizer: pass processing_class=tokenizer to the Trainer or "
                "tokenizer= to the callback."
            )
        adapter = ModelAdapter(model, tokenizer)
        explainers, _ = applicable_explainers(adapter, self.methods, params=self.method_params)
        explained = {name: e.explain(self.texts, self.target, progress=False) for name, e in explainers.items()}
        flat = [e for name in explained for e in explained[name]]
        result = faithfulness(flat, adapter, self.metrics, **self.settings.to_dict())
        metrics = {}
        for block, name in enumerate(explained):
            rows = slice(block * len(self.texts), (block + 1) * len(self.texts))
            for metric in self.metrics:
                metrics[f"{name}_{metric}"] = float(result.values[metric][rows].mean())
        self._last = _Snapshot(step, metrics, explained)
        return self._last

    # ----------------------------------------------------------------- Trainer events
    def on_log(self, args, state, control, logs=None, model=None, processing_class=None, **kwargs):
        prefix = _eval_prefix(logs or {})
        if prefix is None or model is None:
            return
        reporters = [args.report_to] if isinstance(args.report_to, str) else list(args.report_to or [])
        if not self._attached and not self._warned and [r for r in reporters if r != "none"]:
            logger.warning(
                "ExplanationCallback was not attached with `callback.attach(trainer)`; reporters listed in "
                "report_to=%s may run before it and miss its metrics (log_history still has them).",
                args.report_to,
            )
            self._warned = True
        snapshot = self.explain_and_score(model, processing_class, state.global_step)
        added = {f"{prefix}_{name}": value for name, value in snapshot.metrics.items()}
        logs.update(added)
        if state.log_history and state.log_history[-1].get(f"{prefix}_runtime") == logs.get(f"{prefix}_runtime"):
            state.log_history[-1].update(added)

    def on_save(self, args, state, control, model=None, processing_class=None, **kwargs):
        if not self.save or not state.is_world_process_zero or model is None:
            return
        folder = Path(args.output_dir) / f"{PREFIX_CHECKPOINT_DIR}-{state.global_step}"
        if not folder.is_dir():
            logger.warning("ExplanationCallback: checkpoint folder %s not found; explanations not saved.", folder)
            return
        snapshot = self.explain_and_score(model, processing_class, state.global_step)
        for target in (folder, Path(args.output_dir)):
            self.write(snapshot, target)

    def write(self, snapshot: _Snapshot, folder: Path) -> dict[str, Path]:
        """Write explanations.json and explanations.html of `snapshot` into `folder`."""
        payload = {
            "global_step": snapshot.step,
            "metrics": snapshot.metrics,
            "settings": {"methods": self.methods, "metrics": self.metrics, **self.settings.to_dict()},
            "explanations": {m: [e.to_dict() for e in es] for m, es in snapshot.explanations.items()},
        }
        paths = {"json": folder / JSON_NAME, "html": folder / HTML_NAME}
        paths["json"].write_text(json.dumps(payload), encoding="utf-8")
        flat = [e for es in snapshot.explanations.values() for e in es]
        paths["html"].write_text(render_html(flat, title=f"Explanations at step {snapshot.step}"), encoding="utf-8")
        return paths


def _eval_prefix(logs: Mapping[str, Any]) -> str | None:
    """'eval' (or 'eval_<dataset>') when `logs` are an evaluation's metrics, else None."""
    for key in logs:
        if key.endswith("_runtime") and key != "train_runtime":
            return key[: -len("_runtime")]
    return None


def load_checkpoint_explanations(folder: str | Path) -> dict[str, list[Explanation]]:
    """The explanations an ExplanationCallback saved in a checkpoint (or output) folder, by method."""
    payload = json.loads((Path(folder) / JSON_NAME).read_text(encoding="utf-8"))
    return {m: [Explanation.from_dict(d) for d in ds] for m, ds in payload["explanations"].items()}
