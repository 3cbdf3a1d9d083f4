"""The model sweep: every sequence-classification model type of transformers, built tiny, times every
registered method, each result checked against the model or an exact invariant (see `checks`)."""
