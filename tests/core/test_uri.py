"""validate_uri against the six regexes of wamp-notes §3.1."""

from __future__ import annotations

import re
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fastwamp._core.uri import MATCH_EXACT, MATCH_POLICIES, MATCH_PREFIX, MATCH_WILDCARD

# (match, strict) -> the spec regex, verbatim. Applied with fullmatch: with
# re.match, "$" would also accept a trailing newline, which validate_uri rejects.
REGEXES = {
    (MATCH_EXACT, False): r"^([^\s\.#]+\.)*([^\s\.#]+)$",
    (MATCH_WILDCARD, False): r"^(([^\s\.#]+\.)|\.)*([^\s\.#]+)?$",
    (MATCH_PREFIX, False): r"^([^\s\.#]+\.)*([^\s\.#]*)$",
    (MATCH_EXACT, True): r"^([0-9a-z_]+\.)*([0-9a-z_]+)$",
    (MATCH_WILDCARD, True): r"^(([0-9a-z_]+\.)|\.)*([0-9a-z_]+)?$",
    (MATCH_PREFIX, True): r"^([0-9a-z_]+\.)*([0-9a-z_]*)$",
}
COMPILED_REGEXES = {key: re.compile(rx) for key, rx in REGEXES.items()}

# Characters that sit on every boundary of the rules: separators, reserved "#",
# ASCII and Unicode whitespace (incl. \x1c-\x1f, which str.isspace and \s accept),
# upper case, non-ASCII letters and punctuation.
EDGE_CHARS = "abz019_..#  \t\n\r\x0b\x0c\x1c\x1f\x85\xa0\u2028\u3000AZé-ü/:*$\u200b"

uris = st.one_of(
    st.text(alphabet=st.sampled_from(EDGE_CHARS), max_size=12),
    st.lists(st.sampled_from(["", "a", "com", "x_1", "A", "a b", "é", "a#"]), max_size=5).map(
        ".".join
    ),
    st.text(max_size=8),
)


def regex_valid(uri: str, match: int, strict: bool) -> bool:
    return COMPILED_REGEXES[(match, strict)].fullmatch(uri) is not None


def test_policy_codes() -> None:
    assert (MATCH_EXACT, MATCH_PREFIX, MATCH_WILDCARD) == (0, 1, 2)
    assert MATCH_POLICIES == {"exact": 0, "prefix": 1, "wildcard": 2}


@settings(max_examples=1500, deadline=None)
@given(uri=uris, match=st.sampled_from([0, 1, 2]), strict=st.booleans())
def test_matches_spec_regexes(impl, uri: str, match: int, strict: bool) -> None:
    assert impl.validate_uri(uri, match, strict) is regex_valid(uri, match, strict)


@pytest.mark.parametrize(
    ("uri", "match", "strict", "valid"),
    [
        ("com.myapp.proc1", MATCH_EXACT, True, True),
        ("com.myapp.Proc1", MATCH_EXACT, True, False),
        ("com.myapp.Proc1", MATCH_EXACT, False, True),
        ("com.my-app.proc", MATCH_EXACT, False, True),
        ("com.my app.proc", MATCH_EXACT, False, False),
        ("com.app#1", MATCH_EXACT, False, False),
        ("", MATCH_EXACT, False, False),
        ("com..proc", MATCH_EXACT, False, False),
        ("com.app.", MATCH_EXACT, False, False),
        (".com", MATCH_EXACT, False, False),
        ("", MATCH_PREFIX, True, True),
        ("com.app.", MATCH_PREFIX, True, True),
        ("com.app", MATCH_PREFIX, True, True),
        ("com..app", MATCH_PREFIX, True, False),
        (".", MATCH_PREFIX, True, False),
        ("", MATCH_WILDCARD, True, True),
        ("..", MATCH_WILDCARD, True, True),
        (".com..app.", MATCH_WILDCARD, True, True),
        ("com..app", MATCH_WILDCARD, False, True),
        ("com.\u00a0.app", MATCH_WILDCARD, False, False),
        ("com.app\n", MATCH_EXACT, False, False),  # re.match(r"...$") would accept it
    ],
)
def test_examples(impl, uri: str, match: int, strict: bool, valid: bool) -> None:
    assert impl.validate_uri(uri, match, strict) is valid
    assert regex_valid(uri, match, strict) is valid


def test_whitespace_agrees_with_regex_on_every_code_point(impl) -> None:
    """The loose rule rejects exactly the characters \\s, "." and "#" reject."""
    everything = "".join(map(chr, range(sys.maxunicode + 1)))
    rejected = set(re.findall(r"[\s.#]", everything))
    assert "\x1c" in rejected and "\u3000" in rejected and "\u200b" not in rejected
    allowed = "".join(ch for ch in everything if ch not in rejected)
    assert impl.validate_uri(allowed, MATCH_EXACT, False)
    for ch in rejected:
        assert not impl.validate_uri(ch, MATCH_EXACT, False), repr(ch)
        if ch != ".":
            assert not impl.validate_uri(f"a{ch}b", MATCH_PREFIX, False), repr(ch)


@pytest.mark.parametrize("match", [-1, 3])
def test_unknown_match_policy(impl, match: int) -> None:
    with pytest.raises(ValueError):
        impl.validate_uri("com.app", match, False)


def model_within_limits(uri: str, max_length: int, max_components: int) -> bool:
    return (max_length < 0 or len(uri) <= max_length) and (
        max_components < 0 or len(uri.split(".")) <= max_components
    )


limit_uris = st.one_of(
    st.lists(st.sampled_from(["", "a", "com", "é", "😀x"]), max_size=80).map(".".join),
    st.text(alphabet=st.sampled_from("a.é"), max_size=150),
)


@settings(max_examples=1500, deadline=None)
@given(uri=limit_uris, max_length=st.integers(-2, 160), max_components=st.integers(-2, 90))
def test_uri_within_limits_matches_model(impl, uri: str, max_length: int,
                                         max_components: int) -> None:
    assert impl.uri_within_limits(uri, max_length, max_components) is model_within_limits(
        uri, max_length, max_components)


@pytest.mark.parametrize(
    ("uri", "ok"),
    [
        ("com.app.proc", True),
        ("x" * 1024, True),
        ("x" * 1025, False),
        ("é" * 1024, True),  # characters (code points), not UTF-8 bytes
        (".".join(["a"] * 64), True),
        (".".join(["a"] * 65), False),
        ("." * 63, True),  # 64 empty components (a wildcard pattern)
        ("." * 64, False),
        ("", True),
        ("." * 200_000, False),
    ],
)
def test_uri_within_default_limits(impl, uri: str, ok: bool) -> None:
    assert impl.uri_within_limits(uri, 1024, 64) is ok


def test_uri_within_limits_negative_means_unlimited(impl) -> None:
    huge = "." * 200_000
    assert impl.uri_within_limits(huge, -1, -1)
    assert not impl.uri_within_limits(huge, -1, 64)
    assert not impl.uri_within_limits(huge, 1024, -1)
    assert impl.uri_within_limits("a.b", 0, -1) is False
    assert impl.uri_within_limits("", 0, 0) is False  # one (empty) component
    assert impl.uri_within_limits("", 0, 1) is True
