"""Multivariate time series: the .ts loader, the series adapter (PatchTST, PatchTSMixer heads),
SeriesExplanation and the methods over (time, channel) cells.

Exact references: the model called directly (outputs, forecast windows); Captum's
IntegratedGradients, Occlusion and FeatureAblation on the same forward function; IG completeness
per row; Shapley/KernelSHAP efficiency; batch == one by one for every method; channel additivity of
PatchTST (channel erasure == exact channel Shapley values); ground truth from a model trained on the
box task.
"""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch
from conftest import REPO, SHARED
from timeseries_models import FORECASTERS, HORIZON, forecaster_inputs, tiny_forecaster, tiny_series_model

from hf_seqinterp.errors import (
    InvalidInputError,
    InvalidParameterError,
    UnknownTargetError,
    UnsupportedModelError,
)
from hf_seqinterp.timeseries import (
    SeriesAdapter,
    SeriesExplanation,
    channel_names,
    dataset_to_series_explanations,
    explain_series,
    fixed_length,
    load_ts,
    series_dataset,
    series_explanations_to_dataset,
    series_methods,
)
from hf_seqinterp.timeseries.metrics import precision_recall_areas, top_k_precision

sys.path.insert(0, str(REPO / "recipes"))
from train_forecaster import CHANNELS, copied_values, copy_r2, hits, lagged_copy, train_forecaster
from train_patchtst import accuracy, box_task, train_box_model

TS_DIR = SHARED / "data" / "timeseries"
needs_uea = pytest.mark.skipif(not (TS_DIR / "BasicMotions_TRAIN.ts").exists(), reason=f"UEA data not found at {TS_DIR}")
FAST = {"integrated_gradients": {"n_steps": 16}, "occlusion": {"window": 4}, "kernel_shap": {"window": 8, "n_samples": 60},
        "shapley_sampling": {"window": 8, "n_samples": 3}, "tsr": {}}


def series(n: int = 3, seed: int = 1, t: int = 24, c: int = 3) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, t, c)).astype(np.float32)


# ----------------------------------------------------------------------------- loader
TS_TEXT = """# a comment
@problemName Toy
@timeStamps false
@missing true
@univariate false
@dimensions 2
@equalLength false
@classLabel true up down
@data
1,2,3:4,5,6:up
7,?,9,10:11,12,13,14:down
"""


def test_ts_file_becomes_a_dataset_with_values_labels_and_missing_as_nan(tmp_path):
    path = tmp_path / "toy.ts"
    path.write_text(TS_TEXT)
    ds = load_ts(path, channel_names=["a", "b"])
    assert ds.features["label"].names == ["up", "down"] and ds["label"] == [0, 1]
    np.testing.assert_array_equal(np.array(ds[0]["past_values"]), [[1, 4], [2, 5], [3, 6]])
    second = np.array(ds[1]["past_values"], dtype=np.float64)
    assert second.shape == (4, 2) and np.isnan(second[1, 0]) and second[3, 1] == 14
    assert channel_names(ds) == ["a", "b"] and channel_names(ds.select([1])) == ["a", "b"]
    regression = TS_TEXT.replace("@classLabel true up down", "@targetLabel true").replace(":up", ":0.5").replace(":down", ":-2")
    path.write_text(regression)
    assert load_ts(path)["label"] == [0.5, -2.0] and channel_names(load_ts(path)) == ["dim_0", "dim_1"]


@pytest.mark.parametrize("change, message", [
    (("1,2,3:4,5,6:up", "1,2,3:4,5:up"), "differ in length"),
    ((":down", ":sideways"), "not among @classLabel"),
    (("@timeStamps false", "@timeStamps true"), "time-stamped"),
    (("1,2,3:", "1,x,3:"), "not a number"),
])
def test_bad_ts_files_are_refused_with_the_reason(tmp_path, change, message):
    path = tmp_path / "bad.ts"
    path.write_text(TS_TEXT.replace(*change))
    with pytest.raises(InvalidInputError, match=message):
        load_ts(path)


