"""Training a rationale generator against any `*ForSequenceClassification` model, with Accelerate.

    generator = RationaleGenerator.for_predictor(adapter, estimator="hardkuma", target_rate=0.15)
    result = train_rationale_generator(adapter, texts, generator=generator,
                                       args=RationaleTrainingArguments(epochs=3, output_dir="runs/gen"))
    result.generator.save_pretrained("my-generator")        # or .push_to_hub("me/my-generator")

Each step samples selections for a batch of texts, runs the predictor on the selected words only
(`masking.soft_masked_logits`: unselected words' embeddings replaced by [MASK]/[PAD]/... or their
attention masked) and minimises the objective of `objectives.py`. The predictor is frozen by default
(explaining it: the target is its own prediction on the full text) or trained jointly on gold labels
(`train_predictor=True`, Lei et al.'s setup). Batches group texts of similar length; with
`output_dir`, checkpoints (generator, predictor if trained, optimiser, objective and RNG states) are
written each epoch or every `save_steps`, and `resume_from_checkpoint` continues a run exactly.
Launch with `accelerate launch` for several GPUs: each process takes its share of every batch list.
"""

from __future__ import annotations

import logging
import math
import random
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..adapter import Encoding, ModelAdapter, Target
from ..errors import InvalidInputError, InvalidParameterError, UnsupportedModelError
from ..masking import feature_groups, soft_masked_logits
from ..utils import length_grouped_batches, progress_bar
from .gates import top_units
from .modeling import RationaleGenerator, WordBatch, predictor_states, unit_words
from .objectives import HardKumaObjective, RateLagrangian, ReinforceObjective

logger = logging.getLogger(__name__)
STATE_FILE = "training_state.pt"


@dataclass
class RationaleTrainingArguments:
    """Optimisation settings (the objective's λ1, λ2 and target rate live in the generator's config).

    Attributes:
        output_dir: where checkpoints (`checkpoint-<step>/`) and the final generator are written.
        epochs, max_steps: passes over the texts; `max_steps` stops earlier.
        batch_size: texts per step (per process), grouped by length.
        learning_rate / predictor_learning_rate: AdamW rates of the generator / a jointly trained predictor.
        train_predictor: train the predictor on gold labels with the generator (else it is frozen
            and the generator is trained to keep its predictions).
        max_grad_norm: gradient clipping (None: off).
        baseline_momentum: REINFORCE's moving-average baseline, b ← m·b + (1 − m)·mean cost (with one
            sample per text).
        samples_per_text: draws of the gates per text and step, all in one predictor forward; with
            more than one, REINFORCE's baseline for each draw is the mean cost of the text's other
            draws (leave-one-out), and HardKuma's task loss is the mean over the draws (a Monte Carlo
            estimate of the relaxed gradient with less variance).
        lagrange_lr, lagrange_alpha, lambda_init, lambda_max, rate_penalty: the augmented Lagrangian
            that holds the selection rate at the generator's target_rate (η, α, the initial λ0, the
            bound |λ0| ≤ λ_max and the quadratic weight μ; see objectives.py).
        save_steps: checkpoint every this many steps (None: at the end of each epoch).
        logging_steps: steps averaged into each `history` entry.
        resume_from_checkpoint: a `checkpoint-<step>` folder to continue from.
    """

    output_dir: str | None = None
    epochs: int = 3
    max_steps: int | None = None
    batch_size: int = 16
    learning_rate: float = 1e-3
    predictor_learning_rate: float = 2e-5
    train_predictor: bool = False
    weight_decay: float = 0.0
    max_grad_norm: float | None = 5.0
    baseline_momentum: float = 0.9
    samples_per_text: int = 1
    lagrange_lr: float = 0.05
    lagrange_alpha: float = 0.5
    lambda_init: float = 0.0
    lambda_max: float = 5.0
    rate_penalty: float = 50.0
    seed: int = 0
    save_steps: int | None = None
    logging_steps: int = 10
    resume_from_checkpoint: str | None = None
    progress: bool = True
    cpu: bool = False

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "logging_steps", "samples_per_text"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise InvalidParameterError(f"{name}={getattr(self, name)!r} must be a positive integer.")
        for name in ("max_steps", "save_steps"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 1):
                raise InvalidParameterError(f"{name}={value!r} must be a positive integer or None.")
        if not 0 <= self.baseline_momentum < 1 or not 0 <= self.lagrange_alpha < 1:
            raise InvalidParameterError("baseline_momentum and lagrange_alpha must lie in [0, 1).")


