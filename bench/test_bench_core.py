"""Micro benchmarks of the routing core, compiled (c) next to pure Python (py).

Run: ``pytest bench/test_bench_core.py --benchmark-only``; each benchmark group
holds the c and py rows of one case. Not collected by a plain ``pytest`` run
(``testpaths = ["tests"]``).

Each benchmark round runs a batch (``BATCH`` calls or the whole call corpus), so
divide the reported times by the batch size for per-call figures.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from fastwamp._core import callees, trie

CORPUS = Path(__file__).parent / "corpus"
PATTERNS = [tuple(p) for p in json.loads((CORPUS / "patterns.json").read_text())]
CALLS = json.loads((CORPUS / "calls.json").read_text())  # 1000 call URIs
BATCH = 1000

TRIES = {"py": trie.UriTriePy, "c": trie.UriTrieC}
GROUPS = {
    "py": (callees.CalleePy, callees.CalleeGroupPy),
    "c": (callees.CalleeC, callees.CalleeGroupC),
}


def _impl(name: str):
    if name == "c" and not (trie.COMPILED and callees.COMPILED):
        pytest.skip("compiled extensions not in use")
    return name


@pytest.fixture(scope="module", params=["c", "py"])
def loaded_trie(request: pytest.FixtureRequest):
    """A trie with the 10,000 corpus patterns (exact/prefix/wildcard mix)."""
    uri_trie = TRIES[_impl(request.param)]()
    for i, (uri, match) in enumerate(PATTERNS):
        uri_trie.add(uri, match, i)
    return uri_trie


@pytest.mark.benchmark(group="trie.match_best x1000 calls, 10k patterns")
def test_trie_match_best(benchmark, loaded_trie) -> None:
    match_best = loaded_trie.match_best

    def run() -> int:
        hits = 0
        for uri in CALLS:
            if match_best(uri) is not None:
                hits += 1
        return hits

    assert benchmark(run) > 0


@pytest.mark.benchmark(group="trie.match_all x1000 calls, 10k patterns")
def test_trie_match_all(benchmark, loaded_trie) -> None:
    match_all = loaded_trie.match_all

    def run() -> int:
        found = 0
        for uri in CALLS:
            found += len(match_all(uri))
        return found

    assert benchmark(run) > 0


@pytest.mark.benchmark(group="trie.add+remove 10k patterns")
@pytest.mark.parametrize("impl", ["c", "py"])
def test_trie_build(benchmark, impl: str) -> None:
    cls = TRIES[_impl(impl)]

    def run() -> None:
        uri_trie = cls()
        for i, (uri, match) in enumerate(PATTERNS):
            uri_trie.add(uri, match, i)
        for uri, match in PATTERNS:
            uri_trie.remove(uri, match)

    benchmark(run)


POLICIES = ["single", "roundrobin", "random", "first", "last", "least_inflight", "p2c"]


@pytest.mark.parametrize("impl", ["c", "py"])
@pytest.mark.parametrize("n", [4, 100])
@pytest.mark.parametrize("policy", POLICIES)
def test_callee_select(benchmark, policy: str, n: int, impl: str) -> None:
    callee_cls, group_cls = GROUPS[_impl(impl)]
    if policy == "single":
        if n != 4:
            pytest.skip("single: one callee only")
        n = 1
    benchmark.group = f"select x{BATCH} {policy} n={n}"
    rng = random.Random(1)
    group = group_cls(callees.INVOKE_POLICIES[policy], rng)
    members = [callee_cls(i) for i in range(n)]
    for callee in members:
        callee.inflight = rng.randrange(1, 9)  # all busy: least_inflight scans everyone
        group.add(callee)
    select = group.select
    loop = range(BATCH)

    def run() -> None:
        for _ in loop:
            select()

    benchmark(run)


@pytest.mark.parametrize("impl", ["c", "py"])
@pytest.mark.parametrize("n", [4, 100])
def test_callee_select_keyed(benchmark, n: int, impl: str) -> None:
    """Sharded registrations: rendezvous hashing over ``n`` callees, fresh keys."""
    callee_cls, group_cls = GROUPS[_impl(impl)]
    benchmark.group = f"select x{BATCH} keyed n={n}"
    rng = random.Random(1)
    group = group_cls(callees.INVOKE_POLICIES["jump_consistent_hash"], rng)
    for i in range(n):
        group.add(callee_cls(i, rng.getrandbits(53)))
    keys = [rng.getrandbits(64) for _ in range(BATCH)]
    select_keyed = group.select_keyed

    def run() -> None:
        for key in keys:
            select_keyed(key)

    benchmark(run)


@pytest.mark.parametrize("impl", ["c", "py"])
@pytest.mark.parametrize("policy", ["roundrobin", "random", "first"])
def test_callee_select_excluded(benchmark, policy: str, impl: str) -> None:
    """Re-routing: select with one excluded callee out of 4."""
    callee_cls, group_cls = GROUPS[_impl(impl)]
    benchmark.group = f"select x{BATCH} {policy} n=4 excluded=1"
    group = group_cls(callees.INVOKE_POLICIES[policy], random.Random(1))
    members = [callee_cls(i) for i in range(4)]
    for callee in members:
        group.add(callee)
    excluded = {members[0]}
    select = group.select
    loop = range(BATCH)

    def run() -> None:
        for _ in loop:
            select(excluded)

    benchmark(run)
