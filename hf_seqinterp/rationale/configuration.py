"""`RationaleGeneratorConfig`: what a rationale generator is, how it was trained, and for which tokenizer.

A generator reads token ids, so it only makes sense with the tokenizer it was trained for; the
config records that tokenizer's name, vocabulary size and a hash of its token -> id map, and
`check_tokenizer` refuses any other (a clear error instead of silently wrong selections).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from transformers import PreTrainedConfig

from ..errors import InvalidParameterError

ESTIMATORS: tuple[str, ...] = ("reinforce", "hardkuma")
#: how the predictor sees unselected words (the `masking.REPLACEMENTS` that keep the sequence length)
GENERATOR_REPLACEMENTS: tuple[str, ...] = ("mask", "pad", "unk", "zero_embedding", "attention")
#: what one gate selects: a word, a phrase (ends at , ; : . ! ?) or a sentence (`TokenizedText.unit_groups`)
UNITS: tuple[str, ...] = ("word", "phrase", "sentence")
#: what the generator reads: its own token embeddings, or the output of the frozen predictor's last block
FEATURES: tuple[str, ...] = ("embeddings", "predictor")


def tokenizer_fingerprint(tokenizer: Any) -> dict[str, Any]:
    """Name, vocabulary size and a SHA-256 prefix of the token -> id map (added tokens included)."""
    vocab = sorted(tokenizer.get_vocab().items(), key=lambda item: item[1])
    digest = hashlib.sha256(json.dumps(vocab, ensure_ascii=False).encode("utf-8")).hexdigest()
    return {
        "tokenizer_name": str(getattr(tokenizer, "name_or_path", "") or type(tokenizer).__name__),
        "tokenizer_vocab_size": len(vocab),
        "tokenizer_hash": digest[:16],
    }


class RationaleGeneratorConfig(PreTrainedConfig):
    r"""Configuration of a `RationaleGenerator`.

    Architecture: token embeddings (`embedding_size`, optionally initialised from the predictor's and
    frozen) or, with `features="predictor"`, the output of the frozen predictor's last block
    (`predictor_hidden_size`) projected to `embedding_size`; then a bidirectional GRU (`hidden_size` per direction, `num_layers`), mean-pooling of each
    word's sub-tokens (of each phrase or sentence with `unit`), and a linear head giving each unit a
    Bernoulli logit (`estimator="reinforce"`)
    or the two shape parameters of a HardKuma gate (`estimator="hardkuma"`).

    Objective (see `hf_seqinterp.rationale.objectives`): task loss of the predictor on the selected
    words, plus a Lagrangian holding the expected selection rate at `target_rate` (both estimators;
    for REINFORCE, a `sparsity` > 0 instead gives Lei et al.'s fixed λ1 × selection rate), plus
    `coherence` (λ2) × transitions per word boundary. A new generator's head starts at
    `target_rate` (every gate's P(z > 0) = target_rate before training). `replacement` says how
    the predictor sees unselected words. Rates count words: a unit of m words weighs m. At
    inference the most probable units are selected until they hold about Σ_j m_j P(z_j > 0) words
    (`threshold="expected"`, the default: as many as a draw selects on average), or, with a number,
    the units with P(z > 0) > `threshold`.

    `tokenizer_*` identify the tokenizer the generator was trained for; `predictor_name` and
    `predictor_labels` the classifier it was trained against.
    """

    model_type = "hf_seqinterp_rationale_generator"

    vocab_size: int = 30522
    embedding_size: int = 128
    hidden_size: int = 64
    num_layers: int = 1
    dropout: float = 0.1
    freeze_embeddings: bool = True
    estimator: str = "hardkuma"
    unit: str = "word"
    features: str = "embeddings"
    predictor_hidden_size: int | None = None
    replacement: str = "mask"
    sparsity: float = 0.0
    coherence: float = 0.0
    target_rate: float | None = 0.2
    threshold: float | str = "expected"
    stretch: list[float] | tuple[float, float] = (-0.1, 1.1)
    pad_token_id: int | None = 0
    tokenizer_name: str | None = None
    tokenizer_vocab_size: int | None = None
    tokenizer_hash: str | None = None
    predictor_name: str | None = None
    predictor_labels: list[str] | None = None

    def __post_init__(self, **kwargs: Any) -> None:
        if self.estimator not in ESTIMATORS:
            raise InvalidParameterError(f"estimator={self.estimator!r} is not one of {', '.join(ESTIMATORS)}.")
        if self.unit not in UNITS:
            raise InvalidParameterError(f"unit={self.unit!r} is not one of {', '.join(UNITS)}.")
        if self.features not in FEATURES:
            raise InvalidParameterError(f"features={self.features!r} is not one of {', '.join(FEATURES)}.")
        if self.features == "predictor" and not (self.predictor_hidden_size or 0) > 0:
            raise InvalidParameterError(
                "features='predictor' reads the predictor's hidden states: give predictor_hidden_size (or build the "
                "generator with RationaleGenerator.for_predictor, which reads it off the model)."
            )
        if self.replacement not in GENERATOR_REPLACEMENTS:
            raise InvalidParameterError(
                f"replacement={self.replacement!r} is not one of {', '.join(GENERATOR_REPLACEMENTS)} "
                "(deletion changes the input length and cannot be learned through; score it afterwards instead)."
            )
        if self.estimator == "hardkuma":
            if self.replacement == "attention":
                raise InvalidParameterError(
                    "estimator='hardkuma' passes gradients through relaxed (fractional) selections, which an "
                    "attention mask cannot express; use an embedding replacement ('mask', 'pad', 'unk', "
                    "'zero_embedding') or estimator='reinforce'."
                )
            if self.target_rate is None:
                raise InvalidParameterError("estimator='hardkuma' needs target_rate, a selection rate in (0, 1].")
        if self.target_rate is not None and not 0 < self.target_rate <= 1:
            raise InvalidParameterError(f"target_rate={self.target_rate!r}: give a selection rate in (0, 1].")
        for name in ("sparsity", "coherence"):
            if getattr(self, name) < 0:
                raise InvalidParameterError(f"{name}={getattr(self, name)!r} must be >= 0.")
        if self.threshold != "expected" and not (isinstance(self.threshold, float | int) and 0 < self.threshold < 1):
            raise InvalidParameterError(f"threshold={self.threshold!r}: give a probability in (0, 1) or 'expected'.")
        lower, upper = self.stretch
        if not (lower < 0 and upper > 1):
            raise InvalidParameterError(f"stretch={tuple(self.stretch)!r}: HardKuma needs l < 0 and r > 1.")
        self.stretch = [float(lower), float(upper)]
        for name in ("vocab_size", "embedding_size", "hidden_size", "num_layers"):
            if int(getattr(self, name)) < 1:
                raise InvalidParameterError(f"{name}={getattr(self, name)!r} must be a positive integer.")
        if not 0 <= self.dropout < 1:
            raise InvalidParameterError(f"dropout={self.dropout!r}: give a probability in [0, 1).")
        super().__post_init__(**kwargs)

    @property
    def holds_rate(self) -> bool:
        """Whether training holds the selection rate at `target_rate` (else: REINFORCE's fixed `sparsity`)."""
        return self.target_rate is not None and (self.estimator == "hardkuma" or self.sparsity == 0)

    def check_tokenizer(self, tokenizer: Any) -> None:
        """Raise `InvalidParameterError` unless `tokenizer` has the vocabulary this generator was trained for."""
        if self.tokenizer_hash is None:
            return
        found = tokenizer_fingerprint(tokenizer)
        if found["tokenizer_hash"] != self.tokenizer_hash:
            raise InvalidParameterError(
                f"This rationale generator was trained for tokenizer {self.tokenizer_name!r} "
                f"({self.tokenizer_vocab_size} tokens, vocabulary hash {self.tokenizer_hash}), but the model's "
                f"tokenizer is {found['tokenizer_name']!r} ({found['tokenizer_vocab_size']} tokens, hash "
                f"{found['tokenizer_hash']}); it reads token ids, so its selections would be meaningless. Use a "
                "generator trained for this tokenizer (hf_seqinterp.rationale.train_rationale_generator)."
            )
