"""The command line without a server: parsing, the tables and result lines it prints, its exit codes.

Everything that talks to a server is tested against a real one in tests/e2e/test_cli_live.py.
"""

from __future__ import annotations

import pytest

from livetrain import console
from livetrain.cli import build_parser
from livetrain.client import ClientError, LivetrainClient, normalize_url
from tests.e2e.helpers import free_port


def parse(*argv: str):
    return build_parser().parse_args(list(argv))


def usage_error(capsys, *argv: str) -> str:
    """Parse a wrong command line: argparse exits 2; what it said on stderr."""
    with pytest.raises(SystemExit) as exited:
        parse(*argv)
    assert exited.value.code == 2
    return capsys.readouterr().err


def test_serve_keeps_its_options():
    args = parse("serve", "--port", "9000", "--home", "/srv/lt", "--async-mode", "threading")
    assert (args.command, args.host, args.port, args.home, args.async_mode) == (
        "serve", "127.0.0.1", 9000, "/srv/lt", "threading")


def test_url_comes_from_the_option_then_the_environment_then_the_default(monkeypatch):
    assert parse("runs", "list").url == "http://127.0.0.1:8000"
    monkeypatch.setenv("LIVETRAIN_URL", "http://trainer:8000")
    assert parse("runs", "list").url == "http://trainer:8000"
    assert parse("--url", "http://a:1", "runs", "list").url == "http://a:1"
    assert parse("runs", "list", "--url", "http://b:2").url == "http://b:2"


@pytest.mark.parametrize("argv", [
    ["networks", "create"], ["networks", "list"], ["networks", "delete", "n1"], ["datasets", "list"],
    ["datasets", "upload", "x.csv"], ["train", "n1", "--epochs", "1"], ["runs", "list"], ["runs", "show", "r1"],
    ["runs", "follow", "r1"], ["runs", "cancel", "r1"], ["experiments", "leaderboard", "default"],
    ["networks", "generate", "n1", "--prompt", ""], ["runs", "logs", "r1"], ["vocabularies", "list"],
    ["vocab", "show", "v1"], ["vocab", "create", "words"], ["vocab", "add", "v1", "cat"],
    ["vocab", "build", "v1", "--dataset", "d1"], ["datasets", "add-samples", "d1", "more.jsonl"],
])
def test_every_client_command_has_its_implementation(argv):
    name = parse(*argv).client_command
    assert console.COMMANDS[name].__name__ == name.replace(" ", "_").replace("-", "_")


def test_options_are_parsed_to_what_the_server_takes():
    args = parse("networks", "create", "--layer-sizes", "784,30,10", "--dataset", "mnist", "--name", "m")
    assert (args.layer_sizes, args.dataset, args.name, args.json) == ([784, 30, 10], "mnist", "m", False)
    args = parse("train", "n1", "--epochs", "3", "--mini-batch-size", "20", "--learning-rate", "0.5",
                 "--optimizer", "adam", "--experiment", "e1", "--follow")
    assert (args.network_id, args.epochs, args.mini_batch_size, args.learning_rate, args.optimizer, args.experiment,
            args.follow) == ("n1", 3, 20, 0.5, "adam", "e1", True)
    args = parse("runs", "list", "--network", "n1", "--status", "running", "--limit", "5", "--json")
    assert (args.network, args.experiment, args.status, args.limit, args.json) == ("n1", None, "running", 5, True)
    args = parse("experiments", "leaderboard", "e1", "--metric", "f1", "--split", "val")
    assert (args.experiment_id, args.metric, args.split) == ("e1", "f1", "val")


def test_the_new_commands_parse_to_what_the_server_takes():
    args = parse("runs", "logs", "r1", "--level", "warning", "--grep", "nan", "--source", "monitor", "--no-fold",
                 "--limit", "20", "--follow")
    assert (args.run_id, args.level, args.grep, args.source, args.no_fold, args.limit, args.follow) == (
        "r1", "warning", "nan", "monitor", True, 20, True)
    args = parse("networks", "generate", "n1", "--prompt", "Once", "--temperature", "0.8", "--max-tokens", "50",
                 "--seed", "7")
    assert (args.network_id, args.prompt, args.temperature, args.max_tokens, args.seed) == ("n1", "Once", 0.8, 50, 7)
    args = parse("vocab", "build", "v1", "--dataset", "d1", "--level", "char", "--min-freq", "2", "--max-size", "99")
    assert (args.vocabulary_id, args.dataset, args.level, args.min_freq, args.max_size) == ("v1", "d1", "char", 2, 99)
    assert parse("vocabularies", "add", "v1", "cat", "dog").tokens == ["cat", "dog"]


