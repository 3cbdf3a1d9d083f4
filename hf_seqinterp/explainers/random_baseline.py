r"""A random attribution: the sanity baseline every faithfulness or plausibility table should include.

A method that cannot beat random scores on a metric is telling nothing about the model there
(Adebayo et al. 2018, "Sanity checks for saliency maps", arXiv:1810.03292; DeYoung et al. 2020 use
random rationales as the floor of ERASER).
"""

from __future__ import annotations

import zlib
from typing import Literal

import numpy as np

from ..adapter import Batch
from ..errors import InvalidParameterError
from ..validation import check_seed
from .base import Explainer, RowResult, register_explainer

DISTRIBUTIONS = ("uniform", "gaussian")


@register_explainer("random")
class RandomAttribution(Explainer):
    r"""Random scores per token, seeded: a sanity baseline for metric tables, not an explanation.

    a_t ~ U(0, 1) (distribution="uniform") or N(0, 1) ("gaussian") for every non-special token;
    special tokens get 0. The generator of a text is seeded with (seed, CRC-32 of its token ids), so
    a text gets the same scores alone or in any batch, and the same seed gives the same numbers.
    Costs one forward pass (for the prediction the Explanation records).
    """

    default_batch_size = 64

    def __init__(
        self, adapter, *, distribution: Literal["uniform", "gaussian"] = "uniform", seed: int = 0, score: str = "logit"
    ):
        if distribution not in DISTRIBUTIONS:
            raise InvalidParameterError(f"distribution={distribution!r}; use one of {', '.join(DISTRIBUTIONS)}.")
        self.distribution = distribution
        self.seed = check_seed(seed)
        super().__init__(adapter, score=score)

    def random_scores(self, input_ids: list[int], special_tokens_mask: list[bool]) -> np.ndarray:
        """The scores of one tokenised text (zeros at special tokens)."""
        key = zlib.crc32(np.asarray(input_ids, dtype=np.int64).tobytes())
        rng = np.random.default_rng([self.seed, key])
        n = len(input_ids)
        values = rng.random(n) if self.distribution == "uniform" else rng.standard_normal(n)
        values[np.asarray(special_tokens_mask, dtype=bool)] = 0.0
        return values.astype(np.float32)

    def _explain(self, batch: Batch, targets: list[int | None]) -> list[RowResult]:
        logits = self._unperturbed_logits(batch)
        chosen, _ = self._targets(logits, targets)
        scores = [self.random_scores(enc.input_ids, enc.special_tokens_mask) for enc in batch.encodings]
        return self._results(batch, scores, logits, chosen)
