"""TLS client-certificate authentication: the certificate, checked by the TLS layer,
names the user (no CHALLENGE).

The transport puts ``transport_info["tls"]["peer_cert_sha256"]`` (hex SHA-256 of the
DER certificate) and ``["peer_cert_subject"]`` (a string) there when the client
presented a certificate that verified; users list them in ``tls_fingerprints`` and
``tls_subjects``.  The fingerprint is looked up first.
"""

from __future__ import annotations

from .outcome import TLS, HelloRequest, Identity, Outcome, failed
from .users import UserDirectory


class TlsMethod:
    """Welcome the user whose certificate the connection presented."""

    name = TLS

    def __init__(self, users: UserDirectory) -> None:
        self.users = users

    def start(self, request: HelloRequest) -> Outcome | None:
        tls = request.transport_info.get("tls")
        if not isinstance(tls, dict):
            return None  # no TLS: the client's next method may do
        user = None
        fingerprint = tls.get("peer_cert_sha256")
        if isinstance(fingerprint, str) and fingerprint:
            user = self.users.by_fingerprint.get(fingerprint.replace(":", "").lower())
        subject = tls.get("peer_cert_subject")
        if user is None and isinstance(subject, str) and subject:
            user = self.users.by_subject.get(subject)
        if user is None:
            if fingerprint or subject:
                return failed(TLS, f"no user for the client certificate {fingerprint or subject}")
            return None  # no client certificate
        if request.authid and request.authid != user.authid:
            return failed(TLS, f"the client certificate is {user.authid!r}'s")
        return Identity(user.authid, user.authrole, TLS)
