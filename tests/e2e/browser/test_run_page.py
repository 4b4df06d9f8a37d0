"""One run's page in a real browser: live chart and log, results without a reload, a reconnect
without a gap or a duplicate, Stop, Rerun (and its refusal), a scikit-learn run, phone width."""

from __future__ import annotations

import re
import uuid

from playwright.sync_api import expect

from tests.e2e.helpers import wait_until

LIVE_EPOCHS = 8  # of a wide network, one example per mini-batch (~0.3 s each): the page opens while it trains
DIGITS = {"dataset_id": "digits", "layer_sizes": [64, 20, 10]}
CHART = "Chart.getChart(document.getElementById('run-chart')).data.datasets"
CHART_DATA = f"() => {CHART}.map((d) => ({{label: d.label, xs: d.data.map((p) => p.x)}}))"
# points drawn, read from Chart.js itself: charts.js refreshes canvas.dataset.points only for the first point
# added in an animation frame, so after a burst of points (one event adds three) it lags behind
POINTS = f"{CHART}.reduce((n, d) => n + d.data.length, 0)"
LOG_LINES = "() => Array.from(document.querySelectorAll('#run-log li'), (li) => li.innerText.replace(/\\s+/g, ' '))"
TEXT_OF = "(selector) => document.querySelector(selector).innerText.replace(/\\s+/g, ' ').trim()"


def _network(api, **body) -> str:
    return api.create_network(**{**DIGITS, "name": f"run-page-{uuid.uuid4().hex[:6]}", **body})["network_id"]


def _finished_network_run(api, epochs: int = 2) -> dict:
    run_id = api.train(_network(api), epochs=epochs)["run_id"]
    run = api.wait_for_run(run_id)
    assert run["status"] == "completed"
    return run


def _cancel_if_active(api, run_id: str) -> None:
    if api.run(run_id)["status"] in ("queued", "running"):
        api.request("POST", f"/api/runs/{run_id}/cancel")
        api.wait_for_run(run_id)


def _update_epochs(lines: list[str]) -> list[int]:
    """The epoch numbers of the log's training_update lines, in the log's order."""
    return [int(m.group(1)) for line in lines if (m := re.search(r"training_update epoch (\d+)/", line))]


def test_a_network_run_fills_its_chart_and_log_live_and_shows_its_results_at_the_end(page, web_server, screenshot):
    api = web_server.api
    network_id = _network(api, layer_sizes=[64, 200, 10])
    run_id = api.train(network_id, epochs=LIVE_EPOCHS, mini_batch_size=1, learning_rate=1.0)["run_id"]
    page.goto(f"/runs/{run_id}")
    page.evaluate("window.notReloaded = true")
    rendered = page.evaluate("livetrain.embedded('run-state').run.status")
    assert rendered in ("queued", "running"), "the page must open while the run trains for this test to mean anything"
    expect(page.locator("#results")).to_be_hidden()

    # train loss, test loss and accuracy: three points per epoch
    page.wait_for_function(f"() => {POINTS} === {3 * LIVE_EPOCHS}", timeout=60_000)
    expect(page.locator(".run-head [data-field='status']")).to_have_text("completed")
    results = page.locator("#results")
    expect(results).to_be_visible()
    assert page.evaluate("window.notReloaded") is True

    lines = page.evaluate(LOG_LINES)
    assert _update_epochs(lines) == list(range(1, LIVE_EPOCHS + 1))
    assert len(lines) == len(set(lines))
    assert re.search(r"training_complete completed: accuracy \d+\.\d%, version 1$", lines[-1])

    run = api.run(run_id)
    test_metrics = run["metrics"]["test"]
    accuracy_cell = results.locator('tr[data-metric="accuracy"] td[data-split="test"]')
    expect(accuracy_cell).to_have_text(f"{test_metrics['accuracy'] * 100:.1f}%")
    matrix = results.locator('details[data-split="test"]')
    expect(matrix).to_have_attribute("open", "")
    cells = matrix.locator("td.cm-cell")
    expect(cells).to_have_count(100)
    assert sum(int(c.replace(",", "")) for c in cells.all_inner_texts()) == test_metrics["n"] == 360
    expect(matrix.locator("td.cm-cell.diag")).to_have_count(10)
    expect(results.get_by_role("link", name="Download the model")).to_have_attribute(
        "href", f"/api/runs/{run_id}/model")
    version = api.get(f"/api/networks/{run['network_id']}/versions")["versions"][0]
    expect(results.locator(".sha code")).to_have_text(version["weights_sha256"])

    # what the script drew live is what the server renders on a reload
    live = {sel: page.evaluate(TEXT_OF, sel) for sel in ("#results", "#run-log", ".run-head")}
    page.reload()
    assert page.evaluate(f"() => {POINTS}") == 3 * LIVE_EPOCHS
    for selector, text in live.items():
        assert page.evaluate(TEXT_OF, selector) == text, selector
    expect(page.locator("#connection")).to_have_text("Live")
    screenshot(page, "run")


