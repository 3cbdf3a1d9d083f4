r"""Propagation rules of contextual decomposition, shared by every architecture.

A decomposed activation is a pair of tensors `(β, γ)` of the same shape: β is the part due to
the relevant set S, γ everything else. Each rule maps (β, γ) to (β', γ') with

    β' + γ' = f(β + γ)                                                     (exactness)

so the two parts add up to the model's own activation at every layer. Every rule also keeps
β = 0 when β = 0 (a relevant set with nothing in it stays empty). Rules written out:

* affine y = Wx + b: β' = Wβ + b·w, γ' = Wγ + b·(1 − w), w = |Wβ| / (|Wβ| + |Wγ|) elementwise
  (the bias follows the magnitudes; w = 0 where both are 0). `bias="irrelevant"` puts all of b in
  γ (used for the classifier, so token scores carry no share of a constant).
* LayerNorm with s = sqrt(Var(β+γ) + ε) from the total: β' = (β − mean β)/s ⊙ g + bias share,
  γ' likewise; RMSNorm with r = sqrt(mean((β+γ)²) + ε): β' = β/r ⊙ g, γ' = γ/r ⊙ g.
* nonlinearity f of one or more decomposed inputs (GELU, tanh, SiLU, ReLU, the gated product
  act(g)·u), where the interaction of β and γ goes to β, to γ, or half to each:
  "cdt" (Hsu et al. 2024): γ' = f(γ), β' = f(β+γ) − f(γ);
  "acd" (Singh et al. 2019): β' = f(β), γ' = f(β+γ) − f(β);
  "shapley" (the two-player Shapley value, as Murdoch et al. 2018 linearise gates):
  β' = ½[f(β) − f(0) + f(β+γ) − f(γ)], γ' = f(β+γ) − β'.
* attention "fixed": A = softmax(q kᵀ·scale + mask) from the total input, held constant;
  β' = A v_β, γ' = A v_γ. Attention "qk_split" (CD-T's rel-softmax): A_β = softmax(q_β k_βᵀ·scale + mask),
  A = softmax(q kᵀ·scale + mask) with q = q_β + q_γ, k likewise; β' = A_β v_β, γ' = A (v_β + v_γ) − β'.
* residual: parts add (x + y). `normalize` (CD-T's optional step): where β·γ < 0 the part of larger
  magnitude takes β + γ and the other becomes 0.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import torch

from ..errors import InvalidParameterError

Pair = tuple[torch.Tensor, torch.Tensor]
ACTIVATION_RULES: tuple[str, ...] = ("cdt", "acd", "shapley")
ATTENTION_RULES: tuple[str, ...] = ("fixed", "qk_split")


def total(x: Pair) -> torch.Tensor:
    """β + γ."""
    return x[0] + x[1]


def add(x: Pair, y: Pair) -> Pair:
    """Residual connection: the parts add."""
    return x[0] + y[0], x[1] + y[1]


def split_bias(y: Pair, bias: torch.Tensor | None, to: Literal["split", "irrelevant"] = "split") -> Pair:
    """Add `bias` to the parts of `y` in proportion to their magnitudes (or all of it to γ).

    Works in place on `y`'s tensors (callers pass fresh ones). Where both parts are 0 the whole
    bias goes to γ, so an empty relevant set keeps β = 0 exactly.
    """
    rel, irrel = y
    if bias is None:
        return y
    if to == "irrelevant":
        return rel, irrel.add_(bias)
    share = rel.abs()
    denom = irrel.abs().add_(share).clamp_min_(torch.finfo(share.dtype).tiny)
    share.div_(denom).mul_(bias)
    return rel.add_(share), irrel.add_(bias).sub_(share)


def affine(
    x: Pair,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    *,
    bias_to: Literal["split", "irrelevant"] = "split",
) -> Pair:
    """y = W x + b on both parts; see `split_bias` for where b goes. weight: (out, in)."""
    linear = torch.nn.functional.linear
    return split_bias((linear(x[0], weight), linear(x[1], weight)), bias, bias_to)


def layer_norm_scale(whole: torch.Tensor, eps: float) -> torch.Tensor:
    """1 / sqrt(Var(h) + ε) over the last dimension of the total h."""
    return torch.rsqrt(whole.var(-1, unbiased=False, keepdim=True).add_(eps))


def rms_norm_scale(whole: torch.Tensor, eps: float) -> torch.Tensor:
    """1 / sqrt(mean(h²) + ε) over the last dimension of the total h."""
    return torch.rsqrt(whole.pow(2).mean(-1, keepdim=True).add_(eps))


def layer_norm(
    x: Pair,
    weight: torch.Tensor | None,
    bias: torch.Tensor | None,
    eps: float,
    *,
    scale: torch.Tensor | None = None,
) -> Pair:
    """LayerNorm over the last dimension with the scale of the total (`layer_norm_scale`, computed
    here unless given)."""
    scale = layer_norm_scale(total(x), eps) if scale is None else scale
    if weight is not None:
        scale = scale * weight
    parts = tuple((part - part.mean(-1, keepdim=True)).mul_(scale) for part in x)
    return split_bias(parts, bias)


def rms_norm(x: Pair, weight: torch.Tensor | None, eps: float, *, scale: torch.Tensor | None = None) -> Pair:
    """RMSNorm over the last dimension with the scale of the total (no bias, so exact)."""
    scale = rms_norm_scale(total(x), eps) if scale is None else scale
    if weight is not None:
        scale = scale * weight
    return x[0] * scale, x[1] * scale


def nonlinear(
    fn: Callable[..., torch.Tensor], *inputs: Pair, rule: str = "cdt", whole: torch.Tensor | None = None
) -> Pair:
    """Split f(β₁+γ₁, β₂+γ₂, ...) for decomposed inputs with the "cdt", "acd" or "shapley" rule.

    `whole`: f of the totals if already known (it is the same for every relevant set of a text).
    """
    if rule not in ACTIVATION_RULES:
        raise InvalidParameterError(f"activation rule {rule!r} is not one of {', '.join(ACTIVATION_RULES)}.")
    whole = fn(*(total(x) for x in inputs)) if whole is None else whole
    if rule == "acd":
        rel_only = fn(*(x[0] for x in inputs))
        return rel_only, whole - rel_only
    irrel_only = fn(*(x[1] for x in inputs))
    if rule == "cdt":
        return whole - irrel_only, irrel_only
    zero = torch.zeros((), dtype=whole.dtype, device=whole.device)
    rel = fn(*(x[0] for x in inputs)) - fn(*(zero for _ in inputs))
    rel.add_(whole).sub_(irrel_only).mul_(0.5)
    return rel, whole - rel


def attention_probs(q: torch.Tensor, k: torch.Tensor, mask: torch.Tensor, scale: float) -> torch.Tensor:
    """softmax(q kᵀ·scale + mask) over keys; mask is additive (0 or a large negative number)."""
    return torch.softmax((q @ k.transpose(-1, -2)).mul_(scale).add_(mask), dim=-1)


def attention_fixed(probs: torch.Tensor, v: Pair) -> Pair:
    """Attention whose probabilities (of the total input) are held fixed: each part of v is mixed
    with the same weights."""
    return probs @ v[0], probs @ v[1]


def attention_qk_split(q: Pair, k: Pair, v: Pair, mask: torch.Tensor, scale: float) -> Pair:
    """CD-T's rel-softmax rule for decomposed queries, keys and values."""
    probs = attention_probs(total(q), total(k), mask, scale)
    rel = attention_probs(q[0], k[0], mask, scale) @ v[0]
    return rel, (probs @ total(v)).sub_(rel)


def rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotary position embedding x·cos + rotate_half(x)·sin (linear in x, so applied to each part)."""
    half = x.shape[-1] // 2
    rotated = torch.cat((-x[..., half:], x[..., :half]), dim=-1)
    return x * cos + rotated * sin


def normalize(x: Pair) -> Pair:
    """CD-T's `normalize_rel_irrel`: where β and γ have opposite signs, the larger one takes the sum."""
    rel, irrel = x
    whole = rel + irrel
    opposite = rel * irrel < 0
    rel_wins = rel.abs() >= irrel.abs()
    zero = torch.zeros((), dtype=rel.dtype, device=rel.device)
    return (
        torch.where(opposite, torch.where(rel_wins, whole, zero), rel),
        torch.where(opposite, torch.where(rel_wins, zero, whole), irrel),
    )
