"""Clustering: fastwamp nodes sharing realms through NATS.

:mod:`.subjects` names the NATS subjects, :mod:`.wire` encodes what crosses,
:mod:`.node` is the sans-I/O cluster node (membership, replicated state, the
per-realm bridges), :mod:`.bridge` the per-realm bridge (one more realm observer,
and proxies that stand for remote sessions in the dealer), :mod:`.link` the
nats-py adapter that carries the node's messages, :mod:`.natsserver` starts a
local nats-server.  Nothing here is imported unless the cluster is enabled.
"""
