"""A synthetic task whose rationale is known: a two-word phrase planted among random filler words.

The phrase is "superb" or "dreadful" (which decides the label: 1 or 0) followed by "charming" or
"clumsy" (random). The classifier, a 1-layer tiny BERT trained in-process for a few hundred steps,
sees the filler words [MASK]ed at random rates, so that seeing only a rationale is in its training
distribution (as a rationale's predictor must be; cf. Madsen et al. 2023), and in 30% of its
examples one or both phrase words masked with a uniform target: only the whole phrase decides, so
a rationale must keep both words. "superb" and "dreadful" split into several WordPiece tokens, so
selections must be made per word.
"""

from __future__ import annotations

import functools
import random
from dataclasses import dataclass

import numpy as np
import torch
from tiny_models import wordpiece_tokenizer
from transformers import BertConfig, BertForSequenceClassification

from hf_seqinterp import ModelAdapter

PHRASES = {1: ("superb", "splendid"), 0: ("dreadful", "tedious")}
FILLER = (
    "the", "a", "an", "this", "that", "film", "movie", "story", "actor", "plot", "scene", "music",
    "script", "director", "cast", "ending", "is", "was", "are", "were", "with", "of", "in", "on",
    "at", "to", "it", "its", "he", "she", "they", "we", "you", "and", "or",
)


@dataclass
class PlantedData:
    texts: list[str]
    labels: list[int]
    planted: list[set[int]]  # word indices of the planted phrase in each text

    @property
    def planted_rate(self) -> float:
        """The mean share of a text's words that are planted."""
        return float(np.mean([len(p) / len(t.split()) for t, p in zip(self.texts, self.planted)]))


def planted_data(n: int, seed: int, min_filler: int = 10, max_filler: int = 16) -> PlantedData:
    rng = random.Random(seed)
    texts, labels, planted = [], [], []
    for _ in range(n):
        label = rng.randrange(2)
        words = [rng.choice(FILLER) for _ in range(rng.randint(min_filler, max_filler))]
        at = rng.randint(0, len(words))
        words[at:at] = list(PHRASES[label])
        texts.append(" ".join(words))
        labels.append(label)
        planted.append({at, at + 1})
    return PlantedData(texts, labels, planted)


def _masked_example(ids: list[int], word_ids: list[int | None], planted: set[int], label: int,
                    mask_id: int, rng: random.Random) -> tuple[list[int], list[float]]:
    """Filler words [MASK]ed at a random rate; in 30% of the examples also one or both phrase words,
    with a softened target then: 3/4 on the label for half the phrase, uniform for none of it."""
    rate = rng.random()
    dropped = {w for w in set(word_ids) - {None} - planted if rng.random() < rate}
    confidence = 1.0
    if rng.random() < 0.5:
        hidden = rng.sample(sorted(planted), rng.randint(1, 2))
        dropped |= set(hidden)
        confidence = 0.75 if len(hidden) == 1 else 0.5
    target = [1.0 - confidence, confidence] if label == 1 else [confidence, 1.0 - confidence]
    return [mask_id if w in dropped else i for i, w in zip(ids, word_ids)], target


@functools.lru_cache(maxsize=1)
def planted_classifier(steps: int = 300, seed: int = 0, lr: float = 3e-3) -> ModelAdapter:
    """A 1-layer tiny BERT trained on the planted task (cached: built once per test session)."""
    tokenizer = wordpiece_tokenizer()
    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=1, num_attention_heads=4,
        intermediate_size=64, max_position_embeddings=64, num_labels=2, hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0, id2label={0: "MIXED", 1: "MATCHED"}, label2id={"MIXED": 0, "MATCHED": 1},
    )
    model = BertForSequenceClassification(config)
    data = planted_data(2000, seed=seed + 1)
    encoded = tokenizer(data.texts)
    rng = random.Random(seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr)
    model.train()
    for _ in range(steps):
        rows = rng.sample(range(len(data.texts)), 32)
        examples = [
            _masked_example(encoded["input_ids"][r], encoded.word_ids(r), data.planted[r], data.labels[r],
                            tokenizer.mask_token_id, rng)
            for r in rows
        ]
        batch = tokenizer.pad({"input_ids": [ids for ids, _ in examples]}, return_tensors="pt")
        logits = model(**batch).logits
        loss = torch.nn.functional.cross_entropy(logits, torch.tensor([target for _, target in examples]))
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    return ModelAdapter(model.eval(), tokenizer)


def precision_recall(selected: list[set[int]], planted: list[set[int]]) -> tuple[float, float]:
    """Micro precision and recall of selected word indices against the planted words."""
    hits = sum(len(s & p) for s, p in zip(selected, planted))
    chosen = sum(len(s) for s in selected)
    return hits / max(chosen, 1), hits / sum(len(p) for p in planted)
