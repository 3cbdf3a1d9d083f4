"""Heads: what a target is for a model's output and how it becomes the explained scalar.

A head description turns user-given targets into ids, resolves "the predicted class", reports the
model's output as probabilities and computes the explained score in a score space (logit,
log-probability, probability).

Every head reads the model output as *row logits* of shape (rows, T, C): T explained rows per input,
each a distribution over C classes. `ClassificationHead` (`*ForSequenceClassification`: single-label
softmax, multi-label sigmoid, regression) has no row axis, (rows, C), the one-row case;
`CausalLMHead` (`*ForCausalLM`, `*LMHeadModel`) has one row per continuation token, its C classes
the vocabulary; `QuestionAnsweringHead` (`*ForQuestionAnswering`) reads a start and an end
distribution over the input's positions and explains three rows (start, end, span);
`MultipleChoiceHead` (`*ForMultipleChoice`) is a one-row classifier over an input's options. Scores
have one column per explained row (the row logits' shape without the class axis, except where a
row combines others: the QA span). `HEADS` maps a model class's name to its head description.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import numpy as np
import torch

from .checks import did_you_mean
from .errors import InvalidInputError, InvalidParameterError, UnknownTargetError

ScoreSpace = Literal["logit", "log_prob", "prob"]
SCORE_SPACES: tuple[str, ...] = ("logit", "log_prob", "prob")
Target = int | str | None


class Head:
    """What every head description shares: how the model is called and the defaults of its ClassVars."""

    #: whether an input has several explained rows (a target axis); False: one row, no axis
    multi_row: ClassVar[bool] = False
    #: whether inputs end in a continuation that the rows explain (integrated gradients' baseline_on="prompt")
    continuation: ClassVar[bool] = False
    #: whether perturbations may delete tokens (False where rows read the outputs at given positions)
    allows_deletion: ClassVar[bool] = True

    def forward_kwargs(self, batch: Any) -> dict[str, Any]:
        return {}

    def model_inputs(self, inputs: dict[str, Any]) -> dict[str, Any]:
        """The keyword arguments of the model's forward, from the (batch, L) inputs the adapter built."""
        return inputs


@dataclass
class ClassificationHead(Head):
    """The output of a sequence classifier: one logit per label."""

    kind: ClassVar[str] = "sequence_classification"
    #: endings of the transformers class names this head describes, what they are, and the Auto class
    #: that loads a saved model with this head
    suffixes: ClassVar[tuple[str, ...]] = ("ForSequenceClassification",)
    description: ClassVar[str] = "sequence classifiers (*ForSequenceClassification)"
    auto_class: ClassVar[str] = "AutoModelForSequenceClassification"

    labels: list[str]
    problem_type: str
    model_class: str = "the model"

    @classmethod
    def for_model(cls, config: Any, tokenizer: Any, model_class: str) -> ClassificationHead:
        """The head of a classifier: labels and problem type from its config."""
        num_labels = int(config.num_labels)
        id2label = getattr(config, "id2label", None) or {}
        labels = [str(id2label.get(i, id2label.get(str(i), f"LABEL_{i}"))) for i in range(num_labels)]
        problem = config.problem_type or ("regression" if num_labels == 1 else "single_label_classification")
        return cls(labels, problem, model_class)

    @property
    def num_labels(self) -> int:
        return len(self.labels)

    def labels_for(self, encoding: Any) -> list[str]:
        """The names of an input's classes."""
        return self.labels

    def row_logits(self, output: Any, batch: Any) -> torch.Tensor:
        """(rows, num_labels): the classifier's logits (no row axis)."""
        return output.logits

    def prepare(
        self, adapter: Any, items: list[tuple[str, str | None]], target: Any, *, truncation: bool = True, **_: Any
    ) -> tuple[list[Any], list[int | None]]:
        """Tokenise the inputs and validate one target per input."""
        encodings = adapter.encode(items, truncation=truncation)
        return encodings, self.check_targets(target, len(encodings))

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
        return _gather_score(logits, targets, space, sigmoid=self.problem_type == "multi_label_classification")

    def check_score_space(self, space: str) -> str:
        _check_space(space)
        if space != "logit" and self.problem_type == "regression":
            raise InvalidParameterError(
                f"score={space!r} needs class probabilities, but {self.model_class} is a regression "
                "model; use score='logit'."
            )
        return space


