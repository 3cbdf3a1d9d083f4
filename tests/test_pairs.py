"""Sentence pairs end to end: tokenisation with segments, token_type_ids passed, every method, the
pipeline's {"text", "text_pair"} inputs, the CLI, dataset rows, views, and zero-shot classification."""

from __future__ import annotations

import copy
import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from tiny_models import tiny_model
from transformers import AutoModelForSequenceClassification

import hf_seqinterp as hsi
from hf_seqinterp.errors import InvalidInputError

PAIRS = [("the film was good", "the film was bad"), ("a dull movie with a great cast", "boring")]
FAST = {
    "integrated_gradients": {"n_steps": 32},
    "lime": {"n_samples": 40},
    "kernel_shap": {"n_samples": 40},
    "shapley_sampling": {"n_samples": 4},
    "attention_flow": {},
}


def nli_adapter(model_type: str = "bert") -> hsi.ModelAdapter:
    """A tiny random NLI classifier (entailment / neutral / contradiction) over the tiny tokenizers."""
    base, tokenizer = tiny_model(model_type)
    config = copy.deepcopy(base.config)
    config.id2label = {0: "entailment", 1: "neutral", 2: "contradiction"}
    config.label2id = {v: k for k, v in config.id2label.items()}
    if model_type == "bert":
        config.type_vocab_size = 2  # segment embeddings for both halves of a pair
    config.initializer_range = 0.2  # outputs far from uniform, so differences show
    torch.manual_seed(1)
    return hsi.ModelAdapter(AutoModelForSequenceClassification.from_config(config).eval(), tokenizer)


def direct_probabilities(adapter: hsi.ModelAdapter, pairs) -> np.ndarray:
    enc = adapter.tokenizer([a for a, _ in pairs], [b for _, b in pairs], padding=True, return_tensors="pt")
    with torch.no_grad():
        return torch.softmax(adapter.model(**enc).logits, -1).numpy()


@pytest.fixture(scope="module")
def bert_nli():
    return nli_adapter("bert")


def test_pair_encoding_has_segments_and_token_types(bert_nli):
    (enc,) = bert_nli.encode([PAIRS[0]])
    assert enc.text_pair == "the film was bad" and enc.is_pair
    assert enc.token_type_ids is not None and set(enc.token_type_ids) == {0, 1}
    segments = [enc.segment_of(i) for i in range(len(enc)) if not enc.special_tokens_mask[i]]
    assert segments == sorted(segments) and set(segments) == {0, 1}
    assert [enc.covered_text(i) for i in range(len(enc)) if not enc.special_tokens_mask[i]] == "the film was good the film was bad".split()
    # token_type_ids make a difference on this model: the direct call without them disagrees
    with torch.no_grad():
        batch = bert_nli.collate([enc])
        without = torch.softmax(bert_nli.model(input_ids=batch.input_ids).logits, -1).numpy()
    assert np.abs(without - direct_probabilities(bert_nli, PAIRS[:1])).max() > 1e-4


@pytest.mark.parametrize("method", [m for m in hsi.list_methods() if m != "rationale"])
def test_every_method_on_pairs_matches_the_model_and_batches(bert_nli, method):
    batch = hsi.explain(PAIRS, bert_nli, method=method, progress=False, **FAST.get(method, {}))
    probs = np.stack([e.probabilities for e in batch])
    np.testing.assert_allclose(probs, direct_probabilities(bert_nli, PAIRS), atol=1e-5)
    for pair, expl in zip(PAIRS, batch):
        alone = hsi.explain(pair, bert_nli, method=method, progress=False, **FAST.get(method, {}))
        np.testing.assert_allclose(expl.attributions, alone.attributions, rtol=1e-5, atol=1e-6)
        words = expl.to_words()
        assert [(w.text, w.segment) for w in words] == [(t, 0) for t in pair[0].split()] + [(t, 1) for t in pair[1].split()]
    if method == "integrated_gradients":
        for expl in batch:
            total = expl.attributions.sum()
            gap = expl.extras["input_score"] - expl.extras["baseline_score"]
            assert abs(total - gap) <= 1e-2 * abs(gap)


