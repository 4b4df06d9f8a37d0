"""Schemathesis against a real server's OpenAPI document: whatever it sends, no answer is a 5xx.

A throwaway server (its own home) takes the cases; `DELETE /api/networks` (delete everything) is left
out so the fuzz keeps something to find. Runs are bounded (3 epochs, one at a time) so cases that start
training stay short. A few cases per operation keep the whole under a minute.
"""

from __future__ import annotations

import hypothesis
import pytest
import requests
import schemathesis
from prometheus_client.parser import text_string_to_metric_families
from schemathesis.checks import not_a_server_error

from tests.e2e.helpers import ServerProcess
from tests.e2e.test_auth import create_token

EXAMPLES_PER_OPERATION = 15


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory):
    folder = tmp_path_factory.mktemp("fuzz")
    home = folder / "home"
    home.mkdir()
    token = create_token(home, "fuzz", "admin")
    # auth on, as a shared server runs; no rate limit, so every case reaches the endpoint it is for
    server = ServerProcess(home, folder / "server.log", {
        "LIVETRAIN_MAX_EPOCHS": "3", "LIVETRAIN_MAX_CONCURRENT_RUNS": "1", "LIVETRAIN_WARM_WORKERS": "0",
        "LIVETRAIN_AUTH": "on", "LIVETRAIN_RATE_LIMIT_WRITES": "off", "LIVETRAIN_RATE_LIMIT_UPLOADS": "off"})
    server.start()
    server.token = token
    yield server
    server.stop()


@pytest.fixture(scope="module")
def fuzz_headers(fuzz_server) -> dict[str, str]:
    """Headers every fuzz request carries: the admin token made with `livetrain tokens create`, so every
    endpoint is reached past its auth check."""
    return {"Authorization": f"Bearer {fuzz_server.token}"}


def operations(fuzz_server, fuzz_headers) -> list:
    """The operations of the server's OpenAPI document, delete-all left out."""
    schema = schemathesis.openapi.from_url(f"{fuzz_server.url}/api/openapi.json", headers=fuzz_headers)
    found = [result.ok() for result in schema.exclude(method="DELETE", path="/api/networks").get_all_operations()]
    assert len(found) > 20, [f"{o.method} {o.path}" for o in found]
    return found


# schemathesis's pytest integration (`from_fixture`) does not run under pytest 9 (it sets a node's
# `_nodeid`), so each operation's cases are drawn here with Hypothesis directly.
def test_no_request_is_answered_with_a_server_error(fuzz_server, fuzz_headers):
    errors: list[str] = []
    found = operations(fuzz_server, fuzz_headers)
    for operation in found:

        @hypothesis.settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, derandomize=True, database=None,
                             suppress_health_check=list(hypothesis.HealthCheck), phases=[hypothesis.Phase.generate])
        @hypothesis.given(case=operation.as_strategy())
        def no_server_error(case):
            case.call_and_validate(base_url=fuzz_server.url, headers=fuzz_headers, checks=[not_a_server_error],
                                   timeout=30)

        try:
            no_server_error()
        except Exception as exc:  # every operation is tried; all failures are reported together
            errors.append(f"{operation.method.upper()} {operation.path}: {exc}")
    assert not errors, "\n\n".join(errors)
    # the cases did reach the server (its own count of the requests it answered)
    scrape = requests.get(f"{fuzz_server.url}/metrics", headers=fuzz_headers, timeout=30).text
    answered = sum(s.value for family in text_string_to_metric_families(scrape) for s in family.samples
                   if s.name == "livetrain_http_requests_total")
    assert answered >= 2 * len(found), (answered, len(found))
