"""Text encoder–decoders (BART, T5, Marian): one explained row per target token, over the source and
the target prefix.

Exact references: teacher-forced row probabilities against a direct model call with `labels`;
greedy generation against `model.generate`; erasure against leave-one-out computed here from
direct model calls, and against Captum's `FeatureAblation`; integrated gradients against Captum's
`LayerIntegratedGradients` on both embedding modules; completeness (IG) and efficiency (Shapley
sampling) per row; exact zeros on the target tokens a row cannot see; batch == one by one for every
method that explains rows; clear refusals; ground truth from a BART trained to reverse letters.
"""

from __future__ import annotations

import functools
import json
import sys

import numpy as np
import pytest
import torch
from conftest import REPO
from row_checks import (
    CAUSAL,
    CAUSAL_PARAMS,
    OTHER_METHODS,
    ROW_METHODS,
    assert_batch_equals_one_by_one,
    row_explainer,
    assert_complete_per_row,
    assert_efficient_per_row,
    assert_rows_never_see_later_tokens,
)
from tiny_models import SEQ2SEQ, tiny_seq2seq_lm

import hf_seqinterp as hsi
from hf_seqinterp.explainers import get_explainer

SOURCES = ["the cat sat on the mat", "a dog", "once upon a time there was"]
TARGET = "a dog was here"
#: the methods that explain rows, less those that follow one stack's attention (refused here)
SEQ2SEQ_METHODS = [m for m in ROW_METHODS if not get_explainer(m).needs_attentions]


@functools.cache
def seq2seq_adapter(model_type: str) -> hsi.ModelAdapter:
    return hsi.ModelAdapter(*tiny_seq2seq_lm(model_type))


@pytest.fixture(scope="module", params=sorted(SEQ2SEQ))
def adapter(request):
    return seq2seq_adapter(request.param)


def per_model(methods: list[str], everywhere: tuple[str, ...] = ("saliency", "erasure")) -> list:
    """(model type, method) cases: every method on BART; on the others a gradient and a perturbation
    method by default, the rest with the slow tests."""
    return [
        pytest.param(model_type, method, marks=() if model_type == "bart" or method in everywhere else pytest.mark.slow)
        for model_type in sorted(SEQ2SEQ)
        for method in methods
    ]


def source_length(expl: hsi.Explanation) -> int:
    """Tokens before the decoder start token (where row 0 reads)."""
    return expl.rows[0]["position"]


def row_log_probs(model, source_ids: list[int], decoder_ids: list[int]) -> torch.Tensor:
    """(len(decoder_ids), vocab) log-probabilities from one direct model call."""
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([source_ids]), decoder_input_ids=torch.tensor([decoder_ids])).logits
    return torch.log_softmax(logits[0].double(), -1)


def test_rows_are_the_forced_target_and_its_teacher_forced_probabilities(adapter):
    model, tok = adapter.model, adapter.tokenizer
    expl = hsi.explain_with(adapter, SOURCES[0], "saliency", target=TARGET)
    source = tok(SOURCES[0])["input_ids"]
    labels = tok(text_target=TARGET)["input_ids"]
    start = model.config.decoder_start_token_id
    assert [r["target"] for r in expl.rows] == labels and expl.input_ids == source + [start] + labels
    assert expl.text == SOURCES[0] and expl.text_pair == TARGET and expl.target_label == TARGET
    assert expl.attributions.shape == (len(labels), len(expl.tokens)) and source_length(expl) == len(source)
    with torch.no_grad():  # what the model computes from `labels` (its own shift into decoder inputs)
        reference = torch.softmax(model(input_ids=torch.tensor([source]), labels=torch.tensor([labels])).logits[0].double(), -1)
    for k, row in enumerate(expl.rows):
        assert row["probability"] == pytest.approx(float(reference[k, labels[k]]), abs=1e-6)
        assert row["entropy"] == pytest.approx(float(-(reference[k] * reference[k].log()).sum()), abs=1e-5)
        assert row["visible"] == len(source) + 1 + k  # the source, the start token, y_<k
    segments = [s for s in expl.segment_ids if s is not None]
    specials = set(tok.all_special_ids)
    assert segments == [0] * sum(t not in specials for t in source) + [1] * sum(t not in specials for t in labels)


