r"""The math of the attention explainers, on batches of attention weights.

Shapes: weights (B, H, L, L) with rows = queries; `real` (B, L) bool marks the real tokens of each
padded row. Every matrix has its padded rows and columns zeroed before use, so no attention mass
ever reaches a padded position and a padded row computes what the unpadded text would.

The consumers (`LayerPick`, `Rollout`, `GradientRollout`, `LayerStack`) are called as
`consumer(layer, weights)`, exactly as `ModelAdapter.stream_attentions` calls them, so tests can
feed them synthetic attentions through the same code path the explainers use.
"""

from __future__ import annotations

import numpy as np
import torch

from ..errors import InvalidParameterError

HEAD_FUSIONS: tuple[str, ...] = ("mean", "max", "min")
FLOW_SCALE = 2**30  # capacities in [0, 1] -> int32 for scipy's max-flow; rounding error <= 2^-31 per edge


def check_head_fusion(how: str) -> str:
    if how not in HEAD_FUSIONS:
        raise InvalidParameterError(f"head_fusion={how!r} is not one of {', '.join(HEAD_FUSIONS)}.")
    return how


def fuse_heads(weights: torch.Tensor, how: str, real: torch.Tensor) -> torch.Tensor:
    """W = mean/max/min over heads of the weights, float32, padded rows and columns set to 0."""
    weights = weights.detach().float()
    if how == "mean":
        fused = weights.mean(1)
    else:
        fused = weights.amax(1) if how == "max" else weights.amin(1)
    return mask_pairs(fused, real)


