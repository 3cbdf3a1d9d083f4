r"""Baselines x' of a series: what a removed cell becomes, and where integrated gradients starts.

Per series and channel: "zero" (x' = 0), "mean" (the channel's mean over its observed steps),
"blur" (the channel smoothed along time with a Gaussian of width `sigma` steps, edges reflected;
a baseline close to x that keeps its level, for models that standardise each series).
"""

from __future__ import annotations

import numpy as np
import torch

from ..errors import InvalidParameterError
from ..validation import check_float

BASELINES: tuple[str, ...] = ("zero", "mean", "blur")


def baseline_values(values: torch.Tensor, observed: torch.Tensor, kind: str, sigma: float = 2.0) -> torch.Tensor:
    """x' for inputs (N, time, channels); see the module docstring."""
    if kind == "zero":
        return torch.zeros_like(values)
    if kind == "mean":
        count = observed.sum(1, keepdim=True).clamp(min=1)
        return ((values * observed).sum(1, keepdim=True) / count).expand_as(values).clone()
    if kind == "blur":
        radius = max(1, int(np.ceil(3 * sigma)))
        offsets = torch.arange(-radius, radius + 1, dtype=values.dtype, device=values.device)
        kernel = torch.exp(-0.5 * (offsets / sigma) ** 2)
        flat = values.transpose(1, 2).reshape(-1, 1, values.shape[1])  # (N·C, 1, T)
        padded = torch.nn.functional.pad(flat, (radius, radius), mode="reflect" if values.shape[1] > radius else "replicate")
        smooth = torch.nn.functional.conv1d(padded, (kernel / kernel.sum()).view(1, 1, -1))
        return smooth.reshape(values.shape[0], values.shape[2], -1).transpose(1, 2).contiguous()
    raise InvalidParameterError(f"baseline={kind!r} is not one of {', '.join(BASELINES)}.")


def check_baseline(kind: str, sigma: float) -> tuple[str, float]:
    if kind not in BASELINES:
        raise InvalidParameterError(f"baseline={kind!r} is not one of {', '.join(BASELINES)}.")
    return kind, check_float("sigma", sigma, minimum=0.0, open_minimum=True)