@needs_uea
def test_uea_sets_load_with_their_shapes():
    motions = load_ts(TS_DIR / "BasicMotions_TRAIN.ts")
    assert len(motions) == 40 and np.array(motions[0]["past_values"]).shape == (100, 6)
    assert motions.features["label"].names == ["Standing", "Running", "Walking", "Badminton"]
    assert sorted(set(motions["label"])) == [0, 1, 2, 3]
    vowels = load_ts(TS_DIR / "JapaneseVowels_TRAIN.ts")
    lengths = [len(v) for v in vowels["past_values"]]
    assert len(vowels) == 270 and min(lengths) == 7 and max(lengths) <= 29
    assert {len(v[0]) for v in vowels["past_values"]} == {12} and len(vowels.features["label"].names) == 9


def test_arrays_and_fixed_length():
    ds = series_dataset(series(2), [0, 1], label_names=["x", "y"], channel_names=["p", "q", "r"])
    np.testing.assert_array_equal(np.array(ds[1]["past_values"], dtype=np.float32), series(2)[1])
    assert channel_names(ds) == ["p", "q", "r"]
    short = fixed_length(np.ones((3, 2)), 5)
    assert short.shape == (5, 2) and np.isnan(short[:2]).all() and (short[2:] == 1).all()
    np.testing.assert_array_equal(fixed_length(np.arange(10.0).reshape(5, 2), 2), [[6, 7], [8, 9]])
    with pytest.raises(InvalidInputError, match="channel names"):
        series_dataset(series(1), channel_names=["one"])


# ----------------------------------------------------------------------------- adapter
@pytest.mark.parametrize("family", ["patchtst", "patchtsmixer"])
@pytest.mark.parametrize("kind", ["classification", "regression", "prediction"])
def test_outputs_equal_a_direct_model_call(family, kind):
    model = tiny_series_model(family, kind)
    adapter = SeriesAdapter(model)
    x = series(2)
    expl = explain_series(adapter, x, "saliency", target="all" if kind == "classification" else None)
    with torch.no_grad():
        out = model(past_values=torch.tensor(x))
    direct = {"classification": lambda: torch.softmax(out[0], -1), "regression": lambda: out.regression_outputs,
              "prediction": lambda: out.prediction_outputs.reshape(2, -1)}[kind]()
    for i in range(2):
        np.testing.assert_allclose(expl[i].outputs, direct[i].numpy(), atol=1e-6)
    rows = {"classification": 4, "regression": 2, "prediction": 3}[kind]  # every class / output / channel
    assert expl[0].n_rows == rows and expl[0].attributions.shape == (rows, 24, 3)
    if kind == "prediction":  # default rows: each channel's forecast summed over the horizon
        sums = out.prediction_outputs[0].sum(0)
        np.testing.assert_allclose([r["input_score"] for r in expl[0].rows], sums.numpy(), atol=1e-5)


def test_forecast_targets_read_a_value_or_a_window():
    model = tiny_series_model("patchtst", "prediction")
    adapter = SeriesAdapter(model, channel_names=["x", "y", "z"])
    x = series(1)[0]
    with torch.no_grad():
        forecast = model(past_values=torch.tensor(x[None])).prediction_outputs[0].numpy()
    value = explain_series(adapter, x, "saliency", target=(2, "y"))
    window = explain_series(adapter, x, "saliency", target=((1, 4), None))
    assert value.rows[0]["input_score"] == pytest.approx(float(forecast[2, 1]), abs=1e-6)
    assert value.rows[0]["label"] == "t+3 y"
    assert window.rows[0]["input_score"] == pytest.approx(float(forecast[1:4].sum()), abs=1e-5)


