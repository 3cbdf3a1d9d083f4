"""Small models trained on synthetic tasks with a known rule, so that explanations have ground truth.

**Copy after the marker** (a causal LM): a prompt of random letters holds one marker ``@``; after
the final ``?`` the model must say the letter that follows the marker::

    prompt: "c f @ k a b d ?"      continuation: " k"

Only the letter after the marker (and the marker, which says where it is) decides the answer, so an
explanation of the answer should put the most weight on that letter. A 2-layer GPT-2 (64 dims) learns
the rule to ≥ 98 % accuracy in about a minute on 2 CPU cores; nothing is downloaded.

**Reverse the letters** (an encoder–decoder): the target is the source read backwards::

    source: "c f k a b"      target: "b a k f c"

Target letter k is source letter n − 1 − k and nothing else, so row k of an explanation should put
its most weight on that source letter. A small BART learns it in a few hundred steps.

**Tag the word after the marker** (a token classifier): a sentence of random words holds one marker
``not`` (and maybe the look-alike ``very``, which marks nothing); the word after ``not`` is tagged
``B-NEG``, every other word ``O``::

    text: "cat very sky not tree road"      tags: O O O O B-NEG O

The tagged word itself is random, so only the marker before it can say that it is tagged: an
explanation of the tagged word's row should put the most weight on the marker. A 2-layer BERT (64
dims) tags ≥ 99 % of held-out sentences exactly after 300 steps (20-80 s on 2 shared CPU cores).

    python recipes/synthetic_tasks.py --output copy_lm   # trains, reports accuracy, saves model + tokenizer
    python recipes/synthetic_tasks.py --task reverse --output reverse_bart
    python recipes/synthetic_tasks.py --task tag --output tagger
"""

from __future__ import annotations

import argparse
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from tokenizers import Tokenizer, models, pre_tokenizers, processors
from transformers import (
    BartConfig,
    BartForConditionalGeneration,
    BertConfig,
    BertForTokenClassification,
    GPT2Config,
    GPT2LMHeadModel,
    PreTrainedTokenizerFast,
)

LETTERS = [chr(c) for c in range(ord("a"), ord("q"))]  # 16 content tokens
MARKER, QUERY = "@", "?"


@dataclass
class CopyExample:
    prompt: str
    answer: str  # the continuation, with its leading space
    position: int  # index (in prompt words) of the letter after the marker


def copy_tokenizer() -> PreTrainedTokenizerFast:
    """Word-level tokenizer: one token per letter, marker and query (plus <pad> and <eos>)."""
    vocab = {tok: i for i, tok in enumerate(["<pad>", "<eos>", MARKER, QUERY, *LETTERS])}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<pad>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="<eos>", unk_token="<pad>")


def copy_examples(n: int, seed: int = 0, length: int = 7, blank: float = 0.0) -> list[CopyExample]:
    """`n` prompts of `length` random letters with a marker before one of them (never the last);
    with `blank` > 0 each other letter is `<pad>` with that probability (training only: the model
    learns that a padded letter carries nothing, which gives erasure and baselines a neutral token)."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        letters = [rng.choice(LETTERS) for _ in range(length)]
        at = rng.randrange(length - 1)
        letters = [x if i == at or rng.random() >= blank else "<pad>" for i, x in enumerate(letters)]
        words = letters[:at] + [MARKER] + letters[at:] + [QUERY]
        out.append(CopyExample(" ".join(words), " " + letters[at], at + 1))
    return out


def train_copy_lm(steps: int = 1200, seed: int = 0, batch_size: int = 128) -> tuple[GPT2LMHeadModel, PreTrainedTokenizerFast]:
    """A 2-layer GPT-2 trained on the copy task (cross-entropy on the answer token only)."""
    torch.manual_seed(seed)
    tokenizer = copy_tokenizer()
    config = GPT2Config(
        vocab_size=len(tokenizer), n_positions=32, n_embd=64, n_layer=2, n_head=4,
        bos_token_id=tokenizer.eos_token_id, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
    )
    model = GPT2LMHeadModel(config)

    def loss(step: int) -> torch.Tensor:
        batch = copy_examples(batch_size, seed=10_000 + step, blank=0.3 * (step % 2))
        ids = torch.tensor([tokenizer(e.prompt + e.answer)["input_ids"] for e in batch])
        return torch.nn.functional.cross_entropy(model(ids[:, :-1]).logits[:, -1], ids[:, -1])

    return fit(model, loss, steps), tokenizer


def fit(model: torch.nn.Module, loss: Callable[[int], torch.Tensor], steps: int, lr: float = 3e-3) -> torch.nn.Module:
    """Train `model` for `steps` steps of AdamW (one-cycle schedule to `lr`) on `loss(step)`; returns
    it in eval mode."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=steps, pct_start=0.1)
    model.train()
    for step in range(steps):
        value = loss(step)
        optimizer.zero_grad()
        value.backward()
        optimizer.step()
        schedule.step()
    return model.eval()


