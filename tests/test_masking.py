"""The shared masking engine: features, keep masks, and batched scoring of edited copies."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from tiny_models import random_texts, tiny_model

from hf_seqinterp import InvalidParameterError, ModelAdapter
from hf_seqinterp.masking import REPLACEMENTS, feature_groups, keep_masks, score_variants


@pytest.fixture(scope="module", params=["bert", "llama"])
def adapter(request):
    return ModelAdapter(*tiny_model(request.param))


def direct_scores(adapter, ids_rows, target, attention_rows=None, embeds_rows=None):
    """Reference: run each edited copy alone, straight through the model."""
    out = []
    for k, ids in enumerate(ids_rows):
        ids_t = torch.tensor([ids])
        mask = torch.ones_like(ids_t) if attention_rows is None else torch.tensor([attention_rows[k]])
        kwargs = {"attention_mask": mask}
        if adapter.padding_side == "left":
            kwargs["position_ids"] = torch.arange(len(ids))[None]
        with torch.no_grad():
            if embeds_rows is None:
                logits = adapter.model(input_ids=ids_t, **kwargs).logits
            else:
                logits = adapter.model(inputs_embeds=embeds_rows[k][None], **kwargs).logits
        out.append(logits[0, target].item())
    return np.array(out)


def test_feature_groups_and_keep_masks(adapter):
    (enc,) = adapter.encode(["gripping, unbelievable film"])
    tokens = feature_groups(enc, "token")
    words = feature_groups(enc, "word")
    assert sum(len(g) for g in tokens) == sum(len(g) for g in words) == sum(not s for s in enc.special_tokens_mask)
    assert len(words) == len({w for w in enc.word_ids if w is not None})
    keep = keep_masks(enc, np.zeros((1, len(words)), dtype=bool), words)[0]
    assert keep.tolist() == enc.special_tokens_mask  # only special tokens stay
    with pytest.raises(InvalidParameterError, match="level='paragraph'"):
        feature_groups(enc, "paragraph")


@pytest.mark.parametrize("replacement", REPLACEMENTS)
def test_every_replacement_matches_a_direct_run(adapter, replacement):
    if replacement in ("mask", "pad", "unk") and getattr(adapter.tokenizer, f"{replacement}_token_id") is None:
        with pytest.raises(InvalidParameterError, match=f"no {replacement} token"):
            score_variants(adapter, adapter.encode(["good"]), [np.ones((1, 3), bool)], [0], replacement=replacement)
        return
    encodings = adapter.encode(random_texts(3, seed=13, min_words=3))
    rng = np.random.default_rng(0)
    keeps, refs = [], []
    for enc in encodings:
        groups = feature_groups(enc)
        coalitions = rng.random((5, len(groups))) < 0.5
        coalitions[0] = True  # the unedited text
        keep = keep_masks(enc, coalitions, groups)
        keeps.append(keep)
        ids = np.asarray(enc.input_ids)
        if replacement == "delete":
            refs.append(direct_scores(adapter, [ids[k].tolist() for k in keep], 1))
        elif replacement == "attention":
            refs.append(direct_scores(adapter, [ids.tolist()] * len(keep), 1, attention_rows=keep.astype(int).tolist()))
        elif replacement == "zero_embedding":
            with torch.no_grad():
                embeds = [adapter.embed(torch.tensor(ids)) * torch.tensor(k)[:, None] for k in keep]
            refs.append(direct_scores(adapter, [ids.tolist()] * len(keep), 1, embeds_rows=embeds))
        else:
            token = getattr(adapter.tokenizer, f"{replacement}_token_id")
            refs.append(direct_scores(adapter, [np.where(k, ids, token).tolist() for k in keep], 1))
    got = score_variants(adapter, encodings, keeps, [1, 1, 1], replacement=replacement, max_batch_tokens=64)
    for g, r in zip(got, refs):
        np.testing.assert_allclose(g, r, atol=1e-5, rtol=0)
    # nothing removed == the model's logit on the unedited text, for every mode
    full = direct_scores(adapter, [e.input_ids for e in encodings], 1)
    np.testing.assert_allclose([g[0] for g in got], full, atol=1e-5, rtol=0)


def test_score_spaces_and_bad_modes(adapter):
    encodings = adapter.encode(["a good film"])
    keep = [np.ones((1, len(encodings[0])), dtype=bool)]
    logit = score_variants(adapter, encodings, keep, [0], replacement="delete", score="logit")[0][0]
    prob = score_variants(adapter, encodings, keep, [0], replacement="delete", score="prob")[0][0]
    with torch.no_grad():
        logits = adapter.logits(adapter.collate(encodings))[0]
    assert logit == pytest.approx(logits[0].item(), abs=1e-6)
    assert prob == pytest.approx(torch.softmax(logits, -1)[0].item(), abs=1e-6)
    with pytest.raises(InvalidParameterError, match="replacement='blank' is not one of"):
        score_variants(adapter, encodings, keep, [0], replacement="blank")
