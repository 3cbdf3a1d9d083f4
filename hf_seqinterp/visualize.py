"""Rendering of Explanations: self-contained HTML and terminal heat maps, and Markdown tables.

Colour of a token with attribution a, for an explanation whose scale s is the largest |a| over its
non-special tokens (1 if all are 0):

    t   = min(1, |a| / s)
    rgb = round(255 + t · (C − 255)) per channel,  C = POSITIVE_RGB if a > 0 else NEGATIVE_RGB

so 0 is white, the strongest evidence for the target full green, the strongest against full red.
The HTML carries the same numbers as data attributes, uses inline CSS only, and loads nothing from
the network. Under `prefers-color-scheme: dark` the same colours are blended into the dark page
instead of white (rgba with alpha t). Every piece of text in the HTML is escaped: explained texts,
labels and tokens are data, never markup.
"""

from __future__ import annotations

import html
import os
import re
import sys
from collections.abc import Callable, Sequence
from typing import Any, Literal

import numpy as np

from .errors import InvalidInputError
from .explanation import Explanation, row_name

POSITIVE_RGB = (22, 163, 74)
NEGATIVE_RGB = (220, 38, 38)


def color_scale(expl: Explanation) -> float:
    """The |attribution| that maps to full colour: the largest over non-special tokens (and over
    every row of a target axis)."""
    values = np.abs(expl.attributions[..., ~np.asarray(expl.special_tokens_mask, dtype=bool)])
    top = float(values.max()) if values.size else 0.0
    return top if top > 0 else 1.0


def attribution_rgb(value: float, scale: float) -> tuple[int, int, int]:
    """Background colour for one attribution (see the module docstring)."""
    t = min(1.0, abs(float(value)) / scale) if scale > 0 else 0.0
    target = POSITIVE_RGB if value > 0 else NEGATIVE_RGB
    return tuple(round(255 + t * (c - 255)) for c in target)  # type: ignore[return-value]


def _text_rgb(background: tuple[int, int, int]) -> str:
    luminance = 0.2126 * background[0] + 0.7152 * background[1] + 0.0722 * background[2]
    return "#ffffff" if luminance < 140 else "#111111"


def display_tokens(expl: Explanation) -> list[tuple[str, bool]]:
    """(text shown for each token, whether a space precedes it).

    Real tokens show the characters they cover in the input (so "##ing" or "Ġgood" read as in the
    text); special tokens show their token string.
    """
    out = []
    prev_end: int | None = None  # end offset of the previous real token; None after a special one
    for i, (token, (start, end), special) in enumerate(zip(expl.tokens, expl.offsets, expl.special_tokens_mask)):
        if special or end <= start:
            out.append((token, i > 0))
            prev_end = None
            continue
        piece = expl.covered_text(i)
        stripped = piece.lstrip()
        lead = len(piece) - len(stripped)
        gap = i > 0 and (prev_end is None or lead > 0 or start > prev_end)
        out.append((stripped.rstrip() or piece, gap))
        prev_end = end
    return out


def _target_name(expl: Explanation) -> str:
    """The explained target: its label (with the covered text for a token classifier's row), else its id."""
    if expl.target_label is None:
        return str(expl.target)
    return row_name(expl.extras) if "text" in expl.extras else expl.target_label


def _header(expl: Explanation) -> str:
    target = _target_name(expl)
    parts = [f"method: {expl.method}", f"target: {target}"]
    if expl.target < len(expl.probabilities):
        parts.append(f"p(target) = {expl.probabilities[expl.target]:.3f}")
    elif isinstance(expl.extras.get("probability"), float):  # a row of a target axis
        parts.append(f"p(target) = {expl.extras['probability']:.3f}")
    if expl.labels:
        parts.append(f"predicted: {expl.predicted_label}")
    parts.append(f"score: {expl.score}")
    return " · ".join(parts)


