"""`hf-seqinterp` command line.

    hf-seqinterp explain "a gripping, funny film" "dull and overlong"      # bundled default model
    hf-seqinterp explain "text" --model PATH_OR_HUB_ID --method integrated_gradients -p n_steps=32
    hf-seqinterp explain "text" --json          # Explanations as JSON on stdout
    hf-seqinterp explain "text" --html out.html  # self-contained HTML page
    hf-seqinterp explain --model QA_MODEL --question "who?" --context "..."    # question answering
    hf-seqinterp explain "context" --model MC_MODEL --choice "one" --choice "two"  # multiple choice
    hf-seqinterp methods                         # registered methods with one-line descriptions
    hf-seqinterp evaluate data.tsv --model PATH --limit 200        # rank every applicable method
    hf-seqinterp evaluate val.jsonl --eraser-docs docs/ --metrics token_f1,iou_f1,auprc
    hf-seqinterp explain-dataset data.tsv --output-dir out --method gradient_x_input \
        --method integrated_gradients -p integrated_gradients.n_steps=20 [--push-to-hub user/repo]
    accelerate launch -m hf_seqinterp.cli explain-dataset ...   # the same on several processes/GPUs

Each subcommand is a pair of functions, `add_<name>_arguments(parser)` and `run_<name>(args)`,
listed in `COMMANDS`. Parsing, `--help`, unknown methods or parameters, missing files and model
folders are answered before torch or transformers is imported (`preflight`), from the static
method table in `hf_seqinterp.method_table`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from .checks import check_model_source, unknown_method_message, unknown_parameters_message
from .errors import RunInterrupted, SeqInterpError
from .method_table import DEFAULT_METHOD, METHODS, SERIES_METHODS
from .validation import AGGREGATION_STRATEGIES, batch_size_arg, positive_int


def parse_param(text: str) -> tuple[str, Any]:
    """`key=value` with the value parsed as JSON when possible (`n_steps=32`, `baseline=mask`)."""
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"expected key=value, got {text!r}")
    key, raw = text.split("=", 1)
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        value = raw
    return key.strip(), value


def _read_texts(args: argparse.Namespace) -> list[str]:
    """The texts from the arguments (and --question), then --file, in order; blank lines are kept
    (and skipped later)."""
    texts = list(args.texts) + list(getattr(args, "question", None) or [])
    if args.file == "-":
        texts += [line.rstrip("\r\n") for line in sys.stdin]
    elif args.file:
        with open(args.file, encoding="utf-8") as source:
            texts += [line.rstrip("\r\n") for line in source]
    if not any(text.strip() for text in texts):
        raise SeqInterpError(
            "no texts given: pass them as arguments or with --file" + (" (every line is blank)" if texts else "")
        )
    return texts


def _method_list(args: argparse.Namespace) -> list[str]:
    """--method (repeatable) plus the comma-separated --methods alias, in order, without repeats."""
    names = [*(getattr(args, "method", None) or []), *(getattr(args, "methods", None) or [])]
    return list(dict.fromkeys(names))


def add_length_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--max-length", type=positive_int, help="tokens per text, special tokens included (default: the model's maximum)"
    )
    parser.add_argument(
        "--truncation-side", choices=("right", "left"),
        help="keep the first (right, the default) or the last (left) tokens of longer texts",
    )


def add_method_arguments(parser: Any, default: str = DEFAULT_METHOD) -> None:
    """--method (repeatable) and its comma-separated alias --methods, on `parser` or an argument group."""
    parser.add_argument(
        "--method", action="append", metavar="METHOD",
        help=f"explanation method, repeatable (see `hf-seqinterp methods`; default: {default})",
    )
    parser.add_argument("--methods", type=_names, metavar="A,B", help="the same as one --method per name")


def load_adapter(model: str | None, args: argparse.Namespace | None = None):
    """The ModelAdapter for --model (the bundled default when not given), with a clear error;
    `args` carries --max-length and --truncation-side where the command has them."""
    from .adapter import ModelAdapter

    lengths = {key: getattr(args, key, None) for key in ("max_length", "truncation_side")}
    try:
        return ModelAdapter.from_pretrained(model, verbose=getattr(args, "verbose", False), **lengths)
    except SeqInterpError:
        raise
    except OSError as err:
        reason = str(err).strip().rstrip(".")
        raise SeqInterpError(f"could not load model {model!r}: {reason}. Pass a model folder or a Hub id.") from err


# ----------------------------------------------------------------------------- explain
def add_head_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of the model's head (`heads.*.options`); `_head_options` reads them back."""
    parser.add_argument(
        "--max-new-tokens", type=positive_int,
        help="causal LMs and encoder–decoders: tokens to generate when no target is given (greedy; default 20)",
    )
    parser.add_argument(
        "--contrast", metavar="TEXT",
        help="causal LMs: a foil continuation of the same length; rows explain log p(target) - log p(foil)",
    )
    parser.add_argument(
        "--chat-template", action="store_true",
        help="causal LMs: render each prompt as a user turn of the tokenizer's chat template",
    )
    parser.add_argument(
        "--aggregation-strategy", choices=AGGREGATION_STRATEGIES,
        help="token classifiers: explain entities grouped as the token-classification pipeline groups them "
        "(default: one row per word not predicted O)",
    )
    parser.add_argument(
        "--max-answer-len", type=positive_int,
        help="question answering: the longest answer, in tokens, the model's answer may be (default 15)",
    )


