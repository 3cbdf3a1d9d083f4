"""Kendall tau-b between the explanation's token scores and leave-one-out scores f(x) − f(x without
token i) (higher is better).

Loaded offline with `hf_seqinterp.metrics.load_metric("tau_loo")`; inputs and outputs are described in
`hf_seqinterp.metrics.evaluate_support`.
"""

from hf_seqinterp.metrics import evaluate_support as support


class TauLoo(support.FaithfulnessModule):
    metric_name = "tau_loo"
    about = __doc__
