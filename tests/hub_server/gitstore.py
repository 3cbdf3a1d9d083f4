"""Git-backed repository storage for the test Hub server.

Every Hub repository is a git repository on disk, laid out as::

    <root>/<models|datasets|spaces>/<namespace>/<name>/.git/              git data
    <root>/<models|datasets|spaces>/<namespace>/<name>/.git/lfs/objects/  LFS objects
    <root>/<models|datasets|spaces>/<namespace>/<name>/.git/hub-meta.json Hub metadata

The work tree stays empty (it is never checked out).  LFS files are stored the
way git-lfs stores them: the tree holds a pointer blob
(``version https://git-lfs.github.com/spec/v1 / oid sha256:... / size ...``)
and the content lives in ``.git/lfs/objects/<o[0:2]>/<o[2:4]>/<oid>``.  This
layout is exactly what olah's ``mirrors-path`` option reads, so the same
directory can be served read-only by olah (see ``olah_mirror.py``).

Only the ``git`` command line is used (through :func:`subprocess.run`); commits
are built with plumbing commands (``hash-object``, ``update-index`` on a
temporary index, ``write-tree``, ``commit-tree``, ``update-ref``) so no working
tree is ever needed.  The user's and the system's git configuration are ignored
so that things like ``commit.gpgSign`` can not interfere.
"""

from __future__ import annotations

import datetime as _dt
import fnmatch
import hashlib
import json
import os
import re
import subprocess
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path

#: Plural URL segment for each repo type.
REPO_TYPE_DIRS = {"model": "models", "dataset": "datasets", "space": "spaces"}

_HEX40 = re.compile(r"[0-9a-f]{40}")
_SHORT_HEX = re.compile(r"[0-9a-f]{7,39}")
_NULL_SHA = "0" * 40

#: Content of the ``.gitattributes`` file of the initial commit (the real Hub
#: creates every repo with such a commit, so ``main`` always resolves).
INITIAL_GITATTRIBUTES = (
    "*.parquet filter=lfs diff=lfs merge=lfs -text\n"
    "*.arrow filter=lfs diff=lfs merge=lfs -text\n"
    "*.safetensors filter=lfs diff=lfs merge=lfs -text\n"
    "*.bin filter=lfs diff=lfs merge=lfs -text\n"
)


class GitStoreError(Exception):
    """Base class of the storage errors; the HTTP layer maps them to Hub errors."""


class RevisionNotFound(GitStoreError):
    """The revision does not resolve to a commit of the repository."""


class EntryNotFound(GitStoreError):
    """The path does not exist at the given commit."""


class ParentCommitMismatch(GitStoreError):
    """``parentCommit`` of a commit request is not the head of the branch."""


class InvalidOperation(GitStoreError):
    """A commit operation is malformed (bad path, file/folder conflict...)."""


class RefConflict(GitStoreError):
    """A branch/tag to create already exists."""


@dataclass
class LfsPointer:
    """Content of a git-lfs pointer file."""

    oid: str  # sha256 of the content
    size: int  # size of the content
    pointer_size: int  # size of the pointer blob itself


@dataclass
class TreeEntry:
    """One entry of a git tree listing (``git ls-tree -l``)."""

    path: str
    type: str  # "file" or "directory"
    oid: str  # git object id (of the pointer blob for LFS files)
    size: int  # size of the blob (for LFS files: of the pointer)
    lfs: LfsPointer | None = None

    @property
    def content_size(self) -> int:
        """Size of the file content (the LFS object size for LFS files)."""
        return self.lfs.size if self.lfs else self.size

    def as_hub_json(self) -> dict:
        """Serialize like the Hub's ``tree`` / ``paths-info`` endpoints."""
        item = {"type": self.type, "oid": self.oid, "size": self.content_size, "path": self.path}
        if self.lfs is not None:
            item["lfs"] = {"oid": self.lfs.oid, "size": self.lfs.size, "pointerSize": self.lfs.pointer_size}
        return item