@dataclass
class RationaleTrainingResult:
    """The trained generator, the averaged training statistics, and where things were written."""

    generator: RationaleGenerator
    history: list[dict[str, float]] = field(default_factory=list)
    global_step: int = 0
    seconds: float = 0.0
    output_dir: str | None = None


class LengthGroupedSampler:
    """Batches of similar-length texts, shuffled per epoch with a seeded generator (epoch e always
    gives the same batches, which makes resuming exact)."""

    def __init__(self, lengths: Sequence[int], batch_size: int, seed: int):
        self.lengths, self.batch_size, self.seed = list(lengths), batch_size, seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[list[int]]:
        rng = random.Random(self.seed * 100_003 + self.epoch)
        jittered = [length + rng.random() for length in self.lengths]  # random order among equal lengths
        batches = length_grouped_batches(jittered, self.batch_size)
        rng.shuffle(batches)
        return iter(batches)

    def __len__(self) -> int:
        return math.ceil(len(self.lengths) / self.batch_size)


class _RationaleSystem(nn.Module):
    """Generator + predictor as one module (so one DDP wrapper covers both); forward = one step's loss."""

    def __init__(self, generator: RationaleGenerator, adapter: ModelAdapter, objective, train_predictor: bool):
        super().__init__()
        self.generator = generator
        self.predictor = adapter.model
        self._adapter = adapter
        self._objective = objective
        self._train_predictor = train_predictor

    def forward(
        self, encodings: Sequence[Encoding], targets: torch.Tensor, samples: int = 1,
        states: Sequence[torch.Tensor] | None = None,
    ):
        """One step's loss; `samples` draws of the gates per text (rows sample-major); `states`: the
        texts' predictor states, read already (features="predictor")."""
        words = self.generator.word_batch(encodings, self._adapter, states)
        gate = self.generator.gate(words)
        if samples > 1:  # the same distributions, drawn `samples` times
            words, gate, encodings, targets = words.repeated(samples), gate.repeated(samples), list(encodings) * samples, targets.repeat(samples)
        z = gate.sample() * words.word_mask
        batch = self._adapter.collate(encodings)
        logits = soft_masked_logits(self._adapter, batch, words.token_values(z, batch), self.generator.config.replacement)
        task = F.cross_entropy(logits, targets, reduction="none")
        loss, stats = self._objective.loss(task, gate, z, words.sizes, self._train_predictor, samples)
        stats["fidelity"] = (logits.detach().argmax(-1) == targets).float().mean()
        return loss, stats


def make_objective(generator: RationaleGenerator, args: RationaleTrainingArguments):
    """The objective the generator's config asks for, with the optimisation settings of `args`."""
    config = generator.config
    lagrangian = None
    if config.holds_rate:
        lagrangian = RateLagrangian(config.target_rate, lr=args.lagrange_lr, alpha=args.lagrange_alpha,
                                    initial=args.lambda_init, bound=args.lambda_max, quadratic=args.rate_penalty)
    if config.estimator == "reinforce":
        return ReinforceObjective(config.sparsity, config.coherence, args.baseline_momentum, lagrangian)
    return HardKumaObjective(config.coherence, lagrangian)


