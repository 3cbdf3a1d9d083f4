"""Explanations of multivariate time-series models (PatchTST, PatchTSMixer) over (time, channel).

    from hf_seqinterp.timeseries import SeriesAdapter, explain_series, load_ts
    adapter = SeriesAdapter(model, channel_names=[...])
    expl = explain_series(adapter, series, "integrated_gradients")   # SeriesExplanation
    expl.channel_totals(), expl.time_totals(), expl.grid(), expl.plot(), expl.to_html()
"""

from . import attention, gradients, perturbation, tsr  # noqa: F401 - register the methods
from .adapter import SERIES_HEADS, SeriesAdapter
from .base import SeriesExplainer, explain_series, get_series_method, register_series_method, series_methods
from .baselines import BASELINES
from .data import channel_names, fixed_length, load_ts, series_dataset
from .explanation import (
    SERIES_FEATURES,
    SeriesExplanation,
    dataset_to_series_explanations,
    series_explanation_to_row,
    series_explanations_to_dataset,
)
from .render import render_series_html, save_series_html
from .runs import explain_series_dataset

__all__ = [
    "BASELINES",
    "SERIES_FEATURES",
    "SERIES_HEADS",
    "SeriesAdapter",
    "SeriesExplainer",
    "SeriesExplanation",
    "channel_names",
    "dataset_to_series_explanations",
    "explain_series",
    "explain_series_dataset",
    "fixed_length",
    "get_series_method",
    "load_ts",
    "register_series_method",
    "render_series_html",
    "save_series_html",
    "series_dataset",
    "series_explanation_to_row",
    "series_explanations_to_dataset",
    "series_methods",
]
