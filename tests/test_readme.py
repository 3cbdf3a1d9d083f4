"""The README's quickstart commands are what CI runs."""

from __future__ import annotations

import re

from conftest import REPO


def quickstart_commands() -> list[str]:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Quickstart", 1)[1]
    block = re.search(r"```bash\n(.*?)```", section, re.DOTALL).group(1)
    return [line for line in block.splitlines() if line.strip() and not line.startswith("#")]


def test_quickstart_is_two_commands_and_ci_runs_them_verbatim():
    commands = quickstart_commands()
    assert len(commands) == 2
    setup_and_explain, tests = commands
    assert setup_and_explain.index("pip install torch==2.13.0") < setup_and_explain.index("pip install -e .")
    assert "hf-seqinterp explain" in setup_and_explain
    assert tests.endswith("python -m pytest") and "torch==2.13.0" in tests
    ci = (REPO / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    for command in commands:
        assert command in ci, f".ci/run does not run the README command: {command}"
