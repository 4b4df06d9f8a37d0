"""The dataset pages in a real browser: upload a CSV, generate a table, refusals in place, delete, phone width."""

from __future__ import annotations

import re
import uuid

from playwright.sync_api import expect

from tests.web.test_dataset_pages import people_csv, semicolon_csv

NO_OVERFLOW = "document.documentElement.scrollWidth <= window.innerWidth"


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def dataset_ids(web_server) -> set[str]:
    return {d["id"] for d in web_server.api.get("/api/datasets")["datasets"]}


def posts_to_datasets(page) -> list[str]:
    """Requests the page sends to POST /api/datasets (filled in as they happen)."""
    sent: list[str] = []
    page.on("request", lambda r: sent.append(r.url) if r.method == "POST" and "/api/datasets" in r.url else None)
    return sent


def test_upload_a_csv_and_land_on_its_page(page, tmp_path, screenshot):
    csv = tmp_path / "people.csv"
    csv.write_bytes(people_csv())
    name = unique("people")
    page.goto("/datasets")
    expect(page.locator("#connection")).to_have_text("Live")
    form = page.locator("#upload-form")
    form.locator('input[name="file"]').set_input_files(str(csv))
    # the target select offers the file's columns, the last one chosen (the server's default)
    target = form.locator('select[name="target"]')
    expect(target.locator("option")).to_have_text(["id", "age", "color", "member", "notes", "joined", "label"])
    expect(target).to_have_value("label")
    expect(page.locator("#upload-target-hint")).to_have_text(
        "7 columns in people.csv (comma-separated); the last one is the default.")
    screenshot(page, "datasets")
    form.locator('input[name="name"]').fill(name)
    # hold the upload to see the form while it is on its way: button disabled, progress said
    held = []
    page.route("**/api/datasets", lambda route: held.append(route) if route.request.method == "POST"
               else route.continue_())
    form.locator('button[type="submit"]').click()
    expect(form.locator('button[type="submit"]')).to_be_disabled()
    expect(form.locator('[data-field="status"]')).to_contain_text(
        re.compile(r"Upload(ing|ed) people\.csv \([\d.]+ KiB\)"))
    assert len(held) == 1
    held[0].continue_()

    expect(page).to_have_url(re.compile(r"/datasets/[0-9a-f]{12}$"))
    expect(page.locator("h1")).to_have_text(name)
    age = page.locator('.schema-table tr[data-column="age"]')
    expect(age.locator('[data-field="type"]')).to_have_text("numeric")
    expect(age.locator('[data-field="missing"]')).to_have_text("5 (12.5%)")
    expect(page.locator('.schema-table tr[data-column="notes"]')).to_contain_text("free text is left out")
    expect(page.locator('.balance tr[data-class="A"]')).to_contain_text(re.compile(r"A\s+27\s+67\.5%"))
    expect(page.locator('.balance tr[data-class="B"]')).to_contain_text(re.compile(r"B\s+13\s+32\.5%"))
    expect(page.locator(".preview-table tbody tr")).to_have_count(10)
    expect(page.locator(".preview-table")).to_contain_text("free text number 1 here")
    screenshot(page, "dataset")


def test_upload_with_reading_options_shows_the_servers_stages_then_the_dialect(page, tmp_path, page_problems):
    page_problems.allow("400 POST")
    csv = tmp_path / "preise.csv"
    csv.write_bytes(semicolon_csv())  # semicolons, decimal commas, cp1252; one row without a target
    page.goto("/datasets")
    expect(page.locator("#connection")).to_have_text("Live")
    form = page.locator("#upload-form")
    form.locator('input[name="file"]').set_input_files(str(csv))
    expect(form.locator('select[name="target"] option')).to_have_text(["größe", "preis", "art"])
    expect(page.locator("#upload-target-hint")).to_have_text(
        "3 columns in preise.csv (semicolon-separated); the last one is the default.")

    # refused for the row without a target: the choice that fixes it is shown and marked
    form.locator('button[type="submit"]').click()
    expect(form.locator(".form-error")).to_contain_text("The target column 'art' is empty in 1 of 30 rows.")
    drop = form.get_by_label("leave them out")
    expect(drop).to_be_focused()
    expect(drop).to_have_attribute("aria-invalid", "true")
    drop.check()
    form.get_by_label("Delimiter").select_option("semicolon")
    form.get_by_label("Decimal mark").select_option(",")
    form.get_by_label("Encoding").fill("cp1252")

    # the new dataset's page answers "204 No Content" first, so this page stays to show the stages the server reported
    dataset_page = re.compile(r"^[^?]*//[^/]+/datasets/[0-9a-f]{12}$")
    page.route(dataset_page, lambda route: route.fulfill(status=204))
    with page.expect_request(dataset_page) as opening:
        form.locator('button[type="submit"]').click()
    expect(form.locator('[data-field="status"]')).to_have_text("Created preise; opening it…")
    steps = page.locator("#upload-steps li")
    expect(steps).to_have_text(["Sending the file", "Reading the file", "Typing, splitting and preprocessing",
                                "Storing"])
    for step in steps.all():  # marked by the server's dataset_progress events, up to "done"
        expect(step).to_have_attribute("data-state", "done")
    page.unroute(dataset_page)
    page.goto(opening.value.url)

    dialect = page.locator("#dialect")
    for key, text in (("delimiter", "semicolon (';') given"), ("decimal", "comma (',') given"),
                      ("encoding", "cp1252 given"), ("thousands", "dot ('.') detected")):
        expect(dialect.locator(f'[data-fact="{key}"] dd')).to_have_text(text)
    expect(page.locator('[data-field="dropped"]')).to_contain_text("1 row without a target value")
    expect(page.locator('.schema-table tr[data-column="preis"]')).to_contain_text(
        "numbers written with thousands separator dot ('.'), decimal comma")


