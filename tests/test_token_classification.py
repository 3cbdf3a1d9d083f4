"""Token classifiers (NER): one explained row per word, token or entity.

Exact references: row probabilities against a direct model call; entities, spans and scores against
transformers' token-classification pipeline for every aggregation strategy; erasure against a
leave-one-out computed here; erasure and integrated gradients against Captum's `FeatureAblation`
and `IntegratedGradients` on a forward that returns the rows' scores; completeness (IG) and
efficiency (Shapley sampling, KernelSHAP) per row; batch == one by one for every method that
explains rows, and a clear refusal from every other one.
"""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
import torch
from row_checks import assert_batch_equals_one_by_one
from tiny_models import NER_LABELS, tiny_token_classifier

import hf_seqinterp as hsi
from hf_seqinterp.dataset import explanation_to_row, row_to_explanation
from hf_seqinterp.explainers import get_explainer, list_methods
from hf_seqinterp.validation import AGGREGATION_STRATEGIES

TEXTS = ["the film was really great, loved it", "a dull movie", "unbelievable overlong plot with the actor"]
#: one of each target form: the predicted words, given words and spans (a two-word span: two parts), a word index
TARGETS = [None, {0: "B-PER", (2, 12): "LOC"}, 2]
FAST = {
    "integrated_gradients": {"n_steps": 8}, "lime": {"n_samples": 30}, "kernel_shap": {"n_samples": 30},
    "shapley_sampling": {"n_samples": 3}, "erasure": {"replacement": "unk"},
}
ROW_METHODS = [m for m in list_methods() if get_explainer(m).multi_row]
OTHER_METHODS = [m for m in list_methods() if not get_explainer(m).multi_row]


@pytest.fixture(scope="module", params=["bert", "llama"])
def adapter(request):
    return hsi.ModelAdapter(*tiny_token_classifier(request.param))


def direct_probabilities(adapter, expl) -> np.ndarray:
    """(L, C) softmax of the model's logits on the explanation's token ids, one unpadded call."""
    with torch.no_grad():
        logits = adapter.model(input_ids=torch.tensor([expl.input_ids])).logits[0]
    return torch.softmax(logits.double(), -1).numpy()


def row_value(values: np.ndarray, row: dict) -> float:
    """A row's score from per-token values (L, C): the mean over its parts of their tokens' mean."""
    return float(np.mean([np.mean([values[t, c] for t, c in zip(ts, cs)]) for ts, cs in zip(row["positions"], row["classes"])]))


def test_default_rows_are_the_words_not_predicted_outside(adapter):
    expl = hsi.explain_with(adapter, TEXTS[0], "saliency")
    probs = direct_probabilities(adapter, expl)
    for row in expl.rows:
        assert row["probability"] == pytest.approx(row_value(probs, row), abs=1e-6)
        assert row["label"] == NER_LABELS[row["target"]] != "O" and row["target"] == probs[row["position"]].argmax()
        assert row["text"] == expl.text[row["start"] : row["end"]] and row["visible"] == len(expl.tokens)
    if adapter.tokenizer.is_fast and "##" in "".join(adapter.tokenizer.get_vocab()):  # WordPiece: words = word ids
        firsts = [g.positions[0] for g in expl.word_groups()]
        assert [r["position"] for r in expl.rows] == [t for t in firsts if probs[t].argmax() != 0]
    np.testing.assert_allclose(expl.probabilities, [r["probability"] for r in expl.rows], rtol=1e-6)  # float32


