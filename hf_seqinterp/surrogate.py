r"""Model approximation: transparent surrogates fitted to a classifier's own predictions, and
corpus-level phrase scores from contextual decomposition.

**Surrogates** (`fit_surrogates`). Each text x becomes a binary bag of word n-grams φ(x) ∈ {0, 1}^F
(words match `WORD_PATTERN`, lower-cased; n ≤ `max_n`; n-grams found in ≥ `min_df` fitting texts).
The model gives ŷ(x) = argmax_c f_c(x) and p(x) = its class probabilities. The texts are split, by
a seeded permutation, into a fitting part A and a disjoint held-out part B, and each surrogate s
sees φ and the model's outputs on A only — never gold labels:

* ``logistic``: L1-penalised logistic regression on ŷ,
  min_{W,b} Σ_{x∈A} −log softmax(W φ(x) + b)_{ŷ(x)} + (1/C) ‖W‖₁ (few n-grams get a weight ≠ 0);
* ``tree``: a decision tree of depth ≤ `tree_depth` on ŷ (Gini splits), printed as if/else rules;
* ``boosted``: mimic learning (Che et al. 2016, arXiv:1512.03542): gradient-boosted regression trees
  fitted to the soft predictions p_c(x) (p_1 alone for two classes), predicting argmax_c.

Reported on B only, next to the fidelity on A (a deep tree reaches 1.0 on its own fitting split)
and that of the constant surrogate predicting the class the model predicts most often on A:

    fidelity = (1/|B|) Σ_{x∈B} [argmax_c s_c(x) = ŷ(x)]
    accuracy = (1/|B|) Σ_{x∈B} [argmax_c s_c(x) = y(x)]          (gold labels y, when given)
    r2       = R² of the surrogate's class probabilities against p(x), x ∈ B

Fidelity holds only for this feature space and this distribution of texts.

**Phrase scores** (`phrase_scores`; Murdoch & Szlam 2017, arXiv:1702.02540, with contextual
decomposition in place of their LSTM cell decomposition). For every occurrence o of a word n-gram g
(n ≤ `max_n`) in the corpus, β_c(o) is the CD score of o's tokens for class c: the part of logit c
due to them (`contextual_decomposition`, classifier bias excluded). The phrase score is the mean
over the occurrences O_g, kept when |O_g| ≥ `min_count`:

    S_c(g) = (1/|O_g|) Σ_{o∈O_g} β_c(o)

For class c, phrases rank by the centred score S_c(g) − (1/K) Σ_k S_k(g): a phrase that raises
every logit alike changes no softmax probability.
"""

from __future__ import annotations

import importlib
import inspect
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from .adapter import Encoding, ModelAdapter
from .errors import InvalidInputError, InvalidParameterError, MissingDependencyError, UnsupportedModelError
from .mixin import as_adapter
from .utils import length_grouped_batches, progress_bar
from .validation import check_float, check_int, check_seed, validate_texts

KINDS: tuple[str, ...] = ("logistic", "tree", "boosted")
#: a word: a run of word characters with inner apostrophes and hyphens ("n't", "well-acted"), or "'s"
WORD_PATTERN = r"\w[\w'-]*|'\w+"
_WORD = re.compile(WORD_PATTERN)


def _sklearn(module: str) -> Any:
    """`sklearn.<module>`, or an error that says how to install the optional dependency."""
    try:
        return importlib.import_module(f"sklearn.{module}")
    except ImportError as err:
        raise MissingDependencyError(
            "Surrogate models need scikit-learn, which is not installed: "
            'pip install "hf-seqinterp[surrogate]" (or pip install "scikit-learn>=1.3").'
        ) from err


def words(text: str) -> list[tuple[str, int, int]]:
    """(lower-cased word, start, end) for every match of `WORD_PATTERN` in `text`."""
    return [(m.group().lower(), m.start(), m.end()) for m in _WORD.finditer(text)]


# --------------------------------------------------------------------------- results
@dataclass(frozen=True)
class Feature:
    """One n-gram feature of a surrogate: a logistic coefficient toward `label`, or a tree
    ensemble's importance (then `label` is None)."""

    name: str
    weight: float
    label: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "weight": self.weight, "label": self.label}


