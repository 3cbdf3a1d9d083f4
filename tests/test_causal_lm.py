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
from row_checks import (
    CAUSAL,
    CAUSAL_PARAMS,
    OTHER_METHODS,
    ROW_METHODS,
    assert_batch_equals_one_by_one,
    assert_complete_per_row,
    assert_efficient_per_row,
    assert_rows_never_see_later_tokens,
    row_explainer,
)
from tiny_models import tiny_causal_lm

import hf_seqinterp as hsi
from hf_seqinterp.explainers import get_explainer, list_methods

PROMPTS = ["the cat sat on the", "a dog", "once upon a time there was"]
CONTINUATION = " mat and slept"


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
    assert_complete_per_row(
        hsi.explain_with(adapter, PROMPTS[2], "integrated_gradients", target=CONTINUATION, score="log_prob")
    )


def test_shapley_sampling_is_efficient_per_row(adapter):
    assert_efficient_per_row(hsi.explain_with(
        adapter, PROMPTS[0], "shapley_sampling", target=CONTINUATION, n_samples=4, level="token", replacement="unk"
    ))


@pytest.mark.parametrize("method", sorted(CAUSAL))
def test_rows_never_see_later_tokens(adapter, method):
    assert_rows_never_see_later_tokens(
        hsi.explain_with(adapter, PROMPTS[2], method, target=CONTINUATION, **CAUSAL_PARAMS.get(method, {}))
    )


@pytest.mark.parametrize("method", ROW_METHODS)
def test_batch_equals_one_by_one(adapter, method):
    assert_batch_equals_one_by_one(row_explainer(adapter, method), PROMPTS, [CONTINUATION, " yes", " over the hill"])


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


def test_attention_rows_are_the_attention_at_each_rows_position(adapter):
    raw = hsi.explain_with(adapter, PROMPTS[0], "attention", target=CONTINUATION, layer=-1)
    rollout = hsi.explain_with(adapter, PROMPTS[0], "attention_rollout", target=CONTINUATION)
    with adapter.eager_attention(), torch.no_grad():
        attentions = adapter.model(torch.tensor([raw.input_ids]), output_attentions=True).attentions
    fused = [a[0].double().mean(0) for a in attentions]
    eye = torch.eye(len(raw.tokens), dtype=torch.float64)
    product = eye
    for w in fused:  # Abnar & Zuidema: (W + I) / rowsum, multiplied from the first layer up
        product = ((w + eye) / (w + eye).sum(-1, keepdim=True)) @ product
    positions = [r["position"] for r in raw.rows]
    np.testing.assert_allclose(raw.attributions, fused[-1][positions].numpy(), atol=1e-6)
    np.testing.assert_allclose(rollout.attributions, product[positions].numpy(), atol=1e-5)


@pytest.mark.parametrize("method", ["attention_rollout", "gradient_rollout", "attention_flow"])
def test_an_attention_row_is_the_last_row_of_the_continuation_cut_after_it(adapter, method):
    short = " mat"  # the first two tokens of CONTINUATION
    full = hsi.explain_with(adapter, PROMPTS[1], method, target=CONTINUATION)
    cut = hsi.explain_with(adapter, PROMPTS[1], method, target=short)
    n = len(cut.tokens)
    assert full.input_ids[:n] == cut.input_ids
    np.testing.assert_allclose(full.attributions[cut.n_rows - 1, :n], cut.attributions[-1], atol=1e-5)
    np.testing.assert_allclose(full.attributions[cut.n_rows - 1, n:], 0.0, atol=1e-7)


FOIL = " cat but slept"  # as many tokens as CONTINUATION under the tiny byte-level BPE


@pytest.mark.parametrize("score", ["logit", "log_prob", "prob"])
def test_contrastive_rows_explain_the_target_against_the_foil(adapter, score):
    expl = hsi.explain_with(adapter, PROMPTS[0], "integrated_gradients", target=CONTINUATION, contrast=FOIL,
                            score=score, n_steps=16)
    foil = adapter.tokenizer(FOIL, add_special_tokens=False)["input_ids"]
    assert [r["contrast"] for r in expl.rows] == foil
    with torch.no_grad():  # the foil is scored in the target's context: one forward on prompt + target
        logits = adapter.model(torch.tensor([expl.input_ids])).logits[0].double()
    for k, row in enumerate(expl.rows):
        z = logits[row["position"]]
        values = {"logit": z, "log_prob": torch.log_softmax(z, -1), "prob": torch.softmax(z, -1)}[score]
        assert row["input_score"] == pytest.approx(float(values[row["target"]] - values[foil[k]]), abs=1e-4)
        assert row["contrast_probability"] == pytest.approx(float(torch.softmax(z, -1)[foil[k]]), abs=1e-6)
        gap = row["input_score"] - row["baseline_score"]
        assert abs(float(expl.attributions[k].sum(dtype=np.float64)) - gap) <= 1e-2 * max(abs(gap), 1e-3)


