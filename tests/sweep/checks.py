"""One sweep cell: a model type × a registered method, run on a few short texts and checked.

A cell is `ok` when every check below holds, `unsupported` when the library refuses the model with
an `UnsupportedModelError` (its message is the reason), `n/a` for methods that need something a
model type cannot give (`NOT_APPLICABLE`), and `fail` otherwise — a raw exception or a violated
invariant, which the sweep tests reject:

* probabilities equal a direct call of the model on the text (≤ 1e-5);
* a batch gives the attributions of the texts explained one by one (≤ 1e-5, relative to the scale);
* integrated gradients: |Σ a − (f(x) − f(b))| ≤ 1e-2 · |f(x) − f(b)| (n_steps=32, default baseline),
  else the explanation must warn (it does above 1 %, hence above the 5 % the issue asks for), and
  the cell is `warns` (mixtures of experts, whose routing jumps no gradient sees);
* KernelSHAP and Shapley sampling: Σ a = f(x) − f(∅) (efficiency, ≤ 1e-5);
* attention methods report the position the head classifies from, found independently: the
  positions of the last block's output that the logits have a gradient at;
* the model is unchanged afterwards, also after a failure: attention implementation of every
  config, train/eval mode of every module, `requires_grad` and `.grad` of every parameter, no
  forward/pre-forward/backward hook left on any module, and the config dict.
"""

from __future__ import annotations

import contextlib
import traceback
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from transformers import PreTrainedModel

from hf_seqinterp import ModelAdapter, UnsupportedModelError, explain

TEXTS = ["a good film", "the plot was dull but the music was great"]
METHOD_PARAMS: dict[str, dict[str, Any]] = {
    "integrated_gradients": {"n_steps": 32},
    "kernel_shap": {"n_samples": 12, "level": "token"},
    "lime": {"n_samples": 12},
    "shapley_sampling": {"n_samples": 1},
    "occlusion": {"window": 2},
}
NOT_APPLICABLE = {
    "rationale": "needs a rationale generator trained for the model's tokenizer (generator=...)"
}
IG_TOLERANCE = 1e-2
IG_WARNING_AT = 0.01
TOLERANCE = 1e-5


@dataclass(frozen=True)
class Cell:
    """The outcome of one model type × method."""

    status: str  # "ok", "warns", "unsupported", "n/a", "fail"
    reason: str = ""


def snapshot(model: torch.nn.Module) -> dict[str, Any]:
    """Everything an explanation must leave as it found it."""
    configs = {id(m.config): m.config for m in model.modules() if isinstance(m, PreTrainedModel)}
    return {
        "attention": [c.__dict__.get("_attn_implementation_internal") for c in configs.values()],
        "training": [m.training for m in model.modules()],
        "requires_grad": [p.requires_grad for p in model.parameters()],
        "grads": sum(p.grad is not None for p in model.parameters()),
        "hooks": {
            name: (len(m._forward_hooks), len(m._forward_pre_hooks), len(m._backward_hooks))
            for name, m in model.named_modules()
            if m._forward_hooks or m._forward_pre_hooks or m._backward_hooks
        },
        "config": model.config.to_dict(),
    }


