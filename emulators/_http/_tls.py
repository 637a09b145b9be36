"""A throw-away certificate authority and a loopback server certificate, made at emulator start.

Clients trust the emulator the same way they trust a real service: through a CA bundle, never
through ``verify=False``. The CA lives only as long as the process's temp dir.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = ["TlsMaterial", "make_tls_material"]


@dataclass(frozen=True)
class TlsMaterial:
    """Paths of the PEM files written by :func:`make_tls_material`."""

    ca_bundle: Path
    server_cert: Path
    server_key: Path
    ca_key: Path

    def server_context(self) -> ssl.SSLContext:
        """An SSL context for the listening socket, serving the loopback certificate."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(str(self.server_cert), str(self.server_key))
        return context


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def make_tls_material(directory: Path, *, common_name: str = "connector local emulator") -> TlsMaterial:
    """Create a CA and a server certificate for ``127.0.0.1`` / ``localhost`` signed by it.

    EC P-256 keys keep start-up in milliseconds (an RSA CA costs a noticeable fraction of a second
    on a busy CI box, and every emulator makes its own).
    """
    directory.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC)
    # Back-dated a little: a client whose clock lags ours must not see "not yet valid".
    not_before = now - dt.timedelta(hours=1)
    not_after = now + dt.timedelta(days=30)

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{common_name} CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )

    server_key = ec.generate_private_key(ec.SECP256R1())
    server_cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(server_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(
            x509.SubjectAlternativeName(
                [
                    x509.DNSName("localhost"),
                    x509.IPAddress(ipaddress.IPv4Address("127.0.0.1")),
                    x509.IPAddress(ipaddress.IPv6Address("::1")),
                ]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )

    material = TlsMaterial(
        ca_bundle=directory / "ca.pem",
        server_cert=directory / "server.pem",
        server_key=directory / "server-key.pem",
        ca_key=directory / "ca-key.pem",
    )
    material.ca_bundle.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    material.server_cert.write_bytes(server_cert.public_bytes(serialization.Encoding.PEM))
    material.server_key.write_bytes(_pem_key(server_key))
    material.server_key.chmod(0o600)
    # Written (owner-only) so a tool can mint further certificates for the same trust root,
    # e.g. a webhook receiver in a test; it dies with the temp dir.
    material.ca_key.write_bytes(_pem_key(ca_key))
    material.ca_key.chmod(0o600)
    return material
