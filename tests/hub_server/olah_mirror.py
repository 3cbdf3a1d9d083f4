"""Run `olah <https://pypi.org/project/olah/>`_ (a Hugging Face Hub mirror) on the test repositories.

olah is started in *offline* mode with ``mirrors-path`` pointing at the
:class:`~.server.HubServer` root: it reads the very same git repositories
(LFS objects included, from ``.git/lfs/objects``) and never contacts an
upstream Hub (its upstream is set to ``http://127.0.0.1:9``, a closed port, so
even a code path that tried would fail immediately instead of reaching the
network).

Verified with olah 0.5.4 + huggingface_hub 2.4 + datasets 5.2: ``hf_hub_download``,
``snapshot_download``, ``HfApi.dataset_info(..., revision=...)``,
``HfApi.list_repo_tree`` and ``datasets.load_dataset`` work.  Known olah
deviations from the Hub in this mode (see README.md): ``GET /api/datasets/{id}``
*without* revision, unknown revisions and missing files on a *branch* are all
answered ``401 RepoNotFound``.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from typing_extensions import Self

_LAUNCHER = Path(__file__).with_name("_olah_launcher.py")


class OlahStartError(RuntimeError):
    """olah could not be started (the message includes the end of its log)."""


class OlahServer:
    """An olah subprocess serving ``mirrors_path`` read-only on ``127.0.0.1:<ephemeral port>``.

    Args:
        mirrors_path: directory with ``<models|datasets|spaces>/<namespace>/<name>`` git repos
            (``HubServer.root``).
        workdir: where the config, olah's own cache dir and the log go (temporary if omitted).
        python: interpreter that has olah installed (default: the current one).
        startup_timeout: seconds to wait for olah to answer HTTP requests.
    """

    def __init__(
        self,
        mirrors_path: str | os.PathLike,
        *,
        workdir: str | os.PathLike | None = None,
        python: str = sys.executable,
        startup_timeout: float = 60.0,
    ):
        self.mirrors_path = Path(mirrors_path)
        self.workdir = Path(workdir) if workdir is not None else Path(tempfile.mkdtemp(prefix="olah-"))
        self.python = python
        self.startup_timeout = startup_timeout
        self.port: int | None = None
        self._proc: subprocess.Popen | None = None
        self._log_file = None

    @staticmethod
    def available() -> bool:
        """Whether olah can be imported by the current interpreter."""
        return importlib.util.find_spec("olah") is not None

    @property
    def endpoint(self) -> str:
        if self.port is None:
            raise RuntimeError("olah is not running")
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.workdir / "olah.log"

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def write_config(self) -> Path:
        """Write olah's TOML configuration (offline mirror of ``mirrors_path``)."""
        config = self.workdir / "olah.toml"
        config.write_text(
            "\n".join(
                [
                    "[basic]",
                    'host = "127.0.0.1"',
                    f"repos-path = {_toml_str(self.workdir / 'cache')}",
                    f"mirrors-path = [{_toml_str(self.mirrors_path)}]",
                    # No upstream: a closed local port (olah never needs it offline).
                    'hf-scheme = "http"',
                    'hf-netloc = "127.0.0.1:9"',
                    'hf-lfs-netloc = "127.0.0.1:9"',
                    "",
                    "[accessibility]",
                    "offline = true",
                    "",
                ]
            ),
            encoding="utf-8",
        )
        return config

    def start(self) -> Self:
        """Start olah and wait until it answers HTTP requests."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        config = self.write_config()
        port_file = self.workdir / "port"
        port_file.unlink(missing_ok=True)
        self._log_file = open(self.log_path, "ab")  # noqa: SIM115 - closed by stop()
        env = dict(os.environ, OLAH_LOG_PATH=str(self.workdir / "logs"), PYTHONUNBUFFERED="1")
        self._proc = subprocess.Popen(
            [self.python, str(_LAUNCHER), str(config), str(port_file)],
            cwd=self.workdir,
            stdin=subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            env=env,
        )
        deadline = time.monotonic() + self.startup_timeout
        try:
            self.port = self._wait_for_port(port_file, deadline)
            self._wait_until_serving(deadline)
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_for_port(self, port_file: Path, deadline: float) -> int:
        while time.monotonic() < deadline:
            self._raise_if_exited()
            try:
                text = port_file.read_text().strip()
                if text:
                    return int(text)
            except (OSError, ValueError):
                pass
            time.sleep(0.05)
        raise OlahStartError(f"olah did not report its port in time.\n{self.log_tail()}")

    def _wait_until_serving(self, deadline: float) -> None:
        # Any HTTP answer (even an error status) means uvicorn is serving requests.
        probe = f"http://127.0.0.1:{self.port}/api/datasets/olah-probe/olah-probe/revision/main"
        while time.monotonic() < deadline:
            self._raise_if_exited()
            try:
                with urllib.request.urlopen(probe, timeout=2):
                    return
            except urllib.error.HTTPError:
                return
            except OSError:
                time.sleep(0.1)
        raise OlahStartError(f"olah did not start serving within {self.startup_timeout}s.\n{self.log_tail()}")

    def _raise_if_exited(self) -> None:
        if self._proc is not None and self._proc.poll() is not None:
            raise OlahStartError(f"olah exited with code {self._proc.returncode}.\n{self.log_tail()}")

    def stop(self) -> None:
        """Terminate the olah process (kill it if it does not exit within 10 s)."""
        if self._proc is not None:
            if self._proc.poll() is None:
                self._proc.terminate()
                try:
                    self._proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    self._proc.kill()
                    self._proc.wait(timeout=10)
            self._proc = None
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def _toml_str(value: os.PathLike | str) -> str:
    """A TOML basic string."""
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'
