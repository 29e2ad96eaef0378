"""Messages the router cannot send to their receiver are reported, never silently dropped.

End to end over RawSocket against the real router: an INVOCATION the callee's
serializer cannot encode, or a RESULT larger than the caller announced, ends the
call with an ERROR; the connection goes on with the rest.  (Values no serializer
could send on may also be refused when decoded, before any routing: then the
caller gets that answer instead; either way it is answered.)  Per engine with a
stub session: every encode failure (also in the held-output path while writing
is paused) reaches ``session.undeliverable``.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from websockets.client import ClientProtocol
from websockets.uri import parse_uri

from fastwamp.config import ListenerConfig
from fastwamp.transport.rawsocket import RawSocketConnection
from fastwamp.transport.websocket import websocket_connection_class
from fastwamp.wamp import uris

from .conftest import FakeTransport, RawSocketClient, StubRouter, real_router, running, wait_for

ABORT, CALL, RESULT, ERROR, REGISTER, REGISTERED, INVOCATION, YIELD = 3, 48, 50, 8, 64, 65, 68, 70
PUBLISH, SUBSCRIBE, SUBSCRIBED, EVENT = 16, 32, 33, 36
PROCEDURE = "com.example.echo"


def nested(depth: int) -> list:
    value: list = []
    for _ in range(depth - 1):
        value = [value]
    return value


async def callee_and_caller(
    port: int, callee_ser: str, caller_ser: str, caller_bits: int = 15
) -> tuple[RawSocketClient, RawSocketClient]:
    callee = await RawSocketClient.connect(port, callee_ser)
    await callee.join()
    callee.send([REGISTER, callee.request(), {}, PROCEDURE])
    registered = await callee.recv()
    assert registered[0] == REGISTERED, registered
    caller = await RawSocketClient.connect(port, caller_ser, length_bits=caller_bits)
    await caller.join()
    return callee, caller


async def echo_once(callee: RawSocketClient, result: Any = None) -> Any:
    """Answer one INVOCATION (with its own arguments, or ``result``); return them."""
    invocation = await callee.recv()
    assert invocation[0] == INVOCATION, invocation
    args = invocation[4] if len(invocation) > 4 else []
    callee.send([YIELD, invocation[1], {}, [result] if result is not None else args])
    return args


@pytest.mark.parametrize(
    "caller_ser, callee_ser, argument",
    [
        ("msgpack", "json", {b"key": 1}),  # JSON maps have string keys only
        ("cbor", "json", 2**70),  # beyond 64 bits for orjson
        ("cbor", "msgpack", 2**70),  # beyond 64 bits for MessagePack
        ("msgpack", "json", nested(300)),  # deeper than the JSON encoder goes
    ],
    ids=["bytes-key", "bignum-json", "bignum-msgpack", "nesting-300"],
)
def test_unencodable_invocation_answers_the_caller(run, caller_ser, callee_ser, argument):
    async def main():
        listener = ListenerConfig("rawsocket", port=0)
        router = real_router(listener)
        async with running(listener, router=router) as (server, _):
            port = server.listeners[0].port
            callee, caller = await callee_and_caller(port, callee_ser, caller_ser)
            request = caller.request()
            caller.send([CALL, request, {}, PROCEDURE, [argument]])
            answer = await caller.recv()
            if answer[0] == ERROR:  # routed, and not sendable to the callee
                assert answer[:3] == [ERROR, CALL, request], answer
                assert answer[4] == uris.UNENCODABLE, answer
                assert callee_ser in answer[5][0]
                assert router.stats["undeliverable_messages"] == 1
            else:  # refused when decoded: not routable to every serializer
                assert answer[0] == ABORT and answer[2] == uris.PROTOCOL_VIOLATION, answer
                caller.close()
                caller = await RawSocketClient.connect(port, caller_ser)
                await caller.join()
            # Both connections go on: the next call is delivered and answered.
            request = caller.request()
            caller.send([CALL, request, {}, PROCEDURE, ["fine"]])
            assert await echo_once(callee) == ["fine"]
            result = await caller.recv()
            assert result[:2] == [RESULT, request] and result[3] == ["fine"], result
            callee.close()
            caller.close()

    run(main)


def test_result_over_the_callers_announced_size(run):
    async def main():
        listener = ListenerConfig("rawsocket", port=0)
        router = real_router(listener)
        async with running(listener, router=router) as (server, _):
            port = server.listeners[0].port
            # The caller accepts 2**(9+2) = 2048 bytes per message (WELCOME fits).
            callee, caller = await callee_and_caller(port, "json", "msgpack", caller_bits=2)
            request = caller.request()
            caller.send([CALL, request, {}, PROCEDURE, []])
            await echo_once(callee, "x" * 3000)
            error = await caller.recv()
            assert error[:3] == [ERROR, CALL, request], error
            assert error[4] == uris.PAYLOAD_SIZE_EXCEEDED, error
            request = caller.request()
            caller.send([CALL, request, {}, PROCEDURE, []])
            await echo_once(callee, "x" * 100)
            assert (await caller.recv())[:2] == [RESULT, request]
            callee.close()
            caller.close()

    run(main)


def test_oversize_event_is_counted_and_the_subscriber_keeps_receiving(run):
    async def main():
        listener = ListenerConfig("rawsocket", port=0)
        router = real_router(listener)
        async with running(listener, router=router) as (server, _):
            port = server.listeners[0].port
            subscriber = await RawSocketClient.connect(port, "json", length_bits=2)  # 2 KiB
            await subscriber.join()
            subscriber.send([SUBSCRIBE, subscriber.request(), {}, "com.example.topic"])
            assert (await subscriber.recv())[0] == SUBSCRIBED
            publisher = await RawSocketClient.connect(port, "msgpack")
            await publisher.join()
            publisher.send([PUBLISH, publisher.request(), {}, "com.example.topic", ["x" * 5000]])
            publisher.send([PUBLISH, publisher.request(), {}, "com.example.topic", ["next"]])
            event = await subscriber.recv()
            assert event[0] == EVENT and event[4] == ["next"], event
            assert router.stats["undeliverable_events"] == 1
            subscriber.close()
            publisher.close()

    run(main)


# Every engine, with a stub session, sending and holding.


def _open(engine: str) -> tuple[Any, FakeTransport, StubRouter]:
    router = StubRouter()
    transport = FakeTransport()
    if engine == "rawsocket":
        conn: Any = RawSocketConnection(router, ListenerConfig("rawsocket", max_message_size=1024))
        conn.connection_made(transport)
        conn.data_received(b"\x7f\x11\x00\x00")  # JSON, the client takes 1 KiB
    else:
        listener = ListenerConfig("websocket", implementation=engine, max_message_size=1024)
        conn = websocket_connection_class(engine)(router, listener)
        conn.connection_made(transport)
        client = ClientProtocol(parse_uri("ws://127.0.0.1/ws"), subprotocols=["wamp.2.json"])
        client.send_request(client.connect())
        conn.data_received(b"".join(client.data_to_send()))
    transport.writes.clear()
    return conn, transport, router


class Exploding:
    """A value whose encoding raises something other than the encoder's own error."""

    def __repr__(self) -> str:
        return "<Exploding>"


