"""The ``fastwamp`` command (also ``python -m fastwamp``)."""

from __future__ import annotations

import argparse
import sys

from fastwamp import __version__
from fastwamp.config import (
    LOG_LEVELS,
    Config,
    ConfigError,
    ListenerConfig,
    default_config,
    default_config_toml,
    load_config,
    validate_config,
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
`fastwamp hash-secret METHOD` prints a user's credential lines for the configuration
(see `fastwamp hash-secret --help`).
`fastwamp status --url URL --realm REALM` shows a running router's sessions,
registrations, subscriptions and stats (see `fastwamp status --help`).
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
        "--metrics",
        metavar="PORT",
        type=int,
        help="also serve /metrics (Prometheus), /health and /ready over HTTP on "
        "127.0.0.1:PORT (adds a listener of type http)",
    )
    parser.add_argument(
        "--check-config",
        action="store_true",
        help="validate the configuration, print a summary and exit "
        f"(status 0 if valid, {EXIT_CONFIG_ERROR} if not)",
    )
    parser.add_argument(
        "--config-schema",
        action="store_true",
        help="print the JSON Schema of the configuration file (for editors: e.g. Taplo or "
        "Even Better TOML) and exit",
    )
    parser.add_argument(
        "--print-default-config",
        action="store_true",
        help="print the default configuration as commented TOML and exit",
    )
    parser.add_argument(
        "--workers",
        type=int,
        metavar="N",
        help="run N router processes sharing the listening ports, linked as one cluster "
        "through NATS (a nats-server started on 127.0.0.1 unless [cluster] nats_urls is "
        "set); overrides the configuration's workers (default: 1, one process)",
    )
    # Set by --workers for each worker process.
    parser.add_argument("--worker", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--worker-node", help=argparse.SUPPRESS)
    parser.add_argument("--worker-nats", help=argparse.SUPPRESS)
    parser.add_argument("--worker-ports", help=argparse.SUPPRESS)
    parser.add_argument(
        "-V",
        "--version",
        action="version",
        version=f"fastwamp {__version__}",
        help="print the version and exit",
    )
    return parser


def print_config_errors(error: ConfigError, cause: str = "") -> None:
    """Print every problem of ``error`` on stderr, one ``FILE:LINE: key: problem`` line
    each (what editors and CI logs link to), then a count."""
    for line in error.report():
        print(line, file=sys.stderr)
    count = len(error.errors)
    what = f"{count} configuration error{'s' if count > 1 else ''}"
    print(f"fastwamp: {what}{f' ({cause})' if cause else ''}; nothing was started",
          file=sys.stderr)


def _summary(config: Config) -> str:
    lines = [f"realms: {', '.join(realm.name for realm in config.realms)}"]
    for lst in config.listeners:
        where = f"{lst.host}:{lst.port}"
        tls = f", TLS {lst.tls_certificate}" if lst.tls_certificate else ""
        if lst.type == "http":
            lines.append(f"listener: http http://{where} (/metrics, /health, /ready, /console)")
        elif lst.type == "websocket":
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


_HASH_DESCRIPTION = """\
Print the TOML lines of a user's credential, to paste into a [[realms.users]] table
(or a users_file). The secret is read from a prompt, or from the first line of
standard input when it is not a terminal; never from the command line. With
--generate a random secret is made and printed on standard error, for the client.

  ticket      a salted PBKDF2-SHA256 hash of the ticket
  wampcra     the salted WAMP-CRA key (Autobahn's derive_key); --plain: the secret
              itself is the key (not recommended: it is then stored in clear)
  scram       WAMP-SCRAM StoredKey and ServerKey (Argon2id or PBKDF2)
  cryptosign  the public key of an Ed25519 private key (64 hex digits); with
              --generate, a new key pair
"""


def build_hash_secret_parser() -> argparse.ArgumentParser:
    """The parser of ``fastwamp hash-secret``."""
    from fastwamp.auth import credentials as cred

    parser = argparse.ArgumentParser(
        prog="fastwamp hash-secret", description=_HASH_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("method", choices=("ticket", "wampcra", "scram", "cryptosign"))
    parser.add_argument("--generate", action="store_true",
                        help="make a random secret (printed on standard error)")
    parser.add_argument("--iterations", type=int, default=None,
                        help=f"PBKDF2 iterations (ticket: {cred.TICKET_ITERATIONS}, wampcra: "
                        f"{cred.WAMPCRA_ITERATIONS}) or Argon2 time cost (scram: 3)")
    parser.add_argument("--salt", default=None,
                        help="wampcra: the salt (default: random)")
    parser.add_argument("--keylen", type=int, default=cred.WAMPCRA_KEYLEN,
                        help="wampcra: derived key length in bytes (default: 32)")
    parser.add_argument("--plain", action="store_true",
                        help="wampcra: plain WAMP-CRA (the secret is the key)")
    parser.add_argument("--kdf", choices=cred.SCRAM_KDFS, default="argon2id-13",
                        help="scram: key derivation function (default: argon2id-13)")
    parser.add_argument("--memory", type=int, default=65536,
                        help="scram with argon2id-13: memory cost in KiB (default: 65536)")
    return parser


def _read_secret(method: str) -> str:
    if sys.stdin.isatty():
        import getpass

        first = getpass.getpass(f"{method} secret: ")
        if getpass.getpass("again: ") != first:
            raise ValueError("the two entries differ")
        secret = first
    else:
        secret = sys.stdin.readline().rstrip("\r\n")
    if not secret:
        raise ValueError("the secret is empty")
    return secret


def _toml(value: str) -> str:
    """A TOML basic string (a JSON string is one)."""
    import json

    return json.dumps(value, ensure_ascii=False)


def hash_secret(argv: list[str]) -> int:
    """``fastwamp hash-secret METHOD``: print the credential lines; returns the status."""
    import secrets

    from fastwamp.auth import credentials as cred

    args = build_hash_secret_parser().parse_args(argv)
    if args.iterations is not None and args.iterations < 1:
        print("fastwamp: --iterations must be >= 1", file=sys.stderr)
        return EXIT_CONFIG_ERROR
    try:
        if args.method == "cryptosign":
            from nacl.signing import SigningKey

            if args.generate:
                key = SigningKey.generate()
                print(f"private key (for the client): {key.encode().hex()}", file=sys.stderr)
            else:
                key = SigningKey(cred.unhex(_read_secret("cryptosign private key").lower(),
                                            32, "the private key"))
            print(f"cryptosign_pubkeys = [{_toml(key.verify_key.encode().hex())}]")
            return 0
        if args.generate:
            secret = secrets.token_urlsafe(32)
            print(f"secret (for the client): {secret}", file=sys.stderr)
        else:
            secret = _read_secret(args.method)
        if args.method == "ticket":
            iterations = args.iterations or cred.TICKET_ITERATIONS
            if not cred.TICKET_ITERATIONS_MIN <= iterations <= cred.TICKET_ITERATIONS_MAX:
                raise ValueError(f"--iterations must be between {cred.TICKET_ITERATIONS_MIN} "
                                 f"and {cred.TICKET_ITERATIONS_MAX}")
            print(f"ticket = {_toml(cred.hash_ticket(secret, iterations))}")
        elif args.method == "wampcra":
            if args.plain:
                print(f"wampcra = {{ key = {_toml(secret)} }}")
            else:
                salt = args.salt or cred.new_wampcra_salt()
                iterations = args.iterations or cred.WAMPCRA_ITERATIONS
                key_b64 = cred.derive_wampcra_key(secret, salt, iterations, args.keylen)
                print(f"wampcra = {{ key = {_toml(key_b64)}, salt = {_toml(salt)}, "
                      f"iterations = {iterations}, keylen = {args.keylen} }}")
        else:
            keys = cred.derive_scram_keys(secret, args.kdf, args.iterations or 3, args.memory)
            print(f"scram = {{ kdf = {_toml(keys.kdf)}, salt = {_toml(keys.salt)}, "
                  f"iterations = {keys.iterations}, memory = {keys.memory}, "
                  f"stored_key = {_toml(cred.b64(keys.stored_key))}, "
                  f"server_key = {_toml(cred.b64(keys.server_key))} }}")
    except (ValueError, EOFError, KeyboardInterrupt) as exc:
        print(f"fastwamp: hash-secret: {exc or 'cancelled'}", file=sys.stderr)
        return EXIT_CONFIG_ERROR
    return 0


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv`` and run; returns the exit status."""
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "hash-secret":
        return hash_secret(argv[1:])
    if argv and argv[0] == "status":
        from fastwamp.ops.status import main as status

        return status(argv[1:])
    parser = build_parser()
    args = parser.parse_args(argv)

    if args.print_default_config:
        sys.stdout.write(default_config_toml())
        return 0

    if args.config_schema:
        import json

        from fastwamp.config import config_json_schema

        print(json.dumps(config_json_schema(), indent=2))
        return 0

    try:
        config = load_config(args.config) if args.config else default_config()
    except ConfigError as exc:
        print_config_errors(exc)
        return EXIT_CONFIG_ERROR
    if args.log_level:
        config.log_level = args.log_level
    if args.metrics is not None:
        try:
            config.listeners.append(ListenerConfig("http", host="127.0.0.1", port=args.metrics))
            validate_config(config)
        except ConfigError as exc:
            print_config_errors(exc, "--metrics")
            return EXIT_CONFIG_ERROR
    if args.workers is not None:
        config.workers = args.workers
        try:
            validate_config(config)
        except ConfigError as exc:
            print_config_errors(exc, "--workers")
            return EXIT_CONFIG_ERROR

    if args.check_config:
        source = args.config or "the default configuration"
        print(f"fastwamp: {source}: configuration OK")
        print(_summary(config))
        return 0

    adjust = None
    if args.worker is not None:
        from functools import partial

        from fastwamp.cluster.workers import worker_config

        adjust = partial(worker_config, index=args.worker, node=args.worker_node,
                         nats_urls=args.worker_nats, ports=args.worker_ports,
                         workers=config.workers)
        adjust(config)
    elif config.workers > 1:
        from fastwamp.cluster.workers import run_workers

        return run_workers(config, args.config, args.log_level)
    from fastwamp.server import run

    return run(config, args.config, adjust)
