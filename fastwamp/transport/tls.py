"""TLS for listeners: the server's ``ssl.SSLContext``, what a session learns of the
connection's TLS, and recognising a TLS client on a plain listener.

A listener with ``tls_certificate`` accepts TCP, reads the client's first bytes,
and, if they are a TLS ClientHello, puts the loop's TLS protocol (uvloop's, in
C) between the socket and the connection (see
:meth:`fastwamp.transport.base.BaseConnection._begin_tls`); so the connection's
``handshake_timeout`` and ``max_connections_per_address`` cover the TLS
handshake too, a failed handshake is logged with the peer's address, and a
plain client is recognised as such.
The context is built when the listener starts and again on each reload
(SIGHUP): a connection uses the context that was current when it was accepted.
"""

from __future__ import annotations

import hashlib
import ssl
from typing import Any

from fastwamp.config import ListenerConfig

#: ``tls_min_version`` values.
_VERSIONS = {"1.2": ssl.TLSVersion.TLSv1_2, "1.3": ssl.TLSVersion.TLSv1_3}
#: ``tls_client_certificate`` values.
_VERIFY_MODES = {
    "none": ssl.CERT_NONE,
    "optional": ssl.CERT_OPTIONAL,
    "required": ssl.CERT_REQUIRED,
}
#: Short names of RFC 4514 (and the usual ones of OpenSSL) for subject attributes.
_SHORT_NAMES = {
    "commonName": "CN",
    "countryName": "C",
    "localityName": "L",
    "stateOrProvinceName": "ST",
    "organizationName": "O",
    "organizationalUnitName": "OU",
    "streetAddress": "STREET",
    "domainComponent": "DC",
    "userId": "UID",
}


class TLSSetupError(Exception):
    """A listener's TLS files cannot be used: ``key`` names the listener key at fault."""

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"{key}: {problem}")
        self.key = key
        self.problem = problem


class _EncryptedKey(Exception):
    pass


def _no_passphrase() -> str:
    # Called by OpenSSL only for an encrypted key; without it, OpenSSL would ask
    # for the passphrase on the terminal.
    raise _EncryptedKey


def _read(key: str, path: str) -> bytes:
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as exc:
        raise TLSSetupError(key, f"cannot read {path}: {exc.strerror or exc}") from None
    if b"-----BEGIN" not in data:
        raise TLSSetupError(key, f"{path} is not a PEM file (no -----BEGIN line)")
    return data


def server_context(listener: ListenerConfig) -> ssl.SSLContext:
    """The server-side TLS context of a listener with ``tls_certificate`` set.

    Raises:
        TLSSetupError: a file is missing or unreadable, not PEM, the key is
            encrypted or does not match the certificate, or the CA file holds no
            usable certificate.
    """
    cert_file = listener.tls_certificate
    key_file = listener.tls_key or None
    cert_pem = _read("tls_certificate", cert_file)
    if b"CERTIFICATE-----" not in cert_pem:
        raise TLSSetupError("tls_certificate", f"{cert_file} holds no certificate")
    if key_file is not None:
        if b"PRIVATE KEY-----" not in _read("tls_key", key_file):
            raise TLSSetupError("tls_key", f"{key_file} holds no private key")
    elif b"PRIVATE KEY-----" not in cert_pem:
        raise TLSSetupError(
            "tls_key", f"not set, and {cert_file} holds no private key: set tls_key"
        )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = _VERSIONS[listener.tls_min_version]
    # No TLS compression (CRIME), the server's cipher order, and no renegotiation
    # (TLS 1.2 clients could make the router redo handshakes at will).
    context.options |= (
        ssl.OP_NO_COMPRESSION | ssl.OP_CIPHER_SERVER_PREFERENCE | ssl.OP_NO_RENEGOTIATION
    )
    try:
        context.load_cert_chain(cert_file, key_file, password=_no_passphrase)
    except _EncryptedKey:
        raise TLSSetupError(
            "tls_key", f"{key_file or cert_file}: the key is passphrase-protected (not supported)"
        ) from None
    except ssl.SSLError as exc:
        reason = exc.reason or ""
        if reason == "KEY_VALUES_MISMATCH":
            raise TLSSetupError(
                "tls_key", f"{key_file or cert_file} does not match the certificate {cert_file}"
            ) from None
        raise TLSSetupError(
            "tls_key" if key_file and "KEY" in reason.upper() else "tls_certificate",
            f"cannot load the certificate and key: {exc}",
        ) from None
    except OSError as exc:  # pragma: no cover - read above; a race with the file changing
        raise TLSSetupError("tls_certificate", str(exc)) from None
    if listener.tls_client_certificate != "none":
        ca_file = listener.tls_ca_certificates
        ca_pem = _read("tls_ca_certificates", ca_file)
        if b"CERTIFICATE-----" not in ca_pem:
            raise TLSSetupError("tls_ca_certificates", f"{ca_file} holds no certificate")
        try:
            context.load_verify_locations(cafile=ca_file)
        except (ssl.SSLError, OSError) as exc:
            raise TLSSetupError(
                "tls_ca_certificates", f"cannot load {ca_file}: {exc}"
            ) from None
        context.verify_mode = _VERIFY_MODES[listener.tls_client_certificate]
    return context


