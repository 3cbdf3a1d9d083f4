"""explain_dataset in one process: same numbers as explain(), source order, shard layout, resume
after a crash without recomputing finished shards, refusal to mix runs, clear errors, the CLI."""

from __future__ import annotations

import json

import datasets
import numpy as np
import pytest
from conftest import crash_after_shards
from tiny_models import random_texts, save_tiny_model, tiny_model

import hf_seqinterp as hsi
from hf_seqinterp.cli import main, method_params
from hf_seqinterp.errors import InvalidInputError, InvalidParameterError, SeqInterpError, UnknownMethodError
from hf_seqinterp.shards import ShardStore, plan_shards

TEXTS = random_texts(23, seed=5)
METHODS = {"gradient_x_input": {}, "integrated_gradients": {"n_steps": 4}}


@pytest.fixture(scope="module")
def adapter():
    return hsi.ModelAdapter(*tiny_model("bert"))


@pytest.fixture(scope="module")
def source():
    return datasets.Dataset.from_dict(
        {"sentence": TEXTS, "idx": [f"r{i}" for i in range(len(TEXTS))], "label": [i % 3 for i in range(len(TEXTS))]}
    )


def run(adapter, source, output_dir, methods=METHODS, **kwargs):
    kwargs = {"text_column": "sentence", "id_column": "idx", "label_column": "label", "shard_size": 5, **kwargs}
    return hsi.explain_dataset(adapter, source, methods, output_dir=output_dir, progress=False, **kwargs)


def assert_same_explanations(got, expected, atol=1e-6, rtol=0.0):
    """Equal up to float rounding in attributions and probabilities, exactly equal in everything else."""
    assert len(got) == len(expected)
    for a, b in zip(got, expected):
        np.testing.assert_allclose(a.attributions, b.attributions, atol=atol, rtol=rtol)
        np.testing.assert_allclose(a.probabilities, b.probabilities, atol=atol, rtol=rtol)
        da, db = a.to_dict(), b.to_dict()
        for key in ("attributions", "probabilities", "extras"):
            da.pop(key), db.pop(key)
        assert da == db


@pytest.fixture(scope="module")
def uninterrupted(adapter, source, tmp_path_factory):
    out = tmp_path_factory.mktemp("uninterrupted")
    return out, run(adapter, source, out)


def test_rows_match_explain_in_source_order(adapter, uninterrupted):
    out, ds = uninterrupted
    n = len(TEXTS)
    assert ds.features == hsi.EXPLANATION_FEATURES and len(ds) == 2 * n
    assert ds["source_index"] == [i for i in range(n) for _ in range(2)]
    assert ds["method"] == ["gradient_x_input", "integrated_gradients"] * n
    assert ds["source_id"] == [f"r{i}" for i in range(n) for _ in range(2)]
    assert ds["label"] == [i % 3 for i in range(n) for _ in range(2)]
    expected = [
        e for pair in zip(hsi.explain(TEXTS, adapter, method="gradient_x_input"),
                          hsi.explain(TEXTS, adapter, method="integrated_gradients", n_steps=4)) for e in pair
    ]
    assert_same_explanations(hsi.dataset_to_explanations(ds), expected, atol=1e-5)  # batch == one-by-one bound


