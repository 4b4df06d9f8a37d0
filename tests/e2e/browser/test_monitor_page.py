"""The monitor page and the run page's logs panel in a real browser: the weight sheet fills live, the
warning badge shows vanishing gradients, the logs filter by level and text and fold repeats."""

from __future__ import annotations

import uuid

from playwright.sync_api import expect

MLP = [{"type": "Linear", "out_features": 48}, {"type": "ReLU"}, {"type": "Linear", "out_features": 10}]
LOG_ROWS = ("() => Array.from(document.querySelectorAll('#log-lines li'), (li) => ({level: li.dataset.level, "
            "text: li.querySelector('.log-text').textContent, count: li.dataset.count || '1'}))")


def _network(api, **body) -> str:
    return api.post("/api/networks", {"dataset_id": "digits", "layers": MLP, "name": f"monitor-{uuid.uuid4().hex[:6]}",
                                      **body}, expect=201)["network_id"]


def test_the_monitor_page_fills_its_weight_sheet_and_charts_while_the_run_trains(page, web_server, screenshot):
    api = web_server.api
    # one example per step: a few seconds of training, sampled by time (the default rate)
    run_id = api.train(_network(api), epochs=3, batch_size=1)["run_id"]
    page.goto(f"/runs/{run_id}")
    page.get_by_role("link", name="weights and gradients").click()
    expect(page).to_have_url(f"{web_server.url}/runs/{run_id}/monitor")
    page.wait_for_function(f"document.body.dataset.monitorReady === '{run_id}'")

    rows = page.locator("#weight-sheet tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.nth(0).locator("[data-field='name']")).to_have_text("0")
    expect(rows.nth(0).locator("[data-field='params']")).to_have_text("3,120 parameters")
    expect(page.locator(".run-head [data-field='status']")).to_have_text("completed", timeout=90_000)
    # sparklines with points, a histogram of every weight of the layer
    page.wait_for_function("() => document.querySelectorAll('#weight-sheet .sparkline path').length === 4")
    totals = page.evaluate(
        "() => Array.from(document.querySelectorAll('#weight-sheet .histogram'), (h) => h.dataset.total)")
    assert totals == [str(64 * 48), str(48 * 10)]
    assert page.locator("#weight-sheet [data-field='update_ratio']").first.inner_text() not in ("", "—")
    expect(page.locator("[data-field='activations'] li")).to_have_count(1)
    expect(page.locator("[data-field='activations'] li")).to_contain_text("ReLU")
    points = page.evaluate("Chart.getChart(document.getElementById('grad-chart')).data.datasets[0].data.length")
    stored = [e for e in api.stored_events(run_id) if e["event"] == "training_stats"]
    assert points == len(stored) > 1
    assert page.evaluate("Chart.getChart(document.getElementById('lr-chart')).data.datasets[0].data.length") == points
    expect(page.locator("[data-field='warning']")).to_be_hidden()
    expect(page.locator("#heads")).to_be_hidden()  # no heads in this network
    screenshot(page, "monitor-page")

    # a reload starts from the stored history: the same rows and points
    page.reload()
    page.wait_for_function(f"document.body.dataset.monitorReady === '{run_id}'")
    expect(rows).to_have_count(2)
    assert page.evaluate("Chart.getChart(document.getElementById('grad-chart')).data.datasets[0].data.length") == points


def test_vanishing_gradients_show_a_badge_and_the_logs_panel_filters_and_folds(page, web_server):
    api = web_server.api
    # plain SGD at a learning rate of 50 kills every ReLU: every later sample warns of vanishing gradients
    run_id = api.train(_network(api, optimizer="sgd"), epochs=2, batch_size=32, learning_rate=50, momentum=0.9,
                       monitor_every=2)["run_id"]
    api.wait_for_run(run_id)
    warned = [e for e in api.stored_events(run_id) if e["event"] == "training_stats" and e["warnings"]]
    assert warned

    page.goto(f"/runs/{run_id}/monitor")
    badge = page.locator("[data-field='warning']")
    expect(badge).to_be_visible()
    expect(badge).to_have_text("⚠ vanishing gradients")
    expect(page.locator("[data-field='warned']")).to_have_text(str(len(warned)))

    page.goto(f"/runs/{run_id}")
    panel = page.locator("#run-logs")
    every = page.evaluate(LOG_ROWS)
    assert len(every) == len(api.get(f"/api/runs/{run_id}/logs")["lines"])
    assert {row["level"] for row in every} == {"debug", "info", "warning"}

    panel.get_by_label("Level at least").select_option("warning")
    rows = page.evaluate(LOG_ROWS)
    assert len(rows) == len(warned) and {row["level"] for row in rows} == {"warning"}

    panel.get_by_label("Hide noisy").check()
    rows = page.evaluate(LOG_ROWS)
    assert rows == [{"level": "warning", "text": "vanishing gradients in layers 0, 2: gradient norms below 1e-07",
                     "count": str(len(warned))}]
    expect(panel.locator(".log-count")).to_have_text(f"×{len(warned)}")

    panel.get_by_label("Level at least").select_option("debug")
    quiet = page.evaluate(LOG_ROWS)
    assert "debug" not in {row["level"] for row in quiet}  # hide noisy hides debug lines whatever the level says
    panel.get_by_label("Search").fill("EPOCH 2/2")
    rows = page.evaluate(LOG_ROWS)
    assert [row["text"][:9] for row in rows] == ["epoch 2/2"]
    panel.get_by_label("Search").fill("no such words")
    expect(page.locator("#log-lines li")).to_have_count(0)
    expect(panel.locator("[data-field='logs_empty']")).to_have_text("No log lines match the filters.")


def test_the_logs_panel_shows_lines_live_as_the_run_writes_them(page, web_server):
    api = web_server.api
    run_id = api.train(_network(api), epochs=6, batch_size=1)["run_id"]
    page.goto(f"/runs/{run_id}")
    assert page.evaluate("livetrain.embedded('run-state').run.status") in ("queued", "running")
    page.locator("#run-logs").get_by_label("Level at least").select_option("info")
    expect(page.locator("#log-lines li").last).to_contain_text("completed: accuracy", timeout=90_000)
    shown = [row["text"] for row in page.evaluate(LOG_ROWS)]
    stored = [line["message"] for line in api.get(f"/api/runs/{run_id}/logs", params={"level": "info"})["lines"]]
    assert shown == stored
    assert len([text for text in shown if text.startswith("epoch ")]) == 6
