"""Train the bundled default sentiment model of hf_seqinterp (``hf_seqinterp/default_model``).

The default model is a small ``BertForSequenceClassification`` distilled from a fine-tuned
MiniLM SST-2 classifier (6 layers, hidden 384, based on sentence-transformers/all-MiniLM-L6-v2).
The recipe:

1. prunes the 30,522-token WordPiece vocabulary to the tokens that SST-2 train sentences use, the
   frequent tokens of the ERASER movie-review documents, every single-character token (plain and
   ``##`` form, so ordinary text never becomes ``[UNK]``) and the special tokens, and rewrites
   ``tokenizer.json`` with the re-indexed vocabulary;
2. builds the student from the teacher: the kept rows of the embedding matrix, the first
   ``--layers`` transformer layers with each feed-forward block pruned to its
   ``--intermediate-size`` largest-norm neurons, the pooler and the classifier;
3. distils on SST-2 train with ``alpha * KL(student/T || teacher/T) * T^2 + (1 - alpha) * CE(gold)``,
   using teacher logits computed once up front and length-bucketed batches;
4. stores the weights in float16 (config ``dtype`` float32, so loading gives float32 parameters),
   writes a model card and reports the accuracy of the saved model on SST-2 dev.

CPU time: the run that produced the bundled model took 32 minutes of wall time on a shared 2-core
machine with ``--threads 1`` (teacher logits for the training set about 11 minutes, distillation
about 17); runs on the same machine under heavier load took up to 45 minutes. On a busy machine
``--threads 1`` is several times faster than 2 threads. No GPU is needed. With the defaults the
folder is about 19 MB and dev accuracy about 90.6%. Nothing is written outside ``--output``.
Run from the repository root:

    HF_HUB_OFFLINE=1 python recipes/train_default_model.py --threads 1
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from tokenizers import Tokenizer
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
SIZE_BUDGET_BYTES = 20_000_000
SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
# Keys of the teacher's tokenizer_config.json that describe how it was saved, not the tokenizer.
TOKENIZER_CONFIG_DROP = ("is_local", "local_files_only", "max_length", "stride", "truncation_strategy")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--teacher", type=Path, default=REPO_ROOT / "../shared/models/minilm-sst2")
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=REPO_ROOT / "../shared/data/sst2",
        help="folder with SST-2 train.tsv and dev.tsv (sentence<TAB>label, header line)",
    )
    parser.add_argument(
        "--eraser-docs",
        type=Path,
        default=REPO_ROOT / "../shared/data/eraser_movies/docs",
        help="folder of ERASER movie-review documents, one review per file",
    )
    parser.add_argument(
        "--eraser-min-count",
        type=int,
        default=20,
        help="keep an ERASER token only if it occurs at least this often there",
    )
    parser.add_argument("--output", type=Path, default=REPO_ROOT / "hf_seqinterp/default_model")
    parser.add_argument("--layers", type=int, default=3, help="transformer layers kept from the teacher")
    parser.add_argument(
        "--intermediate-size",
        type=int,
        default=768,
        help="feed-forward neurons kept per layer (the teacher has 1536)",
    )
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--temperature", type=float, default=2.0)
    parser.add_argument("--alpha", type=float, default=0.7, help="weight of the distillation term")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2, help="CPU threads for torch")
    return parser.parse_args(argv)


def check_inputs(args: argparse.Namespace) -> None:
    """Fail early, with the path, when the teacher or the data are not where the arguments say."""
    required = [
        args.teacher / "config.json",
        args.teacher / "model.safetensors",
        args.teacher / "tokenizer.json",
        args.data_dir / "train.tsv",
        args.data_dir / "dev.tsv",
    ]
    missing = [str(path.resolve()) for path in required if not path.is_file()]
    if not args.eraser_docs.is_dir():
        missing.append(str(args.eraser_docs.resolve()))
    if missing:
        sys.exit("Missing inputs (see --teacher, --data-dir, --eraser-docs):\n  " + "\n  ".join(missing))


# ----------------------------------------------------------------------------- data


def read_sst2(path: Path) -> tuple[list[str], list[int]]:
    """Sentences and 0/1 labels of an SST-2 ``sentence<TAB>label`` file with a header line."""
    header, *lines = path.read_text(encoding="utf-8").splitlines()
    if header.split("\t") != ["sentence", "label"]:
        sys.exit(f"{path}: expected the header 'sentence<TAB>label', found {header!r}")
    rows = [line.rsplit("\t", 1) for line in lines if line.strip()]
    return [sentence.strip() for sentence, _ in rows], [int(label) for _, label in rows]


def read_documents(folder: Path) -> list[str]:
    return [path.read_text(encoding="utf-8") for path in sorted(folder.iterdir()) if path.is_file()]


# ----------------------------------------------------------------------------- vocabulary


def raw_backend(tokenizer: PreTrainedTokenizerBase) -> Tokenizer:
    """A copy of the tokenizer's `tokenizers` backend without padding or truncation."""
    backend = Tokenizer.from_str(tokenizer.backend_tokenizer.to_str())
    backend.no_padding()
    backend.no_truncation()
    return backend


