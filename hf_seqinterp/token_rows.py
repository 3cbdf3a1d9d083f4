r"""Token classification (NER): which outputs each explained row of a token classifier reads.

A token classifier gives logits z_t ∈ R^C at every token t. An explained row is a word, a token or
an entity, made of parts W_1..W_n (its words, or its tokens), each a set of (token, class) pairs;
its score is the mean over the parts of the mean score of each part's tokens,

    f_k = (1/n) Σ_i (1/|W_i|) Σ_{(t, c) ∈ W_i} s(z_t)[c],   s = identity (score="logit"), log_softmax
                                                              ("log_prob") or softmax ("prob"),

so one forward scores every row, and completeness (IG) and efficiency (Shapley) hold per row, as
f_k is linear in the tokens' scores. With score="prob", f_k is the score transformers'
token-classification pipeline reports for the row.

Words are formed as the pipeline forms them: a token continues the word before it when it is a
sub-word piece (tokenizers with a continuing-sub-word prefix such as WordPiece's `##`: the token
string is longer than the characters it covers), else when no space precedes it; special tokens
belong to no word. Rows follow `aggregation_strategy` as the pipeline's does:

| strategy       | rows                                                      | parts: the tokens read, with class              |
|----------------|-----------------------------------------------------------|-------------------------------------------------|
| None (default) | every word                                                | its first token, with its predicted label       |
| "none"         | every token                                               | the token, with its predicted label             |
| "simple"       | entities: adjacent tokens of one entity type (B-/I-)      | each token, with its predicted label            |
| "first"        | entities of words labelled by their first token           | each word's first token, with its label         |
| "max"          | entities of words labelled by their most confident token  | that token of each word, with its label         |
| "average"      | entities of words labelled by their mean probabilities    | each word's tokens, with the word's label       |

and rows labelled "O" are left out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from .concurrency import model_lock
from .errors import InvalidInputError, InvalidParameterError, UnknownTargetError
from .text import Encoding, TokenRow
from .utils import length_grouped_batches
from .validation import AGGREGATION_STRATEGIES

#: labels of no entity, left out of predicted rows (the pipeline's default `ignore_labels`)
OUTSIDE_LABELS: tuple[str, ...] = ("O",)


def entity_type(label: str) -> str:
    """The entity a label names: "B-PER" and "I-PER" -> "PER" (the pipeline's `entity_group`)."""
    return label.split("-", 1)[-1]


def _bio(label: str) -> tuple[str, str]:
    """("B" or "I", tag) as the pipeline reads a label; a label without B-/I- continues ("I")."""
    return (label[0], label[2:]) if label.startswith(("B-", "I-")) else ("I", label)


def check_strategy(strategy: str | None) -> str | None:
    if strategy is not None and strategy not in AGGREGATION_STRATEGIES:
        raise InvalidParameterError(
            f"aggregation_strategy={strategy!r} is not one of {', '.join(AGGREGATION_STRATEGIES)} "
            "(or None: one row per word)."
        )
    return strategy


def pipeline_words(tokenizer: Any, enc: Encoding) -> list[tuple[int, ...]]:
    """Token positions of each word as transformers' token-classification pipeline groups them."""
    model = getattr(getattr(tokenizer, "_tokenizer", None), "model", None)
    prefixed = bool(getattr(model, "continuing_subword_prefix", None))
    words: list[list[int]] = []
    for t, special in enumerate(enc.special_tokens_mask):
        if special:
            continue
        start, end = enc.offsets[t]
        if prefixed:
            continues = len(enc.tokens[t]) != end - start
        else:
            continues = start > 0 and " " not in enc.text[start - 1 : start + 1]
        if enc.input_ids[t] == tokenizer.unk_token_id:
            continues = False
        if words and continues:
            words[-1].append(t)
        else:
            words.append([t])
    return [tuple(w) for w in words]


def _unit(enc: Encoding, positions: Sequence[int], classes: Sequence[int], label: str, tokens: Sequence[int]) -> TokenRow:
    """A row of one part reading `positions` with `classes`, spanning the characters from `tokens[0]`
    to `tokens[-1]`."""
    start, end = enc.offsets[tokens[0]][0], enc.offsets[tokens[-1]][1]
    return TokenRow(label, start, end, (tuple(map(int, positions)),), (tuple(map(int, classes)),))


def predicted_rows(
    tokenizer: Any, enc: Encoding, probs: np.ndarray, labels: list[str], strategy: str | None
) -> list[TokenRow]:
    """Every row of `strategy` (see the module docstring) with the model's predictions `probs`
    (L, C), the "O" rows included."""
    predicted = probs.argmax(-1)
    if strategy in ("none", "simple"):
        units = [
            _unit(enc, [t], [predicted[t]], labels[predicted[t]], [t])
            for t, special in enumerate(enc.special_tokens_mask) if not special
        ]
    else:
        units = []
        for word in pipeline_words(tokenizer, enc):
            if strategy == "average":
                c = int(probs[list(word)].mean(0).argmax())
                units.append(_unit(enc, word, [c] * len(word), labels[c], word))
                continue
            t = max(word, key=lambda p: probs[p].max()) if strategy == "max" else word[0]
            units.append(_unit(enc, [t], [predicted[t]], labels[predicted[t]], word))
    if strategy in (None, "none"):
        return units
    entities: list[list[TokenRow]] = []
    for unit in units:  # the pipeline's group_entities: same tag, and the later one not a B-
        bi, tag = _bio(unit.label)
        if entities and tag == _bio(entities[-1][-1].label)[1] and bi != "B":
            entities[-1].append(unit)
        else:
            entities.append([unit])
    return [
        TokenRow(
            entity_type(group[0].label), group[0].start, group[-1].end,
            tuple(part for u in group for part in u.positions), tuple(part for u in group for part in u.classes),
        )
        for group in entities
    ]


def check_label(label: Any, labels: list[str]) -> int | str:
    """A class id, a label name, or an entity type ("PER" for B-PER/I-PER labels), validated."""
    if isinstance(label, (bool, float)) or not isinstance(label, (int, np.integer, str)):
        raise UnknownTargetError(f"label {label!r} must be a class id (int) or a label name (str); labels: {labels}.")
    if isinstance(label, str):
        types = sorted({entity_type(x) for x in labels} - set(labels))
        for known in (labels, types):
            if label in known:
                return label
            folded = [x for x in known if x.lower() == label.lower()]
            if len(folded) == 1:
                return folded[0]
        from .checks import did_you_mean

        raise UnknownTargetError(
            f"{label!r} is neither a label nor an entity type of this model.{did_you_mean(label, labels + types)} "
            f"Labels: {labels}; entity types: {types}."
        )
    if not 0 <= int(label) < len(labels):
        raise UnknownTargetError(f"class id {label!r} is out of range; pass one in [0, {len(labels)}) or a name from {labels}.")
    return int(label)


def check_target(target: Any, labels: list[str]) -> Any:
    """One input's target: None, a label name or entity type, a word index (an int, or a string of
    digits as the command line gives it), or a dict {word index or (start, end) character span:
    label, class id or None}."""
    if target is None:
        return None
    if isinstance(target, str):
        return _word_index(int(target)) if target.isdigit() and target not in labels else check_label(target, labels)
    if isinstance(target, (int, np.integer)) and not isinstance(target, bool):
        return _word_index(target)
    if isinstance(target, Mapping) and target:
        return {_place(place): None if label is None else check_label(label, labels) for place, label in target.items()}
    raise UnknownTargetError(
        f"target={target!r}: a token classifier's target is None (every word not predicted as "
        f"{'/'.join(OUTSIDE_LABELS)}), a label name or entity type, a word index (int), or a non-empty dict "
        "{word index or (start, end) character span: label or None}; give a list for one per input."
    )


def _word_index(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise UnknownTargetError(f"word index {value!r} must be an integer >= 0.")
    return int(value)


def _place(place: Any) -> int | tuple[int, int]:
    """A dict key: a word index, or a (start, end) character span."""
    if isinstance(place, (tuple, list)) and len(place) == 2:
        if all(isinstance(x, (int, np.integer)) and not isinstance(x, bool) for x in place) and 0 <= place[0] < place[1]:
            return int(place[0]), int(place[1])
        raise UnknownTargetError(f"span {tuple(place)!r} must be (start, end) character offsets with 0 <= start < end.")
    return _word_index(place)


def rows_for_target(
    tokenizer: Any, enc: Encoding, probs: np.ndarray, labels: list[str], target: Any, strategy: str | None, index: int
) -> list[TokenRow]:
    """The rows `target` (validated by `check_target`) asks for on one input."""
    if target is None or isinstance(target, str):
        rows = predicted_rows(tokenizer, enc, probs, labels, strategy)
        wanted = [r for r in rows if (r.label not in OUTSIDE_LABELS if target is None else target in (r.label, entity_type(r.label)))]
        if not wanted:
            what = f"predicted as {target!r}" if target else f"predicted as an entity (all are {'/'.join(OUTSIDE_LABELS)})"
            raise UnknownTargetError(
                f"Input {index} ({enc.text[:40]!r}) has no {'word' if strategy is None else 'row'} {what}; "
                "name the words to explain: target={word index or (start, end): label or None}."
            )
        return wanted
    if strategy is not None:
        raise InvalidParameterError(
            f"aggregation_strategy={strategy!r} groups the model's predicted entities; it does not apply to given "
            f"words or spans (target={target!r}). Leave it None, or pass target=None or a label name."
        )
    places = {target: None} if isinstance(target, int) else target
    words = pipeline_words(tokenizer, enc)
    rows = []
    for place, label in places.items():
        covered = _covered_words(enc, words, place, index)
        firsts = [w[0] for w in covered]
        classes = _classes(label, [int(probs[t].argmax()) for t in firsts], labels)
        name = label if isinstance(label, str) else labels[classes[0]]
        start, end = enc.offsets[covered[0][0]][0], enc.offsets[covered[-1][-1]][1]
        rows.append(TokenRow(name, start, end, tuple((t,) for t in firsts), tuple((c,) for c in classes)))
    return rows


def _covered_words(
    enc: Encoding, words: list[tuple[int, ...]], place: int | tuple[int, int], index: int
) -> list[tuple[int, ...]]:
    if isinstance(place, int):
        if place >= len(words):
            raise UnknownTargetError(
                f"word index {place} is out of range: input {index} ({enc.text[:40]!r}) has {len(words)} words "
                "(as the token-classification pipeline splits it, after truncation)."
            )
        return [words[place]]
    tokens = set(enc.tokens_in_span(*place).tolist())
    covered = [w for w in words if tokens & set(w)]
    if not covered:
        raise UnknownTargetError(f"span {place} of input {index} covers no token.")
    return covered


def _classes(label: int | str | None, predicted: list[int], labels: list[str]) -> list[int]:
    """Class of each word of a row: the predicted ones (None), one class for all (a label), or for an
    entity type the B- class on the first word and the I- class on the others (IOB2), where the
    model has them (else its one label of that type)."""
    if label is None:
        return predicted
    if isinstance(label, int):
        return [label] * len(predicted)
    if label in labels:
        return [labels.index(label)] * len(predicted)
    of_type = [i for i, x in enumerate(labels) if entity_type(x) == label]
    begin = next((i for i in of_type if labels[i].startswith("B-")), of_type[0])
    inside = next((i for i in of_type if labels[i].startswith("I-")), begin)
    return [begin] + [inside] * (len(predicted) - 1)


def predicted_probabilities(adapter: Any, encodings: Sequence[Encoding], batch_size: int = 32) -> list[np.ndarray]:
    """Softmax of the model's logits at every token of each input, (L, C) each, from batched forwards
    (length-sorted, without gradients, dropout off)."""
    out: list[np.ndarray | None] = [None] * len(encodings)
    groups = length_grouped_batches([len(e) for e in encodings], batch_size, equal_lengths=adapter.padding_sensitive)
    with model_lock(adapter.model), adapter.evaluating(), torch.no_grad():
        for group in groups:
            batch = adapter.collate([encodings[i] for i in group])
            probs = torch.softmax(adapter.forward(batch).logits.double(), dim=-1).cpu().numpy()
            for row, i in enumerate(group):
                out[i] = probs[row, batch.token_slice(row)]
    return out  # type: ignore[return-value]


def encode_token_rows(
    adapter: Any,
    items: list[tuple[str, str | None]],
    targets: Sequence[Any],
    strategy: str | None,
    *,
    truncation: bool = True,
) -> list[Encoding]:
    """Tokenise the texts and attach the rows each target asks for (`Encoding.token_rows`); one
    forward per text finds the predicted labels the rows read."""
    if any(pair is not None for _, pair in items):
        raise InvalidInputError(
            f"{adapter.head.model_class} labels the tokens of one text; sentence pairs do not apply. "
            "Pass plain strings, as to the token-classification pipeline."
        )
    strategy = check_strategy(strategy)
    encodings = adapter.encode([text for text, _ in items], truncation=truncation)
    probabilities = predicted_probabilities(adapter, encodings)
    labels = adapter.labels
    for i, (enc, probs, target) in enumerate(zip(encodings, probabilities, targets)):
        enc.token_rows = rows_for_target(adapter.tokenizer, enc, probs, labels, target, strategy, i)
    return encodings
