"""The ``fastwamp`` command (also ``python -m fastwamp``)."""

from __future__ import annotations

import argparse
import sys

from fastwamp import __version__
from fastwamp.config import (
    LOG_LEVELS,
    Config,
    ConfigError,
    default_config,
    default_config_toml,
    load_config,
)

#: Exit status for a bad command line or configuration.
EXIT_CONFIG_ERROR = 2

_DESCRIPTION = """\
fastwamp: a fast WAMP v2 router (WebSocket and RawSocket; JSON, MessagePack, CBOR).

Without --config it serves realm "realm1" to anonymous clients on
ws://127.0.0.1:8080/ws and tcp://127.0.0.1:8081 (RawSocket). Once listening it
prints one "fastwamp: listening on URL" line per listener, then "fastwamp: ready".
SIGINT or SIGTERM say GOODBYE (wamp.close.system_shutdown) to every session and
exit with status 0. SIGHUP re-reads the --config file (a bad one is refused with a
log line and the running configuration stays): listeners reload their TLS
certificates for new connections.
"""

_EPILOG = """\
exit status: 0 after a clean shutdown (or a successful --check-config),
1 when a listener cannot start, 2 for a bad command line or configuration.
Environment: FASTWAMP_NO_UVLOOP=1 runs on the standard asyncio loop instead of uvloop.
"""


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (every option is documented in ``--help``)."""
    parser = argparse.ArgumentParser(
        prog="fastwamp",
        description=_DESCRIPTION,
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "-c",
        "--config",
        metavar="FILE",
        help="TOML configuration file (see --print-default-config); "
        "default: the embedded configuration described above",
    )
    parser.add_argument(
        "--log-level",
        choices=LOG_LEVELS,
        type=str.lower,
        help="log level, overriding the configuration's log_level (default: info)",
    )
    parser.add_argument(
        "--check-config",
        action="store_true",
        help="validate the configuration, print a summary and exit "
        f"(status 0 if valid, {EXIT_CONFIG_ERROR} if not)",
    )
    parser.add_argument(
        "--print-default-config",
        action="store_true",
        help="print the default configuration as commented TOML and exit",
    )
    parser.add_argument(
        "-V",
        "--version",
        action="version",
        version=f"fastwamp {__version__}",
        help="print the version and exit",
    )
    return parser


def _summary(config: Config) -> str:
    lines = [f"realms: {', '.join(realm.name for realm in config.realms)}"]
    for lst in config.listeners:
        where = f"{lst.host}:{lst.port}"
        tls = f", TLS {lst.tls_certificate}" if lst.tls_certificate else ""
        if lst.type == "websocket":
            scheme = "wss" if lst.tls_certificate else "ws"
            lines.append(
                f"listener: websocket {scheme}://{where}{lst.path} "
                f"({', '.join(lst.serializers)}{tls})"
            )
        else:
            scheme = "rss" if lst.tls_certificate else "tcp"
            lines.append(
                f"listener: rawsocket {scheme}://{where} ({', '.join(lst.serializers)}{tls})"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv`` and run; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)

    if args.print_default_config:
        sys.stdout.write(default_config_toml())
        return 0

    try:
        config = load_config(args.config) if args.config else default_config()
    except ConfigError as exc:
        print(f"fastwamp: configuration error: {exc}", file=sys.stderr)
        return EXIT_CONFIG_ERROR
    if args.log_level:
        config.log_level = args.log_level

    if args.check_config:
        source = args.config or "the default configuration"
        print(f"fastwamp: {source}: configuration OK")
        print(_summary(config))
        return 0

    from fastwamp.server import run

    return run(config, args.config)
