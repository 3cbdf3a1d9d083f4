"""Attention explainers: exact invariants, independent references, batching, errors."""

from __future__ import annotations

import copy

import networkx as nx
import numpy as np
import pytest
import torch
from conftest import needs_minilm, needs_sst2, sst2_dev_sentences
from tiny_models import ARCHITECTURES, DECODERS, random_texts, tiny_model

from hf_seqinterp import Explanation, InputTooLongError, InvalidParameterError, ModelAdapter, get_explainer
from hf_seqinterp.explainers._rollout import GradientRollout, Rollout, attention_flow

METHODS = ("attention", "attention_rollout", "attention_flow", "gradient_rollout")
FUSIONS = ("mean", "max", "min")


def explainer(adapter, method, **params):
    return get_explainer(method).create(adapter, **params)


def real_mask(lengths, width):
    return torch.arange(width)[None, :] < torch.tensor(lengths)[:, None]


def random_attention(lengths, width, heads=3, seed=0):
    """Row-stochastic (B, H, L, L) weights over each row's real keys; padded keys get 0."""
    gen = torch.Generator().manual_seed(seed)
    logits = torch.randn(len(lengths), heads, width, width, generator=gen)
    keys = real_mask(lengths, width)[:, None, None, :]
    return torch.softmax(logits.masked_fill(~keys, float("-inf")), -1)


# ----------------------------------------------------------------- invariants through the consumers
@pytest.mark.parametrize("fusion", FUSIONS)
def test_rollout_rows_are_stochastic_over_real_tokens(fusion):
    lengths, width = [7, 4, 2], 7
    real = real_mask(lengths, width)
    rollout = Rollout(real, fusion)
    for layer in range(4):
        rollout(layer, random_attention(lengths, width, seed=layer))
    matrix = rollout.result()
    assert (matrix >= 0).all()
    for i, n in enumerate(lengths):
        torch.testing.assert_close(matrix[i, :n, :n].sum(-1), torch.ones(n), rtol=0, atol=1e-6)
        assert torch.count_nonzero(matrix[i, :n, n:]) == 0  # no mass on padding
        torch.testing.assert_close(matrix[i, n:, n:], torch.eye(width - n))


@pytest.mark.parametrize("fusion", FUSIONS)
def test_identity_attention_rolls_out_to_identity(fusion):
    lengths, width = [5, 3], 5
    rollout = Rollout(real_mask(lengths, width), fusion)
    eye = torch.eye(width).expand(2, 4, width, width)
    for layer in range(3):
        rollout(layer, eye)
    torch.testing.assert_close(rollout.result(), torch.eye(width).expand(2, width, width), rtol=0, atol=0)


@pytest.mark.parametrize("layers", [1, 2, 5])
def test_uniform_attention_rollout_formula(layers):
    lengths, width = [6, 4], 6
    real = real_mask(lengths, width)
    uniform = real[:, None, None, :].float().expand(2, 2, width, width)
    uniform = uniform / uniform.sum(-1, keepdim=True)
    rollout = Rollout(real, "mean")
    for layer in range(layers):
        rollout(layer, uniform)
    for i, n in enumerate(lengths):
        expected = 2.0**-layers * torch.eye(n) + (1 - 2.0**-layers) / n
        torch.testing.assert_close(rollout.result()[i, :n, :n], expected, rtol=0, atol=1e-6)


def test_rollout_start_layer_skips_lower_layers():
    lengths, width = [5], 5
    real = real_mask(lengths, width)
    full, top = Rollout(real, "mean"), Rollout(real, "mean", start_layer=2)
    attentions = [random_attention(lengths, width, seed=s) for s in range(3)]
    for layer, weights in enumerate(attentions):
        full(layer, weights)
        top(layer, weights)
    only_top = Rollout(real, "mean")
    only_top(0, attentions[2])
    torch.testing.assert_close(top.result(), only_top.result(), rtol=0, atol=0)
    assert not torch.allclose(full.result(), top.result())


