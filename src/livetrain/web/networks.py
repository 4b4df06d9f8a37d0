"""A network's page: architecture, versions, training, live chart, runs, right and wrong predictions; and its
builder page, where its layers and heads are edited."""

from __future__ import annotations

import math
from dataclasses import fields
from typing import Any

from flask import render_template

from livetrain.api.networks import network_summary
from livetrain.concurrency import run_blocking
from livetrain.errors import LivetrainError
from livetrain.store import Dataset, Network, RunStatus
from livetrain.web import bp, page_of, svc

RUNS_PER_PAGE = 10
REVISIONS_SHOWN = 20  # the builder lists the latest revisions; GET /api/networks/{id}/revisions has them all
FEATURES_SHOWN = 8  # a card shows the first few input values of a table row, then says how many more
RESUMABLE = (RunStatus.CANCELLED.value, RunStatus.INTERRUPTED.value)
IMAGE_LAYERS = {"conv2d", "maxpool2d", "batchnorm2d"}  # a network with one of these gets images, others flat rows


@bp.get("/networks/<network_id>")
def network_page(network_id: str):
    """One network, with what it is, how it did and a form to train it again."""
    livetrain = svc()
    store = livetrain.store
    network = livetrain.networks.get(network_id)
    dataset = store.get_dataset(network.dataset_id)
    active = livetrain.runs.active_for_network(network_id)
    latest = active or next(iter(store.list_runs(network_id=network_id, limit=1)), None)
    run_page = page_of("runs_page", RUNS_PER_PAGE, store.count_runs(network_id=network_id))
    runs = store.list_runs(network_id=network_id, limit=run_page.size, offset=run_page.offset)
    return render_template(
        "network.html",
        network={**network_summary(network), "spec": network.spec, "layers": network.layer_table},
        dataset=dataset.to_dict() if dataset else None,
        input_shape=input_shape(network, dataset),
        versions=[v.to_dict() for v in store.list_versions(network_id)],
        active_run=active.to_dict() if active else None,
        panel_run=latest.to_dict() if latest else None,
        resumable=resumable_run(network_id),
        runs=[r.to_dict() for r in runs], run_page=run_page,
        examples=gallery(network, dataset),
        max_epochs=livetrain.settings.max_epochs,
    )


def input_shape(network: Network, dataset: Dataset | None) -> list[int] | None:
    """What the network's first layer receives: channels x height x width, or a flat row of features."""
    if dataset is None:
        return None
    layers = network.spec.get("layers") or []
    if any(str(layer.get("type", "")).lower() in IMAGE_LAYERS for layer in layers):
        return list(dataset.input_shape)
    return [dataset.n_features]


def resumable_run(network_id: str) -> dict[str, Any] | None:
    """The run a Resume button continues: the newest cancelled or interrupted run with a checkpoint,
    unless a run completed after it (that version is newer than the checkpoint)."""
    ended = (RunStatus.COMPLETED.value, *RESUMABLE)
    for run in svc().store.list_runs(network_id=network_id, statuses=ended, limit=20):
        if run.status == RunStatus.COMPLETED.value:
            return None
        if run.checkpoint_path is not None:
            network = svc().store.get_network(network_id)
            trained = run.repro.get("spec")
            # a checkpoint of layers edited since no longer fits: the network trains from fresh weights
            stale = network is not None and trained is not None and trained != network.spec
            return None if stale else run.to_dict()
    return None


def gallery(network: Network, dataset: Dataset | None) -> dict[str, list[dict[str, Any]]]:
    """The latest version's right and wrong held-out predictions, ready to show: class labels,
    output bars and, for rows that are not images, the input values the network saw."""
    if not network.current_version:
        return {"right": [], "wrong": []}
    examples = {kind: svc().networks.examples(network.id, kind) for kind in ("right", "wrong")}
    classes = (dataset.meta.get("classes") if dataset else None) or None
    inputs = _test_inputs(dataset) if any(examples.values()) else None
    for items in examples.values():
        for example in items:
            _decorate(example, classes, network.spec.get("loss", ""), inputs, dataset)
    return examples


