r"""Pictures of series explanations (matplotlib): the attribution grid drawn behind each channel's
series, and a variable-importance bar chart.

Figures are built without pyplot (no global figure registry, no backend switch), so they are
freed with their last reference. Colours are the HTML view's (`visualize.POSITIVE_RGB` for evidence for the target, `NEGATIVE_RGB`
against, white at 0), on one symmetric scale per picture: full colour at the largest |attribution|
of the row.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..visualize import NEGATIVE_RGB, POSITIVE_RGB
from .explanation import SeriesExplanation


def _colormap() -> Any:
    from matplotlib.colors import LinearSegmentedColormap

    rgb = [tuple(v / 255 for v in NEGATIVE_RGB), (1.0, 1.0, 1.0), tuple(v / 255 for v in POSITIVE_RGB)]
    return LinearSegmentedColormap.from_list("hfsi", rgb)


def _scale(values: np.ndarray) -> float:
    top = float(np.abs(values).max()) if values.size else 0.0
    return top if top > 0 else 1.0


def plot_series(expl: SeriesExplanation, row: int = 0, *, path: str | Path | None = None, width: float = 9.0) -> Any:
    """One panel per channel: the series as a line over a heat strip of its attributions
    (time × channel); saved as PNG when `path` is given. Returns the matplotlib Figure."""
    from matplotlib.figure import Figure

    grid = expl.grid(row)
    times = np.asarray(expl.times)
    scale = _scale(grid)
    n_channels = grid.shape[1]
    figure = Figure(figsize=(width, 0.9 + 0.8 * n_channels))
    axes = figure.subplots(n_channels, 1, sharex=True, squeeze=False)
    step = float(np.median(np.diff(times))) if len(times) > 1 else 1.0
    extent_x = (times[0] - step / 2, times[-1] + step / 2)
    for c, axis in enumerate(axes[:, 0]):
        values = expl.values[:, c]
        low, high = float(values.min()), float(values.max())
        pad = (high - low) * 0.1 or 1.0
        image = axis.imshow(grid[None, :, c], aspect="auto", cmap=_colormap(), vmin=-scale, vmax=scale,
                            extent=(*extent_x, low - pad, high + pad), interpolation="nearest")
        axis.plot(times, values, color="#111111", linewidth=1.0)
        axis.set_ylabel(expl.channel_names[c], rotation=0, ha="right", va="center")
        axis.set_yticks([])
    axes[-1, 0].set_xlabel("time")
    label = expl.rows[row].get("label")
    figure.suptitle(f"{expl.method} · {label} · score: {expl.score}", fontsize=10)
    figure.colorbar(image, ax=axes[:, 0].tolist(), shrink=0.8, label="attribution")
    if path is not None:
        figure.savefig(path, dpi=110, bbox_inches="tight")
    return figure


def plot_channel_importance(expl: SeriesExplanation, row: int = 0, *, path: str | Path | None = None) -> Any:
    """Horizontal bars of `channel_totals(row)` (Σ over time per channel), largest |total| on top."""
    from matplotlib.figure import Figure

    totals = expl.channel_totals(row)
    names = sorted(totals, key=lambda name: abs(totals[name]))
    values = np.array([totals[name] for name in names])
    colors = [tuple(v / 255 for v in (POSITIVE_RGB if value > 0 else NEGATIVE_RGB)) for value in values]
    figure = Figure(figsize=(6, 0.6 + 0.35 * len(names)))
    axis = figure.subplots()
    axis.barh(names, values, color=colors)
    axis.axvline(0, color="#111111", linewidth=0.8)
    axis.set_xlabel("Σ over time of the attributions")
    axis.set_title(f"{expl.method} · {expl.rows[row].get('label')}", fontsize=10)
    if path is not None:
        figure.savefig(path, dpi=110, bbox_inches="tight")
    return figure