def test_a_log_line_reads_time_level_source_message_and_its_count():
    line = {"time": 0, "level": "warning", "source": "monitor", "message": "vanishing gradients"}
    start = console.fmt_time(0)
    assert console.log_line(line) == f"{start}  warning  monitor  vanishing gradients"
    assert console.log_line({**line, "count": 1}) == console.log_line(line)
    assert console.log_line({**line, "level": "info", "count": 120}) == (
        f"{start}  info     monitor  vanishing gradients (×120)")


def test_upload_takes_any_table_file_with_the_reading_options_the_page_has():
    args = parse("datasets", "upload", "prices.xlsx", "--sheet", "Data", "--format", "xlsx", "--missing-target",
                 "drop", "--split", "0.8,0.1,0.1", "--seed", "3")
    assert (args.file, args.sheet, args.format, args.missing_target, args.split, args.seed) == (
        "prices.xlsx", "Data", "xlsx", "drop", "0.8,0.1,0.1", 3)
    args = parse("datasets", "upload", "preise.csv", "--delimiter", "semicolon", "--decimal", ",", "--thousands",
                 ".", "--quote", "'", "--encoding", "cp1252")
    assert (args.delimiter, args.decimal, args.thousands, args.quote, args.encoding) == (
        "semicolon", ",", ".", "'", "cp1252")
    # nothing given is nothing sent: the server detects it
    args = parse("datasets", "upload", "people.csv")
    assert [getattr(args, key) for key in console.UPLOAD_FIELDS] == [None] * len(console.UPLOAD_FIELDS)



def test_a_text_upload_parses_to_the_fields_of_a_text_dataset():
    args = parse("datasets", "upload", "reviews.jsonl", "--kind", "binary_classification", "--vocabulary", "v1",
                 "--level", "char", "--max-len", "128", "--min-freq", "2", "--max-size", "500", "--name", "r",
                 "--description", "film reviews")
    assert {field: getattr(args, key) for key, field in console.TEXT_FIELDS.items()} == {
        "kind": "binary_classification", "vocabulary_id": "v1", "level": "char", "max_len": 128, "min_freq": 2,
        "max_size": 500, "description": "film reviews"}
    args = parse("datasets", "add-samples", "d1", "-", "--json")
    assert (args.dataset_id, args.file, args.json) == ("d1", "-", True)


@pytest.mark.parametrize("argv, says", [
    (["--kind", "generation", "--target", "label", "--delimiter", "tab"],
     "--target, --delimiter: for a table, not a text dataset (--kind)"),
    (["--max-len", "32", "--vocabulary", "v1"], "--vocabulary, --max-len: for a text dataset only; add --kind"),
])
def test_table_and_text_options_do_not_mix_and_nothing_is_sent(capsys, argv, says):
    args = parse("--url", f"http://127.0.0.1:{free_port()}", "datasets", "upload", "a.csv", *argv)
    assert console.main(args) == console.ExitCode.USAGE  # before any request: nobody listens on that port
    assert capsys.readouterr().err == f"livetrain datasets upload: {says}\n"


