"""The container probe: /health of an http listener, or what a configuration serves."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from fastwamp.healthcheck import main, probe, url_from_config

from .conftest import OpsRouter

pytestmark = pytest.mark.interop


def test_url_from_config_prefers_the_http_listener(tmp_path: Path) -> None:
    path = tmp_path / "router.toml"
    path.write_text('[[listeners]]\ntype = "rawsocket"\nhost = "0.0.0.0"\nport = 8081\n'
                    '[[listeners]]\ntype = "http"\nhost = "::"\nport = 9100\n', encoding="utf-8")
    assert url_from_config(str(path)) == "http://[::1]:9100/health"
    path.write_text('[[listeners]]\ntype = "rawsocket"\nhost = "0.0.0.0"\nport = 8081\n',
                    encoding="utf-8")
    assert url_from_config(str(path)) == "tcp://127.0.0.1:8081"
    path.write_text('[[listeners]]\ntype = "websocket"\nport = 0\n', encoding="utf-8")
    assert main(["--config", str(path)]) == 1
    path.write_text("colour = 1\n", encoding="utf-8")
    assert main(["--config", str(path)]) == 1


def test_probe_asks_health_of_a_running_router(
        ops_router_factory: Callable[..., OpsRouter]) -> None:
    router = ops_router_factory()
    assert probe(f"{router.base}/health") is None
    assert "HTTP status 404" in (probe(f"{router.base}/nothing") or "")
    check = subprocess.run([sys.executable, "-m", "fastwamp.healthcheck", f"{router.base}/health"],
                           capture_output=True, text=True, timeout=30)
    assert check.returncode == 0, check.stderr


def test_dockerfile_probes_what_its_configuration_serves() -> None:
    text = (Path(__file__).resolve().parents[2] / "Dockerfile").read_text(encoding="utf-8")
    assert '"fastwamp.healthcheck", "--config", "/etc/fastwamp/fastwamp.toml"' in text
    docker_toml = Path(__file__).resolve().parents[2] / "packaging" / "docker.toml"
    assert url_from_config(str(docker_toml)) == "tcp://127.0.0.1:8081"