def test_generated_target_is_what_generate_returns(adapter):
    options = {"max_new_tokens": 6, "min_new_tokens": 4}
    expl = hsi.explain_with(adapter, SOURCES[2], "saliency", generation=options)
    source = adapter.tokenizer(SOURCES[2], return_tensors="pt")
    out = adapter.model.generate(**source, **options, do_sample=False)[0].tolist()
    eos = adapter.tokenizer.eos_token_id
    if eos in out[1:]:
        out = out[: out.index(eos, 1) + 1]
    assert [r["target"] for r in expl.rows] == out[1:]
    assert expl.input_ids == source["input_ids"][0].tolist() + out
    assert expl.text_pair == adapter.tokenizer.decode(out[1:], skip_special_tokens=True)


def test_generation_pads_sources_on_the_right(adapter):
    """Sources of different lengths generated together give what each gives alone."""
    options = {"generation": {"max_new_tokens": 4, "min_new_tokens": 4}}
    together = hsi.explain_with(adapter, SOURCES, "erasure", batch_size=3, **options)
    for source, expl in zip(SOURCES, together):
        assert expl.input_ids == hsi.explain_with(adapter, source, "erasure", **options).input_ids


def test_erasure_is_leave_one_out_over_source_and_target_prefix(adapter):
    """Brute force from direct model calls: drop one source or target token, run the model on the
    shorter encoder or decoder input, read each row where it reads after the drop."""
    expl = hsi.explain_with(adapter, SOURCES[0], "erasure", target=TARGET, score="log_prob")
    ids, specials, n = expl.input_ids, expl.special_tokens_mask, source_length(expl)
    labels = [r["target"] for r in expl.rows]
    full = row_log_probs(adapter.model, ids[:n], ids[n:-1])
    expected = np.zeros_like(expl.attributions, dtype=np.float64)
    for j in (j for j in range(len(ids)) if not specials[j]):
        kept = [i for i in range(len(ids)) if i != j]
        source = [ids[i] for i in kept if i < n]
        decoder = [i for i in kept if n <= i < len(ids) - 1]  # the decoder input: d_0, y_1 .. y_{T-1}
        log_p = row_log_probs(adapter.model, source, [ids[i] for i in decoder])
        for k, token in enumerate(labels):
            read = max(p for p, i in enumerate(decoder) if i <= n + k)  # the last kept input at or before d_k
            expected[k, j] = full[k, token] - log_p[read, token]
    np.testing.assert_allclose(expl.attributions, expected, atol=2e-5)


@pytest.mark.parametrize("model_type", ["bart", pytest.param("t5", marks=pytest.mark.slow)])
def test_erasure_equals_captum_feature_ablation(model_type):
    """Captum's FeatureAblation on the joined ids, each non-special token of source and target prefix one
    feature replaced by unk, the forward splitting them into encoder and decoder inputs."""
    from captum.attr import FeatureAblation

    model, tok = tiny_seq2seq_lm(model_type)
    adapter = hsi.ModelAdapter(model, tok)
    ours = hsi.explain_with(adapter, SOURCES[0], "erasure", target=TARGET, replacement="unk", score="log_prob")
    n, labels = source_length(ours), torch.tensor([r["target"] for r in ours.rows])
    ids = torch.tensor([ours.input_ids])
    specials = torch.tensor([ours.special_tokens_mask])

    def forward(joined: torch.Tensor) -> torch.Tensor:  # (batch, rows) log p(y_k | x, y_<k)
        logits = model(input_ids=joined[:, :n], decoder_input_ids=joined[:, n:-1]).logits
        return torch.log_softmax(logits, -1).gather(-1, labels.expand(len(joined), -1)[..., None])[..., 0]

    baselines = torch.where(specials, ids, tok.unk_token_id)
    ref = FeatureAblation(forward).attribute(ids, baselines=baselines, feature_mask=torch.arange(ids.shape[1])[None])
    assert ref.shape == ours.attributions.shape  # (rows, tokens): one attribution per row of the output
    np.testing.assert_allclose(ours.attributions, ref.numpy(), atol=1e-5)


