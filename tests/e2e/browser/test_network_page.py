"""A network's page in a real browser: train and watch it, stop and resume, reconnect, bad input, phone width."""

from __future__ import annotations

import re
import uuid

from playwright.sync_api import expect

from tests.e2e.helpers import wait_until

SERIES = 3  # training loss, held-out loss, held-out accuracy: one point each per epoch
# Slower epochs than a layer_sizes network's (torch steps of 4 rows): long enough for training_progress events.
LINEAR_LAYERS = [{"type": "Linear", "out_features": 32}, {"type": "ReLU"}, {"type": "Linear", "out_features": 10}]
TRAINING = 90_000  # ms to wait for what depends on training: generous, for a busy 2-core machine
CHART_DATA = """() => Chart.getChart(document.getElementById('training-chart')).data.datasets
                  .map((d) => ({label: d.label, xs: d.data.map((p) => p.x)}))"""


def _network(web_server, **body) -> dict:
    body = {"dataset_id": "digits", "layer_sizes": [64, 20, 10], "name": f"page-{uuid.uuid4().hex[:6]}", **body}
    if "layers" in body:
        body.pop("layer_sizes")
    return web_server.api.post("/api/networks", body, expect=201)


def _open(page, network: dict):
    page.goto(f"/networks/{network['network_id']}")
    expect(page.locator("#connection")).to_have_text("Live")


def _points(page) -> int:
    return int(page.locator("#training-chart").get_attribute("data-points"))


def _wait_for_points(page, at_least: int) -> None:
    page.wait_for_function("n => Number(document.getElementById('training-chart').dataset.points) >= n",
                           arg=at_least, timeout=TRAINING)


def test_train_a_network_watch_its_chart_then_see_its_predictions(page, web_server, screenshot):
    network = _network(web_server)
    _open(page, network)
    expect(page.locator("#gallery")).to_contain_text("No trained version yet")
    expect(page.locator("#versions-empty")).to_be_visible()

    page.fill("#train-epochs", "4")
    page.click('#train-form button[data-action="train"]')
    panel = page.locator("#run-panel")
    expect(panel.locator('[data-field="status"]')).to_have_text("completed", timeout=TRAINING)
    expect(page.locator("#training-chart")).to_have_attribute("data-points", str(4 * SERIES))
    run_bar = panel.locator('[data-bar="run"] [data-field="progress"]')
    expect(run_bar).to_have_attribute("aria-valuenow", "100.0")
    expect(panel.locator('[data-bar="run"] [data-field="progress_text"]')).to_have_text("4 / 4 epochs")
    expect(panel.locator('[data-field="epoch_progress"]')).to_have_attribute("aria-valuenow", "100.0")
    expect(panel.locator('[data-field="result"]')).to_have_text(
        re.compile(r"^Completed: version v1, held-out accuracy \d+\.\d%\.$"))
    for dataset in page.evaluate(CHART_DATA):
        assert dataset["xs"] == [1, 2, 3, 4], dataset

    # the network, its versions and its gallery follow without a reload
    expect(page.locator("#network-status")).to_have_text("trained")
    expect(page.locator("#network-version")).to_have_text("v1")
    expect(page.locator("#network-accuracy")).to_have_text(re.compile(r"^\d+\.\d%$"))
    version = page.locator("#versions tr")
    expect(version).to_have_count(1)
    expect(version).to_contain_text("v1")
    expect(version.locator('[data-field="weights"]')).to_have_attribute(
        "href", f"/api/networks/{network['network_id']}/versions/1/weights")
    right = page.locator('#gallery .example[data-kind="right"] img')
    wrong = page.locator('#gallery .example[data-kind="wrong"] img')
    expect(right.first).to_be_visible()
    expect(right.first).to_have_attribute("alt", re.compile(r"^digit (\d) predicted as \1$"))
    expect(wrong.first).to_have_attribute("alt", re.compile(r"^digit (\d) predicted as (?!\1)\d$"))
    assert right.first.evaluate("img => img.decode().then(() => img.naturalWidth)") == 8  # a real 8×8 PNG
    expect(page.locator('#gallery .example[data-kind="wrong"] .outputs li.predicted').first).to_be_visible()
    page.locator("#gallery-heading").scroll_into_view_if_needed()
    screenshot(page, "network-gallery")


