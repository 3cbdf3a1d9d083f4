"""The first minutes of a new user: a CLI that answers before importing torch, a light package
import, errors that name the fix (did you mean, no such folder, offline Hub), quiet loading, Ctrl-C."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

import hf_seqinterp as hsi
from hf_seqinterp.checks import is_hub_id, looks_local
from hf_seqinterp.cli import main
from hf_seqinterp.errors import ModelNotFoundError, RunInterrupted
from hf_seqinterp.explainers.base import method_table
from hf_seqinterp.method_table import DEFAULT_METHOD, METHODS, SERIES_METHODS
from hf_seqinterp.timeseries.base import series_method_table

REPO = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "transformers", "datasets", "accelerate", "hf_seqinterp.adapter")


def run_python(code: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=300, cwd=REPO,
        env={**os.environ, "HF_HUB_OFFLINE": "1", **env},
    )


def test_method_table_equals_the_live_registry():
    assert METHODS == method_table(), "run `python -m hf_seqinterp.explainers` to regenerate method_table.py"
    assert SERIES_METHODS == series_method_table(), "run `python -m hf_seqinterp.explainers` to regenerate it"
    assert DEFAULT_METHOD in METHODS and hsi.DEFAULT_METHOD == DEFAULT_METHOD


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["--help"], "usage: hf-seqinterp"),
        (["explain", "--help"], "--method METHOD"),
        (["explain", "good", "--method", "integrated_gradient"], "Did you mean 'integrated_gradients'?"),
        (["explain", "good", "-p", "n_step=3"], "does not take parameter(s) 'n_step'. Did you mean 'n_steps'?"),
        (["explain", "--file", "no_such_file.txt"], "No such file: no_such_file.txt (--file)"),
        (["explain", "good", "--model", "./no_such_model"], "no such folder: ./no_such_model."),
        (["explain", "good", "--model", "no_such_dir/model"], "HF_HUB_OFFLINE is set and it is not in the local cache"),
        (["evaluate", "no_such_data.tsv"], "No such data file or folder: no_such_data.tsv"),
        (["evaluate", "data.tsv", "--methods", "saliency,lim"], "'lim' is not a registered explanation method"),
        (["explain-dataset", "x.tsv", "--output-dir", "o", "--exclude-nothing"], "unrecognized arguments"),
        (["methods"], "integrated_gradients"),
        (["methods", "--series"], "Channel erasure: each whole variable replaced by the baseline"),
        (["explain-series", "--help"], "kernel_shap"),
        (["explain-series", "x.npy", "--model", "m", "--method", "kernelshap"], "Did you mean 'kernel_shap'?"),
        (["explain-series", "x.npy", "--model", "m", "--method", "occlusion", "-p", "windw=4"], "Did you mean 'window'?"),
    ],
)
def test_cli_answers_without_importing_torch(argv, expected):
    code = (
        "import sys, contextlib\n"
        "from hf_seqinterp.cli import main\n"
        f"with contextlib.suppress(SystemExit): main({argv!r})\n"
        f"print('HEAVY', [m for m in {HEAVY!r} if m in sys.modules], file=sys.stderr)\n"
    )
    proc = run_python(code)
    assert expected in proc.stdout + proc.stderr, proc.stderr
    assert "HEAVY []" in proc.stderr, proc.stderr


def test_package_import_loads_no_dataset_or_training_code():
    proc = run_python(
        "import json, sys, hf_seqinterp as h\n"
        "print(h.ModelAdapter, h.explain, h.Explanation, h.get_explainer('rationale'))\n"
        "print(json.dumps([m for m in ('datasets', 'evaluate', 'captum', 'hf_seqinterp.rationale.training', "
        "'hf_seqinterp.callbacks', 'hf_seqinterp.metrics.data', 'hf_seqinterp.distributed') if m in sys.modules]))\n"
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.splitlines()[-1]) == []


def test_pipeline_task_is_registered_when_transformers_came_first():
    proc = run_python(
        "from transformers import pipeline\nimport hf_seqinterp\n"
        "from transformers.pipelines import PIPELINE_REGISTRY\nprint('explain-text' in PIPELINE_REGISTRY.supported_tasks)"
    )
    assert proc.stdout.strip() == "True", proc.stderr


def test_the_package_never_imports_captum():
    sources = [p for p in (REPO / "hf_seqinterp").rglob("*.py")]
    assert sources and not [p for p in sources if re.search(r"^\s*(from|import)\s+captum", p.read_text(), re.MULTILINE)]
    pyproject = (REPO / "pyproject.toml").read_text()
    dependencies = pyproject.split("dependencies = [", 1)[1].split("]", 1)[0]
    assert "captum" not in dependencies and re.search(r'^test = \[.*"captum', pyproject, re.MULTILINE)


# ----------------------------------------------------------------------------- model names
@pytest.mark.parametrize(
    "name, local",
    [("./m", True), ("../m", True), ("/m", True), ("~/m", True), ("a/b/c", True), ("bert-base-uncased", False),
     ("user/model", False), ("user/model.v2", False), ("a b/c", True), ("user--x/m", True)],
)
def test_which_names_look_local(name, local):
    assert looks_local(name) is local
    assert is_hub_id(name) is not local or name.startswith(("./", "../", "/", "~"))


def test_a_missing_local_folder_fails_at_once(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "models").mkdir()
    (tmp_path / "file.txt").write_text("x")
    for name, message in [
        ("./no_such_model", "no such folder: ./no_such_model. Pass the folder"),
        ("models/no_such_model", "no such folder: models/no_such_model (models exists but has no no_such_model)"),
        ("file.txt", "file.txt is a file; pass the folder that holds the model's config.json"),
    ]:
        start = time.perf_counter()
        with pytest.raises(ModelNotFoundError) as info:
            hsi.ModelAdapter.from_pretrained(name)
        assert message in str(info.value) and time.perf_counter() - start < 1


def test_offline_hub_id_fails_fast_in_one_line(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    start = time.perf_counter()
    with pytest.raises(ModelNotFoundError) as info:
        hsi.ModelAdapter.from_pretrained("no-such-user/no-such-model")
    assert time.perf_counter() - start <= 5
    message = str(info.value)
    assert "\n" not in message and "HF_HUB_OFFLINE" in message
    assert "pass a local model folder (e.g. --model ./my-model)" in message


def test_unresolvable_hub_host_fails_fast_without_retries(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setenv("HF_ENDPOINT", "https://hub.invalid")
    for key in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(key, raising=False)
    start = time.perf_counter()
    with pytest.raises(ModelNotFoundError, match=r"host name does not resolve.*unset HF_HUB_OFFLINE"):
        hsi.ModelAdapter.from_pretrained("no-such-user/no-such-model")
    assert time.perf_counter() - start <= 5


# ----------------------------------------------------------------------------- did you mean
def test_did_you_mean_for_methods_parameters_and_labels(default_adapter):
    with pytest.raises(hsi.UnknownMethodError, match=r"'saliancy' .* Did you mean 'saliency'\? Available: "):
        hsi.get_explainer("saliancy")
    with pytest.raises(hsi.InvalidParameterError, match=r"'n_step'\. Did you mean 'n_steps'\? Accepted: "):
        hsi.get_explainer("integrated_gradients").create(default_adapter, n_step=4)
    with pytest.raises(hsi.UnknownTargetError, match=r"'NEGATVE' .* Did you mean 'NEGATIVE'\?"):
        default_adapter.check_target("NEGATVE")
    with pytest.raises(hsi.UnknownMethodError) as info:
        hsi.get_explainer("zzz")
    assert "Did you mean" not in str(info.value) and ".." not in str(info.value)


# ----------------------------------------------------------------------------- quiet, Ctrl-C, flags
def test_loading_is_quiet_unless_verbose_and_restores_the_setting(capfd):
    from transformers.utils import logging as hf_logging

    assert hf_logging.is_progress_bar_enabled()
    hsi.ModelAdapter.from_pretrained()
    assert "Loading weights" not in capfd.readouterr().err
    assert hf_logging.is_progress_bar_enabled()
    hsi.ModelAdapter.from_pretrained(verbose=True)
    assert "Loading weights" in capfd.readouterr().err


def test_ctrl_c_prints_one_line_with_rows_done(monkeypatch, capsys):
    from hf_seqinterp import cli

    def interrupted(args):
        raise RunInterrupted(256, 6735)

    monkeypatch.setitem(cli.COMMANDS, "explain-dataset", ("", cli.add_explain_dataset_arguments, interrupted))
    code = main(["explain-dataset", str(REPO / "README.md"), "--output-dir", "out"])
    err = capsys.readouterr().err
    assert code == 130
    assert err == "hf-seqinterp: interrupted: 256 of 6735 rows done; rerun the same command to resume\n"


def test_explain_dataset_turns_ctrl_c_into_rows_saved(tmp_path, monkeypatch):
    from tiny_models import random_texts, tiny_model

    from hf_seqinterp import distributed

    calls = []
    real = distributed._explain_shard

    def stop_on_third_shard(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(distributed, "_explain_shard", stop_on_third_shard)
    with pytest.raises(RunInterrupted) as info:
        hsi.explain_dataset(
            hsi.ModelAdapter(*tiny_model("bert")), random_texts(12, seed=1), {"saliency": {}},
            output_dir=tmp_path, shard_size=4, progress=False,
        )
    assert (info.value.rows_done, info.value.rows) == (8, 12)


def test_method_flags_are_the_same_everywhere():
    from hf_seqinterp.cli import _method_list, build_parser

    parser = build_parser()
    for argv in (["explain", "x"], ["evaluate", "x"], ["explain-dataset", "x", "--output-dir", "o"]):
        args = parser.parse_args([*argv, "--method", "saliency", "--methods", "lime,saliency", "--method", "random"])
        assert _method_list(args) == ["saliency", "random", "lime"]
