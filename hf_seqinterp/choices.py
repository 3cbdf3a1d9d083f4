"""Contexts with options, for multiple-choice models.

Every option o_k of an input is paired with its context x and tokenised as a sentence pair (x, o_k);
the model scores each pair on its own. `encode_choices` scores all pairs once (unperturbed), picks
the explained option and returns its pair's Encoding, which records every option's logit for the
head to hold fixed (`heads.MultipleChoiceHead`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .checks import did_you_mean
from .errors import InvalidInputError, UnknownTargetError
from .text import Encoding
from .validation import Item


def encode_choices(
    adapter: Any, items: list[Item], targets: Sequence[int | str | None], *, truncation: bool = True
) -> tuple[list[Encoding], list[int]]:
    """The (context, option) Encoding of each input's explained option, and the option's index."""
    pairs, owners = [], []
    for i, (context, options) in enumerate(items):
        if not isinstance(options, tuple):
            raise InvalidInputError(
                f"Input {i} has no options; a multiple-choice model takes {{'text': context, 'choices': [...]}} dicts "
                "or (context, [option, ...]) pairs."
            )
        pairs += [(context, option) for option in options]
        owners += [i] * len(options)
    encodings = adapter.encode(pairs, truncation=truncation)
    logits = adapter.run_encodings(encodings, lambda output, batch: output.logits[:, 0].double().cpu().tolist())
    chosen_encodings, chosen = [], []
    for i, ((_, options), target) in enumerate(zip(items, targets)):
        own = [k for k, owner in enumerate(owners) if owner == i]
        values = [logits[k] for k in own]
        choice = _choice(target, options, values, i)
        enc = encodings[own[choice]]
        enc.head_data = {"choices": list(options), "logits": values, "choice": choice}
        chosen_encodings.append(enc)
        chosen.append(choice)
    return chosen_encodings, chosen


def _choice(target: int | str | None, options: tuple[str, ...], logits: list[float], index: int) -> int:
    """The explained option: the model's choice (None), an index, or an option's text."""
    if target is None:
        return max(range(len(logits)), key=logits.__getitem__)
    if isinstance(target, str):
        if target in options:
            return options.index(target)
        folded = [k for k, option in enumerate(options) if option.casefold() == target.casefold()]
        if len(folded) == 1:
            return folded[0]
        if target.isdigit():
            return _choice(int(target), options, logits, index)
        raise UnknownTargetError(
            f"target={target!r} is not an option of input {index}.{did_you_mean(target, list(options))} "
            f"Options: {list(options)}; pass one of them or its index."
        )
    if not 0 <= int(target) < len(options):
        raise UnknownTargetError(
            f"target={target!r} is out of range for input {index}, which has {len(options)} options; pass an index "
            f"in [0, {len(options)}) or an option's text."
        )
    return int(target)
