r"""Attention rollout over PatchTST's patches, mapped back to time steps.

PatchTST cuts each channel's series into patches (`patch_length` steps every `patch_stride`,
after dropping the first `sequence_start` steps so that the patches end at the last step) and runs
its encoder on each channel's patch sequence on its own (channel independence): layer l's attention
A_l ∈ R^{H×P×P} per channel, P patches (plus a [CLS] position with `use_cls_token`). Per channel c:

    Â_l = (mean_h A_l + I) / rowsum          (Abnar & Zuidema 2020, as `attention_rollout` for text)
    R   = Â_N ··· Â_1
    ρ_c = r · R                              r = the head's readout: the [CLS] position, else
                                             uniform over the patches (mean pooling, the forecast
                                             and regression heads reading every patch)
    a[t, c] = Σ_{p ∋ t} ρ_c[p] / #{p ∋ t}    patch relevance spread over the steps the patch covers

Steps before the first patch get 0. ρ_c sums to 1 over the patches of every channel, so the rollout
says *when* each channel's representation draws on, not *which* channel matters (channel totals are
equal by construction; use channel erasure or IG for variable importance). It does not depend on
the target: every row of an explanation is the same. One eager forward per batch.
"""

from __future__ import annotations

import numpy as np
import torch

from ..attention_hooks import stream_attentions
from ..errors import UnsupportedModelError
from ..explainers._rollout import Rollout
from .base import SeriesBatch, SeriesExplainer, SeriesResult, register_series_method


def patch_to_time(n_patches: int, start: int, length: int, stride: int, n_time: int) -> torch.Tensor:
    """(P, T): row p spreads patch p's relevance over its steps, each step's share divided by the
    number of patches covering it."""
    cover = torch.zeros(n_patches, n_time)
    for p in range(n_patches):
        cover[p, start + p * stride : start + p * stride + length] = 1.0
    return cover / cover.sum(0).clamp(min=1.0)


@register_series_method("attention_rollout")
class SeriesAttentionRollout(SeriesExplainer):
    r"""Attention rollout over PatchTST's patches, mapped back to time steps (Abnar & Zuidema 2020).

    ρ_c = r · Â_N ··· Â_1 per channel (r: the [CLS] position, or uniform over patches), each patch's
    share spread over the steps it covers; see `hf_seqinterp.timeseries.attention`. Relevance over
    time per channel (sums to 1 per channel), the same for every target. One eager forward.
    Reference: arXiv:2005.00928.
    """

    default_batch_size = 64

    def __init__(self, adapter, *, score: str = "auto", max_batch_series: int = 256):
        config = adapter.config
        if getattr(config, "model_type", None) != "patchtst":
            raise UnsupportedModelError(
                f"attention_rollout reads PatchTST's attention over patches; {adapter.model_class} has "
                + ("no attention (PatchTSMixer mixes patches with MLPs)." if getattr(config, "model_type", "") == "patchtsmixer"
                   else "another architecture.")
                + " Use integrated_gradients, occlusion or tsr."
            )
        if getattr(config, "channel_attention", False):
            raise UnsupportedModelError(
                "attention_rollout needs a channel-independent PatchTST (channel_attention=False): with channel "
                "attention, patches also attend across channels, which a per-channel rollout does not follow."
            )
        super().__init__(adapter, score=score, max_batch_series=max_batch_series)

    def _explain(self, batch: SeriesBatch) -> list[SeriesResult]:
        model, config = self.adapter.model, self.adapter.config
        n_series, n_time, n_channels = batch.values.shape
        patchifier = model.model.patchifier
        cls = int(bool(config.use_cls_token))
        n_positions = patchifier.num_patches + cls
        rollout = Rollout(torch.ones(n_series * n_channels, n_positions, dtype=torch.bool), "mean")

        mask = {self.adapter.mask_argument: batch.observed.to(batch.values.dtype)} if self.adapter.mask_argument else {}

        def run(**kwargs):
            return model(past_values=batch.values, **mask, **kwargs)

        stream_attentions(run, model, rollout)
        readout = torch.zeros(n_positions)
        readout[0 if cls else slice(None)] = 1.0
        readout /= readout.sum()
        relevance = (readout @ rollout.result())[:, cls:]  # (N·C, P): channel c of series n at row n·C + c
        spread = patch_to_time(patchifier.num_patches, patchifier.sequence_start, patchifier.patch_length,
                               patchifier.patch_stride, n_time)
        cells = (relevance @ spread).reshape(n_series, n_channels, n_time).transpose(1, 2)  # (N, T, C)
        n_rows = batch.weights.shape[1]
        return [
            SeriesResult(np.repeat(grid[None].numpy(), n_rows, axis=0), [], {"readout": "cls" if cls else "uniform"}, [])
            for grid in cells
        ]
