"""The NATS link of a cluster node: nats-py on the router's event loop (the only I/O here).

:func:`start_cluster` connects, builds the sans-I/O :class:`ClusterNode`, and
subscribes it to its subjects.  The node's output is queued and published by
one task per batch, in order; each received message goes to the node and the
router flushes at the end of the loop iteration.  nats-py reconnects by itself
(forever, to any configured server) and buffers up to ``max_pending_bytes``
meanwhile; past that, cluster messages are dropped and counted, and local
routing goes on.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import ssl
from typing import TYPE_CHECKING, Any

import nats
from nats.errors import Error as NatsError

from .node import ClusterNode

if TYPE_CHECKING:
    from ..config import ClusterConfig, Config
    from ..router.router import Router

log = logging.getLogger("fastwamp.cluster")


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
        self._closing = False

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
            await self.nc.subscribe(subject, cb=self._on_message)
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

    def send(self, subject: str, data: bytes) -> None:
        """Queue one message; published in order by the drain task."""
        self._outgoing.append((subject, data))
        if not self._draining:
            self._draining = True
            task = asyncio.get_running_loop().create_task(self._drain())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _drain(self) -> None:
        try:
            while self._outgoing:
                batch, self._outgoing = self._outgoing, []
                publish = self.nc.publish
                for subject, data in batch:
                    try:
                        await publish(subject, data)
                    except NatsError:
                        self.dropped += 1
        finally:
            self._draining = False

    # -- input -------------------------------------------------------------------------

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


async def start_cluster(config: Config, router: Router, urls: list[str] | None = None
                        ) -> ClusterLink:
    """Join the cluster of ``config.cluster`` (its URLs, or ``urls``)."""
    link = ClusterLink(router, config.cluster, config.cluster.node or default_node_name())
    await link.connect(urls or config.cluster.nats_urls)
    return link
