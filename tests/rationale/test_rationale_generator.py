"""The generator model, its config, word-level selection, masking of the predictor's input, and the
`rationale` explainer (untrained generators: these are structural invariants)."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from single_thread import one_thread  # noqa: F401 (autouse fixture)
from tiny_models import random_texts, tiny_model
from transformers import AutoConfig, AutoModel, BertConfig, BertForSequenceClassification

import hf_seqinterp as hsi
from hf_seqinterp import InvalidParameterError, ModelAdapter, applicable_explainers, metrics
from hf_seqinterp.masking import feature_groups, keep_masks, soft_masked_logits, variant_logits
from hf_seqinterp.rationale import RationaleGenerator, RationaleGeneratorConfig, WordBatch
from hf_seqinterp.rationale.gates import select_words
from hf_seqinterp.rationale.modeling import bidirectional_gru, predictor_states
from hf_seqinterp.rationale.objectives import selection_rate

TEXTS = ["a superb splendid film", "dreadful, tedious and overlong", "the cast", *random_texts(9, seed=4)]


@pytest.fixture(scope="module")
def bert():
    return ModelAdapter(*tiny_model("bert"))


def generator_for(adapter, **kwargs):
    torch.manual_seed(0)
    return RationaleGenerator.for_predictor(adapter, hidden_size=16, **kwargs).eval()


# ----------------------------------------------------------------------------- config
@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"estimator": "gumbel"}, "estimator='gumbel' is not one of reinforce, hardkuma"),
        ({"replacement": "delete"}, "replacement='delete' is not one of"),
        ({"estimator": "hardkuma", "replacement": "attention"}, "attention mask cannot express"),
        ({"estimator": "hardkuma", "target_rate": None}, "needs target_rate"),
        ({"target_rate": 1.5}, "target_rate=1.5"),
        ({"threshold": 1.0}, "threshold=1.0"),
        ({"unit": "clause"}, "unit='clause' is not one of word, phrase, sentence"),
        ({"features": "tokens"}, "features='tokens' is not one of embeddings, predictor"),
        ({"features": "predictor"}, "give predictor_hidden_size"),
        ({"sparsity": -1.0}, "sparsity=-1.0 must be >= 0"),
        ({"stretch": (0.1, 1.1)}, "l < 0 and r > 1"),
    ],
)
def test_config_rejects_bad_settings(kwargs, message):
    with pytest.raises(InvalidParameterError, match=message.replace("(", r"\(").replace(")", r"\)")):
        RationaleGeneratorConfig(**kwargs)


def test_generator_records_the_tokenizer_and_refuses_another(bert):
    generator = generator_for(bert)
    assert generator.config.tokenizer_vocab_size == len(bert.tokenizer)
    assert generator.config.predictor_labels == bert.labels
    roberta = ModelAdapter(*tiny_model("roberta"))
    with pytest.raises(InvalidParameterError, match="trained for tokenizer .* but the model's tokenizer") as err:
        hsi.explain("a film", roberta, method="rationale", generator=generator)
    assert generator.config.tokenizer_hash in str(err.value)


def test_embeddings_start_from_the_predictors_principal_components(bert):
    generator = generator_for(bert, embedding_size=8)
    table = generator.embeddings.weight.detach()
    assert table.shape == (bert.embeddings.weight.shape[0], 8)
    assert not generator.embeddings.weight.requires_grad  # frozen by default
    source = bert.embeddings.weight.detach() - bert.embeddings.weight.detach().mean(0)
    # the 8 columns span the top-8 principal subspace: projecting the table on it loses nothing
    _, _, vh = torch.linalg.svd(source, full_matrices=False)
    scores = source @ vh[:8].T
    fitted = torch.linalg.lstsq(scores, table).solution
    torch.testing.assert_close(scores @ fitted, table, atol=1e-4, rtol=0)
    with pytest.raises(InvalidParameterError, match="exceeds the predictor's embedding size"):
        RationaleGenerator.for_predictor(bert, embedding_size=64)


# ----------------------------------------------------------------------------- words and masking
def test_word_batch_maps_words_to_all_their_tokens_in_either_padding_layout():
    for model_type in ("bert", "gpt2"):
        adapter = ModelAdapter(*tiny_model(model_type))
        encodings = adapter.encode(TEXTS[:3])
        words = WordBatch.from_texts(encodings, 0, "cpu")
        values = torch.arange(1, words.word_mask.shape[1] + 1, dtype=torch.float32).repeat(len(encodings), 1) * 10
        batch = adapter.collate(encodings)
        laid_out = words.token_values(values, batch)
        for row, enc in enumerate(encodings):
            expected = [1.0 if s else 10.0 * (j + 1) for j, s in zip(_word_of_token(enc), enc.special_tokens_mask)]
            assert laid_out[row, batch.token_slice(row)].tolist() == expected
            outside = torch.ones(batch.input_ids.shape[1], dtype=torch.bool)
            outside[batch.token_slice(row)] = False
            assert (laid_out[row, outside] == 1).all()  # padding is "kept" (it is never attended)


def _word_of_token(enc) -> list[int]:
    index = {}
    for j, positions in enumerate(feature_groups(enc, "word")):
        for p in positions:
            index[int(p)] = j
    return [index.get(p, -1) for p in range(len(enc))]


@pytest.mark.parametrize("replacement", ["mask", "pad", "unk", "zero_embedding", "attention"])
def test_soft_masking_equals_hard_masking_at_0_and_1(bert, replacement):
    encodings = bert.encode(TEXTS)
    batch = bert.collate(encodings)
    rng = np.random.default_rng(0)
    keeps = [rng.random(len(e)) < 0.5 for e in encodings]
    keep = torch.ones_like(batch.input_ids, dtype=torch.float32)
    for row, k in enumerate(keeps):
        keep[row, batch.token_slice(row)] = torch.from_numpy(k.astype(np.float32))
    with torch.no_grad():
        soft = soft_masked_logits(bert, batch, keep, replacement)
        hard = np.concatenate(variant_logits(bert, encodings, [k[None] | np.asarray(e.special_tokens_mask)
                                                              for k, e in zip(keeps, encodings)],
                                             replacement=replacement))
        full = soft_masked_logits(bert, batch, torch.ones_like(keep), replacement)
    torch.testing.assert_close(soft.double(), torch.from_numpy(hard), atol=1e-5, rtol=0)
    assert torch.equal(full, bert.logits(batch))  # keep ≡ 1 is the unmasked model, bit for bit


def test_soft_masking_is_differentiable_and_attention_refuses_fractions(bert):
    batch = bert.collate(bert.encode(TEXTS[:2]))
    keep = torch.full(batch.input_ids.shape, 0.5, requires_grad=True)
    (grad,) = torch.autograd.grad(soft_masked_logits(bert, batch, keep, "mask").sum(), keep)
    assert grad[~batch.special_mask].abs().sum() > 0 and (grad[batch.special_mask] == 0).all()
    with pytest.raises(InvalidParameterError, match="needs hard 0/1 selections"):
        soft_masked_logits(bert, batch, keep, "attention")


# ----------------------------------------------------------------------------- generator
@pytest.mark.parametrize("estimator", ["reinforce", "hardkuma"])
def test_selection_probabilities_are_per_word_and_batch_invariant(bert, estimator):
    generator = generator_for(bert, estimator=estimator, target_rate=0.3)
    encodings = bert.encode(TEXTS)
    together = generator.selection_probabilities(encodings)
    for enc, probs in zip(encodings, together):
        assert len(probs) == len(feature_groups(enc, "word"))
        np.testing.assert_allclose(generator.selection_probabilities([enc])[0], probs, atol=1e-6, rtol=0)


def test_save_and_load_round_trip_through_auto_classes(bert, tmp_path):
    generator = generator_for(bert, estimator="reinforce", sparsity=0.3, coherence=0.1, threshold=0.45)
    generator.save_pretrained(tmp_path)
    loaded = AutoModel.from_pretrained(tmp_path)
    assert type(loaded) is RationaleGenerator
    assert isinstance(AutoConfig.from_pretrained(tmp_path), RationaleGeneratorConfig)
    for name in ("estimator", "sparsity", "coherence", "threshold", "tokenizer_hash", "predictor_labels"):
        assert getattr(loaded.config, name) == getattr(generator.config, name)
    encodings = bert.encode(TEXTS)
    for before, after in zip(generator.selection_probabilities(encodings), loaded.selection_probabilities(encodings)):
        assert np.array_equal(before, after)
    from_path = hsi.explain(TEXTS, bert, method="rationale", generator=str(tmp_path))
    in_memory = hsi.explain(TEXTS, bert, method="rationale", generator=generator)
    assert [e.attributions.tolist() for e in from_path] == [e.attributions.tolist() for e in in_memory]
    assert from_path[0].params["generator"] == str(tmp_path) and from_path[0].params["threshold"] == 0.45


@pytest.mark.parametrize("layers", [1, 2])
def test_the_bidirectional_encoder_equals_a_packed_gru(layers):
    """Each direction run on its own (the reverse one over each row reversed in place) gives what
    packing the padded rows gives, values and gradients, at every real token; zeros at padding."""
    from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

    torch.manual_seed(0)
    gru = torch.nn.GRU(6, 5, num_layers=layers, batch_first=True, bidirectional=True).eval()
    x = torch.randn(4, 9, 6, requires_grad=True)
    lengths = torch.tensor([9, 3, 7, 1])
    packed, _ = gru(pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False))
    reference, _ = pad_packed_sequence(packed, batch_first=True, total_length=9)
    found = bidirectional_gru(gru, x, lengths)
    torch.testing.assert_close(found, reference, atol=1e-6, rtol=0)
    weights = torch.randn_like(reference)
    expected = torch.autograd.grad((reference * weights).sum(), [x, *gru.parameters()])
    for mine, theirs in zip(torch.autograd.grad((found * weights).sum(), [x, *gru.parameters()]), expected):
        torch.testing.assert_close(mine, theirs, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("kind", ["bert", "gpt2"])  # right and left padding
def test_a_generator_of_predictor_states_reads_each_texts_own_last_states(kind, tmp_path):
    """features="predictor": the states are the model's last hidden states of each text alone (not
    of the padded batch), selections are batch-invariant, and saving and loading changes nothing."""
    adapter = ModelAdapter(*tiny_model(kind))
    generator = generator_for(adapter, features="predictor", target_rate=0.3, replacement="zero_embedding")
    assert not hasattr(generator, "embeddings") and generator.config.predictor_hidden_size == adapter.model.config.hidden_size
    encodings = adapter.encode(TEXTS)
    reference = copy.deepcopy(adapter.model)  # output_hidden_states leaves transformers' recording hooks on a model
    together, logits = predictor_states(adapter, encodings, batch_size=5)
    for enc, states, row in zip(encodings, together, logits):
        torch.testing.assert_close(states, predictor_states(adapter, [enc])[0][0], atol=1e-5, rtol=0)
        with torch.no_grad():
            alone = reference(input_ids=torch.tensor([enc.input_ids]), output_hidden_states=True)
        torch.testing.assert_close(row, alone.logits[0], atol=1e-5, rtol=0)
        if kind == "bert":  # its last hidden state is its last block's output
            torch.testing.assert_close(states, alone.hidden_states[-1][0], atol=1e-5, rtol=0)
    assert all(not m._forward_hooks for m in adapter.model.modules())
    together = generator.selection_probabilities(encodings, adapter)
    for enc, probs in zip(encodings, together):
        np.testing.assert_allclose(generator.selection_probabilities([enc], adapter)[0], probs, atol=1e-6, rtol=0)
    generator.save_pretrained(tmp_path)
    from_path = hsi.explain(TEXTS, adapter, method="rationale", generator=str(tmp_path))
    in_memory = hsi.explain(TEXTS, adapter, method="rationale", generator=generator, batch_size=4)
    assert [e.attributions.tolist() for e in from_path] == [e.attributions.tolist() for e in in_memory]
    assert 0 < np.mean([e.extras["selection_rate"] for e in in_memory]) < 1
    forwards = []
    handle = adapter.model.register_forward_pre_hook(lambda *_: forwards.append(1))
    try:
        again = hsi.explain(TEXTS, adapter, method="rationale", generator=generator, batch_size=len(TEXTS))
    finally:
        handle.remove()
    assert len(forwards) == 2  # the full texts, which give the states too, and the rationales alone
    assert [e.attributions.tolist() for e in again] == [e.attributions.tolist() for e in in_memory]
    with pytest.raises(InvalidParameterError, match="pass the predictor"):
        generator.selection_probabilities(encodings)


def test_a_generator_of_predictor_states_refuses_another_predictor(bert):
    generator = generator_for(bert, features="predictor")
    wider = BertForSequenceClassification(BertConfig(
        vocab_size=len(bert.tokenizer), hidden_size=2 * bert.model.config.hidden_size, num_hidden_layers=1,
        num_attention_heads=2, intermediate_size=16)).eval()
    with pytest.raises(InvalidParameterError, match=r"hidden states of size \d+ .* use the predictor it was trained for"):
        hsi.explain(TEXTS[:2], ModelAdapter(wider, bert.tokenizer), method="rationale", generator=generator)


# ----------------------------------------------------------------------------- explainer
def test_rationale_needs_a_generator_and_is_skipped_by_all_methods(bert, tmp_path):
    with pytest.raises(InvalidParameterError, match="needs a trained generator"):
        hsi.explain("a film", bert, method="rationale")
    built, skipped = applicable_explainers(bert)
    assert "rationale" not in built and "needs a trained generator" in skipped["rationale"]
    with pytest.raises(InvalidParameterError, match="Could not load a rationale generator"):
        hsi.explain("a film", bert, method="rationale", generator=str(tmp_path / "missing"))
    with pytest.raises(InvalidParameterError, match="threshold=2"):
        hsi.explain("a film", bert, method="rationale", generator=generator_for(bert), threshold=2)


def median_threshold(generator, encodings) -> float:
    """A threshold that selects about half the words (an untrained HardKuma gate selects nearly all at 0.5)."""
    return float(np.median(np.concatenate(generator.selection_probabilities(encodings))))


@pytest.mark.parametrize("estimator", ["reinforce", "hardkuma"])
def test_explanations_are_binary_word_masks_with_consistent_extras(bert, estimator):
    generator = generator_for(bert, estimator=estimator, target_rate=0.3)
    encodings = bert.encode(TEXTS)
    threshold = median_threshold(generator, encodings)
    explanations = hsi.explain(TEXTS, bert, method="rationale", generator=generator, threshold=threshold)
    assert 0.2 < np.mean([e.extras["selection_rate"] for e in explanations]) < 0.8
    for enc, expl, probs in zip(encodings, explanations, generator.selection_probabilities(encodings)):
        selected = probs > threshold
        groups = feature_groups(enc, "word")
        expected = keep_masks(enc, selected[None], groups)[0] & ~np.asarray(enc.special_tokens_mask)
        assert expl.attributions.tolist() == expected.astype(float).tolist()
        assert expl.extras["selection_rate"] == pytest.approx(selected.mean())
        assert expl.extras["word_probabilities"] == pytest.approx(probs.tolist())
        words = [w.text for w, s in zip(expl.to_words(), selected) if s]
        spans = expl.extras["spans"]
        assert "".join(s["text"] for s in spans).replace(" ", "") == "".join(words)
        assert len(spans) == int(np.sum(np.diff(np.r_[0, selected.astype(int)]) == 1))  # one span per run of words
        for span in expl.extras["spans"]:
            assert expl.text[span["start"] : span["end"]] == span["text"]
        assert hsi.Explanation.from_dict(expl.to_dict()) == expl


def test_rationale_prediction_is_the_model_on_the_rationale_alone(bert):
    """The rationale score equals f(rationale) from the sufficiency metric on the same masked input."""
    generator = generator_for(bert, estimator="reinforce", target_rate=0.5)  # gates start near P = 0.5
    explanations = hsi.explain(TEXTS, bert, method="rationale", generator=generator, score="prob")
    assert 0 < np.mean([e.extras["selection_rate"] for e in explanations]) < 1
    masks = [e.attributions > 0 for e in explanations]
    suff = metrics.sufficiency(explanations, bert, rationales=masks, replacement="mask", score="prob")
    full = np.array([e.probabilities[e.target] for e in explanations])
    alone = np.array([e.extras["rationale_score"] for e in explanations])
    np.testing.assert_allclose(full - alone, suff, atol=1e-6)
    for e in explanations:
        assert e.extras["rationale_prediction"] == int(np.argmax(e.extras["rationale_probabilities"]))
        assert e.extras["rationale_label"] == bert.labels[e.extras["rationale_prediction"]]


def test_batch_equals_one_by_one(bert):
    generator = generator_for(bert, estimator="hardkuma", target_rate=0.3)
    threshold = median_threshold(generator, bert.encode(TEXTS))
    batched = hsi.explain(TEXTS, bert, method="rationale", generator=generator, batch_size=5, threshold=threshold)
    for text, expl in zip(TEXTS, batched):
        alone = hsi.explain(text, bert, method="rationale", generator=generator, threshold=threshold)
        assert alone.attributions.tolist() == expl.attributions.tolist()
        np.testing.assert_allclose(alone.extras["rationale_probabilities"], expl.extras["rationale_probabilities"],
                                   atol=1e-5)


# ----------------------------------------------------------------------------- phrases and sentences
def test_expected_selection_takes_units_until_the_expected_number_of_words():
    probabilities = np.array([0.9, 0.2, 0.6, 0.1])
    # units of 3, 1, 4, 2 words: 5.5 words expected; the 3- and 4-word units (7 words) are closer than 3
    assert select_words(probabilities, "expected", np.array([3, 1, 4, 2])).tolist() == [True, False, True, False]
    # 6.6 words expected: a 10-word unit after the two 2-word ones would overshoot, so the selection stops there
    assert select_words(np.array([0.9, 0.8, 0.3, 0.1]), "expected", np.array([2, 2, 10, 2])).tolist() == [
        True, True, False, False]
    for total in (0.4, 0.6, 1.4, 2.6):  # one-word units: the ⌈Σp − ½⌉ most probable
        p = np.array([0.5, 0.3, 0.2, 0.0]) * total
        assert select_words(p, "expected").sum() == int(np.ceil(total - 0.5))
    assert select_words(probabilities, 0.5, np.array([3, 1, 4, 2])).tolist() == [True, False, True, False]


@pytest.mark.parametrize("unit", ["phrase", "sentence"])
def test_unit_generators_select_whole_units_and_count_words(bert, unit):
    texts = ["a superb, splendid film; the cast shines. dreadful, tedious and overlong!", "the cast. a film, again",
             *random_texts(4, seed=2)]
    generator = generator_for(bert, estimator="hardkuma", target_rate=0.4, unit=unit)
    encodings = bert.encode(texts)
    explanations = hsi.explain(texts, bert, method="rationale", generator=generator)
    batch = generator.word_batch(encodings)
    for row, (enc, expl, probs) in enumerate(zip(encodings, explanations, generator.selection_probabilities(encodings))):
        units, words = feature_groups(enc, unit), feature_groups(enc, "word")
        sizes = np.array([sum(set(w.tolist()) <= set(u.tolist()) for w in words) for u in units])
        assert len(probs) == len(units) and batch.sizes[row, : len(units)].tolist() == sizes.tolist()
        selected = select_words(probs, "expected", sizes)
        expected = keep_masks(enc, selected[None], units)[0] & ~np.asarray(enc.special_tokens_mask)
        assert expl.attributions.tolist() == expected.astype(float).tolist()
        assert expl.extras["selection_rate"] == pytest.approx(sizes[selected].sum() / len(words))
        assert expl.extras["word_probabilities"] == pytest.approx(np.repeat(probs, sizes).tolist())
    rate = selection_rate(batch.word_mask.float(), batch.sizes)  # everything selected: every word counted
    assert rate.tolist() == pytest.approx([1.0] * len(texts))
    z = torch.zeros_like(batch.sizes)
    z[:, 0] = 1.0  # the first unit alone: its share of the words
    words_per_text = torch.tensor([len(feature_groups(e, "word")) for e in encodings], dtype=torch.float32)
    assert selection_rate(z, batch.sizes).tolist() == pytest.approx((batch.sizes[:, 0] / words_per_text).tolist())
