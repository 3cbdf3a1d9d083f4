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
through the reparameterised sample (its mean over the draws, with several per text); the expected
selection rate ρ̄ = Σ_t P(z_t ≠ 0) / n is held at `target_rate` by a Lagrangian, and λ2 weighs the
expected transitions
τ̄ = Σ_t [P0_t (1 − P0_{t+1}) + (1 − P0_t) P0_{t+1}] / (n − 1), P0_t = P(z_t = 0):

    loss = L(x ⊙ z) + λ0 · c + μ/2 · c² + λ2 · τ̄,    c = mean ρ̄ − target_rate
    λ0 ← clip(λ0 + η · c̄, −λ_max, λ_max),    c̄ ← α c̄ + (1 − α) c

so λ0 grows while the selection is above the target and turns negative, rewarding selection, while
it is below: the rate is held *at* the target (neither all nor no words is a resting point). The
same Lagrangian holds REINFORCE's expected rate Σ_t σ(s_t) / n at `target_rate` unless a fixed
`sparsity` is given (`RateLagrangian`, `ReinforceObjective`).
"""

from __future__ import annotations

from typing import Any

import torch

from .gates import BernoulliGate, Gate, HardKumaGate


def selection_rate(z: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """ρ per row: the share of words selected, Σ_j m_j z_j / Σ_j m_j, with `weights` m_j the words of
    unit j (0 at padding; a bool mask of the real words when every unit is a word)."""
    weights = weights.to(z.dtype)
    return (z * weights).sum(-1) / weights.sum(-1).clamp(min=1.0)


def _per_boundary(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    pairs = (mask[:, 1:] & mask[:, :-1]).to(values.dtype)
    return (values * pairs).sum(-1) / pairs.sum(-1).clamp(min=1.0)


def transitions(z: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """τ per row: Σ|z_t − z_{t−1}| over consecutive real units (a bool mask), divided by their number of boundaries."""
    return _per_boundary((z[:, 1:] - z[:, :-1]).abs(), mask)


def expected_transitions(p0: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """τ̄ per row: the probability that consecutive gates differ (one closed, one open), per boundary."""
    return _per_boundary(p0[:, :-1] * (1 - p0[:, 1:]) + (1 - p0[:, :-1]) * p0[:, 1:], mask)


class RateLagrangian:
    """Holds the expected selection rate at `target_rate` with an augmented Lagrangian: the penalty
    λ0 · c + μ/2 · c², c = ρ̄ − target, with a signed multiplier, λ0 ← clip(λ0 + η c̄, −λ_max, λ_max),
    c̄ ← α c̄ + (1 − α) c after each step. λ0 grows while the generator selects too much and turns
    negative (a reward for selecting) while it selects too little; the quadratic term pulls back at
    once, before the multiplier has caught up (without it the gates saturate at all or no words
    while λ0 lags, and saturated gates get no gradient to come back)."""

    def __init__(
        self, target_rate: float, *, lr: float = 0.05, alpha: float = 0.5, initial: float = 0.0, bound: float = 5.0,
        quadratic: float = 0.0,
    ):
        self.target_rate, self.lr, self.alpha, self.bound, self.quadratic = target_rate, lr, alpha, bound, quadratic
        self.multiplier = initial
        self.constraint_average = 0.0

    def penalty(self, expected_rate: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(λ0 · c + μ/2 · c², the constraint c = ρ̄ − target)."""
        constraint = expected_rate - self.target_rate
        return self.multiplier * constraint + 0.5 * self.quadratic * constraint**2, constraint

    def update(self, constraint: float) -> None:
        self.constraint_average = self.alpha * self.constraint_average + (1 - self.alpha) * constraint
        self.multiplier = min(self.bound, max(-self.bound, self.multiplier + self.lr * self.constraint_average))

    def state_dict(self) -> dict[str, Any]:
        return {"multiplier": self.multiplier, "constraint_average": self.constraint_average}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.multiplier = state["multiplier"]
        self.constraint_average = state["constraint_average"]


