"""Small helpers shared across the package: length-grouped batching, progress bars and a method's
constructor parameters."""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Iterator, Sequence

from tqdm.auto import tqdm

from .errors import InvalidParameterError


def length_grouped_batches(
    lengths: Sequence[int], batch_size: int, max_tokens: int | None = None, *, equal_lengths: bool = False
) -> list[list[int]]:
    """Indices grouped into batches of similar length, longest first.

    Each batch holds at most `batch_size` items and, when `max_tokens` is given, at most `max_tokens`
    padded tokens (items × longest item); an item longer than `max_tokens` gets a batch of its own.
    `equal_lengths` puts only items of the same length together (models whose outputs padding changes).
    Sorting by length keeps padding small: on SST-2, padding random batches costs 2-3x.
    """
    if batch_size < 1:
        raise InvalidParameterError(f"batch_size must be >= 1, got {batch_size}.")
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    batches: list[list[int]] = []
    current: list[int] = []
    for i in order:
        width = lengths[current[0]] if current else lengths[i]
        full = len(current) >= batch_size or (max_tokens is not None and (len(current) + 1) * width > max_tokens)
        full = full or (equal_lengths and lengths[i] != width)
        if current and full:
            batches.append(current)
            current = []
        current.append(i)
    if current:
        batches.append(current)
    return batches


def chunks(n: int, size: int) -> Iterator[slice]:
    """Consecutive slices of at most `size` covering range(n)."""
    for start in range(0, n, max(1, size)):
        yield slice(start, min(n, start + size))


@contextlib.contextmanager
def progress_bar(
    total: int, desc: str, *, enabled: bool = True, unit: str = "text", initial: int = 0
) -> Iterator[tqdm]:
    """A tqdm bar that honours transformers' global progress-bar switch (`initial`: work already done)."""
    from transformers.utils import logging as hf_logging

    bar = tqdm(
        total=total, desc=desc, unit=unit, initial=initial,
        disable=not (enabled and hf_logging.is_progress_bar_enabled()),
    )
    try:
        yield bar
    finally:
        bar.close()


@contextlib.contextmanager
def quiet_datasets() -> Iterator[None]:
    """Hide `datasets`' own progress bars (Parquet conversion, split generation) inside a call that
    shows its own progress; the caller's setting is restored."""
    import datasets

    was_disabled = datasets.utils.are_progress_bars_disabled()
    datasets.utils.disable_progress_bars()
    try:
        yield
    finally:
        if not was_disabled:
            datasets.utils.enable_progress_bars()


def keyword_defaults(cls: type) -> dict[str, str]:
    """The keyword-only parameters of `cls`'s constructors along its class hierarchy, subclass first:
    name -> repr of the default ('' when it has none)."""
    defaults: dict[str, str] = {}
    for klass in cls.__mro__:
        if klass is object or "__init__" not in vars(klass):
            continue
        for p in inspect.signature(klass.__init__).parameters.values():
            if p.kind == p.KEYWORD_ONLY and p.name not in defaults:
                defaults[p.name] = "" if p.default is p.empty else repr(p.default)
    return defaults
