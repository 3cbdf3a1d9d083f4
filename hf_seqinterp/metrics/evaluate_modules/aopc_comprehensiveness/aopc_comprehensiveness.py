"""AOPC comprehensiveness: the mean over the ERASER bins b ∈ {1, 5, 10, 20, 50}% of f(x) − f(x without
the top b of tokens) (higher is better).

Loaded offline with `hf_seqinterp.metrics.load_metric("aopc_comprehensiveness")`; inputs and outputs are described in
`hf_seqinterp.metrics.evaluate_support`.
"""

from hf_seqinterp.metrics import evaluate_support as support


class AopcComprehensiveness(support.FaithfulnessModule):
    metric_name = "aopc_comprehensiveness"
    about = __doc__
