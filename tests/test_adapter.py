"""ModelAdapter: tokenisation, padding, targets, score spaces, and clear errors on bad input."""

from __future__ import annotations

import pytest
import torch
from tiny_models import DECODERS, random_texts, tiny_model

import hf_seqinterp as hsi
from hf_seqinterp import (
    InputTooLongError,
    InvalidInputError,
    InvalidParameterError,
    ModelAdapter,
    UnknownMethodError,
    UnknownTargetError,
    UnsupportedModelError,
)


@pytest.fixture(scope="module")
def bert():
    return ModelAdapter(*tiny_model("bert"))


@pytest.mark.parametrize("model_type", ["bert", "roberta", "gpt2", "llama"])
def test_padded_rows_compute_what_the_text_alone_computes(model_type):
    adapter = ModelAdapter(*tiny_model(model_type))
    assert adapter.padding_side == ("left" if model_type in DECODERS else "right")
    encodings = adapter.encode(random_texts(5, seed=3))
    with torch.no_grad():
        batched = adapter.logits(adapter.collate(encodings))
        alone = torch.cat([adapter.logits(adapter.collate([e])) for e in encodings])
        reference = torch.cat([adapter.model(input_ids=torch.tensor([e.input_ids])).logits for e in encodings])
    torch.testing.assert_close(batched, alone, atol=1e-5, rtol=0)
    torch.testing.assert_close(alone, reference, atol=1e-5, rtol=0)


def test_decoder_without_pad_token_batches_and_config_is_restored():
    model, tokenizer = tiny_model("gpt2")
    assert tokenizer.pad_token_id is None and model.config.pad_token_id is None
    adapter = ModelAdapter(model, tokenizer)
    with torch.no_grad():
        adapter.logits(adapter.collate(adapter.encode(random_texts(3))))
    assert model.config.pad_token_id is None


def test_encode_keeps_offsets_word_ids_and_specials(bert):
    (enc,) = bert.encode(["Gripping, funny film"])
    assert enc.tokens[0] == "[CLS]" and enc.tokens[-1] == "[SEP]"
    assert enc.special_tokens_mask[0] and enc.special_tokens_mask[-1]
    assert enc.word_ids[0] is None and enc.word_ids[-1] is None
    for tok, (s, e), special in zip(enc.tokens, enc.offsets, enc.special_tokens_mask):
        if not special:
            assert enc.text[s:e].lower() == tok.removeprefix("##")


@pytest.mark.parametrize("bad", ["", "   \n\t", ["fine", ""]])
def test_empty_text_is_rejected(bert, bad):
    with pytest.raises(InvalidInputError, match="empty or whitespace"):
        bert.encode(bad)


@pytest.mark.parametrize("bad, word", [(42, "int"), (["ok", None], "Text 1 is None"), ([], "No input given")])
def test_non_string_input_is_rejected(bert, bad, word):
    with pytest.raises(InvalidInputError, match=word):
        hsi.explain(bad, bert)


def test_long_text_is_truncated_with_a_warning_or_rejected(bert):
    long_text = " ".join(["great"] * 200)
    expl = hsi.explain(long_text, bert)
    assert len(expl.tokens) == bert.max_length == 64
    assert expl.tokens[-1] == "[SEP]"
    assert any("truncated from 202 to the first 64 tokens" in w for w in expl.warnings)
    with pytest.raises(InputTooLongError, match="202 tokens but at most 64 are accepted"):
        hsi.explain(long_text, bert, truncation=False)


def test_left_truncation_keeps_the_end_with_its_character_offsets(bert):
    text = "opening words " + " ".join(["fine"] * 100) + " closing verdict: dreadful"
    left = hsi.ModelAdapter(bert.model, bert.tokenizer, max_length=16, truncation_side="left")
    (enc,) = left.encode([text])
    assert len(enc) == 16 and enc.tokens[0] == "[CLS]" and enc.tokens[-1] == "[SEP]"
    assert text[enc.offsets[-2][1]:] == "" and "the last 16 tokens" in enc.warnings[0]
    assert text[enc.offsets[1][0]:].startswith("fine")
    assert bert.tokenizer.truncation_side == "right"  # the shared tokenizer is left as it was
    (first,) = hsi.ModelAdapter(bert.model, bert.tokenizer, max_length=16).encode([text])
    assert first.offsets[1][0] == 0 and text[first.offsets[-2][1]:].startswith(" fine")


@pytest.mark.parametrize("kwargs, message", [
    ({"max_length": 65}, "accepts 3 to 64 tokens"),
    ({"max_length": 2}, "accepts 3 to 64 tokens"),
    ({"truncation_side": "middle"}, "use 'right' or 'left'"),
])
def test_bad_truncation_settings_are_refused(bert, kwargs, message):
    with pytest.raises(InvalidParameterError, match=message):
        hsi.ModelAdapter(bert.model, bert.tokenizer, **kwargs)


