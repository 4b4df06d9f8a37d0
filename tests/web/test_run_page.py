"""One run's page (`/runs/<id>`) as the server renders it: header, log, results, parameters, model."""

from __future__ import annotations

import html as html_lib
import json
import re

import pytest

from livetrain.web.runs import duration, js_number, js_percent, summary
from tests.helpers import create_network, run_in, start_run, wait_for_epochs, wait_for_run

DIVERGING = {"dataset_id": "diabetes", "layers": [{"type": "Linear", "out_features": 1}], "loss": "mse",
             "optimizer": "sgd", "learning_rate": 50, "momentum": 0}


@pytest.fixture(scope="module")
def runs(make_module_app):
    """One app with runs in every state the page shows, trained once for the whole module."""
    app = make_module_app(warm_workers=1)
    client = app.test_client()
    out = {"client": client}
    tree = run_in(client, "default", algorithm="decision_tree", dataset_id="iris", steps=3)
    out["tree"] = wait_for_run(client, tree["run_id"])
    network = create_network(client, dataset_id="digits", layer_sizes=[64, 20, 10], name="page-digits")
    out["network_run"] = wait_for_run(client, start_run(client, network["network_id"], epochs=3)["run_id"])
    out["regression"] = wait_for_run(client, run_in(client, "default", algorithm="linear", dataset_id="diabetes",
                                                    steps=2)["run_id"])
    failing = create_network(client, **DIVERGING)
    out["failed"] = wait_for_run(client, start_run(client, failing["network_id"], epochs=2)["run_id"])
    long_run = start_run(client, network["network_id"], epochs=2000)["run_id"]
    wait_for_epochs(client, long_run, 1)
    assert client.post(f"/api/runs/{long_run}/cancel").status_code == 200
    out["cancelled"] = wait_for_run(client, long_run)
    return out


def _page(client, run_id: str, status: int = 200) -> str:
    response = client.get(f"/runs/{run_id}")
    assert response.status_code == status
    assert response.mimetype == "text/html"
    return response.get_data(as_text=True)


def _section(html: str, section_id: str) -> str:
    match = re.search(rf'<section class="section" id="{section_id}"[^>]*>.*?</section>', html, re.S)
    assert match, f"the page has a #{section_id} section"
    return match.group(0)


def _log(html: str) -> list[tuple[str, str]]:
    """(event, text) of every line of the log, in order."""
    lines = re.findall(r'<span class="log-event">([^<]+)</span> <span class="log-text">([^<]*)</span>', html)
    return [(event, html_lib.unescape(text)) for event, text in lines]


def _matrix(html: str, split: str) -> list[list[int]]:
    match = re.search(rf'<details class="matrix" data-split="{split}"[^>]*>.*?</details>', html, re.S)
    assert match, f"a confusion matrix for the {split} split"
    rows = re.findall(r"<tr><th scope=\"row\">.*?</tr>", match.group(0), re.S)
    return [[int(c.replace(",", "")) for c in re.findall(r'<td class="cm-cell[^"]*"[^>]*>([\d,]+)</td>', row)]
            for row in rows]


def _pairs(html: str, field: str) -> dict[str, str]:
    match = re.search(rf'<dl class="pairs" data-field="{field}">(.*?)</dl>', html, re.S)
    assert match, f"the page lists the run's {field}"
    return {k: html_lib.unescape(re.sub(r"<[^>]+>", "", v)).strip()
            for k, v in re.findall(r"<div><dt>([^<]+)</dt><dd>(.*?)</dd></div>", match.group(1), re.S)}


def _state(html: str) -> dict:
    match = re.search(r'<script id="run-state" type="application/json">(.*?)</script>', html, re.S)
    assert match, "the page embeds its state for the script"
    return json.loads(match.group(1))


def test_a_completed_decision_tree_run_shows_its_accuracy_confusion_matrix_parameters_and_model(runs):
    run = runs["tree"]
    assert run["status"] == "completed"
    html = _page(runs["client"], run["run_id"])
    assert 'data-field="status" data-status="completed">completed<' in html
    results = _section(html, "results")
    assert "hidden" not in results[:results.index(">")]
    test = run["metrics"]["test"]
    accuracy = re.search(r'<tr data-metric="accuracy">.*?<td data-split="test">([^<]+)</td>', results, re.S)
    assert accuracy.group(1) == f"{test['accuracy'] * 100:.1f}%"

    matrix = _matrix(results, "test")
    assert len(matrix) == 3 and all(len(row) == 3 for row in matrix)
    assert matrix == test["confusion_matrix"]
    assert sum(map(sum, matrix)) == test["n"] == 30
    assert '<details class="matrix" data-split="test" open>' in results  # the held-out split's is the one shown
    assert results.count('class="cm-cell diag"') == 3 * 2  # the diagonal of the train and the test matrix
    assert '<span class="visually-hidden">actual </span>2</th>' in results

    params = _pairs(html, "params")
    assert params == {"max_depth": "none", "min_samples_split": "2", "min_samples_leaf": "1", "criterion": "gini",
                      "seed": "0", "steps": "3"}
    repro = _pairs(html, "repro")
    assert repro["dataset"] == "iris" and repro["seed"] == "0" and repro["steps"] == "3"
    assert repro["scikit-learn"] == run["repro"]["versions"]["scikit-learn"]

    assert f'<a href="/api/runs/{run["run_id"]}/model" download>Download the model</a>' in results
    assert f"<code>{run['model_sha256']}</code>" in results
    importances = re.findall(r'<span class="bar-label">([^<]+)</span>.*?<span class="bar-value">([^<]+)</span>',
                             results)
    assert importances == [(i["feature"], js_number(i["importance"])) for i in run["feature_importances"]]
    assert f'href="/api/runs/{run["run_id"]}/metrics.csv" download' in html


