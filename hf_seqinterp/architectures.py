"""Per-architecture facts, as data: what the adapter must know about a model type to call it exactly
as the model calls itself. Keys are `config.model_type`; every fact was found by the model sweep
(`tests/sweep`, table in docs/models.md), which checks each one against a direct model call.

Facts (all optional):
    pooling: which position the classification head reads: "first", "last" (the last real token,
        found by the head from `inputs_embeds` as the last position: decoders are padded on the
        left), "eos" (the last real token, which the head finds in `input_ids` as the final eos or
        the last non-pad token: encoder–decoder classifiers; padded on the right) or "mean". Default: what `config.classifier_pooling` says
        (`CLASSIFIER_POOLING`), else "last" for causal-LM types and "first" for the others.
    position_offset: positions the model reserves before the first token (RoBERTa's padding_idx + 1).
    embed_through_ids: the model needs `input_ids` even when explained from embeddings (its head
        finds eos tokens in them, its decoder input is built from them, or it rescales the
        embeddings by what the ids contain); the adapter then runs it from the ids and substitutes
        the output of its input-embedding module. Encoder–decoder models always do.
    global_attention_first: the model takes a `global_attention_mask`, built from `input_ids` with
        global attention on the first token when not given; the adapter passes it explicitly.
    padding_sensitive: padding changes the outputs of the real tokens (Fourier mixing, convolutions
        or pooling over all positions), so only texts of equal length are batched together.
    no_gradients: why the model cannot be differentiated in eval mode; gradient methods are refused.
    no_attention_weights: why the model's attention outputs are not (rows, heads, L, L) softmax
        weights over the tokens; attention methods are refused with this reason.
"""

from __future__ import annotations

from typing import Any

import torch

from .errors import UnsupportedModelError
from .heads import HEAD_TYPES, HEADS

ARCH_OVERRIDES: dict[str, dict[str, Any]] = {
    "roberta": {"position_offset": 2},
    "xlm-roberta": {"position_offset": 2},
    "camembert": {"position_offset": 2},
    "longformer": {
        "position_offset": 2,
        "global_attention_first": True,
        "no_attention_weights": "its local attention returns sliding-window weights (L × window), not L × L",
    },
    "bart": {"pooling": "eos"},
    "mbart": {"pooling": "eos"},
    "plbart": {"pooling": "eos"},
    "mvp": {"pooling": "eos"},
    "bigbird_pegasus": {"pooling": "eos"},
    "t5": {"pooling": "eos"},
    "mt5": {"pooling": "eos"},
    "umt5": {"pooling": "eos"},
    "t5gemma": {"pooling": "eos", "padding_sensitive": True},
    "t5gemma2": {"pooling": "eos", "padding_sensitive": True},
    "mistral4": {"pooling": "last"},  # a decoder with no causal-LM class registered
    "reformer": {
        "no_gradients": "its reversible layers recompute activations during the backward pass only in training mode",
        "no_attention_weights": "its chunked local attention returns L × chunk weights, not L × L",
    },
    "esm": {"embed_through_ids": True},
    "layoutlmv3": {"embed_through_ids": True},
    "perceiver": {
        "no_attention_weights": "its layers attend from a fixed set of latent vectors, not between the tokens"
    },
    "minimax": {
        "no_attention_weights": "its lightning (linear) attention layers compute no attention matrix"
    },
    "esmc": {"embed_through_ids": True},
    "convbert": {"padding_sensitive": True},
    "mobilebert": {"padding_sensitive": True},
    "fnet": {"padding_sensitive": True},
    "nystromformer": {"padding_sensitive": True},
    "yoso": {
        "padding_sensitive": True,
        "no_attention_weights": "its attention is a hashing (LSH) estimate that computes no attention matrix",
    },
    "canine": {
        "padding_sensitive": True,
        "no_attention_weights": "its deep layers attend over downsampled character blocks, not over the tokens",
    },
    "funnel": {
        "no_attention_weights": "its pooled blocks shorten the sequence, so later layers do not attend over the tokens"
    },
    "squeezebert": {"no_attention_weights": "its attention outputs are pre-softmax scores, not weights"},
}

#: read-out of heads configured by `config.classifier_pooling` (ModernBERT, EuroBERT: "late" averages
#: the per-token outputs of the head's dense layer, so every real token is read)
CLASSIFIER_POOLING: dict[str, str] = {"cls": "first", "bos": "first", "mean": "mean", "late": "mean"}

