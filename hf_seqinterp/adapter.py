"""`ModelAdapter`: the one place that knows how to call a Hugging Face model (a sequence classifier
or a causal LM; what each head's output means lives in `heads`).

Explainers never touch model internals; they ask the adapter to tokenise (with offsets and word
ids), embed token ids, run the model from `inputs_embeds`, resolve targets and compute scores.

Padding: encoders are padded on the right. Models that classify from the last token (GPT-2, Llama,
Qwen2, ...) are padded on the left with explicit position ids, because with `inputs_embeds` their
heads cannot find the last non-pad token and read the last position instead; left padding puts the
real last token there, and the explicit positions make a padded row compute exactly what the
unpadded text would.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from . import attention_hooks
from .architectures import (
    ARCH_OVERRIDES,
    CLASSIFIER_POOLING,
    head_problem,
    positive_config_int,
    saved_head_problem,
    unwrap,
)
from .checks import check_model_source, hub_offline, hub_unreachable_message
from .concurrency import evaluation_mode, model_lock
from .errors import (
    InvalidParameterError,
    ModelNotFoundError,
    UnsupportedModelError,
)
from .heads import Target, head_for, saved_head
from .text import KEPT_TOKENS, Encoding, side_copy, tokenize
from .utils import length_grouped_batches
from .validation import normalize_inputs

DEFAULT_MODEL_DIR = Path(__file__).resolve().parent / "default_model"

BASELINES: tuple[str, ...] = ("pad", "mask", "unk", "eos", "bos", "zero")

# Per-architecture facts (pooling, position offsets, ...) are data in `architectures.ARCH_OVERRIDES`.


@dataclass
class Batch:
    """Padded tensors for a list of encodings (row i holds encoding i)."""

    encodings: list[Encoding]
    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    position_ids: torch.Tensor | None
    starts: list[int]
    token_type_ids: torch.Tensor | None = None
    #: for a deletion batch, each row's keep mask over its encoding's positions
    kept: list[np.ndarray] | None = None

    def __len__(self) -> int:
        return len(self.encodings)

    def token_slice(self, row: int) -> slice:
        """Positions of row `row`'s real tokens in the padded batch."""
        start = self.starts[row]
        return slice(start, start + len(self.encodings[row]))

    def take(self, rows: Sequence[int] | torch.Tensor) -> Batch:
        """A batch made of the given rows (repeats allowed), e.g. one row per integration step."""
        index = torch.as_tensor(rows, dtype=torch.long, device=self.input_ids.device)
        picked = index.tolist()
        return Batch(
            encodings=[self.encodings[i] for i in picked],
            input_ids=self.input_ids[index],
            attention_mask=self.attention_mask[index],
            position_ids=None if self.position_ids is None else self.position_ids[index],
            starts=[self.starts[i] for i in picked],
            token_type_ids=None if self.token_type_ids is None else self.token_type_ids[index],
            kept=None if self.kept is None else [self.kept[i] for i in picked],
        )

    @functools.cached_property
    def row_index(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Index of the outputs each explained row reads (`Encoding.readout`): `output[index]` is
        (rows, T, ...), T the most rows of the batch (shorter inputs repeat their last one). In a
        deletion batch a position whose token was dropped reads the last kept token before it."""
        width = max(len(e.readout or ()) for e in self.encodings)
        positions = np.zeros((len(self), width), dtype=np.int64)
        for i, enc in enumerate(self.encodings):
            read = np.asarray(enc.readout, dtype=np.int64)
            if self.kept is not None:
                read = np.maximum(np.cumsum(self.kept[i])[read] - 1, 0)
            positions[i] = np.concatenate([read, np.full(width - len(read), read[-1])]) + self.starts[i]
        index = torch.as_tensor(positions, device=self.input_ids.device)
        return torch.arange(len(self), device=index.device)[:, None], index

    @property
    def continuation_mask(self) -> torch.Tensor:
        """(B, L) bool: True at the continuation tokens of a causal LM's inputs (the tokens after
        the position the first row reads); all False for inputs without rows."""
        mask = torch.zeros_like(self.input_ids, dtype=torch.bool)
        for row, enc in enumerate(self.encodings):
            if enc.readout:
                start = self.starts[row] + enc.readout[0] + 1
                mask[row, start : self.starts[row] + len(enc)] = True
        return mask

    @property
    def special_mask(self) -> torch.Tensor:
        """(B, L) bool: True at special tokens and at padding (positions no explainer may perturb)."""
        mask = torch.ones_like(self.input_ids, dtype=torch.bool)
        for row, enc in enumerate(self.encodings):
            mask[row, self.token_slice(row)] = torch.tensor(enc.special_tokens_mask, dtype=torch.bool)
        return mask


class _DropPaddingWarning(logging.Filter):
    """Drops transformers' warning that decoder heads cannot see padding in `inputs_embeds`."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "will not detect padding tokens in `inputs_embeds`" not in record.getMessage()


