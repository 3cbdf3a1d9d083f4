"""Headless Chromium for the HTML tests and the documentation screenshots
(`docs/images/make_screenshots.py`): load a local page, read back what a probe script found, or save
a PNG of it. `--force-dark-mode` makes the page see `prefers-color-scheme: dark`."""

from __future__ import annotations

import html as html_lib
import json
import re
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

CHROMIUM = next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None)
FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-quic",
    "--hide-scrollbars",
)


def run_chromium(page: Path, profile: Path, *args: str, dark: bool = False) -> subprocess.CompletedProcess:
    """Chromium on the local file `page` with a throwaway profile; `args` say what to do with it."""
    if CHROMIUM is None:
        raise RuntimeError("no Chromium found (apt-get install chromium)")
    theme = ("--force-dark-mode",) if dark else ()
    return subprocess.run(
        [CHROMIUM, *FLAGS, *theme, f"--user-data-dir={profile}", *args, page.as_uri()],
        capture_output=True, text=True, timeout=120, check=False,
    )


def probe_page(page_html: str, probe: str, tmp_path: Path, *, dark: bool = False) -> list[dict]:
    """Render `page_html` with the `probe` script appended; the script writes JSON into <pre id="probe">."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    page = tmp_path / "probe.html"
    page.write_text(page_html.replace("</body>", probe + "</body>"), encoding="utf-8")
    proc = run_chromium(page, tmp_path / "profile", "--dump-dom", dark=dark)
    found = re.search(r'<pre id="probe">(.*?)</pre>', proc.stdout, re.DOTALL)
    assert found, f"Chromium returned no probe output (exit {proc.returncode}): {proc.stderr[-2000:]}"
    return json.loads(html_lib.unescape(found.group(1)))


def screenshot(page: Path, png: Path, size: Sequence[int], profile: Path, *, dark: bool = False) -> Path:
    """A PNG of the local page `page`, `size` = (width, height) CSS pixels."""
    proc = run_chromium(page, profile, f"--screenshot={png}", f"--window-size={size[0]},{size[1]}", dark=dark)
    if not png.exists():
        raise RuntimeError(f"Chromium wrote no screenshot (exit {proc.returncode}): {proc.stderr[-2000:]}")
    return png
