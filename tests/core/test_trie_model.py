"""Property tests: UriTrie (both builds) against an obviously correct model."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from fastwamp._core.uri import MATCH_EXACT, MATCH_PREFIX, MATCH_WILDCARD

# Few, overlapping components (one a string prefix of another, one non-ASCII,
# the empty one) so that patterns and calls collide often.
COMPONENTS = ["a", "ab", "b", "é"]

components = st.sampled_from(COMPONENTS)
call_uris = st.one_of(
    st.lists(components, min_size=1, max_size=4).map(".".join),
    # Calls are validated by the router, but the trie must not rely on it.
    st.lists(st.sampled_from([*COMPONENTS, ""]), min_size=1, max_size=4).map(".".join),
)
wildcard_patterns = st.lists(st.sampled_from([*COMPONENTS, "", ""]), min_size=1, max_size=4).map(
    ".".join
)
# Any string prefix of a call URI: cut inside a component, after a dot, or empty.
prefix_patterns = st.builds(
    lambda uri, cut: uri[: round(cut * len(uri))], call_uris, st.floats(0, 1)
)
patterns = st.one_of(
    st.tuples(call_uris, st.just(MATCH_EXACT)),
    st.tuples(prefix_patterns, st.just(MATCH_PREFIX)),
    st.tuples(wildcard_patterns, st.just(MATCH_WILDCARD)),
)


def wildcard_matches(pattern: str, uri: str) -> bool:
    pparts, uparts = pattern.split("."), uri.split(".")
    return len(pparts) == len(uparts) and all(
        p in ("", u) for p, u in zip(pparts, uparts, strict=True)
    )


def model_match_all(stored: dict[tuple[str, int], object], uri: str) -> list:
    """Exact, then prefixes longest first, then wildcards in spec precedence order.

    Precedence (§5.2): at the first position where two patterns differ in kind,
    the literal beats the empty component, i.e. sort by the literal/empty shape.
    """
    exact = [v for (p, m), v in stored.items() if m == MATCH_EXACT and p == uri]
    prefixes = sorted(
        ((p, v) for (p, m), v in stored.items() if m == MATCH_PREFIX and uri.startswith(p)),
        key=lambda item: -len(item[0]),
    )
    wildcards = sorted(
        (
            (p, v)
            for (p, m), v in stored.items()
            if m == MATCH_WILDCARD and wildcard_matches(p, uri)
        ),
        key=lambda item: [part == "" for part in item[0].split(".")],
    )
    return exact + [v for _, v in prefixes] + [v for _, v in wildcards]


def check(trie, stored: dict, calls: list[str]) -> None:
    assert len(trie) == len(stored)
    assert sorted(trie.values()) == sorted(stored.values())
    for (uri, match), value in stored.items():
        assert trie.get(uri, match) == value
    for uri in calls:
        expected = model_match_all(stored, uri)
        assert trie.match_all(uri) == expected, uri
        assert trie.match_best(uri) == (expected[0] if expected else None), uri


@settings(max_examples=600, deadline=None)
@given(
    pattern_list=st.lists(patterns, max_size=40, unique=True),
    calls=st.lists(call_uris, min_size=1, max_size=25),
)
def test_matches_model(impl, pattern_list: list[tuple[str, int]], calls: list[str]) -> None:
    trie = impl.UriTrie()
    stored = {}
    for i, key in enumerate(pattern_list):
        trie.add(key[0], key[1], i)
        stored[key] = i
    # Ask about every stored pattern too, so exact hits and edge cases are covered.
    check(trie, stored, calls + [uri for uri, _ in pattern_list])


@settings(max_examples=400, deadline=None)
@given(
    ops=st.lists(st.tuples(st.booleans(), patterns), max_size=80),
    calls=st.lists(call_uris, min_size=1, max_size=15),
)
def test_add_remove_sequences_match_model(impl, ops: list, calls: list[str]) -> None:
    """Random add/remove sequences (removals exercise splits, merges and pruning)."""
    trie = impl.UriTrie()
    stored: dict[tuple[str, int], object] = {}
    for step, (want_add, key) in enumerate(ops):
        if key in stored and not want_add:
            assert trie.remove(*key) == stored.pop(key)
        elif key not in stored:
            trie.add(key[0], key[1], step)
            stored[key] = step
        else:
            try:
                trie.add(key[0], key[1], step)
            except KeyError:
                pass
            else:
                raise AssertionError(f"duplicate add of {key} accepted")
        check(trie, stored, calls)
    for key in list(stored):
        trie.remove(*key)
        del stored[key]
    check(trie, stored, calls)


# Long URIs: hundreds of components over two labels, and patterns derived from
# the calls by blanking most components, so that many wildcards of the same
# length match the same call and their precedence is decided deep in the URI.
@st.composite
def long_cases(draw) -> tuple[list[tuple[str, int]], list[str]]:
    rnd = draw(st.randoms(use_true_random=False))
    n = draw(st.integers(100, 400))
    base = [rnd.choice("ab") for _ in range(n)]
    calls = []
    for _ in range(draw(st.integers(1, 6))):
        call = list(base)
        for _ in range(rnd.randrange(4)):  # a few differences from the base
            call[rnd.randrange(n)] = rnd.choice("abc")
        if rnd.random() < 0.2:  # another length: another wildcard trie
            call.append("a") if rnd.random() < 0.5 else call.pop()
        calls.append(call)
    keys: dict[tuple[str, int], None] = {}
    for _ in range(draw(st.integers(1, 30))):
        call = rnd.choice(calls)
        kind = rnd.random()
        if kind < 0.6:
            blank = rnd.choice([0.5, 0.9, 0.99, 1.0])
            pattern = [part if rnd.random() >= blank else "" for part in call]
            keys[(".".join(pattern), MATCH_WILDCARD)] = None
        elif kind < 0.85:
            uri = ".".join(call)
            keys[(uri[: rnd.randrange(len(uri) + 1)], MATCH_PREFIX)] = None
        else:
            keys[(".".join(call), MATCH_EXACT)] = None
    return list(keys), [".".join(call) for call in calls]


@settings(max_examples=100, deadline=None)
@given(case=long_cases())
def test_long_uris_match_model(impl, case) -> None:
    pattern_list, calls = case
    trie = impl.UriTrie()
    stored = {}
    for i, key in enumerate(pattern_list):
        trie.add(key[0], key[1], i)
        stored[key] = i
    check(trie, stored, calls)
    # Remove every other pattern (pruning long chains), then all of them.
    for key in pattern_list[::2]:
        assert trie.remove(*key) == stored.pop(key)
    check(trie, stored, calls)
    for key in pattern_list[1::2]:
        assert trie.remove(*key) == stored.pop(key)
    check(trie, stored, calls)
