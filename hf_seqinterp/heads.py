"""Heads: what a target is for a model's output and how it becomes the explained scalar.

A head description turns user-given targets into ids, resolves "the predicted class", reports the
model's output as probabilities and computes the explained score in a score space (logit,
log-probability, probability).

Every head reads the model output as *row logits* of shape (rows, T, C): T explained rows per input,
each a distribution over C classes. `ClassificationHead` (`*ForSequenceClassification`: single-label
softmax, multi-label sigmoid, regression) has no row axis, (rows, C), the one-row case;
`CausalLMHead` (`*ForCausalLM`, `*LMHeadModel`) has one row per continuation token, its C classes
the vocabulary, `Seq2SeqLMHead` (text encoder–decoders, `*ForConditionalGeneration`) one row per
target token, and `TokenClassificationHead` one row per word, token or entity, each reading several
tokens: (rows, T, U, J, C) logits, one score per row. `QuestionAnsweringHead` (`*ForQuestionAnswering`)
reads a start and an end distribution over the input's positions and explains three rows (start, end,
span); `MultipleChoiceHead` (`*ForMultipleChoice`) is a one-row classifier over an input's options.
Scores and targets have the row logits' shape without the class axis (except where a row combines
others: the QA span). `HEADS` maps a model class's name to its head description.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import numpy as np
import torch

from .checks import did_you_mean
from .errors import InvalidInputError, InvalidParameterError, UnknownTargetError, UnsupportedModelError

ScoreSpace = Literal["logit", "log_prob", "prob"]
SCORE_SPACES: tuple[str, ...] = ("logit", "log_prob", "prob")
Target = int | str | None


class OneSequenceHead:
    """Defaults of the heads whose model reads each input as one token sequence."""

    #: whether inputs end in a continuation that the rows explain (integrated gradients' baseline_on="prompt")
    continuation: ClassVar[bool] = False
    #: the explained rows of a head with a row axis, in words (for messages)
    rows_text: ClassVar[str] = "several explained rows per input"
    #: a short input of this head, to trace what the model runs (`ModelAdapter._probe_batch`)
    probe_item: ClassVar[tuple[str, Any]] = ("a b", None)
    #: the probe's target: one the head can explain whatever the model predicts on the probe
    probe_target: ClassVar[Any] = None

    @classmethod
    def config_problem(cls, config: Any) -> str | None:
        """Why a model with this config cannot have this head (None: it can)."""
        return None

    def model_inputs(self, adapter: Any, batch: Any, inputs_embeds: Any, attention_mask: Any) -> None:
        """The model's inputs for a batch; None: the batch is its one sequence, laid out by the adapter."""

    def call_inputs(self, inputs: dict[str, Any]) -> dict[str, Any]:
        """The keyword arguments of the model's forward, from the (batch, L) inputs the adapter built."""
        return inputs

    def forward_kwargs(self, batch: Any) -> dict[str, Any]:
        return {}

    def explained_text(self, encoding: Any) -> str | None:
        """What the rows of a multi-row head explain together: the continuation (None: no text)."""
        return encoding.text_pair


@dataclass
class ClassificationHead(OneSequenceHead):
    """The output of a sequence classifier: one logit per label."""

    kind: ClassVar[str] = "sequence_classification"
    #: whether an input has several explained rows (a target axis); False: one row, no axis
    multi_row: ClassVar[bool] = False
    #: whether a row's output is still there when a perturbation deletes tokens (False: a row reads
    #: the outputs at its own tokens, so only replacements that keep every position apply)
    rows_survive_deletion: ClassVar[bool] = True
    #: endings of the transformers class names this head describes, what they are, and the Auto class
    #: that loads a saved model with this head
    suffixes: ClassVar[tuple[str, ...]] = ("ForSequenceClassification",)
    description: ClassVar[str] = "sequence classifiers (*ForSequenceClassification)"
    auto_class: ClassVar[str] = "AutoModelForSequenceClassification"
    #: the Hub's task category of datasets of its explanations
    hub_task: ClassVar[str] = "text-classification"
    #: keyword options of `explain` that `prepare` takes for this head (beyond target and truncation)
    options: ClassVar[tuple[str, ...]] = ()

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
        self, adapter: Any, items: list[tuple[str, str | None]], target: Any, *, truncation: bool = True
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