def test_text_pair_argument_equals_tuples(bert_nli):
    texts = [a for a, _ in PAIRS]
    as_kwarg = hsi.explain(texts, bert_nli, method="gradient_x_input", text_pair=[b for _, b in PAIRS])
    as_dicts = hsi.explain([{"text": a, "text_pair": b} for a, b in PAIRS], bert_nli, method="gradient_x_input")
    assert as_kwarg == as_dicts
    one = hsi.explain("the film was good", bert_nli, method="gradient_x_input", text_pair="the film was bad")
    assert (one.text, one.text_pair, one.tokens) == (as_kwarg[0].text, as_kwarg[0].text_pair, as_kwarg[0].tokens)
    np.testing.assert_allclose(one.attributions, as_kwarg[0].attributions, rtol=1e-5, atol=1e-7)
    with pytest.raises(InvalidInputError, match="text_pair gives 1 second segment"):
        hsi.explain(texts, bert_nli, method="gradient_x_input", text_pair=["only one"])
    with pytest.raises(InvalidInputError, match="text_pair of input 0 is empty"):
        hsi.explain(("good", " "), bert_nli, method="gradient_x_input")
    with pytest.raises(InvalidInputError, match="tuple of 3 items.*a sentence pair is"):
        hsi.explain([("a", "b", "c")], bert_nli, method="gradient_x_input")


def test_pair_round_trips_through_dict_and_dataset_rows(bert_nli):
    from hf_seqinterp.dataset import explanation_to_row, row_to_explanation

    expl = hsi.explain(PAIRS[0], bert_nli, method="erasure")
    assert hsi.Explanation.from_dict(json.loads(expl.to_json())) == expl
    assert row_to_explanation(explanation_to_row(expl)) == expl
    single = hsi.explain("the film was good", bert_nli, method="erasure")
    assert single.text_pair is None and row_to_explanation(explanation_to_row(single)) == single


def test_views_show_the_two_segments_apart(bert_nli):
    expl = hsi.explain(PAIRS[0], bert_nli, method="gradient_x_input")
    html = expl.to_html()
    assert html.count('<br class="hfsi-segment">') == 1
    first, second = html.split('<br class="hfsi-segment">')
    assert ">good<" in first and ">bad<" in second and ">bad<" not in first
    plain = expl.to_terminal(color=False).splitlines()
    assert "good" in plain[1] and "bad" not in plain[1] and "bad" in plain[2]


def test_pipeline_takes_text_pair_dicts(bert_nli):
    from hf_seqinterp.pipeline import ExplainTextPipeline

    pipe = ExplainTextPipeline(model=bert_nli.model, tokenizer=bert_nli.tokenizer, method="gradient_x_input")
    one = pipe({"text": PAIRS[0][0], "text_pair": PAIRS[0][1]})
    assert one["text_pair"] == PAIRS[0][1]
    assert [w["segment"] for w in one["words"]] == [0] * 4 + [1] * 4
    both = pipe([{"text": a, "text_pair": b} for a, b in PAIRS], batch_size=2)
    np.testing.assert_allclose([r["score"] for r in both], direct_probabilities(bert_nli, PAIRS).max(-1), atol=1e-5)
    with pytest.raises(InvalidInputError, match="Text 1 is None, not a string"):
        pipe(["good", None])
    with pytest.raises(InvalidInputError, match="No input given"):
        pipe([])


def test_cli_explains_a_pair(tmp_path, bert_nli):
    bert_nli.model.save_pretrained(tmp_path)
    bert_nli.tokenizer.save_pretrained(tmp_path)
    out = subprocess.run(
        [sys.executable, "-m", "hf_seqinterp.cli", "explain", "the film was good", "--text-pair", "the film was bad",
         "--model", str(tmp_path), "--method", "gradient_x_input", "--json"],
        capture_output=True, text=True, check=True,
    )
    (data,) = json.loads(out.stdout)
    assert data["text_pair"] == "the film was bad" and set(data["token_type_ids"]) == {0, 1}
    expected = direct_probabilities(bert_nli, PAIRS[:1])[0]
    np.testing.assert_allclose(data["probabilities"], expected, atol=1e-5)