@dataclass
class Surrogate:
    """One fitted surrogate and its scores (see the module docstring for the definitions)."""

    kind: str
    fidelity: float
    fit_fidelity: float
    accuracy: float | None
    r2: float
    n_used: int
    top_features: list[Feature]
    rules: str | None
    estimator: Any = field(repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "fidelity": self.fidelity,
            "fit_fidelity": self.fit_fidelity,
            "accuracy": self.accuracy,
            "r2": self.r2,
            "n_used": self.n_used,
            "top_features": [f.to_dict() for f in self.top_features],
            "rules": self.rules,
        }


@dataclass
class SurrogateReport:
    """Surrogates of one model on one corpus: which texts fitted them, which scored them, and how well
    each one agrees with the model there."""

    labels: list[str]
    surrogates: dict[str, Surrogate]
    fit_indices: np.ndarray
    test_indices: np.ndarray
    model_accuracy: float | None
    baseline_fidelity: float
    n_features: int
    params: dict[str, Any]
    model_name: str | None
    vectorizer: Any = field(repr=False)

    def __getitem__(self, kind: str) -> Surrogate:
        return self.surrogates[kind]

    def predict(self, texts: str | Sequence[str], kind: str = "tree") -> np.ndarray:
        """Class ids the surrogate `kind` predicts for `texts`."""
        features = self.vectorizer.transform(validate_texts(texts))
        return _probabilities(self.surrogates[kind].estimator, features, len(self.labels)).argmax(1)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON: scores, features, rules, split and parameters (no fitted estimators)."""
        return {
            "labels": list(self.labels),
            "model_name": self.model_name,
            "model_accuracy": self.model_accuracy,
            "baseline_fidelity": self.baseline_fidelity,
            "n_fit": len(self.fit_indices),
            "n_test": len(self.test_indices),
            "n_features": self.n_features,
            "fit_indices": self.fit_indices.tolist(),
            "test_indices": self.test_indices.tolist(),
            "params": dict(self.params),
            "surrogates": {kind: s.to_dict() for kind, s in self.surrogates.items()},
        }

    def to_markdown(self, top_k: int = 10) -> str:
        """A fidelity table, then each surrogate's rules or top features."""
        def cell(value: float | None) -> str:
            return "—" if value is None else f"{value:.3f}"

        lines = [
            "| surrogate | held-out fidelity | held-out accuracy | fidelity on the fitting split | R² of p | n-grams used |",
            "|---|---|---|---|---|---|",
            *(
                f"| {kind} | {cell(s.fidelity)} | {cell(s.accuracy)} | {cell(s.fit_fidelity)} | {cell(s.r2)} | {s.n_used} |"
                for kind, s in self.surrogates.items()
            ),
            f"| constant (the model's most frequent class) | {cell(self.baseline_fidelity)} | — | — | — | 0 |",
            "",
            (
                f"{len(self.fit_indices)} fitting texts, {len(self.test_indices)} held-out texts, "
                f"{self.n_features} n-gram features; model accuracy on the held-out texts: {cell(self.model_accuracy)}."
            ),
        ]
        for kind, s in self.surrogates.items():
            lines += ["", f"**{kind}**", ""]
            if s.rules:
                lines += ["```text", s.rules, "```"]
            else:
                lines += [
                    f"- `{f.name}`" + (f" → {f.label}" if f.label else "") + f" ({f.weight:.3g})"
                    for f in s.top_features[:top_k]
                ]
        return "\n".join(lines)