@pytest.mark.parametrize("model_type", ["bart", pytest.param("t5", marks=pytest.mark.slow)])
def test_integrated_gradients_equals_captum_layer_integrated_gradients(model_type):
    """Captum's LayerIntegratedGradients on the encoder and decoder embedding modules, from the same
    baseline token ids, with the same Gauss-Legendre steps."""
    from captum.attr import LayerIntegratedGradients

    model, tok = tiny_seq2seq_lm(model_type)
    adapter = hsi.ModelAdapter(model, tok)
    ours = hsi.explain_with(adapter, SOURCES[0], "integrated_gradients", target=TARGET, baseline="unk", n_steps=16,
                            score="log_prob")
    n, labels = source_length(ours), torch.tensor([r["target"] for r in ours.rows])
    ids, specials = torch.tensor([ours.input_ids]), torch.tensor([ours.special_tokens_mask])
    base = torch.where(specials, ids, tok.unk_token_id)

    def forward(source: torch.Tensor, decoder: torch.Tensor) -> torch.Tensor:
        logits = model(input_ids=source, decoder_input_ids=decoder).logits
        return torch.log_softmax(logits, -1).gather(-1, labels.expand(len(source), -1)[..., None])[..., 0]

    layers = [model.get_encoder().get_input_embeddings(), model.get_decoder().get_input_embeddings()]
    lig = LayerIntegratedGradients(forward, layers)
    for k in range(len(labels)):
        source, decoder = lig.attribute(
            (ids[:, :n], ids[:, n:-1]), baselines=(base[:, :n], base[:, n:-1]), target=k, n_steps=16,
            method="gausslegendre",
        )
        reference = torch.cat([source.sum(-1), decoder.sum(-1)], 1)[0].numpy()
        np.testing.assert_allclose(ours.attributions[k, :-1], reference, atol=1e-4)
        assert ours.attributions[k, -1] == 0.0  # the last target token is no decoder input


def test_integrated_gradients_is_complete_per_row(adapter):
    assert_complete_per_row(
        hsi.explain_with(adapter, SOURCES[2], "integrated_gradients", target=TARGET, score="log_prob")
    )


def test_integrated_gradients_baseline_on_source_keeps_the_target(adapter):
    expl = hsi.explain_with(adapter, SOURCES[0], "integrated_gradients", target=TARGET, n_steps=8,
                            baseline_on="prompt")
    np.testing.assert_array_equal(expl.attributions[:, source_length(expl):], 0.0)
    with torch.no_grad():  # the baseline keeps d_0 and the target: f(baseline) from a direct call
        ids, n = expl.input_ids, source_length(expl)
        source = [t if special else adapter.token_id(expl.params["baseline"]) for t, special in
                  zip(ids[:n], expl.special_tokens_mask[:n])]
        logits = adapter.model(input_ids=torch.tensor([source]), decoder_input_ids=torch.tensor([ids[n:-1]])).logits[0]
    for k, row in enumerate(expl.rows):
        assert row["baseline_score"] == pytest.approx(float(logits[k, row["target"]]), abs=1e-5)


def test_shapley_sampling_is_efficient_per_row(adapter):
    assert_efficient_per_row(hsi.explain_with(
        adapter, SOURCES[0], "shapley_sampling", target=TARGET, n_samples=4, level="token", replacement="unk"
    ))


@pytest.mark.parametrize(("model_type", "method"), per_model(sorted(CAUSAL)))
def test_rows_never_see_later_target_tokens(model_type, method):
    adapter = seq2seq_adapter(model_type)
    expl = hsi.explain_with(adapter, SOURCES[1], method, target=TARGET, **CAUSAL_PARAMS.get(method, {}))
    assert_rows_never_see_later_tokens(expl)
    for k in range(expl.n_rows):  # and every row sees the whole source
        assert np.abs(expl.attributions[k, : source_length(expl)]).sum() > 0


@pytest.mark.parametrize(("model_type", "method"), per_model(SEQ2SEQ_METHODS))
def test_batch_equals_one_by_one(model_type, method):
    assert_batch_equals_one_by_one(row_explainer(seq2seq_adapter(model_type), method), SOURCES, [TARGET, "yes", "over the hill"])


