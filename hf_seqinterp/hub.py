"""Publishing explanation datasets to the Hugging Face Hub, and loading them back.

`push_explanations_to_hub(dataset, repo_id)` creates the dataset repo and uploads, in ONE commit,
one config per method (or per model) as Parquet files under `data/<config>/` together with the
dataset card (`card.py`). A single commit means a reader never sees data without its card or a card
describing data that is not there, whatever fails. Earlier files under `data/` are deleted in the
same commit, so the repo always holds exactly one explanation dataset.

Every Hub call is retried with exponential backoff on 5xx, 408, 429 and timeouts; 401, 403 and 404
raise `HubError` at once with what to do about them. Offline mode (`HF_HUB_OFFLINE=1`) and a Hub that
cannot be reached at all (DNS failure, connection refused) fail at once too, in one line that names
`HF_HUB_OFFLINE` and how to pass a local folder instead. Before a download, one metadata request
checks the repository, so its HTTP status (not `datasets`' "Couldn't find any data file") is what
the error reports.

What is published is data, never markup or local paths: every row's `model_name` is the Hub id or
the model folder's name (`public_model_name`), and the card renders texts, labels, names and
parameters escaped or in code (`card.py`).

`load_explanations(repo_id)` (or a local `explain_dataset` output folder) gives the Explanations back.
"""

from __future__ import annotations

import math
import os
import re
import socket
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, Literal, TypeVar

import datasets
from huggingface_hub import DatasetCard

from .card import card_metadata, render_card
from .dataset import EXPLANATION_FEATURES, dataset_to_explanations, explanations_to_dataset, in_source_order
from .errors import HubError, InvalidInputError, InvalidParameterError
from .explanation import Explanation, public_model_name
from .shards import ShardStore
from .utils import quiet_datasets
from .validation import check_float, check_int

T = TypeVar("T")

RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
#: upper bound on one Parquet file; bigger configs are split into several files
MAX_FILE_BYTES = 500 * 2**20


def push_explanations_to_hub(
    dataset: datasets.Dataset | Iterable[Explanation] | str | Path,
    repo_id: str,
    *,
    config_by: Literal["method", "model"] = "method",
    split: str = "train",
    private: bool | None = None,
    token: str | None = None,
    license: str | None = None,
    source_dataset: str | None = None,
    model_id: str | None = None,
    metrics: Mapping[str, Mapping[str, float]] | None = None,
    pretty_name: str | None = None,
    commit_message: str = "Upload explanations with hf_seqinterp",
    max_retries: int = 5,
    retry_wait: float = 1.0,
) -> str:
    """Upload an explanation dataset with its card; returns the URL of the commit.

    Args:
        dataset: an explanation dataset (from `explain_dataset` or `explain_series_dataset`),
            Explanations or SeriesExplanations, or an output folder of either.
        repo_id: "namespace/name" of the dataset repo (created if missing).
        config_by: one config per "method" or per "model" (model name, made config-safe).
        split: split name of the data in every config.
        private, token: repo visibility and Hub token (default: the logged-in token / HF_TOKEN).
        license, source_dataset, pretty_name: card metadata (source_dataset: e.g. "stanfordnlp/sst2").
        model_id: the model's Hub id for the card when the rows record a local path.
        metrics: {method: {metric: value}} faithfulness results to publish in the card.
        max_retries, retry_wait: retries of each Hub call on transient errors; the n-th waits
            retry_wait * 2**n seconds (capped at 60).
    """
    from huggingface_hub import CommitOperationAdd, CommitOperationDelete, HfApi

    _require_online(repo_id, "push explanations to")
    table = _as_explanation_dataset(dataset)
    plan = _file_plan(table, config_by, split)
    card = _card(table, plan, repo_id, split=split, config_by=config_by, license=license,
                 source_dataset=source_dataset, model_id=model_id, metrics=metrics, pretty_name=pretty_name)
    api = HfApi(token=token)
    retry = _Retrying(repo_id, max_retries, retry_wait)
    with tempfile.TemporaryDirectory(prefix="hfsi-push-") as tmp, quiet_datasets():
        operations = []
        for path_in_repo, part in (item for files in plan.values() for item in files):
            local = Path(tmp) / path_in_repo
            local.parent.mkdir(parents=True, exist_ok=True)
            part.to_parquet(str(local))
            operations.append(CommitOperationAdd(path_in_repo, str(local)))
        operations.append(CommitOperationAdd("README.md", str(card).encode("utf-8")))

        retry("create the repository", lambda: api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True))
        existing = retry("list the repository", lambda: api.list_repo_files(repo_id, repo_type="dataset"))
        if any(f.startswith("data/") for f in existing):
            operations.insert(0, CommitOperationDelete("data/", is_folder=True))
        info = retry(
            "upload the data and card",
            lambda: api.create_commit(repo_id, operations, commit_message=commit_message, repo_type="dataset"),
        )
    return info.commit_url


