"""Rewrite `hf_seqinterp/method_table.py` from the live registries: `python -m hf_seqinterp.explainers`."""

from __future__ import annotations

import pprint
import shutil
import subprocess
from pathlib import Path

from ..timeseries.base import series_method_table
from . import DEFAULT_METHOD
from .base import method_table

TABLE = Path(__file__).resolve().parent.parent / "method_table.py"
HEADER = '''"""The registered explanation methods as plain data, so the command line can list them, show their
parameters and catch typos without importing torch.

Generated from the registry by `python -m hf_seqinterp.explainers`; tests/test_cli_fast.py checks that it
equals the live registry. Do not edit by hand.
"""

# What `explain()`, `model.explain()`, the pipeline and the CLI use when no method is named: integrated
# gradients, whose token scores add up to f(x) - f(baseline) (gradient x input is a first-order estimate).
'''


def table_source() -> str:
    """The text of method_table.py for the current registry."""
    methods = pprint.pformat(method_table(), width=108, sort_dicts=False)
    series = pprint.pformat(series_method_table(), width=108, sort_dicts=False)
    return (
        f"{HEADER}DEFAULT_METHOD = {DEFAULT_METHOD!r}\n\n"
        f"# name -> one-line summary and parameter -> repr of its default\nMETHODS: dict[str, dict] = {methods}\n\n"
        f"# the series methods (hf_seqinterp.timeseries), the same way\nSERIES_METHODS: dict[str, dict] = {series}\n"
    )


if __name__ == "__main__":
    TABLE.write_text(table_source(), encoding="utf-8")
    if shutil.which("ruff"):
        subprocess.run(["ruff", "format", "--quiet", str(TABLE)], check=False)
    print(f"wrote {TABLE}")
