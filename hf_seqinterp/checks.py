"""Checks that name the fix: 'did you mean' hints, and where a model name points (a local folder or
a Hub id) before anything is loaded.

Pure Python (no torch, no transformers), so the command line runs them before its heavy imports.
"""

from __future__ import annotations

import difflib
import os
import re
import socket
from collections.abc import Iterable, Sequence
from pathlib import Path
from urllib.parse import urlparse

from .errors import ModelNotFoundError

# owner/name or name: letters, digits, '-', '_', '.'; neither part starts or ends with '-' or '.'
_HUB_ID = re.compile(r"^(?:[A-Za-z0-9](?:[\w.-]*[A-Za-z0-9])?/)?[A-Za-z0-9](?:[\w.-]*[A-Za-z0-9])?$")
_TRUE = {"1", "true", "yes", "on"}


def did_you_mean(value: object, choices: Iterable[str]) -> str:
    """' Did you mean 'x'?' for the closest choice to `value`, or '' when none is close."""
    if not isinstance(value, str):
        return ""
    options = list(choices)
    prefixed = [option for option in options if option.lower().startswith(value.lower())]
    if value and len(prefixed) == 1:  # 'shapley' -> 'shapley_sampling', not the closer-spelled 'saliency'
        return f" Did you mean {prefixed[0]!r}?"
    matches = difflib.get_close_matches(value, options, n=1, cutoff=0.6)
    if not matches:
        lowered = {option.lower(): option for option in options}
        matches = [
            lowered[m] for m in difflib.get_close_matches(value.lower(), list(lowered), n=1, cutoff=0.6)
        ]
    return f" Did you mean {matches[0]!r}?" if matches else ""


def unknown_method_message(name: object, available: Sequence[str]) -> str:
    return f"{name!r} is not a registered explanation method.{did_you_mean(name, available)} Available: {', '.join(available)}."


def unknown_parameters_message(method: str, unknown: Sequence[str], accepted: Sequence[str]) -> str:
    hints = "".join(did_you_mean(name, accepted) for name in unknown)
    return (
        f"{method} does not take parameter(s) {', '.join(map(repr, unknown))}.{hints} "
        f"Accepted: {', '.join(accepted)}."
    )


def is_hub_id(name: str) -> bool:
    """True if `name` has the form of a Hub repository id (`name` or `owner/name`)."""
    return len(name) <= 96 and "--" not in name and ".." not in name and bool(_HUB_ID.match(name))


def looks_local(name: str) -> bool:
    """True if `name` can only mean a local path: it starts with ./ ../ / or ~, or it has a path
    separator and either is no Hub id or its first component is an existing folder."""
    if name.startswith(("./", "../", "/", "~", ".\\", "..\\")) or name in (".", ".."):
        return True
    if os.sep not in name and "/" not in name:
        return False
    return not is_hub_id(name) or Path(re.split(r"[/\\]", name)[0]).is_dir()


def hub_offline() -> bool:
    """True when HF_HUB_OFFLINE (or transformers' older TRANSFORMERS_OFFLINE) is set."""
    return any(os.environ.get(key, "").strip().lower() in _TRUE for key in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))


def check_model_location(name: str) -> None:
    """Raise at once when `name` looks like a local path that does not exist (no Hub lookup)."""
    path = Path(name).expanduser()
    if looks_local(name) and not path.exists():
        parent = next((p for p in path.parents if p.is_dir()), None)
        hint = (
            f" ({parent} exists but has no {path.relative_to(parent)})"
            if parent not in (None, Path("."))
            else ""
        )
        raise ModelNotFoundError(
            f"no such folder: {name}{hint}. Pass the folder that holds the model's config.json."
        )
    if path.exists() and not path.is_dir():
        raise ModelNotFoundError(f"{name} is a file; pass the folder that holds the model's config.json.")


def check_model_source(name: str, revision: str | None = None) -> None:
    """`check_model_location`, then, for a Hub id, fail at once (no retries) when it cannot be fetched:
    offline (HF_HUB_OFFLINE) and not in the local cache, or the Hub's host name does not resolve."""
    check_model_location(name)
    if Path(name).expanduser().exists():
        return
    if hub_offline():
        from huggingface_hub import try_to_load_from_cache

        if not isinstance(try_to_load_from_cache(name, "config.json", revision=revision), str):
            raise ModelNotFoundError(
                hub_unreachable_message(name, "HF_HUB_OFFLINE is set and it is not in the local cache")
            )
    elif hub_host_unresolvable():
        raise ModelNotFoundError(hub_unreachable_message(name, "the Hub's host name does not resolve (no network?)"))


def hub_unreachable_message(name: str, reason: str, *, network: bool = True) -> str:
    """One line for a Hub id that cannot be fetched: why, and the ways out (`network`: offline or no
    network was the reason, so suggest going online too)."""
    online = ", or connect to the network and unset HF_HUB_OFFLINE" if network else ""
    return (
        f"could not load {name!r} from the Hugging Face Hub: {reason}. "
        f"There is no local folder named {name!r}; pass a local model folder (e.g. --model ./my-model){online}."
    )


def hub_host_unresolvable() -> bool:
    """True when the Hub's host name does not resolve (no network, no DNS) and no proxy is set: a
    download would only retry for tens of seconds before failing."""
    if any(os.environ.get(key) for key in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")):
        return False
    host = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co")).hostname
    if not host:
        return False
    try:
        socket.getaddrinfo(host, 443)
    except (socket.gaierror, UnicodeError):
        return True
    return False