@pytest.mark.parametrize("target, message", [(7, "not an output"), ("Sideways", "not an output"), ([0, 1], "2 targets for 1")])
def test_bad_targets_are_refused(target, message):
    adapter = SeriesAdapter(tiny_series_model())
    with pytest.raises(UnknownTargetError, match=message):
        explain_series(adapter, series(1)[0], "saliency", target=target)


def test_bad_inputs_models_and_parameters_are_refused():
    adapter = SeriesAdapter(tiny_series_model())
    with pytest.raises(InvalidInputError, match="fixed_length"):
        explain_series(adapter, series(1, t=20)[0], "saliency")
    with pytest.raises(InvalidInputError, match=r"\(time, 3\)"):
        explain_series(adapter, series(1, c=2)[0], "saliency")
    with pytest.raises(UnknownTargetError, match=r"\(step, channel\)"):
        explain_series(SeriesAdapter(tiny_series_model("patchtst", "prediction")), series(1)[0], "saliency", target=3)
    with pytest.raises(InvalidParameterError, match="score='prob'"):
        explain_series(SeriesAdapter(tiny_series_model("patchtst", "regression")), series(1)[0], "saliency", score="prob")
    with pytest.raises(InvalidParameterError, match="baseline='pad'"):
        explain_series(adapter, series(1)[0], "integrated_gradients", baseline="pad")
    with pytest.raises(InvalidParameterError, match="windw"):
        explain_series(adapter, series(1)[0], "occlusion", windw=3)
    with pytest.raises(UnsupportedModelError, match="distribution head"):
        SeriesAdapter(tiny_series_model("patchtst", "prediction", loss="nll"))


def test_the_model_is_left_as_it_was_also_after_a_failure(monkeypatch):
    model = tiny_series_model().train()
    adapter = SeriesAdapter(model)
    explain_series(adapter, series(2), "integrated_gradients", n_steps=4)
    assert model.training and not any(p.grad is not None for p in model.parameters())
    seen = []

    def failing(values, observed=None, covariates=None):
        seen.append(model.training)
        raise RuntimeError("out of memory")

    monkeypatch.setattr(adapter, "outputs", failing)
    with pytest.raises(RuntimeError, match="out of memory"):
        explain_series(adapter, series(2), "saliency")
    assert seen == [False] and model.training


# ----------------------------------------------------------------------------- explanation
def test_views_and_round_trips(tmp_path):
    adapter = SeriesAdapter(tiny_series_model("patchtst", "prediction"), channel_names=["x", "y", "z"])
    x = series(2)
    x[0, 3, 1] = np.nan  # unobserved
    expls = explain_series(adapter, x, "integrated_gradients", n_steps=8)
    expl = expls[0]
    assert expl.observed is not None and not expl.observed[3, 1] and expl.values[3, 1] == 0
    grid = expl.grid(1)
    assert list(expl.channel_totals(1)) == ["x", "y", "z"]
    assert sum(expl.channel_totals(1).values()) == pytest.approx(float(grid.sum(dtype=np.float64)), abs=1e-6)
    np.testing.assert_allclose(expl.time_totals(1), grid.sum(1), atol=1e-6)
    assert expl.top_cells(1, row=1)[0][2] == pytest.approx(float(grid.flat[np.abs(grid).argmax()]))
    assert SeriesExplanation.from_dict(expl.to_dict()) == expl
    ds = series_explanations_to_dataset(expls, labels=[1, 0])
    ds.save_to_disk(tmp_path / "ds")
    import datasets

    assert dataset_to_series_explanations(datasets.load_from_disk(tmp_path / "ds")) == expls
    with pytest.raises(InvalidParameterError, match="3 rows"):
        expl.grid(3)


# ----------------------------------------------------------------------------- exactness
@pytest.fixture(scope="module")
def plain():
    """A PatchTST classifier without scaling, with its forward function for Captum."""
    model = tiny_series_model(scaling=None)
    return SeriesAdapter(model), lambda v: model(past_values=v).prediction_logits


