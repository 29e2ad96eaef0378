"""Well-behaved and hostile sessions on one router: a hypothesis state machine.

Well-behaved sessions follow the protocol: two or three callees share
``com.good.proc`` (a shared invocation policy), two callers call it (with and
without timeouts, canceled, with progressive results and progressive
invocations) and call meta procedures correctly, a publisher publishes to
``com.good.topic`` (sometimes retained) for two subscribers, and a monitor
watches the meta topics.  Callees answer invocations (YIELD, progressive YIELD,
ERROR, ``wamp.error.unavailable``) in rule steps, and time passes as a rule.

Hostile sessions send anything: random codes, arities and element types,
random option values for every known option key, random URIs (empty components,
huge, unicode, reserved prefixes), every meta procedure with random arguments,
random testaments, patterns over the good URIs and the reserved namespaces,
random answers to what they are invoked with, GOODBYE/ABORT and disconnects.

Invariants, after every step:

- nothing raises out of ``LinkedPeer.send``/``disconnect``, ``Router.flush`` or
  the scheduler, and the router logs nothing at ERROR level (an exception it
  caught is still a bug);
- no session, hostile or not, gets ``wamp.error.internal_error``; a hostile
  session gets ABORT only for a reason that names its own fault, and an answer
  to each meta procedure call it makes;
- a well-behaved session is never closed by the router (no ABORT, no GOODBYE)
  and never gets a message it has no reason to get;
- every CALL of a well-behaved caller gets exactly one final answer (a RESULT
  without ``progress``, or an ERROR): at once when canceled with skip or
  killnowait or when it is a meta procedure, by its timeout when it has one,
  and in the end (callees answer, hostile sessions leave, time passes);
- no answer arrives for a request that was already answered;
- meta events are not forged (no ``on_leave`` for a connected session, no event
  published by a client on a ``wamp.*``/``fastwamp.*`` topic);
- each good publication reaches each subscriber that was subscribed, once.

At the end, a fresh call, meta call and publish round trip among the
well-behaved sessions must still work.
"""

from __future__ import annotations

import functools
import itertools
import logging
import random
import secrets

from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, precondition, rule

from fastwamp.config import Config, HistoryConfig, RealmConfig
from fastwamp.router import ids as router_ids
from fastwamp.router.session import CLOSED, ESTABLISHED
from fastwamp.testing import LinkedPeer, make_router
from fastwamp.wamp import messages as m
from fastwamp.wamp import uris

from .common import GOOD_ROLES, META_CALLS, META_PROCEDURES, ErrorLog, internal
from .strategies import (
    BIGS,
    PROC,
    TOPIC,
    answers,
    hostile_messages,
    materialize,
    pattern_requests,
    publication,
    weighted,
)

POLICIES = ["roundrobin", "random", "first", "last", "least_inflight", "p2c"]
#: ABORT reasons a hostile session may get: each names the client's own fault.
HOSTILE_ABORTS = {
    uris.PROTOCOL_VIOLATION, uris.INVALID_ARGUMENT, uris.INVALID_URI, uris.NOT_AUTHORIZED,
    uris.NO_SUCH_REALM, uris.NO_MATCHING_AUTH_METHOD, uris.NO_AUTH_METHOD,
    uris.AUTHENTICATION_FAILED, uris.PAYLOAD_SIZE_EXCEEDED,
}
#: Marks the payloads of well-behaved sessions (a hostile one cannot guess it).
NONCE = "nonce-" + secrets.token_hex(8)
HOSTILE_MESSAGES = hostile_messages(META_PROCEDURES)
META_TOPICS = ["wamp.session.on_join", "wamp.session.on_leave",
               "fastwamp.session.on_overflow"]