def copy_accuracy(model: GPT2LMHeadModel, tokenizer: PreTrainedTokenizerFast, examples: list[CopyExample]) -> float:
    """Share of prompts whose most likely next token is the answer."""
    ids = torch.tensor([tokenizer(e.prompt)["input_ids"] for e in examples])
    answers = torch.tensor([tokenizer(e.answer)["input_ids"][0] for e in examples])
    with torch.no_grad():
        predicted = model(ids).logits[:, -1].argmax(-1)
    return float((predicted == answers).float().mean())


def reverse_tokenizer() -> PreTrainedTokenizerFast:
    """Word-level tokenizer with BART's specials: `<s> letters </s>` for sources and targets alike."""
    vocab = {tok: i for i, tok in enumerate(["<s>", "<pad>", "</s>", *LETTERS])}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<pad>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", special_tokens=[("<s>", vocab["<s>"]), ("</s>", vocab["</s>"])]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<s>", pad_token="<pad>", eos_token="</s>", unk_token="<pad>"
    )


def reverse_examples(n: int, seed: int = 0, length: int = 5) -> list[tuple[str, str]]:
    """`n` (source, target) pairs: `length` random letters and the same letters reversed."""
    rng = random.Random(seed)
    pairs = []
    for _ in range(n):
        letters = [rng.choice(LETTERS) for _ in range(length)]
        pairs.append((" ".join(letters), " ".join(reversed(letters))))
    return pairs


def train_reverse_seq2seq(
    steps: int = 400, seed: int = 0, batch_size: int = 64
) -> tuple[BartForConditionalGeneration, PreTrainedTokenizerFast]:
    """A 2 + 2-layer BART (64 dims) trained to reverse 5 letters (cross-entropy on every target token)."""
    torch.manual_seed(seed)
    tokenizer = reverse_tokenizer()
    config = BartConfig(
        vocab_size=len(tokenizer), d_model=64, encoder_layers=2, decoder_layers=2, encoder_attention_heads=4,
        decoder_attention_heads=4, encoder_ffn_dim=128, decoder_ffn_dim=128, max_position_embeddings=16,
        pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        decoder_start_token_id=tokenizer.eos_token_id, forced_eos_token_id=None, dropout=0.0,
    )
    model = BartForConditionalGeneration(config)

    def loss(step: int) -> torch.Tensor:
        sources, targets = zip(*reverse_examples(batch_size, seed=10_000 + step))
        batch = tokenizer(list(sources), text_target=list(targets), return_tensors="pt")
        return model(input_ids=batch["input_ids"], labels=batch["labels"]).loss

    return fit(model, loss, steps), tokenizer


def reverse_accuracy(
    model: BartForConditionalGeneration, tokenizer: PreTrainedTokenizerFast, pairs: list[tuple[str, str]]
) -> float:
    """Share of target tokens that are the model's most likely next token, teacher-forced."""
    sources, targets = zip(*pairs)
    batch = tokenizer(list(sources), text_target=list(targets), return_tensors="pt")
    with torch.no_grad():
        predicted = model(input_ids=batch["input_ids"], labels=batch["labels"]).logits.argmax(-1)
    return float((predicted == batch["labels"]).float().mean())


NOUNS = ["cat", "dog", "sky", "tree", "road", "car", "book", "lamp", "door", "fish", "milk", "rain", "song", "ship",
         "coin", "bird"]
NEGATION, DECOY = "not", "very"
TAGS = ["O", "B-NEG"]


@dataclass
class TagExample:
    text: str
    marker: int  # word index of the marker
    tagged: int  # word index of the tagged word (marker + 1)


