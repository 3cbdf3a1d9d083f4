r"""Top-k max-activating contexts of units over a dataset (Karpathy, Johnson & Fei-Fei 2015,
arXiv:1506.02078, at scale), streamed in O(U·k) memory.

For unit u with activation a_u(i, t) at token t of text i, the result is the k largest
(a_u(i, t), i, t) under the total order (value descending, text index ascending, position
ascending). Per batch the candidates a ∈ R^{U×N} (N real tokens; special tokens excluded by
default) are concatenated with the running (U, k) buffer and the first k are kept — never the
activations of more than one batch at once. Since every global top-k element is in the top-k of
its shard, top-k(∪ shard top-k's) is the global top-k, and with a total order the result is the same
for any sharding: one process, many, or a run resumed after a kill.

Sharding and resuming reuse `explain_dataset`'s machinery: rows sorted by length are cut into
shards (`plan_shards`), processes take the missing ones round robin, each shard's top-k table is
written atomically with its checksum (`ShardStore`), the folder is owned by one run (`OutputLock`)
and a manifest refuses to resume with other settings. The merge reads one shard at a time.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import datasets
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import torch

from ..adapter import Encoding, ModelAdapter
from ..data import text_column as find_text_column
from ..distributed import _as_dataset, _claim, _has_accelerator, seal
from ..errors import InvalidInputError
from ..mixin import as_adapter
from ..shards import plan_shards
from ..utils import progress_bar
from ..validation import check_batch_size, check_int, check_text
from ..visualize import display_tokens
from .units import UnitGroup, capture, run, unit_groups

logger = logging.getLogger(__name__)

RESULT_NAME = "top_activations"
SHARD_SCHEMA = pa.schema([
    ("group", pa.string()), ("unit", pa.int32()), ("rank", pa.int32()),
    ("activation", pa.float32()), ("text_index", pa.int64()), ("position", pa.int32()),
])  # fmt: skip
FEATURES = datasets.Features({
    "kind": datasets.Value("string"), "layer": datasets.Value("int32"), "unit": datasets.Value("int32"),
    "rank": datasets.Value("int32"), "activation": datasets.Value("float32"),
    "text_index": datasets.Value("int64"), "position": datasets.Value("int32"), "token": datasets.Value("string"),
    "context": datasets.Value("string"),
})  # fmt: skip
HIT_OPEN, HIT_CLOSE = "⟦", "⟧"


@dataclass
class TopK:
    """Running top-k of U units: (U, k) values (−inf where empty), text indices (−1) and positions."""

    values: torch.Tensor
    texts: torch.Tensor
    positions: torch.Tensor

    @classmethod
    def empty(cls, units: int, k: int) -> TopK:
        return cls(
            torch.full((units, k), -torch.inf), torch.full((units, k), -1, dtype=torch.long),
            torch.zeros((units, k), dtype=torch.long),
        )

    def merge(self, values: torch.Tensor, texts: torch.Tensor, positions: torch.Tensor) -> TopK:
        """The top k of this buffer and U×N candidates (`texts`, `positions`: (N,) or (U, N)), in the
        total order: value descending, then text ascending, then position ascending."""
        k = self.values.shape[1]
        units = self.values.shape[0]
        v = torch.cat([self.values, values.float()], 1)
        t = torch.cat([self.texts, texts.long().expand(units, -1)], 1)
        p = torch.cat([self.positions, positions.long().expand(units, -1)], 1)
        order = torch.argsort(t * (int(p.max()) + 1) + p, dim=1)  # (text, position) ascending ...
        v, t, p = v.gather(1, order), t.gather(1, order), p.gather(1, order)
        order = torch.argsort(-v, dim=1, stable=True)[:, :k]  # ... then value descending, stably
        return TopK(v.gather(1, order), t.gather(1, order), p.gather(1, order))

    def to_rows(self, group: str) -> dict[str, list]:
        """Columns of `SHARD_SCHEMA` for the filled entries."""
        unit, rank = torch.nonzero(self.texts >= 0, as_tuple=True)
        return {
            "group": [group] * len(unit), "unit": unit.tolist(), "rank": rank.tolist(),
            "activation": self.values[unit, rank].tolist(), "text_index": self.texts[unit, rank].tolist(),
            "position": self.positions[unit, rank].tolist(),
        }

    @classmethod
    def from_rows(cls, table: pa.Table, units: int, k: int) -> TopK:
        """The inverse of `to_rows` (one group's rows of a shard table)."""
        out = cls.empty(units, k)
        def column(name: str, dtype: type) -> torch.Tensor:
            return torch.from_numpy(np.array(table[name].to_numpy(), dtype=dtype))

        unit, rank = column("unit", np.int64), column("rank", np.int64)
        out.values[unit, rank] = column("activation", np.float32)
        out.texts[unit, rank] = column("text_index", np.int64)
        out.positions[unit, rank] = column("position", np.int64)
        return out


def top_activations(
    model: ModelAdapter | Any,
    dataset: datasets.Dataset | Sequence[str] | str | Path,
    *,
    units: str | Sequence[str] = "ffn",
    layers: int | Sequence[int] | None = None,
    k: int = 20,
    output_dir: str | Path | None = None,
    text_column: str | None = None,
    tokenizer: Any = None,
    include_special: bool = False,
    per_text: bool = False,
    window: int = 8,
    batch_size: int | None = None,
    shard_size: int = 1024,
    truncation: bool = True,
    cpu: bool | None = None,
    overwrite: bool = False,
    progress: bool = True,
) -> datasets.Dataset:
    """The top-`k` max-activating tokens (with their contexts) of every chosen unit over `dataset`.

    Args:
        model: a ModelAdapter, a loaded model (with `tokenizer`), a folder or Hub id, or None (default model).
        dataset: a `datasets.Dataset`, a list of texts, or anything `load_text_dataset` reads.
        units: "ffn", "head", "residual" or a list of them (see `hf_seqinterp.network.units`).
        layers: block index or indices (negative from the end); default: every block.
        k: contexts kept per unit.
        output_dir: where shards, the manifest and the result (`top_activations.parquet` and
            `.json`) go; a rerun with the same arguments resumes there, on any number of processes
            (`accelerate launch` / `torchrun`). Without it, one process computes in memory.
        include_special: also rank special tokens ([CLS], [SEP], BOS), which often dominate.
        per_text: rank each text's most active token only (the first on ties), so that one long
            or repetitive text fills at most one of a unit's k places.
        window: tokens shown on each side of the hit in `context`.
        batch_size: texts per forward (default 32); texts are batched by length within a shard.
        shard_size: texts per shard (a kill loses at most one shard per process).
        overwrite: delete the shards of a different earlier run in `output_dir` instead of failing.

    Returns a `datasets.Dataset` with one row per (unit, rank): kind, layer, unit, rank (1 = most
    active), activation, text_index (row of `dataset`), position (token index in the text's
    encoding, specials included), token, and context (the window, the hit marked ⟦…⟧), ordered by
    kind, layer, unit and rank.
    """
    from accelerate import Accelerator

    k = check_int("k", k)
    window = check_int("window", window, minimum=0)
    batch_size = check_batch_size(batch_size) or 32
    adapter = as_adapter(model, tokenizer)
    groups = unit_groups(adapter, units, layers)
    dataset = _as_dataset(dataset)
    if len(dataset) == 0:
        raise InvalidInputError("The dataset has no rows; there is nothing to analyse.")
    column = find_text_column(dataset, text_column)
    texts = [check_text(i, t) for i, t in enumerate(dataset[column])]
    accelerator = Accelerator(cpu=not _has_accelerator() if cpu is None else cpu)
    adapter.model.to(accelerator.device)
    plan = plan_shards([len(t) for t in texts], check_int("shard_size", shard_size))
    settings = {"groups": groups, "k": k, "include_special": include_special, "per_text": per_text,
                "batch_size": batch_size, "truncation": truncation}
    if output_dir is None:
        if accelerator.num_processes > 1:
            raise InvalidInputError("Several processes need an output_dir to share their shards through.")
        indices = _progress(range(len(plan)), plan, progress)
        merged = _merge((_shard_table(adapter, texts, plan[i], **settings) for i in indices), groups, k)  # lazily
    else:
        manifest = {
            "analysis": RESULT_NAME,
            "model_name": adapter.model_name,
            "model_revision": adapter.model_revision,
            "units": [[g.kind, g.layer, g.size] for g in groups],
            "k": k,
            "include_special": include_special,
            "per_text": per_text,
            "text_column": column,
            "num_rows": len(texts),
            "data_sha256": _digest(texts),
            "shard_size": shard_size,
            "batch_size": batch_size,
            "truncation": truncation,
            "max_length": adapter.max_length,
            "truncation_side": adapter.truncation_side,
        }
        merged = _sharded(Path(output_dir), manifest, plan, texts, adapter, settings, accelerator, overwrite, progress)
    result = _with_contexts(merged, groups, adapter, texts, truncation, window)
    if output_dir is not None and accelerator.is_main_process:
        result.to_parquet(str(Path(output_dir) / f"{RESULT_NAME}.parquet"))
        Path(output_dir, f"{RESULT_NAME}.json").write_text(
            json.dumps(result.to_list(), ensure_ascii=False, indent=1), encoding="utf-8"
        )
    return result


def _sharded(root, manifest, plan, texts, adapter, settings, accelerator, overwrite, progress) -> dict[str, TopK]:
    """The missing shards of `plan`, round robin over the processes, then the merge of all shards."""
    started = time.perf_counter()
    store, lock, done = _claim(root, manifest, plan, None, accelerator, overwrite)
    try:
        mine = [i for i in range(len(plan)) if i not in done][accelerator.process_index :: accelerator.num_processes]
        for index in _progress(mine, plan, progress and accelerator.is_main_process):
            store.write(index, len(plan), _shard_table(adapter, texts, plan[index], **settings))
        accelerator.wait_for_everyone()
        seal(store, manifest, plan, accelerator)
        paths = [path for (_, total), path in store.shards().items() if total == len(plan)]
        merged = _merge((pq.read_table(p) for p in paths), settings["groups"], settings["k"])
        logger.info(
            "top_activations: %d shards (%d reused) in %.1f s", len(plan), len(done), time.perf_counter() - started
        )
        return merged
    finally:
        if lock is not None:
            lock.release()


def _progress(indices: Sequence[int], plan: list[list[int]], enabled: bool):
    """The shard indices, with a bar counting their texts."""
    with progress_bar(sum(len(plan[i]) for i in indices), "top_activations", enabled=enabled) as bar:
        for index in indices:
            yield index
            bar.update(len(plan[index]))


def _digest(texts: Sequence[str]) -> str:
    h = hashlib.sha256()
    for text in texts:
        h.update(text.encode("utf-8"))
        h.update(b"\x00")
    return h.hexdigest()


def _shard_table(
    adapter: ModelAdapter, texts: Sequence[str], rows: Sequence[int], *, groups: Sequence[UnitGroup], k: int,
    include_special: bool, per_text: bool, batch_size: int, truncation: bool,
) -> pa.Table:
    """The top-k of every unit over the texts `rows`, as a `SHARD_SCHEMA` table."""
    encodings = adapter.encode([texts[i] for i in rows], truncation=truncation)
    order = sorted(range(len(rows)), key=lambda j: (-len(encodings[j]), j))
    best = {g.name: TopK.empty(g.size, k) for g in groups}
    with adapter.evaluating(), capture(adapter, groups) as captured:
        for start in range(0, len(order), batch_size):
            chosen = order[start : start + batch_size]
            batch = adapter.collate([encodings[j] for j in chosen])
            run(adapter, batch)
            valid = ~batch.special_mask if not include_special else batch.attention_mask.bool()
            row, column = torch.nonzero(valid.cpu(), as_tuple=True)
            text_ids = torch.tensor([rows[j] for j in chosen])[row]
            positions = column - torch.tensor(batch.starts)[row]
            for g in groups:
                values = captured.pop(g.name).cpu()[row, column].T  # (units, tokens)
                candidates = _best_per_text(values, text_ids, positions) if per_text else (values, text_ids, positions)
                best[g.name] = best[g.name].merge(*candidates)
    columns = [best[g.name].to_rows(g.name) for g in groups]
    return pa.Table.from_pydict(
        {f: [v for c in columns for v in c[f]] for f in SHARD_SCHEMA.names}, schema=SHARD_SCHEMA
    )


def _best_per_text(
    values: torch.Tensor, text_ids: torch.Tensor, positions: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Each unit's largest activation in each text, at its first position on ties: (U, texts) values,
    (texts,) text ids, (U, texts) positions. A text's tokens are contiguous and in position order."""
    kept_values, kept_positions = [], []
    ids = torch.unique_consecutive(text_ids)
    for text in ids:
        columns = torch.nonzero(text_ids == text).flatten()
        first = values[:, columns].argmax(1)  # torch.argmax returns the first maximum
        kept_values.append(values[:, columns].gather(1, first[:, None]))
        kept_positions.append(positions[columns][first][:, None])
    return torch.cat(kept_values, 1), ids, torch.cat(kept_positions, 1)


def _merge(tables, groups: Sequence[UnitGroup], k: int) -> dict[str, TopK]:
    """Fold shard tables (an iterable: one is read at a time) into the global top-k of each group."""
    best = {g.name: TopK.empty(g.size, k) for g in groups}
    for table in tables:
        for g in groups:
            part = TopK.from_rows(table.filter(pc.equal(table["group"], g.name)), g.size, k)
            best[g.name] = best[g.name].merge(part.values, part.texts, part.positions)
    return best


def _with_contexts(
    best: dict[str, TopK], groups: Sequence[UnitGroup], adapter: ModelAdapter, texts: Sequence[str],
    truncation: bool, window: int,
) -> datasets.Dataset:
    """The result rows, with the token and a context window rendered from the texts that occur."""
    needed = sorted({int(i) for g in groups for i in best[g.name].texts.flatten().tolist() if i >= 0})
    encoded = dict(zip(needed, adapter.encode([texts[i] for i in needed], truncation=truncation))) if needed else {}
    columns: dict[str, list] = {name: [] for name in FEATURES}
    for g in groups:
        rows = best[g.name].to_rows(g.name)
        for unit, rank, value, text, position in zip(
            rows["unit"], rows["rank"], rows["activation"], rows["text_index"], rows["position"]
        ):
            enc = encoded[text]
            for name, item in (("kind", g.kind), ("layer", g.layer), ("unit", unit), ("rank", rank + 1),
                               ("activation", value), ("text_index", text), ("position", position),
                               ("token", enc.tokens[position]), ("context", context(enc, position, window))):
                columns[name].append(item)
    return datasets.Dataset.from_dict(columns, features=FEATURES)


def context(encoding: Encoding, position: int, window: int) -> str:
    """The tokens `position` ± `window` of an encoding as they read in the text, the hit marked ⟦…⟧."""
    shown = display_tokens(encoding)
    start, end = max(0, position - window), min(len(shown), position + window + 1)
    pieces = []
    for i in range(start, end):
        text, gap = shown[i]
        text = f"{HIT_OPEN}{text}{HIT_CLOSE}" if i == position else text
        pieces.append((" " if gap and i > start else "") + text)
    return ("… " if start > 0 else "") + "".join(pieces) + (" …" if end < len(shown) else "")