@pytest.mark.parametrize("method", OTHER_METHODS)
def test_methods_without_rows_refuse_clearly(adapter, method):
    with pytest.raises(hsi.errors.UnsupportedModelError, match="seq2seq lm head with one explained row per output") as err:
        get_explainer(method).create(adapter)
    assert "attention" not in str(err.value).split("Methods for it:")[1]  # listed: what works here


@pytest.mark.parametrize("method", [m for m in ROW_METHODS if get_explainer(m).needs_attentions])
def test_attention_methods_refuse_clearly(adapter, method):
    with pytest.raises(hsi.errors.UnsupportedModelError, match="only through cross-attention"):
        get_explainer(method).create(adapter)


def test_gradients_are_taken_at_the_word_embeddings(adapter):
    explainer = get_explainer("gradient_x_input").create(adapter)
    assert explainer.at == "word_embeddings"  # the blocks' input h₀ has two stacks here
    with pytest.raises(hsi.errors.UnsupportedModelError, match="two stacks"):
        get_explainer("gradient_x_input").create(adapter, at="embedding_output")


def test_bad_targets_and_inputs_are_refused(adapter):
    with pytest.raises(hsi.errors.UnknownTargetError, match="target text"):
        hsi.explain_with(adapter, SOURCES[0], "saliency", target=3)
    with pytest.raises(hsi.errors.InvalidInputError, match="sentence pairs"):
        hsi.explain_with(adapter, (SOURCES[0], "second"), "saliency")
    with pytest.raises(hsi.errors.InputTooLongError, match="shorten the target"):
        hsi.explain_with(adapter, SOURCES[0], "saliency", target=" ".join(["word"] * 80))
    with pytest.raises(hsi.errors.InvalidParameterError, match="contrast: not an option of .*its options: generation"):
        hsi.explain_with(adapter, SOURCES[0], "saliency", target=TARGET, contrast="a cat was here")


def test_long_sources_are_truncated_like_classifier_inputs(adapter):
    long_source = " ".join(["word"] * 80)
    expl = hsi.explain_with(adapter, long_source, "saliency", target=TARGET)
    assert source_length(expl) == adapter.max_length and "truncated" in expl.warnings[0]
    with pytest.raises(hsi.errors.InputTooLongError):
        hsi.explain_with(adapter, long_source, "saliency", target=TARGET, truncation=False)


def test_explaining_leaves_the_model_as_it_was():
    model, tok = tiny_seq2seq_lm("bart")
    model.train()
    model.get_encoder().eval()  # mixed modes, as in a PEFT wrapper around a frozen model
    modes = [m.training for m in model.modules()]
    embeddings = [model.get_encoder().get_input_embeddings(), model.get_decoder().get_input_embeddings()]
    try:
        adapter = hsi.ModelAdapter(model, tok)
        hsi.explain_with(adapter, SOURCES[0], "integrated_gradients", target=TARGET, n_steps=4)
        with pytest.raises(hsi.errors.InvalidParameterError, match="max_new_tokens"):
            hsi.explain_with(adapter, SOURCES[0], "saliency", generation={"max_new_tokens": 0})
        assert [m.training for m in model.modules()] == modes
        assert not any(module._forward_hooks for module in embeddings)
        assert not any(p.grad is not None for p in model.parameters())
    finally:
        model.eval()


def test_other_generation_models_are_refused(tmp_path):
    from transformers import MarianConfig, MarianMTModel, WhisperConfig, WhisperForConditionalGeneration

    whisper = WhisperConfig(vocab_size=64, d_model=16, encoder_layers=1, decoder_layers=1, encoder_attention_heads=2,
                            decoder_attention_heads=2, encoder_ffn_dim=16, decoder_ffn_dim=16, num_mel_bins=8,
                            max_source_positions=8, max_target_positions=8, pad_token_id=0, bos_token_id=1,
                            eos_token_id=2, decoder_start_token_id=1)
    _, tok = tiny_seq2seq_lm("t5")
    with pytest.raises(hsi.errors.UnsupportedModelError, match="not a text encoder–decoder"):
        hsi.ModelAdapter(WhisperForConditionalGeneration(whisper), tok)
    whisper.architectures = ["WhisperForConditionalGeneration"]
    whisper.save_pretrained(tmp_path)  # refused from its config, before any weights are read
    with pytest.raises(hsi.errors.UnsupportedModelError, match="not a text encoder–decoder"):
        hsi.ModelAdapter.from_pretrained(tmp_path)
    separate = MarianConfig(vocab_size=len(tok), d_model=16, encoder_layers=1, decoder_layers=1,
                            share_encoder_decoder_embeddings=False, pad_token_id=0, decoder_start_token_id=0)
    with pytest.raises(hsi.errors.UnsupportedModelError, match="separate vocabularies"):
        hsi.ModelAdapter(MarianMTModel(separate), tok)


