r"""ERASER comprehensiveness f(x) − f(x \ r): how much the explained class's probability drops when the
rationale r is removed (higher is better).

Loaded offline with `hf_seqinterp.metrics.load_metric("comprehensiveness")`; inputs and outputs are described in
`hf_seqinterp.metrics.evaluate_support`.
"""

from hf_seqinterp.metrics import evaluate_support as support


class Comprehensiveness(support.FaithfulnessModule):
    metric_name = "comprehensiveness"
    about = __doc__