# --------------------------------------------------------------------------- fitting
def fit_surrogates(
    model: ModelAdapter | Any,
    texts: Sequence[str],
    labels: Sequence[int | str] | None = None,
    *,
    kinds: Sequence[str] = KINDS,
    test_size: float = 0.25,
    seed: int = 0,
    max_n: int = 2,
    min_df: int = 2,
    tree_depth: int | None = 3,
    C: float = 1.0,
    n_estimators: int = 100,
    top_k: int = 20,
    tokenizer: Any = None,
    batch_size: int = 64,
    truncation: bool = True,
    progress: bool = True,
) -> SurrogateReport:
    """Fit transparent surrogates to `model`'s predictions on `texts` and score them on held-out texts.

    Args:
        model: a ModelAdapter, a loaded model (with `tokenizer`), a path or Hub id, or None (bundled model).
        texts: the corpus; a `test_size` fraction of it (at least one text) is held out.
        labels: gold labels (ids or label names), one per text: adds held-out accuracies. Never fitted on.
        kinds: any of "logistic", "tree", "boosted".
        seed: the split and every estimator's randomness.
        max_n, min_df: n-grams up to length `max_n` found in at least `min_df` fitting texts.
        tree_depth: depth of the decision tree (None: grown until its leaves are pure).
        C: inverse L1 strength of the logistic regression (smaller: fewer n-grams).
        n_estimators: boosting rounds (trees of depth 3) per fitted probability.
        top_k: features kept per surrogate in `top_features`.
        batch_size: texts per forward pass (length-sorted batches).
    """
    kinds = _check_kinds(kinds)
    texts = validate_texts(texts)
    test_size = check_float("test_size", test_size, minimum=0.0, maximum=1.0, open_minimum=True, open_maximum=True)
    seed = check_seed(seed)
    max_n, min_df, top_k = (check_int(name, v) for name, v in (("max_n", max_n), ("min_df", min_df), ("top_k", top_k)))
    tree_depth = None if tree_depth is None else check_int("tree_depth", tree_depth)
    C = check_float("C", C, minimum=0.0, open_minimum=True)
    n_estimators = check_int("n_estimators", n_estimators)
    adapter = as_adapter(model, tokenizer)
    if adapter.num_labels < 2:
        raise UnsupportedModelError(
            f"{type(adapter.model).__name__} has {adapter.num_labels} output; surrogates mimic a classifier's "
            "predicted class and need at least two classes."
        )
    gold = _gold_labels(adapter, labels, len(texts))
    fit, test = _split(len(texts), test_size, seed)
    vectorizer = _sklearn("feature_extraction.text").CountVectorizer(
        token_pattern=WORD_PATTERN, ngram_range=(1, max_n), min_df=min_df, binary=True, dtype=np.float64
    )

    logits = model_logits(adapter, texts, batch_size=batch_size, truncation=truncation, progress=progress)
    probs = adapter.probabilities(torch.from_numpy(logits)).numpy()
    predicted = logits.argmax(1)
    fitted_classes, fitted_counts = np.unique(predicted[fit], return_counts=True)
    if len(fitted_classes) < 2:
        label = adapter.labels[fitted_classes[0]]
        raise InvalidInputError(
            f"The model predicts {label!r} for every one of the {len(fit)} fitting texts, so there is no decision "
            "to approximate; pass texts the model labels differently (or more texts, or another seed)."
        )

    try:
        x_fit = vectorizer.fit_transform([texts[i] for i in fit])
    except ValueError as err:  # empty vocabulary
        raise InvalidInputError(
            f"No word n-gram occurs in {min_df} or more of the {len(fit)} fitting texts; lower min_df or pass more texts."
        ) from err
    x_test = vectorizer.transform([texts[i] for i in test])
    names = vectorizer.get_feature_names_out().tolist()
    k = adapter.num_labels

    surrogates = {}
    for kind in kinds:
        estimator = _estimator(kind, seed=seed, C=C, tree_depth=tree_depth, n_estimators=n_estimators)
        estimator.fit(x_fit, probs[fit] if kind == "boosted" else predicted[fit])
        p_fit, p_test = (_probabilities(estimator, x, k) for x in (x_fit, x_test))
        surrogates[kind] = Surrogate(
            kind=kind,
            fidelity=_agreement(p_test.argmax(1), predicted[test]),
            fit_fidelity=_agreement(p_fit.argmax(1), predicted[fit]),
            accuracy=None if gold is None else _agreement(p_test.argmax(1), gold[test]),
            r2=float(_sklearn("metrics").r2_score(probs[test], p_test)),
            n_used=int(np.count_nonzero(_feature_weights(kind, estimator))),
            top_features=_top_features(kind, estimator, names, adapter.labels, top_k),
            rules=_tree_rules(estimator, names, adapter.labels) if kind == "tree" else None,
            estimator=estimator,
        )
    params = {
        "kinds": list(kinds), "test_size": test_size, "seed": seed, "max_n": max_n, "min_df": min_df,
        "tree_depth": tree_depth, "C": C, "n_estimators": n_estimators, "word_pattern": WORD_PATTERN,
    }  # fmt: skip
    return SurrogateReport(
        labels=list(adapter.labels),
        surrogates=surrogates,
        fit_indices=fit,
        test_indices=test,
        model_accuracy=None if gold is None else _agreement(predicted[test], gold[test]),
        baseline_fidelity=_agreement(predicted[test], fitted_classes[np.argmax(fitted_counts)]),
        n_features=len(names),
        params=params,
        model_name=adapter.model_name,
        vectorizer=vectorizer,
    )


