# cython: annotation_typing=False
"""Event fan-out: the EVENT shared by every receiver, and the publish filters.

A publication's :class:`SharedMessage` is encoded and framed once whatever the
number of receivers; :class:`ReceiverFilter` is checked once per receiver, so both
are compiled (through ``fanout_c.pxd``).  Receivers are any objects with ``id``,
``authid`` and ``authrole``; the core knows nothing of sessions (the loop over a
subscription's members is ``fastwamp.router.member.send_to``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from typing import Protocol

    class Receiver(Protocol):
        """What the fan-out needs of a receiver (a router session, in practice)."""

        id: int
        authid: str
        authrole: str



class SharedMessage(list):
    """A message sent unchanged to many sessions (an EVENT to every subscriber
    of a subscription): each serializer encodes it once, whatever the fan-out,
    and each transport frames it once (kept in ``encoded``)."""

    __slots__ = ("encoded",)

    def __init__(self, items: list) -> None:
        self.extend(items)
        #: serializer name (or frame key) -> encoded bytes, or the error encoding raised
        self.encoded: dict[str, Any] = {}


class ReceiverFilter:
    """The receiver constraints of one PUBLISH.

    Each of the six sets is None when the option was absent.  ``exclude_id`` is the
    publisher's session id when ``exclude_me`` applies, else 0.
    """

    def __init__(self, exclude_id: int, eligible: frozenset | None,
                 excluded: frozenset | None, eligible_authid: frozenset | None,
                 excluded_authid: frozenset | None, eligible_authrole: frozenset | None,
                 excluded_authrole: frozenset | None) -> None:
        self.exclude_id = exclude_id
        self.eligible = eligible
        self.excluded = excluded
        self.eligible_authid = eligible_authid
        self.excluded_authid = excluded_authid
        self.eligible_authrole = eligible_authrole
        self.excluded_authrole = excluded_authrole
        self.has_lists = not (eligible is None and excluded is None
                              and eligible_authid is None and excluded_authid is None
                              and eligible_authrole is None and excluded_authrole is None)

    def admits(self, receiver: Receiver) -> bool:
        """Whether ``receiver`` passes every white list and no black list."""
        sid = receiver.id
        if sid == self.exclude_id:
            return False
        if not self.has_lists:
            return True
        if self.eligible is not None and sid not in self.eligible:
            return False
        if self.excluded is not None and sid in self.excluded:
            return False
        if self.eligible_authid is not None or self.excluded_authid is not None:
            authid = receiver.authid
            if self.eligible_authid is not None and authid not in self.eligible_authid:
                return False
            if self.excluded_authid is not None and authid in self.excluded_authid:
                return False
        if self.eligible_authrole is not None or self.excluded_authrole is not None:
            authrole = receiver.authrole
            if self.eligible_authrole is not None and authrole not in self.eligible_authrole:
                return False
            if self.excluded_authrole is not None and authrole in self.excluded_authrole:
                return False
        return True

