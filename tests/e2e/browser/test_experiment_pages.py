"""The experiment pages in a real browser: create and delete experiments, start runs from the
catalog-built form, watch them rank with medals and draw their curves, switch the metric."""

from __future__ import annotations

import re
import uuid

from playwright.sync_api import expect

from livetrain.web.experiments import metric_value, rank_place

RUN_TIMEOUT = 60_000  # ms: runs train in worker processes on a small, busy machine
MEDALS = {1: "gold", 2: "silver", 3: "bronze"}
SERIES_POINTS = """() => {
  const chart = Chart.getChart(document.getElementById("overlay-chart"));
  return Object.fromEntries(chart.data.datasets.map((d) => [d.label, d.data.length]));
}"""


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def new_experiment(web_server, name: str) -> dict:
    return web_server.api.post("/api/experiments", {"name": unique(name)}, expect=201)


def expect_board_like_the_api(page, web_server, experiment_id: str, metric: str, split: str = "test") -> dict:
    """The leaderboard shows the API's ranking for `metric`: order, ranks, medals (colour and words), values."""
    board = web_server.api.get(f"/api/experiments/{experiment_id}/leaderboard",
                               params={"metric": metric, "split": split})
    rows = page.locator("#leaderboard-entries tr")
    expect(rows).to_have_count(len(board["entries"]))
    for i, entry in enumerate(board["entries"]):
        row = rows.nth(i)
        expect(row).to_have_attribute("data-run-id", entry["run_id"])
        expect(row).to_have_attribute("data-medal", MEDALS.get(entry["rank"], ""))
        expect(row.locator('[data-field="medal"]')).to_have_attribute("title", rank_place(entry["rank"]))
        expect(row.locator('[data-field="place"]')).to_have_text(rank_place(entry["rank"]))
        expect(row.locator('[data-field="value"]')).to_have_text(metric_value(entry["value"]))
    expect(page.locator('[data-field="metric_heading"]')).to_have_text(metric)
    return board


def test_create_an_experiment_and_delete_it(page, web_server, page_problems, screenshot):
    page_problems.allow("409 DELETE")  # the default experiment cannot be deleted: the test tries
    page.goto("/experiments")
    expect(page.locator("#connection")).to_have_text("Live")
    form = page.locator("#create-experiment")

    # checked before sending
    page.fill("#new-experiment-name", "no/slashes")
    form.locator("button[type=submit]").click()
    expect(form.locator(".form-error")).to_contain_text("letters, digits, spaces")
    expect(page.locator("#new-experiment-name")).to_have_attribute("aria-invalid", "true")

    name = unique("compare")
    page.fill("#new-experiment-name", name)
    page.fill("#new-experiment-description", "trees against neighbours")
    form.locator("button[type=submit]").click()
    row = page.locator("#experiment-rows tr").first
    expect(row.locator('[data-field="name"]')).to_have_text(name)
    expect(row.locator('[data-field="description"]')).to_have_text("trees against neighbours")
    expect(row.locator('[data-field="runs"]')).to_have_text("0")
    expect(form.locator(".form-error")).to_be_hidden()
    expect(page.locator("#new-experiment-name")).to_have_value("")
    created_id = row.get_attribute("data-experiment-id")
    assert web_server.api.get(f"/api/experiments/{created_id}")["name"] == name

    # live: one created elsewhere appears at the top; a run started in it counts, and stops counting as active
    other = new_experiment(web_server, "scripted")
    other_row = page.locator(f'#experiment-rows tr[data-experiment-id="{other["id"]}"]')
    expect(other_row.locator('[data-field="name"]')).to_have_text(other["name"])
    expect(page.locator("#experiment-rows tr").first).to_have_attribute("data-experiment-id", other["id"])
    started = web_server.api.post(f"/api/experiments/{other['id']}/runs",
                                  {"algorithm": "naive_bayes", "dataset_id": "iris", "steps": 1}, expect=202)
    expect(other_row.locator('[data-field="runs"]')).to_have_text("1")
    web_server.api.wait_for_run(started["run_id"])
    expect(other_row.locator('[data-field="active_runs"]')).to_have_text("0", timeout=RUN_TIMEOUT)
    screenshot(page, "experiments")

    # the default experiment: the server refuses, and says so in place
    page.on("dialog", lambda dialog: dialog.accept())
    default_row = page.locator('#experiment-rows tr[data-experiment-id="default"]')
    default_row.locator('button[data-field="delete"]').click()
    expect(default_row.locator(".form-error")).to_have_text("the default experiment cannot be deleted")
    expect(default_row).to_be_visible()

    row = page.locator(f'#experiment-rows tr[data-experiment-id="{created_id}"]')
    row.locator('button[data-field="delete"]').click()
    expect(row).to_have_count(0)
    web_server.api.get(f"/api/experiments/{created_id}", expect=404)
    web_server.api.delete(f"/api/experiments/{other['id']}")
    expect(other_row).to_have_count(0)  # experiment_deleted


