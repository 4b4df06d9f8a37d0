"""Fixtures for end-to-end tests: a shared real server, separate servers on demand, Socket.IO clients.

Every server runs `python -m livetrain serve --async-mode eventlet` in its own process group
and is stopped at teardown whatever the test did; a failing test's report carries the end of
the log of every server it used.
"""

from __future__ import annotations

import atexit
from pathlib import Path

import pytest

from tests.e2e.helpers import LiveClient, ServerProcess

_started: list[ServerProcess] = []


@atexit.register
def _stop_leftovers() -> None:
    # a last resort if pytest is torn down without running fixture finalizers
    for server in _started:
        if server.running:
            server.kill()


class ServerFactory:
    """Starts separate servers for one test (to configure, kill or restart them)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.servers: list[ServerProcess] = []

    def __call__(self, home: Path | None = None, env: dict[str, str] | None = None) -> ServerProcess:
        """Start a server (on `home`, e.g. a previous server's, or a fresh one) and wait until it answers."""
        n = len(self.servers)
        server = ServerProcess(home or self.folder / f"home{n}", self.folder / f"server{n}.log", env)
        self.servers.append(server)
        _started.append(server)
        return server.start()

    def stop_all(self) -> None:
        for server in self.servers:
            server.stop()


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    """The real server shared by tests that neither reconfigure nor kill it (events broadcast, the default)."""
    folder = tmp_path_factory.mktemp("e2e-server")
    process = ServerProcess(folder / "home", folder / "server.log")
    _started.append(process)
    process.start()
    yield process
    process.stop()


@pytest.fixture
def start_server(tmp_path):
    """`start_server(home=None, env=None)` starts a separate server; all are stopped at teardown."""
    factory = ServerFactory(tmp_path)
    yield factory
    factory.stop_all()


@pytest.fixture
def connect():
    """`connect(server)` opens a recording Socket.IO client; all are disconnected at teardown."""
    clients: list[LiveClient] = []

    def open_client(server: ServerProcess) -> LiveClient:
        client = LiveClient(server.url)
        clients.append(client)
        return client.connect()

    yield open_client
    for client in clients:
        client.disconnect()


def _servers_of(item) -> list:
    from tests.e2e.cluster import Cluster

    found = []
    for value in getattr(item, "funcargs", {}).values():
        if isinstance(value, ServerProcess):
            found.append(value)
        elif isinstance(value, ServerFactory):
            found.extend(value.servers)
        elif isinstance(value, Cluster):  # its server nodes and workers
            found.extend([*value.servers, *value.workers])
    return found


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """Attach the server logs to a failing test's report."""
    report = yield
    if report.failed:
        for server in _servers_of(item):
            report.sections.append((f"livetrain server log {server.log_path}", server.log_tail() or "(empty)"))
    return report


def pytest_terminal_summary(terminalreporter):
    """After a failure, say where every server's whole log is (the reports show only their ends)."""
    if terminalreporter.stats.get("failed") or terminalreporter.stats.get("error"):
        terminalreporter.section("livetrain server logs")
        for server in _started:
            terminalreporter.write_line(str(server.log_path))
