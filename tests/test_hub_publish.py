"""Publishing explanation datasets and cards, against the loopback Hub (tests/hub_server) for uploads
and against it and the independent olah mirror for downloads. Nothing here touches the network."""

from __future__ import annotations

import copy
import re

import datasets
import pytest
from hub_server import OTHER_USER
from huggingface_hub import DatasetCard, hf_hub_download
from tiny_models import random_texts, save_tiny_model, tiny_model

import hf_seqinterp as hsi
from hf_seqinterp.cli import main
from hf_seqinterp.errors import HubError
from hf_seqinterp.hub import _Retrying, dataset_card

METHODS = {"gradient_x_input": {}, "integrated_gradients": {"n_steps": 4}}
FAST = {"retry_wait": 0.01}


def explain(model_type: str, tmp_path, n: int = 7) -> datasets.Dataset:
    model, tokenizer = tiny_model(model_type)
    model = copy.deepcopy(model)  # tiny_model is cached: name a copy
    model.config._name_or_path = f"tiny/{model_type}"
    source = datasets.Dataset.from_dict({"text": random_texts(n, seed=3), "label": [i % 3 for i in range(n)]})
    return hsi.explain_dataset(
        hsi.ModelAdapter(model, tokenizer), source, METHODS, label_column="label",
        output_dir=tmp_path / model_type, shard_size=3, progress=False,
    )


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    return explain("bert", tmp_path_factory.mktemp("expl"))


def repo_files(hub, repo_id) -> list[str]:
    git = hub.server.git_repo(repo_id)
    return sorted(e.path for e in git.all_files(git.resolve("main")))


def test_push_then_load_round_trip_with_card(hub, table):
    repo_id = hub.new_repo_id("explanations")
    metadata = dict(license="mit", source_dataset="stanfordnlp/sst2", model_id="org/tiny-bert",
                    metrics={"integrated_gradients": {"comprehensiveness": 0.25}})
    url = hsi.push_explanations_to_hub(table, repo_id, **metadata, **FAST)
    git = hub.server.git_repo(repo_id)
    head = git.resolve("main")
    assert git.read_file(head, "README.md").decode() == str(dataset_card(table, repo_id, **metadata))  # preview == pushed
    assert url.endswith(head) and [c.title for c in git.log("main")] == ["Upload explanations with hf_seqinterp", "initial commit"]
    assert repo_files(hub, repo_id) == [
        ".gitattributes", "README.md",
        "data/gradient_x_input/train-00000-of-00001.parquet",
        "data/integrated_gradients/train-00000-of-00001.parquet",
    ]
    # data comes back exactly, as Explanations and per config
    assert hsi.load_explanations(repo_id) == hsi.dataset_to_explanations(table)
    for method in METHODS:
        loaded = datasets.load_dataset(repo_id, method, split="train")
        assert loaded.features == hsi.EXPLANATION_FEATURES
        assert loaded.to_dict() == table.filter(lambda r, m=method: r["method"] == m).to_dict()
    # the card: valid YAML naming the model, the methods with their parameters, the metrics
    card = DatasetCard.load(repo_id, repo_type="dataset")
    card.validate(repo_type="dataset")
    meta = card.data.to_dict()
    info = meta["hf_seqinterp"]
    assert info["models"] == [{"name": "org/tiny-bert", "revision": None}] and info["models_as_recorded"] == ["tiny/bert"]
    assert info["methods"]["gradient_x_input"] == [{"at": "embedding_output", "score": "logit"}]
    assert info["methods"]["integrated_gradients"] == [
        {"baseline": "pad", "n_steps": 4, "quadrature": "gausslegendre", "max_batch_tokens": 4096, "baseline_on": "all",
         "score": "logit"}
    ]
    assert info["metrics"] == {"integrated_gradients": {"comprehensiveness": 0.25}}
    assert (info["rows"], info["source_rows"], info["library_version"]) == (14, 7, hsi.__version__)
    assert meta["license"] == "mit" and meta["task_categories"] == ["text-classification"]
    assert meta["source_datasets"] == ["stanfordnlp/sst2"]
    assert [c["config_name"] for c in meta["configs"]] == list(METHODS)
    # the body: the example as a Markdown table, and a usage snippet that really loads the data
    first = hsi.dataset_to_explanations(table)[0]
    assert f"```text\n{first.text}\n```" in card.text and "| word | gradient\\_x\\_input | integrated\\_gradients |" in card.text
    for word in first.to_words():
        assert re.search(rf"^\| {re.escape(word.text)} \| \**[+-]", card.text, re.MULTILINE), word.text
    namespace: dict = {}
    for block in re.findall(r"```python\n(.*?)```", card.text, re.DOTALL):
        exec(block, namespace)
    assert namespace["explanations"] == hsi.dataset_to_explanations(table)
    assert namespace["ds"].to_dict() == table.filter(lambda r: r["method"] == "gradient_x_input").to_dict()
    assert hub.server.unhandled_requests == []


