"""The explanation-dataset schema: fixed Features, lossless Explanation <-> row conversion (also
through Parquet), clear errors on foreign data; the Markdown table used by dataset cards."""

from __future__ import annotations

import json
import re

import datasets
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from test_explanation import make_explanation
from tiny_models import random_texts, tiny_model

import hf_seqinterp as hsi
from hf_seqinterp.dataset import (
    DATASET_SCHEMA_VERSION,
    EXPLANATION_FEATURES,
    SCHEMA,
    dataset_to_explanations,
    explanation_to_row,
    explanations_to_dataset,
    row_to_explanation,
)
from hf_seqinterp.errors import InvalidInputError


@pytest.fixture(scope="module", params=["bert", "gpt2"])
def explanations(request):
    """IG (with extras) and gradient×input on an encoder and a decoder, one text truncated."""
    adapter = hsi.ModelAdapter(*tiny_model(request.param))
    texts = [*random_texts(4), " ".join(["good"] * 200)]
    ig = hsi.explain(texts, adapter, method="integrated_gradients", n_steps=4, target=[0, 1, 2, None, "positive"])
    gxi = hsi.explain(texts, adapter, method="gradient_x_input", score="log_prob")
    return ig + gxi


def test_row_round_trip_is_lossless(explanations):
    assert any(e.warnings for e in explanations) and any(e.extras for e in explanations)
    for expl in explanations:
        row = explanation_to_row(expl, source_index=7, source_id="a-7", label=1)
        assert set(row) == set(EXPLANATION_FEATURES)
        back = row_to_explanation(row)
        assert back == expl
        assert back.attributions.dtype == np.float32 and np.array_equal(back.attributions, expl.attributions)
        assert row["prediction"] == int(np.argmax(expl.probabilities)) and row["predicted_label"] == expl.predicted_label


def test_round_trip_through_parquet_keeps_features_and_values(explanations, tmp_path):
    ds = explanations_to_dataset(explanations, labels=[i % 2 for i in range(len(explanations))])
    assert ds.features == EXPLANATION_FEATURES
    path = tmp_path / "x.parquet"
    ds.to_parquet(str(path))
    # the Arrow types in the file alone (no datasets metadata) give back the documented Features
    assert datasets.Features.from_arrow_schema(pq.read_schema(path).remove_metadata()) == EXPLANATION_FEATURES
    table = pq.read_table(path)
    word_ids = table.column("word_ids").to_pylist()
    assert word_ids == [list(e.word_ids) for e in explanations]
    loaded = datasets.Dataset.from_parquet(str(path), cache_dir=str(tmp_path / "cache"))
    assert loaded.features == EXPLANATION_FEATURES
    assert dataset_to_explanations(loaded) == explanations
    assert loaded["source_index"] == list(range(len(explanations)))
    assert loaded["source_id"] == [str(i) for i in range(len(explanations))]
    assert loaded["label"] == [i % 2 for i in range(len(explanations))]


def test_schema_is_fixed_and_documented():
    assert list(EXPLANATION_FEATURES) == list(SCHEMA)
    assert all(description for _, description in SCHEMA.values())
    expected = {
        "attributions": pa.list_(pa.float32()),
        "offsets": pa.list_(pa.list_(pa.int32(), 2)),
        "word_ids": pa.list_(pa.int32()),
        "params": pa.string(),
        "schema_version": pa.int32(),
    }
    schema = EXPLANATION_FEATURES.arrow_schema
    for name, arrow_type in expected.items():
        assert schema.field(name).type.equals(arrow_type, check_metadata=False), name


def test_documented_schema_is_the_code_schema():
    from conftest import REPO

    from hf_seqinterp.card import _type_name

    page = (REPO / "docs" / "explain_dataset.md").read_text(encoding="utf-8")
    documented = re.findall(r"^\| `(\w+)` \| ([\w\[\], ]+) \|", page, re.MULTILINE)
    assert documented == [(name, _type_name(feature)) for name, (feature, _) in SCHEMA.items()]


def test_params_and_extras_are_json_objects():
    expl = make_explanation(params={"n_steps": 8, "baseline": "pad", "alpha": 0.1 + 0.2, "pair": (1, 2)})
    row = explanation_to_row(expl)
    assert json.loads(row["params"]) == {"n_steps": 8, "baseline": "pad", "alpha": 0.30000000000000004, "pair": [1, 2]}
    assert json.loads(row["extras"]) == expl.extras
    assert row["source_index"] is None and row["source_id"] is None
    assert row_to_explanation(row) == expl


def test_newer_schema_version_is_refused():
    row = explanation_to_row(make_explanation(), source_index=0)
    row["schema_version"] = DATASET_SCHEMA_VERSION + 1
    with pytest.raises(InvalidInputError, match=f"schema {DATASET_SCHEMA_VERSION + 1}, newer .* upgrade hf_seqinterp"):
        row_to_explanation(row)


def test_foreign_dataset_gives_a_clear_error():
    with pytest.raises(InvalidInputError, match=r"not an explanation dataset: it lacks the columns \['aggregation'"):
        dataset_to_explanations(datasets.Dataset.from_dict({"text": ["a"], "label": [0]}))


def test_wrong_number_of_labels():
    with pytest.raises(InvalidInputError, match="Got 1 labels for 2 explanations"):
        explanations_to_dataset([make_explanation(), make_explanation()], labels=[0])


# --------------------------------------------------------------------------- markdown table
def test_markdown_table_lists_every_word_with_signed_scores_and_bold_top():
    a = make_explanation()  # words: unhappy (-0.5), ending (+2.0), ! (-0.125)
    b = make_explanation(method="integrated_gradients", attributions=np.array([0, 1, 1, -3, 0.5, 0], dtype=np.float32))
    table = hsi.render_markdown([a, b], bold_top=1).splitlines()
    assert table[0] == "| word | gradient\\_x\\_input | integrated\\_gradients |"
    assert table[1] == "|---|---:|---:|"
    assert table[2:] == [
        "| unhappy | -0.5 | +2 |",
        "| ending | **+2** | **-3** |",
        "| ! | -0.125 | +0.5 |",
    ]


def test_markdown_escapes_table_syntax_and_refuses_different_texts():
    expl = make_explanation(text="a|b", tokens=["[CLS]", "a|b", "[SEP]"], input_ids=[1, 2, 3],
                            offsets=[(0, 0), (0, 3), (0, 0)], word_ids=[None, 0, None],
                            special_tokens_mask=[True, False, True], attributions=np.zeros(3, dtype=np.float32))
    assert "| a\\|b |" in hsi.render_markdown(expl)
    with pytest.raises(ValueError, match="same text"):
        hsi.render_markdown([expl, make_explanation()])
