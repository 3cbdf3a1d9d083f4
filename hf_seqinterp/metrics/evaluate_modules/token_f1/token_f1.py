"""Token-level F1 between the top-k tokens of an explanation and the human rationale (ERASER; macro =
mean of instance F1, micro = pooled counts).

Loaded offline with `hf_seqinterp.metrics.load_metric("token_f1")`; inputs and outputs are described in
`hf_seqinterp.metrics.evaluate_support`.
"""

from hf_seqinterp.metrics import evaluate_support as support


class TokenF1(support.PlausibilityModule):
    metric_name = "token_f1"
    about = __doc__
