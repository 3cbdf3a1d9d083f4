"""Model approximation: surrogates fitted to a model's predictions, held-out fidelity, CD phrase scores."""

from __future__ import annotations

import json
import random
import subprocess
import sys

import numpy as np
import pytest
from additive_model import additive_gpt2, true_contributions
from bow_model import BagOfWordsClassifier, BagOfWordsConfig, bow_model
from conftest import needs_minilm, needs_sst2, sst2_dev
from tiny_models import WORDS, random_texts, tiny_model, wordpiece_tokenizer

from hf_seqinterp import ModelAdapter, PhraseScores, fit_surrogates, get_explainer, phrase_scores
from hf_seqinterp.errors import (
    InvalidInputError,
    InvalidParameterError,
    MissingDependencyError,
    UnknownTargetError,
    UnsupportedModelError,
)
from hf_seqinterp.surrogate import model_logits, words


def rule_model(word: str = "awful") -> ModelAdapter:
    """A bag-of-words model that predicts NEG exactly when `word` occurs: logit_NEG = 4·count(word),
    logit_POS = 1."""
    tokenizer = wordpiece_tokenizer()
    weights = np.zeros((len(tokenizer), 2))
    weights[tokenizer.convert_tokens_to_ids(word), 0] = 4.0
    config = BagOfWordsConfig(
        vocab_size=len(tokenizer), num_labels=2, pad_token_id=tokenizer.pad_token_id,
        id2label={0: "NEG", 1: "POS"}, label2id={"NEG": 0, "POS": 1},
    )  # fmt: skip
    return ModelAdapter(BagOfWordsClassifier(config, weights, np.array([0.0, 1.0])).eval(), tokenizer)


def plain_texts(n: int, seed: int = 0, plant: str | None = None) -> list[str]:
    """Random sentences of 3–10 words of the tiny vocabulary, without punctuation; `plant` is put at
    a random place in 40 % of them."""
    rng = random.Random(seed)
    texts = []
    for _ in range(n):
        sentence = [rng.choice(WORDS) for _ in range(rng.randint(3, 10))]
        if plant and rng.random() < 0.4:
            sentence.insert(rng.randint(0, len(sentence)), plant)
        texts.append(" ".join(sentence))
    return texts


@pytest.fixture(scope="module")
def rule():
    adapter = rule_model()
    texts = plain_texts(240, plant="awful")
    predicted = model_logits(adapter, texts, progress=False).argmax(1)
    return adapter, texts, predicted


@pytest.fixture(scope="module")
def rule_report(rule):
    adapter, texts, predicted = rule
    return fit_surrogates(adapter, texts, predicted.tolist(), seed=0, n_estimators=30, progress=False)


# ----------------------------------------------------------------- surrogates
def test_surrogates_recover_the_models_rule(rule, rule_report):
    predicted = rule[2]
    assert 0.3 < np.mean(predicted == 0) < 0.6  # both classes well represented
    tree, logistic, boosted = (rule_report[k] for k in ("tree", "logistic", "boosted"))
    names = rule_report.vectorizer.get_feature_names_out()
    assert names[tree.estimator.tree_.feature[0]] == "awful"  # the root split is the rule's word
    first, second = tree.rules.splitlines()[:2]
    assert first == "if 'awful' in text:" and second.startswith("    predict 'NEG'  # ")
    assert (logistic.top_features[0].name, logistic.top_features[0].label) == ("awful", "NEG")
    assert boosted.top_features[0].name == "awful" and boosted.top_features[0].weight > 0.9
    assert tree.fidelity == 1.0 and tree.n_used == 1  # one split makes pure leaves
    assert rule_report.baseline_fidelity == np.mean(predicted[rule_report.test_indices] == 1)
    assert logistic.fidelity >= 0.95 and boosted.fidelity >= 0.95
    assert boosted.r2 > 0.9  # mimic learning fits the soft predictions themselves
    # the gold labels given were the model's predictions: accuracy is fidelity, and so is the model's
    assert rule_report.model_accuracy == 1.0
    assert all(s.accuracy == s.fidelity for s in rule_report.surrogates.values())


def test_gold_labels_are_never_fitted(rule, rule_report):
    adapter, texts, predicted = rule
    shuffled = np.random.default_rng(1).permutation(predicted).tolist()
    other = fit_surrogates(adapter, texts, shuffled, seed=0, n_estimators=30, progress=False)
    for kind, s in rule_report.surrogates.items():
        assert other[kind].fidelity == s.fidelity and other[kind].top_features == s.top_features
        assert other[kind].accuracy != s.accuracy
    assert other.model_accuracy < 0.9


