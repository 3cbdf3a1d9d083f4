"""Every bad parameter and input reaches one validation layer (`hf_seqinterp.validation`) before
numpy or torch sees it, through the Python API, the pipeline and the CLI alike; ERASER files with
empty evidence spans are read (the spans skipped and counted); Hub failures are `HubError`s with
the HTTP status, and offline mode fails at once."""

from __future__ import annotations

import json
import re
import socket
import time

import numpy as np
import pytest
from tiny_models import random_texts, save_tiny_model, tiny_model
from transformers import pipeline

import hf_seqinterp as hsi
from hf_seqinterp.cli import main
from hf_seqinterp.errors import HubError, InvalidInputError, InvalidParameterError, SeqInterpError
from hf_seqinterp.validation import normalize_inputs


@pytest.fixture(scope="module")
def adapter():
    return hsi.ModelAdapter(*tiny_model("bert"))


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("model") / "tiny-bert"
    save_tiny_model(folder)
    return folder


# --------------------------------------------------------------------------- parameters
@pytest.mark.parametrize(
    ("method", "params", "message"),
    [
        ("integrated_gradients", {"n_steps": 10**9}, (r"n_steps=1000000000 is above the limit of 1000: it would need "
                                                      r"about 6\.9 EiB of memory")),
        ("integrated_gradients", {"n_steps": 10**9, "quadrature": "riemann_left"}, r"about 14\.9 GiB of memory"),
        ("integrated_gradients", {"n_steps": True}, r"n_steps must be an integer >= 1, got True \(bool\)"),
        ("integrated_gradients", {"n_steps": 2.0}, r"n_steps must be an integer >= 1, got 2\.0 \(float\)"),
        ("integrated_gradients", {"max_batch_tokens": 0}, r"max_batch_tokens must be an integer >= 1, got 0"),
        ("occlusion", {"max_batch_tokens": 0}, r"max_batch_tokens must be an integer >= 1, got 0"),
        ("erasure", {"max_batch_tokens": 10**12}, (r"max_batch_tokens=1000000000000 is above the limit of 4194304: "
                                                   r"it would need about .* TiB of memory")),
        ("lime", {"n_samples": 10**9}, (r"n_samples=1000000000 is above the limit of 100000: it would need about "
                                        r"760\.0 GiB of memory \(per text of 100 words")),
        ("kernel_shap", {"n_samples": 10**9}, r"n_samples=1000000000 is above the limit of 100000"),
        ("shapley_sampling", {"n_samples": 10**9}, r"n_samples=1000000000 .* about .* TiB of memory"),
        ("lime", {"alpha": float("inf")}, r"alpha must be a finite number >= 0, got inf"),
        ("lime", {"alpha": float("nan")}, r"alpha must be a finite number >= 0, got nan"),
        ("lime", {"kernel_width": "x"}, r"kernel_width must be a finite number > 0, got 'x'"),
        ("lime", {"seed": -1}, r"seed must be a non-negative integer, got -1"),
        ("random", {"seed": 1.5}, r"seed must be a non-negative integer, got 1\.5"),
        ("occlusion", {"window": False}, r"window must be an integer >= 1, got False \(bool\)"),
        ("attention_flow", {"max_tokens": "64"}, r"max_tokens must be an integer >= 1, got '64' \(str\)"),
        ("contextual_decomposition", {"hierarchy_percentile": 100}, r"hierarchy_percentile must be in \[0, 100\)"),
    ],
)
def test_bad_parameters_are_refused_with_the_value_and_the_fix(adapter, method, params, message):
    started = time.perf_counter()
    with pytest.raises(InvalidParameterError, match=message):
        hsi.explain("a good film", adapter, method=method, **params)
    assert time.perf_counter() - started < 5  # refused before any allocation


@pytest.mark.parametrize(
    ("batch_size", "message"),
    [(1.5, r"batch_size must be an integer >= 1, got 1\.5 \(float\)"), (0, r"batch_size must be an integer >= 1"),
     (True, r"got True \(bool\)"), (10**8, r"batch_size=100000000 is above the limit of 65536: .* of memory")],
)
def test_bad_batch_sizes_are_refused(adapter, batch_size, message):
    with pytest.raises(InvalidParameterError, match=message):
        hsi.explain(["a good film", "dull"], adapter, method="saliency", batch_size=batch_size)


