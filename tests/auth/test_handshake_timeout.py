"""The handshake timeout covers the whole authentication: a client that never answers
its CHALLENGE is aborted (real sockets, RawSocket, the real router)."""

from __future__ import annotations

import asyncio
import json
import struct

from fastwamp.config import Config, ListenerConfig, RealmConfig
from fastwamp.router import Router
from fastwamp.server import serve
from fastwamp.wamp import uris

from .conftest import ROLES, TICKET, secure_realm


async def _read(reader: asyncio.StreamReader) -> list:
    while True:
        header = await asyncio.wait_for(reader.readexactly(4), 10)
        length = struct.unpack("!I", b"\0" + header[1:])[0]
        payload = await asyncio.wait_for(reader.readexactly(length), 10)
        if header[0] & 0x07 == 0:
            return json.loads(payload)


def _send(writer: asyncio.StreamWriter, msg: list) -> None:
    payload = json.dumps(msg).encode()
    writer.write(struct.pack("!I", len(payload)) + payload)


def test_no_answer_to_the_challenge_times_out_then_a_client_that_answers_joins():
    async def main() -> None:
        listener = ListenerConfig("rawsocket", port=0)
        config = Config(realms=[RealmConfig("realm1"), secure_realm()], listeners=[listener],
                        handshake_timeout=0.3)
        router = Router(config)
        server = await serve(config, router=router)
        try:
            port = server.listeners[0].port
            clients = []
            for _ in range(2):
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.write(bytes((0x7F, 0xF1, 0, 0)))
                assert (await asyncio.wait_for(reader.readexactly(4), 10))[0] == 0x7F
                _send(writer, [1, "secure", {"roles": ROLES, "authmethods": ["ticket"],
                                             "authid": "tina"}])
                assert await _read(reader) == [4, "ticket", {}]
                clients.append((reader, writer))
            (silent_r, silent_w), (good_r, good_w) = clients
            _send(good_w, [5, TICKET, {}])
            assert (await _read(good_r))[0] == 2  # WELCOME
            abort = await _read(silent_r)
            assert abort[0] == 3 and abort[2] == uris.TIMEOUT, abort
            assert await asyncio.wait_for(silent_r.read(), 10) == b""
            # the welcomed session outlives the handshake timeout
            await asyncio.sleep(0.4)
            _send(good_w, [32, 1, {}, "com.example.topic"])
            assert (await _read(good_r))[0] == 33  # SUBSCRIBED
            for _, writer in clients:
                writer.close()
        finally:
            server.abort()
            server.close_listeners()
            for lst in server.listeners:
                await lst.server.wait_closed()

    asyncio.run(asyncio.wait_for(main(), 30))
