r"""`SeriesExplanation`: attributions of one series over (time, channel), one row per explained target.

For an input X ∈ R^{T×C} and rows r = 1..R (a class, a regression output, a forecast value or
window), `attributions[r, t, c]` is cell (t, c)'s share of row r's score; positive supports the
target. Views reduce the grid with sums, so additive methods keep their totals:

    channel_totals(r)[c] = Σ_t A[r, t, c]   (variable importance)
    time_totals(r)[t]    = Σ_c A[r, t, c]

and both sum to Σ A[r]. The input values, channel names and time stamps are kept, so an explanation
renders and serialises on its own (`to_dict`, and dataset rows with `SERIES_FEATURES`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from typing import Any

import datasets
import numpy as np
from datasets import Features, List, Value

from ..errors import InvalidParameterError
from ..explanation import _jsonable, known_fields

SCHEMA_VERSION = 1


@dataclass
class SeriesExplanation:
    """Attribution of a model's outputs to the cells of one multivariate series (see the module docstring)."""

    attributions: np.ndarray  # (rows, time, channels)
    values: np.ndarray  # (time, channels), unobserved cells as 0
    channel_names: list[str]
    rows: list[dict[str, Any]]  # per row: "target", "label", "input_score", method extras
    outputs: np.ndarray  # the model output on the input: class probabilities, or the raw values
    output_labels: list[str]
    method: str
    kind: str  # classification / regression / prediction
    params: dict[str, Any] = field(default_factory=dict)
    times: list[float] | None = None
    observed: np.ndarray | None = None  # (time, channels) bool; None when every cell was observed
    model_name: str | None = None
    warnings: list[str] = field(default_factory=list)
    extras: dict[str, Any] = field(default_factory=dict)
    library_version: str | None = None

    def __post_init__(self) -> None:
        self.values = np.asarray(self.values, dtype=np.float32)
        n_time, n_channels = self.values.shape
        self.attributions = np.asarray(self.attributions, dtype=np.float32).reshape(len(self.rows), n_time, n_channels)
        self.outputs = np.asarray(self.outputs, dtype=np.float32).reshape(-1)
        self.times = [float(t) for t in (self.times if self.times is not None else range(n_time))]
        if self.observed is not None:
            self.observed = np.asarray(self.observed, dtype=bool).reshape(n_time, n_channels)
        if self.library_version is None:
            from .. import __version__

            self.library_version = __version__

    # ----------------------------------------------------------------- views
    @property
    def n_rows(self) -> int:
        return len(self.rows)

    @property
    def score(self) -> str:
        return self.params.get("score", "logit")

    def grid(self, row: int = 0) -> np.ndarray:
        """(time, channels) attributions of one row."""
        if not -self.n_rows <= row < self.n_rows:
            raise InvalidParameterError(f"row={row}: this explanation has {self.n_rows} rows (0..{self.n_rows - 1}).")
        return self.attributions[row]

    def channel_totals(self, row: int = 0) -> dict[str, float]:
        """Variable importance: Σ_t A[row, t, c] per channel name."""
        totals = self.grid(row).sum(0, dtype=np.float64)
        return {name: float(v) for name, v in zip(self.channel_names, totals)}

    def time_totals(self, row: int = 0) -> np.ndarray:
        """Σ_c A[row, t, c] per time step."""
        return self.grid(row).sum(1, dtype=np.float64)

    def top_cells(self, k: int = 5, row: int = 0) -> list[tuple[float, str, float]]:
        """The k cells of largest |attribution|: (time stamp, channel name, attribution)."""
        grid = self.grid(row)
        order = np.argsort(-np.abs(grid), axis=None, kind="stable")[:k]
        return [(self.times[t], self.channel_names[c], float(grid[t, c])) for t, c in zip(*np.unravel_index(order, grid.shape))]

    def __repr__(self) -> str:
        labels = ", ".join(str(r.get("label")) for r in self.rows[:3])
        return (
            f"SeriesExplanation(method={self.method!r}, rows=[{labels}{', ...' if self.n_rows > 3 else ''}], "
            f"time={self.values.shape[0]}, channels={self.channel_names})"
        )

    # ----------------------------------------------------------------- serialisation
    def to_dict(self) -> dict[str, Any]:
        """Plain JSON; `SeriesExplanation.from_dict(e.to_dict()) == e` (float32 values are exact)."""
        return {"schema_version": SCHEMA_VERSION, **{f.name: _jsonable(getattr(self, f.name)) for f in fields(self)}}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SeriesExplanation:
        """Inverse of `to_dict`; unknown keys (from a newer version) are dropped with a warning."""
        return cls(**known_fields(cls, data))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SeriesExplanation):
            return NotImplemented
        return self.to_dict() == other.to_dict()

    # ----------------------------------------------------------------- rendering
    def to_html(self, *, full_page: bool = False) -> str:
        """Self-contained HTML of every row: the time × channel grid behind each channel's series and
        the channel totals (see `hf_seqinterp.timeseries.render`)."""
        from .render import render_series_html

        return render_series_html(self, full_page=full_page)

    def _repr_html_(self) -> str:
        return self.to_html()

    def plot(self, row: int = 0, **kwargs: Any) -> Any:
        """Heat map of the row over time × channel under each channel's series (matplotlib Figure);
        see `hf_seqinterp.timeseries.plot.plot_series`."""
        from .plot import plot_series

        return plot_series(self, row, **kwargs)

    def plot_channels(self, row: int = 0, **kwargs: Any) -> Any:
        """Bar chart of `channel_totals(row)` (matplotlib Figure)."""
        from .plot import plot_channel_importance

        return plot_channel_importance(self, row, **kwargs)


