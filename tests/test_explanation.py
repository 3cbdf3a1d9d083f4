"""Explanation: word view, top-k, lossless serialisation, rendering."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from tiny_models import ARCHITECTURES, random_texts, tiny_model

from hf_seqinterp import Explanation, ModelAdapter, explain


def make_explanation(**overrides) -> Explanation:
    # "unhappy ending!" -> [CLS] un ##happy ending ! [SEP]
    fields = dict(
        text="unhappy ending!",
        tokens=["[CLS]", "un", "##happy", "ending", "!", "[SEP]"],
        input_ids=[2, 10, 11, 12, 13, 3],
        offsets=[(0, 0), (0, 2), (2, 7), (8, 14), (14, 15), (0, 0)],
        word_ids=[None, 0, 0, 1, 2, None],
        special_tokens_mask=[True, False, False, False, False, True],
        attributions=np.array([0.5, -1.25, 0.75, 2.0, -0.125, 0.25], dtype=np.float32),
        target=1,
        target_label="POSITIVE",
        probabilities=np.array([0.25, 0.75], dtype=np.float32),
        method="gradient_x_input",
        params={"score": "logit"},
        labels=["NEGATIVE", "POSITIVE"],
        model_name="some/model",
        extras={"convergence_delta": 1e-3, "nested": {"a": [1, 2]}},
    )
    fields.update(overrides)
    return Explanation(**fields)


def test_word_sums_keep_the_total():
    expl = make_explanation()
    words = expl.to_words()
    assert [w.text for w in words] == ["unhappy", "ending", "!"]
    assert [w.token_indices for w in words] == [(1, 2), (3,), (4,)]
    assert words[0].score == pytest.approx(-0.5)
    assert (words[0].start, words[0].end) == (0, 7)
    total = sum(w.score for w in words) + sum(expl.special_scores().values())
    assert total == pytest.approx(float(expl.attributions.sum()))


@pytest.mark.parametrize(
    "how, expected",
    [("mean", -0.25), ("max", 0.75), ("absmax", -1.25), ("l2", float(np.hypot(1.25, 0.75)))],
)
def test_other_aggregations(how, expected):
    assert make_explanation().to_words(how)[0].score == pytest.approx(expected)


def test_sum_renorm_gives_a_distribution_over_words():
    expl = make_explanation(attributions=np.array([0.4, 0.1, 0.1, 0.2, 0.2, 0.0], dtype=np.float32))
    words = expl.to_words("sum_renorm")
    assert sum(w.score for w in words) == pytest.approx(1.0)
    assert words[0].score == pytest.approx(0.2 / 0.6)


def test_top_k_excludes_specials_and_filters_sign():
    expl = make_explanation()
    assert [a.text for a in expl.top_k(2)] == ["ending", "un"]
    assert [a.text for a in expl.top_k(5, by="positive")] == ["ending", "##happy"]
    assert [a.text for a in expl.top_k(5, by="negative")] == ["un", "!"]
    assert [a.text for a in expl.top_k(1, level="word")] == ["ending"]
    with pytest.raises(ValueError, match="level"):
        expl.top_k(level="sentence")


def test_dict_round_trip_is_lossless(tmp_path):
    expl = make_explanation(attributions=np.random.default_rng(0).normal(size=6).astype(np.float32))
    data = json.loads(json.dumps(expl.to_dict()))
    back = Explanation.from_dict(data)
    assert back == expl
    assert back.attributions.dtype == np.float32
    np.testing.assert_array_equal(back.attributions, expl.attributions)
    assert back.offsets == expl.offsets and back.extras == expl.extras
    assert data["schema_version"] == 2 and data["library_version"] and data["rows"] is None

    path = expl.save(tmp_path / "e.json")
    assert Explanation.load(path) == expl
    with pytest.raises(FileExistsError, match="overwrite=True"):
        expl.save(path)


def test_from_dict_warns_on_unknown_keys():
    data = make_explanation().to_dict()
    data["from_the_future"] = 1
    with pytest.warns(UserWarning, match="from_the_future"):
        Explanation.from_dict(data)


def test_mismatched_lengths_are_rejected():
    with pytest.raises(ValueError, match="attributions"):
        make_explanation(attributions=np.zeros(3, dtype=np.float32))


def test_real_explanations_round_trip_for_every_architecture():
    for model_type in ARCHITECTURES:
        model, tokenizer = tiny_model(model_type)
        for expl in explain(random_texts(3), ModelAdapter(model, tokenizer), method="integrated_gradients", n_steps=4):
            assert Explanation.from_dict(json.loads(expl.to_json())) == expl, model_type
            words = expl.to_words()
            total = sum(w.score for w in words) + sum(expl.special_scores().values())
            assert total == pytest.approx(float(expl.attributions.sum(dtype=np.float64)), abs=1e-6)
            # every word's text is exactly the characters its tokens cover
            for w in words:
                assert w.text == expl.text[w.start : w.end] and w.text.strip() == w.text


def test_html_is_self_contained_and_shows_every_token():
    expl = make_explanation()
    page = expl.to_html(full_page=True)
    assert page.startswith("<!DOCTYPE html>")
    assert not re.search(r"(src|href)\s*=|@import|url\(|<script|<link", page)
    assert page.count('<span class="hfsi-token') == len(expl.tokens)
    snippet = expl._repr_html_()
    assert "<html" not in snippet and "hfsi-token" in snippet


def test_html_word_view_merges_sub_words():
    expl = make_explanation()
    page = expl.to_html(level="word")
    words = re.findall(r'<span class="hfsi-word[^"]*" data-word="(\d+)" data-attribution="([^"]+)"[^>]*>([^<]*)</span>', page)
    assert [(int(k), float(a), text) for k, a, text in words] == [(0, -0.5, "unhappy"), (1, 2.0, "ending"), (2, -0.125, "!")]
    assert not re.search(r'class="hfsi-token[ "]', page)  # no sub-word boxes, no special tokens
    assert "full colour at |word score| ≥ 2" in page
    with pytest.raises(ValueError, match="level='phrase'"):
        expl.to_html(level="phrase")


def test_html_header_shows_prediction_scores_total_and_true_label():
    expl = make_explanation(extras={"input_score": 1.5, "baseline_score": -0.25, "convergence_delta": 0.125})
    header = re.search(r'<div class="hfsi-header">(.*?)</div>', expl.to_html(true_label=0)).group(1)
    text = re.sub(r"<[^>]+>", "", header)
    assert text == (
        "gradient_x_input · explaining POSITIVE · predicted POSITIVE (p = 0.750) · true label NEGATIVE ✗ wrong · "
        "f(x) = +1.500 · f(baseline) = -0.250 · Σ attributions = +2.125 (δ = +0.12) · score: logit"
    )
    assert "✓ right" in make_explanation().to_html(true_label="POSITIVE")
    assert "true label" not in make_explanation().to_html()


def test_html_escapes_every_text_and_has_a_dark_palette():
    evil = '<img src=x onerror="alert(1)">&'
    expl = make_explanation(
        text=evil, tokens=["[CLS]", evil, "[SEP]"], input_ids=[2, 10, 3], offsets=[(0, 0), (0, len(evil)), (0, 0)],
        word_ids=[None, 0, None], special_tokens_mask=[True, False, True],
        attributions=np.array([0.0, 1.0, 0.0], dtype=np.float32), target_label="<b>POS</b>", method="m<script>",
        warnings=["<i>truncated</i>"],
    )
    for level in ("token", "word"):
        page = expl.to_html(full_page=True, level=level, true_label="<u>x</u>")
        assert "<img" not in page and "<b>POS</b>" not in page and "<script" not in page and "<i>" not in page
        assert "<u>" not in page and "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;&amp;" in page
    assert "@media (prefers-color-scheme:dark)" in page and 'content="light dark"' in page


def test_terminal_rendering():
    expl = make_explanation()
    plain = expl.to_terminal(color=False)
    assert "unhappy" not in plain  # tokens are shown separately...
    assert "un(-1.25)happy(+0.75) ending(+2)!(-0.125)" in plain  # ...sub-words stick together
    assert "target: POSITIVE" in plain
    colored = expl.to_terminal(color=True)
    assert "\x1b[" in colored and "48;2;22;163;74" in colored  # the top token gets full green