# --------------------------------------------------------------------------- inputs
@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        (b"good film", r"got a bytes \(b'good film'\)\. Decode it first"),
        (["good", b"bad"], r"Text 1 is a bytes \(b'bad'\), not a string\. Decode it first"),
        (["good", None], r"Text 1 is None, not a string"),
        ([], r"No input given"),
        (None, r"got None"),
        (3, r"got an int \(3\)"),
        ({"label": "good"}, r"Input 0 is a dict with keys \['label'\]; a dict input takes the key 'text'"),
        ("a \ud800 film", r"Text 0 contains a lone surrogate \(U\+D800 at character 2\)"),
        (["fine", "   "], r"Text 1 is empty or whitespace only"),
        ([("good", 3)], r"text_pair of input 0 is an int \(3\), not a string"),
        ([("good", "bad", "worse")], r"Input 0 is a tuple of 3 items .*a sentence pair is a \(text, text_pair\) tuple"),
    ],
)
def test_bad_inputs_are_refused_naming_the_item(adapter, inputs, message):
    with pytest.raises(InvalidInputError, match=message):
        hsi.explain(inputs, adapter, method="saliency")


def test_a_dict_is_its_text_not_its_keys(adapter):
    single = hsi.explain({"text": "a good film"}, adapter, method="saliency")
    assert single.text == "a good film"
    np.testing.assert_array_equal(single.attributions, hsi.explain("a good film", adapter, method="saliency").attributions)


def test_normalize_inputs_contract():
    assert normalize_inputs("a") == ([("a", None)], True)
    assert normalize_inputs(("a", "b")) == ([("a", "b")], True)
    assert normalize_inputs({"text": "a", "text_pair": "b"}) == ([("a", "b")], True)
    assert normalize_inputs(["a", "b"]) == ([("a", None), ("b", None)], False)
    assert normalize_inputs([("a", "b"), {"text": "c", "text_pair": "d"}, "e"]) == (
        [("a", "b"), ("c", "d"), ("e", None)], False)
    with pytest.raises(InvalidInputError, match=r"text_pair of input 1 is empty"):
        normalize_inputs([("a", "b"), {"text": "c", "text_pair": " "}])
    with pytest.raises(InvalidInputError, match="Input 0 is a sentence pair .* takes single texts"):
        hsi.validation.validate_texts([("a", "b")])


