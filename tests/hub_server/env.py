"""Point ``huggingface_hub`` and ``datasets`` at a local Hub endpoint, in-process.

Both libraries read ``HF_ENDPOINT`` (and the offline flags, the cache
locations...) from the environment *once, at import time*, into module
constants.  Setting the environment variables inside a test is therefore not
enough when the libraries are already imported (they always are in a pytest
session).  :func:`use_hub_endpoint` sets the variables (for subprocesses and
for code that reads them lazily) **and** patches every constant/object that
captured them:

huggingface_hub
    ``constants.ENDPOINT``, ``constants.HUGGINGFACE_CO_URL_TEMPLATE``,
    ``constants.HF_URL_HOSTS``, ``constants.HF_HUB_OFFLINE``,
    ``constants.HF_HUB_DISABLE_TELEMETRY``, ``constants.HF_HUB_DISABLE_XET``
    (uploads go through the LFS protocol the test server implements, even when
    ``hf_xet`` is installed), ``constants.HF_HUB_CACHE`` (+ the
    legacy ``HUGGINGFACE_HUB_CACHE``), ``constants.HF_TOKEN_PATH`` /
    ``HF_STORED_TOKENS_PATH`` (so a developer's saved token is never used),
    ``utils._http._HUB_ORIGINS`` (origins trusted when following redirects) and
    the module-level ``hf_api.api`` instance whose ``endpoint`` was fixed at
    import (``huggingface_hub.create_repo`` & co. are bound methods of it).
    ``HfApi()`` / ``HfFileSystem()`` created afterwards read
    ``constants.ENDPOINT`` and need nothing else; cached ``HfFileSystem``
    instances are dropped.
datasets
    ``config.HF_ENDPOINT``, ``config.HUB_DATASETS_URL``,
    ``config.HF_HUB_OFFLINE`` / ``HF_DATASETS_OFFLINE``, the datasets cache
    paths, and ``config.USE_PARQUET_EXPORT = False`` (otherwise
    ``load_dataset`` asks ``datasets-server.<endpoint host>`` - a host that does
    not exist - for the Hub's parquet export).

Everything is undone by the ``monkeypatch`` fixture at the end of the test.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlsplit

import pytest


def use_hub_endpoint(
    monkeypatch: pytest.MonkeyPatch,
    endpoint: str,
    *,
    token: str | None,
    cache_dir: str | os.PathLike | None = None,
) -> None:
    """Make ``huggingface_hub`` and ``datasets`` talk to ``endpoint`` for the current test.

    Args:
        monkeypatch: pytest's monkeypatch fixture (restores everything afterwards).
        endpoint: base URL, e.g. ``http://127.0.0.1:51234``.
        token: value for ``HF_TOKEN`` (``None`` removes it: anonymous requests).
        cache_dir: if given, the Hugging Face home for this test: the hub cache
            goes to ``<cache_dir>/hub`` and the datasets cache to
            ``<cache_dir>/datasets`` (recommended: tests stay independent).
    """
    import datasets
    import huggingface_hub
    from huggingface_hub import HfFileSystem, constants
    from huggingface_hub.utils import _http

    endpoint = endpoint.rstrip("/")

    # --- environment (subprocesses, lazily-read variables) ------------------------
    monkeypatch.setenv("HF_ENDPOINT", endpoint)
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "0")
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    monkeypatch.setenv("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    monkeypatch.setenv("HF_HUB_DISABLE_XET", "1")
    if token is None:
        monkeypatch.delenv("HF_TOKEN", raising=False)
        monkeypatch.delenv("HUGGING_FACE_HUB_TOKEN", raising=False)
    else:
        monkeypatch.setenv("HF_TOKEN", token)

    # --- huggingface_hub -------------------------------------------------------------
    monkeypatch.setattr(constants, "ENDPOINT", endpoint)
    monkeypatch.setattr(
        constants, "HUGGINGFACE_CO_URL_TEMPLATE", endpoint + "/{repo_id}/resolve/{revision}/{filename}"
    )
    host = urlsplit(endpoint).hostname
    monkeypatch.setattr(constants, "HF_URL_HOSTS", frozenset(constants.HF_URL_HOSTS | {host}))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_TELEMETRY", True)
    # Uploads must use the LFS protocol implemented by the test server, even if hf_xet is installed.
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_XET", True)
    monkeypatch.setattr(_http, "_HUB_ORIGINS", frozenset(_http._HUB_ORIGINS | {_http._url_origin(endpoint)}))
    monkeypatch.setattr(huggingface_hub.hf_api.api, "endpoint", endpoint)

    if cache_dir is not None:
        home = Path(cache_dir)
        hub_cache = str(home / "hub")
        monkeypatch.setenv("HF_HOME", str(home))
        monkeypatch.setenv("HF_HUB_CACHE", hub_cache)
        monkeypatch.setattr(constants, "HF_HOME", str(home))
        monkeypatch.setattr(constants, "HF_HUB_CACHE", hub_cache)
        monkeypatch.setattr(constants, "HUGGINGFACE_HUB_CACHE", hub_cache)
        monkeypatch.setattr(constants, "HF_ASSETS_CACHE", str(home / "assets"))
        monkeypatch.setattr(constants, "HF_XET_CACHE", str(home / "xet"))
        # Never pick up a token saved on the developer's machine.
        monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(home / "token"))
        monkeypatch.setattr(constants, "HF_STORED_TOKENS_PATH", str(home / "stored_tokens"))

    # --- datasets ----------------------------------------------------------------------
    cfg = datasets.config
    monkeypatch.setattr(cfg, "HF_ENDPOINT", endpoint)
    monkeypatch.setattr(cfg, "HUB_DATASETS_URL", endpoint + "/datasets/{repo_id}/resolve/{revision}/{path}")
    monkeypatch.setattr(cfg, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(cfg, "HF_DATASETS_OFFLINE", False)
    monkeypatch.setattr(cfg, "USE_PARQUET_EXPORT", False)
    if cache_dir is not None:
        ds_cache = Path(cache_dir) / "datasets"
        monkeypatch.setenv("HF_DATASETS_CACHE", str(ds_cache))
        monkeypatch.setattr(cfg, "HF_DATASETS_CACHE", ds_cache)
        monkeypatch.setattr(cfg, "DOWNLOADED_DATASETS_PATH", ds_cache / cfg.DOWNLOADED_DATASETS_DIR)
        monkeypatch.setattr(
            cfg,
            "EXTRACTED_DATASETS_PATH",
            ds_cache / cfg.DOWNLOADED_DATASETS_DIR / cfg.EXTRACTED_DATASETS_DIR,
        )

    # Cached filesystem instances remember their endpoint, token and directory listings.
    HfFileSystem.clear_instance_cache()