def test_gradient_rollout_with_zero_gradients_is_identity():
    lengths, width = [4, 3], 4
    rollout = GradientRollout(real_mask(lengths, width))
    for layer in range(3):
        weights = random_attention(lengths, width, seed=layer)
        rollout.add(layer, weights, torch.zeros_like(weights))
    torch.testing.assert_close(rollout.result(), torch.eye(width).expand(2, width, width), rtol=0, atol=0)


def test_gradient_rollout_rule():
    """R = (I + Ā_2)(I + Ā_1) with Ā_l = mean_h (g ⊙ A)^+ (Chefer et al. 2021, generic rule)."""
    lengths, width = [4], 4
    rollout = GradientRollout(real_mask(lengths, width))
    attentions = [random_attention(lengths, width, seed=s) for s in (1, 2)]
    grads = [torch.randn_like(a) for a in attentions]
    for layer, (a, g) in enumerate(zip(attentions, grads)):
        rollout.add(layer, a, g)
    bars = [(g * a).clamp(min=0).mean(1)[0] for a, g in zip(attentions, grads)]
    expected = (torch.eye(width) + bars[1]) @ (torch.eye(width) + bars[0])
    torch.testing.assert_close(rollout.result()[0], expected, rtol=1e-6, atol=1e-6)
    assert (rollout.result()[0].sum(-1) >= 1).all()


# ----------------------------------------------------------------- attention flow
def networkx_flow(matrices, source):
    n, layers = matrices[0].shape[0], len(matrices)
    graph = nx.DiGraph()
    for level, matrix in enumerate(matrices, start=1):
        for q in range(n):
            for k in range(n):
                graph.add_edge((level, q), (level - 1, k), capacity=float(matrix[q, k]))
    flows = np.array([nx.maximum_flow_value(graph, (layers, source), (0, v)) for v in range(n)])
    return flows / flows.sum()


def augmented(seed, n):
    rng = np.random.default_rng(seed)
    w = rng.dirichlet(np.full(n, 0.4), size=n) + np.eye(n)
    return w / w.sum(1, keepdims=True)


def test_attention_flow_matches_networkx():
    matrices = [augmented(s, 6) for s in range(3)]
    for source in (0, 5):
        readout = np.eye(6)[source]
        np.testing.assert_allclose(attention_flow(matrices, readout), networkx_flow(matrices, source), atol=1e-7)


def test_attention_flow_equals_rollout_for_one_layer():
    matrix = augmented(7, 5)
    np.testing.assert_allclose(attention_flow([matrix], np.eye(5)[2]), matrix[2], atol=1e-8)


def test_flow_equals_rollout_end_to_end_on_a_one_layer_model():
    model, tokenizer = tiny_model("bert")
    model = copy.deepcopy(model)
    model.bert.encoder.layer = model.bert.encoder.layer[:1]
    model.config.num_hidden_layers = 1
    adapter = ModelAdapter(model, tokenizer)
    texts = random_texts(4, seed=3)
    flow = explainer(adapter, "attention_flow").explain(texts)
    rollout = explainer(adapter, "attention_rollout").explain(texts)
    for f, r in zip(flow, rollout):
        np.testing.assert_allclose(f.attributions, r.attributions, atol=1e-6)


def test_flow_refuses_long_inputs_with_a_clear_error():
    adapter = ModelAdapter(*tiny_model("bert"))
    flow = explainer(adapter, "attention_flow", max_tokens=5)
    with pytest.raises(InputTooLongError, match=r"text 1 of \d+ tokens \(limit max_tokens=5\).*attention_rollout"):
        flow.explain(["good", "a film that was good and then bad"])


# ----------------------------------------------------------------- end to end on constructed models
def uniform_attention_bert():
    """Tiny BERT whose queries and keys are zero: every layer attends uniformly to the real tokens."""
    model, tokenizer = tiny_model("bert")
    model = copy.deepcopy(model)
    with torch.no_grad():
        for layer in model.bert.encoder.layer:
            for lin in (layer.attention.self.query, layer.attention.self.key):
                lin.weight.zero_()
                lin.bias.zero_()
    return ModelAdapter(model, tokenizer)


