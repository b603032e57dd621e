"""The example's development-only anchor key: fixed, so `make run` needs no set-up."""

from __future__ import annotations

import hashlib

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey


def development_anchor_key() -> str:
    """A PEM Ed25519 key derived from a public string: it proves nothing, on purpose."""
    seed = hashlib.sha256(b"django-secure-sso example: development anchor key").digest()
    return Ed25519PrivateKey.from_private_bytes(seed).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
