"""Exact invariants of the gates and objectives of the rationale generator (no training)."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
from single_thread import one_thread  # noqa: F401 (autouse fixture)

from hf_seqinterp.rationale import BernoulliGate, HardKumaGate, HardKumaObjective, ReinforceObjective
from hf_seqinterp.rationale.objectives import (
    RateLagrangian,
    expected_transitions,
    selection_rate,
    transitions,
)


def test_rate_and_transitions_ignore_padding_words():
    z = torch.tensor([[1.0, 1.0, 0.0, 1.0, 1.0], [0.0, 1.0, 0.0, 1.0, 0.0]])
    mask = torch.tensor([[True, True, True, False, False], [True, True, True, True, True]])
    assert selection_rate(z, mask).tolist() == pytest.approx([2 / 3, 2 / 5], abs=1e-7)
    assert transitions(z, mask).tolist() == pytest.approx([1 / 2, 4 / 4], abs=1e-7)
    single = torch.tensor([[True, False, False, False, False]])
    assert transitions(z[:1], single).item() == 0.0  # one word: no boundary


def test_expected_transitions_equal_the_mean_over_enumerated_hard_gates():
    """τ̄ is the expectation of τ(z) for independent gates with P(z_t = 0) = p0_t."""
    p0 = torch.tensor([[0.2, 0.7, 0.4, 0.9]])
    mask = torch.ones(1, 4, dtype=torch.bool)
    expected = 0.0
    for bits in itertools.product([0.0, 1.0], repeat=4):
        z = torch.tensor([bits])
        prob = torch.prod(torch.where(z == 0, p0, 1 - p0))
        expected += float(prob * transitions(z, mask))
    assert expected_transitions(p0, mask).item() == pytest.approx(expected, abs=1e-6)


def test_hardkuma_point_masses_match_samples():
    torch.manual_seed(0)
    a = torch.tensor([0.3, 1.0, 2.5, 0.7]).repeat(200_000, 1)
    b = torch.tensor([0.5, 1.0, 0.8, 3.0]).repeat(200_000, 1)
    gate = HardKumaGate(a, b)
    z = gate.sample()
    assert float(z.min()) >= 0.0 and float(z.max()) <= 1.0
    torch.testing.assert_close((z == 0).float().mean(0), gate.prob_zero()[0], atol=3e-3, rtol=0)
    torch.testing.assert_close((z == 1).float().mean(0), gate.prob_one()[0], atol=3e-3, rtol=0)


def test_log_point_masses_are_the_logs_of_the_masses_and_keep_a_gradient_where_they_underflow():
    a = torch.tensor([[0.3, 1.0, 2.5, 0.7, 60.0, 1e-3]], dtype=torch.float64, requires_grad=True)
    b = torch.tensor([[0.5, 1.0, 0.8, 3.0, 40.0, 80.0]], dtype=torch.float64)
    gate = HardKumaGate(a, b)
    log_zero, log_one = gate.log_point_masses()
    torch.testing.assert_close(log_zero[:, :4].exp(), gate.prob_zero()[:, :4])
    torch.testing.assert_close(log_one[:, :4].exp(), gate.prob_one()[:, :4])
    # a = 60, b = 40: P(z = 0) = 1 − (1 − (1/12)^60)^40 ≈ 40 · 12^−60, below float precision as a mass
    assert float(gate.prob_zero()[0, 4]) == 0.0
    assert log_zero[0, 4].item() == pytest.approx(math.log(40) - 60 * math.log(12), rel=1e-7)
    # a = 1e-3, b = 80: P(z = 1) = (1 − (11/12)^0.001)^80 underflows too
    assert log_one[0, 5].item() == pytest.approx(80 * math.log(1 - (11 / 12) ** 1e-3), rel=1e-7)
    (log_zero[0, 4] + log_one[0, 5]).backward()
    assert torch.isfinite(a.grad).all() and a.grad[0, 4] != 0 and a.grad[0, 5] != 0
    logits = torch.tensor([[-3.0, 0.0, 2.0]])
    log_zero, log_one = BernoulliGate(logits).log_point_masses()
    torch.testing.assert_close(log_one.exp(), torch.sigmoid(logits))
    torch.testing.assert_close(log_zero.exp() + log_one.exp(), torch.ones(1, 3))


def test_hardkuma_sample_is_differentiable_in_the_shapes():
    raw = torch.randn(3, 5, 2, requires_grad=True)
    gate = HardKumaGate.from_raw(raw, -0.1, 1.1)
    (gate.sample().sum() + gate.selection_probability().sum()).backward()
    assert raw.grad is not None and torch.isfinite(raw.grad).all() and raw.grad.abs().sum() > 0


def _exact_expected_cost(logits, task_weights, sparsity, coherence):
    """E_z[cost(z)] by enumerating all z (differentiable in logits)."""
    mask = torch.ones(1, logits.shape[-1], dtype=torch.bool)
    total = 0.0
    for bits in itertools.product([0.0, 1.0], repeat=logits.shape[-1]):
        z = torch.tensor([bits])
        log_p = BernoulliGate(logits[None]).log_prob(z).sum()
        cost = (z * task_weights).sum() + sparsity * selection_rate(z, mask) + coherence * transitions(z, mask)
        total = total + log_p.exp() * cost.squeeze()
    return total


@pytest.mark.parametrize("baseline", [None, 3.0])
def test_reinforce_surrogate_gradient_estimates_the_exact_gradient(baseline):
    """Monte-Carlo REINFORCE with one sample per row -> ∇ E_z[cost], whatever the baseline."""
    torch.manual_seed(1)
    logits = torch.tensor([0.5, -1.0, 2.0, 0.0], requires_grad=True)
    task_weights = torch.tensor([0.3, -0.2, 0.8, 0.1])
    sparsity, coherence = 0.5, 0.25
    (exact,) = torch.autograd.grad(_exact_expected_cost(logits, task_weights, sparsity, coherence), logits)

    n = 100_000
    gate = BernoulliGate(logits.expand(n, -1))
    z = gate.sample()
    objective = ReinforceObjective(sparsity, coherence)
    objective.baseline = baseline
    loss, stats = objective.loss((z * task_weights).sum(-1), gate, z, torch.ones_like(z, dtype=torch.bool), False)
    (estimate,) = torch.autograd.grad(loss, logits)
    torch.testing.assert_close(estimate, exact, atol=0.02, rtol=0)
    assert stats["cost"].item() == pytest.approx(_exact_expected_cost(logits, task_weights, sparsity, coherence).item(), abs=0.01)


def test_reinforce_baseline_is_a_moving_average_and_joint_training_adds_the_task_gradient():
    objective = ReinforceObjective(0.0, 0.0, momentum=0.75)
    objective.update({"cost": 2.0})
    objective.update({"cost": 6.0})
    assert objective.baseline == 0.75 * 2.0 + 0.25 * 6.0
    task = torch.tensor([1.0, 3.0], requires_grad=True)
    gate = BernoulliGate(torch.zeros(2, 3, requires_grad=True))
    z = torch.ones(2, 3)
    mask = torch.ones(2, 3, dtype=torch.bool)
    loss, _ = objective.loss(task, gate, z, mask, train_predictor=True)
    (grad,) = torch.autograd.grad(loss, task)
    assert grad.tolist() == [0.5, 0.5]  # ∇ mean(L); the REINFORCE term sees L detached
    frozen, _ = objective.loss(task, gate, z, mask, train_predictor=False)
    assert not torch.autograd.grad(frozen, task, allow_unused=True)[0]


def test_lagrange_multiplier_grows_above_and_turns_negative_below_the_target():
    lagrangian = RateLagrangian(0.2, lr=0.1, alpha=0.5, initial=1.0, bound=5.0)
    lagrangian.update(0.4)
    assert lagrangian.constraint_average == pytest.approx(0.2)
    assert lagrangian.multiplier == pytest.approx(1.0 + 0.1 * 0.2)
    for _ in range(200):
        lagrangian.update(1.0)
    assert lagrangian.multiplier == 5.0  # clipped at +bound
    for _ in range(400):
        lagrangian.update(-0.5)
    assert lagrangian.multiplier == -5.0  # below the target selecting is rewarded, down to -bound
    penalty, constraint = lagrangian.penalty(torch.tensor(0.1))
    assert constraint.item() == pytest.approx(-0.1) and penalty.item() == pytest.approx(0.5)


def test_hardkuma_loss_is_the_task_loss_plus_the_weighted_constraint():
    torch.manual_seed(2)
    gate = HardKumaGate.from_raw(torch.randn(2, 4, 2), -0.1, 1.1)
    mask = torch.tensor([[True] * 4, [True, True, False, False]])
    objective = HardKumaObjective(0.5, RateLagrangian(0.3, initial=0.7))
    task = torch.tensor([0.4, 0.2])
    loss, stats = objective.loss(task, gate, gate.sample(), mask, False)
    rate = selection_rate(1 - gate.prob_zero(), mask).mean()
    trans = expected_transitions(gate.prob_zero(), mask).mean()
    assert loss.item() == pytest.approx((task.mean() + 0.7 * (rate - 0.3) + 0.5 * trans).item(), abs=1e-6)
    assert stats["constraint"].item() == pytest.approx((rate - 0.3).item(), abs=1e-7)


def test_reinforce_with_a_target_takes_rate_and_transitions_in_expectation():
    """With a Lagrangian, the gradient is REINFORCE on the task loss plus the exact gradient of
    λ0·(ρ̄ − target) + λ2·τ̄ with ρ̄ = mean σ(s), τ̄ the expected transitions."""
    torch.manual_seed(3)
    logits = torch.randn(2, 5, requires_grad=True)
    mask = torch.tensor([[True] * 5, [True, True, True, False, False]])
    gate = BernoulliGate(logits)
    z = gate.sample() * mask
    task = torch.tensor([0.3, 0.9])
    objective = ReinforceObjective(0.0, 0.25, momentum=0.9, lagrangian=RateLagrangian(0.4, initial=0.6))
    objective.baseline = 0.5
    loss, stats = objective.loss(task, gate, z, mask, False)
    p = torch.sigmoid(logits)
    expected = ((task - 0.5) * (gate.log_prob(z) * mask).sum(-1)).mean() + 0.6 * (selection_rate(p, mask).mean() - 0.4) \
        + 0.25 * expected_transitions(1 - p, mask).mean()
    assert loss.item() == pytest.approx(expected.item(), abs=1e-6)
    (got,) = torch.autograd.grad(loss, logits)
    (want,) = torch.autograd.grad(expected, logits)
    assert torch.allclose(got, want, atol=1e-6)
    assert stats["constraint"].item() == pytest.approx((selection_rate(p, mask).mean() - 0.4).item(), abs=1e-6)


def test_leave_one_out_baseline_of_several_samples():
    """With k draws per text, each draw's baseline is the mean cost of that text's other draws."""
    logits = torch.zeros(2, 3, requires_grad=True)
    gate = BernoulliGate(logits).repeated(3)
    z = torch.tensor([[1.0, 0, 0], [0, 1, 1], [1, 1, 0], [0, 0, 1], [0, 1, 0], [1, 0, 1]])
    mask = torch.ones(6, 3, dtype=torch.bool)
    task = torch.tensor([0.1, 0.2, 0.3, 0.4, 0.5, 0.6])  # draws of text 0: 0.1, 0.3, 0.5; text 1: 0.2, 0.4, 0.6
    objective = ReinforceObjective(0.0, 0.0, lagrangian=RateLagrangian(0.5))
    loss, _ = objective.loss(task, gate, z, mask, False, samples=3)
    baselines = torch.tensor([0.4, 0.5, 0.3, 0.4, 0.2, 0.3])
    expected = ((task - baselines) * gate.log_prob(z).sum(-1)).mean()
    assert loss.item() == pytest.approx(expected.item(), abs=1e-6)


def test_objectives_refuse_the_other_gate():
    bernoulli = BernoulliGate(torch.zeros(1, 2))
    kuma = HardKumaGate(torch.ones(1, 2), torch.ones(1, 2))
    mask = torch.ones(1, 2, dtype=torch.bool)
    with pytest.raises(TypeError, match="Bernoulli"):
        ReinforceObjective(0.1, 0.0).loss(torch.zeros(1), kuma, torch.ones(1, 2), mask, False)
    with pytest.raises(TypeError, match="HardKuma"):
        HardKumaObjective(0.0, RateLagrangian(0.1)).loss(torch.zeros(1), bernoulli, torch.ones(1, 2), mask, False)
