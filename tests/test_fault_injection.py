"""Fault injection on real processes (slow): 20 random SIGKILLs during a 2-process `explain-dataset`
run (the whole torchrun tree, or one worker), then a clean finish whose rows equal an uninterrupted
run, none lost, none duplicated, no shard set aside; and a second run with `--overwrite` started
while one is live is refused without touching it."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time

import psutil
import pytest
import torch
from test_explain_dataset import assert_same_explanations
from test_explain_dataset_processes import SHARD_SIZE, command, environment, launch, make_inputs

import hf_seqinterp as hsi
from hf_seqinterp.shards import REJECTED, OutputLock, ShardStore

pytestmark = pytest.mark.slow

N_TEXTS = 960
N_STEPS = 256
#: 240 shards of 4 texts, 256 steps: enough work that 20 kills (each at most 6 s after its launch) leave
#: shards to finish on a quiet, fast machine too
KILLS = 20
#: kills at a random moment 0.5-6 s after the launch (start-up or claiming the folder: cheap); the
#: others at a random moment within 0.5 s after the run claimed the folder (verifying shards, writing
#: the manifest, explaining, writing or renaming a shard)
EARLY_KILLS = 14
#: runs the CLI once a file appears: the second run of the overwrite test starts without import delay
GATED = (
    "import pathlib, sys, time\nfrom hf_seqinterp.cli import main\n"
    "import hf_seqinterp.adapter, hf_seqinterp.distributed, hf_seqinterp.explainers  # the CLI imports lazily\n"
    "go = pathlib.Path(sys.argv[1])\n"
    "while not go.exists():\n    time.sleep(0.01)\nsys.exit(main(sys.argv[2:]))"
)


def run_command(inputs, output_dir, processes: int, n_steps: int = N_STEPS) -> list[str]:
    """`test_explain_dataset_processes.command` with `n_steps` integration steps."""
    args = command(inputs, output_dir, processes)
    args[args.index("integrated_gradients.n_steps=64")] = f"integrated_gradients.n_steps={n_steps}"
    return args


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    return make_inputs(tmp_path_factory.mktemp("faults"), N_TEXTS, seed=12)


@pytest.fixture(scope="module")
def uninterrupted(inputs, tmp_path_factory):
    """The same run in this process (what `command` asks for), never interrupted."""
    root, data = inputs
    out = tmp_path_factory.mktemp("uninterrupted")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the launched processes (OMP_NUM_THREADS=1): the same float reductions
    try:
        _explain(root, data, out)
    finally:
        torch.set_num_threads(threads)
    return hsi.load_explanations(out)


def _explain(root, data, out) -> None:
    hsi.explain_dataset(
        hsi.ModelAdapter.from_pretrained(str(root / "model")), str(data),
        {"gradient_x_input": {}, "integrated_gradients": {"n_steps": N_STEPS}}, output_dir=out, label_column="label",
        shard_size=SHARD_SIZE, progress=False,
    )


def assert_complete(out, expected):
    got = hsi.load_explanations(out)  # verifies every shard's checksum
    keys = [(e.text, e.method) for e in got]
    assert len(keys) == len(set(keys)) == 2 * N_TEXTS, "rows lost or duplicated"
    assert_same_explanations(got, expected, atol=1e-9, rtol=1e-6)


def kill_tree(proc: subprocess.Popen, rng: random.Random) -> str:
    """SIGKILL the launcher and both workers, or one worker (its launcher then stops the other)."""
    tree = [psutil.Process(proc.pid), *psutil.Process(proc.pid).children(recursive=True)]
    workers = tree[1:]
    if workers and rng.random() < 0.5:
        rng.choice(workers).send_signal(signal.SIGKILL)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            pass
        how = "one worker"
    else:
        how = "whole tree"
    for process in tree:
        if process.is_running():
            process.send_signal(signal.SIGKILL)
    psutil.wait_procs(tree, timeout=30)
    proc.wait()
    return how


def test_twenty_sigkills_then_a_clean_finish(inputs, uninterrupted, tmp_path):
    rng = random.Random(2026)
    store = ShardStore(tmp_path)
    total = N_TEXTS // SHARD_SIZE
    started = time.monotonic()
    kills = []
    for trial in range(KILLS):
        before = len(store.shards())
        owner = (OutputLock(tmp_path).owner() or {}).get("run_id")
        proc = subprocess.Popen(run_command(inputs, tmp_path, 2), env=environment(),
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        early = trial < EARLY_KILLS
        deadline = time.monotonic() + (rng.uniform(0.5, 6.0) if early else 90.0)
        claimed = False
        while time.monotonic() < deadline and proc.poll() is None:
            if not early and not claimed and (OutputLock(tmp_path).owner() or {}).get("run_id") != owner:
                claimed = True  # this run owns the folder now
                deadline = time.monotonic() + rng.uniform(0.0, 0.5)
            time.sleep(0.01)
        assert proc.poll() is None, f"trial {trial}: the run ended (exit {proc.returncode}) before it was killed"
        kills.append((kill_tree(proc, rng), len(store.shards()) - before))
    assert len(kills) == KILLS
    done_before_finish = len(store.shards())
    assert done_before_finish < total, "the kills left nothing to do; use more rows"
    OutputLock(tmp_path).acquire().release()  # every killed owner released the folder

    launch(run_command(inputs, tmp_path, 2))

    assert_complete(tmp_path, uninterrupted)
    assert not (tmp_path / REJECTED).exists(), "an interrupted write left a shard that failed its checksum"
    assert not list(tmp_path.glob(".tmp-*"))
    progressed = sum(1 for _, new in kills if new)
    print(f"\n{KILLS} SIGKILLs ({sum(how == 'one worker' for how, _ in kills)} of one worker), {progressed} after "
          f"new shards; {done_before_finish}/{total} shards done before the clean finish; "
          f"{time.monotonic() - started:.0f} s")


def test_overwrite_cannot_take_the_folder_from_a_live_run(inputs, uninterrupted, tmp_path):
    go = tmp_path.parent / f"{tmp_path.name}-go"
    other = [sys.executable, "-c", GATED, str(go), *run_command(inputs, tmp_path, 1, n_steps=4)[3:], "--overwrite"]
    second = subprocess.Popen(other, env=environment(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    live = subprocess.Popen(run_command(inputs, tmp_path, 1), env=environment(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not ShardStore(tmp_path).shards() and time.monotonic() < deadline and live.poll() is None:
        time.sleep(0.02)
    go.touch()  # the second run starts now, while the first is explaining
    _, err = second.communicate(timeout=120)
    refused = subprocess.CompletedProcess(other, second.returncode, "", err)
    assert live.poll() is None, "the live run finished before the second one was refused; use more rows"
    assert refused.returncode == 2 and f"{tmp_path} is in use by run" in refused.stderr
    assert live.wait(timeout=300) == 0, live.stderr.read()[-3000:]
    assert_complete(tmp_path, uninterrupted)  # the live run's parameters, all of its rows, none of the other's
