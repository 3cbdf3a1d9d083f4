"""Thread safety: N threads explaining with one model, every registered method, give exactly the
sequential results, and the user's model ends in the state it started in (train mode, SDPA
attention, no pad_token_id on a decoder config). Without the per-model lock, attention rollout,
contextual decomposition and LIME drift and the model is left in eager attention / eval mode."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch
from tiny_models import random_texts, tiny_model

import hf_seqinterp as hsi
from hf_seqinterp.concurrency import model_lock
from hf_seqinterp.explainers import applicable_explainers

THREADS = 3
TEXTS = random_texts(2, seed=21, min_words=4, max_words=12)
#: cheap settings so that every method runs in well under a second on the tiny models
PARAMS = {
    "integrated_gradients": {"n_steps": 8},
    "lime": {"n_samples": 24},
    "kernel_shap": {"n_samples": 24},
    "shapley_sampling": {"n_samples": 3},
}


def state(model) -> tuple:
    return (model.training, model.config._attn_implementation, model.config.pad_token_id,
            sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules()))


@pytest.mark.parametrize("model_type", ["bert", pytest.param("gpt2", marks=pytest.mark.slow)])
def test_threads_times_every_method_equal_sequential_and_restore_the_model(model_type):
    model, tokenizer = tiny_model(model_type)
    model.train()  # the user's model is in training mode: explanations must switch dropout off and back
    try:
        check_threads(hsi.ModelAdapter(model, tokenizer))
    finally:
        model.eval()  # tiny_model is cached: other tests expect it in eval mode


def check_threads(adapter: hsi.ModelAdapter) -> None:
    model = adapter.model
    explainers, skipped = applicable_explainers(adapter, params=PARAMS)
    assert set(explainers) | set(skipped) == set(hsi.list_methods())
    assert set(skipped) <= {"rationale", "contextual_decomposition", "attnlrp"}  # a generator / rule tables
    before = state(model)

    expected = {name: e.explain(TEXTS, batch_size=2) for name, e in explainers.items()}
    assert state(model) == before

    results: dict[tuple[int, str], list] = {}
    errors: list[BaseException] = []
    start = threading.Barrier(THREADS)

    def work(thread: int) -> None:
        order = list(explainers)[thread:] + list(explainers)[:thread]  # each thread its own order
        start.wait()
        try:
            for name in order:
                results[thread, name] = explainers[name].explain(TEXTS, batch_size=2)
        except BaseException as err:  # noqa: BLE001 - collected and re-raised in the main thread
            errors.append(err)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not errors, errors
    assert len(results) == THREADS * len(explainers)
    for (thread, name), expls in results.items():
        for got, want in zip(expls, expected[name]):
            np.testing.assert_allclose(got.attributions, want.attributions, rtol=0, atol=1e-6,
                                       err_msg=f"{name}, thread {thread}")
            np.testing.assert_allclose(got.probabilities, want.probabilities, rtol=0, atol=1e-6)
    assert state(model) == before  # still training, same attention, same pad id, no hooks left


def test_the_lock_is_per_model_reentrant_and_dropped_with_the_model():
    import gc

    a, b = torch.nn.Linear(2, 2), torch.nn.Linear(2, 2)
    lock = model_lock(a)
    assert model_lock(a) is lock and model_lock(b) is not lock
    with lock, model_lock(a):  # re-entrant: nested switches in one thread do not deadlock
        other = threading.Thread(target=lambda: model_lock(b).acquire(timeout=1) and model_lock(b).release())
        other.start()
        other.join(timeout=5)
        assert not other.is_alive()  # another model is not blocked
    from hf_seqinterp import concurrency

    gc.collect()  # models of earlier tests that are garbage already drop their locks now, not below
    n = len(concurrency._LOCKS)
    del a
    gc.collect()
    assert len(concurrency._LOCKS) == n - 1
