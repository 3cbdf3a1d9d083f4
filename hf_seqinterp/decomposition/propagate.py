r"""The two-stream forward: every activation of the model carried as (β, γ) for many relevant sets.

A pass takes a padded batch of texts and a list of rows, each row one (text, relevant set S) pair
given as a boolean mask over the text's padded positions. The rows are the batch dimension of the
decomposed forward, so one pass evaluates many relevant sets (of one or several texts).

Quantities that depend only on the total β + γ — the attention probabilities of the "fixed" rule,
the LayerNorm/RMSNorm scale, f(β + γ) in the "acd" nonlinearity rule — are the same for every
relevant set of a text (β + γ is the model's own activation), so they are computed once per
distinct text of a pass, from its first row, and shared by the text's rows.

Cost per row: the affine maps of the value, output and MLP run on both parts (2×); no backward pass.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from ..adapter import Batch, ModelAdapter
from ..errors import InvalidParameterError
from ..utils import chunks
from . import rules
from .architectures import Affine, Block, ModelSpec, Norm, model_spec


@dataclass
class Decomposition:
    """Output of a pass: relevant and irrelevant logits per row, and optionally every layer's parts."""

    relevant: torch.Tensor  # (rows, num_labels)
    irrelevant: torch.Tensor  # (rows, num_labels)
    hidden: list[rules.Pair] | None = None  # (β, γ), each (rows, L, d): block inputs, then the final output


