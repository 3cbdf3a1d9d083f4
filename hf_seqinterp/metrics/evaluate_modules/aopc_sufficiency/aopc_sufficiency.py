"""AOPC sufficiency: the mean over the ERASER bins b ∈ {1, 5, 10, 20, 50}% of f(x) − f(only the top b
of tokens) (lower is better).

Loaded offline with `hf_seqinterp.metrics.load_metric("aopc_sufficiency")`; inputs and outputs are described in
`hf_seqinterp.metrics.evaluate_support`.
"""

from hf_seqinterp.metrics import evaluate_support as support


class AopcSufficiency(support.FaithfulnessModule):
    metric_name = "aopc_sufficiency"
    about = __doc__