def add_explain_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("texts", nargs="*", help="texts to explain")
    parser.add_argument("--file", help="read more texts from this file, one per line ('-' for stdin)")
    parser.add_argument(
        "--text-pair", action="append", metavar="TEXT",
        help="second segment of a sentence pair (NLI, paraphrase): once for every text, or once per text, in order",
    )
    qa = parser.add_argument_group("question answering and multiple choice")
    qa.add_argument("--question", action="append", metavar="TEXT", help="a question (the same as a text), repeatable")
    qa.add_argument(
        "--context", action="append", metavar="TEXT",
        help="the context of the questions: once for every question, or once per question (as --text-pair)",
    )
    qa.add_argument(
        "--choice", action="append", metavar="TEXT",
        help="an option of a multiple-choice model, repeatable: every text is explained with these options",
    )
    parser.add_argument("--model", help="model folder or Hub id (default: the bundled sentiment model)")
    add_method_arguments(parser)
    parser.add_argument(
        "--target",
        help="class id or label name to explain (default: the predicted class); for a causal LM or an "
        "encoder–decoder, the continuation or target text to explain (default: the one it generates); for a token "
        "classifier, a label or entity type, or a word index (default: every word not predicted O); for question "
        "answering, the answer's text (default: the model's answer); for multiple choice, an option's index or text "
        "(default: the model's choice)",
    )
    add_head_arguments(parser)
    parser.add_argument(
        "-p", "--param", action="append", type=parse_param, default=[], metavar="[METHOD.]KEY=VALUE",
        help="method parameter, repeatable; METHOD.KEY=VALUE sets it for one method, KEY=VALUE for all "
        "(e.g. -p n_steps=32 -p baseline=mask -p score=log_prob)",
    )
    parser.add_argument("--batch-size", type=batch_size_arg, help="texts per batch")
    parser.add_argument("--no-truncation", action="store_true", help="fail on texts longer than the model accepts")
    add_length_arguments(parser)
    parser.add_argument("--words", action="store_true", help="also print word-level scores")
    parser.add_argument("--html", metavar="FILE", help="write a self-contained HTML page")
    parser.add_argument("--json", action="store_true", help="print the explanations as JSON instead of a heat map")
    parser.add_argument("--color", choices=("auto", "always", "never"), default="auto", help="terminal colours")


def _head_options(args: argparse.Namespace) -> dict[str, Any]:
    """The model-head options given on the command line (a head that does not take one refuses it)."""
    options = {
        "generation": {"max_new_tokens": args.max_new_tokens} if args.max_new_tokens else None,
        "contrast": args.contrast,
        "chat_template": args.chat_template or None,
        "aggregation_strategy": args.aggregation_strategy,
        "max_answer_len": args.max_answer_len,
    }
    return {name: value for name, value in options.items() if value is not None}


