r"""Series explainers: the registry, the base class and the batched scoring every method shares.

A method is a class registered with `@register_series_method(name)`: its constructor's keyword
arguments are its parameters (recorded in every explanation), `_explain(batch)` holds only the math.
The base class validates the series and targets, groups series of equal length into batches, runs
the unperturbed forward once (the targets' rows and f(x)), restores the model's mode, and builds the
`SeriesExplanation`s.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

import numpy as np
import torch

from ..checks import unknown_method_message, unknown_parameters_message
from ..errors import InvalidParameterError
from ..explanation import public_model_name
from ..utils import chunks, keyword_defaults, length_grouped_batches, progress_bar
from ..validation import check_batch_size, check_int
from .adapter import SeriesAdapter, SeriesInput, SeriesTarget
from .explanation import SeriesExplanation

_REGISTRY: dict[str, type[SeriesExplainer]] = {}
E = TypeVar("E", bound="type[SeriesExplainer]")


def register_series_method(name: str) -> Callable[[E], E]:
    """Class decorator adding a series explainer to the registry under `name`."""

    def decorate(cls: E) -> E:
        if name in _REGISTRY and _REGISTRY[name] is not cls:
            raise InvalidParameterError(f"A series method named {name!r} is already registered.")
        cls.name = name
        _REGISTRY[name] = cls
        return cls

    return decorate


def series_methods() -> list[str]:
    """Names of the registered series methods, sorted."""
    return sorted(_REGISTRY)


def series_method_table() -> dict[str, dict[str, Any]]:
    """Every series method as data, {name: {"summary": ..., "parameters": {name: repr(default)}}}: the
    command line's copy is `SERIES_METHODS` in `hf_seqinterp/method_table.py`."""
    return {
        name: {"summary": cls.summary(), "parameters": keyword_defaults(cls)} for name, cls in sorted(_REGISTRY.items())
    }


def get_series_method(name: str) -> type[SeriesExplainer]:
    if not isinstance(name, str) or name not in _REGISTRY:
        raise InvalidParameterError(unknown_method_message(name, series_methods()))
    return _REGISTRY[name]


def explain_series(
    adapter: SeriesAdapter,
    series: Any,
    method: str = "integrated_gradients",
    target: SeriesTarget | list[SeriesTarget] = None,
    *,
    batch_size: int | None = None,
    progress: bool | None = None,
    **params: Any,
) -> SeriesExplanation | list[SeriesExplanation]:
    """Explain one series (a (time, channels) array) or several with `method` and its `params`."""
    return get_series_method(method).create(adapter, **params).explain(series, target, batch_size=batch_size, progress=progress)


@dataclass
class SeriesBatch:
    """Series of one length with their rows: values and observed (N, T, C), row weights (N, R, K)
    (series with fewer rows padded with zero rows), the rows' descriptions, y = the outputs (N, K)
    and f(x) = the rows' scores (N, R). For a method that `differentiates_input`, `values` requires
    gradients and `input_scores` keeps the graph to them (one forward picks the targets and is
    differentiated)."""

    values: torch.Tensor
    observed: torch.Tensor
    covariates: dict[str, torch.Tensor]
    weights: torch.Tensor
    rows: list[list[dict[str, Any]]]
    outputs: torch.Tensor
    input_scores: torch.Tensor

    def __len__(self) -> int:
        return len(self.values)


@dataclass
class SeriesResult:
    """What `_explain` returns per series: attributions (R, T, C) over the padded rows, per-row
    extras (one dict per row, may be shorter) and series-level extras."""

    attributions: np.ndarray
    row_extras: list[dict[str, Any]]
    extras: dict[str, Any]
    warnings: list[str]


