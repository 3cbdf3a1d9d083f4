"""Scoring edited copies of texts: the shared engine of erasure, perturbation explainers,
faithfulness metrics and rationale masking.

A text's features are its non-special tokens, or its words (groups of tokens sharing a word id).
A *keep mask* `keep ∈ {0,1}^L` says which token positions stay; special tokens always stay. The
removed positions are replaced according to `replacement`:

| replacement      | what the model sees                                                          |
|------------------|------------------------------------------------------------------------------|
| `delete`         | the token ids are dropped; the sequence gets shorter (a text left with no   |
|                  | token at all, possible without special tokens, is an error, or one padding   |
|                  | token with `empty="pad"`, which faithfulness metrics use for the empty input) |
| `mask`/`pad`/`unk` | the id becomes the tokenizer's [MASK] / [PAD] / [UNK] id                   |
| `attention`      | the id stays, its attention-mask entry becomes 0 (other positions unchanged) |
| `zero_embedding` | the input embedding at the position is set to 0 (needs `inputs_embeds`)     |
| `auto`           | `mask` if the tokenizer has a mask token, else `unk`, else `pad`, else `zero_embedding` |

Features can also be given character spans (`span_groups`), mapped to tokens through the offsets.
All variants of all texts are scored together in length-sorted forward batches of at most
`max_batch_tokens` padded tokens, never one forward per variant.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, Literal

import numpy as np
import torch

from .adapter import Batch, ModelAdapter
from .errors import InvalidParameterError
from .text import TokenizedText
from .utils import length_grouped_batches, progress_bar

Replacement = Literal["delete", "mask", "pad", "unk", "attention", "zero_embedding"]
REPLACEMENTS: tuple[str, ...] = ("delete", "mask", "pad", "unk", "attention", "zero_embedding")
FeatureLevel = Literal["token", "word", "phrase", "sentence"]
FEATURE_LEVELS: tuple[str, ...] = ("token", "word", "phrase", "sentence")
EmptyInput = Literal["error", "pad"]


def check_replacement(adapter: ModelAdapter, replacement: str) -> str:
    """Validate a replacement mode for this model (e.g. 'mask' needs a mask token; 'delete' needs a
    head whose rows do not read the outputs at given positions)."""
    if replacement not in REPLACEMENTS:
        raise InvalidParameterError(f"replacement={replacement!r} is not one of {', '.join(REPLACEMENTS)}.")
    if replacement == "delete" and not adapter.head.rows_survive_deletion:
        raise InvalidParameterError(
            f"replacement='delete' drops tokens from the sequence, but each row of {adapter.head.model_class}'s "
            f"{adapter.head.kind.replace('_', ' ')} head is the output at its own tokens, which deleting them "
            "removes. Use a replacement that keeps every position: 'mask', 'unk', 'pad', 'attention' or 'zero_embedding'."
        )
    if replacement in ("mask", "pad", "unk"):
        adapter.token_id(replacement)
    if replacement == "zero_embedding":
        adapter.require_inputs_embeds("zero_embedding replacement")
    return replacement


def resolve_replacement(adapter: ModelAdapter, replacement: str) -> str:
    """`check_replacement`, with 'auto' resolved to the first of mask / unk / pad the tokenizer has
    (a [MASK] token is what masked-LM encoders saw in pre-training), else 'zero_embedding'."""
    if replacement != "auto":
        return check_replacement(adapter, replacement)
    for kind in ("mask", "unk", "pad"):
        if getattr(adapter.tokenizer, f"{kind}_token_id", None) is not None:
            return kind
    return check_replacement(adapter, "zero_embedding")


def check_level(level: str) -> str:
    """`level` if it is a feature level, else a clear error."""
    if level not in FEATURE_LEVELS:
        raise InvalidParameterError(f"level={level!r}; use one of {', '.join(map(repr, FEATURE_LEVELS))}.")
    return level


def feature_groups(text: TokenizedText, level: FeatureLevel = "token") -> list[np.ndarray]:
    """Token positions of each feature: one per non-special token, word, phrase or sentence
    (`TokenizedText.unit_groups`)."""
    check_level(level)
    if level == "word":
        return [np.asarray(group.positions, dtype=np.int64) for group in text.word_groups()]
    if level in ("phrase", "sentence"):
        return [np.asarray(positions, dtype=np.int64) for positions in text.unit_groups(level)]
    return [np.asarray([pos], dtype=np.int64) for pos, special in enumerate(text.special_tokens_mask) if not special]


def span_groups(text: TokenizedText, spans: Sequence[tuple[int, int]]) -> list[np.ndarray]:
    """Token positions of each character span `[start, end)` of `text.text`: the non-special tokens
    whose offsets overlap it. A span that covers no token (e.g. cut off by truncation) is an error."""
    groups = []
    for span in spans:
        if len(span) != 2:
            raise InvalidParameterError(f"span {span!r} is not a pair of character offsets (start, end).")
        groups.append(text.tokens_in_span(span[0], span[1]))
    if not groups:
        raise InvalidParameterError("spans is empty; give at least one (start, end) character span.")
    return groups


def keep_masks(text: TokenizedText, coalitions: np.ndarray, groups: Sequence[np.ndarray]) -> np.ndarray:
    """Token-level keep masks (n, L) from feature coalitions (n, M): a feature's tokens stay where its
    coalition entry is 1; special tokens always stay."""
    coalitions = np.asarray(coalitions, dtype=bool).reshape(-1, len(groups))
    keep = np.ones((coalitions.shape[0], len(text.input_ids)), dtype=bool)
    for j, positions in enumerate(groups):
        keep[:, positions] = coalitions[:, j : j + 1]
    keep[:, np.asarray(text.special_tokens_mask, dtype=bool)] = True
    return keep


def score_variants(
    adapter: ModelAdapter,
    texts: Sequence[TokenizedText],
    keeps: Sequence[np.ndarray],
    targets: Sequence[int | Sequence[int]],
    *,
    replacement: Replacement = "mask",
    score: str = "logit",
    max_batch_tokens: int = 8192,
    max_batch_rows: int = 512,
    progress: bool = False,
    empty: EmptyInput = "error",
) -> list[np.ndarray]:
    """Score every edited copy of every text.

    Args:
        texts: the texts (Encodings or Explanations).
        keeps: per text, a bool array (n_variants, L) of token positions to keep.
        targets: per text, the class whose score is computed; for heads with a row axis (a causal
            LM), the class of each of the text's rows.
        replacement: how removed tokens are replaced (see the module docstring).
        score: 'logit', 'log_prob' or 'prob' of the target.
        empty: what a deletion that leaves no token at all scores: an 'error' (default), or one
            'pad' token (the model's output on an empty input, e.g. the start of an insertion curve).

    Returns per text an array (n_variants,) of float64 scores, or (n_variants, rows) with a row
    axis. Scores are computed batch by batch, so a causal LM's vocabulary-sized logits are never
    all held at once.
    """
    adapter.check_score_space(score)
    out = [np.empty((len(k), *_row_axis(text, t)), dtype=np.float64) for k, text, t in zip(keeps, texts, targets)]
    for picked, logits in _variant_batches(
        adapter, texts, keeps, replacement=replacement, max_batch_tokens=max_batch_tokens,
        max_batch_rows=max_batch_rows, progress=progress, empty=empty,
    ):
        chosen = adapter.pick_targets([targets[t] for t, _ in picked], logits)
        values = adapter.score(logits.double(), chosen, score).cpu().numpy()
        for (t, v), row in zip(picked, values):
            out[t][v] = row[: out[t].shape[1]] if out[t].ndim == 2 else row
    return out


def _row_axis(text: TokenizedText, target: Any) -> tuple[int, ...]:
    """The shape of one variant's scores: () for one explained score, (rows,) with a row axis (one
    per readout position, or one per target of a head whose rows read several tokens)."""
    readout = getattr(text, "readout", None)
    if readout is not None:
        return (len(readout),)
    return (len(target),) if isinstance(target, (list, tuple)) else ()


def target_scores(adapter: ModelAdapter, logits: np.ndarray, target: int, score: str) -> np.ndarray:
    """(n,) float64 scores of class `target` from (n, num_labels) logits."""
    chosen = torch.full((len(logits),), int(target), dtype=torch.long)
    return adapter.score(torch.as_tensor(logits), chosen, score).numpy()


def variant_logits(
    adapter: ModelAdapter,
    texts: Sequence[TokenizedText],
    keeps: Sequence[np.ndarray],
    *,
    replacement: Replacement = "mask",
    max_batch_tokens: int = 8192,
    max_batch_rows: int = 512,
    progress: bool = False,
    empty: EmptyInput = "error",
) -> list[np.ndarray]:
    """A classifier's logits on every edited copy of every text: per text an array
    (n_variants, num_labels) of float64. A keep row of all ones is the unedited text. `empty`: see
    `score_variants`."""
    out = [np.empty((len(k), adapter.num_labels), dtype=np.float64) for k in keeps]
    for picked, logits in _variant_batches(
        adapter, texts, keeps, replacement=replacement, max_batch_tokens=max_batch_tokens,
        max_batch_rows=max_batch_rows, progress=progress, empty=empty,
    ):
        for (t, v), row in zip(picked, logits.double().cpu().numpy()):
            out[t][v] = row
    return out


def _variant_batches(
    adapter: ModelAdapter,
    texts: Sequence[TokenizedText],
    keeps: Sequence[np.ndarray],
    *,
    replacement: Replacement,
    max_batch_tokens: int,
    max_batch_rows: int,
    progress: bool,
    empty: EmptyInput,
) -> Iterator[tuple[list[tuple[int, int]], torch.Tensor]]:
    """(variants, row logits) for each forward batch of edited copies: the variants as (text,
    variant) pairs, in length-sorted batches of at most `max_batch_tokens` padded tokens."""
    check_replacement(adapter, replacement)
    if empty not in ("error", "pad"):
        raise InvalidParameterError(f"empty={empty!r}; use 'error' or 'pad'.")
    rows: list[tuple[int, int]] = [(t, v) for t, keep in enumerate(keeps) for v in range(len(keep))]
    lengths = [
        int(keeps[t][v].sum()) if replacement == "delete" else len(texts[t].input_ids) for t, v in rows
    ]
    if empty == "pad":
        lengths = [max(1, n) for n in lengths]  # an empty deletion is scored as one pad token
    if lengths and min(lengths) == 0:
        t, _ = rows[lengths.index(0)]
        raise InvalidParameterError(
            f"replacement='delete' removes every token of text {t} ({texts[t].text[:40]!r}): its tokenizer adds "
            "no special tokens, so the model would get an empty input. Use a replacement that keeps the "
            "positions ('unk', 'pad', 'zero_embedding' or 'attention')."
        )
    batches = length_grouped_batches(
        lengths, max_batch_rows, max_batch_tokens, equal_lengths=adapter.padding_sensitive
    )
    with torch.no_grad(), adapter.evaluating(), progress_bar(len(rows), "variants", enabled=progress, unit="row") as bar:
        for batch_rows in batches:
            picked = [rows[i] for i in batch_rows]
            yield picked, _logits_of_rows(adapter, texts, keeps, picked, replacement)
            bar.update(len(picked))


def _logits_of_rows(adapter, texts, keeps, picked, replacement) -> torch.Tensor:
    ids_rows, kept = [], []
    for t, v in picked:
        ids = np.asarray(texts[t].input_ids)
        keep = keeps[t][v]
        if replacement == "delete" and not keep.any():  # the empty input: one pad token
            ids, keep = np.asarray([adapter.pad_id]), np.ones(1, dtype=bool)
        elif replacement in ("mask", "pad", "unk"):
            ids = np.where(keep, ids, adapter.token_id(replacement))
        ids_rows.append(ids.tolist())
        kept.append(keep)
    batch = adapter.collate(
        [texts[t] for t, _ in picked], input_ids=ids_rows, keep=kept if replacement == "delete" else None
    )
    removed = None
    if replacement in ("attention", "zero_embedding"):
        removed = torch.zeros_like(batch.attention_mask, dtype=torch.bool)
        for row, (t, v) in enumerate(picked):
            removed[row, batch.token_slice(row)] = torch.from_numpy(~keeps[t][v])
    if replacement == "attention":
        logits = adapter.logits(batch, attention_mask=batch.attention_mask.masked_fill(removed, 0))
    elif replacement == "zero_embedding":
        embeds = adapter.embed(batch.input_ids).masked_fill(removed.unsqueeze(-1), 0.0)
        logits = adapter.logits(batch, embeds)
    else:
        logits = adapter.logits(batch)
    return logits


def soft_masked_logits(
    adapter: ModelAdapter, batch: Batch, keep: torch.Tensor, replacement: Replacement = "mask"
) -> torch.Tensor:
    r"""Logits of `batch` with each token weighted by keep ∈ [0, 1] (rows, L), differentiable in keep:
    how a rationale generator's selections reach the classifier during training.

    Embedding replacements blend each input embedding towards the replacement's,

        e'_t = keep_t · E(x_t) + (1 − keep_t) · E(r),     E(r) = E([MASK]) / E([PAD]) / E([UNK]) or 0,

    which equals `variant_logits` with the same replacement wherever keep is exactly 0 or 1.
    'attention' multiplies the attention mask by keep, which must then be exactly 0/1 and carry no
    gradient (an attention mask cannot express a fractional selection). Special tokens and padding
    always keep their input.
    """
    keep = torch.where(batch.special_mask, torch.ones_like(keep), keep)
    if replacement == "attention":
        if keep.requires_grad or not bool(((keep == 0) | (keep == 1)).all()):
            raise InvalidParameterError(
                "replacement='attention' needs hard 0/1 selections without gradients (REINFORCE); relaxed "
                "selections need an embedding replacement ('mask', 'pad', 'unk' or 'zero_embedding')."
            )
        return adapter.logits(batch, attention_mask=batch.attention_mask * keep.to(batch.attention_mask.dtype))
    if replacement not in ("mask", "pad", "unk", "zero_embedding"):
        raise InvalidParameterError(
            f"replacement={replacement!r} cannot weight tokens; use 'mask', 'pad', 'unk', 'zero_embedding' or "
            "'attention'."
        )
    embeds = adapter.embed(batch.input_ids)
    if replacement == "zero_embedding":
        substitute = torch.zeros((), dtype=embeds.dtype, device=embeds.device)
    else:
        token = torch.tensor([adapter.token_id(replacement)], device=batch.input_ids.device)
        substitute = adapter.embed(token)[0]
    weight = keep.to(embeds.dtype).unsqueeze(-1)
    return adapter.logits(batch, weight * embeds + (1.0 - weight) * substitute)