def run_explain(args: argparse.Namespace) -> int:
    from .explainers import get_explainer
    from .visualize import render_terminal, save_html, terminal_safe

    texts = _read_texts(args)
    specs = method_params(_method_list(args) or [DEFAULT_METHOD], args.param)
    adapter = load_adapter(args.model, args)
    target = adapter.check_target(args.target)
    kept = [i for i, text in enumerate(texts) if text.strip()]
    blank = [i for i, text in enumerate(texts) if not text.strip()]
    results: dict[int, list] = {i: [] for i in kept}
    if args.text_pair and args.context:
        raise SeqInterpError("give the second segments with --text-pair or with --context, not both")
    if args.choice and (args.text_pair or args.context):
        raise SeqInterpError("--choice gives a multiple-choice model's options; it takes no --text-pair or --context")
    pairs = args.text_pair or args.context
    if pairs and len(pairs) == len(texts) > 1:
        pairs = [pairs[i] for i in kept]
    elif pairs and len(pairs) == 1:
        pairs = pairs[0]
    inputs = [(texts[i], args.choice) if args.choice else texts[i] for i in kept]
    for name, params in specs.items():
        explainer = get_explainer(name).create(adapter, **params)
        explained = explainer.explain(
            inputs, target, text_pair=pairs, batch_size=args.batch_size,
            truncation=not args.no_truncation, progress=None, **_head_options(args),
        )
        for i, expl in zip(kept, explained):
            results[i].append(expl)
    if blank:
        lines = ", ".join(str(i + 1) for i in blank)
        print(f"skipped {len(blank)} blank input line(s): {lines}", file=sys.stderr)
    if args.html:
        save_html([expl for i in kept for expl in results[i]], args.html)
        print(f"wrote {Path(args.html).resolve()}", file=sys.stderr)
    if args.json:
        json.dump(_json_rows(texts, results, len(specs)), sys.stdout)
        sys.stdout.write("\n")
        return 0
    color = {"auto": None, "always": True, "never": False}[args.color]
    for i in range(len(texts)):
        if i not in results:
            print(f"(input {i + 1}: blank, skipped)\n")
            continue
        for expl in results[i]:
            for view in expl.row_views():  # one per explained row (one for classifiers)
                print(render_terminal(view, color=color))
                if args.words:
                    for word in view.to_words():
                        print(f"  {terminal_safe(word.text, newlines=False):>20s} {word.score:+.4f}")
                print()
    return 0


def _json_rows(texts: Sequence[str], results: dict[int, list], n_methods: int) -> list[dict[str, Any]]:
    """One entry per input and method, in input order; a blank input gives `{"skipped": ...}` entries."""
    rows: list[dict[str, Any]] = []
    for i, text in enumerate(texts):
        if i in results:
            rows += [expl.to_dict() for expl in results[i]]
        else:
            rows += [{"skipped": "blank input", "input": i + 1, "text": text}] * n_methods
    return rows


# ----------------------------------------------------------------------------- methods
def add_methods_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--series", action="store_true", help="list the time-series methods (explain-series) instead")


def run_methods(args: argparse.Namespace) -> int:
    table = SERIES_METHODS if args.series else METHODS
    width = max(map(len, table))
    for name, facts in table.items():
        params = ", ".join(f"{key}={default}" if default else key for key, default in facts["parameters"].items())
        default = "  (default method)" if name == DEFAULT_METHOD else ""
        print(f"{name:<{width}}  {facts['summary']}{default}")
        print(f"{'':<{width}}  parameters: {params}")
    return 0


# ----------------------------------------------------------------------------- evaluate
def _names(text: str) -> list[str]:
    return [name.strip() for name in text.split(",") if name.strip()]


def _floats(text: str) -> list[float]:
    try:
        return [float(x) for x in _names(text)]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None


def _top(text: str) -> str | int | float:
    if text == "gold":
        return text
    try:
        return float(text) if "." in text else int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--top takes 'gold', a token count or a fraction, got {text!r}") from None


