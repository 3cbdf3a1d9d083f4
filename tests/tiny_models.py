"""Tiny random `*ForSequenceClassification` models for the architecture matrix, built offline.

Tokenisers are trained in-process on a small generated corpus: WordPiece with BERT's specials for
the BERT family, byte-level BPE with RoBERTa's specials for RoBERTa, and byte-level BPE with no pad
token and no special-token template (like GPT-2 and Llama) for the decoders.
"""

from __future__ import annotations

import functools
import random
from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
from transformers import AutoConfig, AutoModelForSequenceClassification, PreTrainedTokenizerFast

WORDS = ["the", "a", "an", "this", "that", "film", "movie", "story", "actor", "plot", "scene", "music", "script", "director", "cast", "ending", "good", "great", "bad", "awful", "dull", "boring", "brilliant", "funny", "sad", "moving", "gripping", "terrible", "wonderful", "not", "never", "very", "quite", "really", "rather", "too", "so", "and", "but", "or", "with", "without", "of", "in", "on", "at", "to", "is", "was", "are", "were", "be", "been", "it", "its", "he", "she", "they", "we", "you", "i", "love", "hate", "like", "enjoyed", "loved", "hated", "unbelievable", "overlong", "underwhelming", "predictable", "charming", "heartfelt", "clumsy"]

NUM_LABELS = 3
MAX_POSITIONS = 64


def corpus(n: int = 400, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    lines = []
    for _ in range(n):
        words = [rng.choice(WORDS) for _ in range(rng.randint(3, 12))]
        punct = rng.choice([".", "!", ",", "?", ""])
        lines.append(" ".join(words) + punct)
    return lines


def random_texts(n: int, seed: int = 1, min_words: int = 1, max_words: int = 14) -> list[str]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        words = [rng.choice(WORDS) for _ in range(rng.randint(min_words, max_words))]
        if rng.random() < 0.3:
            words[rng.randrange(len(words))] += rng.choice([",", "!", "'s"])
        out.append(" ".join(words))
    return out


def wordpiece_vocab() -> dict[str, int]:
    """The tiny WordPiece vocabulary, one token per line of data/tiny_wordpiece_vocab.txt (id = line).

    It was trained once on `corpus()` with `trainers.WordPieceTrainer(vocab_size=260)` and BERT's
    specials, and is read from the file because that trainer breaks frequency ties differently
    from run to run: trained in-process, every test session got different tiny models."""
    tokens = (Path(__file__).parent / "data" / "tiny_wordpiece_vocab.txt").read_text(encoding="utf-8").splitlines()
    return {token: i for i, token in enumerate(tokens)}


@functools.cache
def wordpiece_tokenizer() -> PreTrainedTokenizerFast:
    """BERT-style uncased WordPiece: [CLS] text [SEP]."""
    tok = Tokenizer(models.WordPiece(wordpiece_vocab(), unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1", special_tokens=[("[CLS]", 2), ("[SEP]", 3)]
    )
    tok.decoder = decoders.WordPiece()
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
        model_max_length=MAX_POSITIONS,
        model_input_names=["input_ids", "token_type_ids", "attention_mask"],  # as BertTokenizerFast
    )


def _byte_bpe(specials: list[str]) -> Tokenizer:
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=300, special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tok.train_from_iterator(corpus(), trainer)
    return tok


@functools.cache
def roberta_tokenizer() -> PreTrainedTokenizerFast:
    """RoBERTa-style byte-level BPE: <s> text </s>, pad id 1."""
    tok = _byte_bpe(["<s>", "<pad>", "</s>", "<unk>", "<mask>"])
    tok.post_processor = processors.RobertaProcessing(("</s>", 2), ("<s>", 0), trim_offsets=True, add_prefix_space=False)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<s>",
        eos_token="</s>",
        sep_token="</s>",
        cls_token="<s>",
        unk_token="<unk>",
        pad_token="<pad>",
        mask_token="<mask>",
        model_max_length=MAX_POSITIONS - 2,
    )


@functools.cache
def t5_tokenizer() -> PreTrainedTokenizerFast:
    """T5-style byte-level BPE: text </s>, pad id 0, eos id 1, unk id 2; no bos, no cls."""
    tok = _byte_bpe(["<pad>", "</s>", "<unk>"])
    tok.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 1)])
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token="</s>",
        unk_token="<unk>",
        pad_token="<pad>",
        model_max_length=MAX_POSITIONS,
    )


@functools.cache
def decoder_tokenizer() -> PreTrainedTokenizerFast:
    """GPT-2/Llama-style byte-level BPE: no special tokens added, no pad token."""
    tok = _byte_bpe(["<|endoftext|>"])
    tok.post_processor = processors.ByteLevel(trim_offsets=True)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<|endoftext|>",
        eos_token="<|endoftext|>",
        unk_token="<|endoftext|>",
        model_max_length=MAX_POSITIONS,
    )


_SIZE = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37)

# model_type -> (config overrides, tokenizer factory)
ARCHITECTURES = {
    "bert": ({}, wordpiece_tokenizer),
    "roberta": ({"pad_token_id": 1, "bos_token_id": 0, "eos_token_id": 2, "max_position_embeddings": MAX_POSITIONS + 2}, roberta_tokenizer),
    "distilbert": ({"dim": 32, "n_layers": 2, "n_heads": 4, "hidden_dim": 37}, wordpiece_tokenizer),
    "albert": ({"embedding_size": 16}, wordpiece_tokenizer),
    "electra": ({"embedding_size": 16}, wordpiece_tokenizer),
    "deberta-v2": ({}, wordpiece_tokenizer),
    "modernbert": ({"cls_token_id": 2, "sep_token_id": 3, "bos_token_id": 2, "eos_token_id": 3, "global_attn_every_n_layers": 1}, wordpiece_tokenizer),
    "gpt2": ({"n_embd": 32, "n_layer": 2, "n_head": 4, "n_positions": MAX_POSITIONS, "bos_token_id": 0, "eos_token_id": 0, "pad_token_id": None}, decoder_tokenizer),
    "llama": ({"num_key_value_heads": 2, "bos_token_id": 0, "eos_token_id": 0, "pad_token_id": None}, decoder_tokenizer),
    "qwen2": ({"num_key_value_heads": 2, "bos_token_id": 0, "eos_token_id": 0, "pad_token_id": None}, decoder_tokenizer),
}
DECODERS = ("gpt2", "llama", "qwen2")

