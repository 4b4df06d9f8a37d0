"""The scale-out metadata store: the same server on PostgreSQL keeps everything across a restart."""

from __future__ import annotations


def test_networks_and_runs_survive_a_restart_on_postgresql(postgres_url, start_server, connect):
    import psycopg

    env = {"LIVETRAIN_DATABASE_URL": postgres_url}
    first = start_server(env=env)
    network_id = first.api.create_network()["network_id"]
    run_id = first.api.train(network_id, epochs=2)["job_id"]
    run = first.api.wait_for_run(run_id)
    assert run["status"] == "completed"
    first.stop()

    # the rows are in PostgreSQL, not in a SQLite file beside the server
    assert not (first.home / "livetrain.db").exists()
    with psycopg.connect(postgres_url.replace("+psycopg", "")) as db:
        assert db.execute("SELECT count(*) FROM networks WHERE id = %s", (network_id,)).fetchone() == (1,)

    second = start_server(home=first.home, env=env)
    api = second.api
    network = api.get(f"/api/networks/{network_id}")
    assert network["trained"] is True and network["accuracy"] == run["accuracy"]
    assert [v["version"] for v in api.get(f"/api/networks/{network_id}/versions")["versions"]] == [1]
    again = api.run(run_id)
    assert again["status"] == "completed" and again["accuracy"] == run["accuracy"]
    assert [m["epoch"] for m in api.get(f"/api/runs/{run_id}/metrics")["metrics"]] == [1, 2]
    assert api.get(f"/api/networks/{network_id}/successful_example")["network_id"] == network_id

    client = connect(second)
    next_id = api.train(network_id, epochs=1)["job_id"]
    assert client.wait_for("training_complete", next_id)["version"] == 2
