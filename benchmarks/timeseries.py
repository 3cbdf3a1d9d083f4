"""Time-series explanations: ground truth on the box task, BasicMotions agreement, and speed against
the pass-count floor.

    python benchmarks/timeseries.py                  # all three parts
    python benchmarks/timeseries.py --part box --n 100

1. Box task (recipes/train_patchtst.py, after Ismail et al. 2020): a PatchTST trained in-process;
   for every method, on `--n` test series, AUP / AUR against the box cells and the precision of the
   top-|box| cells (hf_seqinterp.timeseries.metrics), with a random attribution as the floor.
2. BasicMotions: the trained recipe model; per test series, does channel erasure's top channel equal
   the top channel of IG's per-channel totals (|total|)?
3. Speed: each method on the BasicMotions test set against its floor: the same number of forward
   (and, for gradient methods, backward) passes on prebuilt inputs in batches of the same size,
   with none of the method's bookkeeping.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
import torch
from common import REPO, machine, markdown_table, setup_torch

from hf_seqinterp.timeseries import SeriesAdapter, explain_series, get_series_method
from hf_seqinterp.timeseries.metrics import precision_recall_areas, top_k_precision

sys.path.insert(0, str(REPO / "recipes"))
from train_patchtst import (
    MOTION_CHANNELS,
    accuracy,
    basic_motions,
    box_task,
    train_basic_motions,
    train_box_model,
)

BOX_METHODS = {
    "saliency": {},
    "gradient_x_input": {},
    "integrated_gradients (zero)": {"baseline": "zero", "n_steps": 32},
    "integrated_gradients (blur)": {"baseline": "blur", "n_steps": 32},
    "occlusion (4 steps, each channel)": {"window": 4},
    "channel_erasure": {},
    "kernel_shap (4 × channel)": {"window": 4, "n_samples": 500},
    "shapley_sampling (4 × channel)": {"window": 4, "n_samples": 10},
    "tsr (saliency)": {},
    "tsr (integrated_gradients)": {"base_method": "integrated_gradients", "base_params": {"n_steps": 8}},
    "attention_rollout": {},
}


def method_name(label: str) -> str:
    return label.split(" ")[0]


def box_part(n: int) -> str:
    start = time.perf_counter()
    model = train_box_model()
    trained = time.perf_counter() - start
    x, y, box = box_task(n, seed=1)
    test_x, test_y, _ = box_task(1000, seed=2)
    adapter = SeriesAdapter(model, channel_names=[f"c{c}" for c in range(box.shape[1])])
    rng = np.random.default_rng(0)
    rows = []
    random_scores = [precision_recall_areas(rng.random(box.shape), box) + (top_k_precision(rng.random(box.shape), box),)
                     for _ in range(n)]
    rows.append(["random", *(f"{v:.3f}" for v in np.mean(random_scores, 0)), "–"])
    for label, params in BOX_METHODS.items():
        start = time.perf_counter()
        expls = explain_series(adapter, x, method_name(label), target=y.tolist(), progress=False, **params)
        seconds = time.perf_counter() - start
        scores = [precision_recall_areas(e.grid(), box) + (top_k_precision(e.grid(), box),) for e in expls]
        rows.append([label, *(f"{v:.3f}" for v in np.mean(scores, 0)), f"{seconds / n * 1000:.1f}"])
    head = (f"Box task: PatchTST trained in {trained:.1f} s, test accuracy {accuracy(model, test_x, test_y):.3f} "
            f"(1,000 series); {n} series explained for their true class; box = {int(box.sum())} of {box.size} cells.\n\n")
    return head + markdown_table(["method", "AUP", "AUR", f"top-{int(box.sum())} precision", "ms / series"], rows)


def basic_motions_part() -> tuple[str, SeriesAdapter, np.ndarray]:
    start = time.perf_counter()
    model = train_basic_motions()
    trained = time.perf_counter() - start
    x, y, _ = basic_motions("TEST")
    adapter = SeriesAdapter(model, channel_names=MOTION_CHANNELS)
    erasure = explain_series(adapter, x, "channel_erasure", progress=False)
    ig = explain_series(adapter, x, "integrated_gradients", baseline="mean", n_steps=32, progress=False)
    agree = []
    for e, g in zip(erasure, ig):
        top_e = max(e.channel_totals(), key=lambda c: abs(e.channel_totals()[c]))
        top_g = max(g.channel_totals(), key=lambda c: abs(g.channel_totals()[c]))
        agree.append(top_e == top_g)
    deltas = [abs(g.rows[0]["convergence_delta"]) for g in ig]
    text = (
        f"BasicMotions: PatchTST trained in {trained:.1f} s, test accuracy {accuracy(model, x, y):.3f} (40 series). "
        f"Top channel (largest |total|) of channel erasure (mean baseline) and of IG's per-channel totals (mean "
        f"baseline, 32 steps) agree on {sum(agree)} of {len(agree)} test series; IG's largest |completeness gap| "
        f"{max(deltas):.2e}."
    )
    return text, adapter, x


def floor_seconds(adapter: SeriesAdapter, x: np.ndarray, passes: int, gradients: bool, batch: int = 256) -> float:
    """`passes` forwards per series (with a backward when `gradients`) in batches of `batch` inputs."""
    inputs = torch.as_tensor(x).repeat_interleave(passes, 0)
    start = time.perf_counter()
    with torch.enable_grad() if gradients else torch.no_grad():
        for part in range(0, len(inputs), batch):
            chunk = inputs[part : part + batch].clone().requires_grad_(gradients)
            out = adapter.outputs(chunk)[:, 0].sum()
            if gradients:
                torch.autograd.grad(out, chunk)
    return time.perf_counter() - start


SPEED = {  # method -> (params, passes per series on 100 × 6 inputs, gradients)
    "saliency": ({}, 1, True),
    "gradient_x_input": ({}, 1, True),
    "integrated_gradients": ({"n_steps": 32}, 32 + 1, True),
    "occlusion": ({"window": 10}, 10 * 6 + 1, False),
    "channel_erasure": ({}, 6 + 1, False),
    "kernel_shap": ({"window": 10, "n_samples": 500}, 500 + 1, False),
    "shapley_sampling": ({"window": 10, "n_samples": 10}, 10 * 59 + 1, False),
    "tsr": ({}, None, True),  # 1 + T + C·|relevant steps| saliency passes: read from the explanations
    "attention_rollout": ({}, 1, False),  # one eager forward (the floor's is SDPA)
}


def speed_part(adapter: SeriesAdapter, x: np.ndarray, repeats: int = 3) -> str:
    """Ours and the floor timed in alternation (best of `repeats` each), so load changes on a shared
    machine hit both alike."""
    rows = []
    with adapter.evaluating():
        for method, (params, passes, gradients) in SPEED.items():
            explainer = get_series_method(method).create(adapter, **params)
            if passes is None:
                passes = round(np.mean([e.extras["n_evaluations"] for e in explainer.explain(x, progress=False)]))
            ours, floor = float("inf"), float("inf")
            for _ in range(repeats):
                ours = min(ours, _timed(lambda e=explainer: e.explain(x, progress=False)))
                floor = min(floor, floor_seconds(adapter, x, passes, gradients))
            rows.append([method, str(passes), f"{ours / len(x) * 1000:.1f}", f"{floor / len(x) * 1000:.1f}", f"{ours / floor:.2f}"])
    return markdown_table(["method", "passes / series", "ours ms / series", "floor ms / series", "ours / floor"], rows)


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--part", choices=["box", "basicmotions", "speed", "all"], default="all")
    parser.add_argument("--n", type=int, default=100, help="box-task series to explain")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    setup_torch(args.threads)
    print(f"Machine: {machine()}\n")
    if args.part in ("box", "all"):
        print(box_part(args.n) + "\n")
    if args.part in ("basicmotions", "speed", "all"):
        text, adapter, x = basic_motions_part()
        print(text + "\n")
        if args.part in ("speed", "all"):
            print(speed_part(adapter, x))


if __name__ == "__main__":
    main()
