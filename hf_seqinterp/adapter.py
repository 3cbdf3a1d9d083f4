"""`ModelAdapter`: the one place that knows how to call a Hugging Face sequence classifier.

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
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from . import attention_hooks
from .checks import check_model_source, did_you_mean, hub_offline, hub_unreachable_message
from .errors import (
    InputTooLongError,
    InvalidInputError,
    InvalidParameterError,
    ModelNotFoundError,
    UnknownTargetError,
    UnsupportedModelError,
)

DEFAULT_MODEL_DIR = Path(__file__).resolve().parent / "default_model"

ScoreSpace = Literal["logit", "log_prob", "prob"]
SCORE_SPACES: tuple[str, ...] = ("logit", "log_prob", "prob")
BASELINES: tuple[str, ...] = ("pad", "mask", "unk", "zero")
#: which tokens of a longer text each `truncation_side` keeps
KEPT_TOKENS: dict[str, str] = {"right": "first", "left": "last"}
Target = int | str | None

# Per-architecture facts, as data. Keys are `config.model_type`.
#   pooling: which position the classification head reads ("first", "last" or "mean").
#   position_offset: positions the model reserves before the first token (RoBERTa's padding_idx + 1).
ARCH_OVERRIDES: dict[str, dict[str, Any]] = {
    "roberta": {"position_offset": 2},
    "xlm-roberta": {"position_offset": 2},
    "camembert": {"position_offset": 2},
    "longformer": {"position_offset": 2},
    "bart": {"pooling": "last"},
}


@dataclass
class Encoding:
    """One tokenised text, unpadded."""

    text: str
    input_ids: list[int]
    tokens: list[str]
    offsets: list[tuple[int, int]]
    word_ids: list[int | None]
    special_tokens_mask: list[bool]
    warnings: list[str]

    def __len__(self) -> int:
        return len(self.input_ids)


@dataclass
class Batch:
    """Padded tensors for a list of encodings (row i holds encoding i)."""

    encodings: list[Encoding]
    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    position_ids: torch.Tensor | None
    starts: list[int]

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
        )

    @property
    def special_mask(self) -> torch.Tensor:
        """(B, L) bool: True at special tokens and at padding (positions no explainer may perturb)."""
        mask = torch.ones_like(self.input_ids, dtype=torch.bool)
        for row, enc in enumerate(self.encodings):
            mask[row, self.token_slice(row)] = torch.tensor(enc.special_tokens_mask, dtype=torch.bool)
        return mask


class _DropPaddingWarning(logging.Filter):
    """Silences transformers' warning that decoder heads cannot see padding in `inputs_embeds`:
    the adapter pads decoders on the left, so the last position is always the real last token."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "will not detect padding tokens in `inputs_embeds`" not in record.getMessage()


