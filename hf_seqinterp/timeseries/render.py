r"""The HTML view of series explanations: per row, an SVG with one band per channel, the cells of
the (time, channel) grid coloured by their attributions behind the channel's series, and the
channel totals (variable importance) as bars.

Colours are the text heat map's (`hf_seqinterp.visualize.attribution_rgb`): for a row with
attributions A and scale s = max |A| (1 if all are 0), cell (t, c) is

    t   = min(1, |A[t, c]| / s)
    rgb = round(255 + t · (C − 255)) per channel,  C = POSITIVE_RGB if A > 0 else NEGATIVE_RGB

Unobserved cells are grey. Each cell carries its attribution in `data-attribution` and a tooltip;
the series line is drawn over the band, scaled to the channel's own range. The page is
self-contained (inline SVG and CSS, no scripts, nothing fetched) and every piece of text is escaped:
channel names and labels are data, never markup.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..visualize import attribution_rgb, html_document
from .explanation import SeriesExplanation

CELL_WIDTH, BAND_HEIGHT, LABEL_WIDTH, GAP = 6.0, 34.0, 90.0, 4.0
MISSING_RGB = (209, 213, 219)

_CSS = (
    ".hfsi-series{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:0.8em 0;color:#1f2937}"
    ".hfsi-series .hfsi-header{font-size:0.85em;color:#4b5563;margin-bottom:0.3em}"
    ".hfsi-series .hfsi-header b{color:#1f2937}"
    ".hfsi-series svg{display:block;overflow:visible}"
    ".hfsi-series text{font-size:11px;fill:#374151}"
    ".hfsi-totals{border-collapse:collapse;font-size:0.8em;margin-top:0.4em}"
    ".hfsi-totals td{padding:0.05em 0.4em;white-space:nowrap}"
    ".hfsi-bar{display:inline-block;height:0.75em;vertical-align:-0.05em;border-radius:0.15em}"
    ".hfsi-series .hfsi-warning{font-size:0.8em;color:#9a3412}"
)


def _rgb(color: tuple[int, int, int]) -> str:
    return f"rgb({color[0]},{color[1]},{color[2]})"


def _header(expl: SeriesExplanation, row: int) -> str:
    described = expl.rows[row]
    score = described.get("input_score")
    parts = [f"<b>{html.escape(expl.method)}</b>", f"row: <b>{html.escape(str(described.get('label')))}</b>"]
    if score is not None:
        parts.append(f"{html.escape(expl.score)} {float(score):.4g}")
    if expl.kind == "classification" and len(expl.outputs):
        top = int(np.argmax(expl.outputs))
        parts.append(f"predicted <b>{html.escape(str(expl.output_labels[top]))}</b> ({float(expl.outputs[top]):.1%})")
    if expl.model_name:
        parts.append(f"model {html.escape(expl.model_name)}")
    return f'<div class="hfsi-header">{" · ".join(parts)}</div>'


def _band(expl: SeriesExplanation, grid: np.ndarray, c: int, scale: float, top: float) -> list[str]:
    """Channel c's cells, its name and its series line, in the band starting at y = top."""
    name = html.escape(expl.channel_names[c])
    observed = expl.observed[:, c] if expl.observed is not None else np.ones(len(grid), dtype=bool)
    out = [f'<text x="{LABEL_WIDTH - 6:.1f}" y="{top + BAND_HEIGHT / 2 + 4:.1f}" text-anchor="end">{name}</text>']
    for t, value in enumerate(grid[:, c]):
        fill = _rgb(attribution_rgb(float(value), scale) if observed[t] else MISSING_RGB)
        tip = f"{name} · t={expl.times[t]:g}: {float(value):+.4g}" + ("" if observed[t] else " (not observed)")
        out.append(
            f'<rect class="hfsi-cell" data-t="{t}" data-c="{c}" data-attribution="{float(value):.9g}" '
            f'x="{LABEL_WIDTH + t * CELL_WIDTH:.1f}" y="{top:.1f}" width="{CELL_WIDTH:.1f}" height="{BAND_HEIGHT:.1f}" '
            f'fill="{fill}"><title>{tip}</title></rect>'
        )
    values = expl.values[:, c].astype(np.float64)
    low, high = float(values[observed].min(initial=0.0)), float(values[observed].max(initial=0.0))
    span = (high - low) or 1.0
    ys = top + BAND_HEIGHT - 3 - (values - low) / span * (BAND_HEIGHT - 6)
    xs = LABEL_WIDTH + (np.arange(len(values)) + 0.5) * CELL_WIDTH
    points = " ".join(f"{x:.1f},{y:.1f}" for x, y, seen in zip(xs, ys, observed) if seen)
    out.append(f'<polyline class="hfsi-line" data-c="{c}" points="{points}" fill="none" stroke="#111827" stroke-width="1.2"/>')
    return out


