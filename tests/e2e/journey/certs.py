"""A throwaway certificate authority and one server certificate for loopback https.

The browser journey serves the example site (gunicorn) and the development provider
(node) over TLS, as in production. Both use the certificate made here: issued by a test
CA that lives only in a temporary folder, for ``localhost`` and ``127.0.0.1`` (SAN).

* Django's server-side calls to the provider (``requests``) trust the CA through
  ``REQUESTS_CA_BUNDLE``;
* Chromium trusts only this certificate's public key, through
  ``--ignore-certificate-errors-spki-list`` (:attr:`LoopbackPKI.spki_sha256`): any other
  invalid certificate is still refused.
"""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

#: Names the server certificate is valid for: the site and the provider, loopback only.
DNS_NAMES = ("localhost",)
IP_ADDRESSES = ("127.0.0.1",)


@dataclass(frozen=True)
class LoopbackPKI:
    """Paths of the PEM files and the pin of the server key."""

    ca_cert: Path
    server_cert: Path  # the server certificate followed by the CA (the chain)
    server_key: Path
    #: base64 SHA-256 of the server certificate's SubjectPublicKeyInfo (Chromium's pin form).
    spki_sha256: str


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "django-secure-sso tests"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def make_loopback_pki(folder: Path, *, days: int = 2) -> LoopbackPKI:
    """Write a new CA and a ``localhost``/``127.0.0.1`` server certificate into ``folder``.

    Args:
        folder: an existing, private directory (a pytest ``tmp_path``).
        days: validity of both certificates, from one hour ago (clock skew).

    Returns:
        The file paths and the server key's SPKI pin.
    """
    now = dt.datetime.now(dt.UTC)
    not_before, not_after = now - dt.timedelta(hours=1), now + dt.timedelta(days=days)

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name("django-secure-sso test CA")
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
                digital_signature=False, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True,
                crl_sign=True, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )

    key = ec.generate_private_key(ec.SECP256R1())
    san = [x509.DNSName(name) for name in DNS_NAMES] + [
        x509.IPAddress(ipaddress.ip_address(ip)) for ip in IP_ADDRESSES
    ]
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(DNS_NAMES[0]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.SubjectAlternativeName(san), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=False,
                crl_sign=False, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )

    pem = serialization.Encoding.PEM
    paths = LoopbackPKI(
        ca_cert=folder / "ca.pem",
        server_cert=folder / "server-chain.pem",
        server_key=folder / "server-key.pem",
        spki_sha256=base64.b64encode(
            _sha256(
                key.public_key().public_bytes(
                    serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
                )
            )
        ).decode(),
    )
    paths.ca_cert.write_bytes(ca_cert.public_bytes(pem))
    paths.server_cert.write_bytes(cert.public_bytes(pem) + ca_cert.public_bytes(pem))
    paths.server_key.touch(mode=0o600)
    paths.server_key.write_bytes(
        key.private_bytes(
            pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return paths


def _sha256(data: bytes) -> bytes:
    digest = hashes.Hash(hashes.SHA256())
    digest.update(data)
    return digest.finalize()


__all__ = ["LoopbackPKI", "make_loopback_pki"]
