"""Retention: remove finished runs and network versions older than an age, with their files.

What is removed:
- finished runs (completed, failed, cancelled, interrupted; never queued or running) that ended before
  the age, with their stored events and their files: a scikit-learn run's folder, a network run's
  checkpoints (and its whole folder once the version it made is gone too);
- network versions created before the age, with their weights and examples files, except each
  network's newest version.
What the model registry holds (every registered version's network version or run, champions
included) is never removed: `protected_by_registry` says what that is.

Files are removed through the `ArtifactStore`, so a stored path that leaves the models folder is left
alone rather than trusted.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from livetrain.errors import ValidationError
from livetrain.store import ArtifactStore, MetadataStore
from livetrain.store.entities import ACTIVE_STATUSES, NETWORK_ALGORITHM, Run, RunStatus

log = logging.getLogger(__name__)

FINISHED = tuple(s.value for s in RunStatus if s.value not in ACTIVE_STATUSES)


@dataclass(frozen=True)
class Protected:
    """What retention must keep whatever its age: versions as (network_id, version), and run ids."""

    versions: frozenset[tuple[str, int]] = frozenset()
    runs: frozenset[str] = frozenset()


def protected_by_registry(store: MetadataStore) -> Protected:
    """What the model registry protects: every registered version's source (a network version, or the
    scikit-learn run whose model it serves). Champions are registered versions, so never removed."""
    versions, runs = store.registered_sources()
    return Protected(frozenset(versions), frozenset(runs))


@dataclass
class Removal:
    """One thing retention removes: a run or a version, how old it is, and its files."""

    kind: str  # "run" | "version"
    id: str  # a run id, or network_id@vN
    age: float  # seconds
    paths: list[str] = field(default_factory=list)  # relative to the models folder
    bytes: int = 0
    network_id: str | None = None
    version: int | None = None


def _size(artifacts: ArtifactStore, relpath: str, counted: set) -> int | None:
    """Bytes under `relpath` (a file or a folder) not yet `counted` (a version's weights inside its run's
    folder are counted once); None when the path leaves the models folder."""
    try:
        path = artifacts.resolve(relpath)
    except ValidationError:
        log.warning("retention: %r is outside the models folder; left alone", relpath)
        return None
    files = [p for p in path.rglob("*") if p.is_file()] if path.is_dir() else [path] if path.is_file() else []
    new = [p for p in files if p not in counted]
    counted.update(new)
    return sum(p.stat().st_size for p in new)


def _run_paths(run: Run, version_removed: bool, artifacts: ArtifactStore) -> list[str]:
    if run.network_id is None or run.algorithm != NETWORK_ALGORITHM:
        return [f"runs/{run.id}"]
    folder = f"networks/{run.network_id}/runs/{run.id}"
    if run.version is None or version_removed:
        return [folder]
    try:  # the version it made is kept, and its weights live in this folder: only the checkpoints go
        root = artifacts.resolve(folder)
    except ValidationError:
        return []
    return [f"{folder}/{p.name}" for p in sorted(root.glob("checkpoint-*.pt"))] if root.is_dir() else []


def plan(store: MetadataStore, artifacts: ArtifactStore, older_than: float, *, now: float | None = None,
         protected: Protected | None = None) -> list[Removal]:
    """What a collection would remove now: versions first, then runs, oldest first within each."""
    now = time.time() if now is None else now
    cutoff = now - older_than
    protected = protected or Protected()
    removals: list[Removal] = []
    for network in store.list_networks():
        versions = store.list_versions(network.id)
        newest = max((v.version for v in versions), default=None)
        for v in versions:
            if v.version == newest or (v.network_id, v.version) in protected.versions or v.created_at >= cutoff:
                continue
            removals.append(Removal("version", f"{v.network_id}@v{v.version}", now - v.created_at,
                                    [p for p in (v.weights_path, v.examples_path) if p],
                                    network_id=v.network_id, version=v.version))
    removed_versions = {(r.network_id, r.version) for r in removals}
    for run in store.list_runs(statuses=FINISHED, newest_first=False):
        ended = run.finished_at or run.created_at
        if run.id in protected.runs or ended >= cutoff:
            continue
        gone = (run.network_id, run.version) in removed_versions or (
            run.version is not None and store.get_version(run.network_id, run.version) is None)
        removals.append(Removal("run", run.id, now - ended, _run_paths(run, gone, artifacts)))
    counted: set = set()
    for removal in removals:
        sizes = {p: _size(artifacts, p, counted) for p in removal.paths}
        removal.paths = [p for p, size in sizes.items() if size is not None]
        removal.bytes = sum(size for size in sizes.values() if size)
    return removals


def collect(store: MetadataStore, artifacts: ArtifactStore, removals: Iterable[Removal]) -> int:
    """Remove what `plan` listed (records first, then files); the bytes freed."""
    freed = 0
    removals = list(removals)
    for removal in removals:
        if removal.kind == "version":
            store.delete_version(removal.network_id, removal.version)
    store.delete_runs([r.id for r in removals if r.kind == "run"])
    for removal in removals:
        for relpath in removal.paths:
            artifacts.delete(relpath)
        freed += removal.bytes
    return freed


def run_gc(store: MetadataStore, artifacts: ArtifactStore, older_than: float, *, dry_run: bool = False,
           protected: Protected | None = None) -> tuple[list[Removal], int]:
    """Plan, and unless `dry_run` remove; (what was (or would be) removed, bytes freed)."""
    removals = plan(store, artifacts, older_than, protected=protected)
    return removals, 0 if dry_run else collect(store, artifacts, removals)


def table(removals: list[Removal]) -> str:
    """The removals as a text table: kind, id, age, bytes."""
    rows = [("KIND", "ID", "AGE", "BYTES")] + [
        (r.kind, r.id, f"{r.age / 86400:.1f}d", str(r.bytes)) for r in removals]
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows)

