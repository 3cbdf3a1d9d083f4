r"""Layer-wise relevance propagation rules (AttnLRP, CP-LRP) as a modified backward pass.

With ε = 0 every rule below has the form R_x = x ⊙ J̃ᵀ(R_z / z), and R_z / z is the incoming
gradient, so the relevance of any tensor h is h ⊙ ∂̃f/∂h after one backward of the explained
score f through a graph whose backward is modified at three kinds of operations (Achtibat et al.
2024, arXiv:2402.05602; Arras et al. 2025, arXiv:2502.15886):

* LayerNorm / RMSNorm, norm ("identity on the normalisation") rule, Prop. 3.4: the scale 1/σ is a
  constant, so y = w ⊙ (x − μ)/σ + b is linear in x: ∂̃y/∂x = diag(w/σ)(I − 11ᵀ/d) (LayerNorm),
  diag(w/σ) (RMSNorm). The bias b keeps its share (absorbed).
* element-wise non-linearity y = g(x) (GELU, SiLU, tanh), identity rule, Eq. 9: R_x = R_y, i.e. the
  backward multiplies by g(x)/x instead of g'(x) (0 where x = 0).
* bilinear products a ⊙ b (a gated MLP) and A·B (q·kᵀ, attention weights · values), uniform rule,
  Props. 3.2–3.3: R_a = R_b = R/2, i.e. each factor's gradient is halved. The softmax keeps its true
  gradient, which in this form is the rule of Prop. 3.1: R_x = x ⊙ (R_s − s Σ_j R_{s,j}).
  CP-LRP (Ali et al. 2022, arXiv:2202.07304) instead holds the attention weights constant: all
  relevance goes to the values, none through the softmax.

Linear layers need nothing for ε = 0 (R_x = x ⊙ Wᵀ g: gradient × input); with ε > 0 the gradient at
the output z is scaled by z / (z + ε·sign z) (the ε-rule, Eq. 8). The generalised γ-rule (Montavon
et al. 2019, "Layer-wise relevance propagation: an overview", with the sign-aware form for signed
inputs used by Achtibat et al.) boosts the contributions x_i w_ij that share the sign s_j of z_j:

    R_i = Σ_j (x_i w_ij + γ (x_i w_ij)^{s_j}) / (z_j + γ Σ_i (x_i w_ij)^{s_j} + ε s_j) · R_j,

(·)^{+} / (·)^{−} the positive / negative part, which favours the dominant evidence and tempers
gradient noise; γ = 0 is the ε-rule.

`relevance_rules(model, ...)` installs the rules on one model for the duration of a forward:
forward hooks on its own modules, and a private attention function selected for this model only
(registered under its own name in transformers' `AttentionInterface`, with transformers' eager
mask; other models keep theirs). AttnLRP's attention runs in transformers' SDPA function on
gradient-scaled q, k, v; CP-LRP's computes the weights eagerly and holds them constant.
The graph recorded in that forward carries the rules, so the backward may run after the context
has exited; nothing stays on the model or on transformers' classes.
"""

from __future__ import annotations

import contextlib
import functools
import operator
from collections.abc import Iterator
from typing import Any, Literal

import torch

from .architectures import require_rules, unwrap
from .attention_hooks import attention_implementation
from .errors import UnsupportedModelError

AttentionRule = Literal["attnlrp", "cp"]
ATTENTION_RULES: tuple[str, ...] = ("attnlrp", "cp")

#: config.model_type -> modules (dotted paths inside each transformer block) whose outputs are the two
#: factors of an element-wise product (the gated MLP act(gate(x)) ⊙ up(x)); every other module type
#: the rules act on is found by its class
FAMILIES: dict[str, tuple[str, ...]] = {
    "bert": (),
    "llama": ("mlp.act_fn", "mlp.up_proj"),
    "mistral": ("mlp.act_fn", "mlp.up_proj"),
    "qwen2": ("mlp.act_fn", "mlp.up_proj"),
}

#: what the rules lack for well-known architectures that are refused (named in the error)
MISSING_RULES: dict[str, str] = {
    "roberta": "its classification head applies tanh as a function, which no module hook reaches",
    "gpt2": "its fused Conv1D attention projection and functional activations have no module to hook",
    "gemma": "its RMSNorm scales by (1 + w) and its embeddings by √d; no rule table covers them",
}

#: element-wise activation modules get the identity rule; these modules from the same libraries do not
#: act element-wise and are refused
_NOT_ELEMENTWISE = ("Softmax", "Softmax2d", "Softmin", "LogSoftmax", "GLU", "MultiheadAttention")
_ACTIVATION_MODULES = ("torch.nn.modules.activation", "transformers.activations")


def _is_activation(module: torch.nn.Module) -> bool:
    return type(module).__module__ in _ACTIVATION_MODULES


def _norm_kind(module: torch.nn.Module) -> str | None:
    """'layer' for LayerNorm, 'rms' for a Llama-style RMSNorm (w ⊙ x / rms(x)), None otherwise."""
    if isinstance(module, torch.nn.LayerNorm):
        return "layer"
    if type(module).__name__.endswith("RMSNorm"):
        return "rms"
    return None