def test_a_text_dataset_prints_its_kind_splits_vocabulary_and_first_samples(capsys):
    console.print_text_dataset({
        "id": "d1", "name": "reviews", "task": "classification", "n_rows": 3, "truncated": 1,
        "unknown_share": 0.125, "splits": {"train": 2, "val": 0, "test": 1},
        "meta": {"classes": ["no", "yes"], "text": {"kind": "binary_classification", "vocabulary_id": "v9",
                                                    "vocab_size": 42, "level": "word", "max_len": 8}},
        "preview": [{"text": "a  fine\nfilm", "label": "yes", "tokens": 3, "truncated": False, "split": "train"},
                    {"text": "x" * 60, "label": "no", "tokens": 9, "truncated": True, "split": "test"},
                    {"text": "not shown", "label": "no", "tokens": 2, "truncated": False, "split": "train"}]})
    fields, samples = capsys.readouterr().out.split("\n\n")
    assert fields.splitlines() == [
        "dataset     d1", "name        reviews", "kind        binary_classification", "task        classification",
        "samples     3", "split       2 train / 0 val / 1 test", "classes     no, yes",
        "vocabulary  v9 (42 tokens, word-level)", "max len     8",
        "truncated   1 sample(s) longer than max len, cut", "unknown     12.5% of the tokens are <unk>"]
    assert samples.splitlines() == [
        "TEXT                                      LABEL  TOKENS  CUT  SPLIT",
        "a fine film                               yes         3  no   train",
        "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx…  no          9  yes  test"]


@pytest.mark.parametrize("argv, says", [
    (["datasets", "upload", "a.csv", "--kind", "poems"], "invalid choice: 'poems'"),
    (["datasets", "upload", "a.csv", "--kind", "generation", "--max-len", "0"], "must be at least 1, got 0"),
    (["datasets", "add-samples", "d1"], "the following arguments are required: FILE"),
    (["datasets", "upload", "a.csv", "--missing-target", "keep"], "invalid choice: 'keep'"),
    (["datasets", "upload", "a.xls", "--format", "xls"], "invalid choice: 'xls'"),
    (["networks", "create", "--layer-sizes", "4,x,3"], "expected whole numbers separated by commas"),
    (["networks", "create", "--layer-sizes", "4,3", "--layers-json", "l.json"], "not allowed with argument"),
    (["train", "n1"], "the following arguments are required: --epochs"),
    (["train", "n1", "--epochs", "0"], "must be at least 1, got 0"),
    (["runs", "list", "--status", "done"], "invalid choice: 'done'"),
    (["experiments", "leaderboard", "e1", "--split", "dev"], "invalid choice: 'dev'"),
    (["runs"], "the following arguments are required: ACTION"),
    (["runs", "logs", "r1", "--source", "kernel"], "invalid choice: 'kernel'"),
    (["networks", "generate", "n1"], "the following arguments are required: --prompt"),
    (["networks", "generate", "n1", "--prompt", "a", "--max-tokens", "0"], "must be at least 1, got 0"),
    (["vocab", "add", "v1"], "the following arguments are required: TOKEN"),
    (["vocab", "build", "v1"], "the following arguments are required: --dataset"),
    (["vocab", "create", "w", "--level", "byte"], "invalid choice: 'byte'"),
])
def test_a_wrong_command_line_exits_2_saying_what_is_wrong(capsys, argv, says):
    assert says in usage_error(capsys, *argv)


def test_the_help_lists_the_exit_codes(capsys):
    with pytest.raises(SystemExit) as exited:
        parse("runs", "follow", "--help")
    assert exited.value.code == 0
    out = capsys.readouterr().out
    for line in ("3    the followed run was cancelled", "5    the server refused the request, or could not be reached",
                 "130  Ctrl-C: detached from a followed run (it goes on training)"):
        assert line in out


def test_a_table_lines_up_its_columns_and_right_aligns_numbers():
    rows = [["a1", "completed", "3/3", 0.93333, "4,8,3"], ["b22", "running", "12/200", None, "64"]]
    table = console.format_table(["RUN", "STATUS", "EPOCHS", "ACCURACY", "ARCH"], rows)
    assert table.splitlines() == [
        "RUN  STATUS     EPOCHS  ACCURACY  ARCH",
        "a1   completed     3/3    0.9333  4,8,3",
        "b22  running    12/200         -  64",
    ]


def test_fields_line_up_their_values():
    assert console.format_fields([("run", "a1"), ("accuracy", 0.5), ("error", None)]).splitlines() == [
        "run       a1", "accuracy  0.5000", "error     -"]


RUN = {"run_id": "a1", "algorithm": "network", "epochs_done": 3, "total_epochs": 3, "accuracy": 0.93333,
       "val_loss": 0.04121, "train_loss": 0.05, "version": 2, "error": None, "checkpoint_epoch": 3}


