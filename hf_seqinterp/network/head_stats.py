r"""Per-head attention statistics over a dataset (Clark, Khandelwal, Levy & Manning 2019,
arXiv:1906.04341, "What does BERT look at?").

For a text of n tokens (specials included, padding excluded) and head h with weights a_{qk}, each
statistic is a mean over the n queries q, then a mean over the texts:

    mean_distance   (1/n) Σ_q Σ_k a_{qk} |q − k|
    to_self / to_previous / to_next      (1/n) Σ_q a_{q,q} / a_{q,q−1} / a_{q,q+1}
    to_cls / to_sep / to_special         (1/n) Σ_q Σ_{k ∈ K} a_{qk}, K the positions of the tokenizer's
                                          cls (else bos) token / sep (else eos) token / any special token
    to_punctuation  the same with K the tokens that cover only punctuation ("." and "," in the paper)
    to_same_word    the same with K the other tokens of q's word (sub-word pieces of one word)
    entropy         (1/n) Σ_q −Σ_k a_{qk} log a_{qk}   (0 log 0 = 0; uniform over m keys gives log m)

Weights are streamed layer by layer through `attention_hooks.stream_attentions` around the
adapter's forward (as `ModelAdapter.stream_attentions`, without a head's read-out, so causal LMs
need no continuation); only the running (layers, heads) sums are kept.
"""

from __future__ import annotations

import math
import string
from collections.abc import Sequence
from typing import Any

import datasets
import numpy as np
import torch

from ..adapter import Batch, ModelAdapter
from ..attention_hooks import stream_attentions
from ..errors import InvalidInputError
from ..mixin import as_adapter
from ..utils import progress_bar
from ..validation import check_batch_size, validate_texts

STATISTICS: tuple[str, ...] = (
    "mean_distance", "to_self", "to_previous", "to_next", "to_cls", "to_sep", "to_special", "to_punctuation",
    "to_same_word", "entropy",
)  # fmt: skip
_PUNCTUATION = set(string.punctuation)


def _token_id(tokenizer: Any, *names: str) -> int | None:
    return next((getattr(tokenizer, n) for n in names if getattr(tokenizer, n, None) is not None), None)


def _key_masks(adapter: ModelAdapter, batch: Batch) -> dict[str, torch.Tensor]:
    """(B, L, L) float masks selecting, per query q, the keys k each statistic sums a_{qk} over."""
    length = batch.input_ids.shape[1]
    q = torch.arange(length)[:, None]
    k = torch.arange(length)[None, :]
    ids = batch.input_ids.cpu()

    def keys(flags: torch.Tensor) -> torch.Tensor:  # (B, L) key flags -> (B, L, L)
        return flags[:, None, :].float().expand(-1, length, -1)

    def token(id_: int | None) -> torch.Tensor:
        return keys(ids == id_) if id_ is not None else torch.full((len(batch), length, length), math.nan)

    punctuation = torch.zeros_like(ids, dtype=torch.bool)
    words = torch.full_like(ids, -1)
    for row, enc in enumerate(batch.encodings):
        for t in range(len(enc)):
            piece = enc.covered_text(t).strip()
            punctuation[row, batch.starts[row] + t] = bool(piece) and set(piece) <= _PUNCTUATION
            if enc.word_ids[t] is not None and not enc.special_tokens_mask[t]:
                words[row, batch.starts[row] + t] = enc.word_ids[t] + 1000 * (enc.segment_of(t) if enc.is_pair else 0)
    same_word = (words[:, :, None] == words[:, None, :]) & (words[:, :, None] >= 0) & (q != k)
    special = batch.special_mask.cpu() & batch.attention_mask.cpu().bool()
    tok = adapter.tokenizer
    return {
        "mean_distance": (q - k).abs().float().expand(len(batch), -1, -1),
        "to_self": (q == k).float().expand(len(batch), -1, -1),
        "to_previous": (k == q - 1).float().expand(len(batch), -1, -1),
        "to_next": (k == q + 1).float().expand(len(batch), -1, -1),
        "to_cls": token(_token_id(tok, "cls_token_id", "bos_token_id")),
        "to_sep": token(_token_id(tok, "sep_token_id", "eos_token_id")),
        "to_special": keys(special),
        "to_punctuation": keys(punctuation),
        "to_same_word": same_word.float(),
    }


