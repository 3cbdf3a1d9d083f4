r"""The units of a transformer that network analysis reads, and forward hooks that capture them.

Three kinds of unit, each a scalar per token and per layer l:
* ``ffn``: neuron j of the MLP, the j-th input of the layer's down projection (the projection back
  to the residual width: BERT's ``output.dense``, Llama's ``down_proj``, GPT-2's ``mlp.c_proj``);
  that is act(W_in x)_j, or act(W_gate x)_j · (W_up x)_j for gated MLPs — post-activation.
* ``head``: attention head h, ‖z_{h,t}‖₂, the norm of the head's context vector
  z_{h,t} = Σ_s a_{h,t,s} v_{h,s} (its slice of the attention output projection's input).
* ``residual``: dimension d of the residual stream after block l (hidden state l + 1).

Modules are found by shape and name inside `ModelAdapter.layers`, not by a table per architecture:
the down projection is the one linear map of the block from a wider width to the hidden size; the
attention output projection is the linear map named like one (`ATTENTION_OUTPUT_NAMES`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Literal

import torch

from ..adapter import Batch, ModelAdapter
from ..errors import InvalidParameterError, UnsupportedModelError

UnitKind = Literal["ffn", "head", "residual"]
UNIT_KINDS: tuple[str, ...] = ("ffn", "head", "residual")
#: dotted-name endings of attention output projections (BERT, Llama/Mistral/Qwen, GPT-2, DistilBERT, BART/OPT)
ATTENTION_OUTPUT_NAMES = ("attention.output.dense", "o_proj", "attn.c_proj", "attention.out_lin", "attn.out_proj")


@dataclass(frozen=True)
class UnitGroup:
    """All units of one kind in one layer: `size` scalars per token."""

    kind: str
    layer: int
    size: int

    @property
    def name(self) -> str:
        return f"{self.kind}.{self.layer}"


def _in_out(module: torch.nn.Module) -> tuple[int, int] | None:
    """(input width, output width) of a Linear or of GPT-2's Conv1D (weight stored (in, out)); else None."""
    if isinstance(module, torch.nn.Linear):
        return module.in_features, module.out_features
    if type(module).__name__ == "Conv1D" and hasattr(module, "nf"):
        return int(module.weight.shape[0]), int(module.nf)
    return None


def _hidden_size(adapter: ModelAdapter) -> int:
    config = adapter.config.get_text_config() if hasattr(adapter.config, "get_text_config") else adapter.config
    return int(getattr(config, "hidden_size", None) or config.n_embd)


def _num_heads(adapter: ModelAdapter) -> int:
    config = adapter.config.get_text_config() if hasattr(adapter.config, "get_text_config") else adapter.config
    return int(getattr(config, "num_attention_heads", None) or config.n_head)


def down_projection(adapter: ModelAdapter, layer: int) -> torch.nn.Module:
    """The MLP's down projection of block `layer` (its input holds the FFN neurons)."""
    hidden = _hidden_size(adapter)
    found = [
        module for module in adapter.layers[layer].modules()
        if (shape := _in_out(module)) is not None and shape[1] == hidden and shape[0] > hidden
    ]
    if len(found) != 1:
        raise UnsupportedModelError(
            f"Block {layer} of {type(adapter.model).__name__} has {len(found)} linear maps from a wider width to the "
            f"hidden size {hidden}, so its MLP down projection (whose input holds the FFN neurons) is ambiguous; "
            "use units='residual' or 'head'."
        )
    return found[0]


def attention_output(adapter: ModelAdapter, layer: int) -> torch.nn.Module:
    """The attention output projection of block `layer` (its input holds the heads' context vectors)."""
    found = [
        module for name, module in adapter.layers[layer].named_modules()
        if _in_out(module) is not None and name.endswith(ATTENTION_OUTPUT_NAMES)
    ]
    if len(found) != 1:
        raise UnsupportedModelError(
            f"Block {layer} of {type(adapter.model).__name__} has no single attention output projection (a linear "
            f"map named like {', '.join(ATTENTION_OUTPUT_NAMES)}), so its heads' outputs cannot be read; "
            "use units='ffn' or 'residual'."
        )
    return found[0]


