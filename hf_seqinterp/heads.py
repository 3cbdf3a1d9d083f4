"""Heads: what a target is for a model's output and how it becomes the explained scalar.

A head description turns user-given targets into ids, resolves "the predicted class", reports the
model's output as probabilities and computes the explained score in a score space (logit,
log-probability, probability). `ClassificationHead` describes `*ForSequenceClassification` models:
single-label (softmax), multi-label (sigmoid) and regression (the raw value).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch

from .checks import did_you_mean
from .errors import InvalidParameterError, UnknownTargetError

ScoreSpace = Literal["logit", "log_prob", "prob"]
SCORE_SPACES: tuple[str, ...] = ("logit", "log_prob", "prob")
Target = int | str | None


@dataclass
class ClassificationHead:
    """The output of a sequence classifier: one logit per label."""

    labels: list[str]
    problem_type: str
    model_class: str = "the model"

    @classmethod
    def from_config(cls, config: Any, model_class: str) -> ClassificationHead:
        num_labels = int(config.num_labels)
        id2label = getattr(config, "id2label", None) or {}
        labels = [str(id2label.get(i, id2label.get(str(i), f"LABEL_{i}"))) for i in range(num_labels)]
        problem = config.problem_type or ("regression" if num_labels == 1 else "single_label_classification")
        return cls(labels, problem, model_class)

    @property
    def num_labels(self) -> int:
        return len(self.labels)

    def check_target(self, target: Target) -> int | None:
        """Validate a user-given target: None (the predicted class), a class id, or a label name."""
        if target is None:
            return None
        if isinstance(target, (bool, float)) or not isinstance(target, (int, np.integer, str)):
            raise UnknownTargetError(
                f"target={target!r} must be None, a class id (int) or a label name (str); "
                f"labels of this model: {self.labels}."
            )
        if isinstance(target, str):
            label2id = {label: i for i, label in enumerate(self.labels)}
            if target in label2id:
                return label2id[target]
            folded = [i for label, i in label2id.items() if label.lower() == target.lower()]
            if len(folded) == 1:
                return folded[0]
            if target.isdigit():
                return self.check_target(int(target))
            raise UnknownTargetError(
                f"target={target!r} is not a label of this model.{did_you_mean(target, self.labels)} "
                f"Choose one of {self.labels} or a class id in [0, {self.num_labels})."
            )
        if not 0 <= int(target) < self.num_labels:
            raise UnknownTargetError(
                f"target={target!r} is out of range for a model with {self.num_labels} labels; "
                f"pass an index in [0, {self.num_labels}) or a name from {self.labels}."
            )
        return int(target)

    def check_targets(self, target: Target | Sequence[Target], n: int) -> list[int | None]:
        """One validated target per text; a single value applies to every text."""
        if isinstance(target, (list, tuple)):
            if len(target) != n:
                raise UnknownTargetError(f"Got {len(target)} targets for {n} texts; pass one per text or a single one.")
            return [self.check_target(t) for t in target]
        return [self.check_target(target)] * n

    def pick_targets(self, requested: Sequence[int | None], logits: torch.Tensor) -> torch.Tensor:
        """Requested class ids, with None replaced by the predicted class."""
        predicted = logits.detach().argmax(-1) if self.problem_type != "regression" else torch.zeros(len(logits))
        chosen = [int(p) if r is None else r for r, p in zip(requested, predicted.tolist())]
        return torch.tensor(chosen, dtype=torch.long, device=logits.device)

    def probabilities(self, logits: torch.Tensor) -> torch.Tensor:
        """Model output as reported in Explanations: softmax (single-label), sigmoid (multi-label),
        the raw value (regression)."""
        logits = logits.detach().float()
        if self.problem_type == "multi_label_classification":
            return torch.sigmoid(logits)
        if self.problem_type == "regression":
            return logits
        return torch.softmax(logits, dim=-1)

    def score(self, logits: torch.Tensor, targets: torch.Tensor, space: str = "logit") -> torch.Tensor:
        """The explained scalar per row: the target's logit, log-probability or probability."""
        if space == "logit":
            values = logits
        elif space == "log_prob":
            values = (
                torch.nn.functional.logsigmoid(logits)
                if self.problem_type == "multi_label_classification"
                else torch.log_softmax(logits, dim=-1)
            )
        elif space == "prob":
            values = (
                torch.sigmoid(logits)
                if self.problem_type == "multi_label_classification"
                else torch.softmax(logits, dim=-1)
            )
        else:
            raise InvalidParameterError(f"score={space!r} is not one of {', '.join(SCORE_SPACES)}.")
        return values.gather(-1, targets.view(-1, 1).to(values.device)).squeeze(-1)

    def check_score_space(self, space: str) -> str:
        if space not in SCORE_SPACES:
            raise InvalidParameterError(f"score={space!r} is not one of {', '.join(SCORE_SPACES)}.")
        if space != "logit" and self.problem_type == "regression":
            raise InvalidParameterError(
                f"score={space!r} needs class probabilities, but {self.model_class} is a regression "
                "model; use score='logit'."
            )
        return space
