# cython: annotation_typing=False
"""The broker: subscriptions and the delivery of every publication.

Topic matching runs in the compiled core (:class:`fastwamp._core.trie.UriTrie`);
options (exclusion, black/white lists, disclosure) are applied here.  One
EVENT list is built per matching subscription and shared by all of its
receivers.
"""

from __future__ import annotations

import logging
from collections import deque
from typing import TYPE_CHECKING, Any

from .._core.fanout import ReceiverFilter
from .._core.trie import UriTrie
from .._core.uri import MATCH_EXACT, uri_within_limits, validate_uri
from ..logsafe import clip
from ..wamp import messages as m
from ..wamp import uris
from ..wamp.serializers import SharedMessage
from .clock import Clock, utcnow_iso
from .events import RealmEvents
from .history import pattern_matches
from .ids import IdPool, publication_id
from .member import send_to
from .options import (
    RESERVED_INITIALS,
    RESERVED_PREFIXES,
    BrokerOptions,
    is_reserved,
    make_publish_filter,
    read_pattern,
)
from .sizes import SLOT, estimate_size

if TYPE_CHECKING:
    from .member import Member

log = logging.getLogger("fastwamp.broker")


#: Receivers served per turn of the event loop: a publication to more subscribers
#: is delivered in chunks, so one huge fan-out does not stall every other session.
FANOUT_CHUNK = 1000
#: What one turn of the loop may deliver at once: events, and distinct receivers (a
#: receiver costs a socket write per turn however many events it gets, so repeated
#: publications to the same subscription count their receivers once per turn).
TURN_EVENTS = 20000

#: A departed session's subscriptions are removed at once up to TEARDOWN_AT_ONCE (the
#: default max_subscriptions_per_session), else TEARDOWN_SLICE per turn of the loop
#: (each ≈ 3.5 us of CPU, meta events included).
TEARDOWN_AT_ONCE = 1000
TEARDOWN_SLICE = 500


class Subscription:
    """A topic URI with a match policy, and the sessions subscribed to it."""

    __slots__ = ("id", "uri", "match", "match_name", "subscribers", "created", "want_publisher",
                 "_receivers")

    def __init__(self, sub_id: int, uri: str, match: int, match_name: str) -> None:
        self.id = sub_id
        self.uri = uri
        self.match = match
        self.match_name = match_name
        #: session id -> session, in subscription order
        self.subscribers: dict[int, Member] = {}
        #: The subscribers as a list, made on the first delivery after a change.
        self._receivers: list[Member] | None = None
        self.created = utcnow_iso()
        #: ids of subscribers that asked for publisher disclosure (SUBSCRIBE get_publisher)
        self.want_publisher: set[int] = set()

    def receivers(self) -> list[Member]:
        """The subscribers in subscription order (one shared list until they change;
        never modified in place, so a queued delivery keeps its snapshot)."""
        receivers = self._receivers
        if receivers is None:
            receivers = self._receivers = list(self.subscribers.values())
        return receivers

    def changed(self) -> None:
        """The subscribers changed: the next delivery makes a new list."""
        self._receivers = None

    def details(self) -> dict[str, Any]:
        """SubscriptionDetails as the meta API describes it."""
        return {"id": self.id, "created": self.created, "uri": self.uri, "match": self.match_name}


class RetainedEvent:
    """The last retained publication on a topic."""

    __slots__ = ("topic", "publication", "payload", "receiver_filter", "publisher_details",
                 "disclose", "size")

    def __init__(self, topic: str, publication: int, payload: list,
                 receiver_filter: ReceiverFilter | None, publisher_details: dict | None,
                 disclose: bool, size: int) -> None:
        #: Estimated bytes held (payload, topic, filter), counted in retained_bytes_max.
        self.size = size
        self.topic = topic
        self.publication = publication
        self.payload = payload
        self.receiver_filter = receiver_filter
        #: publisher_* details, kept when they may be disclosed to someone
        self.publisher_details = publisher_details
        #: whether every receiver sees them (else only get_publisher subscribers)
        self.disclose = disclose


