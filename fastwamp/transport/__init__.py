"""The I/O layer: WebSocket and RawSocket connections and the event loop glue.

Everything that touches sockets or the event loop lives here (and in
:mod:`fastwamp.server`); the router core stays sans-I/O.
"""

from fastwamp.transport.base import BaseConnection, format_peer
from fastwamp.transport.loop import LoopScheduler, loop_factory, uvloop_enabled
from fastwamp.transport.rawsocket import RawSocketConnection
from fastwamp.transport.websocket import (
    WEBSOCKET_IMPLEMENTATIONS,
    WebSocketConnection,
    websocket_connection_class,
)

__all__ = [
    "WEBSOCKET_IMPLEMENTATIONS",
    "BaseConnection",
    "LoopScheduler",
    "RawSocketConnection",
    "WebSocketConnection",
    "format_peer",
    "loop_factory",
    "uvloop_enabled",
    "websocket_connection_class",
]
