"""The NATS link of a cluster node: nats-py on the router's event loop (the only I/O here).

:func:`start_cluster` connects, builds the sans-I/O :class:`ClusterNode`, and
subscribes it to its subjects.  nats-py reconnects by itself (forever, to any
configured server) and buffers up to ``max_pending_bytes`` meanwhile; past that,
cluster messages are dropped and counted, and local routing goes on.

**Direct paths.**  nats-py hands each received message to a task of its
subscription through a queue, and writes what is published from a flusher task:
two more wake-ups of the event loop per message, which were most of the CPU of a
call across nodes.  Where the connected nats-py has the internals they need
(checked once, see :func:`_direct_paths_supported`), messages for this node's
subscriptions go from nats-py's parser straight to the node, and the node's
output of one loop iteration is written to the socket in one call at the end of
it (the NATS ``PUB`` framing is nats-py's).  Whenever nats-py has output of its
own pending, is not connected, or the socket's buffer holds more than
``_DIRECT_WRITE_LIMIT`` bytes, output takes nats-py's own path instead (its
buffering while reconnecting, its back-pressure), after what nats-py queued, so
the order of messages is kept.  Without those internals, nats-py's public API is
used throughout.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import ssl
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import nats
from nats.errors import Error as NatsError
from nats.errors import MaxPayloadError

from .node import ClusterNode

_pub_cmd: Callable[[str, str, bytes], bytes] | None
try:  # the framing of a PUB, for the direct write path
    from nats.protocol.command import pub_cmd as _pub_cmd
except ImportError:  # pragma: no cover - another nats-py layout: public API only
    _pub_cmd = None

if TYPE_CHECKING:
    from ..config import ClusterConfig, Config
    from ..router.router import Router

log = logging.getLogger("fastwamp.cluster")

#: Above this many bytes waiting in the NATS socket's buffer, output goes through
#: nats-py's flusher (which waits for the socket to drain).
_DIRECT_WRITE_LIMIT = 1 << 20


def default_node_name() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


def _tls_context(config: ClusterConfig) -> ssl.SSLContext | None:
    if not (config.tls_ca_file or config.tls_cert_file):
        return None
    context = ssl.create_default_context(cafile=config.tls_ca_file or None)
    if config.tls_cert_file:
        context.load_cert_chain(config.tls_cert_file, config.tls_key_file or None)
    return context


class ClusterLink:
    """One node's connection to NATS (see the module docstring)."""

    def __init__(self, router: Router, config: ClusterConfig, name: str) -> None:
        self.router = router
        self.config = config
        self.nc: Any = None
        self.node = ClusterNode(router, config, name, self.send)
        self._outgoing: list[tuple[str, bytes]] = []
        self._draining = False
        self._tasks: set[asyncio.Task] = set()
        self.dropped = 0
        #: Times the NATS connection was lost (the metrics read it; nats-py counts
        #: reconnections and messages itself, in ``nc.stats``).
        self.disconnects = 0
        #: Messages over the server's max_payload (also counted in ``dropped``).
        self.too_large = 0
        self._closing = False
        #: (direct paths) frames written at the end of this loop iteration
        self._frames: list[bytes] = []
        self._write_scheduled = False
        self._direct = False
        #: NATS subscription ids of this node's subjects
        self._sids: set[int] = set()

    async def connect(self, urls: list[str]) -> None:
        config = self.config
        options: dict[str, Any] = {
            "servers": urls,
            "name": f"fastwamp {self.node.name}",
            "connect_timeout": config.connect_timeout,
            "allow_reconnect": True,
            "max_reconnect_attempts": -1,
            "reconnect_time_wait": min(0.5, config.heartbeat_interval),
            "ping_interval": max(1, int(config.node_timeout)),
            "max_outstanding_pings": 2,
            "pending_size": config.max_pending_bytes,
            "error_cb": self._on_error,
            "disconnected_cb": self._on_disconnected,
            "reconnected_cb": self._on_reconnected,
        }
        if config.user:
            options["user"] = config.user
            options["password"] = config.password
        if config.token:
            options["token"] = config.token
        if config.credentials_file:
            options["user_credentials"] = config.credentials_file
        tls = _tls_context(config)
        if tls is not None:
            options["tls"] = tls
        self.nc = await nats.connect(**options)
        subjects = self.node.subjects
        for subject in (subjects.broadcast, subjects.inbox):
            sub = await self.nc.subscribe(subject, cb=self._on_message)
            self._sids.add(getattr(sub, "_id", -1))
        self._direct = _direct_paths_supported(self.nc)
        if self._direct:
            self._install_direct_receive()
        await self.nc.flush()
        self.node.start()
        log.info("cluster: node %s connected to NATS %s", self.node.name,
                 self.nc.connected_url.netloc if self.nc.connected_url else urls)

    async def close(self) -> None:
        """Say goodbye to the other nodes and close the connection."""
        if self.nc is None or self.nc.is_closed:
            return
        self._closing = True
        self.node.stop()
        self._write_frames()  # the goodbye, now
        try:
            if self.nc.is_connected:
                await self._drain()
                await self.nc.flush(timeout=1)
        except Exception:  # noqa: BLE001 - closing anyway
            pass
        try:
            await self.nc.close()
        except Exception as exc:  # nats-py fails to close a connection that is down
            log.info("cluster: NATS connection closed (%s)", exc)

    # -- output ------------------------------------------------------------------------

    def send(self, subject: str, data: bytes) -> bool:
        """Queue one message; written at the end of this loop iteration (direct path) or
        published in order by the drain task.  False: refused at once (over the
        server's max_payload, as nats-py would refuse it), never to be sent."""
        if len(data) > getattr(self.nc, "_max_payload", len(data)):
            self._too_large(len(data))
            return False
        if self._direct and not self._outgoing:
            assert _pub_cmd is not None
            self._frames.append(_pub_cmd(subject, "", data))
            stats = self.nc.stats  # what nats-py's publish would count (the metrics read it)
            stats["out_msgs"] += 1
            stats["out_bytes"] += len(data)
            if not self._write_scheduled:
                self._write_scheduled = True
                asyncio.get_running_loop().call_soon(self._write_frames)
            return True
        self._outgoing.append((subject, data))
        if not self._draining:
            self._draining = True
            task = asyncio.get_running_loop().create_task(self._drain())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return True

    async def _drain(self) -> None:
        try:
            while self._outgoing:
                batch, self._outgoing = self._outgoing, []
                publish = self.nc.publish
                for subject, data in batch:
                    try:
                        await publish(subject, data)
                    except MaxPayloadError:
                        self._too_large(len(data))
                    except NatsError:
                        self.dropped += 1
        finally:
            self._draining = False

    def _too_large(self, size: int) -> None:
        self.dropped += 1
        self.too_large += 1
        if self.too_large == 1 or self.too_large % 1000 == 0:
            log.warning("cluster: a message of %d bytes exceeds the NATS server's "
                        "max_payload (%d): not sent to other nodes (%d so far; raise "
                        "max_payload in the nats-server configuration)", size,
                        self.nc._max_payload, self.too_large)

    def _write_frames(self) -> None:
        """(direct path) Write this iteration's frames in one call, or hand them to
        nats-py's own buffer and flusher when it cannot be done now."""
        self._write_scheduled = False
        frames, self._frames = self._frames, []
        if not frames:
            return
        nc = self.nc
        try:
            if nc.is_connected and not nc._pending and \
                    _write_buffer_size(nc) <= _DIRECT_WRITE_LIMIT:
                nc._transport.writelines(frames)
                return
        except Exception as exc:  # noqa: BLE001 - the socket just failed: nats-py's path
            log.debug("cluster: direct NATS write failed (%s); using nats-py's", exc)
        if nc.is_closed:
            self.dropped += len(frames)
            return
        pending = nc._pending
        for frame in frames:
            if not nc.is_connected and nc._max_pending_size > 0 and \
                    nc._pending_data_size + len(frame) > nc._max_pending_size:
                self.dropped += 1  # nats-py's reconnection buffer is full
                continue
            pending.append(frame)
            nc._pending_data_size += len(frame)
        if nc.is_connected:
            task = asyncio.get_running_loop().create_task(nc._flush_pending())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    # -- input -------------------------------------------------------------------------

    def _install_direct_receive(self) -> None:
        """(direct path) Messages for this node's subscriptions go from nats-py's parser to
        the node; any other (none today) keeps nats-py's way."""
        nc = self.nc
        through_nats_py = nc._process_msg
        sids = self._sids
        node = self.node
        router = self.router

        async def process_msg(sid: int, subject: bytes | str, reply: bytes, data: bytes,
                              headers: bytes | None) -> None:
            if sid in sids and not headers:
                stats = nc.stats  # what nats-py's _process_msg would count
                stats["in_msgs"] += 1
                stats["in_bytes"] += len(data)
                node.receive(subject.decode() if isinstance(subject, bytes) else subject, data)
                router.flush_soon()
                return
            await through_nats_py(sid, subject, reply, data, headers)

        nc._process_msg = process_msg

    async def _on_message(self, msg: Any) -> None:
        self.node.receive(msg.subject, msg.data)
        self.router.flush_soon()

    async def _on_error(self, exc: Exception) -> None:
        if self._closing:
            return
        log.warning("cluster: NATS: %s", exc)

    async def _on_disconnected(self) -> None:
        if self._closing:
            return
        self.disconnects += 1
        log.warning("cluster: disconnected from NATS; serving local clients meanwhile")

    async def _on_reconnected(self) -> None:
        log.info("cluster: reconnected to NATS")