def test_contrastive_erasure_is_the_difference_of_the_two_erasures(adapter):
    kwargs = {"target": CONTINUATION, "replacement": "unk", "score": "log_prob"}
    both = hsi.explain_with(adapter, PROMPTS[2], "erasure", contrast=FOIL, **kwargs)
    plain = hsi.explain_with(adapter, PROMPTS[2], "erasure", **kwargs)
    tokens = [[f] for f in adapter.tokenizer(FOIL, add_special_tokens=False)["input_ids"]]
    with torch.no_grad():
        ids = torch.tensor([both.input_ids])
        base = torch.log_softmax(adapter.model(ids).logits[0].double(), -1)
        drops = []
        for t in range(len(both.tokens)):  # leave-one-out by hand: token t replaced by unk
            edited = ids.clone()
            edited[0, t] = adapter.tokenizer.unk_token_id
            out = torch.log_softmax(adapter.model(edited).logits[0].double(), -1)
            drops.append([float(base[r["position"], f[0]] - out[r["position"], f[0]]) for r, f in zip(both.rows, tokens)])
    foil_drops = np.asarray(drops).T  # rows × tokens
    unk_free = ~np.asarray(both.special_tokens_mask)
    np.testing.assert_allclose(both.attributions[:, unk_free], (plain.attributions - foil_drops)[:, unk_free], atol=1e-4)


def test_contrast_of_another_length_is_refused(adapter):
    with pytest.raises(hsi.errors.InvalidParameterError, match="same length"):
        hsi.explain_with(adapter, PROMPTS[0], "saliency", target=CONTINUATION, contrast=" no")
    classifier = hsi.ModelAdapter(*__import__("tiny_models").tiny_model("bert"))
    with pytest.raises(hsi.errors.InvalidParameterError, match="contrast: not an option of .*its options: none"):
        hsi.explain_with(classifier, "a text", "saliency", contrast="x")


CHAT = "{% for m in messages %}<|endoftext|>{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}assistant:"


def test_chat_template_renders_the_prompt_as_a_user_turn(adapter):
    expl = hsi.explain_with(adapter, "how are you", "erasure", target=" fine", chat_template=CHAT, replacement="unk")
    assert expl.text == "<|endoftext|>user: how are you\nassistant:"
    rendered = adapter.tokenizer(expl.text, add_special_tokens=False)["input_ids"]
    assert expl.input_ids[: len(rendered)] == rendered  # no second BOS before the template's own
    assert expl.special_tokens_mask[0] and expl.attributions[:, 0].tolist() == [0.0] * expl.n_rows
    with pytest.raises(hsi.errors.InvalidParameterError, match="has no chat template"):
        hsi.explain_with(adapter, "how are you", "erasure", target=" fine", chat_template=True)


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
    assert main(["explain", "--model", str(tmp_path), "the cat sat on the", "--target", CONTINUATION, "--contrast", FOIL,
                 "--method", "erasure", "--json"]) == 0
    (row,) = __import__("json").loads(capsys.readouterr().out)
    assert [r["contrast_label"] for r in row["rows"]] == tokenizer.batch_decode([[t] for t in tokenizer(FOIL)["input_ids"]])
    assert main(["explain", "--model", str(tmp_path), "a dog", "--max-new-tokens", "2", "--json"]) == 0
    (row,) = __import__("json").loads(capsys.readouterr().out)
    assert len(row["rows"]) == 2 and hsi.Explanation.from_dict(row).n_rows == 2


def test_faithfulness_scores_each_row_at_its_position(adapter):
    from hf_seqinterp.metrics import faithfulness

    expl = hsi.explain_with(adapter, PROMPTS[2], "erasure", target=CONTINUATION, replacement="unk")
    result = faithfulness(expl, adapter, ["comprehensiveness", "tau_loo"], replacement="unk", score="logit", top=0.2)
    per_row = faithfulness(expl.row_views(), adapter, ["comprehensiveness"], replacement="unk", score="logit", top=0.2)
    assert per_row.values["comprehensiveness"].shape == (expl.n_rows,)
    assert result.values["comprehensiveness"][0] == pytest.approx(per_row.values["comprehensiveness"].mean(), abs=1e-9)
    # by hand: row k's logit at its position with its top 20 % tokens replaced by unk
    unk, drops = adapter.tokenizer.unk_token_id, []
    for k, row in enumerate(expl.rows):
        view = expl.row(k)
        n = max(1, int(np.ceil(0.2 * len(view) - 1e-9)))
        top = np.argsort(-view.attributions, kind="stable")[:n]
        ids = torch.tensor([view.input_ids])
        edited = ids.clone()
        edited[0, top] = unk
        with torch.no_grad():
            full, cut = (adapter.model(x).logits[0, -1, row["target"]].item() for x in (ids, edited))
        drops.append(full - cut)
    assert result.values["comprehensiveness"][0] == pytest.approx(np.mean(drops), abs=1e-4)
    # erasure with unk is leave-one-out with unk: tau-LOO is 1 on every row (ties aside)
    assert result.values["tau_loo"][0] == pytest.approx(1.0, abs=1e-6)


def test_evaluate_explains_and_scores_generated_continuations(adapter):
    from hf_seqinterp.metrics.evaluation import evaluate_methods

    report = evaluate_methods(adapter, PROMPTS, methods=["saliency", "erasure"], head_options={"generation": {"max_new_tokens": 3}},
                              metrics=["aopc_comprehensiveness"], replacement="unk", progress=False)
    assert {r.method for r in report.results} == {"saliency", "erasure"}
    assert all(np.isfinite(r.metrics["aopc_comprehensiveness"]) for r in report.results)


def test_readme_table_marks_the_methods_that_explain_rows():
    import re

    from conftest import REPO

    table = re.findall(r"^\|.*?\| `(\w+)` \|.*\| (✓|—) \|$", (REPO / "README.md").read_text(encoding="utf-8"), re.MULTILINE)
    marked = {name for name, mark in table if mark == "✓"}
    listed = {name for name, _ in table}
    assert len(listed) >= 14 and listed <= set(list_methods())
    assert marked == set(ROW_METHODS) & listed
