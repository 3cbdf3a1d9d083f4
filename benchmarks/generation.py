"""Causal-LM explanations: time per generated token against the pass-count floor and Captum, and
integrated gradients' peak memory against one forward + backward.

A GPT-2-shaped model (random weights, built from a config: timing does not depend on training)
continues a prompt of `--prompt-tokens` tokens by `--new-tokens` forced tokens. Floors are the raw
passes each method makes, batched as ours are (length-sorted, same token budget), with no
tokenising or result building:

* erasure: one forward of the unedited text + one per erased token (prompt and continuation),
  each of length P + T, every row scored from the same forward;
* integrated gradients: n_steps forwards of length P + T, each with T backwards (one per row);

both projecting only the T positions the rows read onto the vocabulary (`logits_to_keep`), as ours do.

Captum (`LLMAttribution(FeatureAblation)`, `LLMGradientAttribution(LayerIntegratedGradients)`)
explains the same prompt and continuation with `forward_in_tokens=False`, as its docs do for
models with a KV cache; it erases prompt tokens only and reruns each prefix per generated token.

    python benchmarks/generation.py --threads 2
    python benchmarks/generation.py --memory --prompt-tokens 2048 --new-tokens 16   # peak-memory check
"""

from __future__ import annotations

import argparse
import subprocess
import sys

import torch
from common import machine, markdown_table, setup_torch, timed
from transformers import AutoTokenizer, GPT2Config, GPT2LMHeadModel

from hf_seqinterp.adapter import default_model_path
from hf_seqinterp.utils import chunks, length_grouped_batches


def build_model(prompt_tokens: int, new_tokens: int, layers: int, width: int):
    """(model, tokenizer, prompt, continuation): a random GPT-2 of the given size with the bundled
    model's tokenizer, a prompt of about `prompt_tokens` tokens and a forced continuation."""
    tokenizer = AutoTokenizer.from_pretrained(default_model_path())
    config = GPT2Config(
        vocab_size=len(tokenizer), n_positions=prompt_tokens + new_tokens + 8, n_embd=width, n_layer=layers,
        n_head=width // 64, bos_token_id=tokenizer.cls_token_id, eos_token_id=tokenizer.sep_token_id,
    )
    torch.manual_seed(0)
    model = GPT2LMHeadModel(config).eval()
    words = [tokenizer.convert_ids_to_tokens(i) for i in range(2000, 2000 + prompt_tokens)]
    prompt = " ".join(w for w in words if w.isalpha())
    ids = tokenizer(prompt, add_special_tokens=False)["input_ids"][: prompt_tokens - 2]
    prompt = tokenizer.decode(ids)
    continuation = " " + tokenizer.decode(list(range(3000, 3000 + new_tokens)))
    return model, tokenizer, prompt, continuation


def build(prompt_tokens: int, new_tokens: int, layers: int, width: int):
    """`build_model` with the model wrapped in a ModelAdapter."""
    import hf_seqinterp as hsi

    model, tokenizer, prompt, continuation = build_model(prompt_tokens, new_tokens, layers, width)
    return hsi.ModelAdapter(model, tokenizer), prompt, continuation


def erasure_floor(adapter, length: int, n_rows: int, max_batch_tokens: int) -> float:
    """length + 1 forwards of `length` tokens in batches under the token budget, projecting only the
    positions the rows read onto the vocabulary."""
    n = length + 1
    batches = length_grouped_batches([length] * n, 512, max_batch_tokens)
    ids = torch.randint(1000, 2000, (max(len(b) for b in batches), length))
    read = torch.arange(length - n_rows - 1, length - 1)

    def run():
        with torch.no_grad():
            for b in batches:
                adapter.model(input_ids=ids[: len(b)], logits_to_keep=read)

    return timed(run, repeats=2)


