"""Settings: defaults, then `LIVETRAIN_*` environment variables, then what the caller passes."""

from __future__ import annotations

import dataclasses
import os
import re
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

ENV_PREFIX = "LIVETRAIN_"
LOOPBACK_ORIGIN = re.compile(r"^https?://(localhost|127\.0\.0\.1|\[::1\])(:\d{1,5})?$")


def _cores() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


@dataclass
class Settings:
    """Everything livetrain can be told; each field also reads `LIVETRAIN_<NAME>`."""

    home: Path = field(default_factory=Path.cwd)
    database_url: str = ""  # default: sqlite file in home
    mnist_dir: str = ""  # default: <home>/data/mnist
    async_mode: str = "threading"  # the serve command picks eventlet
    max_concurrent_runs: int = field(default_factory=_cores)
    warm_workers: int | None = None  # idle workers kept ready; unset: as many as max_concurrent_runs
    keep_checkpoints: int = 3
    progress_interval: float = 0.25  # seconds between training_progress events of a run
    broadcast_events: bool = True  # old clients expect every training event broadcast
    max_parameters: int = 20_000_000
    max_content_length: int = 16 * 1024 * 1024  # a JSON request body
    max_upload_bytes: int = 2 * 1024**3  # an uploaded file (streamed to disk, never whole in memory)
    max_upload_rows: int = 50_000_000
    prepare_in_worker_bytes: int = 16 * 1024 * 1024  # uploads this big are prepared in a worker process
    max_epochs: int = 10_000
    max_batch_inputs: int = 10_000
    cors_origins: str = ""  # empty: the same origin and pages on this machine (localhost); "*" or a list
    secret_key: str = ""  # signs the pages' session cookie; empty: generated once into <home>/.livetrain-secret
    # auth (docs/security.md): "auto" asks for a token once one exists (and always on a public bind),
    # "on" always, "off" never
    auth: str = "auto"
    secure_cookies: bool = False  # mark the session cookie Secure (serve behind HTTPS)
    rate_limit_writes: str = "600/minute"  # per token, else per address; "off": no limit
    rate_limit_uploads: str = "60/minute"
    rate_limit_storage: str = ""  # default: the message queue's Redis when set, else this process's memory
    cancel_grace: float = 0.8  # seconds a worker gets to stop before it is killed
    heartbeat_interval: float = 5.0  # seconds between a server's "still alive" marks in the database
    worker_nice: int = 5  # workers yield the CPU to the server, so requests stay fast under load
    training_threads: int | None = None  # torch threads the runs in progress share; unset: every core
    adapt_threads: bool = True  # a run uses fewer threads while other processes keep the cores busy
    fork_workers: bool = True  # fork workers from a preloaded template (Linux) instead of starting each anew
    # scale-out (docs/architecture.md, "Scale-out"): all empty on the embedded default
    runner: str = "local"  # "local": this server's worker processes; "celery": Celery workers anywhere
    broker_url: str = ""  # the Celery broker (redis://...), with runner=celery
    message_queue: str = ""  # redis://...: every server node delivers every event (several nodes)
    message_queue_channel: str = "livetrain"  # the pub/sub channel; one per livetrain installation
    default_queue: str = "default"  # the Celery queue of a run that names none
    stop_poll_interval: float = 0.5  # seconds between looks for cancel requests made on other nodes
    # operations
    metrics_bind: str = ""  # host:port: `serve` also answers GET /metrics there, alone and without auth
    retention: str = ""  # e.g. 30d: the server removes finished runs and old versions past it, daily; empty: never

    @property
    def models_dir(self) -> Path:
        """Weights, checkpoints and examples live under here."""
        return self.home / "models"

    @property
    def data_dir(self) -> Path:
        """Dataset files live under here."""
        return self.home / "data"

    @property
    def resolved_mnist_dir(self) -> Path:
        """Where the MNIST files are looked for."""
        return Path(self.mnist_dir) if self.mnist_dir else self.data_dir / "mnist"

    @property
    def resolved_warm_workers(self) -> int:
        """Idle worker processes kept ready: `warm_workers`, by default as many as runs can run at
        once, so a batch started together all start warm; never more, since more are never used."""
        if self.warm_workers is None:
            return self.max_concurrent_runs
        return min(self.warm_workers, self.max_concurrent_runs)

    @property
    def resolved_database_url(self) -> str:
        """The SQLAlchemy URL of the metadata store."""
        return self.database_url or f"sqlite:///{self.home / 'livetrain.db'}"

    @classmethod
    def load(cls, overrides: dict[str, Any] | None = None, environ=None) -> Settings:
        """Build settings from defaults, the environment, then `overrides`."""
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = environ.get(ENV_PREFIX + f.name.upper())
            if raw is not None and raw != "":
                try:
                    values[f.name] = _coerce(f, raw)
                except ValueError:
                    raise ValueError(f"{ENV_PREFIX}{f.name.upper()}={raw!r} is not a valid {f.type}") from None
        for key, value in (overrides or {}).items():
            key = key.lower()
            if key not in {f.name for f in fields(cls)}:
                raise ValueError(f"unknown setting {key!r}")
            values[key] = value
        if "home" in values:
            values["home"] = Path(values["home"]).expanduser().resolve()
        settings = cls(**values)
        settings.validate()
        return settings

    def validate(self) -> None:
        """Refuse settings that cannot work, with a message naming the setting."""
        if self.async_mode not in {"eventlet", "threading", "gevent"}:
            raise ValueError("async_mode must be eventlet, threading or gevent")
        for name in ("max_concurrent_runs", "max_parameters", "max_content_length", "max_epochs",
                     "max_upload_bytes", "max_upload_rows"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        if self.prepare_in_worker_bytes < 0:
            raise ValueError("prepare_in_worker_bytes must be >= 0")
        if self.training_threads is not None and self.training_threads < 1:
            raise ValueError("training_threads must be at least 1 (or unset: every core)")
        if self.warm_workers is not None and self.warm_workers < 0:
            raise ValueError("warm_workers must be >= 0 (or unset: as many as max_concurrent_runs)")
        if self.keep_checkpoints < 1:
            raise ValueError("keep_checkpoints must be at least 1")
        if self.runner not in {"local", "celery"}:
            raise ValueError("runner must be local or celery")
        if self.runner == "celery" and not self.broker_url:
            raise ValueError("runner celery needs a broker: --broker redis://HOST:6379/0 (LIVETRAIN_BROKER_URL)")
        if self.broker_url and not self.broker_url.startswith(("redis://", "rediss://", "amqp://", "amqps://")):
            raise ValueError(f"broker_url must be a redis:// (or amqp://) URL, got {redact_url(self.broker_url)!r}")
        if self.message_queue and not self.message_queue.startswith(("redis://", "rediss://")):
            raise ValueError("message_queue must be a redis:// URL")
        if self.auth not in {"auto", "on", "off"}:
            raise ValueError("auth must be auto, on or off")
        for name in ("rate_limit_writes", "rate_limit_uploads"):
            value = getattr(self, name)
            if value.strip().lower() == "off":
                setattr(self, name, "")  # no limit
            elif value:
                from limits import parse_many
                try:
                    parse_many(value)
                except ValueError:
                    raise ValueError(f"{name} must look like 600/minute (or be off for no limit), "
                                     f"got {value!r}") from None
        if self.metrics_bind:
            self.metrics_address()  # refuses a malformed one
        if self.retention:
            self.retention_seconds()

    def retention_seconds(self) -> float | None:
        """`retention` in seconds, or None when nothing is ever removed."""
        if not self.retention:
            return None
        from livetrain.auth import parse_duration
        from livetrain.errors import ValidationError

        try:
            return parse_duration(self.retention)
        except ValidationError as exc:
            raise ValueError(f"retention: {exc.message}") from None

    def metrics_address(self) -> tuple[str, int] | None:
        """(host, port) of `metrics_bind`, or None when it is empty."""
        if not self.metrics_bind:
            return None
        host, _, port = self.metrics_bind.rpartition(":")
        host = host.strip("[]")  # [::1]:9100
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"metrics_bind must be host:port, like 127.0.0.1:9100; got {self.metrics_bind!r}")
        return host, int(port)

    def cors_origin_list(self) -> str | list[str | re.Pattern]:
        """`*`, or the origins allowed besides the same origin: the configured ones, by default those of
        pages served from this machine (a client on http://localhost:3000, as the original server's was)."""
        if self.cors_origins.strip() == "*":
            return "*"
        return [o.strip() for o in self.cors_origins.split(",") if o.strip()] or [LOOPBACK_ORIGIN]

    @property
    def resolved_training_threads(self) -> int:
        """Threads the runs in progress share (`training_threads`, by default every core)."""
        return self.training_threads or _cores()

    def torch_threads(self) -> int:
        """The fewest threads a run gets: its share when `max_concurrent_runs` runs train at once.

        The local runner gives a run more while fewer runs train (`livetrain.jobs.runner.share_threads`);
        this is what a worker process starts with, and what each run of a Celery worker gets.
        """
        return max(1, self.resolved_training_threads // self.max_concurrent_runs)

    def as_dict(self) -> dict[str, Any]:
        """A JSON-friendly view (for logs and the status page)."""
        out = dataclasses.asdict(self)
        out["home"] = str(self.home)
        out.pop("secret_key", None)
        for name in ("database_url", "broker_url", "message_queue", "rate_limit_storage"):  # may carry a password
            out[name] = redact_url(out[name])
        return out

    @property
    def distributed(self) -> bool:
        """Whether other nodes may hold this installation's runs (a message queue or Celery workers)."""
        return bool(self.message_queue) or self.runner == "celery"


def redact_url(url: str) -> str:
    """A URL fit for a log or a page: its password replaced by ***."""
    from urllib.parse import urlsplit, urlunsplit

    try:
        parts = urlsplit(url)
    except ValueError:
        return "***"
    if not parts.password:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def _coerce(f: dataclasses.Field, raw: str) -> Any:
    kind = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", "str")
    kind = kind.removesuffix(" | None")  # an empty variable already means unset
    if kind == "bool":
        return raw.strip().lower() in {"1", "true", "yes", "on"}
    if kind == "int":
        return int(raw)
    if kind == "float":
        return float(raw)
    if kind == "Path":
        return Path(raw)
    return raw