_CSS = (
    ".hfsi-matrix{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:0.6em 0;overflow-x:auto}"
    ".hfsi-matrix table{border-collapse:collapse;font-size:0.75em}"
    ".hfsi-matrix th,.hfsi-matrix td{border:1px solid #d1d5db;padding:0.15em 0.3em;text-align:center;white-space:pre}"
    ".hfsi-matrix td.hfsi-unseen{background:repeating-linear-gradient(45deg,#f3f4f6,#f3f4f6 3px,#e5e7eb 3px,#e5e7eb 6px)}"
    ".hfsi-explanation{--hfsi-fg:#1f2937;--hfsi-muted:#4b5563;color:var(--hfsi-fg);"
    "font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:0.6em 0;line-height:2.1;max-width:60em}"
    ".hfsi-header{font-size:0.85em;color:var(--hfsi-muted);margin-bottom:0.2em;line-height:1.5}"
    ".hfsi-header b{color:var(--hfsi-fg)}"
    ".hfsi-right{color:#15803d}.hfsi-wrong{color:#b91c1c}"
    ".hfsi-token,.hfsi-word{padding:0.15em 0.1em;border-radius:0.25em}"
    ".hfsi-special{font-size:0.75em;font-family:ui-monospace,monospace;opacity:0.8}"
    ".hfsi-warning{font-size:0.8em;color:#9a3412}"
    ".hfsi-legend{font-size:0.8em;color:var(--hfsi-fg);line-height:1.6;margin-top:0.2em}"
    ".hfsi-swatch{display:inline-block;width:0.9em;height:0.9em;border-radius:0.2em;vertical-align:-0.1em;"
    "border:1px solid var(--hfsi-muted)}"
    ".hfsi-ramp{display:inline-block;width:7em;height:0.7em;border-radius:0.2em;vertical-align:0;"
    "margin:0 0.4em;border:1px solid var(--hfsi-muted)}"
    ".hfsi-hierarchy{margin-top:0.5em;line-height:2.4}"
    ".hfsi-level{white-space:nowrap}"
    ".hfsi-level-label{display:inline-block;width:4.5em;font-size:0.75em;color:#555}"
    ".hfsi-phrase{padding:0.15em 0.3em;border:1px solid #888;border-radius:0.35em}"
    ".hfsi-unselected{color:#aaa;padding:0.15em 0.1em}"
    ".hfsi-phrase sup{font-size:0.65em;margin-left:0.2em}"
    ".hfsi-entities{line-height:2.2;max-width:60em}"
    ".hfsi-entity{padding:0.1em 0.3em;border:1px solid #6b7280;border-radius:0.35em;background:#eef2ff;color:#111}"
    ".hfsi-entity sup{font-size:0.65em;margin-left:0.25em;font-weight:bold}"
    "@media (prefers-color-scheme:dark){"
    ".hfsi-page{background:#111827;color:#e5e7eb}"
    ".hfsi-explanation{--hfsi-fg:#e5e7eb;--hfsi-muted:#9ca3af}"
    ".hfsi-right{color:#4ade80}.hfsi-wrong{color:#f87171}.hfsi-warning{color:#fdba74}"
    f".hfsi-for{{background-color:rgba({','.join(map(str, POSITIVE_RGB))},var(--hfsi-t))!important;color:#f9fafb!important}}"
    f".hfsi-against{{background-color:rgba({','.join(map(str, NEGATIVE_RGB))},var(--hfsi-t))!important;"
    "color:#f9fafb!important}"
    ".hfsi-ramp{background:linear-gradient(to right,rgb(220,38,38),#111827,rgb(22,163,74))!important}}"
)

#: extras key -> renderer(explanation, extras[key]) of an HTML section shown under the heat map
EXTRAS_HTML: dict[str, Callable[[Explanation, Any], str]] = {}


def segment_starts(expl: Explanation) -> set[int]:
    """Token positions where a sentence pair's second segment starts (views break the line there)."""
    if expl.segment_ids is None:
        return set()
    return {next(i for i, seg in enumerate(expl.segment_ids) if seg == 1)} if 1 in expl.segment_ids else set()


