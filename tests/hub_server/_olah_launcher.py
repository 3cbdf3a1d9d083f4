"""Run olah on an already-bound ephemeral port (started as a subprocess by ``olah_mirror.py``).

Usage: ``python _olah_launcher.py <config.toml> <port-file>``

The socket is bound here (port 0) *before* olah starts, so there is no race on
the port; the chosen port is written to ``<port-file>`` (atomically).  olah is
configured through its documented ``OLAH_CONFIG`` environment variable (the
mechanism its multi-worker mode uses), which makes ``olah.server`` build its
settings from the TOML file at import time.
"""

from __future__ import annotations

import os
import socket
import sys
import threading
import time


def _exit_with_parent() -> None:
    """Exit as soon as the process that started us is gone (e.g. pytest was killed)."""
    parent = os.getppid()
    while True:
        time.sleep(1)
        if os.getppid() != parent:
            os._exit(0)


def main() -> None:
    # Run as a script, this file's directory is sys.path[0]: drop it so that nothing
    # in the test package can shadow an installed module.
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != here]
    config_path, port_file = sys.argv[1], sys.argv[2]
    threading.Thread(target=_exit_with_parent, name="parent-watchdog", daemon=True).start()
    os.environ["OLAH_CONFIG"] = config_path
    os.environ.setdefault("OLAH_LOG_PATH", os.path.join(os.path.dirname(config_path), "logs"))

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    port = sock.getsockname()[1]

    import olah.server  # builds the app settings from OLAH_CONFIG
    import uvicorn

    config = olah.server.app.state.app_settings.config
    config.port = port
    config.mirror_netloc = config.mirror_lfs_netloc = f"127.0.0.1:{port}"

    tmp = f"{port_file}.tmp"
    with open(tmp, "w") as handle:
        handle.write(str(port))
    os.replace(tmp, port_file)

    server = uvicorn.Server(uvicorn.Config(olah.server.app, log_level="warning", access_log=False))
    server.run(sockets=[sock])


if __name__ == "__main__":
    main()