@pytest.mark.parametrize("baseline", ["zero", "mean", "blur"])
def test_integrated_gradients_equals_captum(plain, baseline):
    from captum.attr import IntegratedGradients

    from hf_seqinterp.timeseries.baselines import baseline_values

    adapter, forward = plain
    x = torch.tensor(series(2))
    ours = explain_series(adapter, x.numpy(), "integrated_gradients", target=1, n_steps=20, baseline=baseline)
    base = baseline_values(x, torch.ones_like(x, dtype=torch.bool), baseline)
    ref = IntegratedGradients(forward).attribute(x, baselines=base, target=1, n_steps=20, method="gausslegendre")
    for i in range(2):
        np.testing.assert_allclose(ours[i].attributions[0], ref[i].detach().numpy(), atol=1e-4)


@pytest.mark.parametrize("method, reference", [("saliency", "Saliency"), ("gradient_x_input", "InputXGradient")])
@pytest.mark.parametrize("max_batch_series", [256, 1])  # the batch's own forward differentiated, or separate chunks
def test_one_pass_gradients_equal_captum(plain, method, reference, max_batch_series):
    import captum.attr

    adapter, forward = plain
    x = torch.tensor(series(3))
    ours = explain_series(adapter, x.numpy(), method, target=[1, 2, None], max_batch_series=max_batch_series)
    predicted = int(forward(x[2:]).argmax())
    explainer = getattr(captum.attr, reference)(forward)
    for i, target in enumerate([1, 2, predicted]):
        kwargs = {"abs": True} if reference == "Saliency" else {}
        ref = explainer.attribute(x[i : i + 1].clone().requires_grad_(), target=target, **kwargs)
        np.testing.assert_allclose(ours[i].attributions[0], ref[0].detach().numpy(), atol=1e-6)
        assert ours[i].rows[0]["target"] == target


def test_tsr_equals_its_definition_computed_mask_by_mask(plain):
    """Δ_t, the relevant steps and Δ_{t,c} recomputed from single saliency maps of masked copies."""
    adapter, _ = plain
    x = series(2, seed=4)
    ours = explain_series(adapter, x, "tsr", target=1, time_quantile=0.5)

    def saliency(values):
        return explain_series(adapter, values, "saliency", target=1).attributions[0].astype(np.float64)

    for i in range(2):
        reference = saliency(x[i])
        delta_t = np.zeros(len(x[i]))
        for t in range(len(x[i])):
            masked = x[i].copy()
            masked[t] = 0.0
            delta_t[t] = np.abs(saliency(masked) - reference).sum()
        relevant = delta_t >= np.quantile(delta_t, 0.5)
        expected = np.zeros_like(reference)
        for t in np.flatnonzero(relevant):
            for c in range(x.shape[2]):
                masked = x[i].copy()
                masked[t, c] = 0.0
                expected[t, c] = delta_t[t] * np.abs(saliency(masked) - reference).sum()
        assert ours[i].rows[0]["relevant_steps"] == np.flatnonzero(relevant).tolist()
        np.testing.assert_allclose(ours[i].attributions[0], expected, rtol=1e-3, atol=1e-3 * np.abs(expected).max())


@pytest.mark.parametrize("channels, shape, stride", [("each", (4, 1), 2), ("all", (4, 3), 4)])
def test_occlusion_equals_captum(plain, channels, shape, stride):
    from captum.attr import Occlusion

    adapter, forward = plain
    x = torch.tensor(series(2))
    ours = explain_series(adapter, x.numpy(), "occlusion", target=2, window=4, stride=stride, channels=channels)
    ref = Occlusion(forward).attribute(x, sliding_window_shapes=shape, strides=(stride, shape[1]), baselines=0.0, target=2)
    for i in range(2):
        np.testing.assert_allclose(ours[i].attributions[0], ref[i].detach().numpy(), atol=1e-4)