@torch.no_grad()
def model_logits(
    adapter: ModelAdapter,
    texts: Sequence[str],
    *,
    batch_size: int = 64,
    truncation: bool = True,
    progress: bool = True,
) -> np.ndarray:
    """(texts, num_labels) float64 logits of the model, dropout off, in length-sorted batches."""
    encodings = adapter.encode(texts, truncation=truncation)
    out = np.empty((len(encodings), adapter.num_labels), dtype=np.float64)
    groups = length_grouped_batches(
        [len(e) for e in encodings], check_int("batch_size", batch_size), equal_lengths=adapter.padding_sensitive
    )
    with adapter.evaluating(), progress_bar(len(encodings), "model predictions", enabled=progress) as bar:
        for group in groups:
            out[group] = adapter.logits(adapter.collate([encodings[i] for i in group])).double().cpu().numpy()
            bar.update(len(group))
    return out


class _Mimic:
    """Gradient-boosted regression trees fitted to the model's class probabilities (mimic learning):
    one ensemble per class, or one for p_1 when there are two classes."""

    def __init__(self, n_estimators: int, seed: int):
        self.n_estimators, self.seed = n_estimators, seed
        self.ensembles: list[Any] = []
        self.num_classes = 0

    def fit(self, features: Any, probs: np.ndarray) -> _Mimic:
        boosting = _sklearn("ensemble").GradientBoostingRegressor
        self.num_classes = probs.shape[1]
        columns = probs[:, 1:] if self.num_classes == 2 else probs
        self.ensembles = [
            boosting(n_estimators=self.n_estimators, max_depth=3, random_state=self.seed).fit(features, column)
            for column in columns.T
        ]
        return self

    def predict_proba(self, features: Any) -> np.ndarray:
        out = np.column_stack([ensemble.predict(features) for ensemble in self.ensembles])
        return np.column_stack([1.0 - out[:, 0], out[:, 0]]) if self.num_classes == 2 else out

    @property
    def feature_importances_(self) -> np.ndarray:
        return np.mean([ensemble.feature_importances_ for ensemble in self.ensembles], axis=0)


def _estimator(kind: str, *, seed: int, C: float, tree_depth: int | None, n_estimators: int) -> Any:
    if kind == "logistic":
        logistic = _sklearn("linear_model").LogisticRegression
        # scikit-learn 1.8 replaced penalty="l1" by l1_ratio=1
        l1 = {"l1_ratio": 1.0} if inspect.signature(logistic).parameters["penalty"].default == "deprecated" else {
            "penalty": "l1"
        }
        return logistic(C=C, solver="saga", max_iter=5000, random_state=seed, **l1)
    if kind == "tree":
        return _sklearn("tree").DecisionTreeClassifier(max_depth=tree_depth, random_state=seed)
    return _Mimic(n_estimators, seed)


def _probabilities(estimator: Any, features: Any, num_labels: int) -> np.ndarray:
    """(texts, num_labels) class probabilities; classes absent from the fitting split get 0."""
    probs = estimator.predict_proba(features)
    if isinstance(estimator, _Mimic):
        return probs
    full = np.zeros((probs.shape[0], num_labels))
    full[:, estimator.classes_] = probs
    return full


def _feature_weights(kind: str, estimator: Any) -> np.ndarray:
    """(features,) how much the surrogate uses each n-gram: the largest |coefficient| of the
    logistic regression, the importance in a tree or ensemble (0: unused)."""
    return np.abs(estimator.coef_).max(0) if kind == "logistic" else estimator.feature_importances_


def _top_features(kind: str, estimator: Any, names: list[str], labels: list[str], k: int) -> list[Feature]:
    """Logistic: the k largest coefficients toward a class (for two classes, a negative coefficient
    of class 1 is one toward class 0). Trees: the k largest impurity-based importances."""
    if kind == "logistic":
        coef = estimator.coef_
        toward = np.vstack([-coef[0], coef[0]]) if coef.shape[0] == 1 else coef  # (fitted classes, features)
        best = np.argsort(-toward, axis=None, kind="stable")[:k]
        return [
            Feature(names[j], float(toward[i, j]), labels[estimator.classes_[i]])
            for i, j in zip(*np.unravel_index(best, toward.shape))
            if toward[i, j] > 0
        ]
    importances = _feature_weights(kind, estimator)
    return [Feature(names[j], float(importances[j])) for j in np.argsort(-importances, kind="stable")[:k] if importances[j] > 0]


