"""NATS subjects of a cluster, and escaping of names into subject tokens.

A NATS subject is tokens separated by ``.``; a token cannot hold ``.``, ``*``,
``>``, whitespace or control characters.  A node name (any string) becomes one
token by percent-encoding every byte of its UTF-8 form outside
``[A-Za-z0-9_-]`` (``%`` itself included), so distinct names give distinct tokens.

Subjects, under the configured prefix ``P``:

* ``P.all.nodes``: heartbeats and goodbyes of every node (broadcast).
* ``P.all.state``: changes to a node's replicated state (broadcast, numbered).
* ``P.node.<node>``: messages for one node (events, invocations, answers,
  snapshot requests and snapshots).

A node takes both broadcasts with one subscription (``P.all.>``), so a heartbeat
never overtakes the change it announces.
"""

from __future__ import annotations

_SAFE = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")


def subject_token(name: str) -> str:
    """``name`` as one NATS subject token (reversible, see the module docstring)."""
    out = []
    for byte in name.encode("utf-8"):
        out.append(chr(byte) if byte in _SAFE else f"%{byte:02X}")
    return "".join(out) or "%"


def token_name(token: str) -> str:
    """The name :func:`subject_token` made ``token`` from."""
    if token == "%":
        return ""
    data = bytearray()
    i = 0
    while i < len(token):
        if token[i] == "%":
            data.append(int(token[i + 1:i + 3], 16))
            i += 3
        else:
            data.append(ord(token[i]))
            i += 1
    return data.decode("utf-8")


class Subjects:
    """The subjects of one cluster (prefix) as seen from one node."""

    __slots__ = ("prefix", "broadcast", "nodes", "state", "inbox")

    def __init__(self, prefix: str, node: str) -> None:
        self.prefix = prefix
        #: What a node subscribes to for both broadcasts.
        self.broadcast = f"{prefix}.all.>"
        self.nodes = f"{prefix}.all.nodes"
        self.state = f"{prefix}.all.state"
        #: This node's own inbox.
        self.inbox = self.node(node)

    def node(self, name: str) -> str:
        """The inbox subject of node ``name``."""
        return f"{self.prefix}.node.{subject_token(name)}"
