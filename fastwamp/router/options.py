"""Reading the options of REGISTER and SUBSCRIBE that the dealer and broker share."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .._core.uri import MATCH_POLICIES, uri_within_limits, validate_uri
from ..wamp import uris

if TYPE_CHECKING:
    from .session import RouterSession


#: URI namespaces of the spec and of fastwamp: clients may not register or publish under
#: them, and patterns outside them never capture calls or events inside them.
RESERVED_PREFIXES = ("wamp.", "fastwamp.")
_RESERVED_NAMES = ("wamp", "fastwamp")


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


def read_pattern(session: RouterSession, request_type: int, request: int,
                 options: dict[str, Any], uri: str, strict: bool,
                 what: str) -> tuple[int, str] | None:
    """Check a REGISTER/SUBSCRIBE URI against its match policy and the URI limits.

    Returns (match, match name), or None after answering the request with
    ``invalid_argument`` (unknown policy) or ``invalid_uri``.
    """
    config = session.router.config
    too_long = uri_over_limits(uri, config.max_uri_length, config.max_uri_components)
    if too_long is not None:
        session.send_error(request_type, request, uris.INVALID_URI,
                           [f"invalid {what} URI: {too_long}"])
        return None
    match, match_name = match_policy(options)
    if match is None:
        session.send_error(request_type, request, uris.INVALID_ARGUMENT,
                           [f"unknown match policy {match_name!r}"])
        return None
    if not validate_uri(uri, match, strict):
        session.send_error(request_type, request, uris.INVALID_URI,
                           [f"invalid {what} URI {uri!r} for match policy {match_name!r}"])
        return None
    return match, match_name