def _tree_rules(tree: Any, names: list[str], labels: list[str]) -> str:
    """The tree as nested if/else on n-gram presence; each leaf with its fitting texts and the share of
    them the model labels as the leaf does."""
    nodes = tree.tree_

    def lines(node: int, depth: int) -> list[str]:
        pad = "    " * depth
        left, right = nodes.children_left[node], nodes.children_right[node]
        if left == right:  # a leaf
            counts = nodes.value[node][0]
            best = int(np.argmax(counts))
            share = counts[best] / counts.sum()
            label = labels[tree.classes_[best]]
            return [f"{pad}predict {label!r}  # {nodes.n_node_samples[node]} texts, {share:.0%} of them {label}"]
        # features are 0/1, so the split "x <= t" (0 <= t < 1) sends texts without the n-gram left
        name = names[nodes.feature[node]]
        return [f"{pad}if {name!r} in text:", *lines(right, depth + 1), f"{pad}else:", *lines(left, depth + 1)]

    return "\n".join(lines(0, 0))


def _agreement(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean(np.asarray(a) == np.asarray(b)))


def _check_kinds(kinds: Sequence[str]) -> tuple[str, ...]:
    chosen = (kinds,) if isinstance(kinds, str) else tuple(kinds)
    unknown = [k for k in chosen if k not in KINDS]
    if not chosen or unknown or len(set(chosen)) != len(chosen):
        raise InvalidParameterError(
            f"kinds={kinds!r}: pass distinct surrogate kinds from {', '.join(KINDS)} (at least one)."
        )
    return chosen


def _gold_labels(adapter: ModelAdapter, labels: Sequence[int | str] | None, n: int) -> np.ndarray | None:
    if labels is None:
        return None
    if isinstance(labels, str) or len(labels) != n:
        raise InvalidInputError(f"Got {'a string' if isinstance(labels, str) else len(labels)} labels for {n} texts; "
                                "give one gold label (class id or label name) per text.")
    return np.array([adapter.check_target(label) for label in labels], dtype=np.int64)


