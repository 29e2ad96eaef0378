"""Broker behaviour as message scripts through the sans-I/O core."""

from __future__ import annotations

from fastwamp.wamp import messages as m


def subscribe(p, topic, request=1, **options):
    p.send([m.SUBSCRIBE, request, options, topic])
    reply = p.take_one()
    assert reply[0] == m.SUBSCRIBED, reply
    return reply[2]


def test_publish_to_several_subscribers(peer):
    subs = [peer() for _ in range(3)]
    pub = peer()
    ids = {subscribe(s, "com.t") for s in subs}
    assert len(ids) == 1  # shared per (topic, match)
    pub.send([m.PUBLISH, 1, {}, "com.t", ["hi"], {"k": 1}])
    assert pub.take() == []
    for s in subs:
        ev = s.take_one()
        assert ev[0] == m.EVENT and ev[1] in ids and ev[3] == {} and ev[4:] == [["hi"], {"k": 1}]


def test_acknowledged_publish(peer):
    pub = peer()
    pub.send([m.PUBLISH, 5, {"acknowledge": True}, "com.t"])
    ack = pub.take_one()
    assert ack[0] == m.PUBLISHED and ack[1] == 5 and 1 <= ack[2] <= 2**53
    pub.send([m.PUBLISH, 6, {"acknowledge": True}, "com..t"])
    assert pub.take_one()[4] == "wamp.error.invalid_uri"
    pub.send([m.PUBLISH, 7, {"acknowledge": True}, "wamp.session.on_join"])
    assert pub.take_one()[4] == "wamp.error.not_authorized"
    pub.send([m.PUBLISH, 8, {}, "com..t"])  # unacknowledged errors are silent
    assert pub.take() == []


def test_exclude_me(peer):
    p = peer()
    subscribe(p, "com.chat")
    p.send([m.PUBLISH, 2, {}, "com.chat", ["mine"]])
    assert p.take() == []
    p.send([m.PUBLISH, 3, {"exclude_me": False}, "com.chat", ["mine"]])
    assert p.take_one()[4] == ["mine"]


def test_black_and_white_lists(peer):
    a, b, c = peer(), peer(), peer()
    pub = peer()
    for s in (a, b, c):
        subscribe(s, "com.t")
    ida, idb = a.session.id, b.session.id
    pub.send([m.PUBLISH, 1, {"eligible": [ida, idb], "exclude": [idb]}, "com.t"])
    assert len(a.take()) == 1 and b.take() == [] and c.take() == []
    pub.send([m.PUBLISH, 2, {"eligible_authid": [c.session.authid]}, "com.t"])
    assert a.take() == [] and b.take() == [] and len(c.take()) == 1
    pub.send([m.PUBLISH, 3, {"exclude_authrole": ["anonymous"]}, "com.t"])
    assert a.take() == b.take() == c.take() == []
    pub.send([m.PUBLISH, 4, {"eligible_authrole": ["anonymous"]}, "com.t"])
    assert len(a.take()) == len(b.take()) == len(c.take()) == 1
    pub.send([m.PUBLISH, 5, {"acknowledge": True, "eligible": "x"}, "com.t"])
    assert pub.take_one()[4] == "wamp.error.invalid_argument"


def test_publisher_disclosure(peer):
    s, pub = peer(), peer()
    subscribe(s, "com.t")
    pub.send([m.PUBLISH, 1, {"disclose_me": True}, "com.t"])
    details = s.take_one()[3]
    assert details == {"publisher": pub.session.id, "publisher_authid": pub.session.authid,
                       "publisher_authrole": "anonymous"}


def test_pattern_subscriptions_one_event_each(peer):
    s, pub = peer(), peer()
    exact = subscribe(s, "com.myapp.users.created", 1)
    prefix = subscribe(s, "com.myapp.users.", 2, match="prefix")
    wild = subscribe(s, "com..users.created", 3, match="wildcard")
    pub.send([m.PUBLISH, 1, {}, "com.myapp.users.created", [1]])
    events = s.take()
    assert sorted(e[1] for e in events) == sorted([exact, prefix, wild])
    assert len({e[2] for e in events}) == 1
    by_sub = {e[1]: e[3] for e in events}
    assert by_sub[exact] == {}
    assert by_sub[prefix] == {"topic": "com.myapp.users.created"}
    assert by_sub[wild] == {"topic": "com.myapp.users.created"}


def test_resubscribe_returns_same_id_and_unsubscribe(peer):
    s, pub = peer(), peer()
    sid = subscribe(s, "com.t", 1)
    assert subscribe(s, "com.t", 2) == sid
    s.send([m.UNSUBSCRIBE, 3, sid])
    assert s.take_one() == [m.UNSUBSCRIBED, 3]
    s.send([m.UNSUBSCRIBE, 4, sid])
    assert s.take_one()[4] == "wamp.error.no_such_subscription"
    pub.send([m.PUBLISH, 1, {}, "com.t"])
    assert s.take() == []


def test_subscriber_leaving_is_removed(peer):
    s, pub = peer(), peer()
    subscribe(s, "com.t")
    s.disconnect()
    pub.send([m.PUBLISH, 1, {"acknowledge": True}, "com.t"])
    assert pub.take_one()[0] == m.PUBLISHED


def test_retained_event_delivered_after_subscribed(peer):
    pub = peer()
    pub.send([m.PUBLISH, 1, {"retain": True}, "com.status", ["old"]])
    pub.send([m.PUBLISH, 2, {"retain": True}, "com.status", ["latest"], {"v": 2}])
    pub.send([m.PUBLISH, 3, {}, "com.status", ["not retained"]])
    s = peer()
    s.send([m.SUBSCRIBE, 1, {"get_retained": True}, "com.status"])
    subscribed, event = s.take()
    assert subscribed[0] == m.SUBSCRIBED
    assert event[0] == m.EVENT and event[1] == subscribed[2]
    assert event[3] == {"retained": True} and event[4:] == [["latest"], {"v": 2}]
    late = peer()
    late.send([m.SUBSCRIBE, 1, {}, "com.status"])
    assert len(late.take()) == 1  # no get_retained: no retained event


