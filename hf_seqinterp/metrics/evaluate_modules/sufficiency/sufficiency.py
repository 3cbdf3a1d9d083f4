"""ERASER sufficiency f(x) − f(r): how much the explained class's probability drops when only the
rationale r is kept (lower is better; can be negative).

Loaded offline with `hf_seqinterp.metrics.load_metric("sufficiency")`; inputs and outputs are described in
`hf_seqinterp.metrics.evaluate_support`.
"""

from hf_seqinterp.metrics import evaluate_support as support


class Sufficiency(support.FaithfulnessModule):
    metric_name = "sufficiency"
    about = __doc__
