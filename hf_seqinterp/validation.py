"""The one validation layer: method parameters, run settings and inputs, checked before any work.

The Python API, the explainers, the `explain-text` pipeline and the CLI (through the argparse types
at the end) all call these functions, so a bad value gets the same error everywhere: an
`InvalidParameterError` or `InvalidInputError` that names the value and says what to pass.

Parameters: integers are real integers (`True` is not 1, `1.5` is not a batch size), floats are
finite numbers (`inf`, `nan` and strings are refused), and counts that size an allocation have an
upper bound whose message states the memory the value would need.

Inputs: a string, a sequence of strings, or the sentence-pair forms transformers' text-classification
pipeline takes: a `(text, text_pair)` 2-tuple of strings, or a dict `{"text": ..., "text_pair": ...}`;
the question-answering pipeline's `{"question": ..., "context": ...}` (the pair (question, context));
and multiple-choice inputs, `{"text": ..., "choices": [...]}` or `(text, [option, ...])`.
`normalize_inputs` turns any of them into one `(text, text_pair or options or None)` per input.

This module imports only the standard library, so the CLI can use it before loading torch.
"""

from __future__ import annotations

import argparse
import math
import numbers
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from .errors import InvalidInputError, InvalidParameterError

T = TypeVar("T")

#: upper bounds of the counts that size an allocation (each error message states the memory)
MAX_STEPS = 1_000
MAX_SAMPLES = 100_000
MAX_BATCH_SIZE = 65_536
MAX_BATCH_TOKENS = 2**22
#: words assumed for a typical text when a message estimates per-text memory
TYPICAL_WORDS = 100
PAIR_KEYS = ("text", "text_pair")
#: how a token classifier's rows are grouped into entities, as transformers' token-classification
#: pipeline's `aggregation_strategy` (see `token_rows`)
AGGREGATION_STRATEGIES: tuple[str, ...] = ("none", "simple", "first", "average", "max")
#: the dict forms of an input: the keys of its first and its second part ("choices": a list of options)
DICT_INPUTS: dict[frozenset[str], tuple[str, str | None]] = {
    frozenset({"text"}): ("text", None),
    frozenset({"text", "text_pair"}): ("text", "text_pair"),
    frozenset({"question", "context"}): ("question", "context"),
    frozenset({"text", "choices"}): ("text", "choices"),
}
#: one model input: a text, a (text, text_pair) sentence pair, a (text, [options]) multiple-choice
#: input, or one of the `DICT_INPUTS` dicts
TextInput = str | tuple[str, str] | tuple[str, Sequence[str]] | Mapping[str, Any]
#: a normalised input: the text and its second segment, its options, or None
Item = tuple[str, str | tuple[str, ...] | None]


# --------------------------------------------------------------------------- numbers
def format_bytes(n: float) -> str:
    """A byte count for people: '512 B', '7.5 GiB', '8.0 EiB'."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if abs(n) < 1024:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} EiB"


def check_int(
    name: str,
    value: Any,
    *,
    minimum: int = 1,
    maximum: int | None = None,
    bytes_each: float | None = None,
    cost: str = "",
) -> int:
    """An integer in [minimum, maximum]; bools and floats are refused. Above `maximum`, the message
    gives `value * bytes_each` as the memory the value would need, and `cost` as what it pays for."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise InvalidParameterError(
            f"{name} must be an integer >= {minimum}, got {value!r} ({type(value).__name__})."
        )
    value = int(value)
    if value < minimum:
        raise InvalidParameterError(f"{name} must be an integer >= {minimum}, got {value}.")
    if maximum is not None and value > maximum:
        need = f": it would need about {format_bytes(value * bytes_each)} of memory" if bytes_each else ""
        why = f" ({cost})" if cost else ""
        raise InvalidParameterError(
            f"{name}={value} is above the limit of {maximum}{need}{why}. Pass a value in [{minimum}, {maximum}]."
        )
    return value


def check_float(
    name: str,
    value: Any,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    open_minimum: bool = False,
    open_maximum: bool = False,
) -> float:
    """A finite real number in the given range (open at an end when `open_*`); bools, strings, inf
    and nan are refused."""
    if maximum is None and minimum is not None:
        allowed = f"{'>' if open_minimum else '>='} {minimum:g}"
    elif minimum is None and maximum is not None:
        allowed = f"{'<' if open_maximum else '<='} {maximum:g}"
    else:
        lo, hi = "(" if open_minimum else "[", ")" if open_maximum else "]"
        allowed = f"in {lo}{minimum:g}, {maximum:g}{hi}" if minimum is not None else "finite"
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(float(value)):
        raise InvalidParameterError(f"{name} must be a finite number {allowed}, got {value!r}.")
    number = float(value)
    below = minimum is not None and (number <= minimum if open_minimum else number < minimum)
    above = maximum is not None and (number >= maximum if open_maximum else number > maximum)
    if below or above:
        raise InvalidParameterError(f"{name} must be {allowed}, got {name}={value!r}.")
    return number


