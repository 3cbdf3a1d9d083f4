"""Inputs and their outputs as one tokenised sequence: a causal LM's prompt and continuation, or an
encoder–decoder's source and target.

A continuation is forced (the target text, tokenised on its own without special tokens, as Captum's
`LLMAttribution` does) or generated (`model.generate`, greedy by default). The Encoding holds the
prompt as segment 0 (`text`) and the continuation as segment 1 (`text_pair`), so word views and
HTML show the two apart; row k reads position P + k − 1 (`readout`) and explains continuation token
y_k (`row_targets`).

Tokenising prompt and continuation separately is not always the tokenisation of the joined string
(BPE merges across the boundary); the explanation is of exactly the ids recorded, which for a
generated continuation are the ids the model produced.

An encoder–decoder's Encoding (`encode_targets`) is its source as the encoder reads it (segment 0,
truncated like a classifier's input), the decoder start token d_0 (special) and the target
(segment 1): forced targets are tokenised as the tokenizer tokenises `text_target` (the labels the
model was trained on, special tokens included), generated ones are what `generate` wrote after d_0.
Row k reads d_0's position + k and explains target token k.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from .concurrency import model_lock
from .errors import InputTooLongError, InvalidParameterError, UnsupportedModelError
from .text import Encoding, tokenize

#: `generate` arguments used unless the call gives others: greedy decoding of up to 20 tokens
DEFAULT_GENERATION: dict[str, Any] = {"max_new_tokens": 20, "do_sample": False}


def encode_continuations(
    adapter: Any,
    prompts: Sequence[str],
    continuations: Sequence[str | None],
    *,
    truncation: bool = True,
    generation: dict[str, Any] | None = None,
    chat_template: bool | str = False,
) -> list[Encoding]:
    """One Encoding per prompt: the prompt's tokens followed by its continuation's (forced where
    given, generated where None). A prompt that leaves too little room for its continuation loses
    its first tokens (special tokens such as BOS stay), with a warning, unless `truncation=False`.
    With `chat_template`, each prompt is first rendered as a chat (`render_chat`)."""
    tokenizer = adapter.tokenizer
    if chat_template:
        prompts = [render_chat(tokenizer, p, chat_template) for p in prompts]
    prompt_encodings = tokenize(
        tokenizer,
        [(p, None) for p in prompts],
        max_length=10**9,
        truncation_side="left",
        truncation=False,
        add_special_tokens=not chat_template,
    )
    pieces: list[Any] = [None] * len(prompts)
    for i, text in enumerate(continuations):
        if text is not None:
            pieces[i] = _forced_piece(tokenizer, text)
    missing = [i for i, text in enumerate(continuations) if text is None]
    if missing:
        generated = generate(adapter, [prompt_encodings[i] for i in missing], generation)
        for i, ids in zip(missing, generated):
            pieces[i] = _generated_piece(tokenizer, ids)
    return [
        _join(tokenizer, prompt, piece, adapter.max_length, truncation, i)
        for i, (prompt, piece) in enumerate(zip(prompt_encodings, pieces))
    ]


def generate(adapter: Any, prompts: Sequence[Encoding], generation: dict[str, Any] | None) -> list[list[int]]:
    """Ids of each prompt's continuation from `model.generate`, cut after the first end-of-sequence
    token. A decoder's prompts are padded on the left; an encoder–decoder's sources on the right (its
    encoder counts positions from the first token), and its ids start with the decoder start token
    it was fed. The model's mode is restored afterwards."""
    kwargs = {**DEFAULT_GENERATION, **(generation or {})}
    if "input_ids" in kwargs or "attention_mask" in kwargs:
        raise InvalidParameterError("generation= takes generate() options; the prompt ids come from the inputs.")
    encoder_decoder = bool(getattr(adapter.config, "is_encoder_decoder", False))
    width = max(len(p) for p in prompts)
    ids = torch.full((len(prompts), width), adapter.pad_id, dtype=torch.long)
    mask = torch.zeros((len(prompts), width), dtype=torch.long)
    for row, prompt in enumerate(prompts):
        start = 0 if encoder_decoder else width - len(prompt)
        ids[row, start : start + len(prompt)] = torch.tensor(prompt.input_ids)
        mask[row, start : start + len(prompt)] = 1
    kwargs.setdefault("pad_token_id", adapter.pad_id)
    with model_lock(adapter.model), adapter.evaluating(), torch.no_grad():
        try:
            out = adapter.model.generate(
                input_ids=ids.to(adapter.device), attention_mask=mask.to(adapter.device), **kwargs
            )
        except (TypeError, ValueError) as err:  # generate()'s own checks of its options
            raise InvalidParameterError(f"generation={generation!r} is refused by generate(): {err}") from err
    eos = adapter.tokenizer.eos_token_id
    first = 1 if encoder_decoder else 0  # d_0 may be the eos token (BART)
    continuations = []
    for row in (out if encoder_decoder else out[:, width:]).tolist():
        if eos is not None and eos in row[first:]:
            row = row[: row.index(eos, first) + 1]
        if len(row) <= first:
            raise InvalidParameterError(f"generate() produced no token with {kwargs}; raise max_new_tokens.")
        continuations.append(row)
    return continuations


