"""The model sweep as tests: named and representative model types in the default suite, every model
type under `-m slow`, and the committed docs/models.md equal to a fresh sweep's table (slow)."""

from __future__ import annotations

import pytest

from sweep.report import DOCS, Row, render, sweep, sweep_type

# representative types (encoders, decoders, encoder–decoders) plus named hard cases, run by default
DEFAULT_TYPES = (
    "bert", "roberta", "distilbert", "gpt2", "llama", "qwen2", "bart", "t5",
    "mistral", "gemma", "phi3", "fnet", "longformer", "xlnet", "funnel", "ctrl",
)  # fmt: skip
GRADIENT_AND_PERTURBATION = (
    "saliency", "gradient_x_input", "integrated_gradients", "erasure", "occlusion", "lime", "kernel_shap",
    "shapley_sampling",
)  # fmt: skip
# model types whose gradient, IG, erasure and perturbation cells must be ✓, not merely refused
MUST_WORK = (
    "bart", "mbart", "plbart", "mvp", "bigbird_pegasus", "t5", "mt5", "umt5",
    "llama", "mistral", "qwen2", "qwen3", "gemma", "gemma2", "gemma3_text", "phi", "phi3", "gpt_neox", "falcon",
    "bloom", "olmo", "olmo2", "starcoder2", "stablelm", "gpt2", "opt",
    "longformer", "xlnet", "funnel", "ctrl", "convbert", "mobilebert", "fnet", "nystromformer", "yoso",
    "bert", "roberta", "distilbert", "deberta-v2", "modernbert", "electra", "esm",
)  # fmt: skip


def problems(row: Row) -> list[str]:
    """Every failing cell, and every named case whose cell is not ✓ (or ⚠ for integrated gradients:
    it runs, and its explanations say where completeness falls short)."""
    out = [f"{row.model_type} × {m}: {c.reason}" for m, c in row.cells.items() if c.status == "fail"]
    if row.model_type in MUST_WORK:
        out += [
            f"{row.model_type} × {m} must work, got {row.cells[m].status}: {row.cells[m].reason}"
            for m in GRADIENT_AND_PERTURBATION
            if row.cells[m].status not in ("ok", "warns" if m == "integrated_gradients" else "ok")
        ]
    return out


@pytest.mark.parametrize("model_type", DEFAULT_TYPES)
def test_model_type(model_type):
    row = sweep_type(model_type)
    assert not row.cannot_build, row.cannot_build
    assert not problems(row)


@pytest.fixture(scope="module")
def full_sweep() -> list[Row]:
    return sweep()


@pytest.mark.slow
def test_every_model_type(full_sweep):
    found = [p for row in full_sweep for p in problems(row)]
    assert not found, "\n".join(found)


@pytest.mark.slow
def test_docs_table_is_current(full_sweep):
    assert DOCS.read_text(encoding="utf-8") == render(full_sweep), (
        "docs/models.md is out of date; regenerate it with `python tests/sweep/report.py`."
    )