def dataset_card(
    dataset: datasets.Dataset | Iterable[Explanation] | str | Path,
    repo_id: str,
    *,
    config_by: Literal["method", "model"] = "method",
    split: str = "train",
    **metadata: Any,
) -> DatasetCard:
    """The card `push_explanations_to_hub` would write for this dataset (to preview or edit it).

    `metadata`: license, source_dataset, model_id, metrics, pretty_name as in the push.
    """
    table = _as_explanation_dataset(dataset)
    return _card(table, _file_plan(table, config_by, split), repo_id, split=split, config_by=config_by, **metadata)


def load_explanation_dataset(
    source: str | Path,
    config: str | None = None,
    *,
    split: str = "train",
    revision: str | None = None,
    token: str | None = None,
    max_retries: int = 5,
    retry_wait: float = 1.0,
) -> datasets.Dataset:
    """An explanation dataset from a Hub repo (one config, or all of them in source-row order) or a
    local folder (`explain_dataset` output, or `save_to_disk`)."""
    path = Path(source).expanduser()
    if path.is_dir():
        store = _store(path)
        return store.merge() if store.shards() else datasets.load_from_disk(str(path))
    if public_model_name(str(source)) != str(source) or path.suffix in (".parquet", ".json", ".arrow"):
        raise InvalidInputError(
            f"{source} is not a folder: pass an explain_dataset output_dir, a save_to_disk folder or a Hub id."
        )
    _require_online(str(source), "download")
    retry = _Retrying(str(source), max_retries, retry_wait)
    revision = revision or "main"
    from huggingface_hub import HfApi

    retry("find the dataset", lambda: HfApi(token=token).dataset_info(str(source), revision=revision))
    names = [config] if config else retry(
        "list the configs", lambda: datasets.get_dataset_config_names(str(source), revision=revision, token=token)
    )
    with quiet_datasets():
        parts = [
            retry(
                f"load config {name!r}",
                lambda name=name: datasets.load_dataset(str(source), name, split=split, revision=revision, token=token),
            )
            for name in names
        ]
    if len(parts) == 1:
        return parts[0]
    return in_source_order(datasets.concatenate_datasets(parts))  # configs one after another -> source order


def load_explanations(source: str | Path, config: str | None = None, **kwargs: Any) -> list[Any]:
    """The Explanations (SeriesExplanations for series) of a published or local explanation dataset;
    see `load_explanation_dataset`."""
    dataset = load_explanation_dataset(source, config, **kwargs)
    if _is_series(dataset):
        from .timeseries.explanation import dataset_to_series_explanations

        return dataset_to_series_explanations(dataset)
    return dataset_to_explanations(dataset)


# --------------------------------------------------------------------------- helpers
def _require_online(repo_id: str, what: str) -> None:
    """Fail at once, in one line, in offline mode."""
    from huggingface_hub import constants

    flag = os.environ.get("HF_HUB_OFFLINE", "").upper() in ("1", "ON", "YES", "TRUE")
    if constants.HF_HUB_OFFLINE or flag:
        raise HubError(
            f"Cannot {what} {repo_id!r}: HF_HUB_OFFLINE is set, so the Hub is not contacted. Unset HF_HUB_OFFLINE "
            "for network access, or pass a local folder instead (an explain_dataset output_dir or a save_to_disk folder)."
        )


