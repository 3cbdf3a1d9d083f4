"""ExplanationCallback in a real Trainer run: metrics next to eval_loss, files in the checkpoints."""

from __future__ import annotations

import copy
import json

import pytest
import torch
from tiny_models import random_texts, tiny_model
from transformers import Trainer, TrainerCallback, TrainingArguments

from hf_seqinterp import ExplanationCallback
from hf_seqinterp.callbacks import HTML_NAME, JSON_NAME, load_checkpoint_explanations
from hf_seqinterp.errors import InvalidParameterError

PROBES = ["the film was good", "a dull and boring plot", "never moving"]
KEYS = ("eval_integrated_gradients_aopc_comprehensiveness", "eval_integrated_gradients_aopc_sufficiency")


class Recorder(TrainerCallback):
    """Stands in for a reporting integration (TensorBoard, W&B): keeps what on_log receives."""

    def __init__(self):
        self.logs = []

    def on_log(self, args, state, control, logs=None, **kwargs):
        self.logs.append(dict(logs))


class Texts(torch.utils.data.Dataset):
    def __init__(self, tokenizer, n, seed):
        self.items = [
            {**tokenizer(t), "labels": i % 3} for i, t in enumerate(random_texts(n, seed=seed, min_words=2))
        ]

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        return self.items[i]


def _trainer(tmp_path, callbacks):
    model, tokenizer = tiny_model("bert", seed=5)
    model = copy.deepcopy(model)  # tiny_model is cached: train a copy
    args = TrainingArguments(
        output_dir=str(tmp_path), max_steps=4, eval_strategy="steps", eval_steps=2, save_steps=2,
        logging_steps=1, per_device_train_batch_size=4, per_device_eval_batch_size=8, learning_rate=5e-3,
        report_to="none", use_cpu=True, disable_tqdm=True, save_only_model=True,
    )
    return Trainer(model=model, args=args, train_dataset=Texts(tokenizer, 16, 1), eval_dataset=Texts(tokenizer, 8, 2),
                   processing_class=tokenizer, callbacks=callbacks)


def test_metrics_reach_log_history_reporters_and_checkpoints(tmp_path):
    recorder = Recorder()
    callback = ExplanationCallback(PROBES)
    trainer = _trainer(tmp_path, [recorder])
    callback.attach(trainer)  # ahead of the reporter
    trainer.train()

    evals = [h for h in trainer.state.log_history if "eval_loss" in h]
    assert [h["step"] for h in evals] == [2, 4]
    for entry in evals:
        assert all(isinstance(entry[k], float) for k in KEYS)
    reported = [log for log in recorder.logs if "eval_loss" in log]
    assert [{k: log[k] for k in KEYS} for log in reported] == [{k: h[k] for k in KEYS} for h in evals]

    for step, entry in zip((2, 4), evals):
        folder = tmp_path / f"checkpoint-{step}"
        saved = json.loads((folder / JSON_NAME).read_text())
        assert saved["global_step"] == step
        assert {f"eval_{k}": v for k, v in saved["metrics"].items()} == {k: entry[k] for k in KEYS}
        assert (folder / HTML_NAME).read_text().startswith("<!DOCTYPE html>")
        explanations = load_checkpoint_explanations(folder)["integrated_gradients"]
        assert [e.text for e in explanations] == PROBES
    assert json.loads((tmp_path / JSON_NAME).read_text())["global_step"] == 4  # latest, for push_to_hub

    # the weights changed between the two evaluations, and so did the explanations
    first = load_checkpoint_explanations(tmp_path / "checkpoint-2")["integrated_gradients"][0]
    last = load_checkpoint_explanations(tmp_path / "checkpoint-4")["integrated_gradients"][0]
    assert not (first.attributions == last.attributions).all()

    metrics = trainer.evaluate()  # same step: cached numbers, also in evaluate()'s return value
    assert {k: metrics[k] for k in KEYS} == {k: evals[-1][k] for k in KEYS}


def test_without_attach_reporters_ahead_miss_the_metrics_but_log_history_has_them(tmp_path):
    recorder = Recorder()
    trainer = _trainer(tmp_path, [recorder, ExplanationCallback(PROBES[:1], save=False)])
    trainer.train()
    assert all(k in h for h in trainer.state.log_history if "eval_loss" in h for k in KEYS)
    assert not any(k in log for log in recorder.logs for k in KEYS)
    assert not (tmp_path / "checkpoint-2" / JSON_NAME).exists()


def test_bad_arguments_fail_early():
    with pytest.raises(InvalidParameterError, match="unknown metric"):
        ExplanationCallback(PROBES, metrics=["aopc"])
    with pytest.raises(InvalidParameterError, match="replacement='remove'"):
        ExplanationCallback(PROBES, replacement="remove")
