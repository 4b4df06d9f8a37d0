"""The `livetrain` commands that talk to a running server: they call `LivetrainClient` and print.

Tables and results go to stdout, progress bars, notes and errors to stderr. Every command
returns its exit code (see `ExitCode` and docs/cli.md). Importing this module loads neither
torch nor Flask nor eventlet: these commands start in a fraction of a second.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from enum import IntEnum
from pathlib import Path
from typing import Any, TextIO

from livetrain.client import FINAL_STATUSES, ClientError, LivetrainClient, RunFollower
from livetrain.dialect_words import dialect_facts, dropped_text


class ExitCode(IntEnum):
    """How a command ended; for a followed run, how the run ended."""

    OK = 0  # done; a followed run completed
    FAILED = 1  # the followed run failed
    USAGE = 2  # the command line is wrong (argparse says why)
    CANCELLED = 3  # the followed run was cancelled
    INTERRUPTED = 4  # the followed run was interrupted (the server stopped while it trained)
    ERROR = 5  # the server refused the request, or could not be reached
    DETACHED = 130  # Ctrl-C: stopped following (the run goes on), or stopped waiting for the server


STATUS_EXIT = {"completed": ExitCode.OK, "failed": ExitCode.FAILED, "cancelled": ExitCode.CANCELLED,
               "interrupted": ExitCode.INTERRUPTED}
Command = Callable[[LivetrainClient, argparse.Namespace], int]


def main(args: argparse.Namespace) -> int:
    """Run the client command the parsed arguments name; its exit code. Server errors end here."""
    command: Command = COMMANDS[args.client_command]
    client = LivetrainClient(args.url, token=getattr(args, "token", None))
    try:
        return command(client, args)
    except ClientError as error:
        print(f"livetrain: {error.message}", file=sys.stderr)
        return ExitCode.ERROR
    except KeyboardInterrupt:
        print("livetrain: interrupted", file=sys.stderr)
        return ExitCode.DETACHED
    finally:
        client.close()


# -- formatting -----------------------------------------------------------------
def fmt(value: Any, digits: int = 4) -> str:
    """A cell: `-` for nothing, floats to `digits` decimals, lists joined by commas."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    if isinstance(value, list | tuple):
        return ",".join(fmt(item, digits) for item in value)
    return str(value)


def fmt_time(ts: float | None) -> str:
    """UNIX seconds as local `YYYY-MM-DD HH:MM:SS`."""
    if ts is None:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts))


# 12, -0.5, 1e-05, 99.5%, and done/total counts such as 3/10
_NUMBER = re.compile(r"^([-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?%?|\d+/\d+)$")


def format_table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """Columns padded to their widest cell; columns of numbers right-aligned. No trailing spaces."""
    cells = [[fmt(cell) for cell in row] for row in rows]
    widths = [max([len(header)] + [len(row[i]) for row in cells]) for i, header in enumerate(headers)]
    numeric = [bool(cells) and all(_NUMBER.match(row[i]) or row[i] == "-" for row in cells)
               for i in range(len(headers))]

    def line(values: Sequence[str]) -> str:
        padded = [value.rjust(width) if right else value.ljust(width)
                  for value, width, right in zip(values, widths, numeric)]
        return "  ".join(padded).rstrip()

    return "\n".join([line(list(headers))] + [line(row) for row in cells])


def format_fields(pairs: Iterable[tuple[str, Any]]) -> str:
    """`key  value` lines, values lined up."""
    pairs = [(key, fmt(value)) for key, value in pairs]
    width = max((len(key) for key, _ in pairs), default=0)
    return "\n".join(f"{key.ljust(width)}  {value}".rstrip() for key, value in pairs)


def architecture(network: dict) -> str:
    """`784,30,10` for layer_sizes, `Linear(64),ReLU,Linear(3)` for layer specs."""
    arch = network.get("architecture") or []
    if all(isinstance(width, int) for width in arch):
        return ",".join(str(width) for width in arch)
    names = []
    for spec in arch:
        size = spec.get("out_features") or spec.get("out_channels") or spec.get("embedding_dim")
        names.append(f"{spec.get('type')}({size})" if size else str(spec.get("type")))
    return ",".join(names)