def mask_pairs(matrix: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """Zero, in place, every entry of (B, L, L) `matrix` whose query or key is padding."""
    keep = real.to(matrix.dtype)
    return matrix.mul_(keep[:, :, None]).mul_(keep[:, None, :])


def residual_augment(fused: torch.Tensor) -> torch.Tensor:
    """Â = (W + I) / rowsum(W + I), in place (= 0.5 W + 0.5 I when rows of W sum to 1, the paper's
    form; the row normalisation makes max/min fusion row-stochastic too). Zeroed padded rows
    become identity rows."""
    fused.diagonal(dim1=-2, dim2=-1).add_(1.0)
    return fused.div_(fused.sum(-1, keepdim=True))


def resolve_layer(index: int, num_layers: int | None, name: str) -> int:
    """A layer index in [0, N), negative indices counted from the top."""
    if not isinstance(index, int) or isinstance(index, bool):
        raise InvalidParameterError(f"{name} must be an integer layer index, got {index!r}.")
    if num_layers is None:
        if index < 0:
            raise InvalidParameterError(
                f"{name}={index} counts from the top, but the model's config does not give its number of layers; "
                "pass a non-negative index."
            )
        return index
    if not -num_layers <= index < num_layers:
        raise InvalidParameterError(
            f"{name}={index} is out of range for a model with {num_layers} layers; use 0..{num_layers - 1} "
            f"or -{num_layers}..-1."
        )
    return index % num_layers


class _Consumer:
    """Receives each layer's weights; counts them."""

    def __init__(self, real: torch.Tensor):
        self.real = real
        self.layers_seen = 0

    def __call__(self, layer: int, weights: torch.Tensor) -> None:
        self.layers_seen = layer + 1
        self.update(layer, weights)

    def update(self, layer: int, weights: torch.Tensor) -> None:
        raise NotImplementedError

    def identity(self) -> torch.Tensor:
        batch, length = self.real.shape
        eye = torch.eye(length, dtype=torch.float32, device=self.real.device)
        return eye.expand(batch, length, length).clone()


class LayerPick(_Consumer):
    """Keeps the head-fused attention W_l of one layer."""

    def __init__(self, real: torch.Tensor, layer: int, head_fusion: str):
        super().__init__(real)
        self.layer, self.head_fusion, self.matrix = layer, head_fusion, None

    def update(self, layer, weights):
        if layer == self.layer:
            self.matrix = fuse_heads(weights, self.head_fusion, self.real)


class Rollout(_Consumer):
    """R = Â_N ··· Â_s (s = start layer), folded in as each layer runs: one (B, L, L) accumulator."""

    def __init__(self, real: torch.Tensor, head_fusion: str, start_layer: int = 0):
        super().__init__(real)
        self.head_fusion, self.start_layer, self.matrix = head_fusion, start_layer, None

    def update(self, layer, weights):
        if layer < self.start_layer:
            return
        augmented = residual_augment(fuse_heads(weights, self.head_fusion, self.real))
        self.matrix = augmented if self.matrix is None else torch.bmm(augmented, self.matrix)

    def result(self) -> torch.Tensor:
        return self.identity() if self.matrix is None else self.matrix


class LayerStack(_Consumer):
    """Keeps every layer's residual-augmented Â_l (for attention flow, short inputs only)."""

    def __init__(self, real: torch.Tensor, head_fusion: str, start_layer: int = 0):
        super().__init__(real)
        self.head_fusion, self.start_layer, self.matrices = head_fusion, start_layer, []

    def update(self, layer, weights):
        if layer >= self.start_layer:
            self.matrices.append(residual_augment(fuse_heads(weights, self.head_fusion, self.real)))


class GradientRollout(_Consumer):
    """Chefer et al. 2021 (generic rule): Ā_l = mean_h[(∇A_l ⊙ A_l)^+], R ← R + Ā_l R from R = I.

    Called with the weights during the forward; registers a gradient hook on each so that Ā_l is
    formed as soon as ∂f/∂A_l is known in the backward, and the (H, L, L) gradient is dropped;
    every later backward through the same forward (another explained row) forms it anew.
    `add(layer, weights, grads)` is the same step for given gradients.
    """

    def __init__(self, real: torch.Tensor, start_layer: int = 0):
        super().__init__(real)
        self.start_layer = start_layer
        self.pending: dict[int, torch.Tensor] = {}
        self.fused: dict[int, torch.Tensor] = {}

    def update(self, layer, weights):
        if layer < self.start_layer or not weights.requires_grad:
            return
        self.pending[layer] = weights
        weights.register_hook(lambda grad, layer=layer: self.add(layer, self.pending[layer], grad))

    def add(self, layer: int, weights: torch.Tensor, grads: torch.Tensor) -> None:
        relevance = (grads.detach().float() * weights.detach().float()).clamp_(min=0).mean(1)
        self.fused[layer] = mask_pairs(relevance, self.real)

    def result(self) -> torch.Tensor:
        matrix = self.identity()
        for layer in sorted(self.fused):
            matrix = matrix + torch.bmm(self.fused[layer], matrix)
        return matrix


def attention_flow(matrices: list[np.ndarray], readout: np.ndarray) -> np.ndarray:
    """Attention flow (Abnar & Zuidema 2020) of one text.

    Graph: nodes (l, q) for l = 0..N, edge (l, q) -> (l-1, k) with capacity Â_l[q, k]. For each
    output position p, flow_p[v] = max-flow from (N, p) to (0, v), normalised to sum to 1; the
    result is Σ_p readout[p] · flow_p. `matrices`: the N (n, n) Â_l of the real tokens, in layer
    order. Max-flow: scipy's Dinic on capacities scaled to integers (FLOW_SCALE).
    """
    try:
        from scipy.sparse import csr_matrix
        from scipy.sparse.csgraph import maximum_flow
    except ImportError as err:  # pragma: no cover - scipy ships with the test extra
        raise ImportError("attention_flow needs scipy: pip install 'hf-seqinterp[flow]' (or scipy).") from err
    n, layers = len(readout), len(matrices)
    if layers == 0:
        return readout.astype(np.float64)
    rows, cols, caps = [], [], []
    for level, matrix in enumerate(matrices, start=1):
        capacity = np.rint(np.asarray(matrix, dtype=np.float64) * FLOW_SCALE).astype(np.int64)
        query, key = np.nonzero(capacity)
        rows.append(level * n + query)
        cols.append((level - 1) * n + key)
        caps.append(capacity[query, key])
    size = (layers + 1) * n
    graph = csr_matrix(
        (np.concatenate(caps).astype(np.int32), (np.concatenate(rows), np.concatenate(cols))), shape=(size, size)
    )
    out = np.zeros(n, dtype=np.float64)
    for p in np.flatnonzero(readout):
        flows = np.array([maximum_flow(graph, layers * n + p, v, method="dinic").flow_value for v in range(n)], float)
        out += readout[p] * flows / flows.sum()
    return out