def add_evaluate_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "data",
        help="a local CSV/TSV/JSON(L)/Parquet file, a folder saved with datasets' save_to_disk, an ERASER "
        "annotation JSONL (with --eraser-docs), or a Hub dataset id (needs network access)",
    )
    parser.add_argument("--model", help="model folder or Hub id (default: the bundled sentiment model)")
    data = parser.add_argument_group("data")
    data.add_argument("--split", help="split of a saved folder or Hub dataset (default: validation, test or train)")
    data.add_argument("--text-column", help="column with the texts (default: text, sentence, review, ...)")
    data.add_argument("--text-pair-column", help="column with the second segment of sentence pairs (NLI, paraphrase)")
    data.add_argument("--rationale-column", help="column of human rationales as [[start, end], ...] character spans")
    data.add_argument(
        "--rationale-words-column", help="column of human rationales as word indices or [start, end) word ranges"
    )
    data.add_argument("--eraser-docs", metavar="DIR", help="ERASER docs folder; DATA is then e.g. val.jsonl")
    data.add_argument("--limit", type=positive_int, help="use only the first N examples")
    add_length_arguments(data)
    methods = parser.add_argument_group("methods")
    add_method_arguments(methods, default="all that apply")
    methods.add_argument("--exclude", type=_names, default=[], help="comma-separated methods to leave out")
    methods.add_argument(
        "-p", "--param", action="append", type=parse_param, default=[], metavar="METHOD.KEY=VALUE",
        help="method parameter, repeatable (e.g. -p integrated_gradients.n_steps=16)",
    )
    methods.add_argument("--batch-size", type=batch_size_arg, help="texts per explanation batch")
    metrics = parser.add_argument_group("metrics")
    metrics.add_argument("--metrics", type=_names, help="comma-separated metrics (default: all that apply)")
    metrics.add_argument("--sort-by", help="metric that orders the table (default: the first)")
    metrics.add_argument("--replacement", help="how removed tokens are replaced: delete (default), mask, pad, ...")
    metrics.add_argument("--score", choices=("prob", "log_prob", "logit"), help="score of the target (default: prob)")
    metrics.add_argument("--bins", type=_floats, help="AOPC bins (default: 0.01,0.05,0.1,0.2,0.5)")
    metrics.add_argument("--rounding", choices=("ceil", "floor"), help="k = ceil or floor of b*n (default: ceil)")
    metrics.add_argument("--rank-by", choices=("signed", "abs"), help="rank tokens by signed (default) or |score|")
    metrics.add_argument("--level", choices=("token", "word"), help="remove tokens (default) or whole words")
    metrics.add_argument("--curve-points", type=positive_int, help="points of the deletion/insertion curves (default: 11)")
    metrics.add_argument("--top", type=_top, default="gold", help="plausibility rationale size: gold, N or a fraction")
    metrics.add_argument("--iou-threshold", type=float, default=0.5, help="IOU of a span match (default: 0.5)")
    parser.add_argument("--output-dir", default="hf-seqinterp-evaluation", help="where results.md/.json/.png go")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")


def scoped_params(params: Sequence[tuple[str, Any]]) -> dict[str, dict[str, Any]]:
    """{method: {key: value}} from METHOD.KEY=VALUE pairs (evaluate runs many methods: each is named)."""
    specs: dict[str, dict[str, Any]] = {}
    for key, value in params:
        method, dot, name = key.partition(".")
        if not dot or not name:
            raise SeqInterpError(f"-p {key}={value}: write METHOD.KEY=VALUE, e.g. integrated_gradients.n_steps=16")
        specs.setdefault(method, {})[name] = value
    return specs


def run_evaluate(args: argparse.Namespace) -> int:
    from .metrics import evaluate_methods, load_examples

    method_params = scoped_params(args.param)
    settings = {
        name: getattr(args, name)
        for name in ("replacement", "score", "bins", "rounding", "rank_by", "level", "curve_points")
        if getattr(args, name) is not None
    }
    data = load_examples(
        args.data,
        text_column=args.text_column,
        text_pair_column=args.text_pair_column,
        rationale_column=args.rationale_column,
        rationale_words_column=args.rationale_words_column,
        split=args.split,
        eraser_docs=args.eraser_docs,
        limit=args.limit,
    )
    adapter = load_adapter(args.model, args)
    report = evaluate_methods(
        adapter,
        data.inputs,
        rationales=data.rationales,
        methods=_method_list(args) or None,
        exclude=args.exclude,
        method_params=method_params,
        metrics=args.metrics,
        sort_by=args.sort_by,
        top=args.top,
        iou_threshold=args.iou_threshold,
        batch_size=args.batch_size,
        source=data.source,
        notes=data.notes,
        progress=not args.no_progress,
        **settings,
    )
    from .visualize import terminal_safe

    paths = report.save(args.output_dir)
    print(terminal_safe(report.to_markdown()))
    for path in paths.values():
        print(f"wrote {path.resolve()}", file=sys.stderr)
    return 0


# ----------------------------------------------------------------------------- explain-dataset
def add_dataset_run_arguments(parser: argparse.ArgumentParser) -> None:
    """The data, output folder and row selection of a resumable run over a dataset."""
    parser.add_argument("data", help="a .csv/.tsv/.json/.jsonl/.parquet file, a save_to_disk folder, or a Hub dataset id")
    parser.add_argument("--output-dir", required=True, help="folder for the Parquet shards; rerun to resume")
    parser.add_argument("--split", help="split of a DatasetDict or Hub dataset")
    parser.add_argument("--limit", type=positive_int, help="use only the first N rows")
    parser.add_argument("--text-column", help="column with the texts (default: text, sentence, content, ...)")


