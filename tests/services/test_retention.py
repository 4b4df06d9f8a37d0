"""`livetrain gc` and the retention rule: what is old and finished goes with its files; the rest stays."""

from __future__ import annotations

import time

import pytest

from livetrain.cli import main
from livetrain.config import Settings
from livetrain.services import retention
from livetrain.store import ArtifactStore, MetadataStore, Network, NetworkVersion, Run, RunEvent
from livetrain.store.entities import ModelVersion, RegisteredModel

DAY = 86400.0
OLD = time.time() - 40 * DAY


def put(root, relpath: str, size: int = 100) -> None:
    path = root / relpath
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x" * size)


@pytest.fixture
def home(tmp_path):
    """A home with old and new runs and versions, written as the server would have."""
    home = tmp_path / "home"
    home.mkdir()
    settings = Settings.load({"home": home})
    store = MetadataStore(settings.resolved_database_url)
    store.create_schema()
    models = settings.models_dir
    for network_id in ("n1", "n2"):
        store.create_network(Network(id=network_id, name=network_id, kind="layer_sizes",
                                     spec={"layer_sizes": [4, 3]}, dataset_id="iris", parameter_count=15))

    def version(network_id: str, number: int, run_id: str, weights: str | None = None) -> None:
        folder = f"networks/{network_id}/runs/{run_id}"
        weights = weights or f"{folder}/weights.pt"
        if not weights.startswith(".."):
            put(models, weights)
        put(models, f"{folder}/examples.npz")
        store.add_version(NetworkVersion(network_id=network_id, version=number, run_id=run_id, weights_path=weights,
                                         weights_sha256="0" * 64, examples_path=f"{folder}/examples.npz",
                                         created_at=OLD), {"current_version": number})

    def run(run_id: str, status: str = "completed", *, network_id: str | None = "n1", version: int | None = None,
            finished: float | None = OLD, algorithm: str = "network") -> None:
        store.create_run(Run(id=run_id, network_id=network_id, dataset_id="iris", status=status, version=version,
                             algorithm=algorithm, created_at=OLD, finished_at=finished))
        store.record_event(RunEvent(run_id, 1, "run_created", {"run_id": run_id}, OLD), {})
        folder = f"networks/{network_id}/runs/{run_id}" if network_id else f"runs/{run_id}"
        put(models, f"{folder}/checkpoint-00001.pt" if network_id else f"{folder}/model.joblib")

    put(home, "outside.pt")  # beside models/, where a tampered record points
    version("n1", 1, "r-v1")
    version("n1", 2, "r-v2")  # the registry protects it
    version("n1", 3, "r-v3", weights="../outside.pt")  # the newest: kept whatever its path says
    version("n2", 1, "r-n2")  # a network's only version: its newest
    run("r-v1", version=1)
    run("r-v3", version=3)
    run("r-failed", status="failed")
    run("s-old", network_id=None, algorithm="knn")
    run("r-new", finished=time.time() - DAY)
    run("r-running", status="running", finished=None)
    run("r-queued", status="queued", finished=None)
    store.close()
    return home


def state(home) -> dict:
    settings = Settings.load({"home": home})
    store = MetadataStore(settings.resolved_database_url)
    try:
        return {
            "runs": sorted(r.id for r in store.list_runs()),
            "versions": sorted((n, v.version) for n in ("n1", "n2") for v in store.list_versions(n)),
            "events": sorted(r.id for r in store.list_runs() if store.list_events(r.id)),
            "files": sorted(str(p.relative_to(settings.models_dir)) for p in settings.models_dir.rglob("*")
                            if p.is_file()),
        }
    finally:
        store.close()


@pytest.fixture
def registry_protects_v2(home):
    """n1's version 2 is registered (version 1 of model "digits"), as `POST /api/models/digits/versions` does."""
    store = MetadataStore(Settings.load({"home": home}).resolved_database_url)
    store.create_model(RegisteredModel(name="digits"))
    store.add_model_version(ModelVersion(model_name="digits", version=0, network_id="n1", network_version=2))
    store.close()


