"""Settings: defaults, then LIVETRAIN_* variables, then what the caller passes; nonsense refused by name."""

from __future__ import annotations

from pathlib import Path

import pytest

from livetrain.config import Settings


def test_defaults_put_everything_under_home(tmp_path):
    settings = Settings.load({"home": tmp_path}, environ={})
    assert settings.home == tmp_path.resolve()
    assert settings.models_dir == tmp_path / "models"
    assert settings.data_dir == tmp_path / "data"
    assert settings.resolved_mnist_dir == tmp_path / "data" / "mnist"
    assert settings.resolved_database_url == f"sqlite:///{tmp_path / 'livetrain.db'}"
    assert settings.broadcast_events is True
    assert settings.max_concurrent_runs >= 1 and settings.torch_threads() >= 1


def test_environment_variables_are_read_with_their_types(tmp_path):
    environ = {
        "LIVETRAIN_HOME": str(tmp_path),
        "LIVETRAIN_MAX_CONCURRENT_RUNS": "3",
        "LIVETRAIN_PROGRESS_INTERVAL": "0.5",
        "LIVETRAIN_BROADCAST_EVENTS": "false",
        "LIVETRAIN_DATABASE_URL": "postgresql+psycopg://u@db/livetrain",
        "LIVETRAIN_MNIST_DIR": "/srv/mnist",
        "LIVETRAIN_WARM_WORKERS": "",  # empty means unset
    }
    settings = Settings.load(environ=environ)
    assert settings.home == tmp_path.resolve()
    assert settings.max_concurrent_runs == 3
    assert settings.progress_interval == 0.5
    assert settings.broadcast_events is False
    assert settings.resolved_database_url == "postgresql+psycopg://u@db/livetrain"
    assert settings.resolved_mnist_dir == Path("/srv/mnist")
    assert settings.warm_workers is None and settings.resolved_warm_workers == 3


@pytest.mark.parametrize("environ, warm", [
    ({}, 4),  # unset: as many as can run at once, so a batch started together all start warm
    ({"LIVETRAIN_WARM_WORKERS": "1"}, 1),  # a memory-constrained host keeps fewer
    ({"LIVETRAIN_WARM_WORKERS": "0"}, 0),  # or none: a process is started per run
    ({"LIVETRAIN_WARM_WORKERS": "9"}, 4),  # never more than can ever be used at once
])
def test_warm_workers_default_to_max_concurrent_runs(environ, warm):
    settings = Settings.load({"max_concurrent_runs": 4}, environ=environ)
    assert settings.resolved_warm_workers == warm


@pytest.mark.parametrize("raw, expected", [("1", True), ("yes", True), ("ON", True), ("0", False), ("no", False)])
def test_boolean_variables(raw, expected):
    assert Settings.load(environ={"LIVETRAIN_BROADCAST_EVENTS": raw}).broadcast_events is expected


def test_what_the_caller_passes_wins_over_the_environment(tmp_path):
    settings = Settings.load({"home": tmp_path, "MAX_EPOCHS": 7}, environ={"LIVETRAIN_MAX_EPOCHS": "9"})
    assert settings.max_epochs == 7


def test_torch_threads_share_the_cores_between_concurrent_runs():
    one = Settings.load({"max_concurrent_runs": 1}, environ={})
    many = Settings.load({"max_concurrent_runs": 10_000}, environ={})
    assert one.torch_threads() >= many.torch_threads() == 1


def test_as_dict_is_json_friendly_and_hides_the_secret(tmp_path):
    out = Settings.load({"home": tmp_path, "secret_key": "s3cret"}, environ={}).as_dict()
    assert out["home"] == str(tmp_path.resolve())
    assert "secret_key" not in out and "s3cret" not in str(out)


@pytest.mark.parametrize("overrides, problem", [
    ({"no_such_setting": 1}, "unknown setting 'no_such_setting'"),
    ({"async_mode": "asyncio"}, "async_mode"),
    ({"max_concurrent_runs": 0}, "max_concurrent_runs"),
    ({"max_parameters": 0}, "max_parameters"),
    ({"max_content_length": -1}, "max_content_length"),
    ({"max_epochs": 0}, "max_epochs"),
    ({"warm_workers": -1}, "warm_workers"),
    ({"keep_checkpoints": 0}, "keep_checkpoints"),
])
def test_settings_that_cannot_work_are_refused_by_name(overrides, problem):
    with pytest.raises(ValueError, match=problem):
        Settings.load(overrides, environ={})


def test_a_malformed_number_in_the_environment_is_refused():
    with pytest.raises(ValueError):
        Settings.load(environ={"LIVETRAIN_MAX_EPOCHS": "lots"})


@pytest.mark.parametrize(("overrides", "message"), [
    ({"runner": "celery"}, "runner celery needs a broker"),
    ({"runner": "kubernetes"}, "runner must be local or celery"),
    ({"message_queue": "kafka://somewhere"}, "message_queue must be a redis:// URL"),
    ({"broker_url": "http://x"}, "broker_url must be a redis://"),
])
def test_scale_out_settings_that_cannot_work_are_refused(tmp_path, overrides, message):
    with pytest.raises(ValueError, match=message):
        Settings.load({"home": tmp_path, **overrides}, environ={})


def test_urls_shown_in_settings_hide_their_passwords(tmp_path):
    shown = Settings.load({"home": tmp_path, "runner": "celery", "broker_url": "redis://:s3cret@redis:6379/0",
                           "database_url": "postgresql+psycopg://lt:pw@db/lt"}, environ={}).as_dict()
    assert shown["broker_url"] == "redis://:***@redis:6379/0"
    assert shown["database_url"] == "postgresql+psycopg://lt:***@db/lt"
    assert "s3cret" not in str(shown) and "pw@" not in str(shown)


@pytest.mark.parametrize("bind, address", [("", None), ("127.0.0.1:9100", ("127.0.0.1", 9100)),
                                           ("[::1]:9100", ("::1", 9100)), ("0.0.0.0:1", ("0.0.0.0", 1))])
def test_metrics_bind_is_a_host_and_a_port(bind, address):
    assert Settings.load({"metrics_bind": bind}).metrics_address() == address


@pytest.mark.parametrize("bind", ["9100", ":9100", "host:", "host:port", "host:70000"])
def test_a_malformed_metrics_bind_is_refused(bind):
    with pytest.raises(ValueError, match="metrics_bind must be host:port"):
        Settings.load({"metrics_bind": bind})