def _gather_score(
    logits: torch.Tensor, targets: torch.Tensor, space: str, *, sigmoid: bool, pairs: bool = False
) -> torch.Tensor:
    """The targets' entries of the logits (last axis = classes) in a score space; softmax over the
    classes, or per-class sigmoids for multi-label heads. With `pairs`, targets have a last axis of
    class ids of their own and the result keeps it."""
    if _check_space(space) == "logit":
        values = logits
    elif space == "log_prob":
        values = torch.nn.functional.logsigmoid(logits) if sigmoid else torch.log_softmax(logits, dim=-1)
    else:  # "prob"
        values = torch.sigmoid(logits) if sigmoid else torch.softmax(logits, dim=-1)
    if pairs:
        return values.gather(-1, targets.to(values.device))
    return values.gather(-1, targets.unsqueeze(-1).to(values.device)).squeeze(-1)


@dataclass
class CausalLMHead(OneSequenceHead):
    r"""The output of a causal language model: a next-token distribution at every position.

    An input is a prompt x (P tokens) and a continuation y_1..y_T, generated (target None, with
    `generate` arguments) or forced (target = the continuation text). Row k explains y_k from the
    logits at the position before it, teacher-forced on x ⊕ y:

        f_k = z_{P+k−1}[y_k]   (score="logit"),   log softmax(z_{P+k−1})[y_k]   (score="log_prob"),

    so one forward of x ⊕ y scores every row, and row k depends on the tokens before y_k only.

    Contrastive rows (`contrast=` a foil continuation b of the same length, as in Yin & Neubig 2022)
    explain why y_k rather than b_k, in the same context x ⊕ y_<k:

        f_k = z[y_k] − z[b_k] = log p(y_k) − log p(b_k)   (score="logit" or "log_prob"),
        f_k = p(y_k) − p(b_k)                              (score="prob").
    """

    kind: ClassVar[str] = "causal_lm"
    multi_row: ClassVar[bool] = True
    continuation: ClassVar[bool] = True
    rows_text: ClassVar[str] = "one explained row per output token"
    rows_survive_deletion: ClassVar[bool] = True  # a deleted readout token reads the token before it
    suffixes: ClassVar[tuple[str, ...]] = ("ForCausalLM", "LMHeadModel")
    description: ClassVar[str] = "causal language models (*ForCausalLM, *LMHeadModel)"
    auto_class: ClassVar[str] = "AutoModelForCausalLM"
    hub_task: ClassVar[str] = "text-generation"
    options: ClassVar[tuple[str, ...]] = ("generation", "contrast", "chat_template")
    #: what a row's token belongs to, in messages
    output: ClassVar[str] = "continuation"

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

    def readout_weights(self, batch: Any) -> torch.Tensor:
        """(inputs, T, L): one-hot at the position each row reads (attention methods read its row)."""
        _, positions = batch.row_index
        weights = torch.zeros((*positions.shape, batch.input_ids.shape[1]), device=batch.input_ids.device)
        return weights.scatter_(2, positions[..., None].to(weights.device), 1.0)

    def prepare(
        self,
        adapter: Any,
        items: list[tuple[str, str | None]],
        target: Any,
        *,
        truncation: bool = True,
        generation: dict[str, Any] | None = None,
        contrast: str | Sequence[str] | None = None,
        chat_template: bool | str = False,
    ) -> tuple[list[Any], list[tuple[Any, ...]]]:
        """Prompts and continuations (forced, or generated where the target is None) tokenised as one
        sequence each; a row's target is its continuation token, or (token, foil token) with
        `contrast`. `chat_template` renders each prompt as a user turn of the tokenizer's chat
        template (True) or of the given Jinja template, with the assistant's turn opened."""
        from .continuation import encode_continuations, foil_ids

        prompts, continuations = self._texts_and_targets(items, target)
        encodings = encode_continuations(
            adapter, prompts, continuations, truncation=truncation, generation=generation, chat_template=chat_template
        )
        targets: list[tuple[Any, ...]] = [tuple(enc.row_targets) for enc in encodings]
        if contrast is not None:
            foils = self.check_targets(contrast, len(prompts), what="contrast")
            targets = [tuple(zip(t, foil_ids(adapter.tokenizer, f, enc))) for t, f, enc in zip(targets, foils, encodings)]
        return encodings, targets

    def _texts_and_targets(self, items: list[tuple[str, str | None]], target: Any) -> tuple[list[str], list[str | None]]:
        """The input texts (sentence pairs are refused) and one validated target each."""
        if any(pair is not None for _, pair in items):
            raise InvalidInputError(
                f"{self.model_class} explains one input text and its {self.output}; sentence pairs do not apply. "
                f"Pass the {self.output} to explain as `target=` (a string), or leave target=None to explain a "
                "generated one."
            )
        texts = [text for text, _ in items]
        return texts, self.check_targets(target, len(texts))

    def check_target(self, target: Any, what: str = "target") -> str | None:
        """An output to force (a non-empty string), or None (generate it)."""
        if (target is not None or what != "target") and (not isinstance(target, str) or not target):
            raise UnknownTargetError(
                f"{what}={target!r}: the {what} of {self.model_class} is a {self.output}, a non-empty string"
                + (" (or None to explain what the model generates)." if what == "target" else ".")
            )
        return target

    def check_targets(self, target: Any, n: int, what: str = "target") -> list[str | None]:
        """One output per input; a single value applies to every input."""
        values = list(target) if isinstance(target, (list, tuple)) else [target] * n
        if len(values) != n:
            raise UnknownTargetError(f"Got {len(values)} {what}s for {n} inputs; pass one per input or a single one.")
        return [self.check_target(value, what) for value in values]

    def pick_targets(self, requested: Sequence[Sequence[Any]], logits: torch.Tensor) -> torch.Tensor:
        """(rows, T) token ids explained by each row, or (rows, T, 2) (token, foil) pairs for
        contrastive rows (shorter inputs repeat their last one)."""
        width = logits.shape[1]
        chosen = [list(r) + [r[-1]] * (width - len(r)) for r in requested]
        return torch.tensor(chosen, dtype=torch.long, device=logits.device)

    def probabilities(self, logits: torch.Tensor) -> torch.Tensor:
        return torch.softmax(logits.detach().float(), dim=-1)

    def score(self, logits: torch.Tensor, targets: torch.Tensor, space: str = "logit") -> torch.Tensor:
        """f_k per row: the continuation token's logit, log-probability or probability; for
        (token, foil) targets the difference of the two (`log_prob` takes the logits' difference,
        equal and exact in float)."""
        if targets.dim() == logits.dim():  # contrastive: (rows, T, 2)
            pair = _gather_score(logits, targets, "logit" if space == "log_prob" else space, sigmoid=False, pairs=True)
            return pair[..., 0] - pair[..., 1]
        return _gather_score(logits, targets, space, sigmoid=False)

    def check_score_space(self, space: str) -> str:
        return _check_space(space)

    def describe_rows(self, logits: np.ndarray, chosen: Sequence[Any], encoding: Any) -> list[dict[str, Any]]:
        """Per row: the explained token (id and text), its probability, the entropy (nats) of the
        next-token distribution it was drawn from, the position it is read at and how many leading
        tokens it sees; for contrastive rows also the foil token and its probability."""
        log_p = torch.log_softmax(torch.as_tensor(logits, dtype=torch.float64), dim=-1)
        entropy = -(log_p.exp() * log_p).sum(-1)
        rows = []
        for k, (target, position) in enumerate(zip(chosen, encoding.readout)):
            token, *foil = target if isinstance(target, (list, tuple)) else (target,)
            row = {
                "target": int(token),
                "label": self.tokenizer.decode([int(token)]),
                "probability": float(log_p[k, token].exp()),
                "entropy": float(entropy[k]),
                "position": position,
                "visible": position + 1,
            }
            if foil:
                row.update(
                    contrast=int(foil[0]),
                    contrast_label=self.tokenizer.decode([int(foil[0])]),
                    contrast_probability=float(log_p[k, foil[0]].exp()),
                )
            rows.append(row)
        return rows