@pytest.mark.parametrize("model_type", ["bert", "llama", "gpt2"])
def test_entities_equal_the_token_classification_pipeline(model_type):
    from transformers import pipeline

    model, tokenizer = tiny_token_classifier(model_type)
    adapter = hsi.ModelAdapter(model, tokenizer)
    ner = pipeline("token-classification", model=model, tokenizer=tokenizer)
    for strategy in AGGREGATION_STRATEGIES:
        expls = hsi.explain_with(adapter, TEXTS, "saliency", aggregation_strategy=strategy, score="prob")
        for text, expl in zip(TEXTS, expls):
            with pytest.warns(UserWarning) if strategy in ("first", "average", "max") and model_type != "bert" else _quiet():
                reference = ner(text, aggregation_strategy=strategy)
            assert [(r["label"], r["start"], r["end"]) for r in expl.rows] == [
                (e.get("entity_group", e.get("entity")), e["start"], e["end"]) for e in reference
            ], (model_type, strategy, text)
            np.testing.assert_allclose([r["probability"] for r in expl.rows], [float(e["score"]) for e in reference], atol=1e-5)


class _quiet:
    def __enter__(self):
        return self

    def __exit__(self, *_):
        return False


def test_erasure_equals_a_leave_one_out_computed_here(adapter):
    expl = hsi.explain_with(adapter, TEXTS[1], "erasure", target=TARGETS[1], replacement="unk", score="log_prob")
    full = np.log(direct_probabilities(adapter, expl))
    for j, special in enumerate(expl.special_tokens_mask):
        ids = list(expl.input_ids)
        ids[j] = adapter.tokenizer.unk_token_id
        with torch.no_grad():
            erased = torch.log_softmax(adapter.model(input_ids=torch.tensor([ids])).logits[0].double(), -1).numpy()
        for k, row in enumerate(expl.rows):
            drop = 0.0 if special else row_value(full, row) - row_value(erased, row)
            assert expl.attributions[k, j] == pytest.approx(drop, abs=1e-5)


def _captum_forward(adapter, expl, **inputs):
    """The rows' scores (logits) for Captum: (inputs, rows)."""
    logits = adapter.model(**inputs).logits
    return torch.stack([
        torch.stack([logits[:, list(ts), list(cs)].mean(-1) for ts, cs in zip(r["positions"], r["classes"])]).mean(0)
        for r in expl.rows
    ], dim=-1)


def test_erasure_and_integrated_gradients_equal_captum(adapter):
    from captum.attr import FeatureAblation, IntegratedGradients

    text, target = TEXTS[1], TARGETS[1]
    erasure = hsi.explain_with(adapter, text, "erasure", target=target, replacement="unk")
    ig = hsi.explain_with(adapter, text, "integrated_gradients", target=target, baseline="unk", n_steps=16)
    ids = torch.tensor([erasure.input_ids])
    special = torch.tensor(erasure.special_tokens_mask)
    embeds = adapter.model.get_input_embeddings()(ids).detach()
    unk_embed = adapter.model.get_input_embeddings()(torch.tensor([adapter.tokenizer.unk_token_id]))[0].detach()
    baseline = torch.where(special[None, :, None], embeds, unk_embed)
    ablation, gradients = FeatureAblation(lambda x: _captum_forward(adapter, erasure, input_ids=x)), IntegratedGradients(
        lambda e: _captum_forward(adapter, ig, inputs_embeds=e)
    )
    for k in range(len(erasure.rows)):
        ref = ablation.attribute(ids, baselines=adapter.tokenizer.unk_token_id, target=k)[0].numpy()
        np.testing.assert_allclose(erasure.attributions[k, ~special.numpy()], ref[~special.numpy()], atol=1e-4)
        ref = gradients.attribute(embeds, baselines=baseline, target=k, n_steps=16, method="gausslegendre")
        np.testing.assert_allclose(ig.attributions[k], ref.sum(-1)[0].detach().numpy(), atol=1e-4)


@pytest.mark.parametrize("strategy", [None, "average"])
def test_integrated_gradients_is_complete_per_row(adapter, strategy):
    expl = hsi.explain_with(adapter, TEXTS[2], "integrated_gradients", aggregation_strategy=strategy, n_steps=32,
                            score="log_prob")
    for k, row in enumerate(expl.rows):
        gap = row["input_score"] - row["baseline_score"]
        assert abs(float(expl.attributions[k].sum(dtype=np.float64)) - gap) <= 1e-2 * max(abs(gap), 1e-3)
    assert not expl.warnings


