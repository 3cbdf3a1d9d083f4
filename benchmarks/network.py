"""Top-20 contexts of every FFN neuron of one layer of the bundled model over SST-2 train: time and
peak RSS at two dataset sizes (memory must not grow with the rows), and on a subset the result of
1 process == 2 processes (torchrun) == a run killed with SIGKILL and resumed.

    python benchmarks/network.py --sizes 10000 60614 --check-rows 2000

Each measured run is a fresh process (`--child`), which reports its own peak RSS (ru_maxrss).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import SHARED, machine

SST2_TRAIN = SHARED / "data" / "sst2" / "train.tsv"


def child(rows: int, layer: int, k: int, output_dir: str, batch_size: int, threads: int) -> None:
    import torch

    from hf_seqinterp import ModelAdapter
    from hf_seqinterp.data import load_text_dataset
    from hf_seqinterp.network import top_activations

    torch.set_num_threads(threads)
    data = load_text_dataset(SST2_TRAIN).select(range(rows))
    adapter = ModelAdapter.from_pretrained()
    started = time.perf_counter()
    result = top_activations(adapter, data, units="ffn", layers=layer, k=k, output_dir=output_dir,
                             batch_size=batch_size, progress=False)
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux
    print(json.dumps({"rows": rows, "seconds": seconds, "peak_rss_mb": peak, "contexts": len(result)}))


def cli(data: Path, out: Path, layer: int, k: int, batch_size: int, processes: int = 1) -> list[str]:
    launcher = [sys.executable, "-m", "hf_seqinterp.cli"]
    if processes > 1:
        launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}",
                    "-m", "hf_seqinterp.cli"]
    return [*launcher, "top-activations", str(data), "--output-dir", str(out), "--units", "ffn", "--layer", str(layer),
            "-k", str(k), "--batch-size", str(batch_size), "--shard-size", "256", "--no-progress"]


def equality_check(rows: int, layer: int, k: int, batch_size: int, env: dict[str, str]) -> dict[str, object]:
    """1 process vs 2 processes vs a SIGKILLed and resumed run on the first `rows` rows."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        data = root / "data.tsv"
        lines = SST2_TRAIN.read_text(encoding="utf-8").splitlines()
        data.write_text("\n".join(lines[: rows + 1]) + "\n", encoding="utf-8")
        results = {}
        for name, processes in (("one", 1), ("two", 2)):
            subprocess.run(cli(data, root / name, layer, k, batch_size, processes), env=env, check=True,
                           capture_output=True)
            results[name] = (root / name / "top_activations.json").read_text(encoding="utf-8")
        killed = subprocess.Popen(cli(data, root / "killed", layer, k, batch_size), env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        while len(list((root / "killed").glob("shard-*.parquet"))) < 2 and killed.poll() is None:
            time.sleep(0.1)
        killed.send_signal(signal.SIGKILL)
        killed.wait()
        before = len(list((root / "killed").glob("shard-*.parquet")))
        subprocess.run(cli(data, root / "killed", layer, k, batch_size), env=env, check=True, capture_output=True)
        results["resumed"] = (root / "killed" / "top_activations.json").read_text(encoding="utf-8")
        total = len(list((root / "killed").glob("shard-*.parquet")))
        return {
            "rows": rows, "shards": total, "shards_before_kill": before,
            "two_processes_equal": results["two"] == results["one"],
            "resumed_equal": results["resumed"] == results["one"],
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10000, 60614])
    parser.add_argument("--check-rows", type=int, default=2000,
                        help="rows of the 1 vs 2 processes / kill check (0: skip)")
    parser.add_argument("--layer", type=int, default=3)
    parser.add_argument("-k", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--output-dir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if not SST2_TRAIN.exists():
        raise SystemExit(f"SST-2 train not found at {SST2_TRAIN}")
    if args.child:
        child(args.child, args.layer, args.k, args.output_dir, args.batch_size, args.threads)
        return
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    print(machine())
    print("| rows | seconds | texts/s | peak RSS (MiB) | contexts |\n|---:|---:|---:|---:|---:|")
    for size in args.sizes:
        with tempfile.TemporaryDirectory() as out:
            proc = subprocess.run(
                [sys.executable, __file__, "--child", str(size), "--output-dir", out, "--layer", str(args.layer),
                 "-k", str(args.k), "--batch-size", str(args.batch_size), "--threads", str(args.threads)],
                env=env, check=True, capture_output=True, text=True,
            )
        r = json.loads(proc.stdout.strip().splitlines()[-1])
        print(f"| {r['rows']:,} | {r['seconds']:.0f} | {r['rows'] / r['seconds']:.0f} | {r['peak_rss_mb']:.0f} "
              f"| {r['contexts']:,} |", flush=True)
    if args.check_rows:
        print(json.dumps(equality_check(args.check_rows, args.layer, args.k, args.batch_size, env)))


if __name__ == "__main__":
    main()
