"""A small, strict, Hugging Face Hub compatible HTTP server for tests.

The server implements the subset of the Hub HTTP API that ``huggingface_hub``
(2.x) and ``datasets`` use to create repositories, upload files (regular,
non-LFS uploads), inspect repositories and download files.  Repositories are
real bare git repositories (see :mod:`.gitstore`).

It runs in-process on ``127.0.0.1`` (ephemeral port) in a background thread::

    with HubServer() as server:
        api = HfApi(endpoint=server.endpoint, token=server.token)
        api.create_repo("testuser/demo", repo_type="dataset")

Test helpers: :meth:`HubServer.inject_failures` (make the next N matching
requests fail), :attr:`HubServer.requests` (log of every request, with the
status that was answered) and :attr:`HubServer.errors` (server-side crashes).
"""

from __future__ import annotations

import base64
import binascii
import datetime as _dt
import hashlib
import hmac
import json
import mimetypes
import re
import secrets
import shutil
import socket
import tempfile
import threading
import time
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, quote, unquote, urlencode, urlsplit

import yaml

if TYPE_CHECKING:
    from typing_extensions import Self

from .gitstore import (
    REPO_TYPE_DIRS,
    EntryNotFound,
    FileChange,
    GitRepo,
    GitStore,
    InvalidOperation,
    ParentCommitMismatch,
    RefConflict,
    RevisionNotFound,
    hub_datetime,
    is_valid_ref_name,
    lfs_pointer,
    matches_gitattributes,
    validate_repo_path,
)

#: Default user and token known by a fresh server.
DEFAULT_USER = "testuser"
DEFAULT_TOKEN = "hf_test_write_token_0123456789"
DEFAULT_ORG = "test-org"
#: A second, independent user (to test permission errors).
OTHER_USER = "otheruser"
OTHER_TOKEN = "hf_test_other_token_0123456789"

# Same rules as the Hub for a namespace or repo name (see huggingface_hub's validate_repo_id).
_NAME_RE = re.compile(r"[A-Za-z0-9_.\-]{1,96}")
MAX_REPO_ID_LENGTH = 96

_URL_TYPES = {"models": "model", "datasets": "dataset", "spaces": "space"}
_RESOLVE_PREFIX = {"model": "", "dataset": "datasets/", "space": "spaces/"}


# ====================================================================== public data classes
@dataclass(frozen=True)
class HubUser:
    """A user known to the server, authenticated with ``token``."""

    name: str
    token: str
    orgs: tuple[str, ...] = ()

    def can_write(self, namespace: str) -> bool:
        return namespace.lower() == self.name.lower() or namespace.lower() in {o.lower() for o in self.orgs}


@dataclass
class RequestRecord:
    """One request received by the server (see :attr:`HubServer.requests`)."""

    method: str
    path: str  # percent-decoded path, without the query string
    raw_path: str  # path as sent on the wire (with the query string)
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-cased names
    body_size: int
    status: int = 0
    route: str | None = None  # name of the handler, None when no route matched
    injected: bool = False  # True when answered by an injected failure
    duration_s: float = 0.0  # time spent by the server on the request

    @property
    def authenticated(self) -> bool:
        return "authorization" in self.headers


@dataclass
class FailureRule:
    """Make the next ``remaining`` requests matching ``method``/``path_regex`` fail."""

    method: str | None
    path_regex: re.Pattern
    status: int
    remaining: int
    message: str
    headers: dict[str, str] = field(default_factory=dict)
    error_code: str | None = None
    delay_s: float = 0.0
    triggered: int = 0

    def matches(self, method: str, path: str) -> bool:
        if self.remaining <= 0:
            return False
        if self.method is not None and self.method.upper() != method.upper():
            return False
        return self.path_regex.search(path) is not None


