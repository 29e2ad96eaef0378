"""UriTrie: API contract, matching rules and the spec's precedence vectors."""

from __future__ import annotations

import pytest

from fastwamp._core.uri import MATCH_EXACT, MATCH_PREFIX, MATCH_WILDCARD

# rfc advanced/rpc_pattern_based_registration.md, "Calls matching multiple
# registrations": the registered RPCs, numbered as in the spec.
SPEC_REGISTRATIONS = [
    ("a1.b2.c3.d4.e55", MATCH_EXACT),
    ("a1.b2.c3", MATCH_PREFIX),
    ("a1.b2.c3.d4", MATCH_PREFIX),
    ("a1.b2..d4.e5", MATCH_WILDCARD),
    ("a1.b2.c3..e5", MATCH_WILDCARD),
    ("a1.b2..d4.e5..g7", MATCH_WILDCARD),
    ("a1.b2..d4..f6.g7", MATCH_WILDCARD),
]

# Call URI -> the RPC number the spec routes it to (None: no_such_procedure).
SPEC_CALLS = [
    ("a1.b2.c3.d4.e55", 1),
    ("a1.b2.c3.d98.e74", 2),
    ("a1.b2.c3.d4.e325", 3),
    ("a1.b2.c55.d4.e5", 4),
    # The spec says "no prefix match, use RPC 5", but RPC 2 and 3 are prefixes of
    # this URI (by string and by component), and prefixes beat wildcards (step 2).
    # With the full table the longest prefix, RPC 3, wins; the wildcard choice
    # the spec means is pinned by test_spec_wildcard_precedence below.
    ("a1.b2.c3.d4.e5", 3),
    ("a1.b2.c88.d4.e5.f6.g7", 6),
    ("a2.b2.c2.d2.e2", None),
]


def spec_trie(impl, registrations=SPEC_REGISTRATIONS):
    trie = impl.UriTrie()
    for number, (uri, match) in enumerate(registrations, 1):
        trie.add(uri, match, number)
    return trie


@pytest.mark.parametrize(("call", "expected"), SPEC_CALLS)
def test_spec_vectors(impl, call: str, expected: int | None) -> None:
    trie = spec_trie(impl)
    assert trie.match_best(call) == expected
    matches = trie.match_all(call)
    assert (matches[0] if matches else None) == expected


@pytest.mark.parametrize(
    ("call", "expected"),
    [
        ("a1.b2.c55.d4.e5", 4),
        ("a1.b2.c3.d4.e5", 5),  # a1.b2.c3..e5 beats a1.b2..d4.e5
        ("a1.b2.c88.d4.e5.f6.g7", 6),  # a1.b2..d4.e5..g7 beats a1.b2..d4..f6.g7
        ("a2.b2.c2.d2.e2", None),
    ],
)
def test_spec_wildcard_precedence(impl, call: str, expected: int | None) -> None:
    wildcards_only = [
        (u, m) if m == MATCH_WILDCARD else (u + ".x.y.z", m) for u, m in SPEC_REGISTRATIONS
    ]
    trie = spec_trie(impl, wildcards_only)
    assert trie.match_best(call) == expected


def test_spec_match_all(impl) -> None:
    trie = spec_trie(impl)
    assert trie.match_all("a1.b2.c3.d4.e55") == [1, 3, 2]
    assert trie.match_all("a1.b2.c3.d4.e5") == [3, 2, 5, 4]
    assert trie.match_all("a1.b2.c88.d4.e5.f6.g7") == [6, 7]
    assert trie.match_all("a2.b2.c2.d2.e2") == []


def test_prefix_is_string_level(impl) -> None:
    # The spec's prefix example.
    trie = impl.UriTrie()
    trie.add("com.myapp.myobject1", MATCH_PREFIX, "p")
    for call in [
        "com.myapp.myobject1.myprocedure1",
        "com.myapp.myobject1-mysubobject1",
        "com.myapp.myobject1.mysubobject1.myprocedure1",
        "com.myapp.myobject1",
    ]:
        assert trie.match_best(call) == "p", call
    for call in ["com.myapp.myobject2", "com.myapp.myobject"]:
        assert trie.match_best(call) is None, call


def test_match_best_prefers_longest_prefix(impl) -> None:
    trie = impl.UriTrie()
    for prefix in ["", "com", "com.app.", "com.app.obj", "com.other"]:
        trie.add(prefix, MATCH_PREFIX, prefix or "<empty>")
    assert trie.match_best("com.app.obj1.get") == "com.app.obj"
    assert trie.match_best("com.app.x") == "com.app."
    assert trie.match_best("com.app") == "com"
    assert trie.match_best("org.app") == "<empty>"
    assert trie.match_all("com.app.obj1") == ["com.app.obj", "com.app.", "com", "<empty>"]


def test_wildcard_example_and_component_count(impl) -> None:
    # The spec's wildcard example.
    trie = impl.UriTrie()
    trie.add("com.myapp..myprocedure1", MATCH_WILDCARD, "w")
    assert trie.match_best("com.myapp.myobject1.myprocedure1") == "w"
    assert trie.match_best("com.myapp.myobject2.myprocedure1") == "w"
    for call in [
        "com.myapp.myobject1.myprocedure1.mysubprocedure1",
        "com.myapp.myobject1.myprocedure2",
        "com.myapp2.myobject1.myprocedure1",
        "com.myapp.myprocedure1",
    ]:
        assert trie.match_best(call) is None, call


