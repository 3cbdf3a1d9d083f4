"""The HTML heat map, rendered by a real headless Chromium.

The page written by `save_html` is copied with a small probe script appended; Chromium loads it,
the script reads each token's *computed* background colour, text and on-screen box, and
`--dump-dom` returns them. The expected colour of every token is recomputed here from its
attribution with the formula documented in hf_seqinterp.visualize (independently of its code).
"""

from __future__ import annotations

import re

import numpy as np
import pytest
from browser import CHROMIUM, probe_page
from tiny_models import random_texts, tiny_model

import hf_seqinterp as hsi
from hf_seqinterp import ModelAdapter, save_html

pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="no Chromium found (CI installs Debian's `chromium`; apt-get install chromium)"
)

PROBE = """
<script>
const rows = [...document.querySelectorAll('span.hfsi-token')].map(el => {
  const box = el.getBoundingClientRect();
  return {explanation: +el.closest('[data-explanation]').dataset.explanation, index: +el.dataset.index,
          text: el.textContent, color: getComputedStyle(el).backgroundColor,
          visible: box.width > 0 && box.height > 0 && getComputedStyle(el).visibility === 'visible'};
});
const out = document.createElement('pre'); out.id = 'probe'; out.textContent = JSON.stringify(rows);
document.body.appendChild(out);
</script>
"""


def expected_rgb(value: float, scale: float) -> tuple[int, int, int]:
    """The documented mapping: white -> green (22,163,74) for support, white -> red (220,38,38) against."""
    t = min(1.0, abs(value) / scale)
    end = (22, 163, 74) if value > 0 else (220, 38, 38)
    return tuple(255 + t * (c - 255) for c in end)


def render_in_chromium(page_html: str, tmp_path, probe: str = PROBE, *, dark: bool = False) -> list[dict]:
    return probe_page(page_html, probe, tmp_path, dark=dark)


def rgb(css: str) -> tuple[int, ...]:
    return tuple(int(float(v)) for v in re.findall(r"[\d.]+", css)[:3])


def test_every_token_is_shown_with_the_colour_its_attribution_implies(tmp_path):
    adapter = ModelAdapter(*tiny_model("bert"))
    expls = hsi.explain(random_texts(4, seed=21), adapter, method="integrated_gradients", n_steps=8)
    expls.append(hsi.explain("a terribly dull film", adapter, method="saliency"))
    path = tmp_path / "page.html"
    save_html(expls, str(path))
    page = path.read_text(encoding="utf-8")
    assert not re.search(r"(src|href)\s*=|@import|url\(|<script", page)  # nothing to fetch

    rows = render_in_chromium(page, tmp_path)
    assert len(rows) == sum(len(e.tokens) for e in expls)
    for row in rows:
        expl = expls[row["explanation"]]
        i = row["index"]
        real = ~np.asarray(expl.special_tokens_mask)
        scale = float(np.abs(expl.attributions[real]).max()) or 1.0
        want = expected_rgb(float(expl.attributions[i]), scale)
        got = rgb(row["color"])
        assert all(abs(g - w) <= 1 for g, w in zip(got, want)), (expl.tokens[i], got, want)
        assert row["visible"], expl.tokens[i]
        start, end = expl.offsets[i]
        shown = expl.tokens[i] if expl.special_tokens_mask[i] else expl.text[start:end].strip()
        assert row["text"] == shown
    # the strongest token of each explanation is fully coloured
    for k, expl in enumerate(expls):
        real = np.flatnonzero(~np.asarray(expl.special_tokens_mask))
        top = int(real[np.argmax(np.abs(expl.attributions[real]))])
        color = next(r["color"] for r in rows if r["explanation"] == k and r["index"] == top)
        assert color in ("rgb(22, 163, 74)", "rgb(220, 38, 38)")


WORD_PROBE = """
<script>
const rows = [...document.querySelectorAll('span.hfsi-word')].map(el => ({
  index: +el.dataset.word, text: el.textContent, color: getComputedStyle(el).backgroundColor,
  ink: getComputedStyle(el).color}));
const page = getComputedStyle(document.body).backgroundColor;
const legend = getComputedStyle(document.querySelector('.hfsi-legend')).color;
const out = document.createElement('pre'); out.id = 'probe';
out.textContent = JSON.stringify({rows, page, legend}); document.body.appendChild(out);
</script>
"""


def test_word_view_light_and_dark(tmp_path):
    adapter = ModelAdapter(*tiny_model("bert"))
    expl = hsi.explain("an unbelievably clumsy script", adapter, method="integrated_gradients", n_steps=8)
    words = expl.to_words()
    scale = max(abs(w.score) for w in words)
    page = hsi.render_html([expl], level="word", true_label=0)

    light = render_in_chromium(page, tmp_path, WORD_PROBE)
    assert [r["text"] for r in light["rows"]] == [w.text for w in words]
    for row, word in zip(light["rows"], words):
        want = expected_rgb(word.score, scale)
        assert all(abs(g - w) <= 1 for g, w in zip(rgb(row["color"]), want)), (word.text, row["color"], want)
    assert rgb(light["page"]) in ((0, 0, 0), (255, 255, 255)) and rgb(light["legend"]) == (31, 41, 55)

    dark = render_in_chromium(page, tmp_path / "dark", WORD_PROBE, dark=True)
    assert rgb(dark["page"]) == (17, 24, 39) and rgb(dark["legend"]) == (229, 231, 235)  # light text, dark page
    for row, word in zip(dark["rows"], words):
        t = min(1.0, abs(word.score) / scale)
        end = (22, 163, 74) if word.score > 0 else (220, 38, 38)
        assert re.match(r"rgba?\(", row["color"]) and rgb(row["ink"]) == (249, 250, 251)
        alpha = float(re.findall(r"[\d.]+", row["color"])[3]) if row["color"].startswith("rgba") else 1.0
        assert rgb(row["color"]) == end and abs(alpha - t) < 0.01, (word.text, row["color"], t)
