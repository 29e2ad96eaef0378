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
