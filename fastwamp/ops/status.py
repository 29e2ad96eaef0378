"""``fastwamp status``: a router's state in the terminal, read over WAMP.

It joins the realm as a client (anonymous, or with a ticket) and calls the meta
API and ``fastwamp.router.get_stats``, so it shows what that role may see and
nothing more.  The client is a small one of its own (JSON serializer; RawSocket
over ``tcp://`` with asyncio streams, WebSocket over ``ws://`` with the
``websockets`` package the router already depends on): Autobahn stays a test
dependency.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import struct
import sys
from typing import Any
from urllib.parse import urlsplit

HELLO, WELCOME, ABORT, CHALLENGE, AUTHENTICATE, GOODBYE, ERROR, CALL, RESULT = (
    1, 2, 3, 4, 5, 6, 8, 48, 50)
#: RawSocket: magic octet, then max length 2**24 (0xF) and JSON (1).
_RAWSOCKET_HELLO = bytes([0x7F, 0xF1, 0, 0])
#: Sessions described one by one (wamp.session.get); the rest are counted.
SESSIONS_SHOWN = 50


class StatusError(Exception):
    """The router could not be reached, refused the session, or a call failed."""


class MetaClient:
    """One WAMP session that only calls procedures (one call at a time)."""

    def __init__(self, url: str, timeout: float) -> None:
        self.url = url
        self.timeout = timeout
        self._request = 0
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._ws: Any = None
        #: The session id from WELCOME (0 until joined).
        self.session = 0

    async def open(self, realm: str, authid: str | None, ticket: str | None) -> dict[str, Any]:
        """Connect and join ``realm``; return WELCOME.Details."""
        parts = urlsplit(self.url)
        if parts.scheme in ("ws", "wss"):
            from websockets.asyncio.client import connect

            self._ws = await connect(self.url, subprotocols=["wamp.2.json"],  # type: ignore[list-item]
                                     open_timeout=self.timeout, max_size=2**24)
        elif parts.scheme == "tcp":
            if parts.hostname is None or parts.port is None:
                raise StatusError(f"{self.url}: tcp:// URLs need a host and a port")
            self._reader, self._writer = await asyncio.open_connection(parts.hostname, parts.port)
            self._writer.write(_RAWSOCKET_HELLO)
            reply = await self._reader.readexactly(4)
            if reply[0] != 0x7F or reply[1] & 0x0F != 1:
                raise StatusError(f"{self.url}: RawSocket handshake refused ({reply.hex()})")
        else:
            raise StatusError(f"{self.url}: the URL must start with ws://, wss:// or tcp://")
        details: dict[str, Any] = {"roles": {"caller": {"features": {}}},
                                   "agent": "fastwamp-status"}
        if authid:
            details["authid"] = authid
        if ticket is not None:
            details["authmethods"] = ["ticket"]
        await self._send([HELLO, realm, details])
        msg = await self._receive()
        if msg[0] == CHALLENGE and ticket is not None:
            await self._send([AUTHENTICATE, ticket, {}])
            msg = await self._receive()
        if msg[0] == ABORT:
            raise StatusError(f"the router refused the session: {msg[2]} "
                              f"{msg[1].get('message', '')}".rstrip())
        if msg[0] != WELCOME:
            raise StatusError(f"unexpected answer to HELLO: {msg[:1]}")
        self.session = msg[1]
        return msg[2]  # type: ignore[no-any-return]

    async def call(self, procedure: str, *args: Any) -> Any:
        """Call ``procedure``; its first result argument (or None)."""
        self._request += 1
        request = self._request
        await self._send([CALL, request, {}, procedure, list(args)])
        while True:
            msg = await self._receive()
            if msg[0] == RESULT and msg[1] == request:
                return msg[3][0] if len(msg) > 3 and msg[3] else None
            if msg[0] == ERROR and msg[2] == request:
                detail = msg[5][0] if len(msg) > 5 and msg[5] else ""
                raise StatusError(f"{procedure}: {msg[4]} {detail}".rstrip())
            if msg[0] in (ABORT, GOODBYE):
                raise StatusError(f"the router closed the session: {msg[2]}")

    async def close(self) -> None:
        """Say GOODBYE if connected, and close (never raises)."""
        if self._ws is None and self._writer is None:
            return
        try:
            if self.session:
                await self._send([GOODBYE, {}, "wamp.close.close_realm"])
            if self._ws is not None:
                await self._ws.close()
            if self._writer is not None:
                self._writer.close()
        except Exception:  # the connection is going anyway
            pass

    async def _send(self, msg: list) -> None:
        data = json.dumps(msg, separators=(",", ":"))
        if self._ws is not None:
            await self._ws.send(data)
            return
        assert self._writer is not None
        payload = data.encode()
        self._writer.write(struct.pack("!I", len(payload)) + payload)
        await self._writer.drain()

    async def _receive(self) -> list:
        return await asyncio.wait_for(self._receive_one(), self.timeout)

    async def _receive_one(self) -> list:
        if self._ws is not None:
            while True:
                data = await self._ws.recv()
                return json.loads(data)  # type: ignore[no-any-return]
        assert self._reader is not None
        while True:
            header = await self._reader.readexactly(4)
            length = int.from_bytes(header[1:], "big")
            payload = await self._reader.readexactly(length)
            if header[0] & 0x07 == 1:  # PING: answer PONG
                assert self._writer is not None
                self._writer.write(bytes([2]) + header[1:] + payload)
                continue
            if header[0] & 0x07 == 0:
                return json.loads(payload)  # type: ignore[no-any-return]


async def collect(url: str, realm: str, authid: str | None = None, ticket: str | None = None,
                  timeout: float = 10.0) -> dict[str, Any]:
    """The router's state as one dict: sessions, registrations, subscriptions, stats."""
    client = MetaClient(url, timeout)
    try:
        welcome = await client.open(realm, authid, ticket)
        ids = await client.call("wamp.session.list") or []
        sessions = []
        for session_id in ids[:SESSIONS_SHOWN]:
            try:
                sessions.append(await client.call("wamp.session.get", session_id))
            except StatusError:
                continue  # it left meanwhile
        registrations = []
        listed = await client.call("wamp.registration.list") or {}
        for reg_id in [i for ids_ in listed.values() for i in ids_]:
            try:
                reg = await client.call("wamp.registration.get", reg_id)
                reg["callees"] = await client.call("wamp.registration.list_callees", reg_id)
            except StatusError:
                continue
            registrations.append(reg)
        subscriptions = []
        listed = await client.call("wamp.subscription.list") or {}
        for sub_id in [i for ids_ in listed.values() for i in ids_]:
            try:
                sub = await client.call("wamp.subscription.get", sub_id)
                sub["subscribers"] = await client.call("wamp.subscription.count_subscribers",
                                                       sub_id)
            except StatusError:
                continue
            subscriptions.append(sub)
        try:
            stats = await client.call("fastwamp.router.get_stats")
        except StatusError as exc:
            stats = {"error": str(exc)}
    except (OSError, asyncio.IncompleteReadError, asyncio.TimeoutError) as exc:
        raise StatusError(f"{url}: {exc or type(exc).__name__}") from exc
    finally:
        await client.close()
    return {"url": url, "realm": realm, "router": welcome.get("agent", ""),
            "you": {"session": client.session, "authid": welcome.get("authid"),
                    "authrole": welcome.get("authrole")},
            "session_count": len(ids), "sessions": sessions,
            "registrations": sorted(registrations, key=lambda r: (r["uri"], r["match"])),
            "subscriptions": sorted(subscriptions, key=lambda s: (s["uri"], s["match"])),
            "stats": stats}


