"""Named architecture cases: IG completeness on pre-norm decoders with the default baseline, the
completeness warning, refused heads, torch.compile'd and PEFT-wrapped models, and no hooks left
behind after a failure."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from sweep.checks import snapshot
from sweep.models import build
from tiny_models import save_tiny_model, tiny_model

from hf_seqinterp import ModelAdapter, UnsupportedModelError, explain
from hf_seqinterp.cli import main

TEXTS = ["a good film", "the plot was dull but the music was great"]


@pytest.mark.parametrize("model_type", ["llama", "qwen2", "mistral", "gemma", "phi3"])
def test_integrated_gradients_complete_on_pre_norm_decoders(model_type):
    adapter = ModelAdapter(*build(model_type))
    assert adapter.scale_invariant_embeddings and adapter.tokenizer.pad_token_id is None
    for e in explain(TEXTS, adapter, method="integrated_gradients"):
        assert e.params["baseline"] != "zero"
        gap = e.extras["input_score"] - e.extras["baseline_score"]
        assert abs(e.extras["convergence_delta"]) <= 1e-2 * abs(gap)
        assert not e.warnings


def test_a_completeness_gap_above_five_percent_is_a_warning_naming_the_fix():
    adapter = ModelAdapter(*build("llama"))
    e = explain(TEXTS[1], adapter, method="integrated_gradients", baseline="zero", n_steps=8)
    gap = e.extras["input_score"] - e.extras["baseline_score"]
    assert abs(e.extras["convergence_delta"]) > 0.05 * abs(gap)
    assert any("n_steps" in w and "baseline" in w for w in e.warnings)


def test_bert_keeps_the_pad_baseline_and_is_not_scale_invariant():
    adapter = ModelAdapter(*tiny_model("bert"))
    assert not adapter.scale_invariant_embeddings and adapter.auto_baseline == "pad"


@pytest.mark.parametrize(
    ("head", "kind"),
    [("BertForNextSentencePrediction", "next-sentence-prediction"), ("BertForMaskedLM", "masked language-modelling")],
)  # fmt: skip
def test_other_heads_are_refused_at_adapter_creation(head, kind):
    import transformers

    source = "gpt2" if head.startswith("GPT2") else "bert"
    model, tokenizer = tiny_model(source)
    other = getattr(transformers, head)(model.config)
    with pytest.raises(UnsupportedModelError, match=rf"{head} has a {kind}.*ForSequenceClassification.*ForCausalLM.*ForTokenClassification"):
        ModelAdapter(other, tokenizer)


def test_a_saved_masked_lm_folder_is_refused_before_loading(tmp_path, capsys):
    from transformers import BertForMaskedLM

    model, tokenizer = tiny_model("bert")
    BertForMaskedLM(model.config).save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    with pytest.raises(UnsupportedModelError, match="BertForMaskedLM, not one of the sequence classifiers"):
        ModelAdapter.from_pretrained(tmp_path)
    assert main(["explain", "--model", str(tmp_path), "good film"]) == 2
    assert "randomly initialised classification head" in capsys.readouterr().err


def test_a_saved_causal_lm_folder_loads_as_a_causal_lm(tmp_path):
    from transformers import GPT2LMHeadModel

    model, tokenizer = tiny_model("gpt2")
    GPT2LMHeadModel(model.config).save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    adapter = ModelAdapter.from_pretrained(tmp_path)
    assert type(adapter.model).__name__ == "GPT2LMHeadModel" and adapter.head.kind == "causal_lm"


def test_a_saved_classifier_still_loads(tmp_path):
    adapter = ModelAdapter.from_pretrained(save_tiny_model(tmp_path, "bert"))
    assert adapter.num_labels == 3


def test_torch_compiled_decoder_matches_the_plain_model():
    model, tokenizer = build("llama")
    plain = ModelAdapter(model, tokenizer)
    compiled = ModelAdapter(torch.compile(model, backend="eager"), tokenizer)
    for method, params in [("integrated_gradients", {"n_steps": 8}), ("kernel_shap", {"n_samples": 16})]:
        a = explain(TEXTS, plain, method=method, **params)
        b = explain(TEXTS, compiled, method=method, **params)
        for x, y in zip(a, b):
            np.testing.assert_allclose(x.attributions, y.attributions, atol=1e-5)
            np.testing.assert_allclose(x.probabilities, y.probabilities, atol=1e-6)


@pytest.fixture(scope="module")
def lora_bert():
    peft = pytest.importorskip("peft")
    model, tokenizer = tiny_model("bert")
    model = copy.deepcopy(model)  # get_peft_model wraps layers in place; keep the shared tiny model intact
    config = peft.LoraConfig(
        task_type="SEQ_CLS", r=4, target_modules=["query", "value"], init_lora_weights=False
    )
    return peft.get_peft_model(model, config).eval(), tokenizer


def test_peft_lora_model_gradients_and_perturbations(lora_bert):
    model, tokenizer = lora_bert
    adapter = ModelAdapter(model, tokenizer)
    before = snapshot(model)
    with torch.no_grad():
        ids = torch.tensor([adapter.encode([TEXTS[1]])[0].input_ids])
        direct = torch.softmax(model(input_ids=ids).logits, -1)[0].numpy()
    for method in ("integrated_gradients", "gradient_x_input", "erasure", "kernel_shap"):
        together = explain(TEXTS, adapter, method=method)
        alone = explain(TEXTS[1], adapter, method=method)
        np.testing.assert_allclose(together[1].attributions, alone.attributions, atol=1e-5)
        np.testing.assert_allclose(together[1].probabilities, direct, atol=1e-5)
    ig = explain(TEXTS[1], adapter, method="integrated_gradients")
    assert abs(ig.extras["convergence_delta"]) <= 1e-2 * abs(
        ig.extras["input_score"] - ig.extras["baseline_score"]
    )
    with pytest.raises(UnsupportedModelError, match="merge_and_unload"):
        explain(TEXTS[0], adapter, method="contextual_decomposition")
    assert snapshot(model) == before


@pytest.mark.parametrize(
    "method", ["gradient_x_input", "integrated_gradients", "attention_rollout", "erasure"]
)
def test_a_failed_run_leaves_no_hooks(method):
    model, tokenizer = tiny_model("bert")
    adapter = ModelAdapter(model, tokenizer)
    adapter.normalizes_embeddings  # noqa: B018 - traced before the failure is installed
    before = snapshot(model)

    def fail(*_):
        raise RuntimeError("boom")

    handle = model.classifier.register_forward_hook(fail)
    try:
        with pytest.raises(RuntimeError, match="boom"):
            explain(TEXTS, adapter, method=method)
    finally:
        handle.remove()
    assert snapshot(model) == before


def test_tracing_the_embeddings_leaves_no_hooks_when_the_forward_fails():
    model, tokenizer = tiny_model("roberta")
    adapter = ModelAdapter(model, tokenizer)
    before = snapshot(model)
    handle = model.classifier.register_forward_hook(lambda *_: 1 / 0)
    try:
        with pytest.raises(ZeroDivisionError):
            adapter.normalizes_embeddings  # noqa: B018
        with pytest.raises(ZeroDivisionError):
            adapter.scale_invariant_embeddings  # noqa: B018
    finally:
        handle.remove()
    assert snapshot(model) == before


def test_padding_sensitive_models_batch_only_equal_lengths():
    adapter = ModelAdapter(*build("fnet"))
    assert adapter.padding_sensitive
    together = explain(TEXTS, adapter, method="erasure")
    for text, e in zip(TEXTS, together):
        np.testing.assert_allclose(
            e.attributions, explain(text, adapter, method="erasure").attributions, atol=1e-6
        )
