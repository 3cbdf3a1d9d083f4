r"""Perturbation methods over (time, channel) cells: temporal occlusion, channel erasure, KernelSHAP
and Shapley value sampling over (window × channel) groups.

Every method scores edited copies of a series: a keep mask κ ∈ {0,1}^{T×C} gives the input
κ ⊙ x + (1 − κ) ⊙ x' with a baseline x' ("zero", "mean", "blur"; see `base`). All distinct masks of
all series of a batch are scored in forwards of `max_batch_series` inputs, each forward giving
every row's score. Coalitions and their solvers are the text explainers' (`explainers._coalitions`);
a group's score is spread evenly over its cells, so channel and time totals add up.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import torch

from ..errors import InvalidParameterError
from ..explainers import _coalitions as coalitions
from ..validation import check_int, check_samples, check_seed
from .base import SeriesBatch, SeriesExplainer, SeriesResult, register_series_method
from .baselines import baseline_values, check_baseline

Channels = Literal["each", "all"]


def _check_channels(channels: str) -> str:
    if channels not in ("each", "all"):
        raise InvalidParameterError(f"channels={channels!r}; use 'each' (a window per channel) or 'all' (every channel at once).")
    return channels


class _SeriesPerturbation(SeriesExplainer):
    """Shared loop: keep masks → one batched scoring → attributions per row."""

    def __init__(self, adapter, *, baseline: str = "zero", sigma: float = 2.0, score: str = "auto",
                 max_batch_series: int = 256):
        self.baseline, self.sigma = check_baseline(baseline, sigma)
        super().__init__(adapter, score=score, max_batch_series=max_batch_series)

    def _keeps(self, n_time: int, n_channels: int) -> np.ndarray:
        """(n, T, C) bool keep masks to score (the unedited series is scored anyway)."""
        raise NotImplementedError

    def _attribute(self, keeps: np.ndarray, values: np.ndarray, full: float) -> tuple[np.ndarray, dict[str, Any]]:
        """(T, C) attributions of one row from its masks, their scores and f(x)."""
        raise NotImplementedError

    def _explain(self, batch: SeriesBatch) -> list[SeriesResult]:
        n_series, n_time, n_channels = batch.values.shape
        keeps = self._keeps(n_time, n_channels)
        distinct, where = np.unique(keeps.reshape(len(keeps), -1), axis=0, return_inverse=True)
        masks = torch.as_tensor(distinct.reshape(-1, n_time, n_channels))
        base = baseline_values(batch.values, batch.observed, self.baseline, self.sigma)
        variants = torch.where(masks[None], batch.values[:, None], base[:, None]).reshape(-1, n_time, n_channels)
        index = torch.arange(n_series).repeat_interleave(len(masks))
        scores = self._scores_chunked(batch, variants, index).double().reshape(n_series, len(masks), -1).numpy()
        results = []
        for i, rows in enumerate(batch.rows):
            cells, extras = [], []
            for r in range(len(rows)):
                grid, info = self._attribute(keeps, scores[i, where.reshape(-1), r], float(batch.input_scores[i, r]))
                cells.append(grid)
                extras.append(info)
            padding = np.zeros((batch.weights.shape[1] - len(rows), n_time, n_channels))
            results.append(SeriesResult(np.concatenate([np.stack(cells), padding]), extras, {"n_evaluations": len(masks) + 1}, []))
        return results


@register_series_method("occlusion")
class SeriesOcclusion(_SeriesPerturbation):
    r"""Temporal occlusion: windows of `window` steps (stride `stride`) replaced by the baseline (Zeiler & Fergus 2014).

    With channels="each" a window covers one channel, with "all" every channel; a cell's score is
    the mean of f(x) − f(x with the window replaced) over the windows covering it, as Captum's
    `Occlusion` with `sliding_window_shapes=(window, 1)` or `(window, C)`. A last window flush with
    the end is added when the stride leaves steps uncovered. Cost: (#windows × C or #windows) + 1
    forwards per series. Reference: arXiv:1311.2901.
    """

    def __init__(self, adapter, *, window: int = 10, stride: int | None = None, channels: Channels = "each",
                 baseline: Literal["zero", "mean", "blur"] = "zero", sigma: float = 2.0, score: str = "auto",
                 max_batch_series: int = 256):
        self.window = check_int("window", window)
        self.stride = self.window if stride is None else check_int("stride", stride)
        self.channels = _check_channels(channels)
        super().__init__(adapter, baseline=baseline, sigma=sigma, score=score, max_batch_series=max_batch_series)

    def _keeps(self, n_time, n_channels):
        z = coalitions.window_coalitions(n_time, self.window, self.stride)  # (W, T)
        if self.channels == "all":
            return np.repeat(z[:, :, None], n_channels, axis=2)
        keeps = np.ones((len(z), n_channels, n_time, n_channels), dtype=bool)
        for c in range(n_channels):
            keeps[:, c, :, c] = z
        return keeps.reshape(-1, n_time, n_channels)

    def _attribute(self, keeps, values, full):
        return coalitions.window_average(keeps.reshape(len(keeps), -1), full - values).reshape(keeps.shape[1:]), {}


@register_series_method("channel_erasure")
class ChannelErasure(_SeriesPerturbation):
    r"""Channel erasure: each whole variable replaced by the baseline, its drop spread over its steps.

    Δ_c = f(x) − f(x with channel c replaced), spread evenly over its steps, so
    `channel_totals()[c] = Δ_c`. Cost: C + 1 forwards per series.

    Variable-level importance as in the leave-one-covariate-out tradition (Lei et al. 2018,
    arXiv:1604.04173). On channel-independent models with a linear head (PatchTST, PatchTSMixer
    common_channel) the logit is a sum of per-channel terms, so Δ_c equals channel c's Shapley value.
    """

    def __init__(self, adapter, *, baseline: Literal["zero", "mean", "blur"] = "mean", sigma: float = 2.0,
                 score: str = "auto", max_batch_series: int = 256):
        super().__init__(adapter, baseline=baseline, sigma=sigma, score=score, max_batch_series=max_batch_series)

    def _keeps(self, n_time, n_channels):
        return np.repeat(~np.eye(n_channels, dtype=bool)[:, None, :], n_time, axis=1)

    def _attribute(self, keeps, values, full):
        drops = full - values  # one per channel
        return np.repeat(drops[None, :] / keeps.shape[1], keeps.shape[1], axis=0), {}


class _GroupGame(_SeriesPerturbation):
    r"""A cooperative game over groups of cells: time windows of `window` steps, per channel
    (channels="each") or across channels ("all"). v(z) is the row's score with the groups outside z
    replaced by the baseline; v(∅) is recorded as each row's `baseline_score`. `n_samples` (coalitions
    or permutations) defaults to the subclass's `default_samples`."""

    #: n_samples when none is given
    default_samples: int = 0

    def __init__(self, adapter, *, n_samples: int | None = None, window: int = 10, channels: Channels = "each",
                 seed: int = 0, baseline: Literal["zero", "mean", "blur"] = "zero", sigma: float = 2.0,
                 score: str = "auto", max_batch_series: int = 256):
        self.n_samples = check_samples("n_samples", self.default_samples if n_samples is None else n_samples)
        self.window = check_int("window", window)
        self.channels = _check_channels(channels)
        self.seed = check_seed(seed)
        super().__init__(adapter, baseline=baseline, sigma=sigma, score=score, max_batch_series=max_batch_series)

    def _groups(self, n_time: int, n_channels: int) -> np.ndarray:
        """(T, C) group id of every cell."""
        blocks = np.arange(n_time)[:, None] // self.window
        return blocks * n_channels + np.arange(n_channels) if self.channels == "each" else np.repeat(blocks, n_channels, 1)

    def _coalitions(self, n_groups: int) -> np.ndarray:
        raise NotImplementedError

    def _keeps(self, n_time, n_channels):
        groups = self._groups(n_time, n_channels)
        self._z = self._coalitions(int(groups.max()) + 1)
        self._cell_groups = groups
        return self._z[:, groups]

    def _spread(self, phi: np.ndarray) -> np.ndarray:
        sizes = np.bincount(self._cell_groups.ravel())
        return phi[self._cell_groups] / sizes[self._cell_groups]

    def _rng(self) -> np.random.Generator:
        return np.random.default_rng(self.seed)


