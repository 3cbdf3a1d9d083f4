"""Per-family adapters for contextual decomposition: which module of a Hugging Face classifier plays
which role. This is the one place where the decomposition reads model internals; the rules in
`rules.py` and the forward in `propagate.py` only see the `ModelSpec` built here.

Supported families (keys of `ARCHITECTURES`, by `config.model_type`):
* BERT layout (post-LN, absolute positions): bert, roberta, electra (+ its embedding projection);
* distilbert (post-LN, ReLU head);
* gpt2 (pre-LN, learned positions, causal, last-token read-out);
* llama and qwen2 (pre-RMSNorm, rotary positions, grouped-query attention, gated SiLU MLP).

What is split at the input: the embedding module's output at each position (for BERT-likes the
post-LayerNorm sum of word + position + token-type embeddings, as in CD-T; for GPT-2 word +
position embedding; for Llama-likes the word embedding). Position t's whole vector goes to β when
t ∈ S, else to γ.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from ..adapter import Batch, ModelAdapter
from ..errors import UnsupportedModelError

Activation = Callable[[torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class Affine:
    """y = x Wᵀ + b; weight is (out, in)."""

    weight: torch.Tensor
    bias: torch.Tensor | None = None


@dataclass(frozen=True)
class Norm:
    """LayerNorm (rms=False) or RMSNorm (rms=True) over the last dimension."""

    weight: torch.Tensor | None
    bias: torch.Tensor | None
    eps: float
    rms: bool = False


@dataclass(frozen=True)
class Block:
    """One transformer layer: attention and MLP sublayers, each with a residual and a norm that is
    applied before the sublayer (pre_norm) or after the residual sum (post-norm, BERT)."""

    query: Affine
    key: Affine
    value: Affine
    out: Affine
    attn_norm: Norm
    mlp_in: Affine
    mlp_out: Affine
    mlp_norm: Norm
    act: Activation
    num_heads: int
    num_kv_heads: int
    scaling: float
    pre_norm: bool
    mlp_gate: Affine | None = None  # gated MLP: out(act(gate x) ⊙ in x)


@dataclass(frozen=True)
class ModelSpec:
    """Everything the two-stream forward needs to know about one model."""

    family: str
    embed: Callable[[Batch], torch.Tensor]  # (B, L, d): the vectors split between β and γ
    stem: tuple[Affine, ...]  # affine maps between the split and the first layer
    blocks: tuple[Block, ...]
    final_norm: Norm | None
    head: tuple[Affine | Activation, ...]  # on the read-out position; the last op is the classifier
    causal: bool
    rotary: Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]] | None = None


def _linear(module: torch.nn.Module) -> Affine:
    return Affine(module.weight, module.bias)


def _layer_norm(module: torch.nn.Module) -> Norm:
    return Norm(module.weight, module.bias, float(module.eps))


def _rms_norm(module: torch.nn.Module) -> Norm:
    eps = getattr(module, "variance_epsilon", None) or getattr(module, "eps")
    return Norm(module.weight, None, float(eps), rms=True)


def _bert_blocks(encoder_layers, num_heads: int) -> tuple[Block, ...]:
    return tuple(
        Block(
            query=_linear(layer.attention.self.query),
            key=_linear(layer.attention.self.key),
            value=_linear(layer.attention.self.value),
            out=_linear(layer.attention.output.dense),
            attn_norm=_layer_norm(layer.attention.output.LayerNorm),
            mlp_in=_linear(layer.intermediate.dense),
            mlp_out=_linear(layer.output.dense),
            mlp_norm=_layer_norm(layer.output.LayerNorm),
            act=layer.intermediate.intermediate_act_fn,
            num_heads=num_heads,
            num_kv_heads=num_heads,
            scaling=float(layer.attention.self.scaling),
            pre_norm=False,
        )
        for layer in encoder_layers
    )


def _bert_layout(model: torch.nn.Module, family: str) -> ModelSpec:
    """BERT, RoBERTa and ELECTRA: same encoder, different heads."""
    base, config = model.base_model, model.config
    if getattr(config, "is_decoder", False):
        raise UnsupportedModelError(f"contextual_decomposition does not support {family} run as a decoder (is_decoder=True).")
    if family == "bert":
        head = (_linear(base.pooler.dense), base.pooler.activation, _linear(model.classifier))
    else:  # RoBERTa's and ELECTRA's classification heads: dense -> act -> out_proj on the first token
        act = getattr(model.classifier, "activation", torch.tanh)
        head = (_linear(model.classifier.dense), act, _linear(model.classifier.out_proj))
    project = getattr(base, "embeddings_project", None)
    return ModelSpec(
        family=family,
        embed=lambda batch: base.embeddings(input_ids=batch.input_ids),
        stem=(_linear(project),) if project is not None else (),
        blocks=_bert_blocks(base.encoder.layer, config.num_attention_heads),
        final_norm=None,
        head=head,
        causal=False,
    )


def _distilbert(model: torch.nn.Module) -> ModelSpec:
    base, config = model.base_model, model.config
    blocks = tuple(
        Block(
            query=_linear(layer.attention.q_lin),
            key=_linear(layer.attention.k_lin),
            value=_linear(layer.attention.v_lin),
            out=_linear(layer.attention.out_lin),
            attn_norm=_layer_norm(layer.sa_layer_norm),
            mlp_in=_linear(layer.ffn.lin1),
            mlp_out=_linear(layer.ffn.lin2),
            mlp_norm=_layer_norm(layer.output_layer_norm),
            act=layer.ffn.activation,
            num_heads=config.n_heads,
            num_kv_heads=config.n_heads,
            scaling=float(layer.attention.scaling),
            pre_norm=False,
        )
        for layer in base.transformer.layer
    )
    return ModelSpec(
        family="distilbert",
        embed=lambda batch: base.embeddings(batch.input_ids),
        stem=(),
        blocks=blocks,
        final_norm=None,
        head=(_linear(model.pre_classifier), torch.relu, _linear(model.classifier)),
        causal=False,
    )


def _conv1d_parts(module: torch.nn.Module, parts: int) -> list[Affine]:
    """GPT-2's Conv1D (weight (in, out)) as `parts` equal affine maps in (out, in) layout."""
    weights = module.weight.t().chunk(parts, dim=0)
    biases = module.bias.chunk(parts, dim=0) if module.bias is not None else [None] * parts
    return [Affine(w, b) for w, b in zip(weights, biases)]


