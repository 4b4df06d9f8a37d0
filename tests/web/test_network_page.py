"""A network's page (`/networks/<id>`) as the server renders it, before any script runs."""

from __future__ import annotations

import html as html_lib
import io
import json
import re
import time

import pytest

from livetrain.store import Run
from tests.helpers import create_network, start_run, wait_for_run

CONV_LAYERS = [
    {"type": "Conv2d", "out_channels": 4, "kernel_size": 3},
    {"type": "ReLU"},
    {"type": "MaxPool2d", "kernel_size": 2},
    {"type": "Flatten"},
    {"type": "Dropout", "p": 0.25},
    {"type": "Linear", "out_features": 10},
]


def _page(client, network_id: str, query: str = "") -> str:
    response = client.get(f"/networks/{network_id}{query}")
    assert response.status_code == 200
    assert response.mimetype == "text/html"
    return response.get_data(as_text=True)


def _text(fragment: str) -> str:
    """What a reader sees of some markup: tags dropped, entities decoded, spaces collapsed."""
    text = " ".join(html_lib.unescape(re.sub(r"<[^>]+>", " ", fragment)).split())
    return re.sub(r" ([,.;:])", r"\1", text)


def _between(html: str, start: str, end: str) -> str:
    match = re.search(re.escape(start) + r"(.*?)" + re.escape(end), html, re.S)
    assert match, f"the page has {start!r} … {end!r}"
    return match.group(1)


def _state(html: str) -> dict:
    return json.loads(_between(html, '<script id="network-state" type="application/json">', "</script>"))


def _layer_rows(html: str) -> list[list[str]]:
    body = _between(html, '<table class="layers-table">', "</table>")
    rows = re.findall(r'<tr data-layer="\d+">(.*?)</tr>', body, re.S)
    return [[_text(cell) for cell in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)] for row in rows]


def _shown(html: str, element_id: str) -> bool:
    """Whether the element with this id is rendered without `hidden`."""
    tag = re.search(rf'<[a-z]+[^>]* id="{element_id}"[^>]*>', html)
    assert tag, f"the page has #{element_id}"
    return " hidden" not in tag.group(0)


def _add_run(app, network: dict, status: str, *, created_at: float, checkpoint_epoch: int | None = None,
             total_epochs: int = 10) -> Run:
    """A run stored as it would be after training ended that way (no worker needed)."""
    run = Run(id=f"r{time.monotonic_ns() % 10**11:011d}", network_id=network["network_id"],
              dataset_id=network["dataset_id"], status=status, algorithm="network", total_epochs=total_epochs,
              epochs_done=checkpoint_epoch or 0, experiment_id="default", created_at=created_at,
              checkpoint_path=f"networks/x/checkpoint-{checkpoint_epoch}.pt" if checkpoint_epoch else None,
              checkpoint_epoch=checkpoint_epoch)
    return app.extensions["livetrain"].store.create_run(run)


# -- architecture -----------------------------------------------------------------------------


def test_layer_table_of_a_layers_network_shows_each_layer_and_sums_to_the_parameter_count(client):
    network = create_network(client, dataset_id="digits", layers=CONV_LAYERS, name="conv-digits")
    html = _page(client, network["network_id"])

    rows = _layer_rows(html)
    assert [row[1] for row in rows] == ["Conv2d(4, 3×3)", "ReLU", "MaxPool2d(2)", "Flatten", "Dropout(0.25)",
                                        "Linear(10)"]
    assert [row[2] for row in rows] == ["4 × 6 × 6", "4 × 6 × 6", "4 × 3 × 3", "36", "36", "10"]
    parameters = [int(n) for n in re.findall(r'data-parameters="(\d+)"', html)]
    assert parameters == [layer["parameters"] for layer in network["layers"]] == [40, 0, 0, 0, 0, 370]
    assert sum(parameters) == network["parameter_count"]
    assert _text(_between(html, 'id="layers-total">', "</td>")) == f"{network['parameter_count']:,}"
    # a convolutional network receives images: the input row says channels × height × width
    assert "Input 1 × 8 × 8" in _text(_between(html, '<tr class="input-row">', "</tr>"))
    # a layers network trains with a choice of optimizer, its own selected
    assert '<option value="adam" selected>Adam</option>' in html
    assert 'value="0.001"' in _between(html, 'id="train-rate"', ">")