def test_download_through_olah_returns_what_was_pushed(hub, olah, table):
    repo_id = hub.new_repo_id("via-olah")
    hsi.push_explanations_to_hub(table, repo_id, **FAST)
    git = hub.server.git_repo(repo_id)
    readme = git.read_file(git.resolve("main"), "README.md")
    requests_before = len(hub.server.requests)
    with hub.use(olah.endpoint):
        assert hsi.load_explanations(repo_id) == hsi.dataset_to_explanations(table)
        loaded = datasets.load_dataset(repo_id, "integrated_gradients", split="train", revision="main")
        assert loaded.to_dict() == table.filter(lambda r: r["method"] == "integrated_gradients").to_dict()
        with open(hf_hub_download(repo_id, "README.md", repo_type="dataset"), "rb") as fh:
            assert fh.read() == readme
    assert len(hub.server.requests) == requests_before  # everything came from olah


def test_transient_server_errors_are_retried(hub, table):
    repo_id = hub.new_repo_id("flaky")
    hub.server.inject_failures(method="POST", path_regex=r"/commit/", status=500, count=2)
    hsi.push_explanations_to_hub(table, repo_id, **FAST)
    assert [r.status for r in hub.server.requests_matching("POST", "/commit/")] == [500, 500, 200]
    assert "README.md" in repo_files(hub, repo_id)
    assert hsi.load_explanations(repo_id) == hsi.dataset_to_explanations(table)


def test_a_push_that_fails_for_good_leaves_no_card_and_no_data(hub, table):
    repo_id = hub.new_repo_id("down")
    hub.server.inject_failures(method="POST", path_regex=r"/commit/", status=503, count=3)
    with pytest.raises(HubError, match=r"Could not upload the data and card for '.*' \(HTTP 503, attempt 3\)"):
        hsi.push_explanations_to_hub(table, repo_id, max_retries=2, **FAST)
    assert repo_files(hub, repo_id) == [".gitattributes"]
    assert len(hub.server.git_repo(repo_id).log("main")) == 1


def test_permission_and_auth_errors_are_clear_and_not_retried(hub, table):
    repo_id = hub.new_repo_id("forbidden")
    hub.server.inject_failures(method="POST", path_regex=r"/commit/", status=403, count=1)
    with pytest.raises(HubError, match=r"HTTP 403, forbidden: this token may not write to 'testuser'"):
        hsi.push_explanations_to_hub(table, repo_id, **FAST)
    assert len(hub.server.requests_matching("POST", "/commit/")) == 1
    assert repo_files(hub, repo_id) == [".gitattributes"]
    with pytest.raises(HubError, match=rf"create the repository for '{OTHER_USER}/x': HTTP 403, forbidden"):
        hsi.push_explanations_to_hub(table, f"{OTHER_USER}/x", **FAST)
    with pytest.raises(HubError, match=r"HTTP 401, not authenticated: the token is missing, invalid or expired"):
        hsi.push_explanations_to_hub(table, repo_id, token="hf_not_a_token", **FAST)
    with pytest.raises(HubError, match=r"HTTP 404, not found: '.*missing.*' \(or the revision\) does not exist"):
        hsi.load_explanations(hub.new_repo_id("missing"), **FAST)


def test_a_new_push_replaces_the_previous_data(hub, table):
    repo_id = hub.new_repo_id("replace")
    hsi.push_explanations_to_hub(table, repo_id, **FAST)
    only_ig = table.filter(lambda r: r["method"] == "integrated_gradients")
    hsi.push_explanations_to_hub(only_ig, repo_id, **FAST)
    assert repo_files(hub, repo_id) == [".gitattributes", "README.md", "data/integrated_gradients/train-00000-of-00001.parquet"]
    assert hsi.load_explanations(repo_id) == hsi.dataset_to_explanations(only_ig)