def test_a_completed_network_run_logs_every_epoch_once_and_links_its_network_and_version(runs):
    run = runs["network_run"]
    client = runs["client"]
    html = _page(client, run["run_id"])
    log = _log(html)
    assert [event for event, _ in log] == ["run_created", "training_started"] + ["training_update"] * 3 + [
        "training_complete"]
    updates = [text for event, text in log if event == "training_update"]
    assert [re.match(r"epoch (\d+)/3 · loss [\d.]+ · test loss [\d.]+ · accuracy [\d.]+%$", t).group(1)
            for t in updates] == ["1", "2", "3"]
    assert log[-1][1] == f"completed: accuracy {run['accuracy'] * 100:.1f}%, version 1"
    assert log[1][1] == "started: 3 epochs on 1,437 training rows, scored on 360 test rows"

    assert f'network <a href="/networks/{run["network_id"]}">page-digits</a>' in html
    assert '<dd data-field="version">v1</dd>' in html
    version = client.get(f"/api/networks/{run['network_id']}/versions").get_json()["versions"][0]
    assert f"<code>{version['weights_sha256']}</code>" in html
    assert "PyTorch weights, version 1" in html
    matrix = _matrix(_section(html, "results"), "test")
    assert len(matrix) == 10 and sum(map(sum, matrix)) == run["metrics"]["test"]["n"]
    params = _pairs(html, "params")
    assert params["epochs"] == "3" and params["batch_size"] == "10" and params["learning_rate"] == "3.0"
    assert _pairs(html, "repro")["network"] == "64 → 20 → 10"
    # the chart's events come without each step's matrices; the run's state is the API's
    state = _state(html)
    assert state["run"] == client.get(f"/api/runs/{run['run_id']}").get_json()
    # every event of its life, and its log lines beside them: all the run's events, each once
    assert sorted([e["seq"] for e in state["events"]] + [line["seq"] for line in state["logs"]]) == list(
        range(1, run["last_seq"] + 1))
    assert state["last_seq"] == run["last_seq"]
    assert state["held_out"] == "test" and state["labels"] == [str(i) for i in range(10)]
    assert re.search(r'data-action="rerun"\s*>Rerun', html), "a finished run can be rerun"
    assert re.search(r'data-action="stop-run" hidden', html)


def test_a_regression_run_shows_r2_and_no_confusion_matrix(runs):
    run = runs["regression"]
    html = _page(runs["client"], run["run_id"])
    results = _section(html, "results")
    r2 = re.search(r'<tr data-metric="r2"><th scope="row">R²</th>.*?<td data-split="test">([^<]+)</td>', results, re.S)
    assert r2.group(1) == js_number(run["metrics"]["test"]["r2"])
    assert "confusion" not in results
    steps = [text for event, text in _log(html) if event == "training_update"]
    assert [re.match(r"step (\d)/2 · \d+ rows · test rmse [\d.]+ · r2 [-\d.]+$", t).group(1) for t in steps] == [
        "1", "2"]


def test_a_failed_run_shows_its_error_and_no_results(runs):
    run = runs["failed"]
    assert run["status"] == "failed" and "diverged" in run["error"]
    html = _page(runs["client"], run["run_id"])
    assert 'data-field="status" data-status="failed">failed<' in html
    error = re.search(r'<p class="run-error" data-field="error" role="status">([^<]+)</p>', html)
    assert error and html_lib.unescape(error.group(1)) == run["error"]
    assert re.search(r'<section class="section" id="results"[^>]* hidden>', html)
    assert _log(html)[-1] == ("training_error", f"failed: {run['error']}")
    assert re.search(r'data-action="resume"\s+hidden', html), "a failed run is not resumed from the page"


