"""Realm events: what the dealer and broker tell the rest of the realm.

The realm reports sessions joining and leaving; the dealer and broker report registrations and subscriptions being created,
added, removed and deleted, and publications being published, to one
:class:`RealmEvents`; the realm composes its observers there in order (the meta
API first, event history next; a cluster bridge or a metrics exporter would be
further observers).  An observer implements any subset of :class:`RealmObserver`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from .broker import Subscription
    from .dealer import Registration
    from .member import Member
    from .session import RouterSession

#: The events, by method name.
EVENT_NAMES = (
    "session_joined", "session_left", "registration_created", "registration_added", "registration_removed",
    "subscription_created", "subscription_added", "subscription_removed", "published",
)


class RealmObserver(Protocol):
    """Every realm event (an observer defines only those it needs)."""

    def session_joined(self, session: RouterSession) -> None:
        """A session joined (after its WELCOME was queued)."""

    def session_left(self, session: RouterSession) -> None:
        """A session left (its registrations and subscriptions are gone)."""

    def registration_created(self, member: Member, reg: Registration) -> None: ...

    def registration_added(self, member: Member, reg: Registration) -> None: ...

    def registration_removed(self, member: Member, reg: Registration, deleted: bool) -> None: ...

    def subscription_created(self, member: Member, sub: Subscription) -> None: ...

    def subscription_added(self, member: Member, sub: Subscription) -> None: ...

    def subscription_removed(self, member: Member, sub: Subscription, deleted: bool) -> None: ...

    def published(self, member: Member, topic: str, publication: int, payload: list,
                  options: dict[str, Any]) -> None:
        """A client's publication was accepted (before it is delivered)."""


class RealmEvents:
    """Hands each realm event to the observers that handle it, in the order they were added."""

    def __init__(self) -> None:
        self._handlers: dict[str, list[Any]] = {name: [] for name in EVENT_NAMES}
        #: Whether any observer wants ``published`` (the broker skips the call if not).
        self.wants_published = False

    def add(self, observer: object) -> None:
        """Add ``observer`` after the others, for each event it has a method for."""
        for name in EVENT_NAMES:
            handler = getattr(observer, name, None)
            if handler is not None:
                self._handlers[name].append(handler)
        self.wants_published = bool(self._handlers["published"])

    def session_joined(self, session: RouterSession) -> None:
        for handler in self._handlers["session_joined"]:
            handler(session)

    def session_left(self, session: RouterSession) -> None:
        for handler in self._handlers["session_left"]:
            handler(session)

    def registration_created(self, member: Member, reg: Registration) -> None:
        for handler in self._handlers["registration_created"]:
            handler(member, reg)

    def registration_added(self, member: Member, reg: Registration) -> None:
        for handler in self._handlers["registration_added"]:
            handler(member, reg)

    def registration_removed(self, member: Member, reg: Registration, deleted: bool) -> None:
        for handler in self._handlers["registration_removed"]:
            handler(member, reg, deleted)

    def subscription_created(self, member: Member, sub: Subscription) -> None:
        for handler in self._handlers["subscription_created"]:
            handler(member, sub)

    def subscription_added(self, member: Member, sub: Subscription) -> None:
        for handler in self._handlers["subscription_added"]:
            handler(member, sub)

    def subscription_removed(self, member: Member, sub: Subscription, deleted: bool) -> None:
        for handler in self._handlers["subscription_removed"]:
            handler(member, sub, deleted)

    def published(self, member: Member, topic: str, publication: int, payload: list,
                  options: dict[str, Any]) -> None:
        for handler in self._handlers["published"]:
            handler(member, topic, publication, payload, options)