def check_training_setup(adapter: ModelAdapter, generator: RationaleGenerator, train_predictor: bool) -> None:
    """Clear errors for predictors and generators that cannot be trained together."""
    generator.check_tokenizer(adapter.tokenizer)
    if adapter.problem_type != "single_label_classification":
        raise UnsupportedModelError(
            f"Rationale training supports single-label classifiers; {type(adapter.model).__name__} is a "
            f"{adapter.problem_type} model."
        )
    replacement = generator.config.replacement
    if replacement != "attention":
        try:
            adapter.require_inputs_embeds("rationale")
        except UnsupportedModelError as err:
            raise UnsupportedModelError(
                f"Training with replacement={replacement!r} replaces the input embeddings of unselected words "
                f"(z·E(x) + (1 − z)·E(r)), but {type(adapter.model).__name__}.forward() takes no `inputs_embeds`. "
                "Use a RationaleGenerator with replacement='attention' and estimator='reinforce', or a model "
                "class that accepts inputs_embeds."
            ) from err
    if replacement in ("mask", "pad", "unk"):
        adapter.token_id(replacement)
    if train_predictor and generator.config.features == "predictor":
        raise InvalidParameterError(
            "A generator with features='predictor' reads the frozen predictor's hidden states, so it explains a "
            "fixed classifier; train_predictor=True (the joint setting) needs features='embeddings'."
        )
    if not train_predictor and not any(p.requires_grad for p in generator.parameters()):
        raise InvalidParameterError("The generator has no trainable parameters.")


def _resolve_targets(
    adapter: ModelAdapter, encodings: list[Encoding], labels: Sequence[Target] | None, train_predictor: bool, size: int,
    logits: Sequence[torch.Tensor] | None = None,
) -> torch.Tensor:
    """Gold labels (joint training), else the predictor's predictions (`logits` of the texts, when
    computed already)."""
    if train_predictor:
        if labels is None or len(labels) != len(encodings):
            raise InvalidInputError(
                f"train_predictor=True trains on gold labels: pass one label per text "
                f"(got {'none' if labels is None else len(labels)} for {len(encodings)} texts)."
            )
        return torch.tensor([adapter.check_target(label) for label in labels], dtype=torch.long)
    if labels is not None:
        logger.warning("labels are ignored: a frozen predictor is explained against its own predictions.")
    return torch.stack(logits).argmax(-1) if logits is not None else predicted_labels(adapter, encodings, size)


@torch.no_grad()
def predicted_labels(adapter: ModelAdapter, encodings: Sequence[Encoding], batch_size: int = 32) -> torch.Tensor:
    """The predictor's predicted class of every text (dropout off), in length-grouped batches."""
    out = torch.empty(len(encodings), dtype=torch.long)
    with adapter.evaluating():
        for group in length_grouped_batches([len(e) for e in encodings], batch_size):
            logits = adapter.logits(adapter.collate([encodings[i] for i in group]))
            out[group] = logits.argmax(-1).cpu()
    return out


