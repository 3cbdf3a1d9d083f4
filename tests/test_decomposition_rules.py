"""Contextual decomposition: every rule is exact on its own, and the whole decomposition adds up to the
model's own activations at every layer, for every supported architecture, in float32 and float64."""

from __future__ import annotations

import contextlib
import copy
import types

import pytest
import torch
from conftest import needs_minilm, sst2_dev_sentences
from tiny_models import random_texts, tiny_model

from hf_seqinterp import ModelAdapter
from hf_seqinterp.decomposition import rules
from hf_seqinterp.decomposition.architectures import ARCHITECTURES
from hf_seqinterp.decomposition.propagate import Decomposer

SUPPORTED = ("bert", "roberta", "distilbert", "electra", "gpt2", "llama", "qwen2")
ATTENTION = rules.ATTENTION_RULES
ACTIVATION = rules.ACTIVATION_RULES
F64 = torch.float64


def random_pair(*shape, seed=0, rel_zero=False):
    g = torch.Generator().manual_seed(seed)
    rel = torch.zeros(shape, dtype=F64) if rel_zero else torch.randn(shape, generator=g, dtype=F64)
    return rel, torch.randn(shape, generator=g, dtype=F64)


def assert_exact(pair, expected, atol=1e-12):
    torch.testing.assert_close(pair[0] + pair[1], expected, atol=atol, rtol=0)


# ----------------------------------------------------------------- each rule on its own
@pytest.mark.parametrize("rel_zero", [False, True], ids=["random", "empty-set"])
def test_affine_rule_is_exact_and_keeps_empty_sets_empty(rel_zero):
    x = random_pair(3, 5, 7, rel_zero=rel_zero)
    weight, bias = torch.randn(4, 7, dtype=F64), torch.randn(4, dtype=F64)
    expected = torch.nn.functional.linear(rules.total(x), weight, bias)
    for where in ("split", "irrelevant"):
        out = rules.affine(x, weight, bias, bias_to=where)
        assert_exact(out, expected)
        if rel_zero:
            assert torch.equal(out[0], torch.zeros_like(out[0]))
    # the split follows the magnitudes: all of the bias to β where γ's part is 0
    only_rel = rules.affine((x[0] + 1.0, torch.zeros_like(x[1])), weight, bias)
    assert torch.equal(only_rel[1], torch.zeros_like(only_rel[1]))


def test_bias_goes_to_irrelevant_where_both_parts_are_zero():
    y = (torch.zeros(2, 3, dtype=F64), torch.zeros(2, 3, dtype=F64))
    bias = torch.tensor([1.0, -2.0, 3.0], dtype=F64)
    rel, irrel = rules.split_bias(y, bias)
    assert torch.equal(rel, torch.zeros_like(rel)) and torch.equal(irrel, bias.expand(2, 3))


@pytest.mark.parametrize("rel_zero", [False, True], ids=["random", "empty-set"])
def test_norm_rules_are_exact(rel_zero):
    x = random_pair(2, 4, 16, rel_zero=rel_zero, seed=1)
    weight, bias = torch.randn(16, dtype=F64), torch.randn(16, dtype=F64)
    out = rules.layer_norm(x, weight, bias, 1e-5)
    assert_exact(out, torch.nn.functional.layer_norm(rules.total(x), (16,), weight, bias, 1e-5))
    whole = rules.total(x)
    rms = whole * torch.rsqrt(whole.pow(2).mean(-1, keepdim=True) + 1e-6) * weight
    out_rms = rules.rms_norm(x, weight, 1e-6)
    assert_exact(out_rms, rms)
    if rel_zero:
        assert torch.equal(out[0], torch.zeros_like(out[0])) and torch.equal(
            out_rms[0], torch.zeros_like(out_rms[0])
        )


