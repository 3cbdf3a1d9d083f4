r"""Attention explainers: raw attention, attention rollout, attention flow, gradient-weighted rollout.

All four read the attention weights A_l ∈ R^{H×L×L} (rows = queries) of every layer l, which the
adapter streams layer by layer under eager attention (`ModelAdapter.stream_attentions`; SDPA and
flash models are switched for the call and restored), and report for each token the entry of the
resulting L×L matrix in the row of the position the classifier reads (the first token for
BERT-style models, the last real token for decoders; `ModelAdapter.readout_weights`), restricted
to the text's real tokens. Padding never receives mass, so a batch equals its rows one by one.
Heads with a target axis (a causal LM's continuation) get one row per explained output: the
matrix's row at the position that output is read from (so later tokens get 0 under causal masks).

These scores are not additive and say where information is routed, not how the prediction
depends on it; see docs/methods/attention.md for when to use which and the evidence on faithfulness.
"""

from __future__ import annotations

import numpy as np
import torch

from ..adapter import Batch
from ..errors import InputTooLongError, InvalidParameterError, UnsupportedModelError
from ..validation import check_int
from ._rollout import (
    GradientRollout,
    LayerPick,
    LayerStack,
    Rollout,
    _Consumer,
    attention_flow,
    check_head_fusion,
    resolve_layer,
)
from .base import Explainer, RowResult, register_explainer


class _AttentionExplainer(Explainer):
    """Shared machinery: stream the attentions through a consumer, read the classified row."""

    needs_attentions = True
    multi_row = True
    word_aggregation = "sum_renorm"
    default_batch_size = 64

    def _check_score(self, score: str) -> None:
        if score != "logit":
            raise InvalidParameterError(
                f"{self.name} does not depend on the explained score (attention weights are the same for every "
                f"class and score space), so score={score!r} would change nothing; leave score='logit'."
            )

    def _layer(self, index: int, name: str) -> int:
        """Resolve a layer index; one counted from the top relies on the config's layer count,
        which `_check_layers_seen` then verifies against the layers that actually ran."""
        self._from_top = isinstance(index, int) and index < 0
        return resolve_layer(index, self.adapter.num_layers, name)

    def _check_layers_seen(self, consumer: _Consumer, needed: int = 0) -> None:
        expected = self.adapter.num_layers
        counted_wrong = self._from_top and consumer.layers_seen != expected
        if counted_wrong or consumer.layers_seen < needed:
            raise UnsupportedModelError(
                f"{type(self.adapter.model).__name__} ran {consumer.layers_seen} attention layers but its config "
                f"declares {expected}; cannot resolve the layer index given to {self.name}."
            )

    def _stream(self, batch: Batch, consumer: _Consumer, needed: int = 0) -> torch.Tensor:
        """One forward without gradients, feeding each layer's weights to `consumer`; returns logits.
        `needed`: the number of layers that must run (a layer index below it was asked for)."""
        logits = self.adapter.stream_attentions(batch, consumer)
        self._check_layers_seen(consumer, needed)
        return logits

    def _rows(
        self, batch: Batch, matrix: torch.Tensor, logits: torch.Tensor, targets: list[int | None], extras: dict
    ) -> list[RowResult]:
        """Row of `matrix` at the classified position (readout-weighted), real tokens only; with a
        target axis, one such row per explained output: (inputs, T, L)."""
        readout = self.adapter.readout_weights(batch)
        rows = readout if readout.dim() == 3 else readout[:, None, :]
        scores = torch.bmm(rows.to(matrix.dtype), matrix)
        return self._attention_results(batch, scores if readout.dim() == 3 else scores[:, 0], logits, targets, extras)

    def _attention_results(self, batch: Batch, scores, logits: torch.Tensor, targets, extras) -> list[RowResult]:
        chosen, _ = self._targets(logits, targets)
        per_row = [{**extras, "position": position} for position in self._positions(batch)]
        return self._results(batch, scores, logits, chosen, per_row)

    def _positions(self, batch: Batch) -> list[int | None]:
        """The classified token's index within each text (None for mean-pooling models and for heads
        with a target axis, whose rows record their own positions)."""
        if self.adapter.pooling == "mean" or self.adapter.head.multi_row:
            return [None] * len(batch)
        positions = self.adapter.classified_positions(batch).tolist()
        return [p - batch.starts[i] for i, p in enumerate(positions)]