def test_unknown_method_lists_the_available_ones(bert):
    with pytest.raises(UnknownMethodError) as err:
        hsi.explain("good", bert, method="integrated_gradient")
    message = str(err.value)
    assert "'integrated_gradient' is not a registered" in message
    for name in hsi.list_methods():
        assert name in message


def test_targets_by_name_id_or_per_text(bert):
    assert bert.check_target("positive") == 2
    assert bert.check_target("POSITIVE") == 2  # case-insensitive when unambiguous
    assert bert.check_target(1) == 1
    assert bert.check_targets(["negative", None], 2) == [0, None]
    expls = hsi.explain(["good film", "bad film"], bert, target=["negative", 2])
    assert [e.target for e in expls] == [0, 2]
    assert [e.target_label for e in expls] == ["negative", "positive"]


@pytest.mark.parametrize(
    "target, pattern",
    [("happy", r"'happy' is not a label .*negative.*neutral.*positive"), (3, "out of range .* 3 labels"),
     (-1, "out of range"), (1.0, "must be None, a class id"), (["negative"], "1 targets for 2 texts")],
)
def test_bad_targets_are_rejected(bert, target, pattern):
    with pytest.raises(UnknownTargetError, match=pattern):
        hsi.explain(["good", "bad"], bert, target=target)


def test_score_spaces(bert):
    logits = torch.tensor([[1.0, 2.0, 0.5]])
    t = torch.tensor([1])
    assert bert.score(logits, t, "logit").item() == 2.0
    assert bert.score(logits, t, "log_prob").item() == pytest.approx(torch.log_softmax(logits, -1)[0, 1].item())
    assert bert.score(logits, t, "prob").item() == pytest.approx(torch.softmax(logits, -1)[0, 1].item())
    with pytest.raises(InvalidParameterError, match="score='probability' is not one of"):
        hsi.explain("good", bert, score="probability")


def test_unknown_parameter_names_the_accepted_ones(bert):
    with pytest.raises(InvalidParameterError, match="does not take parameter.*'steps'.*Accepted: baseline, n_steps"):
        hsi.explain("good", bert, method="integrated_gradients", steps=10)


def test_baseline_token_the_tokenizer_lacks_is_a_clear_error():
    adapter = ModelAdapter(*tiny_model("gpt2"))
    with pytest.raises(InvalidParameterError, match="has no mask token"):
        hsi.explain("good", adapter, method="integrated_gradients", baseline="mask")


class NoEmbedsClassifier(torch.nn.Module):
    """A classifier whose forward only takes token ids."""

    def __init__(self, inner):
        super().__init__()
        self.inner = inner
        self.config = inner.config

    def get_input_embeddings(self):
        return self.inner.get_input_embeddings()

    def forward(self, input_ids, attention_mask=None):
        return self.inner(input_ids=input_ids, attention_mask=attention_mask)


def test_model_without_inputs_embeds_is_a_clear_error():
    model, tokenizer = tiny_model("bert")
    adapter = ModelAdapter(NoEmbedsClassifier(model), tokenizer)
    with pytest.raises(UnsupportedModelError, match="gradient_x_input.*NoEmbedsClassifier.*inputs_embeds"):
        hsi.explain("good", adapter, method="gradient_x_input")


def test_slow_tokenizer_is_rejected():
    model, _ = tiny_model("bert")

    class SlowTokenizer:
        is_fast = False

    with pytest.raises(UnsupportedModelError, match="not a fast tokenizer"):
        ModelAdapter(model, SlowTokenizer())


def test_model_mode_is_restored(bert):
    bert.model.train()
    try:
        hsi.explain("good", bert)
        assert bert.model.training
    finally:
        bert.model.eval()


def test_adapter_has_no_side_effects_on_the_tokenizer_config_or_logging():
    """Truncating on the other side runs on a private tokenizer copy; decoder runs leave no logging
    filters behind and config.pad_token_id as it was."""
    import logging

    model, tokenizer = tiny_model("gpt2")
    side, pad = tokenizer.truncation_side, model.config.pad_token_id
    adapter = ModelAdapter(model, tokenizer, max_length=6, truncation_side="left" if side == "right" else "right")
    loggers = [logging.getLogger(n) for n in ("transformers", "transformers.modeling_layers", type(model).__module__)]
    before = [list(log.filters) for log in loggers]
    (enc,) = adapter.encode(["the film was good and the cast was great"])
    assert len(enc) == 6 and "truncated" in enc.warnings[0]
    hsi.explain(["the film was good", "dull"], adapter, method="gradient_x_input")
    assert tokenizer.truncation_side == side and model.config.pad_token_id == pad
    assert [list(log.filters) for log in loggers] == before