def test_layer_table_of_a_layer_sizes_network_includes_its_sigmoids(client):
    network = create_network(client, dataset_id="digits", layer_sizes=[64, 20, 10], name="plain-digits")
    html = _page(client, network["network_id"])

    assert _layer_rows(html) == [["1", "Linear", "20", "1,300"], ["2", "Sigmoid", "20", "0"],
                                 ["3", "Linear", "10", "210"], ["4", "Sigmoid", "10", "0"]]
    assert "Input 64" in _text(_between(html, '<tr class="input-row">', "</tr>"))
    assert _text(_between(html, 'id="layers-total">', "</td>")) == "1,510" == f"{network['parameter_count']:,}"
    header = _text(_between(html, '<section class="section network-head"', "</section>"))
    assert "plain-digits" in header and network["network_id"] in header
    assert "64 → 20 → 10" in header and "1,510" in header and "none yet" in header
    assert 'href="/datasets/digits"' in html
    # plain SGD only: no optimizer to choose, the original learning rate and mini-batch size
    assert 'name="optimizer"' not in html
    assert 'value="3.0"' in _between(html, 'id="train-rate"', ">")
    assert 'value="10"' in _between(html, 'id="train-batch"', ">")


# -- before and after training ---------------------------------------------------------------


def test_a_new_network_says_what_is_missing(client):
    network = create_network(client, dataset_id="digits", layer_sizes=[64, 10, 10])
    html = _page(client, network["network_id"])

    assert 'data-status="created">created</span>' in html
    assert "No runs yet" in _text(_between(html, '<div id="run-panel"', "</h3>"))
    assert "No trained version yet" in _text(_between(html, '<div id="gallery">', "</section>"))
    assert _shown(html, "versions-empty") and not _shown(html, "versions-table")
    assert "No runs yet: train the network" in html
    state = _state(html)
    assert state["panel_run"] is None and state["resumable"] is None and state["versions"] == []


def test_versions_gallery_and_run_after_a_completed_run(client):
    network = create_network(client, dataset_id="digits", layer_sizes=[64, 20, 10])
    network_id = network["network_id"]
    run = wait_for_run(client, start_run(client, network_id, epochs=2)["run_id"])
    assert run["status"] == "completed"
    html = _page(client, network_id)

    # header
    assert 'data-status="trained">trained</span>' in html
    assert _text(_between(html, 'id="network-version">', "</dd>")) == "v1"
    assert _text(_between(html, 'id="network-accuracy">', "</dd>")) == f"{run['accuracy'] * 100:.1f}%"

    # versions: one row, with its numbers, its run and its weights
    versions = _between(html, '<tbody id="versions">', "</tbody>")
    row = _text(versions)
    assert row.startswith("v1 current")
    assert f"{run['accuracy'] * 100:.1f}%" in row and " 2 " in row
    assert f'href="/runs/{run["run_id"]}"' in versions
    weights = f"/api/networks/{network_id}/versions/1/weights"
    assert f'href="{weights}"' in versions
    with client.get(weights) as download:
        assert download.status_code == 200 and len(download.data) > 1000
    assert _shown(html, "versions-table") and not _shown(html, "versions-empty")

    # the panel shows the finished run and what it came to
    panel = _between(html, '<div id="run-panel"', '<div class="chart-box">')
    assert run["run_id"] in panel and "Latest run" in _text(panel)
    result = _text(_between(html, 'data-field="result" role="status">', "</p>"))
    assert result == f"Completed: version v1, held-out accuracy {run['accuracy'] * 100:.1f}%."
    assert "2 / 2 epochs" in _text(_between(html, 'data-bar="run">', "</div>\n      </div>"))

    # the gallery: the stored examples, as images with alt text, predicted vs actual, outputs
    gallery = _between(html, '<div id="gallery">', "</section>")
    for kind in ("right", "wrong"):
        examples = client.get(f"/api/networks/{network_id}/examples?kind={kind}").get_json()["examples"]
        cards = re.findall(rf'<li class="example" data-kind="{kind}".*?</li>\s*</ol>\s*</li>', gallery, re.S)
        assert len(cards) == len(examples) > 0
        first, card = examples[0], cards[0]
        alt = f"digit {first['actual_digit']} predicted as {first['predicted_digit']}"
        assert f'alt="{alt}"' in card
        assert f'src="data:image/png;base64,{first["image_data"]}"' in card
        assert f"predicted {first['predicted_digit']}, actual {first['actual_digit']}" in _text(card)
        outputs = re.findall(r'<span class="out-value">([\d.]+)', card)
        assert outputs == [f"{v:.3f}" for v in first["network_output"]]
        predicted = re.search(r'<li class="predicted">\s*<span class="out-label">(\d+)</span>', card)
        assert predicted and int(predicted.group(1)) == first["predicted_digit"]
    assert "Right (" in _text(gallery) and "Wrong (" in _text(gallery)

    # the run is in the runs table; nothing to resume after a completed run
    assert f'<tr data-run-id="{run["run_id"]}" data-status="completed">' in html
    assert _state(html)["resumable"] is None
    assert ' data-action="resume" data-run-id=""' in html


