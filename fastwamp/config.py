"""Router configuration: dataclasses, the embedded default, and TOML loading.

The router core reads only these dataclasses; how they are filled (defaults,
TOML file, command line) is this module's business.
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib.util
import re
import sys
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class HistoryConfig:
    """Keep the last events of topics matching (uri, match) for wamp.subscription.get_events."""

    uri: str
    #: "exact", "prefix" or "wildcard": history is read through a subscription with the
    #: same uri and match policy.
    match: str = "exact"
    #: How many events to keep.
    limit: int = 1000
    #: Forget events older than this many seconds (0 = keep until pushed out by limit).
    max_age: float = 0.0


#: Actions a permission may allow (``PermissionConfig.allow``).
PERMISSION_ACTIONS = ("call", "register", "publish", "subscribe")


@dataclass
class PermissionConfig:
    """What a role may do on URIs matching (uri, match); the most specific rule wins."""

    uri: str
    #: "exact", "prefix" (string prefix) or "wildcard" (empty components match any).
    match: str = "exact"
    #: Any of "call", "register", "publish", "subscribe"; an empty list denies them all.
    allow: list[str] = field(default_factory=list)
    #: Calls under this rule disclose the caller to the callee (as CALL disclose_me would).
    disclose_caller: bool = False
    #: Publications under this rule disclose the publisher (as PUBLISH disclose_me would).
    disclose_publisher: bool = False


@dataclass
class RoleConfig:
    """An authrole of a realm: its permissions, its trust, its rate limits."""

    name: str
    #: May use the whole meta API (wamp.session.kill*/get/list, wamp.registration.*,
    #: wamp.subscription.*, fastwamp.*); other roles get the public meta procedures only.
    trusted: bool = False
    permissions: list[PermissionConfig] = field(default_factory=list)
    #: Calls and publications per second for all sessions of this role together
    #: (token bucket; 0 = unlimited), and the burst (0 = one second's worth).
    calls_per_second: float = 0.0
    call_burst: int = 0
    publishes_per_second: float = 0.0
    publish_burst: int = 0


@dataclass
class WampCraKey:
    """A user's WAMP-CRA key (``fastwamp hash-secret wampcra`` prints it).

    Salted (recommended): ``key`` is ``base64(PBKDF2-HMAC-SHA256(secret, salt,
    iterations, keylen))``, exactly what Autobahn's ``auth.derive_key`` returns; the
    secret itself is never stored.  Plain: no ``salt``, and ``key`` is the secret.
    """

    #: The HMAC key the router signs challenges with ("" = no WAMP-CRA for this user).
    key: str = ""
    #: PBKDF2 salt (used as its UTF-8 bytes, as Autobahn does); "" = plain WAMP-CRA.
    salt: str = ""
    iterations: int = 1000
    keylen: int = 32


@dataclass
class ScramCredential:
    """A user's WAMP-SCRAM credential (``fastwamp hash-secret scram`` prints it)."""

    #: "argon2id-13" or "pbkdf2" ("" = no SCRAM for this user).
    kdf: str = ""
    #: base64 salt, iterations (argon2 time cost) and memory (argon2, KiB).
    salt: str = ""
    iterations: int = 0
    memory: int = 0
    #: base64 StoredKey and ServerKey (RFC 5802); the password is never stored.
    stored_key: str = ""
    server_key: str = ""


@dataclass
class UserConfig:
    """One user of a realm: its identity and its credentials, one per method."""

    authid: str
    authrole: str
    #: Salted hash of the ticket (``fastwamp hash-secret ticket``):
    #: "pbkdf2-sha256$<iterations>$<base64 salt>$<base64 hash>".
    ticket: str = ""
    wampcra: WampCraKey = field(default_factory=WampCraKey)
    #: Ed25519 public keys (64 hex digits each) this user may sign in with.
    cryptosign_pubkeys: list[str] = field(default_factory=list)
    #: TLS client certificates: SHA-256 fingerprints of the DER certificate (hex,
    #: colons allowed), and subjects as the TLS layer reports them.
    tls_fingerprints: list[str] = field(default_factory=list)
    tls_subjects: list[str] = field(default_factory=list)
    scram: ScramCredential = field(default_factory=ScramCredential)


@dataclass
class RealmConfig:
    """One realm: its name and its policies."""

    name: str
    #: Let clients join without credentials (authmethod "anonymous").
    allow_anonymous: bool = True
    #: Check URIs with the strict rule ([0-9a-z_] components) instead of the loose one.
    strict_uris: bool = False
    #: Caller/publisher identity in INVOCATION/EVENT details: "always" (as Bondy and the
    #: guide: every callee and subscriber sees who called or published), "on_request"
    #: (the spec: only when disclose_me, disclose_caller or get_publisher asks for it),
    #: "never" (such requests are refused with wamp.error.option_disallowed.disclose_me).
    disclosure: str = "always"
    #: Keep the last event published with retain=true per topic (PUBLISH.Options.retain).
    event_retention: bool = True
    #: Calls one session may have waiting for an answer; beyond it CALL gets
    #: fastwamp.error.quota_exceeded (a flood cannot pile invocations up on callees).
    max_calls_in_flight: int = 1000
    #: At most this many topics keep a retained event; the least recently retained go first.
    retained_topics_max: int = 100000
    #: Topics whose events are kept for wamp.subscription.get_events.
    event_history: list[HistoryConfig] = field(default_factory=list)
    #: SQLite file keeping the event history across restarts ("" = memory only).
    history_store: str = ""
    #: Output a session may have waiting when it reads slower than it is sent to
    #: (beyond the socket's own buffers): bytes, and messages.
    output_queue_bytes: int = 8 * 1024 * 1024
    output_queue_messages: int = 10000
    #: When that queue is full: "drop_oldest" (drop the oldest queued EVENTs; replies to
    #: calls are never dropped, and a queue of nothing but replies disconnects) or
    #: "disconnect" (close the connection).  Announced in fastwamp.session.on_overflow.
    overflow_policy: str = "drop_oldest"
    #: INVOCATION.Details.trustlevel given to calls, by caller authrole ("*" = any role).
    trustlevels: dict[str, int] = field(default_factory=dict)
    #: Authroles trusted with the whole meta API, as ``trusted = true`` on a role (also on
    #: a realm without roles); the others get the public meta procedures only
    #: (wamp.error.not_authorized for the rest).
    admin_authroles: list[str] = field(default_factory=list)
    #: Sessions joined to this realm at once; HELLO beyond it gets ABORT
    #: fastwamp.error.limit_exceeded.
    max_sessions: int = 100000
    #: Registrations and subscriptions one session may hold; beyond them REGISTER /
    #: SUBSCRIBE get fastwamp.error.limit_exceeded.
    max_registrations_per_session: int = 1000
    max_subscriptions_per_session: int = 1000
    #: Entries in one list option (PUBLISH eligible/exclude lists, meta API filter lists).
    max_list_length: int = 1000
    #: Bytes (estimated: payload and filters) all retained events of the realm may hold;
    #: the least recently retained go first.
    retained_bytes_max: int = 64 * 1024 * 1024
    #: Testaments one session may hold (both scopes together): count, and bytes.
    testaments_per_session: int = 100
    testament_bytes_per_session: int = 256 * 1024
    #: Bytes (estimated) the in-memory event history of the realm may hold; the oldest
    #: events go first.
    history_bytes_max: int = 64 * 1024 * 1024
    #: Authentication methods the realm accepts besides anonymous (which
    #: ``allow_anonymous`` controls): "ticket", "wampcra", "cryptosign", "scram", "tls".
    authmethods: list[str] = field(default_factory=list)
    #: The realm's users (see :class:`UserConfig`).
    users: list[UserConfig] = field(default_factory=list)
    #: A TOML file of more users (``[[users]]`` tables), relative to the configuration
    #: file; read again with the configuration.
    users_file: str = ""
    #: Ed25519 private key (64 hex digits) the router signs cryptosign clients'
    #: challenges with (router authentication); "" = a key made at start.
    cryptosign_router_key: str = ""
    #: Dynamic authenticator: a procedure (registered by a trusted session) the router
    #: calls as ``authenticator(realm, authid, details)`` to decide the methods listed in
    #: ``authenticator_methods`` ("ticket", "wampcra", "cryptosign") instead of ``users``.
    authenticator: str = ""
    authenticator_methods: list[str] = field(default_factory=list)
    #: The realm the authenticator is registered in ("" = this realm).
    authenticator_realm: str = ""
    #: Seconds the authenticator has to answer; then the client gets ABORT
    #: wamp.error.authentication_failed.
    authenticator_timeout: float = 5.0
    #: In a cluster, which callee of a shared registration a call prefers:
    #: "local_first" (on the caller's node, then its region, then anywhere),
    #: "region_first" (in the caller's region, this node included, then anywhere) or
    #: "global" (every callee of the cluster alike).
    locality: str = "local_first"
    #: The authrole anonymous sessions get.
    anonymous_authrole: str = "anonymous"
    #: Roles and their permissions; none = an open realm (every URI allowed to every
    #: session).  With roles, a session whose authrole is not listed may do nothing.
    roles: list[RoleConfig] = field(default_factory=list)
    #: Authorization decisions remembered per role (URIs); the table is cleared when full.
    authorization_cache_entries: int = 10000
    #: A procedure (registered by a session of a trusted role) that decides the requests of
    #: sessions whose role is not in ``roles``: called with (session details, URI, action,
    #: {"match": ...}), it answers true/false or {"allow": bool}.  "" = none.
    authorizer: str = ""
    #: Answers of the authorizer remembered (per authid, authrole, action and URI), and
    #: for how many seconds; fastwamp.authorizer.flush_cache forgets them all.
    authorizer_cache_entries: int = 10000
    authorizer_cache_ttl: float = 60.0
    #: Milliseconds the authorizer has to answer; no answer (or an error) denies.
    authorizer_timeout_ms: int = 2000
    #: Calls and publications per second one session may make (token bucket; 0 =
    #: unlimited), and the burst (0 = one second's worth); beyond: fastwamp.error.rate_limited.
    session_calls_per_second: float = 0.0
    session_call_burst: int = 0
    session_publishes_per_second: float = 0.0
    session_publish_burst: int = 0