def add_explain_dataset_arguments(parser: argparse.ArgumentParser) -> None:
    add_dataset_run_arguments(parser)
    parser.add_argument("--text-pair-column", help="column with the second segment of sentence pairs (NLI, paraphrase)")
    parser.add_argument("--id-column", help="column copied into source_id")
    parser.add_argument("--label-column", help="column of gold class ids copied into label")
    parser.add_argument(
        "--target", help="class id or label name to explain (default: the predicted class); a causal LM's continuation "
        "or an encoder–decoder's target text"
    )
    parser.add_argument("--target-column", help="column with the class (or continuation) to explain, per row")
    parser.add_argument("--model", help="model folder or Hub id (default: the bundled sentiment model)")
    add_method_arguments(parser)
    add_head_arguments(parser)
    parser.add_argument(
        "-p", "--param", action="append", type=parse_param, default=[], metavar="[METHOD.]KEY=VALUE",
        help="method parameter, repeatable; METHOD.KEY=VALUE sets it for one method, KEY=VALUE for all "
        "(e.g. -p integrated_gradients.n_steps=20 -p score=log_prob)",
    )
    parser.add_argument("--batch-size", type=batch_size_arg, help="texts per batch (default: each method's own)")
    parser.add_argument("--shard-size", type=positive_int, default=256, help="source rows per shard file (default 256)")
    parser.add_argument("--no-truncation", action="store_true", help="fail on texts longer than the model accepts")
    add_length_arguments(parser)
    parser.add_argument("--mixed-precision", choices=("no", "fp16", "bf16"), help="default: Accelerate's configuration")
    parser.add_argument("--cpu", action="store_true", help="run on the CPU even if a GPU is available")
    parser.add_argument("--overwrite", action="store_true", help="delete shards of a different run in --output-dir")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    hub = parser.add_argument_group("publishing")
    hub.add_argument("--push-to-hub", metavar="REPO_ID", help="upload the explanations and a dataset card")
    hub.add_argument("--private", action="store_true", help="create the dataset repo private")
    hub.add_argument("--config-by", choices=("method", "model"), default="method", help="one config per ...")
    hub.add_argument("--license", help="license of the published dataset (card metadata)")
    hub.add_argument("--source-dataset", help="source dataset named in the card (default: DATA if a Hub id)")
    hub.add_argument("--model-id", help="the model's Hub id for the card, when --model is a local folder")


def method_params(methods: Sequence[str], params: Sequence[tuple[str, Any]]) -> dict[str, dict[str, Any]]:
    """{method: {key: value}} from --method and [METHOD.]KEY=VALUE pairs (scoped ones win)."""
    specs: dict[str, dict[str, Any]] = {m: {} for m in methods}
    scoped = []
    for key, value in params:
        method, dot, name = key.rpartition(".")
        if not dot:
            for spec in specs.values():
                spec[key] = value
        elif method not in specs:
            raise SeqInterpError(f"-p {key}=...: {method!r} is not one of the --method values {list(specs)}")
        else:
            scoped.append((method, name, value))
    for method, name, value in scoped:
        specs[method][name] = value
    return specs


def run_explain_dataset(args: argparse.Namespace) -> int:
    from accelerate import PartialState

    from .data import load_text_dataset
    from .distributed import explain_dataset
    from .hub import push_explanations_to_hub

    specs = method_params(_method_list(args) or [DEFAULT_METHOD], args.param)
    dataset = load_text_dataset(args.data, split=args.split)
    if args.limit is not None:
        dataset = dataset.select(range(min(args.limit, len(dataset))))
    with _log_to_stderr("hf_seqinterp"):
        result = explain_dataset(
            load_adapter(args.model, args), dataset, specs, output_dir=args.output_dir, text_column=args.text_column,
            text_pair_column=args.text_pair_column,
            id_column=args.id_column, label_column=args.label_column, target=args.target,
            target_column=args.target_column, head_options=_head_options(args), batch_size=args.batch_size,
            shard_size=args.shard_size,
            truncation=not args.no_truncation, mixed_precision=args.mixed_precision,
            cpu=True if args.cpu else None, overwrite=args.overwrite, progress=not args.no_progress,
        )
    if not PartialState().is_main_process:
        return 0
    print(f"{len(result)} explanations ({len(dataset)} rows x {len(specs)} methods) in {args.output_dir}", file=sys.stderr)
    if args.push_to_hub:
        source = args.source_dataset or (args.data if not Path(args.data).exists() else None)
        url = push_explanations_to_hub(
            result, args.push_to_hub, config_by=args.config_by, private=args.private or None,
            license=args.license, source_dataset=source, model_id=args.model_id,
        )
        print(f"pushed to {url}", file=sys.stderr)
    return 0


