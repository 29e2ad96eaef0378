# cython: annotation_typing=False
"""Event fan-out: send one EVENT to a run of receivers, applying the publish filters.

This is the loop that runs once per receiver of every publication, so it is
compiled (through ``fanout_c.pxd``).  Receivers are any objects with ``id``,
``authid``, ``authrole`` and ``send(msg)``; the core knows nothing of sessions.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Container
    from typing import Protocol

    class Receiver(Protocol):
        """What the fan-out needs of a receiver (a router session, in practice)."""

        id: int
        authid: str
        authrole: str

        def send(self, msg: list) -> None: ...


class SharedMessage(list):
    """A message sent unchanged to many sessions (an EVENT to every subscriber
    of a subscription): each serializer encodes it once, whatever the fan-out,
    and each transport frames it once (kept in ``encoded``)."""

    __slots__ = ("encoded",)

    def __init__(self, items: list) -> None:
        list.__init__(self, items)
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


def send_to(receivers: list[Receiver], start: int, stop: int, event: list,
            disclosed: list | None, want_disclosure: Container[int],
            receiver_filter: ReceiverFilter | None) -> int:
    """Send ``event`` to ``receivers[start:stop]`` that pass ``receiver_filter``.

    Receivers whose id is in ``want_disclosure`` get ``disclosed`` instead (the
    same EVENT with the publisher's identity), when ``disclosed`` is not None.
    Returns how many receivers were sent the event.
    """
    sent = 0
    flt = receiver_filter
    for i in range(start, stop):
        receiver = receivers[i]
        if flt is not None and not flt.admits(receiver):
            continue
        if disclosed is not None and receiver.id in want_disclosure:
            receiver.send(disclosed)
        else:
            receiver.send(event)
        sent += 1
    return sent
