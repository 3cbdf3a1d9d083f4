"""Causal language models: one explained row per continuation token.

Exact references: Captum's `LLMAttribution(FeatureAblation)` and `LLMGradientAttribution(
LayerIntegratedGradients)` on the same prompt, target and baseline; teacher-forced row
probabilities against step-by-step model calls; greedy generation against `model.generate`;
completeness (IG) and efficiency (Shapley sampling) per row; causal zeros; batch == one by one for
every method that explains rows (read from the registry), and a clear refusal from every other one.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from batch_checks import assert_batch_equals_one_by_one
from tiny_models import tiny_causal_lm

import hf_seqinterp as hsi
from hf_seqinterp.explainers import get_explainer, list_methods

PROMPTS = ["the cat sat on the", "a dog", "once upon a time there was"]
CONTINUATION = " mat and slept"
FAST = {"integrated_gradients": {"n_steps": 8}, "lime": {"n_samples": 30}, "kernel_shap": {"n_samples": 30},
        "shapley_sampling": {"n_samples": 3}}
ROW_METHODS = [m for m in list_methods() if get_explainer(m).multi_row]
OTHER_METHODS = [m for m in list_methods() if not get_explainer(m).multi_row]


@pytest.fixture(scope="module", params=["llama", "gpt2"])
def adapter(request):
    return hsi.ModelAdapter(*tiny_causal_lm(request.param))


def prompt_length(expl: hsi.Explanation) -> int:
    return expl.rows[0]["visible"]


def test_rows_are_the_forced_continuation_and_its_teacher_forced_probabilities(adapter):
    expl = hsi.explain_with(adapter, PROMPTS[0], "saliency", target=CONTINUATION)
    ids = adapter.tokenizer(CONTINUATION, add_special_tokens=False)["input_ids"]
    assert [r["target"] for r in expl.rows] == ids and expl.attributions.shape == (len(ids), len(expl.tokens))
    assert expl.text == PROMPTS[0] and expl.text_pair == CONTINUATION and expl.target_label == CONTINUATION
    full = torch.tensor([expl.input_ids])
    for k, row in enumerate(expl.rows):
        with torch.no_grad():  # step by step: the model on the prompt and the first k continuation tokens
            step = torch.softmax(adapter.model(full[:, : row["position"] + 1]).logits[0, -1].double(), -1)
        assert row["probability"] == pytest.approx(float(step[ids[k]]), abs=1e-6)
        assert row["entropy"] == pytest.approx(float(-(step * step.log()).sum()), abs=1e-5)
    assert [s for s in expl.segment_ids if s is not None] == [0] * (prompt_length(expl)) + [1] * len(ids)


def test_generated_continuation_is_what_generate_returns(adapter):
    expl = hsi.explain_with(adapter, PROMPTS[1], "saliency", generation={"max_new_tokens": 5})
    prompt = adapter.tokenizer(PROMPTS[1], return_tensors="pt")
    out = adapter.model.generate(**prompt, max_new_tokens=5, do_sample=False, pad_token_id=adapter.pad_id)
    generated = out[0, prompt["input_ids"].shape[1]:].tolist()
    eos = adapter.tokenizer.eos_token_id
    if eos in generated:
        generated = generated[: generated.index(eos) + 1]
    assert [r["target"] for r in expl.rows] == generated
    assert expl.input_ids == prompt["input_ids"][0].tolist() + generated


@pytest.mark.parametrize("model_type", ["llama", "gpt2"])
def test_erasure_equals_captum_feature_ablation(model_type):
    from captum.attr import FeatureAblation, LLMAttribution, TextTokenInput

    model, tok = tiny_causal_lm(model_type)
    adapter = hsi.ModelAdapter(model, tok)
    ours = hsi.explain_with(adapter, PROMPTS[0], "erasure", target=CONTINUATION, replacement="unk", score="log_prob")
    ref = LLMAttribution(FeatureAblation(model), tok).attribute(
        TextTokenInput(PROMPTS[0], tok, baselines=tok.unk_token_id), target=CONTINUATION, forward_in_tokens=False
    )
    n = prompt_length(ours)
    np.testing.assert_allclose(ours.attributions[:, :n], ref.token_attr.numpy(), atol=1e-5)


@pytest.mark.parametrize("model_type", ["llama", "gpt2"])
def test_integrated_gradients_equals_captum_llm_gradient_attribution(model_type):
    from captum.attr import LayerIntegratedGradients, LLMGradientAttribution, TextTokenInput

    model, tok = tiny_causal_lm(model_type)
    adapter = hsi.ModelAdapter(model, tok)
    ours = hsi.explain_with(
        adapter, PROMPTS[0], "integrated_gradients", target=CONTINUATION, baseline="unk", n_steps=16,
        score="log_prob", baseline_on="prompt",
    )
    ref = LLMGradientAttribution(LayerIntegratedGradients(model, model.get_input_embeddings()), tok).attribute(
        TextTokenInput(PROMPTS[0], tok), target=CONTINUATION, n_steps=16, baselines=tok.unk_token_id,
        method="gausslegendre",
    )
    n = prompt_length(ours)
    np.testing.assert_allclose(ours.attributions[:, :n], ref.token_attr.numpy(), atol=1e-5)
    np.testing.assert_array_equal(ours.attributions[:, n:], 0.0)  # the continuation is not interpolated


def test_integrated_gradients_is_complete_per_row(adapter):
    expl = hsi.explain_with(adapter, PROMPTS[2], "integrated_gradients", target=CONTINUATION, score="log_prob")
    for k, row in enumerate(expl.rows):
        gap = row["input_score"] - row["baseline_score"]
        assert abs(float(expl.attributions[k].sum(dtype=np.float64)) - gap) <= 1e-2 * max(abs(gap), 1e-3)
        assert row["convergence_delta"] == pytest.approx(float(expl.attributions[k].sum(dtype=np.float64)) - gap, abs=1e-6)
    assert not expl.warnings


def test_shapley_sampling_is_efficient_per_row(adapter):
    expl = hsi.explain_with(adapter, PROMPTS[0], "shapley_sampling", target=CONTINUATION, n_samples=4, level="token",
                            replacement="unk")
    for k, row in enumerate(expl.rows):
        assert float(expl.attributions[k].sum(dtype=np.float64)) == pytest.approx(
            row["input_score"] - row["baseline_score"], abs=1e-5
        )


# Token-level features only: a window (occlusion) or a word straddling a row's last visible token
# shares its score with the later tokens it covers. Not LIME or KernelSHAP: a regression on samples
# gives a token that changes nothing a small weight, not exactly 0.
@pytest.mark.parametrize("method", ["saliency", "integrated_gradients", "erasure", "shapley_sampling"])
def test_rows_never_see_later_tokens(adapter, method):
    params = {"integrated_gradients": {"n_steps": 8}, "shapley_sampling": {"n_samples": 3, "level": "token"}}.get(method, {})
    expl = hsi.explain_with(adapter, PROMPTS[2], method, target=CONTINUATION, **params)
    for k, row in enumerate(expl.rows):
        later = expl.attributions[k, row["visible"]:]
        np.testing.assert_allclose(later, 0.0, atol=0.0 if method in ("saliency", "integrated_gradients") else 1e-6)
        view = expl.row(k)
        assert len(view.tokens) == row["visible"] and view.target_label == row["label"]
        np.testing.assert_array_equal(view.attributions, expl.attributions[k, : row["visible"]])


@pytest.mark.parametrize("method", ROW_METHODS)
def test_batch_equals_one_by_one(adapter, method):
    explainer = get_explainer(method).create(adapter, **FAST.get(method, {}))
    assert_batch_equals_one_by_one(explainer, PROMPTS, [CONTINUATION, " yes", " over the hill"])


@pytest.mark.parametrize("method", OTHER_METHODS)
def test_methods_without_rows_refuse_clearly(adapter, method):
    with pytest.raises(hsi.errors.UnsupportedModelError, match="one explained row per output token"):
        get_explainer(method).create(adapter)


def test_views_of_an_explanation_with_rows(adapter):
    expl = hsi.explain_with(adapter, PROMPTS[0], "gradient_x_input", target=CONTINUATION)
    with pytest.raises(hsi.errors.InvalidParameterError, match=r"use explanation\.row\(k\)\.to_words\(\), or"):
        expl.to_words()
    words = expl.row(2).to_words()
    assert [w.segment for w in words][-1] == 1  # the continuation so far is segment 1
    html = expl.to_html()
    assert html.count('class="hfsi-explanation"') == expl.n_rows  # one heat map per row
    assert html.count("<tr data-row=") == expl.n_rows  # and the rows × tokens matrix
    assert html.count("hfsi-unseen") - 1 == sum(len(expl.tokens) - r["visible"] for r in expl.rows)  # 1: the CSS
    assert "Explanation(method='gradient_x_input', rows=" in repr(expl)


def test_prompt_too_long_is_cut_from_the_left(adapter):
    long_prompt = " ".join(["word"] * 80)
    expl = hsi.explain_with(adapter, long_prompt, "saliency", target=CONTINUATION)
    assert len(expl.tokens) <= adapter.max_length and expl.warnings and "prompt truncated" in expl.warnings[0]
    with pytest.raises(hsi.errors.InputTooLongError):
        hsi.explain_with(adapter, long_prompt, "saliency", target=CONTINUATION, truncation=False)


def test_bad_targets_and_inputs_are_refused(adapter):
    with pytest.raises(hsi.errors.UnknownTargetError, match="continuation"):
        hsi.explain_with(adapter, PROMPTS[0], "saliency", target=3)
    with pytest.raises(hsi.errors.InvalidInputError, match="sentence pairs"):
        hsi.explain_with(adapter, (PROMPTS[0], "second"), "saliency")


def test_cli_explains_a_continuation(tmp_path, capsys):
    from hf_seqinterp.cli import main

    model, tokenizer = tiny_causal_lm("gpt2")
    model.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    assert main(["explain", "--model", str(tmp_path), "the cat sat on the", "--target", CONTINUATION,
                 "--method", "erasure", "--color", "never"]) == 0
    out = capsys.readouterr().out
    n_rows = len(tokenizer(CONTINUATION)["input_ids"])
    assert out.count("method: erasure") == n_rows and "p(target) = " in out
    assert main(["explain", "--model", str(tmp_path), "a dog", "--max-new-tokens", "2", "--json"]) == 0
    (row,) = __import__("json").loads(capsys.readouterr().out)
    assert len(row["rows"]) == 2 and hsi.Explanation.from_dict(row).n_rows == 2


def test_features_without_rows_say_so(adapter, tmp_path):
    from hf_seqinterp.metrics.evaluation import evaluate_methods

    with pytest.raises(hsi.errors.UnsupportedModelError, match="explain_dataset handles sequence classifiers"):
        hsi.explain_dataset(adapter, ["a"], ["saliency"], output_dir=tmp_path / "out")
    with pytest.raises(hsi.errors.UnsupportedModelError, match="evaluate handles sequence classifiers"):
        evaluate_methods(adapter, PROMPTS, methods=["saliency"])


def test_readme_table_marks_the_methods_that_explain_rows():
    import re

    from conftest import REPO

    table = re.findall(r"^\|.*?\| `(\w+)` \|.*\| (✓|—) \|$", (REPO / "README.md").read_text(encoding="utf-8"), re.MULTILINE)
    marked = {name for name, mark in table if mark == "✓"}
    listed = {name for name, _ in table}
    assert len(listed) >= 14 and listed <= set(list_methods())
    assert marked == set(ROW_METHODS) & listed
