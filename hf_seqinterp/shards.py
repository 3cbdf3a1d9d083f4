"""The on-disk state of an `explain_dataset` run: Parquet shards, a manifest, per-process run logs.

    output_dir/
      manifest.json                        what the run explains (model, methods + params, data hash, ...)
      shard-000000000-000000256.parquet    explanations of source rows [0, 256), every method
      shard-000000256-000000512.parquet    ...
      logs/rank-0.json                     what each process did in the last run (counts, seconds)

Shards are named by the source rows they cover, not by the process that wrote them, so a rerun
with any number of processes finds the finished ones. A shard is written to a temporary name and
renamed into place (`os.replace`, atomic on POSIX), so a killed process leaves either a complete
shard or a temporary file that the next run deletes, never a truncated shard under a final name.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import datasets
import pyarrow as pa
import pyarrow.parquet as pq

from .dataset import EXPLANATION_FEATURES
from .errors import InvalidParameterError
from .utils import quiet_datasets

SHARD_NAME = re.compile(r"^shard-(\d{9})-(\d{9})\.parquet$")
TEMP_PREFIX = ".tmp-"
MANIFEST = "manifest.json"


def plan_shards(num_rows: int, shard_size: int) -> list[tuple[int, int]]:
    """Consecutive [start, end) row ranges of at most `shard_size` rows covering the dataset."""
    if shard_size < 1:
        raise InvalidParameterError(f"shard_size must be >= 1, got {shard_size}.")
    return [(start, min(num_rows, start + shard_size)) for start in range(0, num_rows, shard_size)]


@dataclass
class RunLog:
    """What one process did in one run (written to logs/rank-<rank>.json)."""

    rank: int
    world_size: int
    shards_computed: int = 0
    shards_reused: int = 0
    rows_computed: int = 0
    explain_s: float = 0.0
    write_s: float = 0.0
    wall_s: float = 0.0


class ShardStore:
    """Reads and writes the files of one run under `root`."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)

    def shard_path(self, start: int, end: int) -> Path:
        return self.root / f"shard-{start:09d}-{end:09d}.parquet"

    def shards(self) -> dict[tuple[int, int], Path]:
        """Finished shards by (start, end), in row order."""
        found = {}
        if self.root.is_dir():
            for path in self.root.iterdir():
                match = SHARD_NAME.match(path.name)
                if match:
                    found[(int(match[1]), int(match[2]))] = path
        return dict(sorted(found.items()))

    def completed(self, rows_per_text: int) -> set[tuple[int, int]]:
        """Finished shards whose row count is what a shard of that range must hold."""
        return {
            (start, end)
            for (start, end), path in self.shards().items()
            if pq.read_metadata(path).num_rows == (end - start) * rows_per_text
        }

    def write(self, start: int, end: int, table: pa.Table) -> Path:
        """Write a shard atomically: a temporary file, then a rename to the final name."""
        final = self.shard_path(start, end)
        temp = self.root / f"{TEMP_PREFIX}{os.getpid()}-{final.name}"
        pq.write_table(table, temp)
        os.replace(temp, final)
        return final

    def remove_temporary(self) -> int:
        """Delete the temporary files left by killed processes; returns how many."""
        stale = [p for p in self.root.glob(f"{TEMP_PREFIX}*")] if self.root.is_dir() else []
        for path in stale:
            path.unlink(missing_ok=True)
        return len(stale)

    # ----------------------------------------------------------------- manifest
    def read_manifest(self) -> dict[str, Any] | None:
        path = self.root / MANIFEST
        return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None

    def write_manifest(self, manifest: dict[str, Any]) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        temp = self.root / f"{TEMP_PREFIX}{os.getpid()}-{MANIFEST}"
        temp.write_text(json.dumps(manifest, indent=2, sort_keys=True), encoding="utf-8")
        os.replace(temp, self.root / MANIFEST)

    def manifest_conflicts(self, manifest: dict[str, Any]) -> list[str]:
        """Keys whose values differ from the manifest on disk (empty if none, or if there is none)."""
        existing = self.read_manifest()
        if existing is None:
            return []
        return sorted(k for k in set(existing) | set(manifest) if existing.get(k) != manifest.get(k))

    def clear(self) -> None:
        """Delete the run's shards, manifest, logs, merge cache and temporary files."""
        for path in self.shards().values():
            path.unlink()
        for name in (MANIFEST, "logs", ".cache"):
            target = self.root / name
            if target.is_dir():
                shutil.rmtree(target)
            elif target.exists():
                target.unlink()
        self.remove_temporary()

    # ----------------------------------------------------------------- logs and merging
    def write_log(self, log: RunLog) -> None:
        folder = self.root / "logs"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"rank-{log.rank}.json").write_text(json.dumps(asdict(log), indent=2), encoding="utf-8")

    def read_logs(self) -> list[RunLog]:
        folder = self.root / "logs"
        paths = sorted(folder.glob("rank-*.json"), key=lambda p: int(p.stem.split("-")[1])) if folder.is_dir() else []
        return [RunLog(**json.loads(p.read_text(encoding="utf-8"))) for p in paths]

    def merge(self) -> datasets.Dataset:
        """All shards as one memory-mapped Dataset in source-row order (Arrow cache in .cache/)."""
        files = [str(p) for p in self.shards().values()]
        if not files:
            raise FileNotFoundError(f"No explanation shards (shard-*.parquet) in {self.root}.")
        with quiet_datasets():
            return datasets.Dataset.from_parquet(files, features=EXPLANATION_FEATURES, cache_dir=str(self.root / ".cache"))
