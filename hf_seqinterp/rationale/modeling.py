r"""`RationaleGenerator`: scores every word of an input and selects a rationale (Lei et al. 2016).

    h = BiGRU(E_g(x))                       token states (E_g: the generator's own embeddings)
    h = BiGRU(W·H_P(x))                     with features="predictor": the output H_P of the frozen
                                            predictor's last block, projected
    w_j = mean_{t ∈ unit j} h_t             one state per unit (sub-tokens pooled)
    s_j = head(w_j)                         a Bernoulli logit, or the raw HardKuma shapes (a, b)

A unit is a word (the default), or with `unit="phrase"`/`"sentence"` a phrase or a sentence
(`TokenizedText.unit_groups`): selections are made per unit, never per sub-token, and special tokens are never scored: they are
always kept. The generator is a `PreTrainedModel`, so `save_pretrained`, `from_pretrained` (also
through `AutoModel` once hf_seqinterp is imported) and `push_to_hub` work as for any model.

A generator of the predictor's states (`features="predictor"`) reads what the classifier computed
about each token, so it learns the classifier's evidence much faster than one that must infer it
from token embeddings; it needs that same predictor wherever it runs and is for a frozen predictor
only (post-hoc explanation, not joint training). The states come from the forward that predicts the
full text anyway (`reading_states`): training reads every text's once, with the prediction it explains,
and the explainer in its full-text forward.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence
from transformers import PreTrainedModel

from ..adapter import Batch, ModelAdapter
from ..concurrency import model_lock
from ..errors import InvalidInputError, InvalidParameterError, UnsupportedModelError
from ..masking import feature_groups
from ..text import TokenizedText
from ..utils import length_grouped_batches
from .configuration import RationaleGeneratorConfig, tokenizer_fingerprint
from .gates import BernoulliGate, Gate, HardKumaGate


@dataclass
class WordBatch:
    """Right-padded generator inputs for tokenised texts, with the selection unit of each token.

    Units are words, or with `unit` "phrase"/"sentence" runs of words (`masking.feature_groups`).
    `word_index[i, t]` is the index of the unit of token t of text i, −1 at special tokens and
    padding; `groups[i][j]` are the token positions of unit j of text i; `sizes[i, j]` its number of
    words (0 at padding), the weights of the selection rate in words; `features` the predictor's
    hidden states (rows, tokens, hidden) for a generator that reads them, else None.
    """

    input_ids: torch.Tensor
    lengths: torch.Tensor
    word_index: torch.Tensor
    word_mask: torch.Tensor
    groups: list[list[np.ndarray]]
    sizes: torch.Tensor
    features: torch.Tensor | None = None

    @classmethod
    def from_texts(
        cls, texts: Sequence[TokenizedText], pad_id: int, device: torch.device | str, unit: str = "word",
        features: Sequence[torch.Tensor] | None = None,
    ) -> WordBatch:
        """`features`: per text, one state per token (tokens, hidden), right-padded into the batch."""
        groups = [feature_groups(text, unit) for text in texts]
        lengths = [len(text.input_ids) for text in texts]
        width, n_units = max(lengths), max(1, max(len(g) for g in groups))
        input_ids = torch.full((len(texts), width), pad_id, dtype=torch.long)
        word_index = torch.full((len(texts), width), -1, dtype=torch.long)
        sizes = torch.zeros((len(texts), n_units))
        for row, (text, units) in enumerate(zip(texts, groups)):
            input_ids[row, : lengths[row]] = torch.as_tensor(text.input_ids, dtype=torch.long)
            for j, positions in enumerate(units):
                word_index[row, torch.from_numpy(positions)] = j
            sizes[row, : len(units)] = torch.as_tensor([len(w) for w in unit_words(text, units)], dtype=sizes.dtype)
        states = None
        if features is not None:
            states = features[0].new_zeros(len(texts), width, features[0].shape[-1])
            for row, values in enumerate(features):
                states[row, : len(values)] = values
            states = states.to(device)
        return cls(input_ids.to(device), torch.as_tensor(lengths, dtype=torch.long), word_index.to(device),
                   (sizes > 0).to(device), groups, sizes.to(device), states)

    def repeated(self, times: int) -> WordBatch:
        """The batch's texts `times` times over (rows text-minor: copy k of text i is row k·n + i)."""
        return WordBatch(self.input_ids.repeat(times, 1), self.lengths.repeat(times), self.word_index.repeat(times, 1),
                         self.word_mask.repeat(times, 1), self.groups * times, self.sizes.repeat(times, 1),
                         None if self.features is None else self.features.repeat(times, 1, 1))

    def token_values(self, word_values: torch.Tensor, batch: Batch | None = None) -> torch.Tensor:
        """Per-token values from per-word values (rows, words): each token gets its word's value,
        special tokens and padding get 1 (always kept). Laid out like `batch` when given (whose rows
        must be the same texts, e.g. left-padded for decoders), else like this WordBatch."""
        tokens = word_values.gather(1, self.word_index.clamp(min=0))
        tokens = torch.where(self.word_index >= 0, tokens, torch.ones_like(tokens))
        if batch is None:
            return tokens
        width = batch.input_ids.shape[1]
        starts = torch.as_tensor(batch.starts, device=tokens.device)
        source = torch.arange(width, device=tokens.device)[None, :] - starts[:, None]
        inside = (source >= 0) & (source < self.lengths.to(tokens.device)[:, None])
        picked = tokens.gather(1, source.clamp(0, tokens.shape[1] - 1))
        return torch.where(inside, picked, torch.ones_like(picked))