def test_channel_erasure_equals_captum_feature_ablation_and_exact_channel_shapley(plain):
    from captum.attr import FeatureAblation

    adapter, forward = plain
    x = torch.tensor(series(2))
    erased = explain_series(adapter, x.numpy(), "channel_erasure", target=0, baseline="zero")
    ref = FeatureAblation(forward).attribute(x, baselines=0.0, target=0, feature_mask=torch.arange(3).expand(1, 24, 3))
    # PatchTST is channel-independent with a linear head: the logit is a sum over channels, so a
    # channel's erasure drop is its exact Shapley value (KernelSHAP enumerates all 2^3 coalitions)
    shap = explain_series(adapter, x.numpy(), "kernel_shap", target=0, window=24, n_samples=10)
    for i in range(2):
        totals = np.array(list(erased[i].channel_totals().values()))
        np.testing.assert_allclose(totals, ref[i, 0].detach().numpy(), atol=1e-5)
        assert shap[i].rows[0]["exact"]
        np.testing.assert_allclose(list(shap[i].channel_totals().values()), totals, atol=1e-5)


@pytest.mark.parametrize("family", ["patchtst", "patchtsmixer"])
def test_integrated_gradients_is_complete_per_row(family):
    adapter = SeriesAdapter(tiny_series_model(family, "prediction"))
    expl = explain_series(adapter, series(1)[0], "integrated_gradients", baseline="blur")
    assert expl.n_rows == 3 and not expl.warnings
    for k, row in enumerate(expl.rows):
        gap = row["input_score"] - row["baseline_score"]
        total = float(expl.attributions[k].sum(dtype=np.float64))
        assert abs(total - gap) <= 1e-2 * abs(gap) and row["convergence_delta"] == pytest.approx(total - gap, abs=1e-6)


@pytest.mark.parametrize("method", ["kernel_shap", "shapley_sampling"])
def test_shapley_estimators_are_efficient_per_row(method):
    adapter = SeriesAdapter(tiny_series_model("patchtsmixer", "regression"))
    expl = explain_series(adapter, series(1)[0], method, **FAST[method])
    for k, row in enumerate(expl.rows):
        assert float(expl.attributions[k].sum(dtype=np.float64)) == pytest.approx(
            row["input_score"] - row["baseline_score"], abs=1e-5)


@pytest.mark.parametrize("method", series_methods())
def test_batch_equals_one_by_one(method):
    adapter = SeriesAdapter(tiny_series_model())
    x = series(3)
    targets = [0, "LABEL_3", None]
    params = FAST.get(method, {})
    batched = explain_series(adapter, x, method, target=targets, **params)
    for i in range(3):
        alone = explain_series(adapter, x[i], method, target=targets[i], **params)
        np.testing.assert_allclose(batched[i].attributions, alone.attributions, atol=1e-5)
        assert batched[i].rows[0]["target"] == alone.rows[0]["target"]


