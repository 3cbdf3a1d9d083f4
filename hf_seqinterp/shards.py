"""The on-disk state of an `explain_dataset` run: Parquet shards, a manifest, per-process run logs.

    output_dir/
      manifest.json                  what the run explains (model, methods + params, data hash, ...)
      shard-000000-of-000027.parquet the 256 longest source rows, every method
      shard-000001-of-000027.parquet the next 256, ...
      logs/rank-0.json               what each process did in the last run (counts, seconds)
      .cache/                        the merged Arrow table

The plan: source rows sorted by length (characters, longest first, ties by position) and cut into
shards of `shard_size`. Texts in a shard have similar lengths, so its length-sorted batches need
little padding even when shards are small: on the first 872 SST-2 dev sentences with batches of 32,
shards of 128 consecutive rows pad to 1.43x the tokens of one global length sort, shards of 128
length-sorted rows to 1.06x. The plan depends only on the data and `shard_size` (both recorded in the
manifest), not on the processes, so a rerun with any number of processes finds the finished shards.

A shard is written to a temporary name and renamed into place (`os.replace`, atomic on POSIX), so a
killed process leaves either a complete shard or a temporary file that the next run deletes, never
a truncated shard under a final name.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import datasets
import pyarrow as pa
import pyarrow.parquet as pq

from .dataset import EXPLANATION_FEATURES, in_source_order
from .errors import InvalidParameterError
from .utils import quiet_datasets

SHARD_NAME = re.compile(r"^shard-(\d{6})-of-(\d{6})\.parquet$")
TEMP_PREFIX = ".tmp-"
MANIFEST = "manifest.json"


def plan_shards(lengths: Sequence[int], shard_size: int) -> list[list[int]]:
    """Row indices of each shard: rows by decreasing length (ties by position) cut into groups of
    `shard_size`, each group in source order."""
    if shard_size < 1:
        raise InvalidParameterError(f"shard_size must be >= 1, got {shard_size}.")
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    return [sorted(order[start : start + shard_size]) for start in range(0, len(order), shard_size)]


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

    def add_shard(self, rows: int, *, explain_s: float, write_s: float) -> None:
        self.shards_computed += 1
        self.rows_computed += rows
        self.explain_s += explain_s
        self.write_s += write_s


class ShardStore:
    """Reads and writes the files of one run under `root`."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)

    def shard_path(self, index: int, total: int) -> Path:
        return self.root / f"shard-{index:06d}-of-{total:06d}.parquet"

    def shards(self) -> dict[tuple[int, int], Path]:
        """Finished shard files by (index, total), in plan order."""
        found = {}
        if self.root.is_dir():
            for path in self.root.iterdir():
                match = SHARD_NAME.match(path.name)
                if match:
                    found[(int(match[1]), int(match[2]))] = path
        return dict(sorted(found.items()))

    def completed(self, plan: Sequence[Sequence[int]], rows_per_text: int) -> set[int]:
        """Indices of the planned shards on disk with the number of rows they must hold."""
        return {
            index
            for (index, total), path in self.shards().items()
            if total == len(plan) and index < total and pq.read_metadata(path).num_rows == len(plan[index]) * rows_per_text
        }

    def write(self, index: int, total: int, table: pa.Table) -> Path:
        """Write a shard atomically: a temporary file, then a rename to the final name."""
        final = self.shard_path(index, total)
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

    def merge(self, total: int | None = None) -> datasets.Dataset:
        """The shards (of a plan of `total` shards, if given) as one memory-mapped Dataset in
        source-row order (Arrow cache in .cache/); each row's methods stay in the order they ran
        (the sort is stable)."""
        files = [str(p) for (_, n), p in self.shards().items() if total is None or n == total]
        if not files:
            raise FileNotFoundError(f"No explanation shards (shard-*.parquet) in {self.root}.")
        with quiet_datasets():
            merged = datasets.Dataset.from_parquet(files, features=EXPLANATION_FEATURES, cache_dir=str(self.root / ".cache"))
            return in_source_order(merged).flatten_indices()