def unit_groups(
    adapter: ModelAdapter, units: str | Sequence[str] = "ffn", layers: int | Sequence[int] | None = None
) -> list[UnitGroup]:
    """The unit groups to analyse: every kind in `units` for every block in `layers` (default: all;
    negative indices count from the end), kind-major. Checks that each group's module is found."""
    kinds = [units] if isinstance(units, str) else list(units)
    unknown = [k for k in kinds if k not in UNIT_KINDS]
    if unknown or not kinds or len(set(kinds)) != len(kinds):
        raise InvalidParameterError(f"units={units!r}: give one or more of {', '.join(UNIT_KINDS)}, each once.")
    n = len(adapter.layers)
    wanted = range(n) if layers is None else [layers] if isinstance(layers, int) else list(layers)
    resolved = []
    for layer in wanted:
        if not isinstance(layer, int) or not -n <= layer < n:
            raise InvalidParameterError(f"layers={layers!r}: the model has {n} blocks; pass indices in [-{n}, {n}).")
        resolved.append(layer % n)
    if len(set(resolved)) != len(resolved) or not resolved:
        raise InvalidParameterError(f"layers={layers!r}: name at least one block, each once.")
    groups = []
    for kind in kinds:
        for layer in resolved:
            if kind == "ffn":
                size = _in_out(down_projection(adapter, layer))[0]
            elif kind == "head":
                attention_output(adapter, layer)
                size = _num_heads(adapter)
            else:
                size = _hidden_size(adapter)
            groups.append(UnitGroup(kind, layer, size))
    return groups


class _Stop(Exception):
    """Raised after the last block whose units are wanted: the rest of the model need not run."""


@contextlib.contextmanager
def capture(adapter: ModelAdapter, groups: Sequence[UnitGroup], *, stop: bool = True) -> Iterator[dict[str, torch.Tensor]]:
    """Context in which `run(batch)` fills the yielded dict with {group.name: (B, L, size) float32}
    for one forward; the hooks are removed on exit (also on error), leaving the model as it was.
    `stop=False`: the forward is not cut after the last hooked block, so any forward of the model
    (one that returns the logits too) fills the dict."""
    captured: dict[str, torch.Tensor] = {}
    handles = []
    heads = _num_heads(adapter)

    def keep(group: UnitGroup, values: torch.Tensor) -> None:
        values = values.detach().float()
        if group.kind == "head":
            values = values.reshape(*values.shape[:-1], heads, -1).norm(dim=-1)
        captured[group.name] = values

    try:
        for group in groups:
            if group.kind == "residual":
                hook = _output_hook(keep, group)
                handles.append(adapter.layers[group.layer].register_forward_hook(hook))
            else:
                find = down_projection if group.kind == "ffn" else attention_output
                module = find(adapter, group.layer)
                handles.append(module.register_forward_pre_hook(lambda _m, args, g=group: keep(g, args[0])))
        if stop:
            handles.append(adapter.layers[max(g.layer for g in groups)].register_forward_hook(_stop))
        yield captured
    finally:
        for handle in handles:
            handle.remove()


def _output_hook(keep, group: UnitGroup):
    def hook(_module: torch.nn.Module, _args: tuple, output) -> None:
        keep(group, output[0] if isinstance(output, tuple) else output)

    return hook


def _stop(_module: torch.nn.Module, _args: tuple, _output) -> None:
    raise _Stop


def run(adapter: ModelAdapter, batch: Batch) -> None:
    """Forward `batch` up to the last hooked block (inside `capture`), without gradients."""
    with torch.inference_mode(), contextlib.suppress(_Stop):
        adapter.forward(batch)
