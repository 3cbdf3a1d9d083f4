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
a truncated shard under a final name. Temporary names carry the run's id, so a run only ever
deletes the temporary files of runs that are no longer alive.

Ownership: one run at a time owns the folder, through `.lock` (an exclusive `flock` held for the
whole run, with the owner's pid, host and run id written inside). A second run, `--overwrite` or
not, fails with an error naming the owner; the lock of a killed run is released by the kernel, and
the next run takes the folder over (saying whose lock it took over).

Integrity: every shard's sha256 and row count are written next to it (`<shard>.sha256`, before the
shard is renamed into place) and collected into the manifest's `shards` at the end of the run. A
resumed run and every load check each shard against its record; a shard that does not match
(flipped bytes, truncated, empty) is named, moved to `rejected/` (never deleted) and recomputed by
the next run; a load refuses to merge it. Shards of earlier versions, which recorded no checksum,
are verified by reading them whole, and their checksum is recorded then.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import secrets
import shutil
import socket
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import datasets
import pyarrow as pa
import pyarrow.parquet as pq

from .dataset import EXPLANATION_FEATURES, in_source_order
from .errors import CorruptShardError, OutputFolderBusyError
from .utils import quiet_datasets
from .validation import check_int

SHARD_NAME = re.compile(r"^shard-(\d{6})-of-(\d{6})\.parquet$")
TEMP_PREFIX = ".tmp-"
MANIFEST = "manifest.json"
LOCK = ".lock"
CHECKSUM_SUFFIX = ".sha256"
REJECTED = "rejected"
#: manifest keys that record what a run produced rather than what it computes (not compared on resume)
BOOKKEEPING_KEYS = frozenset({"shards"})

logger = logging.getLogger(__name__)


def plan_shards(lengths: Sequence[int], shard_size: int) -> list[list[int]]:
    """Row indices of each shard: rows by decreasing length (ties by position) cut into groups of
    `shard_size`, each group in source order."""
    shard_size = check_int("shard_size", shard_size)
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


def file_sha256(path: str | os.PathLike) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def new_run_id() -> str:
    """A run id unique across processes and hosts: time, pid and random bits."""
    return f"{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}-{secrets.token_hex(4)}"


