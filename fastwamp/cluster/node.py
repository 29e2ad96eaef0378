"""The cluster node (sans-I/O): membership, replicated state, and the realm bridges.

Each node owns its part of the cluster's state: the registrations of its own
sessions (one entry per callee) and the subscriptions it has subscribers for (one
entry per subscription).  It broadcasts every change as a numbered DELTA, and a
HEARTBEAT with its latest number every ``heartbeat_interval``.  Another node that
misses a number, restarts, or hears of a node for the first time asks for a
SNAPSHOT of the whole part (sent in parts of about SNAPSHOT_PART_BYTES) and
replaces what it had once every part arrived.  A node not heard from for
``node_timeout`` is gone: its part is dropped (its proxies leave the dealers, so
calls in flight to its callees are answered ``wamp.error.canceled``), and it is
resynchronised by snapshot if it comes back.

Input: :meth:`ClusterNode.receive` (subject, bytes); output: the ``send``
callable given at construction (subject, bytes), and the router's sessions.
Time: the router's clock.
"""

from __future__ import annotations

import logging
import random
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..router.ids import MAX_ID
from . import wire
from .bridge import RealmBridge
from .subjects import Subjects

if TYPE_CHECKING:
    from ..config import ClusterConfig
    from ..router.router import Router

log = logging.getLogger("fastwamp.cluster")

#: Session ids are node-partitioned: the top SLOT_BITS of the 53 bits name the node
#: (a hash of its name), the rest are random.
SLOT_BITS = 12
_LOCAL_BITS = 53 - SLOT_BITS

#: Publishes one message on a subject; False if it was refused and will never be sent.
Send = Callable[[str, bytes], "bool | None"]

#: A SNAPSHOT is sent in parts of about this many bytes (well under NATS's default
#: max_payload of 1 MiB), so a node with many sessions, callees and subscribers can
#: still be snapshotted.
SNAPSHOT_PART_BYTES = 256 * 1024
#: Most parts a snapshot may claim to have (a bound on what a peer keeps meanwhile).
MAX_SNAPSHOT_PARTS = 65536


def node_slot(name: str) -> int:
    """The session id partition of node ``name`` (a stable hash, 0 .. 2**SLOT_BITS-1)."""
    value = 2166136261
    for byte in name.encode("utf-8"):  # FNV-1a: the same on every node and run
        value = ((value ^ byte) * 16777619) & 0xFFFFFFFF
    return value % (1 << SLOT_BITS)


class PeerNode:
    """What this node knows of another: liveness, and the replica of its state."""

    __slots__ = ("name", "incarnation", "seq", "region", "last_seen", "entries", "synced",
                 "asked_at", "parts", "parts_seq")

    def __init__(self, name: str, incarnation: int, now: float) -> None:
        self.name = name
        self.incarnation = incarnation
        self.seq = 0
        self.region = ""
        self.last_seen = now
        self.entries: dict[tuple, list] = {}
        #: A snapshot was applied and every delta since.
        self.synced = False
        #: When a snapshot was last asked for (asked again after a heartbeat interval).
        self.asked_at = -1e9
        #: The parts received so far of the snapshot numbered ``parts_seq``.
        self.parts: dict[int, list] = {}
        self.parts_seq = -1


class _OutChannel:
    """Messages this node sent to one other node, numbered, kept a while for resending."""

    __slots__ = ("epoch", "seq", "kept", "kept_bytes", "to_incarnation")

    def __init__(self, to_incarnation: int) -> None:
        self.epoch = random.getrandbits(31)
        self.seq = 0
        #: The incarnation of the destination when the numbering began (0: unknown).
        self.to_incarnation = to_incarnation
        #: (seq, time sent, encoded CHANNEL message), oldest first.
        self.kept: deque[tuple[int, float, bytes]] = deque()
        self.kept_bytes = 0


