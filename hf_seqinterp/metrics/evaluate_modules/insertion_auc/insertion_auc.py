"""Area under the insertion curve: the explained class's score as the highest-ranked tokens are put
back into an empty input, over the fraction kept (higher is better).

Loaded offline with `hf_seqinterp.metrics.load_metric("insertion_auc")`; inputs and outputs are described in
`hf_seqinterp.metrics.evaluate_support`.
"""

from hf_seqinterp.metrics import evaluate_support as support


class InsertionAuc(support.FaithfulnessModule):
    metric_name = "insertion_auc"
    about = __doc__
