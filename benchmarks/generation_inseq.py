"""inseq on the model, prompt and continuation of `generation.py`, for the comparison there.

inseq cannot share our environment's pins, so it runs in its own virtual environment (inseq 0.7.1
with transformers 5.25 and torch 2.13 there), importing only the model builder of `generation.py`:

    python3 -m venv /tmp/inseqvenv && /tmp/inseqvenv/bin/pip install torch==2.13.0 inseq
    PYTHONPATH=.. /tmp/inseqvenv/bin/python generation_inseq.py --threads 1

Times `model.attribute(prompt, prompt + continuation)` (forced decoding, decoder-only: every
continuation token attributed to the prompt and the earlier continuation) for integrated gradients
(`n_internal_batch_size` = n_steps, so each step's points run as one batch, as ours do) and for
occlusion with a one-token window over the whole embedding (inseq's leave-one-out; it zeroes the
embedding rather than substituting a token).
"""

from __future__ import annotations

import argparse
import time

import inseq
import torch
from generation import add_model_arguments, build_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_arguments(parser)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model, tokenizer, prompt, continuation = build_model(args.prompt_tokens, args.new_tokens, args.layers, args.width)
    for method, kwargs in [("integrated_gradients", {"n_steps": args.steps, "internal_batch_size": args.steps}),
                           ("occlusion", {"sliding_window_shapes": (1, args.width)})]:
        wrapped = inseq.load_model(model, method, tokenizer=tokenizer)
        start = time.perf_counter()
        out = wrapped.attribute(prompt, prompt + continuation, show_progress=False, **kwargs)
        seconds = time.perf_counter() - start
        rows = out.sequence_attributions[0].target_attributions.shape[1]
        print(f"inseq {method}: {seconds:.2f} s for {rows} generated tokens ({seconds / rows:.3f} s per token)")


if __name__ == "__main__":
    main()
