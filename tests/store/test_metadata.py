"""MetadataStore on SQLite: typed entities in, typed entities out, and nothing lost across a restart."""

from __future__ import annotations

import pytest
from sqlalchemy import exc, text

from livetrain.store import Dataset, MetadataStore, Network, NetworkVersion, Run, RunEvent, RunStatus


@pytest.fixture
def url(tmp_path):
    return f"sqlite:///{tmp_path / 'meta.db'}"


@pytest.fixture
def store(url):
    s = MetadataStore(url)
    s.create_schema()
    yield s
    s.close()


def make_dataset(dataset_id="iris", **values) -> Dataset:
    fields = dict(id=dataset_id, name=dataset_id, task="classification", source="test", n_features=4,
                  n_classes=3, input_shape=[4], n_train=120, n_test=30)
    fields.update(values)
    return Dataset(**fields)


def make_network(network_id="net1", **values) -> Network:
    fields = dict(id=network_id, name=f"name-{network_id}", kind="layer_sizes",
                  spec={"kind": "layer_sizes", "layer_sizes": [4, 5, 3]}, dataset_id="iris", parameter_count=43)
    fields.update(values)
    return Network(**fields)


def make_run(run_id, network_id="net1", created_at=0.0, **values) -> Run:
    return Run(id=run_id, network_id=network_id, dataset_id="iris", created_at=created_at,
               params={"epochs": 2, "batch_size": 10}, **values)


def test_schema_creation_is_idempotent(store):
    store.create_network(make_network())
    store.create_schema()
    assert [n.id for n in store.list_networks()] == ["net1"]


def test_sqlite_runs_in_wal_mode(store):
    with store.engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"


def test_dataset_upsert_inserts_then_refreshes_keeping_created_at(store):
    first = store.upsert_dataset(make_dataset(created_at=123.0))
    assert isinstance(first, Dataset)
    assert first.n_train == 120 and first.created_at == 123.0
    again = store.upsert_dataset(make_dataset(n_train=100, n_test=50, meta={"note": "resplit"}, created_at=999.0))
    assert (again.n_train, again.n_test, again.meta) == (100, 50, {"note": "resplit"})
    assert again.created_at == 123.0
    assert [d.id for d in store.list_datasets()] == ["iris"]


def test_datasets_list_builtins_first(store):
    store.upsert_dataset(make_dataset("zzz"))
    store.upsert_dataset(make_dataset("aaa-upload", builtin=False))
    store.upsert_dataset(make_dataset("digits"))
    assert [d.id for d in store.list_datasets()] == ["digits", "zzz", "aaa-upload"]
    assert store.delete_dataset("zzz") is True
    assert store.delete_dataset("zzz") is False
    assert store.get_dataset("zzz") is None


def test_network_round_trips_as_an_entity_with_its_json_fields(store):
    spec = {"kind": "layers", "layers": [{"type": "Linear", "out_features": 3}], "loss": "cross_entropy"}
    table = [{"type": "Linear", "output_shape": [3], "parameters": 15}]
    store.create_network(make_network(kind="layers", spec=spec, layer_table=table))
    network = store.get_network("net1")
    assert isinstance(network, Network)
    assert network.spec == spec
    assert network.layer_table == table
    assert network.architecture == spec["layers"]
    assert network.status == "created" and network.trained is False
    assert network.created_at > 0 and network.updated_at >= network.created_at
    assert store.get_network("nope") is None


def test_networks_list_oldest_first_with_paging_and_count(store):
    for i, created in enumerate([30.0, 10.0, 20.0]):
        store.create_network(make_network(f"n{i}", created_at=created))
    assert [n.id for n in store.list_networks()] == ["n1", "n2", "n0"]
    assert [n.id for n in store.list_networks(limit=1, offset=1)] == ["n2"]
    assert store.count_networks() == 3


def test_update_network_changes_only_given_fields(store):
    store.create_network(make_network())
    before = store.get_network("net1")
    store.update_network("net1", status="training")
    after = store.get_network("net1")
    assert after.status == "training"
    assert after.name == before.name and after.spec == before.spec
    assert after.updated_at >= before.updated_at