def unsendable() -> list[list]:
    """RESULTs that no engine can send to a JSON peer taking 1 KiB (request ids 1-4);
    :data:`UNSENDABLE_REPORTS` says what each is reported as."""
    return [
        [50, 1, {}, [{b"bytes-key": 1}]],
        [50, 2, {}, [Exploding()]],
        [50, 3, {}, [nested(300)]],
        [50, 4, {}, ["x" * 2000]],  # over max_message_size
    ]


UNSENDABLE_REPORTS = [
    (1, uris.UNENCODABLE),
    (2, uris.UNENCODABLE),
    (3, uris.UNENCODABLE),
    (4, uris.PAYLOAD_SIZE_EXCEEDED),
]


@pytest.mark.parametrize("held", [False, True], ids=["writing", "held"])
@pytest.mark.parametrize("engine", ["rawsocket", "websockets", "picows"])
def test_every_engine_reports_what_it_cannot_send(run, engine, held):
    if engine == "picows":
        pytest.importorskip("picows")

    async def main():
        conn, transport, router = _open(engine)
        (session,) = router.sessions
        if held:
            conn.pause_writing()
        conn.send_messages([*unsendable(), [50, 5, {}, ["fine"]]])
        reported = [(msg[1], error) for msg, error, _ in session.undeliverable_msgs]
        assert reported == UNSENDABLE_REPORTS
        if held:
            assert transport.writes == []
            conn.resume_writing()
        await wait_for(lambda: any(b'"fine"' in w for w in transport.writes))
        assert not transport.closed

    run(main)


@pytest.mark.parametrize("engine", ["rawsocket", "websockets", "picows"])
def test_messages_sent_alone_are_reported_written_and_held_alike(run, engine):
    """One message per flush (the usual reply) takes each engine's one-frame path:
    what it cannot send is reported as in a batch, what it can leaves in one write,
    and once a write fills the transport's buffer the next one is held."""
    if engine == "picows":
        pytest.importorskip("picows")

    async def main():
        conn, transport, router = _open(engine)
        (session,) = router.sessions
        for msg in unsendable():
            conn.send_messages([msg])
        reported = [(msg[1], error) for msg, error, _ in session.undeliverable_msgs]
        assert reported == UNSENDABLE_REPORTS
        assert transport.writes == []
        write = transport.write

        def write_and_fill(data: bytes) -> None:  # the buffer crosses its high-water mark
            write(data)
            conn.pause_writing()

        transport.write = write_and_fill  # type: ignore[method-assign]
        conn.send_messages([[50, 5, {}, ["first"]]])
        assert len(transport.writes) == 1 and b'"first"' in transport.writes[0]
        transport.write = write  # type: ignore[method-assign]
        conn.send_messages([[50, 6, {}, ["second"]]])
        assert len(transport.writes) == 1  # held while writing is paused
        conn.resume_writing()
        await wait_for(lambda: any(b'"second"' in w for w in transport.writes))
        assert not transport.closed

    run(main)


def test_hold_path_reports_in_order_with_the_queue(run):
    """While held, an unencodable message takes no place in the output queue."""

    async def main():
        conn, transport, router = _open("rawsocket")
        conn.pause_writing()
        conn.send_messages([[36, 1, 2, {}, [{b"k": 1}]], [36, 1, 3, {}, ["ok"]]])
        assert conn._queue.messages == 1 and conn._queue.events == 1
        assert router.sessions[0].undeliverable_msgs[0][1] == uris.UNENCODABLE

    run(main)


def test_undeliverable_failure_does_not_break_the_flush(run, caplog):
    async def main():
        conn, transport, router = _open("rawsocket")
        (session,) = router.sessions

        def broken(*args: Any) -> None:
            raise RuntimeError("core bug")

        session.undeliverable = broken  # type: ignore[method-assign]
        conn.send_messages([[50, 1, {}, [{b"k": 1}]], [50, 2, {}, ["ok"]]])
        await asyncio.sleep(0)
        assert b'"ok"' in transport.data

    run(main)
    assert any("undeliverable" in r.getMessage() for r in caplog.records)