def _escape(value: str) -> str:
    """An attribute value escaped as RFC 4514 §2.4 says."""
    out = []
    for i, ch in enumerate(value):
        if ch in ',+"\\<>;=' or (ch == "#" and i == 0) or (
            ch == " " and (i == 0 or i == len(value) - 1)
        ):
            out.append("\\" + ch)
        elif ord(ch) < 0x20 or ch == "\x7f":
            out.append(f"\\{ord(ch):02x}")
        else:
            out.append(ch)
    return "".join(out)


def subject_string(subject: Any) -> str:
    """A certificate subject, as ``ssl.SSLSocket.getpeercert()`` gives it, in the
    form of RFC 4514: most specific first, ``CN=alice,O=Example``."""
    rdns = []
    for rdn in reversed(subject):
        rdns.append(
            "+".join(f"{_SHORT_NAMES.get(name, name)}={_escape(str(value))}" for name, value in rdn)
        )
    return ",".join(rdns)


def tls_info(ssl_object: Any) -> dict[str, Any]:
    """What the session's ``transport_info["tls"]`` says about the connection.

    ``{"version": "TLSv1.3", "cipher": "TLS_AES_256_GCM_SHA384",
    "peer_cert_sha256": hex digest of the client certificate (DER) or None,
    "peer_cert_subject": "CN=alice,O=Example" (RFC 4514) or None,
    "channel_binding": {"tls-unique": bytes}}``.  A client certificate is only
    there when it was verified against ``tls_ca_certificates``.  ``tls-unique``
    exists for TLS 1.2 only (RFC 9266: TLS 1.3 has no such value); with TLS 1.3
    ``channel_binding`` is an empty dict (``tls-exporter`` would need keying
    material that Python's ``ssl`` module does not export).
    """
    version = ssl_object.version() or ""
    cipher = ssl_object.cipher()
    der = ssl_object.getpeercert(binary_form=True)
    subject = None
    digest = None
    if der:
        digest = hashlib.sha256(der).hexdigest()
        subject = subject_string(ssl_object.getpeercert().get("subject", ()))
    binding: dict[str, bytes] = {}
    if version == "TLSv1.2":
        unique = ssl_object.get_channel_binding("tls-unique")
        if unique:
            binding["tls-unique"] = unique
    return {
        "version": version,
        "cipher": cipher[0] if cipher else "",
        "peer_cert_sha256": digest,
        "peer_cert_subject": subject,
        "channel_binding": binding,
    }


def is_tls_client_hello(data: bytes | bytearray) -> bool:
    """Whether ``data``, the first bytes from a client, start a TLS record of type
    handshake (0x16) of protocol version 3.x: a TLS client on a plain listener.

    One byte alone is taken as the start of one (no plain WAMP client sends 0x16)."""
    return bool(data) and data[0] == 0x16 and (len(data) < 2 or data[1] == 0x03)


def plain_client_reason(exc: BaseException) -> str | None:
    """If a failed TLS handshake shows the client was not speaking TLS at all, say
    what it spoke instead (else None)."""
    reason = getattr(exc, "reason", None)
    if reason == "HTTP_REQUEST":
        return "a plain HTTP request (ws:// instead of wss://?)"
    if reason in ("WRONG_VERSION_NUMBER", "UNKNOWN_PROTOCOL", "RECORD_LAYER_FAILURE",
                  "PACKET_LENGTH_TOO_LONG"):
        return "not TLS (a plain client?)"
    return None
