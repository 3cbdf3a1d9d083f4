r"""`SeriesAdapter`: a transformers time-series model seen as a function of one (time, channels) input.

Heads are data (`SERIES_HEADS`): the model class's suffix gives the kind, and every kind reads the
model output as a flat vector y ∈ R^K per series:

| kind             | models                                         | y                                   |
|------------------|------------------------------------------------|-------------------------------------|
| `classification` | PatchTST…ForClassification, PatchTSMixer…ForTimeSeriesClassification | the K class logits |
| `regression`     | …ForRegression                                 | the K regression outputs            |
| `prediction`     | …ForPrediction                                 | the forecast (horizon H × channels C), row-major: y[h·C + c] |

An explained *row* is a weight vector w ∈ R^K and its score f = w · g(y), g the score space:
identity ("logit" for classifiers, "value" otherwise), log-softmax ("log_prob") or softmax ("prob").
A class is a one-hot w, a forecast value at (step h, channel c) the one-hot at h·C + c, and a window
of the forecast summed is w = 1 on its entries. One forward of N inputs gives every row's score.

Missing values (NaN) are given to the model as 0 with an observed mask of 0, under the argument
name the model's `forward` takes (`past_observed_mask` or `observed_mask`).

**Encoder–decoder forecasters** (TimeSeriesTransformer, Informer, Autoformer `…ForPrediction`)
predict a distribution per future step from `past_values` of context_length + max(lags_sequence)
steps and the covariates their config asks for (`past_time_features`, `future_time_features`,
`static_categorical_features`, `static_real_features`). Their forecast y is the **mean** of the
predicted distribution, decoded greedily for the models whose decoder reads its own past
(TimeSeriesTransformer, Informer: the mean of step h is fed back as the value of step h before step
h + 1 is predicted, H decoder passes over one encoder pass, all differentiable); Autoformer's
decoder does not read future values, so one pass gives every step. Covariates are held fixed:
attributions are over `past_values` only. Such a series is given as a dict of the model's input
names, e.g. `{"past_values": (T, C) array, "past_time_features": (T, F), "future_time_features":
(H, F)}`; the forward keeps the model's mean-scaling of the context (its `loc` and `scale`).
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from ..checks import did_you_mean
from ..concurrency import evaluation_mode
from ..errors import InvalidInputError, InvalidParameterError, UnknownTargetError, UnsupportedModelError

#: model class suffix -> head kind (first match wins)
SERIES_HEADS: dict[str, str] = {
    "ForTimeSeriesClassification": "classification",
    "ForClassification": "classification",
    "ForRegression": "regression",
    "ForPrediction": "prediction",
}
#: output fields that hold y, by kind
OUTPUT_FIELDS: dict[str, tuple[str, ...]] = {
    "classification": ("prediction_logits", "prediction_outputs"),
    "regression": ("regression_outputs",),
    "prediction": ("prediction_outputs",),
}
MASK_ARGUMENTS: tuple[str, ...] = ("past_observed_mask", "observed_mask")
#: encoder–decoder forecasters (model_type -> whether the decoder reads its own past forecast)
AUTOREGRESSIVE: dict[str, bool] = {"time_series_transformer": True, "informer": True, "autoformer": False}
#: covariates of the encoder–decoder forecasters: name -> (config field that asks for it, steps: "past", "future" or None)
COVARIATES: dict[str, tuple[str, str | None]] = {
    "past_time_features": ("num_time_features", "past"),
    "future_time_features": ("num_time_features", "future"),
    "static_categorical_features": ("num_static_categorical_features", None),
    "static_real_features": ("num_static_real_features", None),
}
SCORE_SPACES: dict[str, tuple[str, ...]] = {
    "classification": ("logit", "log_prob", "prob"),
    "regression": ("value",),
    "prediction": ("value",),
}

#: a row target: a class (id or label), an output index, "all", or a forecast (step or (start, stop), channel)
SeriesTarget = int | str | tuple | None


@dataclass
class SeriesInput:
    """One series ready for a model: values (time, channels) with NaN as 0, the observed mask, the
    requested target and the fixed covariates (model input name -> array)."""

    values: np.ndarray
    observed: np.ndarray
    target: SeriesTarget
    covariates: dict[str, np.ndarray] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.values)


class SeriesAdapter:
    """A transformers time-series model (PatchTST, PatchTSMixer: classification, regression,
    prediction heads) for explanation; see the module docstring."""

    def __init__(self, model: Any, *, channel_names: Sequence[str] | None = None):
        self.model = model
        self.model_class = type(model).__name__
        self.config = model.config
        kind = next((k for suffix, k in SERIES_HEADS.items() if self.model_class.endswith(suffix)), None)
        model_type = getattr(self.config, "model_type", None)
        #: None for PatchTST / PatchTSMixer; for encoder–decoder forecasters, whether decoding is autoregressive
        self.autoregressive: bool | None = AUTOREGRESSIVE.get(model_type) if kind == "prediction" else None
        if kind is None or not (hasattr(self.config, "num_input_channels") or self.autoregressive is not None):
            raise UnsupportedModelError(
                f"{self.model_class} is not a supported time-series model; pass a PatchTST or PatchTSMixer model "
                "with a classification, regression or prediction head (e.g. PatchTSTForClassification), or a "
                "TimeSeriesTransformer, Informer or Autoformer ForPrediction model."
            )
        if self.autoregressive is None and kind != "classification" and getattr(self.config, "loss", "mse") == "nll":
            raise UnsupportedModelError(
                f"{self.model_class} has a distribution head (loss='nll'): its output is distribution parameters, "
                "not one value per target. Explain a point model (loss='mse')."
            )
        self.kind = kind
        if self.autoregressive is None:
            self.n_channels = int(self.config.num_input_channels)
            self.context_length = int(self.config.context_length)
            self.covariates: tuple[str, ...] = ()
        else:
            self.n_channels = int(self.config.input_size)
            self.context_length = int(self.config.context_length) + max(self.config.lags_sequence)
            self.covariates = tuple(name for name, (field_name, _) in COVARIATES.items() if getattr(self.config, field_name, 0))
        names = list(channel_names) if channel_names is not None else [f"dim_{c}" for c in range(self.n_channels)]
        if len(names) != self.n_channels:
            raise InvalidParameterError(f"Got {len(names)} channel names for a model with {self.n_channels} channels.")
        self.channel_names = names
        parameters = inspect.signature(model.forward).parameters
        self.mask_argument = next((name for name in MASK_ARGUMENTS if name in parameters), None)
        self.labels = self._output_labels()

    @property
    def model_name(self) -> str | None:
        return getattr(self.config, "_name_or_path", None) or None

    def _output_labels(self) -> list[str]:
        """A name for every entry of y."""
        if self.kind == "prediction":
            horizon = int(self.config.prediction_length)
            return [f"t+{h + 1} {name}" for h in range(horizon) for name in self.channel_names]
        n = int(self.config.num_targets)
        id2label = getattr(self.config, "id2label", None) or {}
        if self.kind == "classification" and len(id2label) == n:
            return [str(id2label.get(i, id2label.get(str(i)))) for i in range(n)]
        return [f"{'LABEL' if self.kind == 'classification' else 'target'}_{i}" for i in range(n)]

    # ----------------------------------------------------------------- inputs
    def prepare(self, series: Any, target: SeriesTarget | Sequence[SeriesTarget]) -> tuple[list[SeriesInput], bool]:
        """Series with one target each (a single target applies to all); whether a single series was
        given. A series is a (time, channels) array, or a dict of model inputs with `past_values` and
        the covariates the model takes; pass one, or a list / (series, time, channels) array of them."""
        single = isinstance(series, dict) or (isinstance(series, np.ndarray | torch.Tensor) and np.ndim(series) == 2) or (
            isinstance(series, list) and len(series) > 0 and not isinstance(series[0], dict) and np.ndim(series[0]) == 1
        )
        items = [series] if single else list(series)
        if not items:
            raise InvalidInputError("No series given: pass a (time, channels) array or a list of them.")
        parsed = [self._parse(i, item) for i, item in enumerate(items)]
        if isinstance(target, list):
            if len(target) != len(items):
                raise UnknownTargetError(f"Got {len(target)} targets for {len(items)} series; pass one per series or a single one.")
            targets = target
        else:
            targets = [target] * len(items)
        for t in targets:
            self.row_weights(t, np.zeros(len(self.labels)))  # validates before any work
        inputs = [SeriesInput(np.nan_to_num(v, nan=0.0), ~np.isnan(v), t, c) for (v, c), t in zip(parsed, targets)]
        return inputs, single

    def _parse(self, i: int, item: Any) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """(values (time, channels), covariates) of series i, checked against the model."""
        given = dict(item) if isinstance(item, dict) else {"past_values": item}
        if "past_values" not in given:
            raise InvalidInputError(f"Series {i} is a dict without 'past_values'; give the series under that key.")
        values = np.asarray(given.pop("past_values"), dtype=np.float32)
        if values.ndim == 1 and self.n_channels == 1:
            values = values[:, None]
        if values.ndim != 2 or values.shape[1] != self.n_channels:
            raise InvalidInputError(
                f"Series {i} has shape {values.shape}; {self.model_class} takes (time, {self.n_channels}) arrays "
                "(time steps × channels, as `past_values`)."
            )
        if len(values) != self.context_length:
            lags = "" if self.autoregressive is None else f" (context_length {self.config.context_length} + max(lags_sequence) {max(self.config.lags_sequence)})"
            raise InvalidInputError(
                f"Series {i} has {len(values)} time steps; {self.model_class} takes exactly {self.context_length}{lags}. "
                f"Cut or pad it with hf_seqinterp.timeseries.fixed_length(values, {self.context_length})."
            )
        unknown, missing = sorted(set(given) - set(self.covariates)), [n for n in self.covariates if n not in given]
        if unknown or missing:
            wanted = ", ".join(self.covariates) or "nothing besides past_values"
            raise InvalidInputError(
                f"Series {i}: {self.model_class} takes {wanted}"
                + (f"; missing: {', '.join(missing)}" if missing else "")
                + (f"; not model inputs: {', '.join(unknown)}" if unknown else "")
                + ". Give a series as a dict of model inputs, e.g. {'past_values': ..., 'past_time_features': ...}."
            )
        covariates = {}
        for name in self.covariates:
            array = np.asarray(given[name], dtype=np.int64 if name == "static_categorical_features" else np.float32)
            steps = {"past": self.context_length, "future": int(self.config.prediction_length), None: None}[COVARIATES[name][1]]
            size = int(getattr(self.config, COVARIATES[name][0]))
            expected = (size,) if steps is None else (steps, size)
            if array.shape != expected:
                raise InvalidInputError(f"Series {i}: {name} has shape {array.shape}; {self.model_class} takes {expected}.")
            covariates[name] = array
        return values, covariates

    @contextlib.contextmanager
    def evaluating(self) -> Iterator[None]:
        """The model in eval mode (PatchTST's BatchNorm mixes the rows of a batch in train mode) for the
        duration of an explanation, under the model's lock; its mode is restored."""
        with evaluation_mode(self.model):
            yield

    # ----------------------------------------------------------------- outputs and scores
    def outputs(
        self, values: torch.Tensor, observed: torch.Tensor | None = None, covariates: dict[str, torch.Tensor] | None = None
    ) -> torch.Tensor:
        """y: (N, K) for inputs (N, time, channels) and their covariates (name -> (N, ...))."""
        kwargs = dict(covariates or {})
        if self.mask_argument is not None:
            kwargs[self.mask_argument] = (observed if observed is not None else torch.ones_like(values)).to(values.dtype)
        if self.autoregressive is not None:
            return self._forecast_mean(values, kwargs)
        output = self.model(past_values=values, **kwargs)
        name = next(f for f in OUTPUT_FIELDS[self.kind] if getattr(output, f, None) is not None)
        return getattr(output, name).reshape(len(values), -1)

    def _forecast_mean(self, values: torch.Tensor, kwargs: dict[str, torch.Tensor]) -> torch.Tensor:
        """The mean forecast (N, H·C) of an encoder–decoder forecaster (see the module docstring)."""
        univariate = self.n_channels == 1
        if univariate:
            values = values[..., 0]
            kwargs = {k: v[..., 0] if k == "past_observed_mask" else v for k, v in kwargs.items()}
        horizon = int(self.config.prediction_length)
        future = torch.zeros((len(values), horizon, *values.shape[2:]), dtype=values.dtype)
        encoded = None
        for h in range(horizon if self.autoregressive else 1):
            output = self.model(past_values=values, future_values=future, encoder_outputs=encoded, **kwargs)
            encoded = (output.encoder_last_hidden_state,)
            mean = self.model.output_distribution(output.params, loc=output.loc, scale=output.scale).mean
            if not self.autoregressive:
                future = mean
                break
            future = torch.cat([future[:, :h], mean[:, h : h + 1], future[:, h + 1 :]], 1)
        return future.reshape(len(values), -1)

    def check_score_space(self, space: str) -> str:
        """The score space for this head ("auto": "logit" for classifiers, "value" otherwise)."""
        allowed = SCORE_SPACES[self.kind]
        if space == "auto":
            return allowed[0]
        if space not in allowed:
            raise InvalidParameterError(
                f"score={space!r} does not apply to a {self.kind} model ({self.model_class}); use one of {', '.join(allowed)}."
            )
        return space

    @staticmethod
    def scores(outputs: torch.Tensor, weights: torch.Tensor, space: str) -> torch.Tensor:
        """f = w · g(y) per row: outputs (N, K), weights (N, R, K) -> (N, R)."""
        if space == "log_prob":
            outputs = torch.log_softmax(outputs, dim=-1)
        elif space == "prob":
            outputs = torch.softmax(outputs, dim=-1)
        return torch.einsum("nk,nrk->nr", outputs, weights.to(outputs.dtype))

    def reported(self, outputs: torch.Tensor) -> np.ndarray:
        """The model output an explanation keeps: class probabilities (softmax) or the raw values."""
        outputs = outputs.detach().double()
        return (torch.softmax(outputs, -1) if self.kind == "classification" else outputs).numpy()

    # ----------------------------------------------------------------- targets
    def row_weights(self, target: SeriesTarget, outputs: np.ndarray) -> tuple[np.ndarray, list[dict[str, Any]]]:
        """(R, K) row weights and a description of each row, for one series' target given its output y.

        classification: None (the predicted class), a class id or label, or "all" (one row per class);
        regression: None (one row per output) or an output index; prediction: None (one row per
        channel: its forecast summed over the horizon), or (step, channel) with step an index or a
        (start, stop) window and channel an index, a name, or None (all channels summed).
        """
        n = len(self.labels)
        if self.kind == "prediction":
            specs = [(None, c) for c in range(self.n_channels)] if target is None else [target]
            return self._forecast_rows(specs)
        if target == "all" or (target is None and self.kind == "regression"):
            picks = list(range(n))
        elif target is None:
            picks = [int(np.argmax(outputs))]
        else:
            picks = [self._output_index(target)]
        weights = np.eye(n)[picks]
        return weights, [{"target": k, "label": self.labels[k]} for k in picks]

    def _output_index(self, target: Any) -> int:
        if isinstance(target, str) and target in self.labels:
            return self.labels.index(target)
        if isinstance(target, (int, np.integer)) and not isinstance(target, bool) and 0 <= target < len(self.labels):
            return int(target)
        hint = did_you_mean(target, self.labels) if isinstance(target, str) else ""
        raise UnknownTargetError(
            f"target={target!r} is not an output of {self.model_class}.{hint} Pass None, 'all', an index in "
            f"[0, {len(self.labels)}) or one of {self.labels[:10]}."
        )

    def _forecast_rows(self, specs: list[Any]) -> tuple[np.ndarray, list[dict[str, Any]]]:
        horizon = int(self.config.prediction_length)
        weights = np.zeros((len(specs), horizon, self.n_channels))
        rows = []
        for r, spec in enumerate(specs):
            if not isinstance(spec, tuple) or len(spec) != 2:
                raise UnknownTargetError(
                    f"target={spec!r}: a forecast target is (step, channel), step an index or a (start, stop) window "
                    "of the horizon (None: all of it) and channel an index, a name or None (all channels); or None."
                )
            step, channel = spec
            start, stop = (0, horizon) if step is None else (step, step + 1) if isinstance(step, int) else tuple(step)
            if not (isinstance(start, int) and isinstance(stop, int) and 0 <= start < stop <= horizon):
                raise UnknownTargetError(f"target step {step!r} is outside the forecast horizon [0, {horizon}).")
            if channel is None:
                channels, name = list(range(self.n_channels)), "all channels"
            elif isinstance(channel, str) and channel in self.channel_names:
                channels, name = [self.channel_names.index(channel)], channel
            elif isinstance(channel, int) and 0 <= channel < self.n_channels:
                channels, name = [channel], self.channel_names[channel]
            else:
                raise UnknownTargetError(
                    f"target channel {channel!r} is not a channel of this model; use an index in [0, {self.n_channels}), "
                    f"one of {self.channel_names} or None."
                )
            weights[r, start:stop, channels] = 1.0
            steps = f"t+{start + 1}" if stop == start + 1 else f"t+{start + 1}..t+{stop}"
            rows.append({"target": [start, stop, *channels], "label": f"{steps} {name}"})
        return weights.reshape(len(specs), -1), rows