def _check_space(space: str) -> str:
    if space not in SCORE_SPACES:
        raise InvalidParameterError(f"score={space!r} is not one of {', '.join(SCORE_SPACES)}.")
    return space


def _gather_score(logits: torch.Tensor, targets: torch.Tensor, space: str, *, sigmoid: bool) -> torch.Tensor:
    """The targets' entries of the logits (last axis = classes) in a score space; softmax over the
    classes, or per-class sigmoids for multi-label heads."""
    if _check_space(space) == "logit":
        values = logits
    elif space == "log_prob":
        values = torch.nn.functional.logsigmoid(logits) if sigmoid else torch.log_softmax(logits, dim=-1)
    else:  # "prob"
        values = torch.sigmoid(logits) if sigmoid else torch.softmax(logits, dim=-1)
    return values.gather(-1, targets.unsqueeze(-1).to(values.device)).squeeze(-1)


@dataclass
class CausalLMHead(Head):
    r"""The output of a causal language model: a next-token distribution at every position.

    An input is a prompt x (P tokens) and a continuation y_1..y_T, generated (target None, with
    `generate` arguments) or forced (target = the continuation text). Row k explains y_k from the
    logits at the position before it, teacher-forced on x ⊕ y:

        f_k = z_{P+k−1}[y_k]   (score="logit"),   log softmax(z_{P+k−1})[y_k]   (score="log_prob"),

    so one forward of x ⊕ y scores every row, and row k depends on the tokens before y_k only.
    """

    kind: ClassVar[str] = "causal_lm"
    multi_row: ClassVar[bool] = True
    continuation: ClassVar[bool] = True
    rows_text: ClassVar[str] = "one explained row per output token"
    suffixes: ClassVar[tuple[str, ...]] = ("ForCausalLM", "LMHeadModel")
    description: ClassVar[str] = "causal language models (*ForCausalLM, *LMHeadModel)"
    auto_class: ClassVar[str] = "AutoModelForCausalLM"

    tokenizer: Any
    model_class: str = "the model"
    problem_type: str = "single_label_classification"  # a softmax over the vocabulary
    labels: list[str] = field(default_factory=list)  # no label names: the classes are the vocabulary

    @classmethod
    def for_model(cls, config: Any, tokenizer: Any, model_class: str) -> CausalLMHead:
        """The head of a causal LM: its classes are the tokenizer's vocabulary."""
        return cls(tokenizer, model_class)

    def forward_kwargs(self, batch: Any) -> dict[str, Any]:
        """`logits_to_keep`: the positions whose logits the rows read (the union over the batch), so
        the model projects only those onto the vocabulary, not all L positions."""
        if any(enc.readout is None for enc in batch.encodings):
            return {}
        return {"logits_to_keep": torch.unique(batch.row_index[1])}

    def row_logits(self, output: Any, batch: Any) -> torch.Tensor:
        """(rows, T, vocab): the logits that predict each continuation token (T = the most rows of
        the batch; shorter inputs repeat their last row, which is never reported)."""
        rows, positions = batch.row_index
        kept = torch.unique(positions)
        if output.logits.shape[1] == len(kept):  # only the kept positions were projected
            positions = torch.searchsorted(kept, positions)
        return output.logits[rows, positions]

    def prepare(
        self,
        adapter: Any,
        items: list[tuple[str, str | None]],
        target: Any,
        *,
        truncation: bool = True,
        generation: dict[str, Any] | None = None,
        **_: Any,
    ) -> tuple[list[Any], list[tuple[int, ...]]]:
        """Prompts and continuations (forced, or generated where the target is None) tokenised as one
        sequence each; a row's target is its continuation token."""
        from .continuation import encode_continuations

        if any(pair is not None for _, pair in items):
            raise InvalidInputError(
                f"{self.model_class} continues a prompt; sentence pairs do not apply. Pass the continuation "
                "to explain as `target=` (a string), or leave target=None to explain a generated one."
            )
        prompts = [text for text, _ in items]
        continuations = self.check_targets(target, len(prompts))
        encodings = encode_continuations(adapter, prompts, continuations, truncation=truncation, generation=generation)
        return encodings, [tuple(enc.row_targets) for enc in encodings]

    def check_target(self, target: Any) -> str | None:
        """A continuation to force (a non-empty string), or None (generate it)."""
        if target is not None and (not isinstance(target, str) or not target):
            raise UnknownTargetError(
                f"target={target!r}: a causal LM's target is the continuation to explain, a non-empty string "
                "(or None to explain what the model generates)."
            )
        return target

    def check_targets(self, target: Any, n: int) -> list[str | None]:
        """One continuation per prompt; a single value applies to every prompt."""
        values = list(target) if isinstance(target, (list, tuple)) else [target] * n
        if len(values) != n:
            raise UnknownTargetError(f"Got {len(values)} targets for {n} prompts; pass one per prompt or a single one.")
        return [self.check_target(value) for value in values]

    def pick_targets(self, requested: Sequence[Sequence[int]], logits: torch.Tensor) -> torch.Tensor:
        """(rows, T) token ids explained by each row (shorter inputs repeat their last one)."""
        width = logits.shape[1]
        chosen = [list(r) + [r[-1]] * (width - len(r)) for r in requested]
        return torch.tensor(chosen, dtype=torch.long, device=logits.device)

    def probabilities(self, logits: torch.Tensor) -> torch.Tensor:
        return torch.softmax(logits.detach().float(), dim=-1)

    def score(self, logits: torch.Tensor, targets: torch.Tensor, space: str = "logit") -> torch.Tensor:
        """f_k per row: the continuation token's logit, log-probability or probability."""
        return _gather_score(logits, targets, space, sigmoid=False)

    def check_score_space(self, space: str) -> str:
        return _check_space(space)

    def describe_rows(self, logits: np.ndarray, chosen: Sequence[int], encoding: Any) -> list[dict[str, Any]]:
        """Per row: the explained token (id and text), its probability, the entropy (nats) of the
        next-token distribution it was drawn from, the position it is read at and how many leading
        tokens it can see (later ones score 0)."""
        log_p = torch.log_softmax(torch.as_tensor(logits, dtype=torch.float64), dim=-1)
        entropy = -(log_p.exp() * log_p).sum(-1)
        return [
            {
                "target": int(token),
                "label": self.tokenizer.decode([int(token)]),
                "probability": float(log_p[k, token].exp()),
                "entropy": float(entropy[k]),
                "position": position,
                "visible": position + 1,
            }
            for k, (token, position) in enumerate(zip(chosen, encoding.readout))
        ]

    def explained_text(self, encoding: Any) -> str | None:
        """What the rows explain together: the continuation."""
        return encoding.text_pair


