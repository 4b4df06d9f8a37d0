"""`MetadataStore`: datasets, networks, versions, runs and run events in a SQL database.

SQLite (WAL) by default, any SQLAlchemy URL otherwise (PostgreSQL is the scale-out store).
Every method opens its own short transaction, so the store can be shared by green threads
and OS threads alike.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Float,
    Integer,
    String,
    Text,
    UniqueConstraint,
    case,
    create_engine,
    delete,
    event,
    func,
    select,
    text,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

from livetrain import jsonsafe
from livetrain.store.entities import (
    ACTIVE_STATUSES,
    NETWORK_ALGORITHM,
    RETRAIN_ACTIVE,
    AliasMove,
    Dataset,
    Experiment,
    Feedback,
    ModelVersion,
    Network,
    NetworkRevision,
    NetworkVersion,
    Prediction,
    RegisteredModel,
    Retraining,
    Run,
    RunEvent,
    RunStatus,
    RunTally,
    Token,
    Vocabulary,
    VocabularyToken,
)

MIGRATIONS = Path(__file__).with_name("migrations")
MIGRATION_LOCK = 0x6C6976657472  # any fixed number, the same for every livetrain server


class Base(DeclarativeBase):
    pass


class DatasetRow(Base):
    __tablename__ = "datasets"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    task: Mapped[str] = mapped_column(String(20))
    source: Mapped[str] = mapped_column(String(200))
    n_features: Mapped[int] = mapped_column(Integer)
    n_classes: Mapped[int] = mapped_column(Integer)
    input_shape: Mapped[list] = mapped_column(JSON)
    n_train: Mapped[int] = mapped_column(Integer)
    n_test: Mapped[int] = mapped_column(Integer)
    description: Mapped[str] = mapped_column(Text, default="")
    meta: Mapped[dict] = mapped_column(JSON, default=dict)
    builtin: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[float] = mapped_column(Float)
    n_val: Mapped[int] = mapped_column(Integer, default=0)
    content_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    files: Mapped[dict] = mapped_column(JSON, default=dict)


class ExperimentRow(Base):
    __tablename__ = "experiments"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[float] = mapped_column(Float, index=True)


class NetworkRow(Base):
    __tablename__ = "networks"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(20))
    spec: Mapped[dict] = mapped_column(JSON)
    dataset_id: Mapped[str] = mapped_column(String(64))
    parameter_count: Mapped[int] = mapped_column(Integer)
    layer_table: Mapped[list] = mapped_column(JSON, default=list)
    status: Mapped[str] = mapped_column(String(20))
    accuracy: Mapped[float | None] = mapped_column(Float, nullable=True)
    current_version: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[float] = mapped_column(Float, index=True)
    updated_at: Mapped[float] = mapped_column(Float)


class VersionRow(Base):
    __tablename__ = "network_versions"
    network_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    weights_path: Mapped[str] = mapped_column(String(500))
    weights_sha256: Mapped[str] = mapped_column(String(64))
    metrics: Mapped[dict] = mapped_column(JSON, default=dict)
    examples_path: Mapped[str | None] = mapped_column(String(500), nullable=True)
    examples_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[float] = mapped_column(Float)


class RevisionRow(Base):
    __tablename__ = "network_revisions"
    network_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    revision: Mapped[int] = mapped_column(Integer, primary_key=True)
    spec: Mapped[dict] = mapped_column(JSON)
    change: Mapped[dict] = mapped_column(JSON, default=dict)
    author: Mapped[str | None] = mapped_column(String(200), nullable=True)
    created_at: Mapped[float] = mapped_column(Float)


class RunRow(Base):
    __tablename__ = "runs"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    network_id: Mapped[str | None] = mapped_column(String(64), index=True, nullable=True)
    dataset_id: Mapped[str] = mapped_column(String(64))
    experiment_id: Mapped[str | None] = mapped_column(String(64), index=True, nullable=True)
    status: Mapped[str] = mapped_column(String(20), index=True)
    params: Mapped[dict] = mapped_column(JSON, default=dict)
    algorithm: Mapped[str] = mapped_column(String(40), default="network")
    seed: Mapped[int | None] = mapped_column(Integer, nullable=True)
    metrics: Mapped[dict] = mapped_column(JSON, default=dict)
    importances: Mapped[list | None] = mapped_column(JSON, nullable=True)
    model_path: Mapped[str | None] = mapped_column(String(500), nullable=True)
    model_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    repro: Mapped[dict] = mapped_column(JSON, default=dict)
    rerun_of: Mapped[str | None] = mapped_column(String(64), nullable=True)
    total_epochs: Mapped[int] = mapped_column(Integer, default=0)
    start_epoch: Mapped[int] = mapped_column(Integer, default=0)
    epochs_done: Mapped[int] = mapped_column(Integer, default=0)
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    accuracy: Mapped[float | None] = mapped_column(Float, nullable=True)
    train_loss: Mapped[float | None] = mapped_column(Float, nullable=True)
    val_loss: Mapped[float | None] = mapped_column(Float, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    last_seq: Mapped[int] = mapped_column(Integer, default=0)
    owner: Mapped[str | None] = mapped_column(String(200), nullable=True)
    resumed_from: Mapped[str | None] = mapped_column(String(64), nullable=True)
    checkpoint_path: Mapped[str | None] = mapped_column(String(500), nullable=True)
    checkpoint_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    checkpoint_epoch: Mapped[int | None] = mapped_column(Integer, nullable=True)
    version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    worker_pid: Mapped[int | None] = mapped_column(Integer, nullable=True)
    queue: Mapped[str | None] = mapped_column(String(100), nullable=True)
    device: Mapped[str | None] = mapped_column(String(100), nullable=True)
    worker: Mapped[str | None] = mapped_column(String(200), nullable=True)
    stop_requested: Mapped[str | None] = mapped_column(String(10), nullable=True)
    stop_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    best_epoch: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_at: Mapped[float] = mapped_column(Float, index=True)
    started_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    finished_at: Mapped[float | None] = mapped_column(Float, nullable=True)


class RunEventRow(Base):
    __tablename__ = "run_events"
    run_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    type: Mapped[str] = mapped_column(String(40))
    payload: Mapped[dict] = mapped_column(JSON)
    ts: Mapped[float] = mapped_column(Float)


class ServerRow(Base):
    __tablename__ = "servers"
    owner: Mapped[str] = mapped_column(String(200), primary_key=True)
    started_at: Mapped[float] = mapped_column(Float)
    heartbeat_at: Mapped[float] = mapped_column(Float, index=True)
    kind: Mapped[str] = mapped_column(String(10), default="server")  # "server" or "worker"
    info: Mapped[dict] = mapped_column(JSON, default=dict)  # a worker's name, queues, device, concurrency


class TokenRow(Base):
    __tablename__ = "api_tokens"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    prefix: Mapped[str] = mapped_column(String(20))  # the first characters of the token, to recognise it
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)  # sha256 hex; the token itself is never kept
    scope: Mapped[str] = mapped_column(String(10))
    experiment_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_by: Mapped[str | None] = mapped_column(String(200), nullable=True)
    created_at: Mapped[float] = mapped_column(Float)
    expires_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    last_used_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    revoked_at: Mapped[float | None] = mapped_column(Float, nullable=True)


class _Gone(Exception):
    """Rolls a transaction back when the row it was to update no longer exists."""


def _entity(cls, row) -> Any:
    return cls(**{c.key: getattr(row, c.key) for c in row.__table__.columns})


def _token(row: TokenRow) -> Token:
    return Token(**{c.key: getattr(row, c.key) for c in row.__table__.columns if c.key != "token_hash"})


def _enable_sqlite_wal(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


class MetadataStore:
    """Typed access to livetrain's metadata tables."""

    def __init__(self, url: str) -> None:
        self.url = url
        kwargs: dict[str, Any] = {"future": True, "json_serializer": jsonsafe.dumps}
        if url.startswith("sqlite"):
            kwargs["connect_args"] = {"check_same_thread": False, "timeout": 10}
        else:
            kwargs["pool_pre_ping"] = True
        self.engine = create_engine(url, **kwargs)
        if url.startswith("sqlite"):
            event.listen(self.engine, "connect", _enable_sqlite_wal)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    def create_schema(self) -> None:
        """Bring the database to the current schema by running the pending migrations."""
        from alembic import command
        from alembic.config import Config

        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        with self.engine.begin() as connection:
            if connection.dialect.name == "postgresql":
                # several servers may start at once on one database: one migrates, the others wait
                connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
            config.attributes["connection"] = connection
            command.upgrade(config, "head")

    def close(self) -> None:
        """Release every pooled connection."""
        self.engine.dispose()

    @contextmanager
    def _tx(self) -> Iterator[Session]:
        with self._sessions() as session, session.begin():
            yield session

    # -- servers and workers (who is alive to own runs) ------------------------------
    def register_server(self, owner: str, kind: str = "server", info: dict[str, Any] | None = None) -> None:
        """Announce a server process or a Celery worker; its heartbeat keeps its runs from being taken
        as orphans."""
        now = time.time()
        with self._tx() as s:
            s.merge(ServerRow(owner=owner, started_at=now, heartbeat_at=now, kind=kind, info=info or {}))

    def heartbeat(self, owner: str, info: dict[str, Any] | None = None) -> bool:
        """Say that `owner` is still alive (with its current `info`); False if its row is gone (it was
        taken for dead), so the caller can register again."""
        values: dict[str, Any] = {"heartbeat_at": time.time()}
        if info is not None:
            values["info"] = info
        with self._tx() as s:
            return s.execute(update(ServerRow).where(ServerRow.owner == owner).values(**values)).rowcount > 0

    def remove_server(self, owner: str) -> None:
        """Forget a server or worker that shut down."""
        with self._tx() as s:
            s.execute(delete(ServerRow).where(ServerRow.owner == owner))

    def live_servers(self, max_age: float) -> set[str]:
        """Owners (servers and workers) whose last heartbeat is younger than `max_age` seconds."""
        with self._tx() as s:
            rows = s.scalars(select(ServerRow.owner).where(ServerRow.heartbeat_at >= time.time() - max_age))
            return set(rows)

    def list_servers(self, kind: str, max_age: float) -> list[dict[str, Any]]:
        """Live servers or workers, oldest first, with their info and heartbeat times."""
        query = (select(ServerRow).where(ServerRow.kind == kind, ServerRow.heartbeat_at >= time.time() - max_age)
                 .order_by(ServerRow.started_at))
        with self._tx() as s:
            return [{"owner": r.owner, "started_at": r.started_at, "heartbeat_at": r.heartbeat_at, **(r.info or {})}
                    for r in s.scalars(query)]

    # -- datasets ---------------------------------------------------------------
    def upsert_dataset(self, dataset: Dataset) -> Dataset:
        """Insert or refresh a dataset's metadata."""
        values = {c.key: getattr(dataset, c.key) for c in DatasetRow.__table__.columns}
        with self._tx() as s:
            row = s.get(DatasetRow, dataset.id)
            if row is None:
                values["created_at"] = values.get("created_at") or time.time()
                s.add(DatasetRow(**values))
            else:
                values.pop("created_at", None)
                for key, value in values.items():
                    setattr(row, key, value)
        return self.get_dataset(dataset.id)

    def get_dataset(self, dataset_id: str) -> Dataset | None:
        """The dataset, or None."""
        with self._tx() as s:
            row = s.get(DatasetRow, dataset_id)
            return _entity(Dataset, row) if row else None

    def list_datasets(self, limit: int | None = None, offset: int = 0) -> list[Dataset]:
        """Datasets: built-ins first (by id), then the others, newest first."""
        newest_first = case((DatasetRow.builtin.is_(True), 0.0), else_=-DatasetRow.created_at)
        query = select(DatasetRow).order_by(DatasetRow.builtin.desc(), newest_first, DatasetRow.id).offset(offset)
        if limit is not None:
            query = query.limit(limit)
        with self._tx() as s:
            return [_entity(Dataset, r) for r in s.scalars(query)]

    def count_datasets(self) -> int:
        """How many datasets exist."""
        with self._tx() as s:
            return s.scalar(select(func.count()).select_from(DatasetRow)) or 0

    def delete_dataset(self, dataset_id: str) -> bool:
        """Remove a dataset's row; True if there was one."""
        with self._tx() as s:
            return s.execute(delete(DatasetRow).where(DatasetRow.id == dataset_id)).rowcount > 0

    def networks_using(self, dataset_id: str) -> list[str]:
        """Ids of the networks bound to a dataset."""
        with self._tx() as s:
            return list(s.scalars(select(NetworkRow.id).where(NetworkRow.dataset_id == dataset_id)))

    # -- experiments ------------------------------------------------------------
    def create_experiment(self, experiment: Experiment) -> Experiment:
        """Store a new experiment."""
        experiment.created_at = experiment.created_at or time.time()
        with self._tx() as s:
            s.add(ExperimentRow(**{c.key: getattr(experiment, c.key) for c in ExperimentRow.__table__.columns}))
        return experiment

    def ensure_experiment(self, experiment: Experiment) -> Experiment:
        """The experiment with this id, created if missing (servers may race: the first insert wins)."""
        from sqlalchemy.exc import IntegrityError

        found = self.get_experiment(experiment.id)
        if found is not None:
            return found
        try:
            return self.create_experiment(experiment)
        except IntegrityError:
            return self.get_experiment(experiment.id)

    def get_experiment(self, experiment_id: str) -> Experiment | None:
        """The experiment, or None."""
        with self._tx() as s:
            row = s.get(ExperimentRow, experiment_id)
            return _entity(Experiment, row) if row else None

    def list_experiments(self, limit: int | None = None, offset: int = 0) -> list[Experiment]:
        """Experiments, newest first."""
        query = select(ExperimentRow).order_by(ExperimentRow.created_at.desc(), ExperimentRow.id).offset(offset)
        if limit is not None:
            query = query.limit(limit)
        with self._tx() as s:
            return [_entity(Experiment, r) for r in s.scalars(query)]

    def count_experiments(self) -> int:
        """How many experiments exist."""
        with self._tx() as s:
            return s.scalar(select(func.count()).select_from(ExperimentRow)) or 0

    def delete_experiment(self, experiment_id: str) -> bool:
        """Remove an experiment's row (its runs are removed by `delete_runs`); True if it existed."""
        with self._tx() as s:
            return s.execute(delete(ExperimentRow).where(ExperimentRow.id == experiment_id)).rowcount > 0

    # -- networks ---------------------------------------------------------------
    def create_network(self, network: Network) -> Network:
        """Store a new network."""
        now = time.time()
        network.created_at = network.created_at or now
        network.updated_at = now
        with self._tx() as s:
            s.add(NetworkRow(**{c.key: getattr(network, c.key) for c in NetworkRow.__table__.columns}))
        return network

    def get_network(self, network_id: str) -> Network | None:
        """The network, or None."""
        with self._tx() as s:
            row = s.get(NetworkRow, network_id)
            return _entity(Network, row) if row else None

    def list_networks(self, limit: int | None = None, offset: int = 0) -> list[Network]:
        """Networks, oldest first (the order the original server listed them)."""
        with self._tx() as s:
            query = select(NetworkRow).order_by(NetworkRow.created_at, NetworkRow.id).offset(offset)
            if limit is not None:
                query = query.limit(limit)
            return [_entity(Network, r) for r in s.scalars(query)]

    def counts(self) -> tuple[int, int]:
        """(networks, runs queued or running), in one round trip."""
        networks = select(func.count()).select_from(NetworkRow).scalar_subquery()
        active = select(func.count()).select_from(RunRow).where(RunRow.status.in_(ACTIVE_STATUSES)).scalar_subquery()
        with self._tx() as s:
            row = s.execute(select(networks, active)).one()
            return int(row[0]), int(row[1])

    def count_networks(self) -> int:
        """How many networks exist."""
        with self._tx() as s:
            return s.scalar(select(func.count()).select_from(NetworkRow)) or 0

    def update_network(self, network_id: str, **values: Any) -> None:
        """Change some fields of a network."""
        values["updated_at"] = time.time()
        with self._tx() as s:
            s.execute(update(NetworkRow).where(NetworkRow.id == network_id).values(**values))

    def delete_network(self, network_id: str) -> bool:
        """Remove a network and its versions; True if it existed. Its runs stay as history."""
        with self._tx() as s:
            s.execute(delete(VersionRow).where(VersionRow.network_id == network_id))
            return s.execute(delete(NetworkRow).where(NetworkRow.id == network_id)).rowcount > 0

    # -- versions ---------------------------------------------------------------
    def add_version(self, version: NetworkVersion, network_values: dict[str, Any]) -> NetworkVersion:
        """Record a version and update its network in one transaction."""
        version.created_at = version.created_at or time.time()
        with self._tx() as s:
            s.add(VersionRow(**{c.key: getattr(version, c.key) for c in VersionRow.__table__.columns}))
            network_values = dict(network_values, updated_at=time.time())
            s.execute(
                update(NetworkRow).where(NetworkRow.id == version.network_id).values(**network_values)
            )
        return version

    def list_versions(self, network_id: str) -> list[NetworkVersion]:
        """A network's versions, oldest first."""
        with self._tx() as s:
            rows = s.scalars(
                select(VersionRow).where(VersionRow.network_id == network_id).order_by(VersionRow.version)
            )
            return [_entity(NetworkVersion, r) for r in rows]

    def get_version(self, network_id: str, version: int) -> NetworkVersion | None:
        """One version, or None."""
        with self._tx() as s:
            row = s.get(VersionRow, (network_id, version))
            return _entity(NetworkVersion, row) if row else None

    def delete_version(self, network_id: str, version: int) -> bool:
        """Remove one version's record (its files are the caller's); True if it existed."""
        with self._tx() as s:
            return s.execute(delete(VersionRow).where(VersionRow.network_id == network_id,
                                                      VersionRow.version == version)).rowcount > 0

    # -- spec revisions (the builder's history) -------------------------------------
    def list_network_revisions(self, network_id: str) -> list[NetworkRevision]:
        """A network's recorded spec revisions, oldest first (none for a network never edited)."""
        with self._tx() as s:
            rows = s.scalars(select(RevisionRow).where(RevisionRow.network_id == network_id)
                             .order_by(RevisionRow.revision))
            return [_entity(NetworkRevision, r) for r in rows]

    def latest_network_revision(self, network_id: str) -> int:
        """The highest recorded revision number of a network; 0 when none is recorded."""
        with self._tx() as s:
            return s.scalar(select(func.max(RevisionRow.revision))
                            .where(RevisionRow.network_id == network_id)) or 0

    def add_network_revisions(self, network_id: str, revisions: list[NetworkRevision], base: int,
                              network_values: dict[str, Any]) -> bool:
        """Record revisions and update the network in one transaction, only if its latest recorded
        revision is still `base` and no run of it is queued or running; False (nothing written) otherwise,
        so two edits made at once cannot both build on the same revision."""
        now = time.time()
        try:
            with self._tx() as s:
                latest = s.scalar(select(func.max(RevisionRow.revision))
                                  .where(RevisionRow.network_id == network_id)) or 0
                busy = s.scalar(select(func.count()).select_from(RunRow).where(
                    RunRow.network_id == network_id, RunRow.status.in_(ACTIVE_STATUSES)))
                if latest != base or busy:
                    return False
                for revision in revisions:
                    revision.created_at = revision.created_at or now
                    s.add(RevisionRow(**_values(RevisionRow, revision)))
                s.flush()  # the revision rows first: a number taken meanwhile fails here
                changed = s.execute(update(NetworkRow).where(NetworkRow.id == network_id)
                                    .values(**network_values, updated_at=now)).rowcount
                if not changed:  # deleted meanwhile: leave no revisions of it behind
                    raise _Gone
        except (IntegrityError, _Gone):  # IntegrityError: the same revision number written by another edit
            return False
        return True

    def delete_network_revisions(self, network_id: str) -> int:
        """Forget a deleted network's revisions; how many there were."""
        with self._tx() as s:
            return s.execute(delete(RevisionRow).where(RevisionRow.network_id == network_id)).rowcount

    # -- runs -------------------------------------------------------------------
    def create_run(self, run: Run) -> Run:
        """Store a new run."""
        run.created_at = run.created_at or time.time()
        with self._tx() as s:
            s.add(RunRow(**{c.key: getattr(run, c.key) for c in RunRow.__table__.columns}))
        return run

    def get_run(self, run_id: str) -> Run | None:
        """The run, or None."""
        with self._tx() as s:
            row = s.get(RunRow, run_id)
            return _entity(Run, row) if row else None

    @staticmethod
    def _run_filters(query, filters: dict[str, Any]):
        for key in ("network_id", "experiment_id", "dataset_id", "algorithm"):
            if filters.get(key) is not None:
                query = query.where(getattr(RunRow, key) == filters[key])
        if filters.get("statuses") is not None:
            query = query.where(RunRow.status.in_(list(filters["statuses"])))
        return query

    def list_runs(
        self,
        *,
        limit: int | None = None,
        offset: int = 0,
        newest_first: bool = True,
        **filters: Any,
    ) -> list[Run]:
        """Runs, filtered (network_id, experiment_id, dataset_id, algorithm, statuses) and paginated."""
        query = self._run_filters(select(RunRow), filters)
        order = RunRow.created_at.desc() if newest_first else RunRow.created_at.asc()
        query = query.order_by(order, RunRow.id).offset(offset)
        if limit is not None:
            query = query.limit(limit)
        with self._tx() as s:
            return [_entity(Run, r) for r in s.scalars(query)]

    def run_scores(self, experiment_id: str, split: str, metric: str) -> list[Any]:
        """What ranking needs of every run of an experiment, oldest first, as rows with attributes: a
        few columns and `value`, the run's `metric` on `split` (None when it has none), read by the
        database out of the metrics JSON, so thousands of runs rank without decoding any of it here."""
        value = RunRow.metrics[(split, metric)].as_float().label("value")
        columns = (RunRow.id, RunRow.algorithm, RunRow.network_id, RunRow.dataset_id, RunRow.status,
                   RunRow.created_at, value)
        query = select(*columns).where(RunRow.experiment_id == experiment_id).order_by(RunRow.created_at, RunRow.id)
        with self._tx() as s:
            return list(s.execute(query))

    def run_details(self, experiment_id: str, run_ids: list[str] | None = None) -> dict[str, dict[str, Any]]:
        """The parameters, seed and metrics of an experiment's runs (those of `run_ids`, or all), by id."""
        query = select(RunRow.id, RunRow.params, RunRow.seed, RunRow.metrics).where(
            RunRow.experiment_id == experiment_id)
        if run_ids is not None:
            query = query.where(RunRow.id.in_(run_ids))
        with self._tx() as s:
            return {row.id: {"params": row.params, "seed": row.seed, "metrics": row.metrics or {}}
                    for row in s.execute(query)}

    def run_dataset_ids(self, experiment_id: str) -> list[str]:
        """The datasets an experiment's runs trained on, sorted."""
        query = select(RunRow.dataset_id).where(RunRow.experiment_id == experiment_id).distinct()
        with self._tx() as s:
            return sorted(i for i in s.scalars(query) if i)

    def count_runs(self, **filters: Any) -> int:
        """How many runs match the filters `list_runs` takes."""
        query = self._run_filters(select(func.count()).select_from(RunRow), filters)
        with self._tx() as s:
            return s.scalar(query) or 0

    def tally_runs(self) -> list[RunTally]:
        """Runs counted by status, queue and kind, with the epochs they trained: one grouped query."""
        network = (RunRow.algorithm == NETWORK_ALGORITHM).label("network")
        trained = func.coalesce(func.sum(RunRow.epochs_done - RunRow.start_epoch), 0)
        query = select(RunRow.status, RunRow.queue, network, func.count(), trained).group_by(
            RunRow.status, RunRow.queue, network)
        with self._tx() as s:
            return [RunTally(status, queue, bool(is_network), int(runs), int(done))
                    for status, queue, is_network, runs, done in s.execute(query)]

    def delete_runs(self, run_ids: list[str]) -> int:
        """Remove runs and their events; how many runs went."""
        if not run_ids:
            return 0
        with self._tx() as s:
            s.execute(delete(RunEventRow).where(RunEventRow.run_id.in_(run_ids)))
            return s.execute(delete(RunRow).where(RunRow.id.in_(run_ids))).rowcount

    def update_run(self, run_id: str, **values: Any) -> None:
        """Change some fields of a run."""
        with self._tx() as s:
            s.execute(update(RunRow).where(RunRow.id == run_id).values(**values))

    def record_event(self, event_: RunEvent, run_values: dict[str, Any], expect_status: str | None = None) -> bool:
        """Store an event and the run fields it changes, atomically; with `expect_status`, only if the
        run still has that status (False, nothing stored, if another node changed it first)."""
        with self._tx() as s:
            if expect_status is not None:
                guard = update(RunRow).where(RunRow.id == event_.run_id, RunRow.status == expect_status)
                if s.execute(guard.values(last_seq=event_.seq)).rowcount == 0:
                    return False
            s.add(
                RunEventRow(
                    run_id=event_.run_id,
                    seq=event_.seq,
                    type=event_.type,
                    payload=event_.payload,
                    ts=event_.ts,
                )
            )
            values = dict(run_values, last_seq=event_.seq)
            s.execute(update(RunRow).where(RunRow.id == event_.run_id).values(**values))
        return True

    def claim_run(self, run_id: str, owner: str, worker: str) -> Run | None:
        """Take a queued run for a worker (it becomes `running`, owned by it); None when it is no longer
        queued (cancelled meanwhile, or taken by another worker): a run never trains twice at once."""
        with self._tx() as s:
            claimed = s.execute(
                update(RunRow).where(RunRow.id == run_id, RunRow.status == RunStatus.QUEUED.value)
                .values(status=RunStatus.RUNNING.value, owner=owner, worker=worker)).rowcount
            if not claimed:
                return None
            return _entity(Run, s.get(RunRow, run_id))

    def request_stop(self, run_id: str, what: str) -> bool:
        """Ask whichever worker has an active run to stop it (`cancel`, or `delete` once stopped)."""
        with self._tx() as s:
            return s.execute(update(RunRow).where(RunRow.id == run_id, RunRow.status.in_(ACTIVE_STATUSES))
                             .values(stop_requested=what)).rowcount > 0

    def stop_requests(self, run_ids: Iterable[str]) -> dict[str, str]:
        """Which of these runs have been asked to stop, and how."""
        ids = list(run_ids)
        if not ids:
            return {}
        with self._tx() as s:
            rows = s.execute(select(RunRow.id, RunRow.stop_requested)
                             .where(RunRow.id.in_(ids), RunRow.stop_requested.is_not(None)))
            return {run_id: what for run_id, what in rows}

    def list_events(
        self, run_id: str, *, after_seq: int = 0, types: Iterable[str] | None = None
    ) -> list[RunEvent]:
        """A run's stored events after `after_seq`, in order."""
        query = select(RunEventRow).where(RunEventRow.run_id == run_id, RunEventRow.seq > after_seq)
        if types is not None:
            query = query.where(RunEventRow.type.in_(list(types)))
        with self._tx() as s:
            rows = s.scalars(query.order_by(RunEventRow.seq))
            return [RunEvent(r.run_id, r.seq, r.type, r.payload, r.ts) for r in rows]

    def active_runs(self) -> list[Run]:
        """Runs that are queued or running, oldest first."""
        return self.list_runs(statuses=ACTIVE_STATUSES, newest_first=False)

    def latest_checkpointed_run(self, network_id: str) -> Run | None:
        """The newest finished run of a network that left a checkpoint."""
        query = (
            select(RunRow)
            .where(
                RunRow.network_id == network_id,
                RunRow.checkpoint_path.is_not(None),
                RunRow.status.not_in(ACTIVE_STATUSES),
            )
            .order_by(RunRow.created_at.desc())
            .limit(1)
        )
        with self._tx() as s:
            row = s.scalars(query).first()
            return _entity(Run, row) if row else None

    # -- API tokens (livetrain.auth) ------------------------------------------------
    def add_token(self, token: Token, token_hash: str) -> Token:
        """Store a new token by its hash."""
        values = {c.key: getattr(token, c.key) for c in TokenRow.__table__.columns if c.key != "token_hash"}
        with self._tx() as s:
            s.add(TokenRow(**values, token_hash=token_hash))
        return token

    def token_by_hash(self, token_hash: str) -> Token | None:
        """The token with this hash (revoked and expired ones too), or None."""
        with self._tx() as s:
            row = s.scalars(select(TokenRow).where(TokenRow.token_hash == token_hash)).first()
            return _token(row) if row else None

    def get_token(self, token_id: str) -> Token | None:
        """A token by id, or None."""
        with self._tx() as s:
            row = s.get(TokenRow, token_id)
            return _token(row) if row else None

    def list_tokens(self) -> list[Token]:
        """Every token, newest first."""
        with self._tx() as s:
            return [_token(r) for r in s.scalars(select(TokenRow).order_by(TokenRow.created_at.desc()))]

    def count_usable_tokens(self, now: float) -> int:
        """Tokens that are neither revoked nor expired."""
        query = select(func.count()).select_from(TokenRow).where(
            TokenRow.revoked_at.is_(None), (TokenRow.expires_at.is_(None)) | (TokenRow.expires_at > now))
        with self._tx() as s:
            return s.scalar(query) or 0

    def touch_token(self, token_id: str, when: float) -> None:
        """Record a token's last use."""
        with self._tx() as s:
            s.execute(update(TokenRow).where(TokenRow.id == token_id).values(last_used_at=when))

    def revoke_token(self, token_id: str, when: float) -> bool:
        """Revoke a token; False if there is none or it was already revoked."""
        with self._tx() as s:
            return s.execute(update(TokenRow).where(TokenRow.id == token_id, TokenRow.revoked_at.is_(None))
                             .values(revoked_at=when)).rowcount > 0


    # -- the model registry (livetrain.services.registry) --------------------------------
    def _by_key(self, entity_class, row_class, key: Any) -> Any:
        """The entity of the row with this primary key, or None."""
        with self._tx() as s:
            row = s.get(row_class, key)
            return _entity(entity_class, row) if row else None

    def create_model(self, model: RegisteredModel) -> bool:
        """Store a new registered model; False when the name is taken."""
        model.created_at = model.created_at or time.time()
        with self._tx() as s:
            if s.get(ModelRow, model.name) is not None:
                return False
            s.add(ModelRow(**_values(ModelRow, model)))
        return True

    def get_model(self, name: str) -> RegisteredModel | None:
        """A registered model, or None."""
        return self._by_key(RegisteredModel, ModelRow, name)

    def list_models(self) -> list[RegisteredModel]:
        """Every registered model, by name."""
        with self._tx() as s:
            return [_entity(RegisteredModel, r) for r in s.scalars(select(ModelRow).order_by(ModelRow.name))]

    def set_model_policy(self, name: str, policy: dict[str, Any]) -> None:
        """Replace a model's retraining policy."""
        with self._tx() as s:
            s.execute(update(ModelRow).where(ModelRow.name == name).values(policy=policy))

    def delete_model(self, name: str) -> bool:
        """Remove a model with its versions, aliases, history, predictions, feedback and retrainings."""
        with self._tx() as s:
            for row in (ModelVersionRow, AliasRow, AliasMoveRow, PredictionRow, FeedbackRow, RetrainingRow):
                s.execute(delete(row).where(row.model_name == name))
            return s.execute(delete(ModelRow).where(ModelRow.name == name)).rowcount > 0

    def add_model_version(self, version: ModelVersion) -> ModelVersion:
        """Store the model's next version (its number is given here, inside the transaction)."""
        version.created_at = version.created_at or time.time()
        with self._tx() as s:
            last = s.scalar(select(func.max(ModelVersionRow.version))
                            .where(ModelVersionRow.model_name == version.model_name))
            version.version = (last or 0) + 1
            s.add(ModelVersionRow(**_values(ModelVersionRow, version)))
        return version

    def registered_sources(self) -> tuple[set[tuple[str, int]], set[str]]:
        """What any registered model version serves: (network_id, version) pairs, and run ids."""
        query = select(ModelVersionRow.network_id, ModelVersionRow.network_version, ModelVersionRow.run_id)
        versions: set[tuple[str, int]] = set()
        runs: set[str] = set()
        with self._tx() as s:
            for network_id, network_version, run_id in s.execute(query):
                if network_id is not None:
                    versions.add((network_id, network_version))
                if run_id is not None:
                    runs.add(run_id)
        return versions, runs

    def list_model_versions(self, name: str) -> list[ModelVersion]:
        """A model's versions, oldest first."""
        query = select(ModelVersionRow).where(ModelVersionRow.model_name == name).order_by(ModelVersionRow.version)
        with self._tx() as s:
            return [_entity(ModelVersion, r) for r in s.scalars(query)]

    def get_model_version(self, name: str, version: int) -> ModelVersion | None:
        """One version of a model, or None."""
        return self._by_key(ModelVersion, ModelVersionRow, (name, version))

    def aliases(self, name: str) -> dict[str, int]:
        """A model's aliases and the version each points to."""
        with self._tx() as s:
            return {r.alias: r.version for r in s.scalars(select(AliasRow).where(AliasRow.model_name == name)
                                                          .order_by(AliasRow.alias))}

    def move_alias(self, move: AliasMove, expect_from: int | None) -> bool:
        """Point an alias at `move.to_version` (None removes it) and record the move, in one transaction;
        False, with nothing changed, when the alias no longer points at `expect_from`."""
        move.at = move.at or time.time()
        with self._tx() as s:
            row = s.get(AliasRow, (move.model_name, move.alias))
            if (row.version if row else None) != expect_from:
                return False
            if move.to_version is None:
                s.delete(row)
            elif row is None:
                s.add(AliasRow(model_name=move.model_name, alias=move.alias, version=move.to_version))
            else:
                row.version = move.to_version
            s.add(AliasMoveRow(**_values(AliasMoveRow, move, skip=("id",))))
        return True

    def alias_history(self, name: str, alias: str | None = None, limit: int = 200) -> list[AliasMove]:
        """A model's alias moves (of one alias, if named), newest first."""
        query = select(AliasMoveRow).where(AliasMoveRow.model_name == name)
        if alias is not None:
            query = query.where(AliasMoveRow.alias == alias)
        with self._tx() as s:
            rows = s.scalars(query.order_by(AliasMoveRow.id.desc()).limit(limit))
            return [_entity(AliasMove, r) for r in rows]

    def champion_of_network(self, network_id: str, alias: str) -> int | None:
        """The network version that `alias` of a registered model points at, if it points at one of this
        network's versions (the most recently moved such alias when several models do)."""
        query = (select(ModelVersionRow.network_version)
                 .join(AliasRow, (AliasRow.model_name == ModelVersionRow.model_name)
                       & (AliasRow.version == ModelVersionRow.version))
                 .join(AliasMoveRow, (AliasMoveRow.model_name == AliasRow.model_name)
                       & (AliasMoveRow.alias == AliasRow.alias))
                 .where(ModelVersionRow.network_id == network_id, AliasRow.alias == alias)
                 .order_by(AliasMoveRow.id.desc()).limit(1))
        with self._tx() as s:
            return s.scalar(query)

    def add_predictions(self, predictions: list[Prediction]) -> None:
        """Keep what a model predicted, row by row."""
        now = time.time()
        with self._tx() as s:
            for p in predictions:
                p.created_at = p.created_at or now
                s.add(PredictionRow(**_values(PredictionRow, p)))

    def get_prediction(self, prediction_id: str) -> Prediction | None:
        """A kept prediction, or None."""
        return self._by_key(Prediction, PredictionRow, prediction_id)

    def count_predictions(self) -> dict[str, int]:
        """Predictions kept per model."""
        query = select(PredictionRow.model_name, func.count()).group_by(PredictionRow.model_name)
        with self._tx() as s:
            return {name: n for name, n in s.execute(query)}

    def add_feedback(self, feedback: Feedback) -> Feedback:
        """Store one piece of feedback; its id is set."""
        feedback.created_at = feedback.created_at or time.time()
        with self._tx() as s:
            row = FeedbackRow(**_values(FeedbackRow, feedback, skip=("id",)))
            s.add(row)
            s.flush()
            feedback.id = row.id
        return feedback

    def list_feedback(self, name: str, *, limit: int | None = None, offset: int = 0,
                      unused: bool = False) -> list[Feedback]:
        """A model's feedback, oldest first (only what no retraining used yet, with `unused`)."""
        query = select(FeedbackRow).where(FeedbackRow.model_name == name)
        if unused:
            query = query.where(FeedbackRow.retraining_id.is_(None))
        with self._tx() as s:
            rows = s.scalars(query.order_by(FeedbackRow.id).offset(offset).limit(limit))
            return [_entity(Feedback, r) for r in rows]

    def count_feedback(self, name: str | None = None, *, unused: bool = False) -> dict[str, int]:
        """Feedback per model (of one model, if named; only unused, with `unused`)."""
        query = select(FeedbackRow.model_name, func.count()).group_by(FeedbackRow.model_name)
        if name is not None:
            query = query.where(FeedbackRow.model_name == name)
        if unused:
            query = query.where(FeedbackRow.retraining_id.is_(None))
        with self._tx() as s:
            return {model: n for model, n in s.execute(query)}

    def claim_feedback(self, ids: list[int], retraining_id: str) -> int:
        """Mark feedback as used by a retraining (only what no other retraining took); how many."""
        with self._tx() as s:
            return s.execute(update(FeedbackRow).where(FeedbackRow.id.in_(ids), FeedbackRow.retraining_id.is_(None))
                             .values(retraining_id=retraining_id)).rowcount

    def release_feedback(self, retraining_id: str) -> None:
        """Give the feedback of a failed retraining back, for the next one."""
        with self._tx() as s:
            s.execute(update(FeedbackRow).where(FeedbackRow.retraining_id == retraining_id)
                      .values(retraining_id=None))

    def create_retraining(self, retraining: Retraining) -> bool:
        """Store a queued retraining unless the model already has one going; False then."""
        retraining.created_at = retraining.created_at or time.time()
        with self._tx() as s:
            busy = s.scalar(select(RetrainingRow.id).where(RetrainingRow.model_name == retraining.model_name,
                                                           RetrainingRow.status.in_(RETRAIN_ACTIVE)).limit(1))
            if busy is not None:
                return False
            s.add(RetrainingRow(**_values(RetrainingRow, retraining)))
        return True

    def update_retraining(self, retraining_id: str, **values: Any) -> Retraining | None:
        """Change a retraining's fields; the retraining after."""
        with self._tx() as s:
            if values:
                s.execute(update(RetrainingRow).where(RetrainingRow.id == retraining_id).values(**values))
            row = s.get(RetrainingRow, retraining_id)
            return _entity(Retraining, row) if row else None

    def list_retrainings(self, name: str | None = None, *, statuses: Iterable[str] | None = None,
                         limit: int = 100) -> list[Retraining]:
        """Retrainings (of one model, in some statuses), newest first."""
        query = select(RetrainingRow)
        if name is not None:
            query = query.where(RetrainingRow.model_name == name)
        if statuses is not None:
            query = query.where(RetrainingRow.status.in_(list(statuses)))
        with self._tx() as s:
            rows = s.scalars(query.order_by(RetrainingRow.created_at.desc()).limit(limit))
            return [_entity(Retraining, r) for r in rows]

    # -- vocabularies ---------------------------------------------------------------
    def create_vocabulary(self, vocabulary: Vocabulary, tokens: list[VocabularyToken]) -> Vocabulary:
        """Store a vocabulary with its first tokens (ids as given; `next_id` past the largest)."""
        now = time.time()
        vocabulary.created_at = vocabulary.created_at or now
        vocabulary.updated_at = now
        vocabulary.next_id = max([vocabulary.next_id] + [t.token_id + 1 for t in tokens])
        with self._tx() as s:
            s.add(VocabularyRow(**_values(VocabularyRow, vocabulary)))
            s.flush()
            s.add_all(VocabularyTokenRow(**_values(VocabularyTokenRow, t)) for t in tokens)
        return vocabulary

    def get_vocabulary(self, vocabulary_id: str) -> Vocabulary | None:
        """The vocabulary, or None."""
        return self._by_key(Vocabulary, VocabularyRow, vocabulary_id)

    def list_vocabularies(self, dataset_id: str | None = None) -> list[Vocabulary]:
        """Vocabularies, newest first (only those belonging to `dataset_id`, when given)."""
        query = select(VocabularyRow)
        if dataset_id is not None:
            query = query.where(VocabularyRow.dataset_id == dataset_id)
        with self._tx() as s:
            return [_entity(Vocabulary, r) for r in s.scalars(query.order_by(VocabularyRow.created_at.desc()))]

    def update_vocabulary(self, vocabulary_id: str, **values: Any) -> None:
        """Change a vocabulary's fields (its `updated_at` too)."""
        with self._tx() as s:
            s.execute(update(VocabularyRow).where(VocabularyRow.id == vocabulary_id)
                      .values(**values, updated_at=time.time()))

    def delete_vocabulary(self, vocabulary_id: str) -> bool:
        """Remove a vocabulary and its tokens; True if there was one."""
        with self._tx() as s:
            s.execute(delete(VocabularyTokenRow).where(VocabularyTokenRow.vocabulary_id == vocabulary_id))
            return s.execute(delete(VocabularyRow).where(VocabularyRow.id == vocabulary_id)).rowcount > 0

    def vocabulary_tokens(self, vocabulary_id: str, *, limit: int | None = None, offset: int = 0,
                          category: str | None = None) -> list[VocabularyToken]:
        """A vocabulary's tokens by id (of one category, when given)."""
        query = select(VocabularyTokenRow).where(VocabularyTokenRow.vocabulary_id == vocabulary_id)
        if category is not None:
            query = query.where(VocabularyTokenRow.category == category)
        query = query.order_by(VocabularyTokenRow.token_id).offset(offset).limit(limit)
        with self._tx() as s:
            return [_entity(VocabularyToken, r) for r in s.scalars(query)]

    def count_vocabulary_tokens(self, vocabulary_id: str) -> dict[str, int]:
        """How many tokens of each category a vocabulary has."""
        query = (select(VocabularyTokenRow.category, func.count())
                 .where(VocabularyTokenRow.vocabulary_id == vocabulary_id).group_by(VocabularyTokenRow.category))
        with self._tx() as s:
            return {category: n for category, n in s.execute(query)}

    def add_vocabulary_tokens(self, vocabulary_id: str, items: list[tuple[str, str, int | None]],
                              *, max_size: int | None = None) -> tuple[list[VocabularyToken], list[str]]:
        """Give each new (text, category, count) the next free id; (tokens added, texts already there).

        With `max_size`, tokens beyond that many in the vocabulary are not added (nor reported).
        """
        added: list[VocabularyToken] = []
        existing: list[str] = []
        with self._tx() as s:
            row = s.scalars(select(VocabularyRow).where(VocabularyRow.id == vocabulary_id).with_for_update()).first()
            if row is None:
                return added, existing
            known = set(s.scalars(select(VocabularyTokenRow.text)
                                  .where(VocabularyTokenRow.vocabulary_id == vocabulary_id)))
            size = len(known)
            next_id = row.next_id
            for text_, category, count in items:
                if text_ in known:
                    existing.append(text_)
                    continue
                if max_size is not None and size >= max_size:
                    break
                token = VocabularyToken(vocabulary_id, next_id, text_, category, count)
                s.add(VocabularyTokenRow(**_values(VocabularyTokenRow, token)))
                known.add(text_)
                added.append(token)
                next_id += 1
                size += 1
            row.next_id = next_id
            row.updated_at = time.time()
        return added, existing

    def delete_vocabulary_token(self, vocabulary_id: str, text_: str) -> VocabularyToken | None:
        """Remove one token by its text; the token removed, or None. Its id is not given out again."""
        with self._tx() as s:
            row = s.scalars(select(VocabularyTokenRow).where(VocabularyTokenRow.vocabulary_id == vocabulary_id,
                                                             VocabularyTokenRow.text == text_)).first()
            if row is None:
                return None
            token = _entity(VocabularyToken, row)
            s.delete(row)
            s.execute(update(VocabularyRow).where(VocabularyRow.id == vocabulary_id)
                      .values(updated_at=time.time()))
            return token


