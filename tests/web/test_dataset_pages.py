"""The dataset pages as the server renders them: `/datasets` and `/datasets/<id>`."""

from __future__ import annotations

import io
import json
import re
from html import unescape

from livetrain.web import datasets as dataset_views
from tests.helpers import create_network, start_run, wait_for_run

COLORS = ["red", "blue", "green"]


def people_csv(rows: int = 40) -> bytes:
    """A small table with one column of every kind: an id, numbers with gaps, categories, yes/no, text, dates."""
    lines = ["id,age,color,member,notes,joined,label"]
    for i in range(1, rows + 1):
        age = "" if i % 8 == 0 else str(20 + i)
        lines.append(f"{i},{age},{COLORS[i % 3]},{'yes' if i % 2 else 'no'},free text number {i} here,"
                     f"2021-01-{i % 28 + 1:02d},{'B' if i % 3 == 0 else 'A'}")
    return ("\n".join(lines) + "\n").encode()


def semicolon_csv(rows: int = 30, missing_target_at: tuple[int, ...] = (3,)) -> bytes:
    """A spreadsheet export from a German Windows: semicolons, decimal commas, dots between thousands, CRLF, cp1252."""
    lines = ["größe;preis;art"]
    for i in range(rows):
        kind = "" if i in missing_target_at else "AB"[i % 2]
        lines.append(f"{i},5;1.{i:03d},25;{kind}")
    return ("\r\n".join(lines) + "\r\n").encode("cp1252")


def workbook_xlsx() -> bytes:
    """An Excel workbook whose table is on its second sheet, "Data" (the first, "Notes", is empty)."""
    import openpyxl

    book = openpyxl.Workbook()
    book.active.title = "Notes"
    sheet = book.create_sheet("Data")
    sheet.append(["x", "y", "label"])
    for i in range(20):
        sheet.append([i, i * 0.5, "AB"[i % 2]])
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def upload(client, data: bytes, filename: str = "people.csv", **form) -> dict:
    response = client.post("/api/datasets", data={"file": (io.BytesIO(data), filename), **form},
                           content_type="multipart/form-data")
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def html_of(client, url: str, status: int = 200) -> str:
    response = client.get(url)
    assert response.status_code == status
    assert response.mimetype == "text/html"
    return response.get_data(as_text=True)


def row_of(html: str, attribute: str, value: str, tag: str = "tr") -> str:
    match = re.search(rf'<{tag} {attribute}="{re.escape(value)}".*?</{tag}>', html, re.S)
    assert match, f"no <{tag} {attribute}={value!r}> on the page"
    return re.sub(r"\s+", " ", match.group(0))


def state_of(html: str, name: str) -> dict:
    match = re.search(rf'<script id="{name}" type="application/json">(.*?)</script>', html, re.S)
    assert match, f"the page embeds {name}"
    return json.loads(match.group(1))


def facts_of(html: str) -> dict[str, tuple[str, str, str]]:
    """How the file was read, as the page says it: {key: (label, value, given|detected)}."""
    found = re.findall(r'<div data-fact="(\w+)"><dt>([^<]+)</dt><dd>([^<]+?)\s*<small class="how"[^>]*>(\w+)</small>',
                       html)
    return {key: (label, unescape(value), how) for key, label, value, how in found}


