"""A liveness probe for containers: ``python -m fastwamp.healthcheck [URL | --config FILE]``.

With ``tcp://HOST:PORT`` it opens a RawSocket connection and completes the
RawSocket handshake, which the router's event loop answers itself; with
``http://HOST:PORT/health`` it asks an HTTP listener's /health.  With
``--config FILE`` it probes what that configuration serves: the /health of its
first ``http`` listener when it has one, else its first RawSocket listener.
Exit status 0 when the router answers, 1 when the connection is refused, times
out or is answered wrongly.  No realm is joined and nothing is logged by the
router beyond a closed connection.
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


def probe_http(url: str, timeout: float = TIMEOUT) -> str | None:
    """None when ``url`` (an HTTP listener's /health) answers 200, else why not."""
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=timeout) as reply:
            status = reply.status
    except urllib.error.HTTPError as exc:
        status = exc.code
    except (OSError, ValueError) as exc:
        return f"{url}: {exc}"
    return None if status == 200 else f"{url}: HTTP status {status}"


def url_from_config(path: str) -> str:
    """What to probe for configuration file ``path``: its first http listener's /health,
    else its first RawSocket listener (a wildcard host probed on loopback)."""
    from fastwamp.config import load_config

    config = load_config(path)
    for kind in ("http", "rawsocket"):
        for listener in config.listeners:
            if listener.type == kind and listener.port and not listener.tls_certificate:
                host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(
                    listener.host, listener.host)
                host = f"[{host}]" if ":" in host else host
                if kind == "http":
                    return f"http://{host}:{listener.port}/health"
                return f"tcp://{host}:{listener.port}"
    raise ValueError(f"{path}: no http or plain RawSocket listener with a fixed port to probe")


def probe(url: str = DEFAULT_URL, timeout: float = TIMEOUT) -> str | None:
    """None when the router answers at ``url``: the RawSocket handshake (``tcp://``) or
    /health (``http://``); else why not."""
    parts = urlsplit(url)
    if parts.scheme == "http":
        return probe_http(url, timeout)
    if parts.scheme != "tcp" or parts.hostname is None or parts.port is None:
        return f"not a tcp://HOST:PORT or http:// URL: {url}"
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
    """Probe the URL given (default ``tcp://127.0.0.1:8081``), or what ``--config FILE``
    serves; the exit status."""
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["--config"] and len(args) == 2:
        from fastwamp.config import ConfigError

        try:
            url = url_from_config(args[1])
        except (ConfigError, ValueError) as exc:
            print(f"fastwamp healthcheck: {exc}", file=sys.stderr)
            return 1
    else:
        url = args[0] if args else DEFAULT_URL
    problem = probe(url)
    if problem is not None:
        print(f"fastwamp healthcheck: {problem}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
