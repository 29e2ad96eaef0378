"""Shared registrations under callee churn: a hypothesis state machine.

Callees register, unregister, disconnect and answer (result, error,
``wamp.error.unavailable``) or sit on calls; callers call, cancel, and time
passes.  Whatever happens, every call gets exactly one final answer and no
INVOCATION ever reaches a callee that is not attached to the registration.
"""

from __future__ import annotations

from hypothesis import register_random, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from fastwamp.config import Config, RealmConfig
from fastwamp.testing import LinkedPeer, make_router
from fastwamp.wamp import messages as m

URI = "com.churn.proc"

# Let hypothesis seed the callee selector's random source, so runs replay.
for _module in ("fastwamp._core.callees_py", "fastwamp._core.callees_c"):
    try:
        register_random(__import__(_module, fromlist=["_default_rng"])._default_rng)
    except (ImportError, AttributeError):
        pass
POLICIES = ["roundrobin", "random", "first", "last", "least_inflight", "p2c"]


class ChurnMachine(RuleBasedStateMachine):
    @initialize(policy=st.sampled_from(POLICIES))
    def setup(self, policy):
        self.router, self.clock = make_router(Config(realms=[RealmConfig("realm1")]))
        self.policy = policy
        self.callees: list[LinkedPeer] = []  # connected callees, registered or not
        self.registered: set[int] = set()  # ids of peers attached to the registration
        self.reg_request = 0
        self.gone: list[LinkedPeer] = []
        self.caller = LinkedPeer(self.router)
        self.caller.hello()
        self.next_call = 0
        self.open_calls: set[int] = set()
        self.answers: dict[int, int] = {}

    # -- callees ------------------------------------------------------------

    @rule()
    def add_callee(self):
        p = LinkedPeer(self.router)
        p.hello()
        p.inbox = []
        self.callees.append(p)
        self._register(p)

    def _register(self, p):
        self.reg_request += 1
        p.send([m.REGISTER, self.reg_request, {"invoke": self.policy}, URI])
        reply = p.received.pop()
        assert reply[0] == m.REGISTERED, reply
        p.reg_id = reply[2]
        self.registered.add(id(p))

    @precondition(lambda self: self.registered)
    @rule(data=st.data())
    def unregister(self, data):
        p = data.draw(st.sampled_from([c for c in self.callees if id(c) in self.registered]))
        self.reg_request += 1
        p.send([m.UNREGISTER, self.reg_request, p.reg_id])
        assert p.received.pop() == [m.UNREGISTERED, self.reg_request]
        self.registered.discard(id(p))

    @precondition(lambda self: any(id(c) not in self.registered for c in self.callees))
    @rule(data=st.data())
    def reregister(self, data):
        p = data.draw(st.sampled_from([c for c in self.callees if id(c) not in self.registered]))
        self._register(p)

    @precondition(lambda self: self.callees)
    @rule(data=st.data())
    def disconnect(self, data):
        p = data.draw(st.sampled_from(self.callees))
        self._check_invocations(p)
        self.callees.remove(p)
        self.registered.discard(id(p))
        p.disconnect()
        p.received.clear()
        self.gone.append(p)

    @precondition(lambda self: self.callees)
    @rule(data=st.data(), how=st.sampled_from(["result", "error", "unavailable", "hold"]))
    def answer(self, data, how):
        p = data.draw(st.sampled_from(self.callees))
        invocations = self._check_invocations(p)
        for inv in invocations:
            if how == "result":
                p.send([m.YIELD, inv[1], {}, [inv[1]]])
            elif how == "error":
                p.send([m.ERROR, m.INVOCATION, inv[1], {}, "com.app.error"])
            elif how == "unavailable":
                p.send([m.ERROR, m.INVOCATION, inv[1], {}, "wamp.error.unavailable"])
            else:
                p.held = getattr(p, "held", []) + [inv]

    @precondition(lambda self: any(getattr(c, "held", None) for c in self.callees))
    @rule()
    def release_held(self):
        for p in self.callees:
            for inv in getattr(p, "held", []):
                p.send([m.YIELD, inv[1], {}])
            p.held = []

    def _drain(self, p):
        """Move what the router sent to ``p`` into its inbox, checking it was allowed."""
        for msg in p.take():
            if msg[0] == m.INVOCATION:
                assert id(p) in self.registered, "INVOCATION sent to a callee not registered"
                p.inbox.append(msg)
            else:
                assert msg[0] == m.INTERRUPT, msg

    def _check_invocations(self, p):
        self._drain(p)
        invocations, p.inbox = p.inbox, []
        return invocations

    # -- callers ------------------------------------------------------------

    @rule(timeout=st.sampled_from([0, 0, 100]))
    def call(self, timeout):
        self.next_call += 1
        options = {"timeout": timeout} if timeout else {}
        self.caller.send([m.CALL, self.next_call, options, URI])
        self.open_calls.add(self.next_call)
        self._collect()

    @precondition(lambda self: self.open_calls)
    @rule(data=st.data(), mode=st.sampled_from(["skip", "kill", "killnowait"]))
    def cancel(self, data, mode):
        request = data.draw(st.sampled_from(sorted(self.open_calls)))
        self.caller.send([m.CANCEL, request, {"mode": mode}])

    @rule()
    def time_passes(self):
        self.clock.advance(0.15)

    def _collect(self):
        for msg in self.caller.take():
            if msg[0] == m.RESULT and msg[2].get("progress"):
                continue
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
            self._check_invocations(p)
            p.disconnect()
        self._collect()
        assert not self.open_calls, f"calls never answered: {sorted(self.open_calls)}"
        assert all(count == 1 for count in self.answers.values())
        assert set(self.answers) == set(range(1, self.next_call + 1))


ChurnMachine.TestCase.settings = settings(max_examples=300, stateful_step_count=40,
                                          deadline=None)
TestChurn = ChurnMachine.TestCase