def _cell(shown: str, value: float, scale: float, cls: str, attrs: str, title: str) -> str:
    """One coloured span: light-mode colour inline, the intensity t in --hfsi-t for the dark palette."""
    bg = attribution_rgb(value, scale)
    t = min(1.0, abs(value) / scale) if scale > 0 else 0.0
    side = "hfsi-for" if value > 0 else "hfsi-against"
    return (
        f'<span class="{cls} {side}" {attrs} data-attribution="{value:.9g}" '
        f'title="{html.escape(title)}: {value:+.4g}" '
        f'style="--hfsi-t:{t:.3f};background-color:rgb({bg[0]},{bg[1]},{bg[2]});color:{_text_rgb(bg)}">'
        f"{html.escape(shown)}</span>"
    )


def _token_cells(expl: Explanation) -> tuple[list[str], float]:
    scale = color_scale(expl)
    cells = []
    breaks = segment_starts(expl)
    for i, ((shown, gap), value, special) in enumerate(
        zip(display_tokens(expl), expl.attributions, expl.special_tokens_mask)
    ):
        cls = "hfsi-token hfsi-special" if special else "hfsi-token"
        lead = '<br class="hfsi-segment">' if i in breaks else " " if gap else ""
        cells.append(lead + _cell(shown, float(value), scale, cls, f'data-index="{i}"', expl.tokens[i]))
    return cells, scale


def _word_cells(expl: Explanation) -> tuple[list[str], float]:
    """Sub-words merged into words (`to_words()`, the method's aggregation); special tokens left out."""
    words = expl.to_words()
    scale = max((abs(w.score) for w in words), default=0.0) or 1.0
    cells = []
    for k, word in enumerate(words):
        new_segment = k > 0 and word.segment != words[k - 1].segment
        gap = k > 0 and word.start > words[k - 1].end
        cells.append(('<br class="hfsi-segment">' if new_segment else " " if gap else "") + _cell(word.text, word.score, scale, "hfsi-word", f'data-word="{k}"', word.text))
    return cells, scale


def _label_name(expl: Explanation, label: int | str) -> str:
    if isinstance(label, (int, np.integer)) and 0 <= int(label) < len(expl.labels):
        return expl.labels[int(label)]
    return str(label)


def _summary_html(expl: Explanation, true_label: int | str | None) -> str:
    """The header line: method, explained class, prediction, true label, f(x), f(baseline), the total."""
    esc = html.escape
    parts = [f"<b>{esc(expl.method)}</b>", f"explaining <b>{esc(_target_name(expl))}</b>"]
    if isinstance(expl.extras.get("probability"), float):  # a row of a target axis: its target's probability
        parts.append(f"p = {expl.extras['probability']:.3f}")
    if 0 <= expl.predicted < len(expl.probabilities):
        predicted = expl.predicted_label or str(expl.predicted)
        parts.append(f"predicted <b>{esc(predicted)}</b> (p = {expl.probabilities[expl.predicted]:.3f})")
        if true_label is not None:
            truth = _label_name(expl, true_label)
            right = truth == predicted
            mark = '<span class="hfsi-right">✓ right</span>' if right else '<span class="hfsi-wrong">✗ wrong</span>'
            parts.append(f"true label <b>{esc(truth)}</b> {mark}")
    score = esc(str(expl.score))
    for key, name in (("input_score", "f(x)"), ("baseline_score", "f(baseline)")):
        if isinstance(expl.extras.get(key), (int, float)):
            parts.append(f"{name} = {expl.extras[key]:+.3f}")
    total = f"Σ attributions = {float(np.sum(expl.attributions)):+.3f}"
    if isinstance(expl.extras.get("convergence_delta"), (int, float)):
        total += f" (δ = {expl.extras['convergence_delta']:+.2g})"
    parts += [total, f"score: {score}"]
    return '<div class="hfsi-header">' + " · ".join(parts) + "</div>"


