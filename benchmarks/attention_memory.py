"""Peak memory of attention rollout on a long input, next to a plain forward and the naive approach.

A tiny random BERT (hidden 64, 4 layers, 4 heads, 4,096 positions) and one 4,096-token input.
Each approach runs in a fresh subprocess (torch's CPU allocations are invisible to tracemalloc):
after building the model and input, the process resets its peak resident set size
(`echo 5 > /proc/self/clear_refs`), runs the approach once, and reports
peak RSS (VmHWM) − RSS before the run (VmRSS) = the memory the run added at its peak.

Approaches:
  forward (sdpa)      the model as loaded, no attentions (transformers' default kernel)
  forward (eager)     eager attention, no attentions returned (the kernel rollout must use)
  rollout (ours)      `attention_rollout` explainer: hooks, one L×L accumulator
  naive rollout       eager forward with output_attentions=True, then the layer products

    python benchmarks/attention_memory.py [--length 4096] [--layers 4] [--heads 4]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
APPROACHES = ("forward_sdpa", "forward_eager", "rollout", "naive")
LABELS = {
    "forward_sdpa": "forward, SDPA (default), no attentions",
    "forward_eager": "forward, eager, no attentions",
    "rollout": "attention_rollout (ours: hooks, one L×L accumulator)",
    "naive": "naive: output_attentions=True, then multiply",
}


def status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def build(length: int, layers: int, heads: int):
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import BertConfig, BertForSequenceClassification, PreTrainedTokenizerFast

    from hf_seqinterp import ModelAdapter

    words = [f"w{i}" for i in range(200)]
    vocab = {tok: i for i, tok in enumerate(["[PAD]", "[UNK]", "[CLS]", "[SEP]", *words])}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.post_processor = processors.TemplateProcessing(single="[CLS] $A [SEP]", special_tokens=[("[CLS]", 2), ("[SEP]", 3)])
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]", sep_token="[SEP]",
        model_max_length=length,
    )
    config = BertConfig(
        vocab_size=len(vocab), hidden_size=64, num_hidden_layers=layers, num_attention_heads=heads,
        intermediate_size=128, max_position_embeddings=length, num_labels=2,
    )
    torch.manual_seed(0)
    model = BertForSequenceClassification(config).eval()
    text = " ".join(words[i % len(words)] for i in range(length - 2))
    return ModelAdapter(model, tokenizer), text


def run_one(approach: str, length: int, layers: int, heads: int) -> dict:
    import torch
    from attention_speed import naive_rollout  # the same textbook computation as the speed benchmark

    from hf_seqinterp import get_explainer

    torch.set_num_threads(1)
    adapter, text = build(length, layers, heads)
    batch = adapter.collate(adapter.encode([text]))
    explainer = get_explainer("attention_rollout").create(adapter)
    assert batch.input_ids.shape[1] == length

    def naive() -> None:
        with adapter.eager_attention(), torch.no_grad():
            naive_rollout(adapter.forward(batch, output_attentions=True).attentions)

    def forward_eager() -> None:
        with adapter.eager_attention(), torch.no_grad():
            adapter.forward(batch)

    def forward_sdpa() -> None:
        with torch.no_grad():
            adapter.forward(batch)

    work = {
        "forward_sdpa": forward_sdpa,
        "forward_eager": forward_eager,
        "rollout": lambda: explainer.explain(text, progress=False),
        "naive": naive,
    }[approach]
    Path("/proc/self/clear_refs").write_text("5")
    before = status_kib("VmRSS")
    start = time.perf_counter()
    work()
    seconds = time.perf_counter() - start
    return {"approach": approach, "peak_mib": (status_kib("VmHWM") - before) / 1024, "seconds": seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--length", type=int, default=4096)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--child", choices=APPROACHES, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(run_one(args.child, args.length, args.layers, args.heads)))
        return
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    results = {}
    for approach in APPROACHES:
        cmd = [sys.executable, __file__, "--child", approach, "--length", str(args.length),
               "--layers", str(args.layers), "--heads", str(args.heads)]
        out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env).stdout
        results[approach] = json.loads(out.strip().splitlines()[-1])
    eager = results["forward_eager"]["peak_mib"]
    sdpa = results["forward_sdpa"]["peak_mib"]
    one_map = args.length**2 * 4 / 2**20
    print(
        f"tiny random BERT: hidden 64, {args.layers} layers, {args.heads} heads; input of {args.length} tokens; "
        f"one L×L float32 matrix = {one_map:.0f} MiB; 1 thread\n"
    )
    print("| approach | peak memory added (MiB) | × eager forward | × SDPA forward | seconds |")
    print("|---|---|---|---|---|")
    for approach in APPROACHES:
        r = results[approach]
        print(
            f"| {LABELS[approach]} | {r['peak_mib']:.0f} | {r['peak_mib'] / eager:.2f} | {r['peak_mib'] / sdpa:.2f} "
            f"| {r['seconds']:.2f} |"
        )


if __name__ == "__main__":
    main()