#: sizes of tiny encoder–decoders, under every name their configs use
ENCODER_DECODER = {
    "d_model": 32, "encoder_layers": 2, "decoder_layers": 2, "encoder_attention_heads": 2, "decoder_attention_heads": 2,
    "encoder_ffn_dim": 40, "decoder_ffn_dim": 40, "d_ff": 40, "d_kv": 16, "num_heads": 2, "num_layers": 2, "num_decoder_layers": 2,
}  # fmt: skip
#: text encoder–decoders (`AutoModelForSeq2SeqLM`): special-token ids of their tokenizer, and the tokenizer
SEQ2SEQ = {
    "bart": ({"pad_token_id": 1, "bos_token_id": 0, "eos_token_id": 2, "decoder_start_token_id": 2}, roberta_tokenizer),
    "t5": ({"pad_token_id": 0, "eos_token_id": 1, "decoder_start_token_id": 0, "feed_forward_proj": "gated-gelu"}, t5_tokenizer),
    "marian": ({"pad_token_id": 0, "eos_token_id": 1, "decoder_start_token_id": 0, "scale_embedding": True}, t5_tokenizer),
}


@functools.cache
def tiny_model(model_type: str, seed: int = 0):
    """(model, tokenizer) for `model_type`: random weights, eval mode, float32."""
    overrides, make_tokenizer = ARCHITECTURES[model_type]
    tokenizer = make_tokenizer()
    kwargs = {
        **_SIZE,
        "vocab_size": len(tokenizer),
        "num_labels": NUM_LABELS,
        "max_position_embeddings": MAX_POSITIONS,
        "pad_token_id": tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0,
        "id2label": {0: "negative", 1: "neutral", 2: "positive"},
        "label2id": {"negative": 0, "neutral": 1, "positive": 2},
        **overrides,
    }
    config = AutoConfig.for_model(model_type, **kwargs)
    torch.manual_seed(seed)
    model = AutoModelForSequenceClassification.from_config(config).eval()
    return model, tokenizer


@functools.cache
def tiny_causal_lm(model_type: str = "llama", seed: int = 0):
    """(model, tokenizer) of a causal LM of `model_type` (one of `DECODERS`): random weights, eval mode, float32."""
    return tiny_head_model("AutoModelForCausalLM", model_type, seed)


@functools.cache
def tiny_head_model(auto_class: str, model_type: str = "bert", seed: int = 0):
    """(model, tokenizer) of `model_type` with the head `auto_class` loads (e.g. "AutoModelForQuestionAnswering"):
    random weights, eval mode, float32."""
    import transformers

    overrides, make_tokenizer = ARCHITECTURES[model_type]
    tokenizer = make_tokenizer()
    config = AutoConfig.for_model(
        model_type, **{**_SIZE, "vocab_size": len(tokenizer), "max_position_embeddings": MAX_POSITIONS, **overrides}
    )
    if tokenizer.pad_token_id is not None:
        config.pad_token_id = tokenizer.pad_token_id
    torch.manual_seed(seed)
    return getattr(transformers, auto_class).from_config(config).eval(), tokenizer


@functools.cache
def tiny_seq2seq_lm(model_type: str = "bart", seed: int = 0):
    """(model, tokenizer) of a text encoder–decoder of `model_type` (one of `SEQ2SEQ`): random weights,
    eval mode, float32."""
    from transformers import AutoModelForSeq2SeqLM

    overrides, make_tokenizer = SEQ2SEQ[model_type]
    tokenizer = make_tokenizer()
    config = AutoConfig.for_model(
        model_type, vocab_size=len(tokenizer), max_position_embeddings=MAX_POSITIONS, **ENCODER_DECODER, **overrides
    )
    torch.manual_seed(seed)
    return AutoModelForSeq2SeqLM.from_config(config).eval(), tokenizer


def save_tiny_model(path, model_type: str = "bert"):
    """Save `tiny_model(model_type)` and its tokenizer to `path` (for CLI and subprocess tests); returns path."""
    model, tokenizer = tiny_model(model_type)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


NER_LABELS = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]


@functools.cache
def tiny_token_classifier(model_type: str = "bert", seed: int = 0):
    """(model, tokenizer) of a `*ForTokenClassification` of `model_type` with IOB2 labels `NER_LABELS`:
    random weights, eval mode, float32."""
    from transformers import AutoModelForTokenClassification

    overrides, make_tokenizer = ARCHITECTURES[model_type]
    tokenizer = make_tokenizer()
    config = AutoConfig.for_model(
        model_type, **{
            **_SIZE,
            "vocab_size": len(tokenizer),
            "max_position_embeddings": MAX_POSITIONS,
            "pad_token_id": tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0,
            "id2label": dict(enumerate(NER_LABELS)),
            "label2id": {label: i for i, label in enumerate(NER_LABELS)},
            **overrides,
        }
    )
    torch.manual_seed(seed)
    return AutoModelForTokenClassification.from_config(config).eval(), tokenizer