def test_stop_a_long_run_with_the_stop_button_then_resume_it(page, web_server, screenshot):
    network = _network(web_server, layers=LINEAR_LAYERS)
    _open(page, network)
    page.fill("#train-epochs", "300")
    page.fill("#train-batch", "1")  # 1,437 mini-batches: epochs long enough to report progress inside
    page.click('#train-form button[data-action="train"]')
    panel = page.locator("#run-panel")
    expect(panel.locator('[data-field="panel_title"]')).to_have_text("Current run")
    expect(page.locator('#train-form button[data-action="train"]')).to_be_disabled()

    # the chart grows epoch by epoch; both bars move
    _wait_for_points(page, SERIES)
    _wait_for_points(page, _points(page) + SERIES)
    epoch_text = panel.locator('[data-field="epoch_text"]')
    expect(epoch_text).to_contain_text(re.compile(r"^epoch \d+: batch [\d,]+ of 1,437$"), timeout=TRAINING)
    expect(panel.locator('[data-bar="run"] [data-field="progress"]')).not_to_have_attribute("aria-valuenow", "0.0")
    expect(panel.locator('[data-bar="run"] [data-field="progress_text"]')).to_contain_text(re.compile(r"of 300"))
    _wait_for_points(page, 4 * SERIES)  # a few epochs make a chart worth a picture
    screenshot(page, "network")

    first_run = panel.get_attribute("data-run-id")
    panel.locator('button[data-action="stop"]').click()
    expect(panel.locator('[data-field="status"]')).to_have_text("cancelled", timeout=TRAINING)
    expect(panel.locator('[data-field="result"]')).to_have_text(
        re.compile(r"^Stopped after epoch (\d+); its checkpoint \(epoch \1\) can be resumed\.$"))
    resume = page.locator('#train-form button[data-action="resume"]')
    expect(resume).to_be_visible()
    expect(page.locator("#resume-hint")).to_contain_text(f"Resume continues run {first_run} from its checkpoint")
    expect(page.locator('#train-form button[data-action="train"]')).to_be_enabled()
    expect(page.locator("#network-status")).to_have_text("created")
    expect(page.locator(f'tbody[data-runs] tr[data-run-id="{first_run}"] [data-field="status"]')).to_have_text(
        "cancelled")

    resume.click()
    expect(panel).not_to_have_attribute("data-run-id", first_run)
    expect(panel.locator('[data-bar="run"] [data-field="progress_text"]')).to_contain_text("resumed from epoch",
                                                                                         timeout=TRAINING)
    expect(resume).to_be_hidden()
    panel.locator('button[data-action="stop"]').click()
    expect(panel.locator('[data-field="status"]')).to_have_text("cancelled", timeout=TRAINING)
    expect(page.locator("tbody[data-runs] tr")).to_have_count(2)


def test_a_run_started_by_a_script_and_a_reconnect_leave_one_point_per_epoch(page, web_server):
    api = web_server.api
    network = _network(web_server)
    _open(page, network)
    panel = page.locator("#run-panel")
    expect(panel.locator('[data-field="panel_title"]')).to_have_text("No runs yet")

    # a run started elsewhere takes over the panel
    run_id = api.post(f"/api/networks/{network['network_id']}/train", {"epochs": 300, "mini_batch_size": 1},
                      expect=202)["run_id"]
    expect(panel).to_have_attribute("data-run-id", run_id)
    _wait_for_points(page, SERIES)

    page.evaluate("livetrain.connection.socket.disconnect()")
    expect(page.locator("#connection")).to_have_text(re.compile("Offline"))
    seen = _points(page) // SERIES
    stored = wait_until(lambda: (n := api.get(f"/api/runs/{run_id}")["epochs_done"]) >= seen + 3 and n,
                        timeout=TRAINING / 1000, what="three more stored epochs")
    page.evaluate("livetrain.connection.socket.connect()")
    expect(page.locator("#connection")).to_have_text("Live")
    _wait_for_points(page, stored * SERIES)

    api.post(f"/api/runs/{run_id}/cancel")
    expect(panel.locator('[data-field="status"]')).to_have_text("cancelled", timeout=TRAINING)
    epochs = api.get(f"/api/runs/{run_id}")["epochs_done"]
    expect(page.locator("#training-chart")).to_have_attribute("data-points", str(epochs * SERIES))
    datasets = page.evaluate(CHART_DATA)
    assert [d["label"] for d in datasets] == ["training loss", "held-out loss", "held-out accuracy"]
    for dataset in datasets:
        assert dataset["xs"] == list(range(1, epochs + 1)), dataset["label"]


