"""Run the router: listeners from the configuration, uvloop, signals, shutdown.

``serve(config)`` starts every listener on the running loop and returns a
:class:`Server`; ``run(config)`` does the whole life of the process: picks the
loop (uvloop unless ``FASTWAMP_NO_UVLOOP=1``), prints where it listens, waits
for SIGINT/SIGTERM, says GOODBYE (``wamp.close.system_shutdown``) to every
session, drains, and returns the exit status.

Connections share one :class:`~fastwamp.transport.base.ConnectionLimits` per
server (timeouts and sizes from the top-level configuration, connections per
client address, rate-limited logging, counters in the router's stats).  At
start, :func:`run` raises the soft open-files limit to the hard one.  When
accept fails for want of descriptors, the standard asyncio loop reports it to
the loop's exception handler and retries a second later: :func:`serve` logs
that (rate-limited, counted as ``accept_failures``) instead of a traceback per
attempt.  uvloop (libuv) accepts and at once closes pending connections while
no descriptor is free, without telling anyone; the transports log a warning when
an accepted socket's descriptor comes within ``FD_HEADROOM`` of the limit.

Memory after many connections close.  The C allocator keeps what the
connections freed unless it is at the top of its heap, and Python's set of
open connections keeps the table of its largest size; so every
``RELEASE_CHECK_INTERVAL`` seconds the server checks whether at least
``RELEASE_MIN_CLOSED`` connections (and a quarter of the most it had open)
have closed since the last check that found it so, and if they have, compacts
that set, calls the router's ``release_memory()`` if it has one (its own
tables), collects garbage (what closed connections left in reference cycles
would otherwise wait for a full collection), and hands free memory back to the system (glibc's ``malloc_trim``,
a few milliseconds; nothing where there is none).  Python's own arenas (1 MiB
each) go back as they empty, whatever this does.

TLS.  A listener with ``tls_certificate`` builds its ``ssl.SSLContext`` when it
starts (:func:`fastwamp.transport.tls.server_context`); each connection takes
the context current when it is accepted.

Reload (SIGHUP, :meth:`Server.reload`).  :func:`run` given the configuration
file's path re-reads it on SIGHUP and validates it as ``--check-config`` does;
on any error one log line says why and the running configuration stays.  Else
each listener (matched by position, with the same type, host and port; the
WebSocket engine cannot change) takes the new settings and TLS context for its
new connections (open ones keep theirs), and ``router.reload(config)`` applies
the rest.  A listener that was added, removed or moved needs a restart (logged).
"""

from __future__ import annotations

import asyncio
import errno
import gc
import logging
import signal
import socket
import ssl
import sys
import time
import typing
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from fastwamp.config import (
    Config,
    ConfigError,
    ListenerConfig,
    load_config,
    websocket_engine,
    websocket_implementation_missing,
)
from fastwamp.extensions import log_compiled_core_status
from fastwamp.sdnotify import SystemdNotifier
from fastwamp.transport.base import (
    FD_HEADROOM,
    BaseConnection,
    ConnectionLimits,
    RouterLike,
    keepalive_options,
)
from fastwamp.transport.loop import LoopScheduler, loop_factory
from fastwamp.transport.rawsocket import RawSocketConnection
from fastwamp.transport.tls import TLSSetupError, server_context
from fastwamp.transport.websocket import websocket_connection_class

if TYPE_CHECKING:
    from fastwamp.router import Scheduler

log = logging.getLogger("fastwamp.server")

#: Seconds ``Server.shutdown()`` waits for connections to close before dropping them.
SHUTDOWN_TIMEOUT = 3.0
#: Listen backlog (uvloop and asyncio default to 100, short for connection bursts).
BACKLOG = 1024
#: Lines per second about failed accepts (the standard loop fails up to ``BACKLOG``
#: accept() calls a second while out of descriptors).
ACCEPT_LOG_RATE = 1.0
#: accept() errors that mean the process or the system is out of descriptors.
_OUT_OF_DESCRIPTORS = (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM)
#: Seconds between checks whether many connections closed (module docstring).
RELEASE_CHECK_INTERVAL = 5.0
#: Connections that must have closed since the peak before memory is released.
RELEASE_MIN_CLOSED = 1000


