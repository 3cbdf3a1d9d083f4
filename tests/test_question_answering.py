"""Extractive question answering: three explained rows (the answer's start, its end and the span).

Exact references: the answer transformers' question-answering pipeline picks (its span decoder,
`select_starts_ends`, on our model's logits for the same tokenised pair); row probabilities and
scores against direct model calls; erasure against leave-one-out computed here; Captum's
FeatureAblation and IntegratedGradients on a forward that returns one row's score; completeness
(IG) and efficiency (Shapley sampling) per row, the span row included; batch == one by one for
every method that explains rows, and clear refusals.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from row_checks import assert_batch_equals_one_by_one
from tiny_models import tiny_head_model

import hf_seqinterp as hsi
from hf_seqinterp.explainers import get_explainer, list_methods

QA = [
    {"question": "what was the film", "context": "the film was a gripping story with a great cast and a sad ending"},
    {"question": "who loved it", "context": "they loved the music but she hated the plot"},
    {"question": "was it good", "context": "not good"},
]
FAST = {"integrated_gradients": {"n_steps": 8}, "lime": {"n_samples": 30}, "kernel_shap": {"n_samples": 30},
        "shapley_sampling": {"n_samples": 3}, "erasure": {"replacement": "unk"}, "occlusion": {"replacement": "unk"}}
ROW_METHODS = [m for m in list_methods() if get_explainer(m).multi_row]
OTHER_METHODS = [m for m in list_methods() if not get_explainer(m).multi_row]
#: the decoder (left padding, explicit positions) runs every method in the slow suite, two by default
DECODER_FAST = ("integrated_gradients", "kernel_shap")


def qa_adapter(model_type: str) -> hsi.ModelAdapter:
    return hsi.ModelAdapter(*tiny_head_model("AutoModelForQuestionAnswering", model_type))


#: the decoder's per-model checks run in the slow suite (the machine is slow); its batching
#: (left padding, explicit positions) stays in the default one through `DECODER_FAST`
@pytest.fixture(scope="module", params=["bert", pytest.param("gpt2", marks=pytest.mark.slow)])
def adapter(request):
    return qa_adapter(request.param)


def direct_logits(adapter, expl) -> tuple[np.ndarray, np.ndarray]:
    """Start and end logits of the model called on the explained ids (float64)."""
    inputs = {"input_ids": torch.tensor([expl.input_ids])}
    if expl.token_type_ids is not None:
        inputs["token_type_ids"] = torch.tensor([expl.token_type_ids])
    with torch.no_grad():
        out = adapter.model(**inputs)
    return out.start_logits[0].double().numpy(), out.end_logits[0].double().numpy()


def candidates(adapter, expl) -> np.ndarray:
    cls = adapter.tokenizer.cls_token_id
    return np.asarray([s == 1 or t == cls for s, t in zip(expl.segment_ids, expl.input_ids)])


def test_default_answer_is_the_question_answering_pipelines(adapter):
    from transformers.pipelines.document_question_answering import select_starts_ends

    tok = adapter.tokenizer
    for item, expl in zip(QA, hsi.explain_with(adapter, QA, "saliency")):
        enc = tok(item["question"], item["context"], truncation="only_second", return_tensors="np")
        with torch.no_grad():
            out = adapter.model(**{k: torch.as_tensor(v) for k, v in enc.items()})
        # the pipeline's p_mask: 1 where no answer can be (question and special tokens), but not at [CLS]
        p_mask = np.asarray([[s != 1 for s in enc.sequence_ids(0)]], dtype=np.int64)
        p_mask[enc["input_ids"] == tok.cls_token_id] = 0
        starts, ends, scores, _ = select_starts_ends(
            out.start_logits.numpy(), out.end_logits.numpy(), p_mask, enc["attention_mask"], max_answer_len=15
        )
        assert expl.input_ids == enc["input_ids"][0].tolist()
        assert [r["target"] for r in expl.rows] == [starts[0], ends[0], starts[0]]
        assert expl.rows[2]["probability"] == pytest.approx(float(scores[0]), rel=1e-5)
        start, end = expl.rows[2]["answer_start"], expl.rows[2]["answer_end"]
        assert expl.target_label == item["context"][start:end] == expl.rows[2]["label"]


def test_row_probabilities_and_scores_equal_direct_model_calls(adapter):
    expl = hsi.explain_with(adapter, QA[0], "erasure", replacement="unk", score="log_prob")
    start_logits, end_logits = direct_logits(adapter, expl)
    allowed = candidates(adapter, expl)
    s, e = expl.rows[0]["target"], expl.rows[1]["target"]
    log_ps = start_logits[s] - np.logaddexp.reduce(start_logits[allowed])
    log_pe = end_logits[e] - np.logaddexp.reduce(end_logits[allowed])
    expected = [log_ps, log_pe, log_ps + log_pe]
    np.testing.assert_allclose([r["input_score"] for r in expl.rows], expected, atol=1e-5)
    np.testing.assert_allclose(expl.probabilities, np.exp(expected), rtol=1e-5)
    logit = hsi.explain_with(adapter, QA[0], "erasure", replacement="unk", score="logit")
    np.testing.assert_allclose(
        [r["input_score"] for r in logit.rows], [start_logits[s], end_logits[e], start_logits[s] + end_logits[e]],
        atol=1e-5,
    )


def test_given_answers_as_text_or_character_span(adapter):
    context = QA[0]["context"]
    by_text = hsi.explain_with(adapter, QA[0], "saliency", target="a great cast")
    begin = context.index("a great cast")
    by_span = hsi.explain_with(adapter, QA[0], "saliency", target=(begin, begin + len("a great cast")))
    assert by_text.target_label == by_span.target_label == "a great cast"
    assert [r["target"] for r in by_text.rows] == [r["target"] for r in by_span.rows]
    s, e = by_text.rows[0]["target"], by_text.rows[1]["target"]
    assert by_text.covered_text(s).strip() == "a" and context.endswith(by_text.covered_text(e).strip() + " and a sad ending")
    both = hsi.explain_with(adapter, QA[:2], "saliency", target=["a great cast", None])
    alone = hsi.explain_with(adapter, QA[1], "saliency")
    assert both[0].target_label == "a great cast" and both[1].target_label == alone.target_label
    with pytest.raises(hsi.errors.UnknownTargetError, match="does not occur in the context"):
        hsi.explain_with(adapter, QA[0], "saliency", target="a dull cast")
    with pytest.raises(hsi.errors.UnknownTargetError, match="character span inside the context"):
        hsi.explain_with(adapter, QA[0], "saliency", target=(5, 500))
    with pytest.raises(hsi.errors.UnknownTargetError, match="answer's text"):
        hsi.explain_with(adapter, QA[0], "saliency", target=3)


def test_max_answer_len_bounds_the_models_answer(adapter):
    expl = hsi.explain_with(adapter, QA[0], "saliency", max_answer_len=1)
    assert expl.rows[0]["target"] == expl.rows[1]["target"]


@pytest.mark.parametrize(
    ("model_type", "method"),
    [("bert", m) for m in ROW_METHODS]
    + [pytest.param("gpt2", m, marks=() if m in DECODER_FAST else pytest.mark.slow) for m in ROW_METHODS],
)
def test_batch_equals_one_by_one(model_type, method):
    adapter = qa_adapter(model_type)
    explainer = get_explainer(method).create(adapter, **FAST.get(method, {}))
    for expl in assert_batch_equals_one_by_one(explainer, QA, [None, "the music", None]):
        assert expl.attributions.shape == (3, len(expl.tokens)) and [r["row"] for r in expl.rows] == ["start", "end", "span"]


@pytest.mark.parametrize("score", ["logit", "prob"])
def test_integrated_gradients_is_complete_per_row(adapter, score):
    expl = hsi.explain_with(adapter, QA[1], "integrated_gradients", score=score, n_steps=32)
    for k, row in enumerate(expl.rows):
        gap = row["input_score"] - row["baseline_score"]
        assert abs(float(expl.attributions[k].sum(dtype=np.float64)) - gap) <= 1e-2 * max(abs(gap), 1e-3)
    if score == "logit":  # the span's logit is the sum of the start's and the end's, and so are its attributions
        np.testing.assert_allclose(expl.attributions[2], expl.attributions[0] + expl.attributions[1], atol=1e-5)


def test_shapley_sampling_is_efficient_per_row(adapter):
    expl = hsi.explain_with(adapter, QA[1], "shapley_sampling", n_samples=4, score="prob")
    for k, row in enumerate(expl.rows):
        assert float(expl.attributions[k].sum(dtype=np.float64)) == pytest.approx(
            row["input_score"] - row["baseline_score"], abs=1e-5
        )


def row_scores(adapter, expl, ids: np.ndarray) -> np.ndarray:
    """(n, 3) logit scores of the rows on id variants of the explained input, from direct model calls."""
    inputs = {"input_ids": torch.as_tensor(ids)}
    if expl.token_type_ids is not None:
        inputs["token_type_ids"] = torch.tensor([expl.token_type_ids] * len(ids))
    with torch.no_grad():
        out = adapter.model(**inputs)
    s, e = expl.rows[0]["target"], expl.rows[1]["target"]
    start, end = out.start_logits[:, s].double().numpy(), out.end_logits[:, e].double().numpy()
    return np.stack([start, end, start + end], axis=1)


def test_erasure_equals_leave_one_out(adapter):
    expl = hsi.explain_with(adapter, QA[0], "erasure", replacement="unk")
    ids = np.asarray([expl.input_ids])
    full = row_scores(adapter, expl, ids)[0]
    for t, special in enumerate(expl.special_tokens_mask):
        if special:
            np.testing.assert_array_equal(expl.attributions[:, t], 0.0)
            continue
        erased = ids.copy()
        erased[0, t] = adapter.tokenizer.unk_token_id
        np.testing.assert_allclose(expl.attributions[:, t], full - row_scores(adapter, expl, erased)[0], atol=1e-5)


def test_equal_to_captum_on_each_rows_score(adapter):
    from captum.attr import FeatureAblation, IntegratedGradients

    ours = hsi.explain_with(adapter, QA[0], "occlusion", window=1, replacement="unk")
    ids = torch.tensor([ours.input_ids])
    specials = torch.tensor([ours.special_tokens_mask])
    ablation = FeatureAblation(lambda x, row: torch.as_tensor(row_scores(adapter, ours, x.numpy())[:, row]))
    for row in range(3):
        ablated = ablation.attribute(ids, baselines=adapter.tokenizer.unk_token_id, additional_forward_args=(row,))
        np.testing.assert_allclose(ours.attributions[row], torch.where(specials, 0.0, ablated.double())[0], atol=1e-4)

    ig = hsi.explain_with(adapter, QA[0], "integrated_gradients", baseline="unk", n_steps=16)
    embeds = adapter.embed(ids).detach()
    base = adapter.baseline_embeds(adapter.collate(adapter.encode([(QA[0]["question"], QA[0]["context"])])), embeds, "unk")
    s, e = ig.rows[0]["target"], ig.rows[1]["target"]
    kwargs = {} if ig.token_type_ids is None else {"token_type_ids": torch.tensor([ig.token_type_ids])}

    def score(x: torch.Tensor, row: int) -> torch.Tensor:
        out = adapter.model(inputs_embeds=x, **{k: v.expand(len(x), -1) for k, v in kwargs.items()})
        return torch.stack([out.start_logits[:, s], out.end_logits[:, e], out.start_logits[:, s] + out.end_logits[:, e]], 1)[:, row]

    for row in range(3):
        reference = IntegratedGradients(score).attribute(
            embeds, baselines=base, n_steps=16, method="gausslegendre", additional_forward_args=(row,)
        )
        np.testing.assert_allclose(ig.attributions[row], reference.sum(-1)[0].detach().numpy(), atol=1e-4)


@pytest.mark.parametrize("method", OTHER_METHODS)
def test_methods_without_rows_refuse_clearly(adapter, method):
    with pytest.raises(hsi.errors.UnsupportedModelError, match="the answer's start, its end and the span"):
        get_explainer(method).create(adapter)


def test_refusals(adapter):
    with pytest.raises(hsi.errors.InvalidParameterError, match="replacement='delete' drops tokens"):
        hsi.explain_with(adapter, QA[0], "erasure")
    with pytest.raises(hsi.errors.InvalidParameterError, match="baseline_on='prompt'"):
        hsi.explain_with(adapter, QA[0], "integrated_gradients", baseline_on="prompt")
    with pytest.raises(hsi.errors.InvalidInputError, match="has no context"):
        hsi.explain_with(adapter, "what was the film", "saliency")
    with pytest.raises(hsi.errors.InvalidInputError, match="'question' and 'context'"):
        hsi.explain_with(adapter, {"question": "what", "contexts": "x"}, "saliency")
    with pytest.raises(hsi.errors.InvalidInputError, match="only a \\*ForMultipleChoice model"):
        hsi.explain_with(adapter, ("what", ["a", "b"]), "saliency")


def test_inputs_as_keywords_and_pairs(adapter):
    reference = hsi.explain_with(adapter, QA[0], "saliency")
    as_keyword = hsi.explain_with(adapter, QA[0]["question"], "saliency", text_pair=QA[0]["context"])
    as_pair = hsi.explain_with(adapter, (QA[0]["question"], QA[0]["context"]), "saliency")
    assert reference == as_keyword == as_pair


def test_long_contexts_lose_their_end_only(adapter):
    item = {"question": "what was the film", "context": " ".join(["the film was good"] * 40) + " and sad"}
    expl = hsi.explain_with(adapter, item, "saliency", target="the film")
    assert len(expl.tokens) == adapter.max_length and "second segment only" in expl.warnings[0]
    question = adapter.tokenizer(item["question"], add_special_tokens=False)["input_ids"]
    assert [i for i, s in zip(expl.input_ids, expl.segment_ids) if s == 0] == question
    with pytest.raises(hsi.errors.UnknownTargetError, match="covers no token"):
        hsi.explain_with(adapter, item, "saliency", target="and sad")
    with pytest.raises(hsi.errors.InputTooLongError):
        hsi.explain_with(adapter, item, "saliency", truncation=False)
    with pytest.raises(hsi.errors.InputTooLongError, match="first segment alone"):
        hsi.explain_with(adapter, {"question": item["context"], "context": "the film"}, "saliency")


def test_views_of_a_question_answering_explanation(adapter):
    expl = hsi.explain_with(adapter, QA[0], "gradient_x_input")
    span = expl.row(2)
    assert len(span.tokens) == len(expl.tokens) and span.target_label == expl.target_label
    assert [w.segment for w in span.to_words()][-1] == 1  # the context is segment 1
    html = expl.to_html()
    assert html.count('class="hfsi-explanation"') == 3 and html.count("<tr data-row=") == 3
    assert f"continuation={expl.target_label!r}" in repr(expl)


def test_cli_explains_an_answer(tmp_path, capsys):
    import json

    from hf_seqinterp.cli import main

    model, tokenizer = tiny_head_model("AutoModelForQuestionAnswering", "bert")
    model.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    args = ["explain", "--model", str(tmp_path), "--question", QA[0]["question"], "--context", QA[0]["context"]]
    assert main([*args, "--target", "a great cast", "--method", "erasure", "-p", "replacement=unk", "--color", "never"]) == 0
    out = capsys.readouterr().out
    assert out.count("method: erasure") == 3 and "a great cast" in out
    assert main([*args, "--max-answer-len", "1", "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["rows"][0]["target"] == row["rows"][1]["target"] and row["extras"]["head"] == "question_answering"


def train_find_the_word(steps: int = 600, seed: int = 0):
    """A tiny BERT trained in-process on a synthetic task: the context is 10 distinct random words, the
    question one of them, X, and the answer is X's place in the context (start = end = X's token)."""
    import random

    from tiny_models import WORDS, wordpiece_tokenizer
    from transformers import BertConfig, BertForQuestionAnswering

    tokenizer = wordpiece_tokenizer()
    words = [w for w in WORDS if w in tokenizer.get_vocab()][:40]  # one token each

    def examples(rng: random.Random, n: int) -> list[tuple[str, str, int]]:
        out = []
        for _ in range(n):
            context = rng.sample(words, 10)
            k = rng.randrange(10)
            out.append((context[k], " ".join(context), k))
        return out

    config = BertConfig(vocab_size=len(tokenizer), hidden_size=64, num_hidden_layers=3, num_attention_heads=4,
                        intermediate_size=128, max_position_embeddings=64, hidden_dropout_prob=0.0,
                        attention_probs_dropout_prob=0.0)
    torch.manual_seed(seed)
    model = BertForQuestionAnswering(config)
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: min(1.0, (step + 1) / 200))
    rng = random.Random(seed)
    for _ in range(steps):
        questions, contexts, places = zip(*examples(rng, 64))
        enc = tokenizer(list(questions), list(contexts), return_tensors="pt", padding=True)
        answer = torch.tensor(places) + 3  # [CLS] X [SEP] w_0 ...
        model(**enc, start_positions=answer, end_positions=answer).loss.backward()
        optimizer.step()
        schedule.step()
        optimizer.zero_grad()
    return model.eval(), tokenizer, examples(random.Random(seed + 1), 100)


@pytest.mark.slow
def test_ground_truth_on_a_trained_find_the_word_task():
    """The start row's top token is the question's word X or X in the context (both occurrences are the
    evidence: the model must match them): erasure ranks the context, IG (mask baseline) every token."""
    model, tokenizer, held_out = train_find_the_word()
    adapter = hsi.ModelAdapter(model, tokenizer)
    items = [{"question": q, "context": c} for q, c, _ in held_out]
    erased = hsi.explain_with(adapter, items, "erasure", replacement="mask", progress=False)
    integrated = hsi.explain_with(adapter, items, "integrated_gradients", baseline="mask", n_steps=16, progress=False)
    answered = np.mean([e.target_label == q for e, (q, _, _) in zip(erased, held_out)])

    def top_is_the_word(expl: hsi.Explanation, word: str, segments: tuple[int, ...]) -> bool:
        tokens = [t for t, s in enumerate(expl.segment_ids) if s in segments]
        return expl.covered_text(max(tokens, key=lambda t: expl.attributions[0, t])) == word

    by_erasure = np.mean([top_is_the_word(e, q, (1,)) for e, (q, _, _) in zip(erased, held_out)])
    by_ig = np.mean([top_is_the_word(e, q, (0, 1)) for e, (q, _, _) in zip(integrated, held_out)])
    print(f"answered {answered:.0%}; start row's top token is X: erasure (context) {by_erasure:.0%}, IG {by_ig:.0%}")
    assert answered >= 0.9 and by_erasure >= 0.9 and by_ig >= 0.9