@pytest.mark.parametrize("rule", ACTIVATION)
@pytest.mark.parametrize("rel_zero", [False, True], ids=["random", "empty-set"])
def test_nonlinear_rules_are_exact(rule, rel_zero):
    x = random_pair(3, 11, rel_zero=rel_zero, seed=2)
    gate = random_pair(3, 11, rel_zero=rel_zero, seed=3)
    gelu = torch.nn.GELU()
    for fn, inputs in (
        (gelu, (x,)),
        (torch.tanh, (x,)),
        (torch.relu, (x,)),
        (lambda g, u: torch.nn.functional.silu(g) * u, (gate, x)),
    ):
        expected = fn(*(rules.total(p) for p in inputs))
        out = rules.nonlinear(fn, *inputs, rule=rule)
        assert_exact(out, expected)
        if rel_zero:
            assert torch.equal(out[0], torch.zeros_like(out[0]))


def test_nonlinear_rules_differ_in_where_the_interaction_goes():
    x = (torch.tensor([1.0], dtype=F64), torch.tensor([2.0], dtype=F64))
    square = lambda v: v * v  # interaction of β and γ: 2βγ = 4
    assert rules.nonlinear(square, x, rule="acd")[0].item() == 1.0  # β² only
    assert rules.nonlinear(square, x, rule="cdt")[0].item() == 5.0  # β² + 2βγ
    assert rules.nonlinear(square, x, rule="shapley")[0].item() == 3.0  # β² + βγ


@pytest.mark.parametrize("rel_zero", [False, True], ids=["random", "empty-set"])
def test_attention_rules_are_exact(rel_zero):
    q, k, v = (random_pair(2, 3, 5, 4, rel_zero=rel_zero, seed=s) for s in (4, 5, 6))
    mask = torch.zeros(2, 1, 5, 5, dtype=F64)
    mask[1, ..., 3:] = torch.finfo(F64).min
    probs = rules.attention_probs(rules.total(q), rules.total(k), mask, 0.5)
    expected = probs @ rules.total(v)
    for out in (rules.attention_fixed(probs, v), rules.attention_qk_split(q, k, v, mask, 0.5)):
        assert_exact(out, expected)
        if rel_zero:
            assert torch.equal(out[0], torch.zeros_like(out[0]))
    assert torch.equal(probs[1, ..., 3:], torch.zeros_like(probs[1, ..., 3:]))  # masked keys get exactly 0


def test_rotary_and_residual_and_normalize_are_exact():
    x, y = random_pair(2, 6, 8, seed=7), random_pair(2, 6, 8, seed=8)
    cos, sin = torch.randn(6, 8, dtype=F64), torch.randn(6, 8, dtype=F64)
    rotated = tuple(rules.rotate(part, cos, sin) for part in x)
    assert_exact(rotated, rules.rotate(rules.total(x), cos, sin))
    assert_exact(rules.add(x, y), rules.total(x) + rules.total(y))
    rel, irrel = rules.normalize(x)
    assert_exact((rel, irrel), rules.total(x), atol=0)
    assert not ((rel * irrel) < 0).any()


# ----------------------------------------------------------------- the whole model
@contextlib.contextmanager
def exact_rms_norms(model):
    """HF's Llama/Qwen2 RMSNorm computes in float32 whatever the model's dtype; for the float64
    comparison, run the reference model's RMSNorms in the model's own dtype."""

    def forward(self, hidden):
        scale = torch.rsqrt(hidden.pow(2).mean(-1, keepdim=True) + self.variance_epsilon)
        return self.weight * (hidden * scale)

    norms = [m for m in model.modules() if type(m).__name__.endswith("RMSNorm")]
    for m in norms:
        m.forward = types.MethodType(forward, m)
    try:
        yield
    finally:
        for m in norms:
            del m.forward


def reference(adapter, batch):
    with torch.no_grad(), exact_rms_norms(adapter.model):
        return adapter.forward(batch, output_hidden_states=True)


def classifier_bias(model) -> torch.Tensor | None:
    head = getattr(model, "classifier", getattr(model, "score", None))
    return getattr(head, "out_proj", head).bias


