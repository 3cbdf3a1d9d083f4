"""One re-entrant lock per model, so that threads sharing a model get correct explanations.

Explaining changes a model's state for the duration of a call: eval mode (dropout off), eager
attention (to record attention weights), `config.pad_token_id` (decoder heads), forward hooks.
Two threads doing this with one model at once would see each other's switches: wrong attributions
with no error, and a model left in eager attention or eval mode. Every call that switches such
state therefore holds `model_lock(model)`: calls on one model run one after another (the lock is
re-entrant, so nested switches in one thread do not deadlock), calls on different models run in
parallel, and the model's state is restored before the lock is released.
"""

from __future__ import annotations

import contextlib
import threading
import weakref
from collections.abc import Iterator
from typing import Any

_LOCKS: weakref.WeakKeyDictionary[Any, threading.RLock] = weakref.WeakKeyDictionary()
_GUARD = threading.Lock()


def model_lock(model: Any) -> threading.RLock:
    """The re-entrant lock of `model` (created on first use, dropped with the model)."""
    with _GUARD:
        lock = _LOCKS.get(model)
        if lock is None:
            lock = _LOCKS[model] = threading.RLock()
        return lock


@contextlib.contextmanager
def evaluation_mode(model: Any) -> Iterator[None]:
    """`model` in eval mode (dropout off; BatchNorm on running statistics) under its lock, for the
    duration of the block; every module's train/eval mode is restored, also after an error (a model
    in train mode may hold modules in eval mode, as a PEFT wrapper around a frozen model)."""
    with model_lock(model):
        modes = [(module, module.training) for module in model.modules()]
        model.eval()
        try:
            yield
        finally:
            for module, training in modes:
                module.training = training