def result_line(run: dict) -> str:
    """What a followed run came to, in one line: status, accuracy or loss, epochs, version."""
    unit = "epochs" if run.get("algorithm", "network") == "network" else "steps"
    done, total = run.get("epochs_done"), run.get("total_epochs")
    head = f"run {run['run_id']} {run['status']}"
    status = run["status"]
    if status == "completed":
        parts = []
        if run.get("accuracy") is not None:
            parts.append(f"accuracy {run['accuracy']:.4f}")
        if run.get("val_loss") is not None:
            parts.append(f"held-out loss {run['val_loss']:.4f}")
        elif run.get("train_loss") is not None:
            parts.append(f"train loss {run['train_loss']:.4f}")
        parts.append(f"{done}/{total} {unit}")
        if run.get("version") is not None:
            parts.append(f"version {run['version']}")
        if run.get("best_epoch") is not None:
            parts.append(f"weights of epoch {run['best_epoch']} (its best)")
        if run.get("stop_reason"):
            parts.append(f"stopped early: {run['stop_reason']}")
        return f"{head}: " + ", ".join(parts)
    if status in ("failed", "interrupted"):
        checkpoint = run.get("checkpoint_epoch")
        kept = f" (checkpoint at epoch {checkpoint})" if status == "interrupted" and checkpoint else ""
        return f"{head}: {run.get('error') or 'no message'}{kept}"
    if status == "cancelled":
        checkpoint = run.get("checkpoint_epoch")
        kept = f", checkpoint at epoch {checkpoint}" if checkpoint else ""
        return f"{head} after {done}/{total} {unit}{kept}"
    return f"run {run['run_id']} is {status} ({done}/{total} {unit})"


def print_json(data: Any) -> None:
    """The server's JSON, indented."""
    print(json.dumps(data, indent=2))


def note(text: str) -> None:
    """A message for the person at the terminal (stderr)."""
    print(text, file=sys.stderr, flush=True)


# -- networks -------------------------------------------------------------------
def networks_create(client: LivetrainClient, args: argparse.Namespace) -> int:
    """POST /api/networks from the options."""
    body: dict[str, Any] = {}
    if args.layers_json:
        body.update(_read_layers(args.layers_json))
    if args.layer_sizes:
        body["layer_sizes"] = args.layer_sizes
    if args.dataset:
        body["dataset_id"] = args.dataset
    if args.name:
        body["name"] = args.name
    network = client.create_network(body)
    if args.json:
        print_json(network)
        return ExitCode.OK
    print(format_fields([
        ("network", network["network_id"]), ("name", network.get("name")), ("dataset", network.get("dataset_id")),
        ("kind", network.get("kind")), ("architecture", architecture(network)),
        ("parameters", network.get("parameter_count")), ("status", network.get("status"))]))
    layers = network.get("layers") or []
    if layers:
        print()
        print(format_table(["LAYER", "TYPE", "OUTPUT", "PARAMETERS"],
                           [[i, layer.get("type"), "x".join(str(n) for n in layer.get("output_shape") or []),
                             layer.get("parameters")] for i, layer in enumerate(layers)]))
    return ExitCode.OK


def _read_layers(source: str) -> dict[str, Any]:
    """A --layers-json file (or `-` for stdin): a list of layer specs, or an object of create fields."""
    try:
        text = sys.stdin.read() if source == "-" else Path(source).read_text()
    except OSError as error:
        raise ClientError("file_error", f"cannot read {source}: {error.strerror or error}") from None
    try:
        data = json.loads(text)
    except ValueError as error:
        raise ClientError("file_error", f"{source} is not valid JSON: {error}") from None
    if isinstance(data, list):
        return {"layers": data}
    if isinstance(data, dict):
        return data
    raise ClientError("file_error", f"{source} must hold a list of layer specs or an object with `layers`")


def networks_list(client: LivetrainClient, args: argparse.Namespace) -> int:
    """GET /api/networks as a table."""
    answer = client.list_networks()
    if args.json:
        print_json(answer)
        return ExitCode.OK
    rows = [[n["network_id"], n.get("name"), n.get("dataset_id"), architecture(n), n.get("status"),
             n.get("current_version"), n.get("accuracy"), n.get("parameter_count")]
            for n in answer["networks"]]
    print(format_table(["NETWORK", "NAME", "DATASET", "ARCHITECTURE", "STATUS", "VERSION", "ACCURACY",
                        "PARAMETERS"], rows))
    return ExitCode.OK


def networks_delete(client: LivetrainClient, args: argparse.Namespace) -> int:
    """DELETE /api/networks/{id}."""
    answer = client.delete_network(args.network_id)
    if args.json:
        print_json(answer)
    else:
        print(f"deleted network {answer.get('network_id', args.network_id)} (its runs stay, as history)")
    return ExitCode.OK


def _given(**options: Any) -> dict[str, Any]:
    """The options the user gave (the others stay out of the body, so the server's defaults apply)."""
    return {key: value for key, value in options.items() if value is not None}


def networks_generate(client: LivetrainClient, args: argparse.Namespace) -> int:
    """POST /api/networks/{id}/generate: the text on stdout, how it was made on stderr."""
    body = {"prompt": args.prompt, **_given(temperature=args.temperature, max_tokens=args.max_tokens,
                                             seed=args.seed)}
    answer = client.generate(args.network_id, body)
    if args.json:
        print_json(answer)
        return ExitCode.OK
    print(answer.get("text", ""), flush=True)
    stopped = "at <eos>" if answer.get("stopped") == "eos" else "at --max-tokens"
    temperature = answer.get("temperature")
    temperature = f"{temperature:g}" if isinstance(temperature, int | float) else fmt(temperature)
    note(f"network {answer.get('network_id', args.network_id)} version {answer.get('version')}: "
         f"{answer.get('tokens')} {answer.get('level') or 'word'} token(s), stopped {stopped}, temperature "
         f"{temperature}, seed {fmt(answer.get('seed'))}")
    return ExitCode.OK