@contextlib.contextmanager
def _quiet_loading(verbose: bool) -> Iterator[None]:
    """Hide transformers' "Loading weights" bar during a load unless `verbose`; the caller's
    setting is restored afterwards (warnings, such as newly initialised weights, still show)."""
    from transformers.utils import logging as hf_logging

    was_enabled = hf_logging.is_progress_bar_enabled()
    if was_enabled and not verbose:
        hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled and not verbose:
            hf_logging.enable_progress_bar()


def _is_normalization(module: torch.nn.Module) -> bool:
    """LayerNorm, RMSNorm and the models' own variants (DebertaLayerNorm, LlamaRMSNorm, ...)."""
    name = type(module).__name__
    return isinstance(module, (torch.nn.LayerNorm, torch.nn.RMSNorm)) or name.endswith(("LayerNorm", "RMSNorm"))


def _classifies_from_last_token(model_type: str) -> bool:
    from transformers.models.auto.modeling_auto import (
        MODEL_FOR_CAUSAL_LM_MAPPING_NAMES,
        MODEL_FOR_MASKED_LM_MAPPING_NAMES,
    )

    return model_type in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES and model_type not in MODEL_FOR_MASKED_LM_MAPPING_NAMES


class ModelAdapter:
    """Wraps a Hugging Face model with a head it knows (`heads.HEADS`: `*ForSequenceClassification`,
    `*ForCausalLM`) and its fast tokenizer.

    Args:
        model: a Hugging Face sequence classifier or causal language model.
        tokenizer: its fast tokenizer (offsets and word ids are required).
        max_length: maximum tokens per text (special tokens included); defaults to, and may not
            exceed, what the tokenizer and the model's position embeddings allow.
        truncation_side: which end of a longer text is kept: "right" keeps the first `max_length`
            tokens, "left" the last; defaults to the tokenizer's `truncation_side`.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        tokenizer: Any,
        *,
        max_length: int | None = None,
        truncation_side: Literal["right", "left"] | None = None,
    ):
        if not getattr(tokenizer, "is_fast", False):
            raise UnsupportedModelError(
                f"{type(tokenizer).__name__} is not a fast tokenizer; hf_seqinterp needs character offsets "
                "and word ids. Load it with AutoTokenizer.from_pretrained(..., use_fast=True)."
            )
        problem = head_problem(model)
        if problem:
            raise UnsupportedModelError(problem)
        self.model = model
        self.tokenizer = tokenizer
        self.config = model.config
        self._arch = ARCH_OVERRIDES.get(self.config.model_type, {})
        model_class = type(unwrap(model)).__name__
        self.head = head_for(model_class).for_model(self.config, tokenizer, model_class)
        limit = self._default_max_length()
        if max_length is not None and not 2 < max_length <= limit:
            raise InvalidParameterError(f"max_length={max_length}: the model accepts 3 to {limit} tokens per text.")
        self.max_length = max_length or limit
        self.truncation_side = truncation_side or getattr(tokenizer, "truncation_side", "right")
        if self.truncation_side not in KEPT_TOKENS:
            raise InvalidParameterError(f"truncation_side={truncation_side!r}; use 'right' or 'left'.")

    # ----------------------------------------------------------------- construction
    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str | Path | None = None,
        *,
        revision: str | None = None,
        device: str | torch.device | None = None,
        max_length: int | None = None,
        truncation_side: Literal["right", "left"] | None = None,
        verbose: bool = False,
        **model_kwargs: Any,
    ) -> ModelAdapter:
        """Load a model with the head its saved config's `architectures` names (`heads.HEAD_TYPES`;
        a sequence classifier when it names none) and its tokenizer; `None` loads the bundled default sentiment model.

        `max_length` and `truncation_side` are the constructor's; other keywords go to the model.
        A name that looks like a local path (./x, ../x, /x, ~/x, dir/x with an existing dir) must
        exist; a Hub id fails at once, in one line, when offline or without network
        (`ModelNotFoundError`). transformers' loading bar shows only with `verbose=True`.
        """
        import transformers

        path = str(name_or_path) if name_or_path is not None else str(default_model_path())
        check_model_source(path, revision)
        remote = not Path(path).expanduser().exists()
        model_kwargs.setdefault("dtype", torch.float32)
        try:
            config = transformers.AutoConfig.from_pretrained(path, revision=revision)
            architectures = getattr(config, "architectures", None)
            head = saved_head(architectures)
            problem = saved_head_problem(architectures) or head.config_problem(config)
            if problem:
                raise UnsupportedModelError(f"{path}: {problem}")
            auto = getattr(transformers, head.auto_class)
            with _quiet_loading(verbose):
                model = auto.from_pretrained(path, revision=revision, **model_kwargs)
                tokenizer = transformers.AutoTokenizer.from_pretrained(path, revision=revision)
        except OSError as err:
            if not remote:
                raise
            offline = hub_offline()
            reason = "HF_HUB_OFFLINE is set and it is not in the local cache" if offline else str(err).splitlines()[0]
            raise ModelNotFoundError(hub_unreachable_message(path, reason.rstrip("."), network=offline)) from err
        if device is not None:
            model.to(device)
        return cls(model.eval(), tokenizer, max_length=max_length, truncation_side=truncation_side)

    def _default_max_length(self) -> int:
        candidates = []
        tok_max = getattr(self.tokenizer, "model_max_length", None)
        if tok_max and tok_max < 1_000_000:
            candidates.append(int(tok_max))
        for key in ("max_position_embeddings", "n_positions"):
            pos = positive_config_int(self.config, key)
            if pos:
                candidates.append(int(pos) - self._arch.get("position_offset", 0))
                break
        return min(candidates) if candidates else 512

    # ----------------------------------------------------------------- model facts
    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def num_labels(self) -> int:
        return self.head.num_labels

    @property
    def labels(self) -> list[str]:
        return self.head.labels

    @property
    def model_name(self) -> str | None:
        return getattr(self.config, "_name_or_path", None) or getattr(self.model, "name_or_path", None)

    @property
    def model_revision(self) -> str | None:
        return getattr(self.config, "_commit_hash", None)

    @property
    def pooling(self) -> Literal["first", "last", "eos", "mean"]:
        """Position(s) the classification head reads: first token, last real token (found from the
        last position, or as the final eos token in the ids: "eos"), or the mean."""
        if "pooling" in self._arch:
            return self._arch["pooling"]
        configured = getattr(self.config, "classifier_pooling", None)
        if configured in CLASSIFIER_POOLING:
            return CLASSIFIER_POOLING[configured]
        return "last" if _classifies_from_last_token(self.config.model_type) else "first"

    @property
    def padding_side(self) -> Literal["left", "right"]:
        return "left" if self.pooling == "last" else "right"

    @property
    def padding_sensitive(self) -> bool:
        """Whether padding changes the outputs of the real tokens (then only texts of equal
        length share a batch)."""
        return bool(self._arch.get("padding_sensitive", False))

    @property
    def problem_type(self) -> str:
        return self.head.problem_type

    @property
    def embeddings(self) -> torch.nn.Module:
        """The input-embedding module whose output is the model's `inputs_embeds` (an encoder–decoder's
        encoder's, which may be another module than the one its decoder uses)."""
        model = self.model
        if getattr(self.config, "is_encoder_decoder", False) and hasattr(model, "get_encoder"):
            model = model.get_encoder()
        try:
            module = model.get_input_embeddings()
        except NotImplementedError:  # e.g. CANINE, which hashes characters instead of looking ids up
            module = None
        if not isinstance(module, torch.nn.Module):  # None, or a bare Parameter (Perceiver)
            raise UnsupportedModelError(f"{type(self.model).__name__} exposes no input-embedding module.")
        return module

    @property
    def pad_id(self) -> int:
        """The id that pads batches: the pad token, else eos, else unk, else 0."""
        for candidate in (self.tokenizer.pad_token_id, self.tokenizer.eos_token_id, self.tokenizer.unk_token_id):
            if candidate is not None:
                return int(candidate)
        return 0

    @property
    def layers(self) -> torch.nn.ModuleList:
        """The model's transformer blocks in order (block i outputs hidden state i + 1): the first
        `ModuleList` of `num_layers` modules. An encoder–decoder explained over source and target (a
        seq2seq LM head) runs them through two stacks, so it has no one first block."""
        if self.head.multi_row and getattr(self.config, "is_encoder_decoder", False):
            raise UnsupportedModelError(
                f"{type(unwrap(self.model)).__name__} explains source and target tokens through two stacks of blocks "
                "(encoder and decoder), not one; take gradients at the word embeddings (at='word_embeddings')."
            )
        n = self.num_layers
        for module in self.model.modules():
            blocks = isinstance(module, torch.nn.ModuleList) and not any(
                isinstance(child, torch.nn.ModuleList) for child in module
            )
            if blocks and n and len(module) == n:
                return module
        raise UnsupportedModelError(
            f"{type(self.model).__name__} has no list of {n} transformer blocks (config.num_hidden_layers); "
            "its layers may be shared across depth (as in ALBERT), so one layer's units cannot be addressed."
        )

    def token_id(self, kind: Literal["pad", "mask", "unk", "eos", "bos"]) -> int:
        """The id of the tokenizer's pad/mask/unk/eos/bos token, or a clear error if it has none."""
        value = getattr(self.tokenizer, f"{kind}_token_id", None)
        if value is None:
            raise InvalidParameterError(
                f"{type(self.tokenizer).__name__} has no {kind} token, so a '{kind}' replacement is impossible "
                f"for {type(self.model).__name__}; choose another baseline (e.g. 'zero')."
            )
        return int(value)

    # ----------------------------------------------------------------- capability checks
    @functools.cached_property
    def _forward_parameters(self) -> frozenset[str]:
        return frozenset(inspect.signature(unwrap(self.model).forward).parameters)

    def _accepts(self, argument: str) -> bool:
        """Whether the model's forward() takes `argument` (read once: every forward asks)."""
        return argument in self._forward_parameters

    def _accepts_inputs_embeds(self) -> bool:
        return self._accepts("inputs_embeds")

    def require_inputs_embeds(self, method: str) -> None:
        if not self._accepts_inputs_embeds():
            raise UnsupportedModelError(
                f"Method {method!r} runs the model from input embeddings, but "
                f"{type(self.model).__name__}.forward() takes no `inputs_embeds` argument. "
                "Use a perturbation method (e.g. 'erasure', 'lime') or a model class that accepts inputs_embeds."
            )

    def require_gradients(self, method: str) -> None:
        """Fail early when the model runs without `inputs_embeds` or cannot be differentiated in eval
        mode (`no_gradients` in the architecture facts)."""
        self.require_inputs_embeds(method)
        if "no_gradients" in self._arch:
            raise UnsupportedModelError(
                f"Method {method!r} backpropagates to the input, but {type(unwrap(self.model)).__name__}: "
                f"{self._arch['no_gradients']}. Use a perturbation method (e.g. 'erasure', 'kernel_shap')."
            )

    def require_classifier(self, feature: str) -> None:
        """Refuse `feature` for heads other than a sequence classifier's, which it does not handle yet."""
        if self.head.kind != "sequence_classification":
            raise UnsupportedModelError(
                f"{feature} handles sequence classifiers; {self.head.model_class} has a "
                f"{self.head.kind.replace('_', ' ')} head. Explain its inputs with "
                "hsi.explain_with(adapter, inputs, method, target=...) or `hf-seqinterp explain`."
            )

    def require_attentions(self, method: str) -> None:
        """Fail early when the model cannot produce attention weights (no attention layers that
        transformers can record, and no `output_attentions` argument), or gives other weights than
        softmax attention over the tokens (`no_attention_weights` in the architecture facts)."""
        name = type(unwrap(self.model)).__name__
        if "no_attention_weights" in self._arch:
            raise UnsupportedModelError(
                f"Method {method!r} needs attention weights over the tokens, but {name}: "
                f"{self._arch['no_attention_weights']}. Use a gradient or perturbation method instead."
            )
        if getattr(self.config, "is_encoder_decoder", False):
            raise UnsupportedModelError(
                f"Method {method!r} follows one stack's self-attention, but {name} is an encoder–decoder: its "
                "head reads the decoder, which sees the encoder's input only through cross-attention. Use a "
                "gradient or perturbation method instead."
            )
        if attention_hooks.attention_sites(self.model):
            return
        if "output_attentions" not in inspect.signature(unwrap(self.model).forward).parameters:
            raise UnsupportedModelError(
                f"Method {method!r} needs attention weights, but {type(self.model).__name__} has no attention "
                "layers that transformers can record and its forward() takes no `output_attentions`. "
                "Use a gradient or perturbation method instead."
            )

    # ----------------------------------------------------------------- tokenisation
    def encode(
        self,
        texts: str | Sequence[str] | Sequence[tuple[str, str]],
        *,
        truncation: bool = True,
        pair_truncation: Literal["longest_first", "only_second"] = "longest_first",
    ) -> list[Encoding]:
        """Tokenise texts or text pairs with offsets, word ids, segments and special-token flags (no
        padding). A pair is a `(text, text_pair)` tuple or a `{"text": ..., "text_pair": ...}` dict.

        Inputs longer than `max_length` are truncated with a warning recorded on the Encoding (pairs:
        the longer segment first, or the second only with `pair_truncation="only_second"`), or
        rejected with `InputTooLongError` when `truncation=False`.
        """
        items, _ = normalize_inputs(texts)
        return tokenize(
            self.tokenizer,
            items,
            max_length=self.max_length,
            truncation_side=self.truncation_side,
            truncation=truncation,
            truncating=lambda: self._truncating_tokenizer,
            pair_truncation=pair_truncation,
        )

    @functools.cached_property
    def _truncating_tokenizer(self) -> Any:
        return side_copy(self.tokenizer, self.truncation_side)

    def collate(
        self,
        encodings: Sequence[Encoding],
        input_ids: Sequence[Sequence[int]] | None = None,
        keep: Sequence[np.ndarray] | None = None,
    ) -> Batch:
        """Pad encodings into one batch on the model's device.

        `input_ids` optionally replaces each encoding's ids (same length), which lets perturbation
        methods batch edited copies of a text; `keep` (a bool mask per row) drops the positions it
        marks False from every per-token input, ids and token types alike (deletion).
        """
        rows = [list(e.input_ids) for e in encodings] if input_ids is None else [list(r) for r in input_ids]
        types = None
        if any(e.token_type_ids is not None for e in encodings):
            types = [list(e.token_type_ids or [0] * len(e)) for e in encodings]
        if keep is not None:
            rows = [np.asarray(r)[k].tolist() for r, k in zip(rows, keep)]
            types = None if types is None else [np.asarray(t)[k].tolist() for t, k in zip(types, keep)]
        width = max(len(r) for r in rows)
        ids = torch.full((len(rows), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        type_ids = None if types is None else torch.zeros((len(rows), width), dtype=torch.long)
        starts = []
        for i, r in enumerate(rows):
            start = width - len(r) if self.padding_side == "left" else 0
            ids[i, start : start + len(r)] = torch.tensor(r, dtype=torch.long)
            mask[i, start : start + len(r)] = 1
            if type_ids is not None:
                type_ids[i, start : start + len(r)] = torch.tensor(types[i], dtype=torch.long)
            starts.append(start)
        position_ids = None
        if self.padding_side == "left":
            position_ids = (mask.cumsum(-1) - 1).clamp(min=0)
        device = self.device
        return Batch(
            encodings=list(encodings),
            input_ids=ids.to(device),
            attention_mask=mask.to(device),
            position_ids=None if position_ids is None else position_ids.to(device),
            starts=starts,
            token_type_ids=None if type_ids is None else type_ids.to(device),
            kept=None if keep is None else [np.asarray(k, dtype=bool) for k in keep],
        )

    # ----------------------------------------------------------------- running the model
    def embed(self, input_ids: torch.Tensor) -> torch.Tensor:
        """Token ids -> the `inputs_embeds` the model's forward accepts."""
        embeds = self.embeddings(input_ids)
        if not isinstance(embeds, torch.Tensor):
            raise UnsupportedModelError(
                f"The input-embedding module of {type(unwrap(self.model)).__name__} returns a "
                f"{type(embeds).__name__} (a quantised embedding's values and scaling factor), not the tensor "
                "`inputs_embeds` takes, so the model cannot be run from embeddings; use a perturbation method."
            )
        return embeds

    def baseline_embeds(
        self,
        batch: Batch,
        embeds: torch.Tensor,
        kind: Literal["pad", "mask", "unk", "zero"],
        where: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """`embeds` with the positions in `where` (default: every real, non-special token) replaced
        by the embedding of the pad/mask/unk token, or by zeros. Special tokens and padding keep
        their embeddings unless `where` says otherwise."""
        if kind not in BASELINES:
            raise InvalidParameterError(f"baseline={kind!r} is not one of {', '.join(BASELINES)}.")
        where = ~batch.special_mask if where is None else where
        if kind == "zero":
            replacement = torch.zeros((), dtype=embeds.dtype, device=embeds.device)
        else:
            token = torch.tensor([self.token_id(kind)], device=batch.input_ids.device)
            replacement = self.embed(token)[0].to(embeds.dtype)
        return torch.where(where.unsqueeze(-1).to(embeds.device), replacement, embeds)

    def forward(self, batch: Batch, inputs_embeds: torch.Tensor | None = None, **kwargs: Any) -> Any:
        """Run the model on a batch, from `inputs_embeds` when given, else from the batch's token ids,
        with the batch's attention mask and position ids. Returns the model's output object.

        A head that lays out its model's inputs itself (an encoder–decoder's source and target,
        `head.model_inputs`) gets the batch; the model then runs from ids, its embedding modules
        returning their parts of `inputs_embeds`.
        Models that classify from the last token always run from embeddings: from ids, their heads
        look for the last id different from `pad_token_id`, which a replacement token (or an eos
        used as pad) can fool; from embeddings they read the last position, which left padding makes
        the real last token."""
        laid_out = self.head.model_inputs(self, batch, inputs_embeds, kwargs.get("attention_mask"))
        if laid_out is not None:
            inputs, substitutions = laid_out
            with self._batchable(), self._substituted_embeddings(substitutions):
                return self.model(**{**kwargs, **inputs})
        if batch.position_ids is not None:
            kwargs.setdefault("position_ids", batch.position_ids)
        if batch.token_type_ids is not None:
            kwargs.setdefault("token_type_ids", batch.token_type_ids)
        kwargs.setdefault("attention_mask", batch.attention_mask)
        if self._arch.get("global_attention_first"):
            kwargs.setdefault("global_attention_mask", _first_token_mask(batch.attention_mask))
        if inputs_embeds is None and self.pooling == "last" and self._accepts_inputs_embeds():
            inputs_embeds = self.embed(batch.input_ids)
        call = self.head.call_inputs
        with self._batchable(), self._without_padding_warning():
            if inputs_embeds is None:
                return self.model(**call({"input_ids": batch.input_ids, **kwargs}))
            inputs_embeds = inputs_embeds.clone()  # some models scale it in place (CTRL)
            if not self._embeds_through_ids:
                return self.model(**call({"inputs_embeds": inputs_embeds, **kwargs}))
            with self._substituted_embeddings([(self.embeddings, batch.input_ids, inputs_embeds)]):
                return self.model(**call({"input_ids": batch.input_ids, **kwargs}))

    @property
    def _embeds_through_ids(self) -> bool:
        """Whether the model must see `input_ids` even when run from embeddings (see
        `architectures`): encoder–decoder heads find the final eos and build the decoder input there."""
        return bool(self._arch.get("embed_through_ids", getattr(self.config, "is_encoder_decoder", False)))

    @contextlib.contextmanager
    def _substituted_embeddings(
        self, substitutions: Sequence[tuple[torch.nn.Module, torch.Tensor, torch.Tensor]]
    ) -> Iterator[None]:
        """Context in which each (module, input_ids, inputs_embeds) makes the embedding module return
        `inputs_embeds` when it embeds exactly `input_ids`; with several matches, the first one not
        used yet (an encoder's input before a decoder's, also when both stacks call one shared
        module). Other calls, such as an encoder–decoder classifier's shifted decoder input, are left
        alone."""
        used: set[int] = set()

        def substitute(module: torch.nn.Module, args: tuple, output: torch.Tensor) -> torch.Tensor | None:
            ids = args[0] if args else None
            matches = [
                i for i, (owner, expected, _) in enumerate(substitutions)
                if owner is module and isinstance(ids, torch.Tensor) and ids.shape == expected.shape
                and torch.equal(ids, expected)
            ]
            if not matches:
                return None
            chosen = next((i for i in matches if i not in used), matches[0])
            used.add(chosen)
            return substitutions[chosen][2]

        modules = {id(module): module for module, _, _ in substitutions}
        handles = [module.register_forward_hook(substitute) for module in modules.values()]
        try:
            yield
        finally:
            for handle in handles:
                handle.remove()
        if len(used) < len(substitutions):
            raise UnsupportedModelError(
                f"{type(unwrap(self.model)).__name__} never embedded its input ids with get_input_embeddings(), "
                "so it cannot be run from embeddings; use a perturbation method (e.g. 'erasure')."
            )

    def run_encodings(
        self, encodings: Sequence[Encoding], read: Callable[[Any, Batch], Sequence[Any]], *, max_batch_tokens: int = 8192
    ) -> list[Any]:
        """`read(output, batch)` (one value per row of the batch) for every encoding, in order: the model
        run without gradients, in eval mode, on length-sorted batches of at most `max_batch_tokens`
        padded tokens. For what a head needs to know before explaining (a QA model's answer, every
        option's logit)."""
        out: list[Any] = [None] * len(encodings)
        groups = length_grouped_batches(
            [len(e) for e in encodings], 512, max_batch_tokens, equal_lengths=self.padding_sensitive
        )
        with model_lock(self.model), self.evaluating(), torch.no_grad():
            for group in groups:
                batch = self.collate([encodings[i] for i in group])
                for i, value in zip(group, read(self.forward(batch), batch)):
                    out[i] = value
        return out

    def logits(self, batch: Batch, inputs_embeds: torch.Tensor | None = None, **kwargs: Any) -> torch.Tensor:
        """The head's row logits (see `heads`): (rows, num_labels) for a classifier, (rows, T, vocab)
        for a causal LM, which then projects only the positions its rows read where its forward takes
        `logits_to_keep`; see `forward`."""
        kwargs = {**self._head_kwargs(batch), **kwargs}
        return self.head.row_logits(self.forward(batch, inputs_embeds, **kwargs), batch)

    def _head_kwargs(self, batch: Batch) -> dict[str, Any]:
        """The head's forward arguments for `batch` (`logits_to_keep`), where the forward takes them."""
        return self.head.forward_kwargs(batch) if self._accepts("logits_to_keep") else {}

    @contextlib.contextmanager
    def differentiable_block_input(self) -> Iterator[list[torch.Tensor]]:
        """Context in which every forward hands the first transformer block, in place of its input
        hidden states h₀, a detached copy that requires grad, appended to the yielded list, so that
        ∂f/∂h₀ can be taken. h₀ is the embedding output: word + position (+ segment) embeddings,
        normalised where the model normalises them (BERT's LayerNorm)."""
        leaves: list[torch.Tensor] = []

        def swap(_module: torch.nn.Module, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
            if args:
                leaves.append(args[0].detach().requires_grad_(True))
                return (leaves[-1], *args[1:]), kwargs
            leaves.append(kwargs["hidden_states"].detach().requires_grad_(True))
            return args, {**kwargs, "hidden_states": leaves[-1]}

        handle = self.layers[0].register_forward_pre_hook(swap, with_kwargs=True)
        try:
            yield leaves
        finally:
            handle.remove()

    def _probe_batch(self) -> Batch:
        """One short input ("a b") as the head prepares it (with one generated output token where the
        head explains outputs), to trace what the model runs."""
        options = {"generation": {"max_new_tokens": 1}} if "generation" in self.head.options else {}
        encodings, _ = self.prepare([self.head.probe_item], self.head.probe_target, **options)
        return self.collate(encodings)

    @functools.cached_property
    def normalizes_embeddings(self) -> bool:
        """Whether a normalisation layer (LayerNorm, RMSNorm, ...) runs between the input embeddings
        and the first transformer block, as BERT's LayerNorm over word + position + segment
        embeddings does. Such a layer is invariant to scaling its input x, so x · ∂f/∂x = 0 and a
        word embedding's product with its gradient is exactly minus that of the other summands.
        Traced once, on a forward of one short text; False when the blocks cannot be located."""
        try:
            first_block = self.layers[0]
        except UnsupportedModelError:
            return False

        ran: list[str] = []
        handles = []
        with model_lock(self.model):  # no other thread's forward may run through the tracing hooks
            batch = self._probe_batch()
            try:
                for m in self.model.modules():
                    if _is_normalization(m):
                        handles.append(m.register_forward_hook(lambda *_: ran.append("norm")))
                handles.append(self.embeddings.register_forward_hook(lambda *_: ran.append("embeddings")))
                handles.append(first_block.register_forward_pre_hook(lambda *_: ran.append("block")))
                with torch.no_grad(), self.evaluating():
                    self.forward(batch)
            finally:
                for handle in handles:
                    handle.remove()
        if "block" not in ran:  # the list `layers` found is not what runs the hidden states
            return False
        start = ran.index("embeddings") if "embeddings" in ran else 0
        return "norm" in ran[start : ran.index("block")]

    @functools.cached_property
    def scale_invariant_embeddings(self) -> bool:
        """Whether the first normalisation the embeddings reach sees a positive multiple of them
        (Llama's RMSNorm on E, Gemma's on √d·E, BLOOM's LayerNorm on E; not BERT's on E + positions).
        Then f(αE) hardly depends on α except near α = 0, so a zero baseline puts all of f's change
        on a sliver of the integration path. Traced once: the first norm's input for E and for 2E."""
        if not self._accepts_inputs_embeds():
            return False
        inputs: list[torch.Tensor] = []
        handles = []
        batch = self._probe_batch()
        try:
            for m in self.model.modules():
                if _is_normalization(m):
                    handles.append(m.register_forward_pre_hook(lambda _m, args: inputs.append(args[0]) if args else None))
            with torch.no_grad(), self.evaluating():
                embeds = self.embed(batch.input_ids)
                first = []
                for scale in (1.0, 2.0):
                    inputs.clear()
                    self.forward(batch, embeds * scale)
                    first.append(inputs[0] if inputs else None)
        finally:
            for handle in handles:
                handle.remove()
        once, twice = first
        if once is None or twice is None or once.shape != twice.shape:
            return False
        return bool(torch.allclose(twice, 2 * once, rtol=1e-4, atol=1e-6 * float(once.abs().max())))

    @functools.cached_property
    def auto_baseline(self) -> str:
        """The baseline `baseline="auto"` stands for: the pad token; else, and instead of a pad token
        whose embedding is (near) zero where the embeddings feed a scale-invariant norm
        (`scale_invariant_embeddings`), the first of the unk, eos and bos tokens with a non-zero
        embedding; zeros only when there is none. Why: along the path from a zero vector (or the zero
        row `padding_idx` gives the pad token) such a norm is singular at α = 0 and f is flat
        elsewhere, and on other decoders (OPT) too the path from a real token's embedding needs far
        fewer steps than the one from zero (the model sweep measures both)."""
        pad = self.tokenizer.pad_token_id
        if pad is not None and not self.scale_invariant_embeddings:
            return "pad"
        with torch.no_grad():
            typical = self.embed(torch.arange(min(len(self.tokenizer), 1024), device=self.device)).norm(dim=-1).mean()
            for kind in ("pad", "unk", "eos", "bos"):
                token = getattr(self.tokenizer, f"{kind}_token_id", None)
                if token is not None and self.embed(torch.tensor([token], device=self.device)).norm() > 0.1 * typical:
                    return kind
        return "zero"

    # ----------------------------------------------------------------- attention
    def eager_attention(self) -> contextlib.AbstractContextManager[None]:
        """Context in which the model runs eager attention (the only kind that materialises the
        weights); the previous setting of every config involved is restored on exit, even on error."""
        return attention_hooks.eager_attention(self.model)

    def stream_attentions(
        self,
        batch: Batch,
        on_layer: Callable[[int, torch.Tensor], None],
        inputs_embeds: torch.Tensor | None = None,
        **kwargs: Any,
    ) -> torch.Tensor:
        """Forward a batch under eager attention, calling `on_layer(layer, weights)` with each layer's
        (rows, heads, L, L) attention weights as the layer runs (layer order, no weights kept
        afterwards); returns the head's row logits, as `logits` does. See
        `hf_seqinterp.attention_hooks`."""
        kwargs = {**self._head_kwargs(batch), **kwargs}
        output = attention_hooks.stream_attentions(
            lambda **kw: self.forward(batch, inputs_embeds, **kw, **kwargs), self.model, on_layer
        )
        return self.head.row_logits(output, batch)

    @property
    def num_layers(self) -> int | None:
        """Number of transformer layers, from the (text) config; None if the config does not say."""
        config = self.config.get_text_config() if hasattr(self.config, "get_text_config") else self.config
        value = getattr(config, "num_hidden_layers", None)
        return int(value) if value is not None else None

    def classified_positions(self, batch: Batch) -> torch.Tensor:
        """(rows,) position in the padded batch whose final hidden state the classification head
        reads: the first real token ("first" pooling) or the last real token ("last")."""
        if self.pooling == "mean":
            raise UnsupportedModelError(
                f"{type(self.model).__name__} classifies from the mean of all positions, not from one "
                "position; use readout_weights(batch)."
            )
        last = self.pooling in ("last", "eos")
        positions = [batch.starts[i] + (len(batch.encodings[i]) - 1 if last else 0) for i in range(len(batch))]
        return torch.tensor(positions, dtype=torch.long, device=batch.input_ids.device)

    def readout_weights(self, batch: Batch) -> torch.Tensor:
        """(rows, L) weights with which the classification head reads the final hidden states:
        one-hot at `classified_positions`, or uniform over the real tokens for mean pooling. Heads
        with a target axis: (rows, T, L), the weights with which each explained row reads the
        positions (the head's `readout_weights`)."""
        if self.head.multi_row:
            return self.head.readout_weights(batch)
        mask = batch.attention_mask.float()
        if self.pooling == "mean":
            return mask / mask.sum(-1, keepdim=True)
        weights = torch.zeros_like(mask)
        weights[torch.arange(len(batch), device=mask.device), self.classified_positions(batch)] = 1.0
        return weights

    @contextlib.contextmanager
    def _batchable(self) -> Iterator[None]:
        """Decoder heads refuse batches when `config.pad_token_id` is None; set it for the call only
        (on the text config, which multimodal heads read; the head then reads the last position of
        `inputs_embeds`, which left padding makes the real last token) and restore it afterwards,
        also on error, under the model's lock so no other thread sees the change."""
        config = self.config.get_text_config() if hasattr(self.config, "get_text_config") else self.config
        with model_lock(self.model):
            if getattr(config, "pad_token_id", None) is not None:
                yield
                return
            config.pad_token_id = self.pad_id
            try:
                yield
            finally:
                config.pad_token_id = None

    @contextlib.contextmanager
    def _without_padding_warning(self) -> Iterator[None]:
        """Silence, for the call only, transformers' warning that a decoder head cannot see padding
        in `inputs_embeds`: the adapter pads decoders on the left, so the last position is always
        the real last token. The filter sits on the loggers of the model's modules while the model
        runs and is removed afterwards."""
        if self.pooling != "last":
            yield
            return
        names = {"transformers.modeling_layers", type(self.model).__module__}
        loggers, quiet = [logging.getLogger(name) for name in names], _DropPaddingWarning()
        for log in loggers:
            log.addFilter(quiet)
        try:
            yield
        finally:
            for log in loggers:
                log.removeFilter(quiet)

    @contextlib.contextmanager
    def evaluating(self) -> Iterator[None]:
        """Dropout off for the duration of an explanation; every module's train/eval mode is restored."""
        with evaluation_mode(self.model):
            yield

    # ----------------------------------------------------------------- targets and scores (see heads.py)
    def prepare(
        self,
        items: list[tuple[str, str | None]],
        target: Any,
        *,
        truncation: bool = True,
        **head_options: Any,
    ) -> tuple[list[Encoding], list[Any]]:
        """Encodings and validated targets for normalised inputs, as the head defines them (a
        causal LM's continuations are tokenised with, or generated from, the prompts).
        `head_options` are the head's own (`head.options`)."""
        self.check_head_options(head_options)
        return self.head.prepare(self, items, target, truncation=truncation, **head_options)

    def check_head_options(self, options: Mapping[str, Any]) -> None:
        """Refuse (`InvalidParameterError`) options that are not the head's own (`head.options`)."""
        unknown = sorted(set(options) - set(self.head.options))
        if unknown:
            takes = ", ".join(self.head.options) or "none"
            raise InvalidParameterError(
                f"{', '.join(unknown)}: not an option of {self.head.model_class}'s "
                f"{self.head.kind.replace('_', ' ')} head (its options: {takes})."
            )

    def check_target(self, target: Target) -> int | None:
        """Validate a user-given target: None (the predicted class), a class id, or a label name."""
        return self.head.check_target(target)

    def check_targets(self, target: Target | Sequence[Target], n: int) -> list[int | None]:
        """One validated target per input; a single value applies to every input."""
        return self.head.check_targets(target, n)

    def pick_targets(self, requested: Sequence[int | None], logits: torch.Tensor) -> torch.Tensor:
        """Requested class ids, with None replaced by the predicted class."""
        return self.head.pick_targets(requested, logits)

    def probabilities(self, logits: torch.Tensor) -> torch.Tensor:
        """The model output as Explanations report it (softmax, sigmoid or the raw value)."""
        return self.head.probabilities(logits)

    def score(self, logits: torch.Tensor, targets: torch.Tensor, space: str = "logit") -> torch.Tensor:
        """The explained scalar per row: the target's logit, log-probability or probability."""
        return self.head.score(logits, targets, space)

    def check_score_space(self, space: str) -> str:
        return self.head.check_score_space(space)


def _first_token_mask(attention_mask: torch.Tensor) -> torch.Tensor:
    """Global attention on each row's first token (Longformer's default for classification)."""
    mask = torch.zeros_like(attention_mask)
    mask[:, 0] = 1
    return mask


def default_model_path() -> Path:
    """Folder of the bundled default sentiment classifier."""
    if not (DEFAULT_MODEL_DIR / "config.json").exists():
        raise FileNotFoundError(
            f"The bundled default model is missing from {DEFAULT_MODEL_DIR}; reinstall hf-seqinterp or "
            "pass a model path or Hub id explicitly."
        )
    return DEFAULT_MODEL_DIR