def test_shards_hold_rows_of_similar_length_and_every_method(uninterrupted):
    out, _ = uninterrupted
    store = ShardStore(out)
    assert list(store.shards()) == [(k, 5) for k in range(5)]
    longest_first = sorted(range(len(TEXTS)), key=lambda i: (-len(TEXTS[i]), i))
    for (k, _), path in store.shards().items():
        shard = datasets.Dataset.from_parquet(str(path), cache_dir=str(out / "test-cache"))
        assert shard["source_index"] == [i for i in sorted(longest_first[5 * k : 5 * k + 5]) for _ in range(2)]
        assert shard["method"] == ["gradient_x_input", "integrated_gradients"] * (len(shard) // 2)
    assert plan_shards([len(t) for t in TEXTS], 5) == [sorted(longest_first[a : a + 5]) for a in range(0, 23, 5)]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["methods"]["integrated_gradients"]["n_steps"] == 4 and manifest["shard_size"] == 5
    [log] = store.read_logs()
    assert (log.shards_computed, log.shards_reused, log.rows_computed) == (5, 0, 23)
    assert log.explain_s > 0 and log.write_s > 0


def test_resume_after_a_crash_recomputes_only_missing_shards(adapter, source, uninterrupted, tmp_path, monkeypatch):
    written = crash_after_shards(monkeypatch, 2)
    with pytest.raises(KeyboardInterrupt):
        run(adapter, source, tmp_path)
    monkeypatch.undo()
    store = ShardStore(tmp_path)
    assert list(store.shards()) == [(0, 5), (1, 5)] and written == [(0, 5), (1, 5)]
    before = {key: path.stat().st_mtime_ns for key, path in store.shards().items()}
    (tmp_path / ".tmp-999-shard-000002-of-000005.parquet").write_bytes(b"half a parquet file")

    resumed = run(adapter, source, tmp_path)

    assert not list(tmp_path.glob(".tmp-*"))
    assert {k: p.stat().st_mtime_ns for k, p in store.shards().items() if k in before} == before
    [log] = store.read_logs()
    assert (log.shards_reused, log.shards_computed, log.rows_computed) == (2, 3, 13)  # 23 rows - 2 x 5
    expected = uninterrupted[1]
    assert resumed["source_index"] == expected["source_index"] and resumed["method"] == expected["method"]
    assert_same_explanations(hsi.dataset_to_explanations(resumed), hsi.dataset_to_explanations(expected))


def test_a_different_run_is_refused_unless_overwrite(adapter, source, tmp_path):
    run(adapter, source.select(range(6)), tmp_path)
    with pytest.raises(InvalidParameterError, match=r"different run \(it differs in: methods\)"):
        run(adapter, source.select(range(6)), tmp_path, methods={"gradient_x_input": {"score": "prob"}})
    with pytest.raises(InvalidParameterError, match=r"differs in: data_sha256, num_rows"):
        run(adapter, source.select(range(7)), tmp_path)
    ds = run(adapter, source.select(range(7)), tmp_path, methods=["saliency"], shard_size=3, overwrite=True)
    assert ds["method"] == ["saliency"] * 7
    assert list(ShardStore(tmp_path).shards()) == [(0, 3), (1, 3), (2, 3)]


def test_finished_run_is_not_recomputed(adapter, source, uninterrupted, monkeypatch):
    out, expected = uninterrupted
    monkeypatch.setattr(ShardStore, "write", lambda *a: pytest.fail("a finished shard was recomputed"))
    again = run(adapter, source, out)
    assert again["attributions"] == expected["attributions"]


def test_per_row_targets_and_plain_lists(adapter, tmp_path):
    data = datasets.Dataset.from_dict({"text": TEXTS[:4], "want": ["positive", "0", "neutral", "2"]})
    ds = hsi.explain_dataset(adapter, data, "gradient_x_input", target_column="want", output_dir=tmp_path / "a", progress=False)
    assert ds["target"] == [2, 0, 1, 2]
    listed = hsi.explain_dataset(adapter, TEXTS[:4], "gradient_x_input", target=1, output_dir=tmp_path / "b", progress=False)
    assert listed["target"] == [1] * 4 and listed["text"] == TEXTS[:4] and listed["label"] == [None] * 4


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"dataset": ["fine", "good", "  ", "bad"]}, InvalidInputError, r"Text 2 is empty"),
        ({"dataset": datasets.Dataset.from_dict({"text": ["ok", ""]})}, InvalidInputError, r"Row 1 of column 'text' is ''"),
        ({"methods": "shap"}, UnknownMethodError, r"'shap' is not a registered explanation method"),
        ({"methods": {"integrated_gradients": {"steps": 3}}}, InvalidParameterError, r"does not take parameter\(s\) 'steps'"),
        ({"text_column": "body"}, InvalidInputError, r"no column 'body'; its columns are \['text', 'label'\]"),
        ({"label_column": "text"}, InvalidInputError, r"must hold class ids \(int\); row 0 holds 'a good film'"),
        ({"target": 1, "target_column": "label"}, InvalidParameterError, r"target= or target_column=, not both"),
        ({"target": "happy"}, SeqInterpError, r"'happy' is not a label"),
        ({"shard_size": 0}, InvalidParameterError, r"shard_size must be an integer >= 1"),
        ({"dataset": datasets.DatasetDict({"a": datasets.Dataset.from_dict({"text": ["x"]})})}, InvalidInputError, r"DatasetDict with splits \['a'\]"),
    ],
)
def test_bad_input_fails_before_any_work(adapter, tmp_path, kwargs, error, message):
    call = {"dataset": datasets.Dataset.from_dict({"text": ["a good film", "dull"], "label": [1, 0]}), "methods": "saliency", **kwargs}
    with pytest.raises(error, match=message):
        hsi.explain_dataset(adapter, output_dir=tmp_path / "out", progress=False, **call)
    assert not (tmp_path / "out").exists() or not ShardStore(tmp_path / "out").shards()


