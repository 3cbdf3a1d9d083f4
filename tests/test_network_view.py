"""A unit's heat map carries the unit's activations (the values the top-k search ranked), on one
colour scale per page; the top-contexts page outlines exactly each context's hit token."""

from __future__ import annotations

import re

import pytest
from test_network_top_activations import TEXTS, planted_llama
from tiny_models import tiny_causal_lm, tiny_model

import hf_seqinterp as hsi
from hf_seqinterp.errors import InvalidParameterError
from hf_seqinterp.network import activation_html, top_activations, top_contexts_html, unit_activations

pytestmark = pytest.mark.usefixtures("one_thread")

SPAN = re.compile(r'<span class="([^"]*)"[^>]*data-index="(\d+)" data-attribution="([^"]+)"')


@pytest.fixture(scope="module")
def adapter():
    return hsi.ModelAdapter(*tiny_model("bert"))


def spans(page: str) -> list[tuple[str, int, float]]:
    return [(cls, int(i), float(v)) for cls, i, v in SPAN.findall(page)]


def test_activations_are_the_values_the_search_ranked(adapter):
    result = top_activations(adapter, TEXTS, units="head", layers=1, k=3, progress=False)
    rows = result.filter(lambda r: r["unit"] == 2)
    pairs = unit_activations(adapter, [TEXTS[i] for i in rows["text_index"]], kind="head", layer=1, unit=2)
    for (enc, values), row in zip(pairs, rows):
        assert len(values) == len(enc.tokens)
        assert values[row["position"]] == pytest.approx(row["activation"], abs=1e-5)
        real = [v for v, s in zip(values, enc.special_tokens_mask) if not s]
        assert max(real) == pytest.approx(row["activation"], abs=1e-5) or row["rank"] > 1


def test_the_heat_map_shows_a_planted_neuron_on_its_token_only():
    token_id = tiny_causal_lm("llama")[1](TEXTS[0])["input_ids"][1]
    model, tokenizer = planted_llama(token_id)
    adapter = hsi.ModelAdapter(model, tokenizer)
    page = activation_html(adapter, TEXTS[:6], kind="ffn", layer=0, unit=5)
    pairs = unit_activations(adapter, TEXTS[:6], kind="ffn", layer=0, unit=5)
    shown = spans(page)
    assert [v for _, _, v in shown] == pytest.approx([float(v) for _, values in pairs for v in values], abs=1e-6)
    ids = [i for enc, _ in pairs for i in enc.input_ids]
    assert [v != 0 for _, _, v in shown] == [i == token_id for i in ids]
    assert token_id in ids
    assert page.startswith("<!DOCTYPE html>")


def test_the_top_contexts_page_outlines_each_hit(adapter, tmp_path):
    result = top_activations(adapter, TEXTS, units="ffn", layers=0, k=5, progress=False)
    page = top_contexts_html(result, adapter, TEXTS, kind="ffn", layer=0, unit=3, path=tmp_path / "unit.html")
    rows = result.filter(lambda r: r["unit"] == 3 and r["kind"] == "ffn")
    hits = [(i, v) for cls, i, v in spans(page) if "hfsi-hit" in cls]
    assert [i for i, _ in hits] == rows["position"]
    assert [v for _, v in hits] == pytest.approx(rows["activation"], abs=1e-5)
    assert (tmp_path / "unit.html").read_text(encoding="utf-8") == page
    with pytest.raises(InvalidParameterError, match="no contexts of head"):
        top_contexts_html(result, adapter, TEXTS, kind="head", layer=0, unit=0)


def test_texts_are_escaped_and_units_checked(adapter):
    page = activation_html(adapter, ["<script>alert(1)</script> good"], kind="residual", layer=0, unit=1)
    assert "<script>" not in page.split("</style>", 1)[1]
    with pytest.raises(InvalidParameterError, match="0 to 36"):
        unit_activations(adapter, "good film", kind="ffn", layer=0, unit=37)
