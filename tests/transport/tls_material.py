"""Throwaway TLS material for the tests: a CA, server and client certificates.

Made with the ``cryptography`` package (EC P-256 keys: fast to generate), written
as PEM files into a folder the test owns.  Nothing here is secret or reused.
"""

from __future__ import annotations

import datetime
import ipaddress
import ssl
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


def _name(cn: str, org: str = "Example") -> x509.Name:
    return x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, org),
        x509.NameAttribute(NameOID.COMMON_NAME, cn),
    ])


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


@dataclass
class Issuer:
    name: x509.Name
    key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate


def make_ca(cn: str = "fastwamp test CA") -> Issuer:
    key = ec.generate_private_key(ec.SECP256R1())
    name = _name(cn)
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True,
                crl_sign=True, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .sign(key, hashes.SHA256())
    )
    return Issuer(name, key, cert)


def issue(
    ca: Issuer, cn: str, *, server: bool, org: str = "Example"
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(cn, org))
        .issuer_name(ca.name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()), False
        )
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
    )
    if server:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([
                x509.DNSName("localhost"),
                x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
            ]),
            critical=False,
        )
    return builder.sign(ca.key, hashes.SHA256()), key


def cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def sha256_hex(cert: x509.Certificate) -> str:
    return cert.fingerprint(hashes.SHA256()).hex()


@dataclass
class TLSFiles:
    """PEM files in ``folder``: ``ca.pem``, ``server.pem``/``server.key``, a second
    server certificate ``server2.pem``/``server2.key`` (for reloads), the client
    ``alice.pem``/``alice.key`` (CN=alice, O=Example) and ``mallory.pem``/``mallory.key``
    issued by another CA (``other-ca.pem``)."""

    folder: Path
    server_sha256: str
    server2_sha256: str
    alice_sha256: str

    def path(self, name: str) -> Path:
        return self.folder / name

    def client_context(self, client: str | None = None) -> ssl.SSLContext:
        """A client context trusting ``ca.pem``, presenting ``client``'s certificate."""
        context = ssl.create_default_context(cafile=str(self.path("ca.pem")))
        if client is not None:
            context.load_cert_chain(
                str(self.path(f"{client}.pem")), str(self.path(f"{client}.key"))
            )
        return context


def make_tls_files(folder: Path) -> TLSFiles:
    """Write a test PKI into ``folder`` (see :class:`TLSFiles`)."""
    folder.mkdir(parents=True, exist_ok=True)
    ca = make_ca()
    other = make_ca("another CA")
    (folder / "ca.pem").write_bytes(cert_pem(ca.cert))
    (folder / "other-ca.pem").write_bytes(cert_pem(other.cert))
    digests = {}
    for name, issuer, cn, server in (
        ("server", ca, "localhost", True),
        ("server2", ca, "localhost", True),
        ("alice", ca, "alice", False),
        ("mallory", other, "mallory", False),
    ):
        cert, key = issue(issuer, cn, server=server)
        (folder / f"{name}.pem").write_bytes(cert_pem(cert))
        (folder / f"{name}.key").write_bytes(_key_pem(key))
        digests[name] = sha256_hex(cert)
    return TLSFiles(folder, digests["server"], digests["server2"], digests["alice"])


def peer_cert_sha256(ssl_object: ssl.SSLObject | ssl.SSLSocket) -> str:
    """The SHA-256 of the certificate the server presented (hex)."""
    import hashlib

    der = ssl_object.getpeercert(binary_form=True)
    assert der is not None
    return hashlib.sha256(der).hexdigest()
