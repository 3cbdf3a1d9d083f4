"""Rationale extraction (Lei, Barzilay & Jaakkola 2016): a generator that selects the words of an
input which alone suffice for a classifier's prediction, trained against any
`*ForSequenceClassification` model and shared like a model (`save_pretrained` / `push_to_hub`).

    from hf_seqinterp.rationale import RationaleGenerator, RationaleTrainingArguments, train_rationale_generator
    generator = RationaleGenerator.for_predictor(adapter, estimator="hardkuma", target_rate=0.15)
    train_rationale_generator(adapter, texts, generator=generator, args=RationaleTrainingArguments(epochs=3))
    hf_seqinterp.explain(text, adapter, method="rationale", generator=generator)

Importing this package registers the generator with `AutoConfig` / `AutoModel`.
"""

from transformers import AutoConfig, AutoModel

from .configuration import ESTIMATORS, GENERATOR_REPLACEMENTS, RationaleGeneratorConfig, tokenizer_fingerprint
from .gates import BernoulliGate, HardKumaGate
from .modeling import RationaleGenerator, WordBatch, load_generator
from .objectives import HardKumaObjective, ReinforceObjective
from .training import (
    RationaleTrainingArguments,
    RationaleTrainingResult,
    predicted_labels,
    train_rationale_generator,
)

AutoConfig.register(RationaleGeneratorConfig.model_type, RationaleGeneratorConfig, exist_ok=True)
AutoModel.register(RationaleGeneratorConfig, RationaleGenerator, exist_ok=True)

__all__ = [
    "ESTIMATORS",
    "GENERATOR_REPLACEMENTS",
    "BernoulliGate",
    "HardKumaGate",
    "HardKumaObjective",
    "RationaleGenerator",
    "RationaleGeneratorConfig",
    "RationaleTrainingArguments",
    "RationaleTrainingResult",
    "ReinforceObjective",
    "WordBatch",
    "load_generator",
    "predicted_labels",
    "tokenizer_fingerprint",
    "train_rationale_generator",
]
