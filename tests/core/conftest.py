"""``impl`` fixture: every core test runs on the pure-Python and the compiled build."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from fastwamp._core import callees, fanout, message, msgpack_check, trie, uri


@dataclass(frozen=True)
class Impl:
    """One build of the core: the classes and functions under test."""

    name: str
    UriTrie: Any
    Callee: Any
    CalleeGroup: Any
    validate_uri: Any
    uri_within_limits: Any
    ReceiverFilter: Any
    message_problem: Any
    value_problem: Any
    depth_exceeds: Any
    payload_end: Any
    plain_small: Any


IMPLS = {
    "py": Impl("py", trie.UriTriePy, callees.CalleePy, callees.CalleeGroupPy, uri.validate_uri_py,
               uri.uri_within_limits_py, fanout.ReceiverFilterPy,
               message.message_problem_py, message.value_problem_py, message.depth_exceeds_py,
               msgpack_check.payload_end_py, msgpack_check.plain_small_py),
    "c": Impl("c", trie.UriTrieC, callees.CalleeC, callees.CalleeGroupC, uri.validate_uri_c,
              uri.uri_within_limits_c, fanout.ReceiverFilterC,
              message.message_problem_c, message.value_problem_c, message.depth_exceeds_c,
              msgpack_check.payload_end_c, msgpack_check.plain_small_c),
}


# Session scope: the fixture is stateless, and hypothesis rejects function-scoped
# fixtures in @given tests.
@pytest.fixture(scope="session", params=["py", "c"])
def impl(request: pytest.FixtureRequest) -> Impl:
    """The build under test; "c" is skipped when the extensions are not in use."""
    if request.param == "c" and not (uri.COMPILED and trie.COMPILED and callees.COMPILED
                                     and fanout.COMPILED and message.COMPILED
                                     and msgpack_check.COMPILED):
        pytest.skip("compiled extensions not built or disabled (FASTWAMP_NO_EXTENSIONS)")
    return IMPLS[request.param]
