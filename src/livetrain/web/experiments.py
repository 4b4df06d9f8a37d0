"""Experiment pages: the list, and one experiment's new-run form, leaderboard and overlay chart."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from flask import render_template, request

from livetrain.services.experiments import SPLITS
from livetrain.training.metrics import DIRECTIONS
from livetrain.web import bp, page_of, svc

EXPERIMENTS_PER_PAGE = 20
RUNS_PER_PAGE = 20
CHART_RUNS = 8  # the overlay chart draws the leaderboard's top runs, plus every live one
BOARD_ROWS = 50  # the leaderboard shows the 50 best (and the 50 oldest unranked); `counts` tells the rest

# The leaderboard's metrics by who computes them (docs/api.md#leaderboard), in the picker's order.
METRIC_GROUPS = {
    "classification": ["accuracy", "precision", "recall", "f1", "log_loss", "roc_auc"],
    "regression": ["r2", "mae", "rmse"],
    "factorization": ["factorized"],
    "network": ["loss"],
}
METRIC_GROUP = {metric: group for group, metrics in METRIC_GROUPS.items() for metric in metrics}
GROUP_LABELS = {"classification": "Classification", "regression": "Regression",
                "factorization": "Factorization data", "network": "Network runs"}
SPLIT_LABELS = {"train": "train", "val": "validation", "test": "test"}
ENDED = {"failed", "cancelled", "interrupted"}


@bp.app_template_filter("metric_value")
def metric_value(value: float | None) -> str:
    """A metric to 4 significant digits, written as static/js/experiment.js writes it (JavaScript's String)."""
    if value is None:
        return "—"
    rounded = float(f"{value:.4g}")
    if rounded.is_integer() and abs(rounded) < 1e21:
        return str(int(rounded))
    if 1e-6 <= abs(rounded) < 1e21:
        return format(Decimal(repr(rounded)), "f")
    return re.sub(r"e([+-])0+(\d)", r"e\1\2", repr(rounded))  # 1e-07 -> 1e-7, as JavaScript writes it


@bp.app_template_filter("rank_place")
def rank_place(rank: int) -> str:
    """A leaderboard rank in words: 1st place, 2nd place, ..., 11th place, 21st place."""
    suffix = "th" if 10 <= rank % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(rank % 10, "th")
    return f"{rank}{suffix} place"


@bp.get("/experiments")
def experiments_page():
    """Every experiment (paginated, newest first) and a form to create one."""
    livetrain = svc()
    page = page_of("page", EXPERIMENTS_PER_PAGE, livetrain.store.count_experiments())
    experiments = livetrain.store.list_experiments(limit=page.size, offset=page.offset)
    return render_template("experiments.html", experiments=[livetrain.experiments.describe(e) for e in experiments],
                           page=page)


def dataset_facts(summary: dict[str, Any]) -> dict[str, Any]:
    """What the experiment page needs to know about a dataset: task, splits, targets."""
    meta = summary.get("meta") or {}
    return {"id": summary["id"], "name": summary["name"], "task": summary["task"], "n_train": summary["n_train"],
            "n_val": summary["n_val"], "n_test": summary["n_test"], "n_outputs": meta.get("n_outputs") or 1,
            "factorization": meta.get("generator") == "factorization"}


def preferred_split(datasets: list[dict[str, Any] | None]) -> str:
    """`val` when every run's dataset has a validation split (uploaded, generated), else `test` (built-ins).

    Runs report each step on exactly that split, so it is the one every run has a value on
    while it trains; a built-in dataset has no validation split at all.
    """
    known = [d for d in datasets if d]
    return "val" if known and all(d["n_val"] > 0 for d in known) else "test"


def metric_groups(datasets: list[dict[str, Any] | None], has_network_runs: bool) -> list[str]:
    """The groups of METRIC_GROUPS that apply to the runs' datasets (all but `network` when there is no run)."""
    known = [d for d in datasets if d]
    if not known:
        return ["classification", "regression"]
    groups = [task for task in ("classification", "regression") if any(d["task"] == task for d in known)]
    if any(d["factorization"] for d in known):
        groups.append("factorization")
    if has_network_runs:
        groups.append("network")
    return groups


def unranked_reason(entry: dict[str, Any], board: dict[str, Any], dataset: dict[str, Any] | None) -> str:
    """Why a run has no value on the leaderboard (static/js/experiment.js says the same)."""
    status, metric, split = entry["status"], board["metric"], board["split"]
    if status == "queued":
        return "not started yet"
    if status in ENDED:
        return f"ended {status}"
    if split == "val" and dataset and dataset["n_val"] == 0:
        return f"{dataset['name']} has no validation split"
    group = METRIC_GROUP.get(metric)
    if dataset and group in ("classification", "regression") and group != dataset["task"]:
        return f"{metric} is a {group} metric; {dataset['name']} is {dataset['task']}"
    if group == "network" and entry["algorithm"] != "network":
        return f"{metric} is reported by network runs only"
    if group == "factorization" and dataset and not dataset["factorization"]:
        return f"{metric} needs factorization data"
    if status == "running":
        return f"no {metric} on the {SPLIT_LABELS[split]} split yet"
    return f"no {metric} on the {SPLIT_LABELS[split]} split"


def ranking(experiment_id: str, datasets: dict[str, dict[str, Any]]) -> tuple[dict[str, Any], list[str], bool]:
    """The leaderboard `?metric=` and `?split=` ask for (a bad value is ignored), the metric groups that
    apply, and whether the split was asked for.

    Without `?split=` the split is the one every run reports on while it trains
    (`preferred_split`); GET /api/experiments/{id}/leaderboard's own default is `test`.
    """
    experiments = svc().experiments
    metric = request.args.get("metric") if request.args.get("metric") in DIRECTIONS else None
    asked_split = request.args.get("split") if request.args.get("split") in SPLITS else None
    run_datasets = [datasets.get(i) for i in svc().store.run_dataset_ids(experiment_id)]
    split = asked_split or preferred_split(run_datasets)
    board = experiments.leaderboard(experiment_id, metric, split, BOARD_ROWS)
    for entry in board["unranked"]:
        entry["reason"] = unranked_reason(entry, board, datasets.get(entry["dataset_id"]))
    groups = metric_groups(run_datasets, board["network_runs"])
    return board, groups, asked_split is not None


def network_choice(network) -> dict[str, Any]:
    """A network as the new-run form offers it, with the defaults its training would use."""
    return {"network_id": network.id, "name": network.name, "dataset_id": network.dataset_id, "kind": network.kind,
            "learning_rate": network.spec.get("learning_rate"), "optimizer": network.spec.get("optimizer"),
            "mini_batch_size": 10 if network.kind == "layer_sizes" else 32}


@bp.get("/experiments/<experiment_id>")
def experiment_page(experiment_id: str):
    """One experiment: start runs, rank them, compare their curves."""
    from livetrain.training.algorithms import NETWORK_RUNS, catalog

    livetrain = svc()
    store = livetrain.store
    experiment = livetrain.experiments.get(experiment_id)
    datasets = {d.id: dataset_facts(livetrain.datasets.summary(d)) for d in livetrain.datasets.list()}
    board, groups, split_chosen = ranking(experiment.id, datasets)
    run_page = page_of("runs_page", RUNS_PER_PAGE, store.count_runs(experiment_id=experiment.id))
    runs = store.list_runs(experiment_id=experiment.id, limit=run_page.size, offset=run_page.offset)
    # the new-run form starts on the dataset this experiment last trained on, else the server's default
    newest = store.list_runs(experiment_id=experiment.id, limit=1)
    selected = newest[0].dataset_id if newest and newest[0].dataset_id in datasets else livetrain.datasets.default_id()
    algorithms = catalog()
    return render_template(
        "experiment.html",
        experiment=livetrain.experiments.describe(experiment),
        leaderboard=board, split_chosen=split_chosen,
        metric_groups=groups, all_metric_groups=METRIC_GROUPS, group_labels=GROUP_LABELS,
        directions=DIRECTIONS, split_labels=SPLIT_LABELS, chart_runs=CHART_RUNS, board_rows=BOARD_ROWS,
        runs=[r.to_dict() for r in runs], run_page=run_page,
        algorithms=algorithms, network_runs=NETWORK_RUNS, algorithm_index={a["key"]: a for a in algorithms},
        datasets=list(datasets.values()), dataset_index=datasets, selected_dataset=selected,
        networks=[network_choice(n) for n in store.list_networks()],
    )
