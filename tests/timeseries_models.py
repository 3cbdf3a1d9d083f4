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
    common = {**dict(num_input_channels=C, context_length=T, patch_length=4, patch_stride=4, d_model=16,
                     num_targets=4 if kind == "classification" else 2, prediction_length=5), **overrides}
    if family == "patchtst":
        config = PatchTSTConfig(**{"num_attention_heads": 2, "num_hidden_layers": 1, "ffn_dim": 32, **common})
    else:
        config = PatchTSMixerConfig(**{"num_layers": 1, **common})
    return CLASSES[family, kind](config).eval()


FORECASTERS = {"time_series_transformer": "TimeSeriesTransformer", "informer": "Informer", "autoformer": "Autoformer"}
LAGS, HORIZON, TIME_FEATURES = [1, 2, 3], 4, 2


def tiny_forecaster(model_type: str = "time_series_transformer", channels: int = 2, **overrides):
    """A random tiny encoder–decoder forecaster: context 12 (+ 3 lags) steps, horizon 4, 2 time features."""
    import transformers

    torch.manual_seed(0)
    name = FORECASTERS[model_type]
    config = getattr(transformers, f"{name}Config")(
        prediction_length=HORIZON, context_length=12, input_size=channels, lags_sequence=LAGS,
        num_time_features=TIME_FEATURES, d_model=16, encoder_layers=1, decoder_layers=1, encoder_attention_heads=2,
        decoder_attention_heads=2, encoder_ffn_dim=16, decoder_ffn_dim=16, **overrides,
    )
    return getattr(transformers, f"{name}ForPrediction")(config).eval()


def forecaster_inputs(n: int, channels: int = 2, seed: int = 0, past: int = 15) -> list[dict]:
    """Series as dicts of model inputs for `tiny_forecaster` (time features included)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    return [
        {"past_values": rng.normal(size=(past, channels)).astype(np.float32) + 3.0,
         "past_time_features": rng.normal(size=(past, TIME_FEATURES)).astype(np.float32),
         "future_time_features": rng.normal(size=(HORIZON, TIME_FEATURES)).astype(np.float32)}
        for _ in range(n)
    ]
