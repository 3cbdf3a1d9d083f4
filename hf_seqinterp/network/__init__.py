"""Network analysis over a dataset: what units, heads and layers of a model respond to.

* `top_activations`: the top-k max-activating contexts of FFN neurons, attention heads and
  residual dimensions, streamed, sharded over processes and resumable.
* `unit_activations`, `activation_html`, `top_contexts_html`: a unit's activation over texts as a
  heat map, and a page of its top contexts.
* `head_statistics`, `plot_head_statistics`: per-head attention statistics over a dataset (Clark
  et al. 2019) as a table and a plot.
* `probe`: linear probes per layer with a control task (Hewitt & Liang 2019): accuracy, control
  accuracy and selectivity on held-out texts.
"""

from .head_stats import STATISTICS, head_statistics, plot_head_statistics
from .probes import is_punctuation, probe
from .top_activations import top_activations
from .units import UNIT_KINDS, UnitGroup, unit_groups
from .view import activation_html, top_contexts_html, unit_activations

__all__ = [
    "STATISTICS",
    "UNIT_KINDS",
    "UnitGroup",
    "activation_html",
    "head_statistics",
    "is_punctuation",
    "plot_head_statistics",
    "probe",
    "top_activations",
    "top_contexts_html",
    "unit_activations",
    "unit_groups",
]