def test_retained_event_for_pattern_subscription_and_eligibility(peer):
    pub, s, other = peer(), peer(), peer()
    pub.send([m.PUBLISH, 1, {"retain": True, "eligible": [s.session.id]}, "com.a.x", [1]])
    s.send([m.SUBSCRIBE, 1, {"get_retained": True, "match": "prefix"}, "com.a."])
    _, event = s.take()
    assert event[3] == {"retained": True, "topic": "com.a.x"}
    other.send([m.SUBSCRIBE, 1, {"get_retained": True}, "com.a.x"])
    assert len(other.take()) == 1  # not eligible for the retained event


def test_wampy_undefined_option_values_are_ignored(peer):
    import msgpack

    s = peer()
    s.send([m.SUBSCRIBE, 1, {"get_retained": msgpack.ExtType(0, b"")}, "com.t"])
    assert s.take_one()[0] == m.SUBSCRIBED


def test_unreadable_match_option_means_exact(peer):
    import msgpack

    s, pub = peer(), peer()
    undefined = msgpack.ExtType(0, b"\x00")
    s.send([m.SUBSCRIBE, 1, {"match": undefined, "get_retained": undefined}, "a.b"])
    assert s.take_one()[0] == m.SUBSCRIBED
    pub.send([m.PUBLISH, 1, {}, "a.b"])
    assert s.take_one()[0] == m.EVENT


def test_get_publisher_subscriber_side_disclosure(peer):
    asks, plain, pub = peer(), peer(), peer()
    sid = subscribe(asks, "com.t", get_publisher=True)
    assert subscribe(plain, "com.t") == sid
    pub.send([m.PUBLISH, 1, {}, "com.t"])
    assert asks.take_one()[3]["publisher"] == pub.session.id
    assert plain.take_one()[3] == {}


def test_default_disclosure_always_discloses_publisher():
    from fastwamp.config import default_config
    from fastwamp.testing import LinkedPeer, make_router

    router, _ = make_router(default_config())
    s, pub = LinkedPeer(router), LinkedPeer(router)
    s.hello()
    pub.hello()
    subscribe(s, "com.t")
    pub.send([m.PUBLISH, 1, {}, "com.t"])
    assert s.take_one()[3]["publisher"] == pub.session.id


def test_disclosure_never_refuses_disclose_me(config):
    from fastwamp.testing import LinkedPeer, make_router

    config.realms[0].disclosure = "never"
    router, _ = make_router(config)
    pub = LinkedPeer(router)
    pub.hello()
    pub.send([m.PUBLISH, 1, {"disclose_me": True, "acknowledge": True}, "com.t"])
    assert pub.take_one()[4] == "wamp.error.option_disallowed.disclose_me"


def test_large_fanout_is_chunked_and_keeps_publication_order(router, clock, peer):
    from fastwamp.router.broker import FANOUT_CHUNK
    from fastwamp.testing import LinkedPeer

    n = FANOUT_CHUNK * 2 + 10
    subs = []
    for _ in range(n):
        s = LinkedPeer(router)
        s.hello()
        s.send([m.SUBSCRIBE, 1, {}, "com.big"])
        s.take()
        subs.append(s)
    bystander_callee, bystander_caller = peer(), peer()
    bystander_callee.send([m.REGISTER, 1, {}, "com.ping"])
    bystander_callee.take()
    pub = peer()
    pub.send([m.PUBLISH, 1, {}, "com.big", ["first"]])
    pub.send([m.PUBLISH, 2, {}, "com.big", ["second"]])
    assert all(s.received == [] for s in subs)  # queued for the next turns of the loop
    # Another session is served between chunks.
    bystander_caller.send([m.CALL, 1, {}, "com.ping"])
    assert bystander_callee.take_one()[0] == m.INVOCATION
    assert clock.step()
    served = sum(1 for s in subs if s.received)
    assert served == FANOUT_CHUNK
    while clock.step():
        pass
    for s in subs:
        assert [e[4] for e in s.take()] == [["first"], ["second"]]


def test_event_is_encoded_once_per_serializer(peer):
    from fastwamp.wamp.serializers import MsgpackSerializer, SharedMessage

    subs = [peer() for _ in range(3)]
    pub = peer()
    for s in subs:
        subscribe(s, "com.t")
    pub.send([m.PUBLISH, 1, {}, "com.t", ["x"]])
    events = [s.take_one() for s in subs]
    assert all(e is events[0] for e in events) and type(events[0]) is SharedMessage
    ser_a, ser_b = MsgpackSerializer(), MsgpackSerializer()
    assert ser_a.encode(events[0]) is ser_b.encode(events[1])


def test_retained_topics_are_bounded(config):
    from fastwamp.testing import LinkedPeer, make_router

    config.realms[0].retained_topics_max = 3
    router, _ = make_router(config)
    pub = LinkedPeer(router)
    pub.hello()
    for i in range(5):
        pub.send([m.PUBLISH, i + 1, {"retain": True}, f"com.t{i}", [i]])
    pub.send([m.PUBLISH, 6, {"retain": True}, "com.t2", ["again"]])  # t2 becomes the newest
    pub.send([m.PUBLISH, 7, {"retain": True}, "com.t5", [5]])
    assert list(router.realms["realm1"].broker.retained) == ["com.t4", "com.t2", "com.t5"]