def _write_buffer_size(nc: Any) -> int:
    """Bytes waiting in the NATS socket's buffer (nats-py's TCP and TLS transports)."""
    writer = getattr(nc._transport, "_io_writer", None)
    if writer is None:
        return _DIRECT_WRITE_LIMIT + 1  # another transport (WebSocket): nats-py's path
    return writer.transport.get_write_buffer_size()


def _direct_paths_supported(nc: Any) -> bool:
    """Whether this nats-py has the internals the direct paths use (see the module
    docstring); without them the link uses nats-py's public API only."""
    needed = ("_process_msg", "_pending", "_pending_data_size", "_max_pending_size",
              "_transport", "_flush_pending", "_max_payload")
    if _pub_cmd is None or not all(hasattr(nc, name) for name in needed):
        log.info("cluster: this nats-py lacks what the direct NATS paths need; using its "
                 "public API")
        return False
    try:
        _write_buffer_size(nc)
    except Exception:  # noqa: BLE001
        return False
    return True


async def start_cluster(config: Config, router: Router, urls: list[str] | None = None
                        ) -> ClusterLink:
    """Join the cluster of ``config.cluster`` (its URLs, or ``urls``)."""
    link = ClusterLink(router, config.cluster, config.cluster.node or default_node_name())
    await link.connect(urls or config.cluster.nats_urls)
    return link
