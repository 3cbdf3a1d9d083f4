r"""Contextual decomposition (CD) for transformers: token, phrase, interaction and hierarchical scores.

The rules, the per-architecture adapters and the two-stream forward live in
`hf_seqinterp.decomposition`; this module turns them into an explainer and a small Python API.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from ..adapter import Batch, Target
from ..decomposition.architectures import model_spec
from ..decomposition.hierarchy import PhraseHierarchy, agglomerate
from ..decomposition.propagate import Decomposer
from ..decomposition.spans import (
    Interaction,
    Span,
    SpanScore,
    phrase_occurrences,
    resolve_span,
    span_text,
)
from ..errors import InvalidParameterError
from ..validation import check_float, check_token_budget
from .base import Explainer, RowResult, hidden_size, register_explainer

Job = tuple[int, tuple[int, ...]]  # (row of the batch, token indices of the relevant set)


@register_explainer("contextual_decomposition")
class ContextualDecomposition(Explainer):
    r"""Contextual decomposition: the part of the target logit due to each token, phrase or span.

    Every activation h of the model is carried as h = β + γ, β the part due to the relevant set S of
    token positions and γ the rest (Murdoch et al. 2018; transformer rules of CD-T, Hsu et al. 2024,
    arXiv:2407.00886). At the input, the embedding output at position t goes to β if t ∈ S, else to
    γ; each layer then maps (β, γ) -> (β', γ') with β' + γ' = f(β + γ) (rules in
    `hf_seqinterp.decomposition.rules`), so β_out + γ_out = logits exactly. The score of S is

        s(S) = β_out[target]          (a logit; the classifier's bias is put in γ)

    `attributions[t]` = s({t}). Phrases (`phrases`), interactions s(A∪B) − s(A) − s(B)
    (`interactions`) and an ACD phrase hierarchy (`include_hierarchy`) go to `Explanation.extras`;
    `score_spans`, `interaction` and `hierarchy` compute them for one text. CD scores are not
    additive: s(A ∪ B) ≠ s(A) + s(B) in general (the difference is the interaction).

    Args:
        attention_rule: "fixed" (attention probabilities of the total input, values decomposed) or
            "qk_split" (CD-T's rel-softmax: β attends with softmax(q_β k_βᵀ)).
        activation_rule: where a nonlinearity puts the interaction of β and γ: "acd" (to γ:
            β' = f(β); the default, so s(S) is what S does by itself and interactions show up as
            s(A∪B) − s(A) − s(B)), "cdt" (to β: γ' = f(γ), β' = f(β+γ) − f(γ)), or "shapley" (half
            each: β' = ½[f(β) − f(0) + f(β+γ) − f(γ)]).
        normalize: apply CD-T's sign normalisation after each residual sum.
        phrases: phrase strings scored wherever they occur (whole words, case-insensitive) ->
            extras["phrases"] (and extras["phrases_not_found"]).
        interactions: pairs of phrase strings (first occurrences) -> extras["interactions"].
        include_hierarchy: add extras["hierarchy"] (see `PhraseHierarchy`); costs about one pass
            per agglomeration level.
        hierarchy_percentile: tokens whose |gain| reaches this percentile join phrases each level.
        max_batch_tokens: relevant sets per pass × padded length.
    Cost: one decomposed pass (≈ 2 forwards, no backward) per relevant set, many sets per pass;
    token scores need L sets for a text of L tokens.
    """

    default_batch_size = 16

    def __init__(
        self,
        adapter,
        *,
        attention_rule: str = "fixed",
        activation_rule: str = "acd",
        normalize: bool = False,
        phrases: Sequence[str] | None = None,
        interactions: Sequence[tuple[str, str]] | None = None,
        include_hierarchy: bool = False,
        hierarchy_percentile: float = 75.0,
        max_batch_tokens: int = 4096,
        score: str = "logit",
    ):
        if score != "logit":
            raise InvalidParameterError(
                f"contextual_decomposition splits logits (β_out + γ_out = logits), so score={score!r} is not "
                "available; use score='logit'."
            )
        if isinstance(phrases, str):
            phrases = [phrases]
        if interactions is not None and any(
            not isinstance(p, (list, tuple)) or len(p) != 2 for p in interactions
        ):
            raise InvalidParameterError(
                f"interactions={interactions!r} must be a list of (phrase_a, phrase_b) pairs."
            )
        self.attention_rule = attention_rule
        self.activation_rule = activation_rule
        self.normalize = normalize
        self.phrases = list(phrases) if phrases else None
        self.interactions = [list(p) for p in interactions] if interactions else None
        self.include_hierarchy = include_hierarchy
        self.hierarchy_percentile = check_float(
            "hierarchy_percentile", hierarchy_percentile, minimum=0.0, maximum=100.0, open_maximum=True
        )
        self.max_batch_tokens = check_token_budget("max_batch_tokens", max_batch_tokens, hidden_size(adapter))
        super().__init__(adapter, score=score)
        self.decomposer = Decomposer(
            adapter, attention_rule=attention_rule, activation_rule=activation_rule, normalize=normalize
        )

    def check_model(self) -> None:
        model_spec(self.adapter)

    # ----------------------------------------------------------------- explainer
    def _explain(self, batch: Batch, targets: list[int | None]) -> list[RowResult]:
        logits = self._unperturbed_logits(batch).double()
        chosen = self._targets(logits, targets)[0].tolist()
        logits = logits.cpu().numpy()
        encodings = batch.encodings
        token_jobs = [(i, (t,)) for i, enc in enumerate(encodings) for t in range(len(enc))]
        extra_jobs, builders = self._extras_jobs(batch)
        rel, irrel = self._run(batch, token_jobs + extra_jobs)
        bounds = np.cumsum([0] + [len(enc) for enc in encodings])
        token_scores = [rel[bounds[i] : bounds[i + 1], chosen[i]] for i in range(len(encodings))]
        hierarchies = self._hierarchies(batch, token_scores, chosen) if self.include_hierarchy else None
        extra_rel = rel[len(token_jobs) :]
        extras: list[dict[str, Any]] = []
        for i in range(len(encodings)):
            rows = slice(bounds[i], bounds[i + 1])
            error = np.abs(rel[rows] + irrel[rows] - logits[i]).max()
            extras.append({"decomposition_error": float(error), **builders[i](extra_rel[:, chosen[i]])})
            if hierarchies is not None:
                extras[-1]["hierarchy"] = hierarchies[i]
        return self._results(batch, token_scores, logits, chosen, extras)

    def _run(self, batch: Batch, jobs: Sequence[Job]) -> tuple[np.ndarray, np.ndarray]:
        """(relevant, irrelevant) logits, float64 numpy (n_jobs, num_labels)."""
        if not jobs:
            empty = np.zeros((0, self.adapter.num_labels))
            return empty, empty
        rel, irrel = self.decomposer.score_sets(
            batch,
            [row for row, _ in jobs],
            [tokens for _, tokens in jobs],
            max_batch_tokens=self.max_batch_tokens,
        )
        return rel.double().cpu().numpy(), irrel.double().cpu().numpy()

    def _extras_jobs(self, batch: Batch):
        """Relevant sets for `phrases` and `interactions`, and per text a function turning their
        target scores (indexed by job) into extras entries."""
        jobs: list[Job] = []
        builders = []
        for row, enc in enumerate(batch.encodings):
            phrase_sets, missing = [], []
            for phrase in self.phrases or ():
                found = phrase_occurrences(enc.text, phrase)
                missing += [] if found else [phrase]
                phrase_sets += [(phrase, start, end, len(jobs) + k) for k, (start, end) in enumerate(found)]
                jobs += [(row, tuple(enc.tokens_in_span(start, end).tolist())) for start, end in found]
            pair_sets = []
            for a, b in self.interactions or ():
                found_a, found_b = phrase_occurrences(enc.text, a), phrase_occurrences(enc.text, b)
                if not (found_a and found_b):
                    missing += [p for p, f in ((a, found_a), (b, found_b)) if not f]
                    continue
                ta, tb = (tuple(enc.tokens_in_span(*found[0]).tolist()) for found in (found_a, found_b))
                pair_sets.append((a, b, ta, tb, len(jobs)))
                jobs += [(row, ta), (row, tb), (row, tuple(sorted(set(ta) | set(tb))))]
            builders.append(self._extras_builder(enc, jobs, phrase_sets, pair_sets, sorted(set(missing))))
        return jobs, builders

    @staticmethod
    def _extras_builder(enc, jobs, phrase_sets, pair_sets, missing):
        def build(scores: np.ndarray) -> dict[str, Any]:
            out: dict[str, Any] = {}
            if phrase_sets or missing:
                out["phrases"] = [
                    {
                        "phrase": p,
                        "start": s,
                        "end": e,
                        **SpanScore(jobs[k][1], span_text(enc, jobs[k][1]), float(scores[k])).to_dict(),
                    }
                    for p, s, e, k in phrase_sets
                ]
            if pair_sets:
                out["interactions"] = [
                    {"phrases": [a, b], **_interaction(enc, ta, tb, scores[k : k + 3]).to_dict()}
                    for a, b, ta, tb, k in pair_sets
                ]
            if missing:
                out["phrases_not_found"] = missing
            return out

        return build

    def _hierarchies(
        self, batch: Batch, token_scores: list[np.ndarray], targets: list[int]
    ) -> list[dict[str, Any]]:
        encodings = batch.encodings

        def score_sets(jobs: Sequence[Job]) -> list[float]:
            rel, _ = self._run(batch, jobs)
            return [rel[k, targets[row]] for k, (row, _) in enumerate(jobs)]

        return agglomerate(
            [[t for t, special in enumerate(enc.special_tokens_mask) if not special] for enc in encodings],
            token_scores,
            [enc.offsets for enc in encodings],
            [enc.text for enc in encodings],
            targets,
            score_sets,
            percentile=self.hierarchy_percentile,
        )

    # ----------------------------------------------------------------- Python API for one text
    def score_spans(
        self, text: str, spans: Span | Sequence[Span], target: Target = None, *, tokens: bool = False
    ) -> list[SpanScore]:
        """CD scores of relevant sets of `text`, all in one pass.

        `spans`: a sequence of spans, each a phrase string, a (start, end) character range (token
        range with `tokens=True`) or a list of those (their union); a single string is one span.
        """
        batch, enc, chosen = self._prepare(text, target)
        items = [spans] if isinstance(spans, (str, tuple)) else list(spans)
        sets = [resolve_span(enc, span, tokens=tokens) for span in items]
        rel, _ = self._run(batch, [(0, s) for s in sets])
        return [SpanScore(s, span_text(enc, s), float(rel[k, chosen])) for k, s in enumerate(sets)]

    def interaction(
        self, text: str, a: Span, b: Span, target: Target = None, *, tokens: bool = False
    ) -> Interaction:
        """Interaction s(A ∪ B) − s(A) − s(B) of two disjoint spans of `text` (one pass)."""
        batch, enc, chosen = self._prepare(text, target)
        ta, tb = resolve_span(enc, a, tokens=tokens), resolve_span(enc, b, tokens=tokens)
        if set(ta) & set(tb):
            raise InvalidParameterError(
                f"The spans overlap (tokens {sorted(set(ta) & set(tb))}); an interaction needs disjoint spans."
            )
        rel, _ = self._run(batch, [(0, ta), (0, tb), (0, tuple(sorted(ta + tb)))])
        return _interaction(enc, ta, tb, rel[:, chosen])

    def hierarchy(self, text: str, target: Target = None) -> PhraseHierarchy:
        """ACD-style phrase hierarchy of `text` (see `hf_seqinterp.decomposition.hierarchy`)."""
        batch, enc, chosen = self._prepare(text, target)
        rel, _ = self._run(batch, [(0, (t,)) for t in range(len(enc))])
        return PhraseHierarchy.from_dict(self._hierarchies(batch, [rel[:, chosen]], [chosen])[0])

    def _prepare(self, text: str, target: Target) -> tuple[Batch, Any, int]:
        enc = self.adapter.encode([text])[0]
        batch = self.adapter.collate([enc])
        requested = self.adapter.check_target(target)
        with self.adapter.evaluating(), torch.no_grad():
            logits = self.adapter.logits(batch)
        return batch, enc, int(self.adapter.pick_targets([requested], logits)[0])


def _interaction(enc, ta: tuple[int, ...], tb: tuple[int, ...], scores: np.ndarray) -> Interaction:
    joint = tuple(sorted(set(ta) | set(tb)))
    return Interaction(
        SpanScore(ta, span_text(enc, ta), float(scores[0])),
        SpanScore(tb, span_text(enc, tb), float(scores[1])),
        SpanScore(joint, span_text(enc, joint), float(scores[2])),
    )