def _install_warning_filter() -> None:
    log = logging.getLogger("transformers")
    if not any(isinstance(f, _DropPaddingWarning) for f in log.filters):
        log.addFilter(_DropPaddingWarning())
    for name in ("transformers.modeling_layers", "transformers.models.gpt2.modeling_gpt2"):
        sub = logging.getLogger(name)
        if not any(isinstance(f, _DropPaddingWarning) for f in sub.filters):
            sub.addFilter(_DropPaddingWarning())


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
    """Wraps a `*ForSequenceClassification` model and its fast tokenizer.

    Args:
        model: any Hugging Face sequence classifier.
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
        self.model = model
        self.tokenizer = tokenizer
        self.config = model.config
        self._arch = ARCH_OVERRIDES.get(self.config.model_type, {})
        limit = self._default_max_length()
        if max_length is not None and not 2 < max_length <= limit:
            raise InvalidParameterError(f"max_length={max_length}: the model accepts 3 to {limit} tokens per text.")
        self.max_length = max_length or limit
        self.truncation_side = truncation_side or getattr(tokenizer, "truncation_side", "right")
        if self.truncation_side not in KEPT_TOKENS:
            raise InvalidParameterError(f"truncation_side={truncation_side!r}; use 'right' or 'left'.")
        _install_warning_filter()

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
        """Load a classifier and its tokenizer; `None` loads the bundled default sentiment model.

        `max_length` and `truncation_side` are the constructor's; other keywords go to the model.
        A name that looks like a local path (./x, ../x, /x, ~/x, dir/x with an existing dir) must
        exist; a Hub id fails at once, in one line, when offline or without network
        (`ModelNotFoundError`). transformers' loading bar shows only with `verbose=True`.
        """
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        path = str(name_or_path) if name_or_path is not None else str(default_model_path())
        check_model_source(path, revision)
        remote = not Path(path).expanduser().exists()
        model_kwargs.setdefault("dtype", torch.float32)
        try:
            with _quiet_loading(verbose):
                model = AutoModelForSequenceClassification.from_pretrained(path, revision=revision, **model_kwargs)
                tokenizer = AutoTokenizer.from_pretrained(path, revision=revision)
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
            pos = getattr(self.config, key, None)
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
        return int(self.config.num_labels)

    @property
    def labels(self) -> list[str]:
        id2label = getattr(self.config, "id2label", None) or {}
        return [str(id2label.get(i, id2label.get(str(i), f"LABEL_{i}"))) for i in range(self.num_labels)]

    @property
    def model_name(self) -> str | None:
        return getattr(self.config, "_name_or_path", None) or getattr(self.model, "name_or_path", None)

    @property
    def model_revision(self) -> str | None:
        return getattr(self.config, "_commit_hash", None)

    @property
    def pooling(self) -> Literal["first", "last", "mean"]:
        """Position(s) the classification head reads: first token, last real token, or the mean."""
        if "pooling" in self._arch:
            return self._arch["pooling"]
        if getattr(self.config, "classifier_pooling", None) == "mean":
            return "mean"
        return "last" if _classifies_from_last_token(self.config.model_type) else "first"

    @property
    def padding_side(self) -> Literal["left", "right"]:
        return "left" if self.pooling == "last" else "right"

    @property
    def problem_type(self) -> str:
        if self.config.problem_type:
            return self.config.problem_type
        return "regression" if self.num_labels == 1 else "single_label_classification"

    @property
    def embeddings(self) -> torch.nn.Module:
        """The input-embedding module whose output is the model's `inputs_embeds`."""
        module = self.model.get_input_embeddings()
        if module is None:
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
        `ModuleList` of `num_layers` modules."""
        n = self.num_layers
        for module in self.model.modules():
            if isinstance(module, torch.nn.ModuleList) and n and len(module) == n:
                return module
        raise UnsupportedModelError(
            f"{type(self.model).__name__} has no list of {n} transformer blocks (config.num_hidden_layers); "
            "its layers may be shared across depth (as in ALBERT), so one layer's units cannot be addressed."
        )

    def token_id(self, kind: Literal["pad", "mask", "unk"]) -> int:
        """The id of the tokenizer's pad/mask/unk token, or a clear error if it has none."""
        value = getattr(self.tokenizer, f"{kind}_token_id", None)
        if value is None:
            raise InvalidParameterError(
                f"{type(self.tokenizer).__name__} has no {kind} token, so a '{kind}' replacement is impossible "
                f"for {type(self.model).__name__}; choose another baseline (e.g. 'zero')."
            )
        return int(value)

    # ----------------------------------------------------------------- capability checks
    def _accepts_inputs_embeds(self) -> bool:
        return "inputs_embeds" in inspect.signature(self.model.forward).parameters

    def require_inputs_embeds(self, method: str) -> None:
        if not self._accepts_inputs_embeds():
            raise UnsupportedModelError(
                f"Method {method!r} runs the model from input embeddings, but "
                f"{type(self.model).__name__}.forward() takes no `inputs_embeds` argument. "
                "Use a perturbation method (e.g. 'erasure', 'lime') or a model class that accepts inputs_embeds."
            )

    def require_attentions(self, method: str) -> None:
        """Fail early when the model cannot produce attention weights (no attention layers that
        transformers can record, and no `output_attentions` argument)."""
        if attention_hooks.attention_sites(self.model):
            return
        if "output_attentions" not in inspect.signature(self.model.forward).parameters:
            raise UnsupportedModelError(
                f"Method {method!r} needs attention weights, but {type(self.model).__name__} has no attention "
                "layers that transformers can record and its forward() takes no `output_attentions`. "
                "Use a gradient or perturbation method instead."
            )

    # ----------------------------------------------------------------- tokenisation
    def encode(self, texts: Sequence[str], *, truncation: bool = True) -> list[Encoding]:
        """Tokenise texts with offsets, word ids and special-token flags (no padding).

        Texts longer than `max_length` are truncated with a warning recorded on the Encoding, or
        rejected with `InputTooLongError` when `truncation=False`.
        """
        texts = validate_texts(texts)
        enc = self.tokenizer(
            list(texts),
            return_offsets_mapping=True,
            return_special_tokens_mask=True,
            truncation=False,
            verbose=False,
        )
        too_long = [i for i, ids in enumerate(enc["input_ids"]) if len(ids) > self.max_length]
        kept = KEPT_TOKENS[self.truncation_side]
        if too_long and not truncation:
            i = too_long[0]
            raise InputTooLongError(
                f"Text {i} has {len(enc['input_ids'][i])} tokens but at most {self.max_length} are accepted. "
                f"Shorten it, or leave truncation on (the default) to explain the {kept} {self.max_length} tokens."
            )
        truncated = {}
        if too_long:
            side, self.tokenizer.truncation_side = self.tokenizer.truncation_side, self.truncation_side
            try:
                cut = self.tokenizer(
                    [texts[i] for i in too_long],
                    return_offsets_mapping=True,
                    return_special_tokens_mask=True,
                    truncation=True,
                    max_length=self.max_length,
                )
            finally:
                self.tokenizer.truncation_side = side
            truncated = {i: (cut, j, len(enc["input_ids"][i])) for j, i in enumerate(too_long)}
        out = []
        for i, text in enumerate(texts):
            source, row, warns = enc, i, []
            if i in truncated:
                source, row, full = truncated[i]
                warns.append(f"truncated from {full} to the {kept} {self.max_length} tokens")
            ids = list(source["input_ids"][row])
            specials = [bool(s) for s in source["special_tokens_mask"][row]]
            if all(specials):
                raise InvalidInputError(f"Text {i} ({text!r}) produced no tokens besides special tokens.")
            out.append(
                Encoding(
                    text=text,
                    input_ids=ids,
                    tokens=self.tokenizer.convert_ids_to_tokens(ids),
                    offsets=[tuple(o) for o in source["offset_mapping"][row]],
                    word_ids=[None if s else w for w, s in zip(source.word_ids(row), specials)],
                    special_tokens_mask=specials,
                    warnings=warns,
                )
            )
        return out

    def collate(self, encodings: Sequence[Encoding], input_ids: Sequence[Sequence[int]] | None = None) -> Batch:
        """Pad encodings into one batch on the model's device.

        `input_ids` optionally replaces each encoding's ids (same lengths not required), which lets
        perturbation methods batch edited copies of a text.
        """
        rows = [list(e.input_ids) for e in encodings] if input_ids is None else [list(r) for r in input_ids]
        width = max(len(r) for r in rows)
        ids = torch.full((len(rows), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        starts = []
        for i, r in enumerate(rows):
            start = width - len(r) if self.padding_side == "left" else 0
            ids[i, start : start + len(r)] = torch.tensor(r, dtype=torch.long)
            mask[i, start : start + len(r)] = 1
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
        )

    # ----------------------------------------------------------------- running the model
    def embed(self, input_ids: torch.Tensor) -> torch.Tensor:
        """Token ids -> the `inputs_embeds` the model's forward accepts."""
        return self.embeddings(input_ids)

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

        Models that classify from the last token always run from embeddings: from ids, their heads
        look for the last id different from `pad_token_id`, which a replacement token (or an eos
        used as pad) can fool; from embeddings they read the last position, which left padding makes
        the real last token."""
        if batch.position_ids is not None:
            kwargs.setdefault("position_ids", batch.position_ids)
        kwargs.setdefault("attention_mask", batch.attention_mask)
        if inputs_embeds is None and self.pooling == "last" and self._accepts_inputs_embeds():
            inputs_embeds = self.embed(batch.input_ids)
        with self._batchable():
            if inputs_embeds is not None:
                return self.model(inputs_embeds=inputs_embeds, **kwargs)
            return self.model(input_ids=batch.input_ids, **kwargs)

    def logits(self, batch: Batch, inputs_embeds: torch.Tensor | None = None, **kwargs: Any) -> torch.Tensor:
        """(rows, num_labels) logits; see `forward`."""
        return self.forward(batch, inputs_embeds, **kwargs).logits

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
        norms = [m for m in self.model.modules() if _is_normalization(m)]
        handles = [m.register_forward_hook(lambda *_: ran.append("norm")) for m in norms]
        handles.append(self.embeddings.register_forward_hook(lambda *_: ran.append("embeddings")))
        handles.append(first_block.register_forward_pre_hook(lambda *_: ran.append("block")))
        try:
            with torch.no_grad(), self.evaluating():
                self.forward(self.collate(self.encode(["a b"])))
        finally:
            for handle in handles:
                handle.remove()
        start = ran.index("embeddings") if "embeddings" in ran else 0
        end = ran.index("block") if "block" in ran else len(ran)
        return "norm" in ran[start:end]

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
    ) -> Any:
        """Forward a batch under eager attention, calling `on_layer(layer, weights)` with each layer's
        (rows, heads, L, L) attention weights as the layer runs (layer order, no weights kept
        afterwards); returns the model output. See `hf_seqinterp.attention_hooks`."""
        return attention_hooks.stream_attentions(
            lambda **kw: self.forward(batch, inputs_embeds, **kw, **kwargs), self.model, on_layer
        )

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
        last = self.pooling == "last"
        positions = [batch.starts[i] + (len(batch.encodings[i]) - 1 if last else 0) for i in range(len(batch))]
        return torch.tensor(positions, dtype=torch.long, device=batch.input_ids.device)

    def readout_weights(self, batch: Batch) -> torch.Tensor:
        """(rows, L) weights with which the classification head reads the final hidden states:
        one-hot at `classified_positions`, or uniform over the real tokens for mean pooling."""
        mask = batch.attention_mask.float()
        if self.pooling == "mean":
            return mask / mask.sum(-1, keepdim=True)
        weights = torch.zeros_like(mask)
        weights[torch.arange(len(batch), device=mask.device), self.classified_positions(batch)] = 1.0
        return weights

    @contextlib.contextmanager
    def _batchable(self) -> Iterator[None]:
        """Decoder heads refuse batches when `config.pad_token_id` is None; set it for the call only."""
        config = self.config
        if config.pad_token_id is not None:
            yield
            return
        config.pad_token_id = self.pad_id
        try:
            yield
        finally:
            config.pad_token_id = None

    @contextlib.contextmanager
    def evaluating(self) -> Iterator[None]:
        """Dropout off for the duration of an explanation; the model's train/eval mode is restored."""
        was_training = self.model.training
        self.model.eval()
        try:
            yield
        finally:
            self.model.train(was_training)

    # ----------------------------------------------------------------- targets and scores
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
                f"score={space!r} needs class probabilities, but {type(self.model).__name__} is a regression "
                "model; use score='logit'."
            )
        return space


def validate_texts(texts: Sequence[str]) -> list[str]:
    """Reject what cannot be explained: a non-list, non-strings, empty or whitespace-only strings."""
    if isinstance(texts, str):
        texts = [texts]
    try:
        texts = list(texts)
    except TypeError:
        raise InvalidInputError(f"Expected a string or a list of strings, got {type(texts).__name__}.") from None
    if not texts:
        raise InvalidInputError("No texts given: pass a string or a non-empty list of strings.")
    for i, t in enumerate(texts):
        if not isinstance(t, str):
            raise InvalidInputError(f"Text {i} is a {type(t).__name__} ({t!r}), not a string.")
        if not t.strip():
            raise InvalidInputError(f"Text {i} is empty or whitespace only; there is nothing to explain.")
    return texts


def default_model_path() -> Path:
    """Folder of the bundled default sentiment classifier."""
    if not (DEFAULT_MODEL_DIR / "config.json").exists():
        raise FileNotFoundError(
            f"The bundled default model is missing from {DEFAULT_MODEL_DIR}; reinstall hf-seqinterp or "
            "pass a model path or Hub id explicitly."
        )
    return DEFAULT_MODEL_DIR
