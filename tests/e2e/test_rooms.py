"""With broadcasting off, a client hears only the runs it subscribed to."""

from __future__ import annotations

from tests.e2e.helpers import RUN_ROOM_EVENTS


def test_subscribed_clients_get_only_their_runs_events(start_server, connect):
    # one run at a time, so run A waits in the queue behind B while its subscriber joins
    server = start_server(env={"LIVETRAIN_BROADCAST_EVENTS": "0", "LIVETRAIN_MAX_CONCURRENT_RUNS": "1"})
    api = server.api
    network_a = api.create_network()["network_id"]
    network_b = api.create_network()["network_id"]
    follows_a, follows_b, follows_none = connect(server), connect(server), connect(server)

    assert follows_b.subscribe(network_id=network_b) == {"ok": True, "room": f"network:{network_b}"}
    run_b = api.train(network_b, epochs=3)["job_id"]
    run_a = api.train(network_a, epochs=3)["job_id"]
    assert follows_a.subscribe(run_id=run_a) == {"ok": True, "room": f"run:{run_a}"}
    assert api.get(f"/api/training/{run_a}")["status"] == "pending"  # so its subscriber misses nothing
    unknown = follows_a.subscribe(run_id="no-such-run")
    assert unknown["ok"] is False and unknown["error"] == "not_found"

    follows_a.wait_for("training_complete", run_a)
    follows_b.wait_for("training_complete", run_b)
    assert api.wait_for_run(run_a)["status"] == api.wait_for_run(run_b)["status"] == "completed"

    for client, run_id in ((follows_a, run_a), (follows_b, run_b)):
        heard = client.events(RUN_ROOM_EVENTS)
        assert {p["run_id"] for _, p in heard} == {run_id}
        # run_created is stored too, but it is a resource event for every client (checked below); the
        # "queued" line of the run's log comes with it, before A's subscriber joined
        stored = [(e["event"], e["seq"]) for e in api.stored_events(run_id)
                  if e["event"] != "run_created" and not e.get("message", "").startswith("queued")]
        heard = [(n, p) for n, p in heard if not p.get("message", "").startswith("queued")]
        assert [(n, p["seq"]) for n, p in heard if n != "training_progress"] == stored
        assert [p["epoch"] for p in client.payloads("training_update")] == [1, 2, 3]
    assert follows_none.events(RUN_ROOM_EVENTS) == []
    # it was listening all along: resource events still reach everyone
    assert {p["run_id"] for p in follows_none.payloads("run_created")} == {run_a, run_b}