def test_uniform_attention_model_end_to_end():
    adapter = uniform_attention_bert()
    layers = adapter.num_layers
    for expl in explainer(adapter, "attention_rollout").explain(random_texts(4, seed=2)):
        n = len(expl.tokens)
        expected = np.full(n, (1 - 2.0**-layers) / n)
        expected[0] += 2.0**-layers
        np.testing.assert_allclose(expl.attributions, expected, atol=1e-6)
    raw = explainer(adapter, "attention").explain("a good film")
    np.testing.assert_allclose(raw.attributions, np.full(len(raw.tokens), 1 / len(raw.tokens)), atol=1e-7)


def test_gradient_rollout_with_a_constant_score_is_one_hot():
    """Zero classifier weights: ∂f/∂A = 0 everywhere, so R = I and the scores are e_c."""
    for model_type in ("bert", "gpt2"):
        model, tokenizer = tiny_model(model_type)
        model = copy.deepcopy(model)
        head = model.classifier if model_type == "bert" else model.score
        with torch.no_grad():
            head.weight.zero_()
        for expl in explainer(ModelAdapter(model, tokenizer), "gradient_rollout").explain(random_texts(3)):
            expected = np.zeros(len(expl.tokens), dtype=np.float32)
            expected[expl.extras["position"]] = 1
            np.testing.assert_array_equal(expl.attributions, expected)


# ----------------------------------------------------------------- independent references
_EAGER_COPIES: dict[int, torch.nn.Module] = {}


def eager_copy(model: torch.nn.Module) -> torch.nn.Module:
    if id(model) not in _EAGER_COPIES:
        clone = copy.deepcopy(model)
        if clone._can_set_attn_implementation():
            clone.set_attn_implementation("eager")
        _EAGER_COPIES[id(model)] = clone
    return _EAGER_COPIES[id(model)]


def naive_matrix(adapter, text, method, target=None, start_layer=0):
    """output_attentions=True on an eager copy, then numpy float64: the textbook computation."""
    model = eager_copy(adapter.model)
    ids = torch.tensor([adapter.tokenizer(text)["input_ids"]])
    embeds = model.get_input_embeddings()(ids).detach().requires_grad_(True)
    out = model(inputs_embeds=embeds, output_attentions=True)
    for a in out.attentions:
        a.retain_grad()
    target = int(out.logits[0].argmax()) if target is None else target
    out.logits[0, target].backward()
    n = ids.shape[1]
    matrix = np.eye(n)
    for a in out.attentions[start_layer:]:
        weights = a[0].detach().double().numpy()
        if method == "attention_rollout":
            aug = weights.mean(0) + np.eye(n)
            matrix = (aug / aug.sum(-1, keepdims=True)) @ matrix
        else:
            relevance = np.clip(a.grad[0].double().numpy() * weights, 0, None).mean(0)
            matrix = matrix + relevance @ matrix
    return matrix


def naive_reference(adapter, text, method, target=None, start_layer=0):
    """The row of `naive_matrix` at the classified position (first token, or last for decoders)."""
    matrix = naive_matrix(adapter, text, method, target, start_layer)
    return matrix[-1 if adapter.pooling == "last" else 0]


@pytest.mark.parametrize("model_type", list(ARCHITECTURES))
@pytest.mark.parametrize("method", ["attention_rollout", "gradient_rollout"])
def test_matches_naive_reference(model_type, method):
    adapter = ModelAdapter(*tiny_model(model_type))
    texts = random_texts(3, seed=11)
    for text, expl in zip(texts, explainer(adapter, method).explain(texts)):
        np.testing.assert_allclose(expl.attributions, naive_reference(adapter, text, method), atol=2e-6, rtol=1e-5)


@needs_minilm
@needs_sst2
def test_minilm_matches_naive_reference(minilm):
    texts = sst2_dev_sentences(3)
    for method, params in [("attention_rollout", {"start_layer": 2}), ("gradient_rollout", {})]:
        for text, expl in zip(texts, explainer(minilm, method, **params).explain(texts, target="POSITIVE")):
            reference = naive_reference(minilm, text, method, target=1, start_layer=params.get("start_layer", 0))
            np.testing.assert_allclose(expl.attributions, reference, atol=2e-6, rtol=1e-5)


