"""`hf-seqinterp top-activations` as real processes: two processes under torchrun give the
single-process result, and a run killed with SIGKILL and rerun gives it too, reusing the shards
finished before the kill. Slow: every case launches fresh Python processes."""

from __future__ import annotations

import json
import signal
import subprocess
import time

import pytest
from test_explain_dataset_processes import environment, launch, make_inputs

from hf_seqinterp.shards import ShardStore

pytestmark = pytest.mark.slow

N_TEXTS = 160


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    return make_inputs(tmp_path_factory.mktemp("network"), N_TEXTS, seed=5)


def command(inputs, output_dir, processes: int, shard_size: int = 8) -> list[str]:
    import sys

    root, data = inputs
    launcher = [sys.executable, "-m", "hf_seqinterp.cli"]
    if processes > 1:
        launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}",
                    "-m", "hf_seqinterp.cli"]
    return [*launcher, "top-activations", str(data), "--output-dir", str(output_dir), "--model", str(root / "model"),
            "--units", "ffn", "--units", "head", "--units", "residual", "-k", "5", "--shard-size", str(shard_size),
            "--batch-size", "4", "--no-progress"]


def result(folder) -> list:
    return json.loads((folder / "top_activations.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def single(inputs, tmp_path_factory):
    out = tmp_path_factory.mktemp("single")
    launch(command(inputs, out, 1))
    return out


def test_two_processes_give_the_single_process_result(inputs, single, tmp_path):
    launch(command(inputs, tmp_path, 2))
    assert result(tmp_path) == result(single)
    assert len(result(single)) == 2 * (37 + 4 + 32) * 5  # 2 blocks x (37 FFN neurons + 4 heads + 32 dimensions) x k


def test_a_killed_run_resumes_to_the_same_result(inputs, single, tmp_path):
    proc = subprocess.Popen(command(inputs, tmp_path, 1, shard_size=8), env=environment(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    store = ShardStore(tmp_path)
    deadline = time.monotonic() + 300
    while len(store.shards()) < 3 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    before = {p.name: p.stat().st_mtime_ns for p in store.shards().values()}
    assert 0 < len(before) < N_TEXTS // 8, "the kill came before the first shard or after the last"
    launch(command(inputs, tmp_path, 1, shard_size=8))
    after = {p.name: p.stat().st_mtime_ns for p in store.shards().values()}
    assert all(after[name] == mtime for name, mtime in before.items())  # finished shards were not recomputed
    assert result(tmp_path) == result(single)
