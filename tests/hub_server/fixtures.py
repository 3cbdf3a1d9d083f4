"""pytest fixtures for tests that push to / download from a loopback Hub.

Register them once for the whole test suite (recommended, one server per
session) by adding to ``tests/conftest.py``::

    pytest_plugins = ["hub_server.fixtures"]

(``tests/`` has no ``__init__.py``, so pytest puts it on ``sys.path`` and the
package is importable as ``hub_server``), or import them in a test module::

    from hub_server.fixtures import hub, hub_server, olah, olah_server  # noqa: F401

Fixtures:

``hub_server`` (session)
    The running :class:`~hub_server.server.HubServer` (repos under a session
    temp dir).
``hub`` (function)
    A :class:`HubTestEnv`: for the duration of the test ``huggingface_hub`` and
    ``datasets`` talk to ``hub_server`` with ``HF_TOKEN`` = the default user's
    token, ``HF_HUB_OFFLINE=0``, fresh caches under ``tmp_path``.  Injected
    failures and the request log are reset before the test; the test errors at
    teardown if the server crashed internally.
``olah_server`` (session)
    An :class:`~hub_server.olah_mirror.OlahServer` serving ``hub_server``'s repos
    (skips the test when olah is not installed).
``olah`` (function)
    ``olah_server`` after the ``hub`` environment is set up; use
    ``with hub.use(olah.endpoint): ...`` to download through it.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from .env import use_hub_endpoint
from .olah_mirror import OlahServer, OlahStartError
from .server import HubServer


@dataclass
class HubTestEnv:
    """What the ``hub`` fixture gives a test."""

    server: HubServer
    cache_root: Path
    _counter: itertools.count = field(default_factory=lambda: itertools.count(1), repr=False)

    @property
    def endpoint(self) -> str:
        return self.server.endpoint

    @property
    def token(self) -> str:
        """Write token of :attr:`user` (also exported as ``HF_TOKEN``)."""
        return self.server.token

    @property
    def user(self) -> str:
        return self.server.user

    @property
    def api(self):
        """An ``HfApi`` bound to the test server (explicit endpoint and token)."""
        from huggingface_hub import HfApi

        return HfApi(endpoint=self.endpoint, token=self.token)

    def new_repo_id(self, prefix: str = "repo", namespace: str | None = None) -> str:
        """A fresh, unique ``namespace/prefix-xxxxxxxx`` id (the repo is not created)."""
        return f"{namespace or self.user}/{prefix}-{uuid.uuid4().hex[:8]}"

    @contextmanager
    def use(self, endpoint: str, *, token: str | None | bool = True) -> Iterator[Path]:
        """Temporarily point the clients at another endpoint (e.g. ``olah.endpoint``).

        A fresh, empty cache directory is used inside the block, so everything is
        really downloaded from ``endpoint``; it is yielded. ``token=True`` keeps
        the test token, ``None`` makes requests anonymous, a string uses it.
        """
        cache = self.cache_root / f"use-{next(self._counter)}"
        patcher = pytest.MonkeyPatch()
        try:
            use_hub_endpoint(patcher, endpoint, token=self.token if token is True else token, cache_dir=cache)
            yield cache
        finally:
            patcher.undo()
            _clear_hffs_cache()


def _clear_hffs_cache() -> None:
    from huggingface_hub import HfFileSystem

    HfFileSystem.clear_instance_cache()


@pytest.fixture(scope="session")
def hub_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubServer]:
    """A Hub-compatible server on 127.0.0.1 for the whole test session."""
    server = HubServer(root=tmp_path_factory.mktemp("hub-repos")).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def hub(hub_server: HubServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[HubTestEnv]:
    """Route ``huggingface_hub`` and ``datasets`` to ``hub_server`` for one test."""
    hub_server.reset()
    cache_root = tmp_path / "hf-home"
    use_hub_endpoint(monkeypatch, hub_server.endpoint, token=hub_server.token, cache_dir=cache_root)
    yield HubTestEnv(server=hub_server, cache_root=cache_root)
    hub_server.clear_failures()
    _clear_hffs_cache()
    if hub_server.errors:
        errors = "\n\n".join(hub_server.errors)
        hub_server.errors.clear()
        pytest.fail(f"The test Hub server raised unexpected exceptions:\n{errors}", pytrace=False)


@pytest.fixture(scope="session")
def olah_server(hub_server: HubServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[OlahServer]:
    """olah (offline mode) serving ``hub_server``'s git repositories, for the whole session."""
    if not OlahServer.available():
        pytest.skip("olah is not installed (pip install olah): cannot test downloads through the olah mirror")
    server = OlahServer(hub_server.root, workdir=tmp_path_factory.mktemp("olah"))
    try:
        server.start()
    except OlahStartError as err:
        pytest.fail(f"olah is installed but could not be started: {err}", pytrace=False)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def olah(hub: HubTestEnv, olah_server: OlahServer) -> OlahServer:
    """The session's olah mirror (use ``with hub.use(olah.endpoint): ...``)."""
    return olah_server