# ----------------------------------------------------------------- batching and the architecture matrix
@pytest.mark.parametrize("model_type", list(ARCHITECTURES))
def test_batch_equals_one_by_one(model_type):
    adapter = ModelAdapter(*tiny_model(model_type))
    texts = random_texts(3, seed=4)
    for method in METHODS:
        ex = explainer(adapter, method)
        batched = ex.explain(texts)
        for text, expl in zip(texts, batched):
            alone = ex.explain(text)
            np.testing.assert_allclose(expl.attributions, alone.attributions, atol=1e-5, err_msg=method)
            assert expl.target == alone.target
            if method != "gradient_rollout":
                assert abs(float(expl.attributions.sum(dtype=np.float64)) - 1) < 1e-5
            expected = len(expl.tokens) - 1 if model_type in DECODERS else 0
            assert expl.extras["position"] == expected


@pytest.mark.parametrize("fusion", FUSIONS)
def test_fusions_end_to_end_on_a_decoder(fusion):
    adapter = ModelAdapter(*tiny_model("qwen2"))
    for expl in explainer(adapter, "attention_rollout", head_fusion=fusion).explain(random_texts(3, seed=9)):
        assert (expl.attributions >= 0).all()
        assert expl.attributions.sum(dtype=np.float64) == pytest.approx(1.0, abs=1e-5)


def test_mean_pooling_model_reads_the_average_row():
    """ModernBERT with classifier_pooling="mean": the explained row is the mean of R's rows."""
    model, tokenizer = tiny_model("modernbert")
    model = copy.deepcopy(model)
    model.config.classifier_pooling = "mean"
    adapter = ModelAdapter(model, tokenizer)
    texts = random_texts(3, seed=6)
    ex = explainer(adapter, "attention_rollout")
    for text, expl in zip(texts, ex.explain(texts)):
        assert expl.extras["position"] is None
        expected = naive_matrix(adapter, text, "attention_rollout").mean(0)
        np.testing.assert_allclose(expl.attributions, expected, atol=2e-6, rtol=1e-5)
        np.testing.assert_allclose(expl.attributions, ex.explain(text).attributions, atol=1e-5)


def test_raw_attention_layer_choice():
    adapter = ModelAdapter(*tiny_model("bert"))
    last = explainer(adapter, "attention").explain("a good film")
    same = explainer(adapter, "attention", layer=adapter.num_layers - 1).explain("a good film")
    first = explainer(adapter, "attention", layer=0).explain("a good film")
    np.testing.assert_array_equal(last.attributions, same.attributions)
    assert not np.allclose(last.attributions, first.attributions)
    assert last.extras["layer"] == adapter.num_layers - 1


def test_explanation_fields_and_round_trip():
    adapter = ModelAdapter(*tiny_model("roberta"))
    expl = explainer(adapter, "attention_rollout", head_fusion="max").explain("a gripping, funny film")
    assert expl.method == "attention_rollout"
    assert expl.aggregation == "sum_renorm"
    assert expl.params == {"head_fusion": "max", "start_layer": 0, "score": "logit"}
    assert sum(w.score for w in expl.to_words()) == pytest.approx(1.0)
    assert Explanation.from_dict(expl.to_dict()) == expl


# ----------------------------------------------------------------- clear errors
@pytest.mark.parametrize(
    "method, params, message",
    [
        ("attention_rollout", {"head_fusion": "median"}, r"head_fusion='median' is not one of mean, max, min"),
        ("attention", {"layer": 2}, r"layer=2 is out of range for a model with 2 layers"),
        ("attention_flow", {"start_layer": -3}, r"start_layer=-3 is out of range"),
        ("attention_rollout", {"score": "prob"}, r"does not depend on the explained score"),
        ("attention_flow", {"max_tokens": 0}, r"max_tokens must be an integer >= 1, got 0"),
        ("gradient_rollout", {"start_layer": 1.5}, r"start_layer must be an integer layer index, got 1.5"),
    ],
)
def test_bad_parameters(method, params, message):
    adapter = ModelAdapter(*tiny_model("bert"))
    with pytest.raises(InvalidParameterError, match=message):
        explainer(adapter, method, **params)