@pytest.mark.parametrize("changes, line, code", [
    ({"status": "completed"}, "run a1 completed: accuracy 0.9333, held-out loss 0.0412, 3/3 epochs, version 2", 0),
    ({"status": "completed", "accuracy": None, "algorithm": "linear", "version": None, "total_epochs": 10,
      "epochs_done": 10}, "run a1 completed: held-out loss 0.0412, 10/10 steps", 0),
    ({"status": "failed", "error": "the loss diverged at epoch 2"}, "run a1 failed: the loss diverged at epoch 2", 1),
    ({"status": "cancelled", "epochs_done": 2, "total_epochs": 200, "checkpoint_epoch": 2},
     "run a1 cancelled after 2/200 epochs, checkpoint at epoch 2", 3),
    ({"status": "interrupted", "error": "the server stopped", "checkpoint_epoch": 1},
     "run a1 interrupted: the server stopped (checkpoint at epoch 1)", 4),
])
def test_the_result_line_and_exit_code_say_how_a_run_ended(changes, line, code):
    run = {**RUN, **changes}
    assert console.result_line(run) == line
    assert console.STATUS_EXIT[run["status"]] == code


def test_a_url_gets_a_scheme_and_loses_its_trailing_slash():
    assert normalize_url("localhost:8000/") == "http://localhost:8000"
    assert normalize_url("https://train.example/") == "https://train.example"


def test_a_server_that_does_not_listen_is_an_unreachable_error():
    url = f"http://127.0.0.1:{free_port()}"
    with LivetrainClient(url) as client, pytest.raises(ClientError) as raised:
        client.list_networks()
    assert (raised.value.code, raised.value.status) == ("unreachable", None)
    assert raised.value.message.startswith(f"cannot reach the livetrain server at {url} (Connection refused)")


@pytest.mark.parametrize("states, said", [
    (["connected"], []),
    (["connected", "disconnected", "connected"], ["lost", "reconnected"]),
    # dropped before the first connect was caught up: the next one is still a reconnect
    (["disconnected", "connected"], ["lost", "reconnected"]),
    (["connected", "disconnected", "connected", "disconnected", "connected"],
     ["lost", "reconnected", "lost", "reconnected"]),
])
def test_following_says_each_drop_and_each_return_but_not_the_first_connect(states, said):
    import io

    stream = io.StringIO()
    progress = console.RunProgress("0123456789ab", stream)
    for state in states:
        progress.connection(state)
    lines = stream.getvalue().splitlines()
    assert ["lost" if "lost" in line else "reconnected" for line in lines] == said, lines
    assert all(line.startswith(("connection to the server lost", "reconnected; caught up on run 0123456789ab"))
               for line in lines)


def test_a_worker_takes_the_scale_out_options():
    args = build_parser().parse_args(["worker", "--broker", "redis://r:6379/0", "--message-queue", "redis://r:6379/1",
                                      "--concurrency", "2", "--queues", "gpu,default", "--device", "auto"])
    assert (args.broker, args.message_queue, args.concurrency, args.queues, args.device) == (
        "redis://r:6379/0", "redis://r:6379/1", 2, "gpu,default", "auto")
    serve = build_parser().parse_args(["serve", "--runner", "celery", "--broker", "redis://r/0",
                                       "--message-queue", "redis://r/1"])
    assert (serve.runner, serve.broker, serve.message_queue) == ("celery", "redis://r/0", "redis://r/1")


@pytest.mark.parametrize(("argv", "says"), [
    (["worker", "--message-queue", "redis://127.0.0.1:6379/0"], "a worker needs --broker"),
    (["worker", "--broker", "redis://127.0.0.1:6379/0"], "a worker needs --message-queue"),
    (["worker", "--broker", "redis://127.0.0.1:6379/0", "--message-queue", "redis://127.0.0.1:6379/0",
      "--device", "cuda"], "torch sees no CUDA device"),
])
def test_a_worker_that_cannot_work_exits_2_saying_why(capsys, monkeypatch, tmp_path, argv, says):
    from livetrain.cli import main

    for name in ("LIVETRAIN_BROKER_URL", "LIVETRAIN_MESSAGE_QUEUE", "LIVETRAIN_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    assert main([*argv, "--home", str(tmp_path)]) == 2
    assert says in capsys.readouterr().err