def test_explain_dataset_with_a_pair_column(tmp_path, bert_nli):
    import datasets

    data = datasets.Dataset.from_dict({"premise": [a for a, _ in PAIRS], "hypothesis": [b for _, b in PAIRS]})
    result = hsi.explain_dataset(
        bert_nli, data, "erasure", output_dir=tmp_path / "run", text_column="premise",
        text_pair_column="hypothesis", progress=False,
    )
    expls = hsi.dataset_to_explanations(result)
    assert [(e.text, e.text_pair) for e in expls] == PAIRS
    for expl, pair in zip(expls, PAIRS):
        alone = hsi.explain(pair, bert_nli, method="erasure")
        assert (expl.tokens, expl.token_type_ids) == (alone.tokens, alone.token_type_ids)
        np.testing.assert_allclose(expl.attributions, alone.attributions, rtol=1e-5, atol=1e-6)


def test_zero_shot_ranks_labels_as_the_pipeline_does(bert_nli):
    from transformers import ZeroShotClassificationPipeline

    text, labels = "a dull movie with a great cast", ["film", "music", "sport"]
    expls = hsi.explain_zero_shot(text, labels, bert_nli, method="integrated_gradients", n_steps=16)
    reference = ZeroShotClassificationPipeline(model=bert_nli.model, tokenizer=bert_nli.tokenizer)(text, labels)
    assert [e.extras["zero_shot"]["label"] for e in expls] == reference["labels"]
    np.testing.assert_allclose([e.extras["zero_shot"]["score"] for e in expls], reference["scores"], atol=1e-5)
    assert all(e.target_label == "entailment" and e.text_pair == f"This example is {e.extras['zero_shot']['label']}." for e in expls)
    with pytest.raises(hsi.errors.UnsupportedModelError, match="no 'entailment' label"):
        hsi.explain_zero_shot(text, labels, hsi.ModelAdapter(*tiny_model("bert")))


def test_bart_nli_pairs_match_the_model_for_every_method():
    """An encoder–decoder NLI classifier (BART, the architecture of facebook/bart-large-mnli): pairs
    joined as `<s> text </s></s> text_pair </s>`, probabilities equal a direct call, and every method
    runs or (attention methods: the head reads the decoder) refuses clearly."""
    from sweep.models import build

    base, tokenizer = build("bart")
    config = copy.deepcopy(base.config)
    config.id2label = {0: "contradiction", 1: "neutral", 2: "entailment"}
    config.label2id = {v: k for k, v in config.id2label.items()}
    config.num_labels = 3
    torch.manual_seed(2)
    adapter = hsi.ModelAdapter(AutoModelForSequenceClassification.from_config(config).eval(), tokenizer)
    ran = []
    for method in [m for m in hsi.list_methods() if m != "rationale"]:
        try:
            expls = hsi.explain(PAIRS, adapter, method=method, progress=False, **FAST.get(method, {}))
        except hsi.errors.UnsupportedModelError as err:
            # attention methods: the head reads the decoder; CD and AttnLRP: no rules for BART
            assert method in ("attention", "attention_rollout", "attention_flow", "gradient_rollout",
                              "contextual_decomposition", "attnlrp"), (method, err)
            assert "encoder–decoder" in str(err) or "does not support BartForSequenceClassification" in str(err)
            continue
        ran.append(method)
        np.testing.assert_allclose(
            np.stack([e.probabilities for e in expls]), direct_probabilities(adapter, PAIRS), atol=1e-5
        )
        assert {w.segment for w in expls[0].to_words()} == {0, 1}
        if method == "integrated_gradients":
            for expl in expls:
                gap = expl.extras["input_score"] - expl.extras["baseline_score"]
                assert abs(expl.extras["convergence_delta"]) <= 1e-2 * abs(gap)
    assert {"saliency", "gradient_x_input", "integrated_gradients", "erasure", "occlusion", "lime", "kernel_shap",
            "shapley_sampling"} <= set(ran)
    ranked = hsi.explain_zero_shot("a dull movie with a great cast", ["film", "music"], adapter, method="erasure")
    assert ranked[0].extras["zero_shot"]["score"] >= ranked[1].extras["zero_shot"]["score"]
