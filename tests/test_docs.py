"""Every ```python block in README.md and docs/**/*.md runs, in order, one namespace per file.

A block directly preceded by the line `<!-- no-test -->` is skipped (use it only for commands that
need network access or a GPU). Only fences at the start of a line count: a ```python fence inside an
indented block is quoted text (e.g. a generated dataset card shown in the docs), not an example.
Blocks run with the repository root as working directory, so paths like ../shared/... resolve as
they do for a user of the repository.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from hf_seqinterp.explainers import base as registry

REPO = Path(__file__).resolve().parents[1]
PAGES = [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]
BLOCK = re.compile(r"^(<!-- no-test -->\s*\n)?```python\n(.*?)```", re.DOTALL | re.MULTILINE)


def python_blocks(page: Path) -> list[str]:
    return [code for skip, code in BLOCK.findall(page.read_text(encoding="utf-8")) if not skip]


@pytest.mark.parametrize("page", [p for p in PAGES if p.exists() and python_blocks(p)], ids=lambda p: str(p.relative_to(REPO)))
def test_page_examples_run(page: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)
    monkeypatch.setenv("HF_SEQINTERP_DOCS_TMP", str(tmp_path))
    # examples may register methods (docs/extending.md does): keep them out of later tests
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    namespace: dict = {"__name__": "__docs__"}
    for i, code in enumerate(python_blocks(page)):
        try:
            exec(compile(code, f"{page.name}[block {i}]", "exec"), namespace)
        except Exception as err:  # pragma: no cover - the message is the point
            raise AssertionError(f"{page.relative_to(REPO)} block {i} failed: {err!r}\n{code}") from err
