"""A Python client for a running livetrain server: REST calls, and following a run live over Socket.IO.

Nothing here prints or exits: REST methods return the server's JSON as dicts and raise
`ClientError`; `RunFollower` reports through callbacks. The terminal commands built on it are
in `livetrain.console`. This module must stay importable without torch, Flask or eventlet, so
that the `livetrain` commands which only talk to a server start fast.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import requests

DEFAULT_URL = "http://127.0.0.1:8000"
FINAL_STATUSES = ("completed", "failed", "cancelled", "interrupted")
# the stored event that announces each final status (docs/events.md)
END_EVENTS = {"training_complete": "completed", "training_error": "failed",
              "training_cancelled": "cancelled", "training_interrupted": "interrupted"}
RUN_EVENTS = ("run_created", "training_started", "training_progress", "training_update", *END_EVENTS)
CONNECT_TIMEOUT = 10.0
UPLOAD_TYPES = {".csv": "text/csv", ".tsv": "text/tab-separated-values", ".tab": "text/tab-separated-values",
                ".txt": "text/plain", ".gz": "application/gzip", ".parquet": "application/vnd.apache.parquet",
                ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}
READ_TIMEOUT = 120.0  # a large CSV upload is typed, split and stored before the answer comes
SUBSCRIBE_TIMEOUT = 15.0
LOST_TIMEOUT = 60.0  # give up following when the socket stays disconnected this long


class ClientError(Exception):
    """A request that did not succeed: the server's error `code` and `message`, and the HTTP `status`.

    `status` is None when no answer came at all (`code` is then `unreachable` or `timeout`).
    """

    def __init__(self, code: str, message: str, status: int | None = None, detail: Any = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
        self.detail = detail

    def __str__(self) -> str:
        return self.message


def normalize_url(url: str) -> str:
    """`localhost:8000/` → `http://localhost:8000`: a scheme, no trailing slash."""
    url = url.strip()
    if "://" not in url:
        url = "http://" + url
    return url.rstrip("/")


def _segment(value: str) -> str:
    # ids go into the path: never let one add a path segment of its own ("../", "?")
    return quote(str(value), safe="")


def _connection_reason(error: Exception) -> str:
    """`Connection refused` out of urllib3's nested exception text."""
    text = str(error)
    found = re.search(r"\[Errno -?\d+\] ([^'\")\]]+)", text)
    if found:
        return found.group(1).strip()
    if "timed out" in text:
        return "the connection timed out"
    return "the connection failed"


