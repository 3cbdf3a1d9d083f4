r"""Faithfulness: does removing what an explanation ranks highest change the model's output?

For an explanation with target c, feature scores s over the n non-special tokens (or words), and
f(·) the model's score of c (by default its probability, as in ERASER) on an edited copy of the
input, with top_k(s) the k highest-scoring features:

    comprehensiveness(x, r) = f(x) − f(x \ r)                    higher is better
    sufficiency(x, r)       = f(x) − f(r)                        lower is better (can be < 0)
    AOPC_comp(x, s)         = 1/|B| Σ_{b∈B} f(x) − f(x \ top_{k(b)}(s))      B = ERASER bins
    AOPC_suff(x, s)         = 1/|B| Σ_{b∈B} f(x) − f(top_{k(b)}(s))
    deletion curve          y_j = f(x \ top_{k_j}(s)),  insertion curve y_j = f(top_{k_j}(s)),
                            k_j = round(φ_j · n) on the grid φ_j = j/(S−1); area = trapezoid rule on φ
    tau_LOO(x, s)           = Kendall τ_b(LOO, s),  LOO_i = f(x) − f(x \ {i})

with k(b) = ceil(b·n) (`rounding="ceil"`, every bin removes at least one token) or floor(b·n)
(an empty bin then contributes 0). References: DeYoung et al. 2020 (ERASER, arXiv:1911.03429),
Samek et al. 2017 (AOPC, arXiv:1509.06321), Petsiuk et al. 2018 (deletion/insertion, arXiv:
1806.07421), Attanasio et al. 2023 (ferret, tau-LOO).

Explanations with a target axis (a causal LM's continuation) are scored row by row: row k is the
one-target explanation `Explanation.row(k)` over the tokens it sees, its score read at its last
position; each metric of such an explanation is the mean over its rows.

Everything works on `Explanation.input_ids` (never decoded and re-tokenised): the edited copies are
keep masks handed to `masking.score_variants` with the chosen replacement (delete / mask / pad ...),
all variants of all explanations in one length-sorted batched run. Identical variants are scored
once: the full input, the empty rationale, LOO variants shared by explanations of the same text
and target from different methods. So comprehensiveness(∅) and sufficiency(all) are exactly 0.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from ..adapter import ModelAdapter
from ..errors import InvalidInputError, InvalidParameterError
from ..explanation import Explanation
from ..text import Encoding, TokenizedText
from ..masking import REPLACEMENTS, check_replacement, feature_groups, keep_masks, score_variants
from .ranking import RANK_BY, feature_scores, kendall_tau_b, rank_features, trapezoid_area

ERASER_BINS: tuple[float, ...] = (0.01, 0.05, 0.10, 0.20, 0.50)
FAITHFULNESS_METRICS: tuple[str, ...] = (
    "comprehensiveness",
    "sufficiency",
    "aopc_comprehensiveness",
    "aopc_sufficiency",
    "deletion_auc",
    "insertion_auc",
    "tau_loo",
)


@dataclass(frozen=True)
class FaithfulnessSettings:
    """How the edited inputs are built and scored (recorded with every result).

    Attributes:
        replacement: how removed tokens are replaced: 'delete' (ERASER), 'mask', 'pad', or any
            other `masking.REPLACEMENTS` mode. Values for different modes are not comparable.
        score: the target's 'prob' (ERASER), 'log_prob' or 'logit'.
        bins: AOPC fractions of the features.
        rounding: 'ceil' or 'floor' for k = b·n.
        rank_by: rank features by their 'signed' score (evidence for the target first) or by 'abs'.
        level: 'token' or 'word' features (word scores use the explanation's own aggregation).
        curve_points: points S of the deletion/insertion curves (fractions 0, 1/(S−1), ..., 1).
        top: the fraction of features taken as the rationale of comprehensiveness/sufficiency when
            no rationale is given.
        max_batch_tokens: padded tokens per forward batch.
    """

    replacement: str = "delete"
    score: str = "prob"
    bins: tuple[float, ...] = ERASER_BINS
    rounding: str = "ceil"
    rank_by: str = "signed"
    level: str = "token"
    curve_points: int = 11
    top: float = 0.2
    max_batch_tokens: int = 8192

    def __post_init__(self) -> None:
        if self.replacement not in REPLACEMENTS:
            raise InvalidParameterError(f"replacement={self.replacement!r} is not one of {', '.join(REPLACEMENTS)}.")
        object.__setattr__(self, "bins", tuple(float(b) for b in self.bins))
        if not self.bins or not all(0 < b <= 1 for b in self.bins):
            raise InvalidParameterError(f"bins={self.bins!r}: give fractions in (0, 1].")
        if not 0 < self.top <= 1:
            raise InvalidParameterError(f"top={self.top!r}: give a fraction in (0, 1].")
        if self.rounding not in ("ceil", "floor"):
            raise InvalidParameterError(f"rounding={self.rounding!r}; use 'ceil' or 'floor'.")
        if self.rank_by not in RANK_BY:
            raise InvalidParameterError(f"rank_by={self.rank_by!r}; use 'signed' or 'abs'.")
        if self.level not in ("token", "word"):
            raise InvalidParameterError(f"level={self.level!r}; use 'token' or 'word'.")
        if not isinstance(self.curve_points, int) or self.curve_points < 2:
            raise InvalidParameterError(f"curve_points={self.curve_points!r}: need an integer >= 2.")

    @classmethod
    def from_kwargs(cls, **kwargs: Any) -> FaithfulnessSettings:
        unknown = sorted(set(kwargs) - set(cls.__dataclass_fields__))
        if unknown:
            raise InvalidParameterError(
                f"unknown faithfulness setting(s) {', '.join(map(repr, unknown))}; "
                f"accepted: {', '.join(cls.__dataclass_fields__)}."
            )
        return cls(**kwargs)

    def k(self, fraction: float, n: int) -> int:
        """Number of features in the top `fraction` of n."""
        value = fraction * n
        k = math.ceil(value - 1e-9) if self.rounding == "ceil" else math.floor(value + 1e-9)
        return min(n, max(0, k))

    @property
    def fractions(self) -> np.ndarray:
        return np.linspace(0.0, 1.0, self.curve_points)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["bins"] = list(self.bins)
        return out


@dataclass
class FaithfulnessResult:
    """Per-explanation values of each computed metric, plus the curves and the settings.

    `values[name]` is an (N,) array; `per_bin["comprehensiveness" | "sufficiency"]` is (N, |bins|);
    `curves["deletion" | "insertion"]` is (N, S) on `fractions`; `loo[i]` holds the LOO score of each
    feature of explanation i; `full_scores` is f(x); `n_variants` the edited inputs actually scored.
    """

    values: dict[str, np.ndarray]
    settings: dict[str, Any]
    full_scores: np.ndarray
    fractions: np.ndarray
    per_bin: dict[str, np.ndarray] = field(default_factory=dict)
    curves: dict[str, np.ndarray] = field(default_factory=dict)
    loo: list[np.ndarray] = field(default_factory=list)
    n_variants: int = 0

    def summary(self) -> dict[str, float]:
        """Mean of each metric over the explanations (NaN values, e.g. τ of a 1-token text, skipped)."""
        return {name: _nanmean(v) for name, v in self.values.items()}


def _nanmean(values: np.ndarray) -> float:
    finite = values[~np.isnan(values)]
    return float(finite.mean()) if finite.size else float("nan")


class _Variants:
    """The distinct edited inputs requested for one (text, target). With deletion, two keep masks that
    leave the same token ids (dropping either "very" of "very very") are one input, scored once."""

    def __init__(self, input_ids: Sequence[int], replacement: str) -> None:
        self.ids = np.asarray(input_ids, dtype=np.int64)
        self.delete = replacement == "delete"
        self.index: dict[bytes, int] = {}
        self.masks: list[np.ndarray] = []

    def add(self, keep: np.ndarray) -> int:
        key = self.ids[keep].tobytes() if self.delete else np.packbits(keep).tobytes()
        if key not in self.index:
            self.index[key] = len(self.masks)
            self.masks.append(keep)
        return self.index[key]

    def add_all(self, keeps: np.ndarray) -> np.ndarray:
        return np.asarray([self.add(k) for k in keeps], dtype=np.int64)


def faithfulness(
    explanations: Explanation | Sequence[Explanation],
    adapter: ModelAdapter,
    metrics: Sequence[str] = ("aopc_comprehensiveness", "aopc_sufficiency", "deletion_auc", "insertion_auc", "tau_loo"),
    *,
    rationales: Sequence[np.ndarray] | None = None,
    progress: bool = False,
    **settings: Any,
) -> FaithfulnessResult:
    """Compute faithfulness metrics of `explanations` on the model of `adapter`, in one batched run.

    Args:
        explanations: Explanations of `adapter`'s model (the explained target is scored).
        metrics: names from `FAITHFULNESS_METRICS`.
        rationales: for comprehensiveness/sufficiency, one bool token mask per explanation (e.g. from
            `alignment.char_spans_to_token_mask`); default: the top `settings.top` features.
        progress: show a progress bar over the scored variants.
        **settings: fields of `FaithfulnessSettings` (replacement, score, bins, ...).
    """
    explanations = [explanations] if isinstance(explanations, Explanation) else list(explanations)
    config = FaithfulnessSettings.from_kwargs(**settings)
    metrics = _check_metrics(metrics)
    _check_explanations(explanations, adapter, rationales)
    check_replacement(adapter, config.replacement)
    adapter.check_score_space(config.score)

    units, owners = row_units(explanations)
    plan = plan_variants(units, metrics, config, rationales)
    scored = score_variants(
        adapter,
        [_scored_input(unit) for unit in plan.texts],
        plan.keeps,
        plan.targets,
        replacement=config.replacement,
        score=config.score,
        max_batch_tokens=config.max_batch_tokens,
        progress=progress,
        empty="pad",  # insertion curves and sufficiency start from the empty input
    )
    scored = [np.asarray(values).reshape(len(values)) for values in scored]  # a row: (variants, 1)
    result = _collect([(scored[t], needs) for t, needs in plan.needs], metrics, config)
    result.n_variants = sum(len(k) for k in plan.keeps)
    return result if len(units) == len(explanations) else _mean_over_rows(result, owners, len(explanations))


def row_units(explanations: Sequence[Explanation]) -> tuple[list[Explanation], np.ndarray]:
    """Each explanation, or each row of one with a target axis (`Explanation.row(k)`), and the index
    of the explanation each came from."""
    units, owners = [], []
    for i, expl in enumerate(explanations):
        rows = expl.row_views() if expl.rows is not None else [expl]
        units += rows
        owners += [i] * len(rows)
    return units, np.asarray(owners, dtype=np.int64)


def _is_row(unit: Explanation) -> bool:
    return "visible" in unit.extras  # a row view carries its row's description


def _scored_input(unit: Explanation) -> TokenizedText:
    """What `score_variants` runs: the explanation's tokens; a row's read at its last position."""
    if not _is_row(unit):
        return unit
    fields = TokenizedText.token_fields(unit)
    return Encoding(
        text=unit.text, tokens=unit.tokens, text_pair=unit.text_pair, **fields, readout=[len(unit) - 1],
        row_targets=[unit.target],
    )


def _scored_target(unit: Explanation) -> Any:
    """The explained class; a row's token (and its contrastive foil) as the row targets of one row."""
    if not _is_row(unit):
        return unit.target
    return ((unit.target, unit.extras["contrast"]),) if "contrast" in unit.extras else (unit.target,)


def _mean_over_rows(result: FaithfulnessResult, owners: np.ndarray, n: int) -> FaithfulnessResult:
    """Per-row values averaged per explanation (NaNs skipped); `loo` stays one array per row."""

    def mean(values: np.ndarray) -> np.ndarray:
        return np.stack([_nanmean_axis0(values[owners == i]) for i in range(n)])

    result.values = {name: mean(v) for name, v in result.values.items()}
    result.per_bin = {name: mean(v) for name, v in result.per_bin.items()}
    result.curves = {name: mean(v) for name, v in result.curves.items()}
    result.full_scores = mean(result.full_scores)
    return result


def _nanmean_axis0(values: np.ndarray) -> np.ndarray:
    finite = ~np.isnan(values)
    total = np.where(finite, values, 0.0).sum(axis=0)
    count = finite.sum(axis=0)
    return np.where(count > 0, total / np.maximum(count, 1), np.nan)


@dataclass
class VariantPlan:
    """The distinct edited inputs a faithfulness run scores: per distinct (text, target), its keep
    masks; per explanation, the index of its text and, per metric, the indices of its variants."""

    texts: list[Explanation]
    keeps: list[np.ndarray]
    targets: list[Any]
    needs: list[tuple[int, dict[str, np.ndarray]]]


def plan_variants(
    explanations: Sequence[Explanation],
    metrics: Sequence[str],
    config: FaithfulnessSettings,
    rationales: Sequence[np.ndarray] | None = None,
) -> VariantPlan:
    """Every edited input `faithfulness` needs, each distinct one once."""
    texts: dict[tuple, int] = {}
    variants: list[_Variants] = []
    firsts: list[Explanation] = []
    needs = []
    for i, expl in enumerate(explanations):
        key = (tuple(expl.input_ids), expl.target, expl.extras.get("contrast"))
        if key not in texts:
            texts[key] = len(variants)
            variants.append(_Variants(expl.input_ids, config.replacement))
            firsts.append(expl)
        rationale = None if rationales is None else np.asarray(rationales[i], dtype=bool)
        needs.append((texts[key], _plan(expl, variants[texts[key]], metrics, config, rationale)))
    return VariantPlan(firsts, [np.stack(v.masks) for v in variants], [_scored_target(e) for e in firsts], needs)


def _check_metrics(metrics: Sequence[str]) -> list[str]:
    metrics = [metrics] if isinstance(metrics, str) else list(metrics)
    unknown = [m for m in metrics if m not in FAITHFULNESS_METRICS]
    if unknown or not metrics:
        raise InvalidParameterError(
            f"unknown faithfulness metric(s) {unknown!r}; choose from {', '.join(FAITHFULNESS_METRICS)}."
        )
    return metrics


def _check_explanations(explanations: list[Explanation], adapter: ModelAdapter, rationales) -> None:
    if not explanations:
        raise InvalidInputError("No explanations given.")
    vocab = adapter.embeddings.num_embeddings if hasattr(adapter.embeddings, "num_embeddings") else None
    for i, expl in enumerate(explanations):
        if not isinstance(expl, Explanation):
            raise InvalidInputError(f"Item {i} is a {type(expl).__name__}, not an Explanation.")
        if expl.rows is None and not _is_row(expl) and not 0 <= expl.target < adapter.num_labels:
            raise InvalidInputError(
                f"Explanation {i} explains target {expl.target}, but the model has {adapter.num_labels} labels; "
                "was it made with another model?"
            )
        if vocab is not None and max(expl.input_ids) >= vocab:
            raise InvalidInputError(
                f"Explanation {i} has token id {max(expl.input_ids)} but the model's vocabulary has {vocab} "
                "entries; it was made with another tokenizer."
            )
    if rationales is not None:
        if any(expl.rows is not None for expl in explanations):
            raise InvalidInputError("Rationales apply to explanations of one target; these have a target axis (rows).")
        if len(rationales) != len(explanations):
            raise InvalidInputError(f"Got {len(rationales)} rationales for {len(explanations)} explanations.")
        for i, (r, expl) in enumerate(zip(rationales, explanations)):
            if len(r) != len(expl):
                raise InvalidInputError(
                    f"Rationale {i} has {len(r)} entries but explanation {i} has {len(expl)} tokens; "
                    "give one bool per token (see metrics.char_spans_to_token_mask)."
                )


def _plan(expl, variants: _Variants, metrics, config: FaithfulnessSettings, rationale) -> dict[str, np.ndarray]:
    """Indices (into `variants`) of the edited inputs each metric needs for one explanation."""
    groups = feature_groups(expl, config.level)
    n = len(groups)
    scores = feature_scores(expl, groups)
    order = rank_features(scores, config.rank_by)

    def top(ks: Sequence[int]) -> np.ndarray:
        coalitions = np.zeros((len(ks), n), dtype=bool)
        for row, k in enumerate(ks):
            coalitions[row, order[:k]] = True
        return coalitions

    def removed(coalitions: np.ndarray) -> np.ndarray:
        return variants.add_all(keep_masks(expl, ~coalitions, groups))

    def kept(coalitions: np.ndarray) -> np.ndarray:
        return variants.add_all(keep_masks(expl, coalitions, groups))

    plan = {"full": variants.add_all(np.ones((1, len(expl)), dtype=bool)), "scores": scores}
    if {"comprehensiveness", "sufficiency"} & set(metrics):
        if rationale is None:
            mask = keep_masks(expl, top([config.k(config.top, n)]), groups)[0]
            rationale = mask & ~np.asarray(expl.special_tokens_mask, dtype=bool)
        special = np.asarray(expl.special_tokens_mask, dtype=bool)
        plan["comprehensiveness"] = variants.add_all((~rationale | special)[None])
        plan["sufficiency"] = variants.add_all((rationale | special)[None])
    bin_ks = [config.k(b, n) for b in config.bins]
    if "aopc_comprehensiveness" in metrics:
        plan["aopc_comprehensiveness"] = removed(top(bin_ks))
    if "aopc_sufficiency" in metrics:
        plan["aopc_sufficiency"] = kept(top(bin_ks))
    curve_ks = [math.floor(f * n + 0.5) for f in config.fractions]
    if "deletion_auc" in metrics:
        plan["deletion_auc"] = removed(top(curve_ks))
    if "insertion_auc" in metrics:
        plan["insertion_auc"] = kept(top(curve_ks))
    if "tau_loo" in metrics:
        plan["tau_loo"] = removed(np.eye(n, dtype=bool))
    return plan


def _collect(items, metrics: list[str], config: FaithfulnessSettings) -> FaithfulnessResult:
    full = np.asarray([scores[plan["full"][0]] for scores, plan in items])
    values: dict[str, np.ndarray] = {}
    per_bin: dict[str, np.ndarray] = {}
    curves: dict[str, np.ndarray] = {}
    loo: list[np.ndarray] = []
    for name in metrics:
        drops = [f - scores[plan[name]] for f, (scores, plan) in zip(full, items)]
        if name in ("comprehensiveness", "sufficiency"):
            values[name] = np.asarray([d[0] for d in drops])
        elif name.startswith("aopc_"):
            per_bin[name[len("aopc_"):]] = np.stack(drops)
            values[name] = per_bin[name[len("aopc_"):]].mean(axis=1)
        elif name in ("deletion_auc", "insertion_auc"):
            curve = np.stack([scores[plan[name]] for scores, plan in items])
            curves[name[: -len("_auc")]] = curve
            values[name] = trapezoid_area(curve, config.fractions)
        else:
            loo = drops
            values[name] = np.asarray([kendall_tau_b(d, plan["scores"]) for d, (_, plan) in zip(drops, items)])
    return FaithfulnessResult(
        values=values,
        settings=config.to_dict(),
        full_scores=full,
        fractions=config.fractions,
        per_bin=per_bin,
        curves=curves,
        loo=loo,
    )


def _metric(name: str):
    def compute(
        explanations: Explanation | Sequence[Explanation], adapter: ModelAdapter, **kwargs: Any
    ) -> np.ndarray:
        return faithfulness(explanations, adapter, [name], **kwargs).values[name]

    compute.__name__ = name
    compute.__doc__ = f"Per-explanation {name} (see `faithfulness` for the formula and the keyword arguments)."
    return compute


comprehensiveness = _metric("comprehensiveness")
sufficiency = _metric("sufficiency")
aopc_comprehensiveness = _metric("aopc_comprehensiveness")
aopc_sufficiency = _metric("aopc_sufficiency")
deletion_auc = _metric("deletion_auc")
insertion_auc = _metric("insertion_auc")
tau_loo = _metric("tau_loo")


def leave_one_out(
    explanations: Explanation | Sequence[Explanation], adapter: ModelAdapter, **settings: Any
) -> list[np.ndarray]:
    """LOO_i = f(x) − f(x \\ {i}) for every non-special token (0 at special tokens), per explanation:
    the scores tau-LOO compares with, usable as attributions of their own."""
    explanations = [explanations] if isinstance(explanations, Explanation) else list(explanations)
    result = faithfulness(explanations, adapter, ["tau_loo"], **{**settings, "level": "token"})
    out = []
    for expl, values in zip(explanations, result.loo):
        scores = np.zeros(len(expl), dtype=np.float64)
        scores[~np.asarray(expl.special_tokens_mask, dtype=bool)] = values
        out.append(scores)
    return out
