"""`hf-seqinterp explain-series`: the same explanations as Python, from .npy arrays and dataset folders,
as JSON, HTML and a resumable dataset run; targets for forecasters; clear errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
from timeseries_models import tiny_series_model

from hf_seqinterp.cli import main, series_target
from hf_seqinterp.hub import load_explanations
from hf_seqinterp.timeseries import (
    SeriesAdapter,
    SeriesExplanation,
    dataset_to_series_explanations,
    explain_series,
    explain_series_dataset,
    series_dataset,
)

X = np.random.default_rng(5).normal(size=(3, 24, 3)).astype(np.float32)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("patchtst")
    tiny_series_model().save_pretrained(folder)
    return folder


def test_npy_to_json_html_plot_and_printed_variable_importance(model_dir, tmp_path, capsys):
    np.save(tmp_path / "x.npy", X)
    argv = ["explain-series", str(tmp_path / "x.npy"), "--model", str(model_dir), "--method", "saliency",
            "--method", "channel_erasure", "--target", "1", "--channels", "a,b,c", "--json", str(tmp_path / "e.json"),
            "--html", str(tmp_path / "e.html"), "--plot", str(tmp_path / "e.png"), "--no-progress"]
    assert main(argv) == 0
    got = [SeriesExplanation.from_dict(d) for d in json.loads((tmp_path / "e.json").read_text())]
    adapter = SeriesAdapter(tiny_series_model(), channel_names=["a", "b", "c"])
    want = [e for pair in zip(explain_series(adapter, X, "saliency", target=1), explain_series(adapter, X, "channel_erasure", target=1))
            for e in pair]
    for a, b in zip(got, want, strict=True):
        np.testing.assert_allclose(a.attributions, b.attributions, atol=1e-6)
        assert (a.method, a.rows[0]["label"], a.channel_names) == (b.method, b.rows[0]["label"], ["a", "b", "c"])
    printed = capsys.readouterr().out.splitlines()
    assert len(printed) == 6 and printed[1].startswith("series 0 · channel_erasure · LABEL_1: ")
    top = max(want[1].channel_totals().items(), key=lambda kv: abs(kv[1]))[0]
    assert printed[1].split(": ")[1].startswith(f"{top} ")
    assert (tmp_path / "e.html").read_text().count('class="hfsi-series"') == 6
    assert (tmp_path / "e.png").read_bytes().startswith(b"\x89PNG")


def test_dataset_run_equals_python(model_dir, tmp_path):
    source = series_dataset(X, [0, 1, 2], channel_names=["a", "b", "c"])
    source.save_to_disk(str(tmp_path / "source"))
    argv = ["explain-series", str(tmp_path / "source"), "--model", str(model_dir), "--method", "integrated_gradients",
            "-p", "n_steps=8", "--label-column", "label", "--output-dir", str(tmp_path / "run"), "--no-progress"]
    assert main(argv) == 0
    python = explain_series_dataset(SeriesAdapter(tiny_series_model(), channel_names=["a", "b", "c"]), source,
                                    {"integrated_gradients": {"n_steps": 8}}, output_dir=tmp_path / "again",
                                    label_column="label", progress=False)
    cli = load_explanations(tmp_path / "run")
    assert [e.to_dict()["rows"] for e in cli] == [e.to_dict()["rows"] for e in dataset_to_series_explanations(python)]


@pytest.mark.parametrize("text, target", [("2", 2), ("all", "all"), ("Running", "Running"), ("0,acc_y", (0, "acc_y")),
                                          ("0:6,all", ((0, 6), None)), ("3,1", (3, 1)), ("all,all", (None, None))])
def test_series_targets(text, target):
    assert series_target(text) == target


def test_errors_are_clear(model_dir, tmp_path, capsys):
    np.save(tmp_path / "x.npy", X)
    assert main(["explain-series", str(tmp_path / "x.npy"), "--model", str(model_dir), "--method", "salincy"]) == 2
    assert "salincy" in capsys.readouterr().err
    np.save(tmp_path / "wrong.npy", X[:, :, :2])
    assert main(["explain-series", str(tmp_path / "wrong.npy"), "--model", str(model_dir), "--no-progress"]) == 2
    assert "takes (time, 3) arrays" in capsys.readouterr().err
    assert main(["explain-series", str(tmp_path / "x.npy"), "--model", str(model_dir), "--push-to-hub", "u/r"]) == 2
    assert "--push-to-hub needs --output-dir" in capsys.readouterr().err


def test_forecaster_covariates_come_from_the_dataset_columns(tmp_path):
    """Without --output-dir too, a forecaster's time features are read from the columns of its input names."""
    import datasets
    from timeseries_models import forecaster_inputs, tiny_forecaster

    model = tiny_forecaster("time_series_transformer")
    model.save_pretrained(tmp_path / "tst")
    items = forecaster_inputs(2, seed=4)
    datasets.Dataset.from_dict({name: [item[name] for item in items] for name in items[0]}).save_to_disk(str(tmp_path / "data"))
    argv = ["explain-series", str(tmp_path / "data"), "--model", str(tmp_path / "tst"), "--method", "saliency",
            "--target", "1,all", "--json", str(tmp_path / "e.json"), "--no-progress"]
    assert main(argv) == 0
    got = [SeriesExplanation.from_dict(d) for d in json.loads((tmp_path / "e.json").read_text())]
    want = explain_series(SeriesAdapter(model), items, "saliency", target=(1, None))
    for a, b in zip(got, want, strict=True):
        np.testing.assert_allclose(a.attributions, b.attributions, atol=1e-6)