#: class-name endings of heads other than sequence classification, and what they are
OTHER_HEADS: dict[str, str] = {
    "ForMaskedLM": "a masked language-modelling head",
    "ForPreTraining": "a pre-training head",
    "ForNextSentencePrediction": "a next-sentence-prediction head",
}
#: class-name suffixes of the heads hf_seqinterp explains (`heads.HEADS` describes each)
SUPPORTED_HEADS: tuple[str, ...] = tuple(HEADS)
SUPPORTED_HEADS_TEXT = ", ".join(head.description for head in HEAD_TYPES)
AUTO_CLASSES_TEXT = " or ".join(head.auto_class for head in HEAD_TYPES)


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The module whose code runs: `torch.compile` wraps a model in an OptimizedModule whose
    `forward(*args, **kwargs)` hides the signature the adapter inspects."""
    return getattr(model, "_orig_mod", model)


def head_problem(model: torch.nn.Module) -> str | None:
    """Why hf_seqinterp cannot explain `model`'s head (None when it can, or when its class is not a
    transformers head, e.g. a user's own classifier)."""
    name = type(unwrap(model)).__name__
    if name.endswith(SUPPORTED_HEADS) or type(unwrap(model)).__module__.startswith("peft"):
        return None
    kind = next((kind for suffix, kind in OTHER_HEADS.items() if name.endswith(suffix)), None)
    if kind is None and getattr(unwrap(model), "base_model", None) is unwrap(model):
        kind = "no task head (a bare base model)"
    if kind is None:
        return None
    return (
        f"{name} has {kind}; hf_seqinterp explains {SUPPORTED_HEADS_TEXT}. Load the model with "
        f"{AUTO_CLASSES_TEXT}."
    )


def saved_head_problem(architectures: list[str] | None) -> str | None:
    """Why a saved model whose config lists `architectures` has no head hf_seqinterp explains (None
    if it has, or the config does not say)."""
    if not architectures or any(a.endswith(SUPPORTED_HEADS) for a in architectures):
        return None
    return (
        f"the saved model is a {', '.join(architectures)}, not one of the {SUPPORTED_HEADS_TEXT}; loading it as a "
        "classifier would add a randomly initialised classification head, whose explanations mean "
        "nothing. Pass a fine-tuned sequence classifier."
    )


def positive_config_int(config: Any, key: str) -> int | None:
    """`config.<key>` as a positive int; None when absent, unbounded (XLNet's -1) or refused."""
    try:
        value = getattr(config, key, None)
    except NotImplementedError:  # XLNet: "no sequence length limit"
        return None
    return int(value) if isinstance(value, int) and value > 0 else None


def routes_experts(config: Any) -> bool:
    """Whether the model sends each token to its top-k experts (a mixture of experts): the score then
    jumps where the routing changes, and no gradient sees a jump."""
    text = config.get_text_config() if hasattr(config, "get_text_config") else config
    return bool(getattr(text, "num_experts_per_tok", None))


def is_peft_model(model: torch.nn.Module) -> bool:
    """Whether PEFT adapters (LoRA, ...) wrap layers of the model."""
    return any(type(m).__module__.startswith("peft.") for m in unwrap(model).modules())


def require_rules(method: str, model: torch.nn.Module, supported: Any, missing: dict[str, str], default: str) -> None:
    """Refuse, with the reason, a model that a rule-based method (contextual decomposition,
    relevance propagation) has no rules for: PEFT adapters, or a model type outside `supported`
    (`missing` says why for known types, `default` for the rest)."""
    model = unwrap(model)
    name, model_type = type(model).__name__, getattr(model.config, "model_type", None)
    if is_peft_model(model):
        raise UnsupportedModelError(
            f"{method} has no rules for the PEFT adapters (LoRA, ...) in {name}, which change what its layers "
            "compute; merge them first (model.merge_and_unload()) or use a model-agnostic method (e.g. "
            "'integrated_gradients')."
        )
    if model_type not in supported:
        raise UnsupportedModelError(
            f"{method} does not support {name} (model_type={model_type!r}): {missing.get(model_type, default)}. "
            f"Supported model types: {', '.join(sorted(supported))}. Use a model-agnostic method (e.g. "
            "'integrated_gradients')."
        )
