"""Sealed token storage (``secure_sso.tokens``): AES-GCM under keys derived from
``TOKEN_ENCRYPTION_KEYS`` (or ``SECRET_KEY`` and its fallbacks), bound to the issuer and
``sub`` as associated data, and kept only on the session's ``SSOSession`` row.
"""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.sessions.models import Session
from django.core import serializers
from django.test import Client
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from audit.models import AuditEvent
from secure_sso import tokens
from secure_sso.conf import sso_settings
from secure_sso.models import SSOSession
from secure_sso.testing import session_tokens
from tests.forge import ForgedProvider
from tests.forged_signin import sign_in

ISSUER = "https://op.example"
SUB = "forged-user"
DATA = {"access_token": "at-secret-1", "refresh_token": "rt-secret-1", "expires_at": 1_700_000_000}
OLD_KEY = "old-token-key-" + "o" * 40
NEW_KEY = "new-token-key-" + "n" * 40


def keys(settings: Any, *values: str) -> None:
    settings.SECURE_SSO = {**settings.SECURE_SSO, "TOKEN_ENCRYPTION_KEYS": list(values)}


def flip(blob: str, index: int) -> str:
    """``blob`` with one byte of its nonce+ciphertext+tag changed at ``index``."""
    version, kid, payload = blob.split(".", 2)
    raw = bytearray(base64.urlsafe_b64decode(payload))
    raw[index] ^= 0x01
    return f"{version}.{kid}.{base64.urlsafe_b64encode(bytes(raw)).decode()}"


# -- seal / unseal ------------------------------------------------------------------


class TestSeal:
    def test_round_trip(self) -> None:
        blob = tokens.seal(DATA, issuer=ISSUER, subject=SUB)
        assert tokens.unseal(blob, issuer=ISSUER, subject=SUB) == DATA

    def test_blob_is_versioned_and_opaque(self) -> None:
        """``v1.<key id>.<base64>``; no token value readable in it, a new nonce every time."""
        blob = tokens.seal(DATA, issuer=ISSUER, subject=SUB)
        version, kid, payload = blob.split(".", 2)
        assert version == "v1" and len(kid) == 8
        assert "at-secret-1" not in blob and "rt-secret-1" not in blob
        assert b"at-secret-1" not in base64.urlsafe_b64decode(payload)
        assert tokens.seal(DATA, issuer=ISSUER, subject=SUB) != blob

    @pytest.mark.parametrize(
        ("issuer", "subject"),
        [
            ("https://other-op.example", SUB),  # another issuer
            (ISSUER, "someone-else"),  # another account of the same issuer
            (ISSUER, SUB + "x"),
            (ISSUER + "\0" + SUB, ""),  # the boundary moved
        ],
    )
    def test_another_identity_cannot_open(self, issuer: str, subject: str) -> None:
        """The issuer and ``sub`` are the associated data: a blob moved to another row is None."""
        blob = tokens.seal(DATA, issuer=ISSUER, subject=SUB)
        assert tokens.unseal(blob, issuer=issuer, subject=subject) is None

    def test_every_flipped_byte_is_refused(self) -> None:
        """Any change to nonce, ciphertext or tag fails authentication: None, no exception."""
        blob = tokens.seal(DATA, issuer=ISSUER, subject=SUB)
        size = len(base64.urlsafe_b64decode(blob.split(".", 2)[2]))
        for index in range(size):
            assert tokens.unseal(flip(blob, index), issuer=ISSUER, subject=SUB) is None, index

    @pytest.mark.parametrize(
        "mangle",
        [
            lambda b: "v2" + b[2:],  # unknown version
            lambda b: b.split(".")[0] + ".ffffffff." + b.split(".", 2)[2],  # unknown key id
            lambda b: b[:-8],  # truncated
            lambda b: b.rsplit(".", 1)[0] + ".",  # no payload
            lambda b: b.replace(".", "", 1),  # no separator
            lambda b: b[:-4] + "\u00e9",  # not ascii
            lambda b: "",
        ],
    )
    def test_malformed_blob_is_none(self, mangle: Callable[[str], str]) -> None:
        blob = tokens.seal(DATA, issuer=ISSUER, subject=SUB)
        assert tokens.unseal(mangle(blob), issuer=ISSUER, subject=SUB) is None

    def test_non_dict_plaintext_is_none(self) -> None:
        """A sealed JSON list (not what seal() writes) does not come back as tokens."""
        blob = tokens.seal([1, 2], issuer=ISSUER, subject=SUB)  # type: ignore[arg-type]
        assert tokens.unseal(blob, issuer=ISSUER, subject=SUB) is None

    @hypothesis_settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
    @given(blob=st.one_of(
        st.text(),
        st.builds(lambda kid, raw: f"v1.{kid}.{base64.urlsafe_b64encode(raw).decode()}",
                  st.sampled_from(["", "ffffffff"]), st.binary(max_size=120)),
        st.builds(lambda head, tail: f"{head}.{tail}", st.text(max_size=20), st.text()),
    ))
    def test_unseal_of_arbitrary_text_never_raises(self, blob: str) -> None:
        assert tokens.unseal(blob, issuer=ISSUER, subject=SUB) is None

    @given(
        data=st.dictionaries(
            st.text(max_size=20),
            st.one_of(st.text(max_size=200), st.integers(-(2**53), 2**53), st.none()),
            max_size=8,
        ),
        issuer=st.text(max_size=80),
        subject=st.text(max_size=80),
    )
    def test_round_trip_any_json_object(
        self, data: dict[str, Any], issuer: str, subject: str
    ) -> None:
        blob = tokens.seal(data, issuer=issuer, subject=subject)
        assert tokens.unseal(blob, issuer=issuer, subject=subject) == data


