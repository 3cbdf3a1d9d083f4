"""ExplainableMixin and explainable(): explain() on a model, without copying or changing it."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from tiny_models import random_texts, tiny_model
from transformers import BertForSequenceClassification

import hf_seqinterp as hsi
from hf_seqinterp import ExplainableMixin, ExplainableModel, ModelAdapter, explainable


def test_explainable_adds_explain_without_copying_weights():
    model, tokenizer = tiny_model("bert")
    before = {k: v.data_ptr() for k, v in model.state_dict().items()}
    attrs_before = set(vars(model))
    wrapped = explainable(model, tokenizer)
    assert isinstance(wrapped, ExplainableModel) and wrapped.unwrap() is model
    expls = wrapped.explain(random_texts(3), method="integrated_gradients", n_steps=8)
    assert len(expls) == 3 and all(isinstance(e, hsi.Explanation) for e in expls)
    # same parameters, same storage, no attribute added to the model
    assert {k: v.data_ptr() for k, v in model.state_dict().items()} == before
    assert wrapped.get_input_embeddings().weight.data_ptr() == model.get_input_embeddings().weight.data_ptr()
    assert set(vars(model)) == attrs_before
    # the view forwards attributes and calls to the model
    assert wrapped.config is model.config
    ids = torch.tensor([[2, 10, 3]])
    torch.testing.assert_close(wrapped(input_ids=ids).logits, model(input_ids=ids).logits)


def test_explain_matches_the_functional_api():
    model, tokenizer = tiny_model("roberta")
    texts = random_texts(4, seed=11)
    via_view = explainable(model, tokenizer).explain(texts, method="saliency", target="neutral")
    direct = hsi.explain(texts, ModelAdapter(model, tokenizer), method="saliency", target="neutral")
    for a, b in zip(via_view, direct):
        np.testing.assert_array_equal(a.attributions, b.attributions)
        assert a.target == b.target == 1


def test_single_text_returns_one_explanation():
    model, tokenizer = tiny_model("bert")
    expl = explainable(model, tokenizer).explain("good film")
    assert isinstance(expl, hsi.Explanation) and expl.method == hsi.DEFAULT_METHOD == "integrated_gradients"


class ExplainableBert(ExplainableMixin, BertForSequenceClassification):
    pass


def test_mixin_as_a_base_class():
    model, tokenizer = tiny_model("bert")
    mixed = ExplainableBert(model.config).eval()
    mixed.load_state_dict(model.state_dict())
    mixed.set_explain_tokenizer(tokenizer)
    assert explainable(mixed) is mixed
    ours = mixed.explain(random_texts(2), method="gradient_x_input")
    ref = hsi.explain(random_texts(2), ModelAdapter(model, tokenizer), method="gradient_x_input")
    for a, b in zip(ours, ref):
        np.testing.assert_allclose(a.attributions, b.attributions, atol=1e-6)


def test_missing_tokenizer_is_a_clear_error():
    model, _ = tiny_model("bert")
    with pytest.raises(hsi.UnsupportedModelError, match="Could not load a tokenizer.*explainable\\(model, tokenizer\\)"):
        explainable(model).explain("good")


def test_explainable_rejects_non_models():
    with pytest.raises(hsi.UnsupportedModelError, match="expects a Hugging Face model"):
        explainable("bert-base-uncased")