def _values(row_class, entity, skip: tuple[str, ...] = ()) -> dict[str, Any]:
    """An entity's fields as a row's columns."""
    return {c.key: getattr(entity, c.key) for c in row_class.__table__.columns if c.key not in skip}


# -- the model registry's tables ---------------------------------------------------------------


class ModelRow(Base):
    __tablename__ = "registered_models"
    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    description: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[float] = mapped_column(Float)
    policy: Mapped[dict | None] = mapped_column(JSON, nullable=True)


class ModelVersionRow(Base):
    __tablename__ = "model_versions"
    model_name: Mapped[str] = mapped_column(String(100), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    network_id: Mapped[str | None] = mapped_column(String(64), index=True, nullable=True)
    network_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    run_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    metrics: Mapped[dict] = mapped_column(JSON, default=dict)
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[float] = mapped_column(Float)


class AliasRow(Base):
    __tablename__ = "model_aliases"
    model_name: Mapped[str] = mapped_column(String(100), primary_key=True)
    alias: Mapped[str] = mapped_column(String(40), primary_key=True)
    version: Mapped[int] = mapped_column(Integer)


class AliasMoveRow(Base):
    __tablename__ = "model_alias_history"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    model_name: Mapped[str] = mapped_column(String(100), index=True)
    alias: Mapped[str] = mapped_column(String(40))
    from_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    to_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    who: Mapped[str] = mapped_column(String(200))
    reason: Mapped[str] = mapped_column(Text, default="")
    at: Mapped[float] = mapped_column(Float)


class PredictionRow(Base):
    __tablename__ = "model_predictions"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    model_name: Mapped[str] = mapped_column(String(100), index=True)
    version: Mapped[int] = mapped_column(Integer)
    alias: Mapped[str | None] = mapped_column(String(40), nullable=True)
    input: Mapped[Any] = mapped_column(JSON)
    output: Mapped[Any] = mapped_column(JSON)
    created_at: Mapped[float] = mapped_column(Float)


class FeedbackRow(Base):
    __tablename__ = "model_feedback"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    model_name: Mapped[str] = mapped_column(String(100), index=True)
    prediction_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    input: Mapped[Any] = mapped_column(JSON)
    predicted: Mapped[Any] = mapped_column(JSON, nullable=True)
    label: Mapped[Any] = mapped_column(JSON)
    note: Mapped[str] = mapped_column(Text, default="")
    retraining_id: Mapped[str | None] = mapped_column(String(32), index=True, nullable=True)
    created_at: Mapped[float] = mapped_column(Float)


class RetrainingRow(Base):
    __tablename__ = "retrainings"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    model_name: Mapped[str] = mapped_column(String(100), index=True)
    status: Mapped[str] = mapped_column(String(20))
    trigger: Mapped[str] = mapped_column(String(10))
    champion_version: Mapped[int] = mapped_column(Integer)
    metric: Mapped[str] = mapped_column(String(40))
    run_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    dataset_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    challenger_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    feedback_train: Mapped[int] = mapped_column(Integer, default=0)
    feedback_holdout: Mapped[int] = mapped_column(Integer, default=0)
    champion_metrics: Mapped[dict] = mapped_column(JSON, default=dict)
    challenger_metrics: Mapped[dict] = mapped_column(JSON, default=dict)
    reason: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[float] = mapped_column(Float)
    finished_at: Mapped[float | None] = mapped_column(Float, nullable=True)


class VocabularyRow(Base):
    __tablename__ = "vocabularies"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    level: Mapped[str | None] = mapped_column(String(10), nullable=True)
    dataset_id: Mapped[str | None] = mapped_column(String(64), index=True, nullable=True)
    description: Mapped[str] = mapped_column(Text, default="")
    next_id: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[float] = mapped_column(Float)


class VocabularyTokenRow(Base):
    __tablename__ = "vocabulary_tokens"
    __table_args__ = (UniqueConstraint("vocabulary_id", "text", name="uq_vocabulary_tokens_text"),)
    vocabulary_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    token_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    text: Mapped[str] = mapped_column(String(100))
    category: Mapped[str] = mapped_column(String(20))
    count: Mapped[int | None] = mapped_column(Integer, nullable=True)


__all__ = ["MetadataStore", "RunStatus"]