# ----------------------------------------------------------------------------- attention rollout
@pytest.mark.parametrize("kind, use_cls_token", [("classification", False), ("classification", True), ("prediction", False)])
def test_attention_rollout_equals_a_brute_force_rollout_of_output_attentions(kind, use_cls_token):
    from transformers import PatchTSTConfig

    model = tiny_series_model(kind=kind, context_length=26, patch_length=4, patch_stride=3, use_cls_token=use_cls_token,
                              num_hidden_layers=2)
    assert isinstance(model.config, PatchTSTConfig) and model.config._attn_implementation == "sdpa"
    adapter = SeriesAdapter(model)
    x = series(2, t=26)
    ours = explain_series(adapter, x, "attention_rollout", target="all" if kind == "classification" else None)
    assert model.config._attn_implementation == "sdpa"  # switched to eager for the call only
    model.config._attn_implementation = "eager"
    try:
        with torch.no_grad():
            attentions = model(past_values=torch.tensor(x), output_attentions=True).attentions
    finally:
        model.config._attn_implementation = "sdpa"
    n_patches = 8  # (26 - 4) // 3 + 1 patches; the first 26 - (7·3 + 4) = 1 step is cut
    for i in range(2):
        for c in range(3):
            rollout = np.eye(n_patches + use_cls_token)
            for layer in attentions:
                fused = layer[i * 3 + c].double().mean(0).numpy()
                rollout = (0.5 * fused + 0.5 * np.eye(len(fused))) @ rollout
            readout = np.eye(len(rollout))[0] if use_cls_token else np.full(len(rollout), 1 / len(rollout))
            patches = (readout @ rollout)[use_cls_token:]
            expected = np.zeros(26)
            for t in range(26):
                covering = [p for p in range(n_patches) if 1 + 3 * p <= t < 1 + 3 * p + 4]
                expected[t] = sum(patches[p] for p in covering) / max(1, len(covering))
            for r in range(ours[i].n_rows):
                np.testing.assert_allclose(ours[i].attributions[r, :, c], expected, atol=1e-6)
            assert ours[i].attributions[0, 0, c] == 0.0  # before the first patch


def test_attention_rollout_refuses_models_it_cannot_follow():
    with pytest.raises(UnsupportedModelError, match="PatchTSMixer mixes patches with MLPs"):
        explain_series(SeriesAdapter(tiny_series_model("patchtsmixer")), series(1)[0], "attention_rollout")
    with pytest.raises(UnsupportedModelError, match="channel_attention=False"):
        explain_series(SeriesAdapter(tiny_series_model(channel_attention=True)), series(1)[0], "attention_rollout")


# ----------------------------------------------------------------------------- encoder–decoder forecasters
def forecaster_call(model, item: dict, future: np.ndarray, channels: int) -> np.ndarray:
    """The model called directly with `future` as its future values: the mean of each step's distribution."""
    squeeze = (lambda a: a[..., 0]) if channels == 1 else (lambda a: a)
    pv = squeeze(torch.tensor(item["past_values"])[None])
    with torch.no_grad():
        out = model(past_values=pv, past_observed_mask=torch.ones_like(pv), future_values=squeeze(torch.tensor(future)[None]),
                    past_time_features=torch.tensor(item["past_time_features"])[None],
                    future_time_features=torch.tensor(item["future_time_features"])[None])
        return model.output_distribution(out.params, loc=out.loc, scale=out.scale).mean.reshape(HORIZON, channels).numpy()


@pytest.mark.parametrize("channels", [2, 1])
@pytest.mark.parametrize("model_type", sorted(FORECASTERS))
def test_forecast_is_the_greedy_mean_path_of_direct_model_calls(model_type, channels):
    """Step h of the explained forecast equals the model's mean at h when called with the forecast's first
    h steps as future values and junk after them (the decoder reads only earlier steps)."""
    model = tiny_forecaster(model_type, channels)
    adapter = SeriesAdapter(model)
    items = forecaster_inputs(2, channels)
    tolerance = 5e-4 if model_type == "autoformer" else 1e-5  # Autoformer's FFT autocorrelation varies ~1e-4 with the batch
    expls = explain_series(adapter, items, "saliency", target=[(h, c) for h in range(HORIZON) for c in range(channels)][:1] * 2)
    for item, expl in zip(items, expls):
        forecast = np.asarray(expl.outputs, dtype=np.float64).reshape(HORIZON, channels)
        for h in range(HORIZON):
            future = forecast.astype(np.float32).copy()
            future[h:] = np.random.default_rng(h).normal(5.0, 3.0, size=future[h:].shape)  # junk step h must not read
            np.testing.assert_allclose(forecaster_call(model, item, future, channels)[h], forecast[h], rtol=tolerance, atol=1e-6)
        assert expl.rows[0]["input_score"] == pytest.approx(forecast[0, 0], rel=tolerance)


