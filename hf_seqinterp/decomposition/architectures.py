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

import operator
from collections.abc import Callable
from dataclasses import dataclass

import torch

from ..adapter import Batch, ModelAdapter
from ..architectures import require_rules, unwrap
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
    eps = getattr(module, "variance_epsilon", None) or module.eps
    return Norm(module.weight, None, float(eps), rms=True)


# Module names inside one layer, per family (dotted paths from the layer module).
BERT_LAYER = {
    "query": "attention.self.query", "key": "attention.self.key", "value": "attention.self.value",
    "out": "attention.output.dense", "attn_norm": "attention.output.LayerNorm", "mlp_in": "intermediate.dense",
    "act": "intermediate.intermediate_act_fn", "mlp_out": "output.dense", "mlp_norm": "output.LayerNorm",
    "scaling": "attention.self.scaling",
}  # fmt: skip
DISTILBERT_LAYER = {
    "query": "attention.q_lin", "key": "attention.k_lin", "value": "attention.v_lin", "out": "attention.out_lin",
    "attn_norm": "sa_layer_norm", "mlp_in": "ffn.lin1", "act": "ffn.activation", "mlp_out": "ffn.lin2",
    "mlp_norm": "output_layer_norm", "scaling": "attention.scaling",
}  # fmt: skip
GPT2_LAYER = {  # c_attn holds query, key and value; Conv1D layers are read by `_conv1d`
    "attn_norm": "ln_1", "act": "mlp.act", "mlp_norm": "ln_2", "scaling": "attn.scaling",
}  # fmt: skip
LLAMA_LAYER = {
    "query": "self_attn.q_proj", "key": "self_attn.k_proj", "value": "self_attn.v_proj", "out": "self_attn.o_proj",
    "attn_norm": "input_layernorm", "mlp_in": "mlp.up_proj", "mlp_gate": "mlp.gate_proj", "act": "mlp.act_fn",
    "mlp_out": "mlp.down_proj", "mlp_norm": "post_attention_layernorm", "scaling": "self_attn.scaling",
}  # fmt: skip
AFFINES = ("query", "key", "value", "out", "mlp_in", "mlp_gate", "mlp_out")


def _blocks(
    layers, names: dict[str, str], config, *, pre_norm: bool, rms: bool = False, affines=None
) -> tuple[Block, ...]:
    """One Block per layer, reading the modules `names` points to; `affines(layer)` may supply the
    affine maps that are not plain Linear modules."""
    norm = _rms_norm if rms else _layer_norm
    heads = config.num_attention_heads
    out = []
    for layer in layers:
        named = {key: operator.attrgetter(path)(layer) for key, path in names.items()}
        parts = {key: _linear(named[key]) for key in AFFINES if key in named}
        parts.update(affines(layer) if affines else {})
        out.append(
            Block(
                **parts,
                attn_norm=norm(named["attn_norm"]),
                mlp_norm=norm(named["mlp_norm"]),
                act=named["act"],
                num_heads=heads,
                num_kv_heads=getattr(config, "num_key_value_heads", None) or heads,
                scaling=float(named["scaling"]),
                pre_norm=pre_norm,
            )
        )
    return tuple(out)


def _bert_layout(model: torch.nn.Module, family: str) -> ModelSpec:
    """BERT, RoBERTa and ELECTRA: same encoder, different heads."""
    base, config = model.base_model, model.config
    if getattr(config, "is_decoder", False):
        raise UnsupportedModelError(
            f"contextual_decomposition does not support {family} run as a decoder (is_decoder=True)."
        )
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
        blocks=_blocks(base.encoder.layer, BERT_LAYER, config, pre_norm=False),
        final_norm=None,
        head=head,
        causal=False,
    )


def _distilbert(model: torch.nn.Module) -> ModelSpec:
    base = model.base_model
    return ModelSpec(
        family="distilbert",
        embed=lambda batch: base.embeddings(batch.input_ids),
        stem=(),
        blocks=_blocks(base.transformer.layer, DISTILBERT_LAYER, model.config, pre_norm=False),
        final_norm=None,
        head=(_linear(model.pre_classifier), torch.relu, _linear(model.classifier)),
        causal=False,
    )


def _conv1d(module: torch.nn.Module, parts: int = 1) -> list[Affine]:
    """GPT-2's Conv1D (weight (in, out)) as `parts` equal affine maps in (out, in) layout."""
    weights = module.weight.t().chunk(parts, dim=0)
    biases = module.bias.chunk(parts, dim=0) if module.bias is not None else [None] * parts
    return [Affine(w, b) for w, b in zip(weights, biases)]


def _gpt2_affines(layer: torch.nn.Module) -> dict[str, Affine]:
    query, key, value = _conv1d(layer.attn.c_attn, 3)
    (out,), (mlp_in,), (mlp_out,) = (
        _conv1d(layer.attn.c_proj),
        _conv1d(layer.mlp.c_fc),
        _conv1d(layer.mlp.c_proj),
    )
    return {"query": query, "key": key, "value": value, "out": out, "mlp_in": mlp_in, "mlp_out": mlp_out}


def _gpt2(model: torch.nn.Module) -> ModelSpec:
    base = model.base_model
    return ModelSpec(
        family="gpt2",
        embed=lambda batch: base.wte(batch.input_ids) + base.wpe(batch.position_ids),
        stem=(),
        blocks=_blocks(base.h, GPT2_LAYER, model.config, pre_norm=True, affines=_gpt2_affines),
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
    return ModelSpec(
        family=config.model_type,
        embed=lambda batch: base.embed_tokens(batch.input_ids),
        stem=(),
        blocks=_blocks(base.layers, LLAMA_LAYER, config, pre_norm=True, rms=True),
        final_norm=_rms_norm(base.norm),
        head=(_linear(model.score),),
        causal=True,
        rotary=base.rotary_emb,
    )


#: What the rules lack for well-known architectures that are not supported (named in the error).
MISSING_RULES: dict[str, str] = {
    "albert": "cross-layer parameter sharing and the factorised embedding projection have no module table",
    "deberta": "disentangled (content-to-position) relative attention has no propagation rule",
    "deberta-v2": "disentangled (content-to-position) relative attention has no propagation rule",
    "modernbert": "local (sliding-window) attention layers and the gated GeGLU MLP have no module table",
    "xlnet": "two-stream relative attention has no propagation rule",
    "bloom": "ALiBi attention biases have no propagation rule",
    "mpt": "ALiBi attention biases have no propagation rule",
    "t5": "relative position buckets and the encoder-decoder layout have no propagation rule",
}

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
    model = unwrap(adapter.model)
    require_rules(
        "contextual_decomposition", model, ARCHITECTURES, MISSING_RULES, "no per-architecture adapter names its modules"
    )
    model_type = adapter.config.model_type
    if adapter.head.kind != "sequence_classification":
        raise UnsupportedModelError(
            f"contextual_decomposition splits the logits of a sequence classifier's head; {type(model).__name__} has "
            f"a {adapter.head.kind.replace('_', ' ')} head. Use 'attnlrp' or a gradient or perturbation method."
        )
    if adapter.pooling not in ("first", "last"):
        raise UnsupportedModelError(
            f"contextual_decomposition reads one position, but {type(model).__name__} pools with {adapter.pooling!r}."
        )
    return ARCHITECTURES[model_type](model)