def test_split_is_disjoint_seeded_and_recorded(rule, rule_report):
    adapter, texts, predicted = rule
    fit, test = rule_report.fit_indices, rule_report.test_indices
    assert len(test) == 60 and len(fit) == 180
    assert not set(fit) & set(test) and sorted([*fit, *test]) == list(range(len(texts)))
    again = fit_surrogates(adapter, texts, predicted.tolist(), seed=0, n_estimators=30, progress=False)
    assert json.dumps(again.to_dict()["surrogates"]) == json.dumps(rule_report.to_dict()["surrogates"])
    assert np.array_equal(again.test_indices, test)
    assert not np.array_equal(fit_surrogates(adapter, texts, seed=1, kinds="tree", progress=False).test_indices, test)


def test_fidelity_is_measured_on_held_out_texts_only():
    """A fully grown tree memorises the fitting texts of a many-word model but not the held-out ones."""
    model, tokenizer = bow_model(seed=3)
    adapter = ModelAdapter(model, tokenizer)
    texts = plain_texts(300, seed=5)
    report = fit_surrogates(adapter, texts, kinds=["tree"], tree_depth=None, max_n=1, min_df=1, progress=False)
    tree = report["tree"]
    assert tree.fit_fidelity > 0.98
    assert tree.fidelity < tree.fit_fidelity - 0.1
    held_out = [texts[i] for i in report.test_indices]
    predicted = model_logits(adapter, held_out, progress=False).argmax(1)
    assert tree.fidelity == pytest.approx(np.mean(report.predict(held_out, "tree") == predicted))


def test_three_classes():
    model, tokenizer = bow_model(seed=2, num_labels=3)
    report = fit_surrogates(ModelAdapter(model, tokenizer), plain_texts(200, seed=2), n_estimators=20, progress=False)
    assert all(s.fidelity > 0.4 for s in report.surrogates.values())  # chance is about 1/3
    assert {f.label for f in report["logistic"].top_features} <= {"class_0", "class_1", "class_2"}
    assert report.predict(["good film", "awful film"], "boosted").shape == (2,)


def test_report_serialises_and_renders(rule_report):
    data = json.loads(json.dumps(rule_report.to_dict()))
    assert data["n_fit"] + data["n_test"] == 240 and set(data["surrogates"]) == {"logistic", "tree", "boosted"}
    assert data["surrogates"]["tree"]["rules"].startswith("if 'awful' in text:")
    text = rule_report.to_markdown()
    assert "| tree | 1.000 |" in text and "`awful` → NEG" in text


def test_bad_input_gets_clear_errors(rule):
    adapter, texts, _ = rule
    with pytest.raises(InvalidInputError, match="at least 2 fitting texts"):
        fit_surrogates(adapter, texts[:3], test_size=0.5, progress=False)
    with pytest.raises(InvalidInputError, match="predicts 'POS' for every one"):
        fit_surrogates(adapter, [t for t in texts if "awful" not in t.split()][:40], progress=False)
    with pytest.raises(InvalidInputError, match="one gold label"):
        fit_surrogates(adapter, texts[:10], [0, 1], progress=False)
    with pytest.raises(UnknownTargetError):
        fit_surrogates(adapter, texts[:10], ["NEG"] * 9 + ["MAYBE"], progress=False)
    with pytest.raises(InvalidParameterError, match="kinds="):
        fit_surrogates(adapter, texts, kinds=["forest"], progress=False)
    with pytest.raises(InvalidParameterError, match="test_size"):
        fit_surrogates(adapter, texts, test_size=1.0, progress=False)
    with pytest.raises(InvalidInputError, match="lower min_df"):
        fit_surrogates(adapter, ["awful one", "two", "three", "four"], min_df=2, test_size=0.25, progress=False)


def test_missing_scikit_learn_names_the_extra(rule, monkeypatch):
    adapter, texts, _ = rule
    for name in [m for m in sys.modules if m == "sklearn" or m.startswith("sklearn.")] + ["sklearn"]:
        monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(MissingDependencyError, match=r'pip install "hf-seqinterp\[surrogate\]"'):
        fit_surrogates(adapter, texts, progress=False)


def test_importing_the_package_and_the_module_does_not_import_scikit_learn():
    code = "import sys, hf_seqinterp; hf_seqinterp.fit_surrogates; hf_seqinterp.phrase_scores; print('sklearn' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# ----------------------------------------------------------------- phrase scores