def test_a_dry_run_lists_what_would_go_and_removes_nothing(home, registry_protects_v2, capsys):
    before = state(home)
    assert main(["gc", "--older-than", "30d", "--dry-run", "--home", str(home)]) == 0
    out = capsys.readouterr().out
    listed = {tuple(line.split()[:2]) for line in out.splitlines()[1:] if line.startswith(("run", "version"))}
    assert listed == {("version", "n1@v1"), ("run", "r-v1"), ("run", "r-v3"), ("run", "r-failed"), ("run", "s-old")}
    assert "KIND" in out and "BYTES" in out and "nothing was removed" in out
    assert state(home) == before


def test_gc_removes_old_finished_runs_and_old_versions_with_their_files(home, registry_protects_v2, capsys):
    assert main(["gc", "--older-than", "30d", "--home", str(home)]) == 0
    out = capsys.readouterr().out
    assert "removed 5 item(s), freed 600 bytes" in out  # v1: weights + examples; 4 runs' checkpoint or model
    assert [line.split()[-1] for line in out.splitlines()[1:6]] == ["200", "100", "100", "100", "100"]
    after = state(home)
    assert after["runs"] == ["r-new", "r-queued", "r-running"]  # newer, or not finished
    assert after["events"] == ["r-new", "r-queued", "r-running"]
    assert after["versions"] == [("n1", 2), ("n1", 3), ("n2", 1)]  # protected, newest, newest
    assert after["files"] == [
        "networks/n1/runs/r-new/checkpoint-00001.pt",
        "networks/n1/runs/r-queued/checkpoint-00001.pt",
        "networks/n1/runs/r-running/checkpoint-00001.pt",
        "networks/n1/runs/r-v2/examples.npz", "networks/n1/runs/r-v2/weights.pt",  # the protected version's
        "networks/n1/runs/r-v3/examples.npz",  # the newest version's (its checkpoint went with its run)
        "networks/n2/runs/r-n2/examples.npz", "networks/n2/runs/r-n2/weights.pt",
    ]
    assert (home / "outside.pt").is_file()


def test_a_path_outside_the_models_folder_is_never_removed(home, capsys):
    settings = Settings.load({"home": home})
    store = MetadataStore(settings.resolved_database_url)
    try:
        store.update_network("n1", current_version=4)
        store.add_version(NetworkVersion(network_id="n1", version=4, run_id=None, weights_path="w.pt",
                                         weights_sha256="0" * 64, created_at=time.time()), {})
        removals, _ = retention.run_gc(store, ArtifactStore(settings.models_dir), 30 * DAY)
    finally:
        store.close()
    v3 = next(r for r in removals if r.id == "n1@v3")  # no longer the newest
    assert "../outside.pt" not in v3.paths
    assert (home / "outside.pt").is_file()


def test_nothing_old_enough_says_so(home, capsys):
    before = state(home)
    assert main(["gc", "--older-than", "100d", "--home", str(home)]) == 0
    assert "nothing older than 100d" in capsys.readouterr().out
    assert state(home) == before


def test_a_home_without_a_database_is_an_error_not_a_new_database(tmp_path, capsys):
    assert main(["gc", "--older-than", "1d", "--home", str(tmp_path / "typo")]) == 2
    assert "no livetrain database" in capsys.readouterr().err
    assert not (tmp_path / "typo").exists()


@pytest.mark.parametrize("age", ["30", "thirty days", "0d", "1y"])
def test_a_bad_age_is_refused(tmp_path, capsys, age):
    assert main(["gc", "--older-than", age, "--home", str(tmp_path)]) == 2
    assert "duration" in capsys.readouterr().err


def test_the_retention_setting_is_an_age():
    assert Settings.load({"retention": "2w"}).retention_seconds() == 14 * DAY
    assert Settings.load({}).retention_seconds() is None
    with pytest.raises(ValueError, match="retention"):
        Settings.load({"retention": "monthly"})