#: The default ``allowed_origins``: pages served from this machine (any port).
LOCAL_ORIGINS = (
    "http://localhost:*",
    "https://localhost:*",
    "http://127.0.0.1:*",
    "https://127.0.0.1:*",
    "http://[::1]:*",
    "https://[::1]:*",
)


@dataclass
class ListenerConfig:
    """One listening socket."""

    #: "websocket", "rawsocket", or "http" (metrics and health checks: /metrics,
    #: /health, /ready; see fastwamp.ops).
    type: str
    host: str = "127.0.0.1"
    port: int = 8080
    #: WebSocket only: the HTTP path clients connect to.
    path: str = "/ws"
    serializers: list[str] = field(default_factory=lambda: ["json", "msgpack", "cbor"])
    #: Largest message accepted from, and sent to, a client (bytes).
    max_message_size: int = 16 * 1024 * 1024
    #: WebSocket only: negotiate permessage-deflate (off: it costs ~10 us per small message).
    compression: bool = False
    #: WebSocket only: the engine. "auto" (the default): picows, the faster, unless
    #: ``compression`` is on (picows has no permessage-deflate), then websockets;
    #: "picows" (refused with compression) or "websockets" to choose one.
    implementation: str = "auto"
    #: Seconds of silence from a peer after which the router pings it (WebSocket PING,
    #: RawSocket PING); 0 = never.
    auto_ping_interval: float = 30.0
    #: Seconds a pinged peer has to answer (anything it sends counts) before its
    #: connection is closed.
    auto_ping_timeout: float = 10.0
    #: Turn TCP keepalive on for accepted connections.
    tcp_keepalive: bool = True
    #: RawSocket only: which peers the auto-ping pings: "auto" (those that sent a PING
    #: or PONG frame themselves; Autobahn|Python's RawSocket clients fail the connection
    #: on a PING frame) or "always".
    rawsocket_ping: str = "auto"
    #: TLS: the server's certificate chain (PEM file; a path relative to the
    #: configuration file).  Set, the listener speaks only TLS (wss://, RawSocket
    #: over TLS); "" (the default): plain TCP.
    tls_certificate: str = ""
    #: TLS: the certificate's private key (PEM file, not passphrase-protected);
    #: "" = in the ``tls_certificate`` file.
    tls_key: str = ""
    #: TLS: the CA certificates (PEM file) that client certificates must chain to.
    tls_ca_certificates: str = ""
    #: TLS: ask clients for a certificate: "none", "optional" (verified if sent) or
    #: "required" (the handshake fails without one); both need ``tls_ca_certificates``.
    tls_client_certificate: str = "none"
    #: TLS: the oldest protocol version accepted: "1.2" or "1.3".
    tls_min_version: str = "1.2"
    #: WebSocket only: the browser origins (the ``Origin`` request header) allowed to
    #: connect: "https://app.example.com" (exact), "https://*.example.com" (any
    #: subdomain), "http://localhost:*" (any port), "*" (any origin).  Others get HTTP
    #: 403.  Requests without an Origin header (non-browser clients) are always
    #: accepted.  The default allows pages served from this machine only.
    allowed_origins: list[str] = field(default_factory=lambda: list(LOCAL_ORIGINS))


@dataclass
class ClusterConfig:
    """The ``[cluster]`` table: this node's link to the other nodes of the cluster through
    NATS (see the README's "Clustering").  Disabled by default: nothing of it is loaded."""

    #: Join a cluster (requires the ``fastwamp[cluster]`` extra).
    enabled: bool = False
    #: NATS servers to connect to (any of them; the client fails over between them).
    #: Empty with ``workers`` > 1: the router starts its own nats-server on loopback.
    nats_urls: list[str] = field(default_factory=list)
    #: This node's name, unique in the cluster ("" = host name and process id).
    node: str = ""
    #: This node's region (documentation of the deployment; reported in heartbeats).
    region: str = ""
    #: First token of every NATS subject the cluster uses (several clusters can share
    #: one NATS system with different prefixes).
    subject_prefix: str = "fastwamp"
    #: NATS credentials: user and password, or a token, or a .creds file (JWT + nkey).
    user: str = ""
    password: str = ""
    token: str = ""
    credentials_file: str = ""
    #: TLS to the NATS servers: CA bundle, and a client certificate and key ("" = none;
    #: a tls:// URL with no CA uses the system's trust store).
    tls_ca_file: str = ""
    tls_cert_file: str = ""
    tls_key_file: str = ""
    #: Seconds between this node's heartbeats.
    heartbeat_interval: float = 0.5
    #: Seconds without a heartbeat after which a node counts as gone: its registrations
    #: and subscriptions leave every other node, calls in flight to it get
    #: wamp.error.canceled.
    node_timeout: float = 3.0
    #: Seconds to wait for the first connection to NATS at start.
    connect_timeout: float = 5.0
    #: Bytes the NATS client may buffer while disconnected from every server; beyond
    #: it, cluster messages are dropped (local routing goes on).
    max_pending_bytes: int = 64 * 1024 * 1024


