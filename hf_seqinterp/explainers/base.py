"""Explainer base class and the method registry.

An explainer is one class per method, registered by name with `@register_explainer`. Its
constructor takes the adapter plus the method's parameters (each stored under the same attribute
name, so every parameter is recorded in the Explanation); `_explain` holds only the math for a
group of similar-length texts, and the base class does everything else: input checks, tokenising,
length-grouped batching, progress, target validation and building the Explanations.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar, TypeVar, overload

import numpy as np
import torch

from ..adapter import Batch, ModelAdapter, Target
from ..checks import unknown_method_message, unknown_parameters_message
from ..concurrency import model_lock
from ..errors import InvalidInputError, InvalidParameterError, UnknownMethodError, UnsupportedModelError
from ..explanation import Explanation, public_model_name
from ..heads import HEAD_OPTIONS
from ..method_table import DEFAULT_METHOD
from ..text import Encoding, TokenizedText
from ..utils import keyword_defaults, length_grouped_batches, progress_bar
from ..validation import TextInput, check_batch_size, normalize_inputs

_REGISTRY: dict[str, type[Explainer]] = {}
logger = logging.getLogger(__name__)

E = TypeVar("E", bound="type[Explainer]")


def register_explainer(name: str, *, overwrite: bool = False) -> Callable[[E], E]:
    """Class decorator adding an explainer to the registry under `name`."""

    def decorate(cls: E) -> E:
        if name in _REGISTRY and _REGISTRY[name] is not cls and not overwrite:
            raise InvalidParameterError(
                f"An explainer named {name!r} is already registered ({_REGISTRY[name].__qualname__}); "
                "pass overwrite=True to replace it."
            )
        cls.name = name
        _REGISTRY[name] = cls
        return cls

    return decorate


def get_explainer(name: str) -> type[Explainer]:
    """The explainer class registered under `name`."""
    if not isinstance(name, str) or name not in _REGISTRY:
        raise UnknownMethodError(unknown_method_message(name, list_methods()))
    return _REGISTRY[name]


def list_methods() -> list[str]:
    """Names of all registered explanation methods, sorted."""
    return sorted(_REGISTRY)


def describe_methods() -> dict[str, str]:
    """Method name -> one-line description."""
    return {name: _REGISTRY[name].summary() for name in list_methods()}


def method_table() -> dict[str, dict[str, Any]]:
    """Every registered method as data: {name: {"summary": ..., "parameters": {name: repr(default)}}}.

    `hf_seqinterp/method_table.py` holds a copy for the command line (regenerate it with
    `python -m hf_seqinterp.explainers`).
    """
    return {
        name: {"summary": cls.summary(), "parameters": cls.parameter_defaults()}
        for name, cls in sorted(_REGISTRY.items())
    }


def applicable_explainers(
    adapter: ModelAdapter,
    methods: Sequence[str] | None = None,
    *,
    exclude: Iterable[str] = (),
    params: Mapping[str, Mapping[str, Any]] | None = None,
) -> tuple[dict[str, Explainer], dict[str, str]]:
    """Construct explainers for `adapter`: the named `methods`, or every registered one ("all that apply").

    With `methods=None`, each registered method (minus `exclude`) is built with its defaults plus
    `params[name]`; a method built with its defaults alone whose constructor raises
    `UnsupportedModelError` or `InvalidParameterError` does not apply to this model and is skipped,
    its reason logged and returned. Methods named explicitly, or given parameters, must construct
    (their errors propagate). Unknown names in `methods`, `exclude` or `params` raise
    `UnknownMethodError`.

    Returns (name -> explainer, in registry order; skipped name -> reason).
    """
    params = dict(params or {})
    exclude = set(exclude)
    for name in [*(methods or []), *exclude, *params]:
        get_explainer(name)
    names = list(methods) if methods is not None else [m for m in list_methods() if m not in exclude]
    built: dict[str, Explainer] = {}
    skipped: dict[str, str] = {}
    for name in names:
        try:
            built[name] = get_explainer(name).create(adapter, **params.get(name, {}))
        except (UnsupportedModelError, InvalidParameterError) as err:
            if methods is not None or name in params:
                raise
            skipped[name] = str(err)
            logger.info("skipping %s: %s", name, err)
    return built, skipped


#: keyword arguments of `Explainer.explain` (the rest of a call's keywords are the method's parameters)
#: (the model head's own options, `heads.*.options`, too)
CALL_OPTIONS: tuple[str, ...] = ("text_pair", "batch_size", "truncation", "progress")


def explain_with(
    adapter: ModelAdapter,
    texts: TextInput | Sequence[TextInput],
    method: str = DEFAULT_METHOD,
    target: Target | Sequence[Target] = None,
    **kwargs: Any,
) -> Explanation | list[Explanation]:
    """Build the `method` explainer for `adapter` and explain `texts`: the keywords in
    `CALL_OPTIONS` and model-head options (`heads.HEAD_OPTIONS`, checked against the adapter's head)
    go to `Explainer.explain`, all others are the method's parameters."""
    options = {k: kwargs.pop(k) for k in (*CALL_OPTIONS, *HEAD_OPTIONS) if k in kwargs}
    return get_explainer(method).create(adapter, **kwargs).explain(texts, target, **options)


def pair_inputs(
    texts: TextInput | Sequence[TextInput], text_pair: str | Sequence[str] | None = None
) -> tuple[list[tuple[str, str | None]], bool]:
    """`normalize_inputs(texts)`, with `text_pair` (one string, or one per text) as every input's
    second segment."""
    items, single = normalize_inputs(texts)
    if text_pair is None:
        return items, single
    pairs = [text_pair] * len(items) if isinstance(text_pair, str) else list(text_pair)
    if len(pairs) != len(items) or any(pair is not None for _, pair in items):
        raise InvalidInputError(
            f"text_pair gives {len(pairs)} second segment(s) for {len(items)} single text(s); pass one string, "
            "one per text, or pairs in `texts` instead."
        )
    items, _ = normalize_inputs([(text, pair) for (text, _), pair in zip(items, pairs)])
    return items, single


def hidden_size(adapter: ModelAdapter) -> int:
    """Width of the model's hidden states (768 when the config does not say), for memory estimates."""
    config = adapter.config.get_text_config() if hasattr(adapter.config, "get_text_config") else adapter.config
    return int(getattr(config, "hidden_size", None) or 768)


@dataclass
class RowResult:
    """What `_explain` returns for one input. Heads with a row axis (see `heads`) add it in front:
    attributions (T, n_tokens), logits (T, C), one target per row, and `extras["rows"]` may hold
    one dict of per-row extras each."""

    attributions: np.ndarray  # (n_tokens,) float
    logits: np.ndarray  # (num_labels,) model output on the unperturbed text
    target: int | list[Any]  # a class id; with a row axis, each row's (see the head's `pick_targets`)
    extras: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)  # added to the tokenisation's warnings


