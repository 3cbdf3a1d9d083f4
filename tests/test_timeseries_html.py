"""The HTML view of series explanations: every cell of every row is drawn with the colour its
attribution implies (recomputed here from the documented formula), the series lines and channel
totals are there, text is escaped, nothing is fetched — checked in the markup and, where Chromium
is installed, as rendered by a real browser."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import numpy as np
import pytest
from browser import CHROMIUM, probe_page
from timeseries_models import tiny_series_model

from hf_seqinterp.timeseries import SeriesAdapter, explain_series, render_series_html, save_series_html


def expected_rgb(value: float, scale: float) -> tuple[int, int, int]:
    t = min(1.0, abs(value) / scale)
    end = (22, 163, 74) if value > 0 else (220, 38, 38)
    return tuple(round(255 + t * (c - 255)) for c in end)


class Cells(HTMLParser):
    """Collects the attributes of every cell, line and channel total, and the visible text."""

    def __init__(self):
        super().__init__()
        self.cells, self.lines, self.totals, self.text = [], [], [], []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "rect" and attrs.get("class") == "hfsi-cell":
            self.cells.append(attrs)
        elif tag == "polyline":
            self.lines.append(attrs)
        elif tag == "tr" and attrs.get("class") == "hfsi-total":
            self.totals.append(float(attrs["data-total"]))

    def handle_data(self, data):
        self.text.append(data)


@pytest.fixture(scope="module")
def explanations():
    names = ["<b>acc</b>", "gyro & co", "x"]
    adapter = SeriesAdapter(tiny_series_model(), channel_names=names)
    x = np.random.default_rng(3).normal(size=(2, 24, 3)).astype(np.float32)
    x[1, 5, 2] = np.nan  # an unobserved cell
    return explain_series(adapter, x, "integrated_gradients", target=[0, "all"], n_steps=8)


def test_every_cell_line_and_total_is_in_the_markup(explanations):
    page = render_series_html(explanations)
    assert not re.search(r"(src|href)\s*=|@import|url\(|<script", page)  # nothing to fetch, no scripts
    assert "<b>acc</b>" not in page and "&lt;b&gt;acc&lt;/b&gt;" in page and "gyro &amp; co" in page
    parsed = Cells()
    parsed.feed(page)
    n_rows = sum(e.n_rows for e in explanations)
    assert len(parsed.cells) == n_rows * 24 * 3 and len(parsed.lines) == n_rows * 3
    k = 0
    for expl in explanations:
        for r in range(expl.n_rows):
            grid = expl.grid(r)
            scale = float(np.abs(grid).max())
            row_cells, k = parsed.cells[k : k + 72], k + 72
            assert sorted((int(a["data-t"]), int(a["data-c"])) for a in row_cells) == [(t, c) for t in range(24) for c in range(3)]
            for cell in row_cells:
                t, c = int(cell["data-t"]), int(cell["data-c"])
                value = float(cell["data-attribution"])
                assert value == pytest.approx(float(grid[t, c]), rel=1e-6, abs=1e-12)
                seen = expl.observed is None or expl.observed[t, c]
                want = expected_rgb(float(grid[t, c]), scale) if seen else (209, 213, 219)
                assert cell["fill"] == "rgb({},{},{})".format(*want), (t, c)
    totals = [v for e in explanations for r in range(e.n_rows) for v in sorted(e.channel_totals(r).values(), key=lambda v: -abs(v))]
    np.testing.assert_allclose(parsed.totals, totals, rtol=1e-6)
    # the unobserved cell is left out of its channel's line
    second = explanations[1]
    line = next(a for a in parsed.lines[3 * explanations[0].n_rows :] if a["data-c"] == "2")
    assert len(line["points"].split()) == 23 and second.observed is not None and not second.observed[5, 2]


def test_save_and_notebook_views(explanations, tmp_path):
    path = save_series_html(explanations, tmp_path / "series.html")
    page = path.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and page.count('class="hfsi-series"') == sum(e.n_rows for e in explanations)
    fragment = explanations[1]._repr_html_()
    assert not fragment.startswith("<!DOCTYPE") and fragment.count('class="hfsi-series"') == explanations[1].n_rows


PROBE = """
<script>
const cells = [...document.querySelectorAll('rect.hfsi-cell')].map(el => {
  const box = el.getBoundingClientRect();
  return {row: +el.closest('[data-row]').dataset.row, explanation: +el.closest('[data-explanation]').dataset.explanation,
          t: +el.dataset.t, c: +el.dataset.c, fill: getComputedStyle(el).fill, x: box.x, y: box.y,
          w: box.width, h: box.height};
});
const lines = [...document.querySelectorAll('polyline.hfsi-line')].map(el => el.getBoundingClientRect().width);
const out = document.createElement('pre'); out.id = 'probe';
out.textContent = JSON.stringify({cells, lines}); document.body.appendChild(out);
</script>
"""


@pytest.mark.skipif(CHROMIUM is None, reason="no Chromium found (CI installs Debian's `chromium`)")
def test_chromium_draws_each_cell_in_its_place_and_colour(explanations, tmp_path):
    found = probe_page(render_series_html(explanations), PROBE, tmp_path)
    cells = found["cells"]
    assert len(cells) == sum(e.n_rows for e in explanations) * 72
    for cell in cells:
        expl = explanations[cell["explanation"]]
        grid = expl.grid(cell["row"])
        t, c = cell["t"], cell["c"]
        seen = expl.observed is None or expl.observed[t, c]
        want = expected_rgb(float(grid[t, c]), float(np.abs(grid).max())) if seen else (209, 213, 219)
        got = tuple(int(v) for v in re.findall(r"\d+", cell["fill"])[:3])
        assert all(abs(g - w) <= 1 for g, w in zip(got, want)), (cell, want)
        assert cell["w"] > 0 and cell["h"] > 0
    # cells of one row form a grid: later steps to the right, later channels below
    first = [cell for cell in cells if cell["explanation"] == 0 and cell["row"] == 0]
    at = {(cell["t"], cell["c"]): cell for cell in first}
    assert at[(1, 0)]["x"] > at[(0, 0)]["x"] and at[(0, 1)]["y"] > at[(0, 0)]["y"]
    assert all(width > 0 for width in found["lines"])
