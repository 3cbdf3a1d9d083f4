r"""Coalition samplers and solvers shared by the perturbation explainers (pure numpy, no model).

A coalition z ∈ {0,1}^M says which of a text's M features stay (1) or are replaced (0); the value
function v(z) is the model's score on that edited input. Every sampler takes a seeded
`numpy.random.Generator`, so the same seed gives the same coalitions, text by text.
"""

from __future__ import annotations

import math

import numpy as np


# ----------------------------------------------------------------------------- windows (erasure, occlusion)
def window_coalitions(n_features: int, window: int, stride: int) -> np.ndarray:
    """One coalition per window of `window` consecutive features (stride `stride`), that window removed.

    Windows start at 0, stride, 2·stride, ...; a last window flush with the end is added when the
    stride would leave the final features uncovered, so every feature is in at least one window.
    """
    width = min(window, n_features)
    starts = list(range(0, n_features - width + 1, stride))
    if starts[-1] != n_features - width:
        starts.append(n_features - width)
    z = np.ones((len(starts), n_features), dtype=bool)
    for row, start in enumerate(starts):
        z[row, start : start + width] = False
    return z


def window_average(z: np.ndarray, drops: np.ndarray) -> np.ndarray:
    """Per feature, the mean of `drops` over the windows (rows of z) that removed it."""
    removed = ~z
    return (removed * drops[:, None]).sum(0) / removed.sum(0)


# ----------------------------------------------------------------------------- Shapley sampling
def permutation_coalitions(n_features: int, n_permutations: int, rng: np.random.Generator) -> np.ndarray:
    """Row 0: the empty coalition; then, per random permutation, its M−1 proper non-empty prefixes."""
    perms = np.argsort(rng.random((n_permutations, n_features)), axis=1)
    ranks = np.argsort(perms, axis=1)  # ranks[p, j] = step at which permutation p adds feature j
    steps = np.arange(1, n_features)
    prefixes = ranks[:, None, :] < steps[None, :, None]  # (n, M-1, M)
    return np.vstack([np.zeros((1, n_features), dtype=bool), prefixes.reshape(-1, n_features)])


def permutation_shapley(z: np.ndarray, values: np.ndarray, full_value: float) -> np.ndarray:
    """Shapley values from `permutation_coalitions` rows and their values: the mean over permutations of
    each feature's marginal gain v(prefix ∪ {j}) − v(prefix). Each permutation's gains telescope to
    v(1) − v(0), so Σ_j φ_j = v(1) − v(0) for any number of permutations."""
    n_features = z.shape[1]
    if n_features == 1:
        return np.array([full_value - values[0]])
    chain = z[1:].reshape(-1, n_features - 1, n_features)
    n_perm = chain.shape[0]
    empty = np.zeros((n_perm, 1, n_features), dtype=bool)
    full = np.ones((n_perm, 1, n_features), dtype=bool)
    sets = np.concatenate([empty, chain, full], axis=1)  # (n, M+1, M)
    added = np.argmax(sets[:, 1:] & ~sets[:, :-1], axis=-1)  # (n, M)
    chain_values = values[1:].reshape(n_perm, n_features - 1)
    path = np.concatenate(
        [np.full((n_perm, 1), values[0]), chain_values, np.full((n_perm, 1), full_value)], axis=1
    )
    gains = np.diff(path, axis=1)
    return np.bincount(added.ravel(), weights=gains.ravel(), minlength=n_features) / n_perm


# ----------------------------------------------------------------------------- KernelSHAP
def kernel_shap_exact(n_features: int, n_samples: int) -> bool:
    """Whether `n_samples` covers every coalition other than the empty and full ones."""
    return n_features <= 30 and 2**n_features - 2 <= n_samples


def kernel_shap_coalitions(n_features: int, n_samples: int, rng: np.random.Generator, paired: bool) -> np.ndarray:
    r"""Row 0: the empty coalition; then `n_samples` coalitions with 0 < |z| < M.

    When 2^M − 2 ≤ n_samples every such coalition is listed once (exact enumeration). Otherwise
    they are drawn from the Shapley kernel: size k with probability ∝ (M−1)/(k(M−k)), then a
    uniform subset of that size, so each draw has regression weight 1. With `paired`, draws come
    in complementary pairs (z, 1−z), which cancels much of the estimator's variance (Covert & Lee
    2021, arXiv:2012.01536).
    """
    empty = np.zeros((1, n_features), dtype=bool)
    if kernel_shap_exact(n_features, n_samples):
        codes = np.arange(1, 2**n_features - 1)
        interior = ((codes[:, None] >> np.arange(n_features)) & 1).astype(bool)
        return np.vstack([empty, interior])
    sizes = np.arange(1, n_features)
    size_p = 1.0 / (sizes * (n_features - sizes))
    n_draws = math.ceil(n_samples / 2) if paired else n_samples
    k = rng.choice(sizes, size=n_draws, p=size_p / size_p.sum())
    draws = np.argsort(np.argsort(rng.random((n_draws, n_features)), axis=1), axis=1) < k[:, None]
    if paired:
        draws = np.stack([draws, ~draws], axis=1).reshape(-1, n_features)[:n_samples]
    return np.vstack([empty, draws])