def _legend_html(expl: Explanation, scale: float, level: str) -> str:
    target = html.escape(expl.target_label if expl.target_label is not None else str(expl.target))
    pos, neg = attribution_rgb(scale, scale), attribution_rgb(-scale, scale)
    unit = "word" if level == "word" else "token"
    return (
        '<div class="hfsi-legend">'
        f'<span class="hfsi-swatch" style="background-color:rgb{neg}"></span> against {target}'
        f'<span class="hfsi-ramp" style="background:linear-gradient(to right,rgb{neg},#ffffff,rgb{pos})"></span>'
        f'for {target} <span class="hfsi-swatch" style="background-color:rgb{pos}"></span>'
        f" · full colour at |{unit} score| ≥ {scale:.3g}</div>"
    )


def _matrix_html(expl: Explanation) -> str:
    """Rows × tokens for an explanation with a target axis (a causal LM: one line per continuation
    token), on one colour scale for the whole matrix; cells a row cannot see are left blank."""
    esc = html.escape
    scale = color_scale(expl)
    head = "".join(f"<th>{esc(text)}</th>" for text, _ in display_tokens(expl))
    lines = []
    for k, row in enumerate(expl.rows or []):
        cells = []
        for t, value in enumerate(expl.attributions[k]):
            if t >= int(row.get("visible", len(expl.tokens))):
                cells.append('<td class="hfsi-unseen"></td>')
                continue
            rgb = attribution_rgb(float(value), scale)
            cells.append(f'<td style="background-color:rgb{rgb};color:{_text_rgb(rgb)}" title="{float(value):+.4g}">'
                         f"{float(value):+.2f}</td>")
        label = esc(row_name(row))
        lines.append(f'<tr data-row="{k}"><th>{label}</th>{"".join(cells)}</tr>')
    return (
        f'<div class="hfsi-matrix" data-scale="{scale:.9g}"><div class="hfsi-header"><b>{esc(expl.method)}</b> · '
        f"{len(lines)} rows × {len(expl.tokens)} tokens · full colour at |score| ≥ {scale:.3g} · score: {esc(str(expl.score))}"
        f'</div><table><tr><th></th>{head}</tr>{"".join(lines)}</table></div>'
    )


def _entities_html(expl: Explanation) -> str:
    """The text with each row's characters boxed and labelled (a token classifier's words or
    entities), the row number in `data-row`; overlapping rows are shown once, the first one."""
    esc = html.escape
    pieces, done = [], 0
    for k, row in sorted(enumerate(expl.rows or []), key=lambda kr: (kr[1]["start"], kr[0])):
        start, end = int(row["start"]), int(row["end"])
        if start < done:
            continue
        pieces.append(esc(expl.text[done:start]))
        pieces.append(
            f'<span class="hfsi-entity" data-row="{k}" title="p = {float(row.get("probability", 0.0)):.3f}">'
            f'{esc(expl.text[start:end])}<sup>{esc(str(row["label"]))}</sup></span>'
        )
        done = end
    pieces.append(esc(expl.text[done:]))
    return f'<div class="hfsi-explanation hfsi-entities" data-entities="{len(expl.rows or [])}">{"".join(pieces)}</div>'


def _explanation_html(
    expl: Explanation, index: int, level: Literal["token", "word"] = "token", true_label: int | str | None = None
) -> str:
    if level not in ("token", "word"):
        raise ValueError(f"level={level!r}; use 'token' or 'word'.")
    cells, scale = _word_cells(expl) if level == "word" else _token_cells(expl)
    warnings = "".join(f'<div class="hfsi-warning">⚠ {html.escape(w)}</div>' for w in expl.warnings)
    sections = "".join(render(expl, expl.extras[key]) for key, render in EXTRAS_HTML.items() if key in expl.extras)
    return (
        f'<div class="hfsi-explanation" data-explanation="{index}" data-level="{level}" data-scale="{scale:.9g}">'
        f"{_summary_html(expl, true_label)}{warnings}"
        f'<div class="hfsi-tokens">{"".join(cells)}</div>{_legend_html(expl, scale, level)}{sections}</div>'
    )