def token_counts(backend: Tokenizer, texts: Sequence[str]) -> Counter[int]:
    counts: Counter[int] = Counter()
    for encoding in backend.encode_batch(list(texts), add_special_tokens=False):
        counts.update(encoding.ids)
    return counts


def is_single_character(token: str) -> bool:
    return len(token.removeprefix("##")) == 1


def select_vocabulary(
    tokenizer: PreTrainedTokenizerBase, sentences: Sequence[str], documents: Sequence[str], min_doc_count: int
) -> list[int]:
    """Teacher ids of the tokens to keep, ascending (so [PAD] stays id 0)."""
    backend = raw_backend(tokenizer)
    vocab = backend.get_vocab()
    kept = set(token_counts(backend, sentences))
    kept |= {
        token_id for token_id, count in token_counts(backend, documents).items() if count >= min_doc_count
    }
    kept |= {token_id for token, token_id in vocab.items() if is_single_character(token)}
    kept |= {vocab[token] for token in SPECIAL_TOKENS}
    return sorted(kept)


def write_pruned_tokenizer(
    teacher_dir: Path, kept_ids: Sequence[int], output: Path
) -> PreTrainedTokenizerBase:
    """Write tokenizer.json / tokenizer_config.json with the kept tokens, re-indexed, and load them."""
    spec = json.loads((teacher_dir / "tokenizer.json").read_text(encoding="utf-8"))
    teacher_tokens = {token_id: token for token, token_id in spec["model"]["vocab"].items()}
    new_ids = {teacher_tokens[old_id]: new_id for new_id, old_id in enumerate(kept_ids)}
    spec["model"]["vocab"] = new_ids
    for added in spec["added_tokens"]:
        added["id"] = new_ids[added["content"]]
    if spec["post_processor"]["type"] != "TemplateProcessing":
        sys.exit(
            f"Unexpected post-processor {spec['post_processor']['type']!r} in the teacher's tokenizer.json"
        )
    for special in spec["post_processor"]["special_tokens"].values():
        special["ids"] = [new_ids[token] for token in special["tokens"]]
    spec["padding"] = spec["truncation"] = None  # callers choose these per call
    (output / "tokenizer.json").write_text(json.dumps(spec, ensure_ascii=False), encoding="utf-8")

    config = json.loads((teacher_dir / "tokenizer_config.json").read_text(encoding="utf-8"))
    config = {key: value for key, value in config.items() if key not in TOKENIZER_CONFIG_DROP}
    config["model_max_length"] = 512
    (output / "tokenizer_config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    return AutoTokenizer.from_pretrained(output)


def check_tokenizer(
    teacher: PreTrainedTokenizerBase, student: PreTrainedTokenizerBase, texts: Sequence[str]
) -> int:
    """Where the teacher's tokens are all kept, both tokenizers must give the same tokens and offsets."""
    student_vocab = student.get_vocab()
    compared = 0
    for text in texts:
        expected = teacher(text, return_offsets_mapping=True)
        tokens = teacher.convert_ids_to_tokens(expected["input_ids"])
        if not all(token in student_vocab for token in tokens):
            continue
        actual = student(text, return_offsets_mapping=True)
        if student.convert_ids_to_tokens(actual["input_ids"]) != tokens:
            sys.exit(f"The pruned tokenizer splits {text!r} differently from the teacher's.")
        if actual["offset_mapping"] != expected["offset_mapping"]:
            sys.exit(f"The pruned tokenizer gives other offsets than the teacher's for {text!r}.")
        compared += 1
    return compared


# ----------------------------------------------------------------------------- student


def feed_forward_keep(layer: torch.nn.Module, size: int) -> torch.Tensor:
    """Indices of the `size` feed-forward neurons with the largest ||w_in|| * ||w_out||, ascending."""
    w_in = layer.intermediate.dense.weight  # (intermediate, hidden)
    w_out = layer.output.dense.weight  # (hidden, intermediate)
    importance = w_in.norm(dim=1) * w_out.norm(dim=0)
    return importance.topk(size).indices.sort().values


def student_state_dict(
    teacher: BertForSequenceClassification, kept_ids: Sequence[int], layers: int, intermediate_size: int
) -> dict[str, torch.Tensor]:
    """The teacher's weights cut down to the kept tokens, layers and feed-forward neurons."""
    state = {
        name: tensor for name, tensor in teacher.state_dict().items() if not name.startswith("bert.encoder.")
    }
    state["bert.embeddings.word_embeddings.weight"] = state["bert.embeddings.word_embeddings.weight"][
        list(kept_ids)
    ]
    for index, layer in enumerate(teacher.bert.encoder.layer[:layers]):
        prefix = f"bert.encoder.layer.{index}."
        state.update({prefix + name: tensor for name, tensor in layer.state_dict().items()})
        neurons = feed_forward_keep(layer, intermediate_size)
        state[prefix + "intermediate.dense.weight"] = layer.intermediate.dense.weight[neurons]
        state[prefix + "intermediate.dense.bias"] = layer.intermediate.dense.bias[neurons]
        state[prefix + "output.dense.weight"] = layer.output.dense.weight[:, neurons]
    return {name: tensor.detach().clone() for name, tensor in state.items()}


def build_student(
    teacher: BertForSequenceClassification, kept_ids: Sequence[int], layers: int, intermediate_size: int
) -> BertForSequenceClassification:
    config = teacher.config.__class__.from_dict(teacher.config.to_dict())
    config.update(
        {"num_hidden_layers": layers, "intermediate_size": intermediate_size, "vocab_size": len(kept_ids)}
    )
    student = BertForSequenceClassification(config)
    student.load_state_dict(student_state_dict(teacher, kept_ids, layers, intermediate_size), strict=True)
    return student


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


# ----------------------------------------------------------------------------- distillation


def distillation_loss(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    labels: torch.Tensor,
    temperature: float,
    alpha: float,
) -> torch.Tensor:
    soft = F.kl_div(
        F.log_softmax(student_logits / temperature, dim=-1),
        F.log_softmax(teacher_logits / temperature, dim=-1),
        reduction="batchmean",
        log_target=True,
    )
    return alpha * soft * temperature**2 + (1 - alpha) * F.cross_entropy(student_logits, labels)


def training_steps(
    ids: Sequence[Sequence[int]], args: argparse.Namespace, rng: random.Random
) -> Iterator[tuple[int, list[int]]]:
    """(epoch, batch) pairs over all epochs."""
    lengths = [len(token_ids) for token_ids in ids]
    for epoch in range(args.epochs):
        for batch in length_sorted_batches(lengths, args.batch_size, rng):
            yield epoch, batch


def distil(
    student: BertForSequenceClassification,
    ids: Sequence[Sequence[int]],
    labels: Sequence[int],
    teacher_logits: torch.Tensor,
    pad_id: int,
    args: argparse.Namespace,
) -> None:
    total = args.epochs * math.ceil(len(ids) / args.batch_size)
    optimizer = torch.optim.AdamW(student.parameters(), lr=args.lr, weight_decay=0.01, fused=True)
    schedule = get_linear_schedule_with_warmup(optimizer, int(0.06 * total), total)
    gold = torch.tensor(labels)
    student.train()
    progress = tqdm(training_steps(ids, args, random.Random(args.seed)), total=total, desc="distilling")
    for epoch, batch in progress:
        logits = student(**collate([ids[i] for i in batch], pad_id)).logits
        loss = distillation_loss(logits, teacher_logits[batch], gold[batch], args.temperature, args.alpha)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(student.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad(set_to_none=True)
        progress.set_postfix(epoch=epoch + 1, loss=f"{loss.item():.3f}")


# ----------------------------------------------------------------------------- saving


def save_model(student: BertForSequenceClassification, output: Path) -> None:
    """float16 weights, float32 config dtype: loading casts back to float32 for exact gradients."""
    student.config.dtype = torch.float32
    student.config.save_pretrained(output)
    weights = {
        name: tensor.detach().to(torch.float16).contiguous() for name, tensor in student.state_dict().items()
    }
    save_file(weights, output / "model.safetensors", metadata={"format": "pt"})


def folder_size(folder: Path) -> int:
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())


def write_model_card(output: Path, facts: dict[str, object]) -> None:
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

- **Architecture:** `BertForSequenceClassification`, {facts["layers"]} layers, hidden size 384,
  12 attention heads, feed-forward size {facts["intermediate_size"]}, {facts["vocab_size"]:,}-token uncased WordPiece
  vocabulary, 512 positions; {facts["parameters"]:,} parameters, stored in float16 and loaded as float32.
- **Accuracy:** {facts["dev_accuracy"]:.2%} on the SST-2 dev split used by this project
  ({facts["dev_size"]:,} phrases); the teacher scores {facts["teacher_accuracy"]:.2%}. That split re-splits the
  GLUE training phrases, so most dev phrases also occur inside training phrases: expect lower
  accuracy on the official GLUE validation sentences and on unrelated text.
- **How it was made:** distilled from a 6-layer MiniLM classifier fine-tuned on SST-2 (itself built on
  [sentence-transformers/all-MiniLM-L6-v2](https://huggingface.co/sentence-transformers/all-MiniLM-L6-v2)).
  The vocabulary was cut to the tokens of SST-2 train, the tokens occurring at least
  {facts["eraser_min_count"]} times in the ERASER movie reviews, every single-character token (plain and `##`)
  and the special tokens, so ordinary text never maps to `[UNK]`. The student starts from the teacher's
  embeddings, its first {facts["layers"]} layers (feed-forward blocks pruned to the largest-norm neurons),
  pooler and classifier, then trains for {facts["epochs"]} on
  `{facts["alpha"]} * KL(T={facts["temperature"]}) + {1 - facts["alpha"]:.1f} * cross-entropy`.
- **Training data:** SST-2 (Stanford Sentiment Treebank, binary) from the GLUE benchmark,
  {facts["train_size"]:,} training phrases.
- **Recipe:** `python recipes/train_default_model.py` in the hf_seqinterp repository.

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

    train_texts, train_labels = read_sst2(args.data_dir / "train.tsv")
    dev_texts, dev_labels = read_sst2(args.data_dir / "dev.tsv")
    teacher_tokenizer = AutoTokenizer.from_pretrained(args.teacher)
    teacher = AutoModelForSequenceClassification.from_pretrained(args.teacher, dtype=torch.float32)

    kept_ids = select_vocabulary(
        teacher_tokenizer, train_texts, read_documents(args.eraser_docs), args.eraser_min_count
    )
    tokenizer = write_pruned_tokenizer(args.teacher, kept_ids, args.output)
    compared = check_tokenizer(teacher_tokenizer, tokenizer, dev_texts[:500])
    print(
        f"vocabulary: {len(kept_ids):,} of {len(teacher_tokenizer):,} tokens; "
        f"{compared} of 500 dev sentences tokenise exactly as before"
    )

    train_logits = predict_logits(teacher, teacher_tokenizer, train_texts, "teacher on train")
    teacher_dev = accuracy(
        predict_logits(teacher, teacher_tokenizer, dev_texts, "teacher on dev"), dev_labels
    )
    print(
        f"teacher: train accuracy {accuracy(train_logits, train_labels):.4f}, dev accuracy {teacher_dev:.4f}"
    )

    student = build_student(teacher, kept_ids, args.layers, args.intermediate_size)
    del teacher
    distil(student, encode(tokenizer, train_texts), train_labels, train_logits, tokenizer.pad_token_id, args)
    save_model(student, args.output)

    saved = AutoModelForSequenceClassification.from_pretrained(args.output, dtype=torch.float32)
    dev_accuracy = accuracy(predict_logits(saved, tokenizer, dev_texts, "dev"), dev_labels)
    write_model_card(
        args.output,
        {
            "layers": args.layers,
            "intermediate_size": args.intermediate_size,
            "vocab_size": len(kept_ids),
            "parameters": saved.num_parameters(),
            "dev_accuracy": dev_accuracy,
            "dev_size": len(dev_texts),
            "teacher_accuracy": teacher_dev,
            "train_size": len(train_texts),
            "eraser_min_count": args.eraser_min_count,
            "epochs": f"{args.epochs} epoch" + ("s" if args.epochs != 1 else ""),
            "alpha": args.alpha,
            "temperature": args.temperature,
        },
    )

    size = folder_size(args.output)
    minutes = (time.perf_counter() - started) / 60
    print(f"dev accuracy of the saved model: {dev_accuracy:.4f} ({len(dev_texts):,} sentences)")
    print(f"saved to {args.output.resolve()}: {size:,} bytes; took {minutes:.1f} minutes")
    if size > SIZE_BUDGET_BYTES:
        sys.exit(f"The folder exceeds the {SIZE_BUDGET_BYTES:,}-byte budget of the bundled model.")


if __name__ == "__main__":
    main()