def head_statistics(
    model: ModelAdapter | Any,
    texts: Sequence[str] | datasets.Dataset,
    *,
    text_column: str | None = None,
    tokenizer: Any = None,
    batch_size: int | None = None,
    truncation: bool = True,
    progress: bool = True,
) -> datasets.Dataset:
    """The `STATISTICS` of every attention head, averaged over `texts` (one row per layer and head).

    Returns a `datasets.Dataset` with columns layer, head, the statistics and texts (how many texts
    were averaged); to_cls / to_sep are NaN when the tokenizer has no such token.
    """
    from ..data import text_column as find_text_column

    adapter = as_adapter(model, tokenizer)
    if isinstance(texts, datasets.Dataset):
        texts = texts[find_text_column(texts, text_column)]
    texts = validate_texts(texts)
    if not texts:
        raise InvalidInputError("No texts given; head statistics average over at least one text.")
    encodings = adapter.encode(texts, truncation=truncation)
    order = sorted(range(len(encodings)), key=lambda i: -len(encodings[i]))
    size = check_batch_size(batch_size) or 32
    sums: dict[str, torch.Tensor] = {}

    def on_layer(batch: Batch, masks: dict[str, torch.Tensor], layer: int, weights: torch.Tensor) -> None:
        a = weights.detach().double().cpu()  # (B, H, L, L)
        valid = batch.attention_mask.cpu().double()  # real queries
        n = valid.sum(-1)  # (B,)
        per_text = {name: (a * mask[:, None].double()).sum(-1) for name, mask in masks.items()}  # (B, H, L)
        per_text["entropy"] = -torch.special.xlogy(a, a).sum(-1)
        for name, values in per_text.items():
            mean = ((values * valid[:, None]).sum(-1) / n[:, None]).sum(0)  # Σ over texts of the per-text mean
            sums.setdefault(name, torch.zeros(0))
            if sums[name].numel() == 0:
                sums[name] = torch.zeros((adapter.num_layers or layer + 1, values.shape[1]), dtype=torch.float64)
            sums[name][layer] += mean

    bar = progress_bar(len(texts), "head_statistics", enabled=progress)
    with adapter.evaluating(), torch.inference_mode(), bar as bar:
        for start in range(0, len(order), size):
            batch = adapter.collate([encodings[i] for i in order[start : start + size]])
            masks = _key_masks(adapter, batch)
            stream_attentions(lambda b=batch, **kw: adapter.forward(b, **kw), adapter.model,
                              lambda layer, w, b=batch, m=masks: on_layer(b, m, layer, w))
            bar.update(len(batch))
    layers, heads = sums["entropy"].shape
    columns: dict[str, Any] = {
        "layer": np.repeat(np.arange(layers), heads).tolist(), "head": np.tile(np.arange(heads), layers).tolist(),
    }
    for name in STATISTICS:
        columns[name] = (sums[name] / len(texts)).flatten().tolist()
    columns["texts"] = [len(texts)] * (layers * heads)
    return datasets.Dataset.from_dict(columns)


def plot_head_statistics(
    stats: datasets.Dataset, statistics: Sequence[str] = STATISTICS, *, columns: int = 5, path: str | None = None
):
    """A matplotlib Figure (no pyplot state, no backend change): one layers × heads image per
    statistic, each with its colour bar; saved to `path` (PNG, SVG, ... by its suffix) when given."""
    from matplotlib.figure import Figure

    unknown = [s for s in statistics if s not in STATISTICS]
    if unknown or not statistics:
        raise InvalidInputError(f"statistics={list(statistics)}: choose one or more of {', '.join(STATISTICS)}.")
    layers, heads = max(stats["layer"]) + 1, max(stats["head"]) + 1
    columns = min(columns, len(statistics))
    rows = math.ceil(len(statistics) / columns)
    fig = Figure(figsize=(3.2 * columns, (0.3 * layers + 1.2) * rows), layout="constrained")
    axes = fig.subplots(rows, columns, squeeze=False)
    for ax, name in zip(axes.flat, statistics):
        grid = np.full((layers, heads), np.nan)
        grid[stats["layer"], stats["head"]] = stats[name]
        fig.colorbar(ax.imshow(grid, aspect="auto", cmap="viridis"), ax=ax)
        ax.set(title=name, xlabel="head", ylabel="layer")
    for ax in list(axes.flat)[len(statistics) :]:
        ax.axis("off")
    if path is not None:
        fig.savefig(path)
    return fig