# Events lost while the socket stays up (a message queue restarting between server nodes): the
# socket.io client's packets are dropped until `window.dropEvents` is false again.
DROP_EVENTS = """() => {
  const socket = livetrain.connection.socket, deliver = socket.onevent.bind(socket);
  window.dropEvents = true;
  socket.onevent = (packet) => { if (!window.dropEvents) deliver(packet); };
}"""


def test_events_lost_while_connected_are_fetched_when_the_next_one_skips_a_seq(page, web_server):
    api = web_server.api
    network = _network(web_server)
    _open(page, network)
    run_id = api.post(f"/api/networks/{network['network_id']}/train", {"epochs": 300, "mini_batch_size": 1},
                      expect=202)["run_id"]
    _wait_for_points(page, SERIES)

    page.evaluate(DROP_EVENTS)
    seen = _points(page) // SERIES
    wait_until(lambda: api.get(f"/api/runs/{run_id}")["epochs_done"] >= seen + 3, timeout=TRAINING / 1000,
               what="three more stored epochs")
    expect(page.locator("#connection")).to_have_text("Live")  # the socket never went down
    page.evaluate("window.dropEvents = false")

    api.post(f"/api/runs/{run_id}/cancel")
    expect(page.locator("#run-panel").locator('[data-field="status"]')).to_have_text("cancelled", timeout=TRAINING)
    epochs = api.get(f"/api/runs/{run_id}")["epochs_done"]
    expect(page.locator("#training-chart")).to_have_attribute("data-points", str(epochs * SERIES))
    for dataset in page.evaluate(CHART_DATA):
        assert dataset["xs"] == list(range(1, epochs + 1)), dataset["label"]


def test_train_form_checks_input_then_shows_the_servers_refusal(page, web_server, page_problems):
    page_problems.allow("400 POST")
    network = _network(web_server)
    _open(page, network)
    form = page.locator("#train-form")
    error = form.locator(".form-error")
    train = form.locator('button[data-action="train"]')

    for field, value, message in [
        ("#train-epochs", "0", "Epochs must be at least 1."),
        ("#train-epochs", "2.5", "Epochs must be a whole number."),
        ("#train-batch", "0", "Mini-batch size must be at least 1."),
        ("#train-rate", "0", "Learning rate must be greater than 0."),
    ]:
        page.fill("#train-epochs", "2")
        page.fill("#train-batch", "10")
        page.fill("#train-rate", "3")
        page.fill(field, value)
        train.click()
        expect(error).to_have_text(message)
        expect(page.locator(field)).to_have_attribute("aria-invalid", "true")

    # values only the server knows are wrong: its message, in place, on the field it names
    page.fill("#train-rate", "5000")
    train.click()
    expect(error).to_have_text("learning_rate must be in (0.0, 1000.0], got 5000.0")
    expect(page.locator("#train-rate")).to_have_attribute("aria-invalid", "true")
    page.fill("#train-rate", "3")
    page.fill("#train-batch", "100000")
    train.click()
    expect(error).to_have_text("mini_batch_size must be in [1, 1437], got 100000")
    expect(page.locator("#train-batch")).to_have_attribute("aria-invalid", "true")
    expect(train).to_be_enabled()
    assert web_server.api.get("/api/runs", params={"network_id": network["network_id"]})["total"] == 0
    expect(page.locator('#run-panel [data-field="panel_title"]')).to_have_text("No runs yet")


def test_phone_width_has_no_horizontal_scrolling(phone_page, web_server):
    api = web_server.api
    network = _network(web_server)
    api.wait_for_run(api.train(network["network_id"], epochs=2)["run_id"])
    _open(phone_page, network)
    expect(phone_page.locator('#gallery .example[data-kind="wrong"] img').first).to_be_visible()
    expect(phone_page.locator("#training-chart")).to_have_attribute("data-points", str(2 * SERIES))
    for selector in ("#train-form", "#versions tr", ".layers-table", "tbody[data-runs] tr"):
        expect(phone_page.locator(selector).first).to_be_visible()
    overflow = phone_page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow == 0


