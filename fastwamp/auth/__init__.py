"""WAMP authentication, sans-I/O: per realm, methods chosen in the client's order.

:class:`RealmAuthenticator` decides a HELLO; a method either welcomes at once
(anonymous, tls), fails, or challenges, and its pending step then decides the
client's AUTHENTICATE.  The session (``fastwamp.router.session``) sends what is
decided.  Nothing here does I/O.
"""

from .authenticator import RealmAuthenticator
from .outcome import (
    Challenge,
    Deferred,
    Failure,
    HelloRequest,
    Identity,
    Outcome,
    PendingStep,
)

__all__ = ["Challenge", "Deferred", "Failure", "HelloRequest", "Identity", "Outcome",
           "PendingStep", "RealmAuthenticator"]