def changes(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    return [key for key in before if before[key] != after[key]]


def direct_probabilities(adapter: ModelAdapter, text: str) -> np.ndarray:
    """The model called as a user calls it, on the tokenised text alone."""
    ids = torch.tensor([adapter.encode([text])[0].input_ids], device=adapter.device)
    with torch.no_grad():
        logits = adapter.model(input_ids=ids, attention_mask=torch.ones_like(ids)).logits
    return adapter.probabilities(logits)[0].cpu().numpy()


def read_positions(adapter: ModelAdapter, text: str) -> set[int]:
    """Positions of the final hidden states that the logits depend on (gradient ≠ 0): those the
    model returns with `output_hidden_states`, else the last block's output."""
    enc = adapter.encode([text])[0]
    ids = torch.tensor([enc.input_ids], device=adapter.device)
    with torch.enable_grad():
        out = adapter.model(input_ids=ids, attention_mask=torch.ones_like(ids), output_hidden_states=True)
        states = getattr(out, "hidden_states", None)
        if states:
            (grad,) = torch.autograd.grad(out.logits.sum(), states[-1], allow_unused=True)
            if grad is not None and bool(grad.any()):
                return set(torch.nonzero(grad[0].abs().sum(-1) > 0).flatten().tolist())
    captured: list[torch.Tensor] = []

    def leaf(_module, _args, output):
        nested = isinstance(output, (tuple, list))
        captured.append((output[0] if nested else output).detach().requires_grad_(True))
        return (captured[-1], *output[1:]) if nested else captured[-1]

    handle = adapter.layers[-1].register_forward_hook(leaf)
    try:
        with torch.enable_grad():
            logits = adapter.model(input_ids=ids, attention_mask=torch.ones_like(ids)).logits
            (grad,) = torch.autograd.grad(logits.sum(), captured[-1])
    finally:
        handle.remove()
    per_position = grad[0] if grad.shape[0] == 1 else grad[:, 0]  # (L, 1, d) in sequence-first models (XLNet)
    return set(torch.nonzero(per_position.abs().sum(-1) > 0).flatten().tolist())


def read_positions_warm_up(model: torch.nn.Module) -> None:
    """transformers installs its output-capturing hooks on the first `output_hidden_states` call and
    keeps them; make that call before the snapshot, so `read_positions` changes nothing afterwards."""
    ids = torch.tensor([[1, 2, 3]], device=next(model.parameters()).device)
    with torch.no_grad(), contextlib.suppress(Exception):  # a model that fails here fails in its cell
        model(input_ids=ids, attention_mask=torch.ones_like(ids), output_hidden_states=True)


def check_explanations(
    adapter: ModelAdapter, method: str, params: dict[str, Any]
) -> tuple[list[str], list[str]]:
    """The invariants of one method on one model: (violations, warnings the explanations carry
    where an invariant cannot hold, e.g. IG completeness across a mixture of experts' routing jumps)."""
    problems, warned = [], []
    together = explain(TEXTS, adapter, method=method, progress=False, **params)
    alone = [explain(text, adapter, method=method, progress=False, **params) for text in TEXTS]
    for text, e, single in zip(TEXTS, together, alone):
        direct = direct_probabilities(adapter, text)
        if not np.allclose(e.probabilities, direct, atol=TOLERANCE, rtol=0):
            problems.append(f"probabilities {e.probabilities} differ from a direct model call {direct}")
        scale = max(1.0, float(np.abs(single.attributions).max()))
        if not np.allclose(e.attributions, single.attributions, atol=TOLERANCE * scale, rtol=0):
            worst = float(np.abs(e.attributions - single.attributions).max())
            problems.append(f"batch differs from one-by-one by {worst:.2e}")
        found = invariant_problems(adapter, e, text)
        if found and e.method == "integrated_gradients" and e.warnings:
            warned.append(e.warnings[-1])
        else:
            problems += found
    return problems, warned


def invariant_problems(adapter: ModelAdapter, e, text: str) -> list[str]:
    """Method-specific invariants of one explanation."""
    total = float(e.attributions.sum(dtype=np.float64))
    if e.method == "integrated_gradients":
        gap = e.extras["input_score"] - e.extras["baseline_score"]
        delta = abs(e.extras["convergence_delta"])
        out = []
        if delta > IG_TOLERANCE * abs(gap) + 1e-7:
            out.append(
                f"IG completeness gap {delta:.2e} > 1e-2 · |f(x) − f(b)| = {IG_TOLERANCE * abs(gap):.2e}"
            )
        if delta > IG_WARNING_AT * abs(gap) + 1e-6 and not e.warnings:
            out.append("IG completeness gap above 1 % without a warning")
        return out
    if e.method in ("kernel_shap", "shapley_sampling"):
        gap = e.extras["input_score"] - e.extras["baseline_score"]
        if abs(total - gap) > TOLERANCE * max(1.0, abs(gap)):
            return [f"efficiency: Σ φ = {total:.6f} but f(x) − f(∅) = {gap:.6f}"]
    if "position" in e.extras:
        expected = read_positions(adapter, text)
        got = {e.extras["position"]} if e.extras["position"] is not None else set(range(len(e.tokens)))
        if got != expected:
            return [f"reads position {sorted(got)} but the head reads {sorted(expected)}"]
    return []


def run_cell(model: torch.nn.Module, tokenizer: Any, method: str) -> Cell:
    """Run and check one method on one model; the model must be unchanged whatever happens."""
    if method in NOT_APPLICABLE:
        return Cell("n/a", NOT_APPLICABLE[method])
    read_positions_warm_up(model)
    before = snapshot(model)
    try:
        adapter = ModelAdapter(model, tokenizer)
        problems, warned = check_explanations(adapter, method, METHOD_PARAMS.get(method, {}))
        cell = (
            Cell("fail", "; ".join(problems))
            if problems
            else Cell("warns", warned[0])
            if warned
            else Cell("ok")
        )
    except UnsupportedModelError as err:
        cell = Cell("unsupported", str(err))
    except Exception as err:  # noqa: BLE001 - a raw exception is exactly what the sweep reports
        frame = traceback.extract_tb(err.__traceback__)[-1]
        where = f"{frame.filename.rsplit('/', 2)[-1]}:{frame.lineno}"
        cell = Cell("fail", f"{type(err).__name__} at {where}: {err}")
    changed = changes(before, snapshot(model))
    if changed:
        return Cell("fail", f"model changed ({', '.join(changed)}); {cell.status}: {cell.reason}")
    return cell
