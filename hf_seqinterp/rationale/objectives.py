r"""Training objectives of a rationale generator: REINFORCE on Lei et al.'s cost, and HardKuma with a
Lagrangian on the selection rate.

For one text of n words with gates z ∈ [0, 1]^n, the selection rate and the transitions per word
boundary are

    ρ(z) = Σ_t z_t / n,        τ(z) = Σ_{t=2..n} |z_t − z_{t−1}| / (n − 1)

(Lei et al.'s ‖z‖₁ and Σ|z_t − z_{t−1}| divided by the length, so λ1 and λ2 mean the same for short
and long texts). L is the predictor's cross-entropy on the selected words against the target: the
predictor's own prediction on the full text (explaining a frozen model), or the gold label
(training the predictor jointly, as Lei et al. do).

REINFORCE (Lei, Barzilay & Jaakkola 2016, arXiv:1606.04155), Bernoulli gates, one sample per text:

    cost(z) = L(x ⊙ z) + λ1·ρ(z) + λ2·τ(z)
    ∇_θ E_z[cost] = E_z[(cost(z) − b) · ∇_θ log p_θ(z | x)]

with b an exponential moving average of past costs: a baseline leaves the expectation unchanged
and reduces the variance. A jointly trained predictor gets ∇ L directly.

HardKuma (Bastings, Aziz & Titov 2019, arXiv:1905.08160), relaxed gates: L is differentiated
through the reparameterised sample; the expected selection rate ρ̄ = Σ_t P(z_t ≠ 0) / n is held at
most `target_rate` by a Lagrangian, and λ2 weighs the expected transitions
τ̄ = Σ_t [P0_t (1 − P0_{t+1}) + (1 − P0_t) P0_{t+1}] / (n − 1), P0_t = P(z_t = 0):

    loss = L(x ⊙ z) + λ0 · (mean ρ̄ − target_rate) + λ2 · τ̄
    λ0 ← clip(λ0 · exp(η · c̄), λ_min, λ_max),    c̄ ← α c̄ + (1 − α)(mean ρ̄ − target_rate)

so λ0 grows while the selection is above the target and decays once it is below.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from .gates import BernoulliGate, Gate, HardKumaGate


def selection_rate(z: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """ρ per row: mean of z over the real words (mask)."""
    mask = mask.to(z.dtype)
    return (z * mask).sum(-1) / mask.sum(-1).clamp(min=1.0)


def _per_boundary(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    pairs = (mask[:, 1:] & mask[:, :-1]).to(values.dtype)
    return (values * pairs).sum(-1) / pairs.sum(-1).clamp(min=1.0)


def transitions(z: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """τ per row: Σ|z_t − z_{t−1}| over consecutive real words, divided by their number of boundaries."""
    return _per_boundary((z[:, 1:] - z[:, :-1]).abs(), mask)


def expected_transitions(p0: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """τ̄ per row: the probability that consecutive gates differ (one closed, one open), per boundary."""
    return _per_boundary(p0[:, :-1] * (1 - p0[:, 1:]) + (1 - p0[:, :-1]) * p0[:, 1:], mask)


class ReinforceObjective:
    """Lei et al.'s cost with the score-function gradient and a moving-average baseline."""

    def __init__(self, sparsity: float, coherence: float, momentum: float = 0.9):
        self.sparsity = sparsity
        self.coherence = coherence
        self.momentum = momentum
        self.baseline: float | None = None

    def loss(
        self, task: torch.Tensor, gate: Gate, z: torch.Tensor, mask: torch.Tensor, train_predictor: bool
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Surrogate loss whose gradient is the REINFORCE estimate (plus ∇L for a joint predictor)."""
        if not isinstance(gate, BernoulliGate):
            raise TypeError("ReinforceObjective trains Bernoulli gates (estimator='reinforce').")
        rate, trans = selection_rate(z, mask), transitions(z, mask)
        cost = task.detach() + self.sparsity * rate + self.coherence * trans
        baseline = float(cost.mean()) if self.baseline is None else self.baseline
        log_prob = (gate.log_prob(z) * mask).sum(-1)
        loss = ((cost - baseline) * log_prob).mean()
        if train_predictor:
            loss = loss + task.mean()
        stats = {"task_loss": task.mean(), "cost": cost.mean(), "selection_rate": rate.mean(), "transitions": trans.mean()}
        return loss, stats

    def update(self, stats: dict[str, float]) -> None:
        """After an optimiser step: move the baseline towards the batch's mean cost."""
        cost = stats["cost"]
        self.baseline = cost if self.baseline is None else self.momentum * self.baseline + (1 - self.momentum) * cost

    def state_dict(self) -> dict[str, Any]:
        return {"baseline": self.baseline}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.baseline = state["baseline"]


class HardKumaObjective:
    """Task loss through relaxed gates, with a Lagrangian keeping the expected rate ≤ target_rate."""

    def __init__(
        self,
        target_rate: float,
        coherence: float,
        *,
        lagrange_lr: float = 0.05,
        lagrange_alpha: float = 0.5,
        lambda_init: float = 0.01,
        lambda_min: float = 1e-12,
        lambda_max: float = 5.0,
    ):
        self.target_rate = target_rate
        self.coherence = coherence
        self.lagrange_lr = lagrange_lr
        self.lagrange_alpha = lagrange_alpha
        self.lambda_min = lambda_min
        self.lambda_max = lambda_max
        self.multiplier = lambda_init
        self.constraint_average = 0.0

    def loss(
        self, task: torch.Tensor, gate: Gate, z: torch.Tensor, mask: torch.Tensor, train_predictor: bool
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """L + λ0·(ρ̄ − target) + λ2·τ̄ (a frozen predictor passes gradients but is not updated)."""
        if not isinstance(gate, HardKumaGate):
            raise TypeError("HardKumaObjective trains HardKuma gates (estimator='hardkuma').")
        p0 = gate.prob_zero()
        expected_rate = selection_rate(1 - p0, mask).mean()
        constraint = expected_rate - self.target_rate
        trans = expected_transitions(p0, mask).mean()
        loss = task.mean() + self.multiplier * constraint + self.coherence * trans
        stats = {
            "task_loss": task.mean(),
            "selection_rate": selection_rate((z > 0).to(z.dtype), mask).mean(),
            "expected_rate": expected_rate,
            "transitions": trans,
            "constraint": constraint,
        }
        return loss, stats

    def update(self, stats: dict[str, float]) -> None:
        """After an optimiser step: the multiplicative update of λ0 from the averaged constraint."""
        alpha = self.lagrange_alpha
        self.constraint_average = alpha * self.constraint_average + (1 - alpha) * stats["constraint"]
        grown = self.multiplier * math.exp(self.lagrange_lr * self.constraint_average)
        self.multiplier = min(self.lambda_max, max(self.lambda_min, grown))

    def state_dict(self) -> dict[str, Any]:
        return {"multiplier": self.multiplier, "constraint_average": self.constraint_average}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.multiplier = state["multiplier"]
        self.constraint_average = state["constraint_average"]
