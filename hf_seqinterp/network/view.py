"""A unit's activation over texts as a heat map (Karpathy et al. 2015's cell view), and a page of
its top contexts; the colours and markup are the explanation heat map's (`visualize`).

Colour of token t: `attribution_rgb(a_u(t), s)` with s the largest |a_u| over the non-special tokens
of every text on the page, so one page compares its texts on one scale (green > 0, red < 0).
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import datasets
import numpy as np

from ..adapter import Encoding, ModelAdapter
from ..errors import InvalidParameterError
from ..mixin import as_adapter
from ..validation import check_batch_size, validate_texts
from ..visualize import _cell, display_tokens, html_document
from .units import UnitGroup, capture, run, unit_groups

#: the hit of a top context: outlined
HIT_CSS = ".hfsi-hit{outline:2px solid currentColor;outline-offset:1px}"


def unit_activations(
    model: ModelAdapter | Any,
    texts: str | Sequence[str],
    *,
    kind: str = "ffn",
    layer: int = 0,
    unit: int = 0,
    tokenizer: Any = None,
    batch_size: int | None = None,
    truncation: bool = True,
) -> list[tuple[Encoding, np.ndarray]]:
    """(encoding, activation of `unit` at every token) for each text (see `network.units` for the kinds)."""
    adapter = as_adapter(model, tokenizer)
    group = _group(adapter, kind, layer, unit)
    encodings = adapter.encode(validate_texts([texts] if isinstance(texts, str) else texts), truncation=truncation)
    size = check_batch_size(batch_size) or 32
    out = []
    with adapter.evaluating(), capture(adapter, [group]) as captured:
        for start in range(0, len(encodings), size):
            batch = adapter.collate(encodings[start : start + size])
            run(adapter, batch)
            values = captured.pop(group.name)[..., unit].cpu().numpy()
            out += [(enc, values[i, batch.token_slice(i)]) for i, enc in enumerate(batch.encodings)]
    return out


def _group(adapter: ModelAdapter, kind: str, layer: int, unit: int) -> UnitGroup:
    (group,) = unit_groups(adapter, kind, layer)
    if not isinstance(unit, int) or not 0 <= unit < group.size:
        raise InvalidParameterError(f"unit={unit!r}: {kind} units of block {group.layer} are 0 to {group.size - 1}.")
    return group


def _heat_map(enc: Encoding, values: np.ndarray, scale: float, header: str, hit: int | None = None) -> str:
    cells = []
    for i, ((shown, gap), value, special) in enumerate(zip(display_tokens(enc), values, enc.special_tokens_mask)):
        cls = "hfsi-token" + (" hfsi-special" if special else "") + (" hfsi-hit" if i == hit else "")
        cells.append((" " if gap else "") + _cell(shown, float(value), scale, cls, f'data-index="{i}"', enc.tokens[i]))
    return (
        f'<div class="hfsi-explanation"><div class="hfsi-header">{header}</div>'
        f'<div class="hfsi-tokens">{"".join(cells)}</div></div>'
    )


def _scale(pairs: Sequence[tuple[Encoding, np.ndarray]]) -> float:
    tops = [np.abs(v[~np.asarray(e.special_tokens_mask, dtype=bool)]).max(initial=0.0) for e, v in pairs]
    top = float(max(tops, default=0.0))
    return top if top > 0 else 1.0


def activation_html(
    model: ModelAdapter | Any,
    texts: str | Sequence[str],
    *,
    kind: str = "ffn",
    layer: int = 0,
    unit: int = 0,
    tokenizer: Any = None,
    full_page: bool = True,
) -> str:
    """HTML heat map of one unit's activation over each text (one colour scale for all of them)."""
    adapter = as_adapter(model, tokenizer)
    pairs = unit_activations(adapter, texts, kind=kind, layer=layer, unit=unit)
    scale = _scale(pairs)
    name = f"{kind} {unit} of block {layer % len(adapter.layers)}"
    body = "\n".join(
        _heat_map(enc, values, scale, f"<b>{html.escape(name)}</b> · max {values.max():.4g}") for enc, values in pairs
    )
    legend = f'<div class="hfsi-legend">full colour at |activation| ≥ {scale:.3g}</div>'
    return html_document(body + legend, title=name, full_page=full_page)


def top_contexts_html(
    result: datasets.Dataset,
    model: ModelAdapter | Any,
    texts: Sequence[str] | datasets.Dataset,
    *,
    kind: str,
    layer: int,
    unit: int,
    text_column: str | None = None,
    tokenizer: Any = None,
    path: str | Path | None = None,
) -> str:
    """A page of one unit's top contexts from a `top_activations` result: per rank, the unit's heat
    map over the whole text with the max-activating token outlined. `texts` is the dataset the
    result was computed on. Written to `path` when given; returns the HTML."""
    from ..data import text_column as find_text_column

    if isinstance(texts, datasets.Dataset):
        texts = texts[find_text_column(texts, text_column)]
    adapter = as_adapter(model, tokenizer)
    layer = _group(adapter, kind, layer, unit).layer
    rows = result.filter(lambda r: r["kind"] == kind and r["layer"] == layer and r["unit"] == unit)
    if len(rows) == 0:
        raise InvalidParameterError(
            f"The result holds no contexts of {kind} unit {unit} of block {layer}; it covers "
            f"{sorted(set(zip(result['kind'], result['layer'])))} (kind, block)."
        )
    pairs = unit_activations(adapter, [texts[i] for i in rows["text_index"]], kind=kind, layer=layer, unit=unit)
    scale = _scale(pairs)
    name = f"{kind} {unit} of block {layer}"
    body = "\n".join(
        _heat_map(enc, values, scale, f"#{row['rank']} · {row['activation']:.4g} · text {row['text_index']}",
                  hit=row["position"])
        for (enc, values), row in zip(pairs, rows)
    )
    title = (
        f'<div class="hfsi-header"><b>Top contexts of {html.escape(name)}</b> · {len(rows)} contexts · '
        f"full colour at |activation| ≥ {scale:.3g}</div>"
    )
    page = html_document(title + body, title=f"Top contexts of {name}", css=HIT_CSS)
    if path is not None:
        Path(path).write_text(page, encoding="utf-8")
    return page