# -- datasets -------------------------------------------------------------------
def _dataset_kind(dataset: dict) -> str:
    """Where a dataset came from; a text dataset says which of the six kinds it is."""
    if dataset.get("builtin"):
        return "built-in"
    meta = dataset.get("meta") or {}
    if (meta.get("text") or {}).get("kind"):
        return f"text:{meta['text']['kind']}"
    return "generated" if meta.get("origin") == "generator" else "uploaded"


def datasets_list(client: LivetrainClient, args: argparse.Namespace) -> int:
    """GET /api/datasets as a table."""
    answer = client.list_datasets()
    if args.json:
        print_json(answer)
        return ExitCode.OK
    default = answer.get("default")
    rows = [[d["id"] + (" *" if d["id"] == default else ""), d.get("name"), d.get("task"), _dataset_kind(d),
             d.get("n_features"), d.get("n_classes") or "-", d.get("n_train"), d.get("n_val"), d.get("n_test")]
            for d in answer["datasets"]]
    print(format_table(["DATASET", "NAME", "TASK", "KIND", "FEATURES", "CLASSES", "TRAIN", "VAL", "TEST"], rows))
    if default:
        print(f"* the default dataset of a new network: {default}")
    return ExitCode.OK


UPLOAD_FIELDS = ("split", "seed", "missing_target", "delimiter", "decimal", "thousands", "quote", "encoding", "sheet",
                 "format")
TABLE_ONLY = ("target", "task", "missing_target", "delimiter", "decimal", "thousands", "quote", "encoding", "sheet",
              "format")
# option -> the upload field of a text dataset (livetrain.services.text_datasets)
TEXT_FIELDS = {"kind": "kind", "vocabulary": "vocabulary_id", "level": "level", "max_len": "max_len",
               "min_freq": "min_freq", "max_size": "max_size", "description": "description"}


def _option(name: str) -> str:
    return "--" + name.replace("_", "-")


def _misplaced_options(args: argparse.Namespace) -> str | None:
    """Why the upload's options do not go together, if they do not: the server would ignore the table options of a
    text upload, and the text options of a table's, so the file would not be read as the user meant."""
    if args.kind is not None:
        given = [_option(key) for key in TABLE_ONLY if getattr(args, key) is not None]
        return f"{', '.join(given)}: for a table, not a text dataset (--kind)" if given else None
    given = [_option(key) for key in TEXT_FIELDS if getattr(args, key) is not None]
    return f"{', '.join(given)}: for a text dataset only; add --kind" if given else None


def datasets_upload(client: LivetrainClient, args: argparse.Namespace) -> int:
    """POST /api/datasets with a file (multipart); then the dataset, how its file was read, and its columns (a
    table), or its kind, splits, vocabulary and first samples (text, with --kind)."""
    misplaced = _misplaced_options(args)
    if misplaced:
        note(f"livetrain datasets upload: {misplaced}")
        return ExitCode.USAGE
    if args.kind is not None:
        return _upload_text(client, args)
    dataset = client.upload_dataset(args.file, target=args.target, name=args.name, task=args.task,
                                    **{key: getattr(args, key) for key in UPLOAD_FIELDS})
    if args.json:
        print_json(dataset)
        return ExitCode.OK
    schema = dataset.get("schema") or {}
    splits = dataset.get("splits") or {}
    dropped = dropped_text(schema.get("dropped_rows"))
    print(format_fields([
        ("dataset", dataset["id"]), ("name", dataset.get("name")), ("task", dataset.get("task")),
        ("target", ", ".join(schema.get("targets") or []) or None), ("rows", dataset.get("n_rows")),
        *([("left out", dropped)] if dropped else []),
        ("split", f"{splits.get('train', dataset.get('n_train'))} train / {splits.get('val', dataset.get('n_val'))} "
                  f"val / {splits.get('test', dataset.get('n_test'))} test"),
        ("features", dataset.get("n_features")),
        ("classes", ", ".join(str(c) for c in (dataset.get("meta") or {}).get("classes") or []) or None)]))
    facts = dialect_facts(schema.get("dialect"))
    if facts:
        print()
        print(format_table(["FILE", "READ AS", "HOW"],
                           [[f.label.lower(), f.value, "given" if f.given else "detected"] for f in facts]))
    columns = schema.get("columns") or []
    if columns:
        print()
        print(format_table(["COLUMN", "TYPE", "ROLE", "MISSING", "UNIQUE", "NOTE"],
                           [[c.get("name"), c.get("type"), c.get("role"), c.get("missing"), c.get("unique"),
                             c.get("note")] for c in columns]))
    return ExitCode.OK


