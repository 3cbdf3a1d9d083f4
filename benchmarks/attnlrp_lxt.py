"""AttnLRP against the reference implementation, LXT (`pip install lxt`), on the same tiny Llama.

    python benchmarks/attnlrp_lxt.py save DIR             # here: a tiny Llama, its inputs and our relevances
    <venv with lxt>/bin/python benchmarks/attnlrp_lxt.py compare DIR   # LXT's relevances and the deviation

The model is a random 2-layer Llama (hidden 64, 4 heads / 2 key-value heads, gated SiLU MLP,
RMSNorm weights drawn from U(0.5, 1.5) so every rule matters) in float64, with the bundled default
model's tokenizer; the inputs are the first N SST-2 dev sentences, one at a time (no padding).
`compare` imports only torch, transformers and lxt: LXT patches transformers' Llama code globally,
so it runs in its own process. LXT's BERT patch map replaces `modeling_bert` with a transformers-4
copy of it that does not import under transformers 5, so only Llama is compared; its ViT map needs
torchvision, which `compare` stubs out, and its attention patch needs a one-line shim (below).
"""

from __future__ import annotations

import argparse
import json
import sys
import types
from pathlib import Path

import torch


def save(out: Path, n: int) -> None:
    from common import sst2_dev_sentences
    from transformers import AutoModelForSequenceClassification, LlamaConfig

    import hf_seqinterp as hsi

    default = hsi.ModelAdapter.from_pretrained()
    tokenizer = default.tokenizer
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=64, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, num_labels=2, pad_token_id=tokenizer.pad_token_id, max_position_embeddings=128,
    )  # fmt: skip
    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_config(config).double().eval()
    for name, parameter in model.named_parameters():
        if "norm" in name:
            parameter.data.uniform_(0.5, 1.5)
    model.save_pretrained(out)
    adapter = hsi.ModelAdapter(model, tokenizer)
    rows = []
    for text in sst2_dev_sentences(n):
        expl = hsi.explain(text, adapter, method="attnlrp", target=0)
        rows.append({"input_ids": expl.input_ids, "relevance": expl.attributions.tolist(), **expl.extras})
    (out / "ours.json").write_text(json.dumps(rows))
    print(f"saved the model and {len(rows)} explanations to {out}")


def lxt_relevance(model, input_ids: list[int]) -> tuple[torch.Tensor, float]:
    """LXT's quickstart: relevance = (E ⊙ ∂f/∂E).sum(-1) after one backward of the class-0 logit."""
    ids = torch.tensor([input_ids])
    embeds = model.get_input_embeddings()(ids).detach().requires_grad_(True)
    logit = model(inputs_embeds=embeds).logits[0, 0]
    logit.backward()
    return (embeds * embeds.grad).detach().float().sum(-1)[0], logit.item()


class _Interface(dict):
    def get_interface(self, name: str, default):
        return self.get(name, default)


def compare(out: Path) -> None:
    stub = types.ModuleType("lxt.efficient.models.vit_torch")  # its import needs torchvision
    stub.vision_transformer, stub.cp_LRP = types.ModuleType("vision_transformer"), {}
    sys.modules["lxt.efficient.models.vit_torch"] = stub
    bert = types.ModuleType("lxt.efficient.models.bert")  # a transformers-4 copy of modeling_bert
    bert.modeling_bert, bert.attnLRP = types.ModuleType("modeling_bert"), {}
    sys.modules["lxt.efficient.models.bert"] = bert
    from importlib.metadata import version

    from lxt.efficient import monkey_patch
    from transformers import AutoModelForSequenceClassification, __version__
    from transformers.models.llama import modeling_llama

    monkey_patch(modeling_llama)
    # LXT 2.1 swaps transformers' AttentionInterface for a plain dict of its wrapped functions; transformers 5
    # calls `.get_interface(name, default)` on it
    modeling_llama.ALL_ATTENTION_FUNCTIONS = _Interface(modeling_llama.ALL_ATTENTION_FUNCTIONS)
    model = AutoModelForSequenceClassification.from_pretrained(out, dtype=torch.float64, use_kernels=False).eval()
    rows = json.loads((out / "ours.json").read_text())
    worst, worst_relative, sums = 0.0, 0.0, []
    for row in rows:
        theirs, logit = lxt_relevance(model, row["input_ids"])
        ours = torch.tensor(row["relevance"])
        deviation = float((ours - theirs).abs().max())
        worst = max(worst, deviation)
        worst_relative = max(worst_relative, deviation / float(theirs.abs().max()))
        sums.append((row["relevance_sum"], float(theirs.sum()), row["input_score"], logit))
    print(f"lxt {version('lxt')}, transformers {__version__}, torch {torch.__version__}")
    print(f"{len(rows)} sentences: max |R_ours - R_lxt| = {worst:.3g} ({worst_relative:.3g} of max |R_lxt|)")
    gap = max(abs(a - b) for a, b, _, _ in sums)
    print(f"max |sum R_ours - sum R_lxt| = {gap:.3g}; logits differ by up to {max(abs(c - d) for *_, c, d in sums):.3g}")
    print("first sentences (sum R ours, sum R lxt, logit):")
    for a, b, c, _ in sums[:5]:
        print(f"  {a:+.6f}  {b:+.6f}  {c:+.6f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mode", choices=["save", "compare"])
    parser.add_argument("dir", type=Path)
    parser.add_argument("--n", type=int, default=50, help="SST-2 dev sentences")
    args = parser.parse_args()
    args.dir.mkdir(parents=True, exist_ok=True)
    save(args.dir, args.n) if args.mode == "save" else compare(args.dir)


if __name__ == "__main__":
    main()