def test_uploaded_dataset_page_shows_schema_balance_and_preview(client):
    dataset = upload(client, people_csv(), name="people")
    html = html_of(client, f"/datasets/{dataset['id']}")

    assert "<h1 id=\"dataset-title\">people</h1>" in html
    assert "uploaded file people.csv" in html
    assert f">{dataset['content_sha256'][:12]}</code>" in html
    assert f'href="/api/datasets/{dataset["id"]}/csv"' in html
    assert "28 / 6 / 6" in html  # 70/15/15 of 40 rows
    # the schema: each column's inferred type and role, and why a column was left out
    expected = {"id": ("numeric", "ignored", "identifier-like: every value distinct"),
                "age": ("numeric", "feature", ""), "color": ("categorical", "feature", ""),
                "member": ("boolean", "feature", ""), "notes": ("text", "ignored", "free text is left out"),
                "joined": ("datetime", "feature", ""), "label": ("categorical", "target", "")}
    for column, (kind, role, note) in expected.items():
        row = row_of(html, "data-column", column)
        assert f'data-role="{role}"' in row
        assert f'<td data-field="type">{kind}</td>' in row
        assert f"<td>{note}</td>" in row
    # missing values: every eighth age is empty
    assert '<td class="num" data-field="missing">5 <small>(12.5%)</small></td>' in row_of(html, "data-column", "age")
    assert "Missing values in 1 of 7 columns (5 empty cells)" in re.sub(r"\s+", " ", html)
    # class balance: 27 A, 13 B, as counts and percents
    a, b = row_of(html, "data-class", "A"), row_of(html, "data-class", "B")
    assert '<span class="bar-value" data-field="count">27</span>' in a and ">67.5%</td>" in a
    assert '<span class="bar-value" data-field="count">13</span>' in b and ">32.5%</td>" in b
    # the preview: the first rows as uploaded, an empty cell said so
    preview = html[html.index('class="preview-table"'):]
    assert "free text number 1 here" in preview and "2021-01-02" in preview
    assert "free text number 8 here" in preview and '<em class="missing">empty</em>' in preview
    assert "color=blue" in html  # the model's inputs, one-hot encoded


def test_each_column_shows_the_inputs_the_model_gets_from_it(client):
    dataset = upload(client, people_csv(), name="people")
    html = html_of(client, f"/datasets/{dataset['id']}")
    made = {c["name"]: c["features"] for c in dataset["schema"]["columns"]}
    assert made["joined"][:2] == ["joined.year", "joined.month"]  # dates without times: no hours
    for column, names in made.items():
        cell = re.search(r'<td data-field="features">(.*?)</td>', row_of(html, "data-column", column)).group(1)
        assert re.findall(r"<code>(.*?)</code>", cell) == (names or [])
    assert made["id"] is None and made["label"] is None  # ignored and target columns feed nothing


def test_dataset_page_says_how_the_file_was_read_what_was_left_out_and_offers_it_as_uploaded(client):
    data = semicolon_csv()
    dataset = upload(client, data, filename="preise.csv", delimiter="semicolon", encoding="cp1252",
                     missing_target="drop")
    html = html_of(client, f"/datasets/{dataset['id']}")
    flat = re.sub(r"\s+", " ", html)

    assert "How the file was read" in html and "<code>preise.csv</code>" in html
    assert facts_of(html) == {
        "format": ("Format", "CSV", "detected"),
        "encoding": ("Encoding", "cp1252", "given"),
        "delimiter": ("Delimiter", "semicolon (';')", "given"),
        "quote": ("Quote", """double quote ('"')""", "detected"),
        "decimal": ("Decimal mark", "comma (',')", "detected"),
        "thousands": ("Thousands separator", "dot ('.')", "detected"),
        "line_ending": ("Line endings", "CRLF (Windows)", "detected"),
    }
    # one row had no target and was left out: 29 rows remain
    assert "<dt>Rows</dt><dd>29</dd>" in flat
    assert '<dd data-field="dropped">1 row without a target value' in flat
    # each column's numbers as the file wrote them
    assert "<td>numbers written with decimal comma</td>" in row_of(html, "data-column", "größe")
    assert ("<td>numbers written with thousands separator dot (&#39;.&#39;), decimal comma</td>"
            in row_of(html, "data-column", "preis"))
    assert '<td data-field="type">numeric</td>' in row_of(html, "data-column", "preis")
    # the file as uploaded, byte for byte, besides the CSV
    link = re.search(rf'<a class="button" href="(/api/datasets/{dataset["id"]}/file)" download[^>]*>([^<]+)</a>',
                     html)
    assert link and link.group(2) == "Download the file as uploaded"
    with client.get(link.group(1)) as response:
        assert response.data == data