@dataclass
class QuestionAnsweringHead(Head):
    r"""The output of an extractive question-answering model: a start and an end logit per token.

    An input is a question q and a context c, encoded as the pair (q, c). The explained answer is a
    span of context tokens s ≤ e, and it has three rows:

        start: z^start_s      end: z^end_e      span: z^start_s + z^end_e        (score="logit")

    With score="log_prob" / "prob" each distribution is a softmax over the positions an answer can
    take — the context tokens and [CLS], SQuAD 2's "no answer" — as transformers' question-answering
    pipeline normalises them: p_s = softmax(z^start)_s, p_e = softmax(z^end)_e, and the span row is
    log p_s + log p_e (or p_s · p_e, the pipeline's answer score). One forward scores all three rows.
    Targets: None (the span the pipeline picks: the highest p_s · p_e over context spans
    s ≤ e < s + `max_answer_len`), the answer's text (its first occurrence in the context) or its
    [start, end) characters in the context; see `hf_seqinterp.answers`. Rows read the outputs at
    the answer's positions, so perturbations keep every position (no token deletion).
    """

    kind: ClassVar[str] = "question_answering"
    multi_row: ClassVar[bool] = True
    allows_deletion: ClassVar[bool] = False
    rows_text: ClassVar[str] = "three explained rows per input (the answer's start, its end and the span)"
    suffixes: ClassVar[tuple[str, ...]] = ("ForQuestionAnswering",)
    description: ClassVar[str] = "extractive question answering (*ForQuestionAnswering)"
    auto_class: ClassVar[str] = "AutoModelForQuestionAnswering"
    #: the explained rows, in order
    ROWS: ClassVar[tuple[str, ...]] = ("start", "end", "span")

    model_class: str = "the model"
    problem_type: str = "single_label_classification"  # softmaxes over positions
    labels: list[str] = field(default_factory=list)  # no label names: the classes are the positions

    @classmethod
    def for_model(cls, config: Any, tokenizer: Any, model_class: str) -> QuestionAnsweringHead:
        return cls(model_class)

    def row_logits(self, output: Any, batch: Any) -> torch.Tensor:
        """(rows, 2, W): the start and the end logits at each input's positions (W: the longest input
        of the batch), −inf where no answer can be (the question, special tokens, padding)."""
        width = max(len(enc) for enc in batch.encodings)
        device = output.start_logits.device
        index = torch.as_tensor(batch.starts, device=device)[:, None] + torch.arange(width, device=device)
        index = index.clamp(max=output.start_logits.shape[1] - 1)
        logits = torch.stack([output.start_logits.gather(1, index), output.end_logits.gather(1, index)], dim=1)
        allowed = torch.zeros((len(batch), width), dtype=torch.bool)
        for row, enc in enumerate(batch.encodings):
            allowed[row, : len(enc)] = torch.as_tensor(enc.head_data["candidates"])
        return logits.masked_fill(~allowed[:, None, :].to(device), float("-inf"))

    def prepare(
        self,
        adapter: Any,
        items: list[tuple[str, Any]],
        target: Any,
        *,
        truncation: bool = True,
        max_answer_len: int | None = None,
        **_: Any,
    ) -> tuple[list[Any], list[tuple[int, int]]]:
        """(question, context) pairs tokenised, and each one's answer as (start, end) token positions."""
        from .answers import encode_questions

        return encode_questions(
            adapter, items, self.check_targets(target, len(items)), truncation=truncation, max_answer_len=max_answer_len
        )

    def check_target(self, target: Any) -> Any:
        """The answer: None (the model's), its text, or its [start, end) characters in the context."""
        if target is None or (isinstance(target, str) and target.strip()) or _is_char_span(target):
            return target
        raise UnknownTargetError(
            f"target={target!r}: a question-answering target is the answer's text (as it occurs in the context), "
            "its (start, end) character span in the context, or None for the model's answer."
        )

    def check_targets(self, target: Any, n: int) -> list[Any]:
        """One answer per input; a single value (a text, a span or None) applies to every input."""
        values = list(target) if isinstance(target, list) else [target] * n
        if len(values) != n:
            raise UnknownTargetError(f"Got {len(values)} targets for {n} inputs; pass one per input or a single one.")
        return [self.check_target(value) for value in values]

    def pick_targets(self, requested: Sequence[Sequence[int]], logits: torch.Tensor) -> torch.Tensor:
        """(rows, 2): the answer's start and end positions."""
        return torch.tensor([list(r) for r in requested], dtype=torch.long, device=logits.device)

    def probabilities(self, logits: torch.Tensor) -> torch.Tensor:
        return torch.softmax(logits.detach().float(), dim=-1)

    def score(self, logits: torch.Tensor, targets: torch.Tensor, space: str = "logit") -> torch.Tensor:
        """(rows, 3): the start row's score, the end row's, and the span's (their sum; the product of
        the probabilities for score="prob")."""
        ends = _gather_score(logits, targets, space, sigmoid=False)
        span = ends.prod(-1) if space == "prob" else ends.sum(-1)
        return torch.cat([ends, span[:, None]], dim=1)

    def check_score_space(self, space: str) -> str:
        return _check_space(space)

    def describe_rows(self, logits: np.ndarray, chosen: Sequence[int], encoding: Any) -> list[dict[str, Any]]:
        """Per row: its name, the position it explains ("target", the span's start for the span row), a
        label, its probability and the answer (text, [start, end) characters in the context)."""
        log_p = torch.log_softmax(torch.as_tensor(logits, dtype=torch.float64), dim=-1)
        start, end = (int(t) for t in chosen)
        logs = [float(log_p[0, start]), float(log_p[1, end])]
        answer = self.explained_text(encoding)
        common = {
            "answer": answer,
            "answer_start": encoding.offsets[start][0],
            "answer_end": encoding.offsets[end][1],
            "visible": len(encoding),
        }
        return [
            {"row": name, "target": position, "label": label, "probability": float(np.exp(log)), "position": position,
             **common}
            for name, position, label, log in zip(
                self.ROWS, (start, end, start), (f"start: {answer}", f"end: {answer}", answer), (*logs, sum(logs))
            )
        ]

    def explained_text(self, encoding: Any) -> str:
        """The answer: the context's characters from its start token to its end token."""
        start, end = encoding.readout[:2]
        return encoding.text_pair[encoding.offsets[start][0] : encoding.offsets[end][1]]