def check_seed(seed: Any) -> int:
    """A seed for `numpy.random.default_rng`: an integer in [0, 2**63)."""
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or not 0 <= seed < 2**63:
        raise InvalidParameterError(f"seed must be a non-negative integer, got {seed!r} (seeds go up to 2**63 - 1).")
    return int(seed)


def check_steps(n_steps: Any, quadrature: str = "gausslegendre") -> int:
    """Integration steps: Gauss-Legendre nodes come from an n × n eigenproblem (8·n² bytes), the
    Riemann rules from two arrays of n floats; every step costs a forward and backward per text."""
    value = check_int("n_steps", n_steps, minimum=1)
    each = 8.0 * value if quadrature == "gausslegendre" else 16.0
    return check_int("n_steps", value, maximum=MAX_STEPS, bytes_each=each,
                     cost="for the quadrature nodes alone, plus n_steps forward and backward passes per text")


def check_samples(name: str, value: Any, *, minimum: int = 1, bytes_each: float | None = None) -> int:
    """Sampled coalitions or permutations per text; the bound's message assumes a text of
    TYPICAL_WORDS words (one float64 per feature and sample, unless `bytes_each` says otherwise)."""
    each = bytes_each if bytes_each is not None else 8.0 * (TYPICAL_WORDS + 2)
    return check_int(name, value, minimum=minimum, maximum=MAX_SAMPLES, bytes_each=each,
                     cost=f"per text of {TYPICAL_WORDS} words, plus one forward pass per sample")


def check_token_budget(name: str, value: Any, hidden_size: int = 768) -> int:
    """Padded tokens per forward pass; each holds `hidden_size` float32 activations per layer."""
    return check_int(name, value, minimum=1, maximum=MAX_BATCH_TOKENS, bytes_each=4.0 * hidden_size,
                     cost=f"hidden states of {hidden_size} float32 per token, per layer")


def check_batch_size(value: Any, *, name: str = "batch_size") -> int | None:
    """Texts per batch, or None for the method's default."""
    if value is None:
        return None
    return check_int(name, value, minimum=1, maximum=MAX_BATCH_SIZE, bytes_each=4.0 * 512 * 768,
                     cost="hidden states of texts of 512 tokens × 768 float32, per layer")


# --------------------------------------------------------------------------- inputs
def normalize_inputs(inputs: Any) -> tuple[list[Item], bool]:
    """One `(text, text_pair or options or None)` per input, and whether `inputs` was a single item.

    Single items: a string, a `(text, text_pair)` 2-tuple of strings, a `(text, [options])` 2-tuple,
    or a dict of `DICT_INPUTS` ({"text"}, {"text", "text_pair"}, {"question", "context"}, {"text",
    "choices"}). Anything else must be a non-empty sequence of such items; a list of 2-tuples or
    dicts is a batch of pairs. Bytes, None, numbers, other dicts, empty or whitespace-only texts and
    texts with lone surrogates raise `InvalidInputError` naming the item.
    """
    if _is_single(inputs):
        return [_item(0, inputs, single=True)], True
    if inputs is None or isinstance(inputs, (bytes, bytearray, numbers.Number)):
        raise InvalidInputError(f"Expected a string or a list of strings, got {_describe(inputs)}.{_fix(inputs)}")
    try:
        items = list(inputs)
    except TypeError:
        raise InvalidInputError(
            f"Expected a string or a list of strings, got {_describe(inputs)}."
        ) from None
    if not items:
        raise InvalidInputError(
            "No input given: pass a string, a non-empty list of strings, or (text, text_pair) pairs."
        )
    return [_item(i, item, single=False) for i, item in enumerate(items)], False


def texts_only(items: list[tuple[str, str | None]], *, what: str = "This call") -> list[str]:
    """The texts of normalised inputs that must not be sentence pairs."""
    for i, (_, pair) in enumerate(items):
        if pair is not None:
            raise InvalidInputError(
                f"Input {i} is a sentence pair (text, text_pair); {what} takes single texts. Pass each text "
                "as a string (sentence pairs are read by normalize_inputs for the callers that support them)."
            )
    return [text for text, _ in items]