def _upload_text(client: LivetrainClient, args: argparse.Namespace) -> int:
    """POST /api/datasets with a CSV / TSV / JSONL file and `kind`: a text dataset."""
    fields = _given(**{field: getattr(args, key) for key, field in TEXT_FIELDS.items()})
    dataset = client.upload_dataset(args.file, name=args.name, split=args.split, seed=args.seed, **fields)
    if args.json:
        print_json(dataset)
    else:
        print_text_dataset(dataset)
    return ExitCode.OK


def _splits(dataset: dict) -> str:
    splits = dataset.get("splits") or {}
    return (f"{splits.get('train', dataset.get('n_train'))} train / {splits.get('val', dataset.get('n_val'))} val / "
            f"{splits.get('test', dataset.get('n_test'))} test")


PREVIEW_SAMPLES = 2
PREVIEW_CHARS = 40


def print_text_dataset(dataset: dict) -> None:
    """A text dataset's facts (kind, samples, split, vocabulary, tokens cut at max_len) and its first samples."""
    info = (dataset.get("meta") or {}).get("text") or {}
    classes = (dataset.get("meta") or {}).get("classes") or []
    print(format_fields([
        ("dataset", dataset["id"]), ("name", dataset.get("name")), ("kind", info.get("kind")),
        ("task", dataset.get("task")), ("samples", dataset.get("n_rows")), ("split", _splits(dataset)),
        *([("classes", ", ".join(str(c) for c in classes))] if classes else []),
        ("vocabulary", f"{info.get('vocabulary_id')} ({info.get('vocab_size')} tokens, {info.get('level')}-level)"),
        ("max len", info.get("max_len")),
        ("truncated", f"{dataset.get('truncated') or 0} sample(s) longer than max len, cut"),
        ("unknown", f"{(dataset.get('unknown_share') or 0):.1%} of the tokens are <unk>")]))
    preview = (dataset.get("preview") or [])[:PREVIEW_SAMPLES]
    if preview:
        columns = [key for key in preview[0] if key not in ("tokens", "truncated", "split")]
        print()
        print(format_table([*(c.upper() for c in columns), "TOKENS", "CUT", "SPLIT"],
                           [[_cell(row.get(c)) for c in columns] + [row.get("tokens"), row.get("truncated"),
                                                                    row.get("split")] for row in preview]))


def _cell(value: Any) -> Any:
    """A sample's text on one line, shortened to fit a table."""
    if not isinstance(value, str):
        return value
    value = " ".join(value.split())
    return value if len(value) <= PREVIEW_CHARS else value[:PREVIEW_CHARS - 1] + "…"


def datasets_add_samples(client: LivetrainClient, args: argparse.Namespace) -> int:
    """POST /api/datasets/{id}/samples with the samples of a JSONL or JSON file; how many the dataset now has."""
    samples = _read_samples(args.file)
    answer = client.add_samples(args.dataset_id, samples)
    if args.json:
        print_json(answer)
        return ExitCode.OK
    print(f"dataset {answer.get('id', args.dataset_id)}: added {answer.get('added')} sample(s), now "
          f"{answer.get('n_rows')} ({_splits(answer)})")
    return ExitCode.OK


def _read_samples(source: str) -> list[Any]:
    """The samples of a file (or `-` for stdin): a JSON list, or JSONL (one sample a line; blank lines skipped).
    The server checks each sample's fields and names the one that is wrong."""
    try:
        content = sys.stdin.read() if source == "-" else Path(source).read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as error:
        reason = error.strerror if isinstance(error, OSError) and error.strerror else error
        raise ClientError("file_error", f"cannot read {source}: {reason}") from None
    if content.lstrip().startswith("["):
        try:
            samples = json.loads(content)
        except ValueError as error:
            raise ClientError("file_error", f"{source} is not valid JSON: {error}") from None
        return samples
    samples = []
    for number, line in enumerate(content.splitlines(), 1):
        if line.strip():
            try:
                samples.append(json.loads(line))
            except ValueError as error:
                raise ClientError("file_error", f"{source} line {number} is not valid JSON: {error}") from None
    if not samples:
        raise ClientError("file_error", f"{source} holds no samples")
    return samples


# -- training and runs ----------------------------------------------------------
def train(client: LivetrainClient, args: argparse.Namespace) -> int:
    """POST /api/networks/{id}/train; with --follow, follow the run until it ends."""
    body = {"epochs": args.epochs, **_given(
        mini_batch_size=args.mini_batch_size, learning_rate=args.learning_rate, optimizer=args.optimizer,
        experiment_id=args.experiment, lr_schedule=args.lr_schedule, clip_grad_norm=args.clip_grad_norm,
        early_stopping=args.early_stopping)}
    started = client.train(args.network_id, body)
    run_id = started["run_id"]
    if args.follow:
        note(f"started run {run_id} on network {args.network_id} ({args.epochs} epochs, experiment "
             f"{started.get('experiment_id')})")
        return follow(client, run_id, as_json=args.json)
    if args.json:
        print_json(started)
    else:
        print(f"run {run_id} {(started.get('run') or {}).get('status', 'queued')}: network {args.network_id}, "
              f"{args.epochs} epochs, experiment {started.get('experiment_id')}")
        note(f"follow it with: livetrain runs follow {run_id}")
    return ExitCode.OK


