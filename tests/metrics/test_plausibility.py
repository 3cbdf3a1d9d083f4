"""Plausibility metrics and rationale alignment: hand-made cases and scikit-learn as the reference."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import ERASER, MINILM, needs_eraser, needs_minilm
from metric_helpers import make_explanation
from sklearn.metrics import auc, precision_recall_curve
from tiny_models import tiny_model

from hf_seqinterp import ModelAdapter, get_explainer
from hf_seqinterp.errors import InvalidInputError, InvalidParameterError
from hf_seqinterp.metrics import (
    auprc,
    char_spans_to_token_mask,
    char_spans_to_token_spans,
    load_eraser,
    mask_to_spans,
    plausibility,
    plausibility_arrays,
    span_matches,
    token_scores,
    words_to_char_spans,
)


@pytest.fixture(scope="module")
def tiny_bert():
    return ModelAdapter(*tiny_model("bert"))


# ----------------------------------------------------------------------------- token and span scores
def test_token_scores_on_the_hand_example():
    precision, recall, f1, iou = token_scores([0, 1, 1, 0, 1, 0], [0, 1, 0, 0, 1, 1])
    assert (precision, recall, f1, iou) == pytest.approx((2 / 3, 2 / 3, 2 / 3, 1 / 2))
    assert token_scores([1, 1, 0], [0, 0, 0]) == (0.0, 0.0, 0.0, 0.0)


def test_iou_span_matching_at_one_half():
    assert span_matches([(1, 3), (4, 5)], [(1, 2), (4, 6)]) == 2  # IOU 1/2 and 1/2: both match
    assert span_matches([(1, 3)], [(0, 5)]) == 0  # IOU 2/5
    assert span_matches([(1, 3)], [(0, 5)], threshold=0.4) == 1


def test_iou_f1_follows_eraser_macro_and_micro():
    # instance 0: gold spans (1,3),(4,5); top-3 of the scores = tokens 1, 4, 5 -> spans (1,2),(4,6): P = R = 1
    # instance 1: gold span (0,2); top-2 = tokens 2, 3 -> span (2,4), IOU 0: P = R = 0
    golds = [np.array([0, 1, 1, 0, 1, 0], bool), np.array([1, 1, 0, 0], bool)]
    scores = [np.array([0, 5, 0, 0, 4, 3.0]), np.array([0, 0, 2, 1.0])]
    summary = plausibility_arrays(scores, golds, [[(1, 3), (4, 5)], [(0, 2)]]).summary()
    assert summary["iou_f1"] == pytest.approx(0.5)  # F1 of mean P = 1/2 and mean R = 1/2
    assert summary["iou_f1_micro"] == pytest.approx(2 / 3)  # 2 matches / 3 predicted, 2 / 3 gold spans
    # token level: instance 0 tp = 2 of 3 (F1 2/3), instance 1 tp = 0 -> macro mean 1/3, micro 2/5
    assert summary["token_f1"] == pytest.approx(1 / 3)
    assert summary["token_f1_micro"] == pytest.approx(2 / 5)


def test_auprc_equals_scikit_learn_with_ties():
    rng = np.random.default_rng(0)
    for case in range(20):
        n = int(rng.integers(3, 40))
        truth = rng.random(n) < 0.3
        truth[rng.integers(n)] = True
        scores = rng.integers(0, 4, n) / 3 if case % 2 else rng.normal(size=n).round(1)  # many ties
        precision, recall, _ = precision_recall_curve(truth, scores)
        assert auprc(truth, scores) == pytest.approx(auc(recall, precision), abs=1e-12), case
    assert auprc([0, 1, 1, 0], [0.1, 0.9, 0.8, 0.2]) == 1.0
    assert np.isnan(auprc([0, 0], [0.3, 0.1]))


def test_auprc_is_rank_based():
    truth = np.array([1, 0, 1, 0, 0, 1], bool)
    scores = np.array([0.3, -0.2, 0.9, 0.1, 0.1, -0.5])
    assert auprc(truth, scores) == auprc(truth, 7.5 * scores)


def test_top_options_and_errors():
    gold, scores = [np.array([1, 1, 0, 0], bool)], [np.array([4.0, 1, 3, 2])]
    assert plausibility_arrays(scores, gold, top=1).values["token_precision"][0] == 1.0
    assert plausibility_arrays(scores, gold, top=0.75).values["token_recall"][0] == 0.5  # 3 tokens: 0, 2, 3
    assert plausibility_arrays([-scores[0]], gold, rank_by="abs").values["token_f1"][0] == 0.5
    with pytest.raises(InvalidParameterError, match="top="):
        plausibility_arrays(scores, gold, top="all")
    with pytest.raises(InvalidInputError, match="4 scores but 3"):
        plausibility_arrays(scores, [np.ones(3, bool)])


def test_instances_without_rationale_tokens_are_skipped():
    result = plausibility_arrays([np.ones(3), np.arange(3.0)], [np.zeros(3, bool), np.array([0, 0, 1], bool)])
    summary = result.summary()
    assert (summary["n_evaluated"], summary["n_skipped"]) == (1, 1)
    assert summary["auprc"] == 1.0


# ----------------------------------------------------------------------------- alignment
def test_words_to_char_spans():
    text = "a  great\tfilm , truly"
    assert words_to_char_spans(text, [1, 2, 4]) == [(3, 13), (16, 21)]
    assert words_to_char_spans(text, [[0, 2]]) == [(0, 8)]
    with pytest.raises(InvalidInputError, match="outside the text's 5"):
        words_to_char_spans(text, [[4, 6]])


def test_char_spans_align_to_sub_word_tokens(tiny_bert):
    text = "the boringly heartfelt film"
    expl = make_explanation(tiny_bert, text)
    start = text.index("boringly")
    mask = char_spans_to_token_mask(expl, [(start, start + len("boringly"))])
    assert [t for t, m in zip(expl.tokens, mask) if m] == ["boring", "##l", "##y"]
    assert char_spans_to_token_spans(expl, [(start, start + 3)]) == [(2, 3)]  # a partial word covers its token
    with pytest.raises(InvalidInputError, match="not a \\(start, end\\) character range"):
        char_spans_to_token_mask(expl, [(5, 500)])


def test_truncated_rationales_are_dropped():
    adapter = ModelAdapter(*tiny_model("bert"), max_length=8)
    text = "good " * 20 + "awful"
    expl = make_explanation(adapter, text)
    assert char_spans_to_token_spans(expl, [(len(text) - 5, len(text))]) == []
    result = plausibility([expl], [[(len(text) - 5, len(text))]])
    assert result.summary()["n_skipped"] == 1


def test_mask_to_spans():
    assert mask_to_spans(np.array([0, 1, 1, 0, 1], bool)) == [(1, 3), (4, 5)]
    assert mask_to_spans(np.zeros(3, bool)) == []


def test_plausibility_of_explanations_with_char_spans_equals_token_masks(tiny_bert):
    texts = ["a gripping funny film", "the plot was dull but the music was great"]
    spans = [[(2, 10)], [(9, 17), (34, 41)]]
    expls = [make_explanation(tiny_bert, t) for t in texts]
    by_span = plausibility(expls, spans).summary()
    by_mask = plausibility(expls, [char_spans_to_token_mask(e, s) for e, s in zip(expls, spans)]).summary()
    assert by_span == by_mask


# ----------------------------------------------------------------------------- ERASER
@needs_eraser
def test_eraser_evidence_becomes_the_annotated_words():
    import json

    data = load_eraser(ERASER / "val.jsonl", ERASER / "docs", limit=25)
    records = [json.loads(line) for line in (ERASER / "val.jsonl").read_text().splitlines()[:25]]
    assert len(data) == 25 and data.ids[0] == records[0]["annotation_id"]
    for text, spans, record in zip(data.texts, data.rationales, records):
        evidence = sorted({(ev["start_token"], ev["end_token"], ev["text"]) for g in record["evidences"] for ev in g})
        assert [" ".join(text[s:e].split()) for s, e in spans] == [ev[2] for ev in evidence]


@needs_eraser
@needs_minilm
@pytest.mark.slow
def test_saliency_is_more_plausible_than_random_on_eraser_reviews():
    adapter = ModelAdapter.from_pretrained(str(MINILM))
    data = load_eraser(ERASER / "val.jsonl", ERASER / "docs", limit=30)
    expls = {name: get_explainer(name).create(adapter).explain(data.texts) for name in ("saliency", "random")}
    scores = {name: plausibility(e, data.rationales).summary() for name, e in expls.items()}
    masks = [
        char_spans_to_token_mask(e, s)[~np.asarray(e.special_tokens_mask)]
        for e, s in zip(expls["random"], data.rationales)
    ]
    prevalence = np.mean([m.mean() for m in masks if m.any()])
    assert abs(scores["random"]["auprc"] - prevalence) < 0.03  # random ranking: AUPRC ~ share of evidence tokens
    for metric in ("token_f1", "auprc"):
        assert scores["saliency"][metric] > scores["random"][metric] + 0.02, (metric, scores)