def render_hierarchy_html(hierarchy: dict[str, Any], *, full_page: bool = False) -> str:
    """A phrase hierarchy (`PhraseHierarchy.to_dict()`) as self-contained HTML; see `_hierarchy_html`."""
    body = _hierarchy_html(hierarchy)
    if not full_page:
        return f"<style>{_CSS}</style>\n{body}"
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>Phrase hierarchy</title>'
        f"<style>{_CSS}</style></head>\n<body>\n{body}\n</body></html>\n"
    )


def _hierarchy_html(hierarchy: dict[str, Any]) -> str:
    """One row per level, tokens at the top. A level's phrases are boxed, coloured by their score
    (the heat-map colours, with s = the largest |score| of any node) and labelled with it; tokens
    not yet in a phrase are grey."""
    nodes = hierarchy["nodes"]
    leaves = [nodes[i] for i in hierarchy["levels"][0]]
    gaps = [k > 0 and leaf["start"] > leaves[k - 1]["end"] for k, leaf in enumerate(leaves)]
    scale = max((abs(n["score"]) for n in nodes), default=0.0) or 1.0
    rows = []
    for depth, level in enumerate(hierarchy["levels"]):
        owner = {t: i for i in level for t in nodes[i]["tokens"]}
        groups: list[list[int]] = []  # runs of leaf positions with the same owner
        for k, leaf in enumerate(leaves):
            node = owner.get(leaf["tokens"][0])
            if groups and node is not None and owner.get(leaves[groups[-1][-1]]["tokens"][0]) == node:
                groups[-1].append(k)
            else:
                groups.append([k])
        pieces = []
        for group in groups:
            words = "".join((" " if gaps[k] and k != group[0] else "") + html.escape(leaves[k]["text"]) for k in group)
            lead = " " if gaps[group[0]] else ""
            node_id = owner.get(leaves[group[0]]["tokens"][0])
            if node_id is None:
                pieces.append(f'{lead}<span class="hfsi-unselected">{words}</span>')
                continue
            node = nodes[node_id]
            bg = attribution_rgb(node["score"], scale)
            pieces.append(
                f'{lead}<span class="hfsi-phrase" data-node="{node_id}" data-score="{node["score"]:.9g}" '
                f'title="{html.escape(node["text"])}: {node["score"]:+.4g}" '
                f'style="background-color:rgb({bg[0]},{bg[1]},{bg[2]});color:{_text_rgb(bg)}">'
                f'{words}<sup>{node["score"]:+.2f}</sup></span>'
            )
        label = "tokens" if depth == 0 else f"level {depth}"
        rows.append(
            f'<div class="hfsi-level" data-level="{depth}"><span class="hfsi-level-label">{label}</span>'
            f'{"".join(pieces)}</div>'
        )
    return (
        f'<div class="hfsi-hierarchy" data-target="{int(hierarchy["target"])}" data-scale="{scale:.9g}">'
        f'<div class="hfsi-header">phrase hierarchy (contextual decomposition scores)</div>{"".join(rows)}</div>'
    )


EXTRAS_HTML["hierarchy"] = lambda expl, value: _hierarchy_html(value)


def render_html(
    explanations: Sequence[Explanation],
    *,
    full_page: bool = True,
    title: str = "Explanations",
    level: Literal["token", "word"] = "token",
    true_label: int | str | Sequence[int | str | None] | None = None,
) -> str:
    """HTML for one or more explanations; `full_page` wraps it in a complete document.

    `level="word"` shows whole words (sub-word scores combined by `to_words()`); `true_label` (a
    class id or label name, or one per explanation) adds the gold label to each header.
    """
    items = list(explanations)
    truths = list(true_label) if isinstance(true_label, (list, tuple)) else [true_label] * len(items)
    if len(truths) != len(items):
        raise ValueError(f"Got {len(truths)} true labels for {len(items)} explanations; pass one per explanation.")
    pieces: list[str] = []
    for expl, truth in zip(items, truths):  # a target axis: its matrix, then one heat map per row
        if expl.rows and all("start" in row for row in expl.rows):  # words or entities of the text
            pieces.append(_entities_html(expl))
        if expl.rows is not None:
            pieces.append(_matrix_html(expl))
        pieces += [_explanation_html(view, len(pieces), level, truth) for view in expl.row_views()]
    return html_document("\n".join(pieces), title=title, full_page=full_page)