class Call:
    """A call of a well-behaved caller (a plain class: see Good)."""

    def __init__(self, caller: LinkedPeer, request: int, deadline: float | None,
                 timeout: float, receive_progress: bool, streaming: bool,
                 meta: str | None = None) -> None:
        self.caller = caller
        self.request = request
        self.deadline = deadline  # time by which it must be answered (None: no timeout)
        self.timeout = timeout  # seconds, the gap allowed between progressive results
        self.receive_progress = receive_progress
        self.streaming = streaming  # the caller still has chunks to send
        #: a meta procedure: answered at once, with a RESULT ("result") or this error URI
        self.meta = meta
        self.must_end_now = False  # canceled with skip/killnowait
        self.kill = False  # canceled with kill (further CANCELs are ignored)
        self.answered = 0
        self.forwarded = False  # its INVOCATION went to a hostile callee with the timeout

    def __repr__(self) -> str:
        return f"<call {self.request} of {self.caller.session.transport_info['peer']}>"


class Inv:
    """An invocation a well-behaved callee holds."""

    def __init__(self, receive_progress: bool, streaming: bool) -> None:
        self.receive_progress = receive_progress
        self.streaming = streaming
        self.kill = False  # INTERRUPT(kill) received: answer with canceled


class Good:
    """One well-behaved session and what it expects (not a dataclass: hypothesis prints
    a dataclass field by field in a falsifying example)."""

    def __init__(self, name: str, peer: LinkedPeer) -> None:
        self.name = name
        self.peer = peer
        self.requests = itertools.count(1)
        self.reg_ids: set[int] = set()  # callee: registrations it holds
        self.invs: dict[int, Inv] = {}  # callee: invocation id -> Inv
        self.sub_id: int | None = None  # subscriber: its subscription to TOPIC
        self.got: set[int] = set()  # subscriber: good publications received
        self.expected: set[int] = set()  # subscriber: publications it must get
        self.meta_subs: dict[int, str] = {}  # monitor: subscription id -> topic
        self.acks: dict[int, int] = {}  # publisher: request -> PUBLISHED count

    def __repr__(self) -> str:
        return self.name

    def next(self) -> int:
        return next(self.requests)


def key(h: LinkedPeer) -> str:
    """A hostile session's name: unlike ``id()``, never reused by a later session (a
    reused key would make a replay differ from the run it replays)."""
    return h.session.transport_info["peer"]


def step(fn):
    """Run a rule, then check every invariant; remember whether all went well."""

    @functools.wraps(fn)
    def wrapper(self, **kwargs):
        self.healthy = False
        fn(self, **kwargs)
        self.check()
        self.healthy = True

    return wrapper


