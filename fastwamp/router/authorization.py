"""Authorization of a realm: roles, permissions on URI patterns, the meta API's
protection, and rate limits.  One step of :meth:`Realm.dispatch` (the ``authorize``
hook); nothing here touches the dealer's or broker's routing.

Rules.  A role holds permissions on ``(uri, match)`` patterns; the rule that governs
a concrete URI is the most specific one, with the dealer's precedence: the exact
rule, else the longest (string) prefix rule, else the best wildcard rule.  Only the
governing rule counts: a more specific rule may allow less than a broader one.  A URI
no rule governs allows nothing.

Patterns.  SUBSCRIBE and REGISTER with ``match`` prefix or wildcard are allowed only if
*every* concrete URI the pattern can match is allowed for that action: the rules that
may govern any such URI must all allow it, and some rule must cover all of them (a
prefix rule that is a prefix of the pattern's fixed beginning, or for a wildcard
pattern, a wildcard rule as general).  So no event reaches a subscriber, and no call
a callee, that its role could not have subscribed to or registered exactly.  The
check may refuse a pattern whose unmatched corners are denied by a rule no URI of the
pattern can actually reach; it never allows one that could deliver a forbidden URI.

The reserved namespaces (``wamp.``, ``fastwamp.``).  Only rules whose URI lies in them
apply there (a ``prefix ""`` rule does not open the meta API).  Calls to meta
procedures are checked by :meth:`Authorization.may_call_meta` when the meta API serves
them (:mod:`fastwamp.router.meta`): trusted roles (``trusted = true``, or listed in
``admin_authroles``) may call every one; other roles may call those a role's own
reserved rule allows, else the public ones (:data:`PUBLIC_META_PROCEDURES`).  Meta
events may be subscribed by every role unless a reserved rule of the role says
otherwise.  REGISTER and PUBLISH there stay refused by the dealer and broker.

Disclosure.  ``disclose_caller`` / ``disclose_publisher`` on the governing rule make the
router act as if the caller or publisher had set ``disclose_me``: they add disclosure
on a realm with ``disclosure = "on_request"``, change nothing on ``"always"``, and are
refused by the configuration check on ``"never"``.

Rate limits.  Token buckets per session (realm keys ``session_*``) and per role (all
sessions of the role together) for CALL (continuations of a progressive call are not
counted) and PUBLISH; beyond them the request gets ``fastwamp.error.rate_limited`` (an
unacknowledged PUBLISH is dropped), counted in ``fastwamp.router.get_stats``.

Reload.  :meth:`Realm.reconfigure` builds a new :class:`Authorization`: every session is
held to the new rules from its next message, and registrations and subscriptions the
new rules no longer allow are revoked at once (:meth:`Authorization.revoke`), with the
meta events of an unregistration or unsubscription.

Dynamic authorizer.  With the realm key ``authorizer``, the requests of sessions whose
role is not in ``roles`` are decided by a procedure instead of being denied
(:mod:`fastwamp.router.dynamic_authorizer`).

A realm with no roles and no rate limits installs no hook at all.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from .._core.trie import UriTrie
from .._core.uri import MATCH_EXACT, MATCH_POLICIES, MATCH_PREFIX, MATCH_WILDCARD
from ..config import RoleConfig
from ..wamp import messages as m
from ..wamp import uris
from .dynamic_authorizer import DynamicAuthorizer
from .options import is_reserved, match_policy

if TYPE_CHECKING:
    from ..config import PermissionConfig, RealmConfig
    from .broker import Broker
    from .dealer import Dealer
    from .member import Member
    from .realm import Realm

#: A request went beyond a rate limit (session_calls_per_second, calls_per_second, ...).
RATE_LIMITED = "fastwamp.error.rate_limited"

# Bits of a decision (what the governing rule allows, and its disclosure switches).
ALLOW_CALL = 1
ALLOW_REGISTER = 2
ALLOW_PUBLISH = 4
ALLOW_SUBSCRIBE = 8
DISCLOSE_CALLER = 16
DISCLOSE_PUBLISHER = 32
ALLOW_ALL = ALLOW_CALL | ALLOW_REGISTER | ALLOW_PUBLISH | ALLOW_SUBSCRIBE

ACTION_BITS = {"call": ALLOW_CALL, "register": ALLOW_REGISTER, "publish": ALLOW_PUBLISH,
               "subscribe": ALLOW_SUBSCRIBE}
#: The action each request needs.
_REQUEST_BITS = {m.CALL: ALLOW_CALL, m.REGISTER: ALLOW_REGISTER, m.PUBLISH: ALLOW_PUBLISH,
                 m.SUBSCRIBE: ALLOW_SUBSCRIBE}
_ACTION_REQUESTS = {bit: code for code, bit in _REQUEST_BITS.items()}

#: Meta procedures every role may call unless a reserved rule of its own says otherwise:
#: read-only questions that name no session, and a session's own testaments.  The rest
#: (wamp.session.kill*, get, list, wamp.registration.list/get/list_callees,
#: wamp.subscription.list/get/list_subscribers, fastwamp.*) is for trusted roles.
PUBLIC_META_PROCEDURES = frozenset({
    "wamp.session.count",
    "wamp.session.add_testament",
    "wamp.session.flush_testaments",
    "wamp.registration.lookup",
    "wamp.registration.match",
    "wamp.registration.count_callees",
    "wamp.subscription.lookup",
    "wamp.subscription.match",
    "wamp.subscription.count_subscribers",
    "wamp.subscription.get_events",
})


class Rule:
    """One permission: a pattern and the bits it grants."""

    __slots__ = ("uri", "match", "bits")

    def __init__(self, uri: str, match: int, bits: int) -> None:
        self.uri = uri
        self.match = match
        self.bits = bits

    def __repr__(self) -> str:
        return f"Rule({self.uri!r}, {self.match}, {self.bits})"


def _wildcard_fits(pattern_parts: list[str], parts: list[str]) -> bool:
    """Whether the wildcard ``pattern_parts`` matches the concrete ``parts``."""
    if len(pattern_parts) != len(parts):
        return False
    return all(not p or p == c for p, c in zip(pattern_parts, parts, strict=True))


class RuleSet:
    """Permissions on URI patterns, matched with the dealer's precedence.

    Besides the trie that finds the rule governing a concrete URI, three indexes keep
    the check of a pattern (:meth:`pattern_bits`) from walking every rule: the exact and
    prefix rules sorted by URI (those starting with a given text are one slice), the
    prefix rules alone in a trie (the longest one a text starts with), and the wildcard
    rules by component count.  A hostile client sending distinct patterns then costs
    what the rules near its patterns cost, not the whole table each time.
    """

    __slots__ = ("trie", "prefix_trie", "by_uri", "uris", "wildcards")

    def __init__(self, rules: Iterable[Rule]) -> None:
        self.trie = UriTrie()
        self.prefix_trie = UriTrie()
        literal: list[Rule] = []
        #: component count -> [(rule, its components)]
        self.wildcards: dict[int, list[tuple[Rule, list[str]]]] = {}
        for rule in rules:
            self.trie.add(rule.uri, rule.match, rule)
            if rule.match == MATCH_PREFIX:
                self.prefix_trie.add(rule.uri, MATCH_PREFIX, rule)
            if rule.match == MATCH_WILDCARD:
                parts = rule.uri.split(".")
                self.wildcards.setdefault(len(parts), []).append((rule, parts))
            else:
                literal.append(rule)
        literal.sort(key=lambda r: r.uri)
        #: exact and prefix rules, sorted by URI (and their URIs, for bisect)
        self.by_uri = literal
        self.uris = [r.uri for r in literal]

    def __len__(self) -> int:
        return len(self.trie)

    def governing(self, uri: str) -> Rule | None:
        """The rule that decides for the concrete ``uri`` (None: no rule does)."""
        rule: Rule | None = self.trie.match_best(uri)
        return rule

    def _starting_with(self, lead: str) -> list[Rule]:
        """The exact and prefix rules whose URI starts with ``lead``."""
        lo = bisect_left(self.uris, lead)
        hi = bisect_left(self.uris, lead + "\U0010ffff", lo)
        return self.by_uri[lo:hi]

    def pattern_bits(self, uri: str, match: int, default: int) -> int:
        """The actions allowed on *every* concrete URI the pattern ``(uri, match)`` can
        match (see the module docstring); ``default`` is what a URI no rule governs allows."""
        if match == MATCH_EXACT:
            rule = self.governing(uri)
            return default if rule is None else rule.bits
        if match == MATCH_PREFIX:
            lead = uri
            parts: list[str] | None = None
        else:
            parts = uri.split(".")
            if "" not in parts:  # no empty component: the pattern is one URI
                rule = self.governing(uri)
                return default if rule is None else rule.bits
            first_empty = parts.index("")
            lead = ".".join(parts[:first_empty]) + "." if first_empty else ""
        bits = ALLOW_ALL | DISCLOSE_CALLER | DISCLOSE_PUBLISHER
        # The longest prefix rule every matched URI starts with governs all of them but
        # those a more specific rule takes.
        cover: Rule | None = self.prefix_trie.match_best(lead)
        if cover is not None:
            bits &= cover.bits
        else:
            # Wildcard rules may govern some matched URIs, none may govern others.
            covered = False
            if parts is None:
                for group in self.wildcards.values():  # conservative: any might apply
                    for rule, _ in group:
                        bits &= rule.bits
            else:
                for rule, rule_parts in self.wildcards.get(len(parts), ()):
                    fits = True
                    general = True
                    for r, p in zip(rule_parts, parts, strict=True):
                        if r and p and r != p:
                            fits = False
                            break
                        if r and not p:
                            general = False
                    if fits:
                        bits &= rule.bits
                        covered = covered or general
            if not covered:
                bits &= default
        if not bits:
            return 0
        # Longer prefix rules some matched URI may start with, and the exact rules of
        # matched URIs, govern those URIs.
        n = len(parts) if parts is not None else 0
        for rule in self._starting_with(lead):
            if rule.match == MATCH_PREFIX:
                if len(rule.uri) > len(lead):
                    bits &= rule.bits
            elif parts is None:  # an exact rule under the prefix pattern
                bits &= rule.bits
            elif rule.uri.count(".") + 1 == n and _wildcard_fits(parts, rule.uri.split(".")):
                bits &= rule.bits  # an exact rule the wildcard pattern matches
            if not bits:
                return 0
        return bits


def _rule_bits(perm: PermissionConfig) -> int:
    bits = 0
    for action in perm.allow:
        bits |= ACTION_BITS[action]
    if perm.disclose_caller:
        bits |= DISCLOSE_CALLER
    if perm.disclose_publisher:
        bits |= DISCLOSE_PUBLISHER
    return bits


class TokenBucket:
    """``rate`` tokens a second, at most ``burst`` saved up; one per request."""

    __slots__ = ("rate", "burst", "tokens", "stamp")

    def __init__(self, rate: float, burst: int, now: float) -> None:
        self.rate = rate
        self.burst = float(burst or max(1, math.ceil(rate)))
        self.tokens = self.burst
        self.stamp = now

    def take(self, now: float) -> bool:
        """Take a token if there is one."""
        tokens = self.tokens + (now - self.stamp) * self.rate
        if tokens > self.burst:
            tokens = self.burst
        self.stamp = now
        if tokens >= 1.0:
            self.tokens = tokens - 1.0
            return True
        self.tokens = tokens
        return False

    def give_back(self) -> None:
        self.tokens += 1.0


class CoarseClock:
    """The time for the rate limiter, read at most once per ``resolution`` seconds.

    Reading the clock costs 0.1-0.4 us here (uvloop's ``loop.time()`` through the
    scheduler), as much as the rest of the limiter; the time read is reused until a timer
    marks it stale.  The timer is armed only by a read, so an idle realm has none.
    Without a scheduler (a bare core) every read is fresh.
    """

    __slots__ = ("clock", "resolution", "now", "stale")

    def __init__(self, clock: Any, resolution: float = 0.05) -> None:
        self.clock = clock
        self.resolution = resolution
        self.now = 0.0
        self.stale = True

    def read(self) -> float:
        """The time, read afresh (call when ``stale``; else use ``now``)."""
        clock = self.clock
        self.now = now = clock.time()
        self.stale = clock.call_later(self.resolution, self._expire) is None
        return now

    def _expire(self) -> None:
        self.stale = True


class Role:
    """A configured authrole: its rules (application and reserved), its trust, its
    shared rate-limit buckets, and a cache of its decisions."""

    __slots__ = ("name", "trusted", "rules", "meta_rules", "cache", "call_bucket",
                 "publish_bucket")

    def __init__(self, config: RoleConfig, trusted: bool, now: float) -> None:
        self.name = config.name
        self.trusted = trusted
        app: list[Rule] = []
        meta: list[Rule] = []
        for perm in config.permissions:
            rule = Rule(perm.uri, MATCH_POLICIES[perm.match], _rule_bits(perm))
            (meta if is_reserved(perm.uri) else app).append(rule)
        self.rules = RuleSet(app)
        self.meta_rules = RuleSet(meta)
        #: uri (exact) or (uri, match) (patterns) -> decision bits
        self.cache: dict[Any, int] = {}
        self.call_bucket = (TokenBucket(config.calls_per_second, config.call_burst, now)
                            if config.calls_per_second else None)
        self.publish_bucket = (TokenBucket(config.publishes_per_second, config.publish_burst,
                                           now) if config.publishes_per_second else None)

    def decide(self, uri: str, match: int) -> int:
        """The bits allowed on ``uri`` (a concrete URI when ``match`` is exact)."""
        if is_reserved(uri):
            # CALL: the meta API decides; REGISTER, PUBLISH: the dealer and broker refuse.
            bits = ALLOW_CALL | ALLOW_REGISTER | ALLOW_PUBLISH
            if self.trusted:
                return bits | ALLOW_SUBSCRIBE
            return bits | (self.meta_rules.pattern_bits(uri, match, ALLOW_SUBSCRIBE)
                           & ALLOW_SUBSCRIBE)
        return self.rules.pattern_bits(uri, match, 0)


class Authorization:
    """The authorization of one realm (see the module docstring)."""

    def __init__(self, config: RealmConfig, stats: dict[str, int], clock: Any,
                 live_sessions: Callable[[], dict], realm: Realm | None = None) -> None:
        self.config = config
        self.stats = stats
        stats.setdefault("not_authorized", 0)
        stats.setdefault("rate_limited", 0)
        #: The router's Clock (time, timers), read through a CoarseClock by the limiter.
        self._clock = CoarseClock(clock)
        self._live_sessions = live_sessions
        now = clock.time()
        trusted = set(config.admin_authroles)
        trusted.update(r.name for r in config.roles if r.trusted)
        self.trusted_roles = frozenset(trusted)
        #: None: an open realm (no roles configured).
        self.roles: dict[str, Role] | None = None
        if config.roles:
            self.roles = {r.name: Role(r, r.name in trusted, now) for r in config.roles}
            for name in config.admin_authroles:  # listed there: a trusted role, no rules
                if name not in self.roles:
                    self.roles[name] = Role(RoleConfig(name, trusted=True), True, now)
        self._cache_max = config.authorization_cache_entries
        self._disclose_on_request = config.disclosure == "on_request"
        self._call_rate = config.session_calls_per_second
        self._call_burst = config.session_call_burst
        self._publish_rate = config.session_publishes_per_second
        self._publish_burst = config.session_publish_burst
        roles = self.roles.values() if self.roles else ()
        self._rate_limited = bool(
            self._call_rate or self._publish_rate
            or any(r.call_bucket or r.publish_bucket for r in roles))
        #: session id -> bucket (dead sessions' buckets are pruned as new ones come)
        self._call_buckets: dict[int, TokenBucket] = {}
        self._publish_buckets: dict[int, TokenBucket] = {}
        #: The dynamic authorizer, for sessions whose role is not in ``roles``.
        self.dynamic: DynamicAuthorizer | None = None
        if config.authorizer and realm is not None:
            self.dynamic = DynamicAuthorizer(config, realm, self.trusted_roles, self._deny,
                                             self._admit)
            if self.roles is None:
                self.roles = {}  # every role is decided by the authorizer

    def hook(self) -> Callable[[Member, int, list], bool] | None:
        """The ``authorize`` hook for :meth:`Realm.dispatch`; None when there is nothing
        to check (no roles, no rate limits)."""
        if self.roles is None and not self._rate_limited:
            return None
        return self._make_hook()

    def _admit(self, member: Member, code: int, msg: list) -> bool:
        """What a request the authorizer allowed still goes through: the rate limits."""
        if self._rate_limited and (code == m.CALL or code == m.PUBLISH):
            return self._within_rate(member, code, msg)
        return True

    def authorize(self, member: Member, code: int, msg: list) -> bool:
        """Let one request through (True), or answer it and return False."""
        hook = self.hook()
        return True if hook is None else hook(member, code, msg)

    # -- the hook ------------------------------------------------------------------

    def _make_hook(self) -> Callable[[Member, int, list], bool]:
        """The hook as a closure over this realm's tables: it runs for every CALL,
        PUBLISH, SUBSCRIBE and REGISTER (``AUTHORIZED_REQUESTS`` in realm.py), so the
        usual case, a CALL or
        PUBLISH allowed by a remembered decision without a disclosure switch, costs two
        dict lookups and a bit test (measured in bench/README.md, "Authorization")."""
        caches_get = ({name: role.cache for name, role in self.roles.items()}.get
                      if self.roles is not None else None)
        slow = self._authorize_request
        within_rate = self._within_rate if self._rate_limited else None
        authorize_pattern = self._authorize_pattern
        call, publish, subscribe, register, yield_ = (m.CALL, m.PUBLISH, m.SUBSCRIBE,
                                                      m.REGISTER, m.YIELD)
        call_bits = ALLOW_CALL | DISCLOSE_CALLER  # & bits == ALLOW_CALL: allowed, plainly
        publish_bits = ALLOW_PUBLISH | DISCLOSE_PUBLISHER

        def authorize(member: Member, code: int, msg: list) -> bool:
            if code == yield_:
                return True
            if code == call:
                if caches_get is not None:
                    cache = caches_get(member.authrole)
                    if cache is None or cache.get(msg[3], 0) & call_bits != ALLOW_CALL:
                        return slow(member, code, msg)
            elif code == publish:
                if caches_get is not None:
                    cache = caches_get(member.authrole)
                    if cache is None or cache.get(msg[3], 0) & publish_bits != ALLOW_PUBLISH:
                        return slow(member, code, msg)
            elif caches_get is not None and code in (subscribe, register):
                return authorize_pattern(member, code, msg)
            else:
                return True
            if within_rate is not None:
                return within_rate(member, code, msg)
            return True

        return authorize

    def _authorize_request(self, member: Member, code: int, msg: list) -> bool:
        """CALL or PUBLISH (roles configured) when the hook's shortcut does not decide:
        a decision not remembered yet, a denial, a disclosure switch, a role the
        dynamic authorizer decides for."""
        roles = self.roles
        assert roles is not None
        role = roles.get(member.authrole)
        if role is not None:
            uri = msg[3]
            bits = role.cache.get(uri)
            if bits is None:
                bits = self._remember(role, uri, uri, MATCH_EXACT)
            if code == m.CALL:
                wanted, disclosed = ALLOW_CALL, DISCLOSE_CALLER
            else:
                wanted, disclosed = ALLOW_PUBLISH, DISCLOSE_PUBLISHER
            if not bits & wanted:
                return self._deny(member, code, msg, f"the role {member.authrole!r} may "
                                  f"not {m.MESSAGE_NAMES[code].lower()} {uri!r}")
            if bits & disclosed and self._disclose_on_request:  # the rule's switch
                msg[2] = {**msg[2], "disclose_me": True}
        elif self.dynamic is None:
            return self._deny(member, code, msg, f"the role {member.authrole!r} has no "
                              "permissions on this realm")
        elif not self.dynamic.check(member, code, msg):
            return False
        if self._rate_limited:
            return self._within_rate(member, code, msg)
        return True

    def _authorize_pattern(self, member: Member, code: int, msg: list) -> bool:
        """SUBSCRIBE or REGISTER, of a URI or a pattern."""
        roles = self.roles
        assert roles is not None
        role = roles.get(member.authrole)
        if role is None:
            if self.dynamic is not None:
                return self.dynamic.check(member, code, msg)
            return self._deny(member, code, msg, f"the role {member.authrole!r} has no "
                              "permissions on this realm")
        uri = msg[3]
        match = match_policy(msg[2])[0]
        if match is None:
            return True  # an unknown match policy: the handler answers it
        key: Any = uri if match == MATCH_EXACT else (uri, match)
        bits = role.cache.get(key)
        if bits is None:
            bits = self._remember(role, key, uri, match)
        if not bits & _REQUEST_BITS[code]:
            return self._deny(member, code, msg, f"the role {member.authrole!r} may not "
                              f"{m.MESSAGE_NAMES[code].lower()} {uri!r}"
                              + ("" if match == MATCH_EXACT else " with this pattern"))
        return True

    def _remember(self, role: Role, key: Any, uri: str, match: int) -> int:
        bits = role.decide(uri, match)
        cache = role.cache
        if len(cache) >= self._cache_max:
            cache.clear()
        cache[key] = bits
        return bits

    def _deny(self, member: Member, code: int, msg: list, why: str) -> bool:
        self.stats["not_authorized"] += 1
        if code == m.PUBLISH and msg[2].get("acknowledge") is not True:
            member.log_bad_input("unacknowledged PUBLISH dropped: %s", why)
            return False
        member.send_error(code, msg[1], uris.NOT_AUTHORIZED, [why])
        return False

    def _within_rate(self, member: Member, code: int, msg: list) -> bool:
        """Take a token from the session's and the role's buckets, or refuse the request."""
        role = self.roles.get(member.authrole) if self.roles else None
        if code == m.CALL:
            if msg[1] in member.calls:
                return True  # a progressive call's next chunk: counted with its first
            rate, buckets = self._call_rate, self._call_buckets
            shared = role.call_bucket if role is not None else None
        else:
            rate, buckets = self._publish_rate, self._publish_buckets
            shared = role.publish_bucket if role is not None else None
        coarse = self._clock
        now = coarse.read() if coarse.stale else coarse.now
        own = None
        if rate:
            own = buckets.get(member.id)
            if own is None:
                own = self._new_bucket(buckets, member.id, code, now)
            # TokenBucket.take, inline (this runs for every call and publication); the
            # refill only when the coarse time moved
            tokens = own.tokens
            if now != own.stamp:
                tokens += (now - own.stamp) * rate
                if tokens > own.burst:
                    tokens = own.burst
                own.stamp = now
            if tokens < 1.0:
                own.tokens = tokens
                return self._limited(member, code, msg, "this session", rate)
            own.tokens = tokens - 1.0
        if shared is not None:
            tokens = shared.tokens
            if now != shared.stamp:
                tokens += (now - shared.stamp) * shared.rate
                if tokens > shared.burst:
                    tokens = shared.burst
                shared.stamp = now
            if tokens < 1.0:
                shared.tokens = tokens
                if own is not None:
                    own.tokens += 1.0  # not spent after all
                return self._limited(member, code, msg, f"the role {member.authrole!r}",
                                     shared.rate)
            shared.tokens = tokens - 1.0
        return True

    def _new_bucket(self, buckets: dict[int, TokenBucket], session_id: int, code: int,
                    now: float) -> TokenBucket:
        if code == m.CALL:
            rate, burst = self._call_rate, self._call_burst
        else:
            rate, burst = self._publish_rate, self._publish_burst
        live = self._live_sessions()
        if len(buckets) > 2 * len(live) + 64:  # forget sessions that left
            for sid in [sid for sid in buckets if sid not in live]:
                del buckets[sid]
        bucket = buckets[session_id] = TokenBucket(rate, burst, now)
        return bucket

    def _limited(self, member: Member, code: int, msg: list, who: str, rate: float) -> bool:
        why = (f"{who} is over its rate of {rate:g} "
               f"{'calls' if code == m.CALL else 'publications'} per second")
        stats = self.stats
        stats["rate_limited"] += 1
        stats["refused_requests"] = stats.get("refused_requests", 0) + 1
        stats["limits_hit"] = stats.get("limits_hit", 0) + 1
        member.log_bad_input("%s refused with %s: %s", m.MESSAGE_NAMES[code], RATE_LIMITED, why)
        if code == m.PUBLISH and msg[2].get("acknowledge") is not True:
            return False
        member.send([m.ERROR, code, msg[1], {}, RATE_LIMITED, [why]])
        return False

    # -- questions from the meta API and the realm ----------------------------------

    def is_trusted(self, authrole: str) -> bool:
        return authrole in self.trusted_roles

    def may_call_meta(self, authrole: str, uri: str) -> bool:
        """Whether a session of ``authrole`` may call the meta procedure ``uri``."""
        if authrole in self.trusted_roles:
            return True
        if self.roles is not None:
            role = self.roles.get(authrole)
            if role is None:
                return self.dynamic is not None and uri in PUBLIC_META_PROCEDURES
            rule = role.meta_rules.governing(uri)
            if rule is not None:
                return bool(rule.bits & ALLOW_CALL)
        return uri in PUBLIC_META_PROCEDURES

    def allows(self, member: Member, action: int, uri: str, match: int = MATCH_EXACT) -> bool:
        """Whether ``member`` may do ``action`` (an ``ALLOW_*`` bit) on every URI of
        the pattern ``(uri, match)`` (always, on an open realm; for a role the dynamic
        authorizer decides: what it allowed and is still remembered)."""
        if self.roles is None:
            return True
        role = self.roles.get(member.authrole)
        if role is None:
            if self.dynamic is not None and not is_reserved(uri):
                return self.dynamic.remembered(member, _ACTION_REQUESTS[action], uri, match)
            return self.dynamic is not None
        return bool(role.decide(uri, match) & action)

    def flush_authorizer_cache(self) -> int:
        """Forget the dynamic authorizer's answers; return how many there were."""
        return self.dynamic.flush() if self.dynamic is not None else 0

    def _dynamic_role(self, member: Member) -> bool:
        """Whether the dynamic authorizer decides for ``member``'s role."""
        return self.dynamic is not None and member.authrole not in (self.roles or ())

    def revoke(self, dealer: Dealer, broker: Broker) -> tuple[int, int]:
        """Remove the registrations and subscriptions these rules do not allow (after a
        reload); return how many of each."""
        if self.roles is None:
            return 0, 0
        revoked_regs = 0
        for reg in list(dealer.registrations.values()):
            for callee in list(reg.group.callees()):
                member: Member = callee.session
                if member.is_service or self._dynamic_role(member):
                    continue  # the router's own; or the dynamic authorizer's to decide
                if not self.allows(member, ALLOW_REGISTER, reg.uri, reg.match):
                    dealer.revoke(member, reg)
                    revoked_regs += 1
        revoked_subs = 0
        for sub in list(broker.subscriptions.values()):
            for member in list(sub.subscribers.values()):
                if member.is_service or self._dynamic_role(member):
                    continue
                if not self.allows(member, ALLOW_SUBSCRIBE, sub.uri, sub.match):
                    broker.revoke(member, sub)
                    revoked_subs += 1
        return revoked_regs, revoked_subs