class HubHTTPError(Exception):
    """Raised by handlers; rendered like the Hub renders its errors."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        code: str | None = None,
        headers: dict[str, str] | None = None,
        body: dict | None = None,
    ):
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.headers = headers or {}
        self.body = body


@dataclass
class _Request:
    method: str
    raw_path: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    user: HubUser | None
    base_url: str

    def param(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[-1] if values else default

    def flag(self, name: str) -> bool:
        return (self.param(name, "") or "").lower() in ("1", "true", "yes")

    def json(self) -> dict:
        try:
            data = json.loads(self.body or b"{}")
        except ValueError as err:
            raise HubHTTPError(400, f"Invalid JSON body: {err}") from err
        if not isinstance(data, dict):
            raise HubHTTPError(400, "JSON body must be an object")
        return data


@dataclass
class _Response:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, data, status: int = 200, headers: dict | None = None) -> _Response:
        body = json.dumps(data, default=str).encode()
        return cls(status, body, {"Content-Type": "application/json; charset=utf-8", **(headers or {})})


# ====================================================================== the server
class HubServer:
    """In-process Hub-compatible server backed by git repositories.

    Args:
        root: directory holding the repositories (a temporary directory, removed
            on :meth:`stop`, when not given).
        users: known users; defaults to ``testuser`` (member of ``test-org``,
            token :data:`DEFAULT_TOKEN`) and ``otheruser`` (:data:`OTHER_TOKEN`).
        host, port: where to listen (port 0 = ephemeral).
        tree_page_size: entries per page of the ``tree`` endpoint (paginated
            with a ``Link: <...>; rel="next"`` header, like the Hub).
        upload_mode: what ``preupload`` answers. ``"hub"`` (default) mimics the
            Hub: ``"lfs"`` for files matching a ``filter=lfs`` pattern of the
            repo's ``.gitattributes`` (the initial commit tracks ``*.parquet``,
            ``*.arrow``, ``*.bin``, ``*.safetensors``), for files larger than
            10 MB and for binary files (NUL byte in the sample), ``"regular"``
            otherwise. ``"regular"`` / ``"lfs"`` force one mode for every
            (non-empty) file.
    """

    def __init__(
        self,
        root: str | Path | None = None,
        *,
        users: list[HubUser] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        tree_page_size: int = 1000,
        upload_mode: str = "hub",
    ):
        if upload_mode not in ("hub", "regular", "lfs"):
            raise ValueError(f"upload_mode must be 'hub', 'regular' or 'lfs', not {upload_mode!r}")
        self._owns_root = root is None
        self.root = Path(root) if root is not None else Path(tempfile.mkdtemp(prefix="hub-server-"))
        self.store = GitStore(self.root)
        self.users: dict[str, HubUser] = {}
        for user in users or [
            HubUser(DEFAULT_USER, DEFAULT_TOKEN, (DEFAULT_ORG,)),
            HubUser(OTHER_USER, OTHER_TOKEN),
        ]:
            self.add_user(user)
        self.host = host
        self.port = port
        self.tree_page_size = tree_page_size
        self.upload_mode = upload_mode
        self._secret = secrets.token_bytes(16)  # signs the LFS upload URLs
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._create_lock = threading.Lock()
        self._requests: list[RequestRecord] = []
        self._failures: list[FailureRule] = []
        self.errors: list[str] = []  # tracebacks of unexpected server-side exceptions

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> Self:
        """Bind the socket and serve in a daemon thread. Returns ``self``."""
        if self._httpd is not None:
            return self
        handler = type("BoundHubHandler", (_HubRequestHandler,), {"hub": self})
        httpd = _TrackingHTTPServer((self.host, self.port), handler)
        self._httpd = httpd
        self.port = httpd.server_address[1]
        self._thread = threading.Thread(
            target=httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"hub-server-{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, close the socket, delete the temporary root (if any)."""
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd.close_connections()  # keep-alive connections of the clients
            self._httpd = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        if self._owns_root:
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def endpoint(self) -> str:
        """Base URL to use as ``HF_ENDPOINT`` (``http://127.0.0.1:<port>``)."""
        return f"http://{self.host}:{self.port}"

    # ------------------------------------------------------------------ users
    def add_user(self, user: HubUser) -> None:
        self.users[user.token] = user

    @property
    def token(self) -> str:
        """Token of the default user (the first one given)."""
        return next(iter(self.users.values())).token

    @property
    def user(self) -> str:
        """Name of the default user."""
        return next(iter(self.users.values())).name

    # ------------------------------------------------------------------ test helpers
    def inject_failures(
        self,
        *,
        method: str | None = None,
        path_regex: str = ".*",
        status: int = 500,
        count: int = 1,
        message: str | None = None,
        headers: dict[str, str] | None = None,
        error_code: str | None = None,
        delay_s: float = 0.0,
    ) -> FailureRule:
        """Answer the next ``count`` requests matching with ``status`` instead of serving them.

        ``path_regex`` is searched (``re.search``) in the percent-decoded path
        (without query string), e.g. ``r"/commit/"`` or ``r"/resolve/main/README\\.md$"``.
        ``method=None`` matches every method. ``headers`` are added to the
        failure response (e.g. ``{"Retry-After": "0"}``), ``error_code`` is sent
        as ``X-Error-Code``, ``delay_s`` sleeps before answering.
        The returned rule's ``triggered`` counter tells how often it fired.
        """
        rule = FailureRule(
            method=method,
            path_regex=re.compile(path_regex),
            status=status,
            remaining=count,
            message=message or f"Injected failure ({status})",
            headers=dict(headers or {}),
            error_code=error_code,
            delay_s=delay_s,
        )
        with self._lock:
            self._failures.append(rule)
        return rule

    def clear_failures(self) -> None:
        with self._lock:
            self._failures.clear()

    @property
    def requests(self) -> list[RequestRecord]:
        """Copy of the request log (oldest first)."""
        with self._lock:
            return list(self._requests)

    def clear_requests(self) -> None:
        with self._lock:
            self._requests.clear()

    def requests_matching(self, method: str | None = None, path_regex: str = ".*") -> list[RequestRecord]:
        """Logged requests whose method and (decoded) path match."""
        pattern = re.compile(path_regex)
        return [
            r
            for r in self.requests
            if (method is None or r.method == method.upper()) and pattern.search(r.path) is not None
        ]

    @property
    def unhandled_requests(self) -> list[RequestRecord]:
        """Requests no route matched (i.e. endpoints this server does not implement)."""
        return [r for r in self.requests if r.route is None and not r.injected]

    def reset(self) -> None:
        """Forget injected failures, the request log and recorded server errors."""
        with self._lock:
            self._failures.clear()
            self._requests.clear()
            self.errors.clear()

    def git_repo(self, repo_id: str, repo_type: str = "dataset") -> GitRepo:
        """The :class:`~.gitstore.GitRepo` of an existing repository (for assertions)."""
        repo = self.store.get(repo_type, repo_id)
        if repo is None:
            raise KeyError(f"No {repo_type} repo {repo_id!r}")
        return repo

    def create_repo(self, repo_id: str, repo_type: str = "dataset", *, private: bool = False) -> GitRepo:
        """Create a repository directly (no HTTP), owned by its namespace."""
        _validate_repo_id(repo_id)
        with self._create_lock:
            if self.store.get(repo_type, repo_id) is not None:
                raise FileExistsError(repo_id)
            return self.store.create(repo_type, repo_id, private=private, author=repo_id.split("/")[0])

    # ------------------------------------------------------------------ internals
    def _take_failure(self, method: str, path: str) -> FailureRule | None:
        with self._lock:
            for rule in self._failures:
                if rule.matches(method, path):
                    rule.remaining -= 1
                    rule.triggered += 1
                    return rule
        return None

    def _record(self, record: RequestRecord) -> None:
        with self._lock:
            self._requests.append(record)

    def _sign(self, message: str) -> str:
        return hmac.new(self._secret, message.encode(), hashlib.sha256).hexdigest()


