"""explain_dataset throughput: examples/s for gradient×input over SST-2 dev, 1 and 2 processes.

    python benchmarks/explain_dataset.py [--n 872] [--processes 1 2] [--threads 1] [--shard-size 128]

Model: ../shared/models/minilm-sst2; data: the first N SST-2 dev sentences (872 = the size of the
GLUE dev set). Each configuration runs as fresh processes (`python` for one, `torchrun --standalone`
for more) with OMP_NUM_THREADS=--threads each, on GPUs when Accelerate finds them (one process per
GPU; process counts above the GPU count are skipped). The time is `explain_dataset` on the main
process, from the call to the merged dataset (process start and model loading excluded, one warm-up
batch before). Shard writing time comes from the run logs (logs/rank-*.json), as a fraction of the
processes' working time; "merge" is what the main process spends after its last shard (waiting for
the others, then merging the Parquet shards into one dataset).

In the same run, one process (same threads) also times the pass-count floor — one forward and one
backward per length-sorted batch of the whole set, nothing else — and `hf_seqinterp.explain` on
the whole list in memory (no shards, no Accelerate), so the table shows what the dataset machinery
costs on top of the method.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from common import REPO, load_minilm, machine, markdown_table, setup_torch, sst2_dev_sentences, timed
from gradients import gxi_floor

import hf_seqinterp as hsi
from hf_seqinterp.shards import ShardStore

METHOD = "gradient_x_input"


def worker(config: dict) -> None:
    """One process of a configuration: explain the sentences into config["out"], time it on rank 0."""
    setup_torch(config["threads"])
    adapter = load_minilm()
    texts = sst2_dev_sentences(config["n"])
    hsi.explain(texts[:8], adapter, method=METHOD)  # warm-up
    start = time.perf_counter()
    result = hsi.explain_dataset(
        adapter, texts, METHOD, output_dir=config["out"], batch_size=config["batch_size"],
        shard_size=config["shard_size"], progress=False,
    )
    seconds = time.perf_counter() - start
    if int(os.environ.get("RANK", "0")) == 0:
        bench = {"seconds": seconds, "rows": len(result), "device": str(adapter.device)}
        Path(config["out"], "bench.json").write_text(json.dumps(bench))


def run_configuration(args: argparse.Namespace, processes: int, output_dir: Path) -> dict:
    # the worker's settings travel as one JSON argument: torchrun would take "--n" for one of its options
    config = {"out": str(output_dir), "n": args.n, "threads": args.threads, "shard_size": args.shard_size,
              "batch_size": args.batch_size}
    script = [str(Path(__file__).resolve()), "--worker", json.dumps(config)]
    launcher = [sys.executable]
    if processes > 1:
        launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}"]
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "TOKENIZERS_PARALLELISM": "false", "HF_HUB_OFFLINE": "1",
           "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([*launcher, *script], env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"{processes} process(es) failed:\n{proc.stderr[-3000:]}")
    bench = json.loads((output_dir / "bench.json").read_text())
    logs = ShardStore(output_dir).read_logs()
    working = sum(log.wall_s for log in logs)
    return {
        "seconds": bench["seconds"],
        "device": bench["device"],
        "write_fraction": sum(log.write_s for log in logs) / working,
        "merge": bench["seconds"] - max(log.wall_s for log in logs),
        "shards": sum(log.shards_computed for log in logs),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=872, help="SST-2 dev sentences")
    parser.add_argument("--processes", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--threads", type=int, default=1, help="torch threads per process")
    parser.add_argument("--shard-size", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=1, help="runs per configuration (the best is kept)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(json.loads(args.worker))

    gpus = torch.cuda.device_count()
    setup_torch(args.threads)
    adapter = load_minilm()
    if gpus:
        adapter.model.to("cuda")
    texts = sst2_dev_sentences(args.n)
    encodings = adapter.encode(texts)
    hsi.explain(texts[:8], adapter, method=METHOD)  # warm-up
    with adapter.evaluating():
        floor = timed(lambda: gxi_floor(adapter, encodings, args.batch_size), repeats=args.repeats)
        plain = timed(lambda: hsi.explain(texts, adapter, method=METHOD, batch_size=args.batch_size, progress=False),
                      repeats=args.repeats)
    rows = [
        ["floor: 1 fwd + 1 bwd per batch", 1, f"{len(texts) / floor:.1f}", f"{floor:.2f}", "1.00", "—", "—"],
        ["hf_seqinterp.explain (in memory)", 1, f"{len(texts) / plain:.1f}", f"{plain:.2f}", f"{plain / floor:.2f}", "—", "—"],
    ]
    for processes in args.processes:
        if gpus and processes > gpus:
            print(f"skipping {processes} processes: only {gpus} GPU(s)", file=sys.stderr)
            continue
        best = None
        for _ in range(args.repeats):
            with tempfile.TemporaryDirectory(prefix="bench-explain-dataset-") as tmp:
                result = run_configuration(args, processes, Path(tmp))
            best = result if best is None or result["seconds"] < best["seconds"] else best
        rows.append([
            f"explain_dataset ({best['shards']} shards of {args.shard_size})", processes,
            f"{len(texts) / best['seconds']:.1f}", f"{best['seconds']:.2f}", f"{best['seconds'] / floor:.2f}",
            f"{100 * best['write_fraction']:.1f}%", f"{best['merge']:.2f}",
        ])
    device = f"{gpus} GPU(s): {torch.cuda.get_device_name(0)}" if gpus else "CPU"
    print(f"minilm-sst2, {METHOD}, {len(texts)} SST-2 dev sentences, batch {args.batch_size}, {device}, "
          f"{args.threads} thread(s) per process; {machine()}\n")
    print(markdown_table(
        ["run", "processes", "examples/s", "seconds", "× floor (1 process)", "shard writing", "merge (s)"], rows,
    ))


if __name__ == "__main__":
    main()
