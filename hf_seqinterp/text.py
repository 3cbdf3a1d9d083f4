"""`TokenizedText`: one tokenised input (a text, or a text pair) and everything that maps its tokens
back to characters and words. `Encoding` (what the adapter hands explainers) and `Explanation`
(what they return) are both TokenizedTexts, so offsets, span → token mapping and word grouping are
written once, here.

A pair `(text, text_pair)` is tokenised as the model's tokenizer joins two segments (BERT:
`[CLS] text [SEP] text_pair [SEP]`, RoBERTa/BART: `<s> text </s></s> text_pair </s>`). Each token's
offsets index into its own segment's string, `segment_ids[t]` says which (0 = `text`, 1 =
`text_pair`, `None` at special tokens), and word ids restart in each segment, so a word is the pair
(segment, word id).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple

import numpy as np

from .errors import InvalidInputError, InvalidParameterError

#: a word that ends a sentence / a phrase (closing quotes and brackets may follow the mark)
SENTENCE_END = re.compile(r"[.!?…][\"'”’)\]]*$")
PHRASE_END = re.compile(r"[.!?…,;:][\"'”’)\]]*$")
CLOSING = re.compile(r"[\"'”’)\]]+")


class WordGroup(NamedTuple):
    """The tokens of one word: its segment, its word id within the segment and its token positions."""

    segment: int
    word_id: int
    positions: tuple[int, ...]


class TokenRow(NamedTuple):
    """An explained row of a token classifier (a word, a token or an entity; see `token_rows`): it
    reads the outputs at token `positions`, grouped in parts (its words or tokens), each with its
    class in `classes` (grouped alike); `label` names it, and [start, end) are its characters."""

    label: str
    start: int
    end: int
    positions: tuple[tuple[int, ...], ...]
    classes: tuple[tuple[int, ...], ...]


@dataclass
class TokenizedText:
    """Tokens of one input with their ids, character offsets, word ids and special-token flags.

    `text_pair`, `segment_ids` and `token_type_ids` are set for sentence pairs only (`token_type_ids`
    when the tokenizer produces them: they are part of the model input).
    """

    text: str
    tokens: list[str]
    input_ids: list[int]
    offsets: list[tuple[int, int]]
    word_ids: list[int | None]
    special_tokens_mask: list[bool]
    text_pair: str | None = field(default=None, kw_only=True)
    segment_ids: list[int | None] | None = field(default=None, kw_only=True)
    token_type_ids: list[int] | None = field(default=None, kw_only=True)

    def __post_init__(self) -> None:
        self.offsets = [(int(s), int(e)) for s, e in self.offsets]
        self.special_tokens_mask = [bool(m) for m in self.special_tokens_mask]
        if self.text_pair is not None and self.segment_ids is None:
            raise InvalidInputError("A text pair needs `segment_ids` (which segment each token's offsets index).")
        lengths = {
            name: len(value)
            for name, value in self.token_fields().items()
            if value is not None
        }
        bad = {k: v for k, v in lengths.items() if v != len(self.tokens)}
        if bad:
            raise InvalidInputError(
                f"{type(self).__name__} has {len(self.tokens)} tokens but these fields have other lengths: {bad}."
            )

    def token_fields(self) -> dict[str, Any]:
        """The per-token fields (one value per token), by name."""
        return {
            "input_ids": self.input_ids,
            "offsets": self.offsets,
            "word_ids": self.word_ids,
            "special_tokens_mask": self.special_tokens_mask,
            "segment_ids": self.segment_ids,
            "token_type_ids": self.token_type_ids,
        }

    def __len__(self) -> int:
        return len(self.tokens)

    # ----------------------------------------------------------------- segments
    @property
    def is_pair(self) -> bool:
        return self.text_pair is not None

    def segment_of(self, position: int) -> int:
        """The segment whose string token `position`'s offsets index (0 for single texts)."""
        if self.segment_ids is None:
            return 0
        return self.segment_ids[position] or 0

    def segment_text(self, segment: int) -> str:
        """`text` (segment 0) or `text_pair` (segment 1)."""
        if segment == 0:
            return self.text
        if segment == 1 and self.text_pair is not None:
            return self.text_pair
        raise InvalidParameterError(f"segment={segment!r}; this input has segment 0 only (no text_pair).")

    def covered_text(self, position: int) -> str:
        """The characters token `position` covers in its segment ('' for special tokens)."""
        start, end = self.offsets[position]
        return self.segment_text(self.segment_of(position))[start:end]

    # ----------------------------------------------------------------- words and spans
    def word_groups(self) -> list[WordGroup]:
        """One group per word, in token order: the non-special tokens sharing (segment, word id).
        Tokens without a word id form a word of their own."""
        groups: dict[tuple[int, int], list[int]] = {}
        for pos, (wid, special) in enumerate(zip(self.word_ids, self.special_tokens_mask)):
            if special:
                continue
            key = (self.segment_of(pos), wid if wid is not None else -1 - pos)
            groups.setdefault(key, []).append(pos)
        return [WordGroup(seg, wid, tuple(pos)) for (seg, wid), pos in groups.items()]

    def unit_groups(self, unit: Literal["phrase", "sentence"]) -> list[tuple[int, ...]]:
        """Token positions of each sentence (or phrase) in token order: runs of consecutive words that
        end after a word ending in . ! ? … (phrases also , ; :) and the closing quotes or brackets
        right after it, at a line break between words, and at the end of a segment."""
        end = {"sentence": SENTENCE_END, "phrase": PHRASE_END}[unit]
        units: list[list[int]] = []
        last: tuple[int, int] | None = None  # the previous word's segment and last character
        ended = False  # whether the previous word ended a unit
        for group in self.word_groups():
            start, stop = self.word_span(group)
            source = self.segment_text(group.segment)
            word = source[start:stop]
            closes = last is not None and start == last[1] and CLOSING.fullmatch(word) is not None
            if last is None or last[0] != group.segment or "\n" in source[last[1] : start] or (ended and not closes):
                units.append([])
            units[-1].extend(group.positions)
            ended = end.search(word) is not None or (ended and closes)
            last = (group.segment, stop)
        return [tuple(positions) for positions in units]

    def word_span(self, group: WordGroup) -> tuple[int, int]:
        """[start, end) characters of a word in its segment, surrounding whitespace excluded."""
        source = self.segment_text(group.segment)
        start = min(self.offsets[i][0] for i in group.positions)
        end = max(self.offsets[i][1] for i in group.positions)
        raw = source[start:end]
        start += len(raw) - len(raw.lstrip())
        return start, start + len(raw.strip())

    def tokens_in_span(self, start: int, end: int, *, segment: int = 0, allow_empty: bool = False) -> np.ndarray:
        """Positions of the non-special tokens of `segment` whose characters overlap [start, end).

        Raises `InvalidParameterError` unless 0 ≤ start < end ≤ len(segment's text), and when the
        span covers no token (e.g. it was cut off by truncation) unless `allow_empty`."""
        source = self.segment_text(segment)
        if (
            not all(isinstance(x, (int, np.integer)) and not isinstance(x, bool) for x in (start, end))
            or not 0 <= start < end <= len(source)
        ):
            raise InvalidParameterError(
                f"span ({start!r}, {end!r}) is not a non-empty range of [start, end) character offsets inside the text of "
                f"{len(source)} characters ({source[:40]!r}...)."
            )
        offsets = np.asarray(self.offsets, dtype=np.int64).reshape(-1, 2)
        usable = ~np.asarray(self.special_tokens_mask, dtype=bool) & (offsets[:, 1] > offsets[:, 0])
        if self.segment_ids is not None:
            usable &= np.asarray([s == segment for s in self.segment_ids])
        found = np.flatnonzero(usable & (offsets[:, 0] < end) & (offsets[:, 1] > start))
        if found.size == 0 and not allow_empty:
            raise InvalidParameterError(
                f"span ({start}, {end}) = {source[start:end]!r} covers no token of the (possibly truncated) input."
            )
        return found