class Decomposer:
    """Runs contextual decomposition for a model with the chosen attention and activation rules."""

    def __init__(
        self,
        adapter: ModelAdapter,
        *,
        attention_rule: str = "fixed",
        activation_rule: str = "acd",
        normalize: bool = False,
    ):
        if attention_rule not in rules.ATTENTION_RULES:
            raise InvalidParameterError(
                f"attention_rule={attention_rule!r} is not one of {', '.join(rules.ATTENTION_RULES)}."
            )
        if activation_rule not in rules.ACTIVATION_RULES:
            raise InvalidParameterError(
                f"activation_rule={activation_rule!r} is not one of {', '.join(rules.ACTIVATION_RULES)}."
            )
        self.adapter = adapter
        self.attention_rule = attention_rule
        self.activation_rule = activation_rule
        self.normalize = bool(normalize)
        self.passes = self.sets = 0  # counters: decomposed passes run, relevant sets scored
        model_spec(adapter)  # fail early for unsupported models

    # ----------------------------------------------------------------- public entry points
    @torch.no_grad()
    def __call__(
        self, batch: Batch, rows: torch.Tensor, relevant: torch.Tensor, *, trace: bool = False
    ) -> Decomposition:
        """Decompose the logits of `batch.take(rows)` for the relevant sets `relevant` (rows, L) bool."""
        spec = model_spec(self.adapter)  # rebuilt per pass: follows model.double(), .to(device), ...
        self.passes += 1
        self.sets += len(rows)
        embeds = spec.embed(batch)
        rows = rows.to(embeds.device)
        relevant = relevant.to(embeds.device)
        zero = torch.zeros((), dtype=embeds.dtype, device=embeds.device)
        picked = embeds[rows]
        keep = relevant.unsqueeze(-1)
        x = (torch.where(keep, picked, zero), torch.where(keep, zero, picked))
        for affine in spec.stem:
            x = self._affine(x, affine)
        ctx = _Context.build(batch, rows, spec, embeds)
        hidden = [] if trace else None
        for block in spec.blocks:
            if hidden is not None:
                hidden.append(x)
            x = self._block(block, x, ctx)
        if spec.final_norm is not None:
            x = self._norm(spec.final_norm, x, ctx)
        if hidden is not None:
            hidden.append(x)
        position = 0 if self.adapter.pooling == "first" else -1
        x = (x[0][:, position], x[1][:, position])
        for i, op in enumerate(spec.head):
            last = i == len(spec.head) - 1
            x = (
                self._affine(x, op, bias_to="irrelevant" if last else "split")
                if isinstance(op, Affine)
                else self._act(ctx, op, x)
            )
        return Decomposition(x[0], x[1], hidden)

    def score_sets(
        self,
        batch: Batch,
        text_rows: Sequence[int],
        token_sets: Sequence[Sequence[int]],
        *,
        max_batch_tokens: int = 4096,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(relevant, irrelevant) logits, each (n_sets, num_labels), for relevant sets given as token
        indices of the text in row `text_rows[i]` of `batch`; many sets per pass, under a token budget."""
        width = batch.input_ids.shape[1]
        per_pass = max(1, max_batch_tokens // width)
        rel_parts, irrel_parts = [], []
        for part in chunks(len(token_sets), per_pass):
            rows = torch.as_tensor(list(text_rows[part]), dtype=torch.long)
            mask = torch.zeros((len(rows), width), dtype=torch.bool)
            for j, (row, tokens) in enumerate(zip(rows.tolist(), token_sets[part])):
                positions = [batch.starts[row] + t for t in tokens]
                mask[j, positions] = True
            out = self(batch, rows, mask)
            rel_parts.append(out.relevant)
            irrel_parts.append(out.irrelevant)
        return torch.cat(rel_parts), torch.cat(irrel_parts)

    # ----------------------------------------------------------------- pieces of the forward
    def _affine(self, x: rules.Pair, op: Affine, *, bias_to: str = "split") -> rules.Pair:
        return rules.affine(x, op.weight, op.bias, bias_to=bias_to)

    def _act(self, ctx: _Context, fn, *inputs: rules.Pair) -> rules.Pair:
        # f(β + γ) is shared per text only where it enters γ alone ("acd"): in the other rules it
        # enters β, and an empty relevant set must keep β = 0 to the last bit.
        whole = ctx.to_rows(fn(*(ctx.shared(x) for x in inputs))) if self.activation_rule == "acd" else None
        return rules.nonlinear(fn, *inputs, rule=self.activation_rule, whole=whole)

    @staticmethod
    def _norm(norm: Norm, x: rules.Pair, ctx: _Context) -> rules.Pair:
        if norm.rms:
            return rules.rms_norm(
                x, norm.weight, norm.eps, scale=ctx.to_rows(rules.rms_norm_scale(ctx.shared(x), norm.eps))
            )
        scale = ctx.to_rows(rules.layer_norm_scale(ctx.shared(x), norm.eps))
        return rules.layer_norm(x, norm.weight, norm.bias, norm.eps, scale=scale)

    def _residual(self, x: rules.Pair, update: rules.Pair) -> rules.Pair:
        out = rules.add(x, update)
        return rules.normalize(out) if self.normalize else out

    def _block(self, block: Block, x: rules.Pair, ctx: _Context) -> rules.Pair:
        if block.pre_norm:
            x = self._residual(x, self._attention(block, self._norm(block.attn_norm, x, ctx), ctx))
            return self._residual(x, self._mlp(block, self._norm(block.mlp_norm, x, ctx), ctx))
        x = self._norm(block.attn_norm, self._residual(x, self._attention(block, x, ctx)), ctx)
        return self._norm(block.mlp_norm, self._residual(x, self._mlp(block, x, ctx)), ctx)

    def _mlp(self, block: Block, x: rules.Pair, ctx: _Context) -> rules.Pair:
        up = self._affine(x, block.mlp_in)
        if block.mlp_gate is None:
            inner = self._act(ctx, block.act, up)
        else:
            act = block.act
            inner = self._act(ctx, lambda gate, value: act(gate) * value, self._affine(x, block.mlp_gate), up)
        return self._affine(inner, block.mlp_out)

    def _attention(self, block: Block, x: rules.Pair, ctx: _Context) -> rules.Pair:
        groups = block.num_heads // block.num_kv_heads
        value = _heads(self._affine(x, block.value), block.num_kv_heads, groups)
        if self.attention_rule == "fixed":
            probs = self._text_attention(block, x, ctx)
            context = rules.attention_fixed(probs if len(ctx.first) == 1 else probs[ctx.inverse], value)
        else:
            query = _heads(self._affine(x, block.query), block.num_heads)
            key = _heads(self._affine(x, block.key), block.num_kv_heads, groups)
            if ctx.rotary is not None:
                cos, sin = ctx.rotary[0][ctx.inverse], ctx.rotary[1][ctx.inverse]
                query = tuple(rules.rotate(part, cos, sin) for part in query)
                key = tuple(rules.rotate(part, cos, sin) for part in key)
            context = rules.attention_qk_split(query, key, value, ctx.mask[ctx.inverse], block.scaling)
        return self._affine(tuple(_merge_heads(part) for part in context), block.out)

    @staticmethod
    def _text_attention(block: Block, x: rules.Pair, ctx: _Context) -> torch.Tensor:
        """Attention probabilities of the total input, computed once per distinct text of the pass (the
        total is the same for every relevant set of a text) — (texts, heads, L, L)."""
        whole = ctx.shared(x)
        linear = torch.nn.functional.linear
        query = _split_heads(linear(whole, block.query.weight, block.query.bias), block.num_heads)
        key = _split_heads(linear(whole, block.key.weight, block.key.bias), block.num_kv_heads)
        if ctx.rotary is not None:
            query, key = rules.rotate(query, *ctx.rotary), rules.rotate(key, *ctx.rotary)
        return rules.attention_probs(
            query, _repeat_heads(key, block.num_heads // block.num_kv_heads), ctx.mask, block.scaling
        )


@dataclass
class _Context:
    """Per-pass facts shared by every layer. Masks and rotary tables are kept once per distinct text
    (`first`: a representative row of each; `inverse`: row -> distinct text)."""

    first: torch.Tensor
    inverse: torch.Tensor
    mask: (
        torch.Tensor
    )  # (texts, 1, L, L) additive: 0 where a query may attend to a key, else the dtype's minimum
    rotary: tuple[torch.Tensor, torch.Tensor] | None  # (texts, 1, L, d) cos and sin

    def shared(self, x: rules.Pair) -> torch.Tensor:
        """β + γ of each distinct text's representative row."""
        return x[0][self.first] + x[1][self.first]

    def to_rows(self, per_text: torch.Tensor) -> torch.Tensor:
        """A per-text tensor made to broadcast against the rows."""
        return per_text if len(self.first) == 1 else per_text[self.inverse]

    @classmethod
    def build(cls, batch: Batch, rows: torch.Tensor, spec: ModelSpec, embeds: torch.Tensor) -> _Context:
        texts, inverse = torch.unique(rows, return_inverse=True)
        first = torch.full_like(texts, len(rows)).scatter_reduce(
            0, inverse, torch.arange(len(rows), device=rows.device), reduce="amin"
        )
        keys = batch.attention_mask[texts].bool()
        allowed = keys[:, None, :].expand(-1, keys.shape[1], -1)
        if spec.causal:
            allowed = allowed & torch.ones_like(allowed[0]).tril()
        zero = torch.zeros((), dtype=embeds.dtype, device=keys.device)
        mask = torch.where(allowed, zero, torch.finfo(embeds.dtype).min).unsqueeze(1)
        rotary = None
        if spec.rotary is not None:
            cos, sin = spec.rotary(embeds, batch.position_ids)
            rotary = (cos[texts].unsqueeze(1), sin[texts].unsqueeze(1))
        return cls(first, inverse, mask, rotary)


def _split_heads(x: torch.Tensor, heads: int) -> torch.Tensor:
    """(..., L, heads·d) -> (..., heads, L, d)."""
    return x.unflatten(-1, (heads, -1)).transpose(-2, -3)


def _merge_heads(x: torch.Tensor) -> torch.Tensor:
    """(..., heads, L, d) -> (..., L, heads·d)."""
    return x.transpose(-2, -3).flatten(-2)


def _heads(x: rules.Pair, heads: int, groups: int = 1) -> rules.Pair:
    """Both parts split into heads (and repeated for grouped-query attention)."""
    return tuple(_repeat_heads(_split_heads(part, heads), groups) for part in x)


def _repeat_heads(x: torch.Tensor, groups: int) -> torch.Tensor:
    """Grouped-query attention: each key/value head serves `groups` query heads."""
    return x if groups == 1 else x.repeat_interleave(groups, dim=-3)