def kernel_weights(z: np.ndarray) -> np.ndarray:
    """Shapley-kernel weight π(z) = (M−1) / (C(M,|z|)·|z|·(M−|z|)) of coalitions with 0 < |z| < M."""
    n_features = z.shape[1]
    size = z.sum(1)
    return (n_features - 1) / (np.array([math.comb(n_features, int(s)) for s in size]) * size * (n_features - size))


def constrained_least_squares(z: np.ndarray, y: np.ndarray, weights: np.ndarray, total: float) -> np.ndarray:
    r"""argmin_φ Σ_s w_s (y_s − z_s·φ)²  subject to  Σ_j φ_j = total, solved exactly.

    The constraint is eliminated (φ_M = total − Σ_{j<M} φ_j, as shap's KernelExplainer does), leaving
    an unconstrained weighted least-squares problem in M−1 unknowns; `lstsq` returns its minimum-norm
    solution when the samples do not determine it.
    """
    n_features = z.shape[1]
    if n_features == 1 or len(y) == 0:
        return np.full(n_features, total / n_features)
    zf = z.astype(np.float64)
    design = zf[:, :-1] - zf[:, -1:]
    target = y - zf[:, -1] * total
    root = np.sqrt(weights)[:, None]
    head, *_ = np.linalg.lstsq(design * root, target * root[:, 0], rcond=None)
    return np.append(head, total - head.sum())


# ----------------------------------------------------------------------------- LIME
def lime_coalitions(n_features: int, n_samples: int, rng: np.random.Generator) -> np.ndarray:
    """`n_samples` − 1 perturbed coalitions as in Ribeiro et al.'s text LIME: for each, a number of
    features to remove drawn uniformly from 1..M, then which ones uniformly (the original input, the
    first LIME sample, is the all-ones row the explainer scores anyway)."""
    n_removed = rng.integers(1, n_features + 1, size=n_samples - 1)
    ranks = np.argsort(np.argsort(rng.random((n_samples - 1, n_features)), axis=1), axis=1)
    return ranks >= n_removed[:, None]


def lime_weights(z: np.ndarray, kernel_width: float) -> np.ndarray:
    """LIME's text kernel: d = 100 · cosine distance between z and the all-ones vector,
    π = sqrt(exp(−d² / width²))."""
    similarity = np.sqrt(z.sum(1) / z.shape[1])
    distance = (1.0 - similarity) * 100.0
    return np.sqrt(np.exp(-(distance**2) / kernel_width**2))


def weighted_ridge(x: np.ndarray, y: np.ndarray, weights: np.ndarray, alpha: float) -> tuple[np.ndarray, float, float]:
    """Weighted ridge regression with an unpenalised intercept: argmin Σ_s w_s (y_s − b − x_s·β)² + α‖β‖².

    Returns (β, b, R²), R² being the weighted coefficient of determination on the samples (what
    lime reports as the surrogate's `score`). α = 0 is ordinary weighted least squares
    (minimum-norm β when the samples do not determine it).
    """
    x = x.astype(np.float64)
    w = weights / weights.sum()
    x_mean, y_mean = w @ x, float(w @ y)
    xc, yc = x - x_mean, y - y_mean
    root = np.sqrt(weights)[:, None]
    design, target = xc * root, yc * root[:, 0]
    if alpha > 0:
        design = np.vstack([design, math.sqrt(alpha) * np.eye(x.shape[1])])
        target = np.concatenate([target, np.zeros(x.shape[1])])
    beta, *_ = np.linalg.lstsq(design, target, rcond=None)
    residual = yc - xc @ beta
    total = float(w @ yc**2)
    r2 = 1.0 - float(w @ residual**2) / total if total > 0 else 1.0
    return beta, y_mean - float(x_mean @ beta), r2