@pytest.fixture
def fresh_accelerate():
    from accelerate.state import AcceleratorState

    AcceleratorState._reset_state(reset_partial_state=True)
    yield
    AcceleratorState._reset_state(reset_partial_state=True)


def test_mixed_precision_runs_under_autocast_and_is_recorded(adapter, fresh_accelerate, tmp_path):
    full = hsi.explain(TEXTS[:6], adapter, method="gradient_x_input")
    ds = hsi.explain_dataset(adapter, TEXTS[:6], "gradient_x_input", output_dir=tmp_path, mixed_precision="bf16", progress=False)
    half = hsi.dataset_to_explanations(ds)
    assert all(e.warnings == ["computed under bf16 mixed precision (autocast)"] for e in half)
    assert json.loads((tmp_path / "manifest.json").read_text())["mixed_precision"] == "bf16"
    for a, b in zip(half, full):
        assert not np.array_equal(a.attributions, b.attributions)  # bf16 really ran
        assert np.corrcoef(a.attributions, b.attributions)[0, 1] > 0.9


# --------------------------------------------------------------------------- CLI
def test_method_params_scopes_parameters():
    assert method_params(["saliency", "integrated_gradients"], [("score", "prob"), ("integrated_gradients.n_steps", 8),
                                                               ("integrated_gradients.score", "logit")]) == {
        "saliency": {"score": "prob"},
        "integrated_gradients": {"n_steps": 8, "score": "logit"},
    }
    with pytest.raises(SeqInterpError, match=r"'lime' is not one of the --method values \['saliency'\]"):
        method_params(["saliency"], [("lime.n_samples", 10)])


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return save_tiny_model(tmp_path_factory.mktemp("tiny-bert"))


def test_cli_writes_the_same_dataset_as_python(model_dir, tmp_path, capsys):
    tsv = tmp_path / "data.tsv"
    tsv.write_text("sentence\tlabel\n" + "".join(f"{t}\t{i % 2}\n" for i, t in enumerate(TEXTS[:9])), encoding="utf-8")
    code = main([
        "explain-dataset", str(tsv), "--output-dir", str(tmp_path / "cli"), "--model", str(model_dir),
        "--method", "gradient_x_input", "--method", "integrated_gradients", "-p", "integrated_gradients.n_steps=4",
        "-p", "score=log_prob", "--label-column", "label", "--shard-size", "4", "--no-progress",
    ])
    assert code == 0
    assert "18 explanations (9 rows x 2 methods)" in capsys.readouterr().err
    cli = hsi.load_explanations(tmp_path / "cli")
    python = hsi.explain_dataset(
        hsi.ModelAdapter.from_pretrained(str(model_dir)), hsi.load_text_dataset(tsv),
        {"gradient_x_input": {"score": "log_prob"}, "integrated_gradients": {"n_steps": 4, "score": "log_prob"}},
        output_dir=tmp_path / "py", label_column="label", shard_size=4, progress=False,
    )
    assert_same_explanations(cli, hsi.dataset_to_explanations(python))
    assert [e.params["score"] for e in cli] == ["log_prob"] * 18


def test_cli_errors_are_clear(model_dir, tmp_path, capsys):
    code = main(["explain-dataset", "no/such/file.tsv", "--output-dir", str(tmp_path), "--model", str(model_dir)])
    assert code == 2 and "No such data file or folder: no/such/file.tsv" in capsys.readouterr().err
    code = main(["explain-dataset", "stanfordnlp/sst2", "--output-dir", str(tmp_path), "--method", "nope"])
    assert code == 2 and "'nope' is not a registered explanation method" in capsys.readouterr().err
