"""Regenerate the pictures in docs/images/ with the bundled default model.

    python docs/images/make_screenshots.py          # from the repository root; needs Chromium
    python docs/images/make_screenshots.py html     # only the HTML pictures (or: plot)

- html_tokens.png, html_words.png, html_words_dark.png: `render_html` pages (token view; word view
  with true labels, in the light and the dark palette), screenshotted by headless Chromium through
  the same helpers as tests/test_html_browser.py (tests/browser.py);
- deletion_curves.png: `EvaluationReport.plot_deletion_curves` for every method that applies to the
  default model, on 12 short reviews (cheap settings for the sampling methods).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent / "tests"))

from browser import screenshot

import hf_seqinterp as hsi
from hf_seqinterp.metrics import evaluate_methods

REVIEWS = [
    ("a clumsy, boring script saved by wonderful actors", "POSITIVE"),
    ("an unbelievably clumsy script", "NEGATIVE"),
    ("the film is not as funny as it thinks it is", "NEGATIVE"),
]
CURVE_TEXTS = [
    "a gripping, funny and moving film", "dull, lifeless and far too long", "an unbelievably clumsy script",
    "the best performance of the year", "it never finds its rhythm", "a warm and generous comedy",
    "the plot makes no sense at all", "beautifully shot and well acted", "a tedious, joyless affair",
    "smart, sharp and surprisingly tender", "too long by half", "one of the most charming films in years",
]
CHEAP = {
    "integrated_gradients": {"n_steps": 16}, "kernel_shap": {"n_samples": 64}, "lime": {"n_samples": 64},
    "shapley_sampling": {"n_samples": 4},
}


def main(parts: list[str]) -> None:
    adapter = hsi.ModelAdapter.from_pretrained()
    if "html" in parts:
        html_pictures(adapter)
    if "plot" in parts:
        report = evaluate_methods(
            adapter, CURVE_TEXTS, method_params=CHEAP, metrics=["deletion_auc", "aopc_comprehensiveness"],
            progress=False,
        )
        print(f"wrote {report.plot_deletion_curves(HERE / 'deletion_curves.png')}")


def html_pictures(adapter: hsi.ModelAdapter) -> None:
    texts, labels = zip(*REVIEWS)
    expls = hsi.explain(list(texts), adapter, method="integrated_gradients")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        pages = {
            "html_tokens": (hsi.render_html(expls[:2], title="Token view"), False),
            "html_words": (hsi.render_html(expls, level="word", true_label=list(labels), title="Word view"), False),
            "html_words_dark": (hsi.render_html(expls, level="word", true_label=list(labels)), True),
        }
        for name, (page, dark) in pages.items():
            source = tmp / f"{name}.html"
            source.write_text(page, encoding="utf-8")
            height = 240 if name == "html_tokens" else 345
            screenshot(source, HERE / f"{name}.png", (1000, height), tmp / f"profile-{name}", dark=dark)
            print(f"wrote {HERE / name}.png")


if __name__ == "__main__":
    main(sys.argv[1:] or ["html", "plot"])
