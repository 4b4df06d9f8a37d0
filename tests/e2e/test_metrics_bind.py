"""LIVETRAIN_METRICS_BIND: a real server also answers GET /metrics on a separate address, alone."""

from __future__ import annotations

import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.helpers import free_port


def samples(text: str) -> dict[tuple[str, tuple], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_metrics_on_their_own_address_after_a_run(start_server):
    bind = f"127.0.0.1:{free_port()}"
    server = start_server(env={"LIVETRAIN_METRICS_BIND": bind, "LIVETRAIN_WARM_WORKERS": "0"})
    network = server.api.create_network()
    run = server.api.wait_for_run(server.api.train(network["network_id"], epochs=1)["run_id"])
    assert run["status"] == "completed"

    apart = requests.get(f"http://{bind}/metrics", timeout=30)
    assert apart.status_code == 200 and apart.headers["Content-Type"].startswith("text/plain")
    found = samples(apart.text)
    assert found[("livetrain_epochs_total", ())] == 1
    assert found[("livetrain_runs", (("queue", "local"), ("status", "completed")))] == 1
    assert found[("livetrain_workers", ())] == 1
    route = (("method", "POST"), ("route", "/api/networks/<network_id>/train"), ("status", "202"))
    assert found[("livetrain_http_requests_total", route)] == 1
    # the same registry as the app's own /metrics
    assert samples(requests.get(f"{server.url}/metrics", timeout=30).text)[("livetrain_runs", (
        ("queue", "local"), ("status", "completed")))] == 1

    other = requests.get(f"http://{bind}/api/status", timeout=30)
    assert other.status_code == 404  # nothing but the metrics there


def test_a_malformed_metrics_bind_stops_serve_with_a_message(tmp_path):
    import subprocess
    import sys

    from tests.e2e.helpers import livetrain_env

    home = tmp_path / "home"
    home.mkdir()
    done = subprocess.run([sys.executable, "-m", "livetrain", "serve", "--home", str(home), "--port", str(free_port())],
                          env=livetrain_env(home, {"LIVETRAIN_METRICS_BIND": "9100"}), capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 2 and "metrics_bind must be host:port" in done.stderr