def test_a_refused_csv_shows_the_servers_message_in_the_form(page, tmp_path, web_server, page_problems):
    page_problems.allow("400 POST")
    one_class = tmp_path / "one-class.csv"
    one_class.write_text("size,kind\n" + "".join(f"{i},same\n" for i in range(12)))
    too_few = tmp_path / "three.csv"
    too_few.write_text("a,b\n1,x\n2,y\n3,x\n")
    before = dataset_ids(web_server)
    page.goto("/datasets")
    form = page.locator("#upload-form")
    error = form.locator(".form-error")

    form.locator('input[name="file"]').set_input_files(str(one_class))
    expect(form.locator('select[name="target"]')).to_have_value("kind")
    form.locator('button[type="submit"]').click()
    expect(error).to_have_text("The target column 'kind' has only one value ('same'); classification needs at "
                               "least two classes.")
    expect(form.locator('select[name="target"]')).to_have_attribute("aria-invalid", "true")
    expect(form.locator('button[type="submit"]')).to_be_enabled()

    form.locator('input[name="file"]').set_input_files(str(too_few))
    form.locator('button[type="submit"]').click()
    expect(error).to_contain_text("The table has 3 rows; at least 10 are needed")
    assert page.url.endswith("/datasets")
    assert dataset_ids(web_server) == before  # nothing was stored