def runs_list(client: LivetrainClient, args: argparse.Namespace) -> int:
    """GET /api/runs with filters, as a table."""
    answer = client.list_runs(network_id=args.network, experiment_id=args.experiment, status=args.status,
                              limit=args.limit)
    if args.json:
        print_json(answer)
        return ExitCode.OK
    rows = [[r["run_id"], r.get("status"), r.get("algorithm"), r.get("network_id"), r.get("dataset_id"),
             r.get("experiment_id"), f"{r.get('epochs_done')}/{r.get('total_epochs')}", r.get("accuracy"),
             r.get("val_loss"), fmt_time(r.get("created_at"))] for r in answer["runs"]]
    print(format_table(["RUN", "STATUS", "ALGORITHM", "NETWORK", "DATASET", "EXPERIMENT", "EPOCHS", "ACCURACY",
                        "VAL_LOSS", "CREATED"], rows))
    if answer.get("total", 0) > len(rows):
        print(f"{len(rows)} of {answer['total']} runs (newest first; --limit shows more)")
    return ExitCode.OK


def runs_show(client: LivetrainClient, args: argparse.Namespace) -> int:
    """GET /api/runs/{id} as fields and a table of metrics per split; with --follow, follow it."""
    if args.follow:
        return follow(client, args.run_id, as_json=args.json)
    run = client.get_run(args.run_id)
    if args.json:
        print_json(run)
        return ExitCode.OK
    params = run.get("params") or {}
    print(format_fields([
        ("run", run["run_id"]), ("status", run.get("status")), ("algorithm", run.get("algorithm")),
        ("network", run.get("network_id")), ("dataset", run.get("dataset_id")),
        ("experiment", run.get("experiment_id")),
        ("epochs", f"{run.get('epochs_done')}/{run.get('total_epochs')} (from {run.get('start_epoch')})"),
        ("progress", f"{run.get('progress') or 0:.1f}%"), ("accuracy", run.get("accuracy")),
        ("train loss", run.get("train_loss")), ("held-out loss", run.get("val_loss")), ("version", run.get("version")),
        ("checkpoint", run.get("checkpoint_epoch")), ("error", run.get("error")),
        ("params", ", ".join(f"{k}={v}" for k, v in params.items() if v not in (None, {}))),
        ("created", fmt_time(run.get("created_at"))), ("started", fmt_time(run.get("started_at"))),
        ("finished", fmt_time(run.get("finished_at")))]))
    metrics = {split: values for split, values in (run.get("metrics") or {}).items() if isinstance(values, dict)}
    if metrics:
        names = [name for name in ("accuracy", "precision", "recall", "f1", "log_loss", "roc_auc", "r2", "mae",
                                   "rmse", "loss", "factorized", "n")
                 if any(name in values for values in metrics.values())]
        print()
        print(format_table(["SPLIT", *(name.upper() for name in names)],
                           [[split, *(values.get(name) for name in names)] for split, values in metrics.items()]))
    return ExitCode.OK


def runs_follow(client: LivetrainClient, args: argparse.Namespace) -> int:
    """Follow an existing run until it ends."""
    return follow(client, args.run_id, as_json=args.json)


def runs_cancel(client: LivetrainClient, args: argparse.Namespace) -> int:
    """POST /api/runs/{id}/cancel."""
    run = client.cancel_run(args.run_id)
    if args.json:
        print_json(run)
    elif run.get("status") == "cancelled":
        print(f"run {run['run_id']} cancelled")
    else:
        print(f"run {run['run_id']}: cancel requested ({run.get('status')}; it stops after the current mini-batch "
              "or step)")
    return ExitCode.OK


LOG_POLL_SECONDS = 1.0


def log_line(line: dict) -> str:
    """`time  level  source  message (×count)`: one log line, levels and sources padded to line up."""
    count = line.get("count") or 1
    text = f"{fmt_time(line.get('time'))}  {str(line.get('level')):<7}  {str(line.get('source')):<7}  " \
           f"{line.get('message', '')}"
    return f"{text} (×{count})" if count > 1 else text