def validate_texts(texts: Any) -> list[str]:
    """Single texts (a string or a list of strings) checked as `normalize_inputs` checks them;
    sentence pairs are refused (for the callers that take single texts only)."""
    return texts_only(normalize_inputs(texts)[0], what="this call")


def check_text(index: int, text: Any, *, role: str = "Text") -> str:
    """One text: a non-empty string that UTF-8 can encode (no lone surrogates)."""
    if not isinstance(text, str):
        raise InvalidInputError(f"{role} {index} is {_describe(text)}, not a string.{_fix(text)}")
    if not text.strip():
        raise InvalidInputError(f"{role} {index} is empty or whitespace only; there is nothing to explain.")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as err:
        char = text[err.start]
        raise InvalidInputError(
            f"{role} {index} contains a lone surrogate (U+{ord(char):04X} at character {err.start}), which no "
            "tokenizer can encode; decode the source with errors='replace' or remove the character."
        ) from None
    return text


def _is_single(value: Any) -> bool:
    return isinstance(value, (str, Mapping)) or _is_pair_tuple(value)


def _is_pair_tuple(value: Any) -> bool:
    """A 2-tuple is a sentence pair (its items are then checked as texts); lists are batches."""
    return isinstance(value, tuple) and len(value) == 2


def _item(index: int, value: Any, *, single: bool) -> Item:
    if isinstance(value, Mapping):
        keys = list(value)
        form = DICT_INPUTS.get(frozenset(keys))
        if form is None:
            raise InvalidInputError(
                f"Input {index} is a dict with keys {keys!r}; a dict input takes the key 'text' and optionally "
                "'text_pair' (as transformers' text-classification pipeline), the keys 'question' and 'context' "
                "(question answering), or 'text' and 'choices' (multiple choice). Pass a string for a single text."
            )
        first, second = form
        return check_text(index, value[first]), _second(index, None if second is None else value[second], second)
    if _is_pair_tuple(value):  # (text, None) is a single text, as normalize_inputs returns it
        second = "choices" if isinstance(value[1], (list, tuple)) else "text_pair"
        return check_text(index, value[0]), _second(index, value[1], second)
    if not single and isinstance(value, (tuple, list)):
        raise InvalidInputError(
            f"Input {index} is a {type(value).__name__} of {len(value)} items ({_describe(value)}); a sentence "
            "pair is a (text, text_pair) tuple of two strings."
        )
    return check_text(index, value), None


def _second(index: int, value: Any, key: str | None) -> str | tuple[str, ...] | None:
    """The second part of input `index`: a text (`text_pair`, `context`) or a non-empty list of options."""
    if value is None and key != "choices":
        return None
    if key != "choices":
        return check_text(index, value, role=f"{key} of input")
    if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)) or not value:
        raise InvalidInputError(
            f"The choices of input {index} are {_describe(value)}; pass a non-empty list of option texts."
        )
    return tuple(check_text(k, option, role=f"Input {index}, option") for k, option in enumerate(value))


def _describe(value: Any) -> str:
    if value is None:
        return "None"
    shown = repr(value)
    shown = shown if len(shown) <= 60 else shown[:57] + "..."
    kind = type(value).__name__
    return f"{'an' if kind[0] in 'aeiou' else 'a'} {kind} ({shown})"


def _fix(value: Any) -> str:
    if isinstance(value, (bytes, bytearray)):
        return " Decode it first, e.g. value.decode('utf-8')."
    if value is None:
        return " Remove missing values first."
    return ""


# --------------------------------------------------------------------------- argparse types
def argparse_type(parse: Callable[[str], Any], check: Callable[[Any], T]) -> Callable[[str], T]:
    """An argparse `type=`: parse the string, then run a check of this module; its error becomes
    argparse's usage error (exit status 2, no traceback)."""

    def convert(text: str) -> T:
        try:
            value = parse(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {parse.__name__}, got {text!r}") from None
        try:
            return check(value)
        except (InvalidParameterError, InvalidInputError) as err:
            raise argparse.ArgumentTypeError(str(err)) from None

    convert.__name__ = getattr(check, "__name__", "value")
    return convert


#: --batch-size, --shard-size, --limit, --max-length, --curve-points: integers >= 1
positive_int = argparse_type(int, lambda v: check_int("the value", v, minimum=1))
batch_size_arg = argparse_type(int, lambda v: check_batch_size(v, name="the batch size"))
