"""Worker machines install livetrain from a wheel: it must carry the pages' templates and static files."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# What a build reads from the checkout.
BUILD_INPUTS = ("pyproject.toml", "setup.py", "MANIFEST.in", "README.md", "src", "templates", "static")
PACKAGED = (
    "livetrain/templates/base.html",
    "livetrain/static/vendor/swagger-ui/swagger-ui.css",
    "livetrain/store/migrations/alembic.ini",
    "livetrain/store/migrations/script.py.mako",
    "livetrain/store/migrations/versions/0001_initial.py",
)
# Runs with only the installed wheel on the path, from a folder outside the checkout.
SERVE_FROM_WHEEL = """
import json, sys
import livetrain
from livetrain.app import create_app

app = create_app({"home": sys.argv[1], "warm_workers": 0})
client = app.test_client()
page, css, docs = client.get("/"), client.get("/static/vendor/swagger-ui/swagger-ui.css"), client.get("/api/docs")
app.extensions["livetrain"].close()
print(json.dumps({
    "livetrain": livetrain.__file__, "templates": app.template_folder, "static": app.static_folder,
    "page": [page.status_code, page.get_data(as_text=True)],
    "css": [css.status_code, css.get_data(as_text=True)],
    "docs": [docs.status_code, docs.get_data(as_text=True)],
}))
"""


def _run(args: list[str], **kwargs) -> str:
    done = subprocess.run(args, capture_output=True, text=True, timeout=120, **kwargs)
    assert done.returncode == 0, f"{args} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def _names(archive: Path) -> set[str]:
    if archive.suffix == ".whl":
        with zipfile.ZipFile(archive) as wheel:
            return set(wheel.namelist())
    with tarfile.open(archive) as sdist:
        return set(sdist.getnames())


def _build_wheel(source: Path, out: Path) -> Path:
    # --no-index: with --no-deps and the venv's setuptools a build needs nothing from the network
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q",
          "-w", str(out), str(source)])
    (wheel,) = out.glob("livetrain-*.whl")
    return wheel


@pytest.fixture
def source(tmp_path) -> Path:
    """A copy of the checkout's build inputs.

    Builds run on a copy because setuptools reuses build/ and egg-info between builds and puts
    what an earlier build left there into the next wheel or sdist, which would hide a regression.
    """
    copy = tmp_path / "source"
    copy.mkdir()
    for name in BUILD_INPUTS:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, copy / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        else:
            shutil.copy2(ROOT / name, copy / name)
    return copy


def test_installed_wheel_serves_pages_from_inside_the_package(source, tmp_path):
    wheel = _build_wheel(source, tmp_path / "dist")
    assert set(PACKAGED) <= _names(wheel)

    site = tmp_path / "site"
    _run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "-q", "--target", str(site), str(wheel)])
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {**os.environ, "PYTHONPATH": str(site)}
    out = json.loads(_run([sys.executable, "-c", SERVE_FROM_WHEEL, str(tmp_path / "home")], cwd=elsewhere, env=env))

    assert Path(out["livetrain"]).is_relative_to(site)
    assert Path(out["templates"]) == site / "livetrain" / "templates"
    assert Path(out["static"]) == site / "livetrain" / "static"
    status, html = out["page"]
    assert status == 200
    assert "<title>Dashboard · livetrain</title>" in html and 'data-page="dashboard"' in html
    assert out["css"] == [200, (ROOT / "static/vendor/swagger-ui/swagger-ui.css").read_text()]
    status, html = out["docs"]
    assert status == 200 and "/static/vendor/swagger-ui/swagger-ui-bundle.js" in html


def test_sdist_carries_templates_and_static_into_its_wheel(source, tmp_path):
    dist = tmp_path / "dist"
    _run([sys.executable, "-c", "import sys; from setuptools import build_meta; build_meta.build_sdist(sys.argv[1])",
          str(dist)], cwd=source)
    (sdist,) = dist.glob("livetrain-*.tar.gz")
    top = sdist.name.removesuffix(".tar.gz")
    assert {f"{top}/templates/base.html", f"{top}/static/vendor/swagger-ui/swagger-ui.css"} <= _names(sdist)

    wheel = _build_wheel(sdist, tmp_path / "wheel")
    assert set(PACKAGED) <= _names(wheel)
