"""Reading the options of REGISTER and SUBSCRIBE that the dealer and broker share."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .._core.uri import MATCH_POLICIES, validate_uri
from ..wamp import uris

if TYPE_CHECKING:
    from .session import RouterSession


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
    """Check a REGISTER/SUBSCRIBE URI against its match policy.

    Returns (match, match name), or None after answering the request with
    ``invalid_argument`` (unknown policy) or ``invalid_uri``.
    """
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