@register_explainer("attention")
class RawAttention(_AttentionExplainer):
    r"""Raw attention: the classified position's attention row in one layer, heads fused.

    a_t = W_l[c, t], W_l = fuse_h A_l[h] with fuse ∈ {mean, max, min}; c = the classified position.
    Mean fusion gives rows that sum to 1 over the real tokens. 1 forward (eager attention).
    Reference: e.g. Jain & Wallace 2019 (arXiv:1902.10186) on why this is not an explanation.
    """

    def __init__(self, adapter, *, layer: int = -1, head_fusion: str = "mean", score: str = "logit"):
        self.layer = layer
        self.head_fusion = check_head_fusion(head_fusion)
        self._check_score(score)
        super().__init__(adapter, score=score)
        self._index = self._layer(layer, "layer")

    def _explain(self, batch: Batch, targets: list[int | None]) -> list[RowResult]:
        pick = LayerPick(batch.attention_mask.bool(), self._index, self.head_fusion)
        logits = self._stream(batch, pick, needed=self._index + 1)
        return self._rows(batch, pick.matrix, logits, targets, {"layer": self._index})


@register_explainer("attention_rollout")
class AttentionRollout(_AttentionExplainer):
    r"""Attention rollout: residual-augmented attention multiplied across layers (Abnar & Zuidema 2020).

    W_l = fuse_h A_l[h] (mean, max or min), Â_l = (W_l + I) / rowsum(W_l + I) (= 0.5 W_l + 0.5 I
    for mean fusion), R = Â_N ··· Â_{s+1} Â_s from `start_layer` s; a_t = R[c, t] for the
    classified position c. Rows of R are non-negative and sum to 1 over the real tokens.
    Computed during a single eager forward: each layer's weights are head-fused and multiplied
    into one L×L accumulator as the layer runs, so memory is O(L²) beyond the forward itself,
    never N·H·L². Reference: arXiv:2005.00928.
    """

    def __init__(self, adapter, *, head_fusion: str = "mean", start_layer: int = 0, score: str = "logit"):
        self.head_fusion = check_head_fusion(head_fusion)
        self.start_layer = start_layer
        self._check_score(score)
        super().__init__(adapter, score=score)
        self._start = self._layer(start_layer, "start_layer")

    def _explain(self, batch: Batch, targets: list[int | None]) -> list[RowResult]:
        rollout = Rollout(batch.attention_mask.bool(), self.head_fusion, self._start)
        logits = self._stream(batch, rollout)
        return self._rows(batch, rollout.result(), logits, targets, {"start_layer": self._start})