def test_delete_asks_first_then_goes_to_the_dashboard(page, web_server):
    api = web_server.api
    network = _network(web_server)
    _open(page, network)
    questions = []

    def answer(dialog, accept: bool):
        questions.append(dialog.message)
        dialog.accept() if accept else dialog.dismiss()

    page.once("dialog", lambda dialog: answer(dialog, False))
    page.click('button[data-action="delete-network"]')
    expect(page.locator("#network-heading")).to_have_text(network["name"])
    assert questions and questions[0].startswith(f"Delete {network['name']}?")
    api.get(f"/api/networks/{network['network_id']}")

    page.once("dialog", lambda dialog: answer(dialog, True))
    page.click('button[data-action="delete-network"]')
    expect(page).to_have_url(web_server.url + "/")
    api.get(f"/api/networks/{network['network_id']}", expect=404)


def test_a_network_deleted_elsewhere_is_marked_as_gone(page, web_server, page_problems):
    network = _network(web_server)
    # the page reads the network once connected: if that read comes after the deletion, it is a 404
    page_problems.allow(f"404 GET {web_server.url}/api/networks/{network['network_id']}")
    _open(page, network)
    web_server.api.delete(f"/api/networks/{network['network_id']}")
    expect(page.locator("#deleted-note")).to_be_visible()
    expect(page.locator("#network-status")).to_have_text("deleted")
    expect(page.locator('#train-form button[data-action="train"]')).to_be_disabled()



def test_train_with_a_schedule_and_early_stopping_from_the_form(page, web_server, screenshot):
    network = _network(web_server, layers=LINEAR_LAYERS, optimizer="sgd", learning_rate=0.05)
    _open(page, network)
    controls = page.locator("#train-controls")
    expect(page.locator("#train-gamma")).to_be_hidden()
    controls.locator("summary").click()
    page.select_option("#train-schedule", "step")
    expect(page.locator("#train-step-size")).to_be_visible()
    expect(page.locator("#train-gamma")).to_be_visible()
    expect(page.locator("#train-factor")).to_be_hidden()
    expect(page.locator("#train-stop-patience")).to_be_hidden()
    page.select_option("#train-stop-metric", "accuracy")
    expect(page.locator("#train-stop-patience")).to_be_visible()

    # a bad value is caught before anything is sent, naming the field
    page.fill("#train-gamma", "2")
    page.click('#train-form button[data-action="train"]')
    expect(page.locator("#train-form .form-error")).to_have_text("Gamma must be at most 1.")

    page.fill("#train-epochs", "10")
    page.fill("#train-step-size", "1")
    page.fill("#train-gamma", "0.5")
    page.fill("#train-stop-patience", "2")
    page.fill("#train-min-delta", "1")  # nothing beats the first epoch by a whole 1: it stops after epoch 3
    page.fill("#train-clip", "5")
    screenshot(page, "network-train-controls")
    page.click('#train-form button[data-action="train"]')
    panel = page.locator("#run-panel")
    expect(panel.locator('[data-field="status"]')).to_have_text("completed", timeout=TRAINING)
    expect(panel.locator('[data-field="result"]')).to_have_text(re.compile(
        r"^Completed: version v1, held-out accuracy \d+\.\d% \(the weights of epoch 1, its best\)\. "
        r"Stopped early after epoch 3: early_stopping: no improvement in accuracy for 2 epochs\.$"))
    expect(panel.locator('[data-field="learning_rate"]')).to_have_text("0.0125")  # 0.05 halved twice
    run_id = panel.get_attribute("data-run-id")
    run = web_server.api.get(f"/api/runs/{run_id}")
    assert run["params"]["lr_schedule"] == {"type": "step", "step_size": 1, "gamma": 0.5}
    assert run["params"]["early_stopping"] == {"metric": "accuracy", "mode": "max", "patience": 2, "min_delta": 1.0}
    assert run["params"]["clip_grad_norm"] == 5.0
    assert (run["stop_reason"], run["best_epoch"], run["epochs_done"]) == (
        "early_stopping: no improvement in accuracy for 2 epochs", 1, 3)