def _is_series(dataset: datasets.Dataset) -> bool:
    """Rows of series explanations (`SERIES_FEATURES`) rather than text explanations."""
    return "channel_names" in dataset.column_names


def _store(folder: str | Path) -> ShardStore:
    """The shard store of an output folder, with the schema its manifest's run wrote."""
    store = ShardStore(folder)
    if (store.read_manifest() or {}).get("kind") == "series":
        from .timeseries.explanation import SERIES_FEATURES

        store.features = SERIES_FEATURES
    return store


def _as_explanation_dataset(dataset: datasets.Dataset | Iterable[Any] | str | Path) -> datasets.Dataset:
    """The rows to publish (text or series explanations), checked, with public model names."""
    if isinstance(dataset, (str, Path)):
        dataset = _store(dataset).merge()
    if not isinstance(dataset, datasets.Dataset):
        items = list(dataset)
        if items and not isinstance(items[0], Explanation):
            from .timeseries.explanation import series_explanations_to_dataset

            dataset = series_explanations_to_dataset(items)
        else:
            dataset = explanations_to_dataset(items)
    features = EXPLANATION_FEATURES
    if _is_series(dataset):
        from .timeseries.explanation import SERIES_FEATURES as features
    missing = sorted(set(features) - set(dataset.column_names))
    if missing:
        raise InvalidInputError(f"Not an explanation dataset: the columns {missing} are missing.")
    if len(dataset) == 0:
        raise InvalidInputError("The explanation dataset is empty; there is nothing to publish.")
    names = dataset["model_name"]
    public = [public_model_name(name) for name in names]
    if public != names:  # rows written by earlier versions record local paths
        dataset = dataset.remove_columns("model_name").add_column("model_name", public)
    dataset = dataset.select_columns(list(features))
    return dataset if dataset.features == features else dataset.cast(features)


def _file_plan(dataset: datasets.Dataset, config_by: str, split: str) -> dict[str, list[tuple[str, datasets.Dataset]]]:
    """config -> [(path in the repo, rows)]: one config per method or model, files of <= MAX_FILE_BYTES."""
    if config_by not in ("method", "model"):
        raise InvalidParameterError(f"config_by={config_by!r}; use 'method' or 'model'.")
    if not re.fullmatch(r"\w+(\.\w+)*", split):
        raise InvalidParameterError(f"split={split!r}: a split name is letters, digits and underscores (e.g. 'train').")
    plan = {}
    bytes_per_row = dataset.data.nbytes / max(1, dataset.data.num_rows)  # .data ignores any indices mapping
    for config, indices in _config_groups(dataset, "method" if config_by == "method" else "model_name").items():
        part = dataset.select(indices)
        n = max(1, math.ceil(bytes_per_row * len(part) / MAX_FILE_BYTES))
        plan[config] = [
            (f"data/{config}/{split}-{i:05d}-of-{n:05d}.parquet", part.shard(n, i, contiguous=True)) for i in range(n)
        ]
    return plan


def _card(dataset, plan, repo_id, *, split, config_by, **metadata) -> DatasetCard:
    files = {config: [path for path, _ in items] for config, items in plan.items()}
    if _is_series(dataset):
        from .timeseries.card import series_card

        return series_card(dataset, files, repo_id, split=split, config_by=config_by, **metadata)
    data = card_metadata(dataset, files, split=split, config_by=config_by, **metadata)
    return render_card(dataset, data, repo_id, split=split)


def config_name(value: str | None) -> str:
    """A config name the Hub accepts, from a method or model name ('../models/x' -> 'models-x')."""
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", value or "unknown").strip("-.") or "unknown"
    return name[-64:]


def _config_groups(dataset: datasets.Dataset, column: str) -> dict[str, list[int]]:
    groups: dict[str, list[int]] = {}
    owners: dict[str, str | None] = {}
    for i, value in enumerate(dataset[column]):
        name = config_name(value)
        if owners.setdefault(name, value) != value:
            raise InvalidInputError(f"{owners[name]!r} and {value!r} map to the same config name {name!r}.")
        groups.setdefault(name, []).append(i)
    return groups


