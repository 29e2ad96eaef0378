"""Fixtures for the operations tests: a real router process with an HTTP listener."""

from __future__ import annotations

import socket
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from interop.conftest import RouterProcess

#: The HTTP listener appended to the interop router's configuration.
HTTP_LISTENER = """
[[listeners]]
type = "http"
host = "127.0.0.1"
port = 0
"""


class OpsRouter:
    """A router process with an HTTP listener, and what the tests ask of it."""

    def __init__(self, process: RouterProcess) -> None:
        self.process = process
        urls = [line.split()[-1] for line in process.stdout_lines
                if line.startswith("fastwamp: listening on http://")]
        assert len(urls) == 1, process.diagnostics()
        self.base = urls[0].removesuffix("/metrics")
        host, _, port = self.base.removeprefix("http://").rpartition(":")
        self.host, self.port = host, int(port)

    @property
    def endpoints(self):  # noqa: ANN201 - the interop RouterEndpoints
        return self.process.endpoints

    def get(self, path: str, method: str = "GET") -> tuple[int, str, str]:
        """Status, content type and body of one request."""
        request = urllib.request.Request(self.base + path, method=method)
        try:
            with urllib.request.urlopen(request, timeout=10) as reply:
                return reply.status, reply.headers["Content-Type"], reply.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.headers["Content-Type"], exc.read().decode()

    def raw(self, data: bytes, read_timeout: float = 10.0) -> bytes:
        """Send ``data`` as is and read until the router closes the connection."""
        with socket.create_connection((self.host, self.port), timeout=read_timeout) as sock:
            if data:
                sock.sendall(data)
            chunks = []
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    return b"".join(chunks)
                chunks.append(chunk)


@pytest.fixture
def ops_router_factory(tmp_path: Path) -> Iterator[Callable[..., OpsRouter]]:
    """``ops_router_factory(extra_config="")``: a private router with an HTTP listener,
    stopped (and required to exit cleanly) at the end of the test."""
    started: list[RouterProcess] = []

    def factory(extra_config: str = "") -> OpsRouter:
        rp = RouterProcess(tmp_path, f"ops{len(started)}",
                           extra_config=extra_config + HTTP_LISTENER)
        started.append(rp)
        rp.start()
        return OpsRouter(rp)

    yield factory
    for rp in started:
        if rp.running:
            rp.stop(check=True)
        else:
            rp._finish_io()


class ConfiguredRouter(RouterProcess):
    """A router process on a configuration of the test's own (top-level keys included)."""

    def __init__(self, workdir: Path, config_text: str) -> None:
        super().__init__(workdir, "configured")
        self._config_text = config_text

    def start(self, ws_port: int = 0, rs_port: int = 0):  # noqa: ANN201
        import interop.conftest as interop_conftest

        original = interop_conftest._config_text
        interop_conftest._config_text = lambda *args, **kwargs: self._config_text
        try:
            return super().start(ws_port, rs_port)
        finally:
            interop_conftest._config_text = original


@pytest.fixture
def configured_router(tmp_path: Path) -> Iterator[Callable[[str], ConfiguredRouter]]:
    """``configured_router(toml)``: a router process on ``toml`` (it must have a WebSocket
    and a RawSocket listener), stopped cleanly at the end of the test."""
    started: list[ConfiguredRouter] = []

    def factory(config_text: str) -> ConfiguredRouter:
        rp = ConfiguredRouter(tmp_path, config_text)
        started.append(rp)
        rp.start()
        return rp

    yield factory
    for rp in started:
        if rp.running:
            rp.stop(check=True)
        else:
            rp._finish_io()