@dataclass
class Config:
    """The whole router configuration."""

    realms: list[RealmConfig] = field(default_factory=lambda: [RealmConfig("realm1")])
    listeners: list[ListenerConfig] = field(
        default_factory=lambda: [
            ListenerConfig("websocket", port=8080, path="/ws"),
            ListenerConfig("rawsocket", port=8081),
        ]
    )
    log_level: str = "info"
    #: Timeout applied to calls that set none (ms, 0 = none).
    call_timeout_default_ms: int = 0
    #: Upper bound on any call timeout (ms, 0 = unlimited).
    call_timeout_max_ms: int = 0
    #: Check that client request ids increase by one, as the spec says.
    strict_request_ids: bool = False
    #: Seconds a new connection has to complete its transport handshake and HELLO.
    handshake_timeout: float = 10.0
    #: Largest message (bytes) accepted before the session is established.
    max_handshake_message_size: int = 65536
    #: Seconds a partly received frame may take to arrive in full.
    frame_timeout: float = 30.0
    #: Connections one client address (IP) may hold open at once.
    max_connections_per_address: int = 1000
    #: Failed authentications one client address may have per auth_failure_window
    #: seconds; beyond them its attempts are refused unchecked (0 = no limit).
    max_auth_failures_per_address: int = 20
    auth_failure_window: float = 60.0
    #: Longest URI (characters) and most URI components accepted anywhere.
    max_uri_length: int = 1024
    max_uri_components: int = 64
    #: Messages read from one connection per turn of the event loop (fairness).
    messages_per_turn: int = 100
    #: Log lines about one session's bad input per second (a burst of twice as many
    #: is allowed); further lines are counted and summed up later.
    log_lines_per_session: float = 5.0
    #: Longest client-supplied value quoted in a log line (characters).
    log_value_max: int = 200
    #: "text" (readable lines) or "json" (one JSON object per line).
    log_format: str = "text"
    #: HTTP listeners: largest request (request line and headers, bytes) and the
    #: seconds a client has to send it; beyond either the connection is closed.
    http_request_max_bytes: int = 8192
    http_request_timeout: float = 10.0
    #: Metrics: label sets one family keeps (registrations, subscriptions, error URIs,
    #: callees); beyond it new ones are summed up under the label value "_other".
    metrics_series_max: int = 10000
    #: Router processes sharing the listening ports (SO_REUSEPORT), linked as a cluster
    #: through NATS (``[cluster]``; a nats-server started on loopback when no
    #: ``nats_urls`` is set).  1: one process, no cluster unless ``[cluster]`` enables it.
    workers: int = 1
    #: Clustering (see :class:`ClusterConfig`).
    cluster: ClusterConfig = field(default_factory=ClusterConfig)


def default_config() -> Config:
    """The embedded default: realm ``realm1`` open to anonymous clients,
    WebSocket on ws://127.0.0.1:8080/ws and RawSocket on tcp://127.0.0.1:8081."""
    return Config()


# ---------------------------------------------------------------------------
# Validation and TOML loading.

#: Accepted values of ``log_level`` (and of the ``--log-level`` option).
LOG_LEVELS = ("debug", "info", "warning", "error", "critical")
#: Accepted values of ``ListenerConfig.type``.
LISTENER_TYPES = ("websocket", "rawsocket", "http")
#: Accepted values of ``Config.log_format``.
LOG_FORMATS = ("text", "json")
#: Accepted entries of ``ListenerConfig.serializers``.
SERIALIZER_NAMES = ("json", "msgpack", "cbor")
#: Smallest ``max_message_size``: the smallest limit a RawSocket handshake can announce.
MIN_MESSAGE_SIZE = 2**9
#: Largest RawSocket message: a frame header carries a length of at most 2**24.
RAWSOCKET_MAX_MESSAGE_SIZE = 2**24
#: Accepted values of ``HistoryConfig.match``.
MATCH_POLICIES = ("exact", "prefix", "wildcard")
#: Accepted values of ``RealmConfig.locality``.
LOCALITIES = ("local_first", "region_first", "global")
#: Accepted values of ``RealmConfig.disclosure``.
DISCLOSURE_MODES = ("always", "on_request", "never")
#: Accepted values of ``ListenerConfig.implementation`` (WebSocket engines, or "auto").
WEBSOCKET_IMPLEMENTATIONS = ("auto", "picows", "websockets")
#: Listener keys that mean nothing to a RawSocket listener.
_WEBSOCKET_ONLY_KEYS = ("path", "compression", "implementation", "allowed_origins")
#: Accepted values of ``ListenerConfig.tls_client_certificate``.
TLS_CLIENT_CERTIFICATE_MODES = ("none", "optional", "required")
#: Accepted values of ``ListenerConfig.tls_min_version``.
TLS_VERSIONS = ("1.2", "1.3")
#: Listener keys naming files (relative paths are read from the configuration's folder).
TLS_FILE_KEYS = ("tls_certificate", "tls_key", "tls_ca_certificates")
#: Loose WAMP URI rule (realm names are URIs): non-empty components, no spaces or '#'.
_URI_RE = re.compile(r"[^\s.#]+(\.[^\s.#]+)*")


class ConfigError(ValueError):
    """A configuration value is wrong, or several are.

    ``key`` names the offending key in TOML terms (``listeners[0].port``); ``str()``
    gives ``"<key>: <problem>"``.  ``source`` and ``line`` say where it is written
    when known (a file's name, a line from 1).  A check reports every problem it
    finds at once: ``errors`` lists them all (the first is this error itself), and
    ``str()`` then gives one ``"<key>: <problem>"`` line each.
    """

    def __init__(self, key: str, problem: str, source: str = "",
                 line: int | None = None) -> None:
        super().__init__(f"{key}: {problem}" if key else problem)
        self.key = key
        self.problem = problem
        self.source = source
        self.line = line
        self.errors: list[ConfigError] = [self]

    @classmethod
    def collected(cls, errors: list[ConfigError]) -> ConfigError:
        """One error standing for ``errors`` (not empty): the first, listing them all."""
        first = errors[0]
        combined = cls(first.key, first.problem, first.source, first.line)
        combined.errors = list(errors)
        combined.args = ("\n".join(str(error) for error in errors),)
        return combined

    def located(self) -> str:
        """``"FILE:LINE: key: problem"`` (FILE and LINE left out when unknown)."""
        where = self.source
        if where and self.line is not None:
            where = f"{where}:{self.line}"
        text = f"{self.key}: {self.problem}" if self.key else self.problem
        return f"{where}: {text}" if where else text

    def report(self) -> list[str]:
        """Every problem, one located line each (see :meth:`located`), in file order."""
        ordered = sorted(self.errors, key=lambda error: (error.source, error.line or 0))
        return [error.located() for error in ordered]