def ig_floor(adapter, length: int, n_rows: int, n_steps: int, max_batch_tokens: int) -> float:
    """n_steps forwards of `length` tokens from embeddings, each followed by one backward per row."""
    per_pass = max(1, max_batch_tokens // length)
    ids = torch.randint(1000, 2000, (1, length))
    positions = torch.arange(length - n_rows - 1, length - 1)

    def run():
        for part in chunks(n_steps, per_pass):
            embeds = adapter.embed(ids).detach().expand(part.stop - part.start, -1, -1).clone().requires_grad_(True)
            logits = adapter.model(inputs_embeds=embeds, logits_to_keep=positions).logits
            scores = torch.log_softmax(logits, -1)[..., 5]
            for k in range(n_rows):
                torch.autograd.grad(scores[:, k].sum(), embeds, retain_graph=k < n_rows - 1)

    return timed(run, repeats=2)


def captum_seconds(adapter, prompt: str, continuation: str, method: str, n_steps: int) -> float:
    from captum.attr import (
        FeatureAblation,
        LayerIntegratedGradients,
        LLMAttribution,
        LLMGradientAttribution,
        TextTokenInput,
    )

    model, tok = adapter.model, adapter.tokenizer
    inp = TextTokenInput(prompt, tok, baselines=tok.unk_token_id)
    if method == "erasure":
        attr = LLMAttribution(FeatureAblation(model), tok)
        return timed(lambda: attr.attribute(inp, target=continuation, forward_in_tokens=False))
    attr = LLMGradientAttribution(LayerIntegratedGradients(model, model.get_input_embeddings()), tok)
    return timed(lambda: attr.attribute(inp, target=continuation, n_steps=n_steps, baselines=tok.unk_token_id))


def peak_rss_mb(code: str) -> float:
    """Peak resident memory (MB) of a fresh Python process running `code` after the shared setup."""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=__file__.rsplit("/", 1)[0])
    return float(out.stdout.strip().splitlines()[-1])


MEMORY_SETUP = """
import resource, torch
from generation import build
adapter, prompt, continuation = build({p}, {t}, {layers}, {width})
"""


def memory(args: argparse.Namespace) -> None:
    setup = MEMORY_SETUP.format(p=args.prompt_tokens, t=args.new_tokens, layers=args.layers, width=args.width)
    report = "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)"
    base = peak_rss_mb(setup + report)
    one = peak_rss_mb(setup + """
ids = torch.randint(1000, 2000, (1, {n}))
embeds = adapter.embed(ids).detach().requires_grad_(True)
adapter.model(inputs_embeds=embeds).logits[0, -1, 5].backward()
""".format(n=args.prompt_tokens + args.new_tokens) + report)
    ig = peak_rss_mb(setup + f"""
__import__("hf_seqinterp").explain_with(adapter, prompt, "integrated_gradients", target=continuation, n_steps={args.steps})
""" + report)
    print(markdown_table(
        ["peak RSS above setup (MB)", "one forward + backward", f"IG ({args.steps} steps, {args.new_tokens} rows)", "IG / fwd+bwd"],
        [[f"{base:.0f} MB setup", f"{one - base:.0f}", f"{ig - base:.0f}", f"{(ig - base) / (one - base):.2f}"]],
    ))


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """The model, prompt and continuation sizes (shared with `generation_inseq.py`)."""
    parser.add_argument("--prompt-tokens", type=int, default=200)
    parser.add_argument("--new-tokens", type=int, default=20)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--width", type=int, default=256)
    parser.add_argument("--steps", type=int, default=16, help="integrated-gradients steps")
    parser.add_argument("--threads", type=int, default=1)


def main() -> None:
    import hf_seqinterp as hsi

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_arguments(parser)
    parser.add_argument("--no-captum", action="store_true")
    parser.add_argument("--memory", action="store_true", help="measure IG's peak memory instead of timing")
    args = parser.parse_args()
    setup_torch(args.threads)
    if args.memory:
        memory(args)
        return
    adapter, prompt, continuation = build(args.prompt_tokens, args.new_tokens, args.layers, args.width)
    expl = hsi.explain_with(adapter, prompt, "saliency", target=continuation)
    length, rows = len(expl.tokens), expl.n_rows
    print(f"{machine()}; prompt {length - rows} tokens, continuation {rows} tokens")
    table = []
    for method, params in [("erasure", {"replacement": "unk"}), ("integrated_gradients", {"n_steps": args.steps, "baseline": "unk"})]:
        explainer = hsi.explainers.get_explainer(method).create(adapter, score="log_prob", **params)
        ours = timed(lambda explainer=explainer: explainer.explain(prompt, target=continuation, progress=False), repeats=2)
        floor = (
            erasure_floor(adapter, length, rows, explainer.max_batch_tokens)
            if method == "erasure"
            else ig_floor(adapter, length, rows, args.steps, explainer.max_batch_tokens)
        )
        captum = None if args.no_captum else captum_seconds(adapter, prompt, continuation, method, args.steps)
        table.append([
            method, f"{ours:.2f}", f"{ours / rows:.3f}", f"{floor:.2f}", f"{ours / floor:.2f}",
            "—" if captum is None else f"{captum:.2f}", "—" if captum is None else f"{captum / ours:.1f}",
        ])
    print(markdown_table(
        ["method", "ours (s)", "ours per token (s)", "floor (s)", "ours / floor", "Captum (s)", "Captum / ours"], table
    ))


if __name__ == "__main__":
    main()
