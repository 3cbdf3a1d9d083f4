r"""AttnLRP: layer-wise relevance propagation for transformers, in one forward and one backward."""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch

from .. import lrp
from ..adapter import Batch
from ..errors import InvalidParameterError
from ..validation import check_float
from .base import Explainer, RowResult, register_explainer

#: |Σ_t R_t − f| / |f| above which an explanation warns that its relevance is far from conserved (the
#: sum then says less about f than 0 does). On the bundled BERT over 200 SST-2 dev sentences, biases,
#: position embeddings and the softmax rule leave a median gap of 0.8·|f|, and 8 % exceed this
#: (docs/methods/attnlrp.md)
CONSERVATION_WARNING = 1.0


@register_explainer("attnlrp")
class AttnLRP(Explainer):
    r"""AttnLRP: relevance propagated layer by layer through attention (Achtibat et al. 2024).

    Starting from R = f (the target's logit), each operation passes its output's relevance on to
    its inputs by a rule (`hf_seqinterp.lrp`): ε-rule for linear layers (ε = 0: gradient × input),
    identity rule for element-wise activations, uniform rule (R/2 per factor) for q·kᵀ, attention
    weights · values and gated MLPs, the softmax rule R_x = x ⊙ (R_s − s Σ_j R_{s,j}), and LayerNorm /
    RMSNorm linear at their fixed 1/σ. In gradient form R_h = h ⊙ ∂̃f/∂h, so one backward through
    the modified graph gives every token's score at the input embeddings E:

        a_t = Σ_d E_{t,d} · ∂̃f/∂E_{t,d}

    Conservation Σ_t a_t = f holds exactly only for a bias-free model without position embeddings
    under `attention_rule="cp"` (CP-LRP, Ali et al. 2022: attention weights held constant, all
    relevance to the values). Biases, position / segment embeddings and the softmax rule take or
    add relevance, so every Explanation records `extras["relevance_sum"]` (Σ_t a_t) next to
    `extras["input_score"]` (f), and warns when they differ by more than |f|.
    Cost: 1 forward + 1 backward (1.1× those of gradient × input, benchmarks/RESULTS.md). Supported: BERT and the Llama family
    (`hf_seqinterp.lrp.FAMILIES`); other models are refused. References: arXiv:2402.05602 (AttnLRP),
    arXiv:2202.07304 (CP-LRP).

    Args:
        attention_rule: "attnlrp" (softmax and uniform rules through q, k and v) or "cp" (CP-LRP).
        epsilon: ε of the linear layers' ε-rule (0: none; larger values absorb weak, noisy relevance).
        gamma: γ of the linear layers' generalised γ-rule (0: none; larger values favour the
            contributions that agree in sign with each output, as for vision transformers).
    """

    needs_gradients = True
    needs_inputs_embeds = True

    def __init__(
        self,
        adapter,
        *,
        attention_rule: Literal["attnlrp", "cp"] = "attnlrp",
        epsilon: float = 0.0,
        gamma: float = 0.0,
        score: str = "logit",
    ):
        if attention_rule not in lrp.ATTENTION_RULES:
            raise InvalidParameterError(
                f"attention_rule={attention_rule!r} is not one of {', '.join(lrp.ATTENTION_RULES)}."
            )
        if score != "logit":
            raise InvalidParameterError(
                f"attnlrp propagates the logit (relevance starts as R = f at the output), so score={score!r} is "
                "not available; use score='logit'."
            )
        self.attention_rule = attention_rule
        self.epsilon = check_float("epsilon", epsilon, minimum=0.0)
        self.gamma = check_float("gamma", gamma, minimum=0.0)
        super().__init__(adapter, score=score)

    def check_model(self) -> None:
        super().check_model()
        lrp.check_supported(self.adapter.model, self.name)

    def _explain(self, batch: Batch, targets: list[int | None]) -> list[RowResult]:
        embeds = self.adapter.embed(batch.input_ids).detach().requires_grad_(True)
        with lrp.relevance_rules(
            self.adapter.model, attention_rule=self.attention_rule, epsilon=self.epsilon, gamma=self.gamma
        ):
            logits = self.adapter.logits(batch, embeds)
        chosen, scores = self._targets(logits, targets)
        (grads,) = torch.autograd.grad(scores.sum(), embeds)
        wide = torch.promote_types(embeds.dtype, torch.float32)
        relevance = (embeds.detach().to(wide) * grads.to(wide)).sum(-1)
        rows = self._results(batch, relevance, logits.detach(), chosen)
        for row, fx in zip(rows, scores.tolist()):
            total = float(row.attributions.sum(dtype=np.float64))
            row.extras = {"relevance_sum": total, "input_score": fx}
            row.warnings = self._conservation_warnings(total, fx)
        return rows

    def _conservation_warnings(self, total: float, fx: float) -> list[str]:
        """A warning when Σ_t R_t misses f by more than `CONSERVATION_WARNING` · |f|."""
        if abs(total - fx) <= CONSERVATION_WARNING * abs(fx):
            return []
        return [
            (
                f"attnlrp relevance is far from conserved: sum of attributions = {total:.3g} but the explained "
                f"logit f = {fx:.3g}; biases, position embeddings and the softmax rule took or added most of it, "
                "so compare token scores with each other rather than with f."
            )
        ]
