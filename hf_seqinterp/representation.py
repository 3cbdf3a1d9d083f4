r"""Representation erasure (Li, Monroe & Jurafsky 2016): which input-embedding dimensions, or which
hidden units of one layer, a classifier relies on across a corpus.

For a text e with label c (the gold label when given, else the predicted one) let
S(e, c) = log p(c | e), and S(e, c, ¬d) the same with unit d set to 0 at every position (through a
forward hook on the input-embedding module or on one transformer block). Over the corpus E:

    log_likelihood_drop(d) = (1/|E|) Σ_e [S(e, c) − S(e, c, ¬d)]
    relative_drop(d)       = (1/|E|) Σ_e [S(e, c) − S(e, c, ¬d)] / |S(e, c)|     (Li et al.'s I(d))

Sign convention: positive means erasing d lowers the label's log-likelihood (d supports it). The
paper divides by S(e, c), which is negative, and so flips this sign; we divide by |S(e, c)|. The
relative form is dominated by the texts the model is sure of (S near 0, where a tiny change is a
large ratio), so units are ranked by the absolute drop unless `relative=True`.

Batching: one forward carries many (text, unit) rows, each row with its own multiplicative mask in
the hook. Where the model allows it (checked on the first text, not assumed), the text is run as a
single row and the hook broadcasts the hooked module's output to one row per unit, so the layers
below the hooked one run once per text instead of once per unit.
Reference: arXiv:1612.08220.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any, Literal

import numpy as np
import torch

from .adapter import Encoding, ModelAdapter
from .data import text_column as text_column_of
from .errors import InvalidInputError, InvalidParameterError
from .mixin import as_adapter
from .utils import chunks, progress_bar


def representation_erasure(
    model: ModelAdapter | Any,
    data: Sequence[str] | Any,
    *,
    level: Literal["embedding", "hidden"] = "embedding",
    layer: int | None = None,
    labels: Sequence[int | str] | None = None,
    units: Sequence[int] | None = None,
    relative: bool = False,
    tokenizer: Any = None,
    text_column: str | None = None,
    label_column: str = "label",
    max_batch_tokens: int = 8192,
    truncation: bool = True,
    progress: bool = True,
):
    """Rank the units of a representation by how much erasing each one hurts the label's log-likelihood.

    Args:
        model: a ModelAdapter, a loaded model (with `tokenizer`), a path or Hub id, or None (default model).
        data: a list of texts, or a `datasets.Dataset` with a text column (`text_column`, by default
            the first of "text", "sentence", ... it has) and optionally `label_column`.
        level: "embedding" (dimensions of the input word vectors, the output of
            `get_input_embeddings()`) or "hidden" (units of the output of transformer block `layer`).
        layer: block index for level="hidden" (negative counts from the end; default: the last block).
        labels: the class c per text (ids or label names); default: the dataset's `label_column` if
            present, else the predicted class.
        units: erase only these units (default: all of them).
        relative: rank by Li et al.'s relative drop instead of the absolute drop.
        max_batch_tokens: padded tokens per forward (rows × text length).

    Returns a `datasets.Dataset` sorted by rank, with columns `dimension` (the unit's index),
    `log_likelihood_drop`, `relative_drop` and `rank` (1 = largest drop of the ranking form).
    """
    from datasets import Dataset, DatasetInfo

    adapter = as_adapter(model, tokenizer)
    texts, gold = _corpus(data, labels, text_column, label_column)
    if gold is not None and len(gold) != len(texts):
        raise InvalidParameterError(f"Got {len(gold)} labels for {len(texts)} texts; give one label per text.")
    targets = [adapter.check_target(t) for t in gold] if gold is not None else [None] * len(texts)
    encodings = adapter.encode(texts, truncation=truncation)
    module, where = _erased_module(adapter, level, layer)
    width = _output_width(adapter, module, encodings[0])
    chosen = _check_units(units, width, where)

    with torch.no_grad(), adapter.evaluating():
        broadcast = _broadcasts(adapter, module, encodings[0], width)
        drops = np.empty((len(encodings), len(chosen)), dtype=np.float64)
        scale = np.empty(len(encodings), dtype=np.float64)
        with progress_bar(len(encodings), "representation erasure", enabled=progress) as bar:
            for i, enc in enumerate(encodings):
                masks = np.ones((len(chosen) + 1, width), dtype=np.float32)
                masks[np.arange(1, len(chosen) + 1), chosen] = 0.0  # row 0 erases nothing
                rows_per_pass = max(1, max_batch_tokens // len(enc))
                logits = np.vstack([
                    _erased_logits(adapter, module, enc, masks[part], broadcast)
                    for part in chunks(len(masks), rows_per_pass)
                ])
                target = targets[i] if targets[i] is not None else int(np.argmax(logits[0]))
                log_lik = torch.log_softmax(torch.as_tensor(logits), -1)[:, target].numpy()
                drops[i] = log_lik[0] - log_lik[1:]
                scale[i] = abs(log_lik[0])
                bar.update(1)

    absolute, ratio = drops.mean(0), (drops / scale[:, None]).mean(0)
    order = np.argsort(-(ratio if relative else absolute), kind="stable")
    info = DatasetInfo(
        description=f"Representation erasure (Li et al. 2016) of {where} over {len(texts)} texts of "
        f"{adapter.model_name or type(adapter.model).__name__}; labels: {'gold' if gold is not None else 'predicted'}; "
        f"ranked by {'relative_drop' if relative else 'log_likelihood_drop'}."
    )
    return Dataset.from_dict(
        {
            "dimension": chosen[order].tolist(),
            "log_likelihood_drop": absolute[order].tolist(),
            "relative_drop": ratio[order].tolist(),
            "rank": list(range(1, len(order) + 1)),
        },
        info=info,
    )


def _corpus(data: Any, labels: Any, text_column: str | None, label_column: str) -> tuple[list[str], list | None]:
    """Texts and (optional) labels from a list of strings or a datasets.Dataset."""
    column_names = getattr(data, "column_names", None)
    if column_names is None:
        if isinstance(data, str):
            raise InvalidInputError("representation_erasure needs a corpus: pass a list of texts or a Dataset, not one string.")
        return list(data), None if labels is None else list(labels)
    if labels is None and label_column in column_names:
        labels = data[label_column]
    return list(data[text_column_of(data, text_column)]), None if labels is None else list(labels)


def _erased_module(adapter: ModelAdapter, level: str, layer: int | None) -> tuple[torch.nn.Module, str]:
    """The module whose output is erased, and a description of it."""
    if level == "embedding":
        if layer is not None:
            raise InvalidParameterError("layer applies to level='hidden' only; leave it None for level='embedding'.")
        return adapter.embeddings, "input-embedding dimensions"
    if level != "hidden":
        raise InvalidParameterError(f"level={level!r}; use 'embedding' or 'hidden'.")
    blocks = adapter.layers
    index = len(blocks) - 1 if layer is None else layer
    if isinstance(index, bool) or not isinstance(index, int) or not -len(blocks) <= index < len(blocks):
        raise InvalidParameterError(
            f"layer={layer!r} is out of range for {type(adapter.model).__name__} with {len(blocks)} layers; "
            f"pass an index in [-{len(blocks)}, {len(blocks)})."
        )
    index %= len(blocks)
    return blocks[index], f"hidden units of layer {index}"


def _check_units(units: Sequence[int] | None, width: int, where: str) -> np.ndarray:
    if units is None:
        return np.arange(width)
    chosen = np.asarray(list(units), dtype=np.int64)
    if chosen.size == 0 or chosen.min() < 0 or chosen.max() >= width or len(set(chosen.tolist())) != chosen.size:
        raise InvalidParameterError(f"units={list(units)!r} must be distinct indices in [0, {width}) ({where}).")
    return chosen


def _output_tensor(output: Any) -> torch.Tensor:
    return output[0] if isinstance(output, tuple) else output


@contextlib.contextmanager
def _hooked(module: torch.nn.Module, hook) -> Iterator[None]:
    handle = module.register_forward_hook(hook)
    try:
        yield
    finally:
        handle.remove()


def _output_width(adapter: ModelAdapter, module: torch.nn.Module, enc: Encoding) -> int:
    """Size of the last dimension of `module`'s output (one forward of one text)."""
    seen: list[int] = []
    with torch.no_grad(), adapter.evaluating(), _hooked(module, lambda m, a, out: seen.append(_output_tensor(out).shape[-1])):
        adapter.logits(adapter.collate([enc]))
    return int(seen[0])


def _erased_logits(adapter: ModelAdapter, module: torch.nn.Module, enc: Encoding, masks: np.ndarray, broadcast: bool) -> np.ndarray:
    """Logits (len(masks), num_labels) of `enc` with `module`'s output multiplied, per row, by a mask
    over its last dimension. With `broadcast`, the text runs as one row that the hook expands."""
    scale = torch.as_tensor(masks, device=adapter.device)

    def hook(_module, _args, output):
        hidden = _output_tensor(output)
        scaled = hidden * scale[:, None, :].to(hidden.dtype)
        return (scaled, *output[1:]) if isinstance(output, tuple) else scaled

    with torch.no_grad(), _hooked(module, hook):
        logits = adapter.logits(adapter.collate([enc] * (1 if broadcast else len(masks))))
    return logits.double().cpu().numpy()


def _broadcasts(adapter: ModelAdapter, module: torch.nn.Module, enc: Encoding, width: int) -> bool:
    """Whether the layers after `module` and the head carry a one-row input expanded at the hook to
    several rows correctly (encoders usually do; heads that read the batch size from `input_ids`, as
    decoder heads do, do not): checked against the one-row-per-mask result on one text."""
    masks = np.ones((2, width), dtype=np.float32)
    masks[1, 0] = 0.0
    try:
        expanded = _erased_logits(adapter, module, enc, masks, broadcast=True)
    except (RuntimeError, ValueError, IndexError):  # shape errors: this model cannot broadcast
        return False
    if expanded.shape != (2, adapter.num_labels):
        return False
    return bool(np.allclose(expanded, _erased_logits(adapter, module, enc, masks, broadcast=False), rtol=1e-4, atol=1e-5))