def _totals(expl: SeriesExplanation, row: int) -> str:
    """Channel totals Σ_t A[row, t, c], largest |total| first, as bars on one scale."""
    totals = expl.channel_totals(row)
    largest = max((abs(v) for v in totals.values()), default=0.0) or 1.0
    cells = []
    for name, value in sorted(totals.items(), key=lambda item: -abs(item[1])):
        color = _rgb(attribution_rgb(value, largest))
        cells.append(
            f'<tr class="hfsi-total" data-total="{value:.9g}"><td>{html.escape(name)}</td>'
            f'<td><span class="hfsi-bar" style="width:{abs(value) / largest * 12:.2f}em;background:{color}"></span></td>'
            f"<td>{value:+.4g}</td></tr>"
        )
    return f'<table class="hfsi-totals"><caption>channel totals (Σ over time)</caption>{"".join(cells)}</table>'


def series_row_html(expl: SeriesExplanation, row: int = 0, *, index: int = 0) -> str:
    """One row of one explanation: header, the time × channel SVG and the channel totals."""
    grid = expl.grid(row)
    top = float(np.abs(grid).max()) if grid.size else 0.0
    scale = top if top > 0 else 1.0
    n_time, n_channels = grid.shape
    width = LABEL_WIDTH + n_time * CELL_WIDTH
    height = n_channels * (BAND_HEIGHT + GAP)
    shapes = [piece for c in range(n_channels) for piece in _band(expl, grid, c, scale, c * (BAND_HEIGHT + GAP))]
    svg = (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
        f'viewBox="0 0 {width:.1f} {height:.1f}" role="img" aria-label="attributions over time and channel">'
        + "".join(shapes) + "</svg>"
    )
    warnings = "".join(f'<div class="hfsi-warning">⚠ {html.escape(w)}</div>' for w in expl.warnings)
    return (
        f'<div class="hfsi-series" data-explanation="{index}" data-row="{row}" data-scale="{scale:.9g}">'
        f"{_header(expl, row)}{svg}{_totals(expl, row)}{warnings}</div>"
    )


def render_series_html(
    explanations: SeriesExplanation | Sequence[SeriesExplanation], *, full_page: bool = True, title: str = "Series explanations"
) -> str:
    """HTML for one or more series explanations, every row of each; `full_page=False` gives a
    fragment (notebooks)."""
    items = [explanations] if isinstance(explanations, SeriesExplanation) else list(explanations)
    body = "\n".join(series_row_html(expl, r, index=k) for k, expl in enumerate(items) for r in range(expl.n_rows))
    return html_document(body, title=title, full_page=full_page, css=_CSS)


def save_series_html(
    explanations: SeriesExplanation | Sequence[SeriesExplanation], path: str | Path, *, title: str = "Series explanations"
) -> Path:
    """Write `render_series_html` as a self-contained page; returns the path."""
    path = Path(path)
    path.write_text(render_series_html(explanations, title=title), encoding="utf-8")
    return path
