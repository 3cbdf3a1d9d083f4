"""Method ranking: which methods apply, the report, data loading and `hf-seqinterp evaluate`."""

from __future__ import annotations

import json

import datasets
import numpy as np
import pytest
from conftest import ERASER, MINILM, needs_eraser, needs_minilm
from tiny_models import random_texts, tiny_model

from hf_seqinterp import ModelAdapter, applicable_explainers, list_methods
from hf_seqinterp.cli import main
from hf_seqinterp.errors import (
    InvalidInputError,
    InvalidParameterError,
    SeqInterpError,
    UnknownMethodError,
    UnsupportedModelError,
)
from hf_seqinterp.explainers import Explainer, register_explainer
from hf_seqinterp.explainers.base import _REGISTRY
from hf_seqinterp.metrics import char_spans_to_token_mask, evaluate_methods, faithfulness, load_examples

FAST = {"integrated_gradients": {"n_steps": 4}}


@pytest.fixture(scope="module")
def tiny_bert():
    return ModelAdapter(*tiny_model("bert"))


@pytest.fixture()
def inapplicable_method():
    """A registered method that never applies (its constructor raises UnsupportedModelError)."""

    @register_explainer("needs_a_unicorn")
    class NeedsAUnicorn(Explainer):
        """Test method that no model supports."""

        def check_model(self):
            raise UnsupportedModelError("needs_a_unicorn needs a unicorn; this model has none")

    yield "needs_a_unicorn"
    del _REGISTRY["needs_a_unicorn"]


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory, tiny_bert):
    path = tmp_path_factory.mktemp("tiny-bert")
    tiny_bert.model.save_pretrained(path)
    tiny_bert.tokenizer.save_pretrained(path)
    return path


# ----------------------------------------------------------------------------- applicable methods
#: methods that cannot run with their defaults alone (they need a trained model passed in)
NEEDS_AN_ARTEFACT = {"rationale"}


def test_all_that_apply_skips_inapplicable_methods_with_the_reason(tiny_bert, inapplicable_method):
    built, skipped = applicable_explainers(tiny_bert)
    assert set(built) == set(list_methods()) - {inapplicable_method} - NEEDS_AN_ARTEFACT
    assert "has none" in skipped[inapplicable_method]
    assert "needs a trained generator" in skipped["rationale"]
    built, _ = applicable_explainers(tiny_bert, exclude=["saliency"], params={"random": {"seed": 3}})
    assert "saliency" not in built and built["random"].seed == 3
    with pytest.raises(UnsupportedModelError, match="unicorn"):
        applicable_explainers(tiny_bert, [inapplicable_method])  # named explicitly: its error propagates
    with pytest.raises(UnknownMethodError, match="'salincy' is not a registered"):
        applicable_explainers(tiny_bert, exclude=["salincy"])
    with pytest.raises(InvalidParameterError, match="random does not take parameter"):
        applicable_explainers(tiny_bert, params={"random": {"n_steps": 3}})


def test_methods_that_refuse_the_texts_are_skipped_with_the_reason(tiny_bert):
    texts = random_texts(3, seed=4, min_words=4)
    too_short = {"attention_flow": {"max_tokens": 4}}  # attention_flow refuses longer texts before any work
    report = evaluate_methods(tiny_bert, texts, methods=["attention_flow", "random"], method_params=too_short,
                              metrics=["aopc_comprehensiveness"], progress=False)
    assert [r.method for r in report.results] == ["random"]
    assert "limit max_tokens=4" in report.skipped["attention_flow"]
    with pytest.raises(InvalidParameterError, match="No method applies to these texts"):
        evaluate_methods(tiny_bert, texts, methods=["attention_flow"], method_params=too_short, progress=False)


