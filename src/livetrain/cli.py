"""The `livetrain` command line: `serve` starts the server; the other commands talk to one.

Monkey-patching for eventlet/gevent happens in `serve` and only there, before the app is
imported. The client commands (implemented in `livetrain.console`) import neither the app
nor eventlet nor torch, so they start fast.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import time

DEFAULT_URL = "http://127.0.0.1:8000"
RUN_STATUSES = ["queued", "running", "completed", "failed", "cancelled", "interrupted"]
LOG_LEVELS = ["debug", "info", "warning", "error"]
LOG_SOURCES = ["server", "worker", "trainer", "monitor"]
TOKEN_CATEGORIES = ["special", "numeric", "alphabetic", "punctuation", "general"]
# livetrain.data.text.KINDS (not imported: it loads numpy, and the client commands stay lean)
TEXT_KINDS = ["binary_classification", "multiclass_classification", "regression", "question_answering",
              "summarization", "generation"]
# what console.ExitCode means, for --help (console is not imported to build the parser: `serve` stays lean)
EXIT_CODES = """exit codes:
  0    done; a followed run completed
  1    the followed run failed
  2    the command line is wrong
  3    the followed run was cancelled
  4    the followed run was interrupted (the server stopped while it was queued or training)
  5    the server refused the request, or could not be reached
  130  Ctrl-C: detached from a followed run (it goes on training)

The server is --url, else $LIVETRAIN_URL, else http://127.0.0.1:8000. See docs/cli.md."""


