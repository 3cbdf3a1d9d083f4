"""Series explanations published to the loopback Hub (tests/hub_server) with their card, and loaded
back exactly; the card's variable-importance table recomputed here; names are data, not markup."""

from __future__ import annotations

import copy
import re

import datasets
import numpy as np
import pytest
from huggingface_hub import DatasetCard
from timeseries_models import tiny_series_model

from hf_seqinterp.hub import dataset_card, load_explanations, push_explanations_to_hub
from hf_seqinterp.timeseries import (
    SERIES_FEATURES,
    SeriesAdapter,
    dataset_to_series_explanations,
    explain_series_dataset,
    series_dataset,
)

CHANNELS = ["acc_x", "<b>gyro</b>", "temp | °C"]
X = np.random.default_rng(11).normal(size=(5, 24, 3)).astype(np.float32)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """(output folder, the explanation dataset) of a small explain_series_dataset run."""
    model = copy.deepcopy(tiny_series_model())
    model.config._name_or_path = "tiny/patchtst"
    source = series_dataset(X, [0, 1, 2, 3, 0], channel_names=CHANNELS)
    out = tmp_path_factory.mktemp("series-run")
    ds = explain_series_dataset(
        SeriesAdapter(model, channel_names=CHANNELS), source, {"channel_erasure": {}, "integrated_gradients": {"n_steps": 8}},
        output_dir=out, label_column="label", shard_size=2, progress=False,
    )
    return out, ds


def test_push_then_load_round_trip_with_card(hub, run):
    _, table = run
    repo_id = hub.new_repo_id("series-explanations")
    push_explanations_to_hub(table, repo_id, license="mit", source_dataset="uea/BasicMotions", retry_wait=0.01)
    git = hub.server.git_repo(repo_id)
    head = git.resolve("main")
    assert git.read_file(head, "README.md").decode() == str(dataset_card(table, repo_id, license="mit", source_dataset="uea/BasicMotions"))
    assert sorted(e.path for e in git.all_files(head)) == [
        ".gitattributes", "README.md",
        "data/channel_erasure/train-00000-of-00001.parquet", "data/integrated_gradients/train-00000-of-00001.parquet",
    ]
    assert load_explanations(repo_id) == dataset_to_series_explanations(table)
    loaded = datasets.load_dataset(repo_id, "channel_erasure", split="train")
    assert loaded.features == SERIES_FEATURES
    assert loaded.to_dict() == table.filter(lambda r: r["method"] == "channel_erasure").to_dict()

    card = DatasetCard.load(repo_id, repo_type="dataset")
    card.validate(repo_type="dataset")
    info = card.data.to_dict()["hf_seqinterp"]
    assert info["models"] == [{"name": "tiny/patchtst"}] and info["channels"] == CHANNELS
    assert info["methods"]["integrated_gradients"][0]["n_steps"] == 8 and info["heads"] == ["classification"]
    assert (info["rows"], info["source_rows"]) == (10, 5)
    # names are data: escaped in code spans, never raw markup; tables keep their columns
    assert "<b>gyro</b>" not in card.text.replace("`<b>gyro</b>`", "")
    # variable importance: mean |Σ_t A[0, t, c]| over the explanations of each method
    expls = dataset_to_series_explanations(table)
    for c, name in enumerate(CHANNELS):
        shown = name.replace("|", "\\|")  # a pipe is escaped inside table cells
        line = next(row for row in card.text.splitlines() if row.startswith(f"| `{shown}` |"))  # the first table
        cells = [cell.strip() for cell in line.strip("|").split(" | ")][1:]
        for method, cell in zip(["channel_erasure", "integrated_gradients"], cells):
            want = np.mean([abs(e.channel_totals()[name]) for e in expls if e.method == method])
            assert float(cell) == pytest.approx(want, rel=1e-3)
    namespace: dict = {}
    for block in re.findall(r"```python\n(.*?)```", card.text, re.DOTALL):
        exec(block, namespace)  # noqa: S102 - the card's own usage snippets
    assert namespace["explanations"] == expls
    assert hub.server.unhandled_requests == []


def test_output_folders_and_lists_of_series_explanations_publish_alike(run):
    folder, table = run
    assert str(dataset_card(folder, "u/r")) == str(dataset_card(table, "u/r"))
    assert load_explanations(folder) == dataset_to_series_explanations(table)
    from_list = str(dataset_card(dataset_to_series_explanations(table), "u/r"))  # each explanation its own source row
    assert "Attributions over time × channel explaining `tiny/patchtst` (classification) on 10 series" in from_list
    assert "| `acc_x` |" in from_list and "## Schema" in from_list and "`channel_names`" in from_list