def train_rationale_generator(
    predictor: ModelAdapter,
    texts: Sequence[str],
    labels: Sequence[Target] | None = None,
    *,
    generator: RationaleGenerator | None = None,
    args: RationaleTrainingArguments | None = None,
) -> RationaleTrainingResult:
    """Train `generator` (default: `RationaleGenerator.for_predictor(predictor)`) on `texts`.

    Args:
        predictor: the classifier, as a ModelAdapter.
        texts: training texts (truncated to the model's maximum length).
        labels: gold labels (ids or names), needed with `args.train_predictor`.
        generator: the generator to train (its config holds the estimator and objective knobs).
        args: optimisation settings.

    A generator with features="predictor" gets the predictor's states of every text once, in the
    forwards that predict the explained classes, and keeps them for all epochs (texts × tokens ×
    hidden floats).
    """
    from accelerate import Accelerator
    from accelerate.utils import set_seed

    args = args or RationaleTrainingArguments()
    if not isinstance(predictor, ModelAdapter):
        raise InvalidParameterError(
            "predictor must be a ModelAdapter (ModelAdapter(model, tokenizer) or ModelAdapter.from_pretrained(path)), "
            f"got {type(predictor).__name__}."
        )
    generator = generator if generator is not None else RationaleGenerator.for_predictor(predictor)
    check_training_setup(predictor, generator, args.train_predictor)
    encodings = predictor.encode(texts)
    accelerator = Accelerator(cpu=args.cpu)
    set_seed(args.seed)
    model = predictor.model
    model.to(accelerator.device)
    generator.to(accelerator.device)
    states = logits = None
    if generator.config.features == "predictor":  # the frozen predictor's states, read once with its predictions
        states, logits = predictor_states(predictor, encodings, args.batch_size)
    targets = _resolve_targets(predictor, encodings, labels, args.train_predictor, args.batch_size, logits)
    objective = make_objective(generator, args)
    frozen = {name: p.requires_grad for name, p in model.named_parameters()}
    was_training = model.training
    started = time.perf_counter()
    try:
        if not args.train_predictor:
            model.requires_grad_(False)
        system = _RationaleSystem(generator, predictor, objective, args.train_predictor)
        groups = [{"params": [p for p in generator.parameters() if p.requires_grad], "lr": args.learning_rate}]
        if args.train_predictor:
            groups.append({"params": [p for p in model.parameters() if p.requires_grad], "lr": args.predictor_learning_rate})
        optimizer = torch.optim.AdamW(groups, weight_decay=args.weight_decay)
        sampler = LengthGroupedSampler([len(e) for e in encodings], args.batch_size, args.seed)
        # its own generator: creating an epoch's iterator must not draw from the global RNG (exact resuming)
        loader = torch.utils.data.DataLoader(
            range(len(encodings)), batch_sampler=sampler, collate_fn=torch.tensor,
            generator=torch.Generator().manual_seed(args.seed),
        )
        prepared, optimizer, loader = accelerator.prepare(system, optimizer, loader)
        loop = _Loop(accelerator, prepared, optimizer, loader, sampler, objective, encodings, targets, states, args)
        loop.run(generator, predictor)
    finally:
        for name, p in model.named_parameters():
            p.requires_grad_(frozen[name])
        model.train(was_training)
        generator.eval()
    if args.output_dir and accelerator.is_main_process:
        generator.save_pretrained(args.output_dir)
        if args.train_predictor:
            model.save_pretrained(Path(args.output_dir) / "predictor")
            predictor.tokenizer.save_pretrained(Path(args.output_dir) / "predictor")
    return RationaleTrainingResult(generator, loop.history, loop.step, time.perf_counter() - started, args.output_dir)