class _Problems:
    """Collects the problems of one configuration check: one per key (the first)."""

    def __init__(self) -> None:
        self.errors: list[ConfigError] = []
        self._keys: set[tuple[str, str]] = set()
        #: Key prefixes written in another file: prefix -> (that file, the prefix
        #: there, its key lines); the users of a realm's users_file.
        self.aliases: dict[str, tuple[str, str, dict[str, int]]] = {}

    def add(self, key: str, problem: str, source: str = "", line: int | None = None) -> None:
        if (source, key) in self._keys:
            return
        self._keys.add((source, key))
        self.errors.append(ConfigError(key, problem, source, line))

    def locate(self, source: str, lines: dict[str, int]) -> None:
        """Give the problems not located yet ``source`` and their line in ``lines``
        (or their place in the file an alias points to)."""
        from fastwamp.ops.toml_lines import line_of

        for error in self.errors:
            if error.source:
                continue
            for prefix, (other, there, other_lines) in self.aliases.items():
                if error.key == prefix or error.key.startswith((f"{prefix}.", f"{prefix}[")):
                    error.key = there + error.key[len(prefix):]
                    error.args = (f"{error.key}: {error.problem}",)
                    error.source, error.line = other, line_of(other_lines, error.key)
                    break
            else:
                error.source, error.line = source, line_of(lines, error.key)

    def add_error(self, error: ConfigError) -> None:
        for one in error.errors:
            self.add(one.key, one.problem, one.source, one.line)

    def any_under(self, prefix: str) -> bool:
        """Whether a problem was found at ``prefix`` or a key inside it."""
        return any(key == prefix or key.startswith((f"{prefix}.", f"{prefix}["))
                   for _, key in self._keys)

    def raise_any(self) -> None:
        if self.errors:
            raise ConfigError.collected(self.errors)


def _describe(value: object) -> str:
    """Name a TOML value's type for error messages, with the value when short."""
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, int):
        return f"the integer {value}"
    if isinstance(value, float):
        return f"the float {value}"
    if isinstance(value, str):
        return f"the string {value!r}" if len(value) <= 40 else "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "a table"
    return f"a {type(value).__name__}"


def _type_name(tp: Any) -> str:
    if dataclasses.is_dataclass(tp):
        return "table"
    origin = typing.get_origin(tp)
    if origin is list:
        return f"an array of {_type_name(typing.get_args(tp)[0])}s"
    if origin is dict:
        return f"a table of {_type_name(typing.get_args(tp)[1])}s"
    return {bool: "boolean", int: "integer", float: "number", str: "string"}.get(tp, str(tp))


def _check_type(key: str, value: Any, tp: Any, out: _Problems) -> Any:
    """Return ``value`` if it has TOML type ``tp`` (a field annotation), else raise.

    A dataclass type takes a TOML table, checked field by field (the problems of its
    keys go to ``out``; the table is still built, with defaults for bad values).
    """
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(key, f"must be a table, got {_describe(value)}")
        # is_dataclass() narrows to "instance or class"; field annotations are classes.
        return _from_table(typing.cast(type, tp), value, f"{key}.", out)
    origin = typing.get_origin(tp)
    if origin is list:
        (item_tp,) = typing.get_args(tp)
        if not isinstance(value, list):
            raise ConfigError(key, f"must be {_type_name(tp)}, got {_describe(value)}")
        return [_check_type(f"{key}[{i}]", item, item_tp, out) for i, item in enumerate(value)]
    if origin is dict:
        key_tp, value_tp = typing.get_args(tp)
        if not isinstance(value, dict):
            raise ConfigError(key, f"must be {_type_name(tp)}, got {_describe(value)}")
        return {
            _check_type(key, k, key_tp, out): _check_type(f"{key}.{k}", v, value_tp, out)
            for k, v in value.items()
        }
    ok: bool
    if tp is bool:
        ok = isinstance(value, bool)
    elif tp is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif tp is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        value = float(value) if ok else value
    elif tp is str:
        ok = isinstance(value, str)
    else:  # pragma: no cover - only the types above are used in the dataclasses
        ok = isinstance(value, tp)
    if not ok:
        raise ConfigError(key, f"must be a {_type_name(tp)}, got {_describe(value)}")
    return value


def _closest_key(name: str, known: list[str]) -> list[str]:
    """The known key ``name`` most likely misspells ([] if none is close): one that
    ``name`` is with a ``_suffix`` added (``node`` for ``node_name``), else the nearest
    spelling."""
    for key in known:
        if name.startswith(key + "_"):
            return [key]
    return difflib.get_close_matches(name, known, n=1)


def _placeholder(tp: Any) -> Any:
    """A stand-in for a required key that is missing or wrong (its problem is reported)."""
    return {str: "", int: 0, float: 0.0, bool: False}.get(tp, "")


def _from_table(cls: type, table: dict[str, Any], prefix: str, out: _Problems,
                skip: tuple[str, ...] = ()) -> Any:
    """Build dataclass ``cls`` from a TOML table, reporting unknown keys, missing keys
    and wrong types to ``out`` (a bad value leaves the key at its default)."""
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.name not in skip}
    known = [f.name for f in dataclasses.fields(cls)]
    for name in table:
        if name not in fields and name not in skip:
            close = _closest_key(name, known)
            # A likely typo gets the fix; otherwise the list of keys there is.
            hint = f"did you mean {close[0]!r}?" if close else f"known: {', '.join(fields)}"
            out.add(f"{prefix}{name}", f"unknown key; {hint}")
    kwargs: dict[str, Any] = {}
    for name, f in fields.items():
        required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        if name in table:
            try:
                kwargs[name] = _check_type(f"{prefix}{name}", table[name], hints[name], out)
            except ConfigError as exc:
                out.add_error(exc)
                if required:
                    kwargs[name] = _placeholder(hints[name])
        elif required:
            out.add(f"{prefix}{name}", "required key is missing")
            kwargs[name] = _placeholder(hints[name])
    return cls(**kwargs)


def _tables(data: dict[str, Any], name: str, out: _Problems) -> list[dict[str, Any]]:
    """The tables of array ``name`` ([] and a problem when it is not an array of tables)."""
    value = data[name]
    if not isinstance(value, list) or not all(isinstance(t, dict) for t in value):
        out.add(name, f"must be an array of tables ([[{name}]] sections), got {_describe(value)}")
        return []
    return value


def config_from_dict(data: dict[str, Any], base_dir: str | Path | None = None) -> Config:
    """Build and validate a :class:`Config` from parsed TOML (or any such ``dict``).

    ``base_dir`` is where relative file names (a realm's ``users_file``, a listener's
    ``tls_certificate``, ``tls_key`` and ``tls_ca_certificates``) start from (default:
    the current directory).

    Raises:
        ConfigError: every key that is unknown, missing, of the wrong type or has a bad
            value (``errors`` lists them).
    """
    out = _Problems()
    config = _build(data, base_dir, out)
    out.locate("", {})
    out.raise_any()
    return config


def _build(data: dict[str, Any], base_dir: str | Path | None, out: _Problems) -> Config:
    """The :class:`Config` of parsed TOML, its problems reported to ``out``."""
    config: Config = _from_table(Config, data, "", out, skip=("realms", "listeners"))
    if "realms" in data:
        config.realms = [
            _from_table(RealmConfig, table, f"realms[{i}].", out)
            for i, table in enumerate(_tables(data, "realms", out))
        ]
        for i, realm in enumerate(config.realms):
            if realm.users_file:
                _load_users_file(realm, base_dir, f"realms[{i}]", out)
    if "listeners" in data:
        tables = _tables(data, "listeners", out)
        config.listeners = [
            _from_table(ListenerConfig, table, f"listeners[{i}].", out)
            for i, table in enumerate(tables)
        ]
        for i, table in enumerate(tables):
            if table.get("type") == "rawsocket":
                for name in _WEBSOCKET_ONLY_KEYS:
                    if name in table:
                        out.add(f"listeners[{i}].{name}", "applies to websocket listeners only")
        if base_dir is not None:
            for lst in config.listeners:
                for name in TLS_FILE_KEYS:
                    value = getattr(lst, name)
                    if value and not Path(value).is_absolute():
                        setattr(lst, name, str(Path(base_dir) / value))
    config.log_level = config.log_level.lower()
    _validate(config, out)
    return config


