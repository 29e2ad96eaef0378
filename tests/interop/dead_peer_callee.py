"""A callee process for ``test_dead_peer.py``: joins, registers a shared procedure
(``roundrobin``) that answers with its name, prints ``ready <session id>`` and
serves until killed.  A separate process, so that the test can freeze it with
SIGSTOP.

Usage: ``python -m tests.interop.dead_peer_callee WS_URL RS_URL TRANSPORT SERIALIZER
PROCEDURE NAME``.
"""

from __future__ import annotations

import asyncio
import sys

from autobahn.wamp.types import RegisterOptions

from tests.interop.abclient import Kind, connect
from tests.interop.conftest import RouterEndpoints


async def main(argv: list[str]) -> None:
    ws_url, rs_url, transport, serializer, procedure, name = argv
    session = await connect(RouterEndpoints(ws_url=ws_url, rs_url=rs_url), Kind(transport,
                                                                               serializer))
    await session.register(lambda: name, procedure, options=RegisterOptions(invoke="roundrobin"))
    print("ready", session.joined.result().session, flush=True)
    await session.disconnected


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
