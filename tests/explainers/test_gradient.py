"""Gradient explainers: architecture matrix, batch == one-by-one, Captum agreement, IG completeness."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import sst2_dev_sentences
from tiny_models import ARCHITECTURES, random_texts, tiny_model

import hf_seqinterp as hsi
from hf_seqinterp import ModelAdapter
from hf_seqinterp.explainers.gradient import QUADRATURES, quadrature_rule

GRADIENT_METHODS = {
    "saliency": {},
    "gradient_x_input": {},
    "integrated_gradients": {"n_steps": 16},
}


@pytest.mark.parametrize("model_type", list(ARCHITECTURES))
@pytest.mark.parametrize("method", list(GRADIENT_METHODS))
def test_batch_equals_one_by_one_on_every_architecture(model_type, method):
    adapter = ModelAdapter(*tiny_model(model_type))
    texts = random_texts(6, seed=7)
    params = GRADIENT_METHODS[method]
    batched = hsi.explain(texts, adapter, method=method, batch_size=6, **params)
    for text, expl in zip(texts, batched):
        alone = hsi.explain(text, adapter, method=method, **params)
        assert alone.tokens == expl.tokens
        np.testing.assert_allclose(expl.attributions, alone.attributions, atol=1e-5, rtol=0)
        assert np.all(np.isfinite(expl.attributions)) and np.abs(expl.attributions).max() > 0
        assert expl.method == method and expl.params["score"] == "logit"


@pytest.mark.parametrize("model_type", list(ARCHITECTURES))
def test_integrated_gradients_is_complete_on_every_architecture(model_type):
    adapter = ModelAdapter(*tiny_model(model_type))
    for expl in hsi.explain(random_texts(4, seed=2), adapter, method="integrated_gradients", n_steps=64):
        gap = expl.extras["input_score"] - expl.extras["baseline_score"]
        assert abs(float(expl.attributions.sum(dtype=np.float64)) - gap) <= 1e-2 * max(1.0, abs(gap))
        assert expl.extras["convergence_delta"] == pytest.approx(expl.attributions.sum(dtype=np.float64) - gap, abs=1e-6)


@pytest.mark.parametrize("rule", QUADRATURES)
def test_quadrature_rules_integrate_polynomials(rule):
    n = 64
    alphas, weights = quadrature_rule(n, rule)
    assert weights.sum() == pytest.approx(1.0, abs=1e-12)
    assert np.all((alphas >= 0) & (alphas <= 1))
    exact = 1 / 3  # ∫ α² dα
    tol = 1e-12 if rule == "gausslegendre" else 2 / n
    assert float(weights @ alphas**2) == pytest.approx(exact, abs=tol)


def test_ig_on_a_linear_model_is_exact_for_any_rule():
    """f(E) = Σ W ⊙ E: IG equals (E − E')·W for every rule and step count, and with a zero baseline
    it equals gradient × input."""
    model, tokenizer = tiny_model("bert")

    class Linear(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.config = model.config
            self.emb = model.get_input_embeddings()
            self.w = torch.nn.Parameter(torch.randn(3, model.config.hidden_size))

        def get_input_embeddings(self):
            return self.emb

        def forward(self, input_ids=None, inputs_embeds=None, attention_mask=None, **_):
            e = self.emb(input_ids) if inputs_embeds is None else inputs_embeds
            masked = e * attention_mask.unsqueeze(-1)
            return type("Out", (), {"logits": torch.einsum("bld,cd->bc", masked, self.w)})()

    torch.manual_seed(0)
    adapter = ModelAdapter(Linear(), tokenizer)
    texts = random_texts(3, seed=5)
    gxi = hsi.explain(texts, adapter, method="gradient_x_input", target=1)
    for rule in QUADRATURES:
        for n in (2, 7):
            igs = hsi.explain(texts, adapter, method="integrated_gradients", target=1, baseline="zero", quadrature=rule, n_steps=n)
            for ig, ref in zip(igs, gxi):
                real = ~np.asarray(ig.special_tokens_mask)  # the baseline keeps special tokens: they get 0
                np.testing.assert_allclose(ig.attributions[real], ref.attributions[real], atol=1e-5)
                assert not ig.attributions[~real].any()
                assert abs(ig.extras["convergence_delta"]) < 1e-5


# ----------------------------------------------------------------------------- real model
def _captum_forward(adapter):
    def forward(embeds, mask):
        return adapter.model(inputs_embeds=embeds, attention_mask=mask).logits

    return forward


def test_gradient_x_input_equals_captum(minilm):
    from captum.attr import InputXGradient

    texts = sst2_dev_sentences(12)
    ours = hsi.explain(texts, minilm, method="gradient_x_input", at="word_embeddings", batch_size=12)
    captum = InputXGradient(_captum_forward(minilm))
    for expl in ours:
        ids = torch.tensor([expl.input_ids])
        embeds = minilm.embed(ids).detach()
        attr = captum.attribute(embeds, target=expl.target, additional_forward_args=(torch.ones_like(ids),))
        np.testing.assert_allclose(expl.attributions, attr.sum(-1)[0].detach().numpy(), atol=1e-5, rtol=0)


def test_gradient_x_input_at_the_embedding_output_equals_captum(minilm):
    """The default on BERT-style models: x = h₀, the first block's input = the output of BERT's
    embeddings module (which Captum hooks; BERT passes h₀ to the block as a keyword)."""
    from captum.attr import LayerGradientXActivation

    texts = sst2_dev_sentences(12, offset=20)
    ours = hsi.explain(texts, minilm, method="gradient_x_input", batch_size=12)
    assert {e.params["at"] for e in ours} == {"embedding_output"}
    captum = LayerGradientXActivation(_captum_forward(minilm), minilm.model.bert.embeddings)
    for expl in ours:
        ids = torch.tensor([expl.input_ids])
        attr = captum.attribute(
            minilm.embed(ids).detach(), target=expl.target, additional_forward_args=(torch.ones_like(ids),)
        )
        np.testing.assert_allclose(expl.attributions, attr.sum(-1)[0].detach().numpy(), atol=1e-5, rtol=0)


NORMALIZED = {"bert", "roberta", "distilbert", "electra", "deberta-v2", "modernbert"}


@pytest.mark.parametrize("model_type", list(ARCHITECTURES))
def test_gradient_x_input_takes_the_block_input_where_embeddings_are_normalized(model_type):
    """Found by tracing the forward: a LayerNorm/RMSNorm between the input embeddings and the first
    block (ALBERT has one, but no list of blocks to hook, so it keeps the word embeddings)."""
    adapter = ModelAdapter(*tiny_model(model_type))
    assert adapter.normalizes_embeddings == (model_type in NORMALIZED)
    expected = "embedding_output" if model_type in NORMALIZED else "word_embeddings"
    assert hsi.get_explainer("gradient_x_input").create(adapter).params["at"] == expected


@pytest.mark.parametrize("model_type", ["llama", "qwen2"])
def test_block_input_is_the_word_embedding_where_nothing_is_added(model_type):
    """Rotary models add no position vector: h₀ = E, so both choices of x give the same scores."""
    adapter = ModelAdapter(*tiny_model(model_type))
    texts = random_texts(4, seed=3)
    words = hsi.explain(texts, adapter, method="gradient_x_input", at="word_embeddings")
    block = hsi.explain(texts, adapter, method="gradient_x_input", at="embedding_output")
    for a, b in zip(words, block):
        np.testing.assert_allclose(a.attributions, b.attributions, atol=1e-7, rtol=0)
        assert np.abs(a.attributions).max() > 0


def test_gradient_x_input_refuses_an_unknown_input_or_an_unhookable_model():
    with pytest.raises(hsi.InvalidParameterError, match="at='logits'"):
        hsi.explain("good", ModelAdapter(*tiny_model("bert")), method="gradient_x_input", at="logits")
    with pytest.raises(hsi.UnsupportedModelError, match="no list of"):
        hsi.explain("good", ModelAdapter(*tiny_model("albert")), method="gradient_x_input", at="embedding_output")


def test_integrated_gradients_equals_captum(minilm):
    from captum.attr import IntegratedGradients

    texts = sst2_dev_sentences(3, offset=40)
    ours = hsi.explain(texts, minilm, method="integrated_gradients", n_steps=20, baseline="mask")
    ig = IntegratedGradients(_captum_forward(minilm))
    mask_embedding = minilm.embed(torch.tensor([minilm.tokenizer.mask_token_id]))[0]
    for expl in ours:
        ids = torch.tensor([expl.input_ids])
        embeds = minilm.embed(ids).detach()
        special = torch.tensor(expl.special_tokens_mask)[None, :, None]
        baseline = torch.where(special, embeds, mask_embedding).detach()
        attr, delta = ig.attribute(
            embeds, baselines=baseline, target=expl.target, n_steps=20, method="gausslegendre",
            additional_forward_args=(torch.ones_like(ids),), return_convergence_delta=True,
        )
        np.testing.assert_allclose(expl.attributions, attr.sum(-1)[0].detach().numpy(), atol=1e-5, rtol=1e-4)
        assert expl.extras["convergence_delta"] == pytest.approx(delta.item(), abs=1e-4)


def test_integrated_gradients_completeness_on_sst2(minilm):
    texts = sst2_dev_sentences(20)
    expls = hsi.explain(texts, minilm, method="integrated_gradients", n_steps=50)
    for expl in expls:
        gap = expl.extras["input_score"] - expl.extras["baseline_score"]
        total = float(expl.attributions.sum(dtype=np.float64))
        assert abs(total - gap) <= 1e-2 * max(1.0, abs(gap)), (expl.text, total, gap)
        # word-level sums keep the total
        words = expl.to_words()
        assert sum(w.score for w in words) + sum(expl.special_scores().values()) == pytest.approx(total, abs=1e-5)
        # special tokens are kept in the baseline, so their attribution is exactly 0
        assert all(v == 0.0 for v in expl.special_scores().values())
    assert expls[0].params == {"baseline": "pad", "n_steps": 50, "quadrature": "gausslegendre", "max_batch_tokens": 4096, "baseline_on": "all", "score": "logit"}


def test_score_spaces_change_what_is_explained(minilm):
    text = sst2_dev_sentences(1)[0]
    logit = hsi.explain(text, minilm, method="integrated_gradients", n_steps=32)
    logp = hsi.explain(text, minilm, method="integrated_gradients", n_steps=32, score="log_prob")
    prob = hsi.explain(text, minilm, method="integrated_gradients", n_steps=32, score="prob")
    p = float(logit.probabilities[logit.target])
    assert logp.extras["input_score"] == pytest.approx(np.log(p), abs=1e-5)
    assert prob.extras["input_score"] == pytest.approx(p, abs=1e-6)
    assert logp.params["score"] == "log_prob" and not np.allclose(logp.attributions, logit.attributions)


def test_target_changes_the_sign_for_a_binary_classifier(minilm):
    """With two classes, the logit-difference view: attributions to NEGATIVE and to POSITIVE differ."""
    text = "a gripping, funny and moving film"
    pos = hsi.explain(text, minilm, target="POSITIVE")
    neg = hsi.explain(text, minilm, target="NEGATIVE")
    assert pos.target_label == "POSITIVE" and neg.target_label == "NEGATIVE"
    assert pos.predicted_label == "POSITIVE"
    assert not np.allclose(pos.attributions, neg.attributions)