OVERFLOW_POLICIES = ("drop_oldest", "disconnect")
#: Methods a dynamic authenticator may decide (``RealmConfig.authenticator_methods``).
DYNAMIC_METHODS = ("ticket", "wampcra", "cryptosign")


def validate_config(config: Config) -> None:
    """Check the values of a :class:`Config` (types are assumed right).

    Raises:
        ConfigError: naming the first bad key; its ``errors`` list every bad key.
    """
    out = _Problems()
    _validate(config, out)
    out.raise_any()


def _validate(config: Config, out: _Problems) -> None:
    """Report every bad value of ``config`` to ``out``."""
    if config.log_level.lower() not in LOG_LEVELS:
        out.add(
            "log_level", f"must be one of {', '.join(LOG_LEVELS)}, got {config.log_level!r}"
        )
    for name in ("call_timeout_default_ms", "call_timeout_max_ms"):
        if getattr(config, name) < 0:
            out.add(name, "must be >= 0 (0 means none)")
    if config.log_format not in LOG_FORMATS:
        out.add(
            "log_format", f"must be one of {', '.join(LOG_FORMATS)}, got {config.log_format!r}"
        )
    if config.max_auth_failures_per_address < 0:
        out.add("max_auth_failures_per_address", "must be >= 0 (0 means no limit)")
    for name in ("handshake_timeout", "frame_timeout", "log_lines_per_session",
                 "auth_failure_window", "http_request_timeout"):
        if getattr(config, name) <= 0:
            out.add(name, "must be > 0")
    for name in ("max_handshake_message_size", "max_connections_per_address",
                 "max_uri_length", "max_uri_components", "messages_per_turn", "log_value_max",
                 "metrics_series_max"):
        if getattr(config, name) < 1:
            out.add(name, "must be >= 1")
    if config.http_request_max_bytes < 256:
        out.add("http_request_max_bytes", "must be >= 256")
    if 0 < config.call_timeout_max_ms < config.call_timeout_default_ms:
        out.add(
            "call_timeout_default_ms",
            f"is larger than call_timeout_max_ms ({config.call_timeout_max_ms})",
        )

    _validate_cluster(config, out)
    if not config.realms:
        out.add("realms", "at least one realm is required")
    seen_realms: set[str] = set()
    for i, realm in enumerate(config.realms):
        key = f"realms[{i}]"
        if not _URI_RE.fullmatch(realm.name):
            out.add(f"{key}.name", f"{realm.name!r} is not a valid realm URI")
        if realm.name in seen_realms:
            out.add(f"{key}.name", f"duplicate realm {realm.name!r}")
        seen_realms.add(realm.name)
        if realm.disclosure not in DISCLOSURE_MODES:
            out.add(
                f"{key}.disclosure",
                f"must be one of {', '.join(DISCLOSURE_MODES)}, got {realm.disclosure!r}",
            )
        for j, history in enumerate(realm.event_history):
            hkey = f"{key}.event_history[{j}]"
            if not history.uri and history.match != "prefix":
                out.add(f"{hkey}.uri", "must not be empty")
            if history.match not in MATCH_POLICIES:
                out.add(
                    f"{hkey}.match",
                    f"must be one of {', '.join(MATCH_POLICIES)}, got {history.match!r}",
                )
            if history.limit < 1:
                out.add(f"{hkey}.limit", f"must be >= 1, got {history.limit}")
            if history.max_age < 0:
                out.add(f"{hkey}.max_age", "must be >= 0 (0 means no age limit)")
        if realm.overflow_policy not in OVERFLOW_POLICIES:
            out.add(
                f"{key}.overflow_policy",
                f"must be one of {', '.join(OVERFLOW_POLICIES)}, got {realm.overflow_policy!r}",
            )
        for name in ("output_queue_bytes", "output_queue_messages", "retained_topics_max",
                     "max_calls_in_flight", "max_sessions", "max_registrations_per_session",
                     "max_subscriptions_per_session", "max_list_length", "retained_bytes_max",
                     "testaments_per_session", "testament_bytes_per_session",
                     "history_bytes_max"):
            if getattr(realm, name) < 1:
                out.add(f"{key}.{name}", "must be >= 1")
        _validate_authentication(realm, key, out)
        if not realm.allow_anonymous and not out.any_under(key):
            closed = _unjoinable(realm)
            if closed is not None:
                out.add(f"{key}.allow_anonymous", closed)
        _check_roles(key, realm, out)
        for role, level in realm.trustlevels.items():
            if not role:
                out.add(f"{key}.trustlevels", "an authrole must not be empty")
            if level < 0:
                out.add(f"{key}.trustlevels.{role}", "must be >= 0")

    for i, realm in enumerate(config.realms):
        if realm.authenticator_realm and realm.authenticator_realm not in seen_realms:
            out.add(f"realms[{i}].authenticator_realm",
                              f"no realm named {realm.authenticator_realm!r}")

    if not config.listeners:
        out.add("listeners", "at least one listener is required")
    seen_addresses: dict[tuple[str, int], int] = {}
    for i, lst in enumerate(config.listeners):
        key = f"listeners[{i}]"
        if lst.type not in LISTENER_TYPES:
            out.add(
                f"{key}.type", f"must be one of {', '.join(LISTENER_TYPES)}, got {lst.type!r}"
            )
        if lst.type == "http" and lst.tls_certificate:
            out.add(f"{key}.tls_certificate", "http listeners have no TLS (keep them "
                              "on a private interface, or put a TLS proxy in front)")
        if not lst.host:
            out.add(f"{key}.host", "must not be empty")
        if not 0 <= lst.port <= 65535:
            out.add(f"{key}.port", f"must be between 0 and 65535, got {lst.port}")
        if lst.port:
            address = (lst.host, lst.port)
            if address in seen_addresses:
                out.add(
                    f"{key}.port",
                    f"{lst.host}:{lst.port} is already used by listeners[{seen_addresses[address]}]",
                )
            seen_addresses[address] = i
        if lst.auto_ping_interval < 0:
            out.add(f"{key}.auto_ping_interval", "must be >= 0 (0 means never)")
        if lst.auto_ping_timeout <= 0:
            out.add(f"{key}.auto_ping_timeout", "must be > 0")
        if lst.rawsocket_ping not in ("auto", "always"):
            out.add(
                f"{key}.rawsocket_ping", f'must be "auto" or "always", got {lst.rawsocket_ping!r}'
            )
        if lst.type == "websocket" and not lst.path.startswith("/"):
            out.add(f"{key}.path", f"must start with '/', got {lst.path!r}")
        if lst.type == "websocket":
            _check_implementation(key, lst, out)
            _check_origins(key, lst, out)
        _check_tls(key, lst, out)
        if not lst.serializers:
            out.add(f"{key}.serializers", "at least one serializer is required")
        for j, name in enumerate(lst.serializers):
            if name not in SERIALIZER_NAMES:
                out.add(
                    f"{key}.serializers[{j}]",
                    f"unknown serializer {name!r} (known: {', '.join(SERIALIZER_NAMES)})",
                )
            if name in lst.serializers[:j]:
                out.add(f"{key}.serializers[{j}]", f"duplicate serializer {name!r}")
        max_size = RAWSOCKET_MAX_MESSAGE_SIZE if lst.type == "rawsocket" else 2**31
        if not MIN_MESSAGE_SIZE <= lst.max_message_size <= max_size:
            out.add(
                f"{key}.max_message_size",
                f"must be between {MIN_MESSAGE_SIZE} and {max_size} for a {lst.type} "
                f"listener, got {lst.max_message_size}",
            )


