"""AttnLRP: wall time against one plain forward + backward over the same batches.

    python benchmarks/attnlrp.py [--n 256] [--batch-size 32] [--threads 1] [--rounds 3]

Model: ../shared/models/minilm-sst2; data: the first N SST-2 dev sentences. The floor is what a
gradient explanation needs at least: per length-sorted batch one forward (the model's own SDPA
attention) and one backward to the input embeddings, with nothing else (no tokenising, no targets,
no results); `gradient_x_input` (word embeddings) is the explainer that makes exactly those passes.
AttnLRP makes the same passes under its rules (eager attention, hooks on norms and activations).
Phases alternate for `--rounds` rounds and each keeps its best time, so a load change on a shared
machine hits all of them.
"""

from __future__ import annotations

import argparse

from common import load_minilm, machine, markdown_table, setup_torch, sst2_dev_sentences, timed
from gradients import gxi_floor

import hf_seqinterp as hsi


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=256, help="SST-2 dev sentences")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    setup_torch(args.threads)

    adapter = load_minilm()
    texts = sst2_dev_sentences(args.n)
    encodings = adapter.encode(texts)
    gxi = hsi.get_explainer("gradient_x_input").create(adapter, at="word_embeddings")
    lrp = hsi.get_explainer("attnlrp").create(adapter)
    cp = hsi.get_explainer("attnlrp").create(adapter, attention_rule="cp")
    phases = {
        "floor: forward + backward": lambda: gxi_floor(adapter, encodings, args.batch_size),
        "gradient_x_input": lambda: gxi.explain(texts, batch_size=args.batch_size, progress=False),
        "attnlrp": lambda: lrp.explain(texts, batch_size=args.batch_size, progress=False),
        "attnlrp, attention_rule='cp'": lambda: cp.explain(texts, batch_size=args.batch_size, progress=False),
    }
    lrp.explain(texts[:8])  # warm-up
    best = dict.fromkeys(phases, float("inf"))
    with adapter.evaluating():
        for _ in range(args.rounds):
            for name, run in phases.items():
                best[name] = min(best[name], timed(run))
    floor = best["floor: forward + backward"]
    print(f"minilm-sst2, {len(texts)} SST-2 dev sentences, batch size {args.batch_size}, {machine()}\n")
    print(markdown_table(["run", "time (s)", "/ floor"], [[name, t, t / floor] for name, t in best.items()]))


if __name__ == "__main__":
    main()
