"""Faithfulness metrics: exact edge cases, closed forms on a bag-of-words model, references."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch
from metric_helpers import bow_adapter, bow_logits, distinct_word_texts, make_explanation, softmax
from scipy.stats import kendalltau
from tiny_models import random_texts, tiny_model

from hf_seqinterp import ModelAdapter, get_explainer
from hf_seqinterp.errors import InvalidInputError, InvalidParameterError
from hf_seqinterp.metrics import (
    ERASER_BINS,
    aopc_comprehensiveness,
    comprehensiveness,
    faithfulness,
    kendall_tau_b,
    leave_one_out,
    sufficiency,
    tau_loo,
)

TEXTS = ["the film was good and the music was great", "a dull plot", "never boring, always moving!"]
ALL = ["aopc_comprehensiveness", "aopc_sufficiency", "deletion_auc", "insertion_auc", "tau_loo"]


@pytest.fixture(scope="module")
def bow():
    return bow_adapter()


@pytest.fixture(scope="module")
def tiny_bert():
    return ModelAdapter(*tiny_model("bert"))


# ----------------------------------------------------------------------------- exact edge cases
@pytest.mark.parametrize("replacement", ["delete", "mask", "pad"])
def test_empty_rationale_comprehensiveness_and_full_sufficiency_are_exactly_zero(tiny_bert, replacement):
    expls = [make_explanation(tiny_bert, t) for t in TEXTS]
    empty = [np.zeros(len(e), dtype=bool) for e in expls]
    full = [~np.asarray(e.special_tokens_mask) for e in expls]
    assert comprehensiveness(expls, tiny_bert, rationales=empty, replacement=replacement).tolist() == [0.0] * 3
    assert sufficiency(expls, tiny_bert, rationales=full, replacement=replacement).tolist() == [0.0] * 3
    # and the other ends are p(x) - p(nothing left)
    comp_all = comprehensiveness(expls, tiny_bert, rationales=full, replacement=replacement)
    suff_none = sufficiency(expls, tiny_bert, rationales=empty, replacement=replacement)
    np.testing.assert_array_equal(comp_all, suff_none)


def test_aopc_is_the_mean_of_per_bin_comprehensiveness(tiny_bert):
    expls = [make_explanation(tiny_bert, t, attributions=None) for t in random_texts(6, seed=3)]
    result = faithfulness(expls, tiny_bert, ["aopc_comprehensiveness", "aopc_sufficiency"])
    for b, bin_fraction in enumerate(ERASER_BINS):
        masks = []
        for e in expls:
            content = np.flatnonzero(~np.asarray(e.special_tokens_mask))
            k = math.ceil(bin_fraction * len(content) - 1e-9)
            order = content[np.argsort(-e.attributions[content], kind="stable")]
            mask = np.zeros(len(e), dtype=bool)
            mask[order[:k]] = True
            masks.append(mask)
        np.testing.assert_allclose(result.per_bin["comprehensiveness"][:, b], comprehensiveness(expls, tiny_bert, rationales=masks), atol=1e-6)
        np.testing.assert_allclose(result.per_bin["sufficiency"][:, b], sufficiency(expls, tiny_bert, rationales=masks), atol=1e-6)
    np.testing.assert_allclose(result.values["aopc_comprehensiveness"], result.per_bin["comprehensiveness"].mean(1))


# ----------------------------------------------------------------------------- closed forms (bag of words)
def _hand(adapter, expl, replacement: str, bins=ERASER_BINS, points: int = 11) -> dict[str, float]:
    """Every metric recomputed with numpy from the bag-of-words table."""
    ids = np.asarray(expl.input_ids)
    special = np.asarray(expl.special_tokens_mask)
    content = np.flatnonzero(~special)
    n = len(content)
    order = content[np.argsort(-expl.attributions[content], kind="stable")]
    t = expl.target
    replace_id = {"mask": adapter.tokenizer.mask_token_id, "pad": adapter.tokenizer.pad_token_id}.get(replacement)

    def p(removed) -> float:
        keep = np.ones(len(ids), dtype=bool)
        keep[list(removed)] = False
        edited = ids[keep] if replacement == "delete" else np.where(keep, ids, replace_id)
        return softmax(bow_logits(adapter, edited))[t]

    full = p([])
    out = {
        "aopc_comprehensiveness": np.mean([full - p(order[: math.ceil(b * n - 1e-9)]) for b in bins]),
        "aopc_sufficiency": np.mean([full - p(order[math.ceil(b * n - 1e-9):]) for b in bins]),
    }
    grid = np.linspace(0, 1, points)
    ks = [math.floor(f * n + 0.5) for f in grid]
    deletion = [p(order[:k]) for k in ks]
    insertion = [p(order[k:]) for k in ks]
    out["deletion_auc"] = sum((deletion[j] + deletion[j + 1]) / 2 * (grid[j + 1] - grid[j]) for j in range(points - 1))
    out["insertion_auc"] = sum((insertion[j] + insertion[j + 1]) / 2 * (grid[j + 1] - grid[j]) for j in range(points - 1))
    loo = [full - p([i]) for i in content]
    out["tau_loo"] = kendalltau(loo, expl.attributions[content]).statistic
    return out


@pytest.mark.parametrize("replacement", ["delete", "mask", "pad"])
def test_metrics_equal_hand_computed_values_on_bag_of_words(bow, replacement):
    rng = np.random.default_rng(0)
    expls = []
    for text in distinct_word_texts(8, seed=5, min_words=2):
        e = make_explanation(bow, text)
        e.attributions = np.where(e.special_tokens_mask, 0, rng.normal(size=len(e))).astype(np.float32)
        expls.append(e)
    result = faithfulness(expls, bow, ALL, replacement=replacement)
    for i, expl in enumerate(expls):
        expected = _hand(bow, expl, replacement)
        for name in ALL:
            assert result.values[name][i] == pytest.approx(expected[name], abs=1e-5), (name, i)


def test_word_level_removes_whole_words(bow):
    text = "boringly heartfeltness charming film"
    expl = make_explanation(bow, text)
    groups = {}
    for pos, wid in enumerate(expl.word_ids):
        if wid is not None:
            groups.setdefault(wid, []).append(pos)
    assert any(len(g) > 1 for g in groups.values()), "the test needs a word split into several tokens"
    # word scores = sum of token scores; rank words, remove the best word entirely
    best = max(groups.values(), key=lambda g: expl.attributions[g].sum())
    rationale = np.zeros(len(expl), dtype=bool)
    rationale[best] = True
    ids = np.asarray(expl.input_ids)
    full = softmax(bow_logits(bow, ids))[expl.target]
    removed = softmax(bow_logits(bow, np.delete(ids, best)))[expl.target]
    result = faithfulness([expl], bow, ["aopc_comprehensiveness"], level="word", bins=[0.25])
    assert result.values["aopc_comprehensiveness"][0] == pytest.approx(full - removed, abs=1e-6)


# ----------------------------------------------------------------------------- tau-LOO
def test_kendall_tau_b_matches_scipy_with_ties():
    rng = np.random.default_rng(1)
    for _ in range(20):
        n = int(rng.integers(2, 40))
        x, y = rng.integers(0, 5, n).astype(float), rng.normal(size=n).round(1)
        expected = kendalltau(x, y).statistic
        got = kendall_tau_b(x, y)
        assert (math.isnan(expected) and math.isnan(got)) or got == pytest.approx(expected, abs=1e-12)
    assert math.isnan(kendall_tau_b([1.0], [2.0])) and math.isnan(kendall_tau_b([1, 1, 1], [1, 2, 3]))


def test_adjacent_duplicates_are_one_edited_input(bow):
    expl = make_explanation(bow, "very very good")
    loo = leave_one_out(expl, bow)[0]
    assert loo[1] == loo[2]  # dropping either "very" leaves the same ids: scored once, exactly tied


def test_tau_loo_of_leave_one_out_scores_is_one(tiny_bert):
    expls = [make_explanation(tiny_bert, t) for t in random_texts(5, seed=7, min_words=3)]
    loo = leave_one_out(expls, tiny_bert)
    as_explanations = [dataclasses.replace(e, attributions=s, method="leave_one_out") for e, s in zip(expls, loo)]
    assert tau_loo(as_explanations, tiny_bert).tolist() == [1.0] * 5


def test_leave_one_out_equals_the_erasure_explainer(tiny_bert):
    texts = random_texts(4, seed=3, min_words=3)
    erasure = get_explainer("erasure").create(tiny_bert, score="prob").explain(texts)
    for expl, loo in zip(erasure, leave_one_out(erasure, tiny_bert)):
        content = ~np.asarray(expl.special_tokens_mask)
        np.testing.assert_allclose(loo[content], expl.attributions[content], atol=1e-6)


def test_leave_one_out_scores_by_hand(bow):
    expl = make_explanation(bow, "the plot was dull")
    ids = np.asarray(expl.input_ids)
    full = softmax(bow_logits(bow, ids))[expl.target]
    expected = [0.0 if s else full - softmax(bow_logits(bow, np.delete(ids, i)))[expl.target]
                for i, s in enumerate(expl.special_tokens_mask)]
    np.testing.assert_allclose(leave_one_out(expl, bow)[0], expected, atol=1e-6)


# ----------------------------------------------------------------------------- batching, sharing, decoders
def test_batched_equals_one_by_one_and_variants_are_shared(tiny_bert):
    texts = random_texts(6, seed=11, min_words=2)
    a = [make_explanation(tiny_bert, t) for t in texts]
    b = [dataclasses.replace(e, attributions=-e.attributions) for e in a]
    together = faithfulness(a + b, tiny_bert, ALL)
    for i, expl in enumerate(a + b):
        alone = faithfulness([expl], tiny_bert, ALL)
        for name in ALL:
            assert together.values[name][i] == pytest.approx(alone.values[name][0], abs=1e-5)
    separate = faithfulness(a, tiny_bert, ALL).n_variants + faithfulness(b, tiny_bert, ALL).n_variants
    assert together.n_variants < separate  # full input and LOO variants are scored once per text


def test_decoder_without_special_tokens_can_delete_everything():
    adapter = ModelAdapter(*tiny_model("gpt2"))
    expls = get_explainer("random").create(adapter).explain(random_texts(3, seed=2), target=0)
    result = faithfulness(expls, adapter, ["insertion_auc", "aopc_sufficiency"])
    assert np.isfinite(result.values["insertion_auc"]).all()
    # the empty input (one pad token) is the same edited input for every text
    assert np.ptp(result.curves["insertion"][:, 0]) < 1e-6


def test_settings_are_recorded_and_validated(tiny_bert):
    expl = make_explanation(tiny_bert, TEXTS[0])
    result = faithfulness(expl, tiny_bert, ["aopc_comprehensiveness"], replacement="mask", score="logit")
    assert result.settings["replacement"] == "mask" and result.settings["score"] == "logit"
    with pytest.raises(InvalidParameterError, match="unknown faithfulness metric"):
        faithfulness(expl, tiny_bert, ["aopc"])
    with pytest.raises(InvalidParameterError, match="bins"):
        faithfulness(expl, tiny_bert, bins=[0, 0.5])
    with pytest.raises(InvalidParameterError, match="replacement='remove'"):
        faithfulness(expl, tiny_bert, replacement="remove")
    with pytest.raises(InvalidParameterError, match="unknown faithfulness setting"):
        faithfulness(expl, tiny_bert, bin=[0.5])
    with pytest.raises(InvalidInputError, match="has 3 entries but explanation 0 has"):
        comprehensiveness([expl], tiny_bert, rationales=[np.zeros(3, dtype=bool)])


def test_explanations_of_another_model_are_rejected(tiny_bert):
    gpt2 = ModelAdapter(*tiny_model("gpt2"))
    expl = make_explanation(gpt2, "a film " * 20)
    with pytest.raises(InvalidInputError, match="another tokenizer"):
        aopc_comprehensiveness(expl, tiny_bert)


def test_loo_ranking_beats_its_reverse(bow):
    """On a bag-of-words model, ranking by LOO gives a higher AOPC-comp than the reversed ranking,
    and the reversed ranking has tau-LOO = -1."""
    expls = [make_explanation(bow, t) for t in distinct_word_texts(10, seed=4, min_words=4)]
    loo = leave_one_out(expls, bow)
    best = [dataclasses.replace(e, attributions=s) for e, s in zip(expls, loo)]
    worst = [dataclasses.replace(e, attributions=-s) for e, s in zip(expls, loo)]
    assert aopc_comprehensiveness(best, bow).mean() > aopc_comprehensiveness(worst, bow).mean()
    torch.testing.assert_close(torch.tensor(tau_loo(worst, bow)), torch.full((10,), -1.0, dtype=torch.float64))
