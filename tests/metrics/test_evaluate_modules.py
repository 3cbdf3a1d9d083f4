"""The packaged `evaluate` modules load offline and give the same numbers as the Python functions."""

from __future__ import annotations

import numpy as np
import pytest
from metric_helpers import make_explanation
from tiny_models import random_texts, tiny_model

from hf_seqinterp import ModelAdapter, get_explainer
from hf_seqinterp.errors import InvalidParameterError
from hf_seqinterp.metrics import (
    EVALUATE_MODULES,
    FAITHFULNESS_METRICS,
    PLAUSIBILITY_METRICS,
    faithfulness,
    load_metric,
    plausibility_arrays,
)


@pytest.fixture(scope="module")
def tiny_bert():
    return ModelAdapter(*tiny_model("bert"))


def test_every_metric_has_a_module():
    names = sorted(p.name for p in EVALUATE_MODULES.iterdir() if (p / f"{p.name}.py").exists())
    assert names == sorted(FAITHFULNESS_METRICS + PLAUSIBILITY_METRICS)
    with pytest.raises(InvalidParameterError, match="available: aopc_comprehensiveness"):
        load_metric("aopc")


def test_faithfulness_modules_match_the_functions(tiny_bert):
    expls = get_explainer("random").create(tiny_bert).explain(random_texts(4, seed=9))
    direct = faithfulness(expls, tiny_bert, list(FAITHFULNESS_METRICS), replacement="mask")
    for name in FAITHFULNESS_METRICS:
        out = load_metric(name).compute(explanations=expls, model=tiny_bert, replacement="mask")
        assert out[name] == pytest.approx(direct.summary()[name], abs=1e-6), name
        np.testing.assert_allclose(out["per_example"], direct.values[name], atol=1e-6)
        assert out["settings"]["replacement"] == "mask"


def test_faithfulness_module_accepts_json_and_batches(tiny_bert):
    expls = [make_explanation(tiny_bert, t) for t in random_texts(4, seed=1)]
    metric = load_metric("aopc_sufficiency")
    metric.add_batch(explanations=expls[:2])
    metric.add(explanation=expls[2].to_json())
    metric.add(explanation=expls[3])
    out = metric.compute(model=tiny_bert)
    np.testing.assert_allclose(out["per_example"], faithfulness(expls, tiny_bert, ["aopc_sufficiency"]).values["aopc_sufficiency"], atol=1e-6)
    with pytest.raises(ValueError, match="pass model="):
        load_metric("tau_loo").compute(explanations=expls)


def test_plausibility_modules_match_the_functions():
    rng = np.random.default_rng(3)
    scores = [rng.normal(size=n).round(1).tolist() for n in (5, 9, 14)]
    refs = [(rng.random(len(s)) < 0.4).astype(int).tolist() for s in scores]
    refs[0][0] = 1
    summary = plausibility_arrays([np.asarray(s) for s in scores], [np.asarray(r, bool) for r in refs]).summary()
    for name in PLAUSIBILITY_METRICS:
        out = load_metric(name).compute(predictions=scores, references=refs)
        assert out[name] == pytest.approx(summary[name]), name
        assert out["n_evaluated"] == summary["n_evaluated"]