def test_start_runs_from_the_form_rank_them_and_compare_their_curves(page, web_server, screenshot):
    experiment = new_experiment(web_server, "iris-three")
    page.goto(f"/experiments/{experiment['id']}")
    expect(page.locator("#connection")).to_have_text("Live")
    expect(page.locator("#leaderboard-empty")).to_contain_text("No runs yet")

    form = page.locator("#new-run")
    page.select_option("#run-dataset", "iris")
    page.fill("#run-steps", "3")
    started = []
    for key in ("knn", "decision_tree", "naive_bayes"):
        page.select_option("#run-trainer", key)
        expect(form.locator(f'fieldset[data-algorithm="{key}"]')).to_be_visible()
        form.locator("button[type=submit]").click()
        expect(page.locator("tbody[data-runs] tr")).to_have_count(len(started) + 1)
        started.append(page.locator("tbody[data-runs] tr").first.get_attribute("data-run-id"))
    # each appears at once, in the runs table and on the leaderboard (unranked until it reports)
    for run_id in started:
        expect(page.locator(f'#leaderboard tr[data-run-id="{run_id}"], #unranked-entries tr[data-run-id="{run_id}"]')
               ).to_have_count(1)
    stored = [web_server.api.run(run_id) for run_id in started]
    assert [(r["algorithm"], r["dataset_id"], r["total_epochs"], r["experiment_id"]) for r in stored] == [
        (key, "iris", 3, experiment["id"]) for key in ("knn", "decision_tree", "naive_bayes")]

    # the page keeps no gap and no double point across a reconnect while the runs train
    page.evaluate("livetrain.connection.socket.disconnect()")
    page.wait_for_timeout(300)
    page.evaluate("livetrain.connection.socket.connect()")

    for run_id in started:
        status = page.locator(f'#leaderboard-entries tr[data-run-id="{run_id}"] [data-field="status"]')
        expect(status).to_have_text("completed", timeout=RUN_TIMEOUT)
    expect(page.locator("#experiment-active")).to_have_text("0")
    expect(page.locator("#experiment-runs")).to_have_text("3")
    expect_board_like_the_api(page, web_server, experiment["id"], "accuracy")

    # a series per run, with a point per step, on the chart and in its description
    for run_id in started:
        expect(page.locator(f'#chart-series li[data-run-id="{run_id}"]')).to_have_attribute("data-points", "3")
    points = page.evaluate(SERIES_POINTS)
    assert sorted(points.values()) == [3, 3, 3], points

    # another metric: the ranking follows the API's, the curves are redrawn for it
    page.select_option("#rank-metric", "log_loss")
    board = expect_board_like_the_api(page, web_server, experiment["id"], "log_loss")
    assert [e["rank"] for e in board["entries"]] == [1, 2, 3]  # three different losses: three medals
    expect(page.locator('#leaderboard-summary [data-field="direction"]')).to_have_text("lower is better")
    expect(page).to_have_url(re.compile(r"metric=log_loss"))
    best = board["entries"][0]
    expect(page.locator(f'#chart-series li[data-run-id="{best["run_id"]}"]')).to_contain_text(
        f"latest {metric_value(best['value'])}")
    assert sorted(page.evaluate(SERIES_POINTS).values()) == [3, 3, 3]
    page.select_option("#run-trainer", "random_forest")  # the screenshot shows a form with more to set
    screenshot(page, "experiment")

    page.select_option("#rank-metric", "f1")
    expect_board_like_the_api(page, web_server, experiment["id"], "f1")

    # the address keeps the choice: a reload renders the same ranking on the server
    page.reload()
    expect(page.locator("#rank-metric")).to_have_value("f1")
    expect_board_like_the_api(page, web_server, experiment["id"], "f1")

    # iris has no validation split: on it, every run is listed apart, saying why
    page.select_option("#rank-split", "val")
    expect(page.locator("#leaderboard-entries tr")).to_have_count(0)
    expect(page.locator('#unranked-entries [data-field="reason"]')).to_have_text(["iris has no validation split"] * 3)
    expect(page.locator("#leaderboard-empty")).to_have_text("No run has a value of f1 on the validation split yet.")


