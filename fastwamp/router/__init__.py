"""The sans-I/O router core: sessions, realms, dealer and broker.

Nothing in this package performs I/O or imports asyncio: transports feed
decoded messages in and take queued messages out (see :class:`Router`).
There is one routing thread, so there are no locks.
"""

from .router import Router, Scheduler
from .session import RouterSession, SessionState, Sink

__all__ = ["Router", "RouterSession", "Scheduler", "SessionState", "Sink"]