class LivetrainClient:
    """The REST API of one server (docs/api.md): each method returns the JSON answer or raises ClientError."""

    def __init__(self, base_url: str = DEFAULT_URL, timeout: float = READ_TIMEOUT, token: str | None = None) -> None:
        self.base_url = normalize_url(base_url)
        self.timeout = timeout
        self.token = token or None
        self._http = requests.Session()
        if self.token:
            self._http.headers["Authorization"] = f"Bearer {self.token}"

    def close(self) -> None:
        """Release the HTTP connections."""
        self._http.close()

    def __enter__(self) -> LivetrainClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def unreachable(self, reason: str) -> ClientError:
        """The error for a server that does not answer."""
        return ClientError(
            "unreachable",
            f"cannot reach the livetrain server at {self.base_url} ({reason}); is `livetrain serve` running "
            "there? Point --url or LIVETRAIN_URL at it.")

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        """One API call: the decoded JSON of a 2xx answer, else ClientError with the server's code and message."""
        url = self.base_url + path
        try:
            response = self._http.request(method, url, timeout=(CONNECT_TIMEOUT, self.timeout), **kwargs)
        except requests.ConnectionError as error:
            raise self.unreachable(_connection_reason(error)) from None
        except requests.Timeout:
            raise ClientError("timeout", f"the server at {self.base_url} did not answer {method} {path} "
                                         f"within {self.timeout:g} s") from None
        except requests.RequestException as error:
            raise ClientError("request_failed", f"{method} {url} failed: {error}") from None
        try:
            body = response.json()
        except ValueError:
            body = None
        if response.ok:
            if body is None:
                raise ClientError("bad_response", f"{url} did not answer with JSON; is {self.base_url} a livetrain "
                                                  "server?", response.status_code)
            return body
        if isinstance(body, dict) and "message" in body:
            raise ClientError(str(body.get("error") or "error"), str(body["message"]), response.status_code,
                              body.get("detail"))
        raise ClientError("http_error", f"{method} {url} answered {response.status_code} {response.reason}",
                          response.status_code)

    # -- status ---------------------------------------------------------------
    def status(self) -> dict:
        """GET /api/status."""
        return self.request("GET", "/api/status")

    # -- networks -------------------------------------------------------------
    def list_networks(self) -> dict:
        """GET /api/networks: `{"networks": [...]}`, oldest first."""
        return self.request("GET", "/api/networks")

    def create_network(self, body: dict[str, Any]) -> dict:
        """POST /api/networks with a create body (layer_sizes or layers, dataset_id, name, ...)."""
        return self.request("POST", "/api/networks", json=body)

    def get_network(self, network_id: str) -> dict:
        """GET /api/networks/{id}."""
        return self.request("GET", f"/api/networks/{_segment(network_id)}")

    def delete_network(self, network_id: str) -> dict:
        """DELETE /api/networks/{id} (cancels its active run first; its runs stay)."""
        return self.request("DELETE", f"/api/networks/{_segment(network_id)}")

    def train(self, network_id: str, body: dict[str, Any]) -> dict:
        """POST /api/networks/{id}/train: the 202 answer, whose `run_id` names the queued run."""
        return self.request("POST", f"/api/networks/{_segment(network_id)}/train", json=body)

    def generate(self, network_id: str, body: dict[str, Any]) -> dict:
        """POST /api/networks/{id}/generate with `prompt`, `temperature`, `max_tokens`, `seed`: the sampled `text`."""
        return self.request("POST", f"/api/networks/{_segment(network_id)}/generate", json=body)

    # -- datasets -------------------------------------------------------------
    def list_datasets(self) -> dict:
        """GET /api/datasets: `{"datasets": [...], "default": id}`."""
        return self.request("GET", "/api/datasets")

    def upload_dataset(self, path: str | Path, *, target: str | None = None, name: str | None = None,
                       task: str | None = None, **fields: Any) -> dict:
        """POST /api/datasets as multipart: the file (CSV, TSV, .gz, .xlsx, .parquet) under its own name, so the
        server sees its extension, and `target`, `name`, `task` and any other upload field (`delimiter`,
        `decimal`, `encoding`, `missing_target`, ...) that is not None. The dataset's detail."""
        path = Path(path)
        fields = {key: str(value) for key, value in {"target": target, "name": name, "task": task, **fields}.items()
                  if value is not None}
        try:
            handle = path.open("rb")
        except OSError as error:
            raise ClientError("file_error", f"cannot read {path}: {error.strerror or error}") from None
        content_type = UPLOAD_TYPES.get(path.suffix.lower(), "application/octet-stream")
        with handle:
            return self.request("POST", "/api/datasets", data=fields,
                                files={"file": (path.name, handle, content_type)})

    def add_samples(self, dataset_id: str, samples: list[Any]) -> dict:
        """POST /api/datasets/{id}/samples: the text dataset's detail after the append, with `added`."""
        return self.request("POST", f"/api/datasets/{_segment(dataset_id)}/samples", json={"samples": samples})

    # -- runs -----------------------------------------------------------------
    def list_runs(self, *, network_id: str | None = None, experiment_id: str | None = None,
                  status: str | None = None, limit: int | None = None, offset: int | None = None) -> dict:
        """GET /api/runs with the filters given: `{"runs": [...], "total", "limit", "offset"}`, newest first."""
        params = {key: value for key, value in (("network_id", network_id), ("experiment_id", experiment_id),
                                                ("status", status), ("limit", limit), ("offset", offset))
                  if value is not None}
        return self.request("GET", "/api/runs", params=params)

    def get_run(self, run_id: str) -> dict:
        """GET /api/runs/{id}."""
        return self.request("GET", f"/api/runs/{_segment(run_id)}")

    def cancel_run(self, run_id: str) -> dict:
        """POST /api/runs/{id}/cancel: the run as it is at that moment (a running run stops shortly after)."""
        return self.request("POST", f"/api/runs/{_segment(run_id)}/cancel")

    def run_events(self, run_id: str, after_seq: int = 0) -> list[dict]:
        """GET /api/runs/{id}/events?after_seq=N: the stored events after `after_seq`, each with its `event` name."""
        answer = self.request("GET", f"/api/runs/{_segment(run_id)}/events", params={"after_seq": after_seq})
        return answer["events"]

    def run_logs(self, run_id: str, *, level: str | None = None, q: str | None = None, source: str | None = None,
                 fold: bool | None = None, after_seq: int | None = None, limit: int | None = None) -> dict:
        """GET /api/runs/{id}/logs with the filters given: `{"status", "last_seq", "total", "lines": [...]}`,
        oldest first; folded lines have `count` (and `last_seq`)."""
        params = {key: value for key, value in (("level", level), ("q", q), ("source", source),
                                                ("after_seq", after_seq), ("limit", limit)) if value is not None}
        if fold is not None:
            params["fold"] = "true" if fold else "false"
        return self.request("GET", f"/api/runs/{_segment(run_id)}/logs", params=params)

    # -- vocabularies ---------------------------------------------------------
    def list_vocabularies(self) -> dict:
        """GET /api/vocabularies: `{"vocabularies": [...]}`, newest first."""
        return self.request("GET", "/api/vocabularies")

    def get_vocabulary(self, vocabulary_id: str, *, limit: int | None = None, offset: int | None = None,
                       category: str | None = None) -> dict:
        """GET /api/vocabularies/{id}: the vocabulary and a page of its `tokens`."""
        params = {key: value for key, value in (("limit", limit), ("offset", offset), ("category", category))
                  if value is not None}
        return self.request("GET", f"/api/vocabularies/{_segment(vocabulary_id)}", params=params)

    def create_vocabulary(self, body: dict[str, Any]) -> dict:
        """POST /api/vocabularies with `name` and optionally `level`, `description`, `tokens`."""
        return self.request("POST", "/api/vocabularies", json=body)

    def add_tokens(self, vocabulary_id: str, tokens: list[str]) -> dict:
        """POST /api/vocabularies/{id}/tokens: `{"added": [...], "existing": [...], "size"}`."""
        return self.request("POST", f"/api/vocabularies/{_segment(vocabulary_id)}/tokens", json={"tokens": tokens})

    def build_vocabulary(self, vocabulary_id: str, body: dict[str, Any]) -> dict:
        """POST /api/vocabularies/{id}/build with `dataset_id` and optionally `level`, `min_freq`, `max_size`."""
        return self.request("POST", f"/api/vocabularies/{_segment(vocabulary_id)}/build", json=body)

    # -- experiments ----------------------------------------------------------
    def leaderboard(self, experiment_id: str, *, metric: str | None = None, split: str | None = None) -> dict:
        """GET /api/experiments/{id}/leaderboard: ranked `entries` and `unranked` runs."""
        params = {key: value for key, value in (("metric", metric), ("split", split)) if value is not None}
        return self.request("GET", f"/api/experiments/{_segment(experiment_id)}/leaderboard", params=params)


