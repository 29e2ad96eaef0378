"""A liveness probe for containers: ``python -m fastwamp.healthcheck [tcp://HOST:PORT]``.

It opens a RawSocket connection and completes the RawSocket handshake, which
the router's event loop answers itself: exit status 0 when it does, 1 when the
connection is refused, times out or is answered wrongly. No realm is joined
and nothing is logged by the router beyond a closed connection.
"""

from __future__ import annotations

import socket
import sys
from urllib.parse import urlsplit

DEFAULT_URL = "tcp://127.0.0.1:8081"
#: Seconds for connecting and for the handshake reply.
TIMEOUT = 3.0
#: RawSocket handshake: magic octet, max message length 2**24 with JSON, two reserved octets.
HANDSHAKE = bytes([0x7F, 0xF1, 0, 0])


def probe(url: str = DEFAULT_URL, timeout: float = TIMEOUT) -> str | None:
    """None when the RawSocket listener at ``url`` answers the handshake, else why not."""
    parts = urlsplit(url)
    if parts.scheme != "tcp" or parts.hostname is None or parts.port is None:
        return f"not a tcp://HOST:PORT URL: {url}"
    try:
        with socket.create_connection((parts.hostname, parts.port), timeout=timeout) as sock:
            sock.sendall(HANDSHAKE)
            reply = b""
            while len(reply) < 4:
                chunk = sock.recv(4 - len(reply))
                if not chunk:
                    return "connection closed before the handshake reply"
                reply += chunk
    except OSError as exc:
        return f"{url}: {exc}"
    if reply[0] != 0x7F:
        return f"{url}: not a RawSocket reply: {reply.hex()}"
    if reply[1] & 0x0F == 0:
        return f"{url}: handshake refused (error {reply[1] >> 4})"
    return None


def main(argv: list[str] | None = None) -> int:
    """Probe the URL given (default ``tcp://127.0.0.1:8081``); the exit status."""
    args = sys.argv[1:] if argv is None else argv
    problem = probe(args[0] if args else DEFAULT_URL)
    if problem is not None:
        print(f"fastwamp healthcheck: {problem}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