def test_big_configs_are_split_into_several_files(hub, table, monkeypatch):
    import hf_seqinterp.hub

    monkeypatch.setattr(hf_seqinterp.hub, "MAX_FILE_BYTES", table.data.nbytes // 5)  # 2.5 files worth per config
    repo_id = hub.new_repo_id("split")
    hsi.push_explanations_to_hub(table, repo_id, **FAST)
    files = [f for f in repo_files(hub, repo_id) if f.startswith("data/gradient_x_input/")]
    assert files == [f"data/gradient_x_input/train-{i:05d}-of-00003.parquet" for i in range(3)]
    configs = DatasetCard.load(repo_id, repo_type="dataset").data.to_dict()["configs"]
    assert configs[0]["data_files"] == [{"split": "train", "path": files}]
    assert hsi.load_explanations(repo_id) == hsi.dataset_to_explanations(table)


def test_one_config_per_model(hub, table, tmp_path):
    both = datasets.concatenate_datasets([table, explain("roberta", tmp_path)])
    repo_id = hub.new_repo_id("by-model")
    hsi.push_explanations_to_hub(both, repo_id, config_by="model", **FAST)
    assert datasets.get_dataset_config_names(repo_id, revision="main") == ["tiny-bert", "tiny-roberta"]
    loaded = hsi.load_explanation_dataset(repo_id)
    # configs are merged back in source-row order, model by model within a row
    assert loaded["source_index"] == sorted(both["source_index"])
    assert [r["model_name"] for r in loaded if r["source_index"] == 0] == ["tiny/bert"] * 2 + ["tiny/roberta"] * 2
    info = DatasetCard.load(repo_id, repo_type="dataset").data.to_dict()["hf_seqinterp"]
    assert [m["name"] for m in info["models"]] == ["tiny/bert", "tiny/roberta"]


def test_cli_push_to_hub(hub, tmp_path, capsys):
    save_tiny_model(tmp_path / "model")
    data = tmp_path / "texts.jsonl"
    data.write_text("".join(f'{{"text": "{t}"}}\n' for t in random_texts(5)), encoding="utf-8")
    repo_id = hub.new_repo_id("cli")
    code = main([
        "explain-dataset", str(data), "--output-dir", str(tmp_path / "out"), "--model", str(tmp_path / "model"),
        "--no-progress", "--push-to-hub", repo_id, "--model-id", "org/tiny", "--license", "apache-2.0",
    ])
    assert code == 0 and f"pushed to {hub.endpoint}/datasets/{repo_id}/commit/" in capsys.readouterr().err
    assert hsi.load_explanations(repo_id) == hsi.load_explanations(tmp_path / "out")
    meta = DatasetCard.load(repo_id, repo_type="dataset").data.to_dict()
    assert meta["license"] == "apache-2.0" and meta["hf_seqinterp"]["models"][0]["name"] == "org/tiny"


def test_card_counts_warnings_and_names_unnamed_models(tmp_path):
    adapter = hsi.ModelAdapter(*tiny_model("bert"))
    ds = hsi.explain_dataset(adapter, ["fine", " ".join(["good"] * 100)], "saliency", output_dir=tmp_path, progress=False)
    card = str(dataset_card(ds, "u/r"))
    assert "1 of 2 rows carry warnings (column `warnings`" in card
    assert "predictions of an unnamed model on 2 rows of a text dataset" in card


# --------------------------------------------------------------------------- retry policy
def test_timeouts_back_off_exponentially_then_give_up():
    import httpx2

    waits: list[float] = []
    calls = iter([httpx2.ReadTimeout("slow"), httpx2.ReadError("reset"), "done"])

    def flaky():
        outcome = next(calls)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    assert _Retrying("u/r", max_retries=3, wait=0.5, sleep=waits.append)("fetch", flaky) == "done"
    assert waits == [0.5, 1.0]

    def always_slow():
        raise httpx2.ReadTimeout("slow")

    with pytest.raises(HubError, match=r"Could not fetch for 'u/r' after 3 attempts: ReadTimeout"):
        _Retrying("u/r", max_retries=2, wait=100.0, sleep=waits.append)("fetch", always_slow)
    assert waits[2:] == [60.0, 60.0]  # capped at 60 s
