"""The Docker image: its configuration and health check here, its build where Docker runs.

``docker build`` needs a running Docker daemon and the network to pull the
Python base image; where ``docker info`` fails the image test skips (``tox -e
docker`` runs this file alone). The parts that need no Docker run everywhere:
the container's configuration is the embedded default on every interface, and
the health check command tells a listening router from a missing one.
"""

from __future__ import annotations

import dataclasses
import shutil
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from routerproc import (
    CONFIG,
    REPO_ROOT,
    RawSocketSession,
    RouterProcess,
    child_env,
    route_one_call,
)

from fastwamp.config import default_config, load_config
from fastwamp.healthcheck import probe

#: Seconds for ``docker build`` (pulls the base image, compiles the core).
BUILD_TIMEOUT = 900
#: Seconds for the container to become healthy and answer.
RUN_TIMEOUT = 60


def test_container_config_is_the_default_on_every_interface() -> None:
    config = load_config(REPO_ROOT / "packaging" / "docker.toml")
    default = default_config()
    assert [listener.host for listener in config.listeners] == ["0.0.0.0", "0.0.0.0"]
    assert config.listeners == [dataclasses.replace(listener, host="0.0.0.0")
                                for listener in default.listeners]
    assert dataclasses.replace(config, listeners=default.listeners) == default


def test_dockerfile_exposes_the_listeners_and_runs_unprivileged() -> None:
    text = (REPO_ROOT / "Dockerfile").read_text(encoding="utf-8")
    assert "EXPOSE 8080 8081" in text
    assert "\nUSER fastwamp\n" in text
    assert "fastwamp.healthcheck" in text
    ignored = (REPO_ROOT / ".dockerignore").read_text(encoding="utf-8")
    for needed in ("pyproject.toml", "setup.py", "README.md", "fastwamp/",
                   "packaging/docker.toml"):
        assert f"!{needed}\n" in ignored, needed


def test_healthcheck_tells_a_listening_router_from_none(tmp_path: Path) -> None:
    (tmp_path / "router.toml").write_text(CONFIG, encoding="utf-8")
    router = RouterProcess([sys.executable, "-m", "fastwamp", "--config", "router.toml"],
                           tmp_path, env=child_env(PYTHONPATH=str(REPO_ROOT)))
    try:
        router.wait_ready()
        url = router.url("tcp://")
        check = subprocess.run([sys.executable, "-m", "fastwamp.healthcheck", url],
                               env=child_env(PYTHONPATH=str(REPO_ROOT)),
                               capture_output=True, text=True, timeout=30)
        assert check.returncode == 0, check.stderr
        # The router still serves sessions after probes.
        RawSocketSession(*router.rawsocket_address()).close()
    finally:
        assert router.stop() == 0, router.output()
    with socket.socket() as unused:  # a port nothing listens on
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    assert probe(f"tcp://127.0.0.1:{port}", timeout=2) is not None
    assert probe("ws://127.0.0.1:8080/ws") is not None


def _docker_missing() -> str | None:
    if shutil.which("docker") is None:
        return "no docker command: install Docker Engine (https://docs.docker.com/engine/install/)"
    try:
        info = subprocess.run(["docker", "info"], capture_output=True, text=True, timeout=30)
    except subprocess.TimeoutExpired:
        return "`docker info` did not answer within 30 s"
    if info.returncode != 0:
        return ("no Docker daemon (`docker info` fails): start dockerd (systemctl start docker) "
                "or point DOCKER_HOST at one, then run `tox -e docker`")
    return None


def _docker(*args: str, timeout: float = 60, check: bool = True) -> str:
    proc = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout)
    if check:
        assert proc.returncode == 0, f"docker {' '.join(args)}:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout.strip()


@pytest.mark.packaging
@pytest.mark.timeout(BUILD_TIMEOUT + 4 * RUN_TIMEOUT)
def test_image_builds_runs_unprivileged_and_routes() -> None:
    missing = _docker_missing()
    if missing is not None:
        pytest.skip(missing)
    image = f"fastwamp-test:{uuid.uuid4().hex[:12]}"
    _docker("build", "--pull", "-t", image, str(REPO_ROOT), timeout=BUILD_TIMEOUT)
    container = ""
    try:
        container = _docker("run", "-d", "-p", "127.0.0.1::8080", "-p", "127.0.0.1::8081",
                            image)
        host, _, port = _docker("port", container, "8081/tcp").splitlines()[0].rpartition(":")
        deadline = time.monotonic() + RUN_TIMEOUT
        while probe(f"tcp://{host}:{port}", timeout=2) is not None:
            assert time.monotonic() < deadline, _docker("logs", container, check=False)
            time.sleep(0.5)
        assert route_one_call(host, int(port)) == 5
        assert _docker("exec", container, "id", "-u") != "0"
        assert _docker("exec", container, "python", "-m", "fastwamp.healthcheck") == ""
        _docker("stop", "--time", "20", container, timeout=RUN_TIMEOUT)
        assert _docker("inspect", "--format", "{{.State.ExitCode}}", container) == "0"
        logs = subprocess.run(["docker", "logs", container], capture_output=True, text=True,
                              timeout=RUN_TIMEOUT)
        assert "compiled core missing" not in logs.stderr, logs.stderr
        assert "fastwamp: listening on ws://0.0.0.0:8080/ws" in logs.stdout, logs.stdout
    finally:
        if container:
            _docker("rm", "-f", container, check=False)
        _docker("rmi", "-f", image, check=False)
