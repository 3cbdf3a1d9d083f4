"""Streaming attention weights layer by layer, the eager-attention switch, classified positions."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from conftest import needs_minilm
from tiny_models import ARCHITECTURES, DECODERS, random_texts, tiny_model, wordpiece_tokenizer
from transformers import AttentionInterface

from hf_seqinterp import ModelAdapter, UnsupportedModelError, get_explainer
from hf_seqinterp.attention_hooks import _configs, attention_sites


def adapter_for(model_type: str) -> ModelAdapter:
    return ModelAdapter(*tiny_model(model_type))


def no_hooks_left(model: torch.nn.Module) -> bool:
    return all(not m._forward_hooks for m in model.modules())


@pytest.mark.parametrize("model_type", list(ARCHITECTURES))
def test_streamed_weights_are_exactly_output_attentions(model_type):
    adapter = adapter_for(model_type)
    batch = adapter.collate(adapter.encode(random_texts(3, seed=5)))
    streamed: list[torch.Tensor] = []
    with torch.no_grad():
        out = adapter.stream_attentions(batch, lambda layer, w: streamed.append(w))
        reference = copy.deepcopy(adapter.model)
        if reference._can_set_attn_implementation():
            reference.set_attn_implementation("eager")
        ref = ModelAdapter(reference, adapter.tokenizer).forward(batch, output_attentions=True)
    assert len(streamed) == len(ref.attentions) == adapter.num_layers
    for mine, theirs in zip(streamed, ref.attentions):
        assert torch.equal(mine, theirs)
    assert torch.equal(out, ref.logits)
    assert no_hooks_left(adapter.model)


def test_eager_switch_restores_sdpa_even_when_the_call_raises():
    adapter = adapter_for("bert")
    assert adapter.model.config._attn_implementation == "sdpa"
    batch = adapter.collate(adapter.encode(["a good film"]))

    def fail(layer, weights):
        assert adapter.model.config._attn_implementation == "eager"
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        adapter.stream_attentions(batch, fail)
    assert adapter.model.config._attn_implementation == "sdpa"
    assert no_hooks_left(adapter.model)


def _sdpa_without_weights(module, query, key, value, attention_mask, **kwargs):
    """A stand-in for flash attention: an SDPA kernel that returns no attention weights."""
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    out, _ = sdpa_attention_forward(module, query, key, value, attention_mask, **kwargs)
    return out, None


def test_weightless_attention_kernel_is_switched_and_restored():
    AttentionInterface.register("no_weights_test", _sdpa_without_weights)
    model, tokenizer = tiny_model("llama")
    model = copy.deepcopy(model)
    model.set_attn_implementation("no_weights_test")
    adapter = ModelAdapter(model, tokenizer)
    text = "a gripping , funny film"
    with torch.no_grad():
        assert adapter.forward(adapter.collate(adapter.encode([text])), output_attentions=False).attentions is None
    expl = get_explainer("attention_rollout").create(adapter).explain(text)
    assert expl.attributions.sum() == pytest.approx(1.0, abs=1e-6)
    assert model.config._attn_implementation == "no_weights_test"
    reference = get_explainer("attention_rollout").create(adapter_for("llama")).explain(text)
    np.testing.assert_allclose(expl.attributions, reference.attributions, rtol=0, atol=1e-6)


def test_eager_switch_restores_mixed_sub_config_settings():
    """A composite model (text + vision sub-configs) with a different setting per sub-config."""
    from transformers import Gemma3Config, Gemma3ForSequenceClassification

    text = {"hidden_size": 32, "intermediate_size": 37, "num_hidden_layers": 2, "num_attention_heads": 4,
            "num_key_value_heads": 2, "head_dim": 8, "vocab_size": 300, "layer_types": ["full_attention"] * 2}
    vision = {"hidden_size": 16, "intermediate_size": 20, "num_hidden_layers": 1, "num_attention_heads": 2,
              "image_size": 28, "patch_size": 14}
    config = Gemma3Config(
        text_config=text, vision_config=vision, mm_tokens_per_image=4, num_labels=3,
        image_token_index=299, boi_token_index=297, eoi_token_index=298, pad_token_id=0,
    )
    model = Gemma3ForSequenceClassification(config).eval()
    model.set_attn_implementation({"text_config": "sdpa", "vision_config": "eager"})
    configs = _configs(model)
    assert len(configs) == 3
    before = [c._attn_implementation for c in configs]
    adapter = ModelAdapter(model, wordpiece_tokenizer())
    with adapter.eager_attention():
        assert all(c._attn_implementation == "eager" for c in configs)
    assert [c._attn_implementation for c in configs] == before
    with pytest.raises(KeyError), adapter.eager_attention():
        raise KeyError("inside")
    assert [c._attn_implementation for c in configs] == before


@needs_minilm
def test_minilm_with_default_sdpa_is_left_as_it_was(minilm):
    model = minilm.model
    assert model.config._attn_implementation == "sdpa"
    state = {k: v.clone() for k, v in model.state_dict().items()}
    for method in ("attention", "attention_rollout", "gradient_rollout"):
        expl = get_explainer(method).create(minilm).explain("a gripping, funny and moving film")
        assert expl.extras["position"] == 0
    assert model.config._attn_implementation == "sdpa"
    assert not model.training
    assert no_hooks_left(model)
    assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())
    assert all(p.grad is None for p in model.parameters())


def test_model_without_attention_gets_a_clear_error():
    from transformers import FNetConfig, FNetForSequenceClassification

    tokenizer = wordpiece_tokenizer()
    config = FNetConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, intermediate_size=37, num_labels=3)
    adapter = ModelAdapter(FNetForSequenceClassification(config).eval(), tokenizer)
    with pytest.raises(UnsupportedModelError, match=r"'attention_rollout' needs attention weights.*FNetForSequenceClassification"):
        get_explainer("attention_rollout").create(adapter)


@pytest.mark.parametrize("model_type", ["bert", "roberta", *DECODERS])
def test_classified_positions_and_readout(model_type):
    adapter = adapter_for(model_type)
    encodings = adapter.encode(["good", "a much longer text about a film that was good"])
    batch = adapter.collate(encodings)
    positions = adapter.classified_positions(batch).tolist()
    width = batch.input_ids.shape[1]
    expected = [width - 1, width - 1] if model_type in DECODERS else [0, 0]
    assert positions == expected
    readout = adapter.readout_weights(batch)
    assert readout.sum(-1).tolist() == [1.0, 1.0]
    assert readout[[0, 1], positions].tolist() == [1.0, 1.0]
    assert all(batch.attention_mask[i, p] == 1 for i, p in enumerate(positions))
    assert len(attention_sites(adapter.model)) >= 1