# -- keys ---------------------------------------------------------------------------


class TestKeys:
    def test_rotation_new_key_first_opens_old_blobs(self, settings: Any) -> None:
        """Sealed under OLD: [NEW, OLD] opens it and seals with NEW; OLD removed, it is None."""
        keys(settings, OLD_KEY)
        old_blob = tokens.seal(DATA, issuer=ISSUER, subject=SUB)

        keys(settings, NEW_KEY, OLD_KEY)
        assert tokens.unseal(old_blob, issuer=ISSUER, subject=SUB) == DATA
        new_blob = tokens.seal(DATA, issuer=ISSUER, subject=SUB)
        assert new_blob.split(".")[1] != old_blob.split(".")[1]  # sealed with the new key

        keys(settings, NEW_KEY)
        assert tokens.unseal(old_blob, issuer=ISSUER, subject=SUB) is None
        assert tokens.unseal(new_blob, issuer=ISSUER, subject=SUB) == DATA

    def test_a_foreign_key_cannot_open(self, settings: Any) -> None:
        keys(settings, OLD_KEY)
        blob = tokens.seal(DATA, issuer=ISSUER, subject=SUB)
        keys(settings, NEW_KEY)
        assert tokens.unseal(blob, issuer=ISSUER, subject=SUB) is None

    def test_default_keys_are_secret_key_then_fallbacks(self, settings: Any) -> None:
        settings.SECURE_SSO = {k: v for k, v in settings.SECURE_SSO.items()
                               if k != "TOKEN_ENCRYPTION_KEYS"}
        settings.SECRET_KEY = "first-secret-key-" + "a" * 40
        settings.SECRET_KEY_FALLBACKS = []
        assert sso_settings.token_keys == (settings.SECRET_KEY.encode(),)
        blob = tokens.seal(DATA, issuer=ISSUER, subject=SUB)

        # SECRET_KEY rotated the Django way: the old one becomes a fallback and still opens.
        settings.SECRET_KEY = "second-secret-key-" + "b" * 40
        settings.SECRET_KEY_FALLBACKS = ["first-secret-key-" + "a" * 40]
        assert sso_settings.token_keys[0] == settings.SECRET_KEY.encode()
        assert tokens.unseal(blob, issuer=ISSUER, subject=SUB) == DATA

        settings.SECRET_KEY_FALLBACKS = []
        assert tokens.unseal(blob, issuer=ISSUER, subject=SUB) is None

    def test_explicit_keys_do_not_depend_on_secret_key(self, settings: Any) -> None:
        keys(settings, NEW_KEY)
        blob = tokens.seal(DATA, issuer=ISSUER, subject=SUB)
        settings.SECRET_KEY = "an-unrelated-secret-key-" + "c" * 40
        assert sso_settings.token_keys == (NEW_KEY.encode(),)
        assert tokens.unseal(blob, issuer=ISSUER, subject=SUB) == DATA

    def test_the_key_is_derived_not_the_secret_itself(self, settings: Any) -> None:
        """The secret is never the AES key: AES-GCM with the raw (padded) secret fails."""
        from cryptography.exceptions import InvalidTag
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        keys(settings, "k" * 32)
        blob = tokens.seal(DATA, issuer=ISSUER, subject=SUB)
        raw = base64.urlsafe_b64decode(blob.split(".", 2)[2])
        with pytest.raises(InvalidTag):
            AESGCM(b"k" * 32).decrypt(raw[:12], raw[12:], f"{ISSUER}\0{SUB}".encode())


