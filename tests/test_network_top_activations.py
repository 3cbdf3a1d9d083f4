"""Top-k max-activating contexts: equal to a brute-force sort of every activation (kept in memory,
read through hooks written here, one text at a time), the same for any batching, sharding or
interruption, and a planted neuron finds exactly its token."""

from __future__ import annotations

import json

import datasets
import pytest
import torch
from tiny_models import random_texts, tiny_causal_lm, tiny_model

import hf_seqinterp as hsi
from hf_seqinterp.errors import InvalidParameterError, UnsupportedModelError
from hf_seqinterp.network import top_activations
from hf_seqinterp.shards import ShardStore

pytestmark = pytest.mark.usefixtures("one_thread")

TEXTS = random_texts(50, seed=7)
K = 4
#: per architecture: (block list, FFN down projection, attention output projection) read by hand
MODULES = {
    "bert": (lambda m: m.bert.encoder.layer, "output.dense", "attention.output.dense"),
    "llama": (lambda m: m.model.layers, "mlp.down_proj", "self_attn.o_proj"),
}
MODELS = {"bert": lambda: tiny_model("bert"), "llama": lambda: tiny_causal_lm("llama")}


@pytest.fixture(scope="module", params=["bert", "llama"])
def case(request):
    return request.param, hsi.ModelAdapter(*MODELS[request.param]())


def expected_top(model, tokenizer, name, texts, layer, k, per_text=False):
    """Per kind, per unit: the k best (value, text, position) under (value desc, text, position);
    with `per_text`, only each text's best token (its first on ties) competes."""
    blocks, ffn, attn = MODULES[name]
    block = blocks(model)[layer]
    heads = model.config.num_attention_heads
    acts: dict[str, list] = {"ffn": [], "head": [], "residual": []}
    for i, text in enumerate(texts):
        enc = tokenizer(text, return_tensors="pt", return_special_tokens_mask=True)
        special = enc.pop("special_tokens_mask")[0].bool()
        seen: dict[str, torch.Tensor] = {}
        hooks = [
            block.get_submodule(path).register_forward_pre_hook(
                lambda _m, a, key=key, seen=seen: seen.update({key: a[0][0]})
            )
            for key, path in (("ffn", ffn), ("head", attn))
        ]
        try:
            with torch.no_grad():
                out = model(**enc, output_hidden_states=True)
        finally:
            for h in hooks:
                h.remove()
        seen["residual"] = out.hidden_states[layer + 1][0]
        seen["head"] = seen["head"].reshape(len(special), heads, -1).norm(dim=-1)
        for kind, values in seen.items():
            acts[kind] += [(values[t].float(), i, t) for t in range(len(special)) if not special[t]]
    top = {}
    for kind, entries in acts.items():
        units = entries[0][0].shape[0]
        top[kind] = []
        for u in range(units):
            ranked = sorted(((float(v[u]), i, t) for v, i, t in entries), key=lambda e: (-e[0], e[1], e[2]))
            if per_text:
                ranked = [e for n, e in enumerate(ranked) if all(f[1] != e[1] for f in ranked[:n])]
            top[kind].append(ranked[:k])
    return top


def as_lists(ds, kind):
    rows = ds.filter(lambda r: r["kind"] == kind)
    units = max(rows["unit"]) + 1
    out = [[] for _ in range(units)]
    for r in rows:
        assert r["rank"] == len(out[r["unit"]]) + 1
        out[r["unit"]].append((r["activation"], r["text_index"], r["position"]))
    return out


