"""The builder page in a real browser: reorder by keyboard and by drag, add, edit and remove a layer, see a
refused change's message beside its row, and see another client's edit arrive live."""

from __future__ import annotations

import uuid

from playwright.sync_api import expect

LAYERS = [{"type": "Linear", "out_features": 16}, {"type": "ReLU"}, {"type": "Dropout", "p": 0.2},
          {"type": "Linear", "out_features": 10}]


def _network(web_server) -> dict:
    return web_server.api.post("/api/networks", {"dataset_id": "digits", "layers": LAYERS,
                                                 "name": f"builder-{uuid.uuid4().hex[:6]}"}, expect=201)


def _saved_types(web_server, network) -> list[str]:
    return [layer["type"] for layer in web_server.api.get(f"/api/networks/{network['network_id']}")["spec"]["layers"]]


def _open(page, network):
    page.goto(f"/networks/{network['network_id']}/builder")
    expect(page.locator("#connection")).to_have_text("Live")
    return page.locator("#layer-list > li")


def test_reorder_by_keyboard_and_by_drag_is_saved(page, web_server, screenshot):
    network = _network(web_server)
    rows = _open(page, network)
    expect(rows).to_have_count(4)
    expect(rows.nth(0)).to_contain_text("16")  # output shape of the first Linear
    expect(rows.nth(0)).to_contain_text("1,040 params")  # 64 x 16 + 16

    # keyboard: focus the Dropout row, Alt+ArrowUp moves it above the ReLU
    rows.nth(2).focus()
    page.keyboard.press("Alt+ArrowUp")
    expect(page.locator("#revision")).to_have_text("revision 2")
    expect(rows.nth(1)).to_have_attribute("data-type", "Dropout")
    expect(rows.nth(1)).to_be_focused()
    assert _saved_types(web_server, network) == ["Linear", "Dropout", "ReLU", "Linear"]
    expect(page.locator("#builder-announce")).to_have_text("Moved Dropout to position 1.")
    expect(page.locator("#revisions tr").first).to_contain_text("reordered the layers: 0, 2, 1, 3")
    expect(page.locator("#notices .notice")).to_have_count(0)  # its own change is not news from elsewhere
    page.keyboard.press("Alt+ArrowDown")
    expect(page.locator("#revision")).to_have_text("revision 3")
    assert _saved_types(web_server, network) == ["Linear", "ReLU", "Dropout", "Linear"]

    # the buttons say what they move
    page.get_by_role("button", name="Move layer 1 (ReLU) down").click()
    expect(page.locator("#revision")).to_have_text("revision 4")
    assert _saved_types(web_server, network) == ["Linear", "Dropout", "ReLU", "Linear"]

    # drag: the ReLU (row 2) dropped on the top half of the Dropout (row 1) lands before it
    box = rows.nth(1).bounding_box()
    rows.nth(2).drag_to(rows.nth(1), target_position={"x": box["width"] / 2, "y": 3})
    expect(page.locator("#revision")).to_have_text("revision 5")
    expect(rows.nth(1)).to_have_attribute("data-type", "ReLU")
    assert _saved_types(web_server, network) == ["Linear", "ReLU", "Dropout", "Linear"]
    expect(page.locator("#revisions tr").first).to_contain_text("reordered the layers: 0, 2, 1, 3")
    screenshot(page, "builder")


def test_a_refused_change_is_shown_beside_its_row_and_changes_nothing(page, web_server, page_problems):
    page_problems.allow("400 PUT")  # the refusals this test provokes on purpose
    network = web_server.api.post("/api/networks", {
        "dataset_id": "digits", "name": f"refusals-{uuid.uuid4().hex[:6]}",
        "layers": [{"type": "Linear", "out_features": 16}, {"type": "Linear", "out_features": 10}]}, expect=201)
    rows = _open(page, network)

    # the output Linear moved above the other: the network would end in the 16-wide one, which is named
    rows.nth(1).focus()
    page.keyboard.press("Alt+ArrowUp")
    refused = rows.nth(0).locator(".row-error")
    expect(refused).to_be_visible()
    expect(refused).to_contain_text("layers[1] (Linear): the last layer must give 10 output(s)")
    expect(page.locator("#layer-list > li.refused")).to_have_count(1)
    expect(rows.nth(1)).to_contain_text("out_features 10")  # nothing moved on the page...
    assert _saved_types(web_server, network) == ["Linear", "Linear"]  # ...nor on the server
    assert web_server.api.get(f"/api/networks/{network['network_id']}")["spec"]["layers"][0]["out_features"] == 16
    expect(page.locator("#revision")).to_have_text("revision 1")

    # the output layer edited to a wrong width: refused in its row, nothing saved
    before = web_server.api.get(f"/api/networks/{network['network_id']}")["spec"]
    rows.nth(1).get_by_role("button", name="Edit").click()
    rows.nth(1).locator('input[name="out_features"]').fill("7")
    rows.nth(1).get_by_role("button", name="Save").click()
    expect(rows.nth(1).locator(".row-error")).to_contain_text(
        "layers[1] (Linear): the last layer must give 10 output(s)")
    assert web_server.api.get(f"/api/networks/{network['network_id']}")["spec"] == before


def test_add_edit_and_remove_a_layer_and_see_another_clients_edit_live(page, web_server):
    network = _network(web_server)
    rows = _open(page, network)

    form = page.locator("#add-layer-form")
    form.locator("#add-type").select_option("Linear")
    form.locator("#add-out_features").fill("12")
    form.locator("#add-position").select_option("2")
    form.get_by_role("button", name="Add layer").click()
    expect(rows).to_have_count(5)
    expect(rows.nth(2)).to_contain_text("out_features 12")
    expect(rows.nth(2)).to_contain_text("204 params")  # 16 x 12 + 12

    rows.nth(2).get_by_role("button", name="Edit").click()
    rows.nth(2).locator('input[name="out_features"]').fill("14")
    rows.nth(2).get_by_role("button", name="Save").click()
    expect(rows.nth(2)).to_contain_text("out_features 14")

    page.get_by_role("button", name="Remove layer 2 (Linear)").click()
    expect(rows).to_have_count(4)
    expect(page.locator("#revision")).to_have_text("revision 4")

    # another client inserts a layer: the page follows without a reload
    web_server.api.post(f"/api/networks/{network['network_id']}/layers",
                        {"layer": {"type": "Tanh"}, "index": 1}, expect=201)
    expect(rows).to_have_count(5)
    expect(rows.nth(1)).to_have_attribute("data-type", "Tanh")
    expect(page.locator("#revision")).to_have_text("revision 5")
    expect(page.locator("#revisions tr").first).to_contain_text("added layers[1] (Tanh)")
    expect(page.locator("#notices .notice")).to_contain_text("Changed elsewhere: added layers[1] (Tanh)")