def test_an_excel_upload_names_its_sheet(client):
    dataset = upload(client, workbook_xlsx(), filename="book.xlsx", sheet="Data")
    html = html_of(client, f"/datasets/{dataset['id']}")

    # a workbook has no delimiter, encoding or decimal mark to tell
    assert facts_of(html) == {"format": ("Format", "Excel workbook (.xlsx)", "detected"),
                              "sheet": ("Sheet", "Data", "given")}
    assert "Rows left out" not in html


def test_a_dataset_stored_before_dialects_were_recorded_still_renders(client, app):
    dataset = upload(client, people_csv(), name="old-upload")
    store = app.extensions["livetrain"].store
    stored = store.get_dataset(dataset["id"])
    # as a dataset uploaded by an earlier version was stored: no dialect, no dropped rows, no number formats
    stored.meta["schema"].pop("dialect")
    stored.meta["schema"].pop("dropped_rows")
    for column in stored.meta["schema"]["columns"]:
        column.pop("number_format")
    store.upsert_dataset(stored)
    html = html_of(client, f"/datasets/{dataset['id']}")

    assert "<h1 id=\"dataset-title\">old-upload</h1>" in html
    assert "How the file was read" not in html and "Rows left out" not in html
    assert 'data-role="target"' in row_of(html, "data-column", "label")
    assert f'href="/api/datasets/{dataset["id"]}/file"' in html


def test_list_shows_builtins_and_an_upload_with_the_forms(client, app):
    dataset = upload(client, people_csv(), filename="crowd.csv")
    html = html_of(client, "/datasets")

    row = row_of(html, "data-dataset-id", dataset["id"])
    assert f'href="/datasets/{dataset["id"]}"' in row
    assert '<strong data-field="name">crowd</strong>' in row
    assert '<span data-field="kind">uploaded</span>' in row and "crowd.csv" in row
    assert '<td data-label="Task" data-field="task">classification</td>' in row
    assert '<td data-label="Classes" data-field="n_classes">2</td>' in row
    assert "28 / 6 / 6" in row
    iris = row_of(html, "data-dataset-id", "iris")
    assert '<span data-field="kind">built-in</span>' in iris and "120 / 0 / 30" in iris
    diabetes = row_of(html, "data-dataset-id", "diabetes")
    assert '<td data-label="Classes" data-field="n_classes">—</td>' in diabetes
    default = client.get("/api/datasets").get_json()["default"]
    assert re.search(r'<span class="tag" data-field="default">default</span>',
                     row_of(html, "data-dataset-id", default))

    # the upload form knows the server's size limit; the generate form has every generator's parameters
    state = state_of(html, "datasets-state")
    assert state["max_upload_bytes"] == app.extensions["livetrain"].settings.max_upload_bytes
    assert "at most 2 GiB" in html  # the default limit, 2 GiB since uploads stream to disk
    # every file format, and the reading options (collapsed, each left to detection unless set)
    assert 'accept=".csv,.tsv,.tab,.txt,.gz,.xlsx,.parquet,' in html
    options = html[html.index('<details class="reading-options" id="upload-options">'):html.index("</details>")]
    for field in ("delimiter", "quote", "decimal", "thousands", "format"):
        assert re.search(rf'<select id="upload-{field}" name="{field}"[^>]*>\s*<option value="">', options), field
    for field in ("encoding", "sheet"):
        assert re.search(rf'<input id="upload-{field}" name="{field}"', options), field
    assert '<input type="radio" name="missing_target" value="refuse" checked> refuse the file' in options
    assert 'value="drop"> leave them out' in options
    generators = client.get("/api/datasets/generators").get_json()["generators"]
    for generator in generators:
        assert f'<option value="{generator["key"]}"' in html
        for param in generator["params"]:
            field = re.search(rf'<input id="gen-{generator["key"]}-{param["name"]}"[^>]*>', html, re.S)
            assert field, f"{generator['key']}.{param['name']} has an input"
            assert f'value="{param["default"]}"' in field.group(0)
            assert f'min="{param["min"]}"' in field.group(0) and f'max="{param["max"]}"' in field.group(0)
    assert re.search(r'<option value="moons"[^>]*selected>', html)


