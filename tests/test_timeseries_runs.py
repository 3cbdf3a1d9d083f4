"""explain_series_dataset: the same explanations as explain_series, in source order, resumable after a
crash without recomputing finished shards, refusing to mix runs; forecasters with covariate columns."""

from __future__ import annotations

import datasets
import numpy as np
import pytest
from conftest import crash_after_shards
from timeseries_models import forecaster_inputs, tiny_forecaster, tiny_series_model

from hf_seqinterp.errors import InvalidInputError, InvalidParameterError
from hf_seqinterp.shards import ShardStore
from hf_seqinterp.timeseries import (
    SERIES_FEATURES,
    SeriesAdapter,
    dataset_to_series_explanations,
    explain_series,
    explain_series_dataset,
    series_dataset,
)

METHODS = {"saliency": {}, "integrated_gradients": {"n_steps": 8}}
X = np.random.default_rng(7).normal(size=(11, 24, 3)).astype(np.float32)
LABELS = [i % 4 for i in range(11)]


@pytest.fixture(scope="module")
def adapter():
    return SeriesAdapter(tiny_series_model(), channel_names=["a", "b", "c"])


@pytest.fixture(scope="module")
def source():
    return series_dataset(X, LABELS, channel_names=["a", "b", "c"])


def run(adapter, source, output_dir, methods=METHODS, **kwargs):
    kwargs = {"label_column": "label", "shard_size": 3, "progress": False, **kwargs}
    return explain_series_dataset(adapter, source, methods, output_dir=output_dir, **kwargs)


@pytest.fixture(scope="module")
def uninterrupted(adapter, source, tmp_path_factory):
    out = tmp_path_factory.mktemp("series-run")
    return out, run(adapter, source, out)


def assert_same(got, expected):
    assert len(got) == len(expected)
    for a, b in zip(got, expected):
        np.testing.assert_allclose(a.attributions, b.attributions, atol=1e-6)
        da, db = a.to_dict(), b.to_dict()
        for key in ("attributions", "outputs", "rows"):
            da.pop(key), db.pop(key)
        assert da == db


def test_rows_equal_explain_series_in_source_order(adapter, uninterrupted):
    _, ds = uninterrupted
    assert ds.features == SERIES_FEATURES and len(ds) == 22
    assert ds["source_index"] == [i for i in range(11) for _ in range(2)]
    assert ds["method"] == ["saliency", "integrated_gradients"] * 11
    assert ds["label"] == [label for label in LABELS for _ in range(2)]
    expected = [e for pair in zip(explain_series(adapter, X, "saliency"),
                                  explain_series(adapter, X, "integrated_gradients", n_steps=8)) for e in pair]
    assert_same(dataset_to_series_explanations(ds), expected)
    assert list(ShardStore(uninterrupted[0]).shards()) == [(k, 4) for k in range(4)]


def test_resume_after_a_crash_recomputes_only_missing_shards(adapter, source, uninterrupted, tmp_path, monkeypatch):
    written = crash_after_shards(monkeypatch, 2)
    with pytest.raises(KeyboardInterrupt):
        run(adapter, source, tmp_path)
    monkeypatch.undo()
    store = ShardStore(tmp_path)
    before = {key: path.stat().st_mtime_ns for key, path in store.shards().items()}
    assert len(before) == 2 and [index for index, _ in written] == sorted(k for k, _ in before)

    resumed = run(adapter, source, tmp_path)

    assert {k: p.stat().st_mtime_ns for k, p in store.shards().items() if k in before} == before
    [log] = store.read_logs()
    assert (log.shards_reused, log.shards_computed) == (2, 2)
    expected = uninterrupted[1]
    assert resumed["source_index"] == expected["source_index"] and resumed["method"] == expected["method"]
    assert_same(dataset_to_series_explanations(resumed), dataset_to_series_explanations(expected))


def test_a_different_run_is_refused_unless_overwrite(adapter, source, tmp_path):
    run(adapter, source.select(range(4)), tmp_path)
    with pytest.raises(InvalidParameterError, match=r"differs in: methods"):
        run(adapter, source.select(range(4)), tmp_path, methods={"saliency": {"score": "prob"}})
    with pytest.raises(InvalidParameterError, match=r"differs in: data_sha256"):
        run(adapter, source.select([0, 1, 2, 5]), tmp_path)
    ds = run(adapter, source.select(range(4)), tmp_path, methods=["channel_erasure"], target=1, overwrite=True)
    assert ds["method"] == ["channel_erasure"] * 4
    assert all(e.rows[0]["target"] == 1 for e in dataset_to_series_explanations(ds))


def test_forecaster_covariates_come_from_their_columns(tmp_path):
    adapter = SeriesAdapter(tiny_forecaster("time_series_transformer"))
    items = forecaster_inputs(5, seed=3)
    source = datasets.Dataset.from_dict({name: [item[name] for item in items] for name in items[0]})
    ds = explain_series_dataset(adapter, source, "integrated_gradients", output_dir=tmp_path, target=(1, None),
                                shard_size=2, progress=False)
    expected = explain_series(adapter, items, "integrated_gradients", target=(1, None))
    assert_same(dataset_to_series_explanations(ds), expected)
    with pytest.raises(InvalidInputError, match="lacks the columns \\['future_time_features'\\]"):
        explain_series_dataset(adapter, source.remove_columns("future_time_features"), "saliency",
                               output_dir=tmp_path / "other", progress=False)


def test_bad_input_fails_before_any_work(adapter, source, tmp_path, monkeypatch):
    monkeypatch.setattr(ShardStore, "write", lambda *a: pytest.fail("work started"))
    bad = source.map(lambda row, i: {"past_values": row["past_values"][:20] if i == 7 else row["past_values"]}, with_indices=True)
    with pytest.raises(InvalidInputError, match="Series 7 has 20 time steps"):
        run(adapter, bad, tmp_path)
    with pytest.raises(InvalidInputError, match="no column 'gold'"):
        run(adapter, source, tmp_path, label_column="gold")
    with pytest.raises(InvalidParameterError, match="Unknown method|not a registered|did you mean"):
        run(adapter, source, tmp_path, methods=["salincy"])