class Broker:
    """Routes the publications of one realm.

    Built from plain values: its options, a clock (chunked delivery runs on later
    turns of the loop) and the realm's events (subscriptions created, added,
    removed; publications published).  Its verbs take the subscriber's or
    publisher's :class:`~fastwamp.router.member.Member` and a checked message.
    """

    def __init__(self, options: BrokerOptions, clock: Clock, events: RealmEvents) -> None:
        self.options = options
        self.trie = UriTrie()
        self.subscriptions: dict[int, Subscription] = {}
        self._ids = IdPool()
        self._clock = clock
        self._events = events
        self._limits = options.uris
        self._strict = options.uris.strict
        #: "always", "on_request" or "never" (RealmConfig.disclosure)
        self._disclosure = options.disclosure
        self._retention = options.event_retention
        self._retained_max = options.retained_topics_max
        self._retained_bytes_max = options.retained_bytes_max
        #: Estimated bytes held by ``retained``.
        self.retained_bytes = 0
        self._max_subscriptions = options.max_subscriptions
        self._max_list = options.max_list_length
        self._max_uri_length = options.uris.max_length
        self._max_uri_components = options.uris.max_components
        #: chunked deliveries waiting for the next turn of the loop:
        #: [receivers, position, event, disclosed, want_publisher, filter, size, publisher]
        self._backlog: deque[list] = deque()
        self._pump_scheduled = False
        #: Estimated bytes the backlog holds (a client has at most one publication in it:
        #: its input is paused until that is delivered), and the paused publishers.
        self.backlog_bytes = 0
        self._paused_publishers: dict[int, Member] = {}
        #: Receivers that may still be served at once in this turn of the loop; the
        #: rest of the turn's publications go through the backlog.
        self._turn_room = FANOUT_CHUNK
        self._turn_events = TURN_EVENTS
        #: Subscriptions already delivered to in this turn (their receivers are counted).
        self._turn_subs: set[int] = set()
        self._turn_reset_scheduled = False
        #: topic -> the last event published on it with retain=true
        self.retained: dict[str, RetainedEvent] = {}

    def features(self) -> dict[str, bool]:
        """Broker features announced in WELCOME (only what is implemented and tested)."""
        features = {
            "pattern_based_subscription": True,
            "publisher_exclusion": True,
            "subscriber_blackwhite_listing": True,
            "publisher_identification": True,
            "session_meta_api": True,
            "subscription_meta_api": True,
            "event_retention": True,
        }
        if self.options.event_history:
            features["event_history"] = True
        return features

    # -- subscriptions -------------------------------------------------------------

    def subscribe(self, session: Member, msg: list) -> None:
        """SUBSCRIBE: add ``session`` to the subscription of the topic (created if new)."""
        request, options, uri = msg[1], msg[2], msg[3]
        pattern = read_pattern(session, m.SUBSCRIBE, request, options, uri, self._limits,
                               "topic")
        if pattern is None:
            return
        match, match_name = pattern
        sub = self.trie.get(uri, match)
        created = sub is None
        if (created or session.id not in sub.subscribers) and (
                len(session.subscriptions or ()) >= self._max_subscriptions):
            session.send_error(m.SUBSCRIBE, request, uris.LIMIT_EXCEEDED,
                               [f"a session may hold at most {self._max_subscriptions} "
                                "subscriptions (max_subscriptions_per_session)"])
            return
        if sub is None:
            sub = Subscription(self._ids.take(), uri, match, match_name)
            self.trie.add(uri, match, sub)
            self.subscriptions[sub.id] = sub
        elif session.id in sub.subscribers:
            self._note_publisher_wish(session, sub, options)
            session.send([m.SUBSCRIBED, request, sub.id])
            if options.get("get_retained") is True:
                self._send_retained(session, sub)
            return
        sub.subscribers[session.id] = session
        sub.changed()
        held = session.subscriptions
        if held is None:
            held = session.subscriptions = set()
        held.add(sub.id)
        self._note_publisher_wish(session, sub, options)
        session.send([m.SUBSCRIBED, request, sub.id])
        if options.get("get_retained") is True:
            self._send_retained(session, sub)
        events = self._events
        if created:
            events.subscription_created(session, sub)
        events.subscription_added(session, sub)

    def _note_publisher_wish(self, session: Member, sub: Subscription,
                             options: dict[str, Any]) -> None:
        """The guide's subscriber-side disclosure request (``get_publisher``)."""
        if options.get("get_publisher") is True and self._disclosure == "on_request":
            sub.want_publisher.add(session.id)
        else:
            sub.want_publisher.discard(session.id)

    def _send_retained(self, session: Member, sub: Subscription) -> None:
        """Send the retained events ``sub`` matches, marked ``retained``, right after SUBSCRIBED."""
        if sub.match == MATCH_EXACT:
            event = self.retained.get(sub.uri)
            candidates = [event] if event is not None else []
        else:
            candidates = [e for topic, e in self.retained.items()
                          if pattern_matches(sub.uri, sub.match, topic)]
        for event in candidates:
            if event.receiver_filter is not None and not event.receiver_filter.admits(session):
                continue
            details: dict[str, Any] = {}
            if event.publisher_details is not None and (
                event.disclose or session.id in sub.want_publisher
            ):
                details.update(event.publisher_details)
            details["retained"] = True
            if sub.match != MATCH_EXACT:
                details["topic"] = event.topic
            session.send([m.EVENT, sub.id, event.publication, details, *event.payload])

    def unsubscribe(self, session: Member, msg: list) -> None:
        """UNSUBSCRIBE: remove ``session`` (the subscription goes with its last subscriber)."""
        request, sub_id = msg[1], msg[2]
        sub = self.subscriptions.get(sub_id)
        if sub is None or session.id not in sub.subscribers:
            session.send_error(m.UNSUBSCRIBE, request, uris.NO_SUCH_SUBSCRIPTION,
                               [f"no subscription {sub_id} held by this session"])
            return
        self._remove_subscriber(sub, session)
        session.send([m.UNSUBSCRIBED, request])

    def revoke(self, session: Member, sub: Subscription) -> None:
        """Remove ``session`` from ``sub`` on the router's initiative (its role lost the
        permission in a reload): the meta events of an unsubscription follow; the
        subscriber is not told."""
        if session.id in sub.subscribers:
            self._remove_subscriber(sub, session)

    def _remove_subscriber(self, sub: Subscription, session: Member) -> None:
        del sub.subscribers[session.id]
        sub.changed()
        sub.want_publisher.discard(session.id)
        if session.subscriptions is not None:
            session.subscriptions.discard(sub.id)
        deleted = not sub.subscribers
        if deleted:
            self.trie.remove(sub.uri, sub.match)
            del self.subscriptions[sub.id]
            self._ids.release(sub.id)
        self._events.subscription_removed(session, sub, deleted)

    def detach(self, session: Member) -> None:
        """Remove every subscription of a session that left.

        Up to TEARDOWN_AT_ONCE go at once (every session within the default
        max_subscriptions_per_session); beyond that they go TEARDOWN_SLICE per turn of the
        loop, so a session holding many does not stall the others.  Meanwhile its lingering
        subscriptions deliver nothing to it (the realm marked the member closed) and
        meta queries may still list it.
        """
        self._paused_publishers.pop(session.id, None)
        held = session.subscriptions
        if not held:
            return
        if len(held) > TEARDOWN_AT_ONCE and self._clock.scheduler is not None:
            self._detach_slice(session)
            return
        for sub_id in list(held):
            sub = self.subscriptions.get(sub_id)
            if sub is not None:
                self._remove_subscriber(sub, session)

    def _detach_slice(self, session: Member) -> None:
        """Remove TEARDOWN_SLICE subscriptions of a departed session; schedule the rest."""
        held = session.subscriptions
        if not held:
            return
        # Rescheduled first: a failure below must not leave the rest held forever.
        if len(held) > TEARDOWN_SLICE:
            self._clock.call_later(0, lambda: self._detach_slice(session))
        subscriptions = self.subscriptions
        pop = held.pop
        for _ in range(min(TEARDOWN_SLICE, len(held))):
            sub = subscriptions.get(pop())
            # (a new session with the same id would be another member: left alone)
            if sub is not None and sub.subscribers.get(session.id) is session:
                self._remove_subscriber(sub, session)

    # -- publications ----------------------------------------------------------------

    def publish(self, publisher: Member, msg: list) -> None:
        """PUBLISH: deliver an event to every eligible subscriber of matching subscriptions."""
        request, options, topic = msg[1], msg[2], msg[3]
        acknowledge = options.get("acknowledge") is True
        if (not validate_uri(topic, MATCH_EXACT, self._strict)
                or not uri_within_limits(topic, self._max_uri_length, self._max_uri_components)):
            if acknowledge:
                publisher.send_error(m.PUBLISH, request, uris.INVALID_URI,
                                     [f"invalid topic URI {clip(topic)!r}"])
            else:
                publisher.log_bad_input("unacknowledged PUBLISH to invalid topic %s dropped",
                                        topic)
            return
        if topic and topic[0] in RESERVED_INITIALS and is_reserved(topic):
            if acknowledge:
                publisher.send_error(m.PUBLISH, request, uris.NOT_AUTHORIZED,
                                     [f"the URI namespaces {' and '.join(RESERVED_PREFIXES)} "
                                      f"are reserved: cannot publish to {topic!r}"])
            return
        disclose = self._disclosure == "always" or options.get("disclose_me") is True
        if disclose and self._disclosure == "never":
            if acknowledge:
                publisher.send_error(m.PUBLISH, request, uris.OPTION_DISALLOWED_DISCLOSE_ME,
                                     ["publisher disclosure is disabled on this realm"])
            return
        # The usual PUBLISH (no options): the publisher's own exclude_me filter, once made.
        receiver_filter = publisher.exclude_me_filter if not options else None
        try:
            if receiver_filter is None:
                receiver_filter = make_publish_filter(publisher, options, self._max_list)
        except ValueError as exc:
            if acknowledge:
                publisher.send_error(m.PUBLISH, request, uris.INVALID_ARGUMENT, [str(exc)])
            return
        publication = publication_id()
        if acknowledge:
            publisher.send([m.PUBLISHED, request, publication])
        publisher_details: dict[str, Any] | None = None
        if disclose or self._disclosure == "on_request":
            publisher_details = {
                "publisher": publisher.id,
                "publisher_authid": publisher.authid,
                "publisher_authrole": publisher.authrole,
            }
        payload = msg[4:]
        if options.get("retain") is True and self._retention:
            self._retain(RetainedEvent(topic, publication, payload, receiver_filter,
                                       publisher_details, disclose, 0))
        if self._events.wants_published:
            self._events.published(publisher, topic, publication, payload, options)
        self.deliver(topic, publication, payload, receiver_filter, publisher_details, disclose,
                     publisher)

    def _retain(self, event: RetainedEvent) -> None:
        """Keep ``event`` as its topic's retained event, within the realm's count and
        byte limits (the least recently retained events go first)."""
        limit = self._retained_bytes_max
        size = estimate_size(event.payload, limit) + len(event.topic) + 8 * SLOT
        if event.receiver_filter is not None:
            size += filter_size(event.receiver_filter, limit)
        event.size = size
        retained = self.retained
        old = retained.pop(event.topic, None)  # re-inserted last: kept in retention order
        if old is not None:
            self.retained_bytes -= old.size
        if size > limit:
            return  # larger than the whole budget: not retained
        retained[event.topic] = event
        self.retained_bytes += size
        while len(retained) > self._retained_max or self.retained_bytes > limit:
            oldest = retained.pop(next(iter(retained)))
            self.retained_bytes -= oldest.size

    def deliver(self, topic: str, publication: int, payload: list,
                receiver_filter: ReceiverFilter | None, publisher: dict[str, Any] | None = None,
                disclose: bool = False, source: Member | None = None) -> int:
        """Send one publication to every eligible subscriber; return the number of receivers
        considered (before filtering).

        A ``publication`` id of 0 means: draw one if anyone receives it.
        ``publisher`` (the publisher_* details) goes to every receiver when ``disclose``,
        else only to subscribers that asked for it with ``get_publisher``.  Deliveries
        to more than FANOUT_CHUNK receivers, and every delivery queued behind one, go
        out in chunks, one per turn of the event loop, in publication order.  While that
        backlog holds more than ``fanout_backlog_bytes``, the input of ``source`` (the
        publishing session) is paused.

        Patterns outside the reserved namespaces never match topics inside them.
        """
        total = 0
        jobs = []
        subs = self.trie.match_all(topic)
        if not subs:
            return 0
        if topic and topic[0] in RESERVED_INITIALS and topic.startswith(RESERVED_PREFIXES):
            subs = [s for s in subs if s.match == MATCH_EXACT or is_reserved(s.uri)]
        if not publication:
            publication = publication_id()
        for sub in subs:
            n = len(sub.subscribers)
            if not n:
                continue
            details: dict[str, Any] = {}
            if disclose and publisher is not None:
                details.update(publisher)
            if sub.match != MATCH_EXACT:
                details["topic"] = topic
            if n > 1:
                event: list = SharedMessage([m.EVENT, sub.id, publication, details, *payload])
            else:
                event = [m.EVENT, sub.id, publication, details, *payload]
            disclosed = None
            want = sub.want_publisher
            if not disclose and publisher is not None and want:
                disclosed = SharedMessage(
                    [m.EVENT, sub.id, publication, {**details, **publisher}, *payload])
            jobs.append((sub.receivers(), event, disclosed, want))
            total += n
        if not self._backlog and (total <= 1 or self._fits_turn(subs, total)):
            for receivers, event, disclosed, want in jobs:
                send_to(receivers, 0, len(receivers), event, disclosed, want, receiver_filter)
            return total
        # Over this turn's room: deliver in chunks on later turns, and read nothing more
        # from the publisher until its publication is out (its last job carries it).
        payload_size = estimate_size(payload)
        backlog = self._backlog
        for receivers, event, disclosed, want in jobs:
            size = payload_size + SLOT * len(receivers)
            backlog.append([receivers, 0, event, disclosed, want, receiver_filter, size, None])
            self.backlog_bytes += size
        if source is not None and jobs:
            backlog[len(backlog) - 1][7] = source  # (no negative index: compiled)
            self._pause_publisher(source)
        self._schedule_pump()
        return total

    def _fits_turn(self, subs: list[Subscription], events: int) -> bool:
        """Whether a publication of ``events`` events to ``subs`` fits in what this turn
        may still deliver (TURN_EVENTS events, FANOUT_CHUNK distinct receivers); if so
        it is counted.  The room
        is restored on the next turn of the loop."""
        if events > self._turn_events:
            return False
        seen = self._turn_subs
        receivers = 0
        for sub in subs:
            if sub.id not in seen:
                receivers += len(sub.subscribers)
        if receivers > self._turn_room:
            return False
        self._turn_events -= events
        if receivers:
            self._turn_room -= receivers
            for sub in subs:
                seen.add(sub.id)
        if not self._turn_reset_scheduled:
            scheduler = self._clock.scheduler
            if scheduler is None:  # bare core: no turns
                self._new_turn()
                return True
            scheduler.call_soon(self._new_turn)
            self._turn_reset_scheduled = True
        return True

    def _new_turn(self) -> None:
        self._turn_reset_scheduled = False
        self._turn_room = FANOUT_CHUNK
        self._turn_events = TURN_EVENTS
        self._turn_subs.clear()

    def _pause_publisher(self, session: Member) -> None:
        if session.id not in self._paused_publishers:
            self._paused_publishers[session.id] = session
            session.pause_input()

    def _resume_publisher(self, session: Member) -> None:
        if self._paused_publishers.pop(session.id, None) is not None:
            session.resume_input()

    def _schedule_pump(self) -> None:
        if not self._pump_scheduled:
            if self._clock.scheduler is None:  # no loop (bare core): deliver everything now
                while self._backlog:
                    self._pump_once(len(self._backlog[0][0]))
                return
            self._pump_scheduled = True
            self._clock.call_later(0, self._pump)

    def _pump(self) -> None:
        self._pump_scheduled = False
        self._pump_once(FANOUT_CHUNK)
        if self._backlog:
            self._schedule_pump()

    def _pump_once(self, budget: int) -> None:
        backlog = self._backlog
        while backlog and budget > 0:
            job = backlog[0]
            receivers, position = job[0], job[1]
            stop = min(len(receivers), position + budget)
            try:
                send_to(receivers, position, stop, job[2], job[3], job[4], job[5])
            except Exception:  # a bug: drop this delivery, never block the ones behind it
                log.exception("fan-out of a publication failed; dropping the rest of it")
                stop = len(receivers)
            budget -= stop - position
            if stop == len(receivers):
                backlog.popleft()
                self.backlog_bytes -= job[6]
                if job[7] is not None:  # the publisher's publication is out: read it again
                    self._resume_publisher(job[7])
            else:
                job[1] = stop



def filter_size(receiver_filter: ReceiverFilter, limit: int) -> int:
    """Estimated bytes held by the lists of a receiver filter."""
    f = receiver_filter
    return estimate_size([f.eligible, f.excluded, f.eligible_authid, f.excluded_authid,
                          f.eligible_authrole, f.excluded_authrole], limit)


if __name__ == "fastwamp.router.broker":  # the interpreted module: use the compiled twin
    from .twins import compiled_twin

    globals().update(compiled_twin(__name__, ("Subscription", "RetainedEvent", "Broker")))
