r"""Shapley-value estimators: KernelSHAP and permutation (Shapley value) sampling.

The game: features j = 1..M of one text (tokens or words), v(S) = the explained score of the input
with the features outside S replaced per `replacement`. The Shapley value
    φ_j = Σ_{S ⊆ N∖{j}} |S|!(M−|S|−1)!/M! · [v(S ∪ {j}) − v(S)]
satisfies efficiency, Σ_j φ_j = v(N) − v(∅) = f(x) − f(baseline); both estimators keep it exactly,
and record `extras["baseline_score"]` = v(∅) next to `extras["input_score"]` = v(N).
"""

from __future__ import annotations

import numpy as np

from ..masking import FeatureLevel
from ..validation import TYPICAL_WORDS, check_samples
from ._coalitions import (
    constrained_least_squares,
    kernel_shap_coalitions,
    kernel_shap_exact,
    kernel_weights,
    permutation_coalitions,
    permutation_shapley,
)
from ._perturbation import SampledPerturbationExplainer
from .base import register_explainer


@register_explainer("kernel_shap")
class KernelShap(SampledPerturbationExplainer):
    r"""KernelSHAP: Shapley values as a weighted linear regression with efficiency imposed exactly (Lundberg & Lee 2017).

        φ = argmin Σ_z π(z) (v(z) − v(∅) − Σ_j φ_j z_j)²   subject to   Σ_j φ_j = v(N) − v(∅)
        π(z) = (M − 1) / (C(M, |z|) · |z| · (M − |z|))
    over coalitions 0 < |z| < M. The constraint is eliminated as in shap's KernelExplainer, so
    efficiency holds to float precision (Captum's KernelShap instead gives v(∅), v(N) a large finite
    weight). When n_samples ≥ 2^M − 2 all coalitions are enumerated and φ is the exact Shapley value;
    otherwise coalitions are drawn from π (sizes ∝ (M−1)/(k(M−k)), then uniform subsets), by default
    in complementary pairs (`paired`). `extras["exact"]` says which. Cost: n_samples + 2 forwards per
    text (fewer when draws repeat), batched. Reference: arXiv:1705.07874.
    """


    def __init__(
        self,
        adapter,
        *,
        n_samples: int = 500,
        paired: bool = True,
        seed: int = 0,
        level: FeatureLevel = "word",
        replacement: str = "auto",
        max_batch_tokens: int = 8192,
        score: str = "logit",
    ):
        self.n_samples = check_samples("n_samples", n_samples)
        self.paired = bool(paired)
        super().__init__(adapter, seed=seed, level=level, replacement=replacement,
                         max_batch_tokens=max_batch_tokens, score=score)

    def _coalitions(self, n_features: int) -> np.ndarray:
        return kernel_shap_coalitions(n_features, self.n_samples, self._rng(), self.paired)

    def _attribute(self, z, values, full_value):
        empty_value = float(values[0])
        interior, gains = z[1:], values[1:] - empty_value
        exact = kernel_shap_exact(z.shape[1], self.n_samples)
        weights = kernel_weights(interior) if exact else np.ones(len(interior))
        phi = constrained_least_squares(interior, gains, weights, full_value - empty_value)
        return phi, {"baseline_score": empty_value, "exact": exact}


@register_explainer("shapley_sampling")
class ShapleySampling(SampledPerturbationExplainer):
    r"""Shapley value sampling: average marginal gains over random feature orderings (Castro et al. 2009).

    For each of n_samples random permutations, features are added one at a time to the empty
    coalition and each is credited its gain v(prefix ∪ {j}) − v(prefix); φ_j is the mean gain. Every
    permutation's gains telescope to v(N) − v(∅), so Σ_j φ_j = f(x) − f(baseline) exactly for any
    n_samples; the estimate is unbiased and converges to the Shapley value. Same estimator as
    Captum's ShapleyValueSampling. Cost: n_samples · (M − 1) + 2 forwards per text (repeated
    prefixes scored once), batched. Reference: doi:10.1016/j.cor.2008.04.004.
    """


    def __init__(
        self,
        adapter,
        *,
        n_samples: int = 25,
        seed: int = 0,
        level: FeatureLevel = "word",
        replacement: str = "auto",
        max_batch_tokens: int = 8192,
        score: str = "logit",
    ):
        self.n_samples = check_samples(
            "n_samples", n_samples, bytes_each=TYPICAL_WORDS * (TYPICAL_WORDS + 8.0)  # (M-1) coalitions of M
        )
        super().__init__(adapter, seed=seed, level=level, replacement=replacement,
                         max_batch_tokens=max_batch_tokens, score=score)

    def _coalitions(self, n_features: int) -> np.ndarray:
        return permutation_coalitions(n_features, self.n_samples, self._rng())

    def _attribute(self, z, values, full_value):
        return permutation_shapley(z, values, full_value), {"baseline_score": float(values[0])}