def html_document(body: str, *, title: str, full_page: bool = True, css: str = "") -> str:
    """`body` with the heat-map styles (plus `css`): a complete page, or a fragment for a notebook."""
    style = f"<style>{_CSS}{css}</style>"
    if not full_page:
        return f"{style}\n{body}"
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><meta name="color-scheme" content="light dark">'
        f'<title>{html.escape(title)}</title>{style}</head>\n<body class="hfsi-page">\n{body}\n'
        "</body></html>\n"
    )


def save_html(
    explanations: Explanation | Sequence[Explanation],
    path: str,
    *,
    title: str = "Explanations",
    level: Literal["token", "word"] = "token",
    true_label: int | str | Sequence[int | str | None] | None = None,
) -> str:
    """Write a self-contained HTML page (see `render_html`); returns the path."""
    items = [explanations] if isinstance(explanations, Explanation) else list(explanations)
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(render_html(items, title=title, level=level, true_label=true_label))
    return path


#: ANSI/VT escape sequences: CSI (ESC [ ... final), OSC (ESC ] ... BEL or ST), DCS/SOS/PM/APC strings
#: (ESC P/X/^/_ ... ST), and two-character escapes (ESC + one character)
_ESCAPE_SEQUENCE = re.compile(
    r"\x1b(?:\[[0-?]*[ -/]*[@-~]?|\][^\x07\x1b]*(?:\x07|\x1b\\)?|[PX^_][^\x1b]*(?:\x1b\\)?|.?)", re.DOTALL
)
#: C0 controls except tab and newline, DEL, and the C1 controls (U+0080-U+009F, e.g. the 8-bit CSI)
_CONTROL_CHARACTER = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def terminal_safe(text: str, *, newlines: bool = True) -> str:
    """`text` with nothing a terminal would execute: escape sequences removed, other C0/C1 control
    characters and DEL dropped; tabs and newlines kept (with `newlines=False`, each becomes a space).
    Every string that untrusted data can reach (texts, tokens, labels, warnings, errors) goes
    through it before it is printed."""
    text = _CONTROL_CHARACTER.sub("", _ESCAPE_SEQUENCE.sub("", str(text)))
    return text if newlines else text.replace("\r", " ").replace("\n", " ").replace("\t", " ")


def _use_color(color: bool | None) -> bool:
    if color is not None:
        return color
    if os.environ.get("NO_COLOR"):
        return False
    return bool(os.environ.get("FORCE_COLOR")) or sys.stdout.isatty()