EventCallback = Callable[[str, dict], None]
ConnectionCallback = Callable[[str], None]


class RunFollower:
    """Follows one run until it ends: live Socket.IO events, and what was missed fetched over REST.

    `on_event(name, payload)` is called once per event of the run (deduplicated by `seq`), with
    `training_progress` events that arrive after a later event dropped as stale. Live events are
    handled on python-socketio's threads, in no guaranteed order, so a callback may see an older
    epoch after a newer one; two `on_event` calls never overlap. `on_connection(state)` is told
    `"connected"` each time the run's room is joined and caught up (on the thread that called
    `start()` or `wait()`), and `"disconnected"` when the socket drops (on a socket thread).

    `start()` then `wait()` (which returns the run as it ended); `close()` in the end. A
    KeyboardInterrupt out of `wait()` leaves the follower intact: call `wait()` again to go on.
    """

    def __init__(self, client: LivetrainClient, run_id: str, on_event: EventCallback,
                 on_connection: ConnectionCallback | None = None, lost_timeout: float = LOST_TIMEOUT) -> None:
        self.client = client
        self.run_id = run_id
        self.run: dict | None = None  # the run as last fetched
        self._on_event = on_event
        self._on_connection = on_connection or (lambda state: None)
        self._lost_timeout = lost_timeout
        self._cond = threading.Condition()
        self._seen: set[int] = set()
        self._max_seq = 0
        self._fetched_through = 0  # every stored event up to this seq has been fetched over REST
        self._ended: str | None = None  # the final status, once known
        self._end_payload: dict = {}  # the event that told it
        self._need_sync = False
        self._lost_since: float | None = None
        self._drops = 0  # how many times the socket has dropped
        self._muted = False
        self._sio = None
        self.started = False

    # -- the caller's side ----------------------------------------------------
    def start(self) -> dict:
        """Fetch the run, join its room and catch up on what it already did; the run as fetched.

        A run that has already ended is only caught up on, without a socket.
        """
        self._drop_socket()
        self.run = self.client.get_run(self.run_id)
        if self.run["status"] in FINAL_STATUSES:
            self._catch_up()
            self._end_from(self.run)
        else:
            self._connect()
            self._sync()
        self.started = True
        return self.run

    def wait(self) -> dict:
        """Block until the run ends; the run as it ended (GET /api/runs/{id})."""
        if not self.started:
            self.start()
        while True:
            with self._cond:
                while self._ended is None and not self._need_sync:
                    if self._lost_since is not None and time.monotonic() - self._lost_since > self._lost_timeout:
                        raise ClientError(
                            "unreachable",
                            f"lost the connection to {self.client.base_url} and could not reconnect for "
                            f"{self._lost_timeout:g} s; run {self.run_id} may still be training")
                    # a bounded wait, so the give-up deadline above is checked while disconnected
                    self._cond.wait(1.0)
                ended, need_sync = self._ended, self._need_sync
            if ended is not None:
                break
            if need_sync:
                self._sync()
        # live events arrive in no fixed order: one last fetch fills in any epoch still on its way
        try:
            self._catch_up(retry=False)
            self.run = self.client.get_run(self.run_id)
        except ClientError as error:
            if error.code != "unreachable":
                raise
            # gone right after the end (a server that stops interrupts its runs, tells, then goes):
            # the run as its events told it
            self.run = {**(self.run or {}), **self._end_payload, "status": ended}
        with self._cond:
            self._muted = True
        return self.run

    def close(self) -> None:
        """Leave: disconnect the socket and stop reconnecting."""
        with self._cond:
            self._muted = True
        self._drop_socket()

    def __enter__(self) -> RunFollower:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def last_seq(self) -> int:
        """The highest `seq` seen, live or fetched."""
        with self._cond:
            return self._max_seq

    # -- the socket -----------------------------------------------------------
    def _connect(self) -> None:
        import socketio  # imported here: only following needs it

        # handle_sigint=False: python-socketio would otherwise disconnect on Ctrl-C, and the
        # console asks first whether to cancel the run or detach from it.
        sio = socketio.Client(reconnection=True, reconnection_delay=0.5, reconnection_delay_max=5,
                              handle_sigint=False)
        sio.on("connect", self._on_connect)
        sio.on("disconnect", self._on_disconnect)
        for name in RUN_EVENTS:
            sio.on(name, self._live_handler(name))
        self._sio = sio
        try:
            sio.connect(self.client.base_url, wait_timeout=CONNECT_TIMEOUT,
                        auth={"token": self.client.token} if self.client.token else None)
        except socketio.exceptions.ConnectionError as error:
            self._drop_socket()
            raise ClientError("unreachable", f"cannot open a Socket.IO connection to {self.client.base_url} "
                                             f"({error}); is it a livetrain server?") from None

    def _drop_socket(self) -> None:
        sio, self._sio = self._sio, None
        if sio is not None:
            sio.shutdown()

    def _on_connect(self) -> None:
        with self._cond:
            self._lost_since = None
            self._need_sync = True
            self._cond.notify_all()

    def _on_disconnect(self, reason: object = None) -> None:
        with self._cond:
            if self._muted or self._ended is not None:
                return  # closed, or the run has ended: the connection no longer matters
            self._lost_since = time.monotonic()
            self._need_sync = False
            self._drops += 1
            self._cond.notify_all()
        self._on_connection("disconnected")

    def _live_handler(self, name: str) -> Callable[[Any], None]:
        def handle(payload: Any = None) -> None:
            # with broadcasting on (the server's default) every run's events arrive: keep this run's
            if isinstance(payload, dict) and payload.get("run_id") == self.run_id:
                with self._cond:
                    self._apply(name, payload)
                    self._cond.notify_all()
        return handle

    def _sync(self) -> None:
        """After a (re)connect: join the run's room, then fetch what was missed (docs/events.md)."""
        try:
            self._join_and_catch_up()
        except BaseException:
            with self._cond:
                self._need_sync = True  # not caught up (Ctrl-C, say): the next wait() starts over
            raise

    def _join_and_catch_up(self) -> None:
        import socketio

        with self._cond:
            self._need_sync = False
            drops = self._drops
        replies: list[Any] = []

        def on_ack(*args: Any) -> None:
            with self._cond:
                replies.append(args[0] if args else None)
                self._cond.notify_all()

        try:
            self._sio.emit("subscribe", {"run_id": self.run_id}, callback=on_ack)
        except (socketio.exceptions.BadNamespaceError, socketio.exceptions.DisconnectedError):
            return  # dropped again meanwhile: the next connect asks for another sync
        # wait for the ack, but not past a drop: an ack is never answered on a connection that is
        # gone, and the next connect asks for another sync (python-socketio's call() would wait out
        # its whole timeout)
        deadline = time.monotonic() + SUBSCRIBE_TIMEOUT
        with self._cond:
            while not replies and self._drops == drops:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise ClientError("timeout", f"the server did not acknowledge the subscription to run "
                                                 f"{self.run_id} within {SUBSCRIBE_TIMEOUT:g} s")
                self._cond.wait(left)
            if not replies:
                return
            ack = replies[0]
        if not isinstance(ack, dict) or not ack.get("ok"):
            ack = ack if isinstance(ack, dict) else {}
            raise ClientError(str(ack.get("error") or "subscribe_failed"),
                              str(ack.get("message") or f"could not subscribe to run {self.run_id}"))
        self._catch_up()
        with self._cond:
            ended = self._ended
        if ended is None:
            # the events say how a run ended; its status is checked as well, in case it ended
            # without a stored event (it ended before the socket joined the room and nothing else)
            self.run = self._read(self.client.get_run, self.run_id)
            self._end_from(self.run)
        with self._cond:
            dropped = self._drops != drops
        if not dropped:  # else the socket went while catching up: "connected" waits for the next connect
            self._on_connection("connected")

    def _read(self, fetch: Callable[..., Any], *args: Any) -> Any:
        """A GET made while following, tried again while the server cannot be reached: a connection
        that drops mid-request is the same blip the socket reconnects from, not the end. Gives up
        (raising ClientError) after the same `lost_timeout` as the socket."""
        deadline = time.monotonic() + self._lost_timeout
        delay = 0.5
        while True:
            try:
                return fetch(*args)
            except ClientError as error:
                if error.code != "unreachable" or time.monotonic() + delay > deadline:
                    raise
            time.sleep(delay)
            delay = min(delay * 2, 5.0)

    # -- events ---------------------------------------------------------------
    def _catch_up(self, retry: bool = True) -> None:
        fetch = self._read if retry else (lambda call, *args: call(*args))
        events = fetch(self.client.run_events, self.run_id, self._fetched_through)
        events.sort(key=lambda event: event.get("seq") or 0)
        with self._cond:
            for event in events:
                payload = dict(event)
                name = payload.pop("event", "")
                self._apply(name, payload)
                self._fetched_through = max(self._fetched_through, int(payload.get("seq") or 0))
            self._cond.notify_all()

    def _end_from(self, run: dict) -> None:
        with self._cond:
            if self._ended is None and run.get("status") in FINAL_STATUSES:
                self._ended = run["status"]
                self._cond.notify_all()

    def _apply(self, name: str, payload: dict) -> None:
        # called with the lock held
        if self._muted:
            return
        seq = payload.get("seq")
        if isinstance(seq, int):
            if seq in self._seen:
                return
            self._seen.add(seq)
            stale = seq < self._max_seq
            self._max_seq = max(self._max_seq, seq)
            if name == "training_progress" and stale:
                return
        if name in END_EVENTS and self._ended is None:
            self._ended = END_EVENTS[name]
            self._end_payload = payload
        self._on_event(name, payload)


def follow_run(client: LivetrainClient, run_id: str, on_event: EventCallback,
               on_connection: ConnectionCallback | None = None) -> dict:
    """Follow a run until it ends, calling back for each of its events; the run as it ended."""
    with RunFollower(client, run_id, on_event, on_connection) as follower:
        follower.start()
        return follower.wait()