# ====================================================================== HTTP plumbing
class _TrackingHTTPServer(ThreadingHTTPServer):
    """Threaded HTTP server that remembers open connections so ``stop()`` can close them."""

    daemon_threads = True
    block_on_close = False

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()

    def process_request(self, request, client_address):
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request):
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        with self._connections_lock:
            connections, self._connections = list(self._connections), set()
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class _HubRequestHandler(BaseHTTPRequestHandler):
    """Parses requests, applies failures/auth and dispatches to the route handlers."""

    hub: HubServer  # set on the bound subclass
    protocol_version = "HTTP/1.1"
    server_version = "HubTestServer/1.0"
    timeout = 30  # idle keep-alive connections are closed after this many seconds

    def do_GET(self):
        self._handle()

    def do_HEAD(self):
        self._handle()

    def do_POST(self):
        self._handle()

    def do_PUT(self):
        self._handle()

    def do_DELETE(self):
        self._handle()

    def log_message(self, format, *args):  # silence the default stderr logging
        pass

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks = []
            while True:
                size_line = self.rfile.readline().strip().split(b";")[0]
                size = int(size_line or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _handle(self) -> None:
        hub = self.hub
        started = time.perf_counter()
        split = urlsplit(self.path)
        decoded_path = unquote(split.path)
        headers = {k.lower(): v for k, v in self.headers.items()}
        body = self._read_body()
        record = RequestRecord(
            method=self.command,
            path=decoded_path,
            raw_path=self.path,
            query=parse_qs(split.query, keep_blank_values=True),
            headers=headers,
            body_size=len(body),
        )
        request_id = headers.get("x-amzn-trace-id") or headers.get("x-request-id") or str(uuid.uuid4())

        rule = hub._take_failure(self.command, decoded_path)
        if rule is not None:
            if rule.delay_s:
                time.sleep(rule.delay_s)
            response = _error_response(HubHTTPError(rule.status, rule.message, code=rule.error_code))
            response.headers.update(rule.headers)
            record.injected = True
        else:
            response = self._dispatch(split, decoded_path, headers, body, record)

        response.headers.setdefault("X-Request-Id", request_id)
        record.status = response.status
        record.duration_s = time.perf_counter() - started
        hub._record(record)  # before answering: a test reading the log right after the call sees it
        self._write(response)

    def _dispatch(self, split, decoded_path, headers, body, record) -> _Response:
        hub = self.hub
        try:
            user = self._authenticate(headers)
            host = headers.get("host") or f"{hub.host}:{hub.port}"
            request = _Request(
                method=self.command,
                raw_path=self.path,
                path=decoded_path,
                query=record.query,
                headers=headers,
                body=body,
                user=user,
                base_url=f"http://{host}",
            )
            method = "GET" if self.command == "HEAD" else self.command
            for methods, pattern, handler in _ROUTES:
                if method not in methods and self.command not in methods:
                    continue
                match = pattern.fullmatch(split.path)
                if match is None:
                    continue
                record.route = handler.__name__
                params = {k: unquote(v) for k, v in match.groupdict().items() if v is not None}
                return handler(hub, request, **params)
            raise HubHTTPError(404, "Sorry, we can't find the page you are looking for.")
        except HubHTTPError as err:
            return _error_response(err)
        except Exception:  # noqa: BLE001 - a bug in the test server: report it loudly
            tb = traceback.format_exc()
            hub.errors.append(tb)
            return _error_response(HubHTTPError(500, f"Internal test-server error:\n{tb}"))

    def _authenticate(self, headers: dict[str, str]) -> HubUser | None:
        auth = headers.get("authorization")
        if auth is None:
            return None
        scheme, _, token = auth.partition(" ")
        user = self.hub.users.get(token.strip()) if scheme.lower() == "bearer" else None
        if user is None:
            raise HubHTTPError(401, "Invalid credentials in Authorization header")
        return user

    def _write(self, response: _Response) -> None:
        self.send_response(response.status)
        response.headers.setdefault("Content-Length", str(len(response.body)))
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD" and response.body:
            self.wfile.write(response.body)


def _error_response(err: HubHTTPError) -> _Response:
    body = err.body if err.body is not None else {"error": err.message}
    headers = {"X-Error-Message": _header_safe(err.message), **err.headers}
    if err.code:
        headers["X-Error-Code"] = err.code
    return _Response.json(body, status=err.status, headers=headers)


def _header_safe(text: str) -> str:
    return text.splitlines()[0].encode("latin-1", errors="replace").decode("latin-1")[:500] if text else ""


# ====================================================================== validation helpers
def _validate_name(value: str, what: str) -> None:
    if (
        not isinstance(value, str)
        or not _NAME_RE.fullmatch(value)
        or value[0] in "-."
        or value[-1] in "-."
        or "--" in value
        or ".." in value
    ):
        raise HubHTTPError(
            400,
            f"Invalid {what} {value!r}: use alphanumeric characters, '-', '_' or '.', not starting or ending "
            "with '-' or '.', without '--' or '..', at most 96 characters.",
        )


def _validate_repo_id(repo_id: str) -> None:
    if repo_id.count("/") != 1:
        raise HubHTTPError(400, f"Invalid repo id {repo_id!r}: expected 'namespace/name'.")
    namespace, name = repo_id.split("/")
    _validate_name(namespace, "namespace")
    _validate_name(name, "repo name")
    if name.lower().endswith(".git"):
        raise HubHTTPError(400, f"Invalid repo name {name!r}: cannot end with '.git'.")
    if len(repo_id) > MAX_REPO_ID_LENGTH:
        raise HubHTTPError(400, f"Invalid repo id {repo_id!r}: longer than {MAX_REPO_ID_LENGTH} characters.")


def _require_user(req: _Request) -> HubUser:
    if req.user is None:
        raise HubHTTPError(401, "Invalid username or password.")
    return req.user


def _require_write(req: _Request, repo_type: str, repo_id: str) -> HubUser:
    user = _require_user(req)
    namespace = repo_id.split("/")[0]
    if not user.can_write(namespace):
        raise HubHTTPError(
            403,
            f"You don't have the rights to write to the {repo_type} repository {repo_id} (user {user.name}).",
        )
    return user


def _get_repo(
    hub: HubServer, req: _Request, repo_type: str, ns: str, name: str, *, write: bool = False
) -> GitRepo:
    """Look up a repository, enforcing the Hub's visibility rules."""
    repo_id = f"{ns}/{name}"
    _validate_repo_id(repo_id)
    if write:
        _require_write(req, repo_type, repo_id)
    repo = hub.store.get(repo_type, repo_id)
    if repo is None:
        raise HubHTTPError(401 if req.user is None else 404, "Repository not found", code="RepoNotFound")
    if repo.read_meta().private and not (req.user and req.user.can_write(ns)):
        raise HubHTTPError(401 if req.user is None else 404, "Repository not found", code="RepoNotFound")
    return repo


def _resolve(repo: GitRepo, revision: str) -> str:
    try:
        return repo.resolve(revision)
    except RevisionNotFound as err:
        raise HubHTTPError(404, f"Invalid rev id: {revision}", code="RevisionNotFound") from err


def _canonical_id(repo: GitRepo) -> str:
    return repo.read_meta().repo_id


def _repo_url(req: _Request, repo_type: str, repo_id: str) -> str:
    return f"{req.base_url}/{_RESOLVE_PREFIX[repo_type]}{repo_id}"


def _last_commit_json(repo: GitRepo, commit: str, path: str) -> dict:
    out = repo.git("log", "-1", "--format=%H%x00%s%x00%cI", commit, "--", path).decode().strip()
    oid, title, date = out.split("\x00")
    return {"id": oid, "title": title, "date": hub_datetime(_dt.datetime.fromisoformat(date))}


def parse_card_metadata(content: str) -> dict | None:
    """YAML front matter of a README.md as a dict (``None`` when there is none).

    Raises:
        yaml.YAMLError: if the front matter is not valid YAML.
        TypeError: if it is not a mapping.
    """
    match = re.match(r"^---[ \t]*\r?\n(.*?)(?:\r?\n)?---[ \t]*(?:\r?\n|$)", content, flags=re.DOTALL)
    if match is None:
        return None
    data = yaml.safe_load(match.group(1)) if match.group(1).strip() else {}
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise TypeError("The YAML metadata of the card must be a mapping.")
    return data


def _validate_dataset_card_metadata(data: dict) -> list[str]:
    """A few structural checks the Hub applies to dataset cards; returns error messages."""
    errors = []
    configs = data.get("configs")
    if configs is not None:
        if not isinstance(configs, list):
            errors.append('"configs" must be an array')
        else:
            names = []
            for item in configs:
                if not isinstance(item, dict) or not isinstance(item.get("config_name"), str):
                    errors.append('"configs[]" items must be objects with a string "config_name"')
                    continue
                names.append(item["config_name"])
                data_files = item.get("data_files")
                if data_files is not None and not isinstance(data_files, (str, list)):
                    errors.append(f'"configs[{item["config_name"]}].data_files" must be a string or an array')
            if len(names) != len(set(names)):
                errors.append('"configs[].config_name" values must be unique')
    info = data.get("dataset_info")
    if info is not None and not isinstance(info, (dict, list)):
        errors.append('"dataset_info" must be an object or an array')
    return errors


# ====================================================================== route handlers
def whoami(hub: HubServer, req: _Request) -> _Response:
    user = _require_user(req)
    return _Response.json(
        {
            "type": "user",
            "id": hashlib.sha1(user.name.encode()).hexdigest()[:24],
            "name": user.name,
            "fullname": user.name.title(),
            "email": f"{user.name}@example.com",
            "emailVerified": True,
            "isPro": False,
            "canPay": False,
            "orgs": [
                {"type": "org", "name": org, "fullname": org, "roleInOrg": "write"} for org in user.orgs
            ],
            "auth": {
                "type": "access_token",
                "accessToken": {
                    "displayName": "test-token",
                    "role": "write",
                    "createdAt": "2024-01-01T00:00:00.000Z",
                },
            },
        }
    )


def validate_yaml(hub: HubServer, req: _Request) -> _Response:
    data = req.json()
    content = data.get("content")
    repo_type = data.get("repoType", "model")
    if not isinstance(content, str):
        raise HubHTTPError(400, '"content" must be a string')
    try:
        metadata = parse_card_metadata(content)
    except (yaml.YAMLError, TypeError) as err:
        message = f"Invalid YAML in the metadata of the card: {err}"
        raise HubHTTPError(400, message, body={"errors": [{"message": message}]}) from err
    warnings = []
    if not metadata:
        warnings.append({"message": "empty or missing yaml metadata in repo card", "type": "warning"})
    errors = _validate_dataset_card_metadata(metadata or {}) if repo_type == "dataset" else []
    if errors:
        raise HubHTTPError(
            400, "; ".join(errors), body={"errors": [{"message": e} for e in errors], "warnings": warnings}
        )
    return _Response.json({"errors": [], "warnings": warnings})


def agent_harnesses(hub: HubServer, req: _Request) -> _Response:
    return _Response.json({"standardEnvVars": [], "harnesses": {}})


def telemetry(hub: HubServer, req: _Request) -> _Response:
    return _Response.json({})


def create_repo(hub: HubServer, req: _Request) -> _Response:
    user = _require_user(req)
    data = req.json()
    repo_type = data.get("type") or "model"
    if repo_type not in REPO_TYPE_DIRS:
        raise HubHTTPError(400, f"Invalid repo type {repo_type!r}")
    name, namespace = data.get("name"), data.get("organization")
    if not isinstance(name, str) or not name:
        raise HubHTTPError(400, '"name" is required')
    if not namespace:
        raise HubHTTPError(400, f"Invalid repo id {name!r}: a namespace is required ('namespace/name').")
    repo_id = f"{namespace}/{name}"
    _validate_repo_id(repo_id)
    if not user.can_write(namespace):
        raise HubHTTPError(
            403, f'You don\'t have the rights to create a {repo_type} under the namespace "{namespace}"'
        )
    private = bool(data.get("private")) or data.get("visibility") == "private"
    url = _repo_url(req, repo_type, repo_id)
    with hub._create_lock:
        existing = hub.store.get(repo_type, repo_id)
        if existing is not None:
            raise HubHTTPError(
                409,
                f"You already created this {repo_type} repo",
                body={
                    "error": f"You already created this {repo_type} repo",
                    "url": _repo_url(req, repo_type, _canonical_id(existing)),
                },
            )
        hub.store.create(repo_type, repo_id, private=private, author=user.name)
    return _Response.json({"url": url, "name": repo_id, "id": repo_id})


def delete_repo(hub: HubServer, req: _Request) -> _Response:
    data = req.json()
    repo_type = data.get("type") or "model"
    if repo_type not in REPO_TYPE_DIRS:
        raise HubHTTPError(400, f"Invalid repo type {repo_type!r}")
    if not data.get("organization") or not data.get("name"):
        raise HubHTTPError(400, "Invalid repo id: a namespace is required ('namespace/name').")
    repo = _get_repo(hub, req, repo_type, data["organization"], data["name"], write=True)
    with hub._create_lock:
        hub.store.delete(repo)
    return _Response.json({})


def repo_info(hub: HubServer, req: _Request, type: str, ns: str, name: str, rev: str = "main") -> _Response:
    repo_type = _URL_TYPES[type]
    repo = _get_repo(hub, req, repo_type, ns, name)
    commit = _resolve(repo, rev)
    meta = repo.read_meta()
    info = repo.commit_info(commit)
    files = repo.all_files(commit)
    with_blobs = req.flag("blobs")
    siblings = []
    for entry in files:
        sibling = {"rfilename": entry.path}
        if with_blobs:
            sibling.update({"size": entry.content_size, "blobId": entry.oid})
            if entry.lfs is not None:
                sibling["lfs"] = {
                    "size": entry.lfs.size,
                    "sha256": entry.lfs.oid,
                    "pointerSize": entry.lfs.pointer_size,
                }
        siblings.append(sibling)
    data = {
        "_id": hashlib.sha1(f"{repo_type}/{meta.repo_id}".encode()).hexdigest()[:24],
        "id": meta.repo_id,
        "author": meta.repo_id.split("/")[0],
        "sha": commit,
        "lastModified": info.date,
        "createdAt": meta.created_at,
        "private": meta.private,
        "gated": False,
        "disabled": False,
        "downloads": 0,
        "likes": 0,
        "tags": [],
        "siblings": siblings,
        "usedStorage": sum(entry.content_size for entry in files),
    }
    readme_entry = next((entry for entry in files if entry.path == "README.md"), None)
    if readme_entry is not None:
        readme = (
            repo.read_lfs_object(readme_entry.lfs.oid)
            if readme_entry.lfs
            else repo.read_blob(readme_entry.oid)
        )
        try:
            card = parse_card_metadata(readme.decode("utf-8", errors="replace"))
        except (yaml.YAMLError, TypeError):
            card = None
        if card:
            data["cardData"] = card
            tags = card.get("tags")
            if isinstance(tags, list):
                data["tags"] = [str(t) for t in tags]
    if repo_type == "space":
        data.update({"sdk": "static", "runtime": {"stage": "RUNNING"}})
    return _Response.json(data)


def list_refs(hub: HubServer, req: _Request, type: str, ns: str, name: str) -> _Response:
    repo = _get_repo(hub, req, _URL_TYPES[type], ns, name)
    groups = {
        "refs/heads/": "branches",
        "refs/tags/": "tags",
        "refs/convert/": "converts",
        "refs/pr/": "pullRequests",
    }
    out: dict[str, list] = {group: [] for group in groups.values()}
    for ref, target in sorted(repo.refs().items()):
        for prefix, group in groups.items():
            if ref.startswith(prefix):
                out[group].append({"name": ref[len(prefix) :], "ref": ref, "targetCommit": target})
    if not req.flag("include_prs"):
        out.pop("pullRequests")
    return _Response.json(out)


def list_commits(hub: HubServer, req: _Request, type: str, ns: str, name: str, rev: str) -> _Response:
    repo = _get_repo(hub, req, _URL_TYPES[type], ns, name)
    commit = _resolve(repo, rev)
    items = [
        {
            "id": c.oid,
            "title": c.title,
            "message": c.message,
            "authors": [{"user": c.author, "avatar": None}],
            "date": c.date,
        }
        for c in repo.log(commit)
    ]
    return _Response.json(items)


def list_tree(
    hub: HubServer, req: _Request, type: str, ns: str, name: str, rev: str, path: str = ""
) -> _Response:
    repo = _get_repo(hub, req, _URL_TYPES[type], ns, name)
    commit = _resolve(repo, rev)
    path = path.strip("/")
    recursive, expand = req.flag("recursive"), req.flag("expand")
    try:
        entries = repo.ls_tree(commit, path, recursive=recursive)
    except EntryNotFound as err:
        raise HubHTTPError(
            404, f'{path} does not exist on "{rev}"', code="EntryNotFound", headers={"X-Repo-Commit": commit}
        ) from err
    try:
        start = int(req.param("cursor", "0") or 0)
    except ValueError as err:
        raise HubHTTPError(400, "Invalid cursor") from err
    page = entries[start : start + hub.tree_page_size]
    items = []
    for entry in page:
        item = entry.as_hub_json()
        if expand:
            item["lastCommit"] = _last_commit_json(repo, commit, entry.path)
        items.append(item)
    headers = {"X-Repo-Commit": commit}
    if start + hub.tree_page_size < len(entries):
        query = {
            "recursive": str(recursive).lower(),
            "expand": str(expand).lower(),
            "cursor": start + hub.tree_page_size,
        }
        next_url = f"{req.base_url}{urlsplit(req.raw_path).path}?{urlencode(query)}"
        headers["Link"] = f'<{next_url}>; rel="next"'
    return _Response.json(items, headers=headers)


def paths_info(hub: HubServer, req: _Request, type: str, ns: str, name: str, rev: str) -> _Response:
    repo = _get_repo(hub, req, _URL_TYPES[type], ns, name)
    commit = _resolve(repo, rev)
    content_type = req.headers.get("content-type", "")
    if "json" in content_type:
        data = req.json()
        paths, expand = data.get("paths", []), bool(data.get("expand"))
        if isinstance(paths, str):
            paths = [paths]
    else:
        form = parse_qs(req.body.decode(), keep_blank_values=True)
        paths = form.get("paths", [])
        expand = (form.get("expand", ["false"])[-1]).lower() in ("1", "true")
    items = []
    for path in paths:
        entry = repo.entry(commit, path)
        if entry is None:
            continue
        item = entry.as_hub_json()
        if expand:
            item["lastCommit"] = _last_commit_json(repo, commit, entry.path)
        items.append(item)
    return _Response.json(items, headers={"X-Repo-Commit": commit})


def preupload(hub: HubServer, req: _Request, type: str, ns: str, name: str, rev: str) -> _Response:
    repo = _get_repo(hub, req, _URL_TYPES[type], ns, name, write=True)
    commit = _resolve(repo, rev)
    files = req.json().get("files")
    if not isinstance(files, list):
        raise HubHTTPError(400, '"files" must be an array')
    lfs_patterns = repo.lfs_patterns(commit)
    out = []
    for item in files:
        path = item.get("path") if isinstance(item, dict) else None
        try:
            validate_repo_path(path)
        except InvalidOperation as err:
            raise HubHTTPError(400, str(err)) from err
        mode = _upload_mode(hub.upload_mode, path, item, lfs_patterns)
        entry = repo.entry(commit, path)
        remote_oid = None
        if entry is not None and entry.type == "file":
            # The client compares this with its local oid: sha256 for LFS files, git blob sha otherwise.
            remote_oid = (
                entry.lfs.oid if (mode == "lfs" and entry.lfs) else (None if entry.lfs else entry.oid)
            )
        out.append({"path": path, "uploadMode": mode, "shouldIgnore": False, "oid": remote_oid})
    return _Response.json({"files": out, "commitOid": commit})


LFS_SIZE_THRESHOLD = 10 * 1000 * 1000  # the Hub refuses regular files larger than 10 MB


def _upload_mode(policy: str, path: str, item: dict, lfs_patterns: list[str]) -> str:
    """``"lfs"`` or ``"regular"`` for a file announced to ``preupload``."""
    if policy != "hub":
        return policy
    try:
        sample = base64.b64decode(item.get("sample") or "")
    except (binascii.Error, TypeError):
        sample = b""
    size = item.get("size") or 0
    if matches_gitattributes(path, lfs_patterns) or size > LFS_SIZE_THRESHOLD or b"\x00" in sample:
        return "lfs"
    return "regular"


def _parse_commit_payload(body: bytes, repo: GitRepo) -> tuple[dict, list[FileChange]]:
    header: dict | None = None
    changes: list[FileChange] = []
    for number, line in enumerate(body.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
            key, value = item["key"], item["value"]
        except (ValueError, KeyError, TypeError) as err:
            raise HubHTTPError(400, f"Invalid commit payload (line {number}): {err}") from err
        if key == "header":
            header = value
        elif key == "file":
            encoding = value.get("encoding", "utf-8")
            try:
                if encoding == "base64":
                    content = base64.b64decode(value["content"], validate=True)
                else:
                    content = value["content"].encode("utf-8")
            except (binascii.Error, KeyError, AttributeError) as err:
                raise HubHTTPError(400, f"Invalid file content for {value.get('path')!r}: {err}") from err
            changes.append(FileChange("add", value.get("path"), content))
        elif key == "deletedFile":
            changes.append(FileChange("delete_file", value.get("path")))
        elif key == "deletedFolder":
            changes.append(FileChange("delete_folder", value.get("path")))
        elif key == "lfsFile":
            oid, size = value.get("oid"), value.get("size")
            if value.get("algo", "sha256") != "sha256" or not isinstance(oid, str):
                raise HubHTTPError(400, f"Invalid lfsFile operation for {value.get('path')!r}")
            try:
                present = repo.has_lfs_object(oid, size)
            except InvalidOperation as err:
                raise HubHTTPError(400, str(err)) from err
            if not present:
                raise HubHTTPError(
                    422,
                    f"Your push was rejected because an LFS pointer pointed to a file that does not exist "
                    f"({value.get('path')}: {oid})",
                )
            if size is None:
                size = repo.lfs_object_path(oid).stat().st_size
            changes.append(FileChange("add", value.get("path"), lfs_pointer(oid, size)))
        else:
            raise HubHTTPError(400, f"Unknown commit operation key {key!r}")
    if header is None:
        raise HubHTTPError(400, "The commit payload must start with a 'header' line")
    return header, changes


def create_commit(hub: HubServer, req: _Request, type: str, ns: str, name: str, rev: str) -> _Response:
    repo_type = _URL_TYPES[type]
    repo = _get_repo(hub, req, repo_type, ns, name, write=True)
    user = req.user
    header, changes = _parse_commit_payload(req.body, repo)
    summary = header.get("summary")
    if not isinstance(summary, str) or not summary.strip():
        raise HubHTTPError(400, "The commit summary is required")
    repo_id = _canonical_id(repo)
    create_pr = req.flag("create_pr")
    pr_url = None
    with repo.write_lock:
        try:
            if create_pr:
                parent = _resolve(repo, rev)
                numbers = [int(r.rsplit("/", 1)[1]) for r in repo.refs() if re.fullmatch(r"refs/pr/\d+", r)]
                pr_number = max(numbers, default=0) + 1
                ref, expected_head = f"refs/pr/{pr_number}", None
                pr_url = f"{_repo_url(req, repo_type, repo_id)}/discussions/{pr_number}"
            else:
                try:
                    ref = repo.branch_ref(rev)
                except RevisionNotFound as err:
                    raise HubHTTPError(404, f"Invalid rev id: {rev}", code="RevisionNotFound") from err
                parent = expected_head = repo.refs()[ref]
            parent_commit = header.get("parentCommit")
            if parent_commit:
                try:
                    expected_parent = repo.resolve(parent_commit)
                except RevisionNotFound:
                    expected_parent = None
                if expected_parent != parent:
                    raise ParentCommitMismatch(parent_commit)
            new_commit = repo.commit(
                ref=ref,
                changes=changes,
                summary=summary,
                description=header.get("description") or "",
                author=user.name,
                parent=parent,
                expected_head=expected_head,
            )
        except ParentCommitMismatch as err:
            raise HubHTTPError(412, "A commit has happened since. Please refresh and try again.") from err
        except EntryNotFound as err:
            raise HubHTTPError(404, str(err), code="EntryNotFound") from err
        except InvalidOperation as err:
            raise HubHTTPError(400, str(err)) from err
    return _Response.json(
        {
            "success": True,
            "commitOid": new_commit,
            "commitUrl": f"{_repo_url(req, repo_type, repo_id)}/commit/{new_commit}",
            "commitMessage": summary,
            "hookOutput": "",
            "pullRequestUrl": pr_url,
        }
    )


def create_branch(hub: HubServer, req: _Request, type: str, ns: str, name: str, branch: str) -> _Response:
    repo = _get_repo(hub, req, _URL_TYPES[type], ns, name, write=True)
    start = req.json().get("startingPoint") or "main"
    target = _resolve(repo, start)
    ref = branch if branch.startswith("refs/") else f"refs/heads/{branch}"
    if not is_valid_ref_name(ref):
        raise HubHTTPError(400, f"Invalid branch name {branch!r}")
    try:
        with repo.write_lock:
            repo.create_ref(ref, target)
    except RefConflict as err:
        raise HubHTTPError(409, f"Reference {ref} already exists") from err
    return _Response.json({})


def delete_branch(hub: HubServer, req: _Request, type: str, ns: str, name: str, branch: str) -> _Response:
    repo = _get_repo(hub, req, _URL_TYPES[type], ns, name, write=True)
    if branch in ("main", "refs/heads/main"):
        raise HubHTTPError(403, "You cannot delete the default branch")
    ref = branch if branch.startswith("refs/") else f"refs/heads/{branch}"
    try:
        with repo.write_lock:
            repo.delete_ref(ref)
    except RevisionNotFound as err:
        raise HubHTTPError(404, f"Invalid rev id: {branch}", code="RevisionNotFound") from err
    return _Response.json({})


def create_tag(hub: HubServer, req: _Request, type: str, ns: str, name: str, rev: str) -> _Response:
    repo = _get_repo(hub, req, _URL_TYPES[type], ns, name, write=True)
    target = _resolve(repo, rev)
    tag = req.json().get("tag")
    if not isinstance(tag, str) or not is_valid_ref_name(f"refs/tags/{tag}"):
        raise HubHTTPError(400, f"Invalid tag name {tag!r}")
    try:
        with repo.write_lock:
            repo.create_ref(f"refs/tags/{tag}", target)
    except RefConflict as err:
        raise HubHTTPError(409, f"Tag {tag} already exists") from err
    return _Response.json({})


def _lfs_repo(
    hub: HubServer, req: _Request, ns: str, name: str, prefix: str, *, write: bool
) -> tuple[str, GitRepo]:
    repo_type = {"": "model", "datasets": "dataset", "spaces": "space"}[prefix or ""]
    return repo_type, _get_repo(hub, req, repo_type, ns, name, write=write)


def lfs_batch(hub: HubServer, req: _Request, ns: str, name: str, prefix: str = "") -> _Response:
    """Git LFS batch API (``basic`` transfer): tell the client where to PUT each object."""
    data = req.json()
    repo_type, repo = _lfs_repo(hub, req, ns, name, prefix, write=data.get("operation") == "upload")
    if data.get("operation") not in ("upload", "download"):
        raise HubHTTPError(400, "operation must be 'upload' or 'download'")
    repo_id = _canonical_id(repo)
    objects = []
    for obj in data.get("objects") or []:
        oid, size = obj.get("oid"), obj.get("size")
        if not isinstance(oid, str) or not isinstance(size, int):
            objects.append(
                {"oid": str(oid), "size": size, "error": {"code": 422, "message": "Invalid object"}}
            )
            continue
        try:
            present = repo.has_lfs_object(oid, size)
        except InvalidOperation as err:
            objects.append({"oid": oid, "size": size, "error": {"code": 422, "message": str(err)}})
            continue
        item = {"oid": oid, "size": size, "authenticated": True}
        if data["operation"] == "upload" and not present:
            signature = hub._sign(f"{repo_type}/{repo_id}/{oid}/{size}")
            upload = f"{req.base_url}/__lfs_upload/{REPO_TYPE_DIRS[repo_type]}/{repo_id}/{oid}?size={size}&sig={signature}"
            verify = f"{req.base_url}/{_RESOLVE_PREFIX[repo_type]}{repo_id}.git/info/lfs/objects/verify"
            item["actions"] = {"upload": {"href": upload}, "verify": {"href": verify}}
        elif data["operation"] == "download":
            if not present:
                item["error"] = {"code": 404, "message": "Object does not exist"}
            else:
                item["actions"] = {
                    "download": {
                        "href": f"{req.base_url}/__lfs_download/{REPO_TYPE_DIRS[repo_type]}/{repo_id}/{oid}"
                    }
                }
        objects.append(item)
    return _Response.json(
        {"transfer": "basic", "objects": objects, "hash_algo": "sha256"},
        headers={"Content-Type": "application/vnd.git-lfs+json"},
    )


def lfs_upload(hub: HubServer, req: _Request, type: str, ns: str, name: str, oid: str) -> _Response:
    """PUT target of the LFS ``upload`` action (a pre-signed URL: no token, like S3)."""
    repo_type = _URL_TYPES[type]
    repo = hub.store.get(repo_type, f"{ns}/{name}")
    size = req.param("size", "")
    expected = hub._sign(f"{repo_type}/{ns}/{name}/{oid}/{size}")
    if repo is None or not hmac.compare_digest(expected, req.param("sig", "") or ""):
        raise HubHTTPError(403, "Invalid or expired upload signature")
    if str(len(req.body)) != size:
        raise HubHTTPError(400, f"Uploaded {len(req.body)} bytes, expected {size}")
    try:
        repo.store_lfs_object(oid, req.body)
    except InvalidOperation as err:
        raise HubHTTPError(400, str(err)) from err
    return _Response(200, b"", {"ETag": f'"{oid}"'})


def lfs_download(hub: HubServer, req: _Request, type: str, ns: str, name: str, oid: str) -> _Response:
    repo = _get_repo(hub, req, _URL_TYPES[type], ns, name)
    try:
        present = repo.has_lfs_object(oid)
    except InvalidOperation as err:
        raise HubHTTPError(400, str(err)) from err
    if not present:
        raise HubHTTPError(404, "Object does not exist")
    return _Response(200, repo.read_lfs_object(oid), {"Content-Type": "application/octet-stream"})


def lfs_verify(hub: HubServer, req: _Request, ns: str, name: str, prefix: str = "") -> _Response:
    """LFS ``verify`` action: 200 if the object is stored with the announced size."""
    _, repo = _lfs_repo(hub, req, ns, name, prefix, write=True)
    data = req.json()
    try:
        present = repo.has_lfs_object(str(data.get("oid")), data.get("size"))
    except InvalidOperation as err:
        raise HubHTTPError(400, str(err)) from err
    if not present:
        raise HubHTTPError(404, "Object does not exist or has the wrong size")
    return _Response.json({"oid": data.get("oid"), "size": data.get("size")})


_RANGE_RE = re.compile(r"bytes=(\d*)-(\d*)")


def resolve_file(
    hub: HubServer, req: _Request, ns: str, name: str, rev: str, path: str, prefix: str = ""
) -> _Response:
    repo_type = {"": "model", "datasets": "dataset", "spaces": "space"}[prefix]
    repo = _get_repo(hub, req, repo_type, ns, name)
    commit = _resolve(repo, rev)
    entry = repo.entry(commit, path)
    if entry is None or entry.type != "file":
        raise HubHTTPError(404, "Entry not found", code="EntryNotFound", headers={"X-Repo-Commit": commit})
    headers = {"X-Repo-Commit": commit}
    if entry.lfs is not None:
        # The Hub redirects LFS files to a CDN and describes them with X-Linked-*; serving the content
        # directly with the same headers is equivalent for the client (ETag = sha256 of the content).
        content = repo.read_lfs_object(entry.lfs.oid)
        headers.update(
            {
                "ETag": f'"{entry.lfs.oid}"',
                "X-Linked-Etag": f'"{entry.lfs.oid}"',
                "X-Linked-Size": str(entry.lfs.size),
            }
        )
    else:
        content = repo.read_blob(entry.oid)
        headers["ETag"] = f'"{entry.oid}"'
    size = len(content)
    headers.update(
        {
            "Accept-Ranges": "bytes",
            "Content-Type": mimetypes.guess_type(path)[0] or "application/octet-stream",
            "Content-Disposition": f"inline; filename*=UTF-8''{quote(path.rsplit('/', 1)[-1])}",
        }
    )
    range_header = req.headers.get("range")
    if range_header:
        match = _RANGE_RE.fullmatch(range_header.strip().replace(" ", ""))
        start = end = None
        if match and (match.group(1) or match.group(2)):
            if match.group(1):
                start = int(match.group(1))
                end = min(int(match.group(2)), size - 1) if match.group(2) else size - 1
            else:
                start, end = max(size - int(match.group(2)), 0), size - 1
        if start is None or start > end or start >= size:
            return _Response(416, b"", {**headers, "Content-Range": f"bytes */{size}"})
        headers["Content-Range"] = f"bytes {start}-{end}/{size}"
        return _Response(206, content[start : end + 1], headers)
    return _Response(200, content, headers)


def repo_not_found_single_segment(hub: HubServer, req: _Request, name: str, **_) -> _Response:
    """Repo ids without namespace ("canonical" repos) never exist on this server."""
    _validate_name(name, "repo name")
    raise HubHTTPError(401 if req.user is None else 404, "Repository not found", code="RepoNotFound")


# ====================================================================== routing table
_T = r"(?P<type>models|datasets|spaces)/(?P<ns>[^/]+)/(?P<name>[^/]+)"
_ROUTE_SPECS: list[tuple[tuple[str, ...], str, Callable]] = [
    (("GET",), r"/api/whoami-v2", whoami),
    (("POST",), r"/api/validate-yaml", validate_yaml),
    (("GET",), r"/api/agent-harnesses", agent_harnesses),
    (("GET", "POST"), r"/api/telemetry/.*", telemetry),
    (("POST",), r"/api/repos/create", create_repo),
    (("DELETE",), r"/api/repos/delete", delete_repo),
    (("GET",), rf"/api/{_T}", repo_info),
    (("GET",), rf"/api/{_T}/revision/(?P<rev>[^/]+)", repo_info),
    (("GET",), rf"/api/{_T}/refs", list_refs),
    (("GET",), rf"/api/{_T}/commits/(?P<rev>[^/]+)", list_commits),
    (("GET",), rf"/api/{_T}/tree/(?P<rev>[^/]+)(?:/(?P<path>.*))?", list_tree),
    (("POST",), rf"/api/{_T}/paths-info/(?P<rev>[^/]+)", paths_info),
    (("POST",), rf"/api/{_T}/preupload/(?P<rev>[^/]+)", preupload),
    (("POST",), rf"/api/{_T}/commit/(?P<rev>[^/]+)", create_commit),
    (("POST",), rf"/api/{_T}/branch/(?P<branch>[^/]+)", create_branch),
    (("DELETE",), rf"/api/{_T}/branch/(?P<branch>[^/]+)", delete_branch),
    (("POST",), rf"/api/{_T}/tag/(?P<rev>[^/]+)", create_tag),
    (
        ("GET",),
        r"/api/(?:models|datasets|spaces)/(?P<name>[^/]+)(?:/revision/[^/]+)?",
        repo_not_found_single_segment,
    ),
    (
        ("POST",),
        r"/(?:(?P<prefix>datasets|spaces)/)?(?P<ns>[^/]+)/(?P<name>[^/]+)\.git/info/lfs/objects/batch",
        lfs_batch,
    ),
    (
        ("POST",),
        r"/(?:(?P<prefix>datasets|spaces)/)?(?P<ns>[^/]+)/(?P<name>[^/]+)\.git/info/lfs/objects/verify",
        lfs_verify,
    ),
    (
        ("PUT",),
        r"/__lfs_upload/(?P<type>models|datasets|spaces)/(?P<ns>[^/]+)/(?P<name>[^/]+)/(?P<oid>[0-9a-f]{64})",
        lfs_upload,
    ),
    (
        ("GET",),
        r"/__lfs_download/(?P<type>models|datasets|spaces)/(?P<ns>[^/]+)/(?P<name>[^/]+)/(?P<oid>[0-9a-f]{64})",
        lfs_download,
    ),
    (
        ("GET",),
        r"/(?P<prefix>datasets|spaces)/(?P<ns>[^/]+)/(?P<name>[^/]+)/resolve/(?P<rev>[^/]+)/(?P<path>.+)",
        resolve_file,
    ),
    (
        ("GET",),
        r"/(?!api/|datasets/|spaces/)(?P<ns>[^/]+)/(?P<name>[^/]+)/resolve/(?P<rev>[^/]+)/(?P<path>.+)",
        resolve_file,
    ),
    (("GET",), r"/(?:datasets/|spaces/)?(?P<name>[^/]+)/resolve/[^/]+/.+", repo_not_found_single_segment),
]
_ROUTES = [(methods, re.compile(pattern), handler) for methods, pattern, handler in _ROUTE_SPECS]