def tagging_tokenizer() -> PreTrainedTokenizerFast:
    """Word-level tokenizer with BERT's specials: [CLS] words [SEP], one token per word."""
    vocab = {tok: i for i, tok in enumerate(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", NEGATION, DECOY, *NOUNS])}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="[PAD]", unk_token="[UNK]", cls_token="[CLS]", sep_token="[SEP]",
        mask_token="[MASK]",
    )


def tagging_examples(n: int, seed: int = 0, length: int = 8, blank: float = 0.0) -> list[TagExample]:
    """`n` sentences of `length` words: random nouns, one marker before a noun (never last), and in
    half of them the decoy before another noun; with `blank` > 0 each noun, the tagged one included,
    is [MASK] with that probability (training only: the model learns that a masked word carries
    nothing, and that the tag comes from the marker alone, which gives erasure a neutral replacement)."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        words = [rng.choice(NOUNS) if rng.random() >= blank else "[MASK]" for _ in range(length)]
        at = rng.randrange(length - 1)
        words[at] = NEGATION
        if rng.random() < 0.5:
            free = [i for i in range(length - 1) if i not in (at - 1, at, at + 1)]
            words[rng.choice(free)] = DECOY
        out.append(TagExample(" ".join(words), at, at + 1))
    return out


def tag_ids(tokenizer: PreTrainedTokenizerFast, examples: list[TagExample]) -> tuple[torch.Tensor, torch.Tensor]:
    """Token ids and the rule's tag per token (−100 at the special tokens)."""
    ids = torch.tensor([tokenizer(e.text)["input_ids"] for e in examples])
    tags = torch.zeros_like(ids)
    tags[:, [0, -1]] = -100
    tags[torch.arange(len(examples)), torch.tensor([e.tagged + 1 for e in examples])] = 1
    return ids, tags


def train_tagger(steps: int = 300, seed: int = 0, batch_size: int = 64) -> tuple[BertForTokenClassification, PreTrainedTokenizerFast]:
    """A 2-layer BERT token classifier trained on the tagging rule (cross-entropy on every word)."""
    torch.manual_seed(seed)
    tokenizer = tagging_tokenizer()
    config = BertConfig(
        vocab_size=len(tokenizer), hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=128,
        max_position_embeddings=32, pad_token_id=tokenizer.pad_token_id,
        id2label=dict(enumerate(TAGS)), label2id={tag: i for i, tag in enumerate(TAGS)},
    )
    model = BertForTokenClassification(config)

    def loss(step: int) -> torch.Tensor:
        ids, tags = tag_ids(tokenizer, tagging_examples(batch_size, seed=10_000 + step, blank=0.2 * (step % 2)))
        return model(input_ids=ids, labels=tags).loss

    return fit(model, loss, steps), tokenizer


def tagging_accuracy(model: BertForTokenClassification, tokenizer: PreTrainedTokenizerFast, examples: list[TagExample]) -> float:
    """Share of sentences whose every word gets the rule's tag."""
    ids, tags = tag_ids(tokenizer, examples)
    with torch.no_grad():
        predicted = model(input_ids=ids).logits.argmax(-1)
    return float(((predicted == tags) | (tags == -100)).all(-1).float().mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", type=Path, required=True, help="folder for the model and tokenizer")
    parser.add_argument("--task", choices=("copy", "reverse", "tag"), default="copy")
    parser.add_argument("--steps", type=int, help="training steps (default: 1200 for copy, 400 for reverse, 300 for tag)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.task == "copy":
        model, tokenizer = train_copy_lm(args.steps or 1200, args.seed)
        accuracy = copy_accuracy(model, tokenizer, copy_examples(1000, seed=1))
    elif args.task == "reverse":
        model, tokenizer = train_reverse_seq2seq(args.steps or 400, args.seed)
        accuracy = reverse_accuracy(model, tokenizer, reverse_examples(1000, seed=1))
    else:
        model, tokenizer = train_tagger(args.steps or 300, args.seed)
        accuracy = tagging_accuracy(model, tokenizer, tagging_examples(1000, seed=1))
    print(f"held-out accuracy: {accuracy:.3f}")
    model.save_pretrained(args.output)
    tokenizer.save_pretrained(args.output)


if __name__ == "__main__":
    main()