@pytest.mark.parametrize("model_type", sorted(FORECASTERS))
def test_forecaster_integrated_gradients_is_complete_and_equals_captum(model_type):
    from captum.attr import IntegratedGradients

    adapter = SeriesAdapter(tiny_forecaster(model_type))
    items = forecaster_inputs(2)
    ours = explain_series(adapter, items, "integrated_gradients", target=(2, 1), baseline="mean", n_steps=24)
    inputs, _ = adapter.prepare(items, None)
    values = torch.tensor(np.stack([x.values for x in inputs]))
    covariates = {k: torch.tensor(np.stack([x.covariates[k] for x in inputs])) for k in inputs[0].covariates}

    def forward(v, past_time_features, future_time_features):
        return adapter.outputs(v, None, {"past_time_features": past_time_features, "future_time_features": future_time_features})

    from hf_seqinterp.timeseries.baselines import baseline_values

    base = baseline_values(values, torch.ones_like(values, dtype=torch.bool), "mean")
    with adapter.evaluating():
        ref = IntegratedGradients(forward).attribute(
            values, baselines=base, target=2 * 2 + 1, n_steps=24, method="gausslegendre",
            additional_forward_args=(covariates["past_time_features"], covariates["future_time_features"]))
    for i, expl in enumerate(ours):
        np.testing.assert_allclose(expl.attributions[0], ref[i].detach().numpy(), atol=1e-5)
        row = expl.rows[0]
        assert float(expl.attributions[0].sum(dtype=np.float64)) == pytest.approx(row["input_score"] - row["baseline_score"], abs=1e-5)
        assert abs(row["input_score"] - row["baseline_score"]) > 1e-4  # a non-trivial difference to complete


@pytest.mark.parametrize("method", series_methods())
def test_forecaster_batch_equals_one_by_one(method):
    adapter = SeriesAdapter(tiny_forecaster("time_series_transformer"))
    items = forecaster_inputs(3, seed=2)
    targets = [(0, 1), ((1, 3), None), None]
    if method == "attention_rollout":  # PatchTST's patches only
        with pytest.raises(UnsupportedModelError, match="TimeSeriesTransformerForPrediction has another architecture"):
            explain_series(adapter, items, method)
        return
    params = {**FAST.get(method, {}), **({"window": 5} if method in ("occlusion", "kernel_shap", "shapley_sampling") else {})}
    batched = explain_series(adapter, items, method, target=targets, **params)
    for i in range(3):
        alone = explain_series(adapter, items[i], method, target=targets[i], **params)
        np.testing.assert_allclose(batched[i].attributions, alone.attributions, atol=1e-5)
        assert [r["label"] for r in batched[i].rows] == [r["label"] for r in alone.rows]
        assert np.isfinite(batched[i].attributions).all()


def test_forecaster_inputs_are_checked():
    adapter = SeriesAdapter(tiny_forecaster("informer"))
    item = forecaster_inputs(1)[0]
    with pytest.raises(InvalidInputError, match="missing: future_time_features"):
        explain_series(adapter, {k: v for k, v in item.items() if k != "future_time_features"}, "saliency")
    with pytest.raises(InvalidInputError, match="takes past_time_features, future_time_features"):
        explain_series(adapter, item["past_values"], "saliency")
    with pytest.raises(InvalidInputError, match=r"future_time_features has shape \(3, 2\)"):
        explain_series(adapter, {**item, "future_time_features": item["future_time_features"][:3]}, "saliency")
    with pytest.raises(InvalidInputError, match="not model inputs: future_values"):
        explain_series(adapter, {**item, "future_values": item["future_time_features"]}, "saliency")
    with pytest.raises(InvalidInputError, match=r"exactly 15 \(context_length 12 \+ max\(lags_sequence\) 3\)"):
        explain_series(adapter, {**item, "past_values": item["past_values"][1:]}, "saliency")