def test_equals_a_brute_force_sort_of_every_activation(case):
    name, adapter = case
    layer = 0  # hidden_states[-1] of a Llama is after the final norm: compare a block whose output it holds
    got = top_activations(adapter, TEXTS, units=["ffn", "head", "residual"], layers=layer, k=K, batch_size=1,
                          shard_size=16, progress=False)
    expected = expected_top(adapter.model, adapter.tokenizer, name, TEXTS, layer, K)
    for kind in ("ffn", "head", "residual"):
        mine = as_lists(got, kind)
        assert len(mine) == len(expected[kind])
        for unit, (a, b) in enumerate(zip(mine, expected[kind])):
            assert [(t, p) for _, t, p in a] == [(t, p) for _, t, p in b], (kind, unit)
            assert [v for v, _, _ in a] == pytest.approx([v for v, _, _ in b], abs=1e-6)
    assert set(got["layer"]) == {layer}


def test_per_text_ranks_each_texts_best_token_once(case):
    name, adapter = case
    got = top_activations(adapter, TEXTS, units=["ffn", "residual"], layers=0, k=K, batch_size=1, shard_size=16,
                          per_text=True, progress=False)
    expected = expected_top(adapter.model, adapter.tokenizer, name, TEXTS, 0, K, per_text=True)
    for kind in ("ffn", "residual"):
        for unit, (a, b) in enumerate(zip(as_lists(got, kind), expected[kind])):
            assert [(t, p) for _, t, p in a] == [(t, p) for _, t, p in b], (kind, unit)
            assert len({t for _, t, _ in a}) == K  # K different texts


def test_batching_and_sharding_change_no_value(case):
    _, adapter = case
    one = top_activations(adapter, TEXTS, units="ffn", layers=0, k=K, batch_size=1, shard_size=50, progress=False)
    many = top_activations(adapter, TEXTS, units="ffn", layers=0, k=K, batch_size=8, shard_size=7, progress=False)
    for a, b in zip(as_lists(one, "ffn"), as_lists(many, "ffn")):
        assert [v for v, _, _ in a] == pytest.approx([v for v, _, _ in b], abs=1e-5)


def test_tokens_and_contexts_come_from_the_text(case):
    _, adapter = case
    ds = top_activations(adapter, TEXTS, units="residual", layers=-1, k=2, window=3, progress=False)
    for row in ds.select(range(0, len(ds), 7)):
        enc = adapter.encode([TEXTS[row["text_index"]]])[0]
        assert row["token"] == enc.tokens[row["position"]]
        assert not enc.special_tokens_mask[row["position"]]
        assert "⟦" + enc.covered_text(row["position"]).strip() + "⟧" in row["context"]


def planted_llama(token_id: int):
    """A tiny Llama whose FFN neuron 5 of block 0 is silu(10 x_0)·x_0 with x_0 ≠ 0 only for `token_id`:
    embedding dimension 0 is zero except for that token, and block 0's attention writes nothing."""
    from transformers import AutoModelForCausalLM

    base, tokenizer = tiny_causal_lm("llama")
    model = AutoModelForCausalLM.from_config(base.config).eval()
    model.load_state_dict(base.state_dict())
    with torch.no_grad():
        emb = model.get_input_embeddings().weight
        emb[:, 0] = 0.0
        emb[token_id, 0] = 3.0
        block = model.model.layers[0]
        block.self_attn.o_proj.weight.zero_()
        for proj in (block.mlp.gate_proj, block.mlp.up_proj):
            proj.weight[5] = 0.0
        block.mlp.gate_proj.weight[5, 0] = 10.0
        block.mlp.up_proj.weight[5, 0] = 1.0
    return model, tokenizer


def test_a_planted_neuron_finds_exactly_its_token():
    _, tokenizer = tiny_causal_lm("llama")
    adapter = hsi.ModelAdapter(*tiny_causal_lm("llama"))
    encodings = adapter.encode(TEXTS)
    counts: dict[int, int] = {}
    for enc in encodings:
        for i in enc.input_ids:
            counts[i] = counts.get(i, 0) + 1
    token_id = max(counts, key=counts.get)
    occurrences = [(t, p) for t, enc in enumerate(encodings) for p, i in enumerate(enc.input_ids) if i == token_id]
    assert len(occurrences) > 8
    planted = hsi.ModelAdapter(*planted_llama(token_id))
    ds = top_activations(planted, TEXTS, units="ffn", layers=0, k=8, batch_size=6, progress=False)
    rows = ds.filter(lambda r: r["unit"] == 5)
    assert list(zip(rows["text_index"], rows["position"])) == occurrences[:8]  # ties: text, then position
    assert min(rows["activation"]) > 0
    assert set(rows["token"]) == {tokenizer.convert_ids_to_tokens(token_id)}