@contextlib.contextmanager
def reading_states(adapter: ModelAdapter) -> Iterator[Callable[[Batch], list[torch.Tensor]]]:
    """Context in which every forward of `adapter`'s model records the residual stream after its
    last block (network analysis' `capture`; hooks removed on exit, also on error; the model's lock
    held, so no other thread that takes it runs a forward through them); the yielded
    `states(batch)` cuts the last forward's record into one (tokens, hidden) float32 tensor per
    text of `batch`. The forward runs whole, so the one that computes the logits gives the states."""
    from ..network.units import capture, unit_groups  # here: the network package imports `datasets`

    (last,) = unit_groups(adapter, "residual", -1)
    with model_lock(adapter.model), capture(adapter, [last], stop=False) as captured:

        def states(batch: Batch) -> list[torch.Tensor]:
            values = captured[last.name]
            # copies made outside inference mode, so that a trained projection can read them
            return [values[row, start : start + len(text.input_ids)].clone()
                    for row, (start, text) in enumerate(zip(batch.starts, batch.encodings))]

        yield states


@torch.no_grad()
def predictor_states(
    adapter: ModelAdapter, texts: Sequence[TokenizedText], batch_size: int | None = None
) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """The residual stream after the predictor's last block for each text, one (tokens, hidden)
    float32 tensor per text, and each text's logits from the same forwards (`adapter.logits`, one
    row each), with dropout off, on the CPU (kept there for a dataset, moved per batch); in
    length-grouped batches of `batch_size` (default: all texts in one)."""
    texts = list(texts)
    out: list[torch.Tensor] = [torch.empty(0)] * len(texts)
    logits: list[torch.Tensor] = [torch.empty(0)] * len(texts)
    groups = length_grouped_batches([len(t.input_ids) for t in texts], batch_size) if batch_size else [range(len(texts))]
    with adapter.evaluating(), reading_states(adapter) as read:
        for group in groups:
            batch = adapter.collate([texts[i] for i in group])
            found = adapter.logits(batch).float().cpu()
            for row, (i, states) in enumerate(zip(group, read(batch))):
                out[i], logits[i] = states.cpu(), found[row]
    return out, logits


def unit_words(text: TokenizedText, units: Sequence[np.ndarray]) -> list[list[int]]:
    """The indices of the words (`feature_groups(text, "word")`) each unit (token positions) covers."""
    word_of = {int(p): j for j, positions in enumerate(feature_groups(text, "word")) for p in positions}
    return [sorted({word_of[int(p)] for p in positions}) for positions in units]


