r"""LIME for text: a weighted linear surrogate fitted to the model's scores on perturbed inputs."""

from __future__ import annotations

import numpy as np

from ..masking import FeatureLevel
from ..validation import check_float, check_samples
from ._coalitions import lime_coalitions, lime_weights, weighted_ridge
from ._perturbation import SampledPerturbationExplainer
from .base import register_explainer


@register_explainer("lime")
class Lime(SampledPerturbationExplainer):
    r"""LIME: a locally weighted ridge regression on random word/token removals (Ribeiro et al. 2016).

    Text setup of the paper's code: the first sample is the input itself (z = 1); each of the other
    n_samples − 1 removes a number of features drawn uniformly from 1..M, chosen uniformly. A sample
    is weighted by π(z) = sqrt(exp(−d²/w²)), d = 100 · cosine_distance(z, 1), w = `kernel_width`;
    then
        (a, b) = argmin Σ_s π(z_s) (f(x_{z_s}) − b − a·z_s)² + α‖a‖²
    and a_j is feature j's attribution. α = `alpha` (0 = unregularised weighted least squares,
    which recovers the exact per-feature contributions of an additive model). Unlike lime, every
    feature enters the surrogate (no feature selection) and features are positional (two
    occurrences of a word are two features). `extras` records the surrogate's `intercept` and its
    weighted R² on the samples (`r2`, lime's `score`). Cost: n_samples forwards per text (fewer
    when samples repeat, as they do for short texts), batched. Reference: arXiv:1602.04938.
    """


    def __init__(
        self,
        adapter,
        *,
        n_samples: int = 500,
        kernel_width: float = 25.0,
        alpha: float = 1.0,
        seed: int = 0,
        level: FeatureLevel = "word",
        replacement: str = "auto",
        max_batch_tokens: int = 8192,
        score: str = "logit",
    ):
        self.n_samples = check_samples("n_samples", n_samples, minimum=2)
        self.kernel_width = check_float("kernel_width", kernel_width, minimum=0.0, open_minimum=True)
        self.alpha = check_float("alpha", alpha, minimum=0.0)  # 0 = no regularisation
        super().__init__(adapter, seed=seed, level=level, replacement=replacement,
                         max_batch_tokens=max_batch_tokens, score=score)

    def _coalitions(self, n_features: int) -> np.ndarray:
        return lime_coalitions(n_features, self.n_samples, self._rng())

    def _attribute(self, z, values, full_value):
        samples = np.vstack([np.ones((1, z.shape[1]), dtype=bool), z])
        scores = np.concatenate([[full_value], values])
        coef, intercept, r2 = weighted_ridge(samples, scores, lime_weights(samples, self.kernel_width), self.alpha)
        return coef, {"intercept": intercept, "r2": r2}
