"""The registered explanation methods as plain data, so the command line can list them, show their
parameters and catch typos without importing torch.

Generated from the registry by `python -m hf_seqinterp.explainers`; tests/test_cli_fast.py checks that it
equals the live registry. Do not edit by hand.
"""

# What `explain()`, `model.explain()`, the pipeline and the CLI use when no method is named: integrated
# gradients, whose token scores add up to f(x) - f(baseline) (gradient x input is a first-order estimate).
DEFAULT_METHOD = "integrated_gradients"

# name -> one-line summary and parameter -> repr of its default
METHODS: dict[str, dict] = {
    "attention": {
        "summary": "Raw attention: the classified position's attention row in one layer, heads fused.",
        "parameters": {"layer": "-1", "head_fusion": "'mean'", "score": "'logit'"},
    },
    "attention_flow": {
        "summary": "Attention flow: max-flow through the layered attention graph (Abnar & Zuidema 2020).",
        "parameters": {"head_fusion": "'mean'", "start_layer": "0", "max_tokens": "128", "score": "'logit'"},
    },
    "attention_rollout": {
        "summary": "Attention rollout: residual-augmented attention multiplied across "
        "layers (Abnar & Zuidema 2020).",
        "parameters": {"head_fusion": "'mean'", "start_layer": "0", "score": "'logit'"},
    },
    "attnlrp": {
        "summary": "AttnLRP: relevance propagated layer by layer through attention (Achtibat et al. 2024).",
        "parameters": {"attention_rule": "'attnlrp'", "epsilon": "0.0", "gamma": "0.0", "score": "'logit'"},
    },
    "contextual_decomposition": {
        "summary": "Contextual decomposition: the part of the target logit due to "
        "each token, phrase or span.",
        "parameters": {
            "attention_rule": "'fixed'",
            "activation_rule": "'acd'",
            "normalize": "False",
            "phrases": "None",
            "interactions": "None",
            "include_hierarchy": "False",
            "hierarchy_percentile": "75.0",
            "max_batch_tokens": "4096",
            "score": "'logit'",
        },
    },
    "erasure": {
        "summary": "Leave-one-out erasure of tokens, words or given spans (Li, Monroe & Jurafsky 2016).",
        "parameters": {
            "level": "'token'",
            "spans": "None",
            "replacement": "'delete'",
            "relative": "False",
            "max_batch_tokens": "8192",
            "score": "'logit'",
        },
    },
    "gradient_rollout": {
        "summary": "Gradient-weighted attention rollout, Chefer et al. 2021 generic rule "
        "(ICCV, arXiv:2103.15679).",
        "parameters": {"start_layer": "0", "score": "'logit'"},
    },
    "gradient_x_input": {
        "summary": "Gradient × input: a_t = Σ_d x_{t,d} · ∂f/∂x_{t,d} (Shrikumar et al. 2016).",
        "parameters": {"at": "'auto'", "score": "'logit'"},
    },
    "integrated_gradients": {
        "summary": "Integrated gradients: path integral of the gradient from a baseline "
        "(Sundararajan et al. 2017).",
        "parameters": {
            "baseline": "'auto'",
            "n_steps": "50",
            "quadrature": "'gausslegendre'",
            "max_batch_tokens": "4096",
            "baseline_on": "'all'",
            "score": "'logit'",
        },
    },
    "kernel_shap": {
        "summary": "KernelSHAP: Shapley values as a weighted linear regression with efficiency "
        "imposed exactly (Lundberg & Lee 2017).",
        "parameters": {
            "n_samples": "500",
            "paired": "True",
            "seed": "0",
            "level": "'word'",
            "replacement": "'auto'",
            "max_batch_tokens": "8192",
            "score": "'logit'",
        },
    },
    "lime": {
        "summary": "LIME: a locally weighted ridge regression on random word/token removals (Ribeiro et "
        "al. 2016).",
        "parameters": {
            "n_samples": "500",
            "kernel_width": "25.0",
            "alpha": "1.0",
            "seed": "0",
            "level": "'word'",
            "replacement": "'auto'",
            "max_batch_tokens": "8192",
            "score": "'logit'",
        },
    },
    "occlusion": {
        "summary": "Occlusion: the score drop when a sliding window of k tokens or words is "
        "replaced (Zeiler & Fergus 2014).",
        "parameters": {
            "window": "3",
            "stride": "1",
            "level": "'token'",
            "replacement": "'auto'",
            "max_batch_tokens": "8192",
            "score": "'logit'",
        },
    },
    "random": {
        "summary": "Random scores per token, seeded: a sanity baseline for metric tables, not an "
        "explanation.",
        "parameters": {"distribution": "'uniform'", "seed": "0", "score": "'logit'"},
    },
    "rationale": {
        "summary": "Rationale: the words a trained generator selects as enough for the prediction "
        "(Lei et al. 2016).",
        "parameters": {"generator": "None", "threshold": "None", "replacement": "None", "score": "'logit'"},
    },
    "saliency": {
        "summary": "Saliency: the norm of the score's gradient at each token embedding (Simonyan et "
        "al. 2014).",
        "parameters": {"norm": "'l2'", "score": "'logit'"},
    },
    "shapley_sampling": {
        "summary": "Shapley value sampling: average marginal gains over random feature "
        "orderings (Castro et al. 2009).",
        "parameters": {
            "n_samples": "25",
            "seed": "0",
            "level": "'word'",
            "replacement": "'auto'",
            "max_batch_tokens": "8192",
            "score": "'logit'",
        },
    },
}

