"""What leaves the library as text: dataset cards render every published field as data (no HTML,
headings, images or links from texts, labels, names or parameters), published model names are Hub
ids or folder names (never a local path), and terminal output carries no control sequence of the
data's own."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest
from tiny_models import save_tiny_model, tiny_model

import hf_seqinterp as hsi
from hf_seqinterp.cli import main
from hf_seqinterp.explanation import Explanation, public_model_name
from hf_seqinterp.hub import dataset_card
from hf_seqinterp.visualize import markdown_code, render_terminal, terminal_safe

HOSTILE = (
    "<script>alert(1)</script> # heading\n# second heading\n![pixel](http://evil.example/p.png) "
    "[click](javascript:alert(1)) <img src=x onerror=alert(2)> `code` | pipe **bold** &lt;b&gt;"
)
ESCAPES = "\x1b[2J\x1b[H\x1b]0;owned\x07\x9b31m\x07\x00"


def hostile_explanation(model_name: str) -> Explanation:
    """An explanation of HOSTILE whose labels, parameters and warnings carry markup too."""
    data = hsi.explain(HOSTILE, hsi.ModelAdapter(*tiny_model("bert")), method="saliency").to_dict()
    data.update(
        labels=["<b onmouseover=alert(3)>pos</b>", "# neg", "neutral"],
        target=0,
        target_label="<b onmouseover=alert(3)>pos</b>",
        params={"note": "`](javascript:alert(4))<script>"},
        model_name=model_name,
        warnings=["<script>warn()</script>"],
    )
    return Explanation.from_dict(data)


class Tags(HTMLParser):
    """Every start tag with its attributes."""

    def __init__(self):
        super().__init__()
        self.seen: list[tuple[str, tuple]] = []

    def handle_starttag(self, tag, attrs):
        self.seen.append((tag, tuple(attrs)))


def card_html(card_text: str) -> str:
    markdown_it = pytest.importorskip("markdown_it")
    body = card_text.split("\n---\n", 1)[1]  # after the YAML header
    return markdown_it.MarkdownIt("commonmark").enable("table").render(body)


def test_hostile_texts_labels_and_parameters_reach_the_card_as_data_only(tmp_path):
    ds = hsi.explanations_to_dataset([hostile_explanation("org/model")])
    card = str(dataset_card(ds, "me/expl", pretty_name="# <i>title</i>"))
    html = card_html(card)
    tags = Tags()
    tags.feed(html)
    # only the card's own structure: no script, image, link or inline HTML of the data, no attribute
    # besides code-block languages and table alignment
    assert {t for t, _ in tags.seen} <= {"h1", "h2", "p", "pre", "code", "table", "thead", "tbody", "tr", "th",
                                         "td", "strong", "ul", "li"}
    assert {a for _, attrs in tags.seen for a in attrs} <= {("class", "language-text"), ("class", "language-python"),
                                                           ("style", "text-align:right")}
    assert "[click](javascript:alert(1))" in html and "&lt;img src=x" in html  # shown as the text they are
    assert html.count("<h1>") == 1  # the title; "# heading" lines of the text are not headings
    assert "<h1>&lt;" not in html and "# &lt;i&gt;title&lt;/i&gt;" in html.split("</h1>")[0]
    # the text itself is shown verbatim, in a code block
    assert "<pre><code class=\"language-text\">&lt;script&gt;alert(1)&lt;/script&gt; # heading\n# second heading" in html


def test_inline_code_survives_backticks_and_pipes():
    assert markdown_code("a`b") == "``a`b``"
    assert markdown_code("x|y") == "`x\\|y`"
    assert markdown_code("line\nbreak\x1b[2J") == "`line break`"


def test_local_paths_are_never_recorded_or_published(tmp_path):
    folder = tmp_path / "private" / "my-model"
    save_tiny_model(folder)
    adapter = hsi.ModelAdapter.from_pretrained(str(folder))
    expl = hsi.explain("a good film", adapter, method="saliency")
    assert expl.model_name == "my-model"
    ds = hsi.explanations_to_dataset([expl, hostile_explanation(str(folder))])  # + a row of the previous version
    for model_id in (None, "me/my-model"):
        card = str(dataset_card(ds, "me/expl", model_id=model_id))
        assert str(tmp_path) not in card and "private" not in card
    card = str(dataset_card(ds, "me/expl"))
    assert "Explanations of my-model" in card
    from hf_seqinterp.hub import _as_explanation_dataset

    assert set(_as_explanation_dataset(ds)["model_name"]) == {"my-model"}  # the rows that are uploaded


@pytest.mark.parametrize(
    ("name", "public"),
    [("org/model", "org/model"), ("model", "model"), ("/abs/path/to/minilm/", "minilm"), ("./m", "m"),
     ("~/models/x", "x"), ("C:\\models\\bert", "bert"), ("a/b/c", "c"), (None, None)],
)
def test_public_model_name(name, public):
    assert public_model_name(name) == public


def test_terminal_output_carries_no_control_sequence_of_the_data():
    expl = hostile_explanation("m")
    data = expl.to_dict()
    data["labels"] = [f"pos{ESCAPES}", "neg"]
    data["target_label"] = f"pos{ESCAPES}"
    data["warnings"] = [f"careful{ESCAPES}"]
    data["text"] = HOSTILE.replace("heading", f"head{ESCAPES}")
    untrusted = Explanation.from_dict(data)
    plain = render_terminal(untrusted, color=False)
    assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]", plain)
    colored = render_terminal(untrusted, color=True)
    # the only escape sequences left are the heat map's own colours (SGR: ESC [ ... m)
    assert re.sub(r"\x1b\[[0-9;]*m", "", colored) == re.sub(r"\x1b\[[0-9;]*m", "", colored).translate(
        {c: None for c in range(0x20) if c not in (9, 10)} | {0x7F: None, 0x9B: None}
    )
    assert "\x1b[2J" not in colored and "\x1b]0;" not in colored and "owned" not in colored
    assert "warning: careful" in plain and "target: pos" in plain


def test_a_byte_level_tokenizer_text_with_escape_bytes_prints_clean(tmp_path, capsys):
    model, tokenizer = tiny_model("roberta")
    adapter = hsi.ModelAdapter(model, tokenizer)
    expl = hsi.explain(f"a good {ESCAPES} film", adapter, method="saliency")
    assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]", render_terminal(expl, color=False))
    folder = tmp_path / "model"
    save_tiny_model(folder, "roberta")
    assert main(["explain", f"a good {ESCAPES} film", "--model", str(folder), "--method", "saliency",
                 "--words", "--color", "never"]) == 0
    out = capsys.readouterr().out
    assert "good" in out and not re.search(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]", out)


def test_terminal_safe():
    assert terminal_safe("a\x1b[2Jb\x1b]0;t\x07c\x9bd\te\nf") == "abcd\te\nf"
    assert terminal_safe("a\nb\tc", newlines=False) == "a b c"