@dataclass
class Seq2SeqLMHead(CausalLMHead):
    r"""The output of a text encoder–decoder (BART, T5, Marian, Pegasus, ...): the decoder's next-token
    distributions given the source.

    An input is a source x (S tokens, the encoder's) and a target y_1..y_T, generated (target None)
    or forced (the target text, tokenised as the tokenizer tokenises `text_target`). The decoder
    reads d = (d_0, y_1, ..., y_{T−1}), d_0 its start token; row k explains y_k from the decoder's
    logits at position k − 1, teacher-forced:

        f_k = z_{k−1}(x, d_0 y_<k)[y_k]   (score="logit"),   log softmax(z_{k−1})[y_k]   (score="log_prob").

    One Encoding holds x (segment 0), d_0 (a special token) and y (segment 1), so attributions cover
    source and target prefix, and row k is exactly zero on y_≥k; one forward of x and d scores
    every row. `model_inputs` splits a padded batch of such Encodings into encoder and decoder inputs.
    """

    kind: ClassVar[str] = "seq2seq_lm"
    suffixes: ClassVar[tuple[str, ...]] = ("ForConditionalGeneration", "MTModel", "ForSeq2SeqLM")
    description: ClassVar[str] = "text encoder–decoders (*ForConditionalGeneration of BART, T5, Marian, ...)"
    auto_class: ClassVar[str] = "AutoModelForSeq2SeqLM"
    hub_task: ClassVar[str] = "text2text-generation"
    options: ClassVar[tuple[str, ...]] = ("generation",)
    output: ClassVar[str] = "target text"

    @classmethod
    def config_problem(cls, config: Any) -> str | None:
        """Why the model is no text encoder–decoder: a decoder-only, vision, speech or multimodal
        generation model (its type has no text-to-text class in `AutoModelForSeq2SeqLM`'s mapping,
        or it has no encoder), or one whose decoder embeds another vocabulary than its encoder."""
        from transformers.models.auto.modeling_auto import MODEL_FOR_SEQ_TO_SEQ_CAUSAL_LM_MAPPING_NAMES

        model_type = getattr(config, "model_type", None)
        if model_type not in MODEL_FOR_SEQ_TO_SEQ_CAUSAL_LM_MAPPING_NAMES or not getattr(config, "is_encoder_decoder", False):
            return (
                f"a generation model of type {model_type!r} that is not a text encoder–decoder (vision, speech and "
                "multimodal generation models are not explained); hf_seqinterp explains text encoder–decoders "
                "(AutoModelForSeq2SeqLM: BART, T5, Marian, Pegasus, ...) and causal LMs (AutoModelForCausalLM)"
            )
        if getattr(config, "share_encoder_decoder_embeddings", True) is False:
            return (
                "its encoder and decoder embed separate vocabularies (share_encoder_decoder_embeddings=False), but "
                "source and target tokens are explained on one token axis with one embedding"
            )
        return None

    @classmethod
    def for_model(cls, config: Any, tokenizer: Any, model_class: str) -> Seq2SeqLMHead:
        problem = cls.config_problem(config)
        if problem:
            raise UnsupportedModelError(f"{model_class} is {problem}.")
        return cls(tokenizer, model_class)

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
        """Sources and targets (forced, or generated where the target is None) as one Encoding each
        (`continuation.encode_targets`); a row's target is its target token."""
        from .continuation import encode_targets

        sources, targets = self._texts_and_targets(items, target)
        encodings = encode_targets(adapter, sources, targets, truncation=truncation, generation=generation)
        return encodings, [tuple(enc.row_targets) for enc in encodings]

    def forward_kwargs(self, batch: Any) -> dict[str, Any]:
        return {}

    @staticmethod
    def decoder_starts(batch: Any) -> torch.Tensor:
        """(B,) padded-batch position of each input's decoder start token d_0: where its row 0 reads."""
        return batch.row_index[1][:, 0]

    def model_inputs(
        self, adapter: Any, batch: Any, inputs_embeds: torch.Tensor | None, attention_mask: torch.Tensor | None
    ) -> tuple[dict[str, torch.Tensor], list[tuple[torch.nn.Module, torch.Tensor, torch.Tensor]]]:
        """Encoder inputs (the tokens before d_0) and decoder inputs (d_0 and after) of each input, each
        padded on the right; with `inputs_embeds` (B, L, d), the substitutions (embedding module, ids,
        embeds) that make each stack's embedding module return its part (see `adapter.forward`).
        `attention_mask` (B, L) replaces the batch's (a perturbation that masks tokens) in both."""
        starts = torch.as_tensor(batch.starts, device=batch.input_ids.device)
        split = self.decoder_starts(batch)
        end = starts + batch.attention_mask.sum(-1)
        mask = batch.attention_mask if attention_mask is None else attention_mask
        inputs, substitutions = {}, []
        modules = (adapter.embeddings, adapter.model.get_decoder().get_input_embeddings())
        for (ids_key, mask_key), first, stop, module in zip(
            (("input_ids", "attention_mask"), ("decoder_input_ids", "decoder_attention_mask")),
            (starts, split), (split, end), modules,
        ):
            offsets = torch.arange(int((stop - first).max()), device=starts.device)
            index = (first[:, None] + offsets).clamp(max=batch.input_ids.shape[1] - 1)
            valid = offsets < (stop - first)[:, None]
            inputs[ids_key] = torch.where(valid, batch.input_ids.gather(1, index), adapter.pad_id)
            inputs[mask_key] = mask.gather(1, index) * valid
            if inputs_embeds is not None:
                picked = inputs_embeds.gather(1, index[..., None].expand(-1, -1, inputs_embeds.shape[-1]))
                substitutions.append((module, inputs[ids_key], picked * valid[..., None]))
        return inputs, substitutions

    def row_logits(self, output: Any, batch: Any) -> torch.Tensor:
        """(rows, T, vocab): the decoder logits that predict each target token (row k of an input reads
        its decoder position k − 1, or with deleted prefix tokens the last kept one before it)."""
        rows, positions = batch.row_index
        return output.logits[rows, positions - positions[:, :1]]


