"""pipeline("explain-text") end to end."""

from __future__ import annotations

import json

import numpy as np
import pytest
from tiny_models import random_texts, tiny_model
from transformers import pipeline

import hf_seqinterp as hsi
from hf_seqinterp import ExplainTextPipeline, ModelAdapter


@pytest.fixture(scope="module")
def explain_pipe():
    model, tokenizer = tiny_model("bert")
    return pipeline("explain-text", model=model, tokenizer=tokenizer, device="cpu")


def test_task_is_registered_on_import(explain_pipe):
    assert isinstance(explain_pipe, ExplainTextPipeline)


def test_results_are_plain_data_and_match_the_python_api(explain_pipe):
    texts = random_texts(5, seed=4)
    results = explain_pipe(texts, method="integrated_gradients", n_steps=8, batch_size=2)
    json.dumps(results)  # plain data only
    direct = hsi.explain(texts, explain_pipe.adapter, method="integrated_gradients", n_steps=8)
    for res, expl in zip(results, direct):
        assert res["text"] == expl.text and res["method"] == "integrated_gradients"
        assert res["label"] == expl.predicted_label and res["target"] == expl.target_label
        assert res["score"] == pytest.approx(float(expl.probabilities.max()))
        np.testing.assert_allclose([t["attribution"] for t in res["tokens"]], expl.attributions, atol=1e-5)
        assert [t["token"] for t in res["tokens"]] == expl.tokens
        assert [w["word"] for w in res["words"]] == [w.text for w in expl.to_words()]


def test_batch_size_groups_texts_into_one_explainer_call(explain_pipe, monkeypatch):
    seen = []
    original = ExplainTextPipeline._forward

    def spy(self, model_inputs, **kw):
        out = original(self, model_inputs, **kw)
        seen.append(len(out["explanations"]))
        return out

    monkeypatch.setattr(ExplainTextPipeline, "_forward", spy)
    texts = random_texts(7, seed=9)
    batched = explain_pipe(texts, batch_size=3)
    assert seen == [3, 3, 1]
    single = [explain_pipe(t) for t in texts]
    for a, b in zip(batched, single):
        np.testing.assert_allclose(
            [t["attribution"] for t in a["tokens"]], [t["attribution"] for t in b["tokens"]], atol=1e-5
        )


def test_single_text_target_and_explanation_object(explain_pipe):
    res = explain_pipe("a good film", target="negative", return_explanation=True)
    assert isinstance(res, dict) and res["target"] == "negative"
    assert isinstance(res["explanation"], hsi.Explanation) and res["explanation"].target == 0


def test_unknown_method_fails_before_running(explain_pipe):
    with pytest.raises(hsi.UnknownMethodError, match="Available: .*gradient_x_input"):
        explain_pipe("good", method="shap")


def test_pipeline_from_a_saved_folder(tmp_path):
    model, tokenizer = tiny_model("gpt2")
    model.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    pipe = pipeline("explain-text", model=str(tmp_path), method="saliency")
    res = pipe(random_texts(2, seed=1))
    assert len(res) == 2 and all(r["method"] == "saliency" for r in res)
    ref = hsi.explain(random_texts(2, seed=1), ModelAdapter(model, tokenizer), method="saliency")
    np.testing.assert_allclose([t["attribution"] for t in res[1]["tokens"]], ref[1].attributions, atol=1e-5)