def test_cli_explains_a_target(tmp_path, capsys):
    from hf_seqinterp.cli import main

    model, tokenizer = tiny_seq2seq_lm("bart")
    model.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    assert main(["explain", "--model", str(tmp_path), SOURCES[0], "--target", TARGET, "--method", "erasure",
                 "--color", "never"]) == 0
    out = capsys.readouterr().out
    n_rows = len(tokenizer(text_target=TARGET)["input_ids"])
    assert out.count("method: erasure") == n_rows and "p(target) = " in out
    assert main(["explain", "--model", str(tmp_path), SOURCES[1], "--max-new-tokens", "2", "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    expl = hsi.Explanation.from_dict(row)
    assert 1 <= expl.n_rows <= 2 and expl.extras["head"] == "seq2seq_lm"


@pytest.fixture(scope="module")
def reverse_bart():  # about 10 s of training on one core: the tests that use it are slow
    """A small BART trained in-process to reverse 5 letters (recipes/synthetic_tasks.py)."""
    sys.path.insert(0, str(REPO / "recipes"))
    from synthetic_tasks import reverse_accuracy, reverse_examples, train_reverse_seq2seq

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny matrices: one thread is fastest, and no contention on a shared machine
    try:
        model, tokenizer = train_reverse_seq2seq(steps=200)
    finally:
        torch.set_num_threads(threads)
    assert reverse_accuracy(model, tokenizer, reverse_examples(500, seed=1)) >= 0.98
    return hsi.ModelAdapter(model, tokenizer), reverse_examples(40, seed=2)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("method", "params"),
    [("erasure", {"replacement": "pad"}), ("occlusion", {"window": 1, "replacement": "pad"}),
     ("integrated_gradients", {"n_steps": 32})],
)
def test_each_target_letter_is_explained_by_its_source_letter(reverse_bart, method, params):
    """Ground truth: target letter k is source letter n − 1 − k, so that source token gets row k's
    largest attribution among the source tokens."""
    adapter, pairs = reverse_bart
    expls = hsi.explain_with(adapter, [s for s, _ in pairs], method, target=[t for _, t in pairs], progress=False,
                             **params)
    hits = []
    for expl, (source, _) in zip(expls, pairs):
        n, letters = source_length(expl), len(source.split())
        for k in range(1, letters + 1):  # row 0 explains the target's <s>; rows 1..n its letters
            hits.append(int(np.argmax(expl.attributions[k, :n])) == letters - k + 1)  # after the source's <s>
    assert np.mean(hits) >= 0.95, (method, np.mean(hits))


def test_dataset_and_pipeline_give_what_explain_with_gives(tmp_path):
    from transformers import pipeline

    adapter = seq2seq_adapter("t5")
    options = {"generation": {"max_new_tokens": 3}}
    table = hsi.explain_dataset(adapter, SOURCES[:2], ["saliency"], head_options=options, output_dir=tmp_path / "out",
                                progress=False)
    for source, stored in zip(SOURCES[:2], hsi.dataset_to_explanations(table)):
        direct = hsi.explain_with(adapter, source, "saliency", **options)
        assert stored.input_ids == direct.input_ids and stored.extras["head"] == "seq2seq_lm"
        np.testing.assert_allclose(stored.attributions, direct.attributions, atol=1e-6)
    pipe = pipeline("explain-text", model=adapter.model, tokenizer=adapter.tokenizer, method="erasure")
    result = pipe(SOURCES[0], target=TARGET)
    direct = hsi.explain_with(adapter, SOURCES[0], "erasure", target=TARGET)
    assert [row["label"] for row in result["rows"]] == [row["label"] for row in direct.rows]
    np.testing.assert_allclose([t["attribution"] for t in result["rows"][-1]["tokens"]], direct.row(-1).attributions,
                               atol=1e-6)