def check_decomposition(adapter, texts, atol, seed=0):
    """β + γ == the model's hidden states at every layer and its logits, for random relevant sets,
    both attention rules and every activation rule; S = ∅ gives β = 0 exactly; S = all tokens gives
    γ = 0 at every layer and γ_out = the classifier's bias, within `atol` (the quantities shared by a
    text's relevant sets are computed from its S = ∅ row, so this is up to float rounding)."""
    batch = adapter.collate(adapter.encode(texts))
    out = reference(adapter, batch)
    real = batch.attention_mask.bool()
    g = torch.Generator().manual_seed(seed)
    n = len(batch)
    rows = torch.arange(n).repeat(4)
    relevant = (torch.rand(len(rows), batch.input_ids.shape[1], generator=g) < 0.4) & real[rows]
    relevant[:n] = False  # the first copy of every text: S = ∅
    relevant[n : 2 * n] = real  # the second: S = every token
    bias = classifier_bias(adapter.model)
    bias = torch.zeros(adapter.num_labels, dtype=out.logits.dtype) if bias is None else bias.detach()
    for attention in ATTENTION:
        for activation in ACTIVATION:
            dec = Decomposer(adapter, attention_rule=attention, activation_rule=activation)(
                batch, rows, relevant, trace=True
            )
            worst = (dec.relevant + dec.irrelevant - out.logits[rows]).abs().max().item()
            assert worst <= atol, (attention, activation, worst)
            assert len(dec.hidden) == len(out.hidden_states)
            for layer, (part, expected) in enumerate(zip(dec.hidden, out.hidden_states)):
                gap = ((part[0] + part[1] - expected[rows]).abs() * real[rows, :, None]).max().item()
                assert gap <= atol * 10, (attention, activation, layer, gap)
            assert torch.equal(dec.relevant[:n], torch.zeros_like(dec.relevant[:n]))
            everything = slice(n, 2 * n)
            torch.testing.assert_close(dec.irrelevant[everything], bias.expand(n, -1), atol=atol, rtol=0)
            for part in dec.hidden:
                assert (part[1][everything] * real[:, :, None]).abs().max().item() <= atol * 10, (
                    attention,
                    activation,
                )


@pytest.mark.parametrize("model_type", SUPPORTED)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["float32", "float64"])
def test_decomposition_is_exact_on_every_supported_architecture(model_type, dtype):
    model, tokenizer = tiny_model(model_type)
    adapter = ModelAdapter(copy.deepcopy(model).to(dtype), tokenizer)
    check_decomposition(adapter, random_texts(5, seed=3), atol=1e-4 if dtype == torch.float32 else 1e-8)


@pytest.mark.parametrize("model_type", SUPPORTED)
def test_all_tokens_relevant_leaves_only_the_classifier_bias_irrelevant(model_type):
    model, tokenizer = tiny_model(model_type)
    adapter = ModelAdapter(copy.deepcopy(model).double(), tokenizer)
    batch = adapter.collate(adapter.encode(["a gripping , funny film"]))
    everything = batch.attention_mask.bool()
    head_bias = classifier_bias(adapter.model)
    expected = torch.zeros(adapter.num_labels, dtype=F64) if head_bias is None else head_bias.detach()
    for attention in ATTENTION:
        dec = Decomposer(adapter, attention_rule=attention)(batch, torch.tensor([0]), everything, trace=True)
        torch.testing.assert_close(dec.irrelevant[0], expected, atol=1e-10, rtol=0)
        for part in dec.hidden:
            assert part[1][everything].abs().max().item() <= 1e-10


@needs_minilm
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["float32", "float64"])
def test_decomposition_is_exact_on_minilm(minilm, dtype):
    adapter = (
        minilm
        if dtype == torch.float32
        else ModelAdapter(copy.deepcopy(minilm.model).double(), minilm.tokenizer)
    )
    check_decomposition(adapter, sst2_dev_sentences(4), atol=1e-4 if dtype == torch.float32 else 1e-8)


def test_architecture_table_lists_exactly_the_tested_families():
    assert set(ARCHITECTURES) == set(SUPPORTED)