@register_series_method("kernel_shap")
class SeriesKernelShap(_GroupGame):
    r"""KernelSHAP over (window × channel) groups (Lundberg & Lee 2017), efficiency imposed exactly.

        φ = argmin Σ_z π(z) (v(z) − v(∅) − Σ_g φ_g z_g)²  s.t.  Σ_g φ_g = f(x) − v(∅),
        π(z) = (M − 1) / (C(M, |z|) · |z| · (M − |z|)),
    coalitions drawn from π in complementary pairs (all of them when n_samples ≥ 2^M − 2: exact
    Shapley values). Cost: n_samples (default 500) + 2 forwards per series. Reference: arXiv:1705.07874.
    """

    default_samples = 500

    def _coalitions(self, n_groups):
        return coalitions.kernel_shap_coalitions(n_groups, self.n_samples, self._rng(), paired=True)

    def _attribute(self, keeps, values, full):
        empty, exact = float(values[0]), coalitions.kernel_shap_exact(self._z.shape[1], self.n_samples)
        interior = self._z[1:]
        weights = coalitions.kernel_weights(interior) if exact else np.ones(len(interior))
        phi = coalitions.constrained_least_squares(interior, values[1:] - empty, weights, full - empty)
        return self._spread(phi), {"baseline_score": empty, "exact": exact}


@register_series_method("shapley_sampling")
class SeriesShapleySampling(_GroupGame):
    r"""Shapley value sampling over (window × channel) groups (Castro et al. 2009).

    φ_g is the mean marginal gain v(prefix ∪ {g}) − v(prefix) over `n_samples` random orderings;
    Σ_g φ_g = f(x) − v(∅) exactly.
    Cost: n_samples (default 25) · (M − 1) + 2 forwards per series (repeated prefixes scored once).
    Reference: doi:10.1016/j.cor.2008.04.004.
    """

    default_samples = 25

    def _coalitions(self, n_groups):
        return coalitions.permutation_coalitions(n_groups, self.n_samples, self._rng())

    def _attribute(self, keeps, values, full):
        return self._spread(coalitions.permutation_shapley(self._z, values, full)), {"baseline_score": float(values[0])}
