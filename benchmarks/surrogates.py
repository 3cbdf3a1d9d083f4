"""Model approximation on SST-2: the surrogates' held-out fidelity, and corpus-level CD phrase scores.

    python benchmarks/surrogates.py [--n N] [--test-size 0.25] [--seed 0] [--tree-depth 3] [--n-estimators 100]
                                    [--phrase-texts 300] [--threads 1]

Model: ../shared/models/minilm-sst2; data: ../shared/data/sst2/dev.tsv (sentence<TAB>label).
- Surrogates: `fit_surrogates` on the first N dev sentences (all by default) with their gold labels;
  a seeded `--test-size` fraction is held out, and fidelity (agreement with the model's predicted
  class) and accuracy (against gold) are measured there only. The surrogates are then also scored
  on GLUE SST-2 validation (872 full sentences, another length distribution), against the model's
  predictions there.
- Phrase scores: `phrase_scores` over the first --phrase-texts fitting sentences (n-grams n ≤ 3,
  seen at least 3 times), the top phrases per class; --phrase-texts 0 skips them.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from common import SHARED, SST2_DEV, load_minilm, machine, markdown_table, setup_torch

from hf_seqinterp import fit_surrogates, phrase_scores
from hf_seqinterp.surrogate import model_logits

SST2_VALIDATION = SHARED / "data" / "sst2" / "validation.tsv"


def read_tsv(path, n: int | None = None) -> tuple[list[str], list[int]]:
    if not path.exists():
        raise SystemExit(f"{path} not found")
    rows = [line.rsplit("\t", 1) for line in path.read_text(encoding="utf-8").splitlines()[1:] if line.strip()]
    rows = rows[:n] if n else rows
    return [text.strip() for text, _ in rows], [int(label) for _, label in rows]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=None, help="dev sentences to use (default: all)")
    parser.add_argument("--test-size", type=float, default=0.25)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tree-depth", type=int, default=3)
    parser.add_argument("--n-estimators", type=int, default=100)
    parser.add_argument("--phrase-texts", type=int, default=300)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    setup_torch(args.threads)
    adapter = load_minilm()
    texts, gold = read_tsv(SST2_DEV, args.n)

    start = time.perf_counter()
    report = fit_surrogates(
        adapter, texts, gold, test_size=args.test_size, seed=args.seed, tree_depth=args.tree_depth,
        n_estimators=args.n_estimators,
    )
    seconds = time.perf_counter() - start
    print(f"## Surrogates of minilm-sst2 on SST-2 dev ({machine()}; {seconds:.0f} s with the model's forwards)\n")
    print(report.to_markdown(top_k=10))

    val_texts, val_gold = read_tsv(SST2_VALIDATION)
    predicted = model_logits(adapter, val_texts).argmax(1)
    rows = [["model", "—", f"{np.mean(predicted == np.array(val_gold)):.3f}"]]
    for kind in report.surrogates:
        guess = report.predict(val_texts, kind)
        rows.append([kind, f"{np.mean(guess == predicted):.3f}", f"{np.mean(guess == np.array(val_gold)):.3f}"])
    print(f"\n### The same surrogates on SST-2 validation ({len(val_texts)} sentences)\n")
    print(markdown_table(["predictor", "fidelity", "accuracy"], rows))

    if args.phrase_texts == 0:
        return
    fitting = [texts[i] for i in report.fit_indices[: args.phrase_texts]]
    start = time.perf_counter()
    scores = phrase_scores(adapter, fitting, max_n=3, min_count=3)
    seconds = time.perf_counter() - start
    print(f"\n### CD phrase scores over {len(fitting)} fitting sentences ({len(scores.phrases)} phrases seen ≥ 3 times, "
          f"{seconds:.0f} s)\n")
    print(scores.to_markdown(k=10))


if __name__ == "__main__":
    main()