def supported_model_types() -> list[str]:
    return sorted(FAMILIES)


def check_supported(model: torch.nn.Module, method: str) -> None:
    """Raise `UnsupportedModelError` unless every module of `model` is covered by a rule."""
    model = unwrap(model)
    require_rules(method, model, FAMILIES, MISSING_RULES, "no rule table covers its modules")
    name = type(model).__name__
    for path, module in model.named_modules():
        if _is_activation(module) and type(module).__name__ in _NOT_ELEMENTWISE:
            raise UnsupportedModelError(f"{method} has no rule for {type(module).__name__} ({path}) in {name}.")
        if type(module).__name__.endswith("Norm") and _norm_kind(module) is None:
            raise UnsupportedModelError(f"{method} has no rule for {type(module).__name__} ({path}) in {name}.")
        if isinstance(module, torch.nn.LayerNorm) and len(module.normalized_shape) != 1:
            raise UnsupportedModelError(f"{method} handles LayerNorm over the last dimension only ({path}).")


# ----------------------------------------------------------------- rules as autograd functions
class _ReplacedGradient(torch.autograd.Function):
    """Forward: `value` (computed elsewhere from x); backward to x: grad ⊙ factor."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, value: torch.Tensor, factor: torch.Tensor | float) -> torch.Tensor:
        if isinstance(factor, torch.Tensor):
            ctx.save_for_backward(factor)
        else:
            ctx.factor = factor
        return value.view_as(value)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None, None]:
        factor = ctx.saved_tensors[0] if ctx.saved_tensors else ctx.factor
        return grad * factor, None, None


def scale_gradient(x: torch.Tensor, factor: float) -> torch.Tensor:
    """x, with its gradient multiplied by `factor` (uniform rule: ½ per factor of a product)."""
    return _ReplacedGradient.apply(x, x, factor)


def identity_rule(x: torch.Tensor, y: torch.Tensor, share: float = 1.0) -> torch.Tensor:
    """y = g(x) element-wise, with ∂̃y/∂x = share · g(x)/x (0 where x = 0): R_x = share · R_y."""
    wide = torch.promote_types(x.dtype, torch.float32)
    ratio = torch.where(x == 0, 0.0, y.detach().to(wide) / x.detach().to(wide)) * share
    return _ReplacedGradient.apply(x, y.detach(), ratio.to(y.dtype))


def epsilon_rule(z: torch.Tensor, epsilon: float) -> torch.Tensor:
    """z = Wx + b, with the gradient at z scaled by z / (z + ε·sign z) (sign 0 = +1)."""
    stabilised = z.detach() + torch.where(z.detach() >= 0, epsilon, -epsilon)
    return _ReplacedGradient.apply(z, z, z.detach() / stabilised)


def gamma_rule(module: torch.nn.Linear, x: torch.Tensor, z: torch.Tensor, gamma: float, epsilon: float = 0.0) -> torch.Tensor:
    """z = module(x), with the backward of the generalised γ-rule (module docstring): the value is z,
    the gradient flows through z_γ = z + γ · (Σ_i (x_i w_ij)^{s_j})_j, scaled by z / (z_γ + ε s)."""
    weight = module.weight
    positive_x, negative_x = x.clamp(min=0), x.clamp(max=0)
    positive_w, negative_w = weight.clamp(min=0), weight.clamp(max=0)
    same_sign = torch.where(
        z.detach() >= 0,
        torch.nn.functional.linear(positive_x, positive_w) + torch.nn.functional.linear(negative_x, negative_w),
        torch.nn.functional.linear(positive_x, negative_w) + torch.nn.functional.linear(negative_x, positive_w),
    )
    boosted = z + gamma * same_sign
    sign = torch.where(z.detach() >= 0, 1.0, -1.0).to(z.dtype)
    return _ReplacedGradient.apply(boosted, z.detach(), z.detach() / (boosted.detach() + epsilon * sign))


class _NormRule(torch.autograd.Function):
    """Forward: the norm's output `value`; backward to x with σ held constant:
    g ↦ (w ⊙ g − centred · mean(w ⊙ g)) / σ."""

    @staticmethod
    def forward(
        ctx: Any, x: torch.Tensor, value: torch.Tensor, weight: torch.Tensor | None, sigma: torch.Tensor, centred: bool
    ) -> torch.Tensor:
        ctx.save_for_backward(weight, sigma)
        ctx.centred = centred
        return value.view_as(value)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        weight, sigma = ctx.saved_tensors
        g = grad.to(sigma.dtype) * weight.to(sigma.dtype) if weight is not None else grad.to(sigma.dtype)
        if ctx.centred:
            g = g - g.mean(-1, keepdim=True)
        return (g / sigma).to(grad.dtype), None, None, None, None


def norm_rule(module: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The output y of a LayerNorm / RMSNorm `module` on x, with the gradient of its linearisation
    at fixed σ = sqrt(var(x) + eps) (LayerNorm) or sqrt(mean(x²) + eps) (RMSNorm)."""
    wide = x.detach().to(torch.promote_types(x.dtype, torch.float32))
    centred = _norm_kind(module) == "layer"
    eps = module.eps if centred else getattr(module, "variance_epsilon", None) or module.eps
    moment = wide.var(-1, unbiased=False, keepdim=True) if centred else wide.pow(2).mean(-1, keepdim=True)
    weight = module.weight.detach() if module.weight is not None else None
    return _NormRule.apply(x, y.detach(), weight, torch.sqrt(moment + eps), centred)