@dataclass
class CommitInfo:
    """Metadata of one commit."""

    oid: str
    author: str
    date: str  # ISO 8601, UTC, millisecond precision, "Z" suffix (Hub style)
    title: str
    message: str


@dataclass
class FileChange:
    """One operation of a commit: add/replace a file, delete a file or delete a folder.

    For LFS files, ``kind`` is ``"add"`` and ``content`` is the pointer (see
    :func:`lfs_pointer`); the object must already be stored in the repository.
    """

    kind: str  # "add", "delete_file" or "delete_folder"
    path: str
    content: bytes = b""


@dataclass
class RepoMeta:
    """Hub-level metadata of a repository (stored next to the git data)."""

    repo_type: str
    repo_id: str
    private: bool = False
    created_at: str = ""
    extra: dict = field(default_factory=dict)


def hub_datetime(value: _dt.datetime | None = None) -> str:
    """Format a datetime the way the Hub does: ``2024-01-02T03:04:05.000Z``."""
    value = (value or _dt.datetime.now(_dt.timezone.utc)).astimezone(_dt.timezone.utc)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def validate_repo_path(path: str) -> str:
    """Validate a path inside a repository and return it normalized.

    Raises:
        InvalidOperation: absolute paths, ``..``/``.`` components, empty components
            and anything inside ``.git`` are refused.
    """
    if not isinstance(path, str) or not path or path.startswith("/") or "\x00" in path or "\\" in path:
        raise InvalidOperation(f"Invalid path in repo: {path!r}")
    parts = path.split("/")
    if any(part in ("", ".", "..") for part in parts) or parts[0] == ".git":
        raise InvalidOperation(f"Invalid path in repo: {path!r}")
    return path