# -- token_fields -------------------------------------------------------------------


def test_token_fields_keep_only_known_fields_and_make_expiry_absolute() -> None:
    answer = {
        "access_token": "at", "refresh_token": "rt", "id_token": "it", "token_type": "Bearer",
        "scope": "openid", "expires_in": 300, "custom": "dropped", "nested": {"x": 1},
    }
    kept = tokens.token_fields(answer, now=1000.0)
    assert kept == {"access_token": "at", "refresh_token": "rt", "id_token": "it",
                    "token_type": "Bearer", "scope": "openid", "expires_at": 1300}


# -- after a real sign-in ------------------------------------------------------------


@pytest.fixture
def sso_settings_extra() -> dict[str, Any]:
    return {"REFRESH_TOKENS": True}


@pytest.mark.django_db
@pytest.mark.usefixtures("configure")
class TestAfterSignIn:
    def test_tokens_only_on_the_row_encrypted_and_nowhere_else(
        self, client: Client, forge: ForgedProvider, caplog: Any, capsys: Any
    ) -> None:
        caplog.set_level(logging.DEBUG)
        sign_in(client, forge, refresh_token="forge-rt-" + "r" * 24)
        answer = forge.token_body
        secrets_ = [answer["access_token"], answer["refresh_token"], answer["id_token"]]
        assert client.get("/test/access-token/").status_code == 200

        # The session dict (what every request loads and saves) holds none of them.
        session_key = client.session.session_key
        decoded = Session.objects.get(pk=session_key).get_decoded()
        dumped = json.dumps(decoded, default=str)
        for value in secrets_:
            assert value not in dumped

        # The row has them, sealed: unreadable in the column, readable with the key.
        row = SSOSession.objects.get(session_key=session_key)
        for value in secrets_:
            assert value not in row.tokens
        kept = session_tokens(client)
        assert kept is not None
        assert kept["access_token"] == answer["access_token"]
        assert kept["refresh_token"] == answer["refresh_token"]
        assert kept["id_token"] == answer["id_token"]
        assert isinstance(kept["expires_at"], int)

        # Neither the audit trail nor the logs nor the console.
        audit = serializers.serialize("json", AuditEvent.objects.all())
        assert AuditEvent.objects.filter(event_type="auth.login.success").exists()
        captured = capsys.readouterr()
        logged = "\n".join(r.getMessage() + repr(r.args) for r in caplog.records)
        for value in secrets_:
            assert value not in audit
            assert value not in logged
            assert value not in captured.out + captured.err

    def test_row_moved_to_another_account_does_not_open(
        self, client: Client, forge: ForgedProvider
    ) -> None:
        """Copying a sealed blob onto another account's session row yields no tokens."""
        sign_in(client, forge)
        row = SSOSession.objects.get(session_key=client.session.session_key)
        assert tokens.unseal(row.tokens, issuer=forge.issuer, subject="another-user") is None
        assert tokens.unseal(row.tokens, issuer=forge.issuer, subject=SUB) is not None

    def test_access_token_view_uses_the_stored_token(
        self, client: Client, forge: ForgedProvider
    ) -> None:
        import hashlib

        sign_in(client, forge)  # expires_in 300, nothing to refresh
        answer = forge.token_body
        response = client.get("/test/access-token/")
        assert response.status_code == 200
        assert response.content.decode() == hashlib.sha256(
            answer["access_token"].encode()
        ).hexdigest()
        assert answer["access_token"].encode() not in response.content
        assert len(forge.requests_to("/token")) == 1  # no refresh
