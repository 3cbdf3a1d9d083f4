"""One torch thread for the rationale tests (imported by each rationale test module: a conftest.py here
would shadow tests/conftest.py for `from conftest import ...`). Their models are tiny (hidden 8-32), so intra-op threads
only add synchronisation, which on a loaded machine made single steps up to 100x slower."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
