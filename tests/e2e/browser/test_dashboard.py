"""The dashboard in a real browser: create a network, train it, watch it, stop it."""

from __future__ import annotations

import re

from playwright.sync_api import expect


def test_create_train_watch_and_stop_a_network(page, web_server, screenshot):
    page.goto("/")
    expect(page.locator("#connection")).to_have_text("Live")
    page.select_option("#new-dataset", "digits")
    page.fill("#new-layers", "64, 20, 10")
    page.fill("#new-name", "browser-digits")
    page.click("#create-network button[type=submit]")
    card = page.locator("article.network", has_text="browser-digits")
    expect(card).to_be_visible()
    expect(card.locator('[data-field="architecture"]')).to_have_text("64 → 20 → 10")

    card.locator('input[name="epochs"]').fill("200")
    card.locator('button[data-action="train"]').click()
    bar = card.locator('[data-field="progress"]')
    expect(card.locator('[data-field="live"]')).to_be_visible()
    # the bar moves as events arrive: its value goes above zero without a reload
    expect(bar).not_to_have_attribute("aria-valuenow", "0.0")
    expect(card.locator('[data-field="progress_text"]')).to_contain_text(re.compile(r"(epoch \d+ of 200|\d+ / 200)"))
    screenshot(page, "dashboard")
    card.locator('button[data-action="stop"]').click()
    row = page.locator("tbody[data-runs] tr").first
    expect(row.locator('[data-field="status"]')).to_have_text("cancelled")
    expect(card.locator('.card-head [data-field="status"]')).to_have_text(re.compile("created|trained"))


def test_a_run_started_from_a_script_shows_up_live(page, web_server):
    network = web_server.api.create_network(dataset_id="digits", layer_sizes=[64, 12, 10], name="scripted")
    page.goto("/")
    expect(page.locator("#connection")).to_have_text("Live")
    started = web_server.api.train(network["network_id"], epochs=3, mini_batch_size=10, learning_rate=3.0)
    row = page.locator(f'tbody[data-runs] tr[data-run-id="{started["run_id"]}"]')
    expect(row.locator('[data-field="status"]')).to_have_text("completed")
    expect(row.locator('[data-field="progress_text"]')).to_have_text("3 / 3 epochs")
    final = web_server.api.run(started["run_id"])
    expect(row.locator('[data-field="score"]')).to_have_text(f"{final['accuracy'] * 100:.1f}%")
    expect(row.locator('[data-field="trainer"]')).to_have_text("scripted")


def test_the_keyboard_alone_creates_a_network(page):
    page.goto("/")
    page.focus("#new-dataset")
    page.keyboard.press("Tab")
    expect(page.locator("#new-layers")).to_be_focused()
    page.keyboard.type("64, 0, 10")
    page.keyboard.press("Enter")
    # checked before sending: the message is shown and the field marked
    expect(page.locator("#create-network .form-error")).to_contain_text("two or more whole numbers")
    expect(page.locator("#new-layers")).to_have_attribute("aria-invalid", "true")
    page.fill("#new-layers", "")
    page.select_option("#new-dataset", "iris")
    page.focus("#new-name")
    page.keyboard.type("keyboard-net")
    page.keyboard.press("Enter")
    expect(page.locator("article.network", has_text="keyboard-net")).to_be_visible()


def test_the_server_message_shows_when_it_refuses(page, page_problems):
    page_problems.allow("400 POST")
    page.goto("/")
    page.select_option("#new-dataset", "iris")
    page.fill("#new-layers", "5, 3")  # iris has 4 features: the server says so
    page.fill("#new-name", "wrong-width")
    page.click("#create-network button[type=submit]")
    expect(page.locator("#create-network .form-error")).to_contain_text("4")
    expect(page.locator("article.network", has_text="wrong-width")).to_have_count(0)


def test_the_dashboard_fits_a_phone(phone_page, screenshot):
    phone_page.goto("/")
    expect(phone_page.locator("#connection")).to_have_text("Live")
    overflow = phone_page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"the page is {overflow}px wider than the phone"
    screenshot(phone_page, "dashboard-phone")


def test_the_api_reference_works_offline(page):
    page.goto("/api/docs")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("livetrain API")


def test_experiments_arrive_and_count_their_runs_live(page, web_server):
    page.goto("/")
    expect(page.locator("#connection")).to_have_text("Live")
    experiment = web_server.api.post("/api/experiments", {"name": "live-counts"}, expect=201)
    item = page.locator(f'#experiment-list li[data-experiment-id="{experiment["experiment_id"]}"]')
    expect(item.locator('[data-field="name"]')).to_have_text("live-counts")
    started = web_server.api.post(f"/api/experiments/{experiment['experiment_id']}/runs",
                                  {"algorithm": "decision_tree", "dataset_id": "iris", "steps": 2}, expect=202)
    web_server.api.wait_for_run(started["run_id"])
    expect(item.locator('[data-field="runs"]')).to_have_text("1")
    expect(item.locator('[data-field="active_runs"]')).to_have_text("0")


def test_without_broadcasting_the_dashboard_follows_runs_through_their_rooms(start_server, page):
    # Training events then go only to rooms: the page must join the run's room to see it move.
    # (start_server comes first so that the page closes before its server stops.)
    server = start_server(env={"LIVETRAIN_BROADCAST_EVENTS": "false"})
    network = server.api.create_network(dataset_id="digits", layer_sizes=[64, 12, 10], name="rooms-only")
    page.goto(server.url + "/")
    expect(page.locator("#connection")).to_have_text("Live")
    started = server.api.train(network["network_id"], epochs=4, mini_batch_size=10, learning_rate=3.0)
    row = page.locator(f'tbody[data-runs] tr[data-run-id="{started["run_id"]}"]')
    expect(row.locator('[data-field="status"]')).to_have_text("completed")
    expect(row.locator('[data-field="progress_text"]')).to_have_text("4 / 4 epochs")
    card = page.locator("article.network", has_text="rooms-only")
    expect(card.locator('[data-field="version"]')).to_have_text("v1")
