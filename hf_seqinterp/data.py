"""Loading the texts to explain: one helper for every command that reads a dataset.

`load_text_dataset(source, split=...)` accepts a local CSV / TSV / JSON / JSON Lines / Parquet file, a
folder written by `Dataset.save_to_disk` / `DatasetDict.save_to_disk`, or a Hub dataset id (network
only). `text_column(dataset, name)` picks and checks the column holding the texts.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import InvalidInputError, SeqInterpError

#: file suffix -> (datasets builder, builder options). Text stays text: no NA parsing of "null", "None"...
FILE_BUILDERS: dict[str, tuple[str, dict[str, Any]]] = {
    ".csv": ("csv", {"na_filter": False}),
    ".tsv": ("csv", {"delimiter": "\t", "quoting": csv.QUOTE_NONE, "na_filter": False}),
    ".tab": ("csv", {"delimiter": "\t", "quoting": csv.QUOTE_NONE, "na_filter": False}),
    ".json": ("json", {}),
    ".jsonl": ("json", {}),
    ".parquet": ("parquet", {}),
}

#: column names tried, in order, when no text column is given
TEXT_COLUMNS: tuple[str, ...] = ("text", "sentence", "content", "review", "document")

if TYPE_CHECKING:  # `datasets` is imported by the functions that load data, not with the package
    import datasets


def load_text_dataset(source: str | Path, *, split: str | None = None, revision: str | None = None) -> datasets.Dataset:
    """A `datasets.Dataset` from a local file, a `save_to_disk` folder, or a Hub dataset id.

    Args:
        source: path to a .csv/.tsv/.tab/.json/.jsonl/.parquet file, a saved dataset folder, or a
            Hub id such as "stanfordnlp/sst2".
        split: which split of a DatasetDict (a saved DatasetDict folder or a Hub dataset); may be
            left out when there is only one. Local files are one split.
        revision: Hub revision (branch, tag or commit) of a Hub dataset.
    """
    import datasets

    path = Path(source).expanduser()
    if path.is_dir():
        loaded = datasets.load_from_disk(str(path)) if _is_saved_dataset(path) else None
        if loaded is None:
            raise InvalidInputError(
                f"{path} is a folder but not one written by Dataset.save_to_disk (no state.json or "
                f"dataset_dict.json); pass a data file ({', '.join(FILE_BUILDERS)}) or a saved dataset folder."
            )
        return _pick_split(loaded, split, str(path))
    if path.is_file():
        suffix = path.suffix.lower()
        if suffix not in FILE_BUILDERS:
            raise InvalidInputError(
                f"{path} has suffix {suffix!r}; supported data files: {', '.join(FILE_BUILDERS)} "
                "(or a folder written by save_to_disk, or a Hub dataset id)."
            )
        builder, options = FILE_BUILDERS[suffix]
        return datasets.load_dataset(builder, data_files=str(path), split="train", **options)
    check_local_source(source)
    if datasets.config.HF_HUB_OFFLINE:
        raise SeqInterpError(
            f"{source!r} is not a local file or folder, and the Hub is offline (HF_HUB_OFFLINE=1), so it "
            "cannot be loaded as a Hub dataset id. Pass a local file or folder, or allow network access."
        )
    return _pick_split(datasets.load_dataset(str(source), revision=revision), split, str(source))


def text_column(dataset: datasets.Dataset, name: str | None = None) -> str:
    """`name` if the dataset has it, else the first of `TEXT_COLUMNS` it has; a clear error otherwise."""
    columns = list(dataset.column_names)
    if name is not None:
        if name not in columns:
            raise InvalidInputError(f"The dataset has no column {name!r}; its columns are {columns}.")
        return name
    for candidate in TEXT_COLUMNS:
        if candidate in columns:
            return candidate
    raise InvalidInputError(f"Say which column holds the texts (text_column=...); the dataset's columns are {columns}.")


def _is_saved_dataset(path: Path) -> bool:
    return (path / "state.json").exists() or (path / "dataset_dict.json").exists()


def check_local_source(source: str | Path) -> None:
    """Raise FileNotFoundError when `source` names a local file or folder that does not exist."""
    if looks_like_path(str(source)) and not Path(source).expanduser().exists():
        raise FileNotFoundError(f"No such data file or folder: {source}")


def looks_like_path(source: str) -> bool:
    """True when `source` names a local file or folder rather than a Hub dataset id."""
    return source.startswith((".", "/", "~")) or Path(source).suffix.lower() in FILE_BUILDERS or source.count("/") > 1


def _pick_split(loaded: datasets.Dataset | datasets.DatasetDict, split: str | None, name: str) -> datasets.Dataset:
    import datasets

    if isinstance(loaded, datasets.Dataset):
        if split is not None and loaded.split is not None and str(loaded.split) != split:
            raise InvalidInputError(f"{name} holds only the {loaded.split!s} split, not {split!r}.")
        return loaded
    splits = list(loaded)
    if split is None:
        if len(splits) == 1:
            return loaded[splits[0]]
        raise InvalidInputError(f"{name} has splits {splits}; choose one with split=... (--split).")
    if split not in loaded:
        raise InvalidInputError(f"{name} has no split {split!r}; its splits are {splits}.")
    return loaded[split]