def row_gradients(
    scores: torch.Tensor, inputs: torch.Tensor, reduce: Callable[[torch.Tensor], torch.Tensor]
) -> torch.Tensor:
    """`reduce(∂ Σ_rows f / ∂inputs)` for scores f of shape (rows,), or, with a row axis (rows, T),
    for each explained row k stacked on axis 1: one backward per row through the same forward (an
    input's rows never mix: each input's score depends on its own inputs only)."""
    if scores.dim() == 1:
        return reduce(torch.autograd.grad(scores.sum(), inputs)[0])
    n = scores.shape[1]
    return torch.stack(
        [reduce(torch.autograd.grad(scores[:, k].sum(), inputs, retain_graph=k < n - 1)[0]) for k in range(n)], dim=1
    )


class Explainer:
    """Base class of every explanation method.

    Subclasses set `name` (via `@register_explainer`), the capability flags below, a docstring whose
    first line is the method's one-line description, an `__init__` whose keyword arguments are the
    method's parameters, and `_explain`.
    """

    name: ClassVar[str] = ""
    #: runs the model from `inputs_embeds` (gradients, embedding baselines); checked by `check_model`
    needs_inputs_embeds: ClassVar[bool] = False
    #: backpropagates to the input: `_explain` runs with gradients enabled (else under no_grad)
    needs_gradients: ClassVar[bool] = False
    #: needs the model's attention weights; checked by `check_model`
    needs_attentions: ClassVar[bool] = False
    #: how `Explanation.to_words()` reduces sub-word scores by default
    word_aggregation: ClassVar[str] = "sum"
    #: texts per group handed to `_explain` (the group is one length-sorted batch)
    default_batch_size: ClassVar[int] = 32
    #: explains heads with a row axis (a causal LM's continuation tokens); else refused for them
    multi_row: ClassVar[bool] = False

    def __init__(self, adapter: ModelAdapter, *, score: str = "logit"):
        self.adapter = adapter
        self.score = adapter.check_score_space(score)
        self.check_head(adapter)
        self.check_model()

    # ----------------------------------------------------------------- class helpers
    @classmethod
    def summary(cls) -> str:
        return (inspect.getdoc(cls) or cls.name).strip().splitlines()[0]

    @classmethod
    def parameter_names(cls) -> list[str]:
        return list(cls.parameter_defaults())

    @classmethod
    def parameter_defaults(cls) -> dict[str, str]:
        """Parameter name -> repr of its default ('' when it has none), subclass parameters first."""
        return keyword_defaults(cls)

    @classmethod
    def create(cls, adapter: ModelAdapter, **params: Any) -> Explainer:
        """Instantiate with a clear error for unknown parameters."""
        accepted = cls.parameter_names()
        unknown = sorted(set(params) - set(accepted))
        if unknown:
            raise InvalidParameterError(unknown_parameters_message(cls.name, unknown, accepted))
        cls.check_head(adapter)
        return cls(adapter, **params)

    @property
    def params(self) -> dict[str, Any]:
        """Every parameter of this explainer (constructor keyword arguments) with its value."""
        return {name: getattr(self, name) for name in self.parameter_names()}

    @classmethod
    def check_head(cls, adapter: ModelAdapter) -> None:
        """Refuse heads with a row axis unless the method explains rows (`multi_row`); `create` checks
        this before the method's own parameters."""
        if adapter.head.multi_row and not cls.multi_row:
            usable = ", ".join(name for name in list_methods() if _REGISTRY[name].explains_rows_of(adapter))
            raise UnsupportedModelError(
                f"Method {cls.name!r} explains one score per input, but {adapter.head.model_class} has a "
                f"{adapter.head.kind.replace('_', ' ')} head with {adapter.head.rows_text}. "
                f"Methods for it: {usable}."
            )

    @classmethod
    def explains_rows_of(cls, adapter: ModelAdapter) -> bool:
        """Whether the method explains rows and the model has the attention weights it may need."""
        if not cls.multi_row:
            return False
        try:
            if cls.needs_attentions:
                adapter.require_attentions(cls.name)
        except UnsupportedModelError:
            return False
        return True

    def check_model(self) -> None:
        """Raise `UnsupportedModelError` if the adapter's model lacks what this method needs."""
        if self.needs_gradients:
            self.adapter.require_gradients(self.name)
        elif self.needs_inputs_embeds:
            self.adapter.require_inputs_embeds(self.name)
        if self.needs_attentions:
            self.adapter.require_attentions(self.name)

    # ----------------------------------------------------------------- public API
    @overload
    def explain(self, texts: TextInput, target: Target = None, **kwargs: Any) -> Explanation: ...
    @overload
    def explain(
        self, texts: Sequence[TextInput], target: Target | Sequence[Target] = None, **kwargs: Any
    ) -> list[Explanation]: ...

    def explain(
        self,
        texts: TextInput | Sequence[TextInput],
        target: Target | Sequence[Target] = None,
        *,
        text_pair: str | Sequence[str] | None = None,
        batch_size: int | None = None,
        truncation: bool = True,
        progress: bool | None = None,
        **head_options: Any,
    ) -> Explanation | list[Explanation]:
        """Explain one input (returns an Explanation) or many (returns a list, in input order).

        Args:
            texts: a string, a sentence pair `(text, text_pair)` or `{"text": ..., "text_pair": ...}`,
                or a list of these; for a causal LM, prompts; for question answering,
                `{"question": ..., "context": ...}` dicts or (question, context) pairs; for multiple
                choice, `{"text": ..., "choices": [...]}` dicts or (text, [option, ...]) pairs.
            target: class to explain: None (the predicted class), a class id, a label name, or one
                of these per input. For a causal LM: the continuation to explain (a string,
                teacher-forced), or None to explain the one the model generates. For a token
                classifier: None (every word not predicted "O"), a label name or entity type, a
                word index, or {word index or (start, end) span: label or None}. Question
                answering: the answer's text or (start, end) characters in the context, or None
                (the model's answer). Multiple choice: an option's index or text, or None.
            text_pair: the second segment of every input (one string, or one per text), as the
                tokenizer's `text_pair`; an alternative to passing pairs in `texts`.
            batch_size: inputs per batch (sorted by length, so padding stays small).
            truncation: truncate inputs longer than the model's maximum (recorded in
                `Explanation.warnings`); with False such inputs raise `InputTooLongError`.
            progress: show a progress bar; by default only when there is more than one batch.
            head_options: options of the model's head (`adapter.head.options`). Causal LMs:
                `generation` (`generate()` options for generated continuations; default greedy,
                `max_new_tokens=20`), `contrast` (a foil continuation: rows explain
                log p(target) − log p(foil) token by token), `chat_template` (True, or a Jinja
                template: render each prompt as a chat's user turn). Token classifiers:
                `aggregation_strategy` (rows as transformers' token-classification pipeline groups
                them: "none", "simple", "first", "average", "max"; default one row per word).
                Question answering: `max_answer_len` (the longest answer, in tokens, the model's
                answer may be when target is None; default 15, as transformers' pipeline).
        """
        items, single = pair_inputs(texts, text_pair)
        encodings, targets = self.adapter.prepare(items, target, truncation=truncation, **head_options)
        explanations = self.explain_encodings(encodings, targets, batch_size=batch_size, progress=progress)
        return explanations[0] if single else explanations

    def explain_encodings(
        self,
        encodings: Sequence[Encoding],
        targets: Sequence[int | None],
        *,
        batch_size: int | None = None,
        progress: bool | None = None,
        on_batch: Callable[[int], None] | None = None,
    ) -> list[Explanation]:
        """Explain already-tokenised texts (targets already validated); `on_batch(n)` is called after
        each batch of n texts (for a caller's own progress bar).

        Thread safety: the whole call holds the model's lock (`hf_seqinterp.concurrency.model_lock`),
        so explanations requested from several threads with one model run one after another and
        each sees the model in the state it expects; the model's own state is restored at the end."""
        size = check_batch_size(batch_size) or self.default_batch_size
        groups = length_grouped_batches(
            [len(e) for e in encodings], size, equal_lengths=self.adapter.padding_sensitive
        )
        out: list[Explanation | None] = [None] * len(encodings)
        show = progress if progress is not None else len(groups) > 1
        with model_lock(self.adapter.model), self.adapter.evaluating(), \
                progress_bar(len(encodings), self.name, enabled=show) as bar:
            for group in groups:
                batch = self.adapter.collate([encodings[i] for i in group])
                with torch.enable_grad() if self.needs_gradients else torch.no_grad():
                    rows = self._explain(batch, [targets[i] for i in group])
                for i, row in zip(group, rows):
                    out[i] = self._to_explanation(encodings[i], row)
                bar.update(len(group))
                if on_batch is not None:
                    on_batch(len(group))
        return out  # type: ignore[return-value]

    # ----------------------------------------------------------------- for subclasses
    def _explain(self, batch: Batch, targets: list[int | None]) -> list[RowResult]:
        """Attributions for each row of a padded batch (targets: None = the predicted class). Runs
        with gradients enabled when the class sets `needs_gradients`, else under `torch.no_grad`."""
        raise NotImplementedError

    def _unperturbed_logits(self, batch: Batch) -> torch.Tensor:
        """The model's (rows, num_labels) logits on the batch as it is, without gradients."""
        with torch.no_grad():
            return self.adapter.logits(batch)

    def _targets(self, logits: torch.Tensor, targets: Sequence[int | None]) -> tuple[torch.Tensor, torch.Tensor]:
        """The explained class of every input (the requested one, or the predicted one for None) and
        its score f(x) in this explainer's score space, both (inputs,), or (inputs, T) for heads
        with a row axis."""
        chosen = self.adapter.pick_targets(targets, logits)
        return chosen, self.adapter.score(logits, chosen, self.score)

    def _results(
        self,
        batch: Batch,
        scores: torch.Tensor | np.ndarray | Sequence[np.ndarray],
        logits: torch.Tensor | np.ndarray,
        chosen: torch.Tensor | Sequence[int] | Sequence[Sequence[int]],
        extras: dict[str, Any] | Sequence[dict[str, Any]] | None = None,
    ) -> list[RowResult]:
        """One RowResult per input. `scores` is (inputs, L) over the padded batch, or (inputs, T, L)
        with a row axis (each input is cut to its tokens and rows), or one array per input;
        `extras` one dict for every input or one per input."""
        logits = torch.as_tensor(logits).detach().float().cpu().numpy()
        chosen = torch.as_tensor(chosen).tolist()
        padded = not isinstance(scores, (list, tuple))
        if padded:
            scores = torch.as_tensor(scores).detach().float().cpu().numpy()
        per_row = extras if isinstance(extras, (list, tuple)) else [dict(extras or {}) for _ in range(len(batch))]
        results = []
        for i, enc in enumerate(batch.encodings):
            values = scores[i][..., batch.token_slice(i)] if padded else scores[i]
            n_rows = enc.n_rows
            results.append(
                RowResult(
                    np.asarray(values if n_rows is None else values[:n_rows], dtype=np.float32),
                    logits[i] if n_rows is None else logits[i][:n_rows],
                    int(chosen[i]) if n_rows is None else chosen[i][:n_rows],
                    per_row[i],
                )
            )
        return results

    def _to_explanation(self, enc: Encoding, row: RowResult) -> Explanation:
        head = self.adapter.head
        token_fields = {f.name: getattr(enc, f.name) for f in fields(TokenizedText)}
        common = {
            "method": self.name,
            "params": self.params,
            "aggregation": self.word_aggregation,
            "model_name": public_model_name(self.adapter.model_name),
            "model_revision": self.adapter.model_revision,
            "warnings": [*enc.warnings, *row.warnings],
        }
        if head.multi_row:
            extras = dict(row.extras)
            described = head.describe_rows(row.logits, row.target, enc)
            per_row = extras.pop("rows", None) or [{} for _ in described]
            rows = [{**d, **more} for d, more in zip(described, per_row)]
            return Explanation(
                **token_fields,
                attributions=row.attributions,
                target=-1,
                target_label=head.explained_text(enc),
                probabilities=np.asarray([r["probability"] for r in rows]),
                rows=rows,
                extras={"head": head.kind, **extras},
                **common,
            )
        labels = head.labels_for(enc)
        return Explanation(
            **token_fields,
            attributions=row.attributions,
            target=int(row.target),
            target_label=labels[row.target] if row.target < len(labels) else None,
            probabilities=self.adapter.probabilities(torch.as_tensor(row.logits)).numpy()[: len(labels)],
            labels=labels,
            extras=row.extras,
            **common,
        )