def format_status(state: dict[str, Any]) -> str:
    """The state as readable text."""
    lines = [f"{state['router']} at {state['url']}, realm {state['realm']} "
             f"(as {state['you']['authid']}, role {state['you']['authrole']})", ""]
    lines.append(f"sessions: {state['session_count']}")
    for s in state["sessions"]:
        transport = s.get("transport", {})
        lines.append(f"  {s['session']:>16}  {s['authid']}  role {s['authrole']}  "
                     f"{transport.get('type', '?')}/{transport.get('serializer', '?')}  "
                     f"{transport.get('peer', '?')}")
    if state["session_count"] > len(state["sessions"]):
        lines.append(f"  ... and {state['session_count'] - len(state['sessions'])} more")
    user_regs = [r for r in state["registrations"] if not _internal(r["uri"])]
    lines += ["", f"registrations: {len(user_regs)} (and {len(state['registrations']) - len(user_regs)} "
              "of the meta API)"]
    for r in user_regs:
        callees = ", ".join(str(c) for c in r["callees"])
        lines.append(f"  {r['uri']}  match {r['match']}  invoke {r['invoke']}  "
                     f"callees {len(r['callees'])}: {callees}")
    lines += ["", f"subscriptions: {len(state['subscriptions'])}"]
    for s in state["subscriptions"]:
        lines.append(f"  {s['uri']}  match {s['match']}  subscribers {s['subscribers']}")
    lines += ["", "stats:"]
    for key, value in sorted(state["stats"].items()):
        lines.append(f"  {key} = {value}")
    return "\n".join(lines)


def _internal(uri: str) -> bool:
    return uri.startswith(("wamp.", "fastwamp."))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fastwamp status",
        description="Show a running router's sessions, registrations (policy, callees), "
        "subscriptions and stats, read over WAMP through the meta API.")
    parser.add_argument("--url", default="ws://127.0.0.1:8080/ws",
                        help="ws://HOST:PORT/PATH or tcp://HOST:PORT (RawSocket); "
                        "default: %(default)s")
    parser.add_argument("--realm", default="realm1", help="default: %(default)s")
    parser.add_argument("--authid", help="join with this authid (anonymous otherwise)")
    parser.add_argument("--ticket-stdin", action="store_true",
                        help="authenticate with a ticket read from the first line of stdin")
    parser.add_argument("--timeout", type=float, default=10.0,
                        help="seconds to wait for each answer (default: %(default)s)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    return parser


def main(argv: list[str]) -> int:
    """``fastwamp status``; returns the exit status (1 when the router cannot be read)."""
    args = build_parser().parse_args(argv)
    ticket = sys.stdin.readline().rstrip("\r\n") if args.ticket_stdin else None
    try:
        state = asyncio.run(collect(args.url, args.realm, args.authid, ticket, args.timeout))
    except StatusError as exc:
        print(f"fastwamp status: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(state, indent=2))
    else:
        print(format_status(state))
    return 0
