"""Shared fixtures: an app on a temporary home, its HTTP and Socket.IO test clients.

Real MNIST is read from ../shared/data/mnist (or LIVETRAIN_TEST_MNIST_DIR) when present;
tests that need it are skipped with a message saying so when it is not.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MNIST_DIR = Path(os.environ.get("LIVETRAIN_TEST_MNIST_DIR") or ROOT.parent / "shared" / "data" / "mnist")
HAVE_MNIST = (MNIST_DIR / "t10k-images-idx3-ubyte.gz").is_file() or (MNIST_DIR / "t10k-images-idx3-ubyte").is_file()

requires_mnist = pytest.mark.skipif(
    not HAVE_MNIST, reason=f"needs the MNIST test-set IDX files in {MNIST_DIR} (set LIVETRAIN_TEST_MNIST_DIR)"
)


def pytest_configure(config):
    # The suite decides its own settings: a developer's LIVETRAIN_* variables must not leak in.
    # (LIVETRAIN_TEST_* are the suite's own: where MNIST and Chromium are, whether to save screenshots.)
    for name in [n for n in os.environ if n.startswith("LIVETRAIN_") and not n.startswith("LIVETRAIN_TEST_")]:
        del os.environ[name]


class AppFactory:
    """Builds test apps on temporary homes under `base`, and closes them (workers stopped) at the end."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.apps = []

    def __call__(self, home: Path | None = None, **config):
        from livetrain.app import create_app

        settings = {
            "home": home or self.base / f"home{len(self.apps)}",
            "mnist_dir": str(MNIST_DIR) if HAVE_MNIST else str(self.base / "no-mnist"),
            "warm_workers": 0,
            "async_mode": "threading",
        }
        settings.update(config)
        app = create_app(settings)
        app.config["TESTING"] = True
        self.apps.append(app)
        return app

    def close(self) -> None:
        for app in self.apps:
            app.extensions["livetrain"].close()


@pytest.fixture
def make_app(tmp_path):
    """`make_app(home=None, **settings)`: an app on a temporary home, closed at teardown."""
    factory = AppFactory(tmp_path)
    yield factory
    factory.close()


@pytest.fixture
def app(make_app):
    """An app with default settings on a fresh home."""
    return make_app()


@pytest.fixture
def client(app):
    """Flask test client."""
    return app.test_client()


@pytest.fixture
def socket_client(app, client):
    """Socket.IO test client sharing the Flask client's cookies."""
    sio = app.extensions["socketio"].test_client(app, flask_test_client=client)
    yield sio
    if sio.is_connected():
        sio.disconnect()


@pytest.fixture(scope="module")
def make_module_app(tmp_path_factory):
    """Like `make_app`, for apps a whole test module shares (tests that train once and then only read)."""
    factory = AppFactory(tmp_path_factory.mktemp("module-apps"))
    yield factory
    factory.close()


PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
PG_NEEDS = "needs PostgreSQL on 127.0.0.1:5432 accepting user 'postgres' without a password (trust auth)"


@pytest.fixture
def postgres_url():
    """A fresh PostgreSQL database for one test, dropped afterwards; its SQLAlchemy URL."""
    psycopg = pytest.importorskip("psycopg", reason="needs psycopg: pip install 'psycopg[binary]'")
    try:
        admin = psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        pytest.skip(f"{PG_NEEDS}; connecting failed: {str(exc).strip()}")
    name = f"livetrain_test_{uuid.uuid4().hex[:10]}"
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