def render_terminal(expl: Explanation, *, color: bool | None = None) -> str:
    """Heat map for a terminal: tokens on 24-bit ANSI backgrounds (or `token(+score)` without colour);
    one heat map per row for explanations with a target axis."""
    if expl.rows is not None:
        return "\n\n".join(render_terminal(view, color=color) for view in expl.row_views())
    scale = color_scale(expl)
    colored = _use_color(color)
    pieces = []
    breaks = segment_starts(expl)
    for i, ((shown, gap), value, special) in enumerate(
        zip(display_tokens(expl), expl.attributions, expl.special_tokens_mask)
    ):
        lead = "\n" if i in breaks else " " if gap else ""
        shown = terminal_safe(shown, newlines=False)
        if colored:
            r, g, b = attribution_rgb(float(value), scale)
            fg = "97" if _text_rgb((r, g, b)) == "#ffffff" else "30"
            style = "2;" if special else ""
            pieces.append(f"{lead}\x1b[{style}{fg};48;2;{r};{g};{b}m{shown}\x1b[0m")
        else:
            pieces.append(f"{lead}{shown}({float(value):+.3g})")
    lines = [terminal_safe(_header(expl), newlines=False), "".join(pieces)]
    lines += [f"warning: {terminal_safe(w, newlines=False)}" for w in expl.warnings]
    if colored:
        pr, pg, pb = attribution_rgb(scale, scale)
        nr, ng, nb = attribution_rgb(-scale, scale)
        lines.append(
            f"\x1b[97;48;2;{nr};{ng};{nb}m −{scale:.3g} \x1b[0m against · for \x1b[97;48;2;{pr};{pg};{pb}m +{scale:.3g} \x1b[0m"
        )
    return "\n".join(lines)


_MARKDOWN_SPECIAL = str.maketrans(
    {c: "\\" + c for c in "\\`*_[]|#"} | {"<": "&lt;", ">": "&gt;", "&": "&amp;"}
)


def markdown_text(text: str) -> str:
    """`text` as literal Markdown text on one line: every character Markdown or HTML would read as
    markup (emphasis, links and images, headings, tables, tags, entities, code) is escaped, and
    control characters and line breaks become spaces, so untrusted text cannot add structure."""
    return terminal_safe(text, newlines=False).translate(_MARKDOWN_SPECIAL)


def markdown_code(text: str) -> str:
    """`text` as inline code on one line (for names and parameter values): the backtick fence is
    longer than any backtick run inside, and `|` is escaped so table cells stay intact."""
    text = terminal_safe(text, newlines=False).replace("|", "\\|")
    fence = "`" * (max((len(run) for run in re.findall(r"`+", text)), default=0) + 1)
    pad = " " if text.startswith("`") or text.endswith("`") or not text.strip() else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def markdown_block(text: str, info: str = "text") -> str:
    """`text` as a fenced code block, shown verbatim: the fence is longer than any backtick run in it."""
    text = terminal_safe(text)
    fence = "`" * max(3, max((len(run) for run in re.findall(r"`+", text)), default=0) + 1)
    return f"{fence}{info}\n{text}\n{fence}"


def render_markdown(explanations: Explanation | Sequence[Explanation], *, bold_top: int = 3) -> str:
    """A Markdown table of word scores: one row per word, one column per explanation of the same text.

    For places that render Markdown but not HTML styles (Hub dataset cards, GitHub, notebooks'
    markdown cells): colour is replaced by signed numbers, and the `bold_top` largest |scores| of each
    column are bold. Scores are word scores under each method's default aggregation (`to_words()`).
    """
    items = [explanations] if isinstance(explanations, Explanation) else list(explanations)
    if not items:
        raise InvalidInputError("render_markdown needs at least one explanation.")
    words = [e.to_words() for e in items]
    spans = [(w.segment, w.start, w.end) for w in words[0]]
    if any(
        (e.text, e.text_pair) != (items[0].text, items[0].text_pair) or [(w.segment, w.start, w.end) for w in ws] != spans
        for e, ws in zip(items, words)
    ):
        raise InvalidInputError("render_markdown compares explanations of the same text with the same words only.")
    names = [e.method for e in items]
    if len(set(names)) < len(names):
        names = [f"{e.method} ({e.model_name})" for e in items]
    bold = [set(sorted(range(len(ws)), key=lambda i: -abs(ws[i].score))[:bold_top]) for ws in words]
    lines = [
        "| word | " + " | ".join(markdown_text(n) for n in names) + " |",
        "|---|" + "---:|" * len(items),
    ]
    for i, word in enumerate(words[0]):
        cells = [f"**{ws[i].score:+.3g}**" if i in top else f"{ws[i].score:+.3g}" for ws, top in zip(words, bold)]
        lines.append(f"| {markdown_text(word.text)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
