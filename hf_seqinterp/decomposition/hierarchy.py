r"""Hierarchical explanations by agglomeration of CD scores (ACD, Singh, Murdoch & Yu, ICLR 2019).

Phrases grow from high-scoring tokens. Every token t of the text starts with gain g_t = s({t}), its
own CD score. Each iteration
  1. adds to the selection the not-yet-selected tokens with |g_t| ≥ the `percentile`-th percentile
     of |g| over the not-yet-selected tokens (at least one token);
  2. forms the phrases: maximal runs of adjacent selected tokens, each scored as one relevant set;
  3. re-scores each phrase's unselected neighbours b by their gain g_b = s(P ∪ {b}) − s(P), so a
     word that changes the phrase's meaning ("not" next to "good") is selected early.
It stops when every token is selected; each iteration is one level of the hierarchy, and a phrase's
children are the phrases and tokens of earlier levels it is made of. Special tokens are never part
of a phrase. All texts of a group advance in lock step: one batched pass per iteration.

Each node records its CD score and its interaction, score − Σ children's scores (for two
children A, B this is the two-span interaction s(A∪B) − s(A) − s(B)).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import InvalidParameterError

#: (text index, token indices) -> CD score of the target; one call evaluates many sets in one pass
SetScorer = Callable[[Sequence[tuple[int, tuple[int, ...]]]], Sequence[float]]


@dataclass
class _TextState:
    """Agglomeration state of one text."""

    candidates: list[int]  # non-special token indices
    offsets: list[tuple[int, int]]
    text: str
    gain: dict[int, float]
    nodes: list[dict[str, Any]] = field(default_factory=list)
    levels: list[list[int]] = field(default_factory=list)
    node_of: dict[tuple[int, ...], int] = field(default_factory=dict)
    frontier: dict[int, int] = field(default_factory=dict)  # token -> id of the largest node holding it
    selected: set[int] = field(default_factory=set)

    @property
    def done(self) -> bool:
        return len(self.selected) == len(self.candidates)

    def add_node(self, tokens: tuple[int, ...], score: float, level: int) -> int:
        children = list(dict.fromkeys(self.frontier[t] for t in tokens if t in self.frontier))
        start, end = self.offsets[tokens[0]][0], self.offsets[tokens[-1]][1]
        raw = self.text[start:end]
        start += len(raw) - len(raw.lstrip())
        node = {
            "id": len(self.nodes),
            "tokens": list(tokens),
            "start": start,
            "end": start + len(raw.strip()),
            "text": raw.strip(),
            "score": float(score),
            "level": level,
            "children": children,
            "interaction": float(score - sum(self.nodes[c]["score"] for c in children)) if children else None,
        }
        self.nodes.append(node)
        self.node_of[tokens] = node["id"]
        for t in tokens:
            self.frontier[t] = node["id"]
        return node["id"]

    def runs(self) -> list[tuple[int, ...]]:
        """Maximal runs of adjacent selected tokens."""
        out: list[list[int]] = []
        for t in self.candidates:
            if t not in self.selected:
                continue
            if out and out[-1][-1] == t - 1:
                out[-1].append(t)
            else:
                out.append([t])
        return [tuple(r) for r in out]

    def neighbours(self, run: tuple[int, ...]) -> list[int]:
        allowed = set(self.candidates) - self.selected
        return [b for b in (run[0] - 1, run[-1] + 1) if b in allowed]


def agglomerate(
    candidates: Sequence[Sequence[int]],
    unigram_scores: Sequence[Sequence[float]],
    offsets: Sequence[Sequence[tuple[int, int]]],
    texts: Sequence[str],
    targets: Sequence[int],
    score_sets: SetScorer,
    *,
    percentile: float = 75.0,
) -> list[dict[str, Any]]:
    """Phrase hierarchies of several texts (JSON-able dicts; schema in `PhraseHierarchy`).

    `candidates[i]`: token indices of text i that may join phrases (its non-special tokens);
    `unigram_scores[i][t]`: CD score of token t alone.
    """
    if not 0.0 <= float(percentile) < 100.0:
        raise InvalidParameterError(f"hierarchy_percentile={percentile!r} must be in [0, 100).")
    states = []
    for cand, scores, offs, text in zip(candidates, unigram_scores, offsets, texts):
        state = _TextState(list(cand), list(offs), text, {t: float(scores[t]) for t in cand})
        for t in state.candidates:
            state.add_node((t,), scores[t], 0)
        state.levels.append([state.node_of[(t,)] for t in state.candidates])
        states.append(state)
    cache: dict[tuple[int, tuple[int, ...]], float] = {
        (i, (t,)): float(unigram_scores[i][t]) for i, s in enumerate(states) for t in s.candidates
    }
    level = 0
    while any(not s.done for s in states):
        level += 1
        plans = []
        for i, state in enumerate(states):
            if state.done:
                continue
            _select(state, percentile)
            runs = state.runs()
            plans.append((i, runs, {r: state.neighbours(r) for r in runs}))
        jobs = {(i, r) for i, runs, borders in plans for r in runs}
        jobs |= {(i, tuple(sorted((*r, b)))) for i, runs, borders in plans for r in runs for b in borders[r]}
        todo = sorted(job for job in jobs if job not in cache)
        cache.update(zip(todo, map(float, score_sets(todo))) if todo else ())
        for i, runs, borders in plans:
            state = states[i]
            fresh: dict[int, float] = {}
            for r in runs:
                if r not in state.node_of:
                    state.add_node(r, cache[(i, r)], level)
                for b in borders[r]:
                    gain = cache[(i, tuple(sorted((*r, b))))] - cache[(i, r)]
                    if abs(gain) >= abs(fresh.get(b, 0.0)):
                        fresh[b] = gain
            state.gain.update(fresh)
            row = [state.node_of[r] for r in runs]
            if row != state.levels[-1]:
                state.levels.append(row)
    return [_finish(i, s, t, percentile, score_sets, cache) for i, (s, t) in enumerate(zip(states, targets))]


def _select(state: _TextState, percentile: float) -> None:
    remaining = [t for t in state.candidates if t not in state.selected]
    magnitudes = np.array([abs(state.gain[t]) for t in remaining])
    threshold = np.percentile(magnitudes, percentile)
    state.selected.update(t for t, m in zip(remaining, magnitudes) if m >= threshold)


def _finish(
    i, state: _TextState, target: int, percentile: float, score_sets: SetScorer, cache
) -> dict[str, Any]:
    top = state.levels[-1]
    if len(top) > 1:  # candidates not contiguous (a special token in between): one root over all of them
        tokens = tuple(state.candidates)
        score = cache.get((i, tokens))
        score = float(score_sets([(i, tokens)])[0]) if score is None else score
        state.add_node(tokens, score, len(state.levels))
        state.levels.append([state.node_of[tokens]])
    return {
        "text": state.text,
        "target": int(target),
        "percentile": float(percentile),
        "root": state.levels[-1][0],
        "levels": state.levels,
        "nodes": state.nodes,
    }


@dataclass
class PhraseHierarchy:
    """A phrase hierarchy of one text (`to_dict()` is what `Explanation.extras["hierarchy"]` holds).

    `nodes[k]`: {"id", "tokens" (token indices), "start"/"end" (character offsets), "text", "score"
    (CD score of the phrase for `target`), "level" (iteration that formed it; 0 for tokens),
    "children" (node ids), "interaction" (score − Σ children's scores; None for tokens)}.
    `levels[k]`: ids of the phrases present after iteration k (level 0: every token); `root`: the
    node covering the whole text.
    """

    text: str
    target: int
    percentile: float
    root: int
    levels: list[list[int]]
    nodes: list[dict[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "target": self.target,
            "percentile": self.percentile,
            "root": self.root,
            "levels": self.levels,
            "nodes": self.nodes,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PhraseHierarchy:
        return cls(**{k: data[k] for k in ("text", "target", "percentile", "root", "levels", "nodes")})

    def phrases(self, min_tokens: int = 2) -> list[dict[str, Any]]:
        """Nodes with at least `min_tokens` tokens, in the order they were formed."""
        return [n for n in self.nodes if len(n["tokens"]) >= min_tokens]

    def to_html(self, *, full_page: bool = False) -> str:
        """Self-contained HTML: one row per level, each phrase boxed and coloured by its score."""
        from ..visualize import render_hierarchy_html

        return render_hierarchy_html(self.to_dict(), full_page=full_page)

    def _repr_html_(self) -> str:
        return self.to_html()

    def __str__(self) -> str:
        lines: list[str] = []

        def walk(node_id: int, depth: int) -> None:
            node = self.nodes[node_id]
            extra = f"  (interaction {node['interaction']:+.3f})" if node["interaction"] is not None else ""
            lines.append(f"{'  ' * depth}{node['score']:+.3f}  {node['text']}{extra}")
            for child in node["children"]:
                walk(child, depth + 1)

        walk(self.root, 0)
        return "\n".join(lines)