def _gpt2(model: torch.nn.Module) -> ModelSpec:
    base, config = model.base_model, model.config
    blocks = []
    for layer in base.h:
        query, key, value = _conv1d_parts(layer.attn.c_attn, 3)
        blocks.append(
            Block(
                query=query,
                key=key,
                value=value,
                out=_conv1d_parts(layer.attn.c_proj, 1)[0],
                attn_norm=_layer_norm(layer.ln_1),
                mlp_in=_conv1d_parts(layer.mlp.c_fc, 1)[0],
                mlp_out=_conv1d_parts(layer.mlp.c_proj, 1)[0],
                mlp_norm=_layer_norm(layer.ln_2),
                act=layer.mlp.act,
                num_heads=config.n_head,
                num_kv_heads=config.n_head,
                scaling=float(layer.attn.scaling),
                pre_norm=True,
            )
        )
    return ModelSpec(
        family="gpt2",
        embed=lambda batch: base.wte(batch.input_ids) + base.wpe(batch.position_ids),
        stem=(),
        blocks=tuple(blocks),
        final_norm=_layer_norm(base.ln_f),
        head=(_linear(model.score),),
        causal=True,
    )


def _llama(model: torch.nn.Module) -> ModelSpec:
    """Llama and Qwen2 (same module names; Qwen2 adds q/k/v biases)."""
    base, config = model.base_model, model.config
    if "sliding_attention" in (getattr(config, "layer_types", None) or ()):
        raise UnsupportedModelError(
            f"contextual_decomposition does not implement sliding-window attention ({config.model_type} with "
            "use_sliding_window=True)."
        )
    blocks = tuple(
        Block(
            query=_linear(layer.self_attn.q_proj),
            key=_linear(layer.self_attn.k_proj),
            value=_linear(layer.self_attn.v_proj),
            out=_linear(layer.self_attn.o_proj),
            attn_norm=_rms_norm(layer.input_layernorm),
            mlp_in=_linear(layer.mlp.up_proj),
            mlp_gate=_linear(layer.mlp.gate_proj),
            mlp_out=_linear(layer.mlp.down_proj),
            mlp_norm=_rms_norm(layer.post_attention_layernorm),
            act=layer.mlp.act_fn,
            num_heads=config.num_attention_heads,
            num_kv_heads=config.num_key_value_heads,
            scaling=float(layer.self_attn.scaling),
            pre_norm=True,
        )
        for layer in base.layers
    )
    return ModelSpec(
        family=config.model_type,
        embed=lambda batch: base.embed_tokens(batch.input_ids),
        stem=(),
        blocks=blocks,
        final_norm=_rms_norm(base.norm),
        head=(_linear(model.score),),
        causal=True,
        rotary=base.rotary_emb,
    )


#: config.model_type -> builder of the ModelSpec
ARCHITECTURES: dict[str, Callable[[torch.nn.Module], ModelSpec]] = {
    "bert": lambda model: _bert_layout(model, "bert"),
    "roberta": lambda model: _bert_layout(model, "roberta"),
    "electra": lambda model: _bert_layout(model, "electra"),
    "distilbert": _distilbert,
    "gpt2": _gpt2,
    "llama": _llama,
    "qwen2": _llama,
}


def model_spec(adapter: ModelAdapter) -> ModelSpec:
    """The decomposition spec of the adapter's model, or a clear error for other architectures."""
    model = adapter.model
    model_type = getattr(adapter.config, "model_type", None)
    if model_type not in ARCHITECTURES:
        raise UnsupportedModelError(
            f"contextual_decomposition has no propagation rules for {type(model).__name__} "
            f"(model_type={model_type!r}); supported model types: {', '.join(sorted(ARCHITECTURES))}. "
            "Use a model-agnostic method (e.g. 'integrated_gradients') for this model."
        )
    if adapter.pooling not in ("first", "last"):
        raise UnsupportedModelError(
            f"contextual_decomposition reads one position, but {type(model).__name__} pools with {adapter.pooling!r}."
        )
    return ARCHITECTURES[model_type](model)