class GitRepo:
    """A git repository (empty work tree) holding one Hub repo."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.git_dir = self.path / ".git"
        self.write_lock = threading.Lock()

    # ------------------------------------------------------------------ low level
    def git(
        self, *args: str, input: bytes | None = None, env: dict | None = None, check: bool = True
    ) -> bytes:
        """Run ``git <args>`` on the repository and return its stdout."""
        return run_git(["--git-dir", str(self.git_dir), *args], input=input, env=env, check=check)

    # ------------------------------------------------------------------ metadata
    @property
    def meta_path(self) -> Path:
        return self.git_dir / "hub-meta.json"

    # ------------------------------------------------------------------ LFS objects
    def lfs_object_path(self, oid: str) -> Path:
        """Where git-lfs keeps the object ``oid`` (sha256 hex)."""
        if not _SHA256.fullmatch(oid):
            raise InvalidOperation(f"Invalid LFS oid {oid!r}")
        return self.git_dir / "lfs" / "objects" / oid[:2] / oid[2:4] / oid

    def has_lfs_object(self, oid: str, size: int | None = None) -> bool:
        path = self.lfs_object_path(oid)
        return path.is_file() and (size is None or path.stat().st_size == size)

    def store_lfs_object(self, oid: str, data: bytes) -> None:
        """Store an LFS object after checking its sha256 (atomic rename)."""
        if hashlib.sha256(data).hexdigest() != oid:
            raise InvalidOperation(f"Content does not match LFS oid {oid}")
        path = self.lfs_object_path(oid)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".incoming-")
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)

    def read_lfs_object(self, oid: str) -> bytes:
        return self.lfs_object_path(oid).read_bytes()

    def lfs_patterns(self, commit: str) -> list[str]:
        """Patterns of ``.gitattributes`` (at ``commit``) that have ``filter=lfs``."""
        content = self.read_file(commit, ".gitattributes")
        patterns = []
        for line in (content or b"").decode("utf-8", errors="replace").splitlines():
            parts = line.split()
            if len(parts) >= 2 and not parts[0].startswith("#") and "filter=lfs" in parts[1:]:
                patterns.append(parts[0])
        return patterns

    def read_meta(self) -> RepoMeta:
        data = json.loads(self.meta_path.read_text(encoding="utf-8"))
        return RepoMeta(**data)

    def write_meta(self, meta: RepoMeta) -> None:
        self.meta_path.write_text(json.dumps(meta.__dict__, indent=2), encoding="utf-8")

    # ------------------------------------------------------------------ refs
    def refs(self) -> dict[str, str]:
        """All refs of the repo, mapped to the commit they (eventually) point to."""
        out = self.git("for-each-ref", "--format=%(refname)%00%(objectname)%00%(*objectname)")
        refs: dict[str, str] = {}
        for line in out.decode().splitlines():
            name, obj, peeled = line.split("\x00")
            refs[name] = peeled or obj
        return refs

    def resolve(self, revision: str) -> str:
        """Resolve a branch, tag, full ref name or commit SHA to a commit SHA.

        Raises:
            RevisionNotFound: if the revision is unknown.
        """
        if not revision or revision.startswith("-") or any(c in revision for c in " ~^:?*[\\\x00"):
            raise RevisionNotFound(revision)
        refs = self.refs()
        for candidate in (revision, f"refs/heads/{revision}", f"refs/tags/{revision}"):
            if candidate.startswith("refs/") and candidate in refs:
                return refs[candidate]
        if _HEX40.fullmatch(revision) or _SHORT_HEX.fullmatch(revision):
            out = self.git("rev-parse", "--verify", "--quiet", f"{revision}^{{commit}}", check=False).strip()
            if out:
                return out.decode()
        raise RevisionNotFound(revision)

    def branch_ref(self, revision: str) -> str:
        """Return the full ref name of a branch given by name or ``refs/...`` (for commits)."""
        refs = self.refs()
        if revision.startswith(("refs/heads/", "refs/pr/")) and revision in refs:
            return revision
        if f"refs/heads/{revision}" in refs:
            return f"refs/heads/{revision}"
        raise RevisionNotFound(revision)

    def create_ref(self, ref: str, target: str) -> None:
        """Create ``ref`` pointing at commit ``target``; fail if it exists."""
        if not is_valid_ref_name(ref):
            raise InvalidOperation(f"Invalid reference name: {ref}")
        if ref in self.refs():
            raise RefConflict(ref)
        self.git("update-ref", ref, target, _NULL_SHA)

    def delete_ref(self, ref: str) -> None:
        if ref not in self.refs():
            raise RevisionNotFound(ref)
        self.git("update-ref", "-d", ref)

    # ------------------------------------------------------------------ reading
    def commit_info(self, commit: str) -> CommitInfo:
        out = self.git("show", "-s", "--format=%H%x00%an%x00%cI%x00%s%x00%b", commit)
        oid, author, date, title, body = out.decode().split("\x00", 4)
        return CommitInfo(
            oid=oid,
            author=author,
            date=hub_datetime(_dt.datetime.fromisoformat(date)),
            title=title,
            message=body.strip(),
        )

    def log(self, commit: str, limit: int = 1000) -> list[CommitInfo]:
        """History of ``commit`` (newest first)."""
        out = self.git("log", f"--max-count={limit}", "--format=%H%x00%an%x00%cI%x00%s%x00%b%x1e", commit)
        commits = []
        for record in out.decode().split("\x1e"):
            record = record.strip("\n")
            if not record:
                continue
            oid, author, date, title, body = record.split("\x00", 4)
            commits.append(
                CommitInfo(oid, author, hub_datetime(_dt.datetime.fromisoformat(date)), title, body.strip())
            )
        return commits

    def _with_lfs_info(self, entries: list[TreeEntry]) -> list[TreeEntry]:
        """Detect LFS pointers among small blobs (one ``git cat-file --batch`` call)."""
        candidates = [
            e for e in entries if e.type == "file" and _MIN_POINTER_SIZE <= e.size <= _MAX_POINTER_SIZE
        ]
        if candidates:
            blobs = self.read_blobs([e.oid for e in candidates])
            for entry in candidates:
                entry.lfs = parse_lfs_pointer(blobs[entry.oid])
        return entries

    def read_blobs(self, oids: list[str]) -> dict[str, bytes]:
        """Read several blobs with a single ``git cat-file --batch``."""
        unique = list(dict.fromkeys(oids))
        out = self.git("cat-file", "--batch", input=("\n".join(unique) + "\n").encode())
        blobs, pos = {}, 0
        for oid in unique:
            header_end = out.index(b"\n", pos)
            _oid, _type, size = out[pos:header_end].decode().split()
            start = header_end + 1
            blobs[oid] = out[start : start + int(size)]
            pos = start + int(size) + 1
        return blobs

    def ls_tree(self, commit: str, path: str = "", recursive: bool = False) -> list[TreeEntry]:
        """List a directory (``path=""`` is the root) at ``commit``.

        Raises:
            EntryNotFound: if ``path`` is not a directory at ``commit``.
        """
        if path:
            entry = self.entry(commit, path)
            if entry is None or entry.type != "directory":
                raise EntryNotFound(path)
        args = ["ls-tree", "-l", "-z"]
        if recursive:
            args += ["-r", "-t"]
        args.append(commit)
        if path:
            args += ["--", path + "/"]
        return self._with_lfs_info(_parse_ls_tree(self.git(*args)))

    def entry(self, commit: str, path: str) -> TreeEntry | None:
        """The tree entry at ``path`` (file or directory), or ``None``."""
        path = path.strip("/")
        if not path:
            return None
        entries = _parse_ls_tree(self.git("ls-tree", "-l", "-z", commit, "--", path))
        for item in entries:
            if item.path == path:
                return self._with_lfs_info([item])[0]
        return None

    def all_files(self, commit: str) -> list[TreeEntry]:
        """Every file (blob) of the tree at ``commit``."""
        return self._with_lfs_info(_parse_ls_tree(self.git("ls-tree", "-r", "-l", "-z", commit)))

    def read_blob(self, oid: str) -> bytes:
        return self.git("cat-file", "blob", oid)

    def read_file(self, commit: str, path: str) -> bytes | None:
        """Content of a file at ``commit`` (LFS content for LFS files), ``None`` if missing."""
        entry = self.entry(commit, path)
        if entry is None or entry.type != "file":
            return None
        if entry.lfs is not None:
            return self.read_lfs_object(entry.lfs.oid)
        return self.read_blob(entry.oid)

    # ------------------------------------------------------------------ writing
    def commit(
        self,
        *,
        ref: str,
        changes: list[FileChange],
        summary: str,
        description: str,
        author: str,
        parent: str | None,
        expected_head: str | None = None,
    ) -> str:
        """Create a commit on ``ref`` applying ``changes`` on top of ``parent``.

        Args:
            ref: full ref to update (``refs/heads/main``, ``refs/pr/1``...).
            changes: operations to apply, in order.
            summary, description: commit message title and body.
            author: user name recorded as author and committer.
            parent: parent commit (``None`` only for the very first commit).
            expected_head: value ``ref`` must currently have (``None``: the ref must
                not exist yet); the update is an atomic compare-and-swap.

        Returns:
            The SHA of the new commit.
        """
        with tempfile.TemporaryDirectory(prefix="hubidx-") as tmp:
            env = {"GIT_INDEX_FILE": os.path.join(tmp, "index")}
            if parent is not None:
                self.git("read-tree", parent, env=env)
            existing = {p for p in self.git("ls-files", "-z", env=env).decode().split("\x00") if p}
            index_lines: list[str] = []
            for change in changes:
                path = validate_repo_path(
                    change.path.strip("/") if change.kind == "delete_folder" else change.path
                )
                if change.kind == "add":
                    _check_no_file_folder_conflict(path, existing)
                    oid = self.git("hash-object", "-w", "--stdin", input=change.content).decode().strip()
                    index_lines.append(f"100644 {oid}\t{path}")
                    existing.add(path)
                elif change.kind == "delete_file":
                    if path not in existing:
                        raise EntryNotFound(f"A file with this name doesn't exist: {path}")
                    index_lines.append(f"0 {_NULL_SHA}\t{path}")
                    existing.discard(path)
                elif change.kind == "delete_folder":
                    inside = sorted(p for p in existing if p.startswith(path + "/"))
                    if not inside:
                        raise EntryNotFound(f"A folder with this name doesn't exist: {path}")
                    for item in inside:
                        index_lines.append(f"0 {_NULL_SHA}\t{item}")
                        existing.discard(item)
                else:  # pragma: no cover - guarded by the HTTP layer
                    raise InvalidOperation(f"Unknown operation {change.kind!r}")
            if index_lines:
                self.git(
                    "update-index", "--index-info", input=("\n".join(index_lines) + "\n").encode(), env=env
                )
            tree = self.git("write-tree", env=env).decode().strip()

        message = summary if not description else f"{summary}\n\n{description}"
        commit_env = {
            "GIT_AUTHOR_NAME": author,
            "GIT_AUTHOR_EMAIL": f"{author}@users.noreply.hub.test",
            "GIT_COMMITTER_NAME": author,
            "GIT_COMMITTER_EMAIL": f"{author}@users.noreply.hub.test",
        }
        args = ["commit-tree", tree]
        if parent is not None:
            args += ["-p", parent]
        new_commit = self.git(*args, input=message.encode(), env=commit_env).decode().strip()
        self.git("update-ref", ref, new_commit, expected_head or _NULL_SHA)
        return new_commit


class GitStore:
    """All repositories of a test Hub, rooted at ``root``."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self._repos: dict[Path, GitRepo] = {}
        self._lock = threading.Lock()

    def repo_dir(self, repo_type: str, repo_id: str) -> Path:
        """Directory of a repository (it exists only once created)."""
        namespace, name = repo_id.split("/")
        return self.root / REPO_TYPE_DIRS[repo_type] / namespace / name

    def get(self, repo_type: str, repo_id: str) -> GitRepo | None:
        """Return the repository, or ``None`` if it does not exist.

        The lookup is case-insensitive like on the Hub (``User/Repo`` == ``user/repo``).
        """
        path = self._find_dir(repo_type, repo_id)
        if path is None:
            return None
        with self._lock:
            if path not in self._repos:
                self._repos[path] = GitRepo(path)
            return self._repos[path]

    def _find_dir(self, repo_type: str, repo_id: str) -> Path | None:
        exact = self.repo_dir(repo_type, repo_id)
        if (exact / ".git" / "hub-meta.json").is_file():
            return exact
        namespace, name = repo_id.lower().split("/")
        type_dir = self.root / REPO_TYPE_DIRS[repo_type]
        if not type_dir.is_dir():
            return None
        for ns_dir in type_dir.iterdir():
            if ns_dir.name.lower() != namespace:
                continue
            for repo_dir in ns_dir.iterdir():
                if repo_dir.name.lower() == name and (repo_dir / ".git" / "hub-meta.json").is_file():
                    return repo_dir
        return None

    def create(self, repo_type: str, repo_id: str, *, private: bool, author: str) -> GitRepo:
        """Create a repository with an initial commit holding ``.gitattributes``."""
        path = self.repo_dir(repo_type, repo_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        run_git(["init", "--quiet", "--initial-branch=main", str(path)])
        repo = GitRepo(path)
        repo.commit(
            ref="refs/heads/main",
            changes=[FileChange("add", ".gitattributes", INITIAL_GITATTRIBUTES.encode())],
            summary="initial commit",
            description="",
            author=author,
            parent=None,
            expected_head=None,
        )
        repo.write_meta(
            RepoMeta(repo_type=repo_type, repo_id=repo_id, private=private, created_at=hub_datetime())
        )
        with self._lock:
            self._repos[path] = repo
        return repo

    def delete(self, repo: GitRepo) -> None:
        import shutil

        with self._lock:
            self._repos.pop(repo.path, None)
        shutil.rmtree(repo.path)


# ---------------------------------------------------------------------- helpers
_SHA256 = re.compile(r"[0-9a-f]{64}")
_LFS_POINTER = re.compile(
    rb"version https://git-lfs\.github\.com/spec/v1\noid sha256:([0-9a-f]{64})\nsize ([0-9]+)\n"
)
_MIN_POINTER_SIZE, _MAX_POINTER_SIZE = 100, 200


def lfs_pointer(oid: str, size: int) -> bytes:
    """The git-lfs pointer file for an object."""
    return f"version https://git-lfs.github.com/spec/v1\noid sha256:{oid}\nsize {size}\n".encode()


def parse_lfs_pointer(data: bytes) -> LfsPointer | None:
    """Parse a git-lfs pointer file (``None`` if ``data`` is not one)."""
    match = _LFS_POINTER.fullmatch(data)
    if match is None:
        return None
    return LfsPointer(oid=match.group(1).decode(), size=int(match.group(2)), pointer_size=len(data))


def matches_gitattributes(path: str, patterns: list[str]) -> bool:
    """Whether ``path`` matches one of the ``.gitattributes`` patterns (gitignore-like subset)."""
    basename = path.rsplit("/", 1)[-1]
    for pattern in patterns:
        if "/" in pattern.rstrip("/"):
            if fnmatch.fnmatchcase(path, pattern.lstrip("/")):
                return True
        elif fnmatch.fnmatchcase(basename, pattern):
            return True
    return False


_REF_NAME = re.compile(r"refs/(heads|tags|pr)/[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*")


def is_valid_ref_name(ref: str) -> bool:
    """Conservative subset of ``git check-ref-format`` rules for branch/tag refs."""
    return bool(_REF_NAME.fullmatch(ref)) and ".." not in ref and not ref.endswith((".lock", ".", "/"))


def git_env(extra: dict | None = None) -> dict:
    """Environment for git subprocesses: isolated from user/system configuration."""
    env = dict(os.environ)
    for key in list(env):
        if key.startswith("GIT_"):
            del env[key]
    env.update(
        {
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_GLOBAL": os.devnull,
            "GIT_TERMINAL_PROMPT": "0",
            "LC_ALL": "C",
        }
    )
    if extra:
        env.update(extra)
    return env


def run_git(
    args: list[str], *, input: bytes | None = None, env: dict | None = None, check: bool = True
) -> bytes:
    """Run git and return stdout; raise ``GitStoreError`` on failure when ``check``."""
    proc = subprocess.run(
        ["git", *args], input=input, capture_output=True, env=git_env(env), timeout=60, check=False
    )
    if check and proc.returncode != 0:
        raise GitStoreError(f"git {' '.join(args)} failed: {proc.stderr.decode(errors='replace').strip()}")
    return proc.stdout


def _parse_ls_tree(output: bytes) -> list[TreeEntry]:
    entries = []
    for record in output.decode().split("\x00"):
        if not record:
            continue
        meta, path = record.split("\t", 1)
        _mode, obj_type, oid, size = meta.split()
        if obj_type == "tree":
            entries.append(TreeEntry(path=path, type="directory", oid=oid, size=0))
        elif obj_type == "blob":
            entries.append(TreeEntry(path=path, type="file", oid=oid, size=int(size)))
    return entries


def _check_no_file_folder_conflict(path: str, existing: set[str]) -> None:
    parts = path.split("/")
    for i in range(1, len(parts)):
        prefix = "/".join(parts[:i])
        if prefix in existing:
            raise InvalidOperation(f"Cannot add {path!r}: {prefix!r} is a file")
    if any(p.startswith(path + "/") for p in existing):
        raise InvalidOperation(f"Cannot add {path!r}: it is a folder")
