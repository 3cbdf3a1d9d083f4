"""The time-series pictures of docs/timeseries.md: one BasicMotions test series per class, explained
with integrated gradients (mean baseline) by the recipe's PatchTST, as matplotlib figures, and the
HTML view of the running series screenshotted by headless Chromium (tests/browser.py).

    python docs/images/make_timeseries_figures.py
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1] / "recipes"))
sys.path.insert(0, str(HERE.parents[1] / "tests"))
from browser import screenshot
from train_patchtst import MOTION_CHANNELS, basic_motions, train_basic_motions

from hf_seqinterp.timeseries import SeriesAdapter, explain_series, save_series_html


def main() -> None:
    torch.set_num_threads(2)
    model = train_basic_motions()
    x, y, names = basic_motions("TEST")
    adapter = SeriesAdapter(model, channel_names=MOTION_CHANNELS)
    picks = [int(np.flatnonzero(y == k)[0]) for k in range(len(names))]
    expls = explain_series(adapter, x[picks], "integrated_gradients", target=list(range(len(names))),
                           baseline="mean", n_steps=32, progress=False)
    for name, expl in zip(names, expls):
        expl.plot(path=HERE / f"timeseries_{name.lower()}.png")
        print(name, {c: round(v, 2) for c, v in expl.channel_totals().items()})
    expls[1].plot_channels(path=HERE / "timeseries_channels_running.png")
    with tempfile.TemporaryDirectory() as tmp:
        page = save_series_html(expls[1], Path(tmp) / "running.html", title="Running")
        screenshot(page, HERE / "timeseries_html_running.png", (760, 400), Path(tmp) / "profile")


if __name__ == "__main__":
    main()
