"""Tiny random PatchTST / PatchTSMixer models (classification, regression, prediction) built from configs."""

from __future__ import annotations

import torch
from transformers import (
    PatchTSMixerConfig,
    PatchTSMixerForPrediction,
    PatchTSMixerForRegression,
    PatchTSMixerForTimeSeriesClassification,
    PatchTSTConfig,
    PatchTSTForClassification,
    PatchTSTForPrediction,
    PatchTSTForRegression,
)

T, C = 24, 3
CLASSES = {
    ("patchtst", "classification"): PatchTSTForClassification,
    ("patchtst", "regression"): PatchTSTForRegression,
    ("patchtst", "prediction"): PatchTSTForPrediction,
    ("patchtsmixer", "classification"): PatchTSMixerForTimeSeriesClassification,
    ("patchtsmixer", "regression"): PatchTSMixerForRegression,
    ("patchtsmixer", "prediction"): PatchTSMixerForPrediction,
}


def tiny_series_model(family: str = "patchtst", kind: str = "classification", **overrides):
    """A random tiny model: 3 channels × 24 steps, 4 classes / 2 regression targets / 5-step forecast."""
    torch.manual_seed(0)
    common = dict(num_input_channels=C, context_length=T, patch_length=4, patch_stride=4, d_model=16,
                  num_targets=4 if kind == "classification" else 2, prediction_length=5, **overrides)
    if family == "patchtst":
        config = PatchTSTConfig(num_attention_heads=2, num_hidden_layers=1, ffn_dim=32, **common)
    else:
        config = PatchTSMixerConfig(num_layers=1, **common)
    return CLASSES[family, kind](config).eval()