def test_versions_update_the_network_and_go_with_it(store):
    store.create_network(make_network())
    for number, accuracy in [(1, 0.8), (2, 0.9)]:
        store.add_version(
            NetworkVersion("net1", number, f"run{number}", f"networks/net1/v{number}.pt", "ab" * 32,
                           metrics={"accuracy": accuracy}),
            {"current_version": number, "accuracy": accuracy, "status": "trained"},
        )
    network = store.get_network("net1")
    assert (network.current_version, network.accuracy, network.status, network.trained) == (2, 0.9, "trained", True)
    versions = store.list_versions("net1")
    assert [(v.version, v.run_id, v.metrics["accuracy"]) for v in versions] == [(1, "run1", 0.8), (2, "run2", 0.9)]
    assert store.get_version("net1", 2).weights_path == "networks/net1/v2.pt"
    assert store.get_version("net1", 3) is None
    assert "weights_path" not in versions[0].to_dict()

    assert store.delete_network("net1") is True
    assert store.list_versions("net1") == []
    assert store.delete_network("net1") is False


def test_runs_filter_page_and_count(store):
    store.create_run(make_run("a", created_at=1.0, status="completed"))
    store.create_run(make_run("b", created_at=2.0, status="running"))
    store.create_run(make_run("c", network_id="other", created_at=3.0, status="queued"))
    assert [r.id for r in store.list_runs()] == ["c", "b", "a"]
    assert [r.id for r in store.list_runs(newest_first=False)] == ["a", "b", "c"]
    assert [r.id for r in store.list_runs(network_id="net1")] == ["b", "a"]
    assert [r.id for r in store.list_runs(statuses=["completed", "queued"])] == ["c", "a"]
    assert [r.id for r in store.list_runs(limit=1, offset=1)] == ["b"]
    assert store.count_runs() == 3
    assert store.count_runs(network_id="net1", statuses=["running"]) == 1
    assert [r.id for r in store.active_runs()] == ["b", "c"]


def test_run_to_dict_names_it_as_job_too_and_hides_server_paths(store):
    store.create_run(make_run("a", checkpoint_path="networks/net1/runs/a/checkpoint-00001.pt",
                              checkpoint_sha256="cd" * 32, checkpoint_epoch=1, owner="host:1"))
    body = store.get_run("a").to_dict()
    assert body["run_id"] == body["job_id"] == "a"
    assert body["has_checkpoint"] is True and body["checkpoint_epoch"] == 1
    assert "checkpoint_path" not in body and "checkpoint_sha256" not in body and "owner" not in body
    assert body["params"] == {"epochs": 2, "batch_size": 10}


def test_recorded_events_come_back_in_order_and_move_the_run(store):
    store.create_run(make_run("a"))
    for seq, kind in enumerate(["training_started", "training_update", "training_update", "training_complete"], 1):
        store.record_event(RunEvent("a", seq, kind, {"seq": seq, "run_id": "a"}, ts=100.0 + seq),
                           {"epochs_done": seq} if kind == "training_update" else {})
    run = store.get_run("a")
    assert run.last_seq == 4
    assert run.epochs_done == 3
    assert [e.seq for e in store.list_events("a")] == [1, 2, 3, 4]
    updates = store.list_events("a", after_seq=2, types=["training_update"])
    assert [(e.seq, e.type, e.payload, e.ts) for e in updates] == [
        (3, "training_update", {"seq": 3, "run_id": "a"}, 103.0)]
    assert store.list_events("a", after_seq=4) == []


def test_a_repeated_event_seq_is_refused_and_changes_nothing(store):
    store.create_run(make_run("a"))
    store.record_event(RunEvent("a", 1, "training_started", {}, 1.0), {"status": "running"})
    with pytest.raises(exc.IntegrityError):
        store.record_event(RunEvent("a", 1, "training_update", {}, 2.0), {"status": "completed"})
    assert store.get_run("a").status == "running"
    assert [e.type for e in store.list_events("a")] == ["training_started"]


def test_latest_checkpointed_run_skips_active_runs_and_runs_without_checkpoint(store):
    store.create_run(make_run("old", created_at=1.0, status="completed", checkpoint_path="p1",
                              checkpoint_sha256="1" * 64, checkpoint_epoch=2))
    store.create_run(make_run("failed-early", created_at=2.0, status="failed"))
    store.create_run(make_run("running", created_at=3.0, status="running", checkpoint_path="p3",
                              checkpoint_sha256="3" * 64, checkpoint_epoch=1))
    store.create_run(make_run("other-net", network_id="net2", created_at=4.0, status="completed",
                              checkpoint_path="p4", checkpoint_sha256="4" * 64, checkpoint_epoch=9))
    assert store.latest_checkpointed_run("net1").id == "old"
    store.update_run("running", status=RunStatus.CANCELLED.value)
    assert store.latest_checkpointed_run("net1").id == "running"
    assert store.latest_checkpointed_run("nothing") is None


