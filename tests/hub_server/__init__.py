"""Loopback Hugging Face Hub for tests.

* :class:`HubServer` - in-process, Hub-compatible HTTP server storing every repo
  as a real git repository (uploads, LFS, downloads, strict errors, fault
  injection, request log).
* :class:`OlahServer` - the independent `olah` mirror, serving the same git
  repositories read-only (offline mode), started as a subprocess.
* :func:`use_hub_endpoint` - point ``huggingface_hub`` / ``datasets`` at an
  endpoint for the duration of a test (they read ``HF_ENDPOINT`` at import).
* pytest fixtures in :mod:`.fixtures` (``hub_server``, ``hub``, ``olah_server``, ``olah``).

See README.md in this directory.
"""

from .env import use_hub_endpoint
from .olah_mirror import OlahServer, OlahStartError
from .server import (
    DEFAULT_ORG,
    DEFAULT_TOKEN,
    DEFAULT_USER,
    OTHER_TOKEN,
    OTHER_USER,
    FailureRule,
    HubServer,
    HubUser,
    RequestRecord,
)

__all__ = [
    "DEFAULT_ORG",
    "DEFAULT_TOKEN",
    "DEFAULT_USER",
    "OTHER_TOKEN",
    "OTHER_USER",
    "FailureRule",
    "HubServer",
    "HubUser",
    "OlahServer",
    "OlahStartError",
    "RequestRecord",
    "use_hub_endpoint",
]