def _validate_cluster(config: Config, out: _Problems) -> None:
    cluster = config.cluster
    if not 1 <= config.workers <= 256:
        out.add("workers", f"must be from 1 to 256, got {config.workers}")
    for name in ("heartbeat_interval", "node_timeout", "connect_timeout"):
        if getattr(cluster, name) <= 0:
            out.add(f"cluster.{name}", "must be > 0")
    if cluster.node_timeout < 2 * cluster.heartbeat_interval:
        out.add("cluster.node_timeout", "must be at least twice heartbeat_interval")
    if cluster.max_pending_bytes < 1024:
        out.add("cluster.max_pending_bytes", "must be >= 1024")
    if not _SUBJECT_TOKENS_RE.fullmatch(cluster.subject_prefix):
        out.add("cluster.subject_prefix",
                          "must be NATS subject tokens (letters, digits, '_', '-', dots between)")
    if cluster.enabled and not cluster.nats_urls and config.workers == 1:
        out.add("cluster.nats_urls", "required when the cluster is enabled "
                          "(with workers > 1, an empty list starts a local nats-server)")
    for i, url in enumerate(cluster.nats_urls):
        if not url.startswith(("nats://", "tls://", "ws://", "wss://")):
            out.add(f"cluster.nats_urls[{i}]", f"not a NATS URL: {url!r}")


#: NATS subject tokens separated by dots (what ``cluster.subject_prefix`` may be).
_SUBJECT_TOKENS_RE = re.compile(r"[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*")


#: Whether a user has a credential for an authentication method.
_HAS_CREDENTIAL: dict[str, typing.Callable[[UserConfig], bool]] = {
    "ticket": lambda user: bool(user.ticket),
    "wampcra": lambda user: bool(user.wampcra.key),
    "cryptosign": lambda user: bool(user.cryptosign_pubkeys),
    "scram": lambda user: bool(user.scram.kdf),
    "tls": lambda user: bool(user.tls_fingerprints or user.tls_subjects),
}


def _unjoinable(realm: RealmConfig) -> str | None:
    """Why no client could ever join ``realm`` (it refuses anonymous clients), or None."""
    how = ("allow anonymous clients, or list authmethods and give [[realms.users]] "
           "credentials (`fastwamp hash-secret METHOD` prints them), a users_file or an "
           "authenticator")
    if not realm.authmethods:
        return f"no client can join this realm: anonymous is refused and authmethods is empty; {how}"
    decided = set(realm.authenticator_methods) if realm.authenticator else set()
    for method in realm.authmethods:
        has = _HAS_CREDENTIAL.get(method)
        if method in decided or has is None or any(has(user) for user in realm.users):
            return None
    return (f"no client can join this realm: anonymous is refused and no user has a "
            f"credential for authmethods ({', '.join(realm.authmethods)}); {how}")


def _validate_authentication(realm: RealmConfig, key: str, out: _Problems) -> None:
    """Check a realm's authentication keys: methods, users and their credentials."""
    from .auth import credentials as cred
    from .auth.outcome import CONFIGURABLE_METHODS

    for j, method in enumerate(realm.authmethods):
        if method == "anonymous":
            out.add(f"{key}.authmethods[{j}]",
                              "anonymous is set with allow_anonymous, not in authmethods")
        if method not in CONFIGURABLE_METHODS:
            out.add(f"{key}.authmethods[{j}]", f"unknown method {method!r} "
                              f"(known: {', '.join(CONFIGURABLE_METHODS)})")
        if method in realm.authmethods[:j]:
            out.add(f"{key}.authmethods[{j}]", f"duplicate method {method!r}")
    if realm.authenticator_methods and not realm.authenticator:
        out.add(f"{key}.authenticator", "is needed by authenticator_methods")
    if realm.authenticator and not _URI_RE.fullmatch(realm.authenticator):
        out.add(f"{key}.authenticator", f"{realm.authenticator!r} is not a valid URI")
    for j, method in enumerate(realm.authenticator_methods):
        if method not in DYNAMIC_METHODS:
            out.add(f"{key}.authenticator_methods[{j}]",
                              f"must be one of {', '.join(DYNAMIC_METHODS)}, got {method!r}")
        if method not in realm.authmethods:
            out.add(f"{key}.authenticator_methods[{j}]",
                              f"{method!r} is not in authmethods")
    if realm.authenticator and not realm.authenticator_methods:
        out.add(f"{key}.authenticator_methods",
                          "names no method for the authenticator to decide")
    if realm.locality not in LOCALITIES:
        out.add(f"{key}.locality",
                          f"must be one of {', '.join(LOCALITIES)}, got {realm.locality!r}")
    if not 0 < realm.authenticator_timeout <= 600:
        out.add(f"{key}.authenticator_timeout", "must be > 0 and <= 600 (seconds)")
    if realm.cryptosign_router_key:
        try:
            cred.unhex(realm.cryptosign_router_key.lower(), 32, "the key")
        except ValueError as exc:
            out.add(f"{key}.cryptosign_router_key", str(exc))
    seen: dict[str, int] = {}
    owners: dict[str, str] = {}
    for j, user in enumerate(realm.users):
        ukey = f"{key}.users[{j}]"
        if not user.authid:
            out.add(f"{ukey}.authid", "must not be empty")
        if user.authid in seen:
            out.add(f"{ukey}.authid", f"duplicate user {user.authid!r} "
                              f"(also users[{seen[user.authid]}], maybe from users_file)")
        seen[user.authid] = j
        if not user.authrole:
            out.add(f"{ukey}.authrole", "must not be empty")
        if user.ticket:
            try:
                cred.TicketHash.parse(user.ticket)
            except ValueError as exc:
                out.add(f"{ukey}.ticket", str(exc))
        cra = user.wampcra
        if cra.salt and not cra.key:
            out.add(f"{ukey}.wampcra.key", "is missing (salt without key)")
        if cra.key and cra.salt:
            if not 1 <= cra.iterations <= 10_000_000:
                out.add(f"{ukey}.wampcra.iterations", "must be between 1 and 10000000")
            if not 16 <= cra.keylen <= 64:
                out.add(f"{ukey}.wampcra.keylen", "must be between 16 and 64")
        for name, values, parse in (
            ("cryptosign_pubkeys", user.cryptosign_pubkeys, cred.parse_pubkey),
            ("tls_fingerprints", user.tls_fingerprints, cred.normalize_fingerprint),
        ):
            for n, value in enumerate(values):
                try:
                    norm = parse(value)
                except ValueError as exc:
                    out.add(f"{ukey}.{name}[{n}]", str(exc))
                    continue
                ident = f"{name}:{norm!r}"
                if ident in owners and owners[ident] != user.authid:
                    out.add(f"{ukey}.{name}[{n}]",
                                      f"already belongs to user {owners[ident]!r}")
                owners[ident] = user.authid
        for n, subject in enumerate(user.tls_subjects):
            ident = f"subject:{subject}"
            if not subject:
                out.add(f"{ukey}.tls_subjects[{n}]", "must not be empty")
            if ident in owners and owners[ident] != user.authid:
                out.add(f"{ukey}.tls_subjects[{n}]",
                                  f"already belongs to user {owners[ident]!r}")
            owners[ident] = user.authid
        scram = user.scram
        if scram.kdf:
            skey = f"{ukey}.scram"
            if scram.kdf not in cred.SCRAM_KDFS:
                out.add(f"{skey}.kdf", f"must be one of {', '.join(cred.SCRAM_KDFS)}")
            for field_name in ("salt", "stored_key", "server_key"):
                try:
                    raw = cred.unb64(getattr(scram, field_name), field_name)
                except ValueError as exc:
                    out.add(f"{skey}.{field_name}", str(exc))
                    continue
                if field_name != "salt" and len(raw) != 32:
                    out.add(f"{skey}.{field_name}", "must be 32 bytes (base64)")
            if scram.iterations < 1:
                out.add(f"{skey}.iterations", "must be >= 1")
            if scram.kdf == "argon2id-13" and scram.memory < 8:
                out.add(f"{skey}.memory", "must be >= 8 (KiB) for argon2id-13")
        elif scram.stored_key or scram.server_key:
            out.add(f"{ukey}.scram.kdf", "is missing")