def _away_then_back(page, api, run_id: str, epochs_away: int, before_reconnect=lambda: None) -> int:
    """Drop the page's socket, let the run store `epochs_away` more epochs, call `before_reconnect`,
    reconnect; the epochs stored when it reconnected."""
    page.evaluate("livetrain.connection.socket.disconnect()")
    expect(page.locator("#connection")).to_contain_text("Offline")
    away_from = api.run(run_id)["epochs_done"]
    wait_until(lambda: api.run(run_id)["epochs_done"] >= away_from + epochs_away, timeout=30,
               what="epochs stored while the page is away")
    before_reconnect()
    page.evaluate("livetrain.connection.socket.connect()")
    return api.run(run_id)["epochs_done"]


def test_the_chart_and_log_keep_every_epoch_once_across_a_reconnect_and_stop_cancels(page, web_server):
    api = web_server.api
    run_id = api.train(_network(api), epochs=1000)["run_id"]
    try:
        page.goto(f"/runs/{run_id}")
        expect(page.locator("#connection")).to_have_text("Live")
        page.wait_for_function(f"() => {POINTS} >= 9")

        stored = _away_then_back(page, api, run_id, 5)
        page.wait_for_function("(n) => Math.max(...Chart.getChart(document.getElementById('run-chart'))"
                               ".data.datasets.map((d) => d.data.length)) >= n", arg=stored)

        chart = page.evaluate(CHART_DATA)
        shown = len(chart[0]["xs"])
        assert shown >= stored
        for series in chart:
            assert series["xs"] == list(range(1, shown + 1)), series["label"]
        lines = page.evaluate(LOG_LINES)
        assert len(lines) == len(set(lines))
        assert _update_epochs(lines)[:stored] == list(range(1, stored + 1))

        page.get_by_role("button", name="Stop").click()
        expect(page.locator(".run-head [data-field='status']")).to_have_text("cancelled")
        done = api.run(run_id)["epochs_done"]
        assert done < 1000
        for series in page.evaluate(CHART_DATA):
            assert series["xs"] == list(range(1, done + 1)), series["label"]
        lines = page.evaluate(LOG_LINES)
        assert _update_epochs(lines) == list(range(1, done + 1))
        assert len(lines) == len(set(lines))
        assert re.search(rf"training_cancelled cancelled after {done} epochs?, checkpoint at epoch {done}$", lines[-1])
        expect(page.get_by_role("button", name="Stop")).to_be_hidden()
        expect(page.get_by_role("button", name=f"Resume from epoch {done}")).to_be_visible()
    finally:
        _cancel_if_active(api, run_id)


def test_a_catch_up_request_cut_off_after_a_reconnect_is_asked_again_and_leaves_no_gap(page, web_server):
    api = web_server.api
    run_id = api.train(_network(api), epochs=1000)["run_id"]
    cut: list[str] = []

    def cut_the_first(route):
        # the first fetch of missed events after the reconnect fails as a network drop would
        if not cut:
            cut.append(route.request.url)
            route.abort("connectionreset")
        else:
            route.continue_()

    try:
        page.goto(f"/runs/{run_id}")
        expect(page.locator("#connection")).to_have_text("Live")
        page.wait_for_function(f"() => {POINTS} >= 3")
        stored = _away_then_back(page, api, run_id, 3,
                                 before_reconnect=lambda: page.route("**/api/runs/*/events*", cut_the_first))
        page.wait_for_function("(n) => Math.min(...Chart.getChart(document.getElementById('run-chart'))"
                               ".data.datasets.map((d) => d.data.length)) >= n", arg=stored + 2)
        assert cut and f"/api/runs/{run_id}/events" in cut[0]
        for series in page.evaluate(CHART_DATA):
            assert series["xs"] == list(range(1, len(series["xs"]) + 1)), series["label"]
    finally:
        _cancel_if_active(api, run_id)