def runs_logs(client: LivetrainClient, args: argparse.Namespace) -> int:
    """GET /api/runs/{id}/logs, filtered and folded; with --follow, polled with after_seq until the run ends."""
    filters = {"level": args.level, "q": args.grep, "source": args.source, "fold": not args.no_fold}
    answer = client.run_logs(args.run_id, limit=args.limit, **filters)
    if args.json and not args.follow:
        print_json(answer)
        return ExitCode.OK

    def show(lines: list[dict]) -> int:
        """Print lines; the highest seq they cover (a folded line covers up to its `last_seq`)."""
        for line in lines:
            print(json.dumps(line) if args.json else log_line(line), flush=True)
        return max((max(line.get("seq") or 0, line.get("last_seq") or 0) for line in lines), default=0)

    after = show(answer["lines"])
    if not args.follow:
        return ExitCode.OK
    # the answer's status is read before its lines, and a run's whole log is stored before it ends:
    # the answer that says it has ended holds its last lines
    while answer.get("status") not in FINAL_STATUSES:
        time.sleep(LOG_POLL_SECONDS)
        answer = client.run_logs(args.run_id, after_seq=after, limit=10_000, **filters)
        after = max(after, show(answer["lines"]))
    note(f"run {args.run_id} {answer.get('status')}")
    return STATUS_EXIT.get(answer.get("status"), ExitCode.ERROR)


# -- vocabularies ---------------------------------------------------------------
CATEGORY_ORDER = ("special", "numeric", "alphabetic", "punctuation", "general")


def _categories(vocabulary: dict) -> str:
    """`special 5, alphabetic 2`: tokens per category, in the docs' order whatever order the server counted in."""
    counts = vocabulary.get("categories") or {}
    names = [*CATEGORY_ORDER, *sorted(set(counts) - set(CATEGORY_ORDER))]
    return ", ".join(f"{name} {counts[name]}" for name in names if counts.get(name))


def _token_text(token: str) -> str:
    """A token as a cell: quoted when it has spaces at either end (a space, a new line), else as it is."""
    return repr(token) if token != token.strip() else token


def _vocabulary_fields(vocabulary: dict) -> list[tuple[str, Any]]:
    return [("vocabulary", vocabulary["vocabulary_id"]), ("name", vocabulary.get("name")),
            ("level", vocabulary.get("level")), ("dataset", vocabulary.get("dataset_id")),
            ("size", vocabulary.get("size")), ("embeddings", vocabulary.get("num_embeddings")),
            ("categories", _categories(vocabulary)), ("used by", ", ".join(vocabulary.get("used_by") or []) or None),
            ("description", vocabulary.get("description") or None)]


def vocabularies_list(client: LivetrainClient, args: argparse.Namespace) -> int:
    """GET /api/vocabularies as a table."""
    answer = client.list_vocabularies()
    if args.json:
        print_json(answer)
        return ExitCode.OK
    rows = [[v["vocabulary_id"], v.get("name"), v.get("level"), v.get("dataset_id"), v.get("size"),
             v.get("num_embeddings"), ",".join(v.get("used_by") or []) or "-"] for v in answer["vocabularies"]]
    print(format_table(["VOCABULARY", "NAME", "LEVEL", "DATASET", "SIZE", "EMBEDDINGS", "USED_BY"], rows))
    return ExitCode.OK


def vocabularies_show(client: LivetrainClient, args: argparse.Namespace) -> int:
    """GET /api/vocabularies/{id}: its fields, then its tokens by id."""
    vocabulary = client.get_vocabulary(args.vocabulary_id, limit=args.limit, category=args.category)
    if args.json:
        print_json(vocabulary)
        return ExitCode.OK
    print(format_fields(_vocabulary_fields(vocabulary)))
    tokens = vocabulary.get("tokens") or []
    print()
    print(format_table(["ID", "TOKEN", "CATEGORY", "COUNT"],
                       [[t.get("id"), _token_text(t["token"]), t.get("category"), t.get("count")] for t in tokens]))
    shown = vocabulary.get("size") if args.category is None else None
    if shown is not None and shown > len(tokens):
        print(f"{len(tokens)} of {shown} tokens (--limit shows more)")
    return ExitCode.OK


def vocabularies_create(client: LivetrainClient, args: argparse.Namespace) -> int:
    """POST /api/vocabularies."""
    body = {"name": args.name, **_given(level=args.level, description=args.description)}
    vocabulary = client.create_vocabulary(body)
    if args.json:
        print_json(vocabulary)
    else:
        print(format_fields(_vocabulary_fields(vocabulary)))
    return ExitCode.OK


def vocabularies_add(client: LivetrainClient, args: argparse.Namespace) -> int:
    """POST /api/vocabularies/{id}/tokens: the tokens added with their ids, and those already there."""
    answer = client.add_tokens(args.vocabulary_id, args.tokens)
    if args.json:
        print_json(answer)
        return ExitCode.OK
    added = answer.get("added") or []
    existing = answer.get("existing") or []
    print(f"vocabulary {answer.get('vocabulary_id', args.vocabulary_id)}: added {len(added)} token(s), "
          f"{len(existing)} already there; size {answer.get('size')}")
    if added:
        print(format_table(["ID", "TOKEN", "CATEGORY"], [[t.get("id"), _token_text(t["token"]), t.get("category")]
                                                         for t in added]))
    if existing:
        print("already there: " + " ".join(_token_text(token) for token in existing))
    return ExitCode.OK