# ----------------------------------------------------------------------------- ground truth
def test_box_task_ground_truth():
    """A PatchTST trained on the box task (recipes/train_patchtst.py): IG, occlusion and TSR put their
    weight on the box, well above a random ranking, and TSR improves raw saliency's AUP."""
    threads = torch.get_num_threads()
    try:
        model = train_box_model()
    finally:
        torch.set_num_threads(threads)
    test_x, test_y, box = box_task(400, seed=2)
    assert accuracy(model, test_x, test_y) >= 0.95
    x, y, _ = box_task(12, seed=1)
    adapter = SeriesAdapter(model)
    chance = float(box.mean())  # AUP and top-k precision of a random ranking (about 0.12)
    aup = {}
    for method, params in [("saliency", {}), ("integrated_gradients", {"n_steps": 16}), ("occlusion", {"window": 4}),
                           ("tsr", {})]:
        expls = explain_series(adapter, x, method, target=y.tolist(), **params)
        aup[method] = np.mean([precision_recall_areas(e.grid(), box)[0] for e in expls])
        if method != "saliency":
            assert aup[method] > 2.5 * chance, (method, aup)
            assert np.mean([top_k_precision(e.grid(), box) for e in expls]) > 2 * chance, method
    assert aup["tsr"] > aup["saliency"] + 0.1, aup


@pytest.mark.slow
def test_forecaster_ground_truth_lagged_copy():
    """A forecaster trained in-process on the lagged-copy task (recipes/train_forecaster.py): the forecast
    of `copy` can only come from one cell of `source`; the methods find it."""
    model = train_forecaster()
    past, future = lagged_copy(1000, seed=1)
    assert copy_r2(model, past, future) > 0.98
    adapter = SeriesAdapter(model, channel_names=CHANNELS)
    x = past[:60]
    large = copied_values(x, 2) > 0.25
    for method, params, overall in [("saliency", {}, 0.95), ("integrated_gradients", {"n_steps": 16}, 0.85),
                                    ("occlusion", {"window": 1}, 0.85)]:
        found = hits(explain_series(adapter, x, method, target=(2, "copy"), **params), 2)
        assert found.mean() >= overall, method
        assert found[large].mean() >= 0.95, method


def test_precision_recall_areas_on_known_grids():
    box = np.zeros((4, 2), dtype=bool)
    box[:2, 0] = True
    inside = box.astype(float)
    # two equal box cells: S_p is one of them for p <= 0.5 (recall 1/2), both above (recall 1); trapezoid over 9 shares
    assert precision_recall_areas(inside, box) == pytest.approx((1.0, (0.5 * 4 + 0.75 + 1.0 * 3) / 8))
    assert precision_recall_areas(1 - inside, box)[0] == 0.0
    assert top_k_precision(inside + 0.1, box) == 1.0 and top_k_precision(1 - inside, box) == 0.0


def test_pictures_draw_the_grid_and_the_channel_totals(tmp_path):
    adapter = SeriesAdapter(tiny_series_model(), channel_names=["x", "y", "z"])
    expl = explain_series(adapter, series(1)[0], "gradient_x_input")
    figure = expl.plot(path=tmp_path / "grid.png")
    strips = [axis.images[0].get_array() for axis in figure.axes if axis.images]
    np.testing.assert_allclose(np.concatenate(strips).T, expl.grid(), atol=0)
    scale = float(np.abs(expl.grid()).max())
    assert figure.axes[0].images[0].get_clim() == (-scale, scale)
    bars = expl.plot_channels(path=tmp_path / "bars.png")
    heights = {tick.get_text(): patch.get_width() for tick, patch in zip(bars.axes[0].get_yticklabels(), bars.axes[0].patches)}
    assert heights == pytest.approx(expl.channel_totals())
    assert (tmp_path / "grid.png").read_bytes()[:4] == b"\x89PNG" and (tmp_path / "bars.png").stat().st_size > 0
