"""Attention weights from any Hugging Face model, one layer at a time, with eager attention for the call.

Two transformers facts this module relies on (read from transformers 5.x, checked by the tests on
every architecture of the test matrix):

* Every model that uses transformers' attention interface declares, in `_can_record_outputs`,
  which module classes output a layer's attention weights and at which index of their output
  tuple (the spec behind `output_attentions=True`, e.g. `BertSelfAttention` index 1,
  `GPT2Attention` under `.attn` index 1). Those modules return their (batch, heads, L, L) weights
  on every call under eager attention, whether or not `output_attentions` was asked for.
* `output_attentions=True` makes transformers keep all layers' weights until the forward ends.

So instead of asking for `output_attentions`, we put our own forward hook on the modules that the
model's own spec names (no per-architecture list here) and hand each layer's weights to a callback
as the layer runs; nothing keeps them afterwards, so a consumer that folds them into a running
result (attention rollout) holds one layer's weights at a time. The tensor the hook sees is the
very tensor `output_attentions=True` returns (the tests compare them with `torch.equal`). Legacy
models without such a spec (DeBERTa-v2 in transformers 5) fall back to `output_attentions=True`
and replay the returned weights through the same callback; their memory is then that of the
naive approach.

SDPA and flash kernels never materialise the weights, so the call runs under eager attention:
`eager_attention(model)` switches with `model.set_attn_implementation("eager")` and restores the
exact previous setting of every config involved (sub-configs and nested sub-models included) in a
`finally`, so the user's model is left as it was even when the call raises.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import torch

from .errors import UnsupportedModelError

LayerCallback = Callable[[int, torch.Tensor], None]
_UNSET = object()


def _configs(model: torch.nn.Module) -> list[Any]:
    """Every config object whose attention setting `set_attn_implementation` may change."""
    from transformers import PreTrainedModel

    found: dict[int, Any] = {}
    pending = [m.config for m in model.modules() if isinstance(m, PreTrainedModel)]
    while pending:
        config = pending.pop()
        if config is None or id(config) in found:
            continue
        found[id(config)] = config
        pending.extend(getattr(config, key, None) for key in getattr(config, "sub_configs", {}) or {})
    return list(found.values())


def _attention_implementations(model: torch.nn.Module) -> list[tuple[Any, Any]]:
    return [(c, c.__dict__.get("_attn_implementation_internal", _UNSET)) for c in _configs(model)]


def _can_switch(model: torch.nn.Module) -> bool:
    """Whether the model dispatches attention through transformers' interface (and so can go eager)."""
    check = getattr(model, "_can_set_attn_implementation", None)
    return bool(check()) if callable(check) else False


def eager_attention(model: torch.nn.Module) -> contextlib.AbstractContextManager[None]:
    """Run the body with eager attention; restore every config's previous setting afterwards.

    Models that do not use transformers' attention interface (legacy code such as DeBERTa-v2)
    compute attention their own way whatever the config says; they are left untouched.
    """
    return attention_implementation(model, "eager")


@contextlib.contextmanager
def attention_implementation(model: torch.nn.Module, name: str) -> Iterator[None]:
    """Run the body with the attention implementation `name` (one of transformers' or one registered
    with `AttentionInterface.register`) for this model only; restore every config's previous setting
    afterwards, even on error. Models that cannot switch are left untouched."""
    from .concurrency import model_lock

    with model_lock(model):  # another thread must not see, or restore, the switch half-way
        saved = _attention_implementations(model)
        try:
            if _can_switch(model) and any(config._attn_implementation != name for config, _ in saved):
                model.set_attn_implementation(name)
            yield
        finally:
            for config, value in saved:
                if value is _UNSET:
                    config.__dict__.pop("_attn_implementation_internal", None)
                else:
                    config._attn_implementation_internal = value


