r"""Temporal saliency rescaling (Ismail et al. 2020, arXiv:2010.13924).

A base saliency R (a gradient method) often spreads relevance over time steps that do not matter.
TSR separates time from feature relevance by masking, for input X ∈ R^{T×C}:

1. time relevance: for each step t, X̄^{(t)} = X with every channel at t replaced by the baseline;
   Δ_t = Σ_{t',c} |R(X) − R(X̄^{(t)})|_{t',c};
2. feature relevance in the relevant steps (Δ_t at or above the `time_quantile` quantile of Δ):
   X̄^{(t,c)} = X with cell (t, c) replaced; Δ_{t,c} = Σ |R(X) − R(X̄^{(t,c)})|;
3. R^TSR_{t,c} = Δ_t · Δ_{t,c} in the relevant steps, 0 elsewhere.

Non-negative (a relevance, not a signed contribution). Each row has its own Δ and relevant steps;
the masked copies are scored for the union of the rows' relevant steps. Cost: 1 + T + C·|relevant|
evaluations of R, all batched (R = integrated gradients multiplies this by its n_steps).
"""

from __future__ import annotations

from typing import Any, Literal

import torch

from ..errors import InvalidParameterError
from ..validation import check_float
from .base import SeriesBatch, SeriesExplainer, SeriesResult, get_series_method, register_series_method
from .baselines import baseline_values, check_baseline
from .gradients import _SeriesGradientMethod


@register_series_method("tsr")
class TemporalSaliencyRescaling(SeriesExplainer):
    r"""Temporal saliency rescaling of a gradient method: R^TSR_{t,c} = Δ_t · Δ_{t,c} (Ismail et al. 2020).

    See `hf_seqinterp.timeseries.tsr`. `base_method` is "saliency" (the paper's Grad), "gradient_x_input"
    or "integrated_gradients", built with `base_params`; masked cells take the `baseline`.
    Reference: arXiv:2010.13924.
    """

    needs_gradients = True
    default_batch_size = 4

    def __init__(
        self,
        adapter,
        *,
        base_method: str = "saliency",
        base_params: dict[str, Any] | None = None,
        time_quantile: float = 0.55,
        baseline: Literal["zero", "mean", "blur"] = "zero",
        sigma: float = 2.0,
        score: str = "auto",
        max_batch_series: int = 256,
    ):
        cls = get_series_method(base_method)
        if not issubclass(cls, _SeriesGradientMethod):
            raise InvalidParameterError(
                f"base_method={base_method!r}: TSR rescales a gradient method; use saliency, gradient_x_input or "
                "integrated_gradients."
            )
        self.base_method = base_method
        self.base_params = dict(base_params or {})
        self._base = cls.create(adapter, score=score, max_batch_series=max_batch_series, **self.base_params)
        self.time_quantile = check_float("time_quantile", time_quantile, minimum=0.0, maximum=1.0)
        self.baseline, self.sigma = check_baseline(baseline, sigma)
        super().__init__(adapter, score=score, max_batch_series=max_batch_series)

    def _explain(self, batch: SeriesBatch) -> list[SeriesResult]:
        n_series, n_time, n_channels = batch.values.shape
        x = batch.values
        base = baseline_values(x, batch.observed, self.baseline, self.sigma)
        # 1. R(X) and R(X̄^{(t)}) for every series and step, in one batched evaluation
        steps = torch.eye(n_time, dtype=torch.bool)[:, :, None].expand(n_time, n_time, n_channels)
        masked = torch.where(steps[None], base[:, None], x[:, None])  # (N, T, T, C): step t replaced
        inputs = torch.cat([x[:, None], masked], 1).reshape(-1, n_time, n_channels)
        saliency = self._base.attribute_inputs(batch, inputs, torch.arange(n_series).repeat_interleave(n_time + 1))
        saliency = saliency.reshape(n_series, n_time + 1, *saliency.shape[1:])  # (N, 1 + T, R, T, C)
        reference = saliency[:, 0]
        delta_t = (saliency[:, 1:] - reference[:, None]).abs().sum((3, 4)).transpose(1, 2)  # (N, R, T)
        relevant = delta_t >= torch.quantile(delta_t, self.time_quantile, dim=2, keepdim=True)
        # 2. R(X̄^{(t,c)}) for the cells of each series' relevant steps (the union over its rows)
        unions = [torch.nonzero(relevant[i].any(0)).flatten() for i in range(n_series)]
        cells, owners = [], []
        for i, union in enumerate(unions):
            mask = torch.zeros(len(union), n_channels, n_time, n_channels, dtype=torch.bool)
            channels = torch.arange(n_channels)
            mask[torch.arange(len(union))[:, None], channels, union[:, None], channels] = True  # (t_k, c) of copy (k, c)
            cells.append(torch.where(mask.reshape(-1, n_time, n_channels), base[i], x[i]))
            owners.append(torch.full((len(union) * n_channels,), i))
        cell_saliency = self._base.attribute_inputs(batch, torch.cat(cells), torch.cat(owners))
        # 3. R^TSR = Δ_t · Δ_{t,c} on the relevant steps
        results, offset = [], 0
        for i, union in enumerate(unions):
            n_cells = len(union) * n_channels
            part = cell_saliency[offset : offset + n_cells]
            offset += n_cells
            delta_tc = (part - reference[i]).abs().sum((2, 3)).reshape(len(union), n_channels, -1)  # (U, C, R)
            grid = torch.zeros(delta_t.shape[1], n_time, n_channels, dtype=delta_t.dtype)
            grid[:, union] = delta_tc.permute(2, 0, 1)
            grid = grid * delta_t[i, :, :, None] * relevant[i, :, :, None]
            extras = [{"relevant_steps": torch.nonzero(relevant[i, r]).flatten().tolist()} for r in range(len(batch.rows[i]))]
            results.append(SeriesResult(grid.numpy(), extras, {"n_evaluations": 1 + n_time + n_cells}, []))
        return results