@dataclass
class TokenClassificationHead(ClassificationHead):
    r"""The output of a token classifier (NER, POS tagging): a classifier's label distribution at
    every token (labels, problem type and probabilities as `ClassificationHead`'s).

    An input is a text; its rows are words, tokens or entities (see `token_rows` for which, and for
    the `aggregation_strategy` of transformers' token-classification pipeline). Row k is made of
    parts W_1..W_n (words or tokens), each a set of (token, class) pairs, and explains

        f_k = (1/n) Σ_i (1/|W_i|) Σ_{(t, c) ∈ W_i} z_t[c]   (score="logit"; log softmax / softmax of
                                                            z_t for "log_prob" / "prob"),

    so one forward scores every row. Row logits are (inputs, T, U, J, C): the logits at the J tokens
    of each of the U parts of each of the T rows (padded by repeating the last token, part or row);
    the targets (inputs, T, U, J) hold each token's class, −1 where padded.
    """

    kind: ClassVar[str] = "token_classification"
    rows_text: ClassVar[str] = "one explained row per word, token or entity"
    multi_row: ClassVar[bool] = True
    rows_survive_deletion: ClassVar[bool] = False
    suffixes: ClassVar[tuple[str, ...]] = ("ForTokenClassification",)
    description: ClassVar[str] = "token classifiers (*ForTokenClassification)"
    auto_class: ClassVar[str] = "AutoModelForTokenClassification"
    hub_task: ClassVar[str] = "token-classification"
    options: ClassVar[tuple[str, ...]] = ("aggregation_strategy",)
    probe_target: ClassVar[Any] = 0  # word 0 at its predicted label: the default target needs an entity

    def row_logits(self, output: Any, batch: Any) -> torch.Tensor:
        """(inputs, T, U, J, num_labels): the logits at every token of every part of every row."""
        rows = [[row.positions for row in enc.token_rows] for enc in batch.encodings]
        index = _padded(rows, None) + torch.tensor(batch.starts)[:, None, None, None]
        device = output.logits.device
        return output.logits[torch.arange(len(rows), device=device)[:, None, None, None], index.to(device)]


    def readout_weights(self, batch: Any) -> torch.Tensor:
        """(inputs, T, L): row k reads token t with the weight its score gives z_t, Σ over the parts
        W_i ∋ t of 1 / (n |W_i|) (attention methods read these rows of the attention matrices)."""
        width = max(len(enc.token_rows) for enc in batch.encodings)
        weights = torch.zeros((len(batch), width, batch.input_ids.shape[1]))
        for i, enc in enumerate(batch.encodings):
            for k in range(width):
                row = enc.token_rows[min(k, len(enc.token_rows) - 1)]
                for part in row.positions:
                    for t in part:
                        weights[i, k, batch.starts[i] + t] += 1.0 / (len(row.positions) * len(part))
        return weights.to(batch.input_ids.device)

    def prepare(
        self,
        adapter: Any,
        items: list[tuple[str, str | None]],
        target: Any,
        *,
        truncation: bool = True,
        aggregation_strategy: str | None = None,
    ) -> tuple[list[Any], list[tuple[Any, ...]]]:
        """Tokenise the texts and find each one's rows (`token_rows.encode_token_rows`); a row's
        target is the class of each token it reads, grouped by part."""
        from .token_rows import encode_token_rows

        targets = self.check_targets(target, len(items))
        encodings = encode_token_rows(adapter, items, targets, aggregation_strategy, truncation=truncation)
        return encodings, [tuple(row.classes for row in enc.token_rows) for enc in encodings]

    def check_target(self, target: Any) -> Any:
        """None (every word not predicted as "O"), a label name or entity type (the rows predicted as
        it), a word index, or {word index or (start, end) character span: label or None}."""
        from .token_rows import check_target

        return check_target(target, self.labels)

    def check_targets(self, target: Any, n: int) -> list[Any]:
        """One target per text; a single value (not a list) applies to every text."""
        values = list(target) if isinstance(target, (list, tuple)) else [target] * n
        if len(values) != n:
            raise UnknownTargetError(f"Got {len(values)} targets for {n} texts; pass one per text or a single one.")
        return [self.check_target(value) for value in values]

    def pick_targets(self, requested: Sequence[Any], logits: torch.Tensor) -> torch.Tensor:
        """(inputs, T, U, J) class of each token of each part of each row, −1 where padded; requested
        per input: rows of parts of classes (as `prepare` gives them, or as this returns them)."""
        kept = [[[[c for c in part if c >= 0] for part in row] for row in rows] for rows in requested]
        chosen = _padded([[[part for part in row if part] for row in rows] for rows in kept], -1, shape=logits.shape[1:4])
        return chosen.to(logits.device)

    def score(self, logits: torch.Tensor, targets: torch.Tensor, space: str = "logit") -> torch.Tensor:
        """f_k per row: the mean over its parts of the mean over each part's tokens of their class's
        logit, log-probability or probability."""
        read = (targets >= 0).to(logits.device)
        values = super().score(logits, targets.clamp(min=0), space)
        values = torch.where(read, values, torch.zeros((), dtype=values.dtype, device=values.device))
        tokens = read.sum(-1)
        parts = values.sum(-1) / tokens.clamp(min=1)
        return parts.sum(-1) / (tokens > 0).sum(-1)

    def describe_rows(self, logits: np.ndarray, chosen: Sequence[Any], encoding: Any) -> list[dict[str, Any]]:
        """Per row: its label, text and [start, end) characters, the tokens it reads with their
        classes (grouped by part), its probability (the mean over parts of their tokens' mean: the
        pipeline's score), and its first token's class (`target`) and position. Every row sees the
        whole text."""
        probs = self.probabilities(torch.as_tensor(logits, dtype=torch.float64)).double().numpy()
        return [
            {
                "target": row.classes[0][0],
                "label": row.label,
                "text": encoding.text[row.start : row.end],
                "start": row.start,
                "end": row.end,
                "positions": [list(part) for part in row.positions],
                "classes": [list(part) for part in row.classes],
                "probability": float(
                    np.mean([np.mean([probs[k, u, j, c] for j, c in enumerate(part)]) for u, part in enumerate(row.classes)])
                ),
                "position": row.positions[0][0],
                "visible": len(encoding),
            }
            for k, row in enumerate(encoding.token_rows)
        ]