class _Loop:
    """The optimisation loop: steps, logging, checkpoints and resuming."""

    def __init__(self, accelerator, system, optimizer, loader, sampler, objective, encodings, targets, states, args):
        self.accelerator, self.system, self.optimizer = accelerator, system, optimizer
        self.loader, self.sampler, self.objective = loader, sampler, objective
        self.encodings, self.targets, self.states, self.args = encodings, targets, states, args
        self.history: list[dict[str, float]] = []
        self.step = 0
        self._pending: list[dict[str, float]] = []

    @property
    def total_steps(self) -> int:
        full = self.args.epochs * len(self.loader)
        return min(full, self.args.max_steps) if self.args.max_steps else full

    def run(self, generator: RationaleGenerator, adapter: ModelAdapter) -> None:
        args, acc = self.args, self.accelerator
        start_epoch, skip = 0, 0
        if args.resume_from_checkpoint:
            start_epoch, skip = self._resume(args.resume_from_checkpoint, generator, adapter)
        params = [p for group in self.optimizer.param_groups for p in group["params"]]
        enabled = args.progress and acc.is_main_process
        with progress_bar(self.total_steps, "rationale training", enabled=enabled, unit="step") as bar:
            bar.update(self.step)
            for epoch in range(start_epoch, args.epochs):
                self.sampler.set_epoch(epoch)
                batches = acc.skip_first_batches(self.loader, skip) if skip else self.loader
                generator.train()
                adapter.model.train(args.train_predictor)
                done = skip
                for done, rows in enumerate(batches, start=skip + 1):
                    stats = self._step(rows.tolist(), params)
                    self.step += 1
                    bar.update(1)
                    bar.set_postfix({k: f"{v:.3g}" for k, v in stats.items() if k in ("task_loss", "selection_rate")})
                    self._log(stats, epoch)
                    if args.save_steps and self.step % args.save_steps == 0:
                        self._save(generator, adapter, epoch, done)
                    if self.step >= self.total_steps:
                        break
                skip = 0
                if args.save_steps is None:
                    self._save(generator, adapter, epoch, done)
                if self.step >= self.total_steps:
                    break

    def _step(self, rows: list[int], params: list[torch.nn.Parameter]) -> dict[str, float]:
        targets = self.targets[rows].to(self.accelerator.device)
        states = None if self.states is None else [self.states[i] for i in rows]
        loss, stats = self.system([self.encodings[i] for i in rows], targets, self.args.samples_per_text, states)
        self.accelerator.backward(loss)
        if self.args.max_grad_norm is not None:
            self.accelerator.clip_grad_norm_(params, self.args.max_grad_norm)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        reduced = {k: float(self.accelerator.reduce(v.detach().float(), "mean")) for k, v in stats.items()}
        self.objective.update(reduced)
        reduced["loss"] = float(loss.detach())
        lagrangian = getattr(self.objective, "lagrangian", None)
        if lagrangian is not None:
            reduced["lambda"] = lagrangian.multiplier
        return reduced

    def _log(self, stats: dict[str, float], epoch: int) -> None:
        self._pending.append(stats)
        if len(self._pending) < self.args.logging_steps and self.step < self.total_steps:
            return
        entry = {"step": self.step, "epoch": epoch + 1}
        entry.update({k: float(np.mean([s[k] for s in self._pending])) for k in self._pending[0]})
        self.history.append(entry)
        self._pending = []

    # ----------------------------------------------------------------- checkpoints
    def _save(self, generator: RationaleGenerator, adapter: ModelAdapter, epoch: int, batches_done: int) -> None:
        """`checkpoint-<step>/`: generator, predictor (when trained), optimiser/objective/RNG state."""
        if not self.args.output_dir:
            return
        acc = self.accelerator
        acc.wait_for_everyone()
        folder = Path(self.args.output_dir) / f"checkpoint-{self.step}"
        if acc.is_main_process:
            generator.save_pretrained(folder / "generator")
            if self.args.train_predictor:
                adapter.model.save_pretrained(folder / "predictor")
            state = {
                "step": self.step,
                "epoch": epoch,
                "batches_done": batches_done,
                "optimizer": self.optimizer.state_dict(),
                "objective": self.objective.state_dict(),
                "history": self.history,
                "rng": {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()},
                "args": asdict(self.args),
            }
            if torch.cuda.is_available():
                state["rng"]["cuda"] = torch.cuda.get_rng_state_all()
            acc.save(state, folder / STATE_FILE)
        acc.wait_for_everyone()

    def _resume(self, checkpoint: str, generator: RationaleGenerator, adapter: ModelAdapter) -> tuple[int, int]:
        folder = Path(checkpoint)
        if not (folder / STATE_FILE).is_file():
            raise InvalidParameterError(
                f"resume_from_checkpoint={checkpoint!r} is not a checkpoint folder (no {STATE_FILE}); pass one of "
                "the checkpoint-<step> folders under output_dir."
            )
        state: dict[str, Any] = torch.load(folder / STATE_FILE, map_location="cpu", weights_only=False)
        unwrap = self.accelerator.unwrap_model
        unwrap(self.system).generator.load_state_dict(RationaleGenerator.from_pretrained(folder / "generator").state_dict())
        if self.args.train_predictor:
            trained = type(adapter.model).from_pretrained(folder / "predictor", dtype=adapter.model.dtype)
            adapter.model.load_state_dict(trained.state_dict())
        self.optimizer.load_state_dict(state["optimizer"])
        self.objective.load_state_dict(state["objective"])
        self.history = list(state["history"])
        self.step = int(state["step"])
        torch.set_rng_state(state["rng"]["torch"])
        np.random.set_state(state["rng"]["numpy"])
        random.setstate(state["rng"]["python"])
        if "cuda" in state["rng"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["rng"]["cuda"])
        epoch, done = int(state["epoch"]), int(state["batches_done"])
        return (epoch, done) if done < len(self.loader) else (epoch + 1, 0)


