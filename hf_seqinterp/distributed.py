"""`explain_dataset`: explain a whole dataset on one or many processes, resumably.

    accelerate launch --num_processes 2 my_script.py      # or torchrun --nproc_per_node 2, or python

The source rows are sorted by length and cut into shards of `shard_size` rows (see `shards.py` for
why and for the layout). Every process lists the shards already on disk and takes every n-th missing
one (round robin over the longest-first plan keeps the processes' loads even); it explains each
(tokenising once, then every method on the same encodings, batched by length) and writes it as a
Parquet file the moment it is done. When all are done, the shards are merged into one
`datasets.Dataset` in source-row order. An interrupted run restarted with the same arguments
recomputes only the missing shards; the manifest refuses to mix shards of a different run (other
model, methods, parameters or data), the folder's lock refuses a second live run, and every shard is
checked against its recorded sha256 before it is reused or merged (see `shards.py`).

Device placement and mixed precision come from Accelerate: the model is moved to
`Accelerator().device`, and explanations run under `accelerator.autocast()` when mixed precision is
on (`mixed_precision=` or `accelerate launch --mixed_precision`), which is recorded in every row's
warnings. A launcher on a machine without GPUs gets Accelerate's multi-CPU mode (gloo).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import datasets
import pyarrow as pa
import torch

from .adapter import ModelAdapter, Target
from .data import load_text_dataset
from .data import text_column as find_text_column
from .dataset import DATASET_SCHEMA_VERSION, EXPLANATION_FEATURES, explanation_to_row
from .errors import InvalidInputError, InvalidParameterError, RunInterrupted, SeqInterpError
from .explainers import DEFAULT_METHOD, Explainer, get_explainer
from .explanation import _jsonable
from .mixin import as_adapter
from .shards import OutputLock, RunLog, ShardStore, plan_shards
from .utils import progress_bar
from .validation import check_batch_size, check_int, validate_texts

logger = logging.getLogger(__name__)

DEFAULT_SHARD_SIZE = 256
Methods = str | Sequence[str] | Mapping[str, Mapping[str, Any]]


def explain_dataset(
    model: ModelAdapter | Any,
    dataset: datasets.Dataset | Sequence[str] | str | Path,
    methods: Methods = DEFAULT_METHOD,
    *,
    output_dir: str | Path,
    text_column: str | None = None,
    text_pair_column: str | None = None,
    id_column: str | None = None,
    label_column: str | None = None,
    target: Target = None,
    target_column: str | None = None,
    head_options: Mapping[str, Any] | None = None,
    tokenizer: Any = None,
    batch_size: int | None = None,
    shard_size: int = DEFAULT_SHARD_SIZE,
    truncation: bool = True,
    mixed_precision: str | None = None,
    cpu: bool | None = None,
    overwrite: bool = False,
    progress: bool = True,
) -> datasets.Dataset:
    """Explain every row of `dataset` with every method; returns the explanation dataset.

    Args:
        model: a ModelAdapter, a loaded classifier (with `tokenizer`), a folder or Hub id, or None
            for the bundled default model.
        dataset: a `datasets.Dataset`, a list of texts, or anything `load_text_dataset` reads.
        methods: a method name, a list of names, or {name: {parameter: value}}.
        output_dir: where shards are written; rerunning with the same arguments resumes there.
        text_column: column with the texts (default: the first of text, sentence, content, ...).
        text_pair_column: column with the second segment of sentence pairs (NLI, paraphrase), if any.
        id_column / label_column: copied into `source_id` / `label` of each row.
        target, target_column: the class to explain, for every row or per row from a column
            (default: the predicted class); for a causal LM the continuation (default: generated).
        head_options: the model head's `explain` options (a causal LM's `generation`, `contrast`,
            `chat_template`), recorded in the manifest: a resumed run must give the same.
        batch_size: texts per batch (default: each method's own).
        shard_size: source rows per shard; a crash loses at most one shard per process.
        mixed_precision: "no", "fp16", "bf16" (default: what `accelerate launch` configured).
        cpu: force the CPU (default: on machines without an accelerator).
        overwrite: delete the shards of a different earlier run in `output_dir` instead of failing
            (never those of a live run: a folder is owned by one run at a time).
        progress: show a progress bar (examples/s) on the main process.

    Returns the merged `datasets.Dataset` (schema `EXPLANATION_FEATURES`) on every process: one row
    per (source row, method), source rows in their original order, methods in the given order.
    """
    from accelerate import Accelerator

    started = time.perf_counter()
    batch_size = check_batch_size(batch_size)
    shard_size = check_int("shard_size", shard_size)
    accelerator = Accelerator(cpu=not _has_accelerator() if cpu is None else cpu, mixed_precision=mixed_precision)
    dataset = _as_dataset(dataset)
    if len(dataset) == 0:
        raise InvalidInputError("The dataset has no rows; there is nothing to explain.")
    column = find_text_column(dataset, text_column)
    specs = checked_specs(dataset, (text_pair_column, id_column, label_column, target_column), target, target_column,
                          methods, get_explainer)
    adapter = as_adapter(model, tokenizer)
    head_options = dict(head_options or {})
    adapter.check_head_options(head_options)
    adapter.model.to(accelerator.device)
    explainers = {name: get_explainer(name).create(adapter, **params) for name, params in specs.items()}

    source = _SourceColumns.read(
        dataset, (column, text_pair_column), id_column, label_column, target_column, adapter, target
    )
    manifest = {
        "schema_version": DATASET_SCHEMA_VERSION,
        "model_name": adapter.model_name,
        "model_revision": adapter.model_revision,
        "methods": {name: _json_params(e) for name, e in explainers.items()},
        "text_column": column,
        **({"text_pair_column": text_pair_column} if text_pair_column else {}),
        "id_column": id_column,
        "label_column": label_column,
        "target": target,
        "target_column": target_column,
        **({"head_options": _jsonable(head_options)} if head_options else {}),
        "num_rows": len(dataset),
        "data_sha256": source.digest(),
        "shard_size": shard_size,
        "shard_plan": "rows by decreasing character length",
        "truncation": truncation,
        "max_length": adapter.max_length,
        "truncation_side": adapter.truncation_side,
        "mixed_precision": accelerator.mixed_precision,
    }
    plan = plan_shards([len(t) for t in source.texts], shard_size)

    def explain_shard(rows: Sequence[int], on_batch: Callable[[int], None] | None) -> pa.Table:
        return _explain_shard(explainers, source, rows, batch_size, truncation, head_options,
                              accelerator.mixed_precision, on_batch)

    return run_sharded(Path(output_dir), manifest, plan, list(explainers), explain_shard, accelerator,
                       overwrite=overwrite, progress=progress, started=started)


#: explains the given source rows with every method: (rows, progress callback) -> an Arrow table
ShardFunction = Callable[[Sequence[int], "Callable[[int], None] | None"], pa.Table]


def run_sharded(
    root: Path,
    manifest: dict[str, Any],
    plan: list[list[int]],
    methods: list[str],
    explain_shard: ShardFunction,
    accelerator: Any,
    *,
    features: datasets.Features = EXPLANATION_FEATURES,
    overwrite: bool = False,
    progress: bool = True,
    started: float | None = None,
) -> datasets.Dataset:
    """The run of `plan` in `root` (claimed, resumed, sealed and merged into rows of `features`),
    whatever the rows explain: `explain_shard` is the only part that knows the inputs."""
    started = time.perf_counter() if started is None else started
    store, lock, done = _claim(root, manifest, plan, len(methods), accelerator, overwrite, features)
    try:
        return _run(store, manifest, plan, done, methods, explain_shard, accelerator, progress, started)
    finally:
        if lock is not None:
            lock.release()


def _run(
    store: ShardStore,
    manifest: dict[str, Any],
    plan: list[list[int]],
    done: set[int],
    methods: list[str],
    explain_shard: ShardFunction,
    accelerator: Any,
    progress: bool,
    started: float,
) -> datasets.Dataset:
    """The shards of `plan` not in `done`, round robin over the processes; then the merged dataset."""
    n_rows = sum(len(rows) for rows in plan)
    if accelerator.is_main_process:
        logger.info(
            "explain_dataset: %d rows, %d shards (%d already on disk), %d process(es), methods %s",
            n_rows, len(plan), len(done), accelerator.num_processes, ", ".join(methods),
        )
    log = RunLog(rank=accelerator.process_index, world_size=accelerator.num_processes, shards_reused=len(done))
    # round robin over the longest-first plan: every process gets long and short shards alike
    mine = [k for k in range(len(plan)) if k not in done][accelerator.process_index :: accelerator.num_processes]
    # the bar counts explanations (rows x methods) and moves after every batch, not every shard
    per_row = len(methods)
    with progress_bar(
        n_rows * per_row, "explain_dataset", unit="expl", initial=sum(len(plan[k]) for k in done) * per_row,
        enabled=progress and accelerator.is_main_process,
    ) as bar, _report_interrupt(store, plan, per_row, n_rows):
        on_batch = bar.update if accelerator.is_main_process else None
        for k in mine:
            tick = time.perf_counter()
            with accelerator.autocast():
                table = explain_shard(plan[k], on_batch)
            wrote = time.perf_counter()
            path = store.write(k, len(plan), table)
            log.add_shard(len(plan[k]), explain_s=wrote - tick, write_s=time.perf_counter() - wrote)
            logger.info("rank %d wrote %s (%.2f s)", log.rank, path.name, time.perf_counter() - tick)
            if accelerator.is_main_process:  # count every process's finished shards (a directory listing)
                finished = sum(len(plan[i]) for i, total in store.shards() if total == len(plan)) * per_row
                bar.update(max(0, finished - bar.n))
        log.wall_s = time.perf_counter() - started
        store.write_log(log)
        accelerator.wait_for_everyone()
        bar.update(n_rows * per_row - bar.n)

    seal(store, manifest, plan, accelerator)
    with accelerator.main_process_first():
        return store.merge(total=len(plan))


def seal(store: ShardStore, manifest: dict[str, Any], plan: list[list[int]], accelerator: Any) -> None:
    """After every process wrote its shards: check that none is missing and record their checksums
    in the manifest (main process); every process returns once it is written."""
    missing = sorted(set(range(len(plan))) - store.finished(plan))
    if missing:
        raise RuntimeError(f"Shards {missing[:5]} are missing after every process finished; rerun to compute them.")
    if accelerator.is_main_process:
        store.write_manifest({**manifest, "shards": store.collect_checksums()})
    accelerator.wait_for_everyone()


@contextlib.contextmanager
def _report_interrupt(store: ShardStore, plan: list[list[int]], n_methods: int, rows: int) -> Iterator[None]:
    """Turn Ctrl-C into `RunInterrupted` with the number of source rows already saved in shards."""
    try:
        yield
    except KeyboardInterrupt:
        saved = sum(len(plan[i]) for i in store.completed(plan, n_methods))
        raise RunInterrupted(saved, rows) from None


def _claim(
    root: Path, manifest: dict, plan: list[list[int]], n_methods: int | None, accelerator: Any, overwrite: bool,
    features: datasets.Features = EXPLANATION_FEATURES,
) -> tuple[ShardStore, OutputLock | None, set[int]]:
    """Make `root` this run's output folder: (its store, the lock the main process holds, the plan's
    shards already done there and intact).

    The main process takes the folder's lock, checks the manifest, clears the folder (overwrite),
    writes the manifest, deletes dead runs' temporary files and verifies the finished shards (setting
    bad ones aside); the outcome (the run id, the finished shards, or the error) is broadcast, so
    every process agrees and fails together."""
    from accelerate.utils import broadcast_object_list

    lock: OutputLock | None = None
    outcome: list[Any] = [None]
    failure: BaseException | None = None
    if accelerator.is_main_process:
        try:
            lock = OutputLock(root).acquire()
            store = ShardStore(root, run_id=lock.run_id, features=features)
            conflicts = store.manifest_conflicts(manifest)
            if conflicts and not overwrite:
                raise InvalidParameterError(
                    f"{store.root} holds shards of a different run (it differs in: {', '.join(conflicts)}). "
                    "Use another output_dir, or pass overwrite=True (--overwrite) to delete them."
                )
            if conflicts:
                store.clear()
            previous = store.read_manifest() or {}
            store.write_manifest({**manifest, **({"shards": previous["shards"]} if "shards" in previous else {})})
            store.remove_temporary()
            outcome = [(lock.run_id, store.completed(plan, n_methods, set_aside=True))]
        except Exception as err:  # noqa: BLE001 - every process must hear of it, or the others wait forever
            failure = err
            outcome = [err if isinstance(err, SeqInterpError) else SeqInterpError(f"{type(err).__name__}: {err}")]
            if lock is not None:
                lock.release()
    if accelerator.num_processes > 1:
        outcome = broadcast_object_list(outcome)
    if failure is not None:
        raise failure
    if isinstance(outcome[0], SeqInterpError):
        raise outcome[0]
    run_id, done = outcome[0]
    return ShardStore(root, run_id=run_id, features=features), lock, done


def checked_specs(
    dataset: datasets.Dataset, columns: Sequence[str | None], target: Any, target_column: str | None,
    methods: Methods, lookup: Callable[[str], Any],
) -> dict[str, dict[str, Any]]:
    """{method: params} of a run, after checking that the named columns exist, that at most one of
    target / target_column is given and (with `lookup`, the registry's) that every method exists:
    bad arguments fail before the model is touched."""
    for name in columns:
        if name is not None and name not in dataset.column_names:
            raise InvalidInputError(f"The dataset has no column {name!r}; its columns are {dataset.column_names}.")
    if target is not None and target_column is not None:
        raise InvalidParameterError("Pass target= or target_column=, not both.")
    specs = method_specs(methods)
    for name in specs:
        lookup(name)
    return specs


def method_specs(methods: Methods) -> dict[str, dict[str, Any]]:
    """{method: params} from a name, a list of names, or a mapping of names to parameter dicts."""
    if isinstance(methods, str):
        return {methods: {}}
    if isinstance(methods, Mapping):
        return {str(name): dict(params or {}) for name, params in methods.items()}
    names = list(methods)
    if not names or len(set(names)) != len(names):
        raise InvalidParameterError(f"methods={names!r}: give at least one method, each once.")
    return {name: {} for name in names}


def _has_accelerator() -> bool:
    backend = getattr(torch, "accelerator", None)  # torch >= 2.6
    return bool(backend.is_available()) if backend is not None else torch.cuda.is_available()


def _as_dataset(dataset: datasets.Dataset | Sequence[str] | str | Path) -> datasets.Dataset:
    if isinstance(dataset, datasets.Dataset):
        return dataset
    if isinstance(dataset, (str, Path)):
        return load_text_dataset(dataset)
    if isinstance(dataset, datasets.DatasetDict):
        raise InvalidInputError(f"Got a DatasetDict with splits {list(dataset)}; pass one split, e.g. dataset['test'].")
    return datasets.Dataset.from_dict({"text": validate_texts(dataset)})


def _json_params(explainer: Explainer) -> dict[str, Any]:
    """The explainer's parameters as they are stored in rows (JSON types)."""
    return json.loads(json.dumps(_jsonable(explainer.params)))


class _SourceColumns:
    """The columns of the source dataset the run reads, validated up front (a bad row 90% into a
    run would waste it): texts, ids, gold labels, per-row targets."""

    def __init__(self, texts, pairs, ids, labels, targets):
        self.texts: list[str] = texts
        self.pairs: list[str] | None = pairs
        self.ids: list[str] | None = ids
        self.labels: list[int | None] | None = labels
        self.targets: list[int | None] = targets

    @classmethod
    def read(cls, dataset, columns, id_column, label_column, target_column, adapter, target) -> _SourceColumns:
        texts, pairs = (list(dataset[c]) if c else None for c in columns)
        for column, values in zip(columns, (texts, pairs)):
            for i, text in enumerate(values or ()):
                if not isinstance(text, str) or not text.strip():
                    raise InvalidInputError(
                        f"Row {i} of column {column!r} is {text!r}, which cannot be explained; remove such rows "
                        "first, e.g. dataset.filter(lambda r: bool(r[column] and r[column].strip()))."
                    )
        ids = [str(v) for v in dataset[id_column]] if id_column else None
        labels = None
        if label_column:
            labels = list(dataset[label_column])
            bad = next((i for i, v in enumerate(labels) if v is not None and not isinstance(v, int)), None)
            if bad is not None:
                raise InvalidInputError(
                    f"label_column={label_column!r} must hold class ids (int); row {bad} holds {labels[bad]!r}."
                )
        if target_column:
            targets = [adapter.check_target(v) for v in dataset[target_column]]
        else:
            targets = [adapter.check_target(target)] * len(texts)
        return cls(texts, pairs, ids, labels, targets)

    def inputs(self, rows: Sequence[int]) -> list[tuple[str, str | None]]:
        """(text, text_pair or None) of the given rows."""
        return [(self.texts[i], self.pairs[i] if self.pairs else None) for i in rows]

    def digest(self) -> str:
        """sha256 of everything read from the source, so a resumed run knows it is the same data."""
        h = hashlib.sha256()
        read = (self.texts, self.ids, self.labels, self.targets) + ((self.pairs,) if self.pairs else ())
        for values in read:
            for value in values or ():
                h.update(repr(value).encode("utf-8"))
                h.update(b"\x00")
            h.update(b"\x01")
        return h.hexdigest()


def _explain_shard(
    explainers: dict[str, Explainer],
    source: _SourceColumns,
    rows: Sequence[int],
    batch_size: int | None,
    truncation: bool,
    head_options: dict[str, Any],
    mixed_precision: str,
    on_batch: Callable[[int], None] | None = None,
) -> pa.Table:
    """The given source rows explained by every method, as an Arrow table (source-major row order)."""
    adapter = next(iter(explainers.values())).adapter
    encodings, targets = adapter.prepare(
        source.inputs(rows), [source.targets[i] for i in rows], truncation=truncation, **head_options
    )
    per_method = [
        e.explain_encodings(encodings, targets, batch_size=batch_size, progress=False, on_batch=on_batch)
        for e in explainers.values()
    ]
    out = []
    for position, i in enumerate(rows):
        for expls in per_method:
            expl = expls[position]
            if mixed_precision != "no":
                expl.warnings.append(f"computed under {mixed_precision} mixed precision (autocast)")
            out.append(
                explanation_to_row(
                    expl,
                    source_index=i,
                    source_id=source.ids[i] if source.ids else None,
                    label=source.labels[i] if source.labels else None,
                )
            )
    return pa.Table.from_pylist(out, schema=EXPLANATION_FEATURES.arrow_schema)