def test_gallery_of_a_table_dataset_shows_class_labels_and_inputs(client):
    rows = ["width,height,label"] + [f"{i % 7 - 3},{(i * 3) % 5},{'wide' if i % 7 > 3 else 'tall'}"
                                       for i in range(80)]
    upload = client.post("/api/datasets", data={"file": (io.BytesIO("\n".join(rows).encode()), "shapes.csv"),
                                                "target": "label"}, content_type="multipart/form-data")
    assert upload.status_code == 201, upload.get_json()
    dataset = upload.get_json()
    network = create_network(client, dataset_id=dataset["id"], layer_sizes=[2, 4, 2])
    wait_for_run(client, start_run(client, network["network_id"], epochs=2)["run_id"])
    html = _page(client, network["network_id"])

    gallery = _between(html, '<div id="gallery">', "</section>")
    assert "<img" not in gallery
    examples = client.get(f"/api/networks/{network['network_id']}/examples?kind=right").get_json()["examples"]
    card = re.search(r'<li class="example" data-kind="right".*?</ol>', gallery, re.S).group(0)
    labels = dataset["meta"]["classes"]
    text = _text(card)
    assert f"predicted {labels[examples[0]['predicted_digit']]}, actual {labels[examples[0]['actual_digit']]}" in text
    assert re.search(r"width -?[\d.]+(e[-+]\d+)? height -?[\d.]+", text), text
    assert [_text(label) for label in re.findall(r'<span class="out-label">(.*?)</span>', card)] == labels


# -- resume, runs, errors -------------------------------------------------------------------------


def test_resume_is_offered_for_the_latest_stopped_run_with_a_checkpoint(app, client):
    network = create_network(client, dataset_id="digits", layer_sizes=[64, 10, 10])
    now = time.time()
    _add_run(app, network, "cancelled", created_at=now - 30, checkpoint_epoch=2)
    stopped = _add_run(app, network, "interrupted", created_at=now - 20, checkpoint_epoch=4)
    _add_run(app, network, "cancelled", created_at=now - 10)  # stopped while queued: nothing kept
    html = _page(client, network["network_id"])

    assert f' data-action="resume" data-run-id="{stopped.id}"' in html
    hint = _text(_between(html, 'data-field="resume_hint">', "</p>"))
    assert hint == f"Resume continues run {stopped.id} from its checkpoint at epoch 4, up to epoch 10."
    assert _state(html)["resumable"]["run_id"] == stopped.id

    _add_run(app, network, "completed", created_at=now)  # a newer version: the old checkpoint is not offered
    html = _page(client, network["network_id"])
    assert _state(html)["resumable"] is None
    assert re.search(r'data-action="resume" data-run-id=""\s+aria-describedby="resume-hint" hidden>', html)


def test_runs_are_paginated_newest_first(app, client):
    network = create_network(client, dataset_id="digits", layer_sizes=[64, 10, 10])
    now = time.time()
    runs = [_add_run(app, network, "cancelled", created_at=now - 100 + i) for i in range(12)]
    newest_first = [r.id for r in reversed(runs)]

    first = _page(client, network["network_id"])
    shown = re.findall(r'<tr data-run-id="(\w+)"', _between(first, "<tbody data-runs>", "</tbody>"))
    assert shown == newest_first[:10]
    pager = _text(_between(first, '<nav class="pager"', "</nav>"))
    assert "1–10 of 12 · page 1 of 2" in pager
    assert f'href="/networks/{network["network_id"]}?runs_page=2" rel="next"' in first
    assert _state(first)["first_page"] is True

    second = _page(client, network["network_id"], "?runs_page=2")
    shown = re.findall(r'<tr data-run-id="(\w+)"', _between(second, "<tbody data-runs>", "</tbody>"))
    assert shown == newest_first[10:]
    assert "11–12 of 12 · page 2 of 2" in _text(_between(second, '<nav class="pager"', "</nav>"))
    assert _state(second)["first_page"] is False
    # the panel always shows the newest run, whatever page of the table is open
    assert f'data-run-id="{newest_first[0]}"' in _between(second, '<div id="run-panel"', ">")


@pytest.mark.parametrize("network_id", ["nope", "0123456789ab"])
def test_unknown_network_is_a_404_page_that_says_so(client, network_id):
    response = client.get(f"/networks/{network_id}")
    assert response.status_code == 404
    html = response.get_data(as_text=True)
    assert "<h1>Not found</h1>" in html
    assert _text(_between(html, 'role="alert">', "</p>")) == f"no network '{network_id}'"
