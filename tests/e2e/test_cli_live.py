"""The `livetrain` terminal client against a real server: what a user sees, and how each command exits.

The commands run as subprocesses (`python -m livetrain ...`), as a user would run them; the
follower's reconnect is driven in-process through a TCP proxy whose connections the test cuts.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading

import pytest

from livetrain.client import LivetrainClient, RunFollower
from tests.e2e.helpers import free_port, wait_until
from tests.web.test_dataset_pages import semicolon_csv, workbook_xlsx

CLI_TIMEOUT = 120  # a guard against a hanging command, not a speed requirement
IRIS = {"dataset_id": "iris", "layer_sizes": [4, 8, 3]}
# digits one example per mini-batch: a run slow enough to act on; the tests cancel it early
SLOW = ["--epochs", "200", "--mini-batch-size", "1"]


def _env(**extra: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("LIVETRAIN_")}
    env.update(extra)
    return env


def cli(server, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """`livetrain --url <server> args...`, run to the end."""
    url = ["--url", server.url] if server is not None else []
    return subprocess.run([sys.executable, "-m", "livetrain", *url, *args], capture_output=True, text=True,
                          env=env or _env(), stdin=subprocess.DEVNULL, timeout=CLI_TIMEOUT)


def line_with(text: str, needle: str) -> str:
    """The one output line that contains `needle`."""
    lines = [line for line in text.splitlines() if needle in line]
    assert len(lines) == 1, f"expected one line with {needle!r} in:\n{text}"
    return lines[0]


class Following:
    """A `livetrain ... --follow` subprocess whose output is read as it comes, with a stdin to answer on."""

    def __init__(self, server, *args: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "livetrain", "--url", server.url, *args],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_env())
        self._out: list[bytes] = []
        self._err: list[bytes] = []
        self._readers = [threading.Thread(target=self._read, args=(stream, into), daemon=True)
                         for stream, into in ((self.process.stdout, self._out), (self.process.stderr, self._err))]
        for reader in self._readers:
            reader.start()

    @staticmethod
    def _read(stream, into: list[bytes]) -> None:
        # the progress bar redraws with \r and no newline: read whatever has come
        while chunk := os.read(stream.fileno(), 65536):
            into.append(chunk)

    @property
    def stderr(self) -> str:
        return b"".join(self._err).decode(errors="replace")

    @property
    def stdout(self) -> str:
        return b"".join(self._out).decode(errors="replace")

    def wait_for_stderr(self, text: str) -> str:
        """Wait until `text` has been printed on stderr (or the command has ended without it)."""
        def seen():
            return text in self.stderr or self.process.poll() is not None
        wait_until(seen, timeout=CLI_TIMEOUT, what=f"{text!r} on the command's stderr")
        assert text in self.stderr, f"the command ended without printing {text!r}:\n{self.stderr}\n{self.stdout}"
        return self.stderr

    def run_id(self) -> str:
        """The id in `started run <id>`, once it is following."""
        self.wait_for_stderr("following run")
        return re.search(r"started run (\w+)", self.stderr).group(1)

    def answer(self, text: str) -> None:
        self.process.stdin.write(text.encode())
        self.process.stdin.flush()

    def wait(self) -> int:
        code = self.process.wait(timeout=CLI_TIMEOUT)
        for reader in self._readers:
            reader.join(timeout=10)
        return code

    def kill(self) -> None:
        """Kill it if it still runs, and close its pipes."""
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        for reader in self._readers:
            reader.join(timeout=10)
        for stream in (self.process.stdin, self.process.stdout, self.process.stderr):
            stream.close()


@pytest.fixture
def following(server):
    """`following(*args)` starts a following command; all are killed at teardown, their runs cancelled."""
    started: list[Following] = []

    def start(*args: str) -> Following:
        command = Following(server, *args)
        started.append(command)
        return command

    yield start
    for command in started:
        command.kill()
        found = re.search(r"started run (\w+)", command.stderr)
        if found and server.api.run(found.group(1))["status"] in ("queued", "running"):
            server.api.post(f"/api/runs/{found.group(1)}/cancel")
            server.api.wait_for_run(found.group(1))


def test_networks_create_list_and_delete(server):
    created = cli(server, "networks", "create", "--dataset", "iris", "--layer-sizes", "4,8,3", "--name", "cli-iris")
    assert created.returncode == 0, created.stderr
    network_id = re.search(r"^network\s+(\w+)$", created.stdout, re.M).group(1)
    network = server.api.get(f"/api/networks/{network_id}")
    assert (network["name"], network["dataset_id"], network["architecture"]) == ("cli-iris", "iris", [4, 8, 3])
    assert re.search(r"^architecture\s+4,8,3$", created.stdout, re.M)
    assert re.search(r"^parameters\s+67$", created.stdout, re.M)
    layers = [line.split() for line in created.stdout.split("\n\n")[1].splitlines()[1:]]
    assert layers == [["0", "Linear", "8", "40"], ["1", "Sigmoid", "8", "0"], ["2", "Linear", "3", "27"],
                      ["3", "Sigmoid", "3", "0"]]

    listed = cli(server, "networks", "list")
    assert listed.returncode == 0
    assert line_with(listed.stdout, network_id).split() == [network_id, "cli-iris", "iris", "4,8,3", "created", "0",
                                                             "-", "67"]
    as_json = cli(server, "networks", "list", "--json")
    assert json.loads(as_json.stdout) == server.api.get("/api/networks")

    deleted = cli(server, "networks", "delete", network_id)
    assert deleted.returncode == 0
    assert deleted.stdout.startswith(f"deleted network {network_id}")
    assert network_id not in cli(server, "networks", "list").stdout

    again = cli(server, "networks", "delete", network_id)
    message = server.api.request("DELETE", f"/api/networks/{network_id}").json()["message"]
    assert (again.returncode, again.stdout, again.stderr) == (5, "", f"livetrain: {message}\n")


def test_datasets_upload_and_list_and_a_bad_csv(server, tmp_path):
    good = tmp_path / "people.csv"
    rows = [f"{20 + i},{i % 3 * 1.5},{['red', 'green', 'blue'][i % 3]},{'AB'[i % 2]}" for i in range(40)]
    good.write_text("age,score,color,label\n" + "\n".join(rows) + "\n")
    uploaded = cli(server, "datasets", "upload", str(good), "--target", "label", "--name", "cli-people")
    assert uploaded.returncode == 0, uploaded.stderr
    dataset_id = re.search(r"^dataset\s+(\w+)$", uploaded.stdout, re.M).group(1)
    detail = server.api.get(f"/api/datasets/{dataset_id}")
    assert detail["name"] == "cli-people" and detail["schema"]["targets"] == ["label"]
    splits = detail["splits"]
    assert re.search(rf"^split\s+{splits['train']} train / {splits['val']} val / {splits['test']} test$",
                     uploaded.stdout, re.M)
    assert re.search(r"^task\s+classification$", uploaded.stdout, re.M)
    assert line_with(uploaded.stdout, "color ").split()[:3] == ["color", "categorical", "feature"]

    listed = cli(server, "datasets", "list")
    assert listed.returncode == 0
    assert line_with(listed.stdout, dataset_id).split() == [
        dataset_id, "cli-people", "classification", "uploaded", str(detail["n_features"]), "2",
        str(splits["train"]), str(splits["val"]), str(splits["test"])]
    assert "iris" in listed.stdout

    bad = tmp_path / "bad.csv"
    bad.write_text("a,b,label\n" + "\n".join(f"{i},{i},x" for i in range(12)) + "\n1,2,3,4\n")
    refused = cli(server, "datasets", "upload", str(bad))
    with bad.open("rb") as handle:
        message = server.api.request("POST", "/api/datasets", files={"file": ("bad.csv", handle)}).json()["message"]
    assert message.startswith("Line 14 has 4 fields but the header has 3 (reading fields separated by comma")
    assert (refused.returncode, refused.stdout, refused.stderr) == (5, "", f"livetrain: {message}\n")


def test_datasets_upload_with_reading_options_prints_how_the_file_was_read(server, tmp_path):
    preise = tmp_path / "preise.csv"
    preise.write_bytes(semicolon_csv())  # semicolons, decimal commas, cp1252; one row without a target
    uploaded = cli(server, "datasets", "upload", str(preise), "--delimiter", "semicolon", "--decimal", ",",
                   "--encoding", "cp1252", "--missing-target", "drop")
    assert uploaded.returncode == 0, uploaded.stderr
    assert re.search(r"^rows\s+29$", uploaded.stdout, re.M)
    assert re.search(r"^left out\s+1 row without a target value$", uploaded.stdout, re.M)
    read_as = {line.split("  ")[0]: line.split() for line in uploaded.stdout.split("\n\n")[1].splitlines()[1:]}
    assert read_as["delimiter"][-3:] == ["semicolon", "(';')", "given"]
    assert read_as["decimal mark"][-3:] == ["comma", "(',')", "given"]
    assert read_as["encoding"][-2:] == ["cp1252", "given"]
    assert read_as["thousands separator"][-3:] == ["dot", "('.')", "detected"]
    assert line_with(uploaded.stdout, "preis ").split()[:3] == ["preis", "numeric", "feature"]
    assert "numbers written with thousands separator dot ('.'), decimal comma" in line_with(uploaded.stdout, "preis ")
    dataset_id = re.search(r"^dataset\s+(\w+)$", uploaded.stdout, re.M).group(1)
    dialect = server.api.get(f"/api/datasets/{dataset_id}")["schema"]["dialect"]
    assert (dialect["delimiter"], dialect["decimal"], dialect["encoding"]) == (";", ",", "cp1252")
    assert dialect["given"] == ["decimal", "delimiter", "encoding"]

    # a workbook: its sheet, and the whole answer as JSON
    (tmp_path / "book.xlsx").write_bytes(workbook_xlsx())
    as_json = cli(server, "datasets", "upload", str(tmp_path / "book.xlsx"), "--sheet", "Data", "--json")
    assert as_json.returncode == 0, as_json.stderr
    detail = json.loads(as_json.stdout)
    assert detail == server.api.get(f"/api/datasets/{detail['id']}")
    assert (detail["schema"]["dialect"]["format"], detail["schema"]["dialect"]["sheet"]) == ("xlsx", "Data")
    assert detail["meta"]["filename"] == "book.xlsx"


def test_a_text_dataset_from_a_jsonl_file_then_samples_added_and_a_bad_one_refused(server, tmp_path):
    reviews = tmp_path / "reviews.jsonl"
    words = ["great", "awful", "fine", "dull", "superb", "boring"]
    reviews.write_text("".join(json.dumps({"text": f"a {words[i % 6]} film number {i}", "label": i % 2 == 0}) + "\n"
                               for i in range(20)))
    uploaded = cli(server, "datasets", "upload", str(reviews), "--kind", "binary_classification", "--max-len", "6",
                   "--min-freq", "2", "--name", "cli-reviews")
    assert uploaded.returncode == 0, uploaded.stderr
    dataset_id = re.search(r"^dataset\s+(\w+)$", uploaded.stdout, re.M).group(1)
    detail = server.api.get(f"/api/datasets/{dataset_id}")
    info = detail["meta"]["text"]
    assert (detail["name"], info["kind"], info["max_len"], detail["n_rows"]) == (
        "cli-reviews", "binary_classification", 6, 20)
    assert detail["meta"]["vocabulary"]["min_freq"] == 2
    assert re.search(r"^kind\s+binary_classification$", uploaded.stdout, re.M)
    assert re.search(r"^samples\s+20$", uploaded.stdout, re.M)
    assert re.search(rf"^vocabulary\s+{info['vocabulary_id']} \({info['vocab_size']} tokens, word-level\)$",
                     uploaded.stdout, re.M)
    assert re.search(rf"^truncated\s+{detail['truncated']} sample\(s\)", uploaded.stdout, re.M)
    assert line_with(uploaded.stdout, "TOKENS").split() == ["TEXT", "LABEL", "TOKENS", "CUT", "SPLIT"]
    assert line_with(cli(server, "datasets", "list").stdout, dataset_id).split()[:4] == [
        dataset_id, "cli-reviews", "classification", "text:binary_classification"]

    more = tmp_path / "more.json"
    more.write_text(json.dumps([{"text": "a great film again", "label": True},
                                {"text": "a dull film again", "label": False}]))
    added = cli(server, "datasets", "add-samples", dataset_id, str(more))
    assert added.returncode == 0, added.stderr
    after = server.api.get(f"/api/datasets/{dataset_id}")
    assert after["n_rows"] == 22
    splits = after["splits"]
    assert added.stdout == (f"dataset {dataset_id}: added 2 sample(s), now 22 ({splits['train']} train / "
                            f"{splits['val']} val / {splits['test']} test)\n")

    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"text": "fine", "label": True}) + "\n" + json.dumps({"text": "no label"}) + "\n")
    refused = cli(server, "datasets", "add-samples", dataset_id, str(bad))
    message = server.api.request("POST", f"/api/datasets/{dataset_id}/samples",
                                 json={"samples": [json.loads(line) for line in bad.read_text().splitlines()]}
                                 ).json()["message"]
    assert "label" in message and "24" in message  # the sample (after the 22 there are) and the field
    assert (refused.returncode, refused.stdout, refused.stderr) == (5, "", f"livetrain: {message}\n")
    assert server.api.get(f"/api/datasets/{dataset_id}")["n_rows"] == 22

    as_json = cli(server, "datasets", "upload", str(reviews), "--kind", "binary_classification", "--json")
    assert as_json.returncode == 0, as_json.stderr
    created = json.loads(as_json.stdout)
    assert created == server.api.get(f"/api/datasets/{created['id']}") and created["n_rows"] == 20


def test_train_follow_to_the_end_then_runs_and_leaderboard(server):
    network_id = server.api.post("/api/networks", IRIS, expect=201)["network_id"]
    trained = cli(server, "train", network_id, "--epochs", "3", "--follow")
    assert trained.returncode == 0, trained.stderr
    found = re.fullmatch(r"run (\w+) completed: accuracy (\d\.\d{4}), held-out loss \d\.\d{4}, 3/3 epochs, version 1\n",
                         trained.stdout)
    assert found, trained.stdout
    run_id = found.group(1)
    run = server.api.run(run_id)
    assert run["status"] == "completed" and found.group(2) == f"{run['accuracy']:.4f}"
    assert f"following run {run_id}" in trained.stderr and "epoch 3/3" in trained.stderr

    # following a run that has already ended prints its result at once
    again = cli(server, "runs", "follow", run_id)
    assert (again.returncode, again.stdout) == (0, trained.stdout)

    listed = cli(server, "runs", "list", "--network", network_id)
    assert listed.returncode == 0
    assert line_with(listed.stdout, run_id).split()[:8] == [
        run_id, "completed", "network", network_id, "iris", "default", "3/3", f"{run['accuracy']:.4f}"]
    as_json = json.loads(cli(server, "runs", "list", "--network", network_id, "--json").stdout)
    assert as_json["total"] == 1 and [r["run_id"] for r in as_json["runs"]] == [run_id]
    newest = cli(server, "runs", "list", "--network", network_id, "--status", "completed", "--limit", "1")
    assert [line.split()[0] for line in newest.stdout.splitlines()] == ["RUN", run_id]
    none_failed = cli(server, "runs", "list", "--network", network_id, "--status", "failed")
    assert none_failed.stdout.split() == newest.stdout.splitlines()[0].split()  # the header alone

    shown = cli(server, "runs", "show", run_id)
    assert shown.returncode == 0
    assert re.search(r"^status\s+completed$", shown.stdout, re.M)
    assert re.search(rf"^accuracy\s+{run['accuracy']:.4f}$", shown.stdout, re.M)
    assert re.search(r"^version\s+1$", shown.stdout, re.M)
    test_row = line_with(shown.stdout, "test ").split()
    assert test_row[:2] == ["test", f"{run['metrics']['test']['accuracy']:.4f}"]
    assert json.loads(cli(server, "runs", "show", run_id, "--json").stdout)["metrics"] == run["metrics"]

    ended = cli(server, "runs", "cancel", run_id)
    message = server.api.request("POST", f"/api/runs/{run_id}/cancel").json()["message"]
    assert (ended.returncode, ended.stderr) == (5, f"livetrain: {message}\n")

    board = cli(server, "experiments", "leaderboard", "default")
    assert board.returncode == 0
    expected = server.api.get("/api/experiments/default/leaderboard")
    entry = next(e for e in expected["entries"] if e["run_id"] == run_id)
    assert board.stdout.splitlines()[0] == "experiment default: accuracy on test (higher is better)"
    assert line_with(board.stdout, run_id).split() == [
        str(entry["rank"]), run_id, "network", network_id, "iris", "completed", f"{entry['value']:.4f}"]
    ranks = [int(line.split()[0]) for line in board.stdout.splitlines()[2:] if line.split()[0].isdigit()]
    assert ranks[0] == 1 and ranks == sorted(ranks)
    by_loss = json.loads(cli(server, "experiments", "leaderboard", "default", "--metric", "loss", "--json").stdout)
    assert by_loss["metric"] == "loss" and by_loss["direction"] == "min"


def test_a_followed_run_that_fails_exits_1_with_its_error(server, tmp_path):
    spec = tmp_path / "diverges.json"  # plain SGD this fast blows the loss up in the first epoch
    spec.write_text(json.dumps({"layers": [{"type": "Linear", "out_features": 64}, {"type": "ReLU"},
                                           {"type": "Linear", "out_features": 1}],
                                "loss": "mse", "optimizer": "sgd", "learning_rate": 100}))
    created = cli(server, "networks", "create", "--dataset", "diabetes", "--layers-json", str(spec), "--json")
    network = json.loads(created.stdout)
    assert network["kind"] == "layers" and network["spec"]["learning_rate"] == 100
    experiment_id = server.api.post("/api/experiments", {"name": "cli-diverges"}, expect=201)["experiment_id"]
    followed = cli(server, "train", network["network_id"], "--epochs", "5", "--experiment", experiment_id, "--follow")
    run_id = re.search(r"started run (\w+)", followed.stderr).group(1)
    run = server.api.run(run_id)
    assert run["status"] == "failed" and "diverged" in run["error"] and run["experiment_id"] == experiment_id
    assert (followed.returncode, followed.stdout) == (1, f"run {run_id} failed: {run['error']}\n")

    board = cli(server, "experiments", "leaderboard", experiment_id)
    assert board.stdout.splitlines() == [
        f"experiment {experiment_id}: r2 on test (higher is better)",
        "RANK  RUN  ALGORITHM  NETWORK  DATASET  STATUS  R2",
        f"unranked (1, no r2 on test): {run_id} failed"]


def test_a_followed_run_cancelled_by_another_client_exits_3(server, following):
    network_id = server.api.post("/api/networks", {"dataset_id": "digits"}, expect=201)["network_id"]
    command = following("train", network_id, *SLOW, "--follow")
    run_id = command.run_id()
    server.api.post(f"/api/runs/{run_id}/cancel")
    assert command.wait() == 3, command.stderr
    run = server.api.run(run_id)
    assert run["status"] == "cancelled"
    assert command.stdout.startswith(f"run {run_id} cancelled after {run['epochs_done']}/200 epochs")


def test_ctrl_c_then_yes_cancels_the_run_on_the_server(server, following):
    network_id = server.api.post("/api/networks", {"dataset_id": "digits"}, expect=201)["network_id"]
    command = following("train", network_id, *SLOW, "--follow")
    run_id = command.run_id()
    command.process.send_signal(signal.SIGINT)
    command.wait_for_stderr(f"Cancel run {run_id} on the server? [y/N]")
    command.answer("y\n")
    assert command.wait() == 3, command.stderr
    assert server.api.run(run_id)["status"] == "cancelled"
    assert command.stdout.startswith(f"run {run_id} cancelled after ")


def test_ctrl_c_then_no_detaches_and_the_run_goes_on(server, following):
    network_id = server.api.post("/api/networks", {"dataset_id": "digits"}, expect=201)["network_id"]
    command = following("train", network_id, *SLOW, "--follow")
    run_id = command.run_id()
    command.process.send_signal(signal.SIGINT)
    command.wait_for_stderr("[y/N]")
    command.answer("n\n")
    assert command.wait() == 130, command.stderr
    assert f"detached from run {run_id}" in command.stderr
    assert server.api.run(run_id)["status"] in ("queued", "running")

    cancelled = cli(server, "runs", "cancel", run_id)
    assert cancelled.returncode == 0, cancelled.stderr
    assert cancelled.stdout.startswith(f"run {run_id}")
    assert server.api.wait_for_run(run_id)["status"] == "cancelled"


def test_following_a_run_the_server_interrupted_exits_4(start_server):
    first = start_server()
    network_id = first.api.post("/api/networks", {"dataset_id": "digits"}, expect=201)["network_id"]
    run_id = first.api.train(network_id, epochs=200, mini_batch_size=1)["run_id"]
    first.stop()  # the run was queued or running: it ends interrupted
    second = start_server(home=first.home)
    followed = cli(second, "runs", "follow", run_id)
    run = second.api.run(run_id)
    assert run["status"] == "interrupted"
    assert followed.returncode == 4, followed.stderr
    assert followed.stdout.startswith(f"run {run_id} interrupted: {run['error']}")
    listed = cli(second, "runs", "list", "--status", "interrupted", "--json")
    assert [r["run_id"] for r in json.loads(listed.stdout)["runs"]] == [run_id]


def test_a_followed_run_exits_4_as_soon_as_its_server_stops(start_server):
    server = start_server()
    network_id = server.api.post("/api/networks", {"dataset_id": "digits"}, expect=201)["network_id"]
    command = Following(server, "train", network_id, *SLOW, "--follow")
    try:
        run_id = command.run_id()
        server.process.send_signal(signal.SIGTERM)  # as `docker stop` does
        # told by the server on its way down, not found out after reconnecting for a minute (exit 5)
        assert command.wait() == 4, command.stderr
        assert command.stdout.startswith(f"run {run_id} interrupted: the server stopped while this run was "), (
            command.stdout)
        assert "connection to the server lost" not in command.stderr
        assert server.process.wait(timeout=CLI_TIMEOUT) == 0
    finally:
        command.kill()


def test_an_unreachable_server_exits_5_and_says_so():
    url = f"http://127.0.0.1:{free_port()}"
    listed = cli(None, "--url", url, "networks", "list")
    assert (listed.returncode, listed.stdout) == (5, "")
    assert listed.stderr.startswith(f"livetrain: cannot reach the livetrain server at {url} (Connection refused)")

    # $LIVETRAIN_URL is the default of --url
    followed = cli(None, "runs", "follow", "abc", env=_env(LIVETRAIN_URL=url))
    assert followed.returncode == 5 and f"cannot reach the livetrain server at {url}" in followed.stderr


def test_client_commands_load_neither_torch_nor_flask_nor_eventlet(server):
    code = ("import sys\n"
            "from livetrain.cli import main\n"
            f"assert main(['--url', {server.url!r}, 'datasets', 'list']) == 0\n"
            "heavy = ('torch', 'flask', 'eventlet', 'sklearn', 'livetrain.app')\n"
            "print('loaded:', [m for m in heavy if m in sys.modules], file=sys.stderr)\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=_env(),
                            timeout=CLI_TIMEOUT)
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip().endswith("loaded: []")


class CuttableProxy:
    """A TCP proxy to the server whose open connections the test can cut, as a network drop would."""

    def __init__(self, port: int, cut_on_reply: bytes | None = None) -> None:
        self.target = ("127.0.0.1", port)
        # the first reply from the server that holds these bytes is not passed on: the connections drop instead
        self.cut_on_reply = cut_on_reply
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.sockets: list[socket.socket] = []
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                near, _ = self.listener.accept()
            except OSError:
                return  # closed
            far = socket.create_connection(self.target)
            with self.lock:
                self.sockets += [near, far]
            threading.Thread(target=self._pump, args=(near, far), daemon=True).start()
            threading.Thread(target=self._pump, args=(far, near, True), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket, replies: bool = False) -> None:
        try:
            while data := source.recv(65536):
                if replies and self.cut_on_reply and self.cut_on_reply in data:
                    self.cut_on_reply = None
                    self.cut()
                    return
                sink.sendall(data)
        except OSError:
            pass
        for end in (source, sink):
            try:
                end.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def cut(self) -> None:
        """Drop every open connection (the listener stays: reconnecting works)."""
        with self.lock:
            cut, self.sockets = self.sockets, []
        for sock in cut:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()

    def close(self) -> None:
        self.listener.close()
        self.cut()


def _follow_a_run_through_a_drop(server, proxy: CuttableProxy, cut_at_epoch: int | None = None,
                                 start_after_epoch: int = 0) -> list[str]:
    """Follow a long run (from when it has stored `start_after_epoch` epochs) through `proxy`, which
    drops the connection once (when the follower gets the given epoch, or on the reply it was told
    to cut on); cancel the run once the follower is back and caught up. Checks that every epoch was
    seen exactly once, as stored, and that "connected" and "disconnected" alternate (the follower
    never says it is back while it is not); the connection states seen."""
    network_id = server.api.post("/api/networks", {"dataset_id": "digits"}, expect=201)["network_id"]
    run_id = server.api.train(network_id, epochs=200, mini_batch_size=1)["run_id"]
    wait_until(lambda: server.api.run(run_id)["epochs_done"] >= start_after_epoch, timeout=120,
               what=f"epoch {start_after_epoch} of run {run_id}")
    client = LivetrainClient(proxy.url)
    epochs: list[int] = []
    states: list[str] = []
    cancelled: list[str] = []

    def on_event(name: str, payload: dict) -> None:
        if name == "training_update":
            epochs.append(payload["epoch"])
            if payload["epoch"] == cut_at_epoch:
                proxy.cut()

    def on_connection(state: str) -> None:
        states.append(state)
        # back and caught up after the drop (which may come before the first subscription is
        # acknowledged, as live events arrive from the moment the socket connects): end the run,
        # once (on a loaded machine the connection may drop again by itself)
        if state == "connected" and "disconnected" in states and not cancelled:
            cancelled.append(run_id)
            server.api.post(f"/api/runs/{run_id}/cancel")

    follower = RunFollower(client, run_id, on_event, on_connection)
    try:
        follower.start()
        run = follower.wait()
    finally:
        follower.close()
        client.close()
        proxy.close()
    assert "disconnected" in states and "connected" in states[states.index("disconnected"):], states
    assert all(state != after for state, after in zip(states, states[1:])), states
    assert run["status"] == "cancelled"
    assert sorted(epochs) == list(range(1, run["epochs_done"] + 1)), epochs
    stored = [m["epoch"] for m in server.api.get(f"/api/runs/{run_id}/metrics")["metrics"]]
    assert stored == sorted(epochs)
    return states


def test_the_follower_catches_up_after_a_dropped_connection_without_losing_or_repeating_an_epoch(server):
    _follow_a_run_through_a_drop(server, CuttableProxy(server.port), cut_at_epoch=2)


def test_a_drop_while_the_follower_catches_up_is_followed_by_a_new_catch_up_not_by_connected(server):
    # epoch 1 is stored before the follower starts, so it comes from the catch-up, never live: the
    # connection drops while the follower is catching up
    states = _follow_a_run_through_a_drop(server, CuttableProxy(server.port), cut_at_epoch=1, start_after_epoch=1)
    assert states[:2] == ["disconnected", "connected"], states


def test_the_follower_reconnects_when_the_connection_drops_before_its_subscription_is_acknowledged(server):
    # the server's answer to the first subscribe ({"ok": true, "room": ...}) never arrives
    proxy = CuttableProxy(server.port, cut_on_reply=b'"room"')
    states = _follow_a_run_through_a_drop(server, proxy)
    assert proxy.cut_on_reply is None  # the drop did happen, on that answer
    assert states[:2] == ["disconnected", "connected"], states


def test_the_follower_asks_again_when_a_catch_up_request_is_cut_off(server):
    # the answer to the first GET /api/runs/{id}/events never arrives: that request fails as the
    # socket drops with it, and the follower asks again instead of giving up
    proxy = CuttableProxy(server.port, cut_on_reply=b'"events"')
    states = _follow_a_run_through_a_drop(server, proxy)
    assert proxy.cut_on_reply is None
    assert states[:2] == ["disconnected", "connected"], states


def test_train_with_a_schedule_clipping_and_early_stopping(server):
    layers = [{"type": "Linear", "out_features": 8}, {"type": "ReLU"}, {"type": "Linear", "out_features": 3}]
    network_id = server.api.post("/api/networks", {"dataset_id": "iris", "layers": layers, "optimizer": "sgd",
                                                   "learning_rate": 0.05}, expect=201)["network_id"]
    trained = cli(server, "train", network_id, "--epochs", "10", "--lr-schedule", "step:1:0.5",
                  "--clip-grad-norm", "1", "--early-stopping", "accuracy:2:1", "--follow")
    assert trained.returncode == 0, trained.stderr
    found = re.fullmatch(r"run (\w+) completed: accuracy \d\.\d{4}, held-out loss \d\.\d{4}, 3/10 epochs, version 1, "
                         r"weights of epoch 1 \(its best\), stopped early: early_stopping: no improvement in "
                         r"accuracy for 2 epochs\n", trained.stdout)
    assert found, trained.stdout
    assert re.search(r"lr 0\.\d+", trained.stderr)  # the bar shows the learning rate
    run = server.api.run(found.group(1))
    assert run["params"]["lr_schedule"] == {"type": "step", "step_size": 1, "gamma": 0.5}
    assert run["params"]["clip_grad_norm"] == 1.0
    assert run["params"]["early_stopping"] == {"metric": "accuracy", "mode": "max", "patience": 2, "min_delta": 1.0}

    # the server checks the values and names the field; the command line checks the form
    refused = cli(server, "train", network_id, "--epochs", "2", "--lr-schedule", "step:1:1.5")
    assert refused.returncode == 5 and "lr_schedule.gamma must be in (0.0, 1.0]" in refused.stderr
    misspelt = cli(server, "train", network_id, "--epochs", "2", "--lr-schedule", "linear")
    assert misspelt.returncode == 2 and "unknown schedule 'linear'" in misspelt.stderr
    as_json = cli(server, "train", network_id, "--epochs", "2", "--lr-schedule", '{"type": "cosine", "t_max": 4}')
    assert as_json.returncode == 0, as_json.stderr
    run_id = re.match(r"run (\w+)", as_json.stdout).group(1)
    assert server.api.run(run_id)["params"]["lr_schedule"] == {"type": "cosine", "t_max": 4, "eta_min": 0.0}


def _logs(server, run_id: str, **params) -> list[dict]:
    return server.api.get(f"/api/runs/{run_id}/logs", params=params)["lines"]


def _messages(stdout: str) -> list[str]:
    """The message (and its ×count) of each `time  level  source  message` line."""
    return [re.fullmatch(r"\S+ \S+ +\S+ +\S+ +(\S.*)", text).group(1) for text in stdout.splitlines()]


def test_runs_logs_filters_and_folds_as_the_server_does(server):
    # plain SGD at a learning rate of 50 kills every ReLU at once: the monitor warns at every step, one line folded
    layers = [{"type": "Linear", "out_features": 32}, {"type": "ReLU"}, {"type": "Linear", "out_features": 3}]
    network_id = server.api.post("/api/networks", {"dataset_id": "iris", "layers": layers, "optimizer": "sgd"},
                                 expect=201)["network_id"]
    run_id = server.api.train(network_id, epochs=2, batch_size=32, learning_rate=50, momentum=0.9,
                              monitor_every=1)["run_id"]
    assert server.api.wait_for_run(run_id)["status"] == "completed"

    warnings = cli(server, "runs", "logs", run_id, "--level", "warning")
    unfolded = _logs(server, run_id, level="warning")
    assert warnings.returncode == 0, warnings.stderr
    assert len(unfolded) > 1 and len(warnings.stdout.splitlines()) == 1
    line = warnings.stdout.splitlines()[0]
    assert line.split()[2:4] == ["warning", "monitor"]
    assert line.endswith(f"  {unfolded[0]['message']} (×{len(unfolded)})")
    one_by_one = cli(server, "runs", "logs", run_id, "--level", "warning", "--no-fold").stdout.splitlines()
    assert len(one_by_one) == len(unfolded) and not any("×" in text for text in one_by_one)

    every = cli(server, "runs", "logs", run_id)
    folded = _logs(server, run_id, fold="true")
    assert _messages(every.stdout) == [
        line["message"] + (f" (×{line['count']})" if line["count"] > 1 else "") for line in folded]
    assert {"debug", "info", "warning"} == {text.split()[2] for text in every.stdout.splitlines()}

    epoch = cli(server, "runs", "logs", run_id, "--grep", "EPOCH 2/2")
    assert [m[:9] for m in _messages(epoch.stdout)] == ["epoch 2/2"]
    servers = cli(server, "runs", "logs", run_id, "--source", "server", "--level", "info").stdout.splitlines()
    assert servers and {text.split()[3] for text in servers} == {"server"}
    assert len(servers) == len(_logs(server, run_id, source="server", level="info", fold="true"))
    assert json.loads(cli(server, "runs", "logs", run_id, "--json").stdout)["lines"] == folded

    # an ended run: --follow prints what there is and exits as the run ended
    followed = cli(server, "runs", "logs", run_id, "--level", "warning", "--follow")
    assert (followed.returncode, followed.stdout) == (0, warnings.stdout)
    assert f"run {run_id} completed" in followed.stderr

    unknown = cli(server, "runs", "logs", "nope")
    message = server.api.request("GET", "/api/runs/nope/logs").json()["message"]
    assert (unknown.returncode, unknown.stdout, unknown.stderr) == (5, "", f"livetrain: {message}\n")
    bad = cli(server, "runs", "logs", run_id, "--level", "loud")
    assert bad.returncode == 2 and "invalid choice: 'loud'" in bad.stderr


def test_runs_logs_follow_prints_each_line_once_until_the_run_ends(server):
    network_id = server.api.post("/api/networks", IRIS, expect=201)["network_id"]
    run_id = server.api.train(network_id, epochs=20, mini_batch_size=1)["run_id"]
    followed = cli(server, "runs", "logs", run_id, "--level", "info", "--follow")
    assert followed.returncode == 0, followed.stderr
    messages = _messages(followed.stdout)
    assert messages == [line["message"] for line in _logs(server, run_id, level="info", fold="true")]
    assert [m.split(":")[0] for m in messages if m.startswith("epoch ")] == [f"epoch {i}/20" for i in range(1, 21)]
    assert messages[-1].startswith("completed: accuracy ")


def test_networks_generate_refuses_a_network_that_is_no_language_model(server):
    network_id = server.api.post("/api/networks", IRIS, expect=201)["network_id"]
    refused = cli(server, "networks", "generate", network_id, "--prompt", "Once", "--temperature", "0.5",
                  "--max-tokens", "5", "--seed", "1")
    answer = server.api.request("POST", f"/api/networks/{network_id}/generate", json={"prompt": "Once"}).json()
    assert answer["error"] == "not_a_language_model"
    assert (refused.returncode, refused.stdout, refused.stderr) == (5, "", f"livetrain: {answer['message']}\n")
    missing = cli(server, "networks", "generate", network_id)
    assert missing.returncode == 2 and "--prompt" in missing.stderr


def test_networks_generate_prints_the_text_of_a_language_model(server):
    dataset_id = server.api.post("/api/datasets", {
        "kind": "generation", "name": "cli-tales", "max_len": 16,
        "samples": ["once upon a time there was a cat. once upon a time there was a dog. " * 2]},
        expect=201)["id"]
    network_id = server.api.post("/api/networks", {"dataset_id": dataset_id}, expect=201)["network_id"]
    assert server.api.wait_for_run(server.api.train(network_id, epochs=1)["run_id"])["status"] == "completed"
    generated = cli(server, "networks", "generate", network_id, "--prompt", "once", "--temperature", "0.5",
                    "--max-tokens", "12", "--seed", "7")
    assert generated.returncode == 0, generated.stderr
    expected = server.api.post(f"/api/networks/{network_id}/generate",
                               {"prompt": "once", "temperature": 0.5, "max_tokens": 12, "seed": 7})
    assert generated.stdout == expected["text"] + "\n"
    assert generated.stderr == (f"network {network_id} version 1: {expected['tokens']} char token(s), stopped "
                                f"{'at <eos>' if expected['stopped'] == 'eos' else 'at --max-tokens'}, "
                                "temperature 0.5, seed 7\n")
    as_json = cli(server, "networks", "generate", network_id, "--prompt", "once", "--seed", "7", "--json")
    assert json.loads(as_json.stdout)["text"] == server.api.post(f"/api/networks/{network_id}/generate",
                                                                 {"prompt": "once", "seed": 7})["text"]


def test_vocab_create_add_list_show_and_build(server):
    created = cli(server, "vocab", "create", "cli-words", "--level", "word")
    assert created.returncode == 0, created.stderr
    vocabulary_id = re.search(r"^vocabulary\s+(\w+)$", created.stdout, re.M).group(1)
    assert re.search(r"^size\s+5$", created.stdout, re.M) and re.search(r"^level\s+word$", created.stdout, re.M)

    added = cli(server, "vocab", "add", vocabulary_id, "cat", "42")
    assert added.returncode == 0, added.stderr
    assert added.stdout.splitlines()[0] == f"vocabulary {vocabulary_id}: added 2 token(s), 0 already there; size 7"
    assert [line.split() for line in added.stdout.splitlines()[2:]] == [["5", "cat", "alphabetic"],
                                                                        ["6", "42", "numeric"]]
    again = cli(server, "vocabularies", "add", vocabulary_id, "cat", "dog")
    assert again.stdout.splitlines()[-1] == "already there: cat"
    assert line_with(again.stdout, " dog ").split() == ["7", "dog", "alphabetic"]
    bad = cli(server, "vocab", "add", vocabulary_id, "two words")
    message = server.api.request("POST", f"/api/vocabularies/{vocabulary_id}/tokens",
                                 json={"tokens": ["two words"]}).json()["message"]
    assert (bad.returncode, bad.stderr) == (5, f"livetrain: {message}\n")

    listed = cli(server, "vocab", "list")
    assert listed.returncode == 0
    assert line_with(listed.stdout, vocabulary_id).split() == [vocabulary_id, "cli-words", "word", "-", "8", "8", "-"]
    assert json.loads(cli(server, "vocab", "list", "--json").stdout) == server.api.get("/api/vocabularies")
    shown = cli(server, "vocab", "show", vocabulary_id)
    tokens = [line.split()[:3] for line in shown.stdout.split("\n\n")[1].splitlines()[1:]]
    assert tokens[:2] == [["0", "<pad>", "special"], ["1", "<unk>", "special"]]
    assert tokens[5:] == [["5", "cat", "alphabetic"], ["6", "42", "numeric"], ["7", "dog", "alphabetic"]]
    assert re.search(r"^categories\s+special 5, numeric 1, alphabetic 2$", shown.stdout, re.M)

    reviews = server.api.post("/api/datasets", {
        "kind": "binary_classification", "name": "cli-reviews", "seed": 0,
        "samples": [{"text": f"{word} film {word}", "label": label} for word, label in
                    [("great", "pos"), ("dull", "neg"), ("fine", "pos"), ("bad", "neg")] * 5]}, expect=201)
    built = cli(server, "vocab", "build", vocabulary_id, "--dataset", reviews["id"], "--min-freq", "2")
    assert built.returncode == 0, built.stderr
    after = server.api.get(f"/api/vocabularies/{vocabulary_id}")
    assert re.search(rf"^size\s+{after['size']}$", built.stdout, re.M) and after["size"] > 8
    assert re.search(rf"^added\s+{after['size'] - 8}$", built.stdout, re.M)
    assert "film" in [t["token"] for t in after["tokens"]]