def add_top_activations_arguments(parser: argparse.ArgumentParser) -> None:
    add_dataset_run_arguments(parser)
    parser.add_argument("--model", help="model folder or Hub id (default: the bundled sentiment model)")
    parser.add_argument("--units", action="append", choices=("ffn", "head", "residual"),
                        help="unit kind, repeatable (default: ffn)")
    parser.add_argument("--layer", action="append", type=int, help="block index, repeatable (default: every block)")
    parser.add_argument("-k", type=positive_int, default=20, help="contexts per unit (default 20)")
    parser.add_argument("--window", type=int, default=8, help="tokens of context on each side (default 8)")
    parser.add_argument("--include-special", action="store_true", help="also rank special tokens ([CLS], BOS, ...)")
    parser.add_argument("--per-text", action="store_true", help="rank only each text's most active token per unit")
    parser.add_argument("--batch-size", type=batch_size_arg, help="texts per forward (default 32)")
    parser.add_argument("--shard-size", type=positive_int, default=1024, help="texts per shard file (default 1024)")
    parser.add_argument("--no-truncation", action="store_true", help="fail on texts longer than the model accepts")
    add_length_arguments(parser)
    parser.add_argument("--cpu", action="store_true", help="run on the CPU even if a GPU is available")
    parser.add_argument("--overwrite", action="store_true", help="delete shards of a different run in --output-dir")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run_top_activations(args: argparse.Namespace) -> int:
    from accelerate import PartialState

    from .data import load_text_dataset
    from .network import top_activations

    dataset = load_text_dataset(args.data, split=args.split)
    if args.limit is not None:
        dataset = dataset.select(range(min(args.limit, len(dataset))))
    with _log_to_stderr("hf_seqinterp"):
        result = top_activations(
            load_adapter(args.model, args), dataset, units=args.units or "ffn", layers=args.layer, k=args.k,
            output_dir=args.output_dir, text_column=args.text_column, include_special=args.include_special,
            per_text=args.per_text,
            window=args.window, batch_size=args.batch_size, shard_size=args.shard_size,
            truncation=not args.no_truncation, cpu=True if args.cpu else None, overwrite=args.overwrite,
            progress=not args.no_progress,
        )
    if PartialState().is_main_process:
        print(f"{len(result)} contexts ({len(set(zip(result['kind'], result['layer'], result['unit']))):,} units) "
              f"in {args.output_dir}", file=sys.stderr)
    return 0


def add_explain_series_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("data", help="a .ts file (UEA/sktime), a .npy array (series, time, channels), or a save_to_disk folder")
    parser.add_argument("--model", required=True, help="a time-series model folder (PatchTST, PatchTSMixer, ...) or Hub id")
    parser.add_argument(
        "--method", action="append",
        help=f"series method, repeatable (default: {DEFAULT_METHOD}); one of {', '.join(SERIES_METHODS)}",
    )
    parser.add_argument(
        "-p", "--param", action="append", type=parse_param, default=[], metavar="[METHOD.]KEY=VALUE",
        help="method parameter, repeatable; METHOD.KEY=VALUE sets it for one method, KEY=VALUE for all",
    )
    parser.add_argument(
        "--target", type=series_target,
        help="a class id or label, 'all', an output index, or for forecasters STEP,CHANNEL (STEP an index or A:B, "
        "CHANNEL a name, an index or 'all'; e.g. 0,acc_y or 0:6,all); default: the predicted class / every output",
    )
    parser.add_argument("--channels", help="comma-separated channel names (default: those the data records)")
    parser.add_argument("--label-column", default=None, help="column of gold class ids copied into label (datasets)")
    parser.add_argument("--limit", type=positive_int, help="use only the first N series")
    parser.add_argument("--batch-size", type=batch_size_arg, help="series per batch (default: each method's own)")
    parser.add_argument("--html", help="write the HTML view of the explanations to this file")
    parser.add_argument("--json", help="write the explanations as JSON (one object per series and method) to this file")
    parser.add_argument("--plot", metavar="PNG", help="save the first explanation's time × channel heat map (matplotlib)")
    parser.add_argument("--output-dir", help="explain as a resumable dataset run into this folder (shards, manifest)")
    parser.add_argument("--push-to-hub", metavar="REPO_ID", help="with --output-dir: publish the result with its card")
    parser.add_argument("--cpu", action="store_true", help="run on the CPU even if a GPU is available")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def series_target(text: str) -> Any:
    """--target for series: an int, a label or 'all'; STEP,CHANNEL for forecasters."""
    if "," not in text:
        return int(text) if text.lstrip("-").isdigit() else text
    step, channel = (part.strip() for part in text.split(",", 1))
    if ":" in step:
        start, stop = step.split(":", 1)
        step_value: Any = (int(start), int(stop))
    else:
        step_value = None if step in ("", "all") else int(step)
    channel_value: Any = None if channel in ("", "all") else int(channel) if channel.isdigit() else channel
    return (step_value, channel_value)


