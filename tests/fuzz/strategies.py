"""Hostile input for the fuzz suite: random values, URIs, options and messages.

Values are what a decoder could hand the router (None, bools, ints of any size,
floats with NaN and infinities, strings, bytes, lists, dicts) plus a few large
ones.  Every strategy here is built once: what depends on the router's state
(ids of sessions, registrations, subscriptions, invocations) is drawn as a
:class:`Ref` placeholder, and large values as :class:`Big` placeholders (short
in a falsifying example); :func:`materialize` turns both into real values just
before the message is sent.
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from fastwamp.wamp import messages as m

PROC = "com.good.proc"
TOPIC = "com.good.topic"

#: Kinds of ids a message may aim at (see Ref).
ID_KINDS = ("session", "registration", "subscription", "invocation")


def weighted(*choices: tuple[int, st.SearchStrategy]) -> st.SearchStrategy:
    """One of the strategies, picked with the given weights (``st.one_of`` does not
    weigh repeated branches)."""
    table = [strategy for weight, strategy in choices if weight for _ in range(weight)]
    return st.sampled_from(range(len(table))).flatmap(table.__getitem__)


class Big:
    """A large value, printed by name."""

    __slots__ = ("name", "value")

    def __init__(self, name: str, value: Any) -> None:
        self.name = name
        self.value = value

    def __repr__(self) -> str:
        return f"Big({self.name})"


class Ref:
    """The ``index``-th id of a kind the router holds when the message is sent
    (``kind`` None: of any kind)."""

    __slots__ = ("kind", "index")

    def __init__(self, kind: str | None, index: int) -> None:
        self.kind = kind
        self.index = index

    def __repr__(self) -> str:
        return f"Ref({self.kind or 'any'}#{self.index})"


BIGS = [
    Big("200k_empty_components", "." * 200_000),
    Big("200k_components", "a." * 200_000 + "a"),
    Big("100k_chars", "x" * 100_000),
    Big("2k_components", "c." * 2_000 + "c"),
    Big("100k_ints", list(range(1, 100_001))),
    Big("100k_strs", [str(i) for i in range(100_000)]),
    Big("10k_dict", {str(i): i for i in range(10_000)}),
]


def materialize(obj: Any, ids: dict[str, list[int]], depth: int = 0) -> Any:
    """``obj`` with every :class:`Big` replaced by its value and every :class:`Ref` by an
    id from ``ids`` (kind -> ids; drawn values are small, so this is cheap)."""
    kind = type(obj)
    if kind is Big:
        return obj.value
    if kind is Ref:
        pool = ids.get(obj.kind) if obj.kind else None
        if not pool:
            pool = [i for values in ids.values() for i in values] or [1]
        return pool[obj.index % len(pool)]
    if depth > 20:
        return obj
    if kind is list:
        return [materialize(v, ids, depth + 1) for v in obj]
    if kind is dict:
        return {k: materialize(v, ids, depth + 1) for k, v in obj.items()}
    return obj


BIG_INTS = [0, -1, 2**31, 2**32, 2**53, 2**53 + 1, 2**63 - 1, 2**63, 2**64, 2**64 + 1,
            -(2**63), -(2**63) - 1, 10**40, -(10**40)]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-2, max_value=6),
    st.sampled_from(BIG_INTS),
    st.integers(),
    st.floats(),  # NaN and infinities included
    st.text(max_size=8),
    st.binary(max_size=4),
)

values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=5), children, max_size=4),
    max_leaves=10,
)
#: Random values, sometimes a large one.
any_values = values | st.sampled_from(BIGS)

# -- identifiers ---------------------------------------------------------------------------


def refs(kind: str | None = None) -> st.SearchStrategy[Ref]:
    return st.builds(Ref, st.just(kind), st.integers(min_value=0, max_value=63))


def id_values(kind: str | None = None) -> st.SearchStrategy:
    """Ids a hostile client might send: ids the router holds (of ``kind``, or of any
    kind), small ones, random ones, edge values."""
    return weighted((6, refs(kind)),
                    (4, st.integers(min_value=1, max_value=20)),
                    (2, st.integers(min_value=1, max_value=2**53)),
                    (1, st.sampled_from(BIG_INTS + [1, 2**53])))


ids = id_values()
#: Request ids: valid, mostly.
request_ids = weighted((15, ids), (1, values))

# -- URIs ---------------------------------------------------------------------------------

URIS = [
    "", ".", "..", "a..b", ".a", "a.", "a", "com", "com.good", "com.good.", PROC, TOPIC,
    "com.good.proc.x", "com.hist", "com.hist.a", "com.other.thing", "a b", "a#b", "A.B",
    "\u00fc.\u00f1.\u4e2d", "\x00", "\ud800", "wamp", "wam", "wamp.", "wamp.x",
    "wamp.session.on_leave", "wamp.session.on_join", "wamp.session.kill",
    "wamp.registration.on_create", "wamp.subscription.on_subscribe", "wamp.session.count",
    "fastwamp", "fastwamp.session.on_overflow", "fastwamp.router.get_stats",
    "fastwamp.x.y", "wamp.error.invalid_uri", "wamp.close.killed",
]
uris = weighted(
    (6, st.sampled_from(URIS)),
    (2, st.lists(st.sampled_from(["", "a", "com", "good", "wamp", "fastwamp", "x y", "\u00e9"]),
                 min_size=1, max_size=5).map(".".join)),
    (1, st.text(max_size=12)),
    (1, st.sampled_from([b for b in BIGS if isinstance(b.value, str)])),
)
#: URIs, rarely something that is not a string at all.
uri_or_junk = weighted((12, uris), (1, values))

# -- options ------------------------------------------------------------------------------

OPTION_KEYS = [
    "timeout", "receive_progress", "progress", "disclose_me", "disclose_caller",
    "exclude_me", "eligible", "exclude", "eligible_authid", "exclude_authid",
    "eligible_authrole", "exclude_authrole", "match", "invoke", "retain", "get_retained",
    "get_publisher", "acknowledge", "mode", "forward_timeout", "reason", "message",
    "concurrency", "rkey", "nkey", "ppt_scheme",
]
_OPTION_VALUES = {
    "timeout": st.sampled_from([0, 1, 50, 1000, -1, -(2**70), 2**53, 2**64, 10**30, 1.5,
                                float("inf"), float("nan"), "100", True]),
    "eligible": st.lists(id_values("session") | values, max_size=4) | st.sampled_from(BIGS[4:6]),
    "match": st.sampled_from(["exact", "prefix", "wildcard", "", "regex", "EXACT"]),
    "invoke": st.sampled_from(["single", "roundrobin", "random", "first", "last",
                               "least_inflight", "p2c", "bogus"]),
    "mode": st.sampled_from(["skip", "kill", "killnowait", "", "bogus"]),
    "reason": uris,
}
_OPTION_VALUES["exclude"] = _OPTION_VALUES["eligible"]
for _key in ("eligible_authid", "exclude_authid", "eligible_authrole", "exclude_authrole"):
    _OPTION_VALUES[_key] = (
        st.lists(st.sampled_from(["anonymous", "trusted", ""]) | values, max_size=4)
        | st.sampled_from(BIGS[4:6]))
#: For each key: a plausible value or a random one.
OPTION_VALUES = {key: _OPTION_VALUES.get(key, st.booleans()) | any_values
                 for key in OPTION_KEYS}


@st.composite
def _options(draw: st.DrawFn) -> dict:
    out: dict = {}
    for key in draw(st.lists(st.sampled_from(OPTION_KEYS), max_size=5, unique=True)):
        out[key] = draw(OPTION_VALUES[key])
    if draw(st.booleans()):
        out.update(draw(st.dictionaries(st.text(max_size=6), values, max_size=2)))
    return out


#: An options/details dict: known keys with plausible or random values, random keys.
options = _options()

# -- meta procedure arguments ------------------------------------------------------------------

META_KWARG_NAMES = [
    "filter_authroles", "session_id", "reason", "message", "authid", "authrole", "topic",
    "args", "kwargs", "publish_options", "scope", "uri", "options", "reg_id", "sub_id",
    "limit", "reverse", "from_time", "after_time", "before_time", "until_time",
    "from_publication", "after_publication", "before_publication", "until_publication",
    "caller", "details",
]

#: One argument of a meta procedure: plausible (ids, URIs, option dicts, role lists,
#: scopes, times) or random.
meta_arg = st.one_of(
    ids,
    uris,
    options,
    st.lists(st.sampled_from(["anonymous", "trusted", "user"]) | values, max_size=3),
    st.sampled_from(["destroyed", "detached", "both", "2026-01-01T00:00:00Z", "not a time",
                     "anonymous", "trusted"]),
    any_values,
)


def meta_kwargs(names: list[str]) -> st.SearchStrategy[dict]:
    keys = weighted((8 if names else 0, st.sampled_from(names or [""])),
                    (1, st.sampled_from(META_KWARG_NAMES)), (1, st.text(max_size=6)))
    return st.dictionaries(keys, meta_arg, max_size=4)


@st.composite
def _meta_call(draw: st.DrawFn, procedure: str, lo: int, hi: int, names: list[str],
               first: str | None, kwargs_after: list[st.SearchStrategy]) -> list:
    msg = [m.CALL, draw(id_values()), draw(st.just({}) | options), procedure]
    if draw(st.sampled_from(range(10))):
        n = draw(weighted((4, st.sampled_from(range(lo, hi + 1))),
                          (1, st.sampled_from(range(6)))))
        args = draw(st.lists(meta_arg, min_size=n, max_size=n))
        if args and first and draw(st.booleans()):
            args[0] = draw(refs(first))
        msg.append(args)
        if n < len(kwargs_after) and (names[n:] and draw(st.booleans())
                                      or draw(st.sampled_from(range(4))) == 0):
            msg.append(draw(kwargs_after[n]))
    else:  # Arguments/ArgumentsKw of the wrong type
        msg.extend(draw(st.lists(any_values, max_size=2)))
    return msg


def meta_call(procedure: str, signature: tuple[int, int, list[str]]) -> st.SearchStrategy[list]:
    """A CALL of a meta ``procedure`` whose handler takes ``signature`` = (required
    positional arguments, most positional arguments, keyword names): random arguments,
    mostly in the right number and with the right names, the first often an id of the
    kind the procedure is about (wamp.session.* -> a session id...)."""
    lo, hi, names = signature
    kind = procedure.split(".")[1]
    first = kind if kind in ID_KINDS else None
    # Keywords for the parameters not given positionally, by number of positional ones.
    kwargs_after = [meta_kwargs(names[n:]) for n in range(7)]
    return _meta_call(procedure, lo, hi, names, first, kwargs_after)


@st.composite
def _testament_call(draw: st.DrawFn) -> list:
    request = draw(id_values())
    if draw(st.sampled_from(range(5))) == 0:
        return [m.CALL, request, {}, "wamp.session.flush_testaments", [],
                draw(st.dictionaries(st.just("scope"), meta_arg))]
    topic = draw(uris | st.sampled_from(["wamp.session.on_leave", TOPIC]))
    args = draw(weighted((4, st.lists(meta_arg, max_size=3)), (1, values)))
    kwargs = draw(weighted((4, st.dictionaries(st.text(max_size=4), values, max_size=2)),
                           (1, values)))
    kw: dict = {}
    if draw(st.booleans()):
        kw["publish_options"] = draw(weighted((4, options), (1, values)))
    if draw(st.booleans()):
        kw["scope"] = draw(st.sampled_from(["destroyed", "detached"]) | values)
    return [m.CALL, request, {}, "wamp.session.add_testament", [topic, args, kwargs], kw]


#: A CALL of wamp.session.add_testament (or flush) with random but plausible arguments.
testament_call = _testament_call()

# -- whole messages ------------------------------------------------------------------------------

CODES = [1, 2, 3, 4, 5, 6, 7, 8, 16, 17, 32, 33, 34, 35, 36, 48, 49, 50, 64, 65, 66, 67, 68,
         69, 70, 255]
codes = st.one_of(
    st.sampled_from(CODES),
    st.sampled_from(BIG_INTS),
    st.integers(),
    st.floats(),
    st.text(max_size=4),
    st.sampled_from([True, None, "48", 48.0, [48]]),
)


def _payload(draw: st.DrawFn) -> list:
    """Optional Arguments and ArgumentsKw (rarely of the wrong type)."""
    n = draw(st.sampled_from(range(3)))
    tail: list = []
    if n >= 1:
        tail.append(draw(weighted((12, st.lists(any_values, max_size=3)), (1, values))))
    if n >= 2:
        tail.append(draw(weighted(
            (12, st.dictionaries(st.text(max_size=4), any_values, max_size=3)), (1, values))))
    return tail


_roles = st.dictionaries(
    st.sampled_from(["caller", "callee", "publisher", "subscriber", "broker"]),
    values | options, max_size=4) | values
_invocations = id_values("invocation")


@st.composite
def _structured(draw: st.DrawFn) -> Any:
    code = draw(st.sampled_from([1, 3, 5, 6, 8, 8, 8, 16, 16, 16, 32, 32, 32, 34, 48, 48,
                                 48, 48, 49, 49, 64, 64, 64, 66, 70, 70, 70]))
    if code == m.HELLO:
        details = draw(options)
        if draw(st.booleans()):
            details["roles"] = draw(_roles)
        msg = [code, draw(st.sampled_from(["realm1", "realm2", "nope"]) | uri_or_junk),
               details]
    elif code in (m.ABORT, m.GOODBYE):
        msg = [code, draw(options), draw(uri_or_junk)]
    elif code == m.AUTHENTICATE:
        msg = [code, draw(st.text(max_size=8)), draw(options)]
    elif code == m.ERROR:
        msg = [code, draw(weighted((8, st.sampled_from([68, 68, 69, 48, 16, 64, 0])),
                                   (1, codes))),
               draw(_invocations), draw(options), draw(uri_or_junk), *_payload(draw)]
    elif code in (m.PUBLISH, m.CALL):
        msg = [code, draw(request_ids), draw(options), draw(uri_or_junk), *_payload(draw)]
    elif code in (m.SUBSCRIBE, m.REGISTER):
        msg = [code, draw(request_ids), draw(options), draw(uri_or_junk)]
    elif code == m.UNSUBSCRIBE:
        msg = [code, draw(request_ids), draw(id_values("subscription") | values)]
    elif code == m.UNREGISTER:
        msg = [code, draw(request_ids), draw(id_values("registration") | values)]
    elif code == m.CANCEL:
        msg = [code, draw(request_ids), draw(options)]
    else:  # YIELD
        msg = [code, draw(_invocations), draw(options), *_payload(draw)]
    # Sometimes break the layout: a wrong element, one too many, one too few.
    how = draw(st.sampled_from(range(30)))
    if how == 0:
        msg[draw(st.integers(1, len(msg) - 1))] = draw(any_values)
    elif how == 1:
        msg.append(draw(any_values))
    elif how == 2:
        msg.pop()
    return msg


#: A message of a type a client may send, with its layout mostly right.
structured = _structured()


@st.composite
def _raw(draw: st.DrawFn) -> Any:
    if draw(st.sampled_from(range(6))) == 0:
        return draw(values)  # not a message at all
    return [draw(codes), *draw(st.lists(any_values | uris, max_size=7))]


#: Anything: a random code and random elements, or not a list at all.
raw = _raw()


def hostile_messages(meta_procedures: dict[str, tuple[int, int, list[str]]]
                     ) -> st.SearchStrategy:
    """Any message a hostile client could send; ``meta_procedures`` maps each meta
    procedure to its signature (see meta_call)."""
    meta_calls = st.sampled_from([meta_call(name, signature)
                                  for name, signature in sorted(meta_procedures.items())])
    return weighted((4, structured), (4, meta_calls.flatmap(lambda s: s)),
                    (1, testament_call), (1, raw))


# -- hostile sessions that follow the message layout --------------------------------------------

#: Patterns a hostile callee or subscriber might try: they overlap the good sessions'
#: URIs and the reserved namespaces.
PATTERNS = ["", "com", "com.good", "com.good.", PROC, TOPIC, "com..proc", ".good.", "..",
            "com.good.final", "wam", "wamp", "wamp.", "wamp.session", "wamp..count",
            "fastwamp", "fastwamp.", "fastwamp.router", "fastwamp.session.on_overflow",
            "wamp.session.on_leave", "com.hist", "com.hist.a"]


def _pattern_request(code: int) -> st.SearchStrategy[list]:
    opts = weighted((3, st.fixed_dictionaries({}, optional={
        "match": st.sampled_from(["exact", "prefix", "wildcard"]),
        "invoke": st.sampled_from(["single", "roundrobin", "random", "first", "last",
                                   "least_inflight", "p2c"]),
        "forward_timeout": st.booleans(), "disclose_caller": st.booleans(),
        "get_retained": st.booleans(), "get_publisher": st.booleans(),
    })), (1, options))
    # A pattern deeper than any sane limit: it must be refused, or matched without
    # recursion as deep as the URI (a publication or call with as many components follows).
    deep = st.tuples(st.just(code), request_ids, st.just({"match": "wildcard"}),
                     st.sampled_from(BIGS[:2]))
    plain = st.tuples(st.just(code), request_ids, opts,
                      weighted((3, st.sampled_from(PATTERNS)), (1, uris)))
    return weighted((8, plain), (1, deep)).map(list)


#: A well-formed REGISTER or SUBSCRIBE of a pattern, with random options.
pattern_requests = {m.REGISTER: _pattern_request(m.REGISTER),
                    m.SUBSCRIBE: _pattern_request(m.SUBSCRIBE)}


@st.composite
def _publication(draw: st.DrawFn) -> list:
    opts = draw(weighted((3, st.fixed_dictionaries({}, optional={
        "acknowledge": st.booleans(), "retain": st.booleans(), "exclude_me": st.booleans(),
        "disclose_me": st.booleans(),
        "eligible": st.lists(id_values("session"), max_size=3),
        "exclude": st.lists(id_values("session"), max_size=3),
        "eligible_authrole": st.lists(st.sampled_from(["anonymous", "x"]), max_size=2),
        "exclude_authid": st.lists(st.text(max_size=3), max_size=2),
    })), (1, options)))
    topic = draw(weighted((6, st.sampled_from([TOPIC, "com.hist.a", "com.hist", "com.x",
                                               "fastwamp.session.on_overflow",
                                               "wamp.session.on_leave"])), (2, uris),
                          (1, st.sampled_from(BIGS[1:2]))))
    return [m.PUBLISH, draw(request_ids), opts, topic, *_payload(draw)]


#: A well-formed PUBLISH with random options and payload.
publication = _publication()


@st.composite
def _answer(draw: st.DrawFn) -> list:
    if draw(st.booleans()):
        return [m.YIELD, 0, draw(weighted(
            (3, st.fixed_dictionaries({}, optional={"progress": st.booleans()})),
            (1, options))), *_payload(draw)]
    # (Not wamp.error.internal_error: the router relays a callee's error URI as it is, and
    # the tests take that URI from the router as the sign of a bug.)
    error = draw(weighted((2, st.sampled_from(["wamp.error.unavailable", "wamp.error.canceled",
                                               "com.app.error", "wamp.error.timeout"])),
                          (1, uris)))
    return [m.ERROR, m.INVOCATION, 0, draw(options), error, *_payload(draw)]


#: A hostile callee's answer (YIELD or ERROR) to an invocation, anything but well-formed;
#: its invocation id is 0, to be set.
answers = _answer()