def test_bad_parameters_are_caught_and_the_servers_refusal_is_shown_in_place(page, web_server, page_problems):
    page_problems.allow("400 POST")  # the server refuses the mini-batch size on purpose
    network = web_server.api.post("/api/networks", {"dataset_id": "iris", "name": unique("iris-net")}, expect=201)
    experiment = new_experiment(web_server, "refusals")
    page.goto(f"/experiments/{experiment['id']}")
    form = page.locator("#new-run")
    error = form.locator(".form-error")
    submit = form.locator("button[type=submit]")

    # the form follows the catalog: knn's parameters, type, range, default, explanations
    page.select_option("#run-trainer", "knn")
    knn = form.locator('fieldset[data-algorithm="knn"]')
    expect(knn).to_contain_text("Like guessing a house's price")
    neighbours = knn.locator('input[name="p-knn-n_neighbors"]')
    expect(neighbours).to_have_value("5")
    expect(neighbours).to_have_attribute("max", "100")
    expect(knn.locator('.param[data-param="n_neighbors"]')).to_contain_text("whole number, 1–100 · default 5")
    expect(form.locator('fieldset[data-algorithm="random_forest"]')).to_be_hidden()

    neighbours.fill("500")
    submit.click()
    expect(error).to_have_text("n_neighbors must be at most 100.")
    expect(neighbours).to_have_attribute("aria-invalid", "true")
    expect(neighbours).to_be_focused()
    neighbours.fill("3")
    page.fill("#run-steps", "2.5")
    submit.click()
    expect(error).to_have_text("Steps must be a whole number.")
    expect(page.locator("tbody[data-runs] tr")).to_have_count(0)  # nothing was sent

    # naive Bayes does not do regression: the regression dataset is not offered for it
    page.select_option("#run-trainer", "naive_bayes")
    expect(page.locator('#run-dataset option[value="diabetes"]')).to_be_disabled()
    page.select_option("#run-trainer", "random_forest")
    expect(page.locator('#run-dataset option[value="diabetes"]')).to_be_enabled()

    # a network trains on its own dataset; its mini-batch may not exceed the training rows, which only
    # the server checks (iris has 120): its message, in place, on the field it names
    page.select_option("#run-trainer", f"network:{network['network_id']}")
    expect(page.locator("#run-dataset")).to_be_disabled()
    expect(page.locator("#run-dataset")).to_have_value("iris")
    expect(page.locator("#run-steps")).to_be_disabled()
    batch = form.locator('input[name="p-network-mini_batch_size"]')
    batch.fill("500")
    page.fill("#p-network-epochs", "2")
    submit.click()
    expect(error).to_have_text("mini_batch_size must be in [1, 120], got 500")
    expect(batch).to_have_attribute("aria-invalid", "true")
    assert web_server.api.get(f"/api/runs?experiment_id={experiment['id']}")["total"] == 0


def test_the_experiment_pages_fit_a_phone(phone_page, web_server):
    experiment = new_experiment(web_server, "phone")
    run = web_server.api.post(f"/api/experiments/{experiment['id']}/runs",
                              {"algorithm": "decision_tree", "dataset_id": "wine", "steps": 2}, expect=202)
    web_server.api.wait_for_run(run["run_id"])
    for path in ("/experiments", f"/experiments/{experiment['id']}"):
        phone_page.goto(path)
        expect(phone_page.locator("#connection")).to_have_text("Live")
        overflow = phone_page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"{path} is {overflow}px wider than the phone"
    expect(phone_page.locator("#leaderboard-entries tr")).to_have_count(1)
    expect(phone_page.locator("#leaderboard-entries tr").first).to_have_attribute("data-medal", "gold")
