"""Every ```python block in README.md and docs/**/*.md runs, in order, one namespace per file.

A block directly preceded by the line `<!-- no-test -->` is skipped (use it only for commands that
need network access or a GPU). Only fences at the start of a line count: a ```python fence inside an
indented block is quoted text (e.g. a generated dataset card shown in the docs), not an example.
Blocks run with the repository root as working directory, so paths like ../shared/... resolve as
they do for a user of the repository. `../shared/` in a block stands for the shared folder of the
tests (`HF_SEQINTERP_SHARED`, default ../shared); a page that uses it is skipped when it is absent,
as in a fresh clone.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from conftest import SHARED

from hf_seqinterp.explainers import base as registry

REPO = Path(__file__).resolve().parents[1]
PAGES = [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]
BLOCK = re.compile(r"^(<!-- no-test -->\s*\n)?```python\n(.*?)```", re.DOTALL | re.MULTILINE)


def python_blocks(page: Path) -> list[str]:
    return [code for skip, code in BLOCK.findall(page.read_text(encoding="utf-8")) if not skip]


def with_shared_folder(blocks: list[str], shared: Path) -> list[str]:
    """The blocks with `../shared/` pointing at `shared`; skip the page when they need it and it is absent."""
    if not any("../shared/" in code for code in blocks):
        return blocks
    if not shared.is_dir():
        pytest.skip(f"the examples read ../shared, which is absent ({shared})")
    return [code.replace("../shared/", f"{shared.resolve().as_posix()}/") for code in blocks]


@pytest.mark.parametrize("page", [p for p in PAGES if p.exists() and python_blocks(p)], ids=lambda p: str(p.relative_to(REPO)))
def test_page_examples_run(page: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)
    monkeypatch.setenv("HF_SEQINTERP_DOCS_TMP", str(tmp_path))
    # examples may register methods (docs/extending.md does): keep them out of later tests
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    namespace: dict = {"__name__": "__docs__"}
    for i, code in enumerate(with_shared_folder(python_blocks(page), SHARED)):
        try:
            exec(compile(code, f"{page.name}[block {i}]", "exec"), namespace)
        except Exception as err:  # pragma: no cover - the message is the point
            raise AssertionError(f"{page.relative_to(REPO)} block {i} failed: {err!r}\n{code}") from err


def test_pages_that_read_shared_data_skip_without_it(tmp_path: Path) -> None:
    blocks = ['open("../shared/data/sst2/dev.tsv")']
    with pytest.raises(pytest.skip.Exception, match="absent"):
        with_shared_folder(blocks, tmp_path / "nowhere")
    assert with_shared_folder(blocks, tmp_path) == [f'open("{tmp_path.resolve().as_posix()}/data/sst2/dev.tsv")']
    assert with_shared_folder(["x = 1"], tmp_path / "nowhere") == ["x = 1"]
