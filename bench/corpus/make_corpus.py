"""Generate the matcher benchmark corpus deterministically (fixed seed).

Run ``python bench/corpus/make_corpus.py`` to rewrite ``patterns.json`` and
``calls.json``; the benchmarks read the JSON files so that results compare
across changes to this generator.

The URIs imitate application APIs: ``<tld>.<org>.<app>.<service>.<entity>[.<id>].<action>``.
Patterns: 60% exact, 25% prefix (mostly at component boundaries, some with a
trailing dot or cut inside a component), 15% wildcard (one or two empty
components). Calls: registered exact URIs, URIs under prefixes, URIs that only
wildcards match, and misses.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

HERE = Path(__file__).parent
SEED = 20240607
N_PATTERNS = 10_000
N_CALLS = 1_000

TLDS = ["com", "org", "io", "net"]
ORGS = [
    "acme",
    "globex",
    "initech",
    "umbrella",
    "hooli",
    "stark",
    "wayne",
    "wonka",
    "tyrell",
    "cyberdyne",
    "soylent",
    "aperture",
    "vandelay",
    "gringotts",
    "oscorp",
    "massive",
    "piedpiper",
    "monsters",
    "duff",
    "krusty",
]
APPS = [
    "crm",
    "erp",
    "shop",
    "billing",
    "iot",
    "chat",
    "portal",
    "warehouse",
    "fleet",
    "hr",
    "payroll",
    "analytics",
    "search",
    "media",
    "auth",
    "gateway",
    "ledger",
    "booking",
    "lms",
    "ticketing",
    "inventory",
    "scheduler",
    "telemetry",
    "cms",
    "forum",
    "wiki",
    "mail",
    "calendar",
    "drive",
    "monitor",
]
SERVICES = [
    "api",
    "v1",
    "v2",
    "internal",
    "admin",
    "public",
    "sync",
    "batch",
    "stream",
    "events",
    "rpc",
    "jobs",
    "reports",
    "exports",
    "imports",
    "notifications",
    "cache",
    "metrics",
    "audit",
    "config",
]
ENTITIES = [
    "user",
    "account",
    "order",
    "invoice",
    "payment",
    "device",
    "sensor",
    "session",
    "message",
    "channel",
    "ticket",
    "product",
    "customer",
    "vendor",
    "shipment",
    "vehicle",
    "driver",
    "route",
    "employee",
    "document",
    "folder",
    "file",
    "page",
    "comment",
    "post",
    "thread",
    "event",
    "alarm",
    "job",
    "task",
    "report",
    "metric",
    "room",
    "booking",
    "course",
    "lesson",
    "quiz",
    "license",
    "contract",
    "asset",
]
ACTIONS = [
    "create",
    "get",
    "list",
    "update",
    "delete",
    "search",
    "count",
    "subscribe",
    "on_create",
    "on_update",
    "on_delete",
    "status",
    "reset",
    "lock",
    "unlock",
    "archive",
    "restore",
    "export",
    "import",
    "validate",
    "approve",
    "reject",
    "assign",
    "close",
    "open",
    "ping",
    "describe",
    "history",
    "stats",
    "watch",
]


def make_uri(rng: random.Random) -> str:
    """A concrete procedure/topic URI, 5 to 7 components."""
    parts = [rng.choice(TLDS), rng.choice(ORGS), rng.choice(APPS)]
    if rng.random() < 0.6:
        parts.append(rng.choice(SERVICES))
    parts.append(rng.choice(ENTITIES))
    if rng.random() < 0.3:
        parts.append(str(rng.randrange(10_000)))
    parts.append(rng.choice(ACTIONS))
    return ".".join(parts)


def make_prefix(rng: random.Random) -> str:
    parts = make_uri(rng).split(".")
    cut = rng.randint(2, len(parts) - 1)
    prefix = ".".join(parts[:cut])
    roll = rng.random()
    if roll < 0.3:
        prefix += "."
    elif roll < 0.4:
        prefix += "." + parts[cut][: rng.randint(1, max(1, len(parts[cut]) - 1))]
    return prefix


def make_wildcard(rng: random.Random) -> str:
    parts = make_uri(rng).split(".")
    for _ in range(rng.choice((1, 1, 2))):
        parts[rng.randrange(1, len(parts))] = ""
    return ".".join(parts)


def generate() -> tuple[list[list], list[str]]:
    """Return ``(patterns, calls)``; patterns are ``[uri, match]`` pairs, unique."""
    rng = random.Random(SEED)
    seen: set[tuple[str, int]] = set()
    patterns: list[list] = []
    makers = ((0.60, 0, make_uri), (0.85, 1, make_prefix), (1.0, 2, make_wildcard))
    while len(patterns) < N_PATTERNS:
        roll = rng.random()
        for bound, match, maker in makers:
            if roll < bound:
                key = (maker(rng), match)
                if key not in seen:
                    seen.add(key)
                    patterns.append(list(key))
                break
    exact = [uri for uri, match in patterns if match == 0]
    prefixes = [uri for uri, match in patterns if match == 1]
    wildcards = [uri for uri, match in patterns if match == 2]
    calls: list[str] = []
    for _ in range(N_CALLS):
        roll = rng.random()
        if roll < 0.4:
            calls.append(rng.choice(exact))
        elif roll < 0.6:
            calls.append(rng.choice(prefixes) + rng.choice(ENTITIES) + ".get")
        elif roll < 0.8:
            parts = rng.choice(wildcards).split(".")
            calls.append(".".join(p or rng.choice(ENTITIES) for p in parts))
        else:
            calls.append(make_uri(rng))
    return patterns, calls


def main() -> None:
    patterns, calls = generate()
    for name, items in (("patterns.json", patterns), ("calls.json", calls)):
        lines = ",\n".join(json.dumps(item) for item in items)
        (HERE / name).write_text(f"[\n{lines}\n]\n")


if __name__ == "__main__":
    main()