@register_explainer("attention_flow")
class AttentionFlow(_AttentionExplainer):
    r"""Attention flow: max-flow through the layered attention graph (Abnar & Zuidema 2020).

    Nodes (l, q) for l = 0..N (layer 0 = input tokens), edge (l, q) -> (l-1, k) with capacity
    Â_l[q, k] (residual-augmented, head-fused as in rollout, layers from `start_layer`).
    a_t = maxflow((N, c) -> (0, t)), normalised over t to sum to 1. Equals rollout for one layer.
    Cost: 1 forward + L max-flow problems per text (scipy's Dinic), growing faster than L³: on
    minilm-sst2 (6 layers, 2 CPU cores) about 1 s per text of 128 tokens and 7-17 s at 256
    (benchmarks/RESULTS.md). Texts longer than `max_tokens` (default 128) raise
    InputTooLongError instead of running for hours.
    """

    default_batch_size = 16

    def __init__(
        self,
        adapter,
        *,
        head_fusion: str = "mean",
        start_layer: int = 0,
        max_tokens: int = 128,
        score: str = "logit",
    ):
        self.head_fusion = check_head_fusion(head_fusion)
        self.start_layer = start_layer
        self.max_tokens = check_int("max_tokens", max_tokens)
        self._check_score(score)
        super().__init__(adapter, score=score)
        self._start = self._layer(start_layer, "start_layer")

    def explain_encodings(self, encodings, targets, **kwargs):
        """Refuse texts over `max_tokens` before any work starts."""
        for i, enc in enumerate(encodings):
            if len(enc) > self.max_tokens:
                raise InputTooLongError(
                    f"attention_flow on text {i} of {len(enc)} tokens (limit max_tokens={self.max_tokens}) would "
                    f"solve {len(enc)} max-flow problems on a graph of {len(enc) ** 2} edges per layer, which takes "
                    "minutes to hours. Use attention_rollout (same graph, linear algebra instead of max-flow), "
                    "or raise max_tokens if you accept the cost (it grows faster than L^3)."
                )
        return super().explain_encodings(encodings, targets, **kwargs)

    def _explain(self, batch: Batch, targets: list[int | None]) -> list[RowResult]:
        stack = LayerStack(batch.attention_mask.bool(), self.head_fusion, self._start)
        logits = self._stream(batch, stack)
        readout = self.adapter.readout_weights(batch).cpu().numpy().astype(np.float64)
        scores = np.zeros(readout.shape, dtype=np.float64)
        for i in range(len(batch)):
            real = batch.token_slice(i)
            matrices = [m[i, real, real].cpu().numpy() for m in stack.matrices]
            for k in np.ndindex(readout.shape[1:-1]):  # each explained row (none: one readout)
                scores[(i, *k, real)] = attention_flow(matrices, readout[(i, *k, real)])
        return self._attention_results(batch, scores, logits, targets, {"start_layer": self._start})


@register_explainer("gradient_rollout")
class GradientWeightedRollout(_AttentionExplainer):
    r"""Gradient-weighted attention rollout, Chefer et al. 2021 generic rule (ICCV, arXiv:2103.15679).

    Ā_l = mean_h[(∂f/∂A_l ⊙ A_l)^+] with f the target's score (logit by default) and A_l the
    layer's attention weights; R = I, then R ← R + Ā_l R for l = s..N (no row normalisation, so
    rows sum to ≥ 1); a_t = R[c, t]. Class-specific, unlike rollout. Cost: 1 eager forward +
    1 backward (one per explained row for heads with a target axis, each row with its own R);
    the backward needs every layer's weights (N·H·L² memory), and each layer's gradient is fused
    into Ā_l as soon as it is computed.
    """

    needs_gradients = True
    needs_inputs_embeds = True
    default_batch_size = 32

    def __init__(self, adapter, *, start_layer: int = 0, score: str = "logit"):
        self.start_layer = start_layer
        super().__init__(adapter, score=score)
        self._start = self._layer(start_layer, "start_layer")

    def _explain(self, batch: Batch, targets: list[int | None]) -> list[RowResult]:
        rollout = GradientRollout(batch.attention_mask.bool(), self._start)
        embeds = self.adapter.embed(batch.input_ids).detach().requires_grad_(True)
        logits = self.adapter.stream_attentions(batch, rollout, inputs_embeds=embeds)
        self._check_layers_seen(rollout)
        chosen, scores = self._targets(logits, targets)
        if scores.dim() == 1:
            torch.autograd.grad(scores.sum(), embeds)
            return self._rows(batch, rollout.result(), logits.detach(), chosen.tolist(), {"start_layer": self._start})
        readout = self.adapter.readout_weights(batch)
        per_row = []
        for k in range(scores.shape[1]):  # row k: its own gradients, its own R, read at its position
            torch.autograd.grad(scores[:, k].sum(), embeds, retain_graph=k < scores.shape[1] - 1)
            per_row.append(torch.bmm(readout[:, k : k + 1].to(torch.float32), rollout.result())[:, 0])
        result = torch.stack(per_row, dim=1)
        return self._attention_results(batch, result, logits.detach(), chosen.tolist(), {"start_layer": self._start})
