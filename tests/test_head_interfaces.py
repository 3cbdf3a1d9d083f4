"""Heads with a target axis through the library's interfaces: `explain_dataset` (resumable shards,
the dataset schema, cards), the `explain-text` pipeline and the model mixin give exactly what a direct
`explain_with` call gives."""

from __future__ import annotations

import datasets
import numpy as np
import pytest
from tiny_models import tiny_causal_lm

import hf_seqinterp as hsi
from hf_seqinterp.hub import dataset_card

PROMPTS = ["the cat sat on the", "a dog", "once upon a time there was", "why"]
TARGETS = [" mat", None, " a king and", None]  # forced, or generated where None
GENERATION = {"max_new_tokens": 3}


@pytest.fixture(scope="module")
def adapter():
    return hsi.ModelAdapter(*tiny_causal_lm("llama"))


def same_rows(rows: list[dict], others: list[dict]) -> bool:
    """Equal row descriptions (numbers to 1e-5: batches of other compositions round differently)."""
    return [r.keys() for r in rows] == [o.keys() for o in others] and all(
        r[k] == pytest.approx(o[k], abs=1e-5) if isinstance(r[k], float) else r[k] == o[k]
        for r, o in zip(rows, others) for k in r
    )


def test_explain_dataset_of_a_causal_lm_equals_direct_calls(adapter, tmp_path):
    source = datasets.Dataset.from_dict({"text": PROMPTS, "continuation": TARGETS})
    methods = {"erasure": {"replacement": "unk"}, "integrated_gradients": {"n_steps": 4}}
    table = hsi.explain_dataset(adapter, source, methods, target_column="continuation", head_options={"generation": GENERATION},
                                output_dir=tmp_path / "out", shard_size=3, progress=False)
    stored = hsi.dataset_to_explanations(table)
    assert len(stored) == len(PROMPTS) * len(methods)
    for i, (prompt, target) in enumerate(zip(PROMPTS, TARGETS)):
        for j, (method, params) in enumerate(methods.items()):
            direct = hsi.explain_with(adapter, prompt, method, target=target, generation=GENERATION, **params)
            expl = stored[i * len(methods) + j]
            assert expl.input_ids == direct.input_ids and same_rows(expl.rows, direct.rows)
            np.testing.assert_allclose(expl.attributions, direct.attributions, atol=1e-6)
    card = str(dataset_card(table, "user/lm-explanations"))
    assert "Explained continuation" in card and "- text-generation" in card and ".row(0).to_words()" in card
    # a resumed run with other head options is another run: refused, not mixed
    with pytest.raises(hsi.errors.SeqInterpError, match="head_options"):
        hsi.explain_dataset(adapter, source, methods, target_column="continuation", head_options={"generation": {"max_new_tokens": 4}},
                            output_dir=tmp_path / "out", shard_size=3, progress=False)


def test_explain_dataset_refuses_options_of_another_head(tmp_path):
    from tiny_models import tiny_model

    with pytest.raises(hsi.errors.InvalidParameterError, match="generation: not an option"):
        hsi.explain_dataset(hsi.ModelAdapter(*tiny_model("bert")), ["a text"], "saliency",
                            head_options={"generation": GENERATION}, output_dir=tmp_path, progress=False)


def test_pipeline_on_a_causal_lm_equals_explain_with(adapter):
    from transformers import pipeline

    pipe = pipeline("explain-text", model=adapter.model, tokenizer=adapter.tokenizer, method="erasure")
    results = pipe(PROMPTS[:2], target=" on a mat", replacement="unk", return_explanation=True)
    for prompt, result in zip(PROMPTS[:2], results):
        direct = hsi.explain_with(adapter, prompt, "erasure", target=" on a mat", replacement="unk")
        assert result["target"] == " on a mat" and len(result["rows"]) == direct.n_rows
        for k, row in enumerate(result["rows"]):
            assert row["label"] == direct.rows[k]["label"] and len(row["tokens"]) == direct.rows[k]["visible"]
            np.testing.assert_allclose([t["attribution"] for t in row["tokens"]], direct.row(k).attributions, atol=1e-6)
    generated = pipe(PROMPTS[0], generation=GENERATION, contrast=None)
    assert generated["target"] == hsi.explain_with(adapter, PROMPTS[0], "erasure", generation=GENERATION).target_label


def test_the_mixin_explains_a_causal_lm(adapter):
    model = hsi.explainable(adapter.model, adapter.tokenizer)
    expl = model.explain(PROMPTS[0], "gradient_x_input", target=" on a mat", contrast=" in a mat")
    direct = hsi.explain_with(adapter, PROMPTS[0], "gradient_x_input", target=" on a mat", contrast=" in a mat")
    np.testing.assert_allclose(expl.attributions, direct.attributions, atol=1e-6)
    assert [r["contrast_label"] for r in expl.rows] == [r["contrast_label"] for r in direct.rows]


def test_cli_explain_dataset_of_a_causal_lm(adapter, tmp_path, capsys):
    from hf_seqinterp.cli import main

    adapter.model.save_pretrained(tmp_path / "lm")
    adapter.tokenizer.save_pretrained(tmp_path / "lm")
    (tmp_path / "prompts.jsonl").write_text('{"text": "a dog"}\n{"text": "why"}\n')
    assert main(["explain-dataset", str(tmp_path / "prompts.jsonl"), "--model", str(tmp_path / "lm"), "--method", "saliency",
                 "--max-new-tokens", "2", "--output-dir", str(tmp_path / "out"), "--no-progress"]) == 0
    stored = hsi.load_explanations(tmp_path / "out")
    for prompt, expl in zip(["a dog", "why"], stored):
        direct = hsi.explain_with(adapter, prompt, "saliency", generation={"max_new_tokens": 2})
        assert expl.input_ids == direct.input_ids and expl.n_rows == direct.n_rows


def test_readme_lists_every_head():
    from conftest import REPO

    from hf_seqinterp.heads import HEAD_TYPES

    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## Models and heads"): readme.index("## Methods")]
    for head in HEAD_TYPES:
        assert all(f"`*{suffix}`" in section for suffix in head.suffixes), head.kind
