r"""The selection distributions of a rationale generator: one gate z_t per word.

`BernoulliGate` (Lei et al. 2016, arXiv:1606.04155): z_t ~ Bernoulli(σ(s_t)), sampled without a
gradient and trained with REINFORCE through log p(z) = Σ_t z_t log σ(s_t) + (1 − z_t) log σ(−s_t).

`HardKumaGate` (Bastings, Aziz & Titov 2019, arXiv:1905.08160): k ~ Kuma(a, b), stretched to
s = l + (r − l)·k with (l, r) = (−0.1, 1.1) and rectified to z = min(1, max(0, s)), so z has point
masses at 0 and 1 and a density in between. The sample is reparameterised,
k = (1 − (1 − u)^{1/b})^{1/a} with u ~ U(0, 1), so gradients flow from the task loss into (a, b);
the point masses have closed forms with the Kumaraswamy CDF F_K(x) = 1 − (1 − x^a)^b:

    P(z = 0) = F_K(−l / (r − l)),        P(z = 1) = 1 − F_K((1 − l) / (r − l)).

Both gates expose the log point masses log P(z_t = 0) and log P(z_t = 1) (`log_point_masses`; for a
Bernoulli gate they are all its mass) and P(z_t > 0) (`selection_probability`): the deterministic selection at inference is
z_t = 1[P(z_t > 0) > threshold], which at threshold 1/2 is "the gate's median is not zero", or
(`threshold="expected"`) the round(Σ_t P(z_t > 0)) most probable words: as many as a draw selects on
average, for generators whose gates are not confident (REINFORCE's often stay near the target rate).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

#: keeps u away from 0 and 1 so that the Kumaraswamy inverse CDF stays finite
UNIFORM_EPS = 1e-6
#: range of the HardKuma shape parameters (Bastings et al. clamp to the same range)
SHAPE_RANGE = (1e-6, 100.0)


@dataclass
class BernoulliGate:
    """Independent Bernoulli selections from logits (rows, words)."""

    logits: torch.Tensor

    def selection_probability(self) -> torch.Tensor:
        return torch.sigmoid(self.logits)

    def log_point_masses(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(log P(z = 0), log P(z = 1)) = (log σ(−s), log σ(s))."""
        return F.logsigmoid(-self.logits), F.logsigmoid(self.logits)

    def sample(self) -> torch.Tensor:
        """A 0/1 sample (no gradient: train with REINFORCE through `log_prob`)."""
        return torch.bernoulli(self.selection_probability().detach())

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        """log p(z_t) per word."""
        return -F.binary_cross_entropy_with_logits(self.logits, z, reduction="none")

    def repeated(self, times: int) -> BernoulliGate:
        """The same gates for `times` copies of the rows (copy-major)."""
        return BernoulliGate(self.logits.repeat(times, 1))


@dataclass
class HardKumaGate:
    """HardKuma gates with shape parameters a, b (rows, words) and stretch interval (l, r)."""

    a: torch.Tensor
    b: torch.Tensor
    lower: float = -0.1
    upper: float = 1.1

    @classmethod
    def from_raw(cls, raw: torch.Tensor, lower: float, upper: float) -> HardKumaGate:
        """Gates from a head's raw outputs (..., 2): a, b = clamp(softplus(raw))."""
        shapes = F.softplus(raw).clamp(*SHAPE_RANGE)
        return cls(shapes[..., 0], shapes[..., 1], lower, upper)

    @property
    def thresholds(self) -> tuple[float, float]:
        """(x0, x1): the Kumaraswamy values that the stretch maps to 0 and to 1."""
        width = self.upper - self.lower
        return -self.lower / width, (1.0 - self.lower) / width

    def log_kuma_survival(self, x: float) -> torch.Tensor:
        """log(1 − F_K(x)) = b · log(1 − x^a) for a constant x in (0, 1), F_K(x) = 1 − (1 − x^a)^b."""
        return self.b * torch.log1p(-torch.exp(self.a * math.log(x)))

    def kuma_cdf(self, x: float) -> torch.Tensor:
        """F_K(x), computed in log space."""
        return 1.0 - torch.exp(self.log_kuma_survival(x))

    def prob_zero(self) -> torch.Tensor:
        """P(z = 0): the stretched sample falls below 0."""
        return self.kuma_cdf(self.thresholds[0])

    def prob_one(self) -> torch.Tensor:
        """P(z = 1): the stretched sample falls above 1."""
        return torch.exp(self.log_kuma_survival(self.thresholds[1]))

    def selection_probability(self) -> torch.Tensor:
        return 1.0 - self.prob_zero()

    def log_point_masses(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(log P(z = 0), log P(z = 1)), finite and with a gradient also where a mass underflows:
        log P(z = 1) = log(1 − F_K(x1)), and with t = log(1 − F_K(x0)) = log P(z ≠ 0),
        log P(z = 0) = log(1 − e^t), or for |t| < 1e-4 its expansion log b + a·log x0 + (x0^a + t)/2."""
        x0, x1 = self.thresholds
        t = self.log_kuma_survival(x0)
        log_x0a = self.a * math.log(x0)
        series = torch.log(self.b) + log_x0a + (torch.exp(log_x0a) + t) / 2
        log_zero = torch.where(t > -1e-4, series, torch.log(-torch.expm1(t.clamp(max=-1e-4))))
        return log_zero, self.log_kuma_survival(x1)

    def repeated(self, times: int) -> HardKumaGate:
        """The same gates for `times` copies of the rows (copy-major)."""
        return HardKumaGate(self.a.repeat(times, 1), self.b.repeat(times, 1), self.lower, self.upper)

    def sample(self) -> torch.Tensor:
        """A reparameterised sample z ∈ [0, 1] (differentiable in a and b where 0 < z < 1)."""
        u = torch.rand_like(self.a).clamp(UNIFORM_EPS, 1.0 - UNIFORM_EPS)
        k = torch.exp(torch.log1p(-torch.exp(torch.log1p(-u) / self.b)) / self.a)
        return (self.lower + (self.upper - self.lower) * k).clamp(0.0, 1.0)


Gate = BernoulliGate | HardKumaGate


def select_words(probabilities: np.ndarray, threshold: float | str, sizes: np.ndarray | None = None) -> np.ndarray:
    """The deterministic selection of units (words unless `sizes`, each unit's number of words, is
    given) from P(z_j > 0): p_j > threshold, or with "expected" `top_units` up to Σ_j m_j p_j words
    (the ⌈Σ_j p_j − ½⌉ most probable words when every unit is one word)."""
    if threshold != "expected":
        return probabilities > threshold
    sizes = np.ones(len(probabilities)) if sizes is None else np.asarray(sizes, dtype=np.float64)
    return top_units(probabilities, sizes, float(np.dot(sizes, probabilities)))


def top_units(scores: np.ndarray, sizes: np.ndarray, words: float) -> np.ndarray:
    """The best-scored units (ties: the earlier one), taken while each brings the number of
    selected words closer to `words` (the first that would overshoot by more than half of it stops)."""
    selected = np.zeros(len(scores), dtype=bool)
    count = 0.0
    for j in np.argsort(-np.asarray(scores), kind="stable"):
        if count + sizes[j] / 2 >= words:
            break
        selected[j] = True
        count += sizes[j]
    return selected
