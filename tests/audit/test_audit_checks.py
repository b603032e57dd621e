"""System checks of the audit app, called directly and asserted by id."""

from __future__ import annotations

from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from audit import checks
from audit.anchors import load_private_key, new_private_pem, public_pem


def ids(*functions: Any) -> list[str]:
    return [message.id for function in functions for message in function()]


class TestSigningKey:
    def test_test_settings_pass(self) -> None:
        """The suite's settings have a long enough current key."""
        assert ids(checks.check_signing_key, checks.check_unknown_keys) == []

    @pytest.mark.parametrize(
        "value",
        [
            {},
            {"SIGNING_KEYS": {"k1": "x" * 40}},
            {"SIGNING_KEYS": {"k1": ""}, "SIGNING_KEY_ID": "k1"},
            {"SIGNING_KEYS": {"k2": "x" * 40}, "SIGNING_KEY_ID": "k1"},
        ],
    )
    def test_e001_no_current_key(self, settings: Any, value: dict) -> None:
        """No key for SIGNING_KEY_ID means every security event fails: E001."""
        settings.SECURE_SSO_AUDIT = value
        assert ids(checks.check_signing_key) == ["secure_sso_audit.E001"]

    def test_e002_short_key(self, settings: Any) -> None:
        """A key under 32 characters is E002."""
        settings.SECURE_SSO_AUDIT = {"SIGNING_KEYS": {"k1": "short"}, "SIGNING_KEY_ID": "k1"}
        assert ids(checks.check_signing_key) == ["secure_sso_audit.E002"]

    def test_w001_unknown_key(self, settings: Any) -> None:
        """A misspelt setting is reported."""
        settings.SECURE_SSO_AUDIT = {**settings.SECURE_SSO_AUDIT, "SIGNING_KEY": "k1"}
        assert ids(checks.check_unknown_keys) == ["secure_sso_audit.W001"]


class TestAnchors:
    FILE_SINK = {"CLASS": "audit.anchors.FileSink", "PATH": "never-opened-anchors.jsonl"}

    def configure(self, settings: Any, **values: Any) -> None:
        settings.SECURE_SSO_AUDIT = {**settings.SECURE_SSO_AUDIT, **values}

    def test_anchoring_with_a_key_and_a_file_passes(self, settings: Any) -> None:
        self.configure(settings, ANCHOR_SINKS=[self.FILE_SINK, "audit.anchors.LogSink"],
                       ANCHOR_KEY=new_private_pem())
        assert ids(checks.check_anchors, checks.check_anchors_deploy) == []

    @pytest.mark.parametrize("key", ["", "not a key", "-----BEGIN PRIVATE KEY-----\nAAAA\n"
                                     "-----END PRIVATE KEY-----\n"])
    def test_e003_sinks_without_a_usable_key(self, settings: Any, key: str) -> None:
        """No key at all (nothing can sign or verify), or one that is not a key."""
        self.configure(settings, ANCHOR_SINKS=[self.FILE_SINK], ANCHOR_KEY=key)
        assert ids(checks.check_anchors) == ["secure_sso_audit.E003"]

    def test_e003_a_key_of_another_kind(self, settings: Any) -> None:
        pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption()).decode()
        self.configure(settings, ANCHOR_SINKS=[self.FILE_SINK], ANCHOR_KEY=pem)
        assert ids(checks.check_anchors) == ["secure_sso_audit.E003"]

    @pytest.mark.parametrize("sink", ["no.such.Sink", {"PATH": "x"}, 42,
                                      {"CLASS": "audit.anchors.FileSink", "WHERE": "x"}])
    def test_e004_unusable_sink(self, settings: Any, sink: Any) -> None:
        self.configure(settings, ANCHOR_SINKS=[sink], ANCHOR_KEY=new_private_pem())
        assert ids(checks.check_anchors) == ["secure_sso_audit.E004"]

    @pytest.mark.parametrize(("name", "value"), [("ANCHOR_EVERY_EVENTS", 0),
                                                 ("ANCHOR_EVERY_SECONDS", -1),
                                                 ("ANCHOR_EVERY_EVENTS", "many"),
                                                 ("COALESCE_WINDOW", -1),
                                                 ("COALESCE_AFTER", "five"),
                                                 ("COALESCE_MAX_KEYS", 0),
                                                 ("COALESCE_AFTER", None)])
    def test_e005_intervals(self, settings: Any, name: str, value: Any) -> None:
        self.configure(settings, **{name: value})
        assert ids(checks.check_anchors) == ["secure_sso_audit.E005"]

    def test_w002_no_anchors_in_production(self) -> None:
        assert ids(checks.check_anchors_deploy) == ["secure_sso_audit.W002"]

    def test_w003_no_sink_reads_back(self, settings: Any) -> None:
        self.configure(settings, ANCHOR_SINKS=["audit.anchors.LogSink"],
                       ANCHOR_KEY=new_private_pem())
        assert ids(checks.check_anchors) == ["secure_sso_audit.W003"]

    def test_a_reviewer_verifies_with_public_keys_only(self, settings: Any) -> None:
        """A machine with the public key and the anchor file, no private key: no error,
        except in check --deploy, which is for the site (E006)."""
        public = public_pem(load_private_key(new_private_pem()).public_key())
        self.configure(settings, ANCHOR_SINKS=[self.FILE_SINK], ANCHOR_PUBLIC_KEYS=[public])
        assert ids(checks.check_anchors) == []
        assert ids(checks.check_anchors_deploy) == ["secure_sso_audit.E006"]
