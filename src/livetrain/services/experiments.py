"""Experiments: named groups of runs, and the leaderboard that ranks them."""

from __future__ import annotations

import time
import uuid
from typing import Any

from livetrain.errors import Conflict, NotFound, ValidationError
from livetrain.store import Experiment
from livetrain.store.entities import ACTIVE_STATUSES, DEFAULT_EXPERIMENT_ID, NETWORK_ALGORITHM, RunStatus
from livetrain.training.metrics import DIRECTIONS, higher_is_better

SPLITS = ("train", "val", "test")
RANKED_STATUSES = (*ACTIVE_STATUSES, RunStatus.COMPLETED.value)
TIE_DIGITS = 12  # values equal to 12 significant digits share a rank (float noise is not a difference)


def _rank_key(value: float) -> float:
    return float(f"{value:.{TIE_DIGITS}g}")


def rank(runs: list[Any], higher_better: bool) -> list[tuple[int, Any]]:
    """Runs (with `value` and `created_at`) best first, each with its rank; equal values share a
    rank (1, 1, 3), and the older run comes first."""
    keyed = sorted(((_rank_key(run.value), run) for run in runs),
                   key=lambda item: (-item[0] if higher_better else item[0], item[1].created_at))
    ranks, previous, place = [], None, 0
    for position, (key, run) in enumerate(keyed, start=1):
        if key != previous:
            place, previous = position, key
        ranks.append((place, run))
    return ranks


class ExperimentService:
    """Create, list, describe and delete experiments; rank their runs."""

    def __init__(self, *, store, artifacts, emitter, runs) -> None:
        self.store = store
        self.artifacts = artifacts
        self.emitter = emitter
        self.runs = runs

    def ensure_default(self) -> Experiment:
        """The experiment runs land in when none is named."""
        return self.store.ensure_experiment(Experiment(
            id=DEFAULT_EXPERIMENT_ID, name="Default",
            description="Runs started without naming an experiment."))

    def get(self, experiment_id: str) -> Experiment:
        """The experiment, or 404."""
        if not isinstance(experiment_id, str) or not experiment_id:
            raise ValidationError("experiment_id must be a string", code="bad_parameter",
                                  detail={"field": "experiment_id"})
        experiment = self.store.get_experiment(experiment_id)
        if experiment is None:
            raise NotFound(f"no experiment {experiment_id!r}")
        return experiment

    def create(self, body: dict[str, Any]) -> Experiment:
        """A new, empty experiment."""
        from livetrain.services.networks import check_name

        description = body.get("description") or ""
        if not isinstance(description, str) or len(description) > 2000:
            raise ValidationError("description must be text of at most 2000 characters", code="bad_parameter",
                                  detail={"field": "description"})
        experiment_id = uuid.uuid4().hex[:12]
        name = check_name(body["name"]) if body.get("name") is not None else f"experiment-{experiment_id[:6]}"
        experiment = self.store.create_experiment(Experiment(id=experiment_id, name=name, description=description))
        self.emitter.resource("experiment_created", {"experiment_id": experiment.id, "name": experiment.name,
                                                     "ts": time.time()})
        return experiment

    def describe(self, experiment: Experiment) -> dict[str, Any]:
        """The experiment with how many runs it has and how many are active."""
        return {**experiment.to_dict(),
                "runs": self.store.count_runs(experiment_id=experiment.id),
                "active_runs": self.store.count_runs(experiment_id=experiment.id, statuses=ACTIVE_STATUSES)}

    def delete(self, experiment_id: str) -> dict[str, Any]:
        """Cancel its active runs, then remove it with its runs, their events and models."""
        experiment = self.get(experiment_id)
        if experiment.is_default:
            raise Conflict("the default experiment cannot be deleted", code="default_experiment")
        runs = self.store.list_runs(experiment_id=experiment.id)
        active = [r for r in runs if r.status in ACTIVE_STATUSES]
        for run in active:  # their rows go once their workers have stopped and the end is recorded
            self.runs.cancel_and_delete(run.id)
        deleted_runs = self.runs.delete_runs([r for r in runs if r.status not in ACTIVE_STATUSES]) + len(active)
        self.store.delete_experiment(experiment.id)
        self.emitter.resource("experiment_deleted", {"experiment_id": experiment.id, "ts": time.time()})
        return {"experiment_id": experiment.id, "deleted": True, "deleted_runs": deleted_runs}

    def leaderboard(self, experiment_id: str, metric: str | None, split: str,
                    limit: int | None = None) -> dict[str, Any]:
        """The experiment's runs ranked by one metric on one split; runs without it are listed apart.

        `limit` keeps the first `limit` of each list (the best ranked, the oldest unranked); `counts`
        always tells how many there are in all.
        """
        experiment = self.get(experiment_id)
        if split not in SPLITS:
            raise ValidationError(f"split must be one of {', '.join(SPLITS)}", code="bad_parameter",
                                  detail={"field": "split"})
        dataset_ids = self.store.run_dataset_ids(experiment.id)
        if metric is None:
            tasks = {d.task if d else None for d in (self.store.get_dataset(i) for i in dataset_ids)}
            metric = "r2" if tasks == {"regression"} else "accuracy"
        higher = higher_is_better(metric)  # also refuses a name that is not a metric, before it is read
        runs = self.store.run_scores(experiment.id, split, metric)
        # a run that stopped early (cancelled, failed, interrupted) keeps its last step's numbers,
        # but they are not a result: it is listed, not ranked
        ranked = [run for run in runs if run.value is not None and run.status in RANKED_STATUSES]
        unranked = [run for run in runs if run.value is None or run.status not in RANKED_STATUSES]
        kept = rank(ranked, higher)[:limit]
        # what an entry shows beyond the ranking is read for the entries kept only
        details = self.store.run_details(
            experiment.id, [run.id for _, run in kept] + [run.id for run in unranked[:limit]] if limit else None)

        def entry(run, value: float | None) -> dict[str, Any]:
            more = details.get(run.id) or {"params": {}, "seed": None, "metrics": {}}
            return {
                "run_id": run.id, "algorithm": run.algorithm, "network_id": run.network_id,
                "dataset_id": run.dataset_id, "status": run.status, "params": more["params"], "seed": more["seed"],
                "value": value, "metrics": more["metrics"].get(split) or {}, "created_at": run.created_at,
                "live": run.status in ACTIVE_STATUSES,  # its value still changes with every step
            }

        entries = [{**entry(run, run.value), "rank": place} for place, run in kept]
        return {
            "experiment_id": experiment.id, "metric": metric, "split": split,
            "direction": DIRECTIONS[metric], "entries": entries,
            "unranked": [entry(run, None) for run in unranked[:limit]],
            # what the whole board holds, also when `limit` shows only its top
            "counts": {"ranked": len(ranked), "unranked": len(unranked),
                       "live": sum(1 for run in runs if run.status in ACTIVE_STATUSES)},
            "dataset_ids": dataset_ids,
            "network_runs": any(run.algorithm == NETWORK_ALGORITHM for run in runs),
        }