def initial_head_bias(config: RationaleGeneratorConfig) -> torch.Tensor:
    """The head bias that starts every gate at P(z > 0) = target_rate ρ*: the Bernoulli logit
    log(ρ*/(1 − ρ*)); for HardKuma a = 1 and b with P(z ≠ 0) = (1 − x0)^b = ρ*, x0 = −l/(r − l), as raw
    values before the softplus (softplus⁻¹(y) = y + log(1 − e^{−y}))."""
    rate = float(config.target_rate)
    rate = min(max(rate, 1e-4), 1 - 1e-4)
    if config.estimator == "reinforce":
        return torch.tensor([math.log(rate / (1 - rate))])
    lower, upper = config.stretch
    b = math.log(rate) / math.log1p(lower / (upper - lower))  # (1 − x0) = 1 + l/(r − l)
    return torch.tensor([_softplus_inverse(1.0), _softplus_inverse(b)])


def _softplus_inverse(y: float) -> float:
    return y + math.log(-math.expm1(-y))


def pool_words(states: torch.Tensor, word_index: torch.Tensor, num_words: int) -> torch.Tensor:
    """Mean of the token states (rows, L, H) of each word -> (rows, num_words, H)."""
    rows, _, hidden = states.shape
    slot = word_index + 1  # slot 0 collects special tokens and padding, dropped below
    sums = states.new_zeros(rows, num_words + 1, hidden).scatter_add_(1, slot[..., None].expand(-1, -1, hidden), states)
    counts = states.new_zeros(rows, num_words + 1).scatter_add_(1, slot, torch.ones_like(states[..., 0]))
    return sums[:, 1:] / counts[:, 1:, None].clamp(min=1.0)