# ----------------------------------------------------------------- attention
def _lrp_attention(
    module: torch.nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    scaling: float | None = None,
    dropout: float = 0.0,
    *,
    rule: AttentionRule,
    **kwargs: Any,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Attention softmax(q kᵀ·scaling + mask) v with the AttnLRP rules or the CP-LRP rule; signature
    and output as transformers' attention functions ((B, L, H, d_v) and weights or None).

    "attnlrp": the uniform rule on q·kᵀ and on A·v halves the gradients of q, k, A and v; the softmax
    gradient is linear in its incoming gradient, so halving A's is halving q's and k's once more:
    q and k get ¼, v ½, and the product runs in transformers' SDPA function (no weights kept).
    "cp": A is held constant (q and k get no gradient), computed eagerly."""
    for unsupported in ("softcap", "s_aux", "sinks"):
        if kwargs.get(unsupported) is not None:
            raise UnsupportedModelError(f"AttnLRP has no rule for attention with {unsupported}.")
    if dropout:
        raise UnsupportedModelError("AttnLRP runs with attention dropout off (the model in eval mode).")
    if rule == "attnlrp":
        from transformers.integrations.sdpa_attention import sdpa_attention_forward

        query, key, value = scale_gradient(query, 0.25), scale_gradient(key, 0.25), scale_gradient(value, 0.5)
        return sdpa_attention_forward(module, query, key, value, attention_mask, scaling=scaling, **kwargs)
    groups = query.shape[1] // key.shape[1]  # grouped-query attention: each key/value head serves `groups` heads
    key, value = key.detach().repeat_interleave(groups, dim=1), value.repeat_interleave(groups, dim=1)
    scores = torch.matmul(query.detach(), key.transpose(2, 3)) * (query.shape[-1] ** -0.5 if scaling is None else scaling)
    if attention_mask is not None:
        scores = scores + attention_mask[:, :, :, : key.shape[-2]]
    weights = torch.softmax(scores, dim=-1, dtype=torch.promote_types(scores.dtype, torch.float32)).to(query.dtype)
    return torch.matmul(weights, value).transpose(1, 2).contiguous(), weights


@functools.cache
def _attention_name(rule: AttentionRule) -> str:
    """The name under which this rule's attention function (and transformers' eager mask) is
    registered; registered once, on first use."""
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface, eager_mask

    name = f"hf_seqinterp_{rule}"
    AttentionInterface.register(name, functools.partial(_lrp_attention, rule=rule))
    AttentionMaskInterface.register(name, eager_mask)
    return name


# ----------------------------------------------------------------- installing the rules on one model
def _product_factors(model: torch.nn.Module) -> set[int]:
    """ids of the modules whose outputs are the factors of an element-wise product (`FAMILIES`)."""
    found: set[int] = set()
    for module in model.modules():
        try:
            factors = [operator.attrgetter(path)(module) for path in FAMILIES[model.config.model_type]]
        except AttributeError:
            continue
        found.update(id(factor) for factor in factors)
    return found


@contextlib.contextmanager
def relevance_rules(
    model: torch.nn.Module, *, attention_rule: AttentionRule = "attnlrp", epsilon: float = 0.0, gamma: float = 0.0
) -> Iterator[None]:
    """Forwards of `model` in the body record a graph whose backward propagates relevance (module
    docstring); hooks and the attention setting are removed / restored on exit, even on error."""
    check_supported(model, "attnlrp")
    products = _product_factors(model)
    handles = []

    def activation(module: torch.nn.Module, args: tuple, output: torch.Tensor) -> torch.Tensor:
        return identity_rule(args[0], output, 0.5 if id(module) in products else 1.0)

    def product_factor(_module: torch.nn.Module, _args: tuple, output: torch.Tensor) -> torch.Tensor:
        return scale_gradient(output, 0.5)

    def norm(module: torch.nn.Module, args: tuple, output: torch.Tensor) -> torch.Tensor:
        return norm_rule(module, args[0], output)

    def linear(module: torch.nn.Module, args: tuple, output: torch.Tensor) -> torch.Tensor:
        return gamma_rule(module, args[0], output, gamma, epsilon) if gamma else epsilon_rule(output, epsilon)

    try:
        for module in model.modules():
            if (epsilon or gamma) and isinstance(module, torch.nn.Linear):  # before a product factor's ½
                handles.append(module.register_forward_hook(linear))
            if _is_activation(module):
                handles.append(module.register_forward_hook(activation))
            elif _norm_kind(module) is not None:
                handles.append(module.register_forward_hook(norm))
            elif id(module) in products:
                handles.append(module.register_forward_hook(product_factor))
        with attention_implementation(model, _attention_name(attention_rule)):
            yield
    finally:
        for handle in handles:
            handle.remove()