@pytest.mark.parametrize(("method", "params"), [("shapley_sampling", {"n_samples": 4}), ("kernel_shap", {"n_samples": 40})])
def test_shapley_methods_are_efficient_per_row(adapter, method, params):
    expl = hsi.explain_with(adapter, TEXTS[0], method, target=TARGETS[1], replacement="unk", level="token", **params)
    for k, row in enumerate(expl.rows):
        assert float(expl.attributions[k].sum(dtype=np.float64)) == pytest.approx(
            row["input_score"] - row["baseline_score"], abs=1e-5
        )


@pytest.mark.parametrize("method", ROW_METHODS)
def test_batch_equals_one_by_one(adapter, method):
    explainer = get_explainer(method).create(adapter, **FAST.get(method, {}))
    for expl in assert_batch_equals_one_by_one(explainer, TEXTS, TARGETS):
        assert row_to_explanation(explanation_to_row(expl)) == expl  # a dataset row and back


def test_given_targets_make_the_rows_asked_for(adapter):
    expl = hsi.explain_with(adapter, TEXTS[1], "saliency", target=TARGETS[1])
    first, span = expl.rows
    assert (first["label"], first["text"], first["classes"]) == ("B-PER", "a", [[1]])
    assert (span["label"], span["text"], span["classes"]) == ("LOC", "dull movie", [[3], [4]])  # IOB2: B- then I-
    predicted = hsi.explain_with(adapter, TEXTS[0], "saliency")
    label = predicted.rows[0]["label"]
    by_type = hsi.explain_with(adapter, TEXTS[0], "saliency", target=label.split("-")[-1])
    assert [r["text"] for r in by_type.rows] == [r["text"] for r in predicted.rows if r["label"].endswith(label[1:])]


def test_bad_targets_inputs_and_parameters_are_refused(adapter):
    errors = hsi.errors
    cases = [
        ({"target": "PERS"}, errors.UnknownTargetError, r"Did you mean 'PER'"),
        ({"target": 40}, errors.UnknownTargetError, "word index 40 is out of range"),
        ({"target": {(3, 1): "PER"}}, errors.UnknownTargetError, "0 <= start < end"),
        ({"target": 1.5}, errors.UnknownTargetError, "word index"),
        ({"target": 0, "aggregation_strategy": "simple"}, errors.InvalidParameterError, "does not apply to given words"),
        ({"aggregation_strategy": "mean"}, errors.InvalidParameterError, "is not one of none, simple"),
    ]
    for kwargs, error, message in cases:
        with pytest.raises(error, match=message):
            hsi.explain_with(adapter, TEXTS[1], "saliency", **kwargs)
    with pytest.raises(errors.InvalidInputError, match="sentence pairs do not apply"):
        hsi.explain_with(adapter, (TEXTS[0], TEXTS[1]), "saliency")
    with pytest.raises(errors.InvalidParameterError, match="replacement='delete' drops tokens"):
        hsi.explain_with(adapter, TEXTS[1], "erasure")


def test_no_predicted_entity_names_the_fix():
    model, tokenizer = tiny_token_classifier("bert")
    adapter = hsi.ModelAdapter(model, tokenizer)
    outside = torch.nn.functional.one_hot(torch.tensor(0), len(NER_LABELS)).float() * 100
    with torch.no_grad():
        saved = model.classifier.bias.clone()
        model.classifier.bias.copy_(outside)  # every token "O"
    try:
        with pytest.raises(hsi.errors.UnknownTargetError, match="no word predicted as an entity"):
            hsi.explain_with(adapter, TEXTS[1], "saliency")
    finally:
        with torch.no_grad():
            model.classifier.bias.copy_(saved)