def test_everything_is_there_after_a_restart(url, store):
    store.upsert_dataset(make_dataset())
    store.create_network(make_network())
    store.create_run(make_run("a", status="completed"))
    store.record_event(RunEvent("a", 1, "training_update", {"accuracy": 0.5}, 1.0), {"accuracy": 0.5})
    store.close()

    reopened = MetadataStore(url)
    reopened.create_schema()
    try:
        assert reopened.get_dataset("iris").n_train == 120
        assert reopened.get_network("net1").spec["layer_sizes"] == [4, 5, 3]
        assert reopened.get_run("a").accuracy == 0.5
        assert reopened.list_events("a")[0].payload == {"accuracy": 0.5}
    finally:
        reopened.close()


def test_counts_gives_networks_and_active_runs_in_one_call(tmp_path):
    store = MetadataStore(f"sqlite:///{tmp_path / 'counts.db'}")
    store.create_schema()
    for i in range(2):
        store.create_network(Network(id=f"n{i}", name=f"n{i}", kind="layer_sizes",
                                     spec={"kind": "layer_sizes", "layer_sizes": [4, 3]},
                                     dataset_id="iris", parameter_count=15))
    for run_id, status in [("a", "queued"), ("b", "running"), ("c", "completed"), ("d", "interrupted")]:
        store.create_run(Run(id=run_id, network_id="n0", dataset_id="iris", status=status))
    assert store.counts() == (2, 2)
    store.close()


def test_datasets_list_built_ins_by_id_then_the_newest_first(tmp_path):
    from livetrain.store import Dataset, MetadataStore

    store = MetadataStore(f"sqlite:///{tmp_path / 'order.db'}")
    store.create_schema()
    for i, (dataset_id, builtin) in enumerate([("zoo", True), ("old", False), ("alpha", True), ("new", False)]):
        store.upsert_dataset(Dataset(id=dataset_id, name=dataset_id, task="classification", source="test",
                                     n_features=2, n_classes=2, input_shape=[2], n_train=7, n_test=3,
                                     builtin=builtin, created_at=1000.0 + i))
    assert [d.id for d in store.list_datasets()] == ["alpha", "zoo", "new", "old"]
    assert [d.id for d in store.list_datasets(limit=2, offset=2)] == ["new", "old"]
    assert store.count_datasets() == 4
    store.close()


def test_a_queued_run_is_claimed_by_one_worker_only(store):
    store.create_run(make_run("r1"))
    claimed = store.claim_run("r1", "worker-a:1:x", "worker-a")
    assert claimed.status == RunStatus.RUNNING.value and claimed.worker == "worker-a"
    assert store.claim_run("r1", "worker-b:2:y", "worker-b") is None  # never trained twice at once
    assert store.get_run("r1").owner == "worker-a:1:x"


def test_a_stop_request_reaches_only_active_runs(store):
    store.create_run(make_run("r1"))
    store.create_run(make_run("r2", status=RunStatus.COMPLETED.value))
    assert store.request_stop("r1", "cancel") is True
    assert store.request_stop("r2", "cancel") is False
    assert store.stop_requests(["r1", "r2", "nope"]) == {"r1": "cancel"}


def test_an_event_guarded_by_a_status_is_stored_only_while_the_run_has_it(store):
    store.create_run(make_run("r1", last_seq=1))
    store.claim_run("r1", "w:1:x", "w")  # a worker took it meanwhile
    cancelled = RunEvent("r1", 2, "training_cancelled", {"seq": 2}, 1.0)
    assert store.record_event(cancelled, {"status": "cancelled"}, expect_status="queued") is False
    run = store.get_run("r1")
    assert (run.status, run.last_seq, store.list_events("r1")) == ("running", 1, [])


def test_workers_are_listed_from_their_heartbeats(store):
    store.register_server("node:1:a")
    store.register_server("w:2:b", "worker", {"name": "gpu-1", "queues": ["gpu"], "concurrency": 2})
    [worker] = store.list_servers("worker", max_age=30)
    assert (worker["name"], worker["queues"], worker["concurrency"]) == ("gpu-1", ["gpu"], 2)
    assert store.heartbeat("w:2:b", {"name": "gpu-1", "runs": ["r1"]}) is True
    assert store.list_servers("worker", max_age=30)[0]["runs"] == ["r1"]
    store.remove_server("w:2:b")
    assert store.heartbeat("w:2:b") is False and store.list_servers("worker", max_age=30) == []