def _is_char_span(value: Any) -> bool:
    return (
        isinstance(value, tuple)
        and len(value) == 2
        and all(isinstance(x, (int, np.integer)) and not isinstance(x, bool) for x in value)
    )


@dataclass
class MultipleChoiceHead(ClassificationHead):
    r"""The output of a multiple-choice model: one logit per (context, option) pair.

    An input is a context x with options o_1 … o_n; the model scores every pair on its own,
    z_k = g(x, o_k), and its choice is the argmax of softmax(z). It is explained as a one-row
    classifier over the options: the Encoding is the pair (x, o_c) of the explained option c (target
    None: the model's choice; or an option's index or text), and the other options' logits are
    computed once, on the unperturbed input, and held fixed:

        f = z_c                                   (score="logit": depends on (x, o_c) alone, exactly)
        f = z_c − log Σ_k exp(z_k),  z_{k≠c} fixed    (score="log_prob"; "prob" is its exp)

    The model takes (batch, n_choices, L); each explained pair goes in as one choice of its own.
    """

    kind: ClassVar[str] = "multiple_choice"
    suffixes: ClassVar[tuple[str, ...]] = ("ForMultipleChoice",)
    description: ClassVar[str] = "multiple choice (*ForMultipleChoice)"
    auto_class: ClassVar[str] = "AutoModelForMultipleChoice"

    @classmethod
    def for_model(cls, config: Any, tokenizer: Any, model_class: str) -> MultipleChoiceHead:
        return cls([], "single_label_classification", model_class)

    def model_inputs(self, inputs: dict[str, Any]) -> dict[str, Any]:
        """Every per-token input gets the choice axis: (batch, 1, L), one choice per row."""
        return {k: v.unsqueeze(1) if isinstance(v, torch.Tensor) else v for k, v in inputs.items()}

    def labels_for(self, encoding: Any) -> list[str]:
        """The input's options."""
        return list(encoding.head_data["choices"])

    def row_logits(self, output: Any, batch: Any) -> torch.Tensor:
        """(rows, n): every option's fixed logit, the explained option's computed by this forward (n:
        the most options in the batch; −inf beyond an input's own)."""
        width = max(len(enc.head_data["logits"]) for enc in batch.encodings)
        live = output.logits[:, :1]
        fixed = torch.full((len(batch), width), float("-inf"), dtype=live.dtype, device=live.device)
        for row, enc in enumerate(batch.encodings):
            fixed[row, : len(enc.head_data["logits"])] = torch.as_tensor(enc.head_data["logits"], dtype=live.dtype)
        chosen = torch.tensor([[enc.head_data["choice"]] for enc in batch.encodings], device=live.device)
        return fixed.scatter(1, chosen, live)

    def prepare(
        self, adapter: Any, items: list[tuple[str, Any]], target: Any, *, truncation: bool = True, **_: Any
    ) -> tuple[list[Any], list[int]]:
        """The explained (context, option) pair of every input, and the option's index."""
        from .choices import encode_choices

        return encode_choices(adapter, items, self.check_targets(target, len(items)), truncation=truncation)

    def check_target(self, target: Target) -> int | str | None:
        """None (the model's choice), an option's index, or an option's text (checked per input)."""
        if target is None or (isinstance(target, str) and target) or (
            isinstance(target, (int, np.integer)) and not isinstance(target, bool) and target >= 0
        ):
            return target
        raise UnknownTargetError(
            f"target={target!r}: a multiple-choice target is an option's index (0, 1, ...), its text, or None for "
            "the model's choice."
        )


#: every head description; a new head is a class added here
HEAD_TYPES: tuple[type, ...] = (ClassificationHead, CausalLMHead, QuestionAnsweringHead, MultipleChoiceHead)

#: head description by the suffix of the model class's name (first match wins)
HEADS: dict[str, type] = {suffix: head for head in HEAD_TYPES for suffix in head.suffixes}


def head_for(model_class: str) -> type:
    """The head description of a model class name: the one its suffix names, else a classifier's
    (a user's own classifier class has no transformers suffix)."""
    return next((head for suffix, head in HEADS.items() if model_class.endswith(suffix)), ClassificationHead)


def saved_head(architectures: Sequence[str] | None) -> type:
    """The head of a saved model from its config's `architectures` (a classifier's when none is known)."""
    known = [a for a in architectures or () if a.endswith(tuple(HEADS))]
    return head_for(known[0]) if known else ClassificationHead