def _check_roles(key: str, realm: RealmConfig, out: _Problems) -> None:
    """Check a realm's roles, permissions and rate limits."""
    if not realm.anonymous_authrole:
        out.add(f"{key}.anonymous_authrole", "must not be empty")
    if realm.authorization_cache_entries < 1:
        out.add(f"{key}.authorization_cache_entries", "must be >= 1")
    if realm.authorizer and not _URI_RE.fullmatch(realm.authorizer):
        out.add(f"{key}.authorizer", f"{realm.authorizer!r} is not a procedure URI")
    if realm.authorizer_cache_entries < 1:
        out.add(f"{key}.authorizer_cache_entries", "must be >= 1")
    if realm.authorizer_cache_ttl < 0:
        out.add(f"{key}.authorizer_cache_ttl", "must be >= 0 (0: no caching)")
    if realm.authorizer_timeout_ms < 1:
        out.add(f"{key}.authorizer_timeout_ms", "must be >= 1")
    for name in ("session_calls_per_second", "session_call_burst",
                 "session_publishes_per_second", "session_publish_burst"):
        if getattr(realm, name) < 0:
            out.add(f"{key}.{name}", "must be >= 0 (0 means unlimited)")
    seen: set[str] = set()
    for i, role in enumerate(realm.roles):
        rkey = f"{key}.roles[{i}]"
        if not role.name:
            out.add(f"{rkey}.name", "must not be empty")
        if role.name in seen:
            out.add(f"{rkey}.name", f"duplicate role {role.name!r}")
        seen.add(role.name)
        for name in ("calls_per_second", "call_burst", "publishes_per_second",
                     "publish_burst"):
            if getattr(role, name) < 0:
                out.add(f"{rkey}.{name}", "must be >= 0 (0 means unlimited)")
        rules: set[tuple[str, str]] = set()
        for j, perm in enumerate(role.permissions):
            pkey = f"{rkey}.permissions[{j}]"
            if perm.match not in MATCH_POLICIES:
                out.add(f"{pkey}.match", f"must be one of {', '.join(MATCH_POLICIES)}"
                                  f", got {perm.match!r}")
            if perm.match != "prefix" and (not perm.uri or " " in perm.uri):
                out.add(f"{pkey}.uri", f"{perm.uri!r} is not a URI")
            if perm.match == "exact" and "" in perm.uri.split("."):
                out.add(f"{pkey}.uri", f"{perm.uri!r} has an empty component: "
                                  'use match = "wildcard"')
            if (perm.uri, perm.match) in rules:
                out.add(f"{pkey}.uri", f"a rule for {perm.uri!r} ({perm.match}) is "
                                  "already in this role")
            rules.add((perm.uri, perm.match))
            for k, action in enumerate(perm.allow):
                if action not in PERMISSION_ACTIONS:
                    out.add(f"{pkey}.allow[{k}]", f"must be one of "
                                      f"{', '.join(PERMISSION_ACTIONS)}, got {action!r}")
            if (perm.disclose_caller or perm.disclose_publisher) and realm.disclosure == "never":
                out.add(f"{pkey}.disclose_caller" if perm.disclose_caller
                                  else f"{pkey}.disclose_publisher",
                                  'needs the realm\'s disclosure "on_request" or "always", '
                                  'not "never"')


def websocket_implementation_missing(name: str) -> str | None:
    """Why the WebSocket engine ``name`` cannot run here (None: it can; "auto" always can)."""
    if name == "picows" and importlib.util.find_spec("picows") is None:
        return "picows is not installed (pip install picows)"
    return None


def websocket_engine(listener: ListenerConfig, name: str | None = None) -> str:
    """The WebSocket engine a listener runs on: ``name`` (an override) or its
    ``implementation``, with "auto" resolved: "websockets" when the listener
    negotiates compression or picows cannot be imported here, else "picows"."""
    name = name or listener.implementation
    if name != "auto":
        return name
    if listener.compression or websocket_implementation_missing("picows") is not None:
        return "websockets"
    return "picows"


def _check_implementation(key: str, lst: ListenerConfig, out: _Problems) -> None:
    name = lst.implementation
    if name not in WEBSOCKET_IMPLEMENTATIONS:
        out.add(
            f"{key}.implementation",
            f"must be one of {', '.join(WEBSOCKET_IMPLEMENTATIONS)}, got {name!r}",
        )
    if name == "picows" and lst.compression:
        out.add(
            f"{key}.compression",
            'the picows engine has no permessage-deflate: set implementation = "websockets" '
            '(or "auto", which picks it when compression is on)',
        )
    missing = websocket_implementation_missing(name)
    if missing is not None:
        out.add(f"{key}.implementation", missing)


def _check_origins(key: str, lst: ListenerConfig, out: _Problems) -> None:
    for j, pattern in enumerate(lst.allowed_origins):
        from fastwamp.origins import origin_pattern_problem

        problem = origin_pattern_problem(pattern)
        if problem is not None:
            out.add(f"{key}.allowed_origins[{j}]", problem)


def _check_tls(key: str, lst: ListenerConfig, out: _Problems) -> None:
    """Check a listener's TLS keys, and that its certificate, key and CAs load."""
    if lst.tls_client_certificate not in TLS_CLIENT_CERTIFICATE_MODES:
        out.add(
            f"{key}.tls_client_certificate",
            f"must be one of {', '.join(TLS_CLIENT_CERTIFICATE_MODES)}, "
            f"got {lst.tls_client_certificate!r}",
        )
    if lst.tls_min_version not in TLS_VERSIONS:
        out.add(
            f"{key}.tls_min_version",
            f"must be one of {', '.join(TLS_VERSIONS)}, got {lst.tls_min_version!r}",
        )
    if not lst.tls_certificate:
        for name in ("tls_key", "tls_ca_certificates"):
            if getattr(lst, name):
                out.add(f"{key}.{name}", "needs tls_certificate (TLS is off without it)")
        if lst.tls_client_certificate != "none":
            out.add(
                f"{key}.tls_client_certificate", "needs tls_certificate (TLS is off without it)"
            )
        return
    if lst.tls_client_certificate != "none" and not lst.tls_ca_certificates:
        out.add(
            f"{key}.tls_ca_certificates",
            f'is required with tls_client_certificate = "{lst.tls_client_certificate}" '
            "(the CAs that client certificates must chain to)",
        )
    if out.any_under(key):
        return  # loading would fail on the same problems
    # Loading is the only real check (files, PEM, key matching the certificate).
    from fastwamp.transport.tls import TLSSetupError, server_context

    try:
        server_context(lst)
    except TLSSetupError as exc:
        out.add(f"{key}.{exc.key}", exc.problem)


def _load_toml(text: str) -> dict[str, Any]:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - Python 3.10
        import tomli as tomllib
    return tomllib.loads(text)