@pytest.mark.parametrize("model_type", ["bert", "llama"])
def test_a_model_that_predicts_no_entity_explains_the_words_named(model_type):
    """The automatic baseline traces the model on a probe input; that must not need an entity."""
    model, tokenizer = tiny_token_classifier(model_type)
    model = copy.deepcopy(model)  # the builder's models are shared between tests
    head = model.classifier if model_type == "bert" else model.score
    with torch.no_grad():
        head.bias.copy_(torch.nn.functional.one_hot(torch.tensor(0), len(NER_LABELS)).float() * 100)  # every token "O"
    adapter = hsi.ModelAdapter(model, tokenizer)
    expl = hsi.explain_with(adapter, TEXTS[1], "integrated_gradients", target=1, n_steps=32)
    (row,) = expl.rows
    assert row["label"] == "O"
    gap = row["input_score"] - row["baseline_score"]
    assert abs(float(expl.attributions[0].sum(dtype=np.float64)) - gap) <= 1e-2 * max(abs(gap), 1e-3)


@pytest.mark.parametrize("method", OTHER_METHODS)
def test_methods_without_rows_refuse_clearly(adapter, method):
    with pytest.raises(hsi.errors.UnsupportedModelError, match="token classification head"):
        get_explainer(method).create(adapter)


def test_views_of_entity_rows(adapter):
    model = adapter.model
    model.train()
    try:
        expl = hsi.explain_with(adapter, TEXTS[0], "gradient_x_input", aggregation_strategy="simple")
        assert model.training  # the caller's mode is restored
    finally:
        model.eval()
    view = expl.row(0)
    assert view.target_label == expl.rows[0]["label"] and len(view.tokens) == len(expl.tokens)
    html = expl.to_html()
    assert html.count('class="hfsi-entity"') == expl.n_rows  # the text with every entity boxed
    assert html.count("<tr data-row=") == expl.n_rows and html.count('class="hfsi-explanation"') == expl.n_rows
    terminal = expl.to_terminal(color=False)
    assert all(f"target: {r['label']} {r['text']!r}" in terminal for r in expl.rows)
    assert repr(expl).startswith(f"Explanation(method='gradient_x_input', rows=[\"{expl.rows[0]['label']} ")


def test_cli_explains_a_token_classifier(tmp_path, capsys):
    from hf_seqinterp.cli import main

    model, tokenizer = tiny_token_classifier("bert")
    model.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    assert main(["explain", "--model", str(tmp_path), TEXTS[0], "--method", "erasure", "-p", "replacement=mask",
                 "--aggregation-strategy", "simple", "--color", "never"]) == 0
    out = capsys.readouterr().out
    reference = hsi.explain_with(hsi.ModelAdapter(model, tokenizer), TEXTS[0], "saliency", aggregation_strategy="simple")
    assert out.count("method: erasure") == reference.n_rows
    assert main(["explain", "--model", str(tmp_path), TEXTS[1], "--target", "1", "-p", "n_steps=8", "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    expl = hsi.Explanation.from_dict(row)
    assert expl.method == "integrated_gradients" and [r["text"] for r in expl.rows] == ["dull"]


def test_attention_reads_the_rows_own_tokens(adapter):
    expl = hsi.explain_with(adapter, TEXTS[1], "attention", target=TARGETS[1])  # a word, and a two-word span
    with adapter.eager_attention(), torch.no_grad():
        attention = adapter.model(input_ids=torch.tensor([expl.input_ids]), output_attentions=True).attentions[-1]
    fused = attention[0].mean(0).double().numpy()  # last layer, heads averaged: (L, L)
    for k, row in enumerate(expl.rows):
        parts = row["positions"]
        expected = sum(fused[t] / (len(parts) * len(part)) for part in parts for t in part)
        np.testing.assert_allclose(expl.attributions[k], expected, atol=1e-6)