def _find_malloc_trim() -> Callable[[int], int] | None:
    """glibc's ``malloc_trim`` (None where the C library has none: macOS, musl, Windows)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes

        trim = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError, ImportError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim  # type: ignore[no-any-return]


_malloc_trim = _find_malloc_trim()


def raise_fd_limit() -> int | None:
    """Raise the soft RLIMIT_NOFILE to the hard limit; return the new soft limit
    (None where there is no such limit or it cannot be changed)."""
    try:
        import resource
    except ImportError:  # pragma: no cover - Windows
        return None
    try:
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if hard == resource.RLIM_INFINITY:
            # macOS refuses an infinite soft limit; its kernel caps it anyway.
            hard = max(soft, 1 << 20) if soft != resource.RLIM_INFINITY else soft
        if soft == resource.RLIM_INFINITY or soft >= hard:
            return soft
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    except (OSError, ValueError) as exc:
        log.debug("cannot raise the open-files limit: %s", exc)
        return None
    log.debug("open-files limit (RLIMIT_NOFILE) raised to %d", soft)
    return soft


class ConnectionSet(set):  # type: ignore[type-arg]
    """The open connections (they add and remove themselves), with the most there
    have been at once since :meth:`compact`."""

    __slots__ = ("peak",)

    def __init__(self) -> None:
        super().__init__()
        self.peak = 0

    def add(self, conn: Any) -> None:
        super().add(conn)
        if len(self) > self.peak:
            self.peak = len(self)

    def compact(self) -> None:
        """Rebuild the table at the current size (a set keeps its largest); reset the peak."""
        live = list(self)
        self.clear()
        self.update(live)
        self.peak = len(self)


#: Whether accepted TCP sockets inherit the keepalive options of their listening socket.
KEEPALIVE_INHERITED = sys.platform.startswith("linux")


@dataclass
class Listener:
    """A started listener: its configuration, its socket server and its URL.

    ``config`` and ``tls`` are what new connections get; a reload replaces them.
    """

    config: ListenerConfig
    server: asyncio.AbstractServer
    #: ``ws://HOST:PORT/PATH`` or ``tcp://HOST:PORT``, with the port actually bound
    #: (``wss://`` and ``rss://`` with TLS).
    url: str
    port: int
    #: The TLS context of new connections (None: plain TCP).
    tls: ssl.SSLContext | None = None
    #: The WebSocket engine ("" for RawSocket).
    engine: str = ""
    #: TCP keepalive is set on the listening sockets, and accepted sockets inherit it.
    keepalive_on_listen: bool = False

    def apply_keepalive(self) -> None:
        """Set (or clear) TCP keepalive on the listening sockets as ``config`` says, so
        that accepted sockets inherit it (Linux copies socket options at accept; saves
        four ``setsockopt`` calls per connection); elsewhere each connection sets it."""
        self.keepalive_on_listen = False
        if not KEEPALIVE_INHERITED or self.config.type == "http":
            return
        config = self.config
        try:
            for sock in getattr(self.server, "sockets", None) or ():
                if sock.family not in (socket.AF_INET, socket.AF_INET6):
                    return
                if config.tcp_keepalive:
                    for level, option, value in keepalive_options(config.auto_ping_interval,
                                                                  config.auto_ping_timeout):
                        sock.setsockopt(level, option, value)
                else:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 0)
        except OSError as exc:  # each connection sets it then
            log.debug("%s: TCP keepalive on the listening socket: %s", self.url, exc)
            return
        self.keepalive_on_listen = config.tcp_keepalive


def _url(config: ListenerConfig, port: int) -> str:
    host = config.host
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    if config.type == "websocket":
        scheme = "wss" if config.tls_certificate else "ws"
        return f"{scheme}://{host}:{port}{config.path}"
    if config.type == "http":
        return f"http://{host}:{port}/metrics"
    # rss:// is Autobahn's scheme for RawSocket over TLS.
    return f"rss://{host}:{port}" if config.tls_certificate else f"tcp://{host}:{port}"


def listener_tls_context(config: ListenerConfig, key: str = "listener") -> ssl.SSLContext | None:
    """The TLS context of a listener (None without ``tls_certificate``).

    Raises:
        ConfigError: its files cannot be used.
    """
    if not config.tls_certificate:
        return None
    try:
        return server_context(config)
    except TLSSetupError as exc:
        raise ConfigError(f"{key}.{exc.key}", exc.problem) from None


class Server:
    """The running router: its listeners and open connections."""

    def __init__(self, config: Config, router: Any) -> None:
        self.config = config
        self.router = router
        self.listeners: list[Listener] = []
        #: Open client connections (they add and remove themselves).
        self.connections: ConnectionSet = ConnectionSet()
        #: What the connections share: limits, counts per address, log budgets.
        self.limits = ConnectionLimits(config, getattr(router, "stats", None))
        self._shutdown_started = False
        #: The cluster link (fastwamp.cluster.link.ClusterLink) when [cluster] is enabled.
        self.cluster: Any = None
        #: Bind with SO_REUSEPORT (several worker processes share the ports).
        self.reuse_port = config.workers > 1
        #: Closed connections (since that peak) that make the check release memory.
        self.release_min_closed = RELEASE_MIN_CLOSED
        self._release_timer: asyncio.TimerHandle | None = None
        #: What HTTP listeners serve (set by :func:`serve` when there is one).
        self.http_endpoints: Any = None

    def ready(self) -> bool:
        """Every configured listener is listening, and shutdown has not started."""
        return (not self._shutdown_started
                and len(self.listeners) == len(self.config.listeners)
                and all(listener.server.is_serving() for listener in self.listeners))

    def _http_connection(self) -> Any:
        from fastwamp.ops.http import HttpConnection

        config = self.config
        return HttpConnection(self.http_endpoints, self.limits, config.http_request_max_bytes,
                              config.http_request_timeout, self.connections)

    def start_memory_checks(self, interval: float = RELEASE_CHECK_INTERVAL) -> None:
        """Run :meth:`release_memory_if_idle` every ``interval`` seconds (see the module doc)."""
        loop = asyncio.get_running_loop()

        def check() -> None:
            self.release_memory_if_idle()
            self._release_timer = loop.call_later(interval, check)

        self.stop_memory_checks()
        self._release_timer = loop.call_later(interval, check)

    def stop_memory_checks(self) -> None:
        if self._release_timer is not None:
            self._release_timer.cancel()
            self._release_timer = None

    def release_memory_if_idle(self) -> bool:
        """If many connections closed since the peak, compact the set of open
        connections and give free memory back to the system; True if it did."""
        connections = self.connections
        open_now = len(connections)
        peak = connections.peak
        if peak - open_now < max(self.release_min_closed, peak // 4, 1):
            return False
        connections.compact()
        release = getattr(self.router, "release_memory", None)
        if release is not None:  # the core's own tables (optional hook)
            try:
                release()
            except Exception:
                log.exception("router.release_memory() failed")
        # What the connections left in reference cycles waits for a full collection,
        # which the collector's thresholds may put off for a long time.
        started = time.perf_counter()
        gc.collect()
        if _malloc_trim is not None:
            _malloc_trim(0)
        log.debug("%d connections closed: memory released in %.1f ms", peak - open_now,
                  (time.perf_counter() - started) * 1000)
        return True

    @property
    def urls(self) -> list[str]:
        """Where each listener accepts connections, in configuration order."""
        return [listener.url for listener in self.listeners]

    async def start_listener(
        self, config: ListenerConfig, websocket_impl: str | None = None
    ) -> Listener:
        """Bind one listener on the running loop (port 0: the OS picks one).

        A WebSocket listener uses the engine named by ``websocket_impl``, else by
        its ``implementation`` ("auto": see :func:`fastwamp.config.websocket_engine`).

        Raises:
            ImportError: that engine's package is not installed.
        """
        loop = asyncio.get_running_loop()
        cls: type[BaseConnection]
        engine = ""
        if config.type == "websocket":
            engine = websocket_engine(config, websocket_impl)
            cls = websocket_connection_class(engine)
        else:
            cls = RawSocketConnection
        router, connections, limits = self.router, self.connections, self.limits
        tls = listener_tls_context(config, f"listeners[{len(self.listeners)}]")
        listener: Listener | None = None

        def factory() -> Any:
            assert listener is not None
            if listener.config.type == "http":
                return self._http_connection()
            conn = cls(router, listener.config, connections, limits)  # type: ignore[call-arg]
            if listener.tls is not None:
                conn._tls = listener.tls
            conn.keepalive_inherited = listener.keepalive_on_listen
            return conn

        server = await loop.create_server(
            factory, config.host, config.port, backlog=BACKLOG, reuse_address=True,
            reuse_port=self.reuse_port or None,
        )
        port = config.port
        if server.sockets:
            port = server.sockets[0].getsockname()[1]
        listener = Listener(config, server, _url(config, port), port, tls, engine)
        listener.apply_keepalive()
        self.listeners.append(listener)
        log.debug("listening on %s", listener.url)
        return listener

    def reload(self, config: Config) -> None:
        """Apply a new, validated configuration (see the module doc); the running
        one stays if a listener's TLS files cannot be loaded.

        Raises:
            ConfigError: a listener's TLS files cannot be used (nothing was applied).
        """
        updates: list[tuple[Listener, ListenerConfig, ssl.SSLContext | None]] = []
        for i, new in enumerate(config.listeners):
            key = f"listeners[{i}]"
            tls = listener_tls_context(new, key)  # may raise: before anything changes
            if i >= len(self.listeners):
                log.warning("reload: %s (%s %s:%d) is new: a restart starts it",
                            key, new.type, new.host, new.port)
                continue
            current = self.listeners[i]
            old = current.config
            same_place = (new.type, new.host) == (old.type, old.host) and new.port in (
                old.port, current.port
            )
            if not same_place:
                log.warning("reload: %s moved from %s to %s %s:%d: a restart applies it",
                            key, current.url, new.type, new.host, new.port)
                continue
            if new.type == "websocket" and websocket_engine(new) != current.engine:
                log.warning("reload: %s: the WebSocket engine cannot change (%s): "
                            "a restart applies the listener's new settings",
                            key, current.engine)
                continue
            if bool(new.tls_certificate) != bool(old.tls_certificate):
                log.warning("reload: %s: TLS cannot be turned %s on a running listener: "
                            "a restart applies it", key, "on" if new.tls_certificate else "off")
                continue
            updates.append((current, new, tls))
        for i in range(len(config.listeners), len(self.listeners)):
            log.warning("reload: %s (%s) is gone from the configuration: a restart closes it",
                        f"listeners[{i}]", self.listeners[i].url)
        reload = getattr(self.router, "reload", None)
        if reload is not None:
            reload(config)  # the realms first: if it fails, the listeners stay as they are
        for listener, new, tls in updates:
            new.port = listener.port  # port 0 stays the port the OS chose
            listener.config = new
            listener.tls = tls
            listener.apply_keepalive()
            if tls is not None:
                log.info("reload: %s: new connections use the certificate %s",
                         listener.url, new.tls_certificate)
        self.config = config

    def close_listeners(self) -> None:
        """Stop accepting connections (open ones stay)."""
        for listener in self.listeners:
            listener.server.close()

    async def shutdown(self, timeout: float = SHUTDOWN_TIMEOUT) -> None:
        """Stop accepting, GOODBYE every session, wait for connections to close.

        Connections still open after ``timeout`` seconds are dropped.
        """
        if self._shutdown_started:
            return
        self._shutdown_started = True
        self.stop_memory_checks()
        self.close_listeners()
        try:
            self.router.shutdown()
        except Exception:
            log.exception("router shutdown failed")
        # Connections that never joined a realm get no GOODBYE: close them too.
        for conn in list(self.connections):
            conn.close()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self.connections and loop.time() < deadline:
            await asyncio.sleep(0.01)
        for conn in list(self.connections):
            log.info("%s: connection still open at shutdown; dropping it", conn.peer)
            conn._abort()
        if self.connections:
            await asyncio.sleep(0)  # let connection_lost() run
        for listener in self.listeners:
            await listener.server.wait_closed()
        if self.cluster is not None:
            try:
                await asyncio.wait_for(self.cluster.close(), timeout)
            except asyncio.TimeoutError:
                log.warning("the cluster link did not close within %s s", timeout)
            except Exception:
                log.exception("closing the cluster link failed")

    def abort(self) -> None:
        """Drop everything at once (second signal, tests)."""
        self.stop_memory_checks()
        self.close_listeners()
        for conn in list(self.connections):
            conn._abort()


class ServedRouter(RouterLike, Protocol):
    """A router :func:`serve` can run: :class:`RouterLike`, plus the loop hooks it sets."""

    scheduler: Scheduler | None
    call_soon: Callable[[Callable[[], None]], Any] | None


async def serve(
    config: Config,
    *,
    router: ServedRouter | None = None,
    websocket_impl: str | None = None,
) -> Server:
    """Start the router and every listener of ``config`` on the running loop.

    Args:
        config: the (validated) configuration.
        router: a router to use instead of ``fastwamp.router.Router(config)``.
        websocket_impl: WebSocket engine for every WebSocket listener, instead of
            each listener's ``implementation`` (see ``websocket_connection_class``).

    Raises:
        OSError: a listener could not bind (already started ones are closed).
        ConfigError: a listener's WebSocket engine cannot run here.
    """
    for i, listener_config in enumerate(config.listeners):
        if listener_config.type == "websocket":
            name = websocket_engine(listener_config, websocket_impl)
            missing = websocket_implementation_missing(name)
            if missing is not None:  # refused before anything starts
                raise ConfigError(f"listeners[{i}].implementation", missing)
    loop = asyncio.get_running_loop()
    if router is None:
        from fastwamp.router import Router

        router = Router(config)
    router.scheduler = LoopScheduler(loop, router)
    router.call_soon = loop.call_soon
    server = Server(config, router)
    if any(listener.type == "http" for listener in config.listeners):
        server.http_endpoints = _http_endpoints(config, router, server)
    _handle_accept_errors(loop, server.limits)
    if config.cluster.enabled:
        from fastwamp.cluster.link import start_cluster  # only in cluster mode

        server.cluster = await start_cluster(config, typing.cast(Any, router))
    try:
        for listener_config in config.listeners:
            await server.start_listener(listener_config, websocket_impl)
    except BaseException:
        server.close_listeners()
        if server.cluster is not None:
            await server.cluster.close()
        raise
    server.start_memory_checks()
    return server


def _http_endpoints(config: Config, router: Any, server: Server) -> Any:
    """Start counting on ``router`` (before any client attaches) and make what HTTP
    listeners serve: metrics (a core router only), /health and /ready."""
    from fastwamp.ops.http import HttpEndpoints
    from fastwamp.router import Router

    registry = None
    if isinstance(router, Router):
        from fastwamp.ops.counters import install_counters
        from fastwamp.ops.exposition import make_registry

        registry = make_registry(router, install_counters(router, config.metrics_series_max),
                                 lambda: server.cluster)
    return HttpEndpoints(registry, server.ready)


def _handle_accept_errors(loop: asyncio.AbstractEventLoop, limits: ConnectionLimits) -> None:
    """Log failed accepts for want of descriptors once per rate limit, not with a
    traceback each time (the standard loop retries them a second later)."""
    previous = loop.get_exception_handler()
    if getattr(previous, "_fastwamp_accept_errors", False):
        return  # already installed (several servers on one loop)

    def handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        exc = context.get("exception")
        if isinstance(exc, OSError) and exc.errno in _OUT_OF_DESCRIPTORS:
            limits.count("accept_failures")  # failed accept() calls
            limits.log(
                "accept",
                logging.ERROR,
                "cannot accept connections: %s (open-files limit %d); retrying",
                exc.strerror or exc,
                limits.fd_alarm + FD_HEADROOM if limits.fd_alarm else 0,
                rate=ACCEPT_LOG_RATE,
            )
            return
        if previous is not None:
            previous(loop, context)
        else:
            loop.default_exception_handler(context)

    handler._fastwamp_accept_errors = True  # type: ignore[attr-defined]
    loop.set_exception_handler(handler)


def configure_logging(level: str, log_format: str = "text") -> None:
    """Log to stderr at ``level``, as text lines or JSON objects (see fastwamp.ops.logs)."""
    from fastwamp.ops.logs import configure_logging as configure

    configure(level, log_format)


def reload_from_file(server: Server, path: str | None,
                     adjust: Callable[[Config], None] | None = None) -> bool:
    """Re-read the configuration file ``path``, validate it as ``--check-config``
    does, ``adjust`` it as at start (a worker's node name and ports), and apply it to
    ``server``; True if it was applied.  On any error one log line says why and the
    running configuration stays."""
    if path is None:
        log.warning("reload requested (SIGHUP), but the router runs on the embedded "
                    "default configuration (no --config file): nothing to reload")
        return False
    try:
        config = load_config(path)
        if adjust is not None:
            adjust(config)
        server.reload(config)
    except ConfigError as exc:
        # Every problem, one "FILE:LINE: key: problem" line each (as --check-config).
        log.error("reload of %s refused, the running configuration stays: %s", path,
                  "; ".join(exc.report()))
        return False
    except Exception:
        log.exception("reload of %s failed; the running configuration stays", path)
        return False
    log.info("reloaded the configuration from %s", path)
    return True


async def _main(config: Config, config_path: str | None = None,
                adjust: Callable[[Config], None] | None = None) -> int:
    loop = asyncio.get_running_loop()
    try:
        server = await serve(config)
    except OSError as exc:
        log.error("cannot start: %s", exc)
        return 1
    except ConfigError as exc:
        log.error("cannot start: configuration error: %s", exc)
        return 2
    log_compiled_core_status(log)
    systemd = SystemdNotifier()  # Type=notify: READY=1, RELOADING=1 on SIGHUP, STOPPING=1
    stop = asyncio.Event()
    signals = 0

    def on_signal(signum: int) -> None:
        nonlocal signals
        signals += 1
        if signals == 1:
            log.info("received %s: shutting down", signal.Signals(signum).name)
            stop.set()
        else:
            log.warning("received %s again: dropping every connection", signal.Signals(signum).name)
            server.abort()

    def on_reload() -> None:
        log.info("received SIGHUP: reloading the configuration")
        systemd.reloading()
        reload_from_file(server, config_path, adjust)
        systemd.ready(server.urls)

    installed = []
    handlers: list[tuple[signal.Signals, Callable[..., None], tuple[Any, ...]]] = [
        (signal.SIGINT, on_signal, (signal.SIGINT,)),
        (signal.SIGTERM, on_signal, (signal.SIGTERM,)),
    ]
    if hasattr(signal, "SIGHUP"):
        handlers.append((signal.SIGHUP, on_reload, ()))
    for signum, handler, args in handlers:
        try:
            loop.add_signal_handler(signum, handler, *args)
            installed.append(signum)
        except (NotImplementedError, RuntimeError):  # pragma: no cover - Windows
            pass
    for url in server.urls:
        print(f"fastwamp: listening on {url}", flush=True)
    print("fastwamp: ready", flush=True)
    systemd.ready(server.urls)
    log.info(
        "fastwamp ready (%s loop, realms: %s)",
        type(loop).__module__.partition(".")[0],
        ", ".join(realm.name for realm in config.realms),
    )
    try:
        await stop.wait()
        systemd.stopping()
        await server.shutdown()
    finally:
        for signum in installed:
            loop.remove_signal_handler(signum)
    log.info("stopped")
    return 0


def run(config: Config, config_path: str | Path | None = None,
        adjust: Callable[[Config], None] | None = None) -> int:
    """Run the router until SIGINT/SIGTERM; return the process exit status.

    Prints ``fastwamp: listening on URL`` per listener, then ``fastwamp: ready``
    (flushed, once the signal handlers are in place).  SIGHUP reloads the
    configuration from ``config_path`` (see :func:`reload_from_file`; ``adjust``
    is applied to what it reads).
    """
    path = str(config_path) if config_path is not None else None
    configure_logging(config.log_level, config.log_format)
    raise_fd_limit()
    factory = loop_factory()
    try:
        if sys.version_info >= (3, 11):
            with asyncio.Runner(loop_factory=factory) as runner:
                return runner.run(_main(config, path, adjust))
        else:  # pragma: no cover - Python 3.10
            loop = factory()
            try:
                asyncio.set_event_loop(loop)
                return loop.run_until_complete(_main(config, path, adjust))
            finally:
                asyncio.set_event_loop(None)
                loop.close()
    except KeyboardInterrupt:  # pragma: no cover - a signal before handlers were installed
        return 130
