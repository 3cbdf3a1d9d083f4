r"""Questions, contexts and answer spans, for extractive question-answering models.

A (question, context) pair is tokenised as the model's tokenizer joins two segments, question first
(BERT: `[CLS] question [SEP] context [SEP]`), as transformers' question-answering pipeline does for
right-padding tokenizers. A pair longer than the model accepts loses the end of its context (the
start with `truncation_side="left"`), never question tokens, with a warning; `truncation=False`
raises `InputTooLongError` instead. (The pipeline splits long contexts into overlapping windows and
answers from the best; an explanation is of one model input, so it keeps one window.)

An answer can take the positions `candidates` marks: the context tokens, and [CLS] where the
tokenizer has one (the "no answer" position of SQuAD 2 models, which the pipeline keeps in its
softmax). The model's answer is the pipeline's: with p = softmax over the candidates of the start
and of the end logits, the context span s ≤ e < s + max_answer_len with the largest p_s · p_e.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from .errors import InvalidInputError, UnknownTargetError
from .text import Encoding
from .validation import Item, check_int

#: the longest answer, in tokens, that target=None picks (the pipeline's default)
MAX_ANSWER_LEN = 15


def encode_questions(
    adapter: Any,
    items: list[Item],
    targets: Sequence[Any],
    *,
    truncation: bool = True,
    max_answer_len: int | None = None,
) -> tuple[list[Encoding], list[tuple[int, int]]]:
    """One Encoding per (question, context) and its answer's (start, end) token positions: the model's
    answer where the target is None, else the given text or character span. Each Encoding records
    its `candidates` (`head_data`) and reads the rows at (start, end, start) (`readout`)."""
    longest = check_int("max_answer_len", MAX_ANSWER_LEN if max_answer_len is None else max_answer_len)
    for i, (_, context) in enumerate(items):
        if context is None:
            raise InvalidInputError(
                f"Input {i} has no context; a question-answering model takes {{'question': ..., 'context': ...}} "
                "dicts, (question, context) pairs, or the questions with text_pair= (their contexts)."
            )
    encodings = adapter.encode(items, truncation=truncation, pair_truncation="only_second")
    cls = adapter.tokenizer.cls_token_id
    for enc in encodings:
        enc.head_data = {
            "candidates": [seg == 1 or (cls is not None and token == cls) for seg, token in zip(enc.segment_ids, enc.input_ids)]
        }
    missing = [i for i, target in enumerate(targets) if target is None]
    predicted = dict(zip(missing, best_spans(adapter, [encodings[i] for i in missing], longest)))
    spans = [predicted[i] if target is None else _given_span(encodings[i], target, i) for i, target in enumerate(targets)]
    for enc, (start, end) in zip(encodings, spans):
        enc.readout = [start, end, start]
    return encodings, spans


def best_spans(adapter: Any, encodings: Sequence[Encoding], max_answer_len: int) -> list[tuple[int, int]]:
    """The model's answer to each input, as transformers' question-answering pipeline picks it."""

    def read(output: Any, batch: Any) -> list[np.ndarray]:
        both = torch.stack([output.start_logits, output.end_logits], dim=1).double().cpu().numpy()
        return [both[row][:, batch.token_slice(row)] for row in range(len(batch))]

    return [
        _best_span(logits, enc, max_answer_len)
        for logits, enc in zip(adapter.run_encodings(encodings, read), encodings)
    ]


def _best_span(logits: np.ndarray, enc: Encoding, max_answer_len: int) -> tuple[int, int]:
    """argmax of log p_s + log p_e over context spans s ≤ e < s + max_answer_len (the first in
    row-major order on ties, as the pipeline's argmax over p_s · p_e)."""
    allowed = np.asarray(enc.head_data["candidates"])
    masked = np.where(allowed, logits, -np.inf)
    log_p = masked - np.logaddexp.reduce(masked, axis=-1, keepdims=True)
    context = np.asarray([seg == 1 for seg in enc.segment_ids])
    n = len(enc)
    band = np.triu(np.ones((n, n), dtype=bool)) & ~np.triu(np.ones((n, n), dtype=bool), max_answer_len)
    scores = np.where(band & context[:, None] & context[None, :], log_p[0][:, None] + log_p[1][None, :], -np.inf)
    start, end = np.unravel_index(int(np.argmax(scores)), scores.shape)
    return int(start), int(end)


def _given_span(enc: Encoding, target: str | tuple[int, int], index: int) -> tuple[int, int]:
    """The (start, end) token positions of an answer given as text or as context characters."""
    context = enc.text_pair or ""
    if isinstance(target, str):
        begin = context.find(target)
        if begin < 0:
            raise UnknownTargetError(
                f"target={target!r} does not occur in the context of input {index} ({context[:60]!r}...); pass the "
                "answer as it is written in the context, its (start, end) character span, or None for the model's "
                "answer."
            )
        target = (begin, begin + len(target))
    start, end = target
    if not 0 <= start < end <= len(context):
        raise UnknownTargetError(
            f"target={target!r} is not a [start, end) character span inside the context of input {index} "
            f"({len(context)} characters)."
        )
    tokens = enc.tokens_in_span(start, end, segment=1, allow_empty=True)
    if tokens.size == 0:
        raise UnknownTargetError(
            f"The answer {context[start:end]!r} of input {index} covers no token of the model input (the context was "
            "cut to fit the model); shorten the context around the answer."
        )
    return int(tokens[0]), int(tokens[-1])