def vocabularies_build(client: LivetrainClient, args: argparse.Namespace) -> int:
    """POST /api/vocabularies/{id}/build from a text dataset."""
    body = {"dataset_id": args.dataset, **_given(level=args.level, min_freq=args.min_freq, max_size=args.max_size)}
    answer = client.build_vocabulary(args.vocabulary_id, body)
    if args.json:
        print_json(answer)
        return ExitCode.OK
    print(format_fields([*_vocabulary_fields(answer)[:3], ("added", answer.get("added")),
                         ("distinct tokens", answer.get("distinct_tokens")),
                         ("below min freq", answer.get("below_min_freq")), *_vocabulary_fields(answer)[4:7]]))
    return ExitCode.OK


# -- experiments ----------------------------------------------------------------
def experiments_leaderboard(client: LivetrainClient, args: argparse.Namespace) -> int:
    """GET /api/experiments/{id}/leaderboard as a ranked table."""
    board = client.leaderboard(args.experiment_id, metric=args.metric, split=args.split)
    if args.json:
        print_json(board)
        return ExitCode.OK
    metric = board.get("metric")
    better = "higher" if board.get("direction") == "max" else "lower"
    print(f"experiment {board.get('experiment_id', args.experiment_id)}: {metric} on {board.get('split')} "
          f"({better} is better)")
    rows = [[e.get("rank"), e["run_id"], e.get("algorithm"), e.get("network_id"), e.get("dataset_id"),
             f"{e.get('status')}{' (live)' if e.get('live') else ''}", e.get("value")]
            for e in board.get("entries") or []]
    print(format_table(["RANK", "RUN", "ALGORITHM", "NETWORK", "DATASET", "STATUS", (metric or "value").upper()],
                       rows))
    unranked = board.get("unranked") or []
    if unranked:
        print(f"unranked ({len(unranked)}, no {metric} on {board.get('split')}): "
              + ", ".join(f"{e['run_id']} {e.get('status')}" for e in unranked))
    return ExitCode.OK


# -- following a run ------------------------------------------------------------
class RunProgress:
    """A tqdm bar on stderr driven by a run's events: epoch k/N, loss, accuracy."""

    # tqdm puts ", " before the postfix: it reads as the end of the [elapsed<remaining, ...] part
    BAR_FORMAT = "{desc}: {percentage:3.0f}%|{bar}| [{elapsed}<{remaining}{postfix}]"

    def __init__(self, run_id: str, stream: TextIO | None = None) -> None:
        self.run_id = run_id
        self.stream = stream or sys.stderr
        self.bar = None
        self.unit = "epoch"
        self.position = 0.0
        self.total = 0
        self.epoch = 0  # the last finished epoch shown
        self.accuracy = ""  # its accuracy, shown beside the loss of the epoch in progress
        self.lost = False  # the socket dropped and is not back yet
        self.paused = False  # while a question is on the screen, events update nothing but the numbers
        self._pending: tuple[float, str] | None = None

    def begin(self, run: dict) -> None:
        """Size the bar from the run (if no event has yet)."""
        self._unit(run)
        self._ensure(run.get("total_epochs"), run.get("start_epoch"))

    def _unit(self, payload: dict) -> None:
        if payload.get("algorithm") not in (None, "network"):
            self.unit = "step"

    def _ensure(self, total: int | None, start: int | None) -> None:
        if not total:
            return
        if self.bar is None:
            from tqdm import tqdm  # imported here: only following draws a bar

            self.total = total
            self.position = float(start or 0)
            self.epoch = int(start or 0)
            self.bar = tqdm(total=total, initial=self.position, file=self.stream, desc=f"run {self.run_id}",
                            bar_format=self.BAR_FORMAT, postfix=f"{self.unit} {self.epoch}/{total}",
                            dynamic_ncols=True, leave=True)
        elif total != self.total:
            # a scikit-learn run can have fewer steps than asked: its first step says how many
            self.total = total
            self.bar.total = total
            self.bar.refresh()

    def event(self, name: str, payload: dict) -> None:
        """One run event (called by RunFollower, never two at once)."""
        self._unit(payload)
        self._ensure(payload.get("total_epochs"), payload.get("start_epoch"))
        if self.bar is None:
            return
        if name == "training_update":
            epoch = int(payload.get("epoch") or 0)
            if epoch >= self.epoch:
                self.epoch = epoch
                accuracy = payload.get("accuracy")
                self.accuracy = f", acc {accuracy:.4f}" if accuracy is not None else ""
                self._move(float(epoch), f"{self.unit} {epoch}/{self.total}{_scores(payload)}")
        elif name == "training_progress":
            epoch = int(payload.get("epoch") or 0)
            batches = payload.get("batches") or 0
            if epoch > self.epoch and batches:
                loss = payload.get("train_loss")
                scores = (f", loss {loss:.4f}" if loss is not None else "") + self.accuracy
                self._move(epoch - 1 + (payload.get("batch") or 0) / batches,
                           f"{self.unit} {epoch}/{self.total}{scores}")

    def _move(self, position: float, postfix: str) -> None:
        if self.paused:
            self._pending = (position, postfix)
            return
        self.bar.set_postfix_str(postfix, refresh=False)
        if position > self.position:
            self.bar.update(position - self.position)
            self.position = position
        else:
            self.bar.refresh()

    def connection(self, state: str) -> None:
        """Say when the socket drops and when it is back (the first connect goes unsaid)."""
        if state == "disconnected":
            self.say("connection to the server lost; reconnecting...")
            self.lost = True
        elif self.lost:
            self.say(f"reconnected; caught up on run {self.run_id}")
            self.lost = False

    def say(self, text: str) -> None:
        """A line above the bar."""
        if self.bar is not None:
            self.bar.write(text, file=self.stream)
        else:
            print(text, file=self.stream, flush=True)

    def pause(self) -> None:
        """Clear the bar's line and stop drawing it (before a question)."""
        self.paused = True
        if self.bar is not None:
            self.bar.clear()

    def resume(self) -> None:
        """Draw the bar again, with what arrived meanwhile."""
        self.paused = False
        pending, self._pending = self._pending, None
        if pending is not None:
            self._move(*pending)

    def close(self) -> None:
        """Leave the bar as it is, on its own line."""
        if self.bar is not None:
            self.bar.close()


