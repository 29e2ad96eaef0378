"""What WebSocket and RawSocket connections share: attaching to the router,
detaching exactly once, flow control and timeouts.

A connection is an :class:`asyncio.Protocol` and also the router's *sink*: the
router calls :meth:`send_messages` and :meth:`close` on it during
``router.flush()``.  After feeding the messages of one read to the session, a
connection calls ``router.flush()`` once, so the replies produced for the same
peer leave in a single ``transport.write``.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from typing import Any, Protocol

from fastwamp.config import ListenerConfig

log = logging.getLogger("fastwamp.transport")

#: Seconds a client has to complete the opening handshake (HTTP upgrade or RawSocket).
OPEN_TIMEOUT = 10.0
#: Seconds to wait for the peer's side of a closing handshake before dropping it.
CLOSE_TIMEOUT = 5.0
#: A peer that stops reading is dropped when this much output waits for it (bytes);
#: the limit grows to twice the listener's max_message_size when that is larger.
WRITE_BUFFER_LIMIT = 64 * 1024 * 1024


class Session(Protocol):
    """The router's per-connection session, as the transports use it."""

    def receive(self, msg: Any) -> None: ...
    def receive_invalid(self, reason: str) -> None: ...
    def detach(self) -> None: ...


class RouterLike(Protocol):
    """The part of :class:`fastwamp.router.Router` the transports use."""

    def attach(self, sink: Any, transport_info: dict[str, Any]) -> Session: ...
    def flush(self) -> None: ...


def format_peer(transport: asyncio.BaseTransport) -> str:
    """Describe the remote end like Autobahn does: ``tcp4:127.0.0.1:54321``."""
    peer = transport.get_extra_info("peername")
    sock = transport.get_extra_info("socket")
    family = getattr(sock, "family", None)
    if isinstance(peer, tuple) and len(peer) >= 2:
        kind = "tcp6" if family == socket.AF_INET6 or len(peer) == 4 else "tcp4"
        return f"{kind}:{peer[0]}:{peer[1]}"
    if family == getattr(socket, "AF_UNIX", None):
        return f"unix:{peer or ''}"
    return f"unknown:{peer!r}"


class BaseConnection(asyncio.Protocol):
    """One client connection: glue between an asyncio transport and a router session.

    Subclasses parse bytes into WAMP messages, call :meth:`_attach` once the
    transport's own handshake succeeded, feed messages with ``self._session.receive``
    and then call ``self._router.flush()``.
    """

    #: ``transport_info["type"]`` for the router.
    transport_type = ""

    def __init__(
        self,
        router: RouterLike,
        listener: ListenerConfig,
        connections: set[BaseConnection] | None = None,
    ) -> None:
        self._router = router
        self._listener = listener
        self._connections = connections
        self._transport: asyncio.Transport | None = None
        self._session: Session | None = None
        self._detached = False
        self._closing = False  # no more output: close() was called or the connection died
        self._reading = True  # False once input must be ignored (failed, invalid, closing)
        self._write_paused = False
        self._timer: asyncio.TimerHandle | None = None
        self._write_limit = max(WRITE_BUFFER_LIMIT, 2 * listener.max_message_size)
        self.peer = "unknown"

    # asyncio.Protocol callbacks.

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]  # uvloop's is no subclass
        self.peer = format_peer(transport)
        if self._connections is not None:
            self._connections.add(self)
        self._set_timer(OPEN_TIMEOUT, self._open_timed_out)

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_timer()
        self._closing = True
        self._reading = False
        if self._connections is not None:
            self._connections.discard(self)
        self._detach()

    def pause_writing(self) -> None:
        # The peer reads slower than we write: stop reading its requests until it
        # catches up, so a client cannot queue unbounded output for itself.
        self._write_paused = True
        if self._transport is not None and not self._transport.is_closing():
            self._transport.pause_reading()

    def resume_writing(self) -> None:
        self._write_paused = False
        if self._transport is not None and not self._transport.is_closing():
            self._transport.resume_reading()

    # Helpers for subclasses.

    def _attach(self, serializer_name: str, info: dict[str, Any]) -> None:
        """Hand the connection to the router once the transport handshake is done."""
        self._cancel_timer()
        info = {
            "type": self.transport_type,
            "serializer": serializer_name,
            "peer": self.peer,
            **info,
        }
        self._session = self._router.attach(self, info)

    def _detach(self) -> None:
        """Tell the router the session is gone (at most once), then flush its output."""
        if self._session is not None and not self._detached:
            self._detached = True
            self._session.detach()
            self._router.flush()

    def _check_backlog(self) -> bool:
        """Drop a peer that lets too much output pile up; True if it was dropped."""
        transport = self._transport
        if self._write_paused and transport is not None:
            size = transport.get_write_buffer_size()
            if size > self._write_limit:
                log.warning(
                    "%s: dropping connection: peer does not read (%d bytes waiting)",
                    self.peer,
                    size,
                )
                self._abort()
                return True
        return False

    def _abort(self) -> None:
        self._closing = True
        self._reading = False
        if self._transport is not None:
            self._transport.abort()

    def _set_timer(self, delay: float, callback: Any) -> None:
        self._cancel_timer()
        loop = asyncio.get_running_loop()
        self._timer = loop.call_later(delay, callback)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _open_timed_out(self) -> None:
        self._timer = None
        log.warning("%s: opening handshake not completed in %.0f s", self.peer, OPEN_TIMEOUT)
        self._abort()

    def _close_timed_out(self) -> None:
        self._timer = None
        log.info("%s: peer did not complete the closing handshake; dropping it", self.peer)
        self._abort()
