"""Area under the precision-recall curve of the token scores against the human rationale (ERASER
soft-score plausibility), averaged over instances.

Loaded offline with `hf_seqinterp.metrics.load_metric("auprc")`; inputs and outputs are described in
`hf_seqinterp.metrics.evaluate_support`.
"""

from hf_seqinterp.metrics import evaluate_support as support


class Auprc(support.PlausibilityModule):
    metric_name = "auprc"
    about = __doc__