def _toml_problem(source: str, exc: ValueError) -> ConfigError:
    """The error of text that is not TOML, at the line tomllib names."""
    found = re.search(r"at line (\d+)", str(exc))
    return ConfigError("", f"invalid TOML: {exc}", source, int(found.group(1)) if found else None)


def config_from_toml(text: str, source: str = "<config>",
                     base_dir: str | Path | None = None) -> Config:
    """Parse and validate TOML text; ``source`` names it in errors (with the line of
    each bad key), ``base_dir`` is where relative file names start from.

    Raises:
        ConfigError: the text is not TOML, or keys are wrong (``errors`` lists every
            problem, each with ``source`` and ``line``).
    """
    try:
        data = _load_toml(text)
    except ValueError as exc:  # tomllib.TOMLDecodeError is a ValueError
        raise _toml_problem(source, exc) from exc
    from fastwamp.ops.toml_lines import key_lines

    out = _Problems()
    config = _build(data, base_dir, out)
    out.locate(source, key_lines(text))
    out.raise_any()
    return config


def _load_users_file(realm: RealmConfig, base_dir: str | Path | None, key: str,
                     out: _Problems) -> None:
    """Add the ``[[users]]`` tables of ``realm``'s users file (relative to ``base_dir``)
    to its users; problems are reported at their line of that file."""
    from fastwamp.ops.toml_lines import key_lines

    path = Path(base_dir or ".") / realm.users_file
    try:
        text = path.read_text(encoding="utf-8")
        data = _load_toml(text)
    except (OSError, UnicodeDecodeError) as exc:
        out.add(f"{key}.users_file", f"cannot read the users file {str(path)!r}: {exc}")
        return
    except ValueError as exc:
        out.add(f"{key}.users_file", f"the users file {str(path)!r} is not valid TOML: {exc}")
        return
    lines = key_lines(text)
    problems = _Problems()
    for name in sorted(set(data) - {"users"}):
        problems.add(name, "unknown key (a users file holds [[users]] tables only)")
    tables = _tables(data, "users", problems) if "users" in data else []
    first = len(realm.users)
    for i, table in enumerate(tables):
        realm.users.append(_from_table(UserConfig, table, f"users[{i}].", problems))
        # Later checks name users by their place in the realm: point them here.
        out.aliases[f"{key}.users[{first + i}]"] = (str(path), f"users[{i}]", lines)
    problems.locate(str(path), lines)
    for error in problems.errors:
        out.add_error(error)


def load_config(path: str | Path) -> Config:
    """Read, parse and validate a TOML configuration file.

    Raises:
        ConfigError: the file cannot be read or parsed, or keys are wrong (``errors``
            lists every problem, each with the file and line).
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError("", f"cannot read the file: {exc}", str(path)) from exc
    return config_from_toml(text, str(path), Path(path).parent)


def default_config_toml() -> str:
    """The commented example configuration (``fastwamp --print-default-config``).

    Loading it gives :func:`default_config`.
    """
    from importlib import resources

    return resources.files("fastwamp").joinpath("default.toml").read_text(encoding="utf-8")


def _field_docs(cls: type) -> dict[str, str]:
    """The ``#:`` comments written above each field of dataclass ``cls``."""
    import inspect

    docs: dict[str, str] = {}
    comment: list[str] = []
    try:
        source = inspect.getsource(cls)
    except (OSError, TypeError):  # pragma: no cover - no source (frozen build)
        return docs
    for line in source.splitlines():
        stripped = line.strip()
        if stripped.startswith("#:"):
            comment.append(stripped[2:].strip())
            continue
        match = re.match(r"([a-z_]+)\s*:", stripped)
        if match and comment:
            docs[match.group(1)] = " ".join(comment)
        comment = []
    return docs


def _enums() -> dict[tuple[type, str], tuple[str, ...]]:
    """Allowed values of the string keys that take one of a few (and of list items)."""
    from .auth.credentials import SCRAM_KDFS
    from .auth.outcome import CONFIGURABLE_METHODS

    return {
        (Config, "log_level"): LOG_LEVELS + tuple(level.upper() for level in LOG_LEVELS),
        (Config, "log_format"): LOG_FORMATS,
        (RealmConfig, "disclosure"): DISCLOSURE_MODES,
        (RealmConfig, "overflow_policy"): OVERFLOW_POLICIES,
        (RealmConfig, "locality"): LOCALITIES,
        (RealmConfig, "authmethods"): tuple(CONFIGURABLE_METHODS),
        (RealmConfig, "authenticator_methods"): DYNAMIC_METHODS,
        (HistoryConfig, "match"): MATCH_POLICIES,
        (PermissionConfig, "match"): MATCH_POLICIES,
        (PermissionConfig, "allow"): PERMISSION_ACTIONS,
        (ListenerConfig, "type"): LISTENER_TYPES,
        (ListenerConfig, "serializers"): SERIALIZER_NAMES,
        (ListenerConfig, "implementation"): WEBSOCKET_IMPLEMENTATIONS,
        (ListenerConfig, "tls_client_certificate"): TLS_CLIENT_CERTIFICATE_MODES,
        (ListenerConfig, "tls_min_version"): TLS_VERSIONS,
        (ListenerConfig, "rawsocket_ping"): ("auto", "always"),
        (ScramCredential, "kdf"): ("",) + tuple(SCRAM_KDFS),
    }


def _json_type(tp: Any, enum: tuple[str, ...] | None) -> dict[str, Any]:
    if dataclasses.is_dataclass(tp):
        return _table_schema(typing.cast(type, tp))
    origin = typing.get_origin(tp)
    if origin is list:
        return {"type": "array", "items": _json_type(typing.get_args(tp)[0], enum)}
    if origin is dict:
        return {"type": "object", "additionalProperties": _json_type(typing.get_args(tp)[1], None)}
    schema: dict[str, Any] = {
        "type": {bool: "boolean", int: "integer", float: "number", str: "string"}[tp]
    }
    if enum is not None:
        schema["enum"] = list(enum)
    return schema


def _table_schema(cls: type) -> dict[str, Any]:
    """The JSON Schema of a table read into dataclass ``cls``."""
    hints = typing.get_type_hints(cls)
    docs = _field_docs(cls)
    enums = _enums()
    properties: dict[str, Any] = {}
    required = []
    for f in dataclasses.fields(cls):
        prop = _json_type(hints[f.name], enums.get((cls, f.name)))
        if f.default is not dataclasses.MISSING:
            prop["default"] = f.default
        elif f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
            if isinstance(default, (list, dict)) and not any(
                    dataclasses.is_dataclass(v) for v in default):
                prop["default"] = default
        else:
            required.append(f.name)
        if f.name in docs:
            prop["description"] = docs[f.name]
        properties[f.name] = prop
    schema: dict[str, Any] = {"type": "object", "properties": properties,
                              "additionalProperties": False}
    if cls.__doc__:
        schema["description"] = " ".join(cls.__doc__.split("\n\n")[0].split())
    if required:
        schema["required"] = required
    return schema


def config_json_schema() -> dict[str, Any]:
    """A JSON Schema (draft 2020-12) of the configuration file, built from the same
    dataclasses and value lists the checker uses (``fastwamp --config-schema``).

    It catches what an editor can (unknown keys, types, fixed choices, required keys);
    ``--check-config`` also checks ranges, files and keys that depend on each other."""
    schema = _table_schema(Config)
    schema["properties"]["realms"]["minItems"] = 1
    schema["properties"]["listeners"]["minItems"] = 1
    return {"$schema": "https://json-schema.org/draft/2020-12/schema",
            "title": "fastwamp configuration", **schema}
