"""Fixtures for the page tests: a real server of their own and a headless Chromium driven by Playwright.

Chromium is Debian's (`apt-get install chromium`), found at `LIVETRAIN_TEST_CHROMIUM` or
/usr/bin/chromium; Playwright's own browser download is not used. Without either, every test
here is skipped with a message saying what to install (scripts/test installs both when it can).
Every test fails if the page logged a JavaScript error or a failed request to the server.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.e2e.conftest import _started
from tests.e2e.helpers import ServerProcess

CHROMIUM = os.environ.get("LIVETRAIN_TEST_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
SCREENSHOTS = Path(__file__).resolve().parents[3] / "docs" / "screenshots"
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}

try:
    from playwright.sync_api import expect, sync_playwright
except ImportError:  # pragma: no cover - depends on the machine
    sync_playwright = None
else:
    # What a page shows can wait on a run: a fresh server's first worker, a busy 2-core machine.
    # A generous ceiling, not a speed requirement (the default 5 s makes such tests flaky).
    expect.set_options(timeout=60_000)

if sync_playwright is None:
    pytestmark_reason = "needs Playwright for Python (pip install -r requirements-dev.txt)"
elif not Path(CHROMIUM).is_file():
    pytestmark_reason = (f"needs Chromium at {CHROMIUM}: apt-get install -y chromium chromium-driver "
                         "(or set LIVETRAIN_TEST_CHROMIUM)")
else:
    pytestmark_reason = ""


def pytest_collection_modifyitems(config, items):
    if not pytestmark_reason:
        return
    here = Path(__file__).parent
    for item in items:
        if Path(str(item.fspath)).is_relative_to(here):
            item.add_marker(pytest.mark.skip(reason=pytestmark_reason))


@pytest.fixture(scope="session")
def web_server(tmp_path_factory):
    """A real server for the page tests alone, so other tests' networks do not fill its pages."""
    folder = tmp_path_factory.mktemp("browser-server")
    # progress inside an epoch every 50 ms (default 250 ms), so short test epochs still show it
    process = ServerProcess(folder / "home", folder / "server.log", {"LIVETRAIN_PROGRESS_INTERVAL": "0.05"})
    _started.append(process)
    process.start()
    yield process
    process.stop()


@pytest.fixture(scope="session")
def browser():
    """Headless Debian Chromium, shared by the page tests."""
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS, headless=True)
        yield chromium
        chromium.close()


class PageProblems:
    """JavaScript errors and failed requests a page had; a test fails if there are any."""

    def __init__(self) -> None:
        self.items: list[str] = []
        self.allowed: list[str] = []

    def allow(self, text: str) -> None:
        """A problem the test provokes on purpose (e.g. a 400 it expects), matched by substring."""
        self.allowed.append(text)

    def add(self, text: str) -> None:
        if not any(a in text for a in self.allowed):
            self.items.append(text)


@pytest.fixture
def page_problems():
    return PageProblems()


def _console_error(message) -> bool:
    # A failed request is also logged to the console; the response handler reports it with its URL.
    return message.type == "error" and not message.text.startswith("Failed to load resource")


def _checked_page(browser, web_server, problems: PageProblems, viewport: dict):
    context = browser.new_context(viewport=viewport, base_url=web_server.url)
    page = context.new_page()
    page.set_default_timeout(20_000)
    page.on("pageerror", lambda error: problems.add(f"page error: {error}"))
    page.on("console", lambda msg: problems.add(f"console {msg.type}: {msg.text}") if _console_error(msg) else None)
    page.on("response", lambda r: problems.add(f"{r.status} {r.request.method} {r.url}") if r.status >= 400 else None)
    yield page
    context.close()
    assert not problems.items, "the page had problems:\n" + "\n".join(problems.items)


@pytest.fixture
def page(browser, web_server, page_problems):
    """A desktop-sized page on the test server; fails the test on any JavaScript error or failed request."""
    yield from _checked_page(browser, web_server, page_problems, DESKTOP)


@pytest.fixture
def phone_page(browser, web_server, page_problems):
    """A phone-sized page (390×844), with the same checks."""
    yield from _checked_page(browser, web_server, page_problems, PHONE)


@pytest.fixture
def screenshot(tmp_path):
    """`screenshot(page, name)` takes a full-page PNG: into docs/screenshots/ (the README's pictures)
    when LIVETRAIN_TEST_SCREENSHOTS=1, else into the test's temporary folder, so a test run does
    not change tracked files."""
    folder = SCREENSHOTS if os.environ.get("LIVETRAIN_TEST_SCREENSHOTS") == "1" else tmp_path

    def take(page, name: str) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / f"{name}.png"
        page.screenshot(path=str(target), full_page=True)
        assert target.stat().st_size > 0
        return target

    return take