def _test_inputs(dataset: Dataset | None):
    """The test rows of a dataset that is not images (examples index them), or None."""
    if dataset is None or len(dataset.input_shape) == 3:
        return None
    try:
        return run_blocking(svc().datasets.arrays, dataset).X_test
    except LivetrainError:  # its files are gone: the cards show predictions without inputs
        return None


def _decorate(example: dict[str, Any], classes: list | None, loss: str, inputs, dataset: Dataset | None) -> None:
    """Add what a card shows: class labels, output bars and the input values of a table row."""
    def label(index: int) -> str:
        return str(classes[index]) if classes and 0 <= index < len(classes) else str(index)

    outputs = example.get("network_output") or []
    example["predicted_label"] = label(example["predicted_digit"])
    example["actual_label"] = label(example["actual_digit"])
    example["bars"] = [{"label": label(i), "value": value, "width": width}
                       for i, (value, width) in enumerate(zip(outputs, _bar_widths(outputs, loss)))]
    if inputs is not None and 0 <= example["example_index"] < len(inputs):
        row = inputs[example["example_index"]]
        names = (dataset.meta.get("feature_names") if dataset else None) or [f"x{i}" for i in range(len(row))]
        example["features"] = [{"name": str(n), "value": float(v)} for n, v in zip(names, row[:FEATURES_SHOWN])]
        example["more_features"] = max(0, len(row) - FEATURES_SHOWN)


def _bar_widths(outputs: list[float], loss: str) -> list[float]:
    """Bar lengths in percent: logits (cross-entropy) as their softmax share, other outputs
    (sigmoids of a layer_sizes network, MSE outputs) as they are, clipped to [0, 1]."""
    if not outputs:
        return []
    if loss != "cross_entropy":
        return [100.0 * min(1.0, max(0.0, v)) for v in outputs]
    top = max(outputs)
    exps = [math.exp(v - top) for v in outputs]
    total = sum(exps)
    return [100.0 * e / total for e in exps]


@bp.get("/networks/<network_id>/builder")
def builder_page(network_id: str):
    """The builder: a network's layers and heads in order, to add, edit, remove and reorder while it is idle."""
    livetrain = svc()
    network = livetrain.networks.get(network_id)
    dataset = livetrain.store.get_dataset(network.dataset_id)
    active = livetrain.runs.active_for_network(network_id)
    revisions = livetrain.networks.revisions(network_id)
    return render_template(
        "builder.html",
        network={**network_summary(network), "spec": network.spec},
        dataset=dataset.to_dict() if dataset else None,
        input_shape=input_shape(network, dataset),
        structure=livetrain.networks.structure(network_id),
        revisions=[r.to_dict() for r in reversed(revisions[-REVISIONS_SHOWN:])],
        active_run=active.to_dict() if active else None,
        catalog=layer_catalog(),
        heads=head_catalog(),
    )


def layer_catalog() -> dict[str, list[dict[str, Any]]]:
    """Every layer type the spec parser takes, with its parameters (kind, required, default, choices), for the
    builder's forms."""
    from livetrain.training import spec

    choices = getattr(spec, "CHOICES", {})
    return {kind: [{"name": name, "kind": ptype, "required": required, "default": default,
                    "choices": list(choices.get((kind, name), ()))}
                   for name, (ptype, required, default) in params.items()]
            for kind, params in spec.LAYER_PARAMS.items()}


def head_catalog() -> dict[str, Any] | None:
    """The tasks and losses a head takes, or None when this server's specs have no heads."""
    from livetrain.training import spec

    if "heads" not in {f.name for f in fields(spec.NetworkSpec)}:
        return None
    return {"tasks": list(getattr(spec, "HEAD_TASKS", ())), "losses": list(getattr(spec, "HEAD_LOSSES", ()))}
