r"""Gradient explainers: saliency, gradient × input, integrated gradients.

All three differentiate the explained score f (the target's logit by default) with respect to the
input embeddings E ∈ R^{L×d} (the output of `model.get_input_embeddings()`, what `inputs_embeds`
takes) and pool over the embedding dimension to one score per token. Gradient × input may instead
take the first block's input h₀ (its `at` parameter; the default on models that normalise E).

Our own batched code rather than Captum: Captum's `InputXGradient`/`IntegratedGradients` run one
input at a time from its docs' recipes and recompute per call what we batch across texts and
integration steps; `benchmarks/RESULTS.md` has the comparison, and the tests check exact agreement
with Captum on a real model.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch

from ..adapter import BASELINES, Batch
from ..architectures import routes_experts
from ..errors import InvalidParameterError
from ..utils import chunks
from ..validation import check_steps, check_token_budget
from .base import Explainer, RowResult, hidden_size, register_explainer, row_gradients

#: completeness gap, relative to |f(x) − f(baseline)|, above which an IG explanation carries a warning:
#: the 1 % that 50 steps reach on real models (docs/methods/gradients.md), well inside the 5 % that
#: Sundararajan et al. suggest checking for
COMPLETENESS_WARNING = 0.01
QUADRATURES = ("gausslegendre", "riemann_left", "riemann_right", "riemann_middle", "riemann_trapezoid")


class _GradientExplainer(Explainer):
    """Shared machinery: one forward + one backward per batch of texts."""

    needs_gradients = True
    needs_inputs_embeds = True
    multi_row = True

    #: where the gradient is taken: "word_embeddings" (E, what `inputs_embeds` takes) or
    #: "embedding_output" (h₀, the first transformer block's input)
    at: str = "word_embeddings"

    def _token_scores(self, embeds: torch.Tensor, grads: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _explain(self, batch: Batch, targets: list[int | None]) -> list[RowResult]:
        """One forward, then one backward per explained row, from E or h₀ (see `at`)."""
        adapter = self.adapter
        embeds = adapter.embed(batch.input_ids).detach().requires_grad_(self.at == "word_embeddings")
        if self.at == "embedding_output":
            with adapter.differentiable_block_input() as captured:
                logits = adapter.logits(batch, embeds)
            inputs = captured[0]
        else:
            logits, inputs = adapter.logits(batch, embeds), embeds
        chosen, scores = self._targets(logits, targets)
        token_scores = row_gradients(scores, inputs, lambda grads: self._token_scores(inputs.detach(), grads))
        return self._results(batch, token_scores, logits.detach(), chosen)


@register_explainer("saliency")
class Saliency(_GradientExplainer):
    r"""Saliency: the norm of the score's gradient at each token embedding (Simonyan et al. 2014).

    a_t = ‖∂f/∂e_t‖₂ (norm="l2") or Σ_d |∂f/∂e_{t,d}| (norm="l1"). Non-negative and unsigned: it
    says how sensitive f is to a token, not in which direction. 1 forward + 1 backward.
    Reference: arXiv:1312.6034.
    """


    def __init__(self, adapter, *, norm: Literal["l2", "l1"] = "l2", score: str = "logit"):
        if norm not in ("l2", "l1"):
            raise InvalidParameterError(f"norm={norm!r}; use 'l2' or 'l1'.")
        self.norm = norm
        self.word_aggregation = "l2" if norm == "l2" else "sum"
        super().__init__(adapter, score=score)

    def _token_scores(self, embeds, grads):
        return grads.norm(dim=-1) if self.norm == "l2" else grads.abs().sum(-1)


@register_explainer("gradient_x_input")
class GradientXInput(_GradientExplainer):
    r"""Gradient × input: a_t = Σ_d x_{t,d} · ∂f/∂x_{t,d} (Shrikumar et al. 2016).

    Signed; positive supports the target. 1 forward + 1 backward. Reference: arXiv:1605.01713.

    `at` chooses x: "word_embeddings" (E, Captum's `InputXGradient` on `inputs_embeds`; equals
    integrated gradients with a zero baseline on a linear model) or "embedding_output" (h₀, the
    first block's input; Captum's `LayerGradientXActivation` on that input). "auto" (default) takes
    h₀ when the model normalises its embedding sum before the first block (`adapter.
    normalizes_embeddings`: BERT, RoBERTa, ELECTRA, DeBERTa, ModernBERT, ...), and E otherwise.
    Why: LayerNorm is invariant to scaling its input x = e + p + s (word, position, segment), so
    x · ∂f/∂x = 0 and e · ∂f/∂e = −(p + s) · ∂f/∂x exactly: on such models the product with the
    word embedding scores the position embeddings (and is zero without them, as in ModernBERT).
    """

    def __init__(
        self,
        adapter,
        *,
        at: Literal["auto", "word_embeddings", "embedding_output"] = "auto",
        score: str = "logit",
    ):
        if at == "auto":
            at = "embedding_output" if adapter.normalizes_embeddings else "word_embeddings"
        if at not in ("word_embeddings", "embedding_output"):
            raise InvalidParameterError(f"at={at!r}; use 'auto', 'word_embeddings' or 'embedding_output'.")
        self.at = at
        super().__init__(adapter, score=score)

    def check_model(self) -> None:
        super().check_model()
        if self.at == "embedding_output":
            self.adapter.layers  # noqa: B018 - raises UnsupportedModelError when the blocks cannot be located

    def _token_scores(self, embeds, grads):
        return (embeds * grads).sum(-1)


def quadrature_rule(n_steps: int, rule: str) -> tuple[np.ndarray, np.ndarray]:
    """Nodes α_k ∈ [0, 1] and weights w_k with ∫_0^1 g(α) dα ≈ Σ_k w_k g(α_k).

    Gauss-Legendre (the default) is exact for polynomials of degree < 2n; the trapezoid rule here
    has Σ w_k = 1 (Captum's variant sums to 1 − 1/n, a bias of Δf/n in the completeness gap).
    """
    n_steps = check_steps(n_steps, rule)
    k = np.arange(n_steps, dtype=np.float64)
    if rule == "gausslegendre":
        x, w = np.polynomial.legendre.leggauss(n_steps)
        return (x + 1) / 2, w / 2
    if rule == "riemann_trapezoid":
        if n_steps < 2:
            raise InvalidParameterError("riemann_trapezoid needs n_steps >= 2.")
        w = np.full(n_steps, 1.0 / (n_steps - 1))
        w[[0, -1]] /= 2
        return np.linspace(0.0, 1.0, n_steps), w
    offsets = {"riemann_left": 0.0, "riemann_right": 1.0, "riemann_middle": 0.5}
    if rule not in offsets:
        raise InvalidParameterError(f"quadrature={rule!r} is not one of {', '.join(QUADRATURES)}.")
    return (k + offsets[rule]) / n_steps, np.full(n_steps, 1.0 / n_steps)


@register_explainer("integrated_gradients")
class IntegratedGradients(Explainer):
    r"""Integrated gradients: path integral of the gradient from a baseline (Sundararajan et al. 2017).

    IG_t = Σ_d (e_{t,d} − e'_{t,d}) · ∫_0^1 ∂f(e' + α(e − e'))/∂e_{t,d} dα
         ≈ Σ_d (e_{t,d} − e'_{t,d}) · Σ_k w_k ∂f(e' + α_k(e − e'))/∂e_{t,d}.

    Completeness: Σ_t IG_t = f(e) − f(e'); the gap is recorded per text as
    `extras["convergence_delta"] = Σ_t IG_t − (f(e) − f(e'))`, next to `extras["input_score"]`
    and `extras["baseline_score"]`. The baseline e' replaces every non-special token by the pad, mask
    or unk token's embedding, or by zeros; special tokens are kept, as in Captum's BERT tutorial.
    The default "auto" is the pad token; for tokenizers without one (GPT-2, Llama), and where the
    embeddings feed a scale-invariant norm and the pad embedding is zero, the first of the
    unk/eos/bos tokens with a non-zero embedding (`adapter.auto_baseline`): along the path from
    zero, a model that normalises E right away (Llama, Gemma, BLOOM, ...) changes its score only in
    a sliver near α = 0 that no quadrature resolves; zeros only when no such token exists. The
    resolved choice is what the Explanation records. A completeness gap above 1 % of
    f(e) − f(e') adds a warning to the Explanation naming the fix.
    Causal LMs: one row per continuation token, with completeness per row. The baseline replaces
    the prompt and the continuation before each explained token (`baseline_on="all"`, as inseq
    does), so earlier continuation tokens get their share; `baseline_on="prompt"` keeps the
    continuation as it is (Captum's `LLMGradientAttribution`), so only prompt tokens are scored.
    Cost: n_steps forward passes per text (steps of several texts are packed into one batch up to
    `max_batch_tokens` padded tokens), each with one backward per explained row, + 2 forwards.
    Reference: arXiv:1703.01365.
    """

    needs_gradients = True
    needs_inputs_embeds = True
    multi_row = True
    default_batch_size = 16

    def __init__(
        self,
        adapter,
        *,
        baseline: Literal["auto", "pad", "mask", "unk", "eos", "bos", "zero"] = "auto",
        n_steps: int = 50,
        quadrature: str = "gausslegendre",
        max_batch_tokens: int = 4096,
        baseline_on: Literal["all", "prompt"] = "all",
        score: str = "logit",
    ):
        if baseline_on not in ("all", "prompt"):
            raise InvalidParameterError(f"baseline_on={baseline_on!r}; use 'all' or 'prompt'.")
        if baseline_on == "prompt" and not adapter.head.continuation:
            raise InvalidParameterError(
                f"baseline_on='prompt' keeps a causal LM's continuation out of the baseline; {adapter.head.model_class} "
                "has no continuation. Use baseline_on='all'."
            )
        self.baseline_on = baseline_on
        if baseline == "auto":
            baseline = adapter.auto_baseline
        if baseline not in BASELINES:
            raise InvalidParameterError(f"baseline={baseline!r} is not one of auto, {', '.join(BASELINES)}.")
        if baseline != "zero":
            adapter.token_id(baseline)  # fails early if the tokenizer has no such token
        self.baseline = baseline
        self.n_steps = check_steps(n_steps, quadrature)
        self.quadrature = quadrature
        self.max_batch_tokens = check_token_budget("max_batch_tokens", max_batch_tokens, hidden_size(adapter))
        self._alphas, self._weights = quadrature_rule(n_steps, quadrature)
        super().__init__(adapter, score=score)

    def _explain(self, batch: Batch, targets: list[int | None]) -> list[RowResult]:
        adapter = self.adapter
        with torch.no_grad():
            embeds = adapter.embed(batch.input_ids)
            replaced = ~batch.special_mask
            if self.baseline_on == "prompt":
                replaced &= ~batch.continuation_mask
            base = adapter.baseline_embeds(batch, embeds, self.baseline, where=replaced)
            logits = adapter.logits(batch, embeds)
            chosen, input_score = self._targets(logits, targets)
            baseline_score = adapter.score(adapter.logits(batch, base), chosen, self.score)

        diff = embeds - base
        alphas = torch.as_tensor(self._alphas, dtype=embeds.dtype, device=embeds.device)
        weights = torch.as_tensor(self._weights, dtype=embeds.dtype, device=embeds.device)
        attributions = torch.zeros((*input_score.shape, embeds.shape[1]), dtype=embeds.dtype, device=embeds.device)
        n_rows = len(batch) * self.n_steps
        rows_per_pass = max(1, self.max_batch_tokens // batch.input_ids.shape[1])
        for part in chunks(n_rows, rows_per_pass):
            flat = torch.arange(part.start, part.stop, device=embeds.device)
            text, step = flat // self.n_steps, flat % self.n_steps
            points = (base[text] + alphas[step, None, None] * diff[text]).requires_grad_(True)
            scores = adapter.score(adapter.logits(batch.take(text), points), chosen[text], self.score)
            # Σ_d (e − e')_d · w_k ∂f/∂e_d at this step, per token (and per row)
            path, w = diff[text], weights[step, None]
            weighted = row_gradients(scores, points, lambda g, path=path, w=w: (g * path).sum(-1) * w)
            attributions.index_add_(0, text, weighted)

        rows = self._results(batch, attributions.float(), logits, chosen)
        inputs, baselines = input_score.view(len(batch), -1).tolist(), baseline_score.view(len(batch), -1).tolist()
        for row, fxs, fbs in zip(rows, inputs, baselines):
            per_row = []
            for k, values in enumerate(np.atleast_2d(row.attributions)):
                fx, fb = fxs[k], fbs[k]
                delta = float(values.sum(dtype=np.float64)) - (fx - fb)
                per_row.append({"convergence_delta": delta, "input_score": fx, "baseline_score": fb})
                prefix = f"row {k}: " if row.attributions.ndim == 2 else ""
                row.warnings += [prefix + w for w in self._completeness_warnings(delta, fx - fb)]
            row.extras = {"rows": per_row} if row.attributions.ndim == 2 else per_row[0]
        return rows

    def _completeness_warnings(self, delta: float, gap: float) -> list[str]:
        """A warning when Σ IG misses f(e) − f(e') by more than `COMPLETENESS_WARNING` of it."""
        if abs(delta) <= COMPLETENESS_WARNING * abs(gap) or abs(delta) < 1e-6:
            return []
        share = f"{abs(delta) / abs(gap):.0%} of" if gap else "while"
        routed = routes_experts(self.adapter.config)
        cause = " Top-k expert routing makes the score jump along the path, where gradients see nothing." if routed else ""
        return [
            (
                f"integrated gradients misses completeness: sum of attributions - (f(x) - f(baseline)) = {delta:.3g}, "
                f"{share} f(x) - f(baseline) = {gap:.3g}; the attributions do not add up to the score change. "
                f"Raise n_steps (now {self.n_steps}) or choose another baseline (now {self.baseline!r}, e.g. 'pad', "
                f"'unk' or 'mask').{cause}"
            )
        ]
