from __future__ import annotations

import pytest

from fastwamp.config import Config, RealmConfig
from fastwamp.testing import LinkedPeer, make_router


@pytest.fixture
def config() -> Config:
    # The spec's disclosure rule; "always" (the default) is tested on its own.
    return Config(realms=[RealmConfig("realm1", disclosure="on_request")])


@pytest.fixture
def router_clock(config):
    return make_router(config)


@pytest.fixture
def router(router_clock):
    return router_clock[0]


@pytest.fixture
def clock(router_clock):
    return router_clock[1]


@pytest.fixture
def peer(router):
    """Factory: a joined session on realm1."""

    def make(roles=None, **details) -> LinkedPeer:
        p = LinkedPeer(router)
        welcome = p.hello("realm1", roles=roles, **details)
        assert welcome[0] == 2, welcome
        return p

    return make


@pytest.fixture
def set_broker_constant(monkeypatch):
    """Set a module constant of the broker in its interpreted and compiled builds
    (the compiled twin reads its own module's globals)."""
    import importlib

    def set_constant(name: str, value: object) -> None:
        for module_name in ("fastwamp.router.broker", "fastwamp.router.broker_c"):
            try:
                module = importlib.import_module(module_name)
            except ImportError:
                continue
            monkeypatch.setattr(module, name, value)

    return set_constant
