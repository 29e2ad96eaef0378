"""systemd readiness notification (``Type=notify``), without a dependency.

systemd passes a Unix datagram socket in ``$NOTIFY_SOCKET`` (a path, or an
abstract name written with a leading ``@``); a service sends it newline-separated
``KEY=value`` lines. The router sends ``READY=1`` (with a ``STATUS=`` naming
its listeners) once every listener listens, ``RELOADING=1`` then ``READY=1``
around a reload (SIGHUP), ``STOPPING=1`` when shutdown starts, and, when the
unit sets ``WatchdogSec=``, ``WATCHDOG=1`` from the event loop at half the
interval systemd gives in ``$WATCHDOG_USEC``, so a stuck loop gets the service
restarted. Without ``$NOTIFY_SOCKET`` every method does nothing.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from collections.abc import Mapping

log = logging.getLogger("fastwamp.sdnotify")


def notify_address(value: str | None) -> str | None:
    """The socket address for ``connect`` from ``$NOTIFY_SOCKET`` (None if unusable)."""
    if not value or value[0] not in "/@":
        return None
    return "\0" + value[1:] if value[0] == "@" else value


def watchdog_interval(environ: Mapping[str, str] | None = None) -> float | None:
    """Seconds between ``WATCHDOG=1`` pings (half of ``$WATCHDOG_USEC``), or None when the
    watchdog is off or meant for another process (``$WATCHDOG_PID``)."""
    env = os.environ if environ is None else environ
    try:
        usec = int(env.get("WATCHDOG_USEC", "0"))
        pid = int(env.get("WATCHDOG_PID", "0"))
    except ValueError:
        return None
    if usec <= 0 or (pid and pid != os.getpid()):
        return None
    return usec / 2e6


class SystemdNotifier:
    """Sends state changes to the service manager, if one asked for them."""

    def __init__(self, address: str | None = None) -> None:
        #: Where the datagrams go (None: nowhere).
        self.address = address if address is not None else notify_address(
            os.environ.get("NOTIFY_SOCKET"))
        self._watchdog: asyncio.TimerHandle | None = None

    def send(self, state: str) -> bool:
        """Send ``state`` (``KEY=value`` lines); False when there is no socket or it fails."""
        if self.address is None:
            return False
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
                sock.connect(self.address)
                sock.sendall(state.encode())
        except OSError as exc:
            log.warning("cannot notify the service manager (%s): %s", state.split("\n")[0], exc)
            return False
        return True

    def ready(self, urls: list[str]) -> None:
        """Every listener listens (at start, or after a reload): ``READY=1``; the first time,
        start the watchdog pings if asked for."""
        if self.address is None:
            return
        self.send(f"READY=1\nSTATUS=listening on {' '.join(urls)}\nMAINPID={os.getpid()}")
        interval = watchdog_interval()
        if interval is not None and self._watchdog is None:
            loop = asyncio.get_running_loop()

            def ping() -> None:
                self.send("WATCHDOG=1")
                self._watchdog = loop.call_later(interval, ping)

            self._watchdog = loop.call_later(interval, ping)

    def reloading(self) -> None:
        """A reload starts: ``RELOADING=1`` with the monotonic time systemd asks for;
        :meth:`ready` says when it is over."""
        if self.address is not None:
            usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
            self.send(f"RELOADING=1\nMONOTONIC_USEC={usec}\nSTATUS=reloading the configuration")

    def stopping(self) -> None:
        """Shutdown starts: ``STOPPING=1``; no more watchdog pings."""
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        if self.address is not None:
            self.send("STOPPING=1\nSTATUS=shutting down")
