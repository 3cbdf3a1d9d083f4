"""Prompts and their continuations as one tokenised sequence, for causal language models.

A continuation is forced (the target text, tokenised on its own without special tokens, as Captum's
`LLMAttribution` does) or generated (`model.generate`, greedy by default). The Encoding holds the
prompt as segment 0 (`text`) and the continuation as segment 1 (`text_pair`), so word views and
HTML show the two apart; row k reads position P + k − 1 (`readout`) and explains continuation token
y_k (`row_targets`).

Tokenising prompt and continuation separately is not always the tokenisation of the joined string
(BPE merges across the boundary); the explanation is of exactly the ids recorded, which for a
generated continuation are the ids the model produced.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from .concurrency import model_lock
from .errors import InputTooLongError, InvalidParameterError
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
    """Continuation ids of each prompt from `model.generate` (left-padded batch), cut after the first
    end-of-sequence token. The model's mode is restored afterwards."""
    kwargs = {**DEFAULT_GENERATION, **(generation or {})}
    if "input_ids" in kwargs or "attention_mask" in kwargs:
        raise InvalidParameterError("generation= takes generate() options; the prompt ids come from the inputs.")
    width = max(len(p) for p in prompts)
    ids = torch.full((len(prompts), width), adapter.pad_id, dtype=torch.long)
    mask = torch.zeros((len(prompts), width), dtype=torch.long)
    for row, prompt in enumerate(prompts):
        ids[row, width - len(prompt) :] = torch.tensor(prompt.input_ids)
        mask[row, width - len(prompt) :] = 1
    kwargs.setdefault("pad_token_id", adapter.pad_id)
    with model_lock(adapter.model), adapter.evaluating(), torch.no_grad():
        out = adapter.model.generate(input_ids=ids.to(adapter.device), attention_mask=mask.to(adapter.device), **kwargs)
    eos = adapter.tokenizer.eos_token_id
    continuations = []
    for row in out[:, width:].tolist():
        if eos is not None and eos in row:
            row = row[: row.index(eos) + 1]
        if not row:
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


def _forced_piece(tokenizer: Any, text: str, what: str = "target") -> dict[str, Any]:
    out = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True, verbose=False)
    if not out["input_ids"]:
        raise InvalidParameterError(f"{what}={text!r} has no tokens.")
    return {
        "text": text,
        "ids": list(out["input_ids"]),
        "offsets": [tuple(o) for o in out["offset_mapping"]],
        "word_ids": list(out.word_ids()),
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