@dataclass
class QuestionAnsweringHead(OneSequenceHead):
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
    rows_survive_deletion: ClassVar[bool] = False
    rows_text: ClassVar[str] = "three explained rows per input (the answer's start, its end and the span)"
    suffixes: ClassVar[tuple[str, ...]] = ("ForQuestionAnswering",)
    description: ClassVar[str] = "extractive question answering (*ForQuestionAnswering)"
    auto_class: ClassVar[str] = "AutoModelForQuestionAnswering"
    hub_task: ClassVar[str] = "question-answering"
    options: ClassVar[tuple[str, ...]] = ("max_answer_len",)
    probe_item: ClassVar[tuple[str, Any]] = ("a", "b")
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

    def readout_weights(self, batch: Any) -> torch.Tensor:
        """(inputs, 3, L): the start row reads the answer's start token, the end row its end token, and
        the span row both, half each (attention methods read these rows of the attention matrices)."""
        _, positions = batch.row_index
        weights = torch.zeros((*positions.shape, batch.input_ids.shape[1]), device=batch.input_ids.device)
        weights.scatter_(2, positions[..., None].to(weights.device), 1.0)
        weights[:, 2] = 0.5 * (weights[:, 0] + weights[:, 1])
        return weights

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
    hub_task: ClassVar[str] = "multiple-choice"
    options: ClassVar[tuple[str, ...]] = ()
    probe_item: ClassVar[tuple[str, Any]] = ("a", ("b", "c"))

    @classmethod
    def for_model(cls, config: Any, tokenizer: Any, model_class: str) -> MultipleChoiceHead:
        return cls([], "single_label_classification", model_class)

    def call_inputs(self, inputs: dict[str, Any]) -> dict[str, Any]:
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