def _whole_numbers(text: str) -> list[int]:
    try:
        return [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected whole numbers separated by commas, like 784,30,10; got {text!r}") from None


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None


SCHEDULE_NAMES = {"step": "step", "exponential": "exponential", "exp": "exponential", "cosine": "cosine",
                  "plateau": "reduce_on_plateau", "reduce_on_plateau": "reduce_on_plateau"}
# the positional numbers after a schedule's name, in order
SCHEDULE_ARGS = {"step": ("step_size", "gamma"), "exponential": ("gamma",), "cosine": ("t_max", "eta_min"),
                 "reduce_on_plateau": ("patience", "factor", "min_lr")}
WHOLE = {"step_size", "t_max", "patience"}


def _schedule(text: str) -> dict:
    """`--lr-schedule`: NAME[:N[:N...]] (step:10:0.5, exponential:0.95, cosine, cosine:20:0.0001,
    plateau:3:0.5) or a JSON object, as the train body's lr_schedule."""
    if text.lstrip().startswith("{"):
        try:
            value = json.loads(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(f"not a JSON object: {exc}") from None
        if not isinstance(value, dict):
            raise argparse.ArgumentTypeError("expected a JSON object")
        return value
    name, *numbers = text.split(":")
    kind = SCHEDULE_NAMES.get(name.strip().lower())
    if kind is None:
        raise argparse.ArgumentTypeError(f"unknown schedule {name!r}; one of step, exponential, cosine, plateau")
    keys = SCHEDULE_ARGS[kind]
    if len(numbers) > len(keys):
        raise argparse.ArgumentTypeError(f"{name} takes at most {len(keys)} number(s): {', '.join(keys)}")
    out: dict = {"type": kind}
    for key, number in zip(keys, numbers):
        if key in WHOLE:
            try:
                out[key] = int(number)
            except ValueError:
                raise argparse.ArgumentTypeError(f"{key} must be a whole number, got {number!r}") from None
        else:
            out[key] = _number(number)
    return out  # ranges are the server's to check: it answers a 400 naming the field


def _early_stopping(text: str) -> dict:
    """`--early-stopping`: METRIC[:PATIENCE[:MIN_DELTA]], e.g. val_loss:3 or accuracy:5:0.001."""
    metric, *rest = text.split(":")
    if not metric or len(rest) > 2:
        raise argparse.ArgumentTypeError("expected METRIC[:PATIENCE[:MIN_DELTA]], e.g. val_loss:3")
    out: dict = {"metric": metric}
    if rest:
        out["patience"] = _positive(rest[0])
    if len(rest) > 1:
        out["min_delta"] = _number(rest[1])
    return out


def build_parser() -> argparse.ArgumentParser:
    """The command line."""
    parser = argparse.ArgumentParser(prog="livetrain", description="Self-hosted real-time training server.",
                                     epilog=EXIT_CODES, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default=os.environ.get("LIVETRAIN_URL") or DEFAULT_URL,
                        help=f"the server the client commands talk to (default: $LIVETRAIN_URL, else {DEFAULT_URL})")
    parser.add_argument("--token", default=os.environ.get("LIVETRAIN_TOKEN") or None,
                        help="the API token the client commands send (default: $LIVETRAIN_TOKEN)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    serve = sub.add_parser("serve", help="run the server")
    serve.add_argument("--host", default=os.environ.get("LIVETRAIN_HOST", "127.0.0.1"))
    serve.add_argument("--port", type=int, default=int(os.environ.get("LIVETRAIN_PORT", "8000")))
    serve.add_argument("--home", default=os.environ.get("LIVETRAIN_HOME") or os.getcwd(),
                       help="folder for the database, models/ and data/ (default: the current folder)")
    serve.add_argument("--async-mode", choices=["eventlet", "threading", "gevent"],
                       default=os.environ.get("LIVETRAIN_ASYNC_MODE") or "eventlet")
    serve.add_argument("--log-level", default=os.environ.get("LIVETRAIN_LOG_LEVEL", "INFO"))
    serve.add_argument("--auth", choices=["auto", "on", "off"], default=os.environ.get("LIVETRAIN_AUTH") or "auto",
                       help="ask for API tokens: auto (once a token exists, and always on a non-loopback --host), "
                            "on, or off (docs/security.md)")
    serve.add_argument("--insecure", action="store_true",
                       help="allow a non-loopback --host with --auth off: anyone who reaches the port can do anything")
    scale = serve.add_argument_group("scale-out", "several server nodes and Celery workers (docs/architecture.md)")
    scale.add_argument("--runner", choices=["local", "celery"], default=os.environ.get("LIVETRAIN_RUNNER") or "local",
                       help="local: this server's worker processes (default); celery: Celery workers on any machine")
    scale.add_argument("--broker", metavar="URL", default=os.environ.get("LIVETRAIN_BROKER_URL") or "",
                       help="the Celery broker, e.g. redis://HOST:6379/0 (with --runner celery)")
    _message_queue_option(scale)
    worker = sub.add_parser("worker", help="run a Celery worker that trains runs sent by the server nodes",
                            description="A Celery worker: takes runs from the broker's queues, trains each in a warm "
                                        "worker process, writes the database and emits every event through the "
                                        "message queue. Needs LIVETRAIN_DATABASE_URL (the servers' PostgreSQL) and "
                                        "--home on the artifact directory the servers use.")
    worker.add_argument("--broker", metavar="URL", default=os.environ.get("LIVETRAIN_BROKER_URL") or "",
                        help="the Celery broker, e.g. redis://HOST:6379/0 (required)")
    _message_queue_option(worker)
    worker.add_argument("--home", default=os.environ.get("LIVETRAIN_HOME") or os.getcwd(),
                        help="the shared folder with models/ and data/ (default: the current folder)")
    worker.add_argument("--concurrency", type=_positive, metavar="N",
                        default=int(os.environ.get("LIVETRAIN_WORKER_CONCURRENCY") or 1),
                        help="runs trained at once (default 1); each gets cores / N torch threads")
    worker.add_argument("--threads", type=_positive, metavar="N",
                        default=int(os.environ.get("LIVETRAIN_WORKER_THREADS") or 0) or None,
                        help="torch threads per run (default: cores / concurrency); lower it when several "
                             "workers share a machine")
    worker.add_argument("--queues", metavar="Q,...", default=os.environ.get("LIVETRAIN_WORKER_QUEUES") or "",
                        help="the queues to take runs from (default: LIVETRAIN_DEFAULT_QUEUE, i.e. default)")
    worker.add_argument("--device", metavar="DEVICE", default=os.environ.get("LIVETRAIN_DEVICE") or "cpu",
                        help="cpu (default), cuda, cuda:N, or auto (cuda when torch sees a GPU)")
    worker.add_argument("--name", default=os.environ.get("LIVETRAIN_WORKER_NAME") or "",
                        help="how the worker is shown in GET /api/workers (default: livetrain@HOST-PID)")
    worker.add_argument("--log-level", default=os.environ.get("LIVETRAIN_LOG_LEVEL", "INFO"))
    gc = sub.add_parser("gc", help="remove finished runs and old network versions, with their files",
                        description="Remove finished runs (never queued or running) older than --older-than, with "
                                    "their events, checkpoints and model files, and network versions older than it "
                                    "except each network's newest and what the model registry protects. Works on "
                                    "the database and files directly; a server may be running.")
    gc.add_argument("--older-than", required=True, metavar="AGE", help="an age such as 30d, 12h, 2w")
    gc.add_argument("--dry-run", action="store_true", help="list what would be removed; remove nothing")
    gc.add_argument("--home", default=os.environ.get("LIVETRAIN_HOME") or os.getcwd(),
                    help="the folder with the database and models/ (default: the current folder)")
    _add_client_commands(sub)
    _add_token_commands(sub)
    return parser


def _add_token_commands(sub: argparse._SubParsersAction) -> None:
    tokens = sub.add_parser("tokens", help="create, list and revoke API tokens",
                            description="API tokens, in the database of --home (or LIVETRAIN_DATABASE_URL) directly "
                                        "— how the first admin token is made — or, with --server, over REST with "
                                        "an admin --token.").add_subparsers(dest="action", required=True,
                                                                            metavar="ACTION")
    where = argparse.ArgumentParser(add_help=False)
    where.add_argument("--home", default=os.environ.get("LIVETRAIN_HOME") or os.getcwd(),
                       help="the server's home folder (its database, unless LIVETRAIN_DATABASE_URL is set)")
    where.add_argument("--server", metavar="URL", help="talk to this server over REST instead (needs an admin "
                                                       "--token / LIVETRAIN_TOKEN)")
    where.add_argument("--json", action="store_true", help="print JSON instead of text")
    create = tokens.add_parser("create", parents=[where], help="create a token; it is printed once")
    create.add_argument("--name", required=True)
    create.add_argument("--scope", required=True, choices=["read", "write", "admin"])
    create.add_argument("--expires", metavar="DURATION", help="e.g. 30d, 12h, 2w (default: never)")
    create.add_argument("--experiment", metavar="ID", help="limit the token to one experiment and its runs")
    tokens.add_parser("list", parents=[where], help="list tokens (never their secrets)")
    revoke = tokens.add_parser("revoke", parents=[where], help="revoke a token by id or by its lt_ prefix")
    revoke.add_argument("which", metavar="ID_OR_PREFIX")


def _is_loopback(host: str) -> bool:
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _message_queue_option(parser) -> None:
    parser.add_argument("--message-queue", metavar="URL", default=os.environ.get("LIVETRAIN_MESSAGE_QUEUE") or "",
                        help="redis://HOST:6379/0: every server node delivers every event (several nodes, workers)")


def _add_client_commands(sub: argparse._SubParsersAction) -> None:
    # --url is accepted after the subcommand too; SUPPRESS keeps the top-level value when it is not
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--url", default=argparse.SUPPRESS, help="the server (default: $LIVETRAIN_URL, else "
                                                                 f"{DEFAULT_URL})")
    as_json = argparse.ArgumentParser(add_help=False)
    as_json.add_argument("--json", action="store_true", help="print the server's JSON instead of a table")

    def command(parent: argparse._SubParsersAction, name: str, full_name: str, help_text: str,
                json_option: bool = True) -> argparse.ArgumentParser:
        parents = [common, as_json] if json_option else [common]
        parser = parent.add_parser(name, help=help_text, description=help_text, parents=parents,
                                   epilog=EXIT_CODES, formatter_class=argparse.RawDescriptionHelpFormatter)
        parser.set_defaults(client_command=full_name)
        return parser

    networks = sub.add_parser("networks", help="create, list and delete networks").add_subparsers(
        dest="action", required=True, metavar="ACTION")
    create = command(networks, "create", "networks create", "create a network (POST /api/networks)")
    shape = create.add_mutually_exclusive_group()
    shape.add_argument("--layer-sizes", type=_whole_numbers, metavar="N,N,...",
                       help="widths of a sigmoid network, e.g. 784,30,10 (default: [features, 30, classes])")
    shape.add_argument("--layers-json", metavar="FILE",
                       help="a JSON file (- for stdin) with a list of layer specs, or an object of create fields")
    create.add_argument("--dataset", metavar="ID", help="the dataset the network is bound to (default: the "
                                                        "server's default dataset)")
    create.add_argument("--name", help="a name (default: network-<id>)")
    command(networks, "list", "networks list", "list the networks (GET /api/networks)")
    delete = command(networks, "delete", "networks delete", "delete a network (its runs stay)")
    delete.add_argument("network_id", metavar="ID")
    generate = command(networks, "generate", "networks generate",
                       "sample text from a trained language model (POST /api/networks/{id}/generate)")
    generate.add_argument("network_id", metavar="NETWORK_ID")
    generate.add_argument("--prompt", required=True, metavar="TEXT",
                          help="the text to continue (the input, for a dataset of input -> target pairs); "
                               "may be \"\"")
    generate.add_argument("--temperature", type=_number, metavar="T",
                          help="above 0, at most 100: low is nearly greedy, high more random (default 1.0)")
    generate.add_argument("--max-tokens", type=_positive, metavar="N", help="stop after N tokens, 1-500 "
                                                                           "(default 100)")
    generate.add_argument("--seed", type=int, metavar="S", help="makes the sample repeatable")

    datasets = sub.add_parser("datasets", help="list and upload datasets").add_subparsers(
        dest="action", required=True, metavar="ACTION")
    command(datasets, "list", "datasets list", "list the datasets (GET /api/datasets)")
    upload = command(datasets, "upload", "datasets upload",
                     "upload a table as a dataset: CSV in any dialect, TSV, .csv.gz, .xlsx or .parquet "
                     "(POST /api/datasets)")
    upload.add_argument("file", metavar="FILE")
    upload.add_argument("--target", metavar="COL", help="the column to predict (default: the last)")
    upload.add_argument("--name", help="a name (default: the file name without its extension)")
    upload.add_argument("--task", choices=["classification", "regression"], help="default: inferred")
    upload.add_argument("--split", metavar="TRAIN,VAL,TEST", help="three fractions adding up to 1 (default: "
                                                                  "0.7,0.15,0.15)")
    upload.add_argument("--seed", type=int, metavar="N", help="the seed of the split (default: 0)")
    upload.add_argument("--missing-target", choices=["refuse", "drop"],
                        help="rows without a target: refuse the file (the default) or leave them out")
    reading = upload.add_argument_group("reading options", "how the file is written; detected unless given")
    reading.add_argument("--delimiter", metavar="D", help="comma, semicolon, tab or pipe (or the character)")
    reading.add_argument("--decimal", metavar="MARK", help="the decimal mark: . or ,")
    reading.add_argument("--thousands", metavar="SEP", help="the thousands separator: , . space ' or none")
    reading.add_argument("--quote", metavar="Q", help="""the quote character: " or '""")
    reading.add_argument("--encoding", metavar="CODEC", help="e.g. utf-8, utf-16, cp1252, latin-1")
    reading.add_argument("--sheet", metavar="NAME", help="the sheet of an .xlsx workbook (default: the first)")
    reading.add_argument("--format", choices=["csv", "tsv", "xlsx", "parquet"],
                         help="default: from the file's content and name")
    text = upload.add_argument_group(
        "text datasets", "with --kind, FILE is a CSV or TSV with a header row, or JSONL / a JSON list, holding "
                         "the kind's columns (docs/api.md); the table options above do not apply")
    text.add_argument("--kind", choices=TEXT_KINDS, help="make a text dataset of this kind")
    text.add_argument("--vocabulary", metavar="ID", help="encode with this vocabulary (default: one built from "
                                                        "the training samples)")
    text.add_argument("--level", choices=["word", "char"], help="tokens are words or characters (default: the "
                                                               "vocabulary's, else the kind's)")
    text.add_argument("--max-len", type=_positive, metavar="N", help="tokens per sample; longer ones are cut "
                                                                     "(default: 64 words or 256 characters)")
    text.add_argument("--min-freq", type=_positive, metavar="N", help="the built vocabulary keeps tokens seen "
                                                                      "at least N times (default 1)")
    text.add_argument("--max-size", type=_positive, metavar="N", help="the built vocabulary holds at most N tokens, "
                                                                      "the specials included (default 20000)")
    text.add_argument("--description", metavar="TEXT")
    add_samples = command(datasets, "add-samples", "datasets add-samples",
                          "append samples to a text dataset; all are encoded and split again "
                          "(POST /api/datasets/{id}/samples)")
    add_samples.add_argument("dataset_id", metavar="DATASET_ID")
    add_samples.add_argument("file", metavar="FILE", help="JSONL (one sample object a line) or a JSON list of "
                                                          "samples; - for stdin")

    train = command(sub, "train", "train", "train a network (POST /api/networks/{id}/train)")
    train.add_argument("network_id", metavar="NETWORK_ID")
    train.add_argument("--epochs", type=_positive, required=True, metavar="N")
    train.add_argument("--mini-batch-size", type=_positive, metavar="B", help="default: 10 for layer sizes, 32 "
                                                                              "for layers")
    train.add_argument("--learning-rate", type=_number, metavar="LR", help="default: the network's")
    train.add_argument("--optimizer", choices=["sgd", "adam", "adamw"], help="layers networks only")
    train.add_argument("--lr-schedule", type=_schedule, metavar="SCHEDULE",
                       help="step:STEP_SIZE[:GAMMA], exponential:GAMMA, cosine[:T_MAX[:ETA_MIN]], "
                            "plateau[:PATIENCE[:FACTOR[:MIN_LR]]], or the lr_schedule JSON object")
    train.add_argument("--clip-grad-norm", type=_number, metavar="NORM",
                       help="clip the gradients' total norm to NORM every step (layers networks only)")
    train.add_argument("--early-stopping", type=_early_stopping, metavar="METRIC[:PATIENCE[:MIN_DELTA]]",
                       help="end the run when METRIC (val_loss, accuracy, r2, ...) has not improved for PATIENCE "
                            "epochs (default 5), keeping its best epoch's weights")
    train.add_argument("--experiment", metavar="ID", help="the experiment of the run (default: default)")
    train.add_argument("--follow", action="store_true", help="show the run's progress until it ends")

    runs = sub.add_parser("runs", help="list, show, follow and cancel runs").add_subparsers(
        dest="action", required=True, metavar="ACTION")
    runs_list = command(runs, "list", "runs list", "list runs, newest first (GET /api/runs)")
    runs_list.add_argument("--network", metavar="ID")
    runs_list.add_argument("--experiment", metavar="ID")
    runs_list.add_argument("--status", choices=RUN_STATUSES)
    runs_list.add_argument("--limit", type=_positive, metavar="N", help="at most N runs (1-500; default 50)")
    show = command(runs, "show", "runs show", "show a run (GET /api/runs/{id})")
    show.add_argument("run_id", metavar="RUN_ID")
    show.add_argument("--follow", action="store_true", help="follow the run until it ends, as `runs follow`")
    follow = command(runs, "follow", "runs follow", "show a run's progress until it ends")
    follow.add_argument("run_id", metavar="RUN_ID")
    cancel = command(runs, "cancel", "runs cancel", "cancel a queued or running run")
    cancel.add_argument("run_id", metavar="RUN_ID")
    logs = command(runs, "logs", "runs logs", "print a run's log lines, oldest first (GET /api/runs/{id}/logs)")
    logs.add_argument("run_id", metavar="RUN_ID")
    logs.add_argument("--level", choices=LOG_LEVELS, help="lines at or above this level (default: debug, all)")
    logs.add_argument("--grep", metavar="TEXT", help="lines whose message contains TEXT, in any case")
    logs.add_argument("--source", choices=LOG_SOURCES, help="lines from this part of the server only")
    logs.add_argument("--no-fold", action="store_true",
                      help="print repeated lines one by one instead of once with (×COUNT)")
    logs.add_argument("--limit", type=_positive, metavar="N", help="the last N lines (1-10000; default 1000)")
    logs.add_argument("--follow", action="store_true",
                      help="go on printing new lines until the run ends; exit as `runs follow` does")

    vocabularies = sub.add_parser("vocabularies", aliases=["vocab"],
                                  help="list, show, create and fill vocabularies (alias: vocab)").add_subparsers(
        dest="action", required=True, metavar="ACTION")
    command(vocabularies, "list", "vocabularies list", "list the vocabularies, newest first (GET /api/vocabularies)")
    vocab_show = command(vocabularies, "show", "vocabularies show",
                         "show a vocabulary and its tokens by id (GET /api/vocabularies/{id})")
    vocab_show.add_argument("vocabulary_id", metavar="ID")
    vocab_show.add_argument("--limit", type=_positive, metavar="N", help="at most N tokens (default 500)")
    vocab_show.add_argument("--category", choices=TOKEN_CATEGORIES, help="only the tokens of this category")
    vocab_create = command(vocabularies, "create", "vocabularies create",
                           "create a project vocabulary holding the special tokens (POST /api/vocabularies)")
    vocab_create.add_argument("name", metavar="NAME")
    vocab_create.add_argument("--level", choices=["word", "char"],
                              help="default: set by the first build or dataset that uses it")
    vocab_create.add_argument("--description", metavar="TEXT")
    vocab_add = command(vocabularies, "add", "vocabularies add",
                        "add tokens to a vocabulary (POST /api/vocabularies/{id}/tokens)")
    vocab_add.add_argument("vocabulary_id", metavar="ID")
    vocab_add.add_argument("tokens", metavar="TOKEN", nargs="+")
    vocab_build = command(vocabularies, "build", "vocabularies build",
                          "add the most frequent tokens of a text dataset's training texts "
                          "(POST /api/vocabularies/{id}/build)")
    vocab_build.add_argument("vocabulary_id", metavar="ID")
    vocab_build.add_argument("--dataset", required=True, metavar="ID", help="a text dataset")
    vocab_build.add_argument("--level", choices=["word", "char"], help="default: the dataset's")
    vocab_build.add_argument("--min-freq", type=_positive, metavar="N", help="tokens seen at least N times "
                                                                            "(default 1)")
    vocab_build.add_argument("--max-size", type=_positive, metavar="N",
                             help="until the vocabulary holds N tokens, the specials included (default 20000)")

    experiments = sub.add_parser("experiments", help="compare the runs of an experiment").add_subparsers(
        dest="action", required=True, metavar="ACTION")
    board = command(experiments, "leaderboard", "experiments leaderboard", "rank an experiment's runs")
    board.add_argument("experiment_id", metavar="EXPERIMENT_ID")
    board.add_argument("--metric", help="default: accuracy (r2 when every run is a regression)")
    board.add_argument("--split", choices=["train", "val", "test"], help="default: test")


def serve(args: argparse.Namespace) -> int:
    """Run the server until interrupted."""
    auth = args.auth
    if not _is_loopback(args.host):
        if auth == "off" and not args.insecure:
            print(f"livetrain serve: refusing to listen on {args.host} with --auth off: anyone who reaches the port "
                  "could delete everything; use --auth on (or auto), or pass --insecure", file=sys.stderr)
            return 2
        if auth == "auto":
            auth = "on"  # reachable from other machines: tokens always
    from livetrain.concurrency import monkey_patch

    monkey_patch(args.async_mode)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    # Loaded before listening, so the first request does not wait for them with the event loop held.
    import torch  # noqa: F401

    import livetrain.data.prepare  # noqa: F401  (pandas, pyarrow, scikit-learn: the upload path)
    import livetrain.data.reading  # noqa: F401
    from livetrain.app import create_app

    try:
        app = create_app({"home": args.home, "runner": args.runner, "broker_url": args.broker,
                          "message_queue": args.message_queue, "auth": auth}, async_mode=args.async_mode)
    except ValueError as exc:  # settings that cannot work: say which, in one line
        print(f"livetrain serve: {exc}", file=sys.stderr)
        return 2
    container = app.extensions["livetrain"]
    socketio = app.extensions["socketio"]
    metrics_address = container.settings.metrics_address()
    if metrics_address:
        from livetrain.services.metrics import serve_apart

        try:
            serve_apart(container.metrics.registry, metrics_address, args.async_mode, socketio.start_background_task)
        except OSError as exc:
            print(f"livetrain serve: cannot serve metrics on {container.settings.metrics_bind}: {exc}",
                  file=sys.stderr)
            container.close()
            return 2
    container.runner.warm_up()
    stopping: list[int] = []

    def stop(signum, frame) -> None:
        # Ctrl-C, `docker stop` and service managers (SIGTERM): first tell the clients that their
        # runs are interrupted (resumable) while the server still delivers events, then stop as
        # on a second signal, which stops at once.
        if stopping:
            raise KeyboardInterrupt
        stopping.append(signum)
        socketio.start_background_task(_interrupt_runs_then_stop, container, socketio)

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    details = f", runner {args.runner}" + (", message queue" if args.message_queue else "")
    if metrics_address:
        details += f", metrics on http://{container.settings.metrics_bind}/metrics"
    print(f"livetrain serving on http://{args.host}:{args.port} (home {container.settings.home}, "
          f"{args.async_mode}{details}, auth {auth})", flush=True)
    if auth == "off" and not _is_loopback(args.host):
        print(f"livetrain: WARNING: auth is off on {args.host} (--insecure): anyone who reaches the port can do "
              "anything", flush=True)
    if auth == "on" and not container.tokens.any_usable():
        print("livetrain: auth is on and no token exists yet; create the first admin token with:\n"
              f"  livetrain tokens create --name admin --scope admin --home {container.settings.home}\n"
              "  (in Docker: docker exec CONTAINER livetrain tokens create --name admin --scope admin)", flush=True)
    try:
        socketio.run(app, host=args.host, port=args.port, allow_unsafe_werkzeug=True, log_output=False)
    except KeyboardInterrupt:
        pass
    finally:
        container.close()
    return 0


def _interrupt_runs_then_stop(container, socketio, drain_limit: float = 5.0) -> None:
    """Mark the active runs interrupted, let those events reach the connected clients (until every
    client's outgoing queue is empty, at most `drain_limit` seconds), then stop the server."""
    try:
        if container.interrupt_runs():
            deadline = time.monotonic() + drain_limit
            sockets = socketio.server.eio.sockets
            while time.monotonic() < deadline and any(not s.queue.empty() for s in list(sockets.values())):
                socketio.sleep(0.05)
            socketio.sleep(0.1)  # what the writers took last is still being sent
    except Exception:  # stopping must not depend on it
        logging.getLogger(__name__).exception("could not tell the clients their runs were interrupted")
    finally:
        if socketio.server.eio.async_mode == "gevent":
            socketio.wsgi_server.stop()  # gevent's own stop, from a greenlet
        else:
            os.kill(os.getpid(), signal.SIGINT)  # the second signal: stop the server


def worker(args: argparse.Namespace) -> int:
    """Run a Celery worker until stopped (SIGTERM or Ctrl-C: its runs are marked interrupted)."""
    import socket

    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from livetrain.config import Settings

    name = args.name or f"livetrain@{socket.gethostname()}-{os.getpid()}"
    try:
        if not args.broker:
            raise ValueError("a worker needs --broker redis://HOST:6379/0 (LIVETRAIN_BROKER_URL)")
        if not args.message_queue:
            raise ValueError("a worker needs --message-queue redis://HOST:6379/0 (LIVETRAIN_MESSAGE_QUEUE): "
                             "that is how its events reach the server nodes")
        settings = Settings.load({"home": args.home, "runner": "celery", "broker_url": args.broker,
                                  "message_queue": args.message_queue})
        if settings.resolved_database_url.startswith("sqlite"):
            print("livetrain worker: warning: no LIVETRAIN_DATABASE_URL; using the SQLite file in --home, which "
                  "only works when every server and worker is on this machine", file=sys.stderr)
        from livetrain.training.device import resolve_device

        device = str(resolve_device(args.device))
    except ValueError as exc:
        print(f"livetrain worker: {exc}", file=sys.stderr)
        return 2
    queues = [q.strip() for q in args.queues.split(",") if q.strip()] or [settings.default_queue]
    from livetrain.jobs.celery_app import run_worker

    return run_worker(settings, name=name, queues=queues, concurrency=args.concurrency, device=device,
                      threads=args.threads, log_level=args.log_level.upper())


def gc(args: argparse.Namespace) -> int:
    """Remove what is older than --older-than (or with --dry-run, only say what)."""
    from livetrain.auth import parse_duration
    from livetrain.config import Settings
    from livetrain.errors import ValidationError
    from livetrain.services.retention import protected_by_registry, run_gc, table
    from livetrain.store import ArtifactStore, MetadataStore

    try:
        older_than = parse_duration(args.older_than)
        settings = Settings.load({"home": args.home})
    except (ValueError, ValidationError) as exc:
        print(f"livetrain gc: {getattr(exc, 'message', exc)}", file=sys.stderr)
        return 2
    if not settings.database_url and not (settings.home / "livetrain.db").is_file():
        print(f"livetrain gc: no livetrain database in {settings.home} (--home, or LIVETRAIN_DATABASE_URL)",
              file=sys.stderr)
        return 2
    store = MetadataStore(settings.resolved_database_url)
    try:
        store.create_schema()
        removals, freed = run_gc(store, ArtifactStore(settings.models_dir), older_than, dry_run=args.dry_run,
                                 protected=protected_by_registry(store))
    finally:
        store.close()
    if not removals:
        print(f"nothing older than {args.older_than} to remove")
        return 0
    print(table(removals))
    total = sum(r.bytes for r in removals)
    if args.dry_run:
        print(f"dry run: would remove {len(removals)} item(s), {total} bytes; nothing was removed")
    else:
        print(f"removed {len(removals)} item(s), freed {freed} bytes")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `livetrain` command."""
    args = build_parser().parse_args(argv)
    if args.command == "serve":
        return serve(args)
    if args.command == "worker":
        return worker(args)
    if args.command == "tokens":
        from livetrain.tokens_cli import run

        return run(args)
    if args.command == "gc":
        return gc(args)
    from livetrain import console  # the client side: requests and python-socketio, no app, no torch

    return console.main(args)


if __name__ == "__main__":
    sys.exit(main())
