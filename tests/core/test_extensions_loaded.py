"""Fail when the compiled core is expected but a pure-Python twin is active."""

from __future__ import annotations

import importlib
import os

import pytest

import fastwamp._core
from fastwamp._core import callees, fanout, message, msgpack_check, trie, uri
from fastwamp.router import broker, dealer, member, twins

NO_EXTENSIONS = bool(os.environ.get("FASTWAMP_NO_EXTENSIONS"))


@pytest.mark.skipif(NO_EXTENSIONS, reason="FASTWAMP_NO_EXTENSIONS is set")
@pytest.mark.parametrize("name", ["uri_c", "trie_c", "callees_c", "fanout_c", "message_c",
                                  "msgpack_check_c"])
def test_extensions_loaded(name: str) -> None:
    module = importlib.import_module(f"fastwamp._core.{name}")
    # A compiled module is a shared library, not the reference .py source.
    assert not module.__file__.endswith(".py"), module.__file__
    assert fastwamp._core.compiled()
    assert uri.validate_uri is uri.validate_uri_c
    assert uri.uri_within_limits is uri.uri_within_limits_c
    assert trie.UriTrie is trie.UriTrieC
    assert callees.CalleeGroup is callees.CalleeGroupC
    assert callees.Callee is callees.CalleeC
    assert fanout.ReceiverFilter is fanout.ReceiverFilterC
    assert fanout.SharedMessage is fanout.SharedMessageC
    assert message.message_problem is message.message_problem_c
    assert message.value_problem is message.value_problem_c
    assert message.depth_exceeds is message.depth_exceeds_c
    assert msgpack_check.payload_end is msgpack_check.payload_end_c


@pytest.mark.skipif(NO_EXTENSIONS, reason="FASTWAMP_NO_EXTENSIONS is set")
def test_router_twins_loaded() -> None:
    """The per-call and per-publication paths run on the compiled dealer, broker and
    routing record, and a RawSocket read on the compiled frame reader."""
    from fastwamp.router import broker_c, dealer_c, member_c  # type: ignore[attr-defined]
    from fastwamp.transport import rawsocket_reader, rawsocket_reader_c  # type: ignore[attr-defined]

    assert not any(twin.__file__.endswith(".py")
                   for twin in (dealer_c, member_c, broker_c, rawsocket_reader_c))
    assert dealer.Dealer is dealer_c.Dealer and dealer.Invocation is dealer_c.Invocation
    assert member.Member is member_c.Member and member.send_to is member_c.send_to
    assert broker.Broker is broker_c.Broker and broker.Subscription is broker_c.Subscription
    assert rawsocket_reader.FrameReader is rawsocket_reader_c.FrameReader
    assert twins.IN_USE == {"fastwamp.router.member": True, "fastwamp.router.dealer": True,
                            "fastwamp.router.broker": True,
                            "fastwamp.transport.rawsocket_reader": True}


@pytest.mark.skipif(not NO_EXTENSIONS, reason="FASTWAMP_NO_EXTENSIONS is not set")
def test_no_extensions_selects_pure_python() -> None:
    assert not fastwamp._core.compiled()
    assert not (uri.COMPILED or trie.COMPILED or callees.COMPILED or fanout.COMPILED
                or message.COMPILED or msgpack_check.COMPILED)
    assert uri.validate_uri is uri.validate_uri_py
    assert uri.uri_within_limits is uri.uri_within_limits_py
    assert trie.UriTrie is trie.UriTriePy
    assert callees.CalleeGroup is callees.CalleeGroupPy
    assert trie.UriTrieC is None and callees.CalleeGroupC is None
    assert not any(twins.IN_USE.values())
    assert dealer.Dealer.__module__ == "fastwamp.router.dealer"
    assert broker.Broker.__module__ == "fastwamp.router.broker"
    assert member.Member.__module__ == "fastwamp.router.member"
    from fastwamp.transport import rawsocket_reader

    assert rawsocket_reader.FrameReader.__module__ == "fastwamp.transport.rawsocket_reader"