class OutputLock:
    """Exclusive ownership of an output folder by one run: an `flock` on `<root>/.lock`, which
    holds the owner's pid, host, run id and start time.

    The kernel drops the flock when the owner dies (SIGKILL included), so a lock file whose lock
    can be taken is stale and is taken over. After locking, the file is checked to be the one at
    the path (a concurrent remover could have replaced it), so two runs never both own the folder.
    Without `fcntl` (Windows) the file is created exclusively and a lock of a dead pid on this host
    is taken over.
    """

    def __init__(self, root: str | os.PathLike, run_id: str | None = None):
        self.root = Path(root)
        self.path = self.root / LOCK
        self.run_id = run_id or new_run_id()
        self.previous: dict[str, Any] | None = None
        self._fd: int | None = None

    def owner(self) -> dict[str, Any] | None:
        """What the lock file says (None if there is none or it is unreadable)."""
        try:
            return json.loads(self.path.read_text(encoding="utf-8") or "null")
        except (OSError, ValueError):
            return None

    def acquire(self) -> OutputLock:
        """Own the folder, or raise `OutputFolderBusyError` naming the live owner."""
        self.root.mkdir(parents=True, exist_ok=True)
        try:
            import fcntl
        except ImportError:  # pragma: no cover - Windows
            return self._acquire_exclusive()
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                raise OutputFolderBusyError(self._busy_message(self.owner())) from None
            try:
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)  # locked a file that was replaced meanwhile: lock the new one
        self._fd = fd
        self.previous = self.owner()
        self._write(fd)
        if self.previous:
            logger.warning(
                "%s: took over the lock of run %s (pid %s on %s), which is no longer running.",
                self.root, self.previous.get("run_id"), self.previous.get("pid"), self.previous.get("host"),
            )
        return self

    def _acquire_exclusive(self) -> OutputLock:  # pragma: no cover - Windows
        while True:
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
                break
            except FileExistsError:
                owner = self.owner() or {}
                if owner.get("host") != socket.gethostname() or _pid_alive(owner.get("pid")):
                    raise OutputFolderBusyError(self._busy_message(owner)) from None
                self.previous = owner
                self.path.unlink(missing_ok=True)
        self._fd = fd
        self._write(fd)
        return self

    def _write(self, fd: int) -> None:
        info = {"pid": os.getpid(), "host": socket.gethostname(), "run_id": self.run_id,
                "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, json.dumps(info).encode("utf-8"))

    def _busy_message(self, owner: dict[str, Any] | None) -> str:
        who = (
            f"run {owner.get('run_id')} (pid {owner.get('pid')} on host {owner.get('host')}, started {owner.get('started')})"
            if owner else "another run"
        )
        return (
            f"{self.root} is in use by {who}. Two runs in one folder would mix their shards, and "
            "--overwrite/overwrite=True cannot take a folder from a live run: wait for it to finish (or stop it), "
            "or pass another output_dir."
        )

    def release(self) -> None:
        """Give the folder up: the lock file stays (its lock is what counts), emptied, so that only
        the lock of a run that died says who held it."""
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            os.close(self._fd)  # closing the descriptor drops the flock
            self._fd = None

    def __enter__(self) -> OutputLock:  # noqa: PYI034 - Python 3.10 has no typing.Self
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def _pid_alive(pid: Any) -> bool:  # pragma: no cover - Windows fallback only
    if not isinstance(pid, int):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class ShardStore:
    """Reads and writes the files of one run under `root`; `run_id` names its temporary files."""

    def __init__(self, root: str | os.PathLike, run_id: str | None = None, features: datasets.Features = EXPLANATION_FEATURES):
        self.root = Path(root)
        self.run_id = run_id or new_run_id()
        self.features = features  # the rows' schema (text explanations, or series explanations)

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

    def _temp(self, name: str) -> Path:
        return self.root / f"{TEMP_PREFIX}{self.run_id}-{name}"

    def write(self, index: int, total: int, table: pa.Table) -> Path:
        """Write a shard atomically: a temporary file, its checksum record, then a rename to the final name."""
        final = self.shard_path(index, total)
        temp = self._temp(final.name)
        pq.write_table(table, temp)
        self._write_json(final.with_name(final.name + CHECKSUM_SUFFIX), {"sha256": file_sha256(temp), "rows": table.num_rows})
        os.replace(temp, final)
        return final

    def _write_json(self, path: Path, data: Any) -> None:
        temp = self._temp(path.name)
        temp.write_text(json.dumps(data, indent=2, sort_keys=True), encoding="utf-8")
        os.replace(temp, path)

    def remove_temporary(self) -> int:
        """Delete the temporary files of other runs (left by killed processes); returns how many.
        Call it only while owning the folder: then every other run is dead."""
        mine = f"{TEMP_PREFIX}{self.run_id}-"
        stale = [p for p in self.root.glob(f"{TEMP_PREFIX}*") if not p.name.startswith(mine)] if self.root.is_dir() else []
        for path in stale:
            path.unlink(missing_ok=True)
        return len(stale)

    # ----------------------------------------------------------------- integrity
    def record(self, path: Path) -> dict[str, Any] | None:
        """The checksum record of a shard: its `.sha256` file, else the manifest's entry."""
        sidecar = path.with_name(path.name + CHECKSUM_SUFFIX)
        try:
            return json.loads(sidecar.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return ((self.read_manifest() or {}).get("shards") or {}).get(path.name)

    def problem(self, path: Path, rows: int | None = None) -> str | None:
        """Why the shard at `path` cannot be used (None if it can): empty, checksum or row-count
        mismatch, unreadable. Shards without a record (earlier versions) are read whole."""
        size = path.stat().st_size
        if size == 0:
            return "it is empty (0 bytes)"
        record = self.record(path)
        if record is None:
            return self._check_by_reading(path, rows)
        if rows is not None and record.get("rows") != rows:
            return f"it records {record.get('rows')} rows where the plan has {rows}"
        digest = file_sha256(path)
        if digest != record.get("sha256"):
            return f"its sha256 {digest[:12]}… does not match the recorded {str(record.get('sha256'))[:12]}… ({size} bytes)"
        return None

    def _check_by_reading(self, path: Path, rows: int | None) -> str | None:
        """A shard with no checksum (written by an earlier version): verified by loading it; when
        it loads, its checksum is recorded."""
        try:
            table = pq.read_table(path)
        except Exception as err:  # noqa: BLE001 - any pyarrow failure means an unreadable shard
            return f"it cannot be read ({type(err).__name__}: {err})"
        if table.schema.names != self.features.arrow_schema.names:
            return f"its columns {table.schema.names} are not the explanation schema"
        if rows is not None and table.num_rows != rows:
            return f"it holds {table.num_rows} rows where the plan has {rows}"
        logger.info("%s has no recorded checksum (earlier version); it was verified by loading it.", path.name)
        with contextlib.suppress(OSError):  # a read-only folder still loads
            self._write_json(path.with_name(path.name + CHECKSUM_SUFFIX), {"sha256": file_sha256(path), "rows": table.num_rows})
        return None

    def set_aside(self, path: Path, reason: str) -> Path:
        """Move a bad shard (and its record) to `rejected/`, never deleting it; returns the new path."""
        folder = self.root / REJECTED
        folder.mkdir(exist_ok=True)
        target = folder / f"{path.name}.{self.run_id}"
        os.replace(path, target)
        sidecar = path.with_name(path.name + CHECKSUM_SUFFIX)
        if sidecar.exists():
            os.replace(sidecar, folder / f"{sidecar.name}.{self.run_id}")
        logger.warning("%s: %s; moved to %s and recomputing it.", path, reason, target)
        return target

    def completed(
        self, plan: Sequence[Sequence[int]], rows_per_text: int | None, *, set_aside: bool = False
    ) -> set[int]:
        """Indices of the planned shards on disk that pass `problem` (row counts checked when
        `rows_per_text` is given); with `set_aside`, the others are moved to `rejected/` (only the
        folder's owner, before any shard is written, may do that)."""
        done = set()
        for (index, total), path in self.shards().items():
            if total != len(plan) or index >= total:
                continue
            reason = self.problem(path, None if rows_per_text is None else len(plan[index]) * rows_per_text)
            if reason is None:
                done.add(index)
            elif set_aside:
                self.set_aside(path, reason)
        return done

    def finished(self, plan: Sequence[Sequence[int]]) -> set[int]:
        """Indices of the planned shards with a file and a checksum record (no hashing)."""
        return {
            index for (index, total), path in self.shards().items()
            if total == len(plan) and index < total and path.with_name(path.name + CHECKSUM_SUFFIX).exists()
        }

    def collect_checksums(self) -> dict[str, dict[str, Any]]:
        """Every shard's checksum record, by file name (for the manifest)."""
        return {path.name: record for path in self.shards().values() if (record := self.record(path)) is not None}

    # ----------------------------------------------------------------- manifest
    def read_manifest(self) -> dict[str, Any] | None:
        path = self.root / MANIFEST
        return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None

    def write_manifest(self, manifest: dict[str, Any]) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self._write_json(self.root / MANIFEST, manifest)

    def manifest_conflicts(self, manifest: dict[str, Any]) -> list[str]:
        """Keys whose values differ from the manifest on disk (empty if none, or if there is none);
        the bookkeeping keys (shard checksums) are not compared."""
        existing = self.read_manifest()
        if existing is None:
            return []
        keys = (set(existing) | set(manifest)) - BOOKKEEPING_KEYS
        return sorted(k for k in keys if existing.get(k) != manifest.get(k))

    def clear(self) -> None:
        """Delete the run's shards with their records, manifest, logs, merge cache and the other runs'
        temporary files (the lock and `rejected/` stay)."""
        for path in self.shards().values():
            path.unlink()
        for sidecar in self.root.glob(f"shard-*{CHECKSUM_SUFFIX}"):
            sidecar.unlink()
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
        paths = [p for (_, n), p in self.shards().items() if total is None or n == total]
        if not paths:
            raise FileNotFoundError(f"No explanation shards (shard-*.parquet) in {self.root}.")
        for path in paths:
            reason = self.problem(path)
            if reason is not None:
                raise CorruptShardError(
                    f"{path}: {reason}. It is not merged. Rerun explain_dataset with the same arguments and "
                    f"output_dir: it moves the shard to {self.root / REJECTED} and recomputes it."
                )
        files = [str(p) for p in paths]
        with quiet_datasets():
            merged = datasets.Dataset.from_parquet(files, features=self.features, cache_dir=str(self.root / ".cache"))
            return in_source_order(merged).flatten_indices()
