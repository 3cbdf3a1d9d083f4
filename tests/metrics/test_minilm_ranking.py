"""On the real minilm-sst2 model: methods that read the model beat the random baseline on AOPC-comp.

Leave-one-out is the registered `erasure` method (with score="prob" it equals `metrics.leave_one_out`,
the p(x) − p(x without token i) the tau-LOO metric uses; tested in test_faithfulness.py).

Gradient × input taken at the word embeddings would NOT beat random here, and the reason is exact,
not noise: BERT applies LayerNorm to x = e + p + s (word + position + segment embeddings).
LayerNorm is invariant to scaling its input, so x · ∂f/∂x = 0, hence e · ∂f/∂e = −(p + s) · ∂f/∂x:
the product with the word embedding scores the position/segment embeddings, not the word. So on
models that normalise their embeddings, `gradient_x_input` takes x at the first block's input
(`at="auto"`); tests below check the identity, that the default beats random, and that the word-
embedding product ranks tokens below random when signed but above it by magnitude.
"""

from __future__ import annotations

import json

import pytest
import torch
from conftest import MINILM, SST2_DEV, needs_minilm, needs_sst2, sst2_dev_sentences

from hf_seqinterp import get_explainer, list_methods
from hf_seqinterp.cli import main
from hf_seqinterp.metrics import aopc_comprehensiveness

pytestmark = [needs_minilm, needs_sst2]


def test_leave_one_out_and_saliency_beat_random_on_32_sentences(minilm):
    texts = sst2_dev_sentences(32)
    score = {
        name: aopc_comprehensiveness(expls, minilm).mean()
        for name, expls in {
            "random": get_explainer("random").create(minilm).explain(texts),
            "saliency": get_explainer("saliency").create(minilm).explain(texts),
            "leave_one_out": get_explainer("erasure").create(minilm, score="prob").explain(texts),
        }.items()
    }
    assert score["leave_one_out"] > score["saliency"] > score["random"], score


def test_gradient_x_input_scores_the_position_embeddings_on_bert(minilm):
    """e·∇_e f = −(p + s)·∇_x f for every token: the word embedding drops out of the product."""
    batch = minilm.collate(minilm.encode(sst2_dev_sentences(4)))
    embeddings = minilm.model.bert.embeddings
    with torch.enable_grad():
        words = minilm.embed(batch.input_ids).detach().requires_grad_(True)
        logits = minilm.logits(batch, words)
        (grad,) = torch.autograd.grad(logits.max(-1).values.sum(), words)
    positions = embeddings.position_embeddings.weight[: batch.input_ids.shape[1]]
    segment = embeddings.token_type_embeddings.weight[0]
    real = batch.attention_mask.bool()
    gxi = (words * grad).sum(-1)[real]
    other = (-(positions + segment) * grad).sum(-1)[real]
    torch.testing.assert_close(gxi, other, atol=1e-6 * gxi.abs().max().item(), rtol=1e-4)


# ----------------------------------------------------------------------------- the acceptance run
#: fewer samples for the sampling explainers, so that every registered method fits in a slow test
SAMPLERS = ("-p", "lime.n_samples=64", "-p", "kernel_shap.n_samples=64", "-p", "shapley_sampling.n_samples=4")


@pytest.fixture(scope="module")
def evaluate_run(tmp_path_factory):
    """`hf-seqinterp evaluate` on 200 SST-2 dev sentences with every registered method."""
    out = tmp_path_factory.mktemp("evaluate")
    code = main([
        "evaluate", str(SST2_DEV), "--model", str(MINILM), "--limit", "200",
        "--metrics", "aopc_comprehensiveness,aopc_sufficiency", "-p", "integrated_gradients.n_steps=16",
        *SAMPLERS,
        "--output-dir", str(out), "--no-progress",
    ])
    assert code == 0
    return json.loads((out / "results.json").read_text()), (out / "results.md").read_text()


@pytest.mark.slow
def test_evaluate_runs_every_method_with_the_random_baseline(evaluate_run):
    saved, markdown = evaluate_run
    ran = {r["method"] for r in saved["results"]}
    assert ran | set(saved["skipped"]) == set(list_methods()) and "random" in ran
    assert "| `random` |" in markdown
    assert saved["info"]["n_texts"] == 200


@pytest.mark.slow
def test_leave_one_out_beats_random_on_200_sentences(evaluate_run):
    saved, _ = evaluate_run
    by_method = {r["method"]: r["metrics"]["aopc_comprehensiveness"] for r in saved["results"]}
    assert by_method["erasure"] > by_method["random"] + 0.1
    assert by_method["saliency"] > by_method["random"] and by_method["integrated_gradients"] > by_method["random"]


@pytest.mark.slow
def test_gradient_x_input_beats_random_on_200_sentences(evaluate_run):
    saved, _ = evaluate_run
    results = {r["method"]: r for r in saved["results"]}
    assert results["gradient_x_input"]["params"]["at"] == "embedding_output"
    by_method = {name: r["metrics"]["aopc_comprehensiveness"] for name, r in results.items()}
    assert by_method["gradient_x_input"] > by_method["random"] + 0.02, by_method


@pytest.mark.slow
def test_word_embedding_gradient_x_input_is_below_random_signed_and_above_it_by_magnitude(minilm):
    """Why the default moved to the block input: signed, the word-embedding product follows the
    position term and ranks tokens worse than random; its magnitude still carries signal."""
    texts = sst2_dev_sentences(200)
    random = get_explainer("random").create(minilm).explain(texts)
    words = get_explainer("gradient_x_input").create(minilm, at="word_embeddings").explain(texts)
    baseline = aopc_comprehensiveness(random, minilm).mean()
    assert aopc_comprehensiveness(words, minilm).mean() < baseline - 0.02
    assert aopc_comprehensiveness(words, minilm, rank_by="abs").mean() > baseline + 0.03