class SeriesExplainer:
    """Base class of the series methods (see the module docstring)."""

    name: ClassVar[str] = ""
    needs_gradients: ClassVar[bool] = False
    #: differentiates the scores of the unperturbed input: the batch's forward keeps its graph to `values`
    differentiates_input: ClassVar[bool] = False
    default_batch_size: ClassVar[int] = 32

    def __init__(self, adapter: SeriesAdapter, *, score: str = "auto", max_batch_series: int = 256):
        self.adapter = adapter
        self.score = adapter.check_score_space(score)
        self.max_batch_series = check_int("max_batch_series", max_batch_series, minimum=1, maximum=2**20)

    @classmethod
    def summary(cls) -> str:
        return (inspect.getdoc(cls) or cls.name).strip().splitlines()[0]

    @classmethod
    @functools.cache
    def parameter_names(cls) -> tuple[str, ...]:
        """The keyword-only parameters of the constructors along the class hierarchy (cached)."""
        return tuple(keyword_defaults(cls))

    @classmethod
    def create(cls, adapter: SeriesAdapter, **params: Any) -> SeriesExplainer:
        """Instantiate with a clear error for unknown parameters."""
        unknown = sorted(set(params) - set(cls.parameter_names()))
        if unknown:
            raise InvalidParameterError(unknown_parameters_message(cls.name, unknown, cls.parameter_names()))
        return cls(adapter, **params)

    @property
    def params(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.parameter_names()}

    # ----------------------------------------------------------------- public API
    def explain(
        self,
        series: Any,
        target: SeriesTarget | list[SeriesTarget] = None,
        *,
        batch_size: int | None = None,
        progress: bool | None = None,
    ) -> SeriesExplanation | list[SeriesExplanation]:
        """Explain one series (returns a SeriesExplanation) or several (a list, in input order).

        Args:
            series: a (time, channels) array, or a list / (series, time, channels) array of them.
            target: see `SeriesAdapter.row_weights`; one for every series, or a list with one per series.
            batch_size: series per batch (series of equal length only).
            progress: show a progress bar; by default when there is more than one batch.
        """
        inputs, single = self.adapter.prepare(series, target)
        size = check_batch_size(batch_size) or self.default_batch_size
        groups = length_grouped_batches([len(x) for x in inputs], size, equal_lengths=True)
        out: list[SeriesExplanation | None] = [None] * len(inputs)
        with self.adapter.evaluating(), progress_bar(len(inputs), self.name, enabled=bool(progress if progress is not None else len(groups) > 1), unit="series") as bar:
            for group in groups:
                batch = self._batch([inputs[i] for i in group])
                with torch.enable_grad() if self.needs_gradients else torch.no_grad():
                    results = self._explain(batch)
                for j, (i, result) in enumerate(zip(group, results)):
                    out[i] = self._to_explanation(inputs[i], batch, j, result)
                bar.update(len(group))
        return out[0] if single else out  # type: ignore[return-value]

    # ----------------------------------------------------------------- shared machinery
    def _batch(self, inputs: Sequence[SeriesInput]) -> SeriesBatch:
        values = torch.as_tensor(np.stack([x.values for x in inputs]))
        observed = torch.as_tensor(np.stack([x.observed for x in inputs]))
        covariates = {name: torch.as_tensor(np.stack([x.covariates[name] for x in inputs])) for name in inputs[0].covariates}
        track = self.differentiates_input and len(inputs) <= self.max_batch_series
        with torch.enable_grad() if track else torch.no_grad():
            outputs = self.adapter.outputs(values.requires_grad_(track), observed, covariates)
        plans = [self.adapter.row_weights(x.target, y) for x, y in zip(inputs, outputs.detach().numpy())]
        n_rows = max(len(rows) for _, rows in plans)
        weights = np.zeros((len(inputs), n_rows, outputs.shape[1]))
        for i, (w, _) in enumerate(plans):
            weights[i, : len(w)] = w
        weights_t = torch.as_tensor(weights, dtype=values.dtype)
        scores = self.adapter.scores(outputs, weights_t, self.score)
        return SeriesBatch(values, observed, covariates, weights_t, [rows for _, rows in plans], outputs, scores)

    def _scores(self, batch: SeriesBatch, values: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        """Row scores (M, R) of inputs `values` (M, T, C), input m a variant of series `index[m]`."""
        covariates = {name: tensor[index] for name, tensor in batch.covariates.items()}
        outputs = self.adapter.outputs(values, batch.observed[index], covariates)
        return self.adapter.scores(outputs, batch.weights[index], self.score)

    def _scores_chunked(self, batch: SeriesBatch, values: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        """`_scores` without gradients, `max_batch_series` inputs per forward."""
        with torch.no_grad():
            return torch.cat([self._scores(batch, values[part], index[part]) for part in chunks(len(values), self.max_batch_series)])

    def _explain(self, batch: SeriesBatch) -> list[SeriesResult]:
        raise NotImplementedError

    def _to_explanation(self, item: SeriesInput, batch: SeriesBatch, i: int, result: SeriesResult) -> SeriesExplanation:
        rows = batch.rows[i]
        scores = batch.input_scores[i].detach()
        described = [
            {**row, "input_score": float(scores[r]), **(result.row_extras[r] if r < len(result.row_extras) else {})}
            for r, row in enumerate(rows)
        ]
        return SeriesExplanation(
            attributions=result.attributions[: len(rows)],
            values=item.values,
            channel_names=list(self.adapter.channel_names),
            rows=described,
            outputs=self.adapter.reported(batch.outputs[i]),
            output_labels=list(self.adapter.labels),
            method=self.name,
            kind=self.adapter.kind,
            params=self.params,
            observed=None if item.observed.all() else item.observed,
            model_name=public_model_name(self.adapter.model_name),
            warnings=list(result.warnings),
            extras=result.extras,
        )