@dataclass
class Encoding(TokenizedText):
    """One tokenised input as the adapter hands it to explainers (unpadded), with the warnings
    tokenisation raised (e.g. truncation)."""

    warnings: list[str] = field(default_factory=list, kw_only=True)
    #: heads with a row axis (see `heads`): the token position whose output each explained row reads
    readout: list[int] | None = field(default=None, kw_only=True)
    #: ... and the class each row explains (e.g. the continuation token a causal LM predicts there)
    row_targets: list[int] | None = field(default=None, kw_only=True)
    #: what the head recorded for this input when preparing it and reads on every forward (question
    #: answering: "candidates", where an answer can be; multiple choice: "choices", "logits", "choice")
    head_data: dict[str, Any] = field(default_factory=dict, kw_only=True)
    #: a token classifier's rows, each reading the outputs at one or more tokens (`TokenRow`)
    token_rows: list[TokenRow] | None = field(default=None, kw_only=True)

    @property
    def n_rows(self) -> int | None:
        """Explained rows of a head with a row axis (None: one target, no axis)."""
        if self.readout is not None:
            return len(self.readout)
        return None if self.token_rows is None else len(self.token_rows)


#: which tokens of a longer input each `truncation_side` keeps
KEPT_TOKENS: dict[str, str] = {"right": "first", "left": "last"}


