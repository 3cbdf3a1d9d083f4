"""Contextual decomposition for transformers: the shared propagation rules (`rules`), the
per-architecture adapters that name each model family's modules (`architectures`), the two-stream
forward over batches of relevant sets (`propagate`), relevant sets from user spans (`spans`) and
ACD-style phrase hierarchies (`hierarchy`). The explainer is `contextual_decomposition` in
`hf_seqinterp.explainers.decomposition`."""

from .architectures import ARCHITECTURES, model_spec
from .hierarchy import PhraseHierarchy
from .propagate import Decomposer, Decomposition
from .spans import Interaction, SpanScore

__all__ = [
    "ARCHITECTURES",
    "Decomposer",
    "Decomposition",
    "Interaction",
    "PhraseHierarchy",
    "SpanScore",
    "model_spec",
]
