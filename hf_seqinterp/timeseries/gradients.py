r"""Gradient methods over (time, channel) cells: saliency, gradient × input, integrated gradients.

The model is differentiated with respect to `past_values` X ∈ R^{T×C} itself (patching, scaling and
channel mixing are part of the function), one backward per explained row. Each method also offers
`attribute_inputs(batch, X̃, index)`: its attributions for arbitrary inputs X̃ of the batch's series,
which temporal saliency rescaling (`tsr`) evaluates on masked copies.
"""

from __future__ import annotations

from typing import Literal

import torch

from ..explainers.base import row_gradients
from ..explainers.gradient import COMPLETENESS_WARNING, quadrature_rule
from ..utils import chunks
from ..validation import check_steps
from .base import SeriesBatch, SeriesExplainer, SeriesResult, register_series_method
from .baselines import baseline_values, check_baseline


class _SeriesGradientMethod(SeriesExplainer):
    """Attributions from gradients at the input: `attribute_inputs` is what `_explain` runs on X."""

    needs_gradients = True
    differentiates_input = True

    def _cells(self, values: torch.Tensor, grads: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def attribute_inputs(self, batch: SeriesBatch, values: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        """(M, R, T, C) attributions of inputs (M, T, C), input m a variant of series `index[m]`."""
        parts = []
        with torch.enable_grad():
            for part in chunks(len(values), self.max_batch_series):
                x = values[part].detach().requires_grad_(True)
                scores = self._scores(batch, x, index[part])
                parts.append(row_gradients(scores, x, lambda g, x=x: self._cells(x.detach(), g)).detach())
        return torch.cat(parts)

    def _explain(self, batch: SeriesBatch) -> list[SeriesResult]:
        if batch.values.requires_grad:  # the batch's own forward: differentiate it
            x = batch.values
            cells = row_gradients(batch.input_scores, x, lambda g: self._cells(x.detach(), g))
        else:
            cells = self.attribute_inputs(batch, batch.values, torch.arange(len(batch)))
        return [SeriesResult(a, [], {}, []) for a in cells.detach().numpy()]


@register_series_method("saliency")
class SeriesSaliency(_SeriesGradientMethod):
    r"""Saliency: a_{t,c} = |∂f/∂x_{t,c}| (Simonyan et al. 2014). Unsigned. 1 forward + 1 backward per row."""


    def _cells(self, values, grads):
        return grads.abs()


@register_series_method("gradient_x_input")
class SeriesGradientXInput(_SeriesGradientMethod):
    r"""Gradient × input: a_{t,c} = x_{t,c} · ∂f/∂x_{t,c} (Shrikumar et al. 2016). 1 forward + 1 backward per row."""

    def _cells(self, values, grads):
        return values * grads


@register_series_method("integrated_gradients")
class SeriesIntegratedGradients(_SeriesGradientMethod):
    r"""Integrated gradients over (time, channel) cells (Sundararajan et al. 2017).

    IG_{t,c} = (x − x')_{t,c} · Σ_k w_k ∂f(x' + α_k (x − x'))/∂x_{t,c}
    with quadrature nodes α_k and weights w_k (Gauss-Legendre by default) and a baseline x' ("zero",
    "mean": each channel's mean, "blur": the series smoothed along time, Gaussian of `sigma` steps).
    Completeness Σ_{t,c} IG_{t,c} = f(x) − f(x'): each row records `convergence_delta` (the gap),
    `baseline_score`; a gap above 1 % of f(x) − f(x') adds a warning. Cost: n_steps forwards per
    series, all steps of the batch's series packed `max_batch_series` to a forward, one backward per
    row. Reference: arXiv:1703.01365.
    """

    default_batch_size = 8
    differentiates_input = False

    def __init__(
        self,
        adapter,
        *,
        baseline: Literal["zero", "mean", "blur"] = "zero",
        sigma: float = 2.0,
        n_steps: int = 50,
        quadrature: str = "gausslegendre",
        score: str = "auto",
        max_batch_series: int = 256,
    ):
        self.baseline, self.sigma = check_baseline(baseline, sigma)
        self.n_steps = check_steps(n_steps, quadrature)
        self.quadrature = quadrature
        self._alphas, self._weights = quadrature_rule(n_steps, quadrature)
        super().__init__(adapter, score=score, max_batch_series=max_batch_series)

    def _cells(self, values, grads):
        return grads  # the path gradient; `attribute_inputs` weights and multiplies it

    def attribute_inputs(self, batch: SeriesBatch, values: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        base = baseline_values(values, batch.observed[index], self.baseline, self.sigma)
        alphas = torch.as_tensor(self._alphas, dtype=values.dtype)
        weights = torch.as_tensor(self._weights, dtype=values.dtype)
        n = self.n_steps
        points = (base[:, None] + alphas[None, :, None, None] * (values - base)[:, None]).reshape(-1, *values.shape[1:])
        grads = super().attribute_inputs(batch, points, index.repeat_interleave(n))  # (M·n, R, T, C)
        path = (grads.reshape(len(values), n, *grads.shape[1:]) * weights[None, :, None, None, None]).sum(1)
        return path * (values - base)[:, None]

    def _explain(self, batch: SeriesBatch) -> list[SeriesResult]:
        index = torch.arange(len(batch))
        cells = self.attribute_inputs(batch, batch.values, index)
        with torch.no_grad():
            base = baseline_values(batch.values, batch.observed, self.baseline, self.sigma)
            baseline_scores = self._scores(batch, base, index)
        results = []
        for i, rows in enumerate(batch.rows):
            extras, warnings = [], []
            for r in range(len(rows)):
                fx, fb = float(batch.input_scores[i, r]), float(baseline_scores[i, r])
                delta = float(cells[i, r].double().sum()) - (fx - fb)
                extras.append({"baseline_score": fb, "convergence_delta": delta})
                if abs(delta) > COMPLETENESS_WARNING * abs(fx - fb) and abs(delta) > 1e-6:
                    warnings.append(
                        f"row {r}: integrated gradients misses completeness by {delta:.3g} "
                        f"(f(x) - f(baseline) = {fx - fb:.3g}); raise n_steps (now {self.n_steps}) or try baseline='blur'."
                    )
            results.append(SeriesResult(cells[i].numpy(), extras, {}, warnings))
        return results