# ----------------------------------------------------------------------------- the report
def test_report_ranks_every_applicable_method(tiny_bert, inapplicable_method, tmp_path):
    texts = random_texts(6, seed=21, min_words=3)
    spans = [[(0, len(t.split()[0]))] for t in texts]
    report = evaluate_methods(tiny_bert, texts, rationales=spans, method_params=FAST, progress=False)
    methods = [r.method for r in report.results]
    assert set(methods) == set(list_methods()) - {inapplicable_method} - NEEDS_AN_ARTEFACT
    assert inapplicable_method in report.skipped
    assert report.metrics == ["aopc_comprehensiveness", "aopc_sufficiency", "deletion_auc", "insertion_auc",
                              "tau_loo", "token_f1", "iou_f1", "auprc"]
    # each row equals the metrics of that method's explanations computed on their own
    for row in report.results:
        alone = faithfulness(report.explanations[row.method], tiny_bert, ["aopc_comprehensiveness", "tau_loo"])
        assert row.metrics["aopc_comprehensiveness"] == pytest.approx(alone.summary()["aopc_comprehensiveness"], abs=1e-6)
        assert row.metrics["tau_loo"] == pytest.approx(alone.summary()["tau_loo"], abs=1e-6, nan_ok=True)
    ranked = report.ranked()
    values = [r.metrics["aopc_comprehensiveness"] for r in ranked]
    assert values == sorted(values, reverse=True)
    markdown = report.to_markdown()
    assert markdown.count("\n| ") == len(methods) and "`random`" in markdown and "needs_a_unicorn" in markdown
    paths = report.save(tmp_path / "out")
    saved = json.loads(paths["json"].read_text())
    assert [r["method"] for r in saved["results"]] == [r.method for r in ranked]
    assert saved["settings"]["faithfulness"]["replacement"] == "delete" and saved["settings"]["faithfulness"]["score"] == "prob"
    assert paths["plot"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    curve = saved["results"][0]["deletion_curve"]
    assert len(curve) == 11 and np.isclose(curve[-1], saved["results"][1]["deletion_curve"][-1])  # same empty input


def test_evaluate_methods_errors(tiny_bert):
    with pytest.raises(InvalidParameterError, match="need human rationales"):
        evaluate_methods(tiny_bert, ["a film"], metrics=["auprc"], progress=False)
    with pytest.raises(InvalidParameterError, match="sort_by='auprc' is not one of the computed"):
        evaluate_methods(tiny_bert, ["a film"], sort_by="auprc", progress=False)
    with pytest.raises(InvalidParameterError, match="unknown metric"):
        evaluate_methods(tiny_bert, ["a film"], metrics=["aopc"], progress=False)


# ----------------------------------------------------------------------------- data sources
def test_load_examples_from_files_and_folders(tmp_path):
    (tmp_path / "d.tsv").write_text('sentence\tlabel\nit \'s "great"\t1\nawful\t0\n')
    assert load_examples(tmp_path / "d.tsv").texts == ['it \'s "great"', "awful"]
    rows = [{"review": "a fine film", "words": [1, 2]}, {"review": "so bad", "words": [[1, 2]]}]
    (tmp_path / "d.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    data = load_examples(tmp_path / "d.jsonl", rationale_words_column="words")
    assert data.rationales == [[(2, 11)], [(3, 6)]]
    (tmp_path / "d.csv").write_text('text,spans\nhello world,"[[6, 11]]"\n')
    assert load_examples(tmp_path / "d.csv", rationale_column="spans").rationales == [[(6, 11)]]
    datasets.Dataset.from_dict({"text": ["x", "y", "z"]}).save_to_disk(tmp_path / "saved")
    assert load_examples(tmp_path / "saved", limit=2).texts == ["x", "y"]
    with pytest.raises(InvalidInputError, match="the dataset's columns are \\['words'\\]"):
        load_examples(datasets.Dataset.from_dict({"words": ["a"]}))
    with pytest.raises(InvalidInputError, match="supported data files"):
        (tmp_path / "d.txt").write_text("x")
        load_examples(tmp_path / "d.txt")


def test_hub_ids_fail_clearly_offline(monkeypatch):
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    with pytest.raises(SeqInterpError, match="the Hub is offline"):
        load_examples("nyu-mll/glue-that-does-not-exist")


# ----------------------------------------------------------------------------- CLI
def test_cli_writes_table_json_and_plot(saved_model, tmp_path, capsys):
    data = tmp_path / "d.jsonl"
    texts = random_texts(5, seed=2, min_words=3)
    data.write_text("\n".join(json.dumps({"text": t, "words": [0]}) for t in texts))
    out = tmp_path / "out"
    code = main(["evaluate", str(data), "--model", str(saved_model), "--rationale-words-column", "words",
                 "--methods", "random,saliency", "--replacement", "mask", "--bins", "0.2,0.5",
                 "--curve-points", "5", "--output-dir", str(out), "--no-progress"])
    assert code == 0
    table = capsys.readouterr().out
    assert "| rank | method | AOPC-comp ↑" in table and "IOU-F1" in table and "replacement `mask`" in table
    saved = json.loads((out / "results.json").read_text())
    assert sorted(r["method"] for r in saved["results"]) == ["random", "saliency"]
    assert saved["settings"]["faithfulness"]["bins"] == [0.2, 0.5]
    assert len(saved["fractions"]) == 5 and (out / "deletion_curves.png").exists()


def test_cli_errors_are_clear(saved_model, tmp_path, capsys):
    (tmp_path / "d.tsv").write_text("sentence\tlabel\ngood\t1\n")
    args = ["evaluate", str(tmp_path / "d.tsv"), "--model", str(saved_model), "--output-dir", str(tmp_path)]
    assert main([*args, "-p", "n_steps=3"]) == 2
    assert "write METHOD.KEY=VALUE" in capsys.readouterr().err
    assert main([*args, "--methods", "lime2"]) == 2
    assert "'lime2' is not a registered" in capsys.readouterr().err
    assert main(["evaluate", str(tmp_path / "missing.tsv")]) == 2
    assert "No such data file or folder" in capsys.readouterr().err
    assert main([*args, "--max-length", "100000"]) == 2
    assert "max_length=100000: the model accepts 3 to" in capsys.readouterr().err


def _texts_with_evidence_in_window(encodings, rationales) -> int:
    return sum(char_spans_to_token_mask(enc, spans).any() for enc, spans in zip(encodings, rationales))


@needs_minilm
@needs_eraser
def test_cli_on_eraser_reviews(tmp_path, capsys):
    code = main(["evaluate", str(ERASER / "val.jsonl"), "--eraser-docs", str(ERASER / "docs"), "--limit", "2",
                 "--model", str(MINILM), "--methods", "gradient_x_input,random",
                 "--metrics", "token_f1,iou_f1,auprc", "--output-dir", str(tmp_path), "--no-progress"])
    assert code == 0
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["info"]["n_truncated"] == 1 and saved["info"]["max_length"] == 512
    assert all(0 <= r["metrics"]["auprc"] <= 1 for r in saved["results"])
    adapter = ModelAdapter.from_pretrained(str(MINILM))
    data = load_examples(ERASER / "val.jsonl", eraser_docs=ERASER / "docs", limit=2)
    inside = _texts_with_evidence_in_window(adapter.encode(data.texts), data.rationales)
    assert f"{inside} of 2 texts have human rationale tokens inside the model's window" in capsys.readouterr().out


@needs_minilm
@needs_eraser
def test_cli_on_the_end_of_eraser_reviews(tmp_path, capsys):
    """--max-length/--truncation-side: the window is each review's last 128 tokens, and the human
    rationales are aligned inside that window."""
    code = main(["evaluate", str(ERASER / "val.jsonl"), "--eraser-docs", str(ERASER / "docs"), "--limit", "3",
                 "--model", str(MINILM), "--methods", "random", "--max-length", "128", "--truncation-side", "left",
                 "--metrics", "token_f1", "--output-dir", str(tmp_path), "--no-progress"])
    assert code == 0
    info = json.loads((tmp_path / "results.json").read_text())["info"]
    assert (info["max_length"], info["truncation_side"], info["n_truncated"]) == (128, "left", 3)
    adapter = ModelAdapter.from_pretrained(str(MINILM), max_length=128, truncation_side="left")
    data = load_examples(ERASER / "val.jsonl", eraser_docs=ERASER / "docs", limit=3)
    encodings = adapter.encode(data.texts)
    assert all(enc.offsets[-2][1] == len(text.rstrip()) for enc, text in zip(encodings, data.texts))
    inside = _texts_with_evidence_in_window(encodings, data.rationales)
    out = capsys.readouterr().out
    assert "3 truncated to their last 128 tokens" in out
    assert f"{inside} of 3 texts have human rationale tokens inside the model's window" in out


# ----------------------------------------------------------------------------- the deletion-curve plot
def test_every_method_has_its_own_colour_blind_safe_style():
    from hf_seqinterp.metrics.evaluation import OKABE_ITO, method_style

    styles = {name: method_style(name) for name in list_methods()}
    assert len(styles) >= 14
    assert len({(s["color"], s["linestyle"]) for s in styles.values()}) == len(styles)
    assert all(s["color"] in OKABE_ITO for name, s in styles.items() if name != "random")
    assert styles["random"]["color"] == "black" and styles["occlusion"]["color"] != "black"
    assert method_style("saliency") == method_style("saliency")  # the same in every plot


def test_deletion_plot_puts_the_legend_outside_the_axes(tiny_bert, tmp_path, monkeypatch):
    import matplotlib.pyplot as plt

    report = evaluate_methods(
        tiny_bert, random_texts(3, seed=4, min_words=3), methods=["random", "saliency", "occlusion"],
        metrics=["deletion_auc"], curve_points=4, progress=False,
    )
    figures = []
    monkeypatch.setattr(plt, "close", figures.append)
    assert report.plot_deletion_curves(tmp_path / "curves.png").stat().st_size > 0
    [fig] = figures
    ax = fig.axes[0]
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    legend = ax.get_legend().get_window_extent(renderer)
    assert legend.x0 > ax.get_window_extent(renderer).x1
    colors = {line.get_label().split()[0]: line.get_color() for line in ax.get_lines()}
    assert len(set(colors.values())) == 3
