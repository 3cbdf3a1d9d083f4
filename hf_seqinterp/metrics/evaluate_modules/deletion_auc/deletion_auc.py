"""Area under the deletion curve: the explained class's score as the highest-ranked tokens are removed,
over the fraction removed (lower is better).

Loaded offline with `hf_seqinterp.metrics.load_metric("deletion_auc")`; inputs and outputs are described in
`hf_seqinterp.metrics.evaluate_support`.
"""

from hf_seqinterp.metrics import evaluate_support as support


class DeletionAuc(support.FaithfulnessModule):
    metric_name = "deletion_auc"
    about = __doc__