def _padded(nested: Sequence[Sequence[Sequence[Sequence[int]]]], fill: int | None, shape: Sequence[int] | None = None) -> torch.Tensor:
    """(inputs, T, U, J) long tensor from inputs → rows → parts → token values. Missing rows repeat
    the last one; missing parts and tokens are `fill`, or repeat the last one where `fill` is None."""
    width, parts, depth = shape or (
        max(len(rows) for rows in nested),
        max(len(row) for rows in nested for row in rows),
        max(len(part) for rows in nested for row in rows for part in row),
    )
    out = torch.full((len(nested), width, parts, depth), -1 if fill is None else fill, dtype=torch.long)
    for i, rows in enumerate(nested):
        for k in range(width):
            row = rows[min(k, len(rows) - 1)]
            for u in range(parts if fill is None else len(row)):
                part = row[min(u, len(row) - 1)]
                out[i, k, u, : len(part)] = torch.tensor(part)
                if fill is None:
                    out[i, k, u, len(part) :] = part[-1]
    return out


#: every head description; a new head is a class added here
HEAD_TYPES: tuple[type, ...] = (
    ClassificationHead, CausalLMHead, Seq2SeqLMHead, TokenClassificationHead, QuestionAnsweringHead, MultipleChoiceHead
)

#: every head's `explain` options
HEAD_OPTIONS: tuple[str, ...] = tuple(dict.fromkeys(o for head in HEAD_TYPES for o in head.options))

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
