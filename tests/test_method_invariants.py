"""Invariants every registered method gets by being registered: batch == one-by-one, determinism,
a lossless round trip, and the user's model left exactly as it was — after a run and after a
failure inside one. Methods are read from the registry at collection time, so a new method is tested
without touching this file; one whose constructor needs an argument without a default (a trained
generator, ...) must add a factory to SETUP, or its tests fail and say so.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from tiny_models import random_texts, tiny_model

import hf_seqinterp as hsi
from hf_seqinterp.explainers import get_explainer, list_methods

MODEL_TYPES = ("bert", "llama")
TEXTS = ["a gripping, funny film", "dull", *random_texts(4, seed=7)]
#: cheap settings for the expensive methods (the invariants hold for any setting)
FAST = {
    "integrated_gradients": {"n_steps": 8},
    "lime": {"n_samples": 30},
    "kernel_shap": {"n_samples": 30},
    "shapley_sampling": {"n_samples": 3},
}


def _generator(adapter: hsi.ModelAdapter) -> dict:
    from hf_seqinterp.rationale import RationaleGenerator

    torch.manual_seed(0)
    generator = RationaleGenerator.for_predictor(adapter, hidden_size=16, replacement="zero_embedding")
    return {"generator": generator.eval()}


#: method -> adapter -> the constructor arguments it needs beyond FAST (no defaults for these)
SETUP = {"rationale": _generator}


@pytest.fixture(scope="module", params=MODEL_TYPES)
def adapter(request):
    return hsi.ModelAdapter(*tiny_model(request.param))


def build(method: str, adapter: hsi.ModelAdapter):
    params = {**FAST.get(method, {}), **(SETUP[method](adapter) if method in SETUP else {})}
    try:
        return get_explainer(method).create(adapter, **params)
    except hsi.errors.UnsupportedModelError as err:
        pytest.skip(f"{method} does not apply to {type(adapter.model).__name__}: {err}")
    except TypeError as err:  # a required argument nobody gave
        pytest.fail(f"{method} needs constructor arguments: add a factory to SETUP in {__file__} ({err})")


def model_state(model: torch.nn.Module) -> dict:
    """Everything an explainer may touch and must give back."""
    configs = [m.config for m in model.modules() if hasattr(m, "config")]
    return {
        "training": [m.training for m in model.modules()],
        "requires_grad": [p.requires_grad for p in model.parameters()],
        "grads": [p.grad is None for p in model.parameters()],
        "hooks": [
            (len(m._forward_hooks), len(m._forward_pre_hooks), len(m._backward_hooks), len(m._backward_pre_hooks))
            for m in model.modules()
        ],
        "configs": [(c.to_dict(), getattr(c, "_attn_implementation", None)) for c in configs],
        "weights": sum(float(p.detach().double().sum()) for p in model.parameters()),
    }


@pytest.mark.parametrize("method", list_methods())
def test_batch_equals_one_by_one_and_is_deterministic(adapter, method):
    explainer = build(method, adapter)
    batch = explainer.explain(TEXTS, batch_size=len(TEXTS), progress=False)
    again = explainer.explain(TEXTS, batch_size=len(TEXTS), progress=False)
    for expl, same in zip(batch, again):
        np.testing.assert_array_equal(expl.attributions, same.attributions)
    for text, expl in zip(TEXTS, batch):
        alone = explainer.explain(text)
        # relative to the attributions, or to O(1) logits for methods that take differences of them
        scale = max(1.0, float(np.abs(alone.attributions).max()))
        np.testing.assert_allclose(expl.attributions, alone.attributions, rtol=1e-5, atol=1e-5 * scale)
        np.testing.assert_allclose(expl.probabilities, alone.probabilities, atol=1e-6)
        assert expl.target == alone.target


@pytest.mark.parametrize("method", list_methods())
def test_probabilities_equal_a_direct_call_and_round_trip(adapter, method):
    explainer = build(method, adapter)
    expls = explainer.explain(TEXTS, progress=False)
    for text, expl in zip(TEXTS, expls):
        enc = adapter.tokenizer(text, return_tensors="pt")
        with torch.no_grad():
            direct = torch.softmax(adapter.model(**enc).logits, -1)[0].numpy()
        np.testing.assert_allclose(expl.probabilities, direct, atol=1e-5)
        assert hsi.Explanation.from_dict(expl.to_dict()) == expl
        assert expl.method == method and set(expl.params) == set(explainer.parameter_names())


@pytest.mark.parametrize("method", list_methods())
def test_model_is_left_as_it_was_also_after_a_failure(adapter, method):
    model = adapter.model
    model.train()  # a user's model in training mode must come back in training mode
    try:
        explainer = build(method, adapter)
        before = model_state(model)
        explainer.explain(TEXTS[:2], progress=False)
        assert model_state(model) == before

        calls = []

        def fail_on_second_call(*_):
            calls.append(1)
            if len(calls) == 2:
                raise RuntimeError("injected failure")

        handle = model.get_input_embeddings().register_forward_hook(fail_on_second_call)
        try:
            before = model_state(model)
            with pytest.raises(RuntimeError, match="injected failure"):
                explainer.explain(TEXTS[:2], batch_size=1, progress=False)
            assert model_state(model) == before
        finally:
            handle.remove()
    finally:
        model.eval()