def test_the_pipeline_names_the_bad_item():
    model, tokenizer = tiny_model("bert")
    explain = pipeline("explain-text", model=model, tokenizer=tokenizer, device="cpu")
    with pytest.raises(InvalidInputError, match="No input given"):
        explain([])
    with pytest.raises(InvalidInputError, match=r"Text 1 is None"):
        explain(["good", None])
    with pytest.raises(InvalidParameterError, match=r"n_steps must be an integer >= 1, got True"):
        explain("good", method="integrated_gradients", n_steps=True)
    assert explain({"text": "a good film"}, method="saliency")["text"] == "a good film"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["explain", "good", "--batch-size", "-1"], r"argument --batch-size: the batch size must be an integer >= 1, got -1"),
        (["explain", "good", "--batch-size", "1.5"], r"argument --batch-size: expected int, got '1\.5'"),
        (["explain", "good", "--max-length", "0"], r"argument --max-length: the value must be an integer >= 1, got 0"),
        (["explain-dataset", "d.tsv", "--output-dir", "o", "--limit", "0"], r"argument --limit: the value must be an integer >= 1, got 0"),
        (["explain-dataset", "d.tsv", "--output-dir", "o", "--shard-size", "-3"], r"argument --shard-size: .* got -3"),
        (["evaluate", "d.tsv", "--limit", "x"], r"argument --limit: expected int, got 'x'"),
    ],
)
def test_cli_refuses_bad_numbers_as_usage_errors(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    assert re.search(message, capsys.readouterr().err)


def test_cli_reports_bad_method_parameters_in_one_line(model_dir, capsys):
    assert main(["explain", "good", "--model", str(model_dir), "--method", "lime", "-p", "kernel_width=x"]) == 2
    err = capsys.readouterr().err
    assert "hf-seqinterp: error: kernel_width must be a finite number > 0, got 'x'." in err.splitlines()
    assert "Traceback" not in err


# --------------------------------------------------------------------------- ERASER
def test_eraser_empty_and_inverted_spans_are_skipped_and_counted(tmp_path, model_dir, capsys):
    docs = tmp_path / "docs"
    docs.mkdir()
    words = random_texts(1, seed=2, min_words=12, max_words=12)[0].split()
    (docs / "neg_1").write_text(" ".join(words), encoding="utf-8")
    evidence = [{"docid": "neg_1", "start_token": s, "end_token": e, "text": " ".join(words[s:e])}
                for s, e in ((2, 4), (5, 5), (9, 7), (12, 12))]
    record = {"annotation_id": "neg_1", "classification": "NEG", "evidences": [evidence]}
    (tmp_path / "val.jsonl").write_text(json.dumps(record) + "\n", encoding="utf-8")

    data = hsi.metrics.load_examples(tmp_path / "val.jsonl", eraser_docs=docs)
    text = data.texts[0]
    assert [text[s:e] for s, e in data.rationales[0]] == [" ".join(words[2:4])]
    assert data.notes == ["3 empty or inverted ERASER evidence spans (start_token >= end_token) were skipped."]
    assert main(["evaluate", str(tmp_path / "val.jsonl"), "--eraser-docs", str(docs), "--model", str(model_dir),
                 "--methods", "saliency", "--metrics", "token_f1", "--output-dir", str(tmp_path / "eval"),
                 "--no-progress"]) == 0
    assert "- 3 empty or inverted ERASER evidence spans (start_token >= end_token) were skipped." in capsys.readouterr().out


# --------------------------------------------------------------------------- Hub
def explanation_table(adapter):
    return hsi.explanations_to_dataset(hsi.explain(["a good film", "dull"], adapter, method="saliency"))


@pytest.mark.parametrize(
    ("status", "message"),
    [(403, r"HTTP 403, forbidden: this token may not read '.*'"), (500, r"HTTP 500, attempt 3")],
)
def test_hub_download_errors_carry_the_status(hub, adapter, status, message):
    repo_id = hub.new_repo_id("broken")
    hsi.push_explanations_to_hub(explanation_table(adapter), repo_id, retry_wait=0.01)
    hub.server.inject_failures(method="GET", path_regex=r"^/api/datasets/", status=status, count=100)
    with pytest.raises(HubError, match=message):
        hsi.load_explanations(repo_id, max_retries=2, retry_wait=0.01)
    tries = [r for r in hub.server.requests_matching("GET", "/api/datasets/") if r.injected]
    assert len(tries) == (1 if status == 403 else 3)  # our retries only, not multiplied by the client's own


def test_a_missing_repo_is_a_404_not_a_missing_local_file(hub):
    with pytest.raises(HubError, match=r"HTTP 404, not found: '.*nothing-here.*'"):
        hsi.load_explanations(hub.new_repo_id("nothing-here"), retry_wait=0.01)


def test_offline_fails_at_once_in_one_line(adapter, tmp_path):
    for call in (lambda: hsi.load_explanations("someone/explanations"),
                 lambda: hsi.push_explanations_to_hub(explanation_table(adapter), "someone/explanations")):
        started = time.perf_counter()
        with pytest.raises(HubError) as err:
            call()
        assert time.perf_counter() - started < 5
        assert "\n" not in str(err.value) and "HF_HUB_OFFLINE" in str(err.value) and "local folder" in str(err.value)
    with pytest.raises(InvalidInputError, match="is not a folder"):
        hsi.load_explanations(tmp_path / "no-such-output")


def test_an_unreachable_hub_fails_fast(hub):
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with hub.use(f"http://127.0.0.1:{port}"):
        started = time.perf_counter()
        with pytest.raises(HubError, match=r"the Hub cannot be reached .*HF_HUB_OFFLINE.*local folder") as err:
            hsi.load_explanations("someone/explanations")
    assert time.perf_counter() - started < 5 and "\n" not in str(err.value)
    assert isinstance(err.value, SeqInterpError)