def _load_series(path: str, channels: list[str] | None, label_column: str | None):
    """(dataset with past_values, label column or None) from a .ts file, a .npy array or a dataset folder."""
    import datasets
    import numpy as np

    from .timeseries import load_ts, series_dataset

    if path.endswith(".ts"):
        return load_ts(path, channel_names=channels), label_column or "label"
    if path.endswith(".npy"):
        return series_dataset(np.load(path), channel_names=channels), None
    if Path(path).is_dir():
        return datasets.load_from_disk(path), label_column
    raise SeqInterpError(f"{path}: give a .ts file, a .npy array of shape (series, time, channels) or a save_to_disk folder.")


def run_explain_series(args: argparse.Namespace) -> int:
    from accelerate import PartialState
    from transformers import AutoConfig

    from .timeseries import (
        SeriesAdapter,
        dataset_to_series_explanations,
        explain_series_dataset,
        get_series_method,
        save_series_html,
    )
    from .timeseries.data import channel_names as recorded_channels
    from .timeseries.runs import series_inputs
    from .visualize import terminal_safe

    specs = method_params(list(dict.fromkeys(args.method or [DEFAULT_METHOD])), args.param)
    channels = [c.strip() for c in args.channels.split(",")] if args.channels else None
    dataset, label_column = _load_series(args.data, channels, args.label_column)
    if args.limit is not None:
        dataset = dataset.select(range(min(args.limit, len(dataset))))
    import transformers

    config = AutoConfig.from_pretrained(args.model)  # the model class its config names (PatchTSTForClassification, ...)
    architecture = (config.architectures or [None])[0]
    if architecture is None or not hasattr(transformers, architecture):
        raise SeqInterpError(f"{args.model}: its config names no transformers architecture to load.")
    from .adapter import _quiet_loading

    with _quiet_loading(args.verbose):
        model = getattr(transformers, architecture).from_pretrained(args.model)
    recorded = recorded_channels(dataset)
    fits = len(recorded) == getattr(config, "num_input_channels", getattr(config, "input_size", None))
    adapter = SeriesAdapter(model, channel_names=channels or (recorded if fits else None))  # else: the shape error
    if label_column is not None and label_column not in dataset.column_names:
        label_column = None
    if args.output_dir:
        result = explain_series_dataset(
            adapter, dataset, specs, output_dir=args.output_dir, label_column=label_column, target=args.target,
            batch_size=args.batch_size, cpu=True if args.cpu else None, progress=not args.no_progress,
        )
        if PartialState().is_main_process:
            print(f"{len(result)} explanations in {args.output_dir}", file=sys.stderr)
            if args.push_to_hub:
                from .hub import push_explanations_to_hub

                print(f"pushed to {push_explanations_to_hub(result, args.push_to_hub)}", file=sys.stderr)
        expls = dataset_to_series_explanations(result)
    else:
        if args.push_to_hub:
            raise SeqInterpError("--push-to-hub needs --output-dir (the run that is published).")
        series = series_inputs(dataset, adapter)  # arrays, or dicts with a forecaster's covariate columns
        per_method = [
            get_series_method(name).create(adapter, **params).explain(
                series, args.target, batch_size=args.batch_size, progress=not args.no_progress
            )
            for name, params in specs.items()
        ]
        expls = [e for group in zip(*per_method) for e in group]
    for i, expl in enumerate(expls):
        totals = ", ".join(f"{name} {value:+.3g}" for name, value in sorted(expl.channel_totals().items(), key=lambda kv: -abs(kv[1])))
        print(f"series {i // len(specs)} · {expl.method} · {expl.rows[0]['label']}: {terminal_safe(totals, newlines=False)}")
    if args.html:
        save_series_html(expls, args.html)
        print(f"wrote {args.html}", file=sys.stderr)
    if args.json:
        Path(args.json).write_text(json.dumps([e.to_dict() for e in expls]), encoding="utf-8")
        print(f"wrote {args.json}", file=sys.stderr)
    if args.plot:
        expls[0].plot(path=args.plot)
        print(f"wrote {args.plot}", file=sys.stderr)
    return 0