def test_a_scikit_learn_run_shows_its_steps_per_split_and_its_feature_importances(page, web_server):
    api = web_server.api
    experiment = api.post("/api/experiments", {"name": f"run-page-{uuid.uuid4().hex[:6]}"}, expect=201)
    job = api.post(f"/api/experiments/{experiment['experiment_id']}/runs", {
        "algorithm": "random_forest", "dataset_id": "iris", "steps": 4, "params": {"n_estimators": 20}}, expect=202)
    run = api.wait_for_run(job["run_id"])
    assert run["status"] == "completed"
    page.goto(f"/runs/{run['run_id']}")

    expect(page.locator(".run-facts")).to_contain_text("random_forest")
    expect(page.locator(".run-facts").get_by_role("link", name=experiment["name"])).to_have_attribute(
        "href", f"/experiments/{experiment['experiment_id']}")
    # accuracy and log loss, on the training rows and on the test split, for each of the 4 steps
    assert page.evaluate(f"() => {POINTS}") == 16
    chart = {series["label"]: series["xs"] for series in page.evaluate(CHART_DATA)}
    assert chart == {"training accuracy (%)": [1, 2, 3, 4], "test accuracy (%)": [1, 2, 3, 4],
                     "training log loss": [1, 2, 3, 4], "test log loss": [1, 2, 3, 4]}
    lines = page.evaluate(LOG_LINES)
    steps = [line for line in lines if "training_update" in line]
    assert [re.search(r"step (\d+)/4 · (\d+) trees", s).groups() for s in steps] == [
        ("1", "5"), ("2", "10"), ("3", "15"), ("4", "20")]

    bars = page.locator(".importances li")
    expect(bars).to_have_count(4)
    top = run["feature_importances"][0]
    expect(bars.first.locator(".bar-label")).to_have_text(top["feature"])
    expect(bars.first.locator(".bar-value")).to_have_text(str(float(f"{top['importance']:.4g}")))
    expect(page.locator(".results-model .sha code")).to_have_text(run["model_sha256"])


def test_rerun_from_the_page_opens_the_new_run(page, web_server):
    api = web_server.api
    job = api.post("/api/experiments/default/runs", {"algorithm": "decision_tree", "dataset_id": "iris",
                                                     "steps": 2}, expect=202)
    source = api.wait_for_run(job["run_id"])
    page.goto(f"/runs/{source['run_id']}")
    page.get_by_role("button", name="Rerun").click()
    page.wait_for_url(re.compile(r"/runs/(?!" + source["run_id"] + r")[0-9a-f]+$"))
    new_id = page.url.rsplit("/", 1)[-1]
    assert api.run(new_id)["rerun_of"] == source["run_id"]
    expect(page.locator("h1")).to_contain_text(new_id)
    expect(page.locator('[data-field="rerun_of"]')).to_have_text(source["run_id"])
    expect(page.locator(".run-head [data-field='status']")).to_have_text("completed")
    api.wait_for_run(new_id)


def test_a_refused_rerun_shows_the_servers_message_in_place(page, web_server, page_problems):
    api = web_server.api
    network_id = _network(api)
    first = api.train(network_id, epochs=1)["run_id"]
    api.wait_for_run(first)
    busy = api.train(network_id, epochs=1000)["run_id"]
    page_problems.allow("409 POST")
    try:
        page.goto(f"/runs/{first}")
        page.get_by_role("button", name="Rerun").click()
        error = page.locator("#run-actions .form-error")
        expect(error).to_be_visible()
        expect(error).to_contain_text(f"network {network_id} is already training (run {busy})")
        assert page.url.endswith(f"/runs/{first}")
    finally:
        _cancel_if_active(api, busy)


def test_the_page_of_a_finished_run_fits_a_phone(phone_page, web_server):
    run = _finished_network_run(web_server.api)
    phone_page.goto(f"/runs/{run['run_id']}")
    expect(phone_page.locator('#results details[data-split="test"] td.cm-cell')).to_have_count(100)
    overflow = phone_page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0
    # the 10×10 matrix scrolls inside its own box rather than widening the page
    box = phone_page.locator('#results details[data-split="test"] .table-wrap').bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= 390
