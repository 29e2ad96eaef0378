"""A minimal HTTP/1.1 listener on the router's loop: ``/metrics``, ``/health``, ``/ready``.

One request per connection (answered with ``Connection: close``): the request
line and headers must arrive within ``http_request_timeout`` seconds and
``http_request_max_bytes`` bytes, else the connection is answered 408 or 431
and closed; a request body is never read.  Only GET and HEAD are served (405
otherwise), unknown paths get 404, and a malformed request 400.  Connections
count against ``max_connections_per_address`` like WAMP ones.

* ``/metrics``: the Prometheus exposition (:mod:`fastwamp.ops.exposition`), in
  the format the scraper's ``Accept`` header asks for (text 0.0.4 by default).
* ``/health``: 200 while the process runs its loop (liveness).
* ``/ready``: 200 when every configured listener is listening, 503 before
  that and once shutdown has started (readiness).
* ``/console``: the live web console (:mod:`fastwamp.console`), a static page
  that joins a realm over the router's WebSocket.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder

from ..transport.base import ConnectionLimits, format_peer, peer_address

log = logging.getLogger("fastwamp.http")

_REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed",
            408: "Request Timeout", 431: "Request Header Fields Too Large",
            500: "Internal Server Error", 503: "Service Unavailable"}
_TEXT = "text/plain; charset=utf-8"


class HttpEndpoints:
    """What the HTTP listener serves: the metrics registry and the readiness check."""

    def __init__(self, registry: CollectorRegistry | None, ready: Callable[[], bool]) -> None:
        self.registry = registry
        self.ready = ready

    def respond(self, method: str, target: str, headers: dict[str, str]) -> tuple[int, str, bytes]:
        """Status, content type and body for one request."""
        path = target.split("?", 1)[0]
        console = path == "/console" or path.startswith("/console/")
        if path not in ("/metrics", "/health", "/ready") and not console:
            return 404, _TEXT, b"not found: try /metrics, /health, /ready or /console\n"
        if method not in ("GET", "HEAD"):
            return 405, _TEXT, b"only GET and HEAD\n"
        if console:
            from ..console import console_page

            page = console_page(path)
            if page is None:
                return 404, _TEXT, b"not found\n"
            return 200, page[0], page[1]
        if path == "/health":
            return 200, _TEXT, b"alive\n"
        if path == "/ready":
            if self.ready():
                return 200, _TEXT, b"ready\n"
            return 503, _TEXT, b"not ready\n"
        if self.registry is None:
            return 404, _TEXT, b"metrics are off\n"
        encoder, content_type = choose_encoder(headers.get("accept", ""))
        return 200, content_type, encoder(self.registry)


class HttpConnection(asyncio.Protocol):
    """One HTTP client: read one request (bounded), answer it, close."""

    def __init__(self, endpoints: HttpEndpoints, limits: ConnectionLimits,
                 max_bytes: int, timeout: float, connections: set[Any]) -> None:
        self._endpoints = endpoints
        self._limits = limits
        self._max_bytes = max_bytes
        self._timeout = timeout
        self._connections = connections
        self._transport: asyncio.Transport | None = None
        self._buffer = bytearray()
        self._timer: asyncio.TimerHandle | None = None
        self._address: str | None = None
        self._done = False
        self.peer = "unknown"

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]
        self.peer = format_peer(transport)
        address = peer_address(transport)
        if address is not None:
            if not self._limits.acquire(address):
                self._limits.count("connections_refused")
                self._done = True
                transport.close()
                return
            self._address = address
        self._connections.add(self)
        self._timer = asyncio.get_running_loop().call_later(self._timeout, self._timed_out)

    def connection_lost(self, exc: Exception | None) -> None:
        self._connections.discard(self)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._address is not None:
            self._limits.release(self._address)
            self._address = None

    def data_received(self, data: bytes) -> None:
        if self._done:
            return
        buffer = self._buffer
        buffer += data
        end = buffer.find(b"\r\n\r\n")
        if end < 0:
            end = buffer.find(b"\n\n")
        if end < 0 or end > self._max_bytes:
            if len(buffer) > self._max_bytes:
                self._answer(431, _TEXT, b"request too large\n", head=False)
            return
        self._handle(bytes(buffer[:end]))

    def _handle(self, head: bytes) -> None:
        lines = head.decode("latin-1").splitlines()
        parts = lines[0].split() if lines else []
        if len(parts) != 3 or not parts[2].startswith("HTTP/") or not parts[1].startswith("/"):
            self._answer(400, _TEXT, b"bad request\n", head=False)
            return
        method, target = parts[0], parts[1]
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if sep:
                headers[name.strip().lower()] = value.strip()
        try:
            status, content_type, body = self._endpoints.respond(method, target, headers)
        except Exception:
            log.exception("%s: HTTP %s %s failed", self.peer, method, target[:100])
            status, content_type, body = 500, _TEXT, b"internal error\n"
        self._answer(status, content_type, body, head=method == "HEAD")

    def _answer(self, status: int, content_type: str, body: bytes, head: bool) -> None:
        self._done = True
        transport = self._transport
        if transport is None or transport.is_closing():
            return
        extra = "Allow: GET, HEAD\r\n" if status == 405 else ""
        header = (f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}\r\n"
                  f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n"
                  f"Cache-Control: no-store\r\n{extra}Connection: close\r\n\r\n")
        transport.write(header.encode("latin-1") if head else header.encode("latin-1") + body)
        transport.close()

    def _timed_out(self) -> None:
        self._timer = None
        if not self._done:
            self._answer(408, _TEXT, b"request timeout\n", head=False)

    # What the server calls on shutdown (as on WAMP connections).

    def close(self) -> None:
        if self._transport is not None and not self._done:
            self._done = True
            self._transport.close()

    def _abort(self) -> None:
        if self._transport is not None:
            self._transport.abort()
