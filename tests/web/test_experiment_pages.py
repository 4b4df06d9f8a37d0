"""The experiments list (`/experiments`) and one experiment's page (`/experiments/<id>`), as the server renders them."""

from __future__ import annotations

import html
import json
import re

import pytest

from livetrain.web.experiments import metric_value, rank_place
from tests.helpers import create_experiment, run_in, wait_for_run


def _html(client, url: str, status: int = 200) -> str:
    response = client.get(url)
    assert response.status_code == status, response.get_data(as_text=True)[:500]
    assert response.mimetype == "text/html"
    return response.get_data(as_text=True)


def _state(page: str, element_id: str) -> dict:
    match = re.search(rf'<script id="{element_id}" type="application/json">(.*?)</script>', page, re.S)
    assert match, f"the page embeds {element_id}"
    return json.loads(match.group(1))


def _rows(page: str, tbody_id: str) -> list[str]:
    body = re.search(rf'<tbody id="{tbody_id}">(.*?)</tbody>', page, re.S)
    assert body, f"the page has #{tbody_id}"
    return re.findall(r"<tr .*?</tr>", body.group(1), re.S)


def _text(fragment: str) -> str:
    """What a reader sees of an HTML fragment: tags dropped, whitespace collapsed, entities decoded."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", fragment)).split())


def _field(row: str, name: str) -> str:
    match = re.search(rf'data-field="{name}"[^>]*>(.*?)</', row, re.S)
    assert match, f"the row has a {name} field"
    return _text(match.group(1))


def _selected(page: str, select_id: str) -> str:
    select = re.search(rf'<select id="{select_id}".*?</select>', page, re.S).group(0)
    return re.search(r'<option value="([^"]*)"[^>]*\sselected', select).group(1)


# -- the list -----------------------------------------------------------------------------------


def test_the_list_shows_experiments_newest_first_with_their_counts(client):
    older = create_experiment(client, name="iris-compare", description="trees <vs> neighbours")
    newer = create_experiment(client, name="wine-compare")
    run = run_in(client, older["id"], algorithm="naive_bayes", dataset_id="iris", steps=1)

    page = _html(client, "/experiments")
    rows = _rows(page, "experiment-rows")
    ids = [re.search(r'data-experiment-id="([^"]+)"', r).group(1) for r in rows]
    assert ids == [newer["id"], older["id"], "default"]  # newest first, as GET /api/experiments
    by_id = dict(zip(ids, rows, strict=True))
    assert _field(by_id[older["id"]], "name") == "iris-compare"
    assert f'href="/experiments/{older["id"]}"' in by_id[older["id"]]
    assert _field(by_id[older["id"]], "description") == "trees <vs> neighbours"  # escaped, shown as typed
    assert "trees &lt;vs&gt; neighbours" in by_id[older["id"]]
    assert _field(by_id[older["id"]], "runs") == "1"
    assert _text(re.search(r'<td data-label="Active runs".*?</td>', by_id[older["id"]], re.S).group(0)) == "1 active"
    assert _field(by_id[newer["id"]], "runs") == "0"
    # the default experiment says so, and has a Delete button like the others (the server refuses it)
    assert re.search(r'data-field="default">default<', by_id["default"])
    assert re.search(r'data-field="default" hidden>', by_id[older["id"]])
    assert all('data-form="delete"' in row for row in rows)
    assert 'id="experiments-empty" class="empty" hidden' in page
    assert [e["experiment_id"] for e in _state(page, "initial-state")["experiments"]] == ids

    wait_for_run(client, run["run_id"])
    row = next(r for r in _rows(_html(client, "/experiments"), "experiment-rows") if older["id"] in r)
    assert _field(row, "runs") == "1"
    assert _text(re.search(r'<td data-label="Active runs".*?</td>', row, re.S).group(0)) == "0"


def test_the_list_paginates_twenty_to_a_page(client):
    made = [create_experiment(client, name=f"e{i:02d}")["id"] for i in range(21)]  # with default: 22
    first = _html(client, "/experiments")
    assert len(_rows(first, "experiment-rows")) == 20
    assert "1–20 of 22 · page 1 of 2" in first
    assert 'href="/experiments?page=2" rel="next"' in first
    second = _html(client, "/experiments?page=2")
    ids = [re.search(r'data-experiment-id="([^"]+)"', r).group(1) for r in _rows(second, "experiment-rows")]
    assert ids == [made[0], "default"]  # the two oldest
    assert "21–22 of 22 · page 2 of 2" in second
    assert _state(second, "initial-state")["first_page"] is False
    # a page past the end shows the last one; nonsense shows the first
    assert "page 2 of 2" in _html(client, "/experiments?page=99")
    assert "page 1 of 2" in _html(client, "/experiments?page=x")


# -- one experiment: the page itself ---------------------------------------------------------------


def test_an_unknown_experiment_is_a_404_page(client):
    page = _html(client, "/experiments/nope", status=404)
    assert "Not found" in page
    assert "no experiment &#39;nope&#39;" in page


def test_an_empty_experiment_invites_a_first_run(client):
    experiment = create_experiment(client, name="fresh", description="nothing yet")
    page = _html(client, f"/experiments/{experiment['id']}")
    assert "<h1" in page and "fresh" in page and "nothing yet" in page
    assert _rows(page, "leaderboard-entries") == []
    assert "No runs yet" in page
    assert '<div id="unranked" hidden>' in page
    # without runs: accuracy on the test split, the metrics of both tasks offered
    assert _selected(page, "rank-metric") == "accuracy"
    assert _selected(page, "rank-split") == "test"
    assert 'value="r2"' in page and 'value="log_loss"' in page


def test_the_form_offers_every_algorithm_with_its_parameters_and_explanations(client):
    experiment = create_experiment(client, name="form")
    catalog = client.get("/api/algorithms").get_json()
    page = _html(client, f"/experiments/{experiment['id']}")
    trainer = re.search(r'<select id="run-trainer".*?</select>', page, re.S).group(0)
    assert re.findall(r'<option value="([a-z_]+)"', trainer) == [a["key"] for a in catalog["algorithms"]]

    for algorithm in catalog["algorithms"]:
        key = algorithm["key"]
        fieldset = re.search(rf'<fieldset class="algorithm" data-algorithm="{key}".*?</fieldset>', page, re.S)
        assert fieldset, f"{key} has a fieldset"
        text = fieldset.group(0)
        assert algorithm["how_it_works"] in _text(text)
        assert algorithm["analogy"] in _text(text)
        for estimator in algorithm["estimators"].values():
            assert f"<code>{estimator}</code>" in text  # the fixed settings, read-only
        for name in {n for values in algorithm["fixed"].values() for n in values}:
            assert f"<dt>{name}</dt>" in text
        for index, param in enumerate(algorithm["params"]):
            start = f'<div class="field param" data-param="{param["name"]}" data-index="{index}"'
            block = re.search(re.escape(start) + r".*?</p>\s*</div>", text, re.S)
            assert block, f"{key}.{param['name']} has a field"
            field = block.group(0)
            hint = _text(re.search(r'<p class="hint".*?</p>', field, re.S).group(0))
            assert param["help"] in hint
            if param["type"] in ("int", "float"):
                number = re.search(r'<input type="number"[^>]*>', field, re.S).group(0)
                assert f'min="{param["min"]:g}"' in number and f'max="{param["max"]:g}"' in number
                assert f'step="{1 if param["type"] == "int" else "any"}"' in number
                default = "" if param["default"] is None else f"{param['default']:g}"
                assert f'value="{default}"' in number
                assert f"{param['min']:g}–{param['max']:g}" in hint
            elif param["type"] == "choice":
                assert re.findall(r'<option value="([^"]*)"', field) == [str(c) for c in param["choices"]]
                assert re.search(rf'<option value="{param["default"]}" selected>', field)
            elif param["type"] == "bool":
                assert 'type="checkbox"' in field
                assert (" checked>" in field) is param["default"]
            elif param["type"] == "int_list":
                assert f'value="{", ".join(str(v) for v in param["default"])}"' in field
                assert f"{param['min_items']}–{param['max_items']} whole numbers" in hint
            # a label names every input
            assert re.search(r'<label (?:class="check" )?for="(p-[^"]+)"', field)

    network = re.search(r'<fieldset class="algorithm" data-algorithm="network".*?</fieldset>', page, re.S).group(0)
    assert catalog["networks"]["how_it_works"] in _text(network)
    assert catalog["networks"]["analogy"] in _text(network)
    assert [p["name"] for p in catalog["networks"]["params"]] == re.findall(r'data-param="([a-z_]+)"', network)
    assert "none yet: create one on the dashboard" in page


def test_the_form_offers_networks_and_every_dataset(client):
    network = client.post("/api/networks", json={"dataset_id": "iris", "name": "iris-net"}).get_json()
    experiment = create_experiment(client, name="with-a-network")
    page = _html(client, f"/experiments/{experiment['id']}")
    assert f'<option value="network:{network["network_id"]}">iris-net · iris</option>' in page
    datasets = client.get("/api/datasets").get_json()
    select = re.search(r'<select id="run-dataset".*?</select>', page, re.S).group(0)
    offered = re.findall(r'<option value="([^"]+)"', select)
    assert offered == [d["id"] for d in datasets["datasets"]]
    # no runs yet: the form starts on the server's default dataset
    assert _selected(page, "run-dataset") == datasets["default"]
    state = _state(page, "experiment-state")
    assert state["networks"][0]["network_id"] == network["network_id"]
    assert state["networks"][0]["kind"] == "layer_sizes"


# -- one experiment with finished runs ---------------------------------------------------------------


@pytest.fixture(scope="module")
def ranked(make_module_app):
    """An app with an experiment of three completed runs on iris, and one of a run on a generated dataset."""
    app = make_module_app()
    client = app.test_client()
    experiment = create_experiment(client, name="iris-three")
    runs = [run_in(client, experiment["id"], algorithm=key, dataset_id="iris", steps=2)["run_id"]
            for key in ("decision_tree", "knn", "naive_bayes")]
    moons = client.post("/api/datasets", json={"generator": "moons", "params": {"n_samples": 120}, "name": "moons-s"})
    assert moons.status_code == 201, moons.get_json()
    generated = create_experiment(client, name="moons-one")
    moons_id = moons.get_json()["id"]
    moons_run = run_in(client, generated["id"], algorithm="knn", dataset_id=moons_id, steps=2)["run_id"]
    for run_id in [*runs, moons_run]:
        assert wait_for_run(client, run_id)["status"] == "completed"
    return {"client": client, "experiment": experiment, "runs": runs, "generated": generated, "moons": moons_id}


@pytest.mark.parametrize("metric", ["log_loss", "f1", "accuracy"])
def test_the_leaderboard_ranks_as_the_api_does_with_medals(ranked, metric):
    client, experiment_id = ranked["client"], ranked["experiment"]["id"]
    board = client.get(f"/api/experiments/{experiment_id}/leaderboard?metric={metric}&split=test").get_json()
    page = _html(client, f"/experiments/{experiment_id}?metric={metric}&split=test")
    rows = _rows(page, "leaderboard-entries")
    assert len(rows) == len(board["entries"]) == 3
    medals = {1: "gold", 2: "silver", 3: "bronze"}
    for row, entry in zip(rows, board["entries"], strict=True):
        assert f'data-run-id="{entry["run_id"]}"' in row
        assert f'data-rank="{entry["rank"]}" data-medal="{medals[entry["rank"]]}"' in row
        assert f'title="{rank_place(entry["rank"])}"' in row  # the place, in words, besides the colour
        assert _field(row, "place") == rank_place(entry["rank"])
        assert _field(row, "value") == metric_value(entry["value"])
        assert _field(row, "status") == "completed"
        assert f'href="/runs/{entry["run_id"]}"' in row
        assert f"<code>{entry['algorithm']}</code>" in row
    assert _selected(page, "rank-metric") == metric
    assert f'data-field="metric_heading">{metric}<' in page
    direction = "higher" if board["direction"] == "max" else "lower"
    assert f"{direction} is better" in _text(re.search(r'id="leaderboard-summary".*?</p>', page, re.S).group(0))


def test_log_loss_gives_gold_silver_and_bronze(ranked):
    client, experiment_id = ranked["client"], ranked["experiment"]["id"]
    page = _html(client, f"/experiments/{experiment_id}?metric=log_loss")
    medals = [re.search(r'data-medal="([a-z]*)"', row).group(1) for row in _rows(page, "leaderboard-entries")]
    assert medals == ["gold", "silver", "bronze"]
    leader = client.get(f"/api/experiments/{experiment_id}/leaderboard?metric=log_loss").get_json()["entries"][0]
    names = {a["key"]: a["names"]["classification"] for a in client.get("/api/algorithms").get_json()["algorithms"]}
    summary = _text(re.search(r'id="leaderboard-summary".*?</p>', page, re.S).group(0))
    name, run_id, value = names[leader["algorithm"]], leader["run_id"], metric_value(leader["value"])
    assert f"Leader: {name} (run {run_id}) with {value}." in summary


def test_ties_share_a_rank_and_a_medal(ranked):
    client, experiment_id = ranked["client"], ranked["experiment"]["id"]
    board = client.get(f"/api/experiments/{experiment_id}/leaderboard?metric=accuracy").get_json()
    page = _html(client, f"/experiments/{experiment_id}?metric=accuracy")
    rows = _rows(page, "leaderboard-entries")
    ranks = [int(re.search(r'data-rank="(\d+)"', row).group(1)) for row in rows]
    assert ranks == [e["rank"] for e in board["entries"]]
    for row, rank in zip(rows, ranks, strict=True):
        assert _field(row, "place") == rank_place(rank)
        assert re.search(r'data-medal="([a-z]*)"', row).group(1) == {1: "gold", 2: "silver", 3: "bronze"}[rank]


def test_built_in_datasets_rank_on_the_test_split_by_default(ranked):
    client, experiment_id = ranked["client"], ranked["experiment"]["id"]
    page = _html(client, f"/experiments/{experiment_id}")
    # iris has no validation split: every run has a test value, none a validation one
    assert _selected(page, "rank-split") == "test"
    assert len(_rows(page, "leaderboard-entries")) == 3
    assert _state(page, "experiment-state")["split_chosen"] is False


def test_a_generated_dataset_ranks_on_the_validation_split_by_default(ranked):
    page = _html(ranked["client"], f"/experiments/{ranked['generated']['id']}")
    assert _selected(page, "rank-split") == "val"
    assert len(_rows(page, "leaderboard-entries")) == 1
    assert _selected(page, "run-dataset") == ranked["moons"]  # the form starts on the dataset it last trained on


def test_runs_without_a_value_are_listed_apart_with_the_reason(ranked):
    client, experiment_id = ranked["client"], ranked["experiment"]["id"]
    page = _html(client, f"/experiments/{experiment_id}?split=val")
    assert _rows(page, "leaderboard-entries") == []
    unranked = _rows(page, "unranked-entries")
    assert sorted(re.search(r'data-run-id="([^"]+)"', r).group(1) for r in unranked) == sorted(ranked["runs"])
    assert all(_field(row, "reason") == "iris has no validation split" for row in unranked)
    assert "No run has a value of accuracy on the validation split yet." in page
    assert _state(page, "experiment-state")["split_chosen"] is True


@pytest.mark.parametrize("metric, reason", [
    ("r2", "r2 is a regression metric; iris is classification"),
    ("loss", "loss is reported by network runs only"),
    ("factorized", "factorized needs factorization data"),
])
def test_a_metric_the_runs_do_not_compute_says_why(ranked, metric, reason):
    page = _html(ranked["client"], f"/experiments/{ranked['experiment']['id']}?metric={metric}")
    unranked = _rows(page, "unranked-entries")
    assert len(unranked) == 3
    assert {_field(row, "reason") for row in unranked} == {reason}
    assert _selected(page, "rank-metric") == metric  # offered even though it does not apply here


def test_a_bad_metric_or_split_in_the_address_falls_back(ranked):
    client, experiment_id = ranked["client"], ranked["experiment"]["id"]
    page = _html(client, f"/experiments/{experiment_id}?metric=nonsense&split=nowhere")
    assert _selected(page, "rank-metric") == "accuracy"
    assert _selected(page, "rank-split") == "test"


def test_the_runs_table_lists_the_experiments_runs(ranked):
    client, experiment_id = ranked["client"], ranked["experiment"]["id"]
    page = _html(client, f"/experiments/{experiment_id}")
    table = re.search(r"<tbody data-runs>(.*?)</tbody>", page, re.S).group(1)
    shown = re.findall(r'<tr data-run-id="([^"]+)"', table)
    assert shown == list(reversed(ranked["runs"]))  # newest first
    assert "2 / 2 steps" in table
    assert f'href="/runs?experiment_id={experiment_id}"' in page
    state = _state(page, "experiment-state")
    assert [r["run_id"] for r in state["runs"]] == shown
    assert {d["id"] for d in state["datasets"]} >= {"iris", "digits"}


# -- formatting shared with the script ------------------------------------------------------------------


@pytest.mark.parametrize("value, text", [
    (None, "—"), (1.0, "1"), (0.9666666666666667, "0.9667"), (0.06043418664676114, "0.06043"),
    (1.2014551129705717, "1.201"), (12345.678, "12350"), (0.000123456, "0.0001235"), (-3.14159, "-3.142"),
    (1.5e-7, "1.5e-7"), (0, "0"),
])
def test_metric_values_read_as_the_page_script_writes_them(value, text):
    # experiment.js writes String(Number(value.toPrecision(4))); the server's rendering must match it
    assert metric_value(value) == text


@pytest.mark.parametrize("rank, words", [(1, "1st place"), (2, "2nd place"), (3, "3rd place"), (4, "4th place"),
                                         (11, "11th place"), (12, "12th place"), (13, "13th place"),
                                         (21, "21st place"), (102, "102nd place")])
def test_ranks_in_words(rank, words):
    assert rank_place(rank) == words
