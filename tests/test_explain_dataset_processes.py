"""`hf-seqinterp explain-dataset` as real processes: two processes under torchrun (gloo on CPU) give
the single-process dataset; a run killed with SIGKILL and rerun gives it too, without recomputing
the shards that were finished. Slow: every case launches fresh Python processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import psutil
import pytest
from test_explain_dataset import assert_same_explanations
from tiny_models import random_texts, save_tiny_model

import hf_seqinterp as hsi
from hf_seqinterp.shards import ShardStore

pytestmark = pytest.mark.slow

N_TEXTS = 160
SHARD_SIZE = 4


def make_inputs(root, n_texts: int, seed: int):
    """(root, data file): a saved tiny model under root/model and a TSV of `n_texts` labelled texts."""
    save_tiny_model(root / "model")
    data = root / "data.tsv"
    texts = list(dict.fromkeys(random_texts(2 * n_texts, seed=seed, max_words=30)))[:n_texts]  # distinct texts
    data.write_text("sentence\tlabel\n" + "".join(f"{t}\t{i % 3}\n" for i, t in enumerate(texts)), encoding="utf-8")
    return root, data


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    return make_inputs(tmp_path_factory.mktemp("processes"), N_TEXTS, seed=11)


def command(inputs, output_dir, processes: int) -> list[str]:
    root, data = inputs
    launcher = [sys.executable, "-m", "hf_seqinterp.cli"]
    if processes > 1:
        launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}",
                    "-m", "hf_seqinterp.cli"]
    return [
        *launcher, "explain-dataset", str(data), "--output-dir", str(output_dir), "--model", str(root / "model"),
        "--method", "gradient_x_input", "--method", "integrated_gradients", "-p", "integrated_gradients.n_steps=64",
        "--label-column", "label", "--shard-size", str(SHARD_SIZE), "--no-progress",
    ]


def environment() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}


def launch(args: list[str]) -> subprocess.CompletedProcess:
    proc = subprocess.run(args, capture_output=True, text=True, env=environment(), timeout=480)
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stderr[-4000:]}"
    return proc


def assert_identical(got_dir, expected_dir):
    got, expected = hsi.load_explanations(got_dir), hsi.load_explanations(expected_dir)
    assert len(got) == 2 * N_TEXTS
    # within 1e-6, relative: the tiny model's attributions are ~1e-5, an absolute 1e-6 would be lax
    assert_same_explanations(got, expected, atol=1e-9, rtol=1e-6)


@pytest.fixture(scope="module")
def single(inputs, tmp_path_factory):
    out = tmp_path_factory.mktemp("single")
    launch(command(inputs, out, 1))
    return out


def test_two_processes_give_the_single_process_dataset(inputs, single, tmp_path):
    proc = launch(command(inputs, tmp_path, 2))
    logs = ShardStore(tmp_path).read_logs()
    assert [(log.rank, log.world_size) for log in logs] == [(0, 2), (1, 2)]
    assert all(log.shards_computed > 0 for log in logs)  # both processes really worked
    assert sum(log.rows_computed for log in logs) == N_TEXTS
    assert "rank 1 wrote shard-" in proc.stderr and "rank 0 wrote shard-" in proc.stderr
    assert_identical(tmp_path, single)


def test_shards_of_one_process_are_reused_by_two(inputs, single):
    launch(command(inputs, single, 2))
    logs = ShardStore(single).read_logs()
    assert [(log.shards_computed, log.shards_reused) for log in logs] == [(0, N_TEXTS // SHARD_SIZE)] * 2


def test_sigkill_then_rerun_finishes_without_recomputing(inputs, single, tmp_path):
    total = N_TEXTS // SHARD_SIZE
    store = ShardStore(tmp_path)
    proc = subprocess.Popen(command(inputs, tmp_path, 2), env=environment(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while len(store.shards()) < 3 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.01)
    # torchrun starts each worker in a session of its own: kill the launcher and every worker
    tree = [psutil.Process(proc.pid), *psutil.Process(proc.pid).children(recursive=True)]
    assert len(tree) >= 3, "torchrun and its two workers"
    for process in tree:
        process.send_signal(signal.SIGKILL)
    psutil.wait_procs(tree, timeout=30)
    proc.wait()
    finished = store.shards()
    assert 3 <= len(finished) < total, f"{len(finished)} of {total} shards were done when the run was killed"
    mtimes = {key: path.stat().st_mtime_ns for key, path in finished.items()}

    launch(command(inputs, tmp_path, 2))

    assert {key: store.shards()[key].stat().st_mtime_ns for key in mtimes} == mtimes
    logs = store.read_logs()
    assert all(log.shards_reused == len(finished) for log in logs)
    assert sum(log.shards_computed for log in logs) == total - len(finished)
    assert not list(tmp_path.glob(".tmp-*"))
    assert_identical(tmp_path, single)