def render_chat(tokenizer: Any, prompt: str, template: bool | str) -> str:
    """`prompt` as the user's turn of a chat, rendered with the tokenizer's chat template (`template`
    True) or the given Jinja template, the assistant's turn opened (`add_generation_prompt`) so that
    the continuation is its answer. The rendered text holds the template's special tokens itself."""
    own = template if isinstance(template, str) else None
    if own is None and not getattr(tokenizer, "chat_template", None):
        raise InvalidParameterError(
            f"chat_template=True, but {type(tokenizer).__name__} has no chat template; pass the template as a "
            "string (chat_template='{% for m in messages %}...'), or leave chat_template off for a plain prompt."
        )
    return tokenizer.apply_chat_template(
        [{"role": "user", "content": prompt}], chat_template=own, tokenize=False, add_generation_prompt=True
    )


def foil_ids(tokenizer: Any, foil: str, encoding: Encoding) -> list[int]:
    """Token ids of a contrastive foil continuation, one per row of `encoding` (tokenised as a
    forced continuation is)."""
    ids = _forced_piece(tokenizer, foil, what="contrast")["ids"]
    n_rows = len(encoding.row_targets or ())
    if len(ids) != n_rows:
        raise InvalidParameterError(
            f"contrast={foil!r} has {len(ids)} tokens {tokenizer.convert_ids_to_tokens(ids)}, but the explained "
            f"continuation {encoding.text_pair!r} has {n_rows}; a foil is compared token by token with the "
            "continuation, so give one of the same length."
        )
    return ids


def encode_targets(
    adapter: Any,
    sources: Sequence[str],
    targets: Sequence[str | None],
    *,
    truncation: bool = True,
    generation: dict[str, Any] | None = None,
) -> list[Encoding]:
    """One Encoding per source text of an encoder–decoder: the source's tokens, the decoder start
    token and the target's (forced where given, generated where None)."""
    tokenizer = adapter.tokenizer
    source_encodings = adapter.encode(list(sources), truncation=truncation)
    decoded: list[Any] = [None] * len(sources)
    for i, text in enumerate(targets):
        if text is not None:
            labels = _labels_piece(tokenizer, text)
            decoded[i] = (decoder_start(adapter.model, labels["ids"]), labels)
    missing = [i for i, text in enumerate(targets) if text is None]
    if missing:
        for i, ids in zip(missing, generate(adapter, [source_encodings[i] for i in missing], generation)):
            decoded[i] = (ids[0], _generated_piece(tokenizer, ids[1:]))
    return [
        _join_target(tokenizer, source, start, piece, adapter.max_length, i)
        for i, (source, (start, piece)) in enumerate(zip(source_encodings, decoded))
    ]


def decoder_start(model: Any, labels: list[int]) -> int:
    """The token d_0 that the model's own shift of `labels` into decoder inputs puts first
    (`prepare_decoder_input_ids_from_labels`: `decoder_start_token_id` for BART and T5, the language
    code for mBART), checked to be followed by labels[:-1]."""
    shifted = model.prepare_decoder_input_ids_from_labels(labels=torch.tensor([labels]))[0].tolist()
    if shifted[1:] != labels[:-1]:
        raise UnsupportedModelError(
            f"{type(model).__name__} turns labels {labels} into decoder inputs {shifted}, not into a start token "
            "followed by the labels; its targets cannot be explained token by token."
        )
    return int(shifted[0])


def _labels_piece(tokenizer: Any, text: str) -> dict[str, Any]:
    out = tokenizer(text_target=text, return_offsets_mapping=True, return_special_tokens_mask=True, verbose=False)
    return _piece(text, out, specials=[bool(s) for s in out["special_tokens_mask"]])


def _forced_piece(tokenizer: Any, text: str, what: str = "target") -> dict[str, Any]:
    out = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True, verbose=False)
    return _piece(text, out, specials=[False] * len(out["input_ids"]), what=what)