class _AboveProgressBar(logging.Handler):
    """Writes log records to stderr above a running tqdm bar instead of through it."""

    def emit(self, record: logging.LogRecord) -> None:
        from tqdm import tqdm

        tqdm.write(self.format(record), file=sys.stderr)


@contextlib.contextmanager
def _log_to_stderr(name: str) -> Iterator[None]:
    """Show the INFO messages of logger `name` (e.g. each shard written) on stderr during the block."""
    log = logging.getLogger(name)
    handler = _AboveProgressBar()
    handler.setFormatter(logging.Formatter("%(message)s"))
    level = log.level
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    try:
        yield
    finally:
        log.removeHandler(handler)
        log.setLevel(level)


COMMANDS: dict[str, tuple[str, Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int]]] = {
    "explain": ("explain texts with a method and show a heat map", add_explain_arguments, run_explain),
    "methods": ("list the registered explanation methods (--series: the time-series ones)", add_methods_arguments,
                run_methods),
    "explain-dataset": (
        (
            "explain a whole dataset (resumable; multi-process under accelerate launch / torchrun) and "
            "optionally publish it to the Hub"
        ),
        add_explain_dataset_arguments,
        run_explain_dataset,
    ),
    "top-activations": (
        (
            "top-k max-activating contexts of FFN neurons, attention heads or residual dimensions over a dataset "
            "(resumable; multi-process under accelerate launch / torchrun)"
        ),
        add_top_activations_arguments,
        run_top_activations,
    ),
    "evaluate": ("rank explanation methods on faithfulness and plausibility metrics", add_evaluate_arguments,
                 run_evaluate),
    "explain-series": (
        (
            "explain time-series models (PatchTST, PatchTSMixer, TimeSeriesTransformer, ...) over time × channel; "
            "print variable importance, write HTML/JSON, or run a resumable dataset run"
        ),
        add_explain_series_arguments,
        run_explain_series,
    ),
}


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = argparse.ArgumentParser(prog="hf-seqinterp", description="Explain Hugging Face sequence classifiers.")
    parser.add_argument("--version", action="version", version=f"hf-seqinterp {__version__}")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "-v", "--verbose", action="store_true", help="show transformers' loading bars and messages"
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (help_text, add_arguments, run) in COMMANDS.items():
        command = sub.add_parser(name, help=help_text, description=help_text, parents=[common])
        add_arguments(command)
        command.set_defaults(run=run)
    return parser


def preflight(args: argparse.Namespace) -> None:
    """Check what can be checked without torch: method and parameter names (series methods against
    their own table), input files, model folders."""
    table = SERIES_METHODS if args.command == "explain-series" else METHODS
    methods = _method_list(args)
    for name in [*methods, *getattr(args, "exclude", [])]:
        if name not in table:
            raise SeqInterpError(unknown_method_message(name, list(table)))
    if args.command == "evaluate":
        specs = scoped_params(args.param)
    elif args.command in ("explain", "explain-dataset", "explain-series"):
        specs = method_params(methods or [DEFAULT_METHOD], args.param)
    else:
        specs = {}
    for name, params in specs.items():
        if name not in table:
            raise SeqInterpError(unknown_method_message(name, list(table)))
        accepted = list(table[name]["parameters"])
        unknown = sorted(set(params) - set(accepted))
        if unknown:
            raise SeqInterpError(unknown_parameters_message(name, unknown, accepted))
    if getattr(args, "file", None) not in (None, "-") and not Path(args.file).is_file():
        raise FileNotFoundError(f"No such file: {args.file} (--file)")
    if getattr(args, "data", None) is not None:
        from .data import check_local_source

        check_local_source(args.data)
    for option in ("eraser_docs",):
        folder = getattr(args, option, None)
        if folder is not None and not Path(folder).is_dir():
            raise SeqInterpError(f"--{option.replace('_', '-')} {folder}: no such folder")
    if getattr(args, "model", None):
        check_model_source(args.model)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        preflight(args)
        return args.run(args)
    except (SeqInterpError, FileNotFoundError, FileExistsError) as err:
        from .visualize import terminal_safe

        print(f"hf-seqinterp: error: {terminal_safe(err)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as err:
        done = f": {err.rows_done} of {err.rows} rows done" if isinstance(err, RunInterrupted) else ""
        resume = "; rerun the same command to resume" if args.command in ("explain-dataset", "top-activations") else ""
        print(f"hf-seqinterp: interrupted{done}{resume}", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