def attention_recorders(model: torch.nn.Module) -> list[Any]:
    """The `OutputRecorder` specs under the "attentions" key of the model and its sub-models."""
    from transformers import PreTrainedModel
    from transformers.utils.output_capturing import OutputRecorder

    recorders = []
    for module in model.modules():
        if not isinstance(module, PreTrainedModel):
            continue
        specs = (getattr(module, "_can_record_outputs", None) or {}).get("attentions")
        for spec in specs if isinstance(specs, list) else [specs] if specs is not None else []:
            if not isinstance(spec, OutputRecorder):
                by_name = isinstance(spec, str)
                spec = OutputRecorder(target_class=None if by_name else spec, index=1, class_name=spec if by_name else None)
            if spec not in recorders:
                recorders.append(spec)
    return recorders


def _matches(name: str, module: torch.nn.Module, spec: Any) -> bool:
    """transformers' own matching rule for a recorder spec (class or class-name suffix, then layer name)."""
    hit = (spec.target_class is not None and isinstance(module, spec.target_class)) or (
        spec.class_name is not None and name.endswith(spec.class_name)
    )
    if hit and spec.layer_name is not None:
        hit = "." + spec.layer_name.strip(".") + "." in "." + name + "."
    return hit


def attention_sites(model: torch.nn.Module) -> list[tuple[str, torch.nn.Module, int]]:
    """(name, module, output index) of every module whose output carries attention weights."""
    recorders = attention_recorders(model)
    sites = []
    for name, module in model.named_modules():
        spec = next((s for s in recorders if _matches(name, module, s)), None)
        if spec is not None:
            sites.append((name, module, spec.index))
    return sites


@contextlib.contextmanager
def streaming_hooks(model: torch.nn.Module, on_layer: LayerCallback) -> Iterator[list[int]]:
    """Call `on_layer(i, weights)` for each attention layer in execution order while the body runs.

    Yields a one-element list holding the number of layers seen so far. Hooks are removed on exit.
    """
    seen = [0]

    def hook(module: torch.nn.Module, args: Any, output: Any, index: int) -> None:
        weights = output[index] if isinstance(output, tuple) and len(output) > index else None
        if weights is None:
            raise UnsupportedModelError(
                f"{type(module).__name__} returned no attention weights even under eager attention, so "
                f"{type(model).__name__} cannot be explained with attention-based methods."
            )
        on_layer(seen[0], weights)
        seen[0] += 1

    handles = [
        module.register_forward_hook(lambda m, a, o, index=index: hook(m, a, o, index))
        for _, module, index in attention_sites(model)
    ]
    try:
        yield seen
    finally:
        for handle in handles:
            handle.remove()


def stream_attentions(run: Callable[..., Any], model: torch.nn.Module, on_layer: LayerCallback) -> Any:
    """Run `run(**kwargs)` (a forward of `model`) with eager attention, feeding each layer's
    (batch, heads, L, L) weights to `on_layer(layer_index, weights)` in layer order; returns its output.
    """
    with eager_attention(model):
        if attention_sites(model):
            with streaming_hooks(model, on_layer) as seen:
                out = run(output_attentions=False)
            layers = seen[0]
        else:
            out = _run_legacy(run, model)
            attentions = tuple(getattr(out, "attentions", None) or ())
            for i, weights in enumerate(attentions):
                on_layer(i, weights)
            layers = len(attentions)
    if layers == 0:
        raise UnsupportedModelError(
            f"{type(model).__name__} produced no attention weights (it has no attention layers transformers "
            "can record, and output_attentions=True returned none); attention-based methods cannot explain it. "
            "Use a gradient or perturbation method instead."
        )
    return out


def _run_legacy(run: Callable[..., Any], model: torch.nn.Module) -> Any:
    try:
        out = run(output_attentions=True)
    except TypeError as err:
        raise UnsupportedModelError(
            f"{type(model).__name__} cannot return attention weights ({err}); attention-based methods cannot "
            "explain it. Use a gradient or perturbation method instead."
        ) from err
    if any(w is None for w in getattr(out, "attentions", None) or ()):
        raise UnsupportedModelError(f"{type(model).__name__} returned attentions=None for some layers.")
    return out