def _transport_errors() -> tuple[type[BaseException], ...]:
    """Network errors and timeouts of the HTTP client huggingface_hub uses (httpx2 or httpx)."""
    try:
        import httpx2 as http
    except ImportError:  # pragma: no cover - older huggingface_hub
        import httpx as http
    return (http.TimeoutException, http.NetworkError, http.RemoteProtocolError, TimeoutError, ConnectionError)


def _unreachable_errors() -> tuple[type[BaseException], ...]:
    """Errors that mean the Hub cannot be reached at all (DNS failure, connection refused): retrying
    them only delays the answer."""
    try:
        import httpx2 as http
    except ImportError:  # pragma: no cover - older huggingface_hub
        import httpx as http
    from huggingface_hub.errors import OfflineModeIsEnabled

    return (http.ConnectError, OfflineModeIsEnabled, ConnectionRefusedError, socket.gaierror)


class _Retrying:
    """Call a Hub operation, retrying transient failures with exponential backoff."""

    def __init__(self, repo_id: str, max_retries: int, wait: float, sleep: Callable[[float], None] = time.sleep):
        self.repo_id, self.sleep = repo_id, sleep
        self.max_retries = check_int("max_retries", max_retries, minimum=0, maximum=100)
        self.wait = check_float("retry_wait", wait, minimum=0.0, maximum=3600.0)

    def __call__(self, what: str, fn: Callable[[], T]) -> T:
        from huggingface_hub.errors import HfHubHTTPError

        for attempt in range(self.max_retries + 1):
            try:
                return fn()
            except HfHubHTTPError as err:
                status = err.response.status_code if err.response is not None else None
                if status in (401, 403, 404):
                    raise HubError(self._explain(status, what, err)) from err
                if status not in RETRY_STATUSES or attempt == self.max_retries:
                    raise HubError(f"Could not {what} for {self.repo_id!r} (HTTP {status}, attempt {attempt + 1}): {err}") from err
            except datasets.exceptions.DatasetNotFoundError as err:
                raise HubError(self._explain(404, what, err)) from err
            except FileNotFoundError as err:  # datasets' "Couldn't find any data file" after a failed request
                raise HubError(f"Could not {what} for {self.repo_id!r}: {err}") from err
            except _unreachable_errors() as err:
                raise HubError(
                    f"Could not {what} for {self.repo_id!r}: the Hub cannot be reached ({type(err).__name__}: "
                    f"{str(err).splitlines()[0] if str(err) else 'no detail'}). Check the network, set HF_HUB_OFFLINE=1 "
                    "to work offline, or pass a local folder instead (an explain_dataset output_dir or a save_to_disk folder)."
                ) from err
            except _transport_errors() as err:
                if attempt == self.max_retries:
                    raise HubError(f"Could not {what} for {self.repo_id!r} after {attempt + 1} attempts: {err!r}") from err
            self.sleep(min(60.0, self.wait * 2**attempt))
        raise AssertionError("unreachable")  # pragma: no cover

    def _explain(self, status: int, what: str, err: Exception) -> str:
        detail = getattr(err, "server_message", None) or str(err).splitlines()[0]
        namespace = self.repo_id.split("/")[0]
        advice = {
            401: "not authenticated: the token is missing, invalid or expired. Pass token=..., set HF_TOKEN, "
            "or log in with `hf auth login`.",
            403: (
                f"forbidden: this token may not read {self.repo_id!r}. Use a token of a user or organisation "
                "with access to it (pass token=... or set HF_TOKEN)."
                if what.startswith(("find", "list the configs", "load"))
                else f"forbidden: this token may not write to {namespace!r}. Use a write token of that user or "
                "organisation, or push to your own namespace."
            ),
            404: f"not found: {self.repo_id!r} (or the revision) does not exist or is not visible with this "
            "token. Check the id, and log in if the repository is private.",
        }[status]
        return f"Could not {what} for {self.repo_id!r}: HTTP {status}, {advice} (Hub said: {detail})"
