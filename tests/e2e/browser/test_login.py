"""Signing in to the pages of a server that asks for tokens, in a real browser: the login form, the
session cookie, the CSRF check on the page's writes, signing out."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.e2e.browser.conftest import DESKTOP, _checked_page
from tests.e2e.conftest import _started
from tests.e2e.helpers import Api, ServerProcess
from tests.e2e.test_auth import create_token


@pytest.fixture(scope="module")
def secured_web(tmp_path_factory):
    folder = tmp_path_factory.mktemp("browser-auth")
    home = folder / "home"
    home.mkdir()
    token = create_token(home, "page user", "write")
    admin = create_token(home, "admin", "admin")
    server = ServerProcess(home, folder / "server.log", {"LIVETRAIN_AUTH": "on"})
    _started.append(server)
    server.start()
    yield server, token, admin
    server.stop()


@pytest.fixture
def secured_page(browser, secured_web, page_problems):
    yield from _checked_page(browser, secured_web[0], page_problems, DESKTOP)


def test_sign_in_work_with_csrf_and_sign_out(secured_page, secured_web, page_problems):
    page, (server, token, _) = secured_page, secured_web
    page_problems.allow("401 POST")  # the wrong token below
    page_problems.allow("403 POST")  # the forged write below

    page.goto("/")
    expect(page).to_have_url(re.compile(r"/login\?next=/$"))
    page.fill("#token", "lt_not-the-right-one")
    page.click("#login-form button[type=submit]")
    expect(page.locator("#login-error")).to_contain_text("unknown token")

    page.fill("#token", token)
    page.click("#login-form button[type=submit]")
    expect(page).to_have_url(re.compile(r"/$"))
    expect(page.locator(".signed-in")).to_contain_text("Signed in as page user (write)")
    expect(page.locator("#connection")).to_have_text("Live")  # Socket.IO took the session too

    cookie = next(c for c in page.context.cookies() if c["name"] == "livetrain_session")
    assert cookie["httpOnly"] is True and cookie["sameSite"] == "Lax"
    assert token not in cookie["value"]
    assert "livetrain_session" not in page.evaluate("document.cookie")

    # the page's own form sends the CSRF token: the network is created
    page.select_option("#new-dataset", "digits")
    page.fill("#new-layers", "64, 8, 10")
    page.fill("#new-name", "signed-in-net")
    page.click("#create-network button[type=submit]")
    expect(page.locator("article.network", has_text="signed-in-net")).to_be_visible()

    # a write from the same page without the CSRF token is refused and changes nothing
    forged = page.evaluate("""async () => {
        const r = await fetch('/api/networks', {method: 'POST', headers: {'Content-Type': 'application/json'},
                                                 body: JSON.stringify({layer_sizes: [64, 8, 10], name: 'forged'})});
        return [r.status, await r.json()];
    }""")
    assert forged[0] == 403 and forged[1]["error"] == "csrf_failed"
    names = {n["name"] for n in Api(server.url, token).get("/api/networks")["networks"]}
    assert names == {"signed-in-net"}

    page.click(".signed-in button[type=submit]")
    expect(page).to_have_url(re.compile(r"/login$"))
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/login\?next=/$"))


def test_a_revoked_token_ends_the_page_session_and_its_live_updates(secured_page, secured_web, page_problems):
    page, (server, _, admin) = secured_page, secured_web
    # the header refreshes its counts shortly after an event (the revocation's own, for one): when that
    # request leaves after the revocation, it is refused, as it should be
    page_problems.allow("401 GET")
    api = Api(server.url, admin)
    made = api.post("/api/tokens", {"name": "short visit", "scope": "read"}, expect=201)
    page.goto("/login")
    page.fill("#token", made["token"])
    page.click("#login-form button[type=submit]")
    expect(page.locator("#connection")).to_have_text("Live")

    api.delete(f"/api/tokens/{made['id']}")
    page.evaluate("window.livetrain.connection.socket.disconnect().connect()")
    expect(page.locator("#connection")).to_have_text("Signed out")
    expect(page.locator("#notices a", has_text="sign in again")).to_have_attribute("href", "/login?next=%2F")
    page.goto("/runs")
    expect(page).to_have_url(re.compile(r"/login\?next=/runs$"))
    api.close()
