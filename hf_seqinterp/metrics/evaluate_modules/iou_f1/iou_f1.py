"""ERASER IOU-F1: a predicted span matches a human span when their intersection over union is at least
0.5; F1 of span precision and recall.

Loaded offline with `hf_seqinterp.metrics.load_metric("iou_f1")`; inputs and outputs are described in
`hf_seqinterp.metrics.evaluate_support`.
"""

from hf_seqinterp.metrics import evaluate_support as support


class IouF1(support.PlausibilityModule):
    metric_name = "iou_f1"
    about = __doc__
