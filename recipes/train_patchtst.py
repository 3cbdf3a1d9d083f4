"""Train small PatchTST classifiers whose explanations can be checked: BasicMotions and the box task.

**BasicMotions** (UEA, ../shared/data/timeseries): smart-watch accelerometer (3 channels) and
gyroscope (3 channels), 100 steps, 4 activities, 40 training and 40 test series. PatchTST with
patches of 10 steps, 2 layers of 32 dims, and no per-series scaling (the activities differ in
amplitude, which std scaling removes: the same model reaches only ~40 % with it).

**The box task** (after Ismail et al. 2020, arXiv:2010.13924): series of N(0, 1) noise in which a
box of time × channel cells (steps 12–19 of channels 1–2, of 32 steps × 4 channels) is shifted by
+1 (class 1) or −1 (class 0). Only the box carries the class, so a faithful explanation puts its
weight there.

    python recipes/train_patchtst.py --task basicmotions --output patchtst-basicmotions
    python recipes/train_patchtst.py --task box
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
import torch
from transformers import PatchTSTConfig, PatchTSTForClassification

SHARED = Path(os.environ.get("HF_SEQINTERP_SHARED", Path(__file__).resolve().parents[1].parent / "shared"))
BASIC_MOTIONS = SHARED / "data" / "timeseries"
MOTION_CHANNELS = ["acc_x", "acc_y", "acc_z", "gyro_x", "gyro_y", "gyro_z"]
BOX_T, BOX_C, BOX_STEPS, BOX_CHANNELS = 32, 4, slice(12, 20), slice(1, 3)


def train_classifier(
    model: PatchTSTForClassification, x: np.ndarray, y: np.ndarray, *, epochs: int, lr: float = 3e-3,
    batch_size: int = 8, seed: int = 0,
) -> PatchTSTForClassification:
    """Cross-entropy with AdamW over shuffled mini-batches; returns the model in eval mode."""
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-2)
    inputs, labels = torch.as_tensor(x), torch.as_tensor(y)
    model.train()
    for _ in range(epochs):
        order = torch.randperm(len(inputs), generator=generator)
        for start in range(0, len(inputs), batch_size):
            batch = order[start : start + batch_size]
            loss = torch.nn.functional.cross_entropy(model(past_values=inputs[batch]).prediction_logits, labels[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return model.eval()


def accuracy(model: PatchTSTForClassification, x: np.ndarray, y: np.ndarray) -> float:
    with torch.no_grad():
        return float((model(past_values=torch.as_tensor(x)).prediction_logits.argmax(-1).numpy() == np.asarray(y)).mean())


# ----------------------------------------------------------------------------- BasicMotions
def basic_motions(split: str) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(series (n, 100, 6), labels, class names) of the TRAIN or TEST split."""
    from hf_seqinterp.timeseries import load_ts

    path = BASIC_MOTIONS / f"BasicMotions_{split}.ts"
    if not path.exists():
        raise SystemExit(f"BasicMotions not found at {path}")
    ds = load_ts(path, channel_names=MOTION_CHANNELS)
    return np.asarray(ds["past_values"], dtype=np.float32), np.asarray(ds["label"]), ds.features["label"].names


def train_basic_motions(epochs: int = 10, seed: int = 0) -> PatchTSTForClassification:
    """PatchTST on the BasicMotions training split (about 12 s on 2 CPU cores; ≥ 90 % test accuracy)."""
    torch.manual_seed(seed)
    x, y, names = basic_motions("TRAIN")
    config = PatchTSTConfig(
        num_input_channels=6, context_length=100, patch_length=10, patch_stride=10, num_targets=4, d_model=32,
        num_attention_heads=4, num_hidden_layers=2, ffn_dim=64, scaling=None, dropout=0.1, head_dropout=0.1,
        id2label=dict(enumerate(names)), label2id={n: i for i, n in enumerate(names)},
    )
    return train_classifier(PatchTSTForClassification(config), x, y, epochs=epochs, seed=seed)


# ----------------------------------------------------------------------------- the box task
def box_task(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(series (n, 32, 4), labels, the (32, 4) mask of the box cells)."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    x = rng.normal(size=(n, BOX_T, BOX_C)).astype(np.float32)
    x[:, BOX_STEPS, BOX_CHANNELS] += np.where(y == 1, 1.0, -1.0)[:, None, None]
    box = np.zeros((BOX_T, BOX_C), dtype=bool)
    box[BOX_STEPS, BOX_CHANNELS] = True
    return x, y, box


def train_box_model(n_train: int = 600, epochs: int = 2, seed: int = 0) -> PatchTSTForClassification:
    """A tiny PatchTST on the box task (≈ 98 % accuracy after 2 epochs, seconds on 2 cores)."""
    torch.manual_seed(seed)
    x, y, _ = box_task(n_train, seed)
    config = PatchTSTConfig(
        num_input_channels=BOX_C, context_length=BOX_T, patch_length=8, patch_stride=8, num_targets=2, d_model=16,
        num_attention_heads=2, num_hidden_layers=1, ffn_dim=32, scaling=None, dropout=0.0, head_dropout=0.0,
        id2label={0: "minus", 1: "plus"}, label2id={"minus": 0, "plus": 1},
    )
    return train_classifier(PatchTSTForClassification(config), x, y, epochs=epochs, lr=1e-2, batch_size=64, seed=seed)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", choices=["basicmotions", "box"], default="basicmotions")
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--output", type=Path, default=None, help="save the trained model here (save_pretrained)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    if args.task == "basicmotions":
        model = train_basic_motions(epochs=args.epochs or 10)
        x, y, _ = basic_motions("TEST")
    else:
        model = train_box_model(epochs=args.epochs or 2)
        x, y, _ = box_task(1000, seed=1)
    seconds = time.perf_counter() - start
    print(f"{args.task}: test accuracy {accuracy(model, x, y):.3f} on {len(y)} series; trained in {seconds:.1f} s")
    if args.output is not None:
        model.save_pretrained(args.output)
        print(f"saved to {args.output}")


if __name__ == "__main__":
    main()