def test_list_is_paginated(client, monkeypatch):
    monkeypatch.setattr(dataset_views, "DATASETS_PER_PAGE", 4)
    for n in (30, 40):
        client.post("/api/datasets", json={"generator": "moons", "params": {"n_samples": n}})
    ids = [d["id"] for d in client.get("/api/datasets").get_json()["datasets"]]
    assert len(ids) > 4

    first, second = html_of(client, "/datasets"), html_of(client, "/datasets?page=2")
    shown = [re.findall(r'<tr data-dataset-id="([^"]+)"', page) for page in (first, second)]
    assert shown == [ids[:4], ids[4:8]]
    assert f"1–4 of {len(ids)}" in first and 'rel="next"' in first and 'rel="prev"' not in first
    assert f"5–{min(8, len(ids))} of {len(ids)} · page 2" in second and 'href="/datasets" rel="prev"' in second
    assert state_of(second, "datasets-state")["offset"] == 4


def test_unknown_dataset_is_a_404_page(client):
    html = html_of(client, "/datasets/no-such-set", status=404)
    assert "Not found" in html and "no dataset &#39;no-such-set&#39;" in html


def test_image_builtin_says_it_has_no_preview_table(client):
    html = html_of(client, "/datasets/digits")
    assert "No preview table for an image dataset" in html
    assert 'class="preview-table"' not in html
    assert "1 × 8 × 8" in html
    balance = [row_of(html, "data-class", str(k)) for k in range(10)]
    assert '<span class="bar-value" data-field="count">178</span>' in balance[0]  # digits has 178 zeros
    assert "1,797 rows in 10 classes" in html


def test_tabular_builtin_shows_its_scaled_features_and_rows(client):
    html = html_of(client, "/datasets/iris")
    for column in ("x0", "x1", "x2", "x3"):
        assert 'data-role="feature"' in row_of(html, "data-column", column)
    assert 'data-role="target"' in row_of(html, "data-column", "target")
    assert "features already scaled" in html
    assert html.count("<tr data-class=") == 3 and ">33.3%</td>" in html
    preview = html[html.index('class="preview-table"'):]
    assert len(re.findall(r"<tr>\s*<td class=\"num\">\d+</td>", preview)) == 10


def test_generated_regression_says_it_has_no_classes(client):
    dataset = client.post("/api/datasets", json={"generator": "regression", "name": "lines",
                                                 "params": {"n_samples": 40, "n_features": 3,
                                                            "n_informative": 2}}).get_json()
    html = re.sub(r"\s+", " ", html_of(client, f"/datasets/{dataset['id']}"))
    assert "generated: regression" in html and "n_samples 40" in html
    assert "Regression: the target is a number" in html and "so there are no classes" in html
    assert "<tr data-class=" not in html
    assert "as generated." in html


def test_page_lists_the_networks_and_runs_on_a_dataset(client):
    dataset = upload(client, people_csv())
    before = html_of(client, f"/datasets/{dataset['id']}")
    assert '<p id="networks-empty" class="empty">No network is bound to this dataset.' in before
    assert "No runs on this dataset yet." in before
    network = create_network(client, dataset_id=dataset["id"], layer_sizes=[dataset["n_features"], 4, 2],
                             name="people-net")
    run = wait_for_run(client, start_run(client, network["network_id"], epochs=1)["run_id"])
    html = html_of(client, f"/datasets/{dataset['id']}")

    item = row_of(html, "data-network-id", network["network_id"], tag="li")
    assert f'href="/networks/{network["network_id"]}"' in item and "people-net" in item
    assert f'{dataset["n_features"]} → 4 → 2' in item
    row = row_of(html, "data-run-id", run["run_id"])
    assert 'data-status="completed"' in row and "people-net" in row
    assert state_of(html, "dataset-state")["runs"][0]["run_id"] == run["run_id"]
    assert 'id="networks-empty" class="empty" hidden' in html
