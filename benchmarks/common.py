"""Shared pieces of the benchmark scripts: data, model, timing, machine description, tables."""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("HF_SEQINTERP_SHARED", REPO.parent / "shared"))
MINILM = SHARED / "models" / "minilm-sst2"
SST2_DEV = SHARED / "data" / "sst2" / "dev.tsv"


def sst2_dev_sentences(n: int) -> list[str]:
    """The first `n` SST-2 dev sentences (../shared/data/sst2/dev.tsv)."""
    if not SST2_DEV.exists():
        raise SystemExit(f"SST-2 dev set not found at {SST2_DEV}")
    lines = SST2_DEV.read_text(encoding="utf-8").splitlines()[1:]
    return [line.rsplit("\t", 1)[0].strip() for line in lines if line.strip()][:n]


def load_minilm():
    from hf_seqinterp import ModelAdapter

    if not (MINILM / "config.json").exists():
        raise SystemExit(f"minilm-sst2 not found at {MINILM}")
    return ModelAdapter.from_pretrained(str(MINILM))


def setup_torch(threads: int) -> None:
    torch.manual_seed(0)
    torch.set_num_threads(threads)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def timed(fn: Callable[[], object], repeats: int = 1) -> float:
    """Best wall time of `repeats` runs of fn, in seconds."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}; torch {torch.__version__}, {torch.get_num_threads()} threads"


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    def cell(v: object) -> str:
        return f"{v:.3g}" if isinstance(v, float) else str(v)

    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)