def test_phrase_scores_equal_mean_true_contributions_of_an_additive_model():
    """On a model whose logits are Σ_t c_t + b, the CD score of a phrase occurrence is the sum of c_t
    over its words' tokens, so each phrase score is the mean of those sums over the occurrences."""
    adapter = additive_gpt2()
    texts = ["the film was not good", "Not good at all , the film", "a good film , not a good story"]
    scores = phrase_scores(adapter, texts, max_n=2, min_count=1, progress=False)
    expected: dict[str, list[np.ndarray]] = {}
    for text in texts:
        contributions, _, _ = true_contributions(adapter, text)
        enc = adapter.encode([text])[0]
        spans = words(text)
        for i in range(len(spans)):
            for n in (1, 2):
                if i + n <= len(spans):  # the words' tokens: "all , the" is the bigram "all the" without ","
                    tokens = np.concatenate([enc.tokens_in_span(start, end) for _, start, end in spans[i : i + n]])
                    phrase = " ".join(w for w, _, _ in spans[i : i + n])
                    expected.setdefault(phrase, []).append(contributions[tokens].sum(0))
    assert set(scores.phrases) == set(expected)
    for phrase, values in expected.items():
        assert scores[phrase].count == len(values)
        np.testing.assert_allclose(scores[phrase].scores, np.mean(values, 0), rtol=1e-6, atol=1e-9)
    assert scores["NOT GOOD"].count == 2
    assert "a good" not in phrase_scores(adapter, texts, max_n=2, min_count=3, progress=False).phrases


def test_phrase_score_of_a_single_occurrence_is_its_cd_score_in_context():
    model, tokenizer = tiny_model("bert")
    adapter = ModelAdapter(model, tokenizer)
    text = "the plot was not very good"
    scores = phrase_scores(adapter, [text, "a great cast"], max_n=3, min_count=1, progress=False)
    cd = get_explainer("contextual_decomposition").create(adapter)
    for label in range(adapter.num_labels):
        (reference,) = cd.score_spans(text, "not very good", target=label)
        assert scores["not very good"].scores[label] == pytest.approx(reference.score, rel=1e-5, abs=1e-6)


def test_phrase_ranking_and_rendering():
    adapter = additive_gpt2()
    scores = phrase_scores(adapter, random_texts(12, seed=4), min_count=2, progress=False)
    for label in range(3):
        top = scores.top(label, k=5)
        centred = [s.scores[label] - np.mean(s.scores) for s in top]
        assert centred == sorted(centred, reverse=True) and len(top) == 5
        assert scores.top(adapter.labels[label], k=5) == top
    data = json.loads(json.dumps(scores.to_dict()))
    assert data["params"]["max_n"] == 3 and PhraseScores.from_dict(data) == scores
    assert sum(line.startswith("| ") for line in scores.to_markdown(k=2).splitlines()) == 3 * (1 + 2)
    with pytest.raises(InvalidParameterError, match="label="):
        scores.top("nonsense")


def test_phrase_scores_refuse_models_without_cd_rules(rule):
    adapter, texts, _ = rule
    with pytest.raises(UnsupportedModelError, match="contextual_decomposition does not support"):
        phrase_scores(adapter, texts[:4], progress=False)


# ----------------------------------------------------------------- the real model
@needs_minilm
@needs_sst2
def test_surrogates_of_the_sst2_model_are_scored_on_held_out_texts(minilm):
    texts, gold = sst2_dev(240)
    report = fit_surrogates(minilm, texts, gold, kinds=("logistic", "tree"), seed=0, progress=False)
    held_out = [texts[i] for i in report.test_indices]
    predicted = model_logits(minilm, held_out, progress=False).argmax(1)
    gold_held_out = np.array(gold)[report.test_indices]
    assert report.model_accuracy == pytest.approx(np.mean(predicted == gold_held_out)) and report.model_accuracy > 0.85
    for kind in ("logistic", "tree"):
        guess = report.predict(held_out, kind)
        assert report[kind].fidelity == pytest.approx(np.mean(guess == predicted))
        assert report[kind].accuracy == pytest.approx(np.mean(guess == gold_held_out))
    assert report["tree"].rules.startswith("if ")


@pytest.mark.slow
@needs_minilm
@needs_sst2
def test_surrogates_and_phrase_scores_on_sst2_dev(minilm):
    texts, gold = sst2_dev(2000)
    report = fit_surrogates(minilm, texts, gold, seed=0, progress=False)
    # better than always answering the model's most frequent class; the linear model by a margin
    assert all(s.fidelity > report.baseline_fidelity for s in report.surrogates.values())
    assert report["logistic"].fidelity > report.baseline_fidelity + 0.05
    scores = phrase_scores(minilm, [texts[i] for i in report.fit_indices[:100]], min_count=3, progress=False)
    top_negative = [s.phrase for s in scores.top("NEGATIVE", k=20)]
    assert any(w in top_negative for w in ("bad", "too", "dull", "no", "n't", "not"))
