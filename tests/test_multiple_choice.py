"""Multiple choice: a one-row classifier over an input's options, the chosen (context, option) pair explained.

Exact references: option probabilities against the model called on all (context, option) pairs at
once, (1, n_choices, L); the explained logit against the model on the chosen pair alone (it depends
on that pair only); erasure against leave-one-out computed here with the other options' logits held
fixed; Captum's FeatureAblation and IntegratedGradients on a forward that returns the chosen
option's logit; IG completeness and Shapley efficiency; batch == one by one for every method that
builds for the model (attention and relevance propagation included), and clear refusals.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from row_checks import assert_batch_equals_one_by_one
from tiny_models import tiny_head_model

import hf_seqinterp as hsi
from hf_seqinterp.explainers import get_explainer, list_methods

MC = [
    {"text": "the film was", "choices": ["good", "bad", "a boring story with a sad ending"]},
    ("she loved the", ["music", "plot"]),
    {"text": "they hated it so much and never", "choices": ["loved it", "hated it", "enjoyed it", "were there"]},
]
FAST = {"integrated_gradients": {"n_steps": 8}, "lime": {"n_samples": 30}, "kernel_shap": {"n_samples": 30},
        "shapley_sampling": {"n_samples": 3}, "attention_flow": {"start_layer": 1}}
#: methods that need something a tiny random model cannot give (a trained rationale generator) or
#: that have no rules for a multiple-choice head (contextual decomposition)
NOT_BUILT = {"rationale", "contextual_decomposition"}
METHODS = [m for m in list_methods() if m not in NOT_BUILT]


def mc_adapter(model_type: str) -> hsi.ModelAdapter:
    return hsi.ModelAdapter(*tiny_head_model("AutoModelForMultipleChoice", model_type))


@pytest.fixture(scope="module", params=["bert", "roberta"])
def adapter(request):
    return mc_adapter(request.param)


def option_logits(adapter, context: str, options: list[str]) -> np.ndarray:
    """The model on every (context, option) pair at once, as its forward expects: (1, n_choices, L)."""
    enc = adapter.tokenizer([context] * len(options), options, return_tensors="pt", padding=True)
    with torch.no_grad():
        return adapter.model(**{k: v[None] for k, v in enc.items()}).logits[0].double().numpy()


def pair_logit(adapter, expl, ids: np.ndarray) -> np.ndarray:
    """(n,) logit of the explained pair's id variants, each as a one-option input."""
    inputs = {"input_ids": torch.as_tensor(ids)[:, None]}
    if expl.token_type_ids is not None:
        inputs["token_type_ids"] = torch.tensor([expl.token_type_ids] * len(ids))[:, None]
    with torch.no_grad():
        return adapter.model(**inputs).logits[:, 0].double().numpy()


def test_probabilities_equal_the_model_on_all_options(adapter):
    for item, expl in zip(MC, hsi.explain_with(adapter, MC, "saliency")):
        context, options = (item["text"], item["choices"]) if isinstance(item, dict) else item
        logits = option_logits(adapter, context, options)
        np.testing.assert_allclose(expl.probabilities, torch.softmax(torch.as_tensor(logits), -1).numpy(), atol=1e-6)
        assert expl.labels == list(options) and expl.target == int(np.argmax(logits))
        assert expl.text == context and expl.text_pair == options[expl.target] == expl.target_label


def test_targets_by_index_and_text(adapter):
    assert hsi.explain_with(adapter, MC[0], "saliency", target=2).target_label == MC[0]["choices"][2]
    assert hsi.explain_with(adapter, MC[0], "saliency", target="BAD").target == 1
    assert hsi.explain_with(adapter, MC[0], "saliency", target="2").target == 2
    assert [e.target for e in hsi.explain_with(adapter, MC[:2], "saliency", target=[1, "plot"])] == [1, 1]
    with pytest.raises(hsi.errors.UnknownTargetError, match="out of range for input 0, which has 3 options"):
        hsi.explain_with(adapter, MC[0], "saliency", target=3)
    with pytest.raises(hsi.errors.UnknownTargetError, match="is not an option of input 0"):
        hsi.explain_with(adapter, MC[0], "saliency", target="great")
    with pytest.raises(hsi.errors.UnknownTargetError, match="option's index"):
        hsi.explain_with(adapter, MC[0], "saliency", target=-1)


def test_scores_hold_the_other_options_fixed(adapter):
    expl = hsi.explain_with(adapter, MC[0], "erasure", replacement="unk", score="log_prob", target=2)
    logits = option_logits(adapter, MC[0]["text"], MC[0]["choices"])
    ids = np.asarray([expl.input_ids])
    assert pair_logit(adapter, expl, ids)[0] == pytest.approx(logits[2], abs=1e-5)  # the pair alone
    assert expl.extras["input_score"] == pytest.approx(logits[2] - np.logaddexp.reduce(logits), abs=1e-5)
    for t, special in enumerate(expl.special_tokens_mask):
        if special:
            assert expl.attributions[t] == 0.0
            continue
        erased = ids.copy()
        erased[0, t] = adapter.tokenizer.unk_token_id
        moved = logits.copy()
        moved[2] = pair_logit(adapter, expl, erased)[0]
        drop = expl.extras["input_score"] - (moved[2] - np.logaddexp.reduce(moved))
        assert expl.attributions[t] == pytest.approx(drop, abs=1e-5)


