"""Shared registrations under churn across three nodes: a hypothesis state machine.

Callees on any node register, unregister, disconnect and answer (result, error,
``wamp.error.unavailable``) or sit on calls; a node is cut off from the bus and
comes back; the caller on node 0 calls and cancels; time passes.  Whatever
happens, every call gets exactly one final answer, and no INVOCATION reaches a
callee that is not attached to the registration.
"""

from __future__ import annotations

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from fastwamp.config import RealmConfig
from fastwamp.testing import LinkedPeer
from fastwamp.wamp import messages as m

from .memory import Cluster

URI = "com.churn.proc"
POLICIES = ["roundrobin", "random", "first", "last", "least_inflight"]


class ClusterChurn(RuleBasedStateMachine):
    @initialize(policy=st.sampled_from(POLICIES),
                locality=st.sampled_from(["local_first", "global"]))
    def setup(self, policy, locality):
        self.c = Cluster(3, RealmConfig("realm1", locality=locality))
        self.policy = policy
        self.callees: list[LinkedPeer] = []
        self.registered: set[int] = set()
        self.gone: list[LinkedPeer] = []
        self.caller = self.c.peer(0)
        self.next_call = 0
        self.open_calls: set[int] = set()
        self.answers: dict[int, int] = {}
        self.request = 0

    def _pump(self):
        self.c.bus.pump()

    @rule(node=st.integers(0, 2))
    def add_callee(self, node):
        p = self.c.peer(node)
        p.inbox = []
        p.node = node
        self.callees.append(p)
        self._register(p)

    def _register(self, p):
        self.request += 1
        p.send([m.REGISTER, self.request, {"invoke": self.policy}, URI])
        reply = p.received.pop()
        if reply[0] == m.REGISTERED:
            p.reg_id = reply[2]
            self.registered.add(id(p))
        else:  # a remote registration with another policy is not possible here
            raise AssertionError(reply)
        self._pump()

    @precondition(lambda self: self.registered)
    @rule(data=st.data())
    def unregister(self, data):
        p = data.draw(st.sampled_from([c for c in self.callees if id(c) in self.registered]))
        self._drain(p)
        self.request += 1
        p.send([m.UNREGISTER, self.request, p.reg_id])
        assert p.received.pop() == [m.UNREGISTERED, self.request]
        self.registered.discard(id(p))
        self._pump()

    @precondition(lambda self: self.callees)
    @rule(data=st.data())
    def disconnect(self, data):
        p = data.draw(st.sampled_from(self.callees))
        self._drain(p)
        self.callees.remove(p)
        self.registered.discard(id(p))
        p.disconnect()
        p.received.clear()
        self.gone.append(p)
        self._pump()

    @precondition(lambda self: self.callees)
    @rule(data=st.data(), how=st.sampled_from(["result", "error", "unavailable", "hold"]))
    def answer(self, data, how):
        p = data.draw(st.sampled_from(self.callees))
        self._drain(p)
        invocations, p.inbox = p.inbox, []
        for inv in invocations:
            if how == "result":
                p.send([m.YIELD, inv[1], {}, [inv[1]]])
            elif how == "error":
                p.send([m.ERROR, m.INVOCATION, inv[1], {}, "com.app.error"])
            elif how == "unavailable":
                p.send([m.ERROR, m.INVOCATION, inv[1], {}, "wamp.error.unavailable"])
            else:
                p.held = getattr(p, "held", []) + [inv]
        self._pump()

    @rule()
    def release_held(self):
        for p in self.callees:
            for inv in getattr(p, "held", []):
                p.send([m.YIELD, inv[1], {}])
            p.held = []
        self._pump()

    @rule(node=st.integers(1, 2), seconds=st.sampled_from([0.3, 4.0]))
    def cut_node(self, node, seconds):
        """Node ``node`` loses the bus for ``seconds`` (beyond node_timeout: it is
        dropped and comes back), then heals."""
        self.c.bus.cut.add(f"n{node}")
        self.c.settle(seconds)
        self.c.bus.cut.clear()
        self.c.settle(1.0)

    def _drain(self, p):
        for msg in p.take():
            if msg[0] == m.INVOCATION:
                assert id(p) in self.registered, "INVOCATION sent to a callee not registered"
                p.inbox.append(msg)
            else:
                assert msg[0] in (m.INTERRUPT, m.UNREGISTERED), msg

    @rule(timeout=st.sampled_from([0, 0, 100]))
    def call(self, timeout):
        self.next_call += 1
        options = {"timeout": timeout} if timeout else {}
        self.caller.send([m.CALL, self.next_call, options, URI])
        self.open_calls.add(self.next_call)
        self._pump()
        self._collect()

    @precondition(lambda self: self.open_calls)
    @rule(data=st.data(), mode=st.sampled_from(["skip", "kill", "killnowait"]))
    def cancel(self, data, mode):
        request = data.draw(st.sampled_from(sorted(self.open_calls)))
        self.caller.send([m.CANCEL, request, {"mode": mode}])
        self._pump()

    @rule()
    def time_passes(self):
        self.c.settle(0.2)

    def _collect(self):
        for msg in self.caller.take():
            assert msg[0] in (m.RESULT, m.ERROR), msg
            request = msg[1] if msg[0] == m.RESULT else msg[2]
            self.answers[request] = self.answers.get(request, 0) + 1
            assert self.answers[request] == 1, f"call {request} answered twice"
            self.open_calls.discard(request)

    @invariant()
    def answered_at_most_once_and_gone_get_nothing(self):
        if not hasattr(self, "caller"):
            return
        self._collect()
        for p in self.callees:
            self._drain(p)
        for p in self.gone:
            assert p.received == [], "a departed callee was sent something"

    def teardown(self):
        if not hasattr(self, "caller"):
            return
        for p in list(self.callees):
            self._drain(p)
            p.disconnect()
        self.c.settle(1.0)
        self._collect()
        assert not self.open_calls, f"calls never answered: {sorted(self.open_calls)}"
        assert set(self.answers) == set(range(1, self.next_call + 1))


ClusterChurn.TestCase.settings = settings(max_examples=60, stateful_step_count=30,
                                          deadline=None)
TestClusterChurn = ClusterChurn.TestCase
