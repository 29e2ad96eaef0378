"""Event history: the last events of configured topics, served by
``wamp.subscription.get_events``.

Which topics keep history is realm configuration (a URI, a match policy, how
many events, how long).  History is kept per (uri, match) rule, which is what a
subscription with the same URI and match policy reads.  Events are kept in
memory, or in an SQLite file (standard library) so they survive a restart.
"""

from __future__ import annotations

import sqlite3
import time
from collections import deque
from datetime import datetime, timezone
from typing import Any

import msgpack

from .._core.uri import MATCH_EXACT, MATCH_POLICIES, MATCH_PREFIX
from ..wamp.payload import expand_payload
from .sizes import estimate_size


def _rfc3339(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).isoformat(timespec="milliseconds").replace(
        "+00:00", "Z")


def _parse_time(value: Any) -> float:
    if type(value) is not str:
        raise ValueError(f"a time filter must be an RFC 3339 string, not {value!r}")
    text = value[:-1] + "+00:00" if value.endswith("Z") else value
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError as exc:
        raise ValueError(f"invalid RFC 3339 time {value!r}") from exc
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.timestamp()


class HistoryRule:
    """One configured history: events on topics matching (uri, match)."""

    __slots__ = ("uri", "match", "limit", "max_age", "events")

    def __init__(self, uri: str, match: int, limit: int, max_age: float) -> None:
        self.uri = uri
        self.match = match
        self.limit = limit
        self.max_age = max_age
        #: (seq, timestamp, publication, topic, payload, constraints, size) in publish order
        self.events: deque = deque()