def test_the_forms_check_their_fields_before_sending(page, tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    page.goto("/datasets")
    sent = posts_to_datasets(page)
    upload = page.locator("#upload-form")
    upload.locator('button[type="submit"]').click()
    expect(upload.locator(".form-error")).to_have_text("Choose a file to upload.")
    expect(upload.locator('input[name="file"]')).to_be_focused()

    upload.locator('input[name="file"]').set_input_files(str(empty))
    upload.locator('button[type="submit"]').click()
    expect(upload.locator(".form-error")).to_have_text("empty.csv is empty: a table needs a header row and rows.")

    generate = page.locator("#generate-form")
    generate.locator('select[name="generator"]').select_option("moons")
    generate.locator("#gen-moons-n_samples").fill("5")
    generate.locator('button[type="submit"]').click()
    expect(generate.locator(".form-error")).to_have_text("n_samples must be at least 20.")
    expect(generate.locator("#gen-moons-n_samples")).to_have_attribute("aria-invalid", "true")
    assert sent == []


def test_generate_a_dataset_through_the_form(page, web_server, page_problems):
    page_problems.allow("400 POST")
    name = unique("moons")
    page.goto("/datasets")
    form = page.locator("#generate-form")
    # a parameter the browser cannot check alone: the server's message appears in place
    form.locator('select[name="generator"]').select_option("classification")
    expect(page.locator("#generate-description")).to_contain_text("hypercube")
    form.locator("#gen-classification-n_features").fill("3")
    form.locator("#gen-classification-n_informative").fill("5")
    form.locator('button[type="submit"]').click()
    expect(form.locator(".form-error")).to_have_text("n_informative: 5 is more than n_features (3).")
    expect(form.locator("#gen-classification-n_informative")).to_have_attribute("aria-invalid", "true")

    form.locator('select[name="generator"]').select_option("moons")
    expect(form.locator("#gen-classification-n_features")).to_be_hidden()
    form.locator("#gen-moons-n_samples").fill("60")
    form.locator('input[name="name"]').fill(name)
    form.locator('button[type="submit"]').click()
    expect(page).to_have_url(re.compile(r"/datasets/[0-9a-f]{12}$"))
    expect(page.locator("h1")).to_have_text(name)
    expect(page.locator(".dataset-summary")).to_contain_text("generated: moons")
    expect(page.locator('.balance tr[data-class="0"]')).to_contain_text(re.compile(r"30\s+50\.0%"))


def test_list_follows_created_and_deleted_datasets(page, web_server):
    page.goto("/datasets")
    expect(page.locator("#connection")).to_have_text("Live")
    name = unique("live")
    created = web_server.api.post("/api/datasets", {"generator": "moons", "name": name,
                                                    "params": {"n_samples": 40}}, expect=201)
    listed = [d["id"] for d in web_server.api.get("/api/datasets")["datasets"]]
    total = page.locator("#dataset-total")
    expect(total).to_have_text(f"{len(listed):,}")
    row = page.locator(f'tr[data-dataset-id="{created["id"]}"]')
    if listed.index(created["id"]) < 20:  # it sorts onto the first page (built-ins first, then by id)
        expect(row.locator('[data-field="name"]')).to_have_text(name)
        expect(row.locator('[data-field="kind"]')).to_have_text("generated")
        expect(row.locator('[data-field="splits"]')).to_have_text("28 / 6 / 6")
    # deleted while the page is offline: the page catches up when it reconnects
    page.evaluate("livetrain.connection.socket.disconnect()")
    expect(page.locator("#connection")).not_to_have_text("Live")
    web_server.api.delete(f"/api/datasets/{created['id']}")
    page.evaluate("livetrain.connection.socket.connect()")
    expect(row).to_have_count(0)
    expect(total).to_have_text(f"{len(listed) - 1:,}")


def test_delete_refused_in_place_then_a_dataset_deleted(page, web_server, page_problems):
    page_problems.allow("409 DELETE")
    page.on("dialog", lambda dialog: dialog.accept())
    page.goto("/datasets/iris")
    page.locator('button[data-action="delete"]').click()
    error = page.locator("#dataset-actions .form-error")
    expect(error).to_have_text("iris is a built-in dataset and cannot be deleted")

    made = web_server.api.post("/api/datasets", {"generator": "circles", "name": unique("gone"),
                                                 "params": {"n_samples": 40}}, expect=201)
    page.goto(f"/datasets/{made['id']}")
    page.locator('button[data-action="delete"]').click()
    expect(page).to_have_url(re.compile(r"/datasets$"))
    expect(page.locator(f'tr[data-dataset-id="{made["id"]}"]')).to_have_count(0)
    assert made["id"] not in dataset_ids(web_server)


def test_pages_fit_a_phone(phone_page, web_server):
    made = web_server.api.post("/api/datasets", {"generator": "classification", "name": unique("wide"),
                                                 "params": {"n_samples": 40, "n_features": 12}}, expect=201)
    phone_page.goto("/datasets")
    expect(phone_page.locator("#upload-form")).to_be_visible()
    assert phone_page.evaluate(NO_OVERFLOW)
    phone_page.goto(f"/datasets/{made['id']}")
    preview = phone_page.locator(".preview-table")
    expect(preview).to_be_visible()
    assert phone_page.evaluate(NO_OVERFLOW)
    # the wide preview scrolls inside its box instead of widening the page
    assert preview.evaluate("t => t.parentElement.scrollWidth > t.parentElement.clientWidth")


def test_networks_and_runs_on_a_dataset_arrive_live(page, web_server):
    made = web_server.api.post("/api/datasets", {"generator": "blobs", "name": unique("blobs"),
                                                 "params": {"n_samples": 60}}, expect=201)
    page.goto(f"/datasets/{made['id']}")
    expect(page.locator("#connection")).to_have_text("Live")
    expect(page.locator("#networks-empty")).to_be_visible()
    name = unique("blob-net")
    network = web_server.api.post("/api/networks", {"dataset_id": made["id"], "layer_sizes": [2, 4, 3],
                                                    "name": name}, expect=201)
    item = page.locator(f'#network-list li[data-network-id="{network["network_id"]}"]')
    expect(item.locator('[data-field="name"]')).to_have_text(name)
    expect(item.locator('[data-field="architecture"]')).to_have_text("2 → 4 → 3")
    expect(page.locator("#networks-empty")).to_be_hidden()

    run = web_server.api.train(network["network_id"], epochs=2)
    row = page.locator(f'tbody[data-runs] tr[data-run-id="{run["run_id"]}"]')
    expect(row.locator('[data-field="status"]')).to_have_text("completed")
    expect(row.locator('[data-field="progress_text"]')).to_have_text("2 / 2 epochs")
    expect(item.locator('[data-field="status"]')).to_have_text("trained")

    web_server.api.delete(f"/api/networks/{network['network_id']}")
    expect(item).to_have_count(0)
    expect(page.locator("#networks-empty")).to_be_visible()