class ReinforceObjective:
    """Lei et al.'s cost with the score-function gradient.

    With `target_rate` (a `RateLagrangian`), only the task loss goes through REINFORCE; the rate and
    transition terms are taken in expectation, ρ̄ = Σ_t p_t / n and τ̄ with P0_t = 1 − p_t, whose exact
    gradients carry no sampling noise. Without it, Lei et al.'s original: λ1 = `sparsity` and λ2 in
    the sampled cost. The baseline b is, with several samples per text, the mean cost of the text's
    other samples (leave-one-out), else a moving average of past costs.
    """

    def __init__(self, sparsity: float, coherence: float, momentum: float = 0.9, lagrangian: RateLagrangian | None = None):
        self.sparsity = sparsity
        self.coherence = coherence
        self.momentum = momentum
        self.lagrangian = lagrangian
        self.baseline: float | None = None

    def loss(
        self, task: torch.Tensor, gate: Gate, z: torch.Tensor, weights: torch.Tensor, train_predictor: bool, samples: int = 1
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Surrogate loss whose gradient is the REINFORCE estimate (plus ∇L for a joint predictor).
        `weights`: words per unit (`selection_rate`). With `samples` > 1, the rows are `samples`
        draws for each text, sample-major."""
        if not isinstance(gate, BernoulliGate):
            raise TypeError("ReinforceObjective trains Bernoulli gates (estimator='reinforce').")
        mask = weights > 0
        rate, trans = selection_rate(z, weights), transitions(z, mask)
        stats = {"task_loss": task.mean(), "selection_rate": rate.mean(), "transitions": trans.mean()}
        if self.lagrangian is None:
            cost = task.detach() + self.sparsity * rate + self.coherence * trans
            extra = torch.zeros(())
        else:
            p = gate.selection_probability()
            expected_rate = selection_rate(p, weights).mean()
            penalty, constraint = self.lagrangian.penalty(expected_rate)
            extra = penalty + self.coherence * expected_transitions(1 - p, mask).mean()
            cost = task.detach()
            stats.update(expected_rate=expected_rate, constraint=constraint)
        if samples > 1:
            grouped = cost.view(samples, -1)
            baseline = ((grouped.sum(0, keepdim=True) - grouped) / (samples - 1)).reshape(-1)
        else:
            baseline = float(cost.mean()) if self.baseline is None else self.baseline
        log_prob = (gate.log_prob(z) * mask).sum(-1)
        loss = ((cost - baseline) * log_prob).mean() + extra
        if train_predictor:
            loss = loss + task.mean()
        stats["cost"] = cost.mean()
        return loss, stats

    def update(self, stats: dict[str, float]) -> None:
        """After an optimiser step: move the baseline towards the batch's mean cost, and the multiplier."""
        cost = stats["cost"]
        self.baseline = cost if self.baseline is None else self.momentum * self.baseline + (1 - self.momentum) * cost
        if self.lagrangian is not None:
            self.lagrangian.update(stats["constraint"])

    def state_dict(self) -> dict[str, Any]:
        return {"baseline": self.baseline, **({"lagrangian": self.lagrangian.state_dict()} if self.lagrangian else {})}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.baseline = state["baseline"]
        if self.lagrangian is not None and "lagrangian" in state:
            self.lagrangian.load_state_dict(state["lagrangian"])


class HardKumaObjective:
    """Task loss through relaxed gates, with a Lagrangian holding the expected rate at target_rate."""

    def __init__(self, coherence: float, lagrangian: RateLagrangian):
        self.coherence = coherence
        self.lagrangian = lagrangian

    @property
    def target_rate(self) -> float:
        return self.lagrangian.target_rate

    def loss(
        self, task: torch.Tensor, gate: Gate, z: torch.Tensor, weights: torch.Tensor, train_predictor: bool, samples: int = 1
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """L + λ0·(ρ̄ − target) + λ2·τ̄ (a frozen predictor passes gradients but is not updated);
        `weights`: words per unit (`selection_rate`)."""
        if not isinstance(gate, HardKumaGate):
            raise TypeError("HardKumaObjective trains HardKuma gates (estimator='hardkuma').")
        p0 = gate.prob_zero()
        mask = weights > 0
        expected_rate = selection_rate(1 - p0, weights).mean()
        penalty, constraint = self.lagrangian.penalty(expected_rate)
        trans = expected_transitions(p0, mask).mean()
        loss = task.mean() + penalty + self.coherence * trans
        stats = {
            "task_loss": task.mean(),
            "selection_rate": selection_rate((z > 0).to(z.dtype), weights).mean(),
            "expected_rate": expected_rate,
            "transitions": trans,
            "constraint": constraint,
        }
        return loss, stats

    def update(self, stats: dict[str, float]) -> None:
        """After an optimiser step: the multiplier's update from the averaged constraint."""
        self.lagrangian.update(stats["constraint"])

    def state_dict(self) -> dict[str, Any]:
        return self.lagrangian.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.lagrangian.load_state_dict(state)
