"""The dealer's and broker's options as plain values, and reading the options of
REGISTER, SUBSCRIBE and PUBLISH that they share."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .._core.fanout import ReceiverFilter
from .._core.uri import MATCH_POLICIES, uri_within_limits, validate_uri
from ..wamp import uris

if TYPE_CHECKING:
    from ..config import Config, RealmConfig
    from .member import Member


@dataclass(frozen=True)
class UriLimits:
    """What every URI is checked against (``max_uri_length``, ``max_uri_components``)."""

    strict: bool = False
    max_length: int = 1024
    max_components: int = 64


@dataclass(frozen=True)
class DealerOptions:
    """Everything the dealer is configured with (from the realm's and router's config)."""

    uris: UriLimits = field(default_factory=UriLimits)
    #: "always", "on_request" or "never" (RealmConfig.disclosure)
    disclosure: str = "always"
    trustlevels: dict[str, int] = field(default_factory=dict)
    max_calls_in_flight: int = 1000
    max_registrations: int = 1000
    default_timeout_ms: int = 0
    max_timeout_ms: int = 0

    @classmethod
    def from_config(cls, realm: RealmConfig, config: Config) -> DealerOptions:
        return cls(uri_limits(realm, config), realm.disclosure, dict(realm.trustlevels),
                   realm.max_calls_in_flight, realm.max_registrations_per_session,
                   config.call_timeout_default_ms, config.call_timeout_max_ms)


@dataclass(frozen=True)
class BrokerOptions:
    """Everything the broker is configured with (from the realm's and router's config)."""

    uris: UriLimits = field(default_factory=UriLimits)
    disclosure: str = "always"
    event_retention: bool = True
    retained_topics_max: int = 100000
    retained_bytes_max: int = 64 * 1024 * 1024
    max_subscriptions: int = 1000
    max_list_length: int = 1000
    #: Whether event history is kept (announced as the broker feature event_history).
    event_history: bool = False

    @classmethod
    def from_config(cls, realm: RealmConfig, config: Config) -> BrokerOptions:
        return cls(uri_limits(realm, config), realm.disclosure, realm.event_retention,
                   realm.retained_topics_max, realm.retained_bytes_max,
                   realm.max_subscriptions_per_session, realm.max_list_length,
                   bool(realm.event_history))


def uri_limits(realm: RealmConfig, config: Config) -> UriLimits:
    return UriLimits(realm.strict_uris, config.max_uri_length, config.max_uri_components)


#: URI namespaces of the spec and of fastwamp: clients may not register or publish under
#: them, and patterns outside them never capture calls or events inside them.
RESERVED_PREFIXES = ("wamp.", "fastwamp.")
_RESERVED_NAMES = ("wamp", "fastwamp")
#: The first characters of every reserved URI: a URI starting otherwise is not reserved.
RESERVED_INITIALS = "".join(sorted({name[0] for name in RESERVED_PREFIXES + _RESERVED_NAMES}))


def is_reserved(uri: str) -> bool:
    """Whether ``uri`` lies in a reserved namespace (``wamp.*`` or ``fastwamp.*``)."""
    return uri.startswith(RESERVED_PREFIXES) or uri in _RESERVED_NAMES


def uri_over_limits(uri: str, max_length: int, max_components: int) -> str | None:
    """Why ``uri`` exceeds the configured URI limits, or None if it does not."""
    if uri_within_limits(uri, max_length, max_components):
        return None
    if len(uri) > max_length:
        return f"URI longer than {max_length} characters"
    if uri.count(".") >= max_components:
        return f"URI with more than {max_components} components"
    return None


def match_policy(options: dict[str, Any]) -> tuple[int | None, str]:
    """The ``match`` option as (code, name); code None for an unknown policy.

    An absent value, or one that cannot be read (wampy.js sends ``undefined`` as a
    MessagePack extension), means ``exact``: unknown option values are ignored.
    """
    name = options.get("match")
    if type(name) is not str:
        name = "exact"
    return MATCH_POLICIES.get(name), name


def read_pattern(session: Member, request_type: int, request: int,
                 options: dict[str, Any], uri: str, limits: UriLimits,
                 what: str) -> tuple[int, str] | None:
    """Check a REGISTER/SUBSCRIBE URI against its match policy and the URI limits.

    Returns (match, match name), or None after answering the request with
    ``invalid_argument`` (unknown policy) or ``invalid_uri``.
    """
    too_long = uri_over_limits(uri, limits.max_length, limits.max_components)
    if too_long is not None:
        session.send_error(request_type, request, uris.INVALID_URI,
                           [f"invalid {what} URI: {too_long}"])
        return None
    match, match_name = match_policy(options)
    if match is None:
        session.send_error(request_type, request, uris.INVALID_ARGUMENT,
                           [f"unknown match policy {match_name!r}"])
        return None
    if not validate_uri(uri, match, limits.strict):
        session.send_error(request_type, request, uris.INVALID_URI,
                           [f"invalid {what} URI {uri!r} for match policy {match_name!r}"])
        return None
    return match, match_name


#: PUBLISH list options: (white list key, black list key, item type).
LIST_FILTERS = (
    ("eligible", "exclude", int),
    ("eligible_authid", "exclude_authid", str),
    ("eligible_authrole", "exclude_authrole", str),
)


_LIST_KEYS = frozenset(key for keys in LIST_FILTERS for key in keys[:2])


def make_publish_filter(publisher: Member, options: dict[str, Any],
                        max_list: int) -> ReceiverFilter | None:
    """The receiver filter of a PUBLISH, or None when every subscriber receives it.

    Raises:
        ValueError: a list option is not a list of the right type, or is longer than
            ``max_list`` (``max_list_length``).
    """
    exclude_me = options.get("exclude_me", True) is not False
    if _LIST_KEYS.isdisjoint(options):  # the usual PUBLISH: no lists
        if not exclude_me:
            return None
        own = publisher.exclude_me_filter
        if own is None:
            own = publisher.exclude_me_filter = ReceiverFilter(
                publisher.id, None, None, None, None, None, None)
        return own
    sets: list[frozenset | None] = []
    for eligible_key, exclude_key, item_type in LIST_FILTERS:
        for key in (eligible_key, exclude_key):
            value = options.get(key)
            if value is None:
                sets.append(None)
                continue
            if type(value) is not list:
                raise ValueError(f"PUBLISH.Options.{key} must be a list of {item_type.__name__}")
            if len(value) > max_list:
                raise ValueError(f"PUBLISH.Options.{key} has more than {max_list} entries "
                                 "(max_list_length)")
            if any(type(v) is not item_type for v in value):
                raise ValueError(f"PUBLISH.Options.{key} must be a list of {item_type.__name__}")
            sets.append(frozenset(value))
    if not exclude_me and all(x is None for x in sets):
        return None
    return ReceiverFilter(publisher.id if exclude_me else 0, *sets)
