"""Rationale extraction (Lei, Barzilay & Jaakkola 2016): a generator that selects the words of an
input which alone suffice for a classifier's prediction, trained against any
`*ForSequenceClassification` model and shared like a model (`save_pretrained` / `push_to_hub`).

    from hf_seqinterp.rationale import RationaleGenerator, RationaleTrainingArguments, train_rationale_generator
    generator = RationaleGenerator.for_predictor(adapter, estimator="hardkuma", target_rate=0.15)
    train_rationale_generator(adapter, texts, generator=generator, args=RationaleTrainingArguments(epochs=3))
    hf_seqinterp.explain(text, adapter, method="rationale", generator=generator)

Importing this package registers the generator with `AutoConfig` / `AutoModel`; the training code
(and `accelerate`) loads on first use of a training name.
"""

from typing import Any

from transformers import AutoConfig, AutoModel

from .configuration import ESTIMATORS, GENERATOR_REPLACEMENTS, RationaleGeneratorConfig, tokenizer_fingerprint
from .gates import BernoulliGate, HardKumaGate
from .modeling import RationaleGenerator, WordBatch, load_generator, predictor_states
from .objectives import HardKumaObjective, ReinforceObjective

AutoConfig.register(RationaleGeneratorConfig.model_type, RationaleGeneratorConfig, exist_ok=True)
AutoModel.register(RationaleGeneratorConfig, RationaleGenerator, exist_ok=True)

_TRAINING = (
    "RationaleTrainingArguments", "RationaleTrainingResult", "distil_word_scores", "predicted_labels", "train_rationale_generator",
)


def __getattr__(name: str) -> Any:
    if name in _TRAINING:
        from . import training

        return getattr(training, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

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
    "distil_word_scores",
    "load_generator",
    "predicted_labels",
    "predictor_states",
    "tokenizer_fingerprint",
    "train_rationale_generator",
]