def distil_word_scores(
    generator: RationaleGenerator,
    predictor: ModelAdapter,
    texts: Sequence[str],
    word_scores: Sequence[np.ndarray],
    *,
    epochs: int = 3,
    batch_size: int = 16,
    learning_rate: float = 3e-3,
    rank_by: str = "signed",
    seed: int = 0,
    states: Sequence[torch.Tensor] | None = None,
) -> list[float]:
    r"""Warm start: fit the generator's gates to the top-k words of an attribution method
    (k = round(target_rate · n) per text of n words; y_j = 1 for those), wholly selected or not at all,

        loss = − Σ_j [y_j log P(z_j = 1) + (1 − y_j) log P(z_j = 0)] / n

    (for Bernoulli gates, the cross-entropy of p_j = P(z_j = 1); a HardKuma gate fitted to P(z_j > 0)
    alone could still pass a selected word at a fraction of its embedding, z_j ∈ (0, 1), which the
    predictor never sees at inference),

    before training with the objective (`train_rationale_generator`), e.g. with the word scores of
    integrated gradients or erasure (`Explanation.word_attributions()` values) computed once. For a
    generator of phrases or sentences, a unit scores the mean of its words and y marks the best
    units up to target_rate · n words (`gates.top_units`). `rank_by="abs"` ranks by |score|. A
    generator with features="predictor" gets the predictor's states of every text once, kept for
    all epochs, or takes `states` (`predictor_states(predictor, predictor.encode(texts))[0]`), read
    already, e.g. for several generators of the same texts.
    Returns the mean loss of each epoch; the generator is left in eval mode.
    """
    rate = generator.config.target_rate
    if rate is None:
        raise InvalidParameterError("distil_word_scores selects round(target_rate · n) words: give the generator a target_rate.")
    generator.check_tokenizer(predictor.tokenizer)
    encodings = predictor.encode(texts)
    if len(word_scores) != len(encodings):
        raise InvalidInputError(f"Got {len(word_scores)} word-score arrays for {len(encodings)} texts; give one per text.")
    words = WordBatch.from_texts(encodings, 0, "cpu", generator.config.unit)  # the units and their sizes
    if states is not None and generator.config.features != "predictor":
        raise InvalidParameterError("states= is for a generator that reads the predictor's states (features='predictor').")
    if generator.config.features == "predictor" and states is None:
        states = predictor_states(predictor, encodings, batch_size)[0]
    elif states is not None and len(states) != len(encodings):
        raise InvalidInputError(f"Got the states of {len(states)} texts for {len(encodings)} texts; give one per text.")
    labels = torch.zeros(words.word_mask.shape)
    for row, (scores, encoding, units) in enumerate(zip(word_scores, encodings, words.groups)):
        scores = np.asarray(scores, dtype=np.float64)
        word_groups = feature_groups(encoding, "word")
        if len(scores) != len(word_groups):
            raise InvalidInputError(
                f"Text {row} has {len(word_groups)} words but {len(scores)} scores; score the words of "
                "`predictor.encode(text)` (word_attributions() of an explanation of that text)."
            )
        scores = np.abs(scores) if rank_by == "abs" else scores
        sizes = words.sizes[row, : len(units)].cpu().numpy()
        unit_scores = [scores[members].mean() for members in unit_words(encoding, units)]
        chosen = top_units(np.asarray(unit_scores), sizes, round(rate * len(word_groups)))
        labels[row, : len(units)] = torch.from_numpy(chosen.astype(np.float32))
    labels = labels.to(generator.device)
    params = [p for p in generator.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=learning_rate)
    sampler = LengthGroupedSampler([len(e) for e in encodings], batch_size, seed)
    history = []
    generator.train()
    try:
        with progress_bar(epochs * len(sampler), "warm start", unit="step") as bar:
            for epoch in range(epochs):
                sampler.set_epoch(epoch)
                total = 0.0
                for group in sampler:
                    batch = generator.word_batch(
                        [encodings[i] for i in group], states=None if states is None else [states[i] for i in group])
                    y = labels[group][:, : batch.word_mask.shape[1]]
                    log_off, log_on = generator.gate(batch).log_point_masses()
                    mask = batch.word_mask.to(log_on.dtype)
                    nll = -(y * log_on + (1 - y) * log_off)
                    loss = (nll * mask).sum(-1) / mask.sum(-1).clamp(min=1.0)
                    optimizer.zero_grad()
                    loss.mean().backward()
                    optimizer.step()
                    total += float(loss.detach().sum())
                    bar.update(1)
                history.append(total / len(encodings))
    finally:
        generator.eval()
    return history