# ----------------------------------------------------------------------------- datasets
#: one row per (series, method); arrays as nested lists, JSON for the per-method parts.
#: column -> (feature, description): the documented schema (docs and dataset cards)
SERIES_SCHEMA: dict[str, tuple[Any, str]] = {
    "schema_version": (Value("int32"), "version of this schema"),
    "source_index": (Value("int64"), "position of the explained series in the source dataset"),
    "label": (Value("int64"), "gold label of the source series (null when none was given)"),
    "method": (Value("string"), "registered series method"),
    "kind": (Value("string"), "the model head: classification, regression or prediction"),
    "params": (Value("string"), "every parameter of the method, incl. the score space, as a JSON object"),
    "attributions": (List(List(List(Value("float32")))), "rows × time × channels; positive supports the row's target"),
    "values": (List(List(Value("float32"))), "the explained series, time × channels (unobserved cells as 0)"),
    "observed": (List(List(Value("bool"))), "time × channels, false at unobserved cells (null when all were observed)"),
    "channel_names": (List(Value("string")), "name of each channel"),
    "times": (List(Value("float64")), "time stamp of each step"),
    "rows": (Value("string"), "the explained targets as a JSON list: target, label, input_score, method extras"),
    "outputs": (List(Value("float32")), "model output on the series: class probabilities, or the raw values"),
    "output_labels": (List(Value("string")), "a name for each output"),
    "model_name": (Value("string"), "model name (Hub id or folder name)"),
    "warnings": (List(Value("string")), "e.g. an integrated-gradients completeness gap"),
    "extras": (Value("string"), "method-specific outputs as a JSON object"),
    "library_version": (Value("string"), "hf_seqinterp version that computed the row"),
}
SERIES_FEATURES = Features({name: feature for name, (feature, _) in SERIES_SCHEMA.items()})
_JSON_COLUMNS = ("params", "rows", "extras")


def series_explanation_to_row(expl: SeriesExplanation, *, source_index: int, label: int | None = None) -> dict[str, Any]:
    """One dataset row (a dict matching `SERIES_FEATURES`) for a SeriesExplanation."""
    data = expl.to_dict()
    data.pop("schema_version")
    return {
        "schema_version": SCHEMA_VERSION, "source_index": source_index, "label": label,
        **data, **{k: json.dumps(data[k]) for k in _JSON_COLUMNS},
    }


def series_explanations_to_dataset(
    explanations: list[SeriesExplanation], *, labels: list[int | None] | None = None
) -> datasets.Dataset:
    """A Dataset with `SERIES_FEATURES`, one row per explanation (`source_index` = its position)."""
    rows = [
        series_explanation_to_row(expl, source_index=i, label=None if labels is None else labels[i])
        for i, expl in enumerate(explanations)
    ]
    return datasets.Dataset.from_list(rows, features=SERIES_FEATURES)


def dataset_to_series_explanations(dataset: datasets.Dataset) -> list[SeriesExplanation]:
    """Every row of a series-explanation dataset as a SeriesExplanation, in row order."""
    out = []
    for row in dataset:
        data = {k: v for k, v in row.items() if k not in ("schema_version", "source_index", "label")}
        out.append(SeriesExplanation.from_dict({**data, **{k: json.loads(data[k]) for k in _JSON_COLUMNS}}))
    return out
