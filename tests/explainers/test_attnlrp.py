"""AttnLRP: each rule element-wise against its relevance formula, conservation where it is exact
(CP-LRP on a bias-free Llama), LRP = gradient × input on a linear model, the ε-rule, and isolation
(no other model's forward or gradients change, during or after a run)."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch
from tiny_models import decoder_tokenizer, random_texts, tiny_model, wordpiece_tokenizer
from transformers import AutoConfig, AutoModelForSequenceClassification

import hf_seqinterp as hsi
from hf_seqinterp import ModelAdapter, lrp
from hf_seqinterp.errors import InvalidParameterError, UnsupportedModelError
from hf_seqinterp.explainers.attnlrp import CONSERVATION_WARNING

TEXTS = ["a gripping, funny film", "dull", *random_texts(3, seed=3)]


def double(shape, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=generator, dtype=torch.float64)


def relevance_in(x: torch.Tensor, y: torch.Tensor, upstream: torch.Tensor) -> torch.Tensor:
    """x ⊙ ∂̃(y·upstream)/∂x: the relevance at x when y holds relevance y ⊙ upstream."""
    (grad,) = torch.autograd.grad((y * upstream).sum(), x)
    return x.detach() * grad


# ----------------------------------------------------------------- rules, element-wise
@pytest.mark.parametrize("function", [torch.nn.GELU(), torch.nn.SiLU(), torch.nn.Tanh()])
def test_identity_rule_passes_relevance_through_unchanged(function):
    x, g = double((4, 7)).requires_grad_(True), double((4, 7), 1)
    x.data[0, 0] = 0.0
    y = lrp.identity_rule(x, function(x))
    torch.testing.assert_close(relevance_in(x, y, g), y.detach() * g, rtol=1e-12, atol=1e-15)


def test_uniform_rule_splits_a_product_in_halves():
    a, b = double((3, 5)).requires_grad_(True), double((3, 5), 1).requires_grad_(True)
    g = double((3, 5), 2)
    c = lrp.scale_gradient(a, 0.5) * lrp.scale_gradient(b, 0.5)
    grad_a, grad_b = torch.autograd.grad((c * g).sum(), (a, b))
    torch.testing.assert_close(a.detach() * grad_a, c.detach() * g / 2, rtol=1e-12, atol=1e-15)
    torch.testing.assert_close(b.detach() * grad_b, c.detach() * g / 2, rtol=1e-12, atol=1e-15)


def test_norm_rule_on_rmsnorm_is_the_identity_element_wise():
    from transformers.models.llama.modeling_llama import LlamaRMSNorm

    norm = LlamaRMSNorm(6, eps=1e-6).double()
    norm.weight.data = double(6, 3)
    x, g = double((2, 4, 6)).requires_grad_(True), double((2, 4, 6), 1)
    y = lrp.norm_rule(norm, x, norm(x))
    exact = norm.weight * x / torch.sqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6)  # LlamaRMSNorm rounds to float32
    torch.testing.assert_close(y, exact, rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(relevance_in(x, y, g), exact.detach() * g, rtol=1e-10, atol=1e-13)


def test_norm_rule_on_layernorm_is_linear_at_fixed_sigma():
    """R_x = x ⊙ ∂/∂x [w ⊙ (x − μ(x))/σ + b] with σ a constant; the bias keeps its share:
    Σ R_x = Σ (y − b) ⊙ g."""
    norm = torch.nn.LayerNorm(6, eps=1e-5).double()
    norm.weight.data, norm.bias.data = double(6, 3), double(6, 4)
    x, g = double((2, 4, 6)).requires_grad_(True), double((2, 4, 6), 1)
    got = relevance_in(x, lrp.norm_rule(norm, x, norm(x)), g)
    sigma = torch.sqrt(x.var(-1, unbiased=False, keepdim=True) + 1e-5).detach()
    reference = norm.weight * (x - x.mean(-1, keepdim=True)) / sigma + norm.bias
    torch.testing.assert_close(reference, norm(x))
    torch.testing.assert_close(got, relevance_in(x, reference, g), rtol=1e-10, atol=1e-13)
    torch.testing.assert_close(got.sum(-1), ((norm(x) - norm.bias) * g).sum(-1).detach(), rtol=1e-10, atol=1e-12)


class _Head(torch.nn.Module):
    is_causal = False
    training = False


def test_attention_rules_equal_their_relevance_formulas():
    """AttnLRP on O = softmax(s·q kᵀ) v, propagated by hand from R_O = O ⊙ c: the uniform rule on A·v
    (R_A = A ⊙ (R_O/2O) vᵀ, R_v = v ⊙ Aᵀ(R_O/2O)), the softmax rule (R_Z = Z ⊙ (R_A − A Σ_j R_A)) and
    the uniform rule on Z = s·q kᵀ (R_q = q ⊙ (R_Z/2Z)(s k), R_k = k ⊙ (R_Z/2Z)ᵀ(s q))."""
    q, k, v = (double((1, 1, 5, 4), seed).requires_grad_(True) for seed in range(3))
    c = double((1, 5, 1, 4), 3)
    out, _ = lrp._lrp_attention(_Head(), q, k, v, None, scaling=0.5, rule="attnlrp")
    grads = torch.autograd.grad((out * c).sum(), (q, k, v))
    q, k, v = q[0, 0].detach(), k[0, 0].detach(), v[0, 0].detach()
    z = 0.5 * q @ k.T
    weights = torch.softmax(z, -1)
    o = weights @ v
    torch.testing.assert_close(out[0, :, 0].detach(), o)
    per_unit = o * c[0, :, 0] / (2 * o)
    r_a = weights * (per_unit @ v.T)
    r_z = z * (r_a - weights * r_a.sum(-1, keepdim=True))
    r_q = q * ((r_z / (2 * z)) @ (0.5 * k))
    r_k = k * ((r_z / (2 * z)).T @ (0.5 * q))
    r_v = v * (weights.T @ per_unit)
    for grad, x, expected in zip(grads, (q, k, v), (r_q, r_k, r_v)):
        torch.testing.assert_close(x * grad[0, 0], expected, rtol=1e-9, atol=1e-12)


def test_cp_rule_holds_attention_weights_constant():
    q, k, v = (double((1, 2, 5, 4), seed).requires_grad_(True) for seed in range(3))
    c = double((1, 5, 2, 4), 3)
    out, _ = lrp._lrp_attention(_Head(), q, k, v, None, rule="cp")
    grad_q, grad_k, grad_v = torch.autograd.grad((out * c).sum(), (q, k, v), allow_unused=True)
    assert grad_q is None and grad_k is None
    torch.testing.assert_close((v * grad_v).sum(), (out * c).sum().detach())


# ----------------------------------------------------------------- whole models
def bias_free(model_type: str = "llama", layers: int = 2, **config) -> tuple[torch.nn.Module, object]:
    """A tiny float64 model of `model_type` with every bias zero (and larger norm weights than the
    init's ones, so that every rule matters)."""
    tokenizer = wordpiece_tokenizer() if model_type == "bert" else decoder_tokenizer()
    config = AutoConfig.for_model(
        model_type, vocab_size=len(tokenizer), hidden_size=32, intermediate_size=37, num_hidden_layers=layers,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64, num_labels=3,
        pad_token_id=0, bos_token_id=0, eos_token_id=0, **config,
    )  # fmt: skip
    torch.manual_seed(1)
    model = AutoModelForSequenceClassification.from_config(config).double().eval()
    for name, parameter in model.named_parameters():
        if name.endswith("bias"):
            parameter.data.zero_()
        elif "norm" in name.lower():
            parameter.data.uniform_(0.5, 1.5)
    return model, tokenizer


def bias_free_llama(layers: int = 2) -> tuple[torch.nn.Module, object]:
    return bias_free("llama", layers)


def test_cp_lrp_conserves_the_logit_on_a_bias_free_llama():
    adapter = ModelAdapter(*bias_free_llama())
    for expl in hsi.explain(TEXTS, adapter, method="attnlrp", attention_rule="cp"):
        total = float(expl.attributions.astype(np.float64).sum())
        assert total == pytest.approx(expl.extras["input_score"], abs=1e-6)
        assert expl.extras["relevance_sum"] == pytest.approx(total, abs=1e-12)
        assert not expl.warnings


@pytest.mark.parametrize("model_type", ["qwen2", "mistral"])
def test_cp_lrp_conserves_on_the_other_llama_family_types(model_type):
    """Every module of these types is covered by a rule (an uncovered one would leak relevance), and
    the private attention applies the model's own masks (a sliding window of 3 tokens here)."""
    model, tokenizer = bias_free(model_type, use_sliding_window=True, sliding_window=3)
    adapter = ModelAdapter(model, tokenizer)
    for text, expl in zip(TEXTS, hsi.explain(TEXTS, adapter, method="attnlrp", attention_rule="cp")):
        assert expl.extras["relevance_sum"] == pytest.approx(expl.extras["input_score"], abs=1e-6)
        ids = torch.tensor([adapter.encode([text])[0].input_ids])
        with torch.no_grad():
            direct = torch.softmax(model(input_ids=ids).logits, -1)[0].numpy()
        np.testing.assert_allclose(expl.probabilities, direct, rtol=1e-6)  # float32 in the Explanation


def test_cp_lrp_conserves_on_a_bias_free_bert_over_all_its_embeddings():
    """BERT's input is word + position + segment embeddings: their relevances together add up to the
    logit (the LayerNorms' centring conserves; with zero biases nothing is absorbed)."""
    model, tokenizer = bias_free("bert")
    leaves: list[torch.Tensor] = []

    def leaf(_module, _args, output):
        leaves.append(output.detach().requires_grad_(True))
        return leaves[-1]

    embeddings = model.bert.embeddings
    handles = [m.register_forward_hook(leaf) for m in (embeddings.word_embeddings, embeddings.position_embeddings,
                                                          embeddings.token_type_embeddings)]  # fmt: skip
    try:
        for text in TEXTS:
            leaves.clear()
            enc = tokenizer(text, return_tensors="pt")
            with lrp.relevance_rules(model, attention_rule="cp"):
                logit = model(**enc).logits[0, 0]
            grads = torch.autograd.grad(logit, leaves)
            total = sum((x.detach() * g).sum().item() for x, g in zip(leaves, grads))
            assert total == pytest.approx(logit.item(), abs=1e-9)
    finally:
        for handle in handles:
            handle.remove()


def test_attnlrp_reports_its_sum_next_to_the_logit():
    """The softmax rule does not conserve: Σ R differs from f, and both are recorded."""
    adapter = ModelAdapter(*bias_free_llama())
    expls = hsi.explain(TEXTS, adapter, method="attnlrp")
    gaps = [abs(e.extras["relevance_sum"] - e.extras["input_score"]) for e in expls]
    assert max(gaps) > 1e-4
    for e in expls:
        warned = abs(e.extras["relevance_sum"] - e.extras["input_score"]) > CONSERVATION_WARNING * abs(
            e.extras["input_score"]
        )
        assert bool(e.warnings) == warned


def linear_model() -> tuple[torch.nn.Module, object]:
    """A Llama without blocks and with its final norm removed: f = W E_last, linear in E."""
    model, tokenizer = bias_free_llama(layers=0)
    model.model.norm = torch.nn.Identity()
    return model, tokenizer


def test_lrp_equals_gradient_x_input_on_a_linear_model():
    adapter = ModelAdapter(*linear_model())
    ours = hsi.explain(TEXTS, adapter, method="attnlrp")
    reference = hsi.explain(TEXTS, adapter, method="gradient_x_input", at="word_embeddings")
    for e, r in zip(ours, reference):
        np.testing.assert_allclose(e.attributions, r.attributions, rtol=1e-6, atol=1e-9)
        assert e.extras["relevance_sum"] == pytest.approx(e.extras["input_score"], abs=1e-9)


def test_epsilon_rule_absorbs_relevance_as_f_squared_over_f_plus_epsilon():
    adapter = ModelAdapter(*linear_model())
    for eps in (1e-3, 0.1):
        for e in hsi.explain(TEXTS, adapter, method="attnlrp", epsilon=eps):
            f = e.extras["input_score"]
            assert e.extras["relevance_sum"] == pytest.approx(f * f / (f + np.sign(f) * eps), rel=1e-6)


@pytest.mark.parametrize("bias", [False, True])
def test_gamma_rule_equals_its_formula_element_wise(bias):
    layer = torch.nn.Linear(6, 4, bias=bias).double()
    x = double((3, 6), seed=1).requires_grad_(True)
    upstream = double((3, 4), seed=2)
    gamma = 0.25
    got = relevance_in(x, lrp.gamma_rule(layer, x, layer(x), gamma), upstream)
    contributions = x.detach()[:, :, None] * layer.weight.detach().T[None]  # (rows, i, j): x_i w_ij
    z = layer(x).detach()
    same = torch.where(z[:, None, :] >= 0, contributions.clamp(min=0), contributions.clamp(max=0))
    boosted = contributions + gamma * same
    expected = (boosted / boosted.sum(1, keepdim=True).add(z[:, None, :] - contributions.sum(1, keepdim=True))
                * (z * upstream)[:, None, :]).sum(-1)
    torch.testing.assert_close(got, expected, rtol=1e-10, atol=1e-12)
    if not bias:  # nothing absorbed: the layer conserves relevance
        torch.testing.assert_close(got.sum(-1), (z * upstream).sum(-1), rtol=1e-10, atol=1e-12)
    plain = relevance_in(x, lrp.gamma_rule(layer, x, layer(x), 0.0), upstream)
    torch.testing.assert_close(plain, relevance_in(x, layer(x), upstream))  # γ = 0: gradient × input


def test_gamma_rule_keeps_cp_lrp_conservative_and_changes_the_scores():
    adapter = ModelAdapter(*bias_free_llama())
    plain, boosted = (hsi.explain(TEXTS[:2], adapter, method="attnlrp", attention_rule="cp", gamma=g) for g in (0.0, 0.5))
    for p, b in zip(plain, boosted):
        assert b.extras["relevance_sum"] == pytest.approx(b.extras["input_score"], abs=1e-6)
        np.testing.assert_allclose(b.probabilities, p.probabilities, atol=1e-7)  # the forward is unchanged
        assert not np.allclose(b.attributions, p.attributions, atol=1e-4)


def test_batch_equals_one_by_one_for_both_rules():
    for model_type in ("bert", "llama"):
        adapter = ModelAdapter(*tiny_model(model_type))
        for rule in lrp.ATTENTION_RULES:
            batched = hsi.explain(TEXTS, adapter, method="attnlrp", attention_rule=rule, batch_size=len(TEXTS))
            for text, e in zip(TEXTS, batched):
                alone = hsi.explain(text, adapter, method="attnlrp", attention_rule=rule)
                np.testing.assert_allclose(e.attributions, alone.attributions, atol=1e-6, rtol=1e-5)


# ----------------------------------------------------------------- isolation
def plain_gradients(model: torch.nn.Module, ids: torch.Tensor) -> list[torch.Tensor]:
    embeds = model.get_input_embeddings()(ids).detach().requires_grad_(True)
    logits = model(inputs_embeds=embeds).logits
    return [*torch.autograd.grad(logits[:, 0].sum(), [embeds, *model.parameters()], allow_unused=True)]


def assert_same(got: list[torch.Tensor], expected: list[torch.Tensor]) -> None:
    assert len(got) == len(expected)
    for a, b in zip(got, expected):
        assert (a is None and b is None) or torch.equal(a, b)


def test_other_models_and_the_explained_one_are_unaffected_afterwards_and_meanwhile():
    explained, tokenizer = tiny_model("llama", seed=5)
    others = [tiny_model("bert")[0], tiny_model("llama")[0], explained]
    ids = [torch.tensor([[5, 9, 14, 21]]), torch.tensor([[7, 3, 11, 30, 2]]), torch.tensor([[7, 3, 11, 30, 2]])]
    before = [plain_gradients(m, i) for m, i in zip(others, ids)]
    implementations = [m.config._attn_implementation for m in others]

    adapter = ModelAdapter(explained, tokenizer)
    hsi.explain(TEXTS, adapter, method="attnlrp")
    for model, i, expected in zip(others, ids, before):
        assert_same(plain_gradients(model, i), expected)
    assert [m.config._attn_implementation for m in others] == implementations

    failures: list[str] = []

    def other_thread():
        for _ in range(20):
            for model, i, expected in zip(others[:2], ids[:2], before[:2]):
                got = plain_gradients(model, i)
                if not all(torch.equal(a, b) for a, b in zip(got, expected) if a is not None):
                    failures.append(type(model).__name__)

    thread = threading.Thread(target=other_thread)
    thread.start()
    for _ in range(5):
        hsi.explain(TEXTS, adapter, method="attnlrp", attention_rule="cp")
    thread.join()
    assert not failures


# ----------------------------------------------------------------- refusals and parameters
@pytest.mark.parametrize("model_type", ["roberta", "gpt2", "distilbert"])
def test_other_architectures_are_refused_naming_the_supported_ones(model_type):
    adapter = ModelAdapter(*tiny_model(model_type))
    with pytest.raises(UnsupportedModelError, match="Supported model types: bert, llama"):
        hsi.explain("a film", adapter, method="attnlrp")


def test_bad_parameters_give_clear_errors():
    adapter = ModelAdapter(*tiny_model("bert"))
    with pytest.raises(InvalidParameterError, match="attention_rule='softmax'"):
        hsi.explain("a film", adapter, method="attnlrp", attention_rule="softmax")
    with pytest.raises(InvalidParameterError, match="score='prob'"):
        hsi.explain("a film", adapter, method="attnlrp", score="prob")
    with pytest.raises(InvalidParameterError, match="epsilon"):
        hsi.explain("a film", adapter, method="attnlrp", epsilon=-1.0)