def bidirectional_gru(gru: nn.GRU, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """The output of a bidirectional, batch-first `gru` over right-padded rows of `lengths` tokens
    (zeros at the padding): what packing the rows gives, without packing (which makes a CPU step
    about 3× slower). Each direction of each layer runs unidirectionally with its own weights; the
    reverse one over every row's tokens reversed in place, so that its padding, like the forward
    direction's, comes after the real tokens and never reaches their states. Off the CPU, where
    cuDNN runs packed rows fast and wants the GRU's weights in one flat buffer, rows are packed."""
    if x.device.type != "cpu":
        packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
        return pad_packed_sequence(gru(packed)[0], batch_first=True, total_length=x.shape[1])[0]
    width = x.shape[1]
    positions = torch.arange(width, device=x.device)[None, :]
    lengths = lengths.to(x.device)[:, None]
    inside = positions < lengths
    order = torch.where(inside, lengths - 1 - positions, positions)  # its own inverse

    def flip(values: torch.Tensor) -> torch.Tensor:
        return values.gather(1, order[..., None].expand_as(values))

    out = x
    for layer in range(gru.num_layers):
        if layer:
            out = F.dropout(out, gru.dropout, gru.training)
        directions = []
        for suffix, source in (("", out), ("_reverse", flip(out))):
            weights = [getattr(gru, f"{name}_l{layer}{suffix}") for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
            start = source.new_zeros(1, len(source), gru.hidden_size)
            states, _ = torch.gru(source, start, weights, True, 1, 0.0, gru.training, False, True)
            directions.append(flip(states) if suffix else states)
        out = torch.cat(directions, dim=-1)
    return out * inside[..., None]


def principal_embeddings(weight: torch.Tensor, size: int) -> torch.Tensor:
    """The rows of an embedding matrix projected on its top `size` principal components, scaled to unit
    standard deviation: a small table that keeps most of what the predictor's embeddings encode."""
    centered = weight.detach().float() - weight.detach().float().mean(0)
    _, _, vh = torch.linalg.svd(centered, full_matrices=False)
    projected = centered @ vh[:size].T
    return projected / projected.std().clamp(min=1e-12)


class RationaleGenerator(PreTrainedModel):
    """Selects, per word, the rationale of a classifier's input; see the module docstring and
    `RationaleGeneratorConfig`. Build one for a classifier with `RationaleGenerator.for_predictor`."""

    config_class = RationaleGeneratorConfig
    base_model_prefix = "rationale_generator"
    main_input_name = "input_ids"

    def __init__(self, config: RationaleGeneratorConfig):
        super().__init__(config)
        if config.features == "predictor":
            self.projection = nn.Linear(config.predictor_hidden_size, config.embedding_size)
        else:
            self.embeddings = nn.Embedding(config.vocab_size, config.embedding_size)
        self.dropout = nn.Dropout(config.dropout)
        self.encoder = nn.GRU(
            config.embedding_size,
            config.hidden_size,
            num_layers=config.num_layers,
            batch_first=True,
            bidirectional=True,
            dropout=config.dropout if config.num_layers > 1 else 0.0,
        )
        self.head = nn.Linear(2 * config.hidden_size, 1 if config.estimator == "reinforce" else 2)
        self.post_init()
        if config.features == "embeddings":
            self.embeddings.weight.requires_grad_(not config.freeze_embeddings)

    def _init_weights(self, module: nn.Module) -> None:
        if isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, std=1.0)
        elif isinstance(module, nn.Linear):
            nn.init.xavier_uniform_(module.weight)
            nn.init.zeros_(module.bias)
            if module is getattr(self, "head", None) and self.config.holds_rate:
                with torch.no_grad():
                    module.bias.copy_(initial_head_bias(self.config))

    # ----------------------------------------------------------------- construction
    @classmethod
    def for_predictor(
        cls, adapter: ModelAdapter, *, init_embeddings: bool = True, **config_kwargs: Any
    ) -> RationaleGenerator:
        """A new generator for `adapter`'s tokenizer (recorded in its config) and classifier.

        With `init_embeddings`, its token embeddings are the predictor's input embeddings reduced to
        `embedding_size` principal components (default: min(128, the predictor's size)); other
        keyword arguments are `RationaleGeneratorConfig` fields (estimator, target_rate, ...). With
        `features="predictor"` it reads the predictor's hidden states instead (of the width
        `network.unit_groups` finds) and has no embeddings to initialise.
        """
        if config_kwargs.get("features") == "predictor":
            from ..network.units import unit_groups

            hidden = unit_groups(adapter, "residual", -1)[0].size
            config_kwargs.setdefault("predictor_hidden_size", hidden)
            config_kwargs.setdefault("embedding_size", min(128, hidden))
            init_embeddings = False
        weight = getattr(adapter.embeddings, "weight", None)
        if init_embeddings and weight is None:
            raise UnsupportedModelError(
                f"{type(adapter.model).__name__}'s input embeddings have no weight matrix to initialise the "
                "generator from; pass init_embeddings=False."
            )
        vocab_size = int(weight.shape[0]) if weight is not None else len(adapter.tokenizer)
        if init_embeddings:
            config_kwargs.setdefault("embedding_size", min(128, int(weight.shape[1])))
            if config_kwargs["embedding_size"] > weight.shape[1]:
                raise InvalidParameterError(
                    f"embedding_size={config_kwargs['embedding_size']} exceeds the predictor's embedding size "
                    f"({weight.shape[1]}), so it cannot be initialised from it; use at most {weight.shape[1]} "
                    "or init_embeddings=False."
                )
        config = RationaleGeneratorConfig(
            vocab_size=vocab_size,
            pad_token_id=adapter.pad_id,
            predictor_name=adapter.model_name,
            predictor_labels=adapter.labels,
            **tokenizer_fingerprint(adapter.tokenizer),
            **config_kwargs,
        )
        generator = cls(config)
        if init_embeddings:
            with torch.no_grad():
                generator.embeddings.weight.copy_(principal_embeddings(weight, config.embedding_size))
        return generator.to(adapter.device)

    # ----------------------------------------------------------------- scoring
    def forward(
        self, input_ids: torch.Tensor, lengths: torch.Tensor, word_index: torch.Tensor,
        features: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Head outputs per word: (rows, words) Bernoulli logits, or (rows, words, 2) raw HardKuma
        shapes (before softplus). `lengths` are the real tokens per row (right padding); `features`
        the predictor's states (rows, tokens, hidden) for a generator with features="predictor"."""
        if (features is None) != (self.config.features == "embeddings"):
            raise InvalidParameterError(
                "This generator reads the predictor's hidden states: build its inputs with "
                "word_batch(texts, predictor)." if features is None else
                "This generator reads token embeddings, not predictor states."
            )
        num_words = max(1, int(word_index.max()) + 1)
        x = self.dropout(self.embeddings(input_ids) if features is None else self.projection(features))
        states = bidirectional_gru(self.encoder, x, lengths)
        scores = self.head(self.dropout(pool_words(states, word_index, num_words)))
        return scores.squeeze(-1) if self.config.estimator == "reinforce" else scores

    def gate(self, words: WordBatch) -> Gate:
        """The selection distribution of every word of a WordBatch."""
        out = self(words.input_ids, words.lengths, words.word_index, words.features)
        if self.config.estimator == "reinforce":
            return BernoulliGate(out)
        return HardKumaGate.from_raw(out, *self.config.stretch)

    def word_batch(
        self, texts: Sequence[TokenizedText], predictor: ModelAdapter | None = None,
        states: Sequence[torch.Tensor] | None = None,
    ) -> WordBatch:
        """The generator's inputs for `texts`; a generator with features="predictor" needs the
        `predictor` it was built for (or its `predictor_states` of these texts, computed already)."""
        if self.config.features == "predictor":
            if states is None:
                if predictor is None:
                    raise InvalidParameterError(
                        "This generator reads the predictor's hidden states (features='predictor'): pass the "
                        f"predictor it was trained for ({self.config.predictor_name or 'a ModelAdapter'})."
                    )
                states, _ = predictor_states(predictor, texts)
            mismatch = next((i for i, (text, values) in enumerate(zip(texts, states))
                             if values.shape[0] != len(text.input_ids)), None)
            if len(states) != len(texts) or mismatch is not None:
                raise InvalidInputError(
                    f"Got the states of {len(states)} texts for {len(texts)} texts; give one per text."
                    if len(states) != len(texts) else
                    f"Text {mismatch} has {len(texts[mismatch].input_ids)} tokens but {states[mismatch].shape[0]} "
                    "states; give each text's own (`predictor_states` of these encodings)."
                )
            if states and states[0].shape[-1] != self.config.predictor_hidden_size:
                owner = f"{type(predictor.model).__name__}'s" if predictor is not None else "the states given"
                raise InvalidParameterError(
                    f"This generator reads hidden states of size {self.config.predictor_hidden_size} (it was trained "
                    f"for {self.config.predictor_name!r}), but {owner} are {states[0].shape[-1]}: use the predictor "
                    "it was trained for."
                )
        return WordBatch.from_texts(texts, self.config.pad_token_id or 0, self.device, self.config.unit, states)

    @torch.no_grad()
    def selection_probabilities(
        self, texts: Sequence[TokenizedText] | WordBatch, predictor: ModelAdapter | None = None
    ) -> list[np.ndarray]:
        """P(z_j > 0) for every unit j (word, phrase or sentence) of each text (dropout off), as float64
        arrays; `texts` may be their `word_batch`, already built (else `predictor` as for `word_batch`)."""
        was_training = self.training
        self.eval()
        try:
            words = texts if isinstance(texts, WordBatch) else self.word_batch(texts, predictor)
            probs = self.gate(words).selection_probability().double().cpu().numpy()
        finally:
            self.train(was_training)
        return [probs[i, : len(groups)] for i, groups in enumerate(words.groups)]

    def check_tokenizer(self, tokenizer: Any) -> None:
        """Clear error unless `tokenizer` is the one this generator was trained for."""
        self.config.check_tokenizer(tokenizer)


def load_generator(source: str | Path | RationaleGenerator) -> RationaleGenerator:
    """A RationaleGenerator from itself, a folder saved with `save_pretrained`, or a Hub id."""
    if isinstance(source, RationaleGenerator):
        return source
    if not isinstance(source, (str, Path)):
        raise InvalidParameterError(
            f"generator={source!r} must be a RationaleGenerator, a folder saved with save_pretrained, or a Hub id."
        )
    try:
        return RationaleGenerator.from_pretrained(str(source))
    except (OSError, ValueError) as err:
        raise InvalidParameterError(f"Could not load a rationale generator from {str(source)!r}: {err}") from err
