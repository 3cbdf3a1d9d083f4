"""The `hf-seqinterp` command line, run as a subprocess."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest
from tiny_models import tiny_model

import hf_seqinterp as hsi
from hf_seqinterp import Explanation, ModelAdapter
from hf_seqinterp.cli import main


def run_cli(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    exe = shutil.which("hf-seqinterp")
    command = [exe] if exe else [sys.executable, "-m", "hf_seqinterp.cli"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "NO_COLOR": "1"}
    proc = subprocess.run([*command, *args], capture_output=True, text=True, env=env, timeout=300)
    if check and proc.returncode != 0:
        raise AssertionError(f"exit {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}")
    return proc


def call_main(capsys, *args: str) -> tuple[int, str, str]:
    """Run the CLI in-process (fast) and return (exit code, stdout, stderr)."""
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("tiny-bert")
    model, tokenizer = tiny_model("bert")
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def test_methods_lists_every_registered_method_with_its_defaults():
    out = run_cli("methods").stdout
    for name, summary in hsi.describe_methods().items():
        suffix = r"  \(default method\)" if name == hsi.DEFAULT_METHOD else ""
        assert re.search(rf"^{name}\s+{re.escape(summary)}{suffix}$", out, re.MULTILINE), name
    assert "parameters: baseline='auto', n_steps=50, quadrature='gausslegendre'" in out
    assert re.search(r"^\s+parameters: n_samples=500, paired=True, seed=0, level='word'", out, re.MULTILINE)


def test_json_output_parses_and_matches_python(model_dir):
    out = run_cli(
        "explain", "a good film", "dull plot", "--model", str(model_dir),
        "--method", "integrated_gradients", "-p", "n_steps=8", "--target", "positive", "--json",
    ).stdout
    data = json.loads(out)
    expls = [Explanation.from_dict(d) for d in data]
    assert [e.text for e in expls] == ["a good film", "dull plot"]
    assert all(e.params["n_steps"] == 8 and e.target_label == "positive" for e in expls)
    ref = hsi.explain(["a good film", "dull plot"], ModelAdapter(*tiny_model("bert")), method="integrated_gradients", n_steps=8, target=2)
    for a, b in zip(expls, ref):
        np.testing.assert_allclose(a.attributions, b.attributions, atol=1e-5)


def test_html_output_is_self_contained(model_dir, tmp_path):
    page = tmp_path / "out.html"
    proc = run_cli("explain", "a good film", "--model", str(model_dir), "--html", str(page))
    assert "method: integrated_gradients" in proc.stdout  # the terminal heat map is still printed
    html = page.read_text(encoding="utf-8")
    assert html.startswith("<!DOCTYPE html>")
    assert not re.search(r"(src|href)\s*=|@import|url\(|<script|<link", html)
    for token in ("[CLS]", "good", "film", "[SEP]"):
        assert f">{token}</span>" in html


def test_texts_from_a_file_and_word_scores(model_dir, tmp_path, capsys):
    source = tmp_path / "texts.txt"
    source.write_text("good film\n\nbad plot\n", encoding="utf-8")
    code, out, _ = call_main(capsys, "explain", "--file", str(source), "--model", str(model_dir), "--words", "--color", "never")
    assert code == 0
    assert out.count("method: integrated_gradients") == 2
    assert re.search(r"^\s+plot [+-]\d\.\d{4}$", out, re.MULTILINE)
    assert "(input 2: blank, skipped)" in out


def test_blank_lines_keep_their_place_in_json_output(model_dir, tmp_path, capsys):
    source = tmp_path / "texts.txt"
    source.write_text("good film\n\n   \nbad plot\n", encoding="utf-8")
    code, out, err = call_main(
        capsys, "explain", "first", "--file", str(source), "--model", str(model_dir), "--json",
        "--method", "saliency", "--method", "gradient_x_input",
    )
    rows = json.loads(out)
    assert code == 0 and len(rows) == 5 * 2  # one entry per input line and method, in input order
    assert [row.get("text") for row in rows[::2]] == ["first", "good film", "", "   ", "bad plot"]
    assert [row.get("method") for row in rows[:2]] == ["saliency", "gradient_x_input"]
    assert rows[4] == rows[5] == {"skipped": "blank input", "input": 3, "text": ""}
    assert rows[6]["input"] == 4 and "skipped 2 blank input line(s): 3, 4" in err


@pytest.mark.parametrize(
    "args, message",
    [
        (
            ["explain", "good", "--method", "shapley"],
            r"'shapley' is not a registered explanation method\. Did you mean 'shapley_sampling'\? Available: .*saliency",
        ),
        (["explain", "   "], r"no texts given: .* \(every line is blank\)"),
        (["explain", "good", "--target", "happy"], r"'happy' is not a label"),
        (["explain", "good", "--target", "positiv"], r"'positiv' is not a label of this model\. Did you mean 'positive'\?"),
        (["explain", "good", "-p", "steps=3", "--method", "integrated_gradients"], r"does not take parameter"),
        (["explain"], r"no texts given"),
    ],
)
def test_bad_input_gives_a_clear_error_and_exit_code_2(model_dir, args, message, capsys):
    code, _, err = call_main(capsys, *args, "--model", str(model_dir))
    assert code == 2
    assert re.search(message, err), err


def test_errors_in_a_subprocess_carry_no_traceback(tmp_path):
    proc = run_cli("explain", "good", "--model", str(tmp_path / "nowhere"), check=False)
    assert proc.returncode == 2 and "no such folder" in proc.stderr and "Traceback" not in proc.stderr


def test_default_model_explains_out_of_the_box():
    proc = run_cli("explain", "a gripping, funny and moving film", "dull, lifeless and far too long", "--json")
    positive, negative = (Explanation.from_dict(d) for d in json.loads(proc.stdout))
    assert positive.predicted_label == "POSITIVE" and negative.predicted_label == "NEGATIVE"
    assert positive.model_name and "default_model" in positive.model_name