def test_exact_beats_prefix_beats_wildcard(impl) -> None:
    trie = impl.UriTrie()
    trie.add("a.b.c", MATCH_WILDCARD, "wild")
    assert trie.match_best("a.b.c") == "wild"
    trie.add("a", MATCH_PREFIX, "prefix")
    assert trie.match_best("a.b.c") == "prefix"
    trie.add("a.b.c", MATCH_EXACT, "exact")
    assert trie.match_best("a.b.c") == "exact"
    assert trie.match_all("a.b.c") == ["exact", "prefix", "wild"]


def test_all_wildcard_patterns(impl) -> None:
    trie = impl.UriTrie()
    trie.add("", MATCH_WILDCARD, "1")
    trie.add("..", MATCH_WILDCARD, "3")
    trie.add(".b.", MATCH_WILDCARD, "3b")
    assert trie.match_all("x") == ["1"]
    assert trie.match_all("a.b.c") == ["3b", "3"]
    assert trie.match_all("a.c.c") == ["3"]
    assert trie.match_all("a.b") == []


def test_same_uri_under_each_policy(impl) -> None:
    trie = impl.UriTrie()
    for match in (MATCH_EXACT, MATCH_PREFIX, MATCH_WILDCARD):
        trie.add("a.b", match, match)
    assert len(trie) == 3
    assert [trie.get("a.b", m) for m in (0, 1, 2)] == [0, 1, 2]
    assert trie.match_all("a.b") == [0, 1, 2]
    assert trie.remove("a.b", MATCH_PREFIX) == 1
    assert trie.match_all("a.b") == [0, 2]
    assert sorted(trie.values()) == [0, 2]


def test_add_get_remove_len_values(impl) -> None:
    trie = impl.UriTrie()
    assert len(trie) == 0 and trie.values() == []
    trie.add("a.b", MATCH_EXACT, "e")
    trie.add("a.", MATCH_PREFIX, "p")
    trie.add("a..c", MATCH_WILDCARD, "w")
    assert len(trie) == 3
    assert trie.values() == ["e", "p", "w"]
    assert trie.get("a.b", MATCH_EXACT) == "e"
    assert trie.get("a.b", MATCH_PREFIX) is None
    assert trie.get("a.", MATCH_PREFIX) == "p"
    assert trie.get("a..c", MATCH_WILDCARD) == "w"
    with pytest.raises(KeyError):
        trie.add("a.", MATCH_PREFIX, "again")
    assert trie.remove("a..c", MATCH_WILDCARD) == "w"
    with pytest.raises(KeyError):
        trie.remove("a..c", MATCH_WILDCARD)
    with pytest.raises(KeyError):
        trie.remove("a.b", MATCH_WILDCARD)
    assert trie.remove("a.", MATCH_PREFIX) == "p"
    assert trie.remove("a.b", MATCH_EXACT) == "e"
    assert len(trie) == 0
    assert trie.match_all("a.b") == [] and trie.match_best("a.x.c") is None


def test_bad_arguments(impl) -> None:
    trie = impl.UriTrie()
    with pytest.raises(ValueError):
        trie.add("a", MATCH_EXACT, None)
    with pytest.raises(ValueError):
        trie.add("a", 3, "x")
    with pytest.raises(ValueError):
        trie.get("a", -1)
    with pytest.raises(ValueError):
        trie.remove("a", 7)
    assert len(trie) == 0


def test_prefix_tree_splits_and_merges(impl) -> None:
    """Interleaved adds and removes of overlapping prefixes keep every answer right."""
    prefixes = ["com.app", "com.apple", "com.ap", "com.app.x", "co", "com.b", ""]
    trie = impl.UriTrie()
    for p in prefixes:
        trie.add(p, MATCH_PREFIX, p)
    calls = ["com.apple.pie", "com.app.x.y", "com.app.y", "com.a", "com.b", "cx", "c"]

    def expected(live: list[str], call: str) -> list[str]:
        return sorted((p for p in live if call.startswith(p)), key=len, reverse=True)

    live = list(prefixes)
    for p in ["com.app", "", "com.apple", "co", "com.ap", "com.app.x", "com.b"]:
        trie.remove(p, MATCH_PREFIX)
        live.remove(p)
        for call in calls:
            assert trie.match_all(call) == expected(live, call), (p, call)
        trie.add(p + "!", MATCH_PREFIX, p + "!")
        live.append(p + "!")
    assert len(trie) == len(prefixes)


def test_non_ascii_uris(impl) -> None:
    trie = impl.UriTrie()
    trie.add("com.ünï.çødé", MATCH_PREFIX, "p")
    trie.add("com.ünï.€", MATCH_PREFIX, "q")
    trie.add("com..😀", MATCH_WILDCARD, "w")
    assert trie.match_all("com.ünï.çødé.😀") == ["p"]
    assert trie.match_all("com.ünï.€") == ["q"]
    assert trie.match_all("com.x.😀") == ["w"]