def tokenize(
    tokenizer: Any,
    items: list[tuple[str, str | None]],
    *,
    max_length: int,
    truncation_side: str,
    truncation: bool = True,
    truncating: Callable[[], Any] | None = None,
    pair_truncation: Literal["longest_first", "only_second"] = "longest_first",
    add_special_tokens: bool = True,
) -> list[Encoding]:
    """Tokenise texts and text pairs with offsets, word ids, segments and special-token flags (no
    padding). With `add_special_tokens=False` (text that holds its special tokens already, such as a
    rendered chat template) none are added, and the special tokens found in the text are flagged.
    Inputs longer than `max_length` are cut to the `truncation_side`'s end (pairs: the longer segment
    first, or with `pair_truncation="only_second"` the second segment alone) with a warning on the
    Encoding, or rejected with `InputTooLongError` when `truncation=False`. The caller's tokenizer is
    never modified: when it truncates on another side, `truncating()` supplies a copy that truncates
    on `truncation_side` (see `side_copy`)."""
    from .errors import InputTooLongError

    for i, (_, pair) in enumerate(items):
        if pair is not None and not isinstance(pair, str):
            raise InvalidInputError(
                f"Input {i} has options (a multiple-choice input); only a *ForMultipleChoice model takes them. "
                "Pass a text or a (text, text_pair) pair."
            )
    singles = [i for i, (_, pair) in enumerate(items) if pair is None]
    pairs = [i for i, (_, pair) in enumerate(items) if pair is not None]
    out: list[Encoding | None] = [None] * len(items)
    kept = KEPT_TOKENS[truncation_side]
    for rows in (singles, pairs):
        if not rows:
            continue
        call = {"text": [items[i][0] for i in rows]}
        if rows is pairs:
            call["text_pair"] = [items[i][1] for i in rows]
        full = _call(tokenizer, call, None, add_special_tokens)
        too_long = [j for j, ids in enumerate(full["input_ids"]) if len(ids) > max_length]
        if too_long and not truncation:
            j = too_long[0]
            raise InputTooLongError(
                f"Input {rows[j]} has {len(full['input_ids'][j])} tokens but at most {max_length} are accepted. "
                f"Shorten it, or leave truncation on (the default) to explain the {kept} {max_length} tokens."
            )
        cut = None
        if too_long:
            cutter = tokenizer
            if getattr(tokenizer, "truncation_side", "right") != truncation_side:
                cutter = truncating() if truncating is not None else side_copy(tokenizer, truncation_side)
            strategy = pair_truncation if rows is pairs else "longest_first"
            try:
                cut = _call(
                    cutter, {k: [v[j] for j in too_long] for k, v in call.items()}, max_length, add_special_tokens, strategy
                )
            except Exception as err:  # the tokenizers library refuses: the first segment alone is too long
                raise InputTooLongError(
                    f"Input {rows[too_long[0]]}: its first segment alone does not fit in {max_length} tokens "
                    f"({str(err).strip()}); shorten it."
                ) from None
        only = " (the second segment only)" if rows is pairs and pair_truncation == "only_second" else ""
        for j, i in enumerate(rows):
            source, row, warnings = full, j, []
            if cut is not None and j in too_long:
                source, row = cut, too_long.index(j)
                warnings.append(f"truncated from {len(full['input_ids'][j])} to the {kept} {max_length} tokens{only}")
            out[i] = _encoding(tokenizer, items[i], source, row, warnings, i)
    return out  # type: ignore[return-value]


def _call(
    tokenizer: Any, call: dict[str, list[str]], max_length: int | None, add_special_tokens: bool,
    strategy: str = "longest_first",
) -> Any:
    out = tokenizer(
        **call,
        add_special_tokens=add_special_tokens,
        return_offsets_mapping=True,
        return_special_tokens_mask=True,
        truncation=strategy if max_length is not None else False,
        max_length=max_length,
        verbose=False,
    )
    if not add_special_tokens:  # the tokenizer flags only the special tokens it adds
        special = set(tokenizer.all_special_ids)
        out["special_tokens_mask"] = [[int(t in special) for t in ids] for ids in out["input_ids"]]
    return out


def side_copy(tokenizer: Any, side: str) -> Any:
    """A copy of `tokenizer` that truncates on `side` (the original is left as it is)."""
    twin = copy.deepcopy(tokenizer)
    twin.truncation_side = side
    return twin


def _encoding(
    tokenizer: Any, item: tuple[str, str | None], source: Any, row: int, warnings: list[str], index: int
) -> Encoding:
    text, text_pair = item
    ids = list(source["input_ids"][row])
    specials = [bool(s) for s in source["special_tokens_mask"][row]]
    if all(specials):
        raise InvalidInputError(f"Input {index} ({text!r}) produced no tokens besides special tokens.")
    segments = None
    token_types = None
    if text_pair is not None:
        segments = [None if s else seq for seq, s in zip(source.sequence_ids(row), specials)]
        if "token_type_ids" in source:
            token_types = [int(t) for t in source["token_type_ids"][row]]
    return Encoding(
        text=text,
        tokens=tokenizer.convert_ids_to_tokens(ids),
        input_ids=ids,
        offsets=[tuple(o) for o in source["offset_mapping"][row]],
        word_ids=[None if s else w for w, s in zip(source.word_ids(row), specials)],
        special_tokens_mask=specials,
        text_pair=text_pair,
        segment_ids=segments,
        token_type_ids=token_types,
        warnings=warnings,
    )