def test_a_cancelled_run_shows_its_status_and_offers_to_resume_from_its_checkpoint(runs):
    run = runs["cancelled"]
    assert run["status"] == "cancelled"
    html = _page(runs["client"], run["run_id"])
    assert 'data-field="status" data-status="cancelled">cancelled<' in html
    done = run["epochs_done"]
    assert _log(html)[-1] == ("training_cancelled",
                              f"cancelled after {done} epoch{'' if done == 1 else 's'}, checkpoint at epoch {done}")
    resume = re.search(r'<button type="button" class="primary" data-action="resume"\s*>Resume from epoch '
                       r'<span data-field="checkpoint_epoch">(\d+)</span></button>', html)
    assert resume and int(resume.group(1)) == run["checkpoint_epoch"] == done
    assert re.search(r'<section class="section" id="results"[^>]* hidden>', html)
    assert f"{done} / 2000 epochs" in html


def test_a_run_whose_network_was_deleted_says_its_model_is_gone(runs):
    client = runs["client"]
    network = create_network(client, dataset_id="iris", layer_sizes=[4, 5, 3], name="soon-gone")
    run = wait_for_run(client, start_run(client, network["network_id"], epochs=1)["run_id"])
    assert client.delete(f"/api/networks/{network['network_id']}").status_code == 200
    html = _page(client, run["run_id"])
    assert "No model to download: its network has been deleted." in html
    assert "Download the model" not in html
    assert f"{network['network_id']} <small>(deleted)</small>" in html


def test_an_unknown_run_is_a_404_page(runs):
    html = _page(runs["client"], "nope", status=404)
    assert "Not found" in html
    assert "no run &#39;nope&#39;" in html


def test_the_page_loads_its_own_script_style_and_chart_from_this_server(runs):
    html = _page(runs["client"], runs["tree"]["run_id"])
    sources = re.findall(r'<(?:script|link)[^>]+(?:src|href)="([^"]+)"', html)
    for name in ("/static/js/run.js", "/static/css/run.css", "/static/js/charts.js",
                 "/static/vendor/chart.js/chart.umd.min.js"):
        source = next(s for s in sources if s.startswith(name))
        with runs["client"].get(source) as response:
            assert response.status_code == 200, source
    assert 'id="run-log" class="run-log" role="log" tabindex="0"' in html  # the log scrolls with the keyboard


@pytest.mark.parametrize("value, text", [
    (0.1234567, "0.1235"), (12.125, "12.13"), (100.0, "100"), (1e-7, "1e-7"), (0.00012345, "0.0001234"),
    (123456.7, "123500"), (-0.03125, "-0.03125"), (2.5e21, "2.5e+21"), (0.0, "0"), (None, "—"),
])
def test_numbers_are_written_as_the_pages_script_writes_them(value, text):
    # JavaScript's String(Number(x.toPrecision(4))), which run.js uses for the same numbers
    assert js_number(value) == text


@pytest.mark.parametrize("value, text", [(0.1225, "12.3%"), (0.0625, "6.3%"), (1 / 3, "33.3%"), (1.0, "100.0%")])
def test_percentages_round_half_up_as_javascripts_to_fixed_does(value, text):
    assert js_percent(value) == text


@pytest.mark.parametrize("seconds, text", [(0.04, "0.0 s"), (59.94, "59.9 s"), (61, "1 min 1 s"),
                                           (3599.9, "59 min 59 s"), (7384, "2 h 3 min")])
def test_durations_read_in_the_largest_units_that_fit(seconds, text):
    assert duration(seconds) == text


@pytest.mark.parametrize("event, text", [
    ({"event": "run_created", "algorithm": "network", "total_epochs": 5, "start_epoch": 3, "resumed_from": "abc"},
     "queued: 2 epochs, continuing run abc from epoch 3"),
    ({"event": "run_created", "algorithm": "knn", "total_epochs": 1, "start_epoch": 0, "rerun_of": "def"},
     "queued: 1 step, rerun of run def"),
    ({"event": "training_update", "algorithm": "random_forest", "epoch": 2, "total_epochs": 10, "size": 20,
      "size_label": "trees", "train_loss": 0.1082, "val_loss": 0.2908, "accuracy": 0.8889, "held_out_split": "val"},
     "step 2/10 · 20 trees · loss 0.1082 · val loss 0.2908 · accuracy 88.9%"),
    ({"event": "training_update", "algorithm": "mlp", "epoch": 3, "total_epochs": 9, "size": 3, "size_label": "epoch",
      "train_loss": 0.5, "val_loss": 12.5, "accuracy": None, "held_out_split": "test",
      "metrics": {"test": {"r2": 0.8123}}},
     "step 3/9 · loss 0.5 · test rmse 12.5 · r2 0.8123"),
    ({"event": "training_complete", "algorithm": "linear", "accuracy": None,
      "metrics": {"train": {"r2": 0.9}, "test": {"r2": 0.4512}}},
     "completed: r2 0.4512"),
    ({"event": "training_interrupted", "algorithm": "network", "error": "the server stopped", "checkpoint_epoch": 4},
     "interrupted: the server stopped, checkpoint at epoch 4"),
    ({"event": "training_cancelled", "algorithm": "svm", "epochs_done": 1, "checkpoint_epoch": None},
     "cancelled after 1 step"),
])
def test_log_lines_say_what_each_event_means(event, text):
    assert summary(event) == text
