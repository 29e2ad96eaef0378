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