class RouterFuzz(RuleBasedStateMachine):
    healthy = False

    @initialize(policy=st.sampled_from(POLICIES),
                disclosure=st.sampled_from(["always", "on_request"]),
                default_ms=st.sampled_from([0, 0, 3000]), max_ms=st.sampled_from([0, 0, 5000]))
    @step
    def setup(self, policy, disclosure, default_ms, max_ms):
        # Session, registration and subscription ids are drawn from a seeded source for
        # the run (hostile messages use them, and a replay must draw the same ones).
        self.saved_rng = router_ids.use_generator(random.Random(0))
        self.errors = ErrorLog()
        logging.getLogger("fastwamp").addHandler(self.errors)
        config = Config(
            realms=[
                RealmConfig("realm1", disclosure=disclosure,
                            event_history=[HistoryConfig(TOPIC, "exact", 10),
                                           HistoryConfig("com.hist", "prefix", 5)]),
                RealmConfig("realm2"),
            ],
            call_timeout_default_ms=default_ms,
            call_timeout_max_ms=max_ms,
        )
        self.router, self.clock = make_router(config)
        self.policy = policy
        self.default_ms, self.max_ms = default_ms, max_ms
        self.calls: dict[tuple[int, int], Call] = {}
        self.hostiles: list[LinkedPeer] = []
        self.hostile_invs: dict[str, list[int]] = {}
        self.hostile_said_goodbye: set[str] = set()
        self.hostile_count = 0
        self.hostile_requests = itertools.count(10**6)
        self.publications = 0
        self.callees = [self._join(f"callee{i}") for i in range(2)]
        for c in self.callees:
            self._register(c, PROC, {"invoke": policy})
        self.callers = [self._join(f"caller{i}") for i in range(2)]
        self.subscribers = [self._join(f"sub{i}") for i in range(2)]
        for s in self.subscribers:
            self._subscribe(s, False)
        self.publisher = self._join("publisher")
        self.monitor = self._join("monitor")
        for topic in META_TOPICS:
            req = self.monitor.next()
            reply = self._request(self.monitor, [m.SUBSCRIBE, req, {}, topic])
            if reply[0] == m.SUBSCRIBED:
                self.monitor.meta_subs[reply[2]] = topic

    # -- helpers -----------------------------------------------------------------------

    def _join(self, name: str) -> Good:
        g = Good(name, LinkedPeer(self.router, {"type": "test", "peer": name}))
        welcome = g.peer.hello("realm1", roles=GOOD_ROLES)
        assert welcome[0] == m.WELCOME, welcome
        return g

    def _request(self, g: Good, msg: list) -> list:
        """Send a request and take its reply, leaving anything else for the checks."""
        g.peer.send(msg)
        code, request = msg[0], msg[1]
        reply = None
        rest = []
        for out in g.peer.take():
            if reply is None and ((out[0] == code + 1 and out[1] == request)
                                  or (out[0] == m.ERROR and out[1] == code
                                      and out[2] == request)):
                reply = out
            else:
                rest.append(out)
        g.peer.received[:0] = rest
        assert reply is not None, f"{g.name}: no reply to {msg!r}"
        assert not (reply[0] == m.ERROR and internal(reply[4])), reply
        return reply

    def _register(self, g: Good, uri: str, options: dict) -> bool:
        reply = self._request(g, [m.REGISTER, g.next(), options, uri])
        if reply[0] == m.REGISTERED:
            g.reg_ids.add(reply[2])
            return True
        # A hostile session may hold the URI (with another policy) once the good callees left.
        assert reply[4] == uris.PROCEDURE_ALREADY_EXISTS, reply
        return False

    def _subscribe(self, g: Good, get_retained: bool) -> None:
        options = {"get_retained": True} if get_retained else {}
        reply = self._request(g, [m.SUBSCRIBE, g.next(), options, TOPIC])
        assert reply[0] == m.SUBSCRIBED, reply
        g.sub_id = reply[2]

    def _timeout(self, requested: object) -> int:
        """The timeout (ms) the dealer applies, as documented."""
        timeout = requested if type(requested) is int else 0
        if not timeout:
            timeout = self.default_ms
        if self.max_ms and (not timeout or timeout > self.max_ms):
            timeout = self.max_ms
        return timeout

    def _good(self) -> list[Good]:
        return [*self.callees, *self.callers, *self.subscribers, self.publisher, self.monitor]

    def _ids(self, h: LinkedPeer) -> dict[str, list[int]]:
        """Ids hostile session ``h`` may aim at, by kind (see strategies.Ref)."""
        realm = self.router.realms["realm1"]
        sessions = [g.peer.session.id for g in self._good()]
        sessions += [h.session.id for h in self.hostiles]
        return {"session": sessions, "registration": list(realm.dealer.registrations),
                "subscription": list(realm.broker.subscriptions),
                "invocation": self.hostile_invs.get(key(h), [])}

    def _pick_hostile(self, data) -> LinkedPeer:
        index = data.draw(st.sampled_from(range(len(self.hostiles))), label="hostile")
        return self.hostiles[index]

    def _hostile(self, data) -> LinkedPeer:
        """A hostile session to act with: often a new one that joined correctly."""
        if len(self.hostiles) < 6 and (
                not self.hostiles or data.draw(st.booleans(), label="new hostile")):
            return self._connect_hostile("good")
        return self._pick_hostile(data)

    def _connect_hostile(self, hello: str) -> LinkedPeer:
        self.hostile_count += 1
        h = LinkedPeer(self.router, {"type": "test", "peer": f"hostile{self.hostile_count}"})
        self.hostiles.append(h)
        if hello == "good":
            h.send([m.HELLO, "realm1", {"roles": GOOD_ROLES}])
        elif hello == "random":
            h.send([m.HELLO, "realm1", {"roles": {"caller": {}, "callee": {"features": 1}},
                                        "authmethods": ["anonymous", 7]}])
        return h

    def _open_calls(self) -> list[Call]:
        return [c for c in self.calls.values() if not c.answered]

    # -- invariants --------------------------------------------------------------------

    def check(self) -> None:
        assert not self.errors.records, "the router logged an error: " + "\n".join(
            self.errors.format(r) for r in self.errors.records)
        for g in self.callers:
            self._drain_caller(g)
        for g in self.callees:
            self._drain_callee(g)
        for g in self.subscribers:
            self._drain_subscriber(g)
        self._drain_publisher(self.publisher)
        self._drain_monitor(self.monitor)
        for h in self.hostiles:
            self._drain_hostile(h)
        # A hostile session the router closed is gone (another may connect).
        self.hostiles = [h for h in self.hostiles if h.session.state is not CLOSED]
        now = self.clock.now
        for call in self._open_calls():
            assert not call.meta, f"meta call {call.request} not answered at once"
            assert not call.must_end_now, f"canceled call {call.request} not answered at once"
            if call.deadline is not None and not call.forwarded:
                assert now < call.deadline + 1e-6, (
                    f"call {call.request} not answered by its timeout (now {now}, "
                    f"deadline {call.deadline})")

    def _not_closed(self, g: Good, msg: list) -> None:
        assert msg[0] not in (m.ABORT, m.GOODBYE), f"{g.name} was closed by the router: {msg!r}"

    def _drain_caller(self, g: Good) -> None:
        for msg in g.peer.take():
            self._not_closed(g, msg)
            if msg[0] == m.RESULT:
                call = self.calls.get((id(g.peer), msg[1]))
                assert call is not None, f"{g.name}: RESULT for a call never made: {msg!r}"
                if type(msg[2]) is dict and msg[2].get("progress"):
                    assert call.receive_progress, f"{g.name}: unasked progress: {msg!r}"
                    assert not call.answered, f"{g.name}: progress after the end: {msg!r}"
                    if call.deadline is not None:
                        call.deadline = self.clock.now + call.timeout
                    continue
                assert call.meta in (None, "result"), f"{g.name}: unexpected {msg!r}"
            elif msg[0] == m.ERROR:
                assert msg[1] == m.CALL, f"{g.name}: unexpected {msg!r}"
                assert not internal(msg[4]), f"{g.name}: {msg!r}"
                call = self.calls.get((id(g.peer), msg[2]))
                assert call is not None, f"{g.name}: ERROR for a call never made: {msg!r}"
                assert call.meta in (None, msg[4]), f"{g.name}: meta call failed: {msg!r}"
            else:
                raise AssertionError(f"{g.name}: unexpected {msg!r}")
            assert not call.answered, f"{g.name}: call {call.request} answered twice: {msg!r}"
            call.answered = 1
            call.streaming = False

    def _drain_callee(self, g: Good) -> None:
        for msg in g.peer.take():
            self._not_closed(g, msg)
            if msg[0] == m.INVOCATION:
                assert msg[2] in g.reg_ids, f"{g.name}: INVOCATION for another registration"
                details = msg[3]
                assert "timeout" not in details, f"{g.name}: timeout forwarded unasked"
                inv = g.invs.get(msg[1])
                if inv is not None:  # a progressive invocation chunk
                    assert inv.streaming, f"{g.name}: chunk for a finished invocation {msg!r}"
                    inv.streaming = details.get("progress") is True
                else:
                    g.invs[msg[1]] = Inv(details.get("receive_progress") is True,
                                         details.get("progress") is True)
            elif msg[0] == m.INTERRUPT:
                inv = g.invs.get(msg[1])
                assert inv is not None, f"{g.name}: INTERRUPT for no open invocation {msg!r}"
                if msg[2].get("mode") == "kill":
                    inv.kill = True
                else:
                    del g.invs[msg[1]]
            else:
                raise AssertionError(f"{g.name}: unexpected {msg!r}")

    def _drain_subscriber(self, g: Good) -> None:
        for msg in g.peer.take():
            self._not_closed(g, msg)
            assert msg[0] == m.EVENT, f"{g.name}: unexpected {msg!r}"
            assert msg[1] == g.sub_id, f"{g.name}: EVENT for a subscription it does not hold"
            kwargs = msg[5] if len(msg) > 5 else None
            if type(kwargs) is dict and NONCE in kwargs:
                n = kwargs[NONCE]
                if msg[3].get("retained") is True:
                    assert 0 < n <= self.publications, f"{g.name}: bad retained event {msg!r}"
                    continue
                assert n in g.expected, f"{g.name}: got publication {n} it was not due"
                assert n not in g.got, f"{g.name}: got publication {n} twice"
                g.got.add(n)

    def _drain_publisher(self, g: Good) -> None:
        for msg in g.peer.take():
            self._not_closed(g, msg)
            assert msg[0] == m.PUBLISHED, f"{g.name}: unexpected {msg!r}"
            assert g.acks.get(msg[1]) == 0, f"{g.name}: PUBLISHED not due: {msg!r}"
            g.acks[msg[1]] = 1

    def _drain_monitor(self, g: Good) -> None:
        service = self.router.realms["realm1"].meta.service.id
        for msg in g.peer.take():
            self._not_closed(g, msg)
            assert msg[0] == m.EVENT, f"{g.name}: unexpected {msg!r}"
            topic = g.meta_subs.get(msg[1])
            assert topic is not None, f"{g.name}: EVENT for a subscription it does not hold"
            publisher = msg[3].get("publisher")
            assert publisher in (None, service), f"meta event {topic} forged by a client: {msg!r}"
            assert topic != "fastwamp.session.on_overflow", f"forged meta event: {msg!r}"
            args = msg[4] if len(msg) > 4 else None
            if (topic == "wamp.session.on_leave" and type(args) is list and args
                    and type(args[0]) is int):
                assert args[0] not in self.router.sessions, (
                    f"on_leave for session {args[0]}, which is still connected: {msg!r}")

    def _drain_hostile(self, h: LinkedPeer) -> None:
        for msg in h.take():
            if msg[0] == m.ERROR:
                assert not internal(msg[4]), f"hostile session got {msg!r}"
            elif msg[0] == m.ABORT:
                reason = msg[2]
                assert reason in HOSTILE_ABORTS or reason.startswith("fastwamp.error."), (
                    f"hostile session aborted with {msg!r}")
            elif msg[0] == m.GOODBYE and key(h) not in self.hostile_said_goodbye:
                raise AssertionError(f"a session was killed by a client: {msg!r}")
            elif msg[0] == m.INVOCATION:
                self.hostile_invs.setdefault(key(h), []).append(msg[1])
                args = msg[4] if len(msg) > 4 else None
                if (type(args) is list and args and type(args[0]) is list
                        and args[0][:1] == [NONCE]):
                    call = self.calls.get((args[0][1], args[0][2]))
                    if call is not None and "timeout" in msg[3]:
                        call.forwarded = True  # the hostile callee keeps the timeout

    # -- well-behaved callers --------------------------------------------------------------

    @rule(data=st.data(), timeout=st.sampled_from([None, 0, 50, 1000, 4000]),
          receive_progress=st.booleans(), streaming=st.sampled_from([False, False, True]))
    @step
    def call(self, data, timeout, receive_progress, streaming):
        g = data.draw(st.sampled_from(self.callers), label="caller")
        request = g.next()
        options: dict = {}
        if timeout is not None:
            options["timeout"] = timeout
        if receive_progress:
            options["receive_progress"] = True
        if streaming:
            options["progress"] = True
        effective = self._timeout(timeout) / 1000.0
        self.calls[(id(g.peer), request)] = Call(
            g.peer, request, self.clock.now + effective if effective else None, effective,
            receive_progress, streaming)
        g.peer.send([m.CALL, request, options, PROC, [[NONCE, id(g.peer), request]]])

    @precondition(lambda self: any(c.streaming for c in self._open_calls()))
    @rule(data=st.data(), final=st.booleans())
    @step
    def call_chunk(self, data, final):
        call = data.draw(st.sampled_from([c for c in self._open_calls() if c.streaming]),
                         label="call")
        call.streaming = not final
        call.caller.send([m.CALL, call.request, {} if final else {"progress": True}, PROC,
                          ["chunk"]])

    @precondition(lambda self: self._open_calls())
    @rule(data=st.data(), mode=st.sampled_from([None, "skip", "kill", "killnowait"]))
    @step
    def cancel(self, data, mode):
        call = data.draw(st.sampled_from(self._open_calls()), label="call")
        if not call.kill:  # a repeated CANCEL is ignored
            call.must_end_now = mode != "kill"  # killnowait is the default
            call.kill = mode == "kill"
        call.caller.send([m.CANCEL, call.request, {} if mode is None else {"mode": mode}])

    @rule(data=st.data(), which=st.sampled_from([
        "session.count", "session.get", "registration.match", "registration.lookup",
        "subscription.lookup", "subscription.get_events", "registration.list",
        "no.such.procedure"]))
    @step
    def meta_call(self, data, which):
        """A correct meta call (answered at once with a RESULT, or not_authorized for the
        procedures of trusted roles), or a call of a ``wamp.`` procedure that does not
        exist (no client pattern may capture it)."""
        self._good_meta(data.draw(st.sampled_from(self.callers), label="caller"), which)

    def _good_meta(self, g: Good, which: str) -> None:
        args: list = []
        kwargs: dict = {}
        if which == "session.get":
            args = [g.peer.session.id]
        elif which in ("registration.match", "registration.lookup"):
            args = [PROC, {"match": "exact"}] if which.endswith("lookup") else [PROC]
        elif which == "subscription.lookup":
            args = [TOPIC]
        elif which == "subscription.get_events":
            sub_ids = [s.sub_id for s in self.subscribers if s.sub_id is not None]
            if not sub_ids:
                return
            args, kwargs = [sub_ids[0]], {"limit": 3}
        expect = uris.NO_SUCH_PROCEDURE if which == "no.such.procedure" else "result"
        if which in ("session.get", "registration.list"):  # for trusted roles only
            expect = uris.NOT_AUTHORIZED
        request = g.next()
        self.calls[(id(g.peer), request)] = Call(g.peer, request, None, 0, False, False,
                                                 meta=expect)
        g.peer.send([m.CALL, request, {}, f"wamp.{which}", args, kwargs])

    # -- well-behaved callees --------------------------------------------------------------

    @precondition(lambda self: any(g.invs for g in self.callees))
    @rule(data=st.data(), how=st.sampled_from(["result", "result", "progress", "error",
                                               "unavailable"]))
    @step
    def answer(self, data, how):
        g = data.draw(st.sampled_from([g for g in self.callees if g.invs]), label="callee")
        inv_id = data.draw(st.sampled_from(sorted(g.invs)), label="invocation")
        self._answer(g, inv_id, how)

    def _answer(self, g: Good, inv_id: int, how: str) -> None:
        inv = g.invs[inv_id]
        if inv.kill:
            how = "canceled"
        if how == "progress" and not inv.receive_progress:
            how = "result"
        if how == "progress":
            g.peer.send([m.YIELD, inv_id, {"progress": True}, ["partial"]])
            return
        del g.invs[inv_id]
        if how == "result":
            g.peer.send([m.YIELD, inv_id, {}, ["done"]])
        elif how == "error":
            g.peer.send([m.ERROR, m.INVOCATION, inv_id, {}, "com.app.error", ["no"]])
        elif how == "canceled":
            g.peer.send([m.ERROR, m.INVOCATION, inv_id, {}, uris.CANCELED])
        else:
            g.peer.send([m.ERROR, m.INVOCATION, inv_id, {}, uris.UNAVAILABLE])

    @precondition(lambda self: len(self.callees) < 3)
    @rule()
    @step
    def callee_joins(self):
        g = self._join(f"callee{len(self.callees)}+")
        self.callees.append(g)
        self._register(g, PROC, {"invoke": self.policy})

    @precondition(lambda self: self.callees)
    @rule(data=st.data(), goodbye=st.booleans())
    @step
    def callee_leaves(self, data, goodbye):
        g = data.draw(st.sampled_from(self.callees), label="callee")
        self._drain_callee(g)
        self.callees.remove(g)
        if goodbye:
            g.peer.send([m.GOODBYE, {}, uris.CLOSE_NORMAL])
            assert g.peer.take() == [[m.GOODBYE, {}, uris.CLOSE_GOODBYE_AND_OUT]]
        else:
            g.peer.disconnect()

    # -- well-behaved publish/subscribe ------------------------------------------------------

    @rule(acknowledge=st.booleans(), retain=st.booleans())
    @step
    def publish(self, acknowledge, retain):
        self.publications += 1
        n = self.publications
        for s in self.subscribers:
            if s.sub_id is not None:
                s.expected.add(n)
        request = self.publisher.next()
        if acknowledge:
            self.publisher.acks[request] = 0
        self.publisher.peer.send([m.PUBLISH, request, {"acknowledge": acknowledge,
                                                       "retain": retain},
                                  TOPIC, [n], {NONCE: n}])

    @rule(data=st.data(), get_retained=st.booleans())
    @step
    def toggle_subscription(self, data, get_retained):
        g = data.draw(st.sampled_from(self.subscribers), label="subscriber")
        self._drain_subscriber(g)
        if g.sub_id is None:
            self._subscribe(g, get_retained)
        else:
            reply = self._request(g, [m.UNSUBSCRIBE, g.next(), g.sub_id])
            assert reply[0] == m.UNSUBSCRIBED, reply
            g.sub_id = None

    # -- time ---------------------------------------------------------------------------

    @rule(seconds=st.sampled_from([0.0, 0.03, 0.06, 1.1, 6.0]))
    @step
    def time_passes(self, seconds):
        self.clock.advance(seconds)

    # -- hostile sessions -----------------------------------------------------------------

    @precondition(lambda self: len(self.hostiles) < 6)
    @rule(hello=st.sampled_from(["good", "random", "none"]))
    @step
    def hostile_connects(self, hello):
        self._connect_hostile(hello)

    @rule(data=st.data())
    @step
    def hostile_sends(self, data):
        """Anything at all."""
        h = self._hostile(data)
        msg = materialize(data.draw(HOSTILE_MESSAGES, label="message"), self._ids(h))
        if type(msg) is list and msg and msg[0] == m.GOODBYE:
            self.hostile_said_goodbye.add(key(h))
        h.send(msg)

    @rule(data=st.data(), procedure=st.sampled_from(sorted(META_PROCEDURES)))
    @step
    def hostile_meta_call(self, data, procedure):
        """A meta procedure with random arguments: whatever they are, it is answered."""
        h = self._hostile(data)
        msg = materialize(data.draw(META_CALLS[procedure], label="message"), self._ids(h))
        msg[1] = request = next(self.hostile_requests)  # unique: one answer expected
        h.send(msg)
        if h.session.state is not ESTABLISHED:
            return  # it was not, or a protocol violation (Arguments not a list) closed it
        replies = [r for r in h.received if (r[0] == m.RESULT and r[1] == request)
                   or (r[0] == m.ERROR and r[1] == m.CALL and r[2] == request)]
        assert len(replies) == 1, f"meta call answered {len(replies)} times: {replies!r}"

    @rule(data=st.data(), code=st.sampled_from([m.REGISTER, m.SUBSCRIBE]))
    @step
    def hostile_pattern(self, data, code):
        """A REGISTER or SUBSCRIBE of a pattern over the good URIs or a reserved namespace."""
        h = self._hostile(data)
        h.send(materialize(data.draw(pattern_requests[code], label="message"), self._ids(h)))

    @rule(data=st.data())
    @step
    def hostile_calls(self, data):
        """A CALL of a URI as deep as the deepest pattern, or of the good procedure."""
        h = self._hostile(data)
        uri = data.draw(weighted((1, st.just(BIGS[1])), (9, st.sampled_from(
            [PROC, "com.good.final.0", "com.hist.a", "wamp.nope", "fastwamp.nope"]))),
            label="uri")
        options = data.draw(st.sampled_from([{}, {"timeout": 1}, {"receive_progress": True}]),
                            label="options")
        h.send(materialize([m.CALL, next(self.hostile_requests), options, uri, ["x"]], {}))

    @rule(data=st.data())
    @step
    def hostile_publishes(self, data):
        h = self._hostile(data)
        h.send(materialize(data.draw(publication, label="message"), self._ids(h)))

    @precondition(lambda self: any(self.hostile_invs.get(key(h)) for h in self.hostiles))
    @rule(data=st.data())
    @step
    def hostile_answers(self, data):
        """A hostile callee answers (or half-answers) one of its invocations."""
        callees = [h for h in self.hostiles if self.hostile_invs.get(key(h))]
        h = callees[data.draw(st.sampled_from(range(len(callees))), label="hostile callee")]
        invs = self.hostile_invs[key(h)]
        invocation = data.draw(st.sampled_from(invs), label="invocation")
        msg = materialize(data.draw(answers, label="message"), self._ids(h))
        msg[1 if msg[0] == m.YIELD else 2] = invocation
        if msg[0] == m.ERROR or not msg[2].get("progress"):
            invs.remove(invocation)
        h.send(msg)

    @precondition(lambda self: self.hostiles)
    @rule(data=st.data(), how=st.sampled_from(["disconnect", "goodbye", "abort"]))
    @step
    def hostile_leaves(self, data, how):
        h = self._pick_hostile(data)
        self.hostiles.remove(h)
        if how == "goodbye":
            h.send([m.GOODBYE, {"message": "bye\nforged"}, "wamp.close.normal"])
        elif how == "abort":
            h.send([m.ABORT, {"message": "x" * 1000}, "com.hostile.\n.reason"])
        h.disconnect()
        h.received.clear()

    # -- the end ------------------------------------------------------------------------

    def teardown(self):
        if hasattr(self, "saved_rng"):
            router_ids.use_generator(self.saved_rng)
            logging.getLogger("fastwamp").removeHandler(self.errors)
        if not self.healthy:
            return  # a step failed: that is the report
        self.healthy = False
        self._round_trip()
        for h in list(self.hostiles):
            h.disconnect()
        self.hostiles.clear()
        for _ in range(6):
            self.check()
            for g in self.callees:
                for inv_id in sorted(g.invs):
                    self._answer(g, inv_id, "result")
            self.clock.advance(10.0)
        self.check()
        open_calls = self._open_calls()
        assert not open_calls, f"calls never answered: {[c.request for c in open_calls]}"
        for s in self.subscribers:
            missing = s.expected - s.got
            assert not missing, f"{s.name} never got publications {sorted(missing)}"
        assert all(self.publisher.acks.values()), "acknowledged PUBLISH without PUBLISHED"

    def _round_trip(self) -> None:
        """Every well-behaved session still connected still sends and receives."""
        self.check()
        if not self.callees:
            self.callees.append(self._join("fresh-callee"))
        for i, g in enumerate(self.callees):
            assert self._register(g, f"com.good.final.{i}", {}), g.name
        for caller in self.callers:
            for i, g in enumerate(self.callees):
                request = caller.next()
                self.calls[(id(caller.peer), request)] = Call(caller.peer, request, None, 0,
                                                              False, False)
                before = set(g.invs)
                caller.peer.send([m.CALL, request, {}, f"com.good.final.{i}"])
                self.check()
                new = set(g.invs) - before
                assert len(new) == 1, f"{g.name} got no INVOCATION from {caller.name}"
                self._answer(g, new.pop(), "result")
                self.check()
                assert self.calls[(id(caller.peer), request)].answered, (
                    f"{caller.name} got no answer from {g.name}")
            self._good_meta(caller, "session.count")
            self.check()
        for s in self.subscribers:
            if s.sub_id is None:
                self._subscribe(s, False)
        self.publish(acknowledge=True, retain=False)
        for s in self.subscribers:
            assert self.publications in s.got, f"{s.name} no longer receives events"
        if "wamp.session.on_join" in self.monitor.meta_subs.values():
            before = len(self.monitor.peer.received)
            fresh = self._join("fresh")
            assert len(self.monitor.peer.received) > before, "the monitor no longer receives"
            self.check()
            fresh.peer.disconnect()
            self.check()


RouterFuzz.TestCase.settings = settings(
    max_examples=150, stateful_step_count=50, deadline=None,
    # No "explain" phase: its tracing makes a failing run take minutes on Python < 3.12.
    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink],
    # One bug at a time: shrinking every distinct failure of a broken router takes minutes.
    report_multiple_bugs=False,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
TestRouterFuzz = RouterFuzz.TestCase