class EventHistory:
    """Stores events for the configured rules and answers history queries."""

    def __init__(self, rules: list[dict[str, Any]], path: str = "",
                 max_bytes: int = 64 * 1024 * 1024) -> None:
        self.rules: dict[tuple[str, int], HistoryRule] = {}
        #: Estimated bytes of the events kept in memory, and their bound (the oldest
        #: events of any rule go first).
        self.bytes = 0
        self.max_bytes = max_bytes
        for rule in rules:
            match = MATCH_POLICIES[rule.get("match", "exact")]
            self.rules[(rule["uri"], match)] = HistoryRule(
                rule["uri"], match, int(rule.get("limit", 1000)), float(rule.get("max_age", 0))
            )
        self._seq = 0
        self._db: sqlite3.Connection | None = None
        if path and self.rules:
            self._open(path)

    def _open(self, path: str) -> None:
        db = sqlite3.connect(path, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute(
            "CREATE TABLE IF NOT EXISTS events (seq INTEGER PRIMARY KEY, rule_uri TEXT,"
            " rule_match INTEGER, ts REAL, publication INTEGER, topic TEXT, data BLOB)"
        )
        self._db = db
        for rule in self.rules.values():
            rows = db.execute(
                "SELECT seq, ts, publication, topic, data FROM events WHERE rule_uri=? AND "
                "rule_match=? ORDER BY seq DESC LIMIT ?", (rule.uri, rule.match, rule.limit)
            ).fetchall()
            for seq, ts, publication, topic, data in reversed(rows):
                payload, constraints = msgpack.unpackb(data, raw=False, strict_map_key=False)
                self._keep(rule, (seq, ts, publication, topic, payload, constraints,
                                  len(data) + len(topic) + 64))
                self._seq = max(self._seq, seq)
        row = db.execute("SELECT MAX(seq) FROM events").fetchone()
        self._seq = max(self._seq, row[0] or 0)

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    def published(self, member: Any, topic: str, publication: int, payload: list,
                  options: dict[str, Any]) -> None:
        """Realm event: keep a client's publication (see :meth:`record_publication`)."""
        self.record_publication(topic, publication, payload, options)

    def keeps(self, topic: str, options: dict[str, Any]) -> bool:
        """Whether a publication with these PUBLISH options would be stored."""
        return "eligible" not in options and "exclude" not in options and any(
            pattern_matches(r.uri, r.match, topic) for r in self.rules.values())

    def record_publication(self, topic: str, publication: int, payload: list,
                           options: dict[str, Any], timestamp: float | None = None) -> None:
        """Keep a publication in every rule whose pattern matches its topic (a cluster
        node also keeps those of other nodes, with their publisher's ``timestamp``).
        Events meant for particular sessions are not stored (the spec); authid/authrole
        lists are kept and applied to readers."""
        if "eligible" in options or "exclude" in options:
            return
        rules = [r for r in self.rules.values() if pattern_matches(r.uri, r.match, topic)]
        if rules:
            payload = expand_payload(payload)  # stored and served decoded
            constraints = {k: options[k] for k in ("eligible_authid", "exclude_authid",
                                                   "eligible_authrole", "exclude_authrole")
                           if type(options.get(k)) is list}
            self.record(rules, topic, publication, payload, constraints or None, timestamp)

    def record(self, rules: list[HistoryRule], topic: str, publication: int, payload: list,
               constraints: dict[str, list] | None, timestamp: float | None = None) -> None:
        """Store one publication in every rule of ``rules`` (those matching ``topic``),
        at ``timestamp`` (default: now)."""
        now = time.time() if timestamp is None else timestamp
        size = estimate_size([topic, payload, constraints], self.max_bytes) + 64
        if size > self.max_bytes:
            return  # larger than the whole history budget: not kept
        for rule in rules:
            self._seq += 1
            entry = (self._seq, now, publication, topic, payload, constraints, size)
            self._keep(rule, entry)
            if self._db is not None:
                try:
                    data = msgpack.packb([payload, constraints], use_bin_type=True)
                except Exception:  # a value msgpack cannot store: kept in memory only
                    continue
                self._db.execute(
                    "INSERT INTO events VALUES (?,?,?,?,?,?,?)",
                    (self._seq, rule.uri, rule.match, now, publication, topic, data),
                )
                if self._seq % 256 == 0:
                    self._trim(rule)

    def _keep(self, rule: HistoryRule, entry: tuple) -> None:
        """Append ``entry`` to ``rule``, then drop old events beyond the rule's limit and
        beyond the byte budget shared by all rules (oldest first)."""
        events = rule.events
        events.append(entry)
        self.bytes += entry[6]
        if len(events) > rule.limit:
            self.bytes -= events.popleft()[6]
        while self.bytes > self.max_bytes:
            oldest = min((r for r in self.rules.values() if r.events),
                         key=lambda r: r.events[0][0])
            self.bytes -= oldest.events.popleft()[6]

    def _trim(self, rule: HistoryRule) -> None:
        assert self._db is not None
        oldest = rule.events[0][0] if rule.events else self._seq
        self._db.execute("DELETE FROM events WHERE rule_uri=? AND rule_match=? AND seq<?",
                         (rule.uri, rule.match, oldest))

    def query(self, rule: HistoryRule, subscription_id: int, requester: Any,
              filters: dict[str, Any]) -> list[dict[str, Any]]:
        """Events of ``rule`` passing ``filters`` (the spec's get_events keywords)."""
        events = list(rule.events)
        if rule.max_age:
            horizon = time.time() - rule.max_age
            events = [e for e in events if e[1] >= horizon]
        by_publication = {e[2]: i for i, e in enumerate(events)}
        lo, hi = 0, len(events)
        for key, inclusive, lower in (("from_publication", True, True),
                                      ("after_publication", False, True),
                                      ("before_publication", False, False),
                                      ("until_publication", True, False)):
            if key in filters:
                index = by_publication.get(filters[key])
                if index is None:
                    return []
                if lower:
                    lo = max(lo, index if inclusive else index + 1)
                else:
                    hi = min(hi, index + 1 if inclusive else index)
        events = events[lo:hi]
        for key, test in (("from_time", lambda t, v: t >= v), ("after_time", lambda t, v: t > v),
                          ("before_time", lambda t, v: t < v),
                          ("until_time", lambda t, v: t <= v)):
            if key in filters:
                bound = _parse_time(filters[key])
                events = [e for e in events if test(e[1], bound)]
        topic = filters.get("topic")
        if topic is not None:
            events = [e for e in events if e[3] == topic]
        events = [e for e in events if _admits(e[5], requester)]
        if filters.get("reverse") is True:
            events.reverse()
        limit = filters.get("limit")
        if type(limit) is int and limit >= 0:
            events = events[-limit:] if limit and not filters.get("reverse") else events[:limit]
        out = []
        for _seq, ts, publication, topic_, payload, _c, _size in events:
            item: dict[str, Any] = {"timestamp": _rfc3339(ts), "subscription": subscription_id,
                                    "publication": publication, "topic": topic_}
            if payload:
                item["args"] = payload[0]
                if len(payload) > 1:
                    item["kwargs"] = payload[1]
            out.append(item)
        return out


def pattern_matches(uri: str, match: int, topic: str) -> bool:
    """Whether the pattern (``uri``, ``match``) matches ``topic``."""
    if match == MATCH_EXACT:
        return uri == topic
    if match == MATCH_PREFIX:
        return topic.startswith(uri)
    parts, pattern = topic.split("."), uri.split(".")
    return len(parts) == len(pattern) and all(
        not want or want == got for want, got in zip(pattern, parts, strict=True)
    )


def _admits(constraints: dict[str, list] | None, session: Any) -> bool:
    """Apply the original publication's authid/authrole lists to the requester."""
    if not constraints:
        return True
    for key, attr, eligible in (("eligible_authid", "authid", True),
                                ("exclude_authid", "authid", False),
                                ("eligible_authrole", "authrole", True),
                                ("exclude_authrole", "authrole", False)):
        values = constraints.get(key)
        if values is not None and (getattr(session, attr) in values) != eligible:
            return False
    return True