# the series methods (hf_seqinterp.timeseries), the same way
SERIES_METHODS: dict[str, dict] = {
    "attention_rollout": {
        "summary": "Attention rollout over PatchTST's patches, mapped back to time steps "
        "(Abnar & Zuidema 2020).",
        "parameters": {"score": "'auto'", "max_batch_series": "256"},
    },
    "channel_erasure": {
        "summary": "Channel erasure: each whole variable replaced by the baseline, its drop "
        "spread over its steps.",
        "parameters": {"baseline": "'mean'", "sigma": "2.0", "score": "'auto'", "max_batch_series": "256"},
    },
    "gradient_x_input": {
        "summary": "Gradient × input: a_{t,c} = x_{t,c} · ∂f/∂x_{t,c} (Shrikumar et al. "
        "2016). 1 forward + 1 backward per row.",
        "parameters": {"score": "'auto'", "max_batch_series": "256"},
    },
    "integrated_gradients": {
        "summary": "Integrated gradients over (time, channel) cells (Sundararajan et al. 2017).",
        "parameters": {
            "baseline": "'zero'",
            "sigma": "2.0",
            "n_steps": "50",
            "quadrature": "'gausslegendre'",
            "score": "'auto'",
            "max_batch_series": "256",
        },
    },
    "kernel_shap": {
        "summary": "KernelSHAP over (window × channel) groups (Lundberg & Lee 2017), efficiency "
        "imposed exactly.",
        "parameters": {
            "n_samples": "None",
            "window": "10",
            "channels": "'each'",
            "seed": "0",
            "baseline": "'zero'",
            "sigma": "2.0",
            "score": "'auto'",
            "max_batch_series": "256",
        },
    },
    "occlusion": {
        "summary": "Temporal occlusion: windows of `window` steps (stride `stride`) replaced by the "
        "baseline (Zeiler & Fergus 2014).",
        "parameters": {
            "window": "10",
            "stride": "None",
            "channels": "'each'",
            "baseline": "'zero'",
            "sigma": "2.0",
            "score": "'auto'",
            "max_batch_series": "256",
        },
    },
    "saliency": {
        "summary": "Saliency: a_{t,c} = |∂f/∂x_{t,c}| (Simonyan et al. 2014). Unsigned. 1 forward + "
        "1 backward per row.",
        "parameters": {"score": "'auto'", "max_batch_series": "256"},
    },
    "shapley_sampling": {
        "summary": "Shapley value sampling over (window × channel) groups (Castro et al. 2009).",
        "parameters": {
            "n_samples": "None",
            "window": "10",
            "channels": "'each'",
            "seed": "0",
            "baseline": "'zero'",
            "sigma": "2.0",
            "score": "'auto'",
            "max_batch_series": "256",
        },
    },
    "tsr": {
        "summary": "Temporal saliency rescaling of a gradient method: R^TSR_{t,c} = Δ_t · Δ_{t,c} (Ismail "
        "et al. 2020).",
        "parameters": {
            "base_method": "'saliency'",
            "base_params": "None",
            "time_quantile": "0.55",
            "baseline": "'zero'",
            "sigma": "2.0",
            "score": "'auto'",
            "max_batch_series": "256",
        },
    },
}