def _piece(text: str, out: Any, specials: list[bool], what: str = "target") -> dict[str, Any]:
    """A tokenised target: its text, ids, offsets and word ids (None at special tokens)."""
    if not out["input_ids"] or all(specials):
        raise InvalidParameterError(f"{what}={text!r} has no tokens.")
    return {
        "text": text,
        "ids": list(out["input_ids"]),
        "offsets": [tuple(o) for o in out["offset_mapping"]],
        "word_ids": [None if s else w for w, s in zip(out.word_ids(), specials)],
    }


def _generated_piece(tokenizer: Any, ids: list[int]) -> dict[str, Any]:
    """Text and offsets of generated ids, by decoding growing prefixes (special tokens decode to
    nothing); a token starts a new word unless its text continues the previous one without a space."""
    special = set(tokenizer.all_special_ids)
    offsets, word_ids, text, word = [], [], "", -1
    for k in range(len(ids)):
        longer = tokenizer.decode(ids[: k + 1], skip_special_tokens=True)
        start = len(text) if longer.startswith(text) else len(longer)
        offsets.append((start, len(longer)))
        piece = longer[start:]
        if ids[k] in special:
            word_ids.append(None)
        else:
            word += not (word_ids and word_ids[-1] is not None and piece and not piece[0].isspace())
            word_ids.append(word)
        text = longer
    return {"text": text, "ids": list(ids), "offsets": offsets, "word_ids": word_ids}


def _join(
    tokenizer: Any, prompt: Encoding, piece: dict[str, Any], max_length: int, truncation: bool, index: int
) -> Encoding:
    ids = piece["ids"]
    keep, warnings = list(range(len(prompt))), list(prompt.warnings)
    if len(prompt) + len(ids) > max_length:
        lead = 0
        while lead < len(prompt) and prompt.special_tokens_mask[lead]:
            lead += 1
        room = max_length - len(ids) - lead
        if not truncation or room < 1:
            raise InputTooLongError(
                f"Input {index}: prompt ({len(prompt)} tokens) and continuation ({len(ids)}) exceed the model's "
                f"{max_length} tokens"
                + ("; shorten the continuation." if room < 1 else "; shorten the prompt or leave truncation on.")
            )
        keep = list(range(lead)) + list(range(len(prompt) - room, len(prompt)))
        warnings.append(f"prompt truncated from {len(prompt)} to its last {room} tokens (continuation kept)")
    specials = [prompt.special_tokens_mask[i] for i in keep]
    special_ids = set(tokenizer.all_special_ids)
    continuation_specials = [token in special_ids for token in ids]
    return Encoding(
        text=prompt.text,
        tokens=[prompt.tokens[i] for i in keep] + tokenizer.convert_ids_to_tokens(ids),
        input_ids=[prompt.input_ids[i] for i in keep] + list(ids),
        offsets=[prompt.offsets[i] for i in keep] + list(piece["offsets"]),
        word_ids=[prompt.word_ids[i] for i in keep]
        + [None if s else w for w, s in zip(piece["word_ids"], continuation_specials)],
        special_tokens_mask=specials + continuation_specials,
        text_pair=piece["text"],
        segment_ids=[None if s else 0 for s in specials] + [None if s else 1 for s in continuation_specials],
        warnings=warnings,
        readout=[len(keep) - 1 + k for k in range(len(ids))],
        row_targets=list(ids),
    )


def _join_target(
    tokenizer: Any, source: Encoding, start: int, piece: dict[str, Any], max_length: int, index: int
) -> Encoding:
    """source ⊕ d_0 ⊕ target as one Encoding; row k reads the position of d_0 plus k."""
    ids = piece["ids"]
    if len(ids) + 1 > max_length:
        raise InputTooLongError(
            f"Input {index}: the target has {len(ids)} tokens, but the decoder reads at most {max_length} "
            "(the start token included); shorten the target."
        )
    special_ids = set(tokenizer.all_special_ids)
    target_specials = [token in special_ids for token in ids]
    n = len(source)
    return Encoding(
        text=source.text,
        tokens=source.tokens + tokenizer.convert_ids_to_tokens([start, *ids]),
        input_ids=[*source.input_ids, start, *ids],
        offsets=[*source.offsets, (0, 0), *piece["offsets"]],
        word_ids=[*source.word_ids, None] + [None if s else w for w, s in zip(piece["word_ids"], target_specials)],
        special_tokens_mask=[*source.special_tokens_mask, True, *target_specials],
        text_pair=piece["text"],
        segment_ids=[None if s else 0 for s in source.special_tokens_mask]
        + [None]
        + [None if s else 1 for s in target_specials],
        warnings=list(source.warnings),
        readout=[n + k for k in range(len(ids))],
        row_targets=list(ids),
    )
