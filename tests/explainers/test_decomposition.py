"""The contextual_decomposition explainer: token scores, spans, interactions, hierarchies, errors."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
import torch
from additive_model import additive_gpt2, true_contributions
from conftest import needs_minilm
from decomposition_cases import NEGATIONS
from tiny_models import random_texts, tiny_model

from hf_seqinterp import Explanation, ModelAdapter, get_explainer
from hf_seqinterp.decomposition.hierarchy import PhraseHierarchy
from hf_seqinterp.errors import InvalidParameterError, UnsupportedModelError

METHOD = "contextual_decomposition"


def cd(adapter, **params):
    return get_explainer(METHOD).create(adapter, **params)


@pytest.fixture(scope="module")
def bert():
    model, tokenizer = tiny_model("bert")
    return ModelAdapter(copy.deepcopy(model).double(), tokenizer)


# ----------------------------------------------------------------- a model whose output is additive in tokens
@pytest.mark.parametrize("attention_rule", ["fixed", "qk_split"])
@pytest.mark.parametrize("activation_rule", ["cdt", "acd", "shapley"])
def test_token_scores_equal_true_contributions_of_an_additive_model(attention_rule, activation_rule):
    adapter = additive_gpt2()
    text = "the film was not good but the music was great"
    contributions, logits, constant = true_contributions(adapter, text)
    np.testing.assert_allclose(contributions.sum(0) + constant, logits, atol=1e-9)  # the model is additive
    np.testing.assert_allclose(constant, [0.5, -1.0, 2.0], atol=1e-9)  # ... and its constant is the bias
    explainer = cd(adapter, attention_rule=attention_rule, activation_rule=activation_rule)
    expl = explainer.explain(text, target=2)
    np.testing.assert_allclose(expl.attributions, contributions[:, 2], atol=1e-9, rtol=0)
    n = len(expl)
    every_label = explainer.decomposer(
        adapter.collate(adapter.encode([text])),
        torch.zeros(n, dtype=torch.long),
        torch.eye(n, dtype=torch.bool),
    )
    np.testing.assert_allclose(every_label.relevant.numpy(), contributions, atol=1e-9, rtol=0)
    spans = explainer.score_spans(text, [(0, 3), [(1, 2), (5, 7)]], target=2, tokens=True)
    np.testing.assert_allclose(
        [s.score for s in spans], [contributions[0:3, 2].sum(), contributions[[1, 5, 6], 2].sum()], atol=1e-9
    )
    assert abs(explainer.interaction(text, "not", "good", target=2).value) < 1e-9


# ----------------------------------------------------------------- explainer behaviour
def test_token_scores_are_the_relevant_logit_of_single_token_sets(bert):
    explainer = cd(bert)
    text = "a gripping , funny film"
    expl = explainer.explain(text, target=2)
    assert expl.params["score"] == "logit" and expl.method == METHOD
    assert expl.extras["decomposition_error"] < 1e-8
    singles = explainer.score_spans(text, [(t, t + 1) for t in range(len(expl))], target=2, tokens=True)
    np.testing.assert_allclose(expl.attributions, [s.score for s in singles], atol=1e-6)


@pytest.mark.parametrize("model_type", ["bert", "gpt2", "llama"])
def test_batch_equals_one_by_one(model_type):
    model, tokenizer = tiny_model(model_type)
    hierarchy = model_type == "bert"
    explainer = cd(
        ModelAdapter(model, tokenizer), phrases=["the"], include_hierarchy=hierarchy, max_batch_tokens=160
    )
    texts = random_texts(3, seed=5)
    together = explainer.explain(texts, target=[0, 2, None])
    for text, target, expl in zip(texts, [0, 2, None], together):
        alone = explainer.explain(text, target=target)
        np.testing.assert_allclose(expl.attributions, alone.attributions, atol=1e-5, rtol=0)
        assert [p["score"] for p in expl.extras.get("phrases", [])] == pytest.approx(
            [p["score"] for p in alone.extras.get("phrases", [])], abs=1e-5
        )
        if hierarchy:
            assert [n["tokens"] for n in expl.extras["hierarchy"]["nodes"]] == [
                n["tokens"] for n in alone.extras["hierarchy"]["nodes"]
            ]


def test_phrases_and_interactions_in_extras_match_the_python_api(bert):
    text = "the film is not good , not at all"
    explainer = cd(
        bert, phrases=["not", "film is", "missing words"], interactions=[("not", "good"), ("x", "film")]
    )
    expl = explainer.explain(text, target=0)
    phrases = expl.extras["phrases"]
    assert [(p["phrase"], p["text"]) for p in phrases] == [
        ("not", "not"),
        ("not", "not"),
        ("film is", "film is"),
    ]
    direct = explainer.score_spans(text, [(12, 15), (23, 26), "film is"], target=0)
    assert [p["score"] for p in phrases] == pytest.approx([s.score for s in direct], abs=1e-9)
    assert expl.extras["phrases_not_found"] == ["missing words", "x"]
    (pair,) = expl.extras["interactions"]
    inter = explainer.interaction(text, "not", "good", target=0)
    assert pair["interaction"] == pytest.approx(inter.value, abs=1e-9)
    assert pair["interaction"] == pytest.approx(
        pair["joint"]["score"] - pair["a"]["score"] - pair["b"]["score"]
    )
    assert json.loads(json.dumps(expl.to_dict()))  # extras are JSON-able
    assert Explanation.from_dict(expl.to_dict()) == expl


def test_hierarchy_is_a_tree_of_scored_phrases(bert):
    text = "the acting is not very good , but the music is wonderful"
    explainer = cd(bert)
    tree = explainer.hierarchy(text, target=2)
    enc = bert.encode([text])[0]
    real = [t for t, s in enumerate(enc.special_tokens_mask) if not s]
    root = tree.nodes[tree.root]
    assert root["tokens"] == real and root["text"] == text
    rescored = explainer.score_spans(
        text, [[(n["tokens"][0], n["tokens"][-1] + 1)] for n in tree.nodes], target=2, tokens=True
    )
    for node, again in zip(tree.nodes, rescored):
        assert node["score"] == pytest.approx(again.score, abs=1e-9)
        covered = [t for c in node["children"] for t in tree.nodes[c]["tokens"]]
        if node["children"]:
            assert sorted(covered) == node["tokens"] and len(set(covered)) == len(covered)
            assert node["interaction"] == pytest.approx(
                node["score"] - sum(tree.nodes[c]["score"] for c in node["children"])
            )
            assert all(tree.nodes[c]["level"] < node["level"] for c in node["children"])
    for level in tree.levels:
        tokens = [t for n in level for t in tree.nodes[n]["tokens"]]
        assert len(tokens) == len(set(tokens))
    assert tree.levels[0] == [n["id"] for n in tree.nodes if n["level"] == 0] and len(tree.levels[0]) == len(
        real
    )
    assert PhraseHierarchy.from_dict(json.loads(json.dumps(tree.to_dict()))) == tree
    assert "good" in str(tree)


def test_hierarchy_renders_in_the_explanation_html(bert):
    expl = cd(bert, include_hierarchy=True).explain("not a good film", target=0)
    page = expl.to_html(full_page=True)
    assert 'class="hfsi-hierarchy"' in page and "<script" not in page and "http" not in page
    assert page.count('class="hfsi-level"') == len(expl.extras["hierarchy"]["levels"])
    assert page.count('class="hfsi-phrase"') == sum(
        len(level) for level in expl.extras["hierarchy"]["levels"]
    )
    assert 'class="hfsi-hierarchy"' not in cd(bert).explain("not a good film").to_html()


def test_follows_the_model_dtype(bert):
    model, tokenizer = tiny_model("bert")
    single = cd(ModelAdapter(model, tokenizer)).explain("a funny film", target=1)
    double = cd(bert).explain("a funny film", target=1)
    np.testing.assert_allclose(single.attributions, double.attributions, atol=1e-5)
    assert double.extras["decomposition_error"] < 1e-10


# ----------------------------------------------------------------- errors
@pytest.mark.parametrize(
    "model_type, missing",
    [
        ("albert", "cross-layer parameter sharing"),
        ("deberta-v2", "disentangled .* relative attention"),
        ("modernbert", "local \\(sliding-window\\) attention"),
    ],
)
def test_unsupported_architecture_names_what_is_missing_and_the_supported_ones(model_type, missing):
    model, tokenizer = tiny_model(model_type)
    supported = "Supported model types: bert, distilbert, electra, gpt2, llama, qwen2, roberta"
    with pytest.raises(
        UnsupportedModelError,
        match=f"{type(model).__name__} \\(model_type='{model_type}'\\): {missing}.*{supported}",
    ):
        cd(ModelAdapter(model, tokenizer))
    unknown = copy.deepcopy(model)
    unknown.config.model_type = "my-own-transformer"
    with pytest.raises(
        UnsupportedModelError, match="'my-own-transformer'\\): no per-architecture adapter names its modules"
    ):
        cd(ModelAdapter(unknown, tokenizer))


def test_bad_parameters_and_spans_give_clear_errors(bert):
    with pytest.raises(InvalidParameterError, match="score='prob'.*use score='logit'"):
        cd(bert, score="prob")
    with pytest.raises(InvalidParameterError, match="attention_rule='softmax' is not one of fixed, qk_split"):
        cd(bert, attention_rule="softmax")
    with pytest.raises(InvalidParameterError, match="activation_rule='relu' is not one of cdt, acd, shapley"):
        cd(bert, activation_rule="relu")
    with pytest.raises(InvalidParameterError, match="pairs"):
        cd(bert, interactions=["not"])
    explainer = cd(bert)
    with pytest.raises(InvalidParameterError, match="'great' does not occur"):
        explainer.score_spans("a good film", ["great"])
    with pytest.raises(InvalidParameterError, match="overlap"):
        explainer.interaction("a good film", "good film", "film")
    with pytest.raises(InvalidParameterError, match=r"Token range \(2, 9\)"):
        explainer.score_spans("a good film", [(2, 9)], tokens=True)
    with pytest.raises(InvalidParameterError, match="covers no token"):
        explainer.score_spans("a good film", [(1, 2)])


# ----------------------------------------------------------------- the real model


@needs_minilm
def test_not_interacts_against_the_adjective_on_minilm(minilm):
    """With the default rules the interaction of "not" with the adjective opposes the adjective's own
    score in 14 of these 16 sentences (docs/methods/contextual_decomposition.md lists every rule's count)."""
    explainer = cd(minilm)
    results = [
        explainer.interaction(text, "not", adjective, target="POSITIVE") for text, adjective in NEGATIONS
    ]
    opposed = [r.value * r.b.score < 0 for r in results]
    assert sum(opposed) >= 13, [(r.b.text, r.b.score, r.value) for r in results]
    positive = [
        r for r, (_, adj) in zip(results, NEGATIONS) if adj in ("funny", "great", "good", "interesting")
    ]
    assert all(r.b.score > 0 and r.value < 0 for r in positive)  # clear positive words: flipped by "not"