def _split(n: int, test_size: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(fitting, held-out) indices: a seeded permutation, round(test_size · n) held out (≥ 1), both sorted."""
    n_test = max(1, round(test_size * n))
    if n - n_test < 2:
        raise InvalidInputError(
            f"{n} texts leave {n - n_test} to fit on after holding out {n_test} (test_size={test_size}); "
            "a surrogate needs at least 2 fitting texts and 1 held-out text: pass more texts."
        )
    order = np.random.default_rng(seed).permutation(n)
    return np.sort(order[n_test:]), np.sort(order[:n_test])


# --------------------------------------------------------------------------- phrase scores
@dataclass(frozen=True)
class PhraseScore:
    """Mean CD score S_c of one phrase for every class c, over its `count` occurrences."""

    phrase: str
    count: int
    scores: tuple[float, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"phrase": self.phrase, "count": self.count, "scores": list(self.scores)}


@dataclass
class PhraseScores:
    """Corpus-level phrase scores of one model (see the module docstring)."""

    labels: list[str]
    phrases: dict[str, PhraseScore]
    params: dict[str, Any]
    model_name: str | None

    def __getitem__(self, phrase: str) -> PhraseScore:
        return self.phrases[" ".join(w for w, _, _ in words(phrase))]

    def top(self, label: int | str, k: int = 10) -> list[PhraseScore]:
        """The k phrases with the largest centred score S_c − mean_k S_k for class `label` (id or name)."""
        c = self._class(label)
        centred = {p: s.scores[c] - float(np.mean(s.scores)) for p, s in self.phrases.items()}
        return [self.phrases[p] for p in sorted(centred, key=lambda p: (-centred[p], p))[:k]]

    def to_dict(self) -> dict[str, Any]:
        return {
            "labels": list(self.labels),
            "model_name": self.model_name,
            "params": dict(self.params),
            "phrases": [s.to_dict() for s in self.phrases.values()],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PhraseScores:
        """The inverse of `to_dict`."""
        phrases = [PhraseScore(p["phrase"], int(p["count"]), tuple(p["scores"])) for p in data["phrases"]]
        return cls(list(data["labels"]), {p.phrase: p for p in phrases}, dict(data["params"]), data["model_name"])

    def to_markdown(self, k: int = 10) -> str:
        """The top-k phrases per class, with their counts and scores."""
        lines = []
        for c, label in enumerate(self.labels):
            lines += [f"| phrase ({label}) | count | {' | '.join(f'S({name})' for name in self.labels)} |",
                      "|---|---|" + "---|" * len(self.labels)]
            lines += [f"| {s.phrase} | {s.count} | " + " | ".join(f"{v:.3f}" for v in s.scores) + " |" for s in self.top(c, k)]
            lines.append("")
        return "\n".join(lines).rstrip()

    def _class(self, label: int | str) -> int:
        if isinstance(label, str) and label in self.labels:
            return self.labels.index(label)
        if isinstance(label, (int, np.integer)) and not isinstance(label, bool) and 0 <= label < len(self.labels):
            return int(label)
        raise InvalidParameterError(f"label={label!r}: pass a class id in [0, {len(self.labels)}) or one of {self.labels}.")


def phrase_scores(
    model: ModelAdapter | Any,
    texts: Sequence[str],
    *,
    max_n: int = 3,
    min_count: int = 2,
    tokenizer: Any = None,
    batch_size: int = 16,
    truncation: bool = True,
    progress: bool = True,
    **cd_params: Any,
) -> PhraseScores:
    """Average contextual-decomposition score of every word n-gram (n ≤ `max_n`) per class over `texts`.

    Every occurrence is one relevant set of the `contextual_decomposition` explainer (built with
    `cd_params`: attention_rule, activation_rule, normalize, max_batch_tokens); all occurrences of
    a batch of `batch_size` texts are scored in shared decomposed passes. Phrases seen fewer than
    `min_count` times are dropped. An n-gram is scored only where all its words survived truncation.
    """
    from .explainers import get_explainer

    texts = validate_texts(texts)
    max_n, min_count = check_int("max_n", max_n), check_int("min_count", min_count)
    adapter = as_adapter(model, tokenizer)
    cd = get_explainer("contextual_decomposition").create(adapter, **cd_params)
    encodings = adapter.encode(texts, truncation=truncation)
    totals: dict[str, np.ndarray] = {}
    counts: dict[str, int] = {}
    groups = length_grouped_batches(
        [len(e) for e in encodings], check_int("batch_size", batch_size), equal_lengths=adapter.padding_sensitive
    )
    with adapter.evaluating(), progress_bar(len(encodings), "phrase scores", enabled=progress) as bar:
        for group in groups:
            batch = adapter.collate([encodings[i] for i in group])
            phrases, rows, token_sets = [], [], []
            for row, enc in enumerate(batch.encodings):
                for phrase, tokens in _ngram_token_sets(enc, max_n):
                    phrases.append(phrase)
                    rows.append(row)
                    token_sets.append(tokens)
            if token_sets:
                relevant, _ = cd.decomposer.score_sets(batch, rows, token_sets, max_batch_tokens=cd.max_batch_tokens)
                for phrase, score in zip(phrases, relevant.double().cpu().numpy()):
                    totals[phrase] = totals.get(phrase, 0.0) + score
                    counts[phrase] = counts.get(phrase, 0) + 1
            bar.update(len(group))
    kept = sorted((p for p in counts if counts[p] >= min_count), key=lambda p: (-counts[p], p))
    return PhraseScores(
        labels=list(adapter.labels),
        phrases={p: PhraseScore(p, counts[p], tuple(float(v) for v in totals[p] / counts[p])) for p in kept},
        params={"max_n": max_n, "min_count": min_count, "n_texts": len(texts), "word_pattern": WORD_PATTERN,
                **{k: v for k, v in cd.params.items() if k in ("attention_rule", "activation_rule", "normalize")}},
        model_name=adapter.model_name,
    )


def _ngram_token_sets(enc: Encoding, max_n: int) -> list[tuple[str, tuple[int, ...]]]:
    """(n-gram, its token positions) for every word n-gram of the text whose words all have tokens."""
    spans = words(enc.text)
    tokens = [enc.tokens_in_span(start, end, allow_empty=True).tolist() for _, start, end in spans]
    out = []
    for i in range(len(spans)):
        for n in range(1, min(max_n, len(spans) - i) + 1):
            if all(tokens[i : i + n]):
                phrase = " ".join(w for w, _, _ in spans[i : i + n])
                out.append((phrase, tuple(sorted({t for ts in tokens[i : i + n] for t in ts}))))
    return out