class _InChannel:
    """Messages from one other node: the next number expected, and those held until
    the ones before them arrive."""

    __slots__ = ("incarnation", "epoch", "expected", "held", "asked_for", "tail_seen")

    def __init__(self, incarnation: int, epoch: int, expected: int) -> None:
        self.incarnation = incarnation
        self.epoch = epoch
        self.expected = expected
        self.held: dict[int, list] = {}
        #: The number last asked for again (asked once until it changes or a heartbeat).
        self.asked_for = 0
        #: The last number the sender's previous heartbeat said it had sent.
        self.tail_seen = 0


#: Sent node-to-node messages kept for resending: at most this long and this much.
RESEND_KEEP_SECONDS = 10.0
RESEND_KEEP_BYTES = 16 * 1024 * 1024
#: Out-of-order messages held per sender before the missing ones are given up.
MAX_HELD = 10_000


class ClusterNode:
    """This router's membership in the cluster (see the module docstring)."""

    def __init__(self, router: Router, config: ClusterConfig, name: str, send: Send) -> None:
        self.router = router
        self.config = config
        self.name = name
        self.region = config.region
        self.incarnation = random.SystemRandom().getrandbits(53)
        self.subjects = Subjects(config.subject_prefix, name)
        self._send = send
        self._clock = router.clock
        self.seq = 0
        #: This node's own part of the state, by entry key.
        self.entries: dict[tuple, list] = {}
        self.peers: dict[str, PeerNode] = {}
        self.slot = node_slot(name)
        #: The node-to-node channels (see :mod:`fastwamp.cluster.wire`), by node name.
        self._out: dict[str, _OutChannel] = {}
        self._in: dict[str, _InChannel] = {}
        self.bridges: dict[str, RealmBridge] = {}
        self._timer: Any = None
        #: Counters, served with the router's by fastwamp.router.get_stats.
        self.stats = router.stats
        self.stats.update({"cluster_messages_in": 0, "cluster_messages_out": 0,
                           "cluster_bad_messages": 0, "cluster_nodes_lost": 0,
                           "cluster_nodes": 0, "cluster_resent": 0,
                           "cluster_lost": 0})
        router.draw_session_id = self.draw_session_id
        for realm in router.realms.values():
            bridge = RealmBridge(self, realm)
            self.bridges[realm.name] = bridge
            realm.events.add(bridge)

    # -- life ----------------------------------------------------------------------

    def start(self) -> None:
        """Announce this node and start its heartbeats (the link is up)."""
        self._heartbeat()

    def stop(self) -> None:
        """Say goodbye (clean shutdown): the others drop this node's part at once."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.send(self.subjects.nodes, [wire.BYE, self.name, self.incarnation])

    def draw_session_id(self) -> int:
        """A session id in this node's partition (unique in the cluster as long as node
        names hash to distinct slots, which :meth:`_on_heartbeat` checks)."""
        local = random.getrandbits(_LOCAL_BITS)
        value = (self.slot << _LOCAL_BITS) | local
        return value if 0 < value <= MAX_ID else 1 + local

    def send(self, subject: str, message: list) -> None:
        self.stats["cluster_messages_out"] += 1
        self._send(subject, wire.encode(message))

    def send_to(self, node: str, message: list) -> None:
        """A message for one node; the bridge's (events, invocations, answers) go through
        the node's numbered channel, so that what NATS loses is sent again."""
        if message[0] not in wire.RELIABLE_KINDS:
            self.send(self.subjects.node(node), message)
            return
        channel = self._out.get(node)
        if channel is None:
            peer = self.peers.get(node)
            channel = self._out[node] = _OutChannel(peer.incarnation if peer else 0)
        seq = channel.seq + 1
        data = wire.encode([wire.CHANNEL, self.name, self.incarnation, channel.epoch,
                            seq, message, channel.to_incarnation])
        self.stats["cluster_messages_out"] += 1
        if self._send(self.subjects.node(node), data) is False:
            return  # refused (too large): not numbered, so nobody waits for it
        channel.seq = seq
        now = self._clock.time()
        kept = channel.kept
        kept.append((seq, now, data))
        channel.kept_bytes += len(data)
        while kept and (channel.kept_bytes > RESEND_KEEP_BYTES
                        or now - kept[0][1] > RESEND_KEEP_SECONDS):
            channel.kept_bytes -= len(kept.popleft()[2])

    def _heartbeat(self) -> None:
        sent = {node: [channel.epoch, channel.seq, channel.to_incarnation]
                for node, channel in self._out.items() if node in self.peers}
        self.send(self.subjects.nodes,
                  [wire.HEARTBEAT, self.name, self.incarnation, self.seq, self.region, sent])
        self._expire_peers()
        self._timer = self._clock.call_later(self.config.heartbeat_interval, self._heartbeat)

    def _expire_peers(self) -> None:
        now = self._clock.time()
        limit = self.config.node_timeout
        for peer in list(self.peers.values()):
            if now - peer.last_seen > limit:
                log.warning("cluster: node %s not heard from for %.1f s: dropping its "
                            "registrations and subscriptions", peer.name, now - peer.last_seen)
                self.stats["cluster_nodes_lost"] += 1
                self._drop_peer(peer)

    def _drop_peer(self, peer: PeerNode) -> None:
        self.peers.pop(peer.name, None)
        # What it missed meanwhile is not sent again: the calls it was part of were
        # answered wamp.error.canceled; numbering to it starts over with a new epoch.
        # (What came from it stays counted, so that nothing it sends again after a
        # partition is delivered twice.)
        self._out.pop(peer.name, None)
        self.stats["cluster_nodes"] = len(self.peers)
        sessions = [e for e in peer.entries.values() if e[0] == wire.SES]
        self._replace_entries(peer, {})
        for bridge in self.bridges.values():
            bridge.node_gone(peer.name, [e for e in sessions if e[1] == bridge.name])

    # -- own state -------------------------------------------------------------------

    def change(self, entry: list, added: bool) -> None:
        """This node's part changed: record it and broadcast the delta."""
        key = wire.entry_key(entry)
        if added:
            self.entries[key] = entry
        elif self.entries.pop(key, None) is None:
            return
        self.seq += 1
        self.send(self.subjects.state,
                  [wire.DELTA, self.name, self.incarnation, self.seq, added, entry])

    # -- input -----------------------------------------------------------------------

    def receive(self, subject: str, data: bytes) -> None:
        """One NATS message.  A malformed one is logged and dropped, never raised."""
        self.stats["cluster_messages_in"] += 1
        try:
            message = wire.decode(data)
            kind = message[0]
            if kind == wire.HEARTBEAT:
                self._on_heartbeat(message)
            elif kind == wire.DELTA:
                self._on_delta(message)
            elif kind == wire.BYE:
                self._on_bye(message)
            elif kind == wire.SNAPSHOT_REQUEST:
                for part in self._snapshot_parts():
                    self.send_to(message[1], part)
                for realm_bridge in self.bridges.values():
                    realm_bridge.resend_retained(message[1])
            elif kind == wire.SNAPSHOT:
                self._on_snapshot(message)
            elif kind == wire.CHANNEL:
                self._on_channel(message)
            elif kind == wire.RESEND:
                self._on_resend(message)
            elif kind == wire.SKIP:
                self._on_skip(message)
            else:
                self._deliver(message)
        except Exception:
            self.stats["cluster_bad_messages"] += 1
            log.exception("cluster: message on %s dropped", subject)

    def _deliver(self, message: list) -> None:
        """A bridge message (also from a node whose heartbeat has not arrived yet: it
        knows this one)."""
        if message[1] == self.name:
            return
        bridge = self.bridges.get(message[2])
        if bridge is not None:
            bridge.receive(message[0], message)

    # -- node-to-node channels ---------------------------------------------------------

    def _on_channel(self, message: list) -> None:
        _, sender, incarnation, epoch, seq, inner = message[:6]
        to = message[6] if len(message) > 6 else 0
        if sender == self.name or type(seq) is not int or type(inner) is not list:
            return
        if to and to != self.incarnation:
            return  # for an earlier incarnation of this node
        channel = self._in.get(sender)
        if channel is None or channel.incarnation != incarnation or channel.epoch != epoch:
            # A numbering meant for this incarnation is counted from its start (what
            # came before this message was lost); one begun before the sender knew
            # this node, from this message.
            channel = self._in[sender] = _InChannel(incarnation, epoch,
                                                    1 if to == self.incarnation else seq)
        if seq < channel.expected or seq in channel.held:
            return  # a duplicate (sent again)
        if seq > channel.expected:
            channel.held[seq] = inner
            if len(channel.held) > MAX_HELD:
                self._give_up(sender, channel, min(channel.held))
            elif channel.asked_for != channel.expected:
                self._ask_again(sender, channel)
            return
        channel.expected += 1
        self._deliver(inner)
        self._release(channel)

    def _release(self, channel: _InChannel) -> None:
        """Deliver the held messages that are next in order."""
        held = channel.held
        while channel.expected in held:
            inner = held.pop(channel.expected)
            channel.expected += 1
            self._deliver(inner)

    def _ask_again(self, sender: str, channel: _InChannel) -> None:
        channel.asked_for = channel.expected
        self.send_to(sender, [wire.RESEND, self.name, channel.epoch, channel.expected])

    def _give_up(self, sender: str, channel: _InChannel, seq: int) -> None:
        """What is missing of ``channel.expected`` .. ``seq - 1`` from ``sender`` is lost
        for good: deliver what is held of it, in order, and go on from ``seq``."""
        held = channel.held
        early = sorted(n for n in held if n < seq)
        lost = seq - channel.expected - len(early)
        for n in early:
            self._deliver(held.pop(n))
        channel.expected = seq
        if lost > 0:
            self.stats["cluster_lost"] += lost
            log.warning("cluster: %d message(s) from node %s lost", lost, sender)
        self._release(channel)

    def _on_resend(self, message: list) -> None:
        _, requester, epoch, start = message[:4]
        channel = self._out.get(requester)
        if channel is None or channel.epoch != epoch or type(start) is not int:
            return
        subject = self.subjects.node(requester)
        first = channel.kept[0][0] if channel.kept else channel.seq + 1
        if start < first:  # no longer kept: the receiver skips them
            self.send(subject, [wire.SKIP, self.name, epoch, first])
        for seq, _sent, data in channel.kept:
            if seq >= start:
                self.stats["cluster_resent"] += 1
                self._send(subject, data)

    def _on_skip(self, message: list) -> None:
        _, sender, epoch, seq = message[:4]
        channel = self._in.get(sender)
        if channel is not None and channel.epoch == epoch and type(seq) is int \
                and seq > channel.expected:
            self._give_up(sender, channel, seq)

    def _check_tail(self, sender: str, incarnation: int, sent: Any) -> None:
        """A heartbeat said what ``sender`` sent this node: ask for what did not come
        (when two heartbeats in a row say so, so that a heartbeat that overtook its
        message asks nothing).  A numbering not heard of yet starts with its first
        message that arrives (what came before it was for an earlier incarnation)."""
        mine = sent.get(self.name) if type(sent) is dict else None
        if type(mine) is not list or len(mine) < 3 or type(mine[1]) is not int:
            return
        epoch, last, to = mine[0], mine[1], mine[2]
        channel = self._in.get(sender)
        if channel is None or channel.incarnation != incarnation or channel.epoch != epoch:
            if to != self.incarnation or last < 1:
                return
            # Sent to this incarnation, and nothing of it arrived yet: count from 1.
            channel = self._in[sender] = _InChannel(incarnation, epoch, 1)
        if channel.tail_seen >= channel.expected and last >= channel.expected:
            self._ask_again(sender, channel)
        channel.tail_seen = last

    def _peer(self, name: str, incarnation: int) -> PeerNode | None:
        """The peer ``name`` (new, or reset when it restarted); None for this node."""
        if name == self.name:
            if incarnation != self.incarnation:
                log.error("cluster: another node is also named %r", name)
            return None
        now = self._clock.time()
        peer = self.peers.get(name)
        if peer is not None and peer.incarnation != incarnation:
            log.info("cluster: node %s restarted", name)
            self._drop_peer(peer)
            peer = None
        if peer is None:
            peer = self.peers[name] = PeerNode(name, incarnation, now)
            self.stats["cluster_nodes"] = len(self.peers)
            if node_slot(name) == self.slot:
                log.error("cluster: node names %r and %r share a session id partition; "
                          "rename one of them", name, self.name)
            log.info("cluster: node %s joined", name)
        peer.last_seen = now
        return peer

    def _on_heartbeat(self, message: list) -> None:
        _, name, incarnation, seq, region = message[:5]
        peer = self._peer(name, incarnation)
        if peer is None:
            return
        peer.region = region
        if len(message) > 5:
            self._check_tail(name, incarnation, message[5])
        if not peer.synced or seq != peer.seq:
            self._ask_snapshot(peer)

    def _ask_snapshot(self, peer: PeerNode) -> None:
        now = self._clock.time()
        if now - peer.asked_at < self.config.heartbeat_interval:
            return
        peer.asked_at = now
        self.send_to(peer.name, [wire.SNAPSHOT_REQUEST, self.name])

    def _on_delta(self, message: list) -> None:
        _, name, incarnation, seq, added, entry = message[:6]
        peer = self._peer(name, incarnation)
        if peer is None:
            return
        if not peer.synced or seq != peer.seq + 1:
            if seq > peer.seq:
                peer.synced = False
                self._ask_snapshot(peer)
            return
        peer.seq = seq
        self._apply(peer, entry, added)

    def _snapshot_parts(self) -> list[list]:
        """This node's part of the state as SNAPSHOT messages of about
        SNAPSHOT_PART_BYTES each: ``[SNAPSHOT, node, incarnation, seq, entries, index,
        count]``."""
        parts: list[list] = [[]]
        size = 0
        for entry in self.entries.values():
            entry_size = len(wire.encode(entry))
            if parts[-1] and size + entry_size > SNAPSHOT_PART_BYTES:
                parts.append([])
                size = 0
            parts[-1].append(entry)
            size += entry_size
        return [[wire.SNAPSHOT, self.name, self.incarnation, self.seq, entries, index,
                 len(parts)] for index, entries in enumerate(parts)]

    def _on_snapshot(self, message: list) -> None:
        _, name, incarnation, seq, entries = message[:5]
        peer = self._peer(name, incarnation)
        if peer is None or (peer.synced and seq <= peer.seq):
            return
        if len(message) >= 7 and message[6] != 1:
            index, count = message[5], message[6]
            if type(index) is not int or type(count) is not int or \
                    not 0 <= index < count <= MAX_SNAPSHOT_PARTS:
                raise ValueError(f"snapshot part {index!r} of {count!r}")
            if peer.parts_seq != seq:  # a newer snapshot: the parts of the older go
                peer.parts = {}
                peer.parts_seq = seq
            peer.parts[index] = entries
            if len(peer.parts) < count:
                return  # (a lost part: the next heartbeat asks for the whole again)
            entries = [entry for i in range(count) for entry in peer.parts[i]]
            peer.parts = {}
            peer.parts_seq = -1
        self._replace_entries(peer, {wire.entry_key(e): e for e in entries})
        peer.seq = seq
        peer.synced = True

    def _on_bye(self, message: list) -> None:
        peer = self.peers.get(message[1])
        if peer is not None and peer.incarnation == message[2]:
            log.info("cluster: node %s left", peer.name)
            self._drop_peer(peer)

    def _replace_entries(self, peer: PeerNode, entries: dict[tuple, list]) -> None:
        old = peer.entries
        for key, entry in list(old.items()):
            if key not in entries:
                self._apply(peer, entry, False)
        for key, entry in entries.items():
            if key not in old:
                self._apply(peer, entry, True)

    def _apply(self, peer: PeerNode, entry: list, added: bool) -> None:
        key = wire.entry_key(entry)
        if added:
            if key in peer.entries:
                return
            peer.entries[key] = entry
        else:
            stored = peer.entries.pop(key, None)
            if stored is None:
                return
            entry = stored  # with its attributes (a DELTA that removes carries the key only)
        bridge = self.bridges.get(entry[1])
        if bridge is not None:
            bridge.apply(peer.name, entry, added)