@pytest.mark.parametrize(
    ("model_type", "method"),
    [("bert", m) for m in METHODS] + [pytest.param("roberta", m, marks=pytest.mark.slow) for m in METHODS],
)
def test_batch_equals_one_by_one(model_type, method):
    adapter = mc_adapter(model_type)
    if method == "attnlrp" and model_type != "bert":
        with pytest.raises(hsi.errors.UnsupportedModelError, match="attnlrp does not support"):
            get_explainer(method).create(adapter)
        return
    explainer = get_explainer(method).create(adapter, **FAST.get(method, {}))
    batch = assert_batch_equals_one_by_one(explainer, MC, [None, "plot", 3])
    assert [len(expl.probabilities) for expl in batch] == [len(expl.labels) for expl in batch] == [3, 2, 4]


@pytest.mark.parametrize("score", ["logit", "prob"])
def test_integrated_gradients_is_complete(adapter, score):
    expl = hsi.explain_with(adapter, MC[2], "integrated_gradients", score=score, n_steps=32)
    gap = expl.extras["input_score"] - expl.extras["baseline_score"]
    assert abs(float(expl.attributions.sum(dtype=np.float64)) - gap) <= 1e-2 * max(abs(gap), 1e-3)


def test_shapley_sampling_is_efficient(adapter):
    expl = hsi.explain_with(adapter, MC[2], "shapley_sampling", n_samples=4, score="log_prob")
    gap = expl.extras["input_score"] - expl.extras["baseline_score"]
    assert float(expl.attributions.sum(dtype=np.float64)) == pytest.approx(gap, abs=1e-5)


def test_equal_to_captum_on_the_chosen_options_logit(adapter):
    from captum.attr import FeatureAblation, IntegratedGradients

    ours = hsi.explain_with(adapter, MC[0], "erasure", replacement="unk", target=1)
    ids = torch.tensor([ours.input_ids])
    specials = torch.tensor([ours.special_tokens_mask])
    ablated = FeatureAblation(lambda x: torch.as_tensor(pair_logit(adapter, ours, x.numpy()))).attribute(
        ids, baselines=adapter.tokenizer.unk_token_id
    )
    np.testing.assert_allclose(ours.attributions, torch.where(specials, 0.0, ablated.double())[0], atol=1e-4)

    ig = hsi.explain_with(adapter, MC[0], "integrated_gradients", baseline="pad", n_steps=16, target=1)
    embeds = adapter.embed(ids).detach()
    base = torch.where(specials[..., None], embeds, adapter.embed(torch.tensor([adapter.pad_id])).detach())
    kwargs = {} if ig.token_type_ids is None else {"token_type_ids": torch.tensor([[ig.token_type_ids]])}

    def logit(x: torch.Tensor) -> torch.Tensor:
        types = {k: v.expand(len(x), -1, -1) for k, v in kwargs.items()}
        return adapter.model(inputs_embeds=x[:, None], **types).logits[:, 0]

    reference = IntegratedGradients(logit).attribute(embeds, baselines=base, n_steps=16, method="gausslegendre").sum(-1)
    np.testing.assert_allclose(ig.attributions, reference[0].detach().numpy(), atol=1e-4)


def test_refusals(adapter, tmp_path):
    with pytest.raises(hsi.errors.UnsupportedModelError, match="contextual_decomposition splits the logits"):
        get_explainer("contextual_decomposition").create(adapter)
    with pytest.raises(hsi.errors.InvalidInputError, match="has no options"):
        hsi.explain_with(adapter, "the film was", "saliency")
    with pytest.raises(hsi.errors.InvalidInputError, match="non-empty list of option texts"):
        hsi.explain_with(adapter, {"text": "the film was", "choices": []}, "saliency")
    with pytest.raises(hsi.errors.InvalidInputError, match="Input 0, option 1 is empty"):
        hsi.explain_with(adapter, ("the film was", ["good", " "]), "saliency")
    with pytest.raises(hsi.errors.InvalidInputError, match="has no options"):  # explain_dataset prepares as explain
        hsi.explain_dataset(adapter, ["a"], ["saliency"], output_dir=tmp_path / "out")


def test_cli_explains_a_choice(tmp_path, capsys):
    import json

    from hf_seqinterp.cli import main

    model, tokenizer = tiny_head_model("AutoModelForMultipleChoice", "bert")
    model.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    args = ["explain", "--model", str(tmp_path), "the film was", "--choice", "good", "--choice", "bad"]
    assert main([*args, "--target", "bad", "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    expl = hsi.Explanation.from_dict(row)
    assert expl.labels == ["good", "bad"] and expl.target_label == "bad" and expl.text_pair == "bad"
    assert main([*args, "--color", "never"]) == 0 and "method: " in capsys.readouterr().out
