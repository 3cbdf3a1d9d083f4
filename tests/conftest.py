"""Shared fixtures: offline settings, paths to ../shared, tiny models and the real MiniLM model."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

pytest_plugins = ["hub_server.fixtures"]  # loopback Hub (hub, hub_server) and olah mirror (olah) fixtures

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("HF_SEQINTERP_SHARED", REPO.parent / "shared"))
MINILM = SHARED / "models" / "minilm-sst2"
SST2_DEV = SHARED / "data" / "sst2" / "dev.tsv"
SST2_VALIDATION = SHARED / "data" / "sst2" / "validation.tsv"  # GLUE SST-2 validation, 872 sentences
ERASER = SHARED / "data" / "eraser_movies"

needs_minilm = pytest.mark.skipif(not (MINILM / "config.json").exists(), reason=f"shared model not found at {MINILM}")
needs_sst2 = pytest.mark.skipif(not SST2_DEV.exists(), reason=f"SST-2 not found at {SST2_DEV}")
needs_sst2_validation = pytest.mark.skipif(
    not SST2_VALIDATION.exists(), reason=f"SST-2 validation not found at {SST2_VALIDATION}"
)
needs_eraser = pytest.mark.skipif(not (ERASER / "val.jsonl").exists(), reason=f"ERASER movies not found at {ERASER}")


def sst2_dev_sentences(n: int, *, offset: int = 0) -> list[str]:
    """The first `n` sentences of ../shared/data/sst2/dev.tsv (header skipped)."""
    lines = SST2_DEV.read_text(encoding="utf-8").splitlines()
    rows = [line.split("\t")[0] for line in lines[1:] if line.strip()]
    return rows[offset : offset + n]


def sst2_dev(n: int | None = None, path: Path = SST2_DEV) -> tuple[list[str], list[int]]:
    """(sentences, labels) from SST-2 dev (or another `sentence<TAB>label` file such as validation)."""
    lines = path.read_text(encoding="utf-8").splitlines()[1:]
    pairs = [line.rsplit("\t", 1) for line in lines if line.strip()]
    pairs = pairs[:n] if n else pairs
    return [p[0] for p in pairs], [int(p[1]) for p in pairs]


@pytest.fixture(scope="session")
def minilm():
    """ModelAdapter over ../shared/models/minilm-sst2 (default SDPA attention), or skip."""
    if not (MINILM / "config.json").exists():
        pytest.skip(f"shared model not found at {MINILM}")
    from hf_seqinterp import ModelAdapter

    return ModelAdapter.from_pretrained(str(MINILM))


@pytest.fixture(scope="session")
def default_adapter():
    """ModelAdapter over the bundled default model."""
    from hf_seqinterp import ModelAdapter

    return ModelAdapter.from_pretrained()


@pytest.fixture
def one_thread():
    """torch on one thread for the test: tiny models' ops take microseconds, and on a loaded machine
    two threads wait for each other for milliseconds at every op."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def crash_after_shards(monkeypatch: pytest.MonkeyPatch, n: int) -> list[tuple[int, int]]:
    """Make `ShardStore.write` raise KeyboardInterrupt (a simulated crash) once `n` shards are written;
    returns the list of (index, total) written, filled as the run goes. `monkeypatch.undo()` restores it."""
    from hf_seqinterp.shards import ShardStore

    written: list[tuple[int, int]] = []
    real_write = ShardStore.write

    def write(self, index, total, table):
        if len(written) == n:
            raise KeyboardInterrupt("simulated crash")
        written.append((index, total))
        return real_write(self, index, total, table)

    monkeypatch.setattr(ShardStore, "write", write)
    return written