def _scores(update: dict) -> str:
    parts = []
    if update.get("train_loss") is not None:
        parts.append(f"loss {update['train_loss']:.4f}")
    if update.get("accuracy") is not None:
        parts.append(f"acc {update['accuracy']:.4f}")
    elif update.get("val_loss") is not None:
        parts.append(f"held-out loss {update['val_loss']:.4f}")
    if update.get("learning_rate") is not None:
        parts.append(f"lr {update['learning_rate']:.3g}")
    return "".join(f", {part}" for part in parts)


def ask_yes(question: str) -> bool:
    """Ask on stderr, read a line from stdin; only `y`/`yes` is yes (EOF and Ctrl-C are no)."""
    sys.stderr.write(question)
    sys.stderr.flush()
    try:
        answer = sys.stdin.readline() if sys.stdin is not None else ""
    except (KeyboardInterrupt, OSError, ValueError):
        answer = ""
    if not answer.endswith("\n"):
        sys.stderr.write("\n")
    return answer.strip().lower() in ("y", "yes")


def follow(client: LivetrainClient, run_id: str, *, as_json: bool = False) -> int:
    """Show a run's progress until it ends; print its result; the exit code of how it ended.

    Ctrl-C asks whether to cancel the run on the server: yes cancels it and waits until it has
    stopped, no detaches (exit 130) and leaves it training. Ctrl-C while a cancel is pending detaches.
    """
    progress = RunProgress(run_id)
    follower = RunFollower(client, run_id, progress.event, progress.connection)
    cancel_requested = False
    try:
        while True:
            try:
                if not follower.started:
                    progress.begin(follower.start())
                    if follower.run["status"] not in FINAL_STATUSES:
                        progress.say(f"following run {run_id} (Ctrl-C to cancel it or detach)")
                run = follower.wait()
                break
            except KeyboardInterrupt:
                progress.pause()
                if cancel_requested or not ask_yes(f"Cancel run {run_id} on the server? [y/N] "):
                    progress.close()
                    note(f"detached from run {run_id}; it goes on training on the server. "
                         f"Follow it again with: livetrain runs follow {run_id}")
                    return ExitCode.DETACHED
                cancel_requested = True
                progress.resume()
                try:
                    client.cancel_run(run_id)
                except ClientError as error:
                    if error.code != "conflict":  # conflict: it has just ended by itself; see how
                        raise
                    progress.say(f"livetrain: {error.message}")
                else:
                    progress.say(f"asked the server to cancel run {run_id}; waiting for it to stop "
                                 "(Ctrl-C again to detach)")
    finally:
        follower.close()
        progress.close()
    if as_json:
        print_json(run)
    else:
        print(result_line(run), flush=True)
    return STATUS_EXIT.get(run["status"], ExitCode.ERROR)


COMMANDS: dict[str, Command] = {
    "networks create": networks_create,
    "networks list": networks_list,
    "networks delete": networks_delete,
    "networks generate": networks_generate,
    "datasets list": datasets_list,
    "datasets upload": datasets_upload,
    "datasets add-samples": datasets_add_samples,
    "train": train,
    "runs list": runs_list,
    "runs show": runs_show,
    "runs follow": runs_follow,
    "runs cancel": runs_cancel,
    "runs logs": runs_logs,
    "vocabularies list": vocabularies_list,
    "vocabularies show": vocabularies_show,
    "vocabularies create": vocabularies_create,
    "vocabularies add": vocabularies_add,
    "vocabularies build": vocabularies_build,
    "experiments leaderboard": experiments_leaderboard,
}
