"""Tiny random models for every type in transformers' `MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING_NAMES`.

Each type is built with `AutoConfig.for_model(model_type, **SMALL, **TYPES[model_type].config)` and
`AutoModelForSequenceClassification.from_config`; `TYPES` holds, as data, the per-type config
overrides and which tiny tokenizer plays the model's own (WordPiece with BERT's specials,
byte-level BPE with `<s> … </s>`, T5's `… </s>`, or a decoder's, with no special tokens and no pad).
Types that cannot be built offline from a config are listed in `CANNOT_BUILD` with the reason.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any

import torch
from tiny_models import (
    ENCODER_DECODER,
    NUM_LABELS,
    decoder_tokenizer,
    roberta_tokenizer,
    t5_tokenizer,
    wordpiece_tokenizer,
)
from transformers import AutoConfig, AutoModelForSequenceClassification, PreTrainedTokenizerFast
from transformers.models.auto.modeling_auto import MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING_NAMES

MAX_POSITIONS = 64

TOKENIZERS = {
    "wordpiece": wordpiece_tokenizer,
    "bart": roberta_tokenizer,
    "t5": t5_tokenizer,
    "decoder": decoder_tokenizer,
}
# special-token ids each tokenizer implies for the config
TOKEN_IDS = {
    "wordpiece": {
        "pad_token_id": 0,
        "bos_token_id": 2,
        "eos_token_id": 3,
        "cls_token_id": 2,
        "sep_token_id": 3,
    },
    "bart": {"pad_token_id": 1, "bos_token_id": 0, "eos_token_id": 2, "decoder_start_token_id": 2},
    "t5": {"pad_token_id": 0, "eos_token_id": 1, "decoder_start_token_id": 0},
    "decoder": {
        "pad_token_id": None,
        "bos_token_id": 0,
        "eos_token_id": 0,
        "num_key_value_heads": 1,
        "head_dim": 16,
    },
}

SMALL: dict[str, Any] = {
    "hidden_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "intermediate_size": 40,
    "max_position_embeddings": MAX_POSITIONS,
    "num_labels": NUM_LABELS,
    "id2label": {0: "negative", 1: "neutral", 2: "positive"},
    "label2id": {"negative": 0, "neutral": 1, "positive": 2},
}


@dataclass(frozen=True)
class TypeSpec:
    """How to build one model type: its tokenizer kind and config overrides."""

    tokenizer: str = "wordpiece"
    config: dict[str, Any] = field(default_factory=dict)
    #: keys of the common small config the type's config refuses to take (e.g. XLNet's unbounded length)
    drop: tuple[str, ...] = ()
    #: the sizes go into sub-configs (`config`), not the top level (multimodal and T5Gemma models)
    composite: bool = False


MLA = {"num_key_value_heads": 2, "head_dim": 8, "kv_lora_rank": 16, "q_lora_rank": 16, "qk_rope_head_dim": 8, "qk_nope_head_dim": 8,
           "qk_head_dim": 16, "v_head_dim": 16, "n_routed_experts": 4, "n_shared_experts": 1, "num_experts_per_tok": 2,
           "moe_intermediate_size": 16, "first_k_dense_replace": 1, "n_group": 1, "topk_group": 1}  # fmt: skip
MOE = {"num_experts": 4, "num_local_experts": 4, "num_experts_per_tok": 2, "moe_intermediate_size": 16,
           "shared_expert_intermediate_size": 16}  # fmt: skip
TEXT = {
    **{
        key: SMALL[key]
        for key in ("hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size")
    },
    "num_key_value_heads": 1,
    "head_dim": 16,
    "max_position_embeddings": MAX_POSITIONS,
    "vocab_size": 300,
}  # a text sub-config; the vocabulary covers every tiny tokenizer
VISION = {
    "hidden_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 16, "image_size": 28,
    "patch_size": 14, "depth": 1, "out_hidden_size": 32, "num_heads": 2,
}  # fmt: skip
DECODER_TEXT = {**TEXT, **TOKEN_IDS["decoder"], "pad_token_id": 0}
ENCODER_TEXT = {**TEXT, **TOKEN_IDS["wordpiece"]}
LINEAR_ATTENTION = {
    "layer_types": ["linear_attention", "full_attention"], "linear_key_head_dim": 8, "linear_value_head_dim": 8,
    "linear_num_key_heads": 2, "linear_num_value_heads": 2,
}  # fmt: skip

ROPE = {"rope_type": "default", "rope_theta": 10000.0}

TYPES: dict[str, TypeSpec] = {
    "cohere_compass_text": TypeSpec(
        "decoder", {"rope_parameters": {"full_attention": ROPE, "sliding_attention": ROPE}}
    ),
    "falcon": TypeSpec("decoder", drop=("head_dim",)),
    "gpt2": TypeSpec("decoder", drop=("num_key_value_heads", "head_dim")),
    "gpt-sw3": TypeSpec("decoder", drop=("num_key_value_heads", "head_dim")),
    "gemma3": TypeSpec("decoder", {"text_config": DECODER_TEXT, "vision_config": VISION}, composite=True),
    "qwen3_5": TypeSpec(
        "decoder",
        {"text_config": {**DECODER_TEXT, **LINEAR_ATTENTION}, "vision_config": VISION},
        composite=True,
    ),
    "modernvbert": TypeSpec(
        "wordpiece", {"text_config": ENCODER_TEXT, "vision_config": VISION}, composite=True
    ),
    "ultravbert": TypeSpec(
        "wordpiece", {"text_config": ENCODER_TEXT, "vision_config": VISION}, composite=True
    ),
    "t5gemma": TypeSpec("decoder", {"encoder": DECODER_TEXT, "decoder": DECODER_TEXT}, composite=True),
    "t5gemma2": TypeSpec(
        "decoder",
        {"encoder": {"text_config": DECODER_TEXT, "vision_config": VISION}, "decoder": DECODER_TEXT},
        composite=True,
    ),
    "axk1": TypeSpec("decoder", MLA),
    "axk2": TypeSpec("decoder", MLA),
    "bart": TypeSpec("bart", ENCODER_DECODER),
    "bigbird_pegasus": TypeSpec("bart", {**ENCODER_DECODER, "attention_type": "original_full"}),
    "big_bird": TypeSpec("wordpiece", {"attention_type": "original_full"}),
    "camembert": TypeSpec("bart", {"max_position_embeddings": MAX_POSITIONS + 2}),
    "convbert": TypeSpec("wordpiece", {"embedding_size": 32}),
    "deepseek_v2": TypeSpec("decoder", MLA),
    "deepseek_v3": TypeSpec("decoder", MLA),
    "diffllama": TypeSpec("decoder", {"num_key_value_heads": 2}),
    "distilbert": TypeSpec("wordpiece", {"dim": 32, "n_layers": 2, "n_heads": 2, "hidden_dim": 40}),
    "esmc": TypeSpec("wordpiece", {"num_key_value_heads": 2}),
    "funnel": TypeSpec(
        "wordpiece",
        {
            "block_sizes": [1, 1],
            "num_decoder_layers": 1,
            "d_model": 32,
            "n_head": 2,
            "d_head": 16,
            "d_inner": 40,
        },
        drop=("num_hidden_layers",),
    ),
    "gpt_neo": TypeSpec("decoder", {"num_layers": 2, "attention_types": [[["global", "local"], 1]]}),
    "gptj": TypeSpec("decoder", {"rotary_dim": 8}),
    "jamba": TypeSpec(
        "decoder",
        {
            **MOE,
            "attn_layer_period": 2,
            "attn_layer_offset": 1,
            "expert_layer_period": 2,
            "expert_layer_offset": 1,
            "mamba_d_state": 4,
            "mamba_dt_rank": 4,
            "use_mamba_kernels": False,
        },
    ),
    "jetmoe": TypeSpec("decoder", MOE),
    "layoutlmv3": TypeSpec("wordpiece", {"visual_embed": False, "coordinate_size": 6, "shape_size": 4}),
    "lilt": TypeSpec("wordpiece", {"hidden_size": 48}),
    "longformer": TypeSpec("bart", {"attention_window": 4, "max_position_embeddings": MAX_POSITIONS + 2}),
    "luke": TypeSpec(
        "bart", {"entity_vocab_size": 8, "entity_emb_size": 16, "max_position_embeddings": MAX_POSITIONS + 2}
    ),
    "mbart": TypeSpec("bart", ENCODER_DECODER),
    "minimax": TypeSpec("decoder", MOE),
    "minicpm3": TypeSpec("decoder", MLA),
    "mistral4": TypeSpec("decoder", {**MLA, "head_dim": 16}),
    "mixtral": TypeSpec("decoder", MOE),
    "modernbert-decoder": TypeSpec("decoder", {"pad_token_id": 0}),
    "mvp": TypeSpec("bart", ENCODER_DECODER),
    "mt5": TypeSpec("t5", ENCODER_DECODER),
    "opt": TypeSpec("decoder", {"ffn_dim": 40, "word_embed_proj_dim": 32}),
    "perceiver": TypeSpec(
        "wordpiece",
        {
            "d_latents": 32,
            "d_model": 32,
            "num_latents": 8,
            "num_self_attends_per_block": 2,
            "num_self_attention_heads": 2,
            "num_cross_attention_heads": 2,
        },
    ),
    "phimoe": TypeSpec("decoder", MOE),
    "plbart": TypeSpec("bart", ENCODER_DECODER),
    "qwen2_moe": TypeSpec("decoder", MOE),
    "qwen3_moe": TypeSpec("decoder", MOE),
    "qwen3_next": TypeSpec("decoder", {**MOE, **LINEAR_ATTENTION}),
    "qwen3_5_text": TypeSpec("decoder", LINEAR_ATTENTION),
    "reformer": TypeSpec(
        "wordpiece",
        {
            "axial_pos_embds_dim": [16, 16],
            "axial_pos_shape": [8, 8],
            "attn_layers": ["local", "local"],
            "attention_head_size": 16,
            "feed_forward_size": 40,
            "local_attn_chunk_length": 8,
        },
    ),
    "roberta": TypeSpec("bart", {"max_position_embeddings": MAX_POSITIONS + 2}),
    "roc_bert": TypeSpec(
        "wordpiece",
        {
            "pronunciation_embed_dim": 8,
            "pronunciation_vocab_size": 8,
            "shape_embed_dim": 8,
            "shape_vocab_size": 8,
        },
    ),
    "squeezebert": TypeSpec("wordpiece", {"embedding_size": 32}),
    "t5": TypeSpec("t5", ENCODER_DECODER),
    "umt5": TypeSpec("t5", ENCODER_DECODER),
    "xlm-roberta": TypeSpec("bart", {"max_position_embeddings": MAX_POSITIONS + 2}),
    "xlm-roberta-xl": TypeSpec("bart", {"max_position_embeddings": MAX_POSITIONS + 2}),
    "xlnet": TypeSpec(
        "wordpiece",
        {"d_model": 32, "n_layer": 2, "n_head": 2, "d_head": 16, "d_inner": 40},
        drop=("max_position_embeddings",),
    ),
    "xmod": TypeSpec("bart", {"max_position_embeddings": MAX_POSITIONS + 2, "default_language": "en_XX"}),
    "zamba": TypeSpec(
        "decoder",
        {
            "layers_block_type": ["hybrid", "hybrid"],
            "attention_head_dim": 16,
            "attention_hidden_size": 64,
            "n_mamba_heads": 2,
            "mamba_d_state": 4,
            "mamba_dt_rank": 4,
            "use_mamba_kernels": False,
        },
    ),
    "zamba2": TypeSpec(
        "decoder",
        {
            "layers_block_type": ["linear_attention", "hybrid"],
            "hybrid_layer_ids": [1],
            "attention_head_dim": 16,
            "attention_hidden_size": 64,
            "n_mamba_heads": 2,
            "mamba_d_state": 4,
            "mamba_headdim": 32,
            "chunk_size": 8,
            "use_mamba_kernels": False,
        },
    ),
}

CANNOT_BUILD: dict[str, str] = {
    "layoutlmv2": "LayoutLMv2Model needs the detectron2 library (its visual backbone), which is not installed",
}


def model_types() -> list[str]:
    """Every sequence-classification model type of the installed transformers, sorted."""
    return sorted(MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING_NAMES)


class CannotBuild(Exception):
    """A model type that cannot be built from a tiny config (the message says why)."""


@functools.cache
def build(model_type: str) -> tuple[torch.nn.Module, PreTrainedTokenizerFast]:
    """(model, tokenizer) for `model_type`: random weights, eval mode, float32."""
    if model_type in CANNOT_BUILD:
        raise CannotBuild(CANNOT_BUILD[model_type])
    spec = TYPES.get(model_type, TypeSpec(_default_tokenizer(model_type)))
    tokenizer = TOKENIZERS[spec.tokenizer]()
    if spec.composite:
        kwargs = {key: SMALL[key] for key in ("num_labels", "id2label", "label2id")} | spec.config
    else:
        kwargs = {**SMALL, "vocab_size": len(tokenizer), **TOKEN_IDS[spec.tokenizer], **spec.config}
    for key in spec.drop:
        kwargs.pop(key)
    config = AutoConfig.for_model(model_type, **kwargs)
    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_config(config).eval()
    return model, tokenizer


def _default_tokenizer(model_type: str) -> str:
    from transformers.models.auto.modeling_auto import (
        MODEL_FOR_CAUSAL_LM_MAPPING_NAMES,
        MODEL_FOR_MASKED_LM_MAPPING_NAMES,
    )

    if (
        model_type in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES
        and model_type not in MODEL_FOR_MASKED_LM_MAPPING_NAMES
    ):
        return "decoder"
    return "wordpiece"
