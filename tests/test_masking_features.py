"""The masking engine's additions for perturbation explainers: character spans, 'auto' replacement,
variant logits, and last-token classifiers whose tokens share the pad id."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from tiny_models import tiny_model

from hf_seqinterp import InvalidParameterError, ModelAdapter, get_explainer
from hf_seqinterp.masking import (
    feature_groups,
    keep_masks,
    resolve_replacement,
    score_variants,
    span_groups,
    target_scores,
    variant_logits,
)


@pytest.fixture(scope="module")
def bert():
    return ModelAdapter(*tiny_model("bert"))


def test_span_groups_cover_overlapping_tokens(bert):
    enc = bert.encode(["unbelievably overlong film"])[0]
    groups = span_groups(enc, [(0, 12), (5, 20), (21, 25)])
    words = feature_groups(enc, "word")
    np.testing.assert_array_equal(groups[0], words[0])  # the whole word, all its sub-tokens
    np.testing.assert_array_equal(groups[1], np.concatenate([words[0][1:], words[1]]))  # from "##iev" on
    np.testing.assert_array_equal(groups[2], words[2])
    assert not any(enc.special_tokens_mask[i] for g in groups for i in g)
    with pytest.raises(InvalidParameterError, match="not a pair of character offsets"):
        span_groups(enc, [(1, 2, 3)])
    with pytest.raises(InvalidParameterError, match="spans is empty"):
        span_groups(enc, [])


def _unit_texts(enc, level):
    """Each unit's characters, from its first token's start to its last token's end, spaces removed."""
    found = []
    for group in feature_groups(enc, level):
        source = enc.segment_text(enc.segment_of(int(group[0])))
        found.append(source[enc.offsets[group[0]][0] : enc.offsets[group[-1]][1]].replace(" ", ""))
    return found


def test_sentences_and_phrases_are_runs_of_whole_words(bert):
    text = 'the film is great, really.\nbut the ending "sucks!" (a lot); ok?\nno end'
    enc = bert.encode([text])[0]
    assert _unit_texts(enc, "sentence") == [
        "thefilmisgreat,really.", 'buttheending"sucks!"', "(alot);ok?", "noend"]  # the closing quote stays
    assert _unit_texts(enc, "phrase") == [
        "thefilmisgreat,", "really.", 'buttheending"sucks!"', "(alot);", "ok?", "noend"]
    words = feature_groups(enc, "word")
    for level in ("phrase", "sentence"):  # each unit is whole words, in order, covering every word once
        units = feature_groups(enc, level)
        assert np.concatenate(units).tolist() == np.concatenate(words).tolist()
        starts = {int(w[0]) for w in words}
        assert all(int(u[0]) in starts for u in units)
    pair = bert.encode([("one. two", "three")])[0]  # a new segment starts a new sentence
    assert _unit_texts(pair, "sentence") == ["one.", "two", "three"]
    with pytest.raises(InvalidParameterError, match="level='clause'"):
        feature_groups(enc, "clause")


def test_auto_replacement_follows_the_tokenizer(bert):
    assert resolve_replacement(bert, "auto") == "mask"
    assert resolve_replacement(ModelAdapter(*tiny_model("gpt2")), "auto") == "unk"
    assert resolve_replacement(bert, "attention") == "attention"


def test_variant_logits_and_scores(bert):
    encs = bert.encode(["a good film", "the plot was dull and too long"])
    keeps = [keep_masks(e, np.array([[1] * len(g), [0] * len(g)]), g) for e, g in
             ((e, feature_groups(e, "token")) for e in encs)]
    logits = variant_logits(bert, encs, keeps, replacement="pad")
    with torch.no_grad():
        direct = bert.logits(bert.collate(encs)).double().numpy()
    np.testing.assert_allclose([rows[0] for rows in logits], direct, atol=1e-5)
    scores = score_variants(bert, encs, keeps, [2, 0], replacement="pad", score="log_prob")
    for rows, s, t in zip(logits, scores, [2, 0]):
        np.testing.assert_allclose(s, target_scores(bert, rows, t, "log_prob"), atol=1e-12)
        np.testing.assert_allclose(s, torch.log_softmax(torch.tensor(rows), -1)[:, t].numpy(), atol=1e-12)


def test_last_token_classifier_reads_the_last_position_even_when_it_is_the_pad_id():
    """GPT-2's pad is its end-of-text token, also its unk: a text ending in it must still be
    classified from its last position, as the unpadded text would be."""
    model, tokenizer = tiny_model("gpt2")
    adapter = ModelAdapter(model, tokenizer)
    enc = adapter.encode(["good film"])[0]
    ids = enc.input_ids + [adapter.token_id("unk")]
    batch = adapter.collate([enc], input_ids=[ids])
    with torch.no_grad():
        ours = adapter.logits(batch)
        hidden = model.transformer(input_ids=torch.tensor([ids])).last_hidden_state
        expected = model.score(hidden[:, -1])
    np.testing.assert_allclose(ours.numpy(), expected.numpy(), atol=1e-5)


def test_sentence_level_erasure_scores_each_sentence_by_its_removal(bert):
    text = "a superb film. the cast is dreadful!\nan overlong ending"
    expl = get_explainer("erasure").create(bert, level="sentence", replacement="mask").explain(text)
    (enc,) = bert.encode([text])
    sentences = feature_groups(enc, "sentence")
    assert len(sentences) == 3
    keeps = keep_masks(enc, ~np.eye(len(sentences), dtype=bool), sentences)
    full = variant_logits(bert, [enc], [np.ones((1, len(enc.input_ids)), dtype=bool)], replacement="mask")[0][0]
    without = variant_logits(bert, [enc], [keeps], replacement="mask")[0]
    for j, positions in enumerate(sentences):  # a sentence's score, spread evenly over its tokens
        drop = full[expl.target] - without[j][expl.target]
        np.testing.assert_allclose(expl.attributions[positions].sum(), drop, atol=1e-5)
        np.testing.assert_allclose(expl.attributions[positions], drop / len(positions), atol=1e-6)