def run_in(adapter, out, **kwargs):
    return top_activations(adapter, TEXTS, units=["ffn", "head"], layers=[0, 1], k=K, batch_size=4, shard_size=8,
                           output_dir=out, progress=False, **kwargs)


def test_resume_after_an_interruption_gives_the_same_result(tmp_path, monkeypatch):
    adapter = hsi.ModelAdapter(*tiny_model("bert"))
    reference = run_in(adapter, tmp_path / "reference")
    written = []
    original = ShardStore.write

    def crash_after_two(self, index, total, table):
        if len(written) == 2:
            raise KeyboardInterrupt("simulated crash")
        written.append(index)
        return original(self, index, total, table)

    monkeypatch.setattr(ShardStore, "write", crash_after_two)
    with pytest.raises(KeyboardInterrupt):
        run_in(adapter, tmp_path / "resumed")
    monkeypatch.setattr(ShardStore, "write", original)
    recomputed = []
    monkeypatch.setattr(ShardStore, "write", lambda self, i, n, t: recomputed.append(i) or original(self, i, n, t))
    resumed = run_in(adapter, tmp_path / "resumed")
    assert recomputed and not set(recomputed) & set(written)  # finished shards were reused
    assert resumed.to_list() == reference.to_list()
    on_disk = json.loads((tmp_path / "resumed" / "top_activations.json").read_text(encoding="utf-8"))
    assert on_disk == reference.to_list()
    assert datasets.Dataset.from_parquet(str(tmp_path / "resumed" / "top_activations.parquet")).to_list() == on_disk


def test_a_resume_with_other_settings_is_refused(tmp_path):
    adapter = hsi.ModelAdapter(*tiny_model("bert"))
    run_in(adapter, tmp_path)
    with pytest.raises(InvalidParameterError, match="k"):
        top_activations(adapter, TEXTS, units=["ffn", "head"], layers=[0, 1], k=K + 1, batch_size=4, shard_size=8,
                        output_dir=tmp_path, progress=False)


def test_bad_requests_name_the_fix():
    adapter = hsi.ModelAdapter(*tiny_model("bert"))
    with pytest.raises(InvalidParameterError, match="ffn, head, residual"):
        top_activations(adapter, TEXTS, units="neurons", progress=False)
    with pytest.raises(InvalidParameterError, match="2 blocks"):
        top_activations(adapter, TEXTS, layers=5, progress=False)
    with pytest.raises(InvalidParameterError, match="k must be"):
        top_activations(adapter, TEXTS, k=0, progress=False)


def test_the_model_is_left_as_it_was():
    model, tokenizer = tiny_model("bert")
    hooks = [(dict(m._forward_hooks), dict(m._forward_pre_hooks)) for m in model.modules()]
    model.train()
    try:
        top_activations(hsi.ModelAdapter(model, tokenizer), TEXTS[:5], units=["ffn", "head", "residual"],
                        progress=False)
        assert model.training
        assert [(dict(m._forward_hooks), dict(m._forward_pre_hooks)) for m in model.modules()] == hooks
    finally:
        model.eval()


def test_a_block_without_a_down_projection_is_refused():
    model, tokenizer = tiny_model("bert")
    adapter = hsi.ModelAdapter(model, tokenizer)
    from hf_seqinterp.network.units import down_projection

    layer = adapter.layers[0]
    original = layer.output.dense
    layer.output.dense = torch.nn.Identity()
    try:
        with pytest.raises(UnsupportedModelError, match="units='residual' or 'head'"):
            down_projection(adapter, 0)
    finally:
        layer.output.dense = original
